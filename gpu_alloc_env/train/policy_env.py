"""A Gymnasium vector environment in a learned policy's action space, for RLlib.

:class:`PolicyVectorEnv` is the Gymnasium twin of :class:`gpu_alloc_env.train.vec_env.BatchVecEnv`:
the same environments (:class:`~gpu_alloc_env.train.stepper.PolicyStepper`: the action transform,
``action_repeat`` and the paired reward), behind the interface RLlib's env runners step, a
:class:`gymnasium.vector.VectorEnv` with ``NEXT_STEP`` autoreset. Its action space is the
transform's, batched (``[-1, 1]^N`` boxes, or ``MultiDiscrete`` for ``offset``); its observation
space is the scenario's, batched, or with ``frame_stack`` K > 1 the last K decision-time
observations side by side, oldest first (K times as wide; the stepper's).

**The same transitions as BatchVecEnv.** Given the same seeds and the same actions, every step
returns the same rewards (``float32``, summed over the held steps, paired if configured), the same
observations and the same episode ends as ``BatchVecEnv``, plus one step per episode end:

* the step an episode ends returns that episode's last observation (with K > 1 stacked onto the
  episode's earlier ones, as ``BatchVecEnv``'s ``terminal_observation``), ``truncated`` True
  (episodes end by truncation, never termination) and ``episode_metrics`` in the info;
* the next step only resets: it ignores its action (which must still have the right shape),
  returns the next episode's first observation with reward 0 and no truncation, and steps no
  simulator. Every environment of the batch starts together (:meth:`PolicyVectorEnv.reset` resets
  them all) and every episode has the same number of decisions, so episodes end together.

**Info** is trimmed to what RLlib needs: empty, except on the step episodes end, where it holds
``episode_metrics`` (with its ``_episode_metrics`` mask) in Gymnasium's vector layout. RLlib's
``DictInfoToList`` wrapper splits the whole info per environment on every step, so the per-step
info of :class:`~gpu_alloc_env.vector.GpuAllocVectorEnv` (reward components, metrics, replicas,
repairs) is left out.

**Reward normalisation** (``normalize_reward``, :class:`ReturnNormaliser`): the training rewards
divided by the running standard deviation of the discounted return and clipped to +-10, exactly as
Stable-Baselines3's ``VecNormalize(norm_obs=False)`` does for ``BatchVecEnv``. RLlib's new API
stack has no reward normaliser, and its learner state would not carry one across a checkpoint, so
the environment holds the statistics and the trainer saves and restores them with its checkpoints
(:meth:`ReturnNormaliser.state`).

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

import math
from collections import deque
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
from gpu_alloc_env.train.stepper import ObsArray, PolicyStepper, StepperSettings, env_settings


def runner_seeds(seed: int, num_envs: int, worker_index: int) -> list[int]:
    """The seed of each environment of env runner ``worker_index``, reset by RLlib with ``seed``.

    RLlib's ``seed`` for runner ``w`` is the run's ``base + w``; environment ``e`` gets
    ``base + w * num_envs + e``, so that the runners' environments never share a seed.
    """
    base = int(seed) - worker_index
    return [base + worker_index * num_envs + env for env in range(num_envs)]


FINISHED_RETURNS_KEPT = 10_000
"""Finished episodes' returns a :class:`PolicyVectorEnv` keeps until they are taken."""
REWARD_CLIP = 10.0
"""Normalised rewards are clipped to +-this (Stable-Baselines3's ``VecNormalize`` default)."""
REWARD_EPSILON = 1e-8
"""Added to the return variance before its square root (``VecNormalize``'s ``epsilon``)."""
COUNT_PRIOR = 1e-4
"""The running statistics' initial count (``RunningMeanStd``'s ``epsilon``): mean 0, variance 1."""


class ReturnNormaliser:
    """Rewards scaled by the running standard deviation of the discounted return (``VecNormalize``).

    Each call adds the step's rewards to every environment's discounted return, updates the
    running mean and variance of those returns with the batch, and returns the rewards divided by
    the running standard deviation, clipped to +-:data:`REWARD_CLIP`. An environment whose episode
    ended starts its return again from 0. The arithmetic is Stable-Baselines3's, so both backends
    scale rewards alike.

    Args:
        gamma: the discount of the returns (the run's ``gamma``).
        num_envs: environments per batch.
    """

    def __init__(self, gamma: float, num_envs: int) -> None:
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
        self.gamma = float(gamma)
        self.returns = np.zeros(num_envs)
        self.mean = 0.0
        self.var = 1.0
        self.count = COUNT_PRIOR

    def __call__(self, rewards: NDArray[np.floating], ended: NDArray[np.bool_]) -> NDArray[np.float64]:
        """The normalised ``rewards`` of one step; ``ended`` marks episodes that ended with it."""
        self.returns = self.returns * self.gamma + rewards
        batch_mean, batch_var, batch_count = (
            float(self.returns.mean()),
            float(self.returns.var()),
            self.returns.size,
        )
        delta = batch_mean - self.mean
        total = self.count + batch_count
        self.mean += delta * batch_count / total
        m_2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        self.var = m_2 / total
        self.count = total
        scaled = np.clip(rewards / math.sqrt(self.var + REWARD_EPSILON), -REWARD_CLIP, REWARD_CLIP)
        self.returns[ended] = 0.0
        return np.asarray(scaled, dtype=np.float64)

    def state(self) -> dict[str, float]:
        """The running statistics, to save with a checkpoint (returns restart from 0, as SB3's do)."""
        return {"gamma": self.gamma, "mean": self.mean, "var": self.var, "count": self.count}

    def load_state(self, state: Mapping[str, float]) -> None:
        """Continue from statistics :meth:`state` saved; ValueError if their discount differs."""
        if not math.isclose(float(state["gamma"]), self.gamma):
            raise ValueError(
                f"the saved reward statistics use gamma {state['gamma']!r}, this environment {self.gamma!r}; "
                "they belong to another run"
            )
        self.mean, self.var, self.count = float(state["mean"]), float(state["var"]), float(state["count"])
        self.returns[:] = 0.0


