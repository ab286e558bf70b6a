"""The serverless multi-agent GPU simulator: a batch of B independent environments stepped at once.

It knows nothing of reinforcement learning. Each :meth:`BatchSimulator.step` takes the replicas every
agent of every environment asks for, makes the request feasible (whole replicas within
``[0, max_replicas]``; the pool's capacity is enforced by the kernel, which cuts in priority order),
draws the interval's task arrivals from each environment's generator and runs the compiled kernel
(:mod:`gpu_alloc_env.core.kernel`): the allocation, iteration-level serving with continuous
batching and KV-cache limits on every replica, the coordinator -> specialists -> coordinator
workflow, and billing. Shapes: B environments, N agents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from gpu_alloc_env.arrays import BoolArray, FloatArray, IntArray
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.kernel import StepOut, add_tasks, allocate_out, step_interval
from gpu_alloc_env.core.replay import ReplayPart, TraceStream
from gpu_alloc_env.core.state import (
    ACTIVE,
    DRAINING,
    KEPT,
    STARTING,
    Params,
    Records,
    SimState,
    allocate_state,
    clear_env,
    grow,
    make_params,
)
from gpu_alloc_env.core.workload import TaskDraws, TaskStream

REPAIR_KINDS: tuple[str, ...] = (
    "clipped_negative",
    "clipped_above_max",
    "rounded_to_integer",
    "cut_for_capacity",
)
"""Names of the repairs :meth:`BatchSimulator.step` reports, in order."""


@njit(cache=True)
def _repair(desired: FloatArray, max_replicas: FloatArray, replicas: IntArray, flags: BoolArray) -> None:
    """:meth:`BatchSimulator.repair` in one pass: clip, round halves up, and flag each repair."""
    for b in range(desired.shape[0]):
        for n in range(desired.shape[1]):
            x = desired[b, n]
            clipped = min(max(x, 0.0), max_replicas[n])
            whole = np.floor(clipped + 0.5)
            replicas[b, n] = np.int64(whole)
            flags[0, b, n] = x < 0.0
            flags[1, b, n] = x > max_replicas[n]
            flags[2, b, n] = abs(whole - clipped) > 1e-9


@dataclass(frozen=True)
class SimView:
    """The documented state of every environment that observations and renderings read.

    Per agent (B, N): ``queued`` requests waiting in the agent's queue; ``running`` requests in its
    replicas' batches; replicas ``starting``, ``active`` (serving), ``draining`` and ``kept_alive``;
    ``kv_used_blocks`` and ``kv_total_blocks`` of its serving and draining replicas; the
    exponentially weighted ``arrival_rps`` and ``preemption_rps``; ``oldest_wait_s``, the age of the
    request at the head of its queue. Per environment (B,): ``held_gpus`` (every replica not stopped),
    ``time_s``, ``tasks_in_flight`` and ``diurnal_phase_rad`` (the workload's phase, 0 unless
    diurnal).
    """

    queued: IntArray
    running: IntArray
    starting: IntArray
    active: IntArray
    draining: IntArray
    kept_alive: IntArray
    kv_used_blocks: IntArray
    kv_total_blocks: IntArray
    arrival_rps: FloatArray
    preemption_rps: FloatArray
    oldest_wait_s: FloatArray
    held_gpus: IntArray
    time_s: FloatArray
    tasks_in_flight: IntArray
    diurnal_phase_rad: FloatArray


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
    requests_arrived: IntArray
    requests_completed: IntArray
    goodput_misses: IntArray
    """(B, N) requests completed in the interval past their agent's ``ttft_slo_s`` or ``tpot_slo_s``."""
    output_tokens: FloatArray
    """Output tokens of the requests completed in the interval."""
    billed_gpu_s: FloatArray
    """(B, N) GPU-seconds billed: every replica's lifetime, rounded up to the billing increment."""
    busy_gpu_s: FloatArray
    """(B, N) GPU-seconds of replicas running iterations."""
    cold_starts: IntArray
    """(B, N) replicas started from nothing."""
    preemptions: IntArray
    """(B, N) requests preempted for KV-cache room (recomputed later)."""
    requeued: IntArray
    """(B, N) requests of killed replicas sent back to the queue."""
    truncated: IntArray
    """(B, N) requests cut to the longest a replica accepts."""
    evicted: IntArray
    """(B, N) kept-alive replicas stopped early to make room for another agent's."""
    cost_usd: FloatArray
    replicas: IntArray
    """(B, N) replicas starting or serving after the allocation."""
    requested: FloatArray
    """(B, N) replicas asked for, as given."""
    repairs: dict[str, BoolArray]
    repair_replicas: FloatArray
    """(B,) L1 distance between the replicas asked for and those applied."""


