"""Static equal allocation: every agent holds ``capacity_gpus / N`` for the whole episode."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.observation import DecodedObservation
from gpu_alloc_env.policy import FixedPolicy


class StaticEqualPolicy(FixedPolicy):
    """``capacity_gpus / N`` GPUs to every agent, always, whatever the load.

    The environment makes the share feasible for each agent (capped at ``max_gpus``, rounded to the
    granularity); GPUs an agent cannot use stay unallocated.
    """

    name = "static"

    def allocate(self, obs: DecodedObservation) -> NDArray[np.float64]:
        """Equal shares for every observation of the batch."""
        batch, n = obs.alloc_gpus.shape
        share = np.floor(self.capacity_gpus / n / self.grain_gpus + 1e-9) * self.grain_gpus
        return np.full((batch, n), share)
