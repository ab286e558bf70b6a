"""``gpu-alloc bench``: speed and memory of the environment, as ratios against references in the same run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

NAME = "bench"


def add_parser(sub: Any) -> None:
    """The ``bench`` subcommand and its options."""
    from gpu_alloc_env.train.bench import PARTS

    bench = sub.add_parser(
        "bench",
        help="time the environment against CartPole, CartPoleVectorEnv and DummyVecEnv in one run",
        description="Time a gym.make step, the vector env at B = 64 and 1,024, the adaptive decision "
        "for N = 4 to 10^6 agents, a 600 s episode at 10 ms decisions, the environment's share of PPO "
        "training and its memory over 10^6 steps; each against a reference measured in the same "
        "process (the machine's load cancels out of the ratios). About 5 minutes; --quick about 1.",
    )
    bench.add_argument(
        "--only", nargs="+", choices=PARTS, default=list(PARTS), help="parts to run (default: all)"
    )
    bench.add_argument("--quick", action="store_true", help="fewer repeats and steps (noisier)")
    bench.add_argument("--out", type=Path, help="also write the table to DIR/summary.md")


def run(args: argparse.Namespace) -> int:
    """Run the measurements and print the table."""
    import platform

    from gpu_alloc_env.train.bench import bench_table, run_bench

    table = bench_table(run_bench(args.only, args.quick))
    print(table, end="")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        header = (
            f"# Speed and memory\n\n`{args.command_line}` on {platform.machine()}, Python "
            f"{platform.python_version()}, {_cores()} cores.\n\n"
        )
        path = args.out / "summary.md"
        path.write_text(header + table)
        print(f"wrote {path}")
    return 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
