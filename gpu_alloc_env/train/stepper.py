"""One decision of a learned policy in the batched simulator: what every training environment shares.

A learner's environment steps :class:`gpu_alloc_env.vector.GpuAllocVectorEnv` in the policy's own
action space, not in replicas. :class:`PolicyStepper` holds what that takes, for both adapters over
it: :class:`gpu_alloc_env.train.vec_env.BatchVecEnv` (Stable-Baselines3's ``VecEnv``) and
:class:`gpu_alloc_env.train.policy_env.PolicyVectorEnv` (a Gymnasium ``VectorEnv`` with
``NEXT_STEP`` autoreset, for RLlib). Both therefore give the same transitions for the same seeds
and actions:

* **the action transform** (:class:`~gpu_alloc_env.train.actions.ActionTransform`) turns the
  policy's action into replicas, given the observation it answers;
* **the held action** (``action_repeat``): one decision is that many simulator steps with the
  action held, its reward their sum; the repeat must divide the episode's decision intervals
  (:func:`check_action_repeat`), so that every episode is a whole number of decisions;
* **the paired reward** (``reward_baseline``): a shadow vector environment replays the same
  episodes (same seeds) under a baseline policy, and each step's reward is the policy's minus the
  baseline's (:mod:`gpu_alloc_env.train.vec_env` explains why);
* **the stacked observation** (``frame_stack``): the policy sees its last K decision-time
  observations side by side, oldest first and the current one last (a (B, K*D) array), so that
  it can tell a rising arrival rate from a steady one; an episode's first decision sees its first
  observation K times (:func:`start_history`, :func:`push_history`). The action transform still
  reads the current (B, D) observation alone. K = 1 (the default) is the observation itself.

The simulator autoresets on the step an episode ends (``SAME_STEP``); the adapters present that as
their interface requires. :func:`env_settings` reads what a run's hyperparameters ask for, for both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from numpy.typing import NDArray

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.errors import TrainError
from gpu_alloc_env.policy import Policy
from gpu_alloc_env.train.actions import (
    BASELINES,
    ActionTransform,
    baseline_policy,
    transform_from_hyperparams,
)
from gpu_alloc_env.train.hyperparams import training_config
from gpu_alloc_env.vector import GpuAllocVectorEnv

ObsArray = NDArray[np.float32]


def check_action_repeat(config: ScenarioConfig, action_repeat: int) -> int:
    """``action_repeat``, checked: a positive int dividing ``config``'s episode (ValueError naming it)."""
    steps = round(config.episode_length_s / config.decision_interval_s)
    if isinstance(action_repeat, bool) or not isinstance(action_repeat, int) or action_repeat < 1:
        raise ValueError(f"action_repeat must be a positive int, got {action_repeat!r}")
    if steps % action_repeat:
        raise ValueError(
            f"action_repeat={action_repeat} does not divide the episode's {steps} decision intervals; "
            "choose a divisor, so that every episode is a whole number of the policy's decisions"
        )
    return action_repeat


def check_frame_stack(frame_stack: int) -> int:
    """``frame_stack``, checked: a positive int (ValueError naming it); 1 stacks nothing."""
    if isinstance(frame_stack, bool) or not isinstance(frame_stack, int) or frame_stack < 1:
        raise ValueError(
            f"frame_stack must be a positive int (the decisions the policy sees; 1: the current one "
            f"alone), got {frame_stack!r}"
        )
    return frame_stack


def stacked_space(space: spaces.Space[Any], frame_stack: int) -> spaces.Space[Any]:
    """The space of ``frame_stack`` observations of the box ``space`` side by side (``space`` for 1)."""
    if frame_stack == 1:
        return space
    if not isinstance(space, spaces.Box):
        raise TypeError(f"only a Box observation space can be stacked, got {space!r}")
    return spaces.Box(
        low=np.tile(space.low, frame_stack), high=np.tile(space.high, frame_stack), dtype=np.float32
    )


def start_history(obs: ObsArray, frame_stack: int) -> ObsArray:
    """The (B, K, D) history of an episode's first decision: its (B, D) observation ``obs``, K times."""
    return np.repeat(np.asarray(obs, dtype=np.float32)[:, None, :], frame_stack, axis=1)


def push_history(history: ObsArray, obs: ObsArray) -> ObsArray:
    """``history`` (B, K, D) with its oldest observation dropped and ``obs`` (B, D) added last."""
    return np.concatenate([history[:, 1:], np.asarray(obs, dtype=np.float32)[:, None, :]], axis=1)


