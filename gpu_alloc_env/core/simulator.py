"""The serverless multi-agent GPU simulator: a batch of B independent environments stepped at once.

Pure NumPy; it knows nothing of reinforcement learning. Each ``step`` takes the allocation every
agent of every environment asks for, makes it feasible, bills it, advances cold starts, draws the
interval's task arrivals and serves the agents' queues through the workflow
coordinator -> specialists -> coordinator. Shapes: B environments, N agents; allocations are held in
integer slices of ``gpu_granularity`` GPUs.

Order of events in the interval ``[t0, t0 + decision_interval_s)`` of an environment:

1. GPUs whose cold start has elapsed by ``t0`` become warm.
2. The requested allocation is repaired to a feasible one and applied: reductions cancel loading
   GPUs first (newest first), then warm ones; increases reuse a kept-alive instance if there is one,
   and otherwise start loading, serving ``cold_start_s`` later (rounded up to whole intervals).
3. Tasks arriving in the interval send their planning requests to the coordinator, which serves its
   queue; completed plans send requests to the specialists the task calls (at the completion time),
   which serve theirs; a task whose last specialist answered sends its aggregation request to the
   coordinator, which serves it with the capacity left in the interval.
4. Every allocated GPU-second is billed, loading and idle included.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.config import ConfigError, ScenarioConfig
from gpu_alloc_env.core.allocation import AllocationLimits, repair_allocation
from gpu_alloc_env.core.queues import (
    KIND_AGGREGATE,
    KIND_PLAN,
    KIND_SPECIALIST,
    RequestQueues,
)
from gpu_alloc_env.core.replay import ReplayPart, TraceStream, window_trace_s
from gpu_alloc_env.core.tasks import TaskTable
from gpu_alloc_env.core.workload import TaskStream
from gpu_alloc_env.traces import caller_stacklevel, split_bounds_s, trace_from_spec

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


@dataclass
class StepStats:
    """What happened in one interval, per environment (B,) or per environment and agent (B, N)."""

    tasks_arrived: IntArray
    tasks_completed: IntArray
    task_latency_sum_s: FloatArray
    """Sum of the end-to-end latencies of the tasks completed in the interval."""
    slo_misses: IntArray
    """Tasks completed in the interval later than ``task_slo_s``."""
    delay_task_s: FloatArray
    """Task-seconds spent in the system during the interval (tasks in flight, integrated)."""
    requests_completed: IntArray
    request_latency_sum_s: FloatArray
    output_tokens: FloatArray
    """Output tokens of the requests completed in the interval."""
    alloc_gpu_s: FloatArray
    """(B, N) GPU-seconds billed: allocated (warm or loading) plus kept-alive."""
    busy_gpu_s: FloatArray
    """(B, N) GPU-seconds of work done."""
    cold_starts: IntArray
    """(B, N) scale-ups that had to load the model."""
    cost_usd: FloatArray
    alloc_slices: IntArray
    """(B, N) the feasible allocation applied."""
    repairs: dict[str, BoolArray]
    repair_gpus: FloatArray


@dataclass
class EpisodeTotals:
    """Running totals of the current episode of every environment."""

    batch_size: int
    num_agents: int
    tasks_arrived: IntArray = field(init=False)
    cost_usd: FloatArray = field(init=False)
    alloc_gpu_s: FloatArray = field(init=False)
    busy_gpu_s: FloatArray = field(init=False)
    cold_starts: IntArray = field(init=False)
    output_tokens: FloatArray = field(init=False)
    repair_gpus: FloatArray = field(init=False)
    request_log: list[list[tuple[IntArray, FloatArray]]] = field(init=False)
    """Per environment, chunks of (agent index, latency) of completed requests."""

    def __post_init__(self) -> None:
        b, n = self.batch_size, self.num_agents
        self.tasks_arrived = np.zeros(b, dtype=np.int64)
        self.cost_usd = np.zeros(b)
        self.alloc_gpu_s = np.zeros((b, n))
        self.busy_gpu_s = np.zeros((b, n))
        self.cold_starts = np.zeros((b, n), dtype=np.int64)
        self.output_tokens = np.zeros(b)
        self.repair_gpus = np.zeros(b)
        self.request_log = [[] for _ in range(b)]

    def clear(self, env: int) -> None:
        """Zero environment ``env``'s totals."""
        self.tasks_arrived[env] = 0
        self.cost_usd[env] = 0.0
        self.alloc_gpu_s[env] = 0.0
        self.busy_gpu_s[env] = 0.0
        self.cold_starts[env] = 0
        self.output_tokens[env] = 0.0
        self.repair_gpus[env] = 0.0
        self.request_log[env] = []

    def log_requests(self, env: IntArray, agent: IntArray, latency_s: FloatArray) -> None:
        """Record completed requests' latencies."""
        if self.batch_size == 1:
            self.request_log[0].append((agent, latency_s))
            return
        for e in np.unique(env):
            mine = env == e
            self.request_log[e].append((agent[mine], latency_s[mine]))

    def request_latencies(self, env: int) -> list[FloatArray]:
        """Per agent, the latencies of environment ``env``'s completed requests, in completion order."""
        log = self.request_log[env]
        if not log:
            return [np.zeros(0) for _ in range(self.num_agents)]
        agent = np.concatenate([chunk[0] for chunk in log])
        latency = np.concatenate([chunk[1] for chunk in log])
        order = np.argsort(agent, kind="stable")
        bounds = np.searchsorted(agent[order], np.arange(1, self.num_agents))
        return np.split(latency[order], bounds)

    def add(self, stats: StepStats) -> None:
        """Accumulate one interval."""
        self.tasks_arrived += stats.tasks_arrived
        self.cost_usd += stats.cost_usd
        self.alloc_gpu_s += stats.alloc_gpu_s
        self.busy_gpu_s += stats.busy_gpu_s
        self.cold_starts += stats.cold_starts
        self.output_tokens += stats.output_tokens
        self.repair_gpus += stats.repair_gpus


