"""``gpu-alloc sweep``: a grid or Optuna search over scenarios, seeds and hyperparameters on Ray Tune."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

NAME = "sweep"


def add_parser(sub: Any) -> None:
    """The ``sweep`` subcommand and its options."""
    sweep = sub.add_parser(
        "sweep",
        help="train a grid or an Optuna search of PPO runs on Ray Tune, then evaluate them (ray extra)",
        description="Run the sweep a YAML file describes (see sweeps/ and gpu_alloc_env/train/sweep_spec.py) "
        "on a local Ray cluster started with this machine's cores, or on a running cluster (--address). "
        "Every trial trains ordinary run folders under OUT/runs; each configuration is then evaluated "
        "on the tuning seeds into OUT/evaluate/<scenario>-<configuration>. Run the same command again "
        "after a crash to resume: finished trials are kept, interrupted runs resume from their "
        "checkpoints. Needs the ray extra: pip install -e '.[train,ray]'.",
    )
    sweep.add_argument("--config", type=Path, required=True, help="the sweep file (YAML)")
    sweep.add_argument("--out", type=Path, default=None, help="output folder (default runs/sweeps/<name>)")
    sweep.add_argument(
        "--address",
        default=None,
        help="a running Ray cluster's HOST:PORT (from ray start --head); run with RAY_AUTH_MODE=token, "
        "and give --out on storage every node reaches",
    )


def run(args: argparse.Namespace) -> int:
    """Run the sweep and print its trials."""
    from gpu_alloc_env.train.sweep_spec import load_sweep

    spec = load_sweep(args.config)
    from gpu_alloc_env.train.sweep import run_sweep

    out = args.out or Path("runs") / "sweeps" / spec.name
    print(run_sweep(spec, out, address=args.address))
    return 0
