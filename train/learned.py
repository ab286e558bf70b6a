"""A trained run as a policy with the same ``predict`` as the baselines, acting in GPUs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from stable_baselines3 import PPO

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.observation import ObservationLayout
from train.actions import ActionTransform, transform_from_hyperparams

MODEL_FILES = {"best": "best_model.zip", "final": "model.zip"}


def load_run_config(run_dir: Path) -> dict[str, Any]:
    """The ``config.json`` of a run folder."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise ValueError(f"{run_dir} is not a run folder of gpu-alloc train: {path} does not exist")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


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
    state = run_dir / "checkpoints" / "state.json"
    if state.exists():
        record["timesteps"] = float(json.loads(state.read_text())["num_timesteps"])
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


class LearnedPolicy:
    """The model of a run folder, with its action parameterisation, on raw observations.

    Args:
        run_dir: a folder written by ``gpu-alloc train``.
        model: ``"best"`` (best validation return) or ``"final"``.
    """

    def __init__(self, run_dir: Path, model: str = "best") -> None:
        if model not in MODEL_FILES:
            raise ValueError(f"model must be one of {sorted(MODEL_FILES)}, got {model!r}")
        self.run_dir = Path(run_dir)
        data = load_run_config(self.run_dir)
        self.config = ScenarioConfig.from_dict(data["scenario"])
        hp = data["hyperparams"]
        self.transform: ActionTransform = transform_from_hyperparams(self.config, hp)
        args_file = self.run_dir / "args.json"
        self.train_seed = int(json.loads(args_file.read_text())["seed"]) if args_file.exists() else -1
        path = self.run_dir / MODEL_FILES[model]
        if not path.exists():
            raise ValueError(f"{path} does not exist; has the run finished? Try --model final")
        self.model = PPO.load(path, device="cpu")
        self.layout = ObservationLayout(self.config)

    def check_compatible(self, config: ScenarioConfig) -> None:
        """Raise ``ValueError`` unless this policy can act in ``config`` (same agents, same observation)."""
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

    def predict(
        self,
        observation: NDArray[np.floating],
        state: tuple[NDArray[Any], ...] | None = None,
        episode_start: NDArray[np.bool_] | None = None,
        deterministic: bool = True,
    ) -> tuple[NDArray[np.float32], tuple[NDArray[Any], ...] | None]:
        """Desired GPUs per agent: (N,) for one observation, (B, N) for a batch."""
        obs = np.asarray(observation, dtype=np.float32)
        batch = obs.reshape(-1, self.layout.size)
        action, _ = self.model.predict(batch, deterministic=deterministic)
        gpus = self.transform.to_gpus(np.asarray(action).reshape(batch.shape[0], -1), batch)
        out = gpus.astype(np.float32)
        return (out[0] if obs.ndim == 1 else out), state

    def __repr__(self) -> str:
        return f"LearnedPolicy({str(self.run_dir)!r})"
