"""``gpu-alloc train``: train (or resume) one PPO run into its run folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gpu_alloc_env.train.cli.options import (
    TRACE_OPTIONS,
    add_scenario_option,
    add_set_option,
    add_trace_options,
    scenario_overrides,
)
from gpu_alloc_env.train.learned import BACKENDS

NAME = "train"


def add_parser(sub: Any) -> None:
    """The ``train`` subcommand and its options."""
    train = sub.add_parser(
        "train",
        help="train a PPO allocator (Stable-Baselines3, or RLlib) into a run folder",
        description="Train PPO on a scenario. Hyperparameters come from gpu_alloc_env/train/hyperparams.yml "
        "(the scenario's block over 'default'), then --hp. The run folder receives the resolved "
        "config, the arguments, the command, the git revision, the models, checkpoints and logs. "
        "--backend rllib trains with RLlib's new API stack on the same environments, hyperparameters "
        "and seeds, into the same layout (needs the ray extra).",
    )
    add_scenario_option(train, None, "default paper")
    train.add_argument("--seed", type=int, default=None, help="training seed (default 0)")
    train.add_argument("--timesteps", type=int, default=None, help="total environment steps")
    train.add_argument("--run-dir", type=Path, required=True, help="the run folder")
    train.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    train.add_argument(
        "--hyperparams", type=Path, default=None, help="a YAML file instead of the bundled one"
    )
    train.add_argument(
        "--hp",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a hyperparameter (YAML value)",
    )
    add_set_option(train)
    add_trace_options(train)
    train.add_argument(
        "--checkpoint-interval-s",
        type=float,
        default=None,
        help="wall seconds between checkpoints (default 120; with --resume, the run's own)",
    )
    train.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default 1; with --resume, the run's)"
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="the learner library: sb3 (Stable-Baselines3, the default) or rllib (needs the ray extra: "
        "pip install -e '.[train,ray]')",
    )
    train.add_argument(
        "--env-runners",
        type=int,
        default=None,
        help="--backend rllib: remote env runners sharing the n_envs environments (default 0: the "
        "training process steps them, the fastest on one machine)",
    )


def run(args: argparse.Namespace) -> int:
    """Train or resume the run; print what the run folder received."""
    from gpu_alloc_env.train.hyperparams import parse_hp_overrides
    from gpu_alloc_env.train.learned import MODEL_PATHS, checkpoint_steps
    from gpu_alloc_env.train.run_folder import TrainArgs, resume_args

    if args.resume:
        ignored = [option for option, given in _run_options(args).items() if given]
        if ignored:
            raise ValueError(
                f"--resume continues the run with the settings it started with; {', '.join(ignored)} "
                "would be ignored, so drop them (or start a new run in another --run-dir)"
            )
        run_args = resume_args(args.run_dir, args.timesteps, args.threads, args.checkpoint_interval_s)
    else:
        args.scenario = args.scenario or "paper"
        args.seed = 0 if args.seed is None else args.seed
        if args.timesteps is None:
            raise ValueError("--timesteps is required for a new run; for example --timesteps 1000000")
        run_args = TrainArgs(
            scenario=args.scenario,
            seed=args.seed,
            timesteps=args.timesteps,
            run_dir=str(args.run_dir),
            hyperparams_file=str(args.hyperparams) if args.hyperparams else None,
            hp_overrides=parse_hp_overrides(args.hp),
            scenario_overrides=scenario_overrides(args),
            checkpoint_interval_s=120.0 if args.checkpoint_interval_s is None else args.checkpoint_interval_s,
            threads=1 if args.threads is None else args.threads,
            backend=args.backend or "sb3",
            env_runners=0 if args.env_runners is None else args.env_runners,
        )
    if run_args.backend == "rllib":
        from gpu_alloc_env.train import rllib_backend

        run_dir = rllib_backend.train(
            run_args, resume=args.resume, progress_bar_on=not args.no_progress, command=args.command_line
        )
    else:
        from gpu_alloc_env.train.ppo import train

        run_dir = train(
            run_args, resume=args.resume, progress_bar=not args.no_progress, command=args.command_line
        )
    models = MODEL_PATHS[run_args.backend]
    outputs = (models["final"], models["best"], "evaluations.npz", "tb")
    written = [
        name + ("/" if (run_dir / name).is_dir() else "") for name in outputs if (run_dir / name).exists()
    ]
    steps = checkpoint_steps(run_dir)
    print(
        f"trained {run_dir} to {steps:,} environment steps (PPO trains whole rollouts, so the total "
        f"asked is rounded up): {', '.join(written)}"
    )
    if not (run_dir / "evaluations.npz").exists():
        print(
            f"no validation ran (the run is shorter than eval_freq_steps), so {models['best']} is the "
            "final model; lower it with --hp eval_freq_steps=N to validate short runs"
        )
    return 0


def _run_options(args: argparse.Namespace) -> dict[str, bool]:
    """The options of ``gpu-alloc train`` that set up a new run, and whether each was given."""
    given = {
        "--scenario": args.scenario is not None,
        "--seed": args.seed is not None,
        "--backend": args.backend is not None,
        "--env-runners": args.env_runners is not None,
        "--hyperparams": args.hyperparams is not None,
        "--hp": bool(args.hp),
        "--set": bool(args.overrides),
        "--twin": args.twin is not None,
        "--trace": args.trace is not None,
    }
    for dest in TRACE_OPTIONS:
        given[f"--{dest.replace('_', '-')}"] = getattr(args, dest) is not None
    return given