def flatten_history(history: ObsArray) -> ObsArray:
    """The (B, K*D) observation the policy sees: the history's K observations, oldest first."""
    flat: ObsArray = history.reshape(history.shape[0], -1).copy()
    return flat


def make_reward_baseline(config: ScenarioConfig, name: str, hp: Mapping[str, Any] | None = None) -> Policy:
    """The policy of the paired reward (``reward_baseline``): ``provisioned`` or ``adaptive``.

    ``provisioned`` holds the run's ``offset_base`` when it has one (the constant its ``offset``
    action starts from), else the scenario's tuned constant.
    """
    if name not in BASELINES:
        raise TrainError(f"reward_baseline must be one of {list(BASELINES)} or null, got {name!r}")
    return baseline_policy(config, name, (hp or {}).get("offset_base"))


@dataclass(frozen=True)
class EnvSettings:
    """What a run's hyperparameters make of its environments (:func:`env_settings`).

    Attributes:
        scenario: the scenario the environments step (the training shaping applied, for training).
        transform: the policy's action transform.
        reward_baseline: the paired reward's baseline, or None for the scenario's own reward.
        action_repeat: simulator steps per decision.
        frame_stack: decision-time observations the policy sees at once (1: the current one).
    """

    scenario: ScenarioConfig
    transform: ActionTransform
    reward_baseline: Policy | None
    action_repeat: int
    frame_stack: int = 1


def env_settings(config: ScenarioConfig, hp: Mapping[str, Any], training: bool = True) -> EnvSettings:
    """The environments of a run on ``config`` with hyperparameters ``hp``.

    Training environments (``training``) step ``config`` with the shaping of
    :func:`~gpu_alloc_env.train.hyperparams.training_config` and, with ``reward_baseline``, the
    paired reward; validation environments step ``config`` as it is, with its own reward. The
    action transform and the baseline always come from ``config`` itself, as an evaluation
    rebuilds them.
    """
    baseline = hp.get("reward_baseline") if training else None
    return EnvSettings(
        scenario=training_config(config, hp) if training else config,
        transform=transform_from_hyperparams(config, dict(hp)),
        reward_baseline=make_reward_baseline(config, baseline, hp) if baseline else None,
        action_repeat=int(hp.get("action_repeat", 1)),
        frame_stack=int(hp.get("frame_stack", 1)),
    )