class BatchSimulator:
    """B independent environments of one scenario, stepped together.

    Args:
        config: the scenario.
        batch_size: number of environments B.
        replay: the trace part to replay when the workload pattern is ``trace`` (arrays: the core
            reads no files); :func:`gpu_alloc_env.trace_replay.replay_part` reads it from the trace
            ``config.workload.trace`` names, and :func:`gpu_alloc_env.trace_replay.simulator_for`
            builds a simulator with it.
    """

    def __init__(self, config: ScenarioConfig, batch_size: int = 1, replay: ReplayPart | None = None) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if config.workload.trace is not None and replay is None:
            raise ValueError(
                f"scenario {config.name!r} replays a trace: pass replay=replay_part(config) (from "
                "gpu_alloc_env.trace_replay), or build the simulator with simulator_for(config, batch_size)"
            )
        if config.workload.trace is None and replay is not None:
            raise ValueError(f"scenario {config.name!r} does not replay a trace; pass no replay")
        self.config = config
        self.replay = replay
        self.batch_size = batch_size
        n = config.num_agents
        self.num_agents = n
        self.dt_s = config.decision_interval_s
        self.params: Params = make_params(config)
        self.gpus_per_replica: IntArray = self.params.agents["gpus"].copy()
        """(N,) GPUs of one replica of each agent."""
        self.max_replicas = self.params.agents["max_replicas"].astype(np.float64)
        self.replica_slots = config.capacity_gpus // int(self.gpus_per_replica.min())
        self.state: SimState = allocate_state(batch_size, n, self.replica_slots)
        self._out: StepOut = allocate_out(batch_size, n)
        self._scratch = np.zeros(int(self.params.agents["max_seqs"].max()) + 1, dtype=np.int64)
        self._ewma_alpha = -math.expm1(-self.dt_s / config.rate_window_s)
        self.step_count: IntArray = np.zeros(batch_size, dtype=np.int64)
        self.arrival_rps = np.zeros((batch_size, n))
        """(B, N) exponentially weighted request arrival rate per agent."""
        self.preemption_rps = np.zeros((batch_size, n))
        """(B, N) exponentially weighted preemption rate per agent."""
        self.running = np.zeros((batch_size, n), dtype=np.int64)
        """(B, N) requests in replicas' batches at the end of the last interval."""
        self.kv_used_blocks = np.zeros((batch_size, n), dtype=np.int64)
        self.kv_total_blocks = np.zeros((batch_size, n), dtype=np.int64)
        self.oldest_wait_s = np.zeros((batch_size, n))
        """(B, N) age of the request at the head of each agent's queue."""
        self.totals = EpisodeTotals(batch_size, n)
        self.streams: list[TaskStream | None] = [None] * batch_size
        self._all = np.ones(batch_size, dtype=bool)

    # ------------------------------------------------------------------ state views
    @property
    def time_s(self) -> FloatArray:
        """(B,) simulated time of each environment."""
        return self.step_count.astype(np.float64) * self.dt_s

    @property
    def done(self) -> BoolArray:
        """(B,) environments whose episode span has elapsed."""
        return self.step_count >= self.config.episode_steps

    @property
    def tasks_in_flight(self) -> IntArray:
        """(B,) tasks arrived and not completed."""
        counts: IntArray = self.state.env["tasks_in_flight"]
        return counts

    @property
    def tasks_completed(self) -> IntArray:
        """(B,) tasks completed this episode."""
        counts: IntArray = self.state.env["tasks_completed"]
        return counts

    @property
    def slo_met(self) -> IntArray:
        """(B,) tasks completed within ``task_slo_s`` this episode."""
        counts: IntArray = self.state.env["slo_met"]
        return counts

    @property
    def queued(self) -> IntArray:
        """(B, N) requests waiting in each agent's queue."""
        counts: IntArray = self.state.agent["q_len"]
        return counts

    def replicas_in(self, state: int) -> IntArray:
        """(B, N) replicas of each agent in a replica state (``STARTING``, ``ACTIVE``, ...)."""
        field = {STARTING: "n_starting", ACTIVE: "n_active", DRAINING: "n_draining", KEPT: "n_kept"}[state]
        counts: IntArray = self.state.agent[field]
        return counts

    def held_gpus(self) -> IntArray:
        """(B,) GPUs held by every replica that is not stopped."""
        a = self.state.agent
        replicas = a["n_starting"] + a["n_active"] + a["n_draining"] + a["n_kept"]
        held: IntArray = (replicas * self.gpus_per_replica).sum(axis=1)
        return held

    def view(self, copy: bool = True) -> SimView:
        """The current state of every environment.

        Args:
            copy: copy the arrays (``False`` returns views of the live state, valid until the
                next step: for reading at once, as observation encoding does).
        """
        agent = self.state.agent
        take = np.copy if copy else np.asarray
        time_s = self.time_s
        phase = np.zeros(self.batch_size)
        workload = self.config.workload
        if workload.pattern == "diurnal":
            for env, stream in enumerate(self.streams):
                if stream is not None:
                    phase[env] = 2.0 * math.pi * time_s[env] / workload.diurnal_period_s + stream.phase_rad
        return SimView(
            queued=take(agent["q_len"]),
            running=take(self.running),
            starting=take(agent["n_starting"]),
            active=take(agent["n_active"]),
            draining=take(agent["n_draining"]),
            kept_alive=take(agent["n_kept"]),
            kv_used_blocks=take(self.kv_used_blocks),
            kv_total_blocks=take(self.kv_total_blocks),
            arrival_rps=take(self.arrival_rps),
            preemption_rps=take(self.preemption_rps),
            oldest_wait_s=take(self.oldest_wait_s),
            held_gpus=self.held_gpus(),
            time_s=time_s,
            tasks_in_flight=take(self.tasks_in_flight),
            diurnal_phase_rad=phase,
        )

    # ------------------------------------------------------------------ reset
    def reset_env(self, env: int, rng: np.random.Generator) -> None:
        """Start a new episode in environment ``env``, all agents scaled to zero, drawing from ``rng``."""
        clear_env(self.state, env)
        self.totals.clear(env)
        self.step_count[env] = 0
        for array in (
            self.arrival_rps,
            self.preemption_rps,
            self.running,
            self.kv_used_blocks,
            self.kv_total_blocks,
            self.oldest_wait_s,
        ):
            array[env] = 0
        if self.replay is not None:
            self.streams[env] = TraceStream(self.config, self.replay, rng)
        else:
            self.streams[env] = TaskStream(self.config, rng)

    # ------------------------------------------------------------------ step
    def repair(self, desired: FloatArray) -> tuple[IntArray, dict[str, BoolArray]]:
        """Whole replicas within ``[0, max_replicas]`` for a finite (B, N) request, and the repairs.

        Halves round up (1.5 replicas become 2).
        """
        desired = np.ascontiguousarray(desired, dtype=np.float64)
        replicas = np.empty(desired.shape, dtype=np.int64)
        flags = np.empty((3, *desired.shape), dtype=np.bool_)
        _repair(desired, self.max_replicas, replicas, flags)
        repairs = {
            "clipped_negative": flags[0],
            "clipped_above_max": flags[1],
            "rounded_to_integer": flags[2],
        }
        return replicas, repairs

    def step(self, desired_replicas: FloatArray, active: BoolArray | None = None) -> StepStats:
        """Advance every environment (or those ``active``) by one decision interval.

        Args:
            desired_replicas: (B, N) finite replicas asked for per agent.
            active: (B,) environments to step; the others stand still (no arrivals drawn, no time
                passes, their statistics are zero). None steps them all.
        """
        if any(stream is None for stream in self.streams):
            raise RuntimeError("every environment must be reset (reset_env) before step")
        desired = np.asarray(desired_replicas, dtype=np.float64).reshape(self.batch_size, self.num_agents)
        moving = self._all if active is None else np.asarray(active, dtype=bool)
        replicas, repairs = self.repair(desired)
        t0 = self.time_s
        first_task, arrived = self._admit_tasks(t0, t0 + self.dt_s, moving)
        # The kernel's interval is the one the arrivals were drawn for, to the last bit.
        self.state.env["time_s"] = t0
        self._out.env.fill(0)
        self._out.agent.fill(0)
        step_interval(
            self.state, self.params, replicas, first_task, moving, self.dt_s, self._scratch, self._out
        )
        self.step_count += moving
        env, agent = self._out.env.copy(), self._out.agent.copy()
        repairs["cut_for_capacity"] = agent["cut"].astype(bool)
        stats = StepStats(
            tasks_arrived=arrived,
            tasks_completed=env["tasks_completed"],
            task_latency_sum_s=env["task_latency_sum_s"],
            slo_misses=env["slo_misses"],
            delay_task_s=env["delay_task_s"],
            requests_arrived=agent["requests_arrived"],
            requests_completed=agent["requests_completed"],
            goodput_misses=agent["goodput_misses"],
            output_tokens=env["output_tokens"],
            billed_gpu_s=agent["billed_gpu_s"],
            busy_gpu_s=agent["busy_gpu_s"],
            cold_starts=agent["cold_starts"],
            preemptions=agent["preemptions"],
            requeued=agent["requeued"],
            truncated=agent["truncated"],
            evicted=agent["evicted"],
            cost_usd=env["cost_usd"],
            replicas=agent["replicas"],
            requested=desired,
            repairs=repairs,
            repair_replicas=np.abs(agent["replicas"] - desired).sum(axis=1),
        )
        if active is not None:
            for array in (stats.repair_replicas, *stats.repairs.values()):
                array[~moving] = 0
        _after_step(
            moving, self._ewma_alpha, self.dt_s, env, agent, arrived, stats.repair_replicas,
            self.running, self.kv_used_blocks, self.kv_total_blocks, self.oldest_wait_s,
            self.arrival_rps, self.preemption_rps, self.totals.env_rows, self.totals.agent_rows,
        )  # fmt: skip
        return stats

    def _admit_tasks(self, t0: FloatArray, t1: FloatArray, moving: BoolArray) -> tuple[IntArray, IntArray]:
        """Draw the interval's tasks into the task tables; returns (first new row, count) per env."""
        b = self.batch_size
        first: IntArray = self.state.env["n_tasks"].copy()
        counts = np.zeros(b, dtype=np.int64)
        for env, stream in enumerate(self.streams):
            if not moving[env]:
                continue
            draws = stream.draw(float(t0[env]), float(t1[env]))  # type: ignore[union-attr]
            if draws.count:
                counts[env] = draws.count
                self._write_tasks(env, draws)
        env_rows = self.state.env
        needed = int((env_rows["n_reqs"] + env_rows["future_reqs"]).max())
        if needed > self.state.rq.shape[1]:
            self.state = grow(self.state, "rq", needed)
        return first, counts

    def _write_tasks(self, env: int, draws: TaskDraws) -> None:
        calls = int(draws.call_task.size)
        start, call_start = int(self.state.env[env]["n_tasks"]), int(self.state.env[env]["n_calls"])
        if start + draws.count > self.state.tk.shape[1]:
            self.state = grow(self.state, "tk", start + draws.count)
        if call_start + calls > self.state.cl.shape[1]:
            self.state = grow(self.state, "cl", call_start + calls)
        add_tasks(
            self.state,
            env,
            draws.arrival_s,
            draws.plan_input_tokens,
            draws.plan_output_tokens,
            draws.aggregate_output_tokens,
            draws.call_task,
            draws.call_agent,
            draws.call_input_tokens,
            draws.call_output_tokens,
        )


