"""Seeded task arrivals and their token counts.

Every random quantity of a task (arrival time, which specialists it calls, every request's token
counts) is drawn when the task arrives, from the environment's own generator, so the workload of a
seed is the same whatever the allocator does: policies are compared on common random numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.config import ScenarioConfig

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


def lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    """(mu, sigma) of the log-normal with the given mean and coefficient of variation."""
    sigma2 = math.log1p(cv * cv)
    return math.log(mean) - 0.5 * sigma2, math.sqrt(sigma2)


@dataclass(frozen=True)
class TaskDraws:
    """The tasks that arrive in one interval, in arrival order. K tasks, N agents.

    ``calls[k, n]`` is True when task k calls specialist n (column 0, the coordinator, is False).
    ``input_tokens[k, n]`` / ``output_tokens[k, n]`` are the tokens of its request to agent n
    (column 0: the coordinator's planning request). ``aggregate_output_tokens[k]`` are the output
    tokens of its aggregation request; its input is the prompt plus the specialists' outputs.
    """

    arrival_s: FloatArray
    calls: BoolArray
    input_tokens: FloatArray
    output_tokens: FloatArray
    aggregate_output_tokens: FloatArray

    @property
    def count(self) -> int:
        """Number of tasks K."""
        return int(self.arrival_s.shape[0])


class TaskStream:
    """The task arrival process of one environment, driven by its own generator."""

    def __init__(self, config: ScenarioConfig, rng: np.random.Generator) -> None:
        self._workload = config.workload
        self._rng = rng
        agents = config.agents
        params_in = [lognormal_params(a.input_tokens_mean, a.input_tokens_cv) for a in agents]
        params_out = [lognormal_params(a.output_tokens_mean, a.output_tokens_cv) for a in agents]
        self._mu = np.array([p[0] for p in params_in] + [p[0] for p in params_out], np.float64)
        self._sigma = np.array([p[1] for p in params_in] + [p[1] for p in params_out], np.float64)
        agg_mu, agg_sigma = lognormal_params(
            config.workload.aggregate_output_tokens_mean, config.workload.aggregate_output_tokens_cv
        )
        self._agg = (agg_mu, agg_sigma)
        self._invoke = np.array([0.0] + [a.invoke_probability for a in agents[1:]], np.float64)
        self._num_agents = len(agents)
        self.burst_high = bool(rng.random() < config.workload.burst_high_share)
        self.phase_rad = float(rng.uniform(0.0, 2.0 * math.pi))

    def rate_tps(self, t_s: float) -> float:
        """Task arrival rate at time ``t_s`` (tasks per second)."""
        w = self._workload
        if w.pattern == "bursty":
            return w.burst_high_rate_tps if self.burst_high else w.burst_low_rate_tps
        if w.pattern == "diurnal":
            angle = 2.0 * math.pi * t_s / w.diurnal_period_s + self.phase_rad
            return w.task_rate_tps * (1.0 + w.diurnal_amplitude * math.sin(angle))
        return w.task_rate_tps

    def draw(self, t0_s: float, t1_s: float) -> TaskDraws:
        """Tasks arriving in ``[t0_s, t1_s)``; advances the burst state at the interval's end.

        The rate is held at its value at the interval's midpoint, and the bursty process switches
        state only at interval boundaries (exact as the decision interval shrinks).
        """
        rng = self._rng
        width_s = t1_s - t0_s
        count = int(rng.poisson(self.rate_tps(t0_s + 0.5 * width_s) * width_s))
        if self._workload.pattern == "bursty":
            mean_stay_s = (
                self._workload.burst_mean_high_s if self.burst_high else self._workload.burst_mean_low_s
            )
            if rng.random() < -math.expm1(-width_s / mean_stay_s):
                self.burst_high = not self.burst_high
        arrival_s = np.sort(rng.uniform(t0_s, t1_s, size=count))
        n = self._num_agents
        normals = rng.standard_normal(size=(count, 2 * n + 1))
        tokens = np.maximum(np.rint(np.exp(self._mu + self._sigma * normals[:, : 2 * n])), 1.0)
        agg_mu, agg_sigma = self._agg
        agg_out = np.maximum(np.rint(np.exp(agg_mu + agg_sigma * normals[:, 2 * n])), 1.0)
        calls = rng.random(size=(count, n)) < self._invoke
        return TaskDraws(
            arrival_s=arrival_s,
            calls=calls,
            input_tokens=tokens[:, :n],
            output_tokens=tokens[:, n:],
            aggregate_output_tokens=agg_out,
        )
