"""How a learned policy's normalised action in ``[-1, 1]^N`` becomes desired replicas per agent.

The environment's action is replicas; a Gaussian policy learns best in a symmetric unit box. Three
parameterisations, chosen per scenario in ``gpu_alloc_env/train/hyperparams.yml``:

| name       | desired replicas of agent n                                                  |
|------------|------------------------------------------------------------------------------|
| ``absolute`` | ``(a_n + 1) / 2 x max_replicas_n``: the whole range, learned from scratch   |
| ``residual`` | a baseline's replicas ``+ a_n x residual_scale x max_replicas_n``           |
| ``need_scale`` | the adaptive heuristic run on its need estimate ``x max_need_factor ** a_n`` |
| ``offset``   | the tuned constant ``+ min_offset + k_n``, ``k_n`` in ``0 .. max_offset - min_offset`` |

``residual`` and ``need_scale`` start a policy at a baseline (zero action), which then learns
corrections to it; the environment repairs whatever results into a feasible allocation, as it
does any action. The baseline of ``residual`` is ``residual_base``: the adaptive heuristic
(default) or the scenario's tuned provisioned constant.

``offset`` is the one discrete parameterisation (a ``MultiDiscrete`` action, one categorical per
agent): whole replicas added to or taken from the scenario's tuned constant
(:class:`~gpu_alloc_env.baselines.provisioned.ProvisionedPolicy`). A whole replica is what the
platform can change, so no correction falls in a rounding dead zone, and a categorical policy can
put its mass on "hold the constant" in one state and "one replica fewer" in another.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from gpu_alloc_env.arrays import FloatArray
from gpu_alloc_env.baselines.adaptive import AdaptivePolicy
from gpu_alloc_env.baselines.provisioned import ProvisionedPolicy
from gpu_alloc_env.config import ConfigError, ScenarioConfig
from gpu_alloc_env.policy import FixedPolicy


class ActionTransform(ABC):
    """Maps (B, N) normalised actions and the (B, D) observations they answer to desired replicas."""

    name: str = "transform"

    def __init__(self, config: ScenarioConfig) -> None:
        self.config = config
        self.max_replicas = np.array([a.max_replicas for a in config.agents], dtype=np.float64)

    def action_space(self) -> spaces.Space[Any]:
        """The policy's action space: the unit box ``[-1, 1]^N`` unless the transform says otherwise."""
        n = self.config.num_agents
        return spaces.Box(low=-np.ones(n, np.float32), high=np.ones(n, np.float32), dtype=np.float32)

    @abstractmethod
    def to_replicas(self, action: NDArray[np.floating], observation: NDArray[np.floating]) -> FloatArray:
        """(B, N) desired replicas."""

    def spec(self) -> dict[str, Any]:
        """Plain-data description, saved with a run so that the run can be rebuilt."""
        return {"action": self.name}


class AbsoluteAction(ActionTransform):
    """The unit box mapped linearly onto ``[0, max_replicas]``."""

    name = "absolute"

    def to_replicas(self, action: NDArray[np.floating], observation: NDArray[np.floating]) -> FloatArray:
        """``(a + 1) / 2 x max_replicas``."""
        unit = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        replicas: FloatArray = 0.5 * (unit + 1.0) * self.max_replicas
        return replicas


BASELINES: tuple[str, ...] = ("provisioned", "adaptive")
"""Baselines a learner is built on: what ``residual`` corrects, what a paired reward subtracts."""
RESIDUAL_BASES: tuple[str, ...] = tuple(sorted(BASELINES))
"""Baselines a ``residual`` action can correct."""


def baseline_policy(
    config: ScenarioConfig, name: str, provisioned_replicas: list[float] | None = None
) -> FixedPolicy:
    """The baseline ``name`` of :data:`BASELINES` for ``config``.

    ``provisioned`` holds ``provisioned_replicas`` when given, else the scenario's tuned constant.
    """
    if name == "provisioned":
        return ProvisionedPolicy(config, provisioned_replicas)
    if name == "adaptive":
        return AdaptivePolicy(config)
    raise ValueError(f"unknown baseline {name!r}; choose one of {list(BASELINES)}")