TOTALS_ENV = np.dtype(
    [("tasks_arrived", np.int64), ("cost_usd", np.float64), ("output_tokens", np.float64),
     ("repair_replicas", np.float64)]
)  # fmt: skip
TOTALS_AGENT = np.dtype(
    [("billed_gpu_s", np.float64), ("busy_gpu_s", np.float64), ("cold_starts", np.int64),
     ("preemptions", np.int64), ("requeued", np.int64), ("truncated", np.int64), ("evicted", np.int64)]
)  # fmt: skip


@dataclass
class EpisodeTotals:
    """Running totals of the current episode of every environment.

    Per environment (B,): ``tasks_arrived``, ``cost_usd``, ``output_tokens``, ``repair_replicas``;
    per environment and agent (B, N): ``billed_gpu_s``, ``busy_gpu_s``, ``cold_starts``,
    ``preemptions``, ``requeued``, ``truncated``, ``evicted``. Each is a field of the record arrays
    ``env_rows`` and ``agent_rows``, which the simulator's compiled bookkeeping adds to.
    """

    batch_size: int
    num_agents: int

    def __post_init__(self) -> None:
        self.env_rows = np.zeros(self.batch_size, dtype=TOTALS_ENV)
        self.agent_rows = np.zeros((self.batch_size, self.num_agents), dtype=TOTALS_AGENT)
        self.tasks_arrived: IntArray = self.env_rows["tasks_arrived"]
        self.cost_usd: FloatArray = self.env_rows["cost_usd"]
        self.output_tokens: FloatArray = self.env_rows["output_tokens"]
        self.repair_replicas: FloatArray = self.env_rows["repair_replicas"]
        self.billed_gpu_s: FloatArray = self.agent_rows["billed_gpu_s"]
        self.busy_gpu_s: FloatArray = self.agent_rows["busy_gpu_s"]
        self.cold_starts: IntArray = self.agent_rows["cold_starts"]
        self.preemptions: IntArray = self.agent_rows["preemptions"]
        self.requeued: IntArray = self.agent_rows["requeued"]
        self.truncated: IntArray = self.agent_rows["truncated"]
        self.evicted: IntArray = self.agent_rows["evicted"]

    def clear(self, env: int) -> None:
        """Zero environment ``env``'s totals."""
        self.env_rows[env] = np.zeros((), dtype=TOTALS_ENV)
        self.agent_rows[env] = np.zeros(self.num_agents, dtype=TOTALS_AGENT)


