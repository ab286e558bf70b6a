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

from gpu_alloc_env.progress import Bar, progress_bar
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


class RolloutProgressBar(BaseCallback):
    """A bar of the environment steps the run will train: whole rollouts, so it ends full.

    PPO collects rollouts of ``n_steps x n_envs`` steps until the total is reached, so a total that
    is not a multiple of the rollout is overshot (30,000 steps train 32,768 at 4,096 a rollout);
    Stable-Baselines3's own bar then ends past its total. This one counts to the steps trained.
    """

    def __init__(self) -> None:
        super().__init__()
        self.bar: Bar | None = None

    @staticmethod
    def steps_to_train(remaining: int, rollout: int) -> int:
        """The steps PPO trains to reach ``remaining`` more: whole rollouts of ``rollout`` steps."""
        return -(-remaining // rollout) * rollout

    def _on_training_start(self) -> None:
        rollout = int(self.model.n_steps) * int(self.model.n_envs)  # type: ignore[attr-defined]
        total = self.steps_to_train(int(self.locals["total_timesteps"]) - self.model.num_timesteps, rollout)
        self.bar = progress_bar(total, "training", "step")

    def _on_step(self) -> bool:
        assert self.bar is not None
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        assert self.bar is not None
        self.bar.close()
