"""Episode metrics of one environment of a :class:`BatchSimulator`.

Task latencies are end to end, from a task's arrival to its aggregation (or its plan, for a task
that calls no specialist). Tasks still in flight when the metrics are taken enter the task-latency
statistics at their age so far, a lower bound on their latency, so that a policy cannot look fast
by never finishing slow tasks; ``task_latency_completed_mean_s`` excludes them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.core.simulator import BatchSimulator

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

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
    "slo_attainment",
    "throughput_tasks_per_s",
    "throughput_tokens_per_s",
    "cost_usd",
    "cost_per_1k_tasks_usd",
    "gpu_utilization",
    "allocated_share",
    "cold_starts",
    "tasks_arrived",
    "tasks_completed",
    "tasks_in_flight",
    "backlog_requests",
    "action_repair_gpus",
    "elapsed_s",
)
"""Keys of :func:`episode_metrics`, in a stable order (the ``per_agent`` entry comes after)."""


def _percentiles(values: np.ndarray) -> tuple[float, float, float, float]:
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
    tasks = sim.tasks
    count = int(tasks.count[env])
    now_s = float(sim.time_s[env])
    arrival = tasks.arrival_s[env, :count]
    complete = tasks.complete_s[env, :count]
    finished: BoolArray = np.isfinite(complete)
    latency: FloatArray = np.where(finished, complete - arrival, now_s - arrival)
    return latency, finished


def episode_metrics(sim: BatchSimulator, env: int = 0) -> dict[str, object]:
    """Metrics of environment ``env``'s episode so far.

    Returns:
        A dict with the scalar metrics of :data:`EPISODE_METRICS` and ``per_agent``, a dict of agent
        name to that agent's request latencies, SLO attainment, utilisation, cost and cold starts.
    """
    config = sim.config
    totals = sim.totals
    now_s = float(sim.time_s[env])
    elapsed_s = max(now_s, config.decision_interval_s)
    latency, finished = task_latencies(sim, env)
    completed = int(finished.sum())
    overdue = int(((~finished) & (latency > config.task_slo_s)).sum())
    mean, p50, p95, p99 = _percentiles(latency)
    requests = totals.request_latencies(env)
    all_requests = np.concatenate(requests)
    r_mean, r50, r95, r99 = _percentiles(all_requests)
    alloc = float(totals.alloc_gpu_s[env].sum())
    busy = float(totals.busy_gpu_s[env].sum())
    cost = float(totals.cost_usd[env])
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
        "slo_attainment": _ratio(float(sim.slo_met[env]), float(completed + overdue)),
        "throughput_tasks_per_s": completed / elapsed_s,
        "throughput_tokens_per_s": float(totals.output_tokens[env]) / elapsed_s,
        "cost_usd": cost,
        "cost_per_1k_tasks_usd": _ratio(1000.0 * cost, float(completed)),
        "gpu_utilization": _ratio(busy, alloc),
        "allocated_share": alloc / (config.capacity_gpus * elapsed_s),
        "cold_starts": int(totals.cold_starts[env].sum()),
        "tasks_arrived": int(totals.tasks_arrived[env]),
        "tasks_completed": completed,
        "tasks_in_flight": int(sim.tasks_in_flight[env]),
        "backlog_requests": int(sim.queues.length[env].sum()),
        "action_repair_gpus": float(totals.repair_gpus[env]),
        "elapsed_s": now_s,
    }
    per_agent: dict[str, dict[str, float]] = {}
    for n, agent in enumerate(config.agents):
        lat = requests[n]
        a_mean, _a50, a95, a99 = _percentiles(lat)
        a_alloc = float(totals.alloc_gpu_s[env, n])
        per_agent[agent.name] = {
            "request_latency_mean_s": a_mean,
            "request_latency_p95_s": a95,
            "request_latency_p99_s": a99,
            "requests_completed": float(lat.size),
            "request_slo_attainment": (
                float((lat <= agent.request_slo_s).mean()) if lat.size else float("nan")
            ),
            "gpu_utilization": _ratio(float(totals.busy_gpu_s[env, n]), a_alloc),
            "allocated_gpu_s": a_alloc,
            "cost_usd": a_alloc * config.price_per_gpu_s,
            "cold_starts": float(totals.cold_starts[env, n]),
            "backlog_requests": float(sim.queues.length[env, n]),
        }
    metrics["per_agent"] = per_agent
    return metrics
