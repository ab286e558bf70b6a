"""The adaptive heuristic in replicas: one replica first, the rest by priority x demand, capped at need.

Each agent's need, in replicas, is its recent request arrival rate over what one replica sustains,
plus its queued requests spread over ``drain_time_s``. What one replica sustains comes from the
serving model, as a deployment is sized from a benchmark (:func:`sustainable_rate`): the rate at the
largest concurrency whose mean latency stays within ``latency_slack`` of a lone request's, for the
agent's mean request (the coordinator's mixes its plans and aggregations). An agent with a need,
a queue or requests in service is active: it first receives one replica (highest priority first
when even those do not fit); the rest of the pool is shared in proportion to priority x need in
GPUs, each agent capped at ``min(max_replicas, ceil(need x (1 + headroom)))`` with what it cannot
take passed on. Replicas beyond the cap stay unallocated, so idle capacity is not billed; an agent
with no need, queue or requests goes to zero. A hysteresis band keeps an agent's current replicas
while they lie between that cap and ``1 + hysteresis`` times it, so that small swings of the
estimate do not release replicas that would have to start again (every start is a cold start). One
decision is linear passes over the agents in a priority order fixed at construction: O(N), no
sorting.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from gpu_alloc_env.arrays import FloatArray, IntArray
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.allocation import priority_fill_row, round_replicas_row
from gpu_alloc_env.core.closed_loop import sustainable_rate
from gpu_alloc_env.observation import (
    AGENT_FEATURES,
    QUEUE_SCALE,
    RATE_SCALE_RPS,
    RUNNING_SCALE,
    DecodedObservation,
)
from gpu_alloc_env.policy import FixedPolicy

ACTIVE_NEED_REPLICAS = 1e-3
"""Below this need, with an empty queue and nothing in service, an agent is scaled to zero."""


@njit(cache=True)
def _allocate_row(
    queued: FloatArray,
    running: FloatArray,
    need: FloatArray,
    current: FloatArray,
    settings: FloatArray,
    size: FloatArray,
    max_replicas: FloatArray,
    priority: FloatArray,
    order: IntArray,
    scratch: FloatArray,
    replicas: FloatArray,
    visits: IntArray,
) -> None:
    """One environment's replicas (N,) from its need: the heuristic's passes over the agents.

    ``settings`` = (headroom, hysteresis, capacity_gpus); ``scratch`` (4, N). ``visits[0]`` counts
    the agents the loops visit: 1 pass here, 4 in the fill and 3 in the rounding, 8 N in all.
    """
    headroom, hysteresis, capacity = settings[0], settings[1], settings[2]
    minimum, cap, weight, share = scratch[0], scratch[1], scratch[2], scratch[3]
    visited = 0
    for n in range(need.shape[0]):
        visited += 1
        active = queued[n] >= 0.5 or running[n] >= 0.5 or need[n] > ACTIVE_NEED_REPLICAS
        target = np.ceil(need[n] * (1.0 + headroom) - 1e-9)
        held = min(max(current[n], target), np.ceil(target * (1.0 + hysteresis)))
        capped = min(max(held, 1.0), max_replicas[n]) if active else 0.0
        weight[n] = priority[n] * need[n] * size[n]
        minimum[n] = size[n] if active else 0.0
        cap[n] = max(capped, 1.0) * size[n] if active else 0.0
        share[n] = 0.0
    visits[0] += visited
    priority_fill_row(minimum, cap, weight, capacity, order, share, visits)
    round_replicas_row(share, cap, size, capacity, current, order, replicas, visits)


@njit(cache=True)
def _unsquash(y: float, scale: float) -> float:
    y = min(max(y, 0.0), 1.0 - 1e-7)
    x: float = scale * y / (1.0 - y)
    return x


@njit(cache=True)
def adaptive_decisions(
    obs: NDArray[Any],
    rate_rps: FloatArray,
    drain_time_s: float,
    settings: FloatArray,
    size: FloatArray,
    max_replicas: FloatArray,
    priority: FloatArray,
    order: IntArray,
    work: FloatArray,
    replicas: FloatArray,
    visits: IntArray,
) -> None:
    """The heuristic's (B, N) ``replicas`` straight from (B, D) observations, in one compiled call.

    Reads each agent's queue, batch, arrival rate and replicas from the observation (as
    :meth:`ObservationLayout.decode` does), then :func:`_allocate_row`: 9 N agent visits per
    environment, no sorting. ``work`` (8, N) is scratch space the caller keeps, so that no call
    allocates (and page-faults) N-sized arrays.
    """
    agents = size.shape[0]
    features = len(AGENT_FEATURES)
    capacity = settings[2]
    queued, running, need, current = work[0], work[1], work[2], work[3]
    scratch = work[4:]
    for b in range(obs.shape[0]):
        visited = 0
        for n in range(agents):
            visited += 1
            base = n * features
            queued[n] = _unsquash(np.float64(obs[b, base]), QUEUE_SCALE)
            running[n] = _unsquash(np.float64(obs[b, base + 1]), RUNNING_SCALE)
            rate = _unsquash(np.float64(obs[b, base + 2]), RATE_SCALE_RPS)
            current[n] = np.rint(np.float64(obs[b, base + 3]) * capacity / size[n]) + np.rint(
                np.float64(obs[b, base + 4]) * capacity / size[n]
            )
            need[n] = (rate + queued[n] / drain_time_s) / rate_rps[n]
        visits[0] += visited
        _allocate_row(
            queued,
            running,
            need,
            current,
            settings,
            size,
            max_replicas,
            priority,
            order,
            scratch,
            replicas[b],
            visits,
        )


def mean_request_tokens(config: ScenarioConfig) -> list[tuple[int, int]]:
    """(input, output) tokens of each agent's mean request.

    A specialist's are its own means; the coordinator serves a plan and an aggregation per task
    (whose prompt adds the specialists' expected answers), so its mean is the average of the two.
    """
    agents = config.agents
    answers = sum(a.invoke_probability * a.output_tokens_mean for a in agents[1:])
    coordinator = agents[0]
    aggregate_in = coordinator.input_tokens_mean + answers
    aggregate_out = config.workload.aggregate_output_tokens_mean
    means = [
        (
            round((coordinator.input_tokens_mean + aggregate_in) / 2.0),
            round((coordinator.output_tokens_mean + aggregate_out) / 2.0),
        )
    ]
    means += [(round(a.input_tokens_mean), round(a.output_tokens_mean)) for a in agents[1:]]
    return means


def replica_rates_rps(config: ScenarioConfig, latency_slack: float) -> NDArray[np.float64]:
    """(N,) requests per second one replica of each agent sustains for its mean request.

    The mean request is :func:`mean_request_tokens`'s; the rate is the one within
    ``latency_slack`` times a lone request's latency (:func:`sustainable_rate`).
    """
    engines = config.deployment.engines
    rates = [
        sustainable_rate(engine, tokens_in, tokens_out, latency_slack)[0]
        for engine, (tokens_in, tokens_out) in zip(engines, mean_request_tokens(config), strict=True)
    ]
    return np.array(rates)


class AdaptivePolicy(FixedPolicy):
    """The adaptive O(N) allocator, in whole replicas.

    Args:
        config: the scenario, or the environment that has it.
        headroom: fraction of replicas held above the need (0.25 holds 25% more).
        drain_time_s: seconds over which queued requests should be cleared.
        hysteresis: relative width of the band above the cap within which the current replicas
            are kept (0 disables it).
        latency_slack: the latency, relative to a lone request's, at which a replica's sustainable
            rate is measured.
    """

    name = "adaptive"

    def __init__(
        self,
        config: ScenarioConfig | object,
        headroom: float = 0.25,
        drain_time_s: float = 10.0,
        hysteresis: float = 0.5,
        latency_slack: float = 1.5,
    ) -> None:
        super().__init__(config)
        for label, value, lower in (
            ("headroom", headroom, 0.0),
            ("hysteresis", hysteresis, 0.0),
            ("latency_slack", latency_slack, 1.0),
        ):
            if not value >= lower or not np.isfinite(value):
                raise ValueError(f"{label} must be a finite number >= {lower:g}, got {value!r}")
        if not drain_time_s > 0.0 or not np.isfinite(drain_time_s):
            raise ValueError(f"drain_time_s must be a positive number of seconds, got {drain_time_s!r}")
        self.headroom = float(headroom)
        self.hysteresis = float(hysteresis)
        self.drain_time_s = float(drain_time_s)
        self.latency_slack = float(latency_slack)
        self.replica_rate_rps = replica_rates_rps(self.config, self.latency_slack)
        """(N,) requests per second one replica of each agent sustains."""
        self._settings = np.array([self.headroom, self.hysteresis, self.capacity_gpus])
        self._size = self.gpus_per_replica.astype(np.float64)
        self._priority = self.priority.astype(np.float64)
        self.visits = np.zeros(1, dtype=np.int64)
        """Agents visited by the decisions so far (9 N per decision from an observation)."""
        self._work = np.empty((8, self._size.shape[0]))
        self._one = np.empty((1, self._size.shape[0]))

    def need_replicas(self, obs: DecodedObservation) -> NDArray[np.float64]:
        """(B, N) replicas each agent needs: its arrival rate, plus its queue over the drain time."""
        need: NDArray[np.float64] = (
            obs.arrival_rate_rps + obs.queued / self.drain_time_s
        ) / self.replica_rate_rps
        return need

    def act(self, observation: NDArray[np.floating]) -> NDArray[np.floating]:
        """(B, N) desired replicas (float32): one compiled call, nine passes over the agents."""
        obs = np.asarray(observation)
        if obs.shape[-1] != self.layout.size or obs.ndim > 2:
            self.layout.decode(obs)  # raises the layout's error
        rows = obs.reshape(-1, self.layout.size)
        # One observation (the usual case) reuses a buffer; what is returned is a float32 copy.
        replicas = self._one if rows.shape[0] == 1 else np.empty((rows.shape[0], self._size.shape[0]))
        adaptive_decisions(
            rows, self.replica_rate_rps, self.drain_time_s, self._settings, self._size,
            self.max_replicas, self._priority, self.order, self._work, replicas, self.visits,
        )  # fmt: skip
        return replicas.astype(np.float32)

    def allocate(self, obs: DecodedObservation) -> NDArray[np.float64]:
        """One O(N) allocation per observation of the batch."""
        return self.allocate_for_need(obs, self.need_replicas(obs))

    def allocate_for_need(self, obs: DecodedObservation, need: NDArray[np.float64]) -> NDArray[np.float64]:
        """The replicas for a given (B, N) ``need`` in replicas (the rest of the state from ``obs``)."""
        need = np.ascontiguousarray(np.broadcast_to(need, obs.queued.shape), dtype=np.float64)
        queued = np.ascontiguousarray(obs.queued, dtype=np.float64)
        running = np.ascontiguousarray(obs.running, dtype=np.float64)
        current = np.ascontiguousarray(obs.replicas, dtype=np.float64)
        replicas = np.empty_like(need)
        scratch = np.empty((4, need.shape[1]))
        for b in range(need.shape[0]):
            _allocate_row(
                queued[b], running[b], need[b], current[b], self._settings, self._size,
                self.max_replicas, self._priority, self.order, scratch, replicas[b], self.visits,
            )  # fmt: skip
        return replicas
