"""Episode metrics of one environment of a :class:`BatchSimulator`.

Task latencies are end to end, from a task's arrival to its aggregation (or its plan, for a task
that calls no specialist). Tasks still in flight when the metrics are taken enter the task-latency
statistics at their age so far, a lower bound on their latency, so that a policy cannot look fast
by never finishing slow tasks; ``task_latency_completed_mean_s`` excludes them. Request metrics
come from every completed request: its latency (arrival at the agent to its last token), its time
to first token (TTFT) and its time per output token after the first (TPOT, for requests of two
tokens or more).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.arrays import BoolArray, FloatArray
from gpu_alloc_env.core.simulator import BatchSimulator, StepStats
from gpu_alloc_env.core.state import DONE

EPISODE_METRICS: tuple[str, ...] = (
    "task_latency_mean_s",
    "task_latency_p50_s",
    "task_latency_p95_s",
    "task_latency_p99_s",
    "task_latency_completed_mean_s",
    "request_latency_mean_s",
    "request_latency_p50_s",
    "request_latency_p95_s",
    "request_latency_p99_s",
    "ttft_mean_s",
    "ttft_p95_s",
    "tpot_mean_s",
    "tpot_p95_s",
    "slo_attainment",
    "throughput_tasks_per_s",
    "throughput_tokens_per_s",
    "cost_usd",
    "cost_per_1k_tasks_usd",
    "gpu_utilization",
    "allocated_share",
    "cold_starts",
    "preemptions",
    "requeued_requests",
    "truncated_requests",
    "evicted_replicas",
    "tasks_arrived",
    "tasks_completed",
    "tasks_in_flight",
    "requests_created",
    "requests_completed",
    "backlog_requests",
    "action_repair_replicas",
    "elapsed_s",
)
"""Keys of :func:`episode_metrics`, in a stable order (the ``per_agent`` entry comes after)."""


def step_metrics(sim: BatchSimulator, stats: StepStats) -> dict[str, NDArray[np.generic]]:
    """``info["metrics"]`` of one interval of every environment: (B,) arrays, (B, N) for the queues.

    The interval's additive quantities (:class:`StepStats`, summed over agents) and the state at its
    end; arrays of their own, never views of the simulator's live state.
    """
    config = sim.config
    billed = stats.billed_gpu_s.sum(axis=1)
    return {
        "time_s": sim.time_s,
        "tasks_arrived": stats.tasks_arrived,
        "tasks_completed": stats.tasks_completed,
        "tasks_in_flight": sim.tasks_in_flight.copy(),
        "task_latency_sum_s": stats.task_latency_sum_s,
        "slo_misses": stats.slo_misses,
        "delay_task_s": stats.delay_task_s,
        "requests_arrived": stats.requests_arrived.sum(axis=1),
        "requests_completed": stats.requests_completed.sum(axis=1),
        "goodput_misses": stats.goodput_misses.sum(axis=1),
        "output_tokens": stats.output_tokens,
        "cost_usd": stats.cost_usd,
        "busy_gpu_s": stats.busy_gpu_s.sum(axis=1),
        "billed_gpu_s": billed,
        "allocated_share": billed / (config.capacity_gpus * config.decision_interval_s),
        "cold_starts": stats.cold_starts.sum(axis=1),
        "preemptions": stats.preemptions.sum(axis=1),
        "requeued_requests": stats.requeued.sum(axis=1),
        "truncated_requests": stats.truncated.sum(axis=1),
        "evicted_replicas": stats.evicted.sum(axis=1),
        "queued_requests": sim.queued.copy(),
        "running_requests": sim.running.copy(),
    }


def _stats(values: FloatArray) -> tuple[float, float, float, float]:
    """Mean, p50, p95 and p99 (NaN for no values)."""
    if values.size == 0:
        return (float("nan"),) * 4
    p50, p95, p99 = np.percentile(values, [50.0, 95.0, 99.0])
    return float(values.mean()), float(p50), float(p95), float(p99)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


def task_latencies(sim: BatchSimulator, env: int = 0) -> tuple[FloatArray, BoolArray]:
    """Latency of every task of environment ``env``'s episode so far, in arrival order, and which finished.

    A task still in flight enters at its age so far (a lower bound on its latency).
    """
    count = int(sim.state.env[env]["n_tasks"])
    tasks = sim.state.tk[env, :count]
    now_s = float(sim.time_s[env])
    finished: BoolArray = np.isfinite(tasks["done_s"])
    latency: FloatArray = np.where(finished, tasks["done_s"] - tasks["arrival_s"], now_s - tasks["arrival_s"])
    return latency, finished


def completed_requests(sim: BatchSimulator, env: int = 0) -> NDArray[np.void]:
    """The request rows of environment ``env`` that completed this episode, in creation order."""
    rows = sim.state.rq[env, : int(sim.state.env[env]["n_reqs"])]
    done: NDArray[np.void] = rows[rows["state"] == DONE]
    return done


def request_times(rows: NDArray[np.void]) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(latency, TTFT, TPOT) of completed request rows; TPOT only for two output tokens or more."""
    latency = rows["done_s"] - rows["arrival_s"]
    ttft = rows["first_token_s"] - rows["arrival_s"]
    several = rows["generated"] > 1
    tpot = (rows["done_s"][several] - rows["first_token_s"][several]) / (rows["generated"][several] - 1)
    return latency, ttft, tpot


