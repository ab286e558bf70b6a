"""``gpu-alloc twin``: fit synthetic twins to trace scenarios and report them beside the traces."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gpu_alloc_env.scenarios import SCENARIOS, make_scenario
from gpu_alloc_env.train.cli.options import add_set_option, add_trace_options, scenario_overrides

NAME = "twin"


def add_parser(sub: Any) -> None:
    """The ``twin`` subcommand and its options."""
    twin = sub.add_parser(
        "twin",
        help="fit synthetic twins to trace scenarios and report their statistics next to the trace's",
        description="Fit the bursty and diurnal twins to the training part of each trace scenario "
        "and print (and with --out, write) a Markdown table of the trace's and the twins' "
        "arrival rate, index of dispersion and token statistics.",
    )
    twin.add_argument(
        "--scenario",
        nargs="+",
        default=["trace-conv", "trace-code"],
        choices=sorted(SCENARIOS),
        help="trace scenarios (default: both bundled traces)",
    )
    twin.add_argument("--episodes", type=int, default=20, help="generated episodes per twin (default 20)")
    twin.add_argument("--out", type=Path, default=None, help="write the report to this Markdown file")
    add_set_option(twin)
    add_trace_options(twin, twin=False)


def run(args: argparse.Namespace) -> int:
    """Fit the twins and print (and write) the report."""
    from gpu_alloc_env.twin_report import report_markdown

    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    lines = [
        "# Synthetic twins of the trace scenarios",
        "",
        f"Command: `{args.command_line}`. Each twin is fitted to the part of its trace that the "
        "scenario replays (gpu_alloc_env/twin.py, docs/MODEL.md section 1.9).",
    ]
    for name in args.scenario:
        config = make_scenario(name, **scenario_overrides(args, name))
        lines += ["", *report_markdown(config, args.episodes)]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out}")
    return 0
