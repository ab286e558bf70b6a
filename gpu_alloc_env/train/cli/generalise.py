"""``gpu-alloc generalise``: PPO trained on synthetic scenarios and on traces, scored on held-out parts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

NAME = "generalise"


def add_parser(sub: Any) -> None:
    """The ``generalise`` subcommand and its options."""
    generalise = sub.add_parser(
        "generalise",
        help="train PPO on synthetic scenarios and on traces; score all on the traces' held-out parts",
        description="Train PPO (reusing finished runs, resuming interrupted ones) on paper, on each "
        "bundled trace's synthetic twin and on each trace's training part; then score every run and "
        "every baseline on the held-out part of each trace and write DIR/summary.md and "
        "DIR/episodes-<trace>.csv.",
    )
    generalise.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds")
    generalise.add_argument("--timesteps", type=int, required=True, help="environment steps per run")
    generalise.add_argument("--runs-dir", type=Path, required=True, help="folder of the run folders")
    generalise.add_argument("--out", type=Path, required=True, help="output directory")
    generalise.add_argument("--episodes", type=int, default=20, help="held-out episodes per policy")
    generalise.add_argument("--parallel", type=int, default=2, help="runs trained at once (default 2)")


def run(args: argparse.Namespace) -> int:
    """Train what is not trained yet, score everything and print the table."""
    from gpu_alloc_env.train.generalise import run_generalise

    text = run_generalise(
        args.seeds,
        args.timesteps,
        args.runs_dir,
        args.out,
        args.episodes,
        args.parallel,
        command=args.command_line,
    )
    print(text, end="")
    print(f"wrote {args.out / 'summary.md'}")
    return 0
