"""Train a PPO allocator with Stable-Baselines3: ``gpu-alloc train``.

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
| ``evaluations.npz``         | validation returns over training (the learning curve)          |
| ``checkpoints/``            | ``last.zip``, ``state.json`` (steps), reward statistics and     |
|                             | copies of ``best_model.zip`` and ``evaluations.npz``; written   |
|                             | every ``--checkpoint-interval-s`` and at the end               |
| ``tb/``                     | TensorBoard logs                                               |
| ``monitor/``                | per-episode training returns                                   |

Seeds (:mod:`gpu_alloc_env.seeds`): training environment ``e`` of a run with seed ``K`` starts from
seed ``1000 K + e`` and its generator continues across episodes; validation uses seeds from
:data:`~gpu_alloc_env.seeds.VALIDATION_SEED_BASE`; ``gpu-alloc evaluate`` uses seeds from
:data:`~gpu_alloc_env.seeds.EVALUATION_SEED_BASE`, which no training or validation episode uses.
"""

from __future__ import annotations

import inspect
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, EvalCallback
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.env import resolve_scenario
from gpu_alloc_env.scenarios import SCENARIOS
from gpu_alloc_env.seeds import MAX_TRAIN_SEED, VALIDATION_SEED_BASE, training_seed
from gpu_alloc_env.train.actions import transform_from_hyperparams
from gpu_alloc_env.train.learned import load_run_config
from gpu_alloc_env.train.vec_env import BatchVecEnv

ENV_KEYS = (
    "n_envs",
    "action",
    "residual_scale",
    "max_need_factor",
    "normalize_reward",
    "eval_freq_steps",
    "eval_episodes",
    "train_reward",
    "train_overrides",
)
POLICY_KEYS = ("net_arch", "log_std_init")
CHECKPOINT_DIR = "checkpoints"


class TrainError(ValueError):
    """A training request that cannot be carried out; the message says what to change."""


def default_hyperparams_path() -> Path:
    """The bundled ``train/hyperparams.yml``."""
    return Path(str(resources.files("gpu_alloc_env.train").joinpath("hyperparams.yml")))


