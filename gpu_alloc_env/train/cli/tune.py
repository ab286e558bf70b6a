"""``gpu-alloc tune``: the tuned baselines' settings for a scenario, searched on the tuning seeds."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gpu_alloc_env.baselines import TUNED_BASELINES
from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.train.cli.options import (
    add_scenario_option,
    add_set_option,
    add_trace_options,
    scenario_overrides,
)

NAME = "tune"


def add_parser(sub: Any) -> None:
    """The ``tune`` subcommand and its options."""
    tune = sub.add_parser(
        "tune",
        help="search the provisioned and autoscaler baselines' settings on the tuning seeds",
        description="Search the settings of the tuned baselines (provisioned: the best constant "
        "allocation; autoscaler: the KPA's target concurrency per agent) on the tuning seeds "
        "(950000 on, never the evaluation seeds) against the scenario's reward, and write "
        "DIR/<scenario>.<baseline>.json, which compare, evaluate and benchmark read with --tuned DIR.",
    )
    add_scenario_option(tune, "paper")
    tune.add_argument(
        "--baseline",
        nargs="+",
        choices=TUNED_BASELINES,
        default=list(TUNED_BASELINES),
        help="baselines to tune (default: both)",
    )
    tune.add_argument("--episodes", type=int, default=10, help="tuning seeds (default 10)")
    tune.add_argument("--out", type=Path, required=True, help="directory of the tuned records")
    add_set_option(tune)
    add_trace_options(tune)


def run(args: argparse.Namespace) -> int:
    """Tune each baseline and save its record."""
    from gpu_alloc_env.train.tune import tune

    config = make_scenario(args.scenario, **scenario_overrides(args))
    for baseline in args.baseline:
        record = tune(config, baseline, args.episodes, args.command_line)
        path = record.save(args.out)
        print(
            f"{config.name}: {baseline} {record.settings} (mean return {record.search['mean_return']:.1f} "
            f"on {record.tuned_on}, {len(record.seeds)} tuning seeds); wrote {path}"
        )
    return 0