class PolicyVectorEnv(StepperSettings, VectorEnv[ObsArray, NDArray[Any], NDArray[Any]]):
    """``num_envs`` environments of ``config`` in the policy's action space, ``NEXT_STEP`` autoreset.

    Args:
        config: the scenario the environments step.
        num_envs: number of environments B.
        transform: maps the policy's actions to desired replicas.
        reward_baseline: a policy whose reward on the same episodes is subtracted from each step's
            reward (the paired reward); None keeps the scenario's reward.
        action_repeat: decision intervals each action is held for; it must divide the episode's
            decision intervals.
        frame_stack: decision-time observations the policy sees at once, oldest first.
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
        normalize_reward_gamma: float | None = None,
        frame_stack: int = 1,
    ) -> None:
        if isinstance(worker_index, bool) or not isinstance(worker_index, int) or worker_index < 0:
            raise ValueError(
                f"worker_index must be an int >= 0 (RLlib's env runner index), got {worker_index!r}"
            )
        self.stepper = PolicyStepper(config, num_envs, transform, reward_baseline, action_repeat, frame_stack)
        self.worker_index = worker_index
        self.num_envs = self.stepper.num_envs
        self.single_observation_space = self.stepper.single_observation_space
        self.single_action_space: spaces.Space[Any] = transform.action_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._ended = False
        """The last step ended the episodes: the next one only resets."""
        self.reward_normaliser = (
            None
            if normalize_reward_gamma is None
            else ReturnNormaliser(normalize_reward_gamma, self.num_envs)
        )
        """Scales the rewards (``normalize_reward``); None leaves them as the scenario gives them."""
        self._returns = np.zeros(self.num_envs)
        self.finished_returns: deque[float] = deque(maxlen=FINISHED_RETURNS_KEPT)
        """Returns of the latest finished episodes, before normalisation (paired and shaped as
        trained), for a training log; :meth:`take_finished_returns` empties it."""
        self._obs: ObsArray | None = None
        """The policy's observation for the next action (after an end, the next episodes' first)."""

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
        self._returns[:] = 0.0
        self._obs = obs
        return obs.copy(), {}

    def step(
        self, actions: NDArray[Any]
    ) -> tuple[ObsArray, NDArray[np.float32], NDArray[np.bool_], NDArray[np.bool_], dict[str, Any]]:
        """One decision of the policy for every environment (the module docstring's autoreset)."""
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions)
        terminated = np.zeros(self.num_envs, dtype=bool)
        if self._ended:  # NEXT_STEP: this step only starts the next episodes, already reset
            self.stepper.check_actions(actions)
            self._ended = False
            nothing = np.zeros(self.num_envs, np.float32)
            return self._obs.copy(), nothing, terminated, terminated.copy(), {}
        obs, rewards, truncated, info = self.stepper.step(actions)
        self._returns += rewards
        if truncated.any():
            self.finished_returns.extend(self._returns[truncated].tolist())
            self._returns[truncated] = 0.0
        if self.reward_normaliser is not None:
            rewards = self.reward_normaliser(rewards, truncated)
        self._obs = obs
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

    def take_finished_returns(self) -> list[float]:
        """The returns of the episodes finished since the last call (:attr:`finished_returns`)."""
        returns = list(self.finished_returns)
        self.finished_returns.clear()
        return returns

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
    environments (``training=False``) step it as it is. Training rewards are normalised when
    ``normalize_reward`` is set (:class:`ReturnNormaliser`, with the run's ``gamma``); validation
    rewards never are. ``worker_index`` is the RLlib env runner's, for its seeds (module
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
        normalize_reward_gamma=(
            float(hp.get("gamma", 0.99)) if training and hp.get("normalize_reward", False) else None
        ),
        frame_stack=settings.frame_stack,
    )
