"""The callbacks of a PPO run: validation on fixed seeds, and checkpoints every few wall minutes."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from gpu_alloc_env.train.run_folder import CHECKPOINT_COPIES, CHECKPOINT_DIR


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