@njit(cache=True)
def _after_step(
    moving: BoolArray,
    alpha: float,
    dt_s: float,
    env: Records,
    agent: Records,
    arrived: IntArray,
    repair_replicas: FloatArray,
    running: IntArray,
    kv_used: IntArray,
    kv_total: IntArray,
    oldest_wait_s: FloatArray,
    arrival_rps: FloatArray,
    preemption_rps: FloatArray,
    totals_env: Records,
    totals_agent: Records,
) -> None:
    """The state the observation reads after an interval, the rates' moving averages and the totals."""
    for b in range(agent.shape[0]):
        if not moving[b]:
            continue
        totals_env[b]["tasks_arrived"] += arrived[b]
        totals_env[b]["cost_usd"] += env[b]["cost_usd"]
        totals_env[b]["output_tokens"] += env[b]["output_tokens"]
        totals_env[b]["repair_replicas"] += repair_replicas[b]
        for n in range(agent.shape[1]):
            row = agent[b, n]
            running[b, n] = row["running"]
            kv_used[b, n] = row["kv_used_blocks"]
            kv_total[b, n] = row["kv_total_blocks"]
            oldest_wait_s[b, n] = row["oldest_wait_s"]
            rate = arrival_rps[b, n]
            arrival_rps[b, n] = rate + alpha * (row["requests_arrived"] / dt_s - rate)
            rate = preemption_rps[b, n]
            preemption_rps[b, n] = rate + alpha * (row["preemptions"] / dt_s - rate)
            total = totals_agent[b, n]
            total["billed_gpu_s"] += row["billed_gpu_s"]
            total["busy_gpu_s"] += row["busy_gpu_s"]
            total["cold_starts"] += row["cold_starts"]
            total["preemptions"] += row["preemptions"]
            total["requeued"] += row["requeued"]
            total["truncated"] += row["truncated"]
            total["evicted"] += row["evicted"]