class ResidualAction(ActionTransform):
    """Corrections to a baseline, up to ``residual_scale x max_replicas`` either way.

    Args:
        config: the scenario.
        residual_scale: largest correction as a fraction of each agent's ``max_replicas``.
        residual_base: the baseline corrected, ``adaptive`` or ``provisioned`` (the scenario's
            tuned constant, :class:`ProvisionedPolicy`).
    """

    name = "residual"

    def __init__(
        self, config: ScenarioConfig, residual_scale: float = 0.5, residual_base: str = "adaptive"
    ) -> None:
        super().__init__(config)
        if not 0.0 < residual_scale <= 2.0:
            raise ValueError(f"residual_scale must be in (0, 2], got {residual_scale!r}")
        if residual_base not in RESIDUAL_BASES:
            raise ValueError(f"residual_base must be one of {list(RESIDUAL_BASES)}, got {residual_base!r}")
        self.residual_scale = float(residual_scale)
        self.residual_base = residual_base
        self.base = baseline_policy(config, residual_base)

    def to_replicas(self, action: NDArray[np.floating], observation: NDArray[np.floating]) -> FloatArray:
        """The heuristic's replicas for ``observation`` plus the scaled correction."""
        base = self.base.allocate(self.base.layout.decode(observation))
        unit = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        replicas: FloatArray = base + unit * self.residual_scale * self.max_replicas
        return replicas

    def spec(self) -> dict[str, Any]:
        """Name, scale and base."""
        return {
            "action": self.name,
            "residual_scale": self.residual_scale,
            "residual_base": self.residual_base,
        }


class NeedScaleAction(ActionTransform):
    """The adaptive heuristic run on a learned correction of each agent's need.

    The need the heuristic estimates (arrival rate over a replica's sustainable rate, plus the queue
    over the drain time) is multiplied by ``max_need_factor ** a_n``, then the heuristic allocates
    as usual (one replica first, priority x need, caps, hysteresis). Small changes of the action
    stay inside the heuristic's hysteresis band instead of turning into scale-ups, each of which is
    a cold start.

    Args:
        config: the scenario.
        max_need_factor: largest multiplication (or division) of the need, > 1.
    """

    name = "need_scale"

    def __init__(self, config: ScenarioConfig, max_need_factor: float = 2.0) -> None:
        super().__init__(config)
        if not max_need_factor > 1.0:
            raise ValueError(f"max_need_factor must be > 1, got {max_need_factor!r}")
        self.max_need_factor = float(max_need_factor)
        self.base = AdaptivePolicy(config)

    def to_replicas(self, action: NDArray[np.floating], observation: NDArray[np.floating]) -> FloatArray:
        """The heuristic's replicas for the scaled need."""
        obs = self.base.layout.decode(observation)
        unit = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        need = self.base.need_replicas(obs) * self.max_need_factor**unit
        return self.base.allocate_for_need(obs, need)

    def spec(self) -> dict[str, Any]:
        """Name and factor."""
        return {"action": self.name, "max_need_factor": self.max_need_factor}


