"""The run folder of ``gpu-alloc train``: what it holds, and how a run is resumed or started afresh.

A run lives in its own folder and can be reproduced from it:

| file                        | content                                                        |
|-----------------------------|----------------------------------------------------------------|
| ``config.json``             | the resolved scenario, hyperparameters and action parameterisation |
| ``args.json``               | the arguments of the run                                       |
| ``command.txt``             | every command that trained the run, one per line               |
| ``git_revision.txt``        | the source revision at the run's start (``-dirty`` if changed) |
| ``model.zip``               | the final model                                                |
| ``best_model.zip``          | the model with the best validation return                      |
| ``vecnormalize.pkl``        | reward-normalisation statistics (when ``normalize_reward``)   |
| ``reward_stats.json``       | the same, for an RLlib run                                     |
| ``evaluations.npz``         | validation returns over training (the learning curve)          |
| ``checkpoints/``            | ``last.zip``, ``state.json`` (steps), reward statistics and     |
|                             | copies of ``best_model.zip`` and ``evaluations.npz``; written   |
|                             | every ``--checkpoint-interval-s`` and at the end               |
| ``tb/``                     | TensorBoard logs                                               |
| ``monitor/``                | per-episode training returns                                   |

A run trained with RLlib (``--backend rllib``, :mod:`gpu_alloc_env.train.rllib_backend`) has the
same layout, with ``config.json`` naming ``"backend": "rllib"``, its models as ``RLModule``
checkpoint folders (``model/``, ``best_model/``), its resumable checkpoint as an ``Algorithm``
folder (``checkpoints/last/``) and one monitor row per training iteration (mean return of the
episodes it finished, its steps, elapsed seconds).

Seeds (:mod:`gpu_alloc_env.seeds`): training environment ``e`` of a run with seed ``K`` starts from
seed ``1000 K + e`` and its generator continues across episodes; validation uses seeds from
:data:`~gpu_alloc_env.seeds.VALIDATION_SEED_BASE`; ``gpu-alloc evaluate`` uses seeds from
:data:`~gpu_alloc_env.seeds.EVALUATION_SEED_BASE`, which no training or validation episode uses.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.errors import TrainError
from gpu_alloc_env.seeds import MAX_TRAIN_SEED
from gpu_alloc_env.train.learned import BACKENDS, MODEL_PATHS, load_run_config

CHECKPOINT_DIR = "checkpoints"

RUN_ENTRIES = frozenset(
    {
        "config.json",
        "args.json",
        "command.txt",
        "git_revision.txt",
        "model.zip",
        "best_model.zip",
        "vecnormalize.pkl",
        "model",
        "best_model",
        "reward_stats.json",
        "evaluations.npz",
        CHECKPOINT_DIR,
        "tb",
        "monitor",
    }
)
"""The files and folders ``gpu-alloc train`` writes in a run folder."""
CHECKPOINT_COPIES = ("best_model.zip", "evaluations.npz")
"""Run files saved with each checkpoint, so that a resumed run rewinds them to the checkpoint."""
RLLIB_CHECKPOINT_COPIES = ("best_model", "evaluations.npz")
"""The same for an RLlib run, whose best model is a folder."""


@contextmanager
def training_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``run_dir`` (created if missing) while a run trains in it.

    Two processes training one folder would interleave its checkpoints, models and learning curve;
    the second is refused with a :class:`TrainError`. The lock is ``flock`` on the folder itself (no
    lock file), released when the process ends however it ends. Where ``fcntl`` is missing
    (Windows), no lock is taken. A folder this call created is removed again if the run leaves it
    empty (a run refused for its settings, say).
    """
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        if sys.platform == "win32":
            yield
            return
        import fcntl

        handle = os.open(run_dir, os.O_RDONLY)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise TrainError(
                    f"run folder {run_dir} is being trained by another process; wait for it to finish, "
                    "or stop it and continue the run with --resume"
                ) from None
            yield
        finally:
            os.close(handle)
    finally:
        if created and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()


def recorded_settings(run_dir: Path) -> tuple[ScenarioConfig, dict[str, Any]]:
    """The scenario and hyperparameters a run folder's ``config.json`` records, checked on reading."""
    recorded = load_run_config(run_dir)
    return ScenarioConfig.from_dict(recorded["scenario"]), dict(recorded["hyperparams"])