def episode_metrics(sim: BatchSimulator, env: int = 0) -> dict[str, object]:
    """Metrics of environment ``env``'s episode so far.

    Returns:
        A dict with the scalar metrics of :data:`EPISODE_METRICS` and ``per_agent``, a dict of agent
        name to that agent's request latencies, TTFT, TPOT, SLO attainment, utilisation, cost, cold
        starts and preemptions.
    """
    config = sim.config
    totals = sim.totals
    now_s = float(sim.time_s[env])
    elapsed_s = max(now_s, config.decision_interval_s)
    latency, finished = task_latencies(sim, env)
    completed = int(finished.sum())
    overdue = int(((~finished) & (latency > config.task_slo_s)).sum())
    mean, p50, p95, p99 = _stats(latency)
    requests = completed_requests(sim, env)
    r_latency, r_ttft, r_tpot = request_times(requests)
    r_mean, r50, r95, r99 = _stats(r_latency)
    ttft_mean, _, ttft95, _ = _stats(r_ttft)
    tpot_mean, _, tpot95, _ = _stats(r_tpot)
    billed = float(totals.billed_gpu_s[env].sum())
    busy = float(totals.busy_gpu_s[env].sum())
    cost = float(totals.cost_usd[env])
    backlog = sim.queued[env] + sim.running[env]
    metrics: dict[str, object] = {
        "task_latency_mean_s": mean,
        "task_latency_p50_s": p50,
        "task_latency_p95_s": p95,
        "task_latency_p99_s": p99,
        "task_latency_completed_mean_s": (float(latency[finished].mean()) if completed else float("nan")),
        "request_latency_mean_s": r_mean,
        "request_latency_p50_s": r50,
        "request_latency_p95_s": r95,
        "request_latency_p99_s": r99,
        "ttft_mean_s": ttft_mean,
        "ttft_p95_s": ttft95,
        "tpot_mean_s": tpot_mean,
        "tpot_p95_s": tpot95,
        "slo_attainment": _ratio(float(sim.slo_met[env]), float(completed + overdue)),
        "throughput_tasks_per_s": completed / elapsed_s,
        "throughput_tokens_per_s": float(totals.output_tokens[env]) / elapsed_s,
        "cost_usd": cost,
        "cost_per_1k_tasks_usd": _ratio(1000.0 * cost, float(completed)),
        "gpu_utilization": _ratio(busy, billed),
        "allocated_share": billed / (config.capacity_gpus * elapsed_s),
        "cold_starts": int(totals.cold_starts[env].sum()),
        "preemptions": int(totals.preemptions[env].sum()),
        "requeued_requests": int(totals.requeued[env].sum()),
        "truncated_requests": int(totals.truncated[env].sum()),
        "evicted_replicas": int(totals.evicted[env].sum()),
        "tasks_arrived": int(totals.tasks_arrived[env]),
        "tasks_completed": completed,
        "tasks_in_flight": int(sim.tasks_in_flight[env]),
        "requests_created": int(sim.state.env[env]["n_reqs"]),
        "requests_completed": int(requests.size),
        "backlog_requests": int(backlog.sum()),
        "action_repair_replicas": float(totals.repair_replicas[env]),
        "elapsed_s": now_s,
    }
    per_agent: dict[str, dict[str, float]] = {}
    for n, agent in enumerate(config.agents):
        mine = requests["agent"] == n
        lat, ttft, tpot = request_times(requests[mine])
        a_mean, _a50, a95, a99 = _stats(lat)
        a_billed = float(totals.billed_gpu_s[env, n])
        per_agent[agent.name] = {
            "request_latency_mean_s": a_mean,
            "request_latency_p95_s": a95,
            "request_latency_p99_s": a99,
            "ttft_mean_s": _stats(ttft)[0],
            "ttft_p95_s": _stats(ttft)[2],
            "tpot_mean_s": _stats(tpot)[0],
            "tpot_p95_s": _stats(tpot)[2],
            "requests_completed": float(lat.size),
            "request_slo_attainment": (
                float((lat <= agent.request_slo_s).mean()) if lat.size else float("nan")
            ),
            "gpu_utilization": _ratio(float(totals.busy_gpu_s[env, n]), a_billed),
            "billed_gpu_s": a_billed,
            "cost_usd": a_billed * config.deployment.price_per_gpu_s,
            "cold_starts": float(totals.cold_starts[env, n]),
            "preemptions": float(totals.preemptions[env, n]),
            "backlog_requests": float(backlog[n]),
        }
    metrics["per_agent"] = per_agent
    return metrics
