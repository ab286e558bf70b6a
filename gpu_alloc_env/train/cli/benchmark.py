"""``gpu-alloc benchmark``: every policy, PPO and the clairvoyant planner on one scenario's seeds."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.seeds import EVALUATION_SEED_BASE
from gpu_alloc_env.train.cli.options import (
    add_scenario_option,
    add_set_option,
    add_trace_options,
    add_tuned_option,
    scenario_overrides,
)

NAME = "benchmark"


def add_parser(sub: Any) -> None:
    """The ``benchmark`` subcommand and its options."""
    bench = sub.add_parser(
        "benchmark",
        help="every policy (baselines, PPO runs, the clairvoyant oracle) on one scenario, rliable statistics",
        description="Score the deployable baselines, the trained runs given and the clairvoyant oracle on "
        "the same evaluation seeds of a scenario, with the relaxation bound of every seed; write "
        "OUT/<scenario>/episodes.csv, bounds.csv and summary.md (IQM, bootstrap intervals, share of the "
        "way to the bound, probability of improvement over the best deployable baseline), then "
        "OUT/summary.md and OUT/performance_profile.png over every scenario in OUT.",
    )
    add_scenario_option(bench, "paper")
    bench.add_argument("--runs", nargs="*", type=Path, default=[], help="PPO run folders to include")
    bench.add_argument("--episodes", type=int, default=20, help="evaluation seeds (default 20)")
    bench.add_argument(
        "--first-seed",
        type=int,
        default=EVALUATION_SEED_BASE,
        help=f"first seed (default {EVALUATION_SEED_BASE})",
    )
    bench.add_argument("--no-oracle", action="store_true", help="leave out the clairvoyant planner (slow)")
    add_tuned_option(bench)
    bench.add_argument(
        "--out", type=Path, required=True, help="benchmark directory (one folder per scenario)"
    )
    add_set_option(bench)
    add_trace_options(bench)


def run(args: argparse.Namespace) -> int:
    """Benchmark the scenario and print its summary."""
    from gpu_alloc_env.train.benchmark import run_benchmark

    config = make_scenario(args.scenario, **scenario_overrides(args))
    text = run_benchmark(
        config,
        args.runs,
        args.episodes,
        args.out,
        first_seed=args.first_seed,
        oracle=not args.no_oracle,
        command=args.command_line,
        tuned_dir=args.tuned,
    )
    print(text)
    print(f"wrote {args.out / config.name} and {args.out / 'summary.md'}")
    return 0
