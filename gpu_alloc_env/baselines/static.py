"""Static equal allocation: the pool shared among the agents as evenly as whole replicas allow."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.observation import DecodedObservation
from gpu_alloc_env.policy import FixedPolicy


def equal_shares(
    gpus_per_replica: NDArray[np.int64],
    max_replicas: NDArray[np.float64],
    capacity_gpus: float,
    order: NDArray[np.int64],
) -> NDArray[np.float64]:
    """Replicas per agent with GPU shares as even as whole replicas allow.

    One replica at a time goes to the agent holding the fewest GPUs that can still take one (below
    its ``max_replicas``, within the pool), ties broken by priority: every agent gets its first
    replica before any gets a second, as far as they fit.
    """
    replicas = np.zeros(gpus_per_replica.shape[0])
    free = float(capacity_gpus)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    while True:
        fits = (gpus_per_replica <= free) & (replicas < max_replicas)
        if not fits.any():
            return replicas
        held = np.where(fits, replicas * gpus_per_replica, np.inf)
        lowest = np.flatnonzero(held == held.min())
        n = int(lowest[np.argmin(rank[lowest])])
        replicas[n] += 1
        free -= float(gpus_per_replica[n])


class StaticEqualPolicy(FixedPolicy):
    """The same replicas for every agent, always, whatever the load: the capacity split evenly.

    With whole replicas of different sizes the split is as even as they allow
    (:func:`equal_shares`); an agent that cannot use its share (``max_replicas``) leaves it unused.
    """

    name = "static"

    def __init__(self, config: ScenarioConfig | object) -> None:
        super().__init__(config)
        self.replicas = equal_shares(self.gpus_per_replica, self.max_replicas, self.capacity_gpus, self.order)

    def allocate(self, obs: DecodedObservation) -> NDArray[np.float64]:
        """The equal shares for every observation of the batch."""
        batch = obs.active_replicas.shape[0]
        return np.tile(self.replicas, (batch, 1))