def never_checkpointed(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds only the files of a run that stopped before its first checkpoint.

    That is: nothing but run files, no whole checkpoint (a ``state.json``) and no final model, and either the
    ``config.json`` that ``gpu-alloc train`` writes or only the monitor logs it starts with.
    """
    entries = {entry.name for entry in run_dir.iterdir()}
    if not entries <= RUN_ENTRIES or (run_dir / CHECKPOINT_DIR / "state.json").exists():
        return False  # (a checkpoint counts once its state.json, written last, exists)
    if any((run_dir / models["final"]).exists() for models in MODEL_PATHS.values()):
        return False
    if "config.json" in entries:
        try:
            recorded = json.loads((run_dir / "config.json").read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return False
        return isinstance(recorded, dict) and recorded.get("algorithm") == "PPO" and "scenario" in recorded
    monitor = run_dir / "monitor"
    return entries <= {"monitor"} and all(
        entry.is_file() and entry.name.endswith(".monitor.csv") for entry in monitor.iterdir()
    )


def clear_run_files(run_dir: Path) -> None:
    """Remove the run files (and only those) from ``run_dir``."""
    for name in RUN_ENTRIES:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def rewind_to_checkpoint(run_dir: Path, state: Mapping[str, Any]) -> None:
    """Put back the learning curve and best model saved with the checkpoint.

    A run killed after its last checkpoint may have validated (and saved a best model) in the
    stretch that the resumed run trains again; those files would mix two histories. A checkpoint
    that records its ``copies`` restores them; an older one has none, so only the learning curve
    is cut back to the checkpoint's steps and the best model is kept.
    """
    if "copies" in state:
        for name in (*CHECKPOINT_COPIES, *RLLIB_CHECKPOINT_COPIES):
            target = run_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
            if name in state["copies"]:
                saved = run_dir / CHECKPOINT_DIR / name
                if saved.is_dir():
                    shutil.copytree(saved, target)
                else:
                    shutil.copyfile(saved, target)
        return
    log = run_dir / "evaluations.npz"
    if log.exists():
        with np.load(log) as data:
            arrays = {key: data[key] for key in data.files}
        kept = arrays["timesteps"] <= int(state["num_timesteps"])
        np.savez(log, **{key: value[kept] for key, value in arrays.items()})


@dataclass(frozen=True)
class TrainArgs:
    """Arguments of a training run (saved as ``args.json``)."""

    scenario: str
    seed: int
    timesteps: int
    run_dir: str
    hyperparams_file: str | None = None
    hp_overrides: dict[str, Any] | None = None
    scenario_overrides: dict[str, Any] | None = None
    checkpoint_interval_s: float = 120.0
    threads: int = 1
    backend: str = "sb3"
    env_runners: int = 0

    def validate(self) -> None:
        """Raise :class:`TrainError` naming any bad value."""
        if self.backend not in BACKENDS:
            raise TrainError(f"--backend must be one of {list(BACKENDS)}, got {self.backend!r}")
        if (
            isinstance(self.env_runners, bool)
            or not isinstance(self.env_runners, int)
            or self.env_runners < 0
        ):
            raise TrainError(f"--env-runners must be an integer >= 0, got {self.env_runners!r}")
        if self.env_runners and self.backend != "rllib":
            raise TrainError(
                f"--env-runners {self.env_runners} applies to --backend rllib (remote env runners); "
                "Stable-Baselines3 steps its environments in the training process: drop it"
            )
        if not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_TRAIN_SEED:
            raise TrainError(f"--seed must be an integer in [0, {MAX_TRAIN_SEED}], got {self.seed!r}")
        if not isinstance(self.timesteps, int) or self.timesteps < 1:
            raise TrainError(f"--timesteps must be a positive integer, got {self.timesteps!r}")
        if not self.checkpoint_interval_s >= 0.0:
            raise TrainError(
                f"--checkpoint-interval-s must be >= 0 seconds, got {self.checkpoint_interval_s!r}"
            )
        if self.threads < 1:
            raise TrainError(f"--threads must be >= 1, got {self.threads!r}")


def resume_args(
    run_dir: Path,
    timesteps: int | None,
    threads: int | None = None,
    checkpoint_interval_s: float | None = None,
) -> TrainArgs:
    """The saved arguments of ``run_dir``, with a new total of ``timesteps`` if given.

    ``threads`` and ``checkpoint_interval_s`` change how the resumed process runs, not what it
    trains, and replace the saved values when given.
    """
    saved = run_dir / "args.json"
    if not saved.exists():
        raise TrainError(f"--resume: {saved} does not exist; is {run_dir} a run folder?")
    try:
        data = json.loads(saved.read_text())
        data["run_dir"] = str(run_dir)
        if timesteps is not None:
            data["timesteps"] = timesteps
        if threads is not None:
            data["threads"] = threads
        if checkpoint_interval_s is not None:
            data["checkpoint_interval_s"] = checkpoint_interval_s
        return TrainArgs(**data)
    except json.JSONDecodeError as exc:
        raise TrainError(f"--resume: {saved} is not valid JSON ({exc}); the run folder is damaged") from None
    except TypeError as exc:
        raise TrainError(
            f"--resume: {saved} does not hold the arguments of this version of gpu-alloc train ({exc})"
        ) from None


def resume_settings(args: TrainArgs) -> tuple[ScenarioConfig, dict[str, Any]]:
    """The scenario and hyperparameters a resumed run continues with, its files rewound to the checkpoint.

    The run keeps what it started with, whatever the files of the package say now. Raises
    :class:`TrainError` when ``args.timesteps`` is below the checkpoint's steps.
    """
    run_dir = Path(args.run_dir)
    state = json.loads((run_dir / CHECKPOINT_DIR / "state.json").read_text())
    done = int(state["num_timesteps"])
    if args.timesteps < done:
        raise TrainError(
            f"--resume --timesteps {args.timesteps}: the run's checkpoint already has {done} steps; "
            f"pass a total of at least {done}"
        )
    config, hp = recorded_settings(run_dir)
    rewind_to_checkpoint(run_dir, state)
    return config, hp


def new_run_settings(args: TrainArgs) -> tuple[ScenarioConfig, dict[str, Any]]:
    """The scenario and hyperparameters of a new run, its folder checked (and cleared if restartable).

    Raises:
        TrainError: when the folder holds a run that reached a checkpoint (resume it instead).
    """
    from gpu_alloc_env.env import resolve_scenario
    from gpu_alloc_env.train.hyperparams import load_hyperparams

    run_dir = Path(args.run_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        if not never_checkpointed(run_dir):
            raise TrainError(
                f"run folder {run_dir} already exists and is not empty; pass --resume to continue it or "
                "choose another --run-dir"
            )
        clear_run_files(run_dir)
    config = resolve_scenario(args.scenario, args.scenario_overrides or {})
    hp = load_hyperparams(
        args.scenario, Path(args.hyperparams_file) if args.hyperparams_file else None, args.hp_overrides
    )
    return config, hp


def record_start(
    args: TrainArgs, config: ScenarioConfig, hp: Mapping[str, Any], command: str, backend: str = "sb3"
) -> None:
    """Write a new run's ``args.json``, ``config.json``, ``command.txt`` and ``git_revision.txt``.

    ``config.json`` names the backend only for RLlib runs (a missing one means Stable-Baselines3).
    """
    run_dir = Path(args.run_dir)
    recorded: dict[str, Any] = {"scenario": config.to_dict(), "hyperparams": dict(hp), "algorithm": "PPO"}
    if backend != "sb3":
        recorded["backend"] = backend
    write_json(run_dir / "args.json", args.__dict__)
    write_json(run_dir / "config.json", recorded)
    (run_dir / "command.txt").write_text(command + "\n")
    (run_dir / "git_revision.txt").write_text(git_revision() + "\n")


def record_resume(args: TrainArgs, command: str) -> None:
    """Keep a resumed run's folder describing the whole run: its new total and every command."""
    run_dir = Path(args.run_dir)
    write_json(run_dir / "args.json", args.__dict__)
    with (run_dir / "command.txt").open("a") as handle:
        handle.write(command + "\n")


def git_revision() -> str:
    """``<commit>`` of the source tree, with ``-dirty`` when it has local changes; ``unknown`` outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def command_line() -> str:
    """This process's command line, as recorded in ``command.txt``."""
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])


def segment(run_dir: Path) -> int:
    """How many training segments (a start and each resume) the run has logged."""
    folder = run_dir / "monitor"
    return len(list(folder.glob("*.monitor.csv"))) if folder.exists() else 0


@contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit(143)`` while the block runs, so that its cleanup runs.

    Only in the main thread (where Python delivers signals); elsewhere the block runs as is. It
    replaces any handler set before it, Ray's included (``ray.init`` installs one that aborts).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        # (None: the previous handler was not set from Python, as Ray's own is not)
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
