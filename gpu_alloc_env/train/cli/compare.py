"""``gpu-alloc compare``: the baselines on the same seeds of a scenario, with the paper's claims."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gpu_alloc_env.baselines import BASELINES
from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.train.cli.options import (
    add_scenario_option,
    add_set_option,
    add_trace_options,
    add_tuned_option,
    scenario_overrides,
)

NAME = "compare"


def add_parser(sub: Any) -> None:
    """The ``compare`` subcommand and its options."""
    compare = sub.add_parser(
        "compare",
        help="run every baseline on the same seeds; write episodes.csv and summary.md",
        description="Run the baseline policies on the same seeds of a scenario and write "
        "DIR/episodes.csv (one row per policy and seed) and DIR/summary.md (mean and 95% "
        "confidence interval per policy and metric, and the paper's headline ratios).",
    )
    add_scenario_option(compare, "paper")
    compare.add_argument("--episodes", type=int, default=10, help="seeds per policy (default 10)")
    compare.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    compare.add_argument("--out", type=Path, required=True, help="output directory")
    compare.add_argument(
        "--policies",
        nargs="+",
        choices=sorted(BASELINES),
        default=None,
        help="baselines to run (default: every deployable one with settings for the scenario)",
    )
    add_tuned_option(compare)
    add_set_option(compare)
    add_trace_options(compare)


def run(args: argparse.Namespace) -> int:
    """Run the baselines, write the outputs and print the summary."""
    from gpu_alloc_env.train.compare import run_compare

    config = make_scenario(args.scenario, **scenario_overrides(args))
    _, text = run_compare(
        config,
        args.episodes,
        args.seed,
        args.out,
        args.policies,
        command=args.command_line,
        tuned_dir=args.tuned,
    )
    print(text)
    print(f"wrote {args.out / 'episodes.csv'} and {args.out / 'summary.md'}")
    return 0