class BatchSimulator:
    """B independent environments of one scenario, stepped together.

    Args:
        config: the scenario.
        batch_size: number of environments B.
        replay: the trace part to replay when the workload pattern is ``trace``; by default it is
            read from the file or bundled trace that ``config.workload.trace`` names.
    """

    def __init__(self, config: ScenarioConfig, batch_size: int = 1, replay: ReplayPart | None = None) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.config = config
        self.replay = replay if replay is not None or config.workload.trace is None else replay_part(config)
        self.batch_size = batch_size
        self.limits = AllocationLimits.from_config(config)
        agents = config.agents
        n = len(agents)
        self.num_agents = n
        self.dt_s = config.decision_interval_s
        self.grain_gpus = config.gpu_granularity
        self.prefill_tps = np.array([a.prefill_tokens_per_s_per_gpu for a in agents])
        self.decode_tps = np.array([a.decode_tokens_per_s_per_gpu for a in agents])
        self.tpot_s = np.array([a.tpot_s for a in agents])
        self.min_gpus = np.array([a.min_gpus for a in agents])
        self.cold_steps = np.array(
            [math.ceil(a.cold_start_s / self.dt_s - 1e-9) for a in agents], dtype=np.int64
        )
        self._ring_len = int(self.cold_steps.max()) + 1
        self._ewma_alpha = -math.expm1(-self.dt_s / config.rate_window_s)

        self.queues = RequestQueues(batch_size, n)
        self.tasks = TaskTable(batch_size)
        self.totals = EpisodeTotals(batch_size, n)
        self.step_count: IntArray = np.zeros(batch_size, dtype=np.int64)
        self.alloc_slices = np.zeros((batch_size, n), dtype=np.int64)
        self.warm_slices = np.zeros((batch_size, n), dtype=np.int64)
        self.loading_slices = np.zeros((batch_size, n), dtype=np.int64)
        self._ring = np.zeros((batch_size, n, self._ring_len), dtype=np.int64)
        self.parked_slices = np.zeros((batch_size, n), dtype=np.int64)
        self.parked_until_s = np.zeros((batch_size, n))
        self.arrival_rps = np.zeros((batch_size, n))
        """(B, N) exponentially weighted request arrival rate per agent."""
        self.arrival_work_gpu = np.zeros((batch_size, n))
        """(B, N) exponentially weighted work arrival rate, GPU-seconds per second: GPUs of demand."""
        self.tasks_in_flight = np.zeros(batch_size, dtype=np.int64)
        self.tasks_completed = np.zeros(batch_size, dtype=np.int64)
        self.slo_met = np.zeros(batch_size, dtype=np.int64)
        self.streams: list[TaskStream | None] = [None] * batch_size

    # ------------------------------------------------------------------ state views
    @property
    def time_s(self) -> FloatArray:
        """(B,) simulated time of each environment."""
        return self.step_count.astype(np.float64) * self.dt_s

    @property
    def done(self) -> BoolArray:
        """(B,) environments whose episode span has elapsed."""
        return self.step_count >= self.config.episode_steps

    def queue_requests(self) -> IntArray:
        """(B, N) requests queued or in service at each agent."""
        counts: IntArray = self.queues.length.copy()
        return counts

    def queued_work_gpu_s(self) -> FloatArray:
        """(B, N) remaining work queued at each agent, GPU-seconds."""
        return self.queues.queued_work_gpu_s()

    def oldest_wait_s(self) -> FloatArray:
        """(B, N) age of the oldest request at each agent (0 when empty)."""
        head = self.queues.arrival_s[:, :, 0]
        return np.where(self.queues.length > 0, self.time_s[:, None] - head, 0.0)

    # ------------------------------------------------------------------ reset
    def reset_env(self, env: int, rng: np.random.Generator) -> None:
        """Start a new episode in environment ``env``, all agents scaled to zero, drawing from ``rng``."""
        self.queues.clear(env)
        self.tasks.clear(env)
        self.totals.clear(env)
        self.step_count[env] = 0
        for array in (
            self.alloc_slices,
            self.warm_slices,
            self.loading_slices,
            self._ring,
            self.parked_slices,
        ):
            array[env] = 0
        self.parked_until_s[env] = 0.0
        self.arrival_rps[env] = 0.0
        self.arrival_work_gpu[env] = 0.0
        self.tasks_in_flight[env] = 0
        self.tasks_completed[env] = 0
        self.slo_met[env] = 0
        if self.replay is not None:
            self.streams[env] = TraceStream(self.config, self.replay, rng)
        else:
            self.streams[env] = TaskStream(self.config, rng)

    # ------------------------------------------------------------------ step
    def step(self, desired_gpus: FloatArray) -> StepStats:
        """Advance every environment by one decision interval.

        Args:
            desired_gpus: (B, N) finite requested GPUs per agent; repaired to a feasible allocation.
        """
        if any(stream is None for stream in self.streams):
            raise RuntimeError("every environment must be reset (reset_env) before step")
        b, n = self.batch_size, self.num_agents
        t0 = self.time_s
        t1 = t0 + self.dt_s
        repair = repair_allocation(np.asarray(desired_gpus, dtype=np.float64), self.limits)
        self._harvest_loaded()
        cold = self._apply_allocation(repair.slices, t0)
        billed_s = self._bill_parked(t0, t1)
        stats = StepStats(
            tasks_arrived=np.zeros(b, dtype=np.int64),
            tasks_completed=np.zeros(b, dtype=np.int64),
            task_latency_sum_s=np.zeros(b),
            slo_misses=np.zeros(b, dtype=np.int64),
            delay_task_s=self.tasks_in_flight.astype(np.float64) * self.dt_s,
            requests_completed=np.zeros((b, n), dtype=np.int64),
            request_latency_sum_s=np.zeros((b, n)),
            output_tokens=np.zeros(b),
            alloc_gpu_s=(self.alloc_slices * self.dt_s + billed_s) * self.grain_gpus,
            busy_gpu_s=np.zeros((b, n)),
            cold_starts=cold,
            cost_usd=np.zeros(b),
            alloc_slices=self.alloc_slices.copy(),
            repairs=repair.repairs,
            repair_gpus=repair.repair_gpus,
        )
        stats.cost_usd = stats.alloc_gpu_s.sum(axis=1) * self.config.price_per_gpu_s
        self._serve_interval(t0, t1, stats)
        self.step_count += 1
        self.totals.add(stats)
        return stats

    def _harvest_loaded(self) -> None:
        slot = self.step_count % self._ring_len
        rows = np.arange(self.batch_size)
        ready = self._ring[rows, :, slot]
        if ready.any():
            self.warm_slices += ready
            self.loading_slices -= ready
            self._ring[rows, :, slot] = 0

    def _apply_allocation(self, target: IntArray, t0: FloatArray) -> IntArray:
        """Apply the feasible ``target`` (B, N); returns the (B, N) cold starts it caused."""
        current = self.alloc_slices
        decrease = np.maximum(current - target, 0)
        if decrease.any():
            to_zero = (target == 0) & (current > 0)
            if self.config.keep_alive_s > 0.0 and to_zero.any():
                keep = np.minimum(self.warm_slices, self.limits.min_slices)
                park = to_zero & (keep > 0)
                self.parked_slices = np.where(park, keep, self.parked_slices)
                self.parked_until_s = np.where(
                    park, t0[:, None] + self.config.keep_alive_s, self.parked_until_s
                )
            from_loading = np.minimum(decrease, self.loading_slices)
            if from_loading.any():
                self._cancel_loading(from_loading)
            self.warm_slices -= decrease - from_loading
        increase = np.maximum(target - current, 0)
        cold: IntArray = np.zeros_like(increase)
        if increase.any():
            live_parked = np.where(self.parked_until_s > t0[:, None], self.parked_slices, 0)
            reuse = np.where(current == 0, np.minimum(increase, live_parked), 0)
            self.parked_slices = np.where(increase > 0, 0, self.parked_slices)
            self.warm_slices += reuse
            load = increase - reuse
            instant = self.cold_steps == 0
            self.warm_slices += np.where(instant, load, 0)
            delayed = np.where(instant, 0, load)
            if delayed.any():
                slot = (self.step_count[:, None] + self.cold_steps[None, :]) % self._ring_len
                rows, agents = np.nonzero(delayed)
                self._ring[rows, agents, slot[rows, agents]] += delayed[rows, agents]
                self.loading_slices += delayed
            cold = (load > 0).astype(np.int64)
        self.alloc_slices = target.copy()
        return cold

    def _cancel_loading(self, amount: IntArray) -> None:
        """Cancel ``amount`` (B, N) loading slices, the most recently started first."""
        offsets = np.arange(self._ring_len)
        newest_first = (
            self.step_count[:, None, None] + self.cold_steps[None, :, None] - offsets
        ) % self._ring_len
        values = np.take_along_axis(self._ring, newest_first, axis=2)
        before = np.cumsum(values, axis=2) - values
        take = np.clip(amount[:, :, None] - before, 0, values)
        np.put_along_axis(self._ring, newest_first, values - take, axis=2)
        self.loading_slices -= amount

    def _bill_parked(self, t0: FloatArray, t1: FloatArray) -> FloatArray:
        """(B, N) parked slice-seconds billed in the interval; expires finished keep-alives."""
        if not self.parked_slices.any():
            return np.zeros(self.parked_slices.shape)
        window = np.clip(self.parked_until_s - t0[:, None], 0.0, self.dt_s)
        billed = self.parked_slices * window
        self.parked_slices = np.where(self.parked_until_s <= t1[:, None], 0, self.parked_slices)
        return billed

    # ------------------------------------------------------------------ serving
    def _capacity_gpus(self) -> FloatArray:
        serving = self.warm_slices >= self.limits.min_slices
        capacity: FloatArray = np.where(serving, self.warm_slices * self.grain_gpus, 0.0)
        return capacity

    def _request_cost(
        self, agent: IntArray, input_tokens: FloatArray, output_tokens: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """(work GPU-seconds, latency floor seconds) of requests to agents ``agent``."""
        prefill = self.prefill_tps[agent]
        work = input_tokens / prefill + output_tokens / self.decode_tps[agent]
        floor = input_tokens / (prefill * self.min_gpus[agent]) + output_tokens * self.tpot_s[agent]
        return work, floor

    def _enqueue(
        self,
        env: IntArray,
        agent: IntArray,
        arrival_s: FloatArray,
        task: IntArray,
        input_tokens: FloatArray,
        output_tokens: FloatArray,
        kind: int,
        arrivals: tuple[FloatArray, FloatArray],
    ) -> None:
        """Queue requests and count them, and their work, in ``arrivals`` (requests, work)."""
        work, floor = self._request_cost(agent, input_tokens, output_tokens)
        self.queues.append(env, agent, arrival_s, work, floor, output_tokens, task, kind)
        np.add.at(arrivals[0], (env, agent), 1.0)
        np.add.at(arrivals[1], (env, agent), work)

    def _serve_interval(self, t0: FloatArray, t1: FloatArray, stats: StepStats) -> None:
        b, n = self.batch_size, self.num_agents
        coordinator, specialists = slice(0, 1), slice(1, n)
        capacity = self._capacity_gpus()
        arrivals = (np.zeros((b, n)), np.zeros((b, n)))

        env, index, arrival = self._admit_tasks(t0, t1, stats)
        if env.size:
            zeros = np.zeros_like(env)
            self._enqueue(
                env,
                zeros,
                arrival,
                index,
                self.tasks.plan_input_tokens[env, index],
                self.tasks.plan_output_tokens[env, index],
                KIND_PLAN,
                arrivals,
            )
        busy, coordinator_free = self.queues.serve(
            coordinator, t0, t1, capacity[:, coordinator], t0[:, None].copy()
        )
        stats.busy_gpu_s[:, coordinator] += busy
        rows, _, task, done_s, kind, _ = self._collect(coordinator, 0, t1, stats)
        plans = kind == KIND_PLAN
        direct = plans & (self.tasks.pending[rows, task] == 0)
        finished = direct | (kind == KIND_AGGREGATE)
        self._finish_tasks(rows[finished], task[finished], done_s[finished], t1, stats)

        if n > 1:
            planned = plans & ~direct
            p_rows, p_task, p_done = rows[planned], task[planned], done_s[planned]
            if p_rows.size:
                e, k, call = self.tasks.expand_calls(p_rows, p_task)
                self._enqueue(
                    e,
                    self.tasks.call_agent[e, call],
                    np.repeat(p_done, self.tasks.call_count[p_rows, p_task]),
                    k,
                    self.tasks.call_input_tokens[e, call],
                    self.tasks.call_output_tokens[e, call],
                    KIND_SPECIALIST,
                    arrivals,
                )
            busy, _ = self.queues.serve(
                specialists, t0, t1, capacity[:, specialists], np.repeat(t0[:, None], n - 1, axis=1)
            )
            stats.busy_gpu_s[:, specialists] += busy
            s_rows, _, s_task, s_done, _, s_out = self._collect(specialists, 1, t1, stats)
            if s_rows.size:
                np.subtract.at(self.tasks.pending, (s_rows, s_task), 1)
                np.maximum.at(self.tasks.specialists_done_s, (s_rows, s_task), s_done)
                np.add.at(self.tasks.aggregate_input_tokens, (s_rows, s_task), s_out)
                self._send_aggregations(
                    s_rows, s_task, t0, t1, capacity[:, coordinator], coordinator_free, arrivals, stats
                )
        alpha = self._ewma_alpha
        self.arrival_rps += alpha * (arrivals[0] / self.dt_s - self.arrival_rps)
        self.arrival_work_gpu += alpha * (arrivals[1] / self.dt_s - self.arrival_work_gpu)

    def _send_aggregations(
        self,
        rows: IntArray,
        task: IntArray,
        t0: FloatArray,
        t1: FloatArray,
        capacity: FloatArray,
        coordinator_free: FloatArray,
        arrivals: tuple[FloatArray, FloatArray],
        stats: StepStats,
    ) -> None:
        """Queue the aggregations of tasks whose last specialist answered, and serve them."""
        width = self.tasks.capacity
        key = np.unique(rows * width + task)
        rows, task = key // width, key % width
        ready = self.tasks.pending[rows, task] == 0
        rows, task = rows[ready], task[ready]
        if not rows.size:
            return
        first_new = self.queues.length[:, 0:1].copy()
        self._enqueue(
            rows,
            np.zeros_like(rows),
            self.tasks.specialists_done_s[rows, task],
            task,
            self.tasks.aggregate_input_tokens[rows, task],
            self.tasks.aggregate_output_tokens[rows, task],
            KIND_AGGREGATE,
            arrivals,
        )
        coordinator = slice(0, 1)
        busy, _ = self.queues.serve(coordinator, t0, t1, capacity, coordinator_free, first_new)
        stats.busy_gpu_s[:, coordinator] += busy
        a_rows, _, a_task, a_done, _, _ = self._collect(coordinator, 0, t1, stats)
        self._finish_tasks(a_rows, a_task, a_done, t1, stats)

    def _admit_tasks(
        self, t0: FloatArray, t1: FloatArray, stats: StepStats
    ) -> tuple[IntArray, IntArray, FloatArray]:
        """Draw and register the interval's tasks; returns (env, task index, arrival) sorted by env."""
        draws = [
            stream.draw(float(t0[e]), float(t1[e]))  # type: ignore[union-attr]
            for e, stream in enumerate(self.streams)
        ]
        counts = np.array([d.count for d in draws], dtype=np.int64)
        stats.tasks_arrived += counts
        if not counts.any():
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        index = self.tasks.add(np.arange(self.batch_size), draws)
        env = np.repeat(np.arange(self.batch_size), counts)
        arrival = self.tasks.arrival_s[env, index]
        self.tasks_in_flight += counts
        stats.delay_task_s += np.bincount(env, weights=t1[env] - arrival, minlength=self.batch_size)
        return env, index, arrival

    def _collect(
        self, agents: slice, offset: int, t1: FloatArray, stats: StepStats
    ) -> tuple[IntArray, IntArray, IntArray, FloatArray, NDArray[np.int8], FloatArray]:
        """Remove the completed requests of ``agents`` (starting at agent ``offset``) and log them.

        Returns:
            (env, agent, task, completion time, kind, output tokens) of each completed request.
        """
        done = self.queues.completions(agents, t1)
        if not done.any():
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty, np.zeros(0), np.zeros(0, dtype=np.int8), np.zeros(0)
        rows, cols, slots = np.nonzero(done)
        agent = cols + offset
        done_s = self.queues.completion_s(agents)[rows, cols, slots]
        latency = done_s - self.queues.arrival_s[rows, agent, slots]
        task = self.queues.task[rows, agent, slots]
        kind = self.queues.kind[rows, agent, slots]
        out = self.queues.output_tokens[rows, agent, slots]
        self.queues.remove(agents, done)
        np.add.at(stats.requests_completed, (rows, agent), 1)
        np.add.at(stats.request_latency_sum_s, (rows, agent), latency)
        stats.output_tokens += np.bincount(rows, weights=out, minlength=self.batch_size)
        self.totals.log_requests(rows, agent, latency)
        return rows, agent, task, done_s, kind, out

    def _finish_tasks(
        self, rows: IntArray, task: IntArray, done_s: FloatArray, t1: FloatArray, stats: StepStats
    ) -> None:
        if not rows.size:
            return
        b = self.batch_size
        self.tasks.complete_s[rows, task] = done_s
        latency = done_s - self.tasks.arrival_s[rows, task]
        met = latency <= self.config.task_slo_s
        count = np.bincount(rows, minlength=b)
        stats.tasks_completed += count
        stats.task_latency_sum_s += np.bincount(rows, weights=latency, minlength=b)
        stats.slo_misses += np.bincount(rows, weights=~met, minlength=b).astype(np.int64)
        stats.delay_task_s -= np.bincount(rows, weights=t1[rows] - done_s, minlength=b)
        self.tasks_in_flight -= count
        self.tasks_completed += count
        self.slo_met += np.bincount(rows, weights=met, minlength=b).astype(np.int64)


def _warn_of_gaps(arrival_s: FloatArray, start_s: float, end_s: float, window_s: float, part: str) -> None:
    """Warn when some episode windows of ``[start_s, end_s)`` can hold no request at all."""
    inside = arrival_s[(arrival_s >= start_s) & (arrival_s < end_s)]
    edges = np.concatenate(([start_s], inside, [end_s]))
    gaps = np.diff(edges)
    longest = int(np.argmax(gaps))
    if gaps[longest] > window_s:
        warnings.warn(
            f"{part} has no request for {gaps[longest]:.1f} trace seconds (from {edges[longest]:.1f} s), "
            f"longer than an episode's window of {window_s:.1f} s: episodes drawn there hold no tasks "
            "and score n/a; lower time_scale or lengthen episode_length_s so that a window spans the gap",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )


def replay_part(config: ScenarioConfig) -> ReplayPart:
    """The part of ``config``'s trace that its episodes replay, checked to hold one episode."""
    spec = config.workload.trace
    if spec is None:
        raise ValueError(f"scenario {config.name!r} does not replay a trace")
    trace = trace_from_spec(spec)
    start_s, end_s = split_bounds_s(trace, spec.split, spec.train_fraction)
    window_s = window_trace_s(config)
    span_s = end_s - start_s
    if window_s > span_s:
        if span_s < 1e-6:  # one instant (the end is nudged past the last request)
            fixes = "no setting makes an episode fit: replay a trace whose requests span some time"
        else:
            # Rounded so that the values quoted fit: the length down to whole decision intervals,
            # the time scale up.
            interval_s = config.decision_interval_s
            longest_s = math.floor(span_s * spec.time_scale / interval_s) * interval_s
            needed = config.episode_length_s / span_s
            scale = 10.0 ** (2 - math.floor(math.log10(needed)))
            fixes = (
                f"shorten episode_length_s to at most {longest_s:g} s, or raise time_scale to at "
                f"least {math.ceil(needed * scale) / scale:g} (each trace second then lasts longer, so an "
                "episode covers fewer of them)"
            )
            if spec.split != "all":
                fixes += ", or change train_fraction"
        raise ConfigError(
            f"an episode of {config.episode_length_s:g} s at time_scale={spec.time_scale:g} replays "
            f"{window_s:.1f} trace seconds, but the {spec.split!r} part of {trace.name} spans only "
            f"{span_s:.1f} s; {fixes}"
        )
    _warn_of_gaps(trace.arrival_s, start_s, end_s, window_s, f"the {spec.split!r} part of {trace.name}")
    return ReplayPart(
        arrival_s=trace.arrival_s,
        input_tokens=trace.input_tokens,
        output_tokens=trace.output_tokens,
        start_s=start_s,
        end_s=end_s,
    )
