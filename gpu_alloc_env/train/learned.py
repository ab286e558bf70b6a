"""A trained run as a policy with the same ``predict`` as the baselines, acting in replicas."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from stable_baselines3 import PPO

from gpu_alloc_env.config import ConfigError, ScenarioConfig
from gpu_alloc_env.observation import ObservationLayout
from gpu_alloc_env.train.actions import ActionTransform, transform_from_hyperparams
from gpu_alloc_env.train.stepper import flatten_history, push_history, start_history

MODEL_FILES = {"best": "best_model.zip", "final": "model.zip"}
"""The models of a Stable-Baselines3 run (``backend`` ``sb3``), by ``--model`` choice."""
BACKENDS = ("sb3", "rllib")
"""The learner libraries ``gpu-alloc train --backend`` trains with."""
MODEL_PATHS = {"sb3": MODEL_FILES, "rllib": {"best": "best_model", "final": "model"}}
"""The models of a run folder by backend, then ``--model`` choice: SB3's ``.zip`` files, RLlib's
``RLModule`` checkpoint folders."""
LAST_CHECKPOINTS = {"sb3": "last.zip", "rllib": "last"}
"""The resumable checkpoint inside ``checkpoints/`` by backend (RLlib's is an ``Algorithm`` folder)."""
LEARNED_POLICY_NAMES = {"sb3": "ppo", "rllib": "ppo-rllib"}
"""The policy name of a backend's runs in evaluation tables, so that the two are never pooled."""


RUN_CONFIG_KEYS = ("scenario", "hyperparams")
"""Keys every ``config.json`` written by ``gpu-alloc train`` holds."""

POLICY_FIELDS: tuple[str, ...] = ("capacity_gpus", "decision_interval_s", "rate_window_s")
"""Scenario fields a trained policy depends on, whatever the workload.

``capacity_gpus`` scales the observation's GPU fractions and bounds the allocations of the heuristic
inside the ``residual`` and ``need_scale`` transforms; ``decision_interval_s`` is how often the
policy acts, and with ``rate_window_s`` it sets how the arrival-rate features of the observation are
smoothed. ``episode_length_s`` is left out on purpose: the observation gives the elapsed time as a
fraction of the episode, and no transform reads it.
"""
AGENT_POLICY_FIELDS: tuple[str, ...] = (
    "role",
    "tensor_parallel",
    "max_replicas",
    "priority",
    "request_slo_s",
)
"""Fields of every agent a trained policy depends on: the observation's scales (``tensor_parallel``
turns replicas into GPU fractions, ``max_replicas`` and ``priority`` are features, ``request_slo_s``
scales the SLO pressure), the ``absolute`` and ``residual`` ranges (``max_replicas``) and the
heuristic inside the ``residual`` and ``need_scale`` transforms (``tensor_parallel``,
``max_replicas``, ``priority``); ``role`` marks the coordinator. Token distributions, models,
serving speeds and cold starts are the workload's and the platform's, and may differ."""


def _read_json(path: Path) -> Any:
    """The JSON value of ``path``; a ``ValueError`` naming the file and the position when it is invalid."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); the run "
            "folder is damaged: restore the file or train the run again"
        ) from None


def load_run_config(run_dir: Path) -> dict[str, Any]:
    """The ``config.json`` of a run folder, checked to hold a valid scenario and hyperparameters.

    Raises:
        ValueError: naming the file, when it is missing, is not valid JSON, lacks ``scenario`` or
            ``hyperparams`` (a folder of another version of ``gpu-alloc train``) or holds an invalid
            scenario.
    """
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise ValueError(f"{run_dir} is not a run folder of gpu-alloc train: {path} does not exist")
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ValueError(
            f"{path} holds {type(data).__name__} {str(data)[:40]!r}, not the mapping gpu-alloc train "
            "writes; the run folder is damaged: restore the file or train the run again"
        )
    missing = [key for key in RUN_CONFIG_KEYS if key not in data]
    if missing:
        keys = " and ".join(repr(key) for key in missing)
        raise ValueError(
            f"{path} lacks the key {keys}: {run_dir} is not a run folder of this version of gpu-alloc "
            "train (older runs recorded less); train the run again with gpu-alloc train"
        )
    if not isinstance(data["hyperparams"], dict):
        raise ValueError(
            f"{path}: 'hyperparams' must be a mapping of hyperparameters, got {data['hyperparams']!r}; "
            "restore the file or train the run again"
        )
    try:
        ScenarioConfig.from_dict(data["scenario"])
    except ConfigError as exc:
        raise ValueError(
            f"{path}: the recorded scenario is invalid for this version of gpu-alloc ({exc}); train the "
            "run again with gpu-alloc train"
        ) from None
    return data


def run_backend(run_dir: Path) -> str:
    """The learner library that trained ``run_dir`` (``config.json``'s ``backend``; ``sb3`` if unsaid).

    Raises:
        ValueError: naming the file, when ``config.json`` names a backend this version lacks.
    """
    path = Path(run_dir) / "config.json"
    data = _read_json(path) if path.exists() else {}
    backend = data.get("backend", "sb3") if isinstance(data, dict) else "sb3"
    if backend not in BACKENDS:
        raise ValueError(
            f"{path} names the backend {backend!r}, which this version of gpu-alloc does not know "
            f"(it knows {list(BACKENDS)}); evaluate the run with the version that trained it"
        )
    return str(backend)


def model_path(run_dir: Path, model: str) -> Path:
    """The ``best`` or ``final`` model of ``run_dir``, for the backend that trained it."""
    return Path(run_dir) / MODEL_PATHS[run_backend(run_dir)][model]


def last_checkpoint(run_dir: Path) -> Path:
    """The resumable checkpoint of ``run_dir`` (``checkpoints/last.zip``, or RLlib's ``checkpoints/last``)."""
    return Path(run_dir) / "checkpoints" / LAST_CHECKPOINTS[run_backend(run_dir)]


def has_checkpoint(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a whole checkpoint to resume: the checkpoint and its ``state.json``.

    ``state.json`` is written last, so a run killed while writing its first checkpoint has none and
    is started afresh instead.
    """
    run_dir = Path(run_dir)
    return (
        run_dir.is_dir()
        and (run_dir / "checkpoints" / "state.json").exists()
        and last_checkpoint(run_dir).exists()
    )


def missing_model_message(run_dir: Path, model: str) -> str:
    """Why ``model`` (``best`` or ``final``) of ``run_dir`` is missing, and what to do instead."""
    run_dir = Path(run_dir)
    path = model_path(run_dir, model)
    resume = f"resume it with `gpu-alloc train --run-dir {run_dir} --resume`"
    if model == "final":
        other = (
            ", or evaluate its best model so far with --model best"
            if model_path(run_dir, "best").exists()
            else ""
        )
        return f"{path} does not exist: run {run_dir} has not finished training; {resume}{other}"
    if model_path(run_dir, "final").exists():
        return (
            f"{path} does not exist: run {run_dir} saved no best model (no validation ran, or the "
            "file was removed); evaluate its final model with --model final"
        )
    return (
        f"{path} does not exist: run {run_dir} has not reached its first validation and saved no "
        f"model yet; {resume}"
    )


def config_differences(old: ScenarioConfig, new: ScenarioConfig) -> list[tuple[str, Any, Any]]:
    """``(dotted path, old value, new value)`` of every field in which two scenarios differ.

    Agents are named by their names (``agents.code.max_replicas``) when both scenarios have the same
    agents in the same order; otherwise the difference is ``agents`` as a whole.
    """
    mine, theirs = old.to_dict(), new.to_dict()
    found: list[tuple[str, Any, Any]] = []
    if [a.name for a in old.agents] == [a.name for a in new.agents]:
        for agent, a, b in zip(old.agents, mine.pop("agents"), theirs.pop("agents"), strict=True):
            found += json_differences(a, b, f"agents.{agent.name}")
    found += json_differences(mine, theirs, "")
    return sorted(found, key=lambda item: (item[0] != "name", item[0].startswith("agents."), item[0]))


def is_policy_field(path: str) -> bool:
    """Whether a trained policy depends on the scenario field at the dotted ``path``.

    Paths are those of :func:`config_differences`: :data:`POLICY_FIELDS`, an agent's
    :data:`AGENT_POLICY_FIELDS`, or ``agents`` as a whole.
    """
    if path == "agents" or path in POLICY_FIELDS:
        return True
    return path.startswith("agents.") and path.rsplit(".", 1)[-1] in AGENT_POLICY_FIELDS


def json_differences(old: Any, new: Any, prefix: str) -> list[tuple[str, Any, Any]]:
    """``(dotted path, old value, new value)`` wherever two JSON values differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            found
            for key in sorted(set(old) | set(new))
            for found in json_differences(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else key)
        ]
    return [] if old == new else [(prefix, old, new)]


def show_value(value: Any, limit: int = 48) -> str:
    """``value`` as compact JSON, cut to about ``limit`` characters."""
    text = json.dumps(value, separators=(", ", ": "), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def checkpoint_steps(run_dir: Path) -> int | None:
    """Steps of the run's last checkpoint (``checkpoints/state.json``); None without one."""
    state = Path(run_dir) / "checkpoints" / "state.json"
    return int(_read_json(state)["num_timesteps"]) if state.exists() else None


def training_record(run_dir: Path) -> dict[str, float]:
    """What a run's own logs say about its training: steps, wall-clock seconds, best validation.

    ``timesteps`` comes from ``checkpoints/state.json``; ``wall_s`` is the sum over the run's
    training segments (one per start or resume) of the monitor log's last episode time, so it
    leaves out only the seconds after a segment's last finished episode; ``best_step`` and
    ``best_validation_return`` come from ``evaluations.npz``. Missing logs give NaN.
    """
    run_dir = Path(run_dir)
    record = {
        "timesteps": math.nan,
        "wall_s": math.nan,
        "best_step": math.nan,
        "best_validation_return": math.nan,
    }
    steps = checkpoint_steps(run_dir)
    if steps is not None:
        record["timesteps"] = float(steps)
    segments = sorted((run_dir / "monitor").glob("*.monitor.csv"))
    if segments:
        wall = 0.0
        for segment in segments:
            rows = [line for line in segment.read_text().splitlines()[2:] if line.strip()]
            wall += float(rows[-1].split(",")[2]) if rows else 0.0
        record["wall_s"] = wall
    evaluations = run_dir / "evaluations.npz"
    if evaluations.exists():
        with np.load(evaluations) as data:
            means = np.asarray(data["results"], dtype=float).mean(axis=1)
            if means.size:
                best = int(np.argmax(means))
                record["best_step"] = float(data["timesteps"][best])
                record["best_validation_return"] = float(means[best])
    return record


class _Model(Protocol):
    """What :class:`LearnedPolicy` asks of a model: Stable-Baselines3's ``predict``."""

    def predict(self, observation: NDArray[Any], *, deterministic: bool = ...) -> tuple[Any, Any]: ...


def load_model(path: Path, backend: str) -> _Model:
    """The model saved at ``path`` by ``backend``, on the CPU, with Stable-Baselines3's ``predict``.

    An RLlib model needs the ``ray`` extra (it loads without starting Ray); without it the error says
    how to install it.
    """
    if backend == "sb3":
        return PPO.load(path, device="cpu")
    try:
        from gpu_alloc_env.train.rllib_model import RLlibModel
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("ray"):
            raise
        raise ValueError(
            f"{path} was trained with RLlib (backend 'rllib') and loading it needs Ray: install the ray "
            "extra, pip install -e '.[train,ray]'"
        ) from None
    return RLlibModel(path)


class LearnedPolicy:
    """The model of a run folder, with its action parameterisation, on raw observations.

    Args:
        run_dir: a folder written by ``gpu-alloc train``.
        model: ``"best"`` (best validation return) or ``"final"``.
        label: the run's name in tables and plots (default: the folder's name).
    """

    def __init__(self, run_dir: Path, model: str = "best", label: str | None = None) -> None:
        if model not in MODEL_FILES:
            raise ValueError(f"model must be one of {sorted(MODEL_FILES)}, got {model!r}")
        self.run_dir = Path(run_dir)
        self.label = label or self.run_dir.name
        self.model_choice = model
        data = load_run_config(self.run_dir)
        self.config = ScenarioConfig.from_dict(data["scenario"])
        hp = data["hyperparams"]
        self.transform: ActionTransform = transform_from_hyperparams(self.config, hp)
        self.action_repeat = int(hp.get("action_repeat", 1))
        self.frame_stack = int(hp.get("frame_stack", 1))  # runs from before frame_stack stacked nothing
        args_file = self.run_dir / "args.json"
        self.train_seed = int(_read_json(args_file)["seed"]) if args_file.exists() else -1
        self.backend = run_backend(self.run_dir)
        self.policy_name = LEARNED_POLICY_NAMES[self.backend]
        path = model_path(self.run_dir, model)
        if not path.exists():
            raise ValueError(missing_model_message(self.run_dir, model))
        self.model: _Model = load_model(path, self.backend)
        self.layout = ObservationLayout(self.config)

    def check_compatible(self, config: ScenarioConfig) -> None:
        """Raise ``ValueError`` unless this policy can act in ``config``.

        It can when ``config`` has the same agents (so the same observation) and the same
        :data:`POLICY_FIELDS` and :data:`AGENT_POLICY_FIELDS` as the run's training scenario: the
        policy decodes observations and turns its actions into replicas with those values. The workload
        (pattern, rate, trace and its part, token distributions) and the episode length may differ.
        """
        mine = [a.name for a in self.config.agents]
        theirs = [a.name for a in config.agents]
        size = ObservationLayout(config).size
        if mine != theirs or size != self.layout.size:
            raise ValueError(
                f"run {self.run_dir} was trained on scenario {self.config.name!r} with agents {mine} "
                f"(observation of {self.layout.size}) and cannot act in scenario {config.name!r} with "
                f"agents {theirs} (observation of {size}); evaluate it on a scenario with the same "
                "agents, or train a run on this one"
            )
        differ = [item for item in config_differences(self.config, config) if is_policy_field(item[0])]
        if differ:
            shown = ", ".join(f"{path} (trained with {old!r}, here {new!r})" for path, old, new in differ)
            raise ValueError(
                f"run {self.run_dir} cannot act in scenario {config.name!r}: its observation decoding and "
                f"action transform use the values of its training scenario {self.config.name!r}, and "
                f"{shown} {'differs' if len(differ) == 1 else 'differ'}; evaluate it with the run's values "
                "(drop the --set or scenario that changes them), or train a run on this scenario"
            )

    def predict(
        self,
        observation: NDArray[np.floating],
        state: tuple[NDArray[Any], ...] | None = None,
        episode_start: NDArray[np.bool_] | None = None,
        deterministic: bool = True,
    ) -> tuple[NDArray[np.float32], tuple[NDArray[Any], ...] | None]:
        """Desired replicas per agent: (N,) for one observation, (B, N) for a batch.

        A run trained with ``action_repeat`` k decides every k steps and holds its action between,
        as in training: ``state`` is ``(held actions (B, N), steps left (B,))``, which the caller
        passes back (the evaluation harness does, as SB3's ``evaluate_policy`` does), with
        ``episode_start`` true for an environment whose episode begins. Without a state, or with
        k = 1, every call decides afresh.

        A run trained with ``frame_stack`` K > 1 sees, at each decision, its last K decision-time
        observations, oldest first, as in training (:class:`~gpu_alloc_env.train.stepper.PolicyStepper`):
        the state then also holds that (B, K, D) history, updated at decisions only and started
        afresh (the first observation K times) where ``episode_start`` is true. Without a state
        every call starts a history.
        """
        obs = np.asarray(observation, dtype=np.float32)
        batch = obs.reshape(-1, self.layout.size)
        rows = batch.shape[0]
        decide = np.ones(rows, dtype=bool)
        starts = np.ones(rows, dtype=bool)
        history: NDArray[np.float32] | None = None
        if (self.action_repeat > 1 or self.frame_stack > 1) and state is not None:
            held, left = state[0], state[1]
            if self.frame_stack > 1:
                history = state[2]
            decide = left <= 0
            starts = np.zeros(rows, dtype=bool)
            if episode_start is not None:
                starts = np.asarray(episode_start, dtype=bool).reshape(rows)
                decide |= starts
        seen = batch
        if self.frame_stack > 1:
            history = self._history(history, batch, decide, starts)
            seen = flatten_history(history)
        if decide.all():
            action, _ = self.model.predict(seen, deterministic=deterministic)
            held = np.asarray(action).reshape(rows, -1)
            left = np.zeros(rows, dtype=np.int64)
        elif decide.any():
            action, _ = self.model.predict(seen[decide], deterministic=deterministic)
            held = held.copy()
            held[decide] = np.asarray(action).reshape(int(decide.sum()), -1)
        left = np.where(decide, self.action_repeat, left) - 1
        replicas = self.transform.to_replicas(held, batch)
        out = replicas.astype(np.float32)
        new_state = state
        if history is not None:
            new_state = (held, left, history)
        elif self.action_repeat > 1:
            new_state = (held, left)
        return (out[0] if obs.ndim == 1 else out), new_state

    def _history(
        self,
        history: NDArray[np.float32] | None,
        batch: NDArray[np.float32],
        decide: NDArray[np.bool_],
        starts: NDArray[np.bool_],
    ) -> NDArray[np.float32]:
        """The (B, K, D) history after this step: ``batch`` added where a decision is made.

        Rows whose episode starts (``starts``), and every row without a history, start afresh.
        """
        if history is None:
            return start_history(batch, self.frame_stack)
        history = history.copy()
        history[decide] = push_history(history[decide], batch[decide])
        history[starts] = start_history(batch[starts], self.frame_stack)
        return history

    def __repr__(self) -> str:
        return f"LearnedPolicy({str(self.run_dir)!r})"
