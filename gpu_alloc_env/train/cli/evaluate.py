"""``gpu-alloc evaluate``: score trained runs and the baselines on the same held-out seeds."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gpu_alloc_env.seeds import EVALUATION_SEED_BASE, TUNING_SEED_BASE
from gpu_alloc_env.train.cli.options import (
    add_scenario_option,
    add_set_option,
    add_trace_options,
    add_tuned_option,
    scenario_overrides,
)

NAME = "evaluate"


def add_parser(sub: Any) -> None:
    """The ``evaluate`` subcommand and its options."""
    evaluate = sub.add_parser(
        "evaluate",
        help="score trained runs and baselines on the same held-out seeds",
        description="Run every trained run and the chosen baselines on the same held-out seeds "
        "(disjoint from training and validation) and write DIR/episodes.csv, DIR/summary.md "
        "(interquartile mean and 95% bootstrap interval across training seeds; paired "
        "differences against the adaptive heuristic) and the plots.",
    )
    evaluate.add_argument("--runs", nargs="*", type=Path, default=[], help="run folders of gpu-alloc train")
    evaluate.add_argument(
        "--baselines", nargs="+", default=["all"], help="baselines to include: names or 'all' (default all)"
    )
    evaluate.add_argument("--episodes", type=int, default=10, help="held-out episodes per policy")
    evaluate.add_argument(
        "--first-seed",
        type=int,
        default=EVALUATION_SEED_BASE,
        help=f"first episode seed (default {EVALUATION_SEED_BASE}, the held-out seeds); use "
        f"{TUNING_SEED_BASE} to compare hyperparameters without looking at the held-out seeds",
    )
    add_scenario_option(evaluate, None, "default: the runs'")
    add_set_option(evaluate)
    add_trace_options(evaluate, twin=False)
    evaluate.add_argument(
        "--model", choices=["best", "final"], default="best", help="which model of each run"
    )
    evaluate.add_argument("--out", type=Path, required=True, help="output directory")
    evaluate.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_tuned_option(evaluate)


def run(args: argparse.Namespace) -> int:
    """Evaluate, write the outputs and print the summary."""
    from gpu_alloc_env.train.evaluate import run_evaluate

    text = run_evaluate(
        run_dirs=args.runs,
        baselines=args.baselines,
        episodes=args.episodes,
        out_dir=args.out,
        scenario=args.scenario,
        scenario_overrides=scenario_overrides(args),
        model=args.model,
        plots=not args.no_plots,
        first_seed=args.first_seed,
        command=args.command_line,
        tuned_dir=args.tuned,
    )
    print(text)
    print(f"wrote {args.out / 'episodes.csv'} and {args.out / 'summary.md'}")
    return 0
