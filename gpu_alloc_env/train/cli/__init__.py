"""The ``gpu-alloc`` command: one parser, one module per subcommand.

Each subcommand is a module of this package with ``NAME``, ``add_parser(sub)`` and ``run(args)``;
:data:`COMMANDS` lists them in the order ``gpu-alloc --help`` shows. The options several commands
share are in :mod:`gpu_alloc_env.train.cli.options`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from types import ModuleType

from gpu_alloc_env.config import ConfigError
from gpu_alloc_env.train.cli import (
    bench,
    benchmark,
    compare,
    evaluate,
    experiment,
    generalise,
    serving,
    sweep,
    train,
    tune,
    twin,
)
from gpu_alloc_env.train.cli.options import check_out

COMMANDS: tuple[ModuleType, ...] = (
    compare,
    tune,
    train,
    evaluate,
    benchmark,
    experiment,
    sweep,
    twin,
    generalise,
    serving,
    bench,
)
"""The subcommands, in the order of ``gpu-alloc --help``."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gpu-alloc``."""
    parser = argparse.ArgumentParser(
        prog="gpu-alloc",
        description="Serverless GPU allocation for LLM multi-agent systems: compare the baselines, "
        "train PPO allocators and evaluate them against the baselines.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _needs_train_extra(exc: ImportError) -> int:
    print(
        f"gpu-alloc: error: this command needs the training extra ({exc.name} is missing); "
        "install it with pip install 'gpu-alloc-env[train]' (from a checkout: pip install -e '.[train]')",
        file=sys.stderr,
    )
    return 2


def _needs_ray_extra(exc: ImportError) -> int:
    print(
        f"gpu-alloc: error: this needs the ray extra ({exc.name} is missing): RLlib and Ray Tune run on "
        "Ray; install it with pip install 'gpu-alloc-env[ray]' (from a checkout: pip install -e "
        "'.[train,ray]')",
        file=sys.stderr,
    )
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gpu-alloc``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["gpu-alloc", *(sys.argv[1:] if argv is None else argv)])
    try:
        check_out(args)
        status: int = {command.NAME: command.run for command in COMMANDS}[args.command](args)
        sys.stdout.flush()  # here, so that a closed pipe is caught below, not at interpreter exit
    except ImportError as exc:
        if exc.name in ("stable_baselines3", "torch", "yaml", "matplotlib", "tensorboard"):
            return _needs_train_extra(exc)
        if exc.name is not None and exc.name.split(".")[0] in ("ray", "optuna"):
            return _needs_ray_extra(exc)
        raise
    except BrokenPipeError:
        # The reader of the output went away (``gpu-alloc serving ... | head``): stop quietly, as
        # command-line tools do, without a second error when Python flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ConfigError, ValueError, RuntimeError, OSError) as exc:
        print(f"gpu-alloc: error: {exc}", file=sys.stderr)
        return 2
    return status