def load_hyperparams(
    scenario: str, path: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``default`` merged with the block of ``scenario`` (if any), then ``overrides``."""
    source = path or default_hyperparams_path()
    try:
        table = yaml.safe_load(Path(source).read_text())
    except FileNotFoundError as exc:
        raise TrainError(f"hyperparameter file {source} does not exist; pass an existing YAML file") from exc
    except yaml.YAMLError as exc:
        raise TrainError(f"hyperparameter file {source} is not valid YAML: {exc}") from exc
    if not isinstance(table, dict) or not isinstance(table.get("default"), dict):
        raise TrainError(f"hyperparameter file {source} needs a mapping with a 'default' block")
    unknown = sorted(str(name) for name in table if name != "default" and name not in SCENARIOS)
    if unknown:
        raise TrainError(
            f"hyperparameter file {source}: block(s) {unknown} name no scenario, so they would never "
            f"be used; name a block 'default' or one of {sorted(SCENARIOS)}"
        )
    for name, block in table.items():
        if block is not None and not isinstance(block, dict):
            raise TrainError(
                f"hyperparameter file {source}: block {name!r} must be a mapping of hyperparameters, "
                f"got {block!r}"
            )
    resolved = dict(table["default"])
    resolved.update(table.get(scenario) or {})
    resolved.update(overrides or {})
    resolved = {key: _number_if_numeric(value) for key, value in resolved.items()}
    _check_hyperparams(resolved, source)
    for key, action in (("residual_scale", "residual"), ("max_need_factor", "need_scale")):
        if key in (overrides or {}) and resolved.get("action") != action:
            raise TrainError(
                f"--hp {key} applies to action={action}, but the run's action is "
                f"{resolved.get('action')!r}; add --hp action={action} or drop {key}"
            )
    return resolved


RESERVED_KEYS = {
    "seed": "--seed",
    "verbose": "the command (it is quiet)",
    "device": "the command (it trains on the CPU)",
    "tensorboard_log": "the run folder (tb/)",
    "_init_setup_model": "Stable-Baselines3",
}
"""PPO arguments that ``gpu-alloc train`` sets itself, and what sets them."""
_POSITIVE_INTS = ("n_envs", "eval_freq_steps", "eval_episodes", "n_steps", "batch_size", "n_epochs")
_POSITIVE = ("learning_rate", "clip_range", "max_grad_norm", "max_need_factor", "residual_scale")
_NON_NEGATIVE = ("ent_coef", "vf_coef")
_UNIT = ("gamma", "gae_lambda")
_OPTIONAL_POSITIVE = ("clip_range_vf", "target_kl")
_BOOLS = ("normalize_reward", "normalize_advantage", "use_sde")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def _check_hyperparams(hp: Mapping[str, Any], source: Path | str) -> None:
    accepted = set(inspect.signature(PPO.__init__).parameters) - {"self", "policy", "env"}
    reserved = sorted(set(hp) & set(RESERVED_KEYS))
    if reserved:
        raise TrainError(
            f"hyperparameter(s) {reserved} (from {source} or --hp) are set by "
            f"{', '.join(RESERVED_KEYS[key] for key in reserved)}; remove them"
        )
    unknown = sorted(set(hp) - accepted - set(ENV_KEYS) - set(POLICY_KEYS))
    if unknown:
        raise TrainError(
            f"unknown hyperparameter(s) {unknown} (from {source} or --hp); valid keys are the "
            f"environment keys {list(ENV_KEYS)}, the policy keys {list(POLICY_KEYS)} and "
            "stable_baselines3.PPO's arguments"
        )

    def refuse(key: str, rule: str) -> TrainError:
        return TrainError(f"hyperparameter {key} must be {rule}, got {hp[key]!r} (from {source} or --hp)")

    for key in _POSITIVE_INTS:
        if key in hp and (not isinstance(hp[key], int) or isinstance(hp[key], bool) or hp[key] < 1):
            raise refuse(key, "a positive integer")
    for key in _POSITIVE:
        if key in hp and not callable(hp[key]) and not (_is_number(hp[key]) and hp[key] > 0):
            raise refuse(key, "a positive number, for example 3.0e-4")
    for key in _NON_NEGATIVE:
        if key in hp and not (_is_number(hp[key]) and hp[key] >= 0):
            raise refuse(key, "a number >= 0")
    for key in _UNIT:
        if key in hp and not (_is_number(hp[key]) and 0 < hp[key] <= 1):
            raise refuse(key, "a number in (0, 1], for example 0.99")
    for key in _OPTIONAL_POSITIVE:
        if hp.get(key) is not None and not (_is_number(hp[key]) and hp[key] > 0):
            raise refuse(key, "a positive number or null")
    for key in _BOOLS:
        if key in hp and not isinstance(hp[key], bool):
            raise refuse(key, "true or false")
    if "log_std_init" in hp and not _is_number(hp["log_std_init"]):
        raise refuse("log_std_init", "a number, for example -2.0")
    arch = hp.get("net_arch")
    if arch is not None and not (
        isinstance(arch, list) and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in arch)
    ):
        raise refuse("net_arch", "a list of positive layer sizes, for example [64, 64]")
    if hp.get("policy_kwargs") is not None and not isinstance(hp["policy_kwargs"], dict):
        raise refuse("policy_kwargs", "a mapping of Stable-Baselines3 policy arguments")
    for key in ("train_reward", "train_overrides"):
        if hp.get(key) is not None and not isinstance(hp[key], dict):
            raise refuse(key, "a mapping of fields")


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

    def validate(self) -> None:
        """Raise :class:`TrainError` naming any bad value."""
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


class ValidationCallback(EvalCallback):
    """SB3's ``EvalCallback`` on fixed validation seeds, continuing an earlier log when resumed."""

    def __init__(self, eval_env: VecEnv, seed_base: int, **kwargs: Any) -> None:
        super().__init__(eval_env, **kwargs)
        self.seed_base = seed_base

    def restore(self, log_file: Path) -> None:
        """Continue the learning curve and best return saved in ``log_file`` (``evaluations.npz``)."""
        if not log_file.exists():
            return
        with np.load(log_file) as data:
            self.evaluations_timesteps = [int(t) for t in data["timesteps"]]
            self.evaluations_results = [list(r) for r in data["results"]]
            self.evaluations_length = [list(n) for n in data["ep_lengths"]]
        if self.evaluations_results:
            self.best_mean_reward = float(max(np.mean(r) for r in self.evaluations_results))

    def _on_step(self) -> bool:
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
            self.eval_env.seed(self.seed_base)
        return super()._on_step()


class CheckpointCallback(BaseCallback):
    """Saves the model (and reward statistics) every ``interval_s`` wall seconds, at rollout ends."""

    def __init__(self, run_dir: Path, interval_s: float) -> None:
        super().__init__()
        self.folder = run_dir / CHECKPOINT_DIR
        self.interval_s = interval_s
        self._last = time.monotonic()

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if time.monotonic() - self._last >= self.interval_s:
            self.save()

    def save(self) -> None:
        """Write ``checkpoints/last.zip`` atomically, then its statistics and step count."""
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / "last.partial.zip"
        self.model.save(partial)
        env = self.model.get_env()
        if isinstance(env, VecNormalize):
            env.save(str(self.folder / "vecnormalize.partial.pkl"))
            os.replace(self.folder / "vecnormalize.partial.pkl", self.folder / "vecnormalize.pkl")
        os.replace(partial, self.folder / "last.zip")
        copies = []
        for name in CHECKPOINT_COPIES:
            current = self.folder.parent / name
            if current.exists():
                shutil.copyfile(current, self.folder / f"{name}.partial")
                os.replace(self.folder / f"{name}.partial", self.folder / name)
                copies.append(name)
            else:
                (self.folder / name).unlink(missing_ok=True)
        state = {
            "num_timesteps": int(self.model.num_timesteps),
            "saved_unix_s": time.time(),
            "copies": copies,
        }
        (self.folder / "state.json").write_text(json.dumps(state) + "\n")
        self._last = time.monotonic()


def training_config(config: ScenarioConfig, hp: Mapping[str, Any]) -> ScenarioConfig:
    """The scenario of the training environments: ``config`` with the shaping of ``hp`` applied.

    ``train_overrides`` (scenario fields, e.g. a tighter ``task_slo_s``) and ``train_reward``
    (reward weights) change what the policy is trained on; validation and evaluation keep
    ``config``.
    """
    overrides = dict(hp.get("train_overrides") or {})
    if hp.get("train_reward"):
        overrides["reward"] = dict(hp["train_reward"])
    return config.replace(**overrides) if overrides else config


def build_env(
    config: ScenarioConfig, hp: Mapping[str, Any], num_envs: int, monitor_file: Path | None
) -> VecEnv:
    """The batched environment of a run, monitored, with reward normalisation if configured."""
    transform = transform_from_hyperparams(config, dict(hp))
    env: VecEnv = VecMonitor(
        BatchVecEnv(config, num_envs, transform), filename=str(monitor_file) if monitor_file else None
    )
    if hp.get("normalize_reward", False):
        env = VecNormalize(env, norm_obs=False, norm_reward=True, gamma=float(hp.get("gamma", 0.99)))
    return env


def ppo_kwargs(hp: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of ``stable_baselines3.PPO`` among the hyperparameters."""
    kwargs = {k: v for k, v in hp.items() if k not in ENV_KEYS and k not in POLICY_KEYS}
    # policy_kwargs, when given, adds to (and overrides) the policy keys.
    policy = {**{k: hp[k] for k in POLICY_KEYS if k in hp}, **(hp.get("policy_kwargs") or {})}
    if policy:
        kwargs["policy_kwargs"] = policy
    return kwargs


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _command_line() -> str:
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])


def _segment(run_dir: Path) -> int:
    folder = run_dir / "monitor"
    return len(list(folder.glob("*.monitor.csv"))) if folder.exists() else 0


RUN_ENTRIES = frozenset(
    {
        "config.json",
        "args.json",
        "command.txt",
        "git_revision.txt",
        "model.zip",
        "best_model.zip",
        "vecnormalize.pkl",
        "evaluations.npz",
        CHECKPOINT_DIR,
        "tb",
        "monitor",
    }
)
"""The files and folders ``gpu-alloc train`` writes in a run folder."""
CHECKPOINT_COPIES = ("best_model.zip", "evaluations.npz")
"""Run files saved with each checkpoint, so that a resumed run rewinds them to the checkpoint."""


def recorded_settings(run_dir: Path) -> tuple[ScenarioConfig, dict[str, Any]]:
    """The scenario and hyperparameters a run folder's ``config.json`` records, checked on reading."""
    recorded = load_run_config(run_dir)
    return ScenarioConfig.from_dict(recorded["scenario"]), dict(recorded["hyperparams"])


def never_checkpointed(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds only the files of a run that stopped before its first checkpoint.

    That is: nothing but run files, no checkpoint and no final model, and either the
    ``config.json`` that ``gpu-alloc train`` writes or only the monitor logs it starts with.
    """
    entries = {entry.name for entry in run_dir.iterdir()}
    if not entries <= RUN_ENTRIES or (run_dir / CHECKPOINT_DIR / "last.zip").exists():
        return False
    if (run_dir / "model.zip").exists():
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


def _clear_run_files(run_dir: Path) -> None:
    """Remove the run files (and only those) from ``run_dir``."""
    for name in RUN_ENTRIES:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _rewind_to_checkpoint(run_dir: Path, state: Mapping[str, Any]) -> None:
    """Put back the learning curve and best model saved with the checkpoint.

    A run killed after its last checkpoint may have validated (and saved a best model) in the
    stretch that the resumed run trains again; those files would mix two histories. A checkpoint
    that records its ``copies`` restores them; an older one has none, so only the learning curve
    is cut back to the checkpoint's steps and the best model is kept.
    """
    if "copies" in state:
        for name in CHECKPOINT_COPIES:
            if name in state["copies"]:
                shutil.copyfile(run_dir / CHECKPOINT_DIR / name, run_dir / name)
            else:
                (run_dir / name).unlink(missing_ok=True)
        return
    log = run_dir / "evaluations.npz"
    if log.exists():
        with np.load(log) as data:
            arrays = {key: data[key] for key in data.files}
        kept = arrays["timesteps"] <= int(state["num_timesteps"])
        np.savez(log, **{key: value[kept] for key, value in arrays.items()})


def train(
    args: TrainArgs,
    resume: bool = False,
    progress_bar: bool = True,
    verbose: int = 0,
    command: str | None = None,
) -> Path:
    """Train (or resume) the run ``args`` describes; returns the run folder.

    ``command`` is the command line recorded in ``command.txt`` (default: this process's).
    """
    command = command or _command_line()
    import torch

    args.validate()
    run_dir = Path(args.run_dir)
    if resume:
        checkpoint = run_dir / CHECKPOINT_DIR / "last.zip"
        if not checkpoint.exists():
            raise TrainError(f"--resume: {checkpoint} does not exist; start the run again without --resume")
        state = json.loads((run_dir / CHECKPOINT_DIR / "state.json").read_text())
        done = int(state["num_timesteps"])
        if args.timesteps < done:
            raise TrainError(
                f"--resume --timesteps {args.timesteps}: the run's checkpoint already has {done} steps; "
                f"pass a total of at least {done}"
            )
        # The run keeps the scenario and hyperparameters it started with, whatever the files say now.
        config, hp = recorded_settings(run_dir)
        _rewind_to_checkpoint(run_dir, state)
    else:
        if run_dir.exists() and any(run_dir.iterdir()):
            if not never_checkpointed(run_dir):
                raise TrainError(
                    f"run folder {run_dir} already exists and is not empty; pass --resume to continue "
                    "it or choose another --run-dir"
                )
            _clear_run_files(run_dir)
        config = resolve_scenario(args.scenario, args.scenario_overrides or {})
        hp = load_hyperparams(
            args.scenario, Path(args.hyperparams_file) if args.hyperparams_file else None, args.hp_overrides
        )
    torch.set_num_threads(args.threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "monitor").mkdir(exist_ok=True)
    monitor_file = run_dir / "monitor" / f"train-{_segment(run_dir)}"
    train_config = training_config(config, hp)
    env = build_env(train_config, hp, int(hp["n_envs"]), monitor_file)
    eval_env = build_env(config, {**hp, "normalize_reward": False}, int(hp["eval_episodes"]), None)
    if isinstance(env, VecNormalize):
        eval_env = VecNormalize(eval_env, training=False, norm_obs=False, norm_reward=False)

    if resume:
        stats = run_dir / CHECKPOINT_DIR / "vecnormalize.pkl"
        if isinstance(env, VecNormalize) and stats.exists():
            env = VecNormalize.load(str(stats), env.venv)
            env.training = True
        model = PPO.load(run_dir / CHECKPOINT_DIR / "last.zip", env=env, device="cpu")
        remaining = args.timesteps - model.num_timesteps
        # The folder keeps describing the whole run: its total and every command that trained it.
        _write_json(run_dir / "args.json", args.__dict__)
        with (run_dir / "command.txt").open("a") as handle:
            handle.write(command + "\n")
    else:
        _write_json(run_dir / "args.json", args.__dict__)
        _write_json(
            run_dir / "config.json",
            {"scenario": config.to_dict(), "hyperparams": hp, "algorithm": "PPO"},
        )
        (run_dir / "command.txt").write_text(command + "\n")
        (run_dir / "git_revision.txt").write_text(git_revision() + "\n")
        env.seed(training_seed(args.seed))
        model = PPO(
            "MlpPolicy",
            env,
            seed=args.seed,
            device="cpu",
            verbose=verbose,
            tensorboard_log=str(run_dir / "tb"),
            **ppo_kwargs(hp),
        )
        remaining = args.timesteps

    checkpoints = CheckpointCallback(run_dir, args.checkpoint_interval_s)
    validation = ValidationCallback(
        eval_env,
        VALIDATION_SEED_BASE,
        n_eval_episodes=int(hp["eval_episodes"]),
        eval_freq=max(int(hp["eval_freq_steps"]) // int(hp["n_envs"]), 1),
        best_model_save_path=str(run_dir),
        log_path=str(run_dir),
        deterministic=True,
        verbose=verbose,
    )
    validation.restore(run_dir / "evaluations.npz")
    if remaining > 0:
        model.learn(
            total_timesteps=remaining,
            callback=CallbackList([checkpoints, validation]),
            reset_num_timesteps=not resume,
            tb_log_name="PPO",
            progress_bar=progress_bar,
        )
    model.save(run_dir / "model.zip")
    if isinstance(env, VecNormalize):
        env.save(str(run_dir / "vecnormalize.pkl"))
    if not (run_dir / "best_model.zip").exists():
        model.save(run_dir / "best_model.zip")
    checkpoints.init_callback(model)
    checkpoints.save()
    return run_dir


def _number_if_numeric(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; read such a string as the number it spells."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_hp_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs with YAML values (``--hp learning_rate=1e-4 --hp net_arch=[128,128]``)."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise TrainError(f"--hp {item!r} is not KEY=VALUE; write for example --hp learning_rate=1e-4")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise TrainError(f"--hp {item!r}: the value is not valid YAML ({exc})") from exc
        overrides[key] = _number_if_numeric(value)
    return overrides


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
