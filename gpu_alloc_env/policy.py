"""The one interface every policy shares, fixed or learned.

It is Stable-Baselines3's ``predict``, so ``stable_baselines3.common.evaluation.evaluate_policy``
and this project's harness score a hand-written heuristic and a trained model with the same code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.allocation import priority_order
from gpu_alloc_env.observation import DecodedObservation, ObservationLayout


@runtime_checkable
class Policy(Protocol):
    """Anything with Stable-Baselines3's ``predict``."""

    def predict(
        self,
        observation: NDArray[np.floating],
        state: tuple[NDArray[Any], ...] | None = None,
        episode_start: NDArray[np.bool_] | None = None,
        deterministic: bool = True,
    ) -> tuple[NDArray[np.float32], tuple[NDArray[Any], ...] | None]:
        """Action(s) for an observation (D,) or a batch of observations (B, D)."""
        ...


def scenario_of(source: object) -> ScenarioConfig:
    """The scenario of ``source``: a :class:`ScenarioConfig`, or an environment that has one.

    An environment is a ``GpuAllocEnv`` (``.config``), one wrapped by ``gym.make`` or any Gymnasium
    wrapper (``.unwrapped.config``), or a batched training environment (``.config``).
    """
    if isinstance(source, ScenarioConfig):
        return source
    for candidate in (source, getattr(source, "unwrapped", None)):
        config = getattr(candidate, "config", None)
        if isinstance(config, ScenarioConfig):
            return config
    raise TypeError(
        f"a policy needs the scenario it acts in: pass the environment (gym.make('GpuAlloc-v1'), "
        f"GpuAllocEnv) or its ScenarioConfig (env.unwrapped.config), got {type(source).__name__}"
    )


class FixedPolicy(ABC):
    """A stateless policy that reads the observation in natural units.

    Subclasses implement :meth:`allocate`; ``predict`` handles single and batched observations.

    Args:
        config: the scenario of the environment the policy acts in (for the observation layout and
            the agents' limits), or that environment itself (:func:`scenario_of`).
    """

    name: str = "fixed"

    def __init__(self, config: ScenarioConfig | object) -> None:
        config = scenario_of(config)
        self.config = config
        self.layout = ObservationLayout(config)
        self.capacity_gpus = float(config.capacity_gpus)
        self.gpus_per_replica = np.array([a.tensor_parallel for a in config.agents], dtype=np.int64)
        self.max_replicas = np.array([a.max_replicas for a in config.agents], dtype=np.float64)
        self.priority = np.array([a.priority for a in config.agents])
        self.order = priority_order(self.priority)

    @abstractmethod
    def allocate(self, obs: DecodedObservation) -> NDArray[np.float64]:
        """(B, N) desired replicas for a batch of decoded observations, in a new array."""

    def predict(
        self,
        observation: NDArray[np.floating],
        state: tuple[NDArray[Any], ...] | None = None,
        episode_start: NDArray[np.bool_] | None = None,
        deterministic: bool = True,
    ) -> tuple[NDArray[np.float32], tuple[NDArray[Any], ...] | None]:
        """Desired replicas per agent: (N,) for one observation, (B, N) for a batch."""
        obs = np.asarray(observation)
        action = np.asarray(self.act(obs), dtype=np.float32)  # act's array is new: no second copy
        return (action[0] if obs.ndim == 1 else action), state

    def act(self, observation: NDArray[np.floating]) -> NDArray[np.floating]:
        """(B, N) desired replicas for a (D,) or (B, D) observation: :meth:`allocate` of it decoded.

        A policy that reads the raw observation faster may override this instead; the array it
        returns must be a new one (``predict`` hands it to the caller without copying it again).
        """
        return self.allocate(self.layout.decode(observation))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scenario={self.config.name!r})"
