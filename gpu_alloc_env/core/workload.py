"""Seeded task arrivals and their token counts.

Every random quantity of a task (arrival time, which specialists it calls, every request's token
counts) is drawn when the task arrives, from the environment's own generator, so the workload of a
seed is the same whatever the allocator does: policies are compared on common random numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gpu_alloc_env.arrays import FloatArray, IntArray
from gpu_alloc_env.config import ScenarioConfig

DENSE_CALLS_MAX_SPECIALISTS = 64
"""Up to this many specialists a task's calls are one Bernoulli draw per specialist; beyond it the
calls of an interval are drawn sparsely, in time proportional to the calls (same distribution)."""


def lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    """(mu, sigma) of the log-normal with the given mean and coefficient of variation."""
    sigma2 = math.log1p(cv * cv)
    return math.log(mean) - 0.5 * sigma2, math.sqrt(sigma2)


@dataclass(frozen=True)
class TaskDraws:
    """The K tasks that arrive in one interval, in arrival order, and their M specialist calls.

    Per task: ``arrival_s``, the planning request's ``plan_input_tokens`` and
    ``plan_output_tokens``, and the aggregation request's ``aggregate_output_tokens`` (its input is
    the prompt plus the specialists' outputs). Per call, grouped by task in task order:
    ``call_task`` (index among the K tasks), ``call_agent`` (specialist index, >= 1) and the
    request's ``call_input_tokens`` / ``call_output_tokens``.
    """

    arrival_s: FloatArray
    plan_input_tokens: FloatArray
    plan_output_tokens: FloatArray
    aggregate_output_tokens: FloatArray
    call_task: IntArray
    call_agent: IntArray
    call_input_tokens: FloatArray
    call_output_tokens: FloatArray

    @property
    def count(self) -> int:
        """Number of tasks K."""
        return int(self.arrival_s.shape[0])


NO_TASKS = TaskDraws(
    arrival_s=np.zeros(0),
    plan_input_tokens=np.zeros(0),
    plan_output_tokens=np.zeros(0),
    aggregate_output_tokens=np.zeros(0),
    call_task=np.zeros(0, dtype=np.int64),
    call_agent=np.zeros(0, dtype=np.int64),
    call_input_tokens=np.zeros(0),
    call_output_tokens=np.zeros(0),
)
"""An interval without arrivals."""


class TaskStream:
    """The task arrival process of one environment, driven by its own generator."""

    def __init__(self, config: ScenarioConfig, rng: np.random.Generator) -> None:
        self._workload = config.workload
        self._rng = rng
        agents = config.agents
        params_in = [lognormal_params(a.input_tokens_mean, a.input_tokens_cv) for a in agents]
        params_out = [lognormal_params(a.output_tokens_mean, a.output_tokens_cv) for a in agents]
        self._mu_in = np.array([p[0] for p in params_in])
        self._sigma_in = np.array([p[1] for p in params_in])
        self._mu_out = np.array([p[0] for p in params_out])
        self._sigma_out = np.array([p[1] for p in params_out])
        self._agg = lognormal_params(
            config.workload.aggregate_output_tokens_mean, config.workload.aggregate_output_tokens_cv
        )
        self._invoke = np.array([a.invoke_probability for a in agents[1:]], np.float64)
        self._groups: list[tuple[float, IntArray]] = []
        """Specialists by invoke probability (the sparse draw), each as (probability, indices)."""
        if self._invoke.size > DENSE_CALLS_MAX_SPECIALISTS:
            for probability in np.unique(self._invoke):
                members = np.flatnonzero(self._invoke == probability).astype(np.int64)
                self._groups.append((float(probability), members))
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

        The rate is held at its value at the interval's midpoint. The bursty state is the
        two-state Markov chain sampled at interval boundaries: it changes with the chain's exact
        transition probability over the interval, so its long-run share of bursts is
        ``burst_high_share`` and the mean rate ``task_rate_tps`` whatever the interval.
        """
        rng = self._rng
        width_s = t1_s - t0_s
        count = int(rng.poisson(self.rate_tps(t0_s + 0.5 * width_s) * width_s))
        if self._workload.pattern == "bursty":
            w = self._workload
            settle = -math.expm1(-width_s * (1.0 / w.burst_mean_high_s + 1.0 / w.burst_mean_low_s))
            share = w.burst_high_share
            if rng.random() < ((1.0 - share) if self.burst_high else share) * settle:
                self.burst_high = not self.burst_high
        if count == 0:
            return NO_TASKS  # what the draws below give for no task, without drawing (none would)
        return self.tasks_at(np.sort(rng.uniform(t0_s, t1_s, size=count)))

    def tasks_at(self, arrival_s: FloatArray) -> TaskDraws:
        """Tasks arriving at the sorted times ``arrival_s``: their calls and token counts, drawn."""
        rng = self._rng
        count = int(arrival_s.size)
        if self._groups:
            call_task, column = self._sparse_calls(count)
        else:
            call_task, column = np.nonzero(rng.random(size=(count, self._invoke.size)) < self._invoke)
        call_agent = column + 1
        task_normals = rng.standard_normal(size=(3, count))
        call_normals = rng.standard_normal(size=(2, call_task.size))
        agg_mu, agg_sigma = self._agg
        return TaskDraws(
            arrival_s=arrival_s,
            plan_input_tokens=_tokens(self._mu_in[0], self._sigma_in[0], task_normals[0]),
            plan_output_tokens=_tokens(self._mu_out[0], self._sigma_out[0], task_normals[1]),
            aggregate_output_tokens=_tokens(agg_mu, agg_sigma, task_normals[2]),
            call_task=call_task.astype(np.int64),
            call_agent=call_agent.astype(np.int64),
            call_input_tokens=_tokens(self._mu_in[call_agent], self._sigma_in[call_agent], call_normals[0]),
            call_output_tokens=_tokens(
                self._mu_out[call_agent], self._sigma_out[call_agent], call_normals[1]
            ),
        )

    def _sparse_calls(self, count: int) -> tuple[IntArray, IntArray]:
        """(task, specialist) of every call of ``count`` tasks, grouped by task, specialists ascending.

        Within a group of specialists of equal invoke probability p, the count x m (task,
        specialist) pairs are independent Bernoulli(p) trials: the number of calls is
        Binomial(count x m, p) and which pairs they are is a uniform subset. So this is the
        distribution of the dense draw, at a cost in the calls rather than in tasks x specialists.
        """
        rng = self._rng
        tasks, columns = [], []
        for probability, members in self._groups:
            pairs = count * members.size
            calls = int(rng.binomial(pairs, probability)) if pairs else 0
            chosen = rng.choice(pairs, size=calls, replace=False) if calls else np.zeros(0, np.int64)
            tasks.append(chosen // members.size)
            columns.append(members[chosen % members.size])
        task = np.concatenate(tasks).astype(np.int64)
        column = np.concatenate(columns).astype(np.int64)
        order = np.lexsort((column, task))
        return task[order], column[order]


def _tokens(mu: FloatArray | float, sigma: FloatArray | float, normal: FloatArray) -> FloatArray:
    """Whole token counts >= 1 from standard normals through a log-normal."""
    tokens: FloatArray = np.maximum(np.rint(np.exp(mu + sigma * normal)), 1.0)
    return tokens