class OffsetAction(ActionTransform):
    """Whole replicas added to or taken from the scenario's tuned constant: a discrete action.

    Agent ``n``'s action ``k_n`` is one of ``0 .. max_offset - min_offset``; its desired replicas
    are the constant's ``+ min_offset + k_n``. Below zero or above the agent's limits, and beyond
    the pool, the environment repairs the allocation as it does any action. When the constant
    fills the pool (as every tuned constant of the bundled scenarios does), ``max_offset = 0``
    keeps the policy to the moves the pool allows.

    Args:
        config: the scenario.
        min_offset: the most replicas taken per agent, as a number <= 0.
        max_offset: the most replicas added per agent, a number >= 0 (not both 0).
        offset_base: the constant's replicas per agent; None reads the scenario's tuned
            ``provisioned`` record (``gpu-alloc tune``).
    """

    name = "offset"

    def __init__(
        self,
        config: ScenarioConfig,
        min_offset: int = -1,
        max_offset: int = 1,
        offset_base: list[float] | None = None,
    ) -> None:
        super().__init__(config)
        if isinstance(min_offset, bool) or not isinstance(min_offset, int) or min_offset > 0:
            raise ValueError(f"min_offset must be an int <= 0, got {min_offset!r}")
        if isinstance(max_offset, bool) or not isinstance(max_offset, int) or max_offset < 0:
            raise ValueError(f"max_offset must be an int >= 0, got {max_offset!r}")
        if min_offset == max_offset == 0:
            raise ValueError("min_offset and max_offset are both 0: the policy would have no choice")
        self.min_offset = min_offset
        self.max_offset = max_offset
        try:
            self.base_replicas = ProvisionedPolicy(config, offset_base).replicas.astype(np.float64)
        except ConfigError as exc:  # no tuned constant for these settings
            raise ConfigError(
                f"{exc}; or give the offset action its constant with --hp offset_base=[...] (replicas per "
                "agent, e.g. those of the tuned file of the scenario it was cut from)"
            ) from None

    def action_space(self) -> spaces.Space[Any]:
        """``MultiDiscrete([max_offset - min_offset + 1] * N)``; ``-min_offset`` holds the constant."""
        return spaces.MultiDiscrete(np.full(self.config.num_agents, self.max_offset - self.min_offset + 1))

    def to_replicas(self, action: NDArray[np.floating], observation: NDArray[np.floating]) -> FloatArray:
        """The constant plus each agent's offset."""
        chosen = np.asarray(action, dtype=np.float64)
        top = self.max_offset - self.min_offset
        if np.any(chosen < 0) or np.any(chosen > top) or np.any(chosen != np.round(chosen)):
            raise ValueError(f"offset actions must be whole numbers in 0..{top}, got {np.asarray(action)}")
        replicas: FloatArray = self.base_replicas + self.min_offset + chosen
        return replicas

    def spec(self) -> dict[str, Any]:
        """Name, offset range and the constant."""
        return {
            "action": self.name,
            "min_offset": self.min_offset,
            "max_offset": self.max_offset,
            "offset_base": self.base_replicas.tolist(),
        }


ACTION_TRANSFORMS: dict[str, type[ActionTransform]] = {
    "absolute": AbsoluteAction,
    "residual": ResidualAction,
    "need_scale": NeedScaleAction,
    "offset": OffsetAction,
}
ACTION_OPTIONS: dict[str, tuple[str, ...]] = {
    "absolute": (),
    "residual": ("residual_scale", "residual_base"),
    "need_scale": ("max_need_factor",),
    "offset": ("min_offset", "max_offset", "offset_base"),
}
"""The hyperparameters each parameterisation reads."""


def make_action_transform(config: ScenarioConfig, action: str, **options: Any) -> ActionTransform:
    """The transform named ``action`` for ``config`` (options such as ``residual_scale``)."""
    if action not in ACTION_TRANSFORMS:
        raise ValueError(
            f"unknown action parameterisation {action!r}; choose one of {sorted(ACTION_TRANSFORMS)}"
        )
    unknown = sorted(set(options) - set(ACTION_OPTIONS[action]))
    if unknown:
        raise ValueError(f"the {action} action takes options {list(ACTION_OPTIONS[action])}, got {unknown}")
    return ACTION_TRANSFORMS[action](config, **options)


def transform_from_hyperparams(config: ScenarioConfig, hp: dict[str, Any]) -> ActionTransform:
    """The transform a run's hyperparameters ask for."""
    action = hp.get("action", "absolute")
    if action not in ACTION_OPTIONS:
        raise ValueError(
            f"unknown action parameterisation {action!r}; choose one of {sorted(ACTION_OPTIONS)}"
        )
    return make_action_transform(config, action, **{k: hp[k] for k in ACTION_OPTIONS[action] if k in hp})
