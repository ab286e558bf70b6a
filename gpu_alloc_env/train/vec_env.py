"""A Stable-Baselines3 ``VecEnv`` over one :class:`BatchSimulator`: B environments in one NumPy pass.

Same physics, observation and reward as :class:`gpu_alloc_env.GpuAllocEnv` (environment ``e``
reset with seed ``s`` replays ``GpuAllocEnv`` reset with seed ``s``), without B Python
environments: each step is one batched simulator step. Its actions are normalised, in
``[-1, 1]^N``, turned into replicas by an :class:`ActionTransform`. Episodes end by truncation; an
environment that finishes is reset at once from its own continuing generator, with the usual
``terminal_observation`` and ``TimeLimit.truncated`` in its info, plus ``episode_metrics``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.metrics import episode_metrics
from gpu_alloc_env.core.reward import reward
from gpu_alloc_env.observation import ObservationLayout
from gpu_alloc_env.trace_replay import simulator_for
from gpu_alloc_env.train.actions import ActionTransform


class BatchVecEnv(VecEnv):
    """``num_envs`` environments of ``config`` stepped as one batch.

    Args:
        config: the scenario.
        num_envs: number of environments B.
        transform: maps normalised actions to desired replicas.
    """

    def __init__(self, config: ScenarioConfig, num_envs: int, transform: ActionTransform) -> None:
        layout = ObservationLayout(config)
        low, high = layout.bounds()
        n = config.num_agents
        self.render_mode: str | None = None
        super().__init__(
            num_envs,
            spaces.Box(low=low, high=high, dtype=np.float32),
            spaces.Box(low=-np.ones(n, np.float32), high=np.ones(n, np.float32), dtype=np.float32),
        )
        self.config = config
        self.layout = layout
        self.transform = transform
        self.sim = simulator_for(config, batch_size=num_envs)
        self._rngs: list[np.random.Generator | None] = [None] * num_envs
        self._obs: NDArray[np.float32] | None = None
        self._actions: NDArray[np.floating] | None = None

    def _reset_one(self, env: int, seed: int | None) -> None:
        if seed is not None or self._rngs[env] is None:
            self._rngs[env] = np.random.default_rng(seed)
        self.sim.reset_env(env, self._rngs[env])  # type: ignore[arg-type]

    def reset(self) -> NDArray[np.float32]:
        """Reset every environment (with the seeds given to :meth:`seed`, if any)."""
        for env in range(self.num_envs):
            self._reset_one(env, self._seeds[env])
            self.reset_infos[env] = {"time_s": 0.0}
        self._reset_seeds()
        self._reset_options()
        self._obs = self.layout.encode(self.sim.view(copy=False))
        first: NDArray[np.float32] = self._obs.copy()
        return first

    def step_async(self, actions: NDArray[np.floating]) -> None:
        """Store the (B, N) normalised actions for :meth:`step_wait`."""
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        """One batched simulator step; finished environments are reset."""
        if self._obs is None or self._actions is None:
            raise RuntimeError("call reset() and step_async() before step_wait()")
        actions = self._actions.reshape(self.num_envs, -1)
        if actions.shape[1] != self.config.num_agents or not np.all(np.isfinite(actions)):
            raise ValueError(
                f"actions must be finite with shape ({self.num_envs}, {self.config.num_agents}), got "
                f"shape {self._actions.shape}; check the policy's output"
            )
        stats = self.sim.step(self.transform.to_replicas(actions, self._obs))
        rewards = reward(self.config, stats).astype(np.float32)
        obs = self.layout.encode(self.sim.view(copy=False))
        done = self.sim.done.copy()
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if done.any():
            for env in np.flatnonzero(done):
                infos[env] = {
                    "terminal_observation": obs[env].copy(),
                    "TimeLimit.truncated": True,
                    "episode_metrics": episode_metrics(self.sim, int(env)),
                }
                self._reset_one(int(env), None)
            obs = self.layout.encode(self.sim.view(copy=False))
        self._obs = obs
        return obs.copy(), rewards, done, infos

    def close(self) -> None:
        """Nothing to release."""

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """This object's attribute, once per selected environment (they share it)."""
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute shared by every environment."""
        setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a method of this object once per selected environment."""
        method = getattr(self, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """No environment is wrapped: there are no per-environment objects."""
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[NDArray[Any] | None]:
        """No rendering in the batched form: render through ``GpuAllocEnv`` instead."""
        return [None for _ in range(self.num_envs)]

    def _get_indices(self, indices: VecEnvIndices) -> Iterable[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return indices
