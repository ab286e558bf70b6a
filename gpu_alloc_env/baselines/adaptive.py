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

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.allocation import fill_replicas
from gpu_alloc_env.core.closed_loop import sustainable_rate
from gpu_alloc_env.observation import DecodedObservation
from gpu_alloc_env.policy import FixedPolicy

ACTIVE_NEED_REPLICAS = 1e-3
"""Below this need, with an empty queue and nothing in service, an agent is scaled to zero."""


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

    def need_replicas(self, obs: DecodedObservation) -> NDArray[np.float64]:
        """(B, N) replicas each agent needs: its arrival rate, plus its queue over the drain time."""
        need: NDArray[np.float64] = (
            obs.arrival_rate_rps + obs.queued / self.drain_time_s
        ) / self.replica_rate_rps
        return need

    def allocate(self, obs: DecodedObservation) -> NDArray[np.float64]:
        """One O(N) allocation per observation of the batch."""
        return self.allocate_for_need(obs, self.need_replicas(obs))

    def allocate_for_need(self, obs: DecodedObservation, need: NDArray[np.float64]) -> NDArray[np.float64]:
        """The replicas for a given (B, N) ``need`` in replicas (the rest of the state from ``obs``)."""
        active = (obs.queued >= 0.5) | (obs.running >= 0.5) | (need > ACTIVE_NEED_REPLICAS)
        target = np.ceil(need * (1.0 + self.headroom) - 1e-9)
        held = np.clip(obs.replicas, target, np.ceil(target * (1.0 + self.hysteresis)))
        cap = np.where(active, np.clip(held, 1.0, self.max_replicas), 0.0)
        weight = self.priority * need * self.gpus_per_replica
        return fill_replicas(
            active, cap, weight, self.gpus_per_replica, self.capacity_gpus, self.order, obs.replicas
        )
