"""A Gymnasium vector environment in a learned policy's action space, for RLlib.

:class:`PolicyVectorEnv` is the Gymnasium twin of :class:`gpu_alloc_env.train.vec_env.BatchVecEnv`:
the same environments (:class:`~gpu_alloc_env.train.stepper.PolicyStepper`: the action transform,
``action_repeat`` and the paired reward), behind the interface RLlib's env runners step, a
:class:`gymnasium.vector.VectorEnv` with ``NEXT_STEP`` autoreset. Its action space is the
transform's, batched (``[-1, 1]^N`` boxes, or ``MultiDiscrete`` for ``offset``); its observation
space is the scenario's, batched.

**The same transitions as BatchVecEnv.** Given the same seeds and the same actions, every step
returns the same rewards (``float32``, summed over the held steps, paired if configured), the same
observations and the same episode ends as ``BatchVecEnv``, plus one step per episode end:

* the step an episode ends returns that episode's last observation, ``truncated`` True (episodes
  end by truncation, never termination) and ``episode_metrics`` in the info;
* the next step only resets: it ignores its action (which must still have the right shape),
  returns the next episode's first observation with reward 0 and no truncation, and steps no
  simulator. Every environment of the batch starts together (:meth:`PolicyVectorEnv.reset` resets
  them all) and every episode has the same number of decisions, so episodes end together.

**Info** is trimmed to what RLlib needs: empty, except on the step episodes end, where it holds
``episode_metrics`` (with its ``_episode_metrics`` mask) in Gymnasium's vector layout. RLlib's
``DictInfoToList`` wrapper splits the whole info per environment on every step, so the per-step
info of :class:`~gpu_alloc_env.vector.GpuAllocVectorEnv` (reward components, metrics, replicas,
repairs) is left out.

**Seeds of RLlib's env runners.** RLlib resets env runner ``w`` with ``seed + w``
(``config.debugging(seed=...)``), which, with several environments per runner, makes runners
replay each other's episodes (runner ``w``'s environment ``e + 1`` would share runner ``w + 1``'s
environment ``e`` seed). A :class:`PolicyVectorEnv` knows its runner (``worker_index``) and undoes
that: reset with an int seed ``base + w``, environment ``e`` gets seed ``base + w * num_envs + e``
(:func:`runner_seeds`), so that no two environments of the run share a seed; runner 0 (the local
runner, ``num_env_runners=0``) seeds environment ``e`` with ``base + e``, as ``BatchVecEnv.seed``
does. A list of seeds is used as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from numpy.typing import NDArray

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.policy import Policy
from gpu_alloc_env.train.actions import ActionTransform
from gpu_alloc_env.train.stepper import ObsArray, PolicyStepper, env_settings


def runner_seeds(seed: int, num_envs: int, worker_index: int) -> list[int]:
    """The seed of each environment of env runner ``worker_index``, reset by RLlib with ``seed``.

    RLlib's ``seed`` for runner ``w`` is the run's ``base + w``; environment ``e`` gets
    ``base + w * num_envs + e``, so that the runners' environments never share a seed.
    """
    base = int(seed) - worker_index
    return [base + worker_index * num_envs + env for env in range(num_envs)]


class PolicyVectorEnv(VectorEnv[ObsArray, NDArray[Any], NDArray[Any]]):
    """``num_envs`` environments of ``config`` in the policy's action space, ``NEXT_STEP`` autoreset.

    Args:
        config: the scenario the environments step.
        num_envs: number of environments B.
        transform: maps the policy's actions to desired replicas.
        reward_baseline: a policy whose reward on the same episodes is subtracted from each step's
            reward (the paired reward); None keeps the scenario's reward.
        action_repeat: decision intervals each action is held for; it must divide the episode's
            decision intervals.
        worker_index: the RLlib env runner this environment belongs to (0: the local one), for
            the seed rule of the module docstring. RLlib's vector entry point passes its creator a
            plain dict without the ``EnvContext``'s ``worker_index``: a creator that cannot see it
            may set this attribute later (for example from an ``on_environment_created``
            callback's ``env_context``), before the first :meth:`reset`.

    The module docstring says how its transitions match ``BatchVecEnv``'s.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP}  # noqa: RUF012

    def __init__(
        self,
        config: ScenarioConfig,
        num_envs: int,
        transform: ActionTransform,
        reward_baseline: Policy | None = None,
        action_repeat: int = 1,
        worker_index: int = 0,
    ) -> None:
        if isinstance(worker_index, bool) or not isinstance(worker_index, int) or worker_index < 0:
            raise ValueError(
                f"worker_index must be an int >= 0 (RLlib's env runner index), got {worker_index!r}"
            )
        self.stepper = PolicyStepper(config, num_envs, transform, reward_baseline, action_repeat)
        self.worker_index = worker_index
        self.num_envs = self.stepper.num_envs
        self.single_observation_space = self.stepper.vector.single_observation_space
        self.single_action_space: spaces.Space[Any] = transform.action_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._ended = False
        """The last step ended the episodes: the next one only resets."""

    @property
    def config(self) -> ScenarioConfig:
        """The scenario the environments step."""
        return self.stepper.config

    @property
    def transform(self) -> ActionTransform:
        """The action transform."""
        return self.stepper.transform

    @property
    def action_repeat(self) -> int:
        """Decision intervals each action is held for."""
        return self.stepper.action_repeat

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsArray, dict[str, Any]]:
        """Reset every environment; the first observations and an empty info.

        ``seed``: an int is RLlib's seed of this env runner (:func:`runner_seeds`); a list gives
        one seed (or None) per environment; None continues each environment's generator (fresh
        entropy the first time, and always with a paired baseline, which must replay the same
        episodes). ``options`` are not supported: every environment resets together.
        """
        if options:
            raise ValueError(
                f"PolicyVectorEnv.reset takes no options (its environments reset together), got {options!r}"
            )
        seeds: list[int | None]
        if seed is None:
            seeds = [None] * self.num_envs
        elif isinstance(seed, int | np.integer) and not isinstance(seed, bool):
            seeds = list[int | None](runner_seeds(int(seed), self.num_envs, self.worker_index))
        elif isinstance(seed, list | tuple) and len(seed) == self.num_envs:
            seeds = list(seed)
        else:
            raise ValueError(
                f"reset(seed=...) takes an int, None or a list of {self.num_envs} seeds (one per "
                f"environment), got {seed!r}"
            )
        obs = self.stepper.reset(seeds)
        self._ended = False
        return obs.copy(), {}

    def step(
        self, actions: NDArray[Any]
    ) -> tuple[ObsArray, NDArray[np.float32], NDArray[np.bool_], NDArray[np.bool_], dict[str, Any]]:
        """One decision of the policy for every environment (the module docstring's autoreset)."""
        if self.stepper.obs is None:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions)
        terminated = np.zeros(self.num_envs, dtype=bool)
        if self._ended:  # NEXT_STEP: this step only starts the next episodes, already reset
            self.stepper.check_actions(actions)
            self._ended = False
            nothing = np.zeros(self.num_envs, np.float32)
            return self.stepper.obs.copy(), nothing, terminated, terminated.copy(), {}
        obs, rewards, truncated, info = self.stepper.step(actions)
        if not truncated.any():
            return obs.copy(), rewards.astype(np.float32), terminated, truncated, {}
        if not truncated.all():  # cannot happen: the environments start together, episodes are equal
            raise RuntimeError(
                f"environments {np.flatnonzero(truncated).tolist()} ended their episodes before the others"
            )
        self._ended = True
        last = np.stack([info["final_obs"][env] for env in range(self.num_envs)])
        final = info["final_info"]
        episode = {"episode_metrics": final["episode_metrics"], "_episode_metrics": final["_episode_metrics"]}
        return last, rewards.astype(np.float32), terminated, truncated, episode

    def close_extras(self, **kwargs: Any) -> None:
        """Nothing to release: one process, no sub-environments."""


def build_policy_env(
    config: ScenarioConfig,
    hp: Mapping[str, Any],
    num_envs: int,
    training: bool = True,
    worker_index: int = 0,
) -> PolicyVectorEnv:
    """The :class:`PolicyVectorEnv` of a run on ``config`` with hyperparameters ``hp``.

    The same environments as :func:`gpu_alloc_env.train.ppo.build_env` builds for Stable-Baselines3
    (:func:`~gpu_alloc_env.train.stepper.env_settings`): training environments step the scenario
    with the training shaping and, with ``reward_baseline``, the paired reward; validation
    environments (``training=False``) step it as it is. Rewards come back unnormalised (no
    ``normalize_reward``). ``worker_index`` is the RLlib env runner's, for its seeds (module
    docstring).
    """
    settings = env_settings(config, hp, training)
    return PolicyVectorEnv(
        settings.scenario,
        num_envs,
        settings.transform,
        reward_baseline=settings.reward_baseline,
        action_repeat=settings.action_repeat,
        worker_index=worker_index,
    )
