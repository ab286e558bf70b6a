"""The adaptive heuristic: minimums first, the rest by priority x demand, capped at what is needed.

Each agent's need in GPUs is its recent work arrival rate (GPU-seconds of work per second) plus
the work already queued spread over ``drain_time_s``. An agent with a queue or a need is active: it
first receives its ``min_gpus`` (highest priority first when even the minimums do not fit); the
rest of the capacity is shared in proportion to priority x need, each agent capped at
``min(max_gpus, need x (1 + headroom))`` with what it cannot take passed on. GPUs beyond the cap
stay unallocated, so idle capacity is not billed; an agent with no queue and no need is scaled to
zero. A hysteresis band keeps an agent's current allocation while it lies between that cap and
``1 + hysteresis`` times it, so that small swings of the demand estimate do not release GPUs that
would have to be loaded again (every scale-up is a cold start). One decision is three linear
passes over the agents in a priority order fixed at construction: O(N), no sorting.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.allocation import AllocationLimits, priority_fill
from gpu_alloc_env.observation import DecodedObservation
from gpu_alloc_env.policy import FixedPolicy

ACTIVE_NEED_GPUS = 1e-3
"""Below this need, and with an empty queue, an agent is scaled to zero."""


class AdaptivePolicy(FixedPolicy):
    """The adaptive O(N) allocator.

    Args:
        config: the scenario.
        headroom: fraction of GPUs held above the need (0.25 holds 25% more).
        drain_time_s: seconds over which queued work should be cleared.
        hysteresis: relative width of the band above the cap within which the current allocation
            is kept (0 disables it).
    """

    name = "adaptive"

    def __init__(
        self,
        config: ScenarioConfig,
        headroom: float = 0.25,
        drain_time_s: float = 10.0,
        hysteresis: float = 0.5,
    ) -> None:
        super().__init__(config)
        if not headroom >= 0.0 or not np.isfinite(headroom):
            raise ValueError(f"headroom must be a finite fraction >= 0, got {headroom!r}")
        if not drain_time_s > 0.0 or not np.isfinite(drain_time_s):
            raise ValueError(f"drain_time_s must be a positive number of seconds, got {drain_time_s!r}")
        if not hysteresis >= 0.0 or not np.isfinite(hysteresis):
            raise ValueError(f"hysteresis must be a finite fraction >= 0, got {hysteresis!r}")
        self.headroom = float(headroom)
        self.hysteresis = float(hysteresis)
        self.drain_time_s = float(drain_time_s)
        self.order = AllocationLimits.from_config(config).priority_order

    def need_gpus(self, obs: DecodedObservation) -> NDArray[np.float64]:
        """(B, N) GPUs each agent needs: arrival rate of work plus queued work over the drain time."""
        return obs.demand_gpus + obs.queued_work_gpu_s / self.drain_time_s

    def allocate(self, obs: DecodedObservation) -> NDArray[np.float64]:
        """One O(N) allocation per observation of the batch."""
        return self.allocate_for_need(obs, self.need_gpus(obs))

    def allocate_for_need(self, obs: DecodedObservation, need: NDArray[np.float64]) -> NDArray[np.float64]:
        """The allocation for a given (B, N) ``need`` in GPUs (the rest of the state from ``obs``)."""
        active = (obs.queue_requests >= 0.5) | (need > ACTIVE_NEED_GPUS)
        grain = self.grain_gpus
        target = np.ceil(need * (1.0 + self.headroom) / grain - 1e-9) * grain
        minimum = np.where(active, self.min_gpus, 0.0)
        held = np.clip(obs.alloc_gpus, target, target * (1.0 + self.hysteresis))
        cap = np.where(active, np.clip(held, self.min_gpus, self.max_gpus), 0.0)
        weight = self.priority * need
        capacity = np.full(need.shape[0], self.capacity_gpus)
        alloc = priority_fill(minimum, cap, weight, capacity, self.order)
        return np.floor(alloc / grain + 1e-9) * grain