class PolicyStepper:
    """``num_envs`` environments of ``config`` stepped one policy decision at a time (``SAME_STEP``).

    Args:
        config: the scenario the environments step.
        num_envs: number of environments B.
        transform: maps the policy's (B, N) actions to desired replicas.
        reward_baseline: a policy whose reward on the same episodes is subtracted from each step's
            reward (the paired reward); None keeps the scenario's reward.
        action_repeat: decision intervals each action is held for (:func:`check_action_repeat`).
        frame_stack: decision-time observations the policy sees, K (:func:`check_frame_stack`).

    Attributes:
        vector: the policy's vector environment (``SAME_STEP`` autoreset).
        shadow: the baseline's vector environment on the same seeds, with a baseline.
        obs: the (B, D) observation the next action answers (after an episode's end, the next
            episode's first), None before :meth:`reset`; the action transform reads it.
        history: the (B, K, D) decision-time observations the policy sees, oldest first, the last
            being :attr:`obs`; None before :meth:`reset`.
        single_observation_space: the policy's observation space, K*D wide.
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
        self.action_repeat = check_action_repeat(config, action_repeat)
        self.frame_stack = check_frame_stack(frame_stack)
        self.config = config
        self.num_envs = num_envs
        self.transform = transform
        self.reward_baseline = reward_baseline
        self.vector = GpuAllocVectorEnv(num_envs, config, autoreset_mode=AutoresetMode.SAME_STEP)
        self.shadow = (
            None
            if reward_baseline is None
            else GpuAllocVectorEnv(num_envs, config, autoreset_mode=AutoresetMode.SAME_STEP)
        )
        self.single_observation_space = stacked_space(self.vector.single_observation_space, frame_stack)
        self.obs: ObsArray | None = None
        self.history: ObsArray | None = None
        self._shadow_obs: ObsArray | None = None

    def reset(self, seeds: Sequence[int | None]) -> ObsArray:
        """Reset every environment, environment ``e`` with ``seeds[e]``; the policy's first observation.

        A None seed continues the environment's generator (fresh entropy the first time), except
        with a paired baseline: both environments then need the same generators, so they get the
        same fresh seed.
        """
        seeds = list(seeds)
        if self.shadow is not None:
            fresh = np.random.SeedSequence().generate_state(self.num_envs, np.uint64)
            seeds = [int(fresh[env]) if seed is None else seed for env, seed in enumerate(seeds)]
            self._shadow_obs, _ = self.shadow.reset(seed=seeds)
        obs, _ = self.vector.reset(seed=seeds)
        self.obs = obs
        self.history = start_history(obs, self.frame_stack)
        return flatten_history(self.history)

    def check_actions(self, actions: NDArray[Any]) -> None:
        """ValueError, naming the shape, unless ``actions`` is finite with shape (B, N)."""
        if actions.shape != (self.num_envs, self.config.num_agents) or not np.all(np.isfinite(actions)):
            raise ValueError(
                f"actions must be finite with shape ({self.num_envs}, {self.config.num_agents}) (one row per "
                f"environment), got shape {actions.shape}; check the policy's output"
            )

    def step(
        self, actions: NDArray[Any]
    ) -> tuple[ObsArray, NDArray[np.float64], NDArray[np.bool_], dict[str, Any]]:
        """One decision: ``actions`` held for ``action_repeat`` steps, or until an episode ends.

        Returns the policy's (B, K*D) observation (the next episode's first where one ended), the
        summed (paired) rewards, which environments ended their episode, and the vector
        environment's last ``SAME_STEP`` info (``final_info`` where episodes ended, and
        ``final_obs``, each environment's last observation stacked as the policy sees it: the
        history that episode would have had one decision later).
        """
        if self.obs is None or self.history is None:
            raise RuntimeError("call reset() before step()")
        self.check_actions(actions)
        rewards = np.zeros(self.num_envs)
        for _ in range(self.action_repeat):
            replicas = self.transform.to_replicas(actions, self.obs)
            obs, step_rewards, _, done, info = self.vector.step(replicas)
            rewards += step_rewards - self._baseline_rewards(done)
            self.obs = obs
            if done.any():
                break  # every episode is a whole number of repeats, so all end together here
        history = push_history(self.history, obs)
        if done.any():
            ended = np.flatnonzero(done)
            final_obs = np.full(self.num_envs, None, dtype=object)
            last = push_history(self.history[ended], np.stack([info["final_obs"][env] for env in ended]))
            for row, env in enumerate(ended):
                final_obs[env] = last[row].reshape(-1)
            info = {**info, "final_obs": final_obs}
            history[ended] = start_history(obs[ended], self.frame_stack)
        self.history = history
        return flatten_history(history), rewards, done, info

    def _baseline_rewards(self, done: NDArray[np.bool_]) -> NDArray[np.float64]:
        """The paired baseline's rewards for the step just taken (zeros without a baseline)."""
        if self.reward_baseline is None or self.shadow is None or self._shadow_obs is None:
            return np.zeros(self.num_envs)  # (shadow and its observation exist with a baseline)
        replicas, _ = self.reward_baseline.predict(self._shadow_obs, deterministic=True)
        self._shadow_obs, rewards, _, shadow_done, _ = self.shadow.step(replicas)
        if not np.array_equal(done, shadow_done):
            raise RuntimeError("the paired baseline's episodes fell out of step with the policy's")
        return rewards


class StepperSettings:
    """The settings of an adapter's :class:`PolicyStepper` (``self.stepper``), read-only.

    Both training adapters, :class:`~gpu_alloc_env.train.vec_env.BatchVecEnv` and
    :class:`~gpu_alloc_env.train.policy_env.PolicyVectorEnv`, expose them so.
    """

    stepper: PolicyStepper

    @property
    def config(self) -> ScenarioConfig:
        """The scenario the environments step."""
        return self.stepper.config

    @property
    def transform(self) -> ActionTransform:
        """The action transform."""
        return self.stepper.transform

    @property
    def reward_baseline(self) -> Policy | None:
        """The paired reward's baseline, if any."""
        return self.stepper.reward_baseline

    @property
    def action_repeat(self) -> int:
        """Decision intervals each action is held for."""
        return self.stepper.action_repeat

    @property
    def frame_stack(self) -> int:
        """Decision-time observations the policy sees at once."""
        return self.stepper.frame_stack
