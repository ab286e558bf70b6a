"""The ``gpu-alloc`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from baselines import BASELINES
from gpu_alloc_env.config import ConfigError
from gpu_alloc_env.scenarios import SCENARIOS, make_scenario


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``FIELD=VALUE`` pairs; VALUE is read as JSON when it parses, else as a string."""
    overrides: dict[str, Any] = {}
    for item in items:
        field, sep, raw = item.partition("=")
        if not sep or not field:
            raise ConfigError(
                f"--set {item!r} is not FIELD=VALUE; for example --set capacity_gpus=16 or "
                "--set 'workload={\"task_rate_tps\": 4}'"
            )
        try:
            overrides[field] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[field] = raw
    return overrides


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gpu-alloc``."""
    parser = argparse.ArgumentParser(
        prog="gpu-alloc",
        description="Serverless GPU allocation for LLM multi-agent systems: compare policies.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    compare = sub.add_parser(
        "compare",
        help="run every baseline on the same seeds; write episodes.csv and summary.md",
        description="Run the baseline policies on the same seeds of a scenario and write "
        "DIR/episodes.csv (one row per policy and seed) and DIR/summary.md (mean and 95%% "
        "confidence interval per policy and metric, and the paper's headline ratios).",
    )
    compare.add_argument("--scenario", default="paper", choices=sorted(SCENARIOS))
    compare.add_argument("--episodes", type=int, default=10, help="seeds per policy (default 10)")
    compare.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    compare.add_argument("--out", type=Path, required=True, help="output directory")
    compare.add_argument(
        "--policies",
        nargs="+",
        choices=sorted(BASELINES),
        default=None,
        help="baselines to run (default: all)",
    )
    compare.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a scenario field (JSON value), repeatable",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gpu-alloc``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "compare":
            from train.compare import run_compare

            config = make_scenario(args.scenario, **parse_overrides(args.overrides))
            _, text = run_compare(config, args.episodes, args.seed, args.out, args.policies)
            print(text)
            print(f"wrote {args.out / 'episodes.csv'} and {args.out / 'summary.md'}")
            return 0
    except (ConfigError, ValueError) as exc:
        print(f"gpu-alloc: error: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
