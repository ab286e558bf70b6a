"""A Stable-Baselines3 ``VecEnv`` adapter over the native vector environment.

:class:`BatchVecEnv` wraps one :class:`gpu_alloc_env.vector.GpuAllocVectorEnv` (same-step
autoreset): same physics, observation and reward as :class:`gpu_alloc_env.GpuAllocEnv` (environment
``e`` reset with seed ``s`` replays ``GpuAllocEnv`` reset with seed ``s``), one batched simulator
step per step (``action_repeat`` of them, with the action held, when a decision spans several
intervals). Its actions are those of an :class:`ActionTransform` (normalised in ``[-1, 1]^N``,
or discrete for ``offset``), which turns them into replicas. Episodes end by truncation; an
environment that finishes is reset at once from its own continuing generator, with SB3's
``terminal_observation`` and ``TimeLimit.truncated`` in its info, plus ``episode_metrics``.

**Paired reward.** Given a ``reward_baseline`` policy, a second vector environment replays the
same episodes (same seeds, so the same arrivals: the workload's draws are the only randomness and
no action changes them) under that policy, and each step's reward becomes the policy's minus the
baseline's. The subtracted term depends on the arrivals alone, never on the policy's actions, so
the policy gradient keeps its expectation while the arrivals' share of its variance cancels: the
input-dependent baseline of Mao et al., "Variance Reduction for Reinforcement Learning in
Input-Driven Environments" (ICLR 2019). The rewards this environment returns, and so a monitor's
episode returns, are then the paired ones; ``episode_metrics`` stays the policy's own.

**Stacked observations.** With ``frame_stack`` K > 1 the policy's observation is its last K
decision-time observations, oldest first (K*D wide), and ``terminal_observation`` is the ended
episode's last observation stacked the same way (what SB3 bootstraps the truncated return from).

The stepping itself (transform, held action, paired reward, stacking) is
:class:`~gpu_alloc_env.train.stepper.PolicyStepper`'s, which
:class:`~gpu_alloc_env.train.policy_env.PolicyVectorEnv` (the Gymnasium twin, for RLlib) shares.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.policy import Policy
from gpu_alloc_env.train.actions import ActionTransform
from gpu_alloc_env.train.stepper import PolicyStepper, StepperSettings
from gpu_alloc_env.vector import GpuAllocVectorEnv


def entry(info: dict[str, Any], env: int) -> dict[str, Any]:
    """Environment ``env``'s own info from a Gymnasium vector info (arrays and ``_key`` masks)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key.startswith("_") or not info.get(f"_{key}", np.ones(env + 1, dtype=bool))[env]:
            continue
        if isinstance(value, dict):
            out[key] = entry(value, env)
        else:
            item = value[env]
            out[key] = item.item() if np.ndim(item) == 0 and hasattr(item, "item") else item
    return out


class BatchVecEnv(StepperSettings, VecEnv):
    """``num_envs`` environments of ``config`` stepped as one batch, for SB3.

    Args:
        config: the scenario.
        num_envs: number of environments B.
        transform: maps normalised actions to desired replicas.
        reward_baseline: a policy whose reward on the same episodes is subtracted from each step's
            reward (paired reward, module docstring); None keeps the scenario's reward.
        action_repeat: decision intervals each action is held for; one step of this environment
            is that many of the simulator's, its reward their sum (the policy decides every
            ``action_repeat x decision_interval_s``).
        frame_stack: decision-time observations the policy sees at once, oldest first (1: the
            current one alone, the scenario's observation space; K: K times as wide).
    """

    def __init__(
        self,
        config: ScenarioConfig,
        num_envs: int,
        transform: ActionTransform,
        reward_baseline: Policy | None = None,
        action_repeat: int = 1,
        frame_stack: int = 1,
    ) -> None:
        self.stepper = PolicyStepper(config, num_envs, transform, reward_baseline, action_repeat, frame_stack)
        self.render_mode: str | None = None
        super().__init__(num_envs, self.stepper.single_observation_space, transform.action_space())
        self._actions: NDArray[np.floating] | None = None

    @property
    def vector(self) -> GpuAllocVectorEnv:
        """The policy's vector environment (``SAME_STEP`` autoreset)."""
        return self.stepper.vector

    @property
    def sim(self) -> Any:
        """The batched simulator the vector environment steps."""
        return self.vector.sim

    def reset(self) -> NDArray[np.float32]:
        """Reset every environment (with the seeds given to :meth:`seed`, if any)."""
        obs = self.stepper.reset(self._seeds)
        for env in range(self.num_envs):
            self.reset_infos[env] = {"time_s": 0.0}
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: NDArray[np.floating]) -> None:
        """Store the (B, N) normalised actions for :meth:`step_wait`."""
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        """One batched step; finished environments are reset."""
        if self.stepper.obs is None or self._actions is None:
            raise RuntimeError("call reset() and step_async() before step_wait()")
        obs, rewards, done, info = self.stepper.step(self._actions)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if done.any():
            final = info["final_info"]["episode_metrics"]
            for env in np.flatnonzero(done):
                infos[env] = {
                    "terminal_observation": info["final_obs"][env],
                    "TimeLimit.truncated": True,
                    "episode_metrics": entry(final, int(env)),
                }
        return obs, rewards.astype(np.float32), done, infos

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
