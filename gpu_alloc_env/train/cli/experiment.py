"""``gpu-alloc experiment``: PPO over several seeds, then their evaluation against the baselines."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gpu_alloc_env.train.cli.options import (
    add_scenario_option,
    add_set_option,
    add_trace_options,
    scenario_overrides,
)
from gpu_alloc_env.train.learned import BACKENDS

NAME = "experiment"


def add_parser(sub: Any) -> None:
    """The ``experiment`` subcommand and its options."""
    experiment = sub.add_parser(
        "experiment",
        help="train PPO over several seeds, then evaluate the runs against the baselines",
        description="Train one PPO run per seed (in parallel subprocesses; finished runs are "
        "reused and interrupted ones resumed), then run gpu-alloc evaluate on all of them.",
    )
    add_scenario_option(experiment, "paper")
    experiment.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4], help="training seeds")
    experiment.add_argument("--timesteps", type=int, required=True, help="environment steps per run")
    experiment.add_argument("--runs-dir", type=Path, required=True, help="folder of the run folders")
    experiment.add_argument("--out", type=Path, required=True, help="evaluation output directory")
    experiment.add_argument("--episodes", type=int, default=20, help="held-out episodes per policy")
    experiment.add_argument("--parallel", type=int, default=2, help="runs trained at once (default 2)")
    experiment.add_argument("--hp", action="append", default=[], metavar="KEY=VALUE", help="hyperparameter")
    experiment.add_argument(
        "--backend",
        choices=(*BACKENDS, "ray"),
        default="sb3",
        help="the learner library of every run, as gpu-alloc train --backend (default sb3); ray is "
        "short for --executor ray with sb3",
    )
    experiment.add_argument(
        "--executor",
        choices=("local", "ray"),
        default=None,
        help="local: train the runs in subprocesses (the default); ray: as trials of a Ray Tune grid on "
        "a local Ray cluster, the path of gpu-alloc sweep (needs the ray extra)",
    )
    add_set_option(experiment)
    add_trace_options(experiment)


def run(args: argparse.Namespace) -> int:
    """Train the runs, evaluate them and print the summary."""
    from gpu_alloc_env.train.experiment import run_experiment

    if args.backend == "ray" and args.executor == "local":
        raise ValueError("--backend ray means --executor ray; drop --executor local, or name the learner sb3")
    text = run_experiment(
        scenario=args.scenario,
        seeds=args.seeds,
        timesteps=args.timesteps,
        runs_dir=args.runs_dir,
        out_dir=args.out,
        episodes=args.episodes,
        parallel=args.parallel,
        hp=args.hp,
        overrides=scenario_overrides(args),
        backend="sb3" if args.backend == "ray" else args.backend,
        executor="ray" if args.backend == "ray" else args.executor or "local",
    )
    print(text)
    print(f"wrote {args.out / 'episodes.csv'}, {args.out / 'summary.md'} and the plots")
    return 0
