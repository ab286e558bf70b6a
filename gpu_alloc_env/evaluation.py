"""One evaluation harness for every policy: the same seeds, the same episodes, the same metrics."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.metrics import EPISODE_METRICS, task_latencies
from gpu_alloc_env.env import GpuAllocEnv
from gpu_alloc_env.policy import Policy
from gpu_alloc_env.progress import progress_bar
from gpu_alloc_env.stats import mean_ci95, undefined_note

CSV_COLUMNS: tuple[str, ...] = ("policy", "seed", "episode_return", "episode_steps", *EPISODE_METRICS)
"""Columns of ``episodes.csv``, in order."""

SUMMARY_METRICS: tuple[str, ...] = (
    "task_latency_mean_s",
    "task_latency_p95_s",
    "task_latency_p99_s",
    "throughput_tasks_per_s",
    "cost_per_1k_tasks_usd",
    "gpu_utilization",
    "slo_attainment",
    "cold_starts",
    "episode_return",
)
"""Metrics shown in ``summary.md``."""


@dataclass(frozen=True)
class EpisodeResult:
    """One policy's episode on one seed.

    With ``record``, :func:`run_episode` also keeps ``allocation_gpus``, the (steps, N) GPUs of the
    replicas starting or serving after every step's allocation, and ``task_latencies_s``, every
    task's latency (in-flight tasks at their age at the end).
    """

    policy: str
    seed: int
    episode_return: float
    episode_steps: int
    metrics: dict[str, Any]
    allocation_gpus: NDArray[np.float64] | None = field(default=None, repr=False)
    task_latencies_s: NDArray[np.float64] | None = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        """The CSV row: :data:`CSV_COLUMNS` mapped to values."""
        row: dict[str, Any] = {
            "policy": self.policy,
            "seed": self.seed,
            "episode_return": self.episode_return,
            "episode_steps": self.episode_steps,
        }
        row.update({key: self.metrics[key] for key in EPISODE_METRICS})
        return row

    def value(self, metric: str) -> float:
        """A scalar metric by name (``episode_return`` included)."""
        if metric == "episode_return":
            return self.episode_return
        return float(self.metrics[metric])


def run_episode(
    env: GpuAllocEnv, policy: Policy, seed: int, name: str, record: bool = False
) -> EpisodeResult:
    """Run one whole episode of ``policy`` (deterministic actions) on ``env`` seeded with ``seed``.

    A policy with a ``start_episode(env, seed)`` method (the clairvoyant planner) is told the
    episode's environment and seed first. As in Stable-Baselines3's ``evaluate_policy``, the
    ``state`` a policy's ``predict`` returns is passed back to it at the next step, with
    ``episode_start`` true at the first (a policy that holds its decisions keeps them there).
    """
    start_episode = getattr(policy, "start_episode", None)
    if callable(start_episode):
        start_episode(env, seed)
    obs, _ = env.reset(seed=seed)
    total = 0.0
    steps = 0
    allocations: list[NDArray[np.float64]] = []
    state: tuple[NDArray[Any], ...] | None = None
    episode_start = np.ones(1, dtype=bool)
    while True:
        action, state = policy.predict(obs, state=state, episode_start=episode_start, deterministic=True)
        episode_start = np.zeros(1, dtype=bool)
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        steps += 1
        if record:
            allocations.append(info["replicas"] * env.sim.gpus_per_replica)
        if terminated or truncated:
            if not record:
                return EpisodeResult(name, seed, total, steps, info["episode_metrics"])
            latencies, _ = task_latencies(env.sim, 0)
            return EpisodeResult(
                name, seed, total, steps, info["episode_metrics"], np.stack(allocations), latencies
            )


def evaluate_policies(
    policies: Mapping[str, Policy],
    config: ScenarioConfig,
    seeds: Sequence[int],
    record: bool = False,
    progress: bool | None = None,
) -> list[EpisodeResult]:
    """Every policy on every seed of ``config``: the workload of a seed is the same for all.

    ``progress`` shows a bar of the episodes (``None``: on a terminal only; :mod:`gpu_alloc_env.progress`).
    """
    if not seeds:
        raise ValueError("seeds is empty; pass at least one seed")
    results = []
    total = len(policies) * len(seeds)
    with progress_bar(total, f"{config.name}: episodes", "episode", progress) as bar:
        for name, policy in policies.items():
            env = GpuAllocEnv(config)
            bar.set_postfix_str(name)
            for seed in seeds:
                results.append(run_episode(env, policy, int(seed), name, record))
                bar.update(1)
    return results


def write_rows_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], path: Path) -> None:
    """Write ``rows`` (mappings of ``columns``) to the CSV file ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow(row)


def write_episodes_csv(results: Iterable[EpisodeResult], path: Path) -> None:
    """Write one row per policy and seed."""
    write_rows_csv((result.row() for result in results), CSV_COLUMNS, path)


def format_interval(estimate: float, low: float, high: float, bracketed: bool = False) -> str:
    """A table cell: ``estimate ± half-width``, or ``estimate [low, high]`` when ``bracketed``.

    Three decimals below 10 and one above; ``n/a`` for an undefined estimate, and for the interval
    of one that has none (fewer than two samples).
    """
    if math.isnan(estimate):
        return "n/a"
    digits = 3 if abs(estimate) < 10 else 1
    if math.isnan(low) or math.isnan(high):
        return f"{estimate:.{digits}f} [n/a]" if bracketed else f"{estimate:.{digits}f} ± n/a"
    if bracketed:
        return f"{estimate:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
    return f"{estimate:.{digits}f} ± {(high - low) / 2:.{digits}f}"


def summary_table(results: Sequence[EpisodeResult], metrics: Sequence[str] = SUMMARY_METRICS) -> str:
    """A Markdown table: per policy, the mean and 95% half-width of each metric across seeds."""
    policies = list(dict.fromkeys(r.policy for r in results))
    header = "| policy | episodes | " + " | ".join(metrics) + " |"
    lines = [header, "|" + "---|" * (len(metrics) + 2)]
    for policy in policies:
        mine = [r for r in results if r.policy == policy]
        columns = [[r.value(m) for r in mine] for m in metrics]
        cells = [format_interval(*mean_ci95(values)) + undefined_note(values) for values in columns]
        lines.append(f"| {policy} | {len(mine)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_ratio(
    results: Sequence[EpisodeResult], metric: str, numerator: str, denominator: str
) -> tuple[float, float, float]:
    """Mean and 95% interval of ``metric``'s per-seed ratio ``numerator / denominator``."""
    by_seed = {(r.policy, r.seed): r.value(metric) for r in results}
    seeds = sorted({r.seed for r in results})
    ratios = [
        by_seed[(numerator, s)] / by_seed[(denominator, s)]
        for s in seeds
        if (numerator, s) in by_seed and (denominator, s) in by_seed and by_seed[(denominator, s)]
    ]
    return mean_ci95(ratios)


def policy_means(results: Sequence[EpisodeResult], metric: str) -> dict[str, float]:
    """Mean of ``metric`` per policy."""
    out: dict[str, list[float]] = {}
    for r in results:
        out.setdefault(r.policy, []).append(r.value(metric))
    return {p: float(np.nanmean(v)) for p, v in out.items()}
