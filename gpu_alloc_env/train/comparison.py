"""Paired comparisons of learned policies against reference policies on the same episodes.

A learned policy (``ppo``) is judged by the paired per-seed difference against a reference (the
adaptive heuristic, and the best baseline when that is another): for each :data:`CRITERIA` metric,
the mean difference and its 95% bootstrap interval (runs resampled, then episodes), with a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gpu_alloc_env.evaluation import EpisodeResult, format_interval
from gpu_alloc_env.stats import bootstrap_ci95, iqm

UNDEFINED_VERDICT = "undefined: needs two or more episodes"
"""The verdict of a criterion whose interval is undefined (fewer than two paired episodes)."""

REFERENCE = "adaptive"
LEARNED = "ppo"
"""The policy name of Stable-Baselines3 runs."""
LEARNED_POLICIES = ("ppo", "ppo-rllib")
"""The policy names of learned runs, one per training backend (never pooled with each other)."""


@dataclass(frozen=True)
class Criterion:
    """A win criterion: the paired difference learned - reference of ``metric`` on its ``better`` side."""

    text: str
    metric: str
    better: str
    """``"higher"`` or ``"lower"``: which direction is a win."""
    allow_equal: bool = False
    """True for "no worse than": the interval must not lie on the wrong side of zero."""

    def verdict(self, mean: float, low: float, high: float) -> str:
        """``holds`` when the whole interval is on the winning side, ``mean only`` when just the mean is."""
        if math.isnan(mean):
            return "n/a"
        if math.isnan(low) or math.isnan(high):
            return UNDEFINED_VERDICT
        sign = 1.0 if self.better == "higher" else -1.0
        near, point = min(sign * low, sign * high), sign * mean
        whole = near >= 0.0 if self.allow_equal else near > 0.0
        point_ok = point >= 0.0 if self.allow_equal else point > 0.0
        return "holds" if whole else "mean only" if point_ok else "does not hold"


CRITERIA: tuple[Criterion, ...] = (
    Criterion("higher mean episode reward", "episode_return", "higher"),
    Criterion("lower p95 task latency", "task_latency_p95_s", "lower"),
    Criterion("no higher cost per task", "cost_per_1k_tasks_usd", "lower", allow_equal=True),
)


@dataclass(frozen=True)
class Scored:
    """An episode result with the run it came from (empty for baselines)."""

    result: EpisodeResult
    run: str
    train_seed: int | None

    def row(self) -> dict[str, Any]:
        """The CSV row."""
        row = self.result.row()
        row["run"] = self.run
        row["train_seed"] = "" if self.train_seed is None else self.train_seed
        return row


def groups_of(scored: Sequence[Scored], policy: str, metric: str) -> list[list[float]]:
    """Per run (one group for a baseline), the metric's values over episodes."""
    by_run: dict[str, list[float]] = {}
    for item in scored:
        if item.result.policy == policy:
            by_run.setdefault(item.run, []).append(item.result.value(metric))
    return list(by_run.values())


def paired_by_run(
    scored: Sequence[Scored], policy: str, metric: str, reference: str = REFERENCE
) -> dict[str, list[float]]:
    """Run name -> the per-seed differences ``policy - reference`` of ``metric``."""
    values = {i.result.seed: i.result.value(metric) for i in scored if i.result.policy == reference}
    by_run: dict[str, list[float]] = {}
    for item in scored:
        if item.result.policy == policy and item.result.seed in values:
            diff = item.result.value(metric) - values[item.result.seed]
            by_run.setdefault(item.run, []).append(diff)
    return by_run


def paired_groups(
    scored: Sequence[Scored], policy: str, metric: str, reference: str = REFERENCE
) -> list[list[float]]:
    """Per run of ``policy``, the per-seed differences ``policy - reference`` of ``metric``."""
    return list(paired_by_run(scored, policy, metric, reference).values())


def best_baseline(scored: Sequence[Scored], metric: str = "episode_return") -> str | None:
    """The baseline with the highest interquartile mean of ``metric`` (``None`` without baselines).

    Learned policies are judged against it as well as against the heuristic: a constant allocation
    can beat the heuristic, and a learned policy is worth only what it adds to the best of them.
    """
    values: dict[str, list[float]] = {}
    for item in scored:
        if not item.run:
            values.setdefault(item.result.policy, []).append(item.result.value(metric))
    means = {policy: iqm(v) for policy, v in values.items()}
    defined = {policy: mean for policy, mean in means.items() if not math.isnan(mean)}
    return max(defined, key=lambda policy: defined[policy]) if defined else None


def criteria_rows(scored: Sequence[Scored], policy: str, reference: str) -> list[tuple[Criterion, str, str]]:
    """Per criterion: the paired difference ``policy - reference`` as a cell, and its verdict."""
    rows = []
    for criterion in CRITERIA:
        mean, low, high = bootstrap_ci95(
            paired_groups(scored, policy, criterion.metric, reference), lambda x: float(np.mean(x))
        )
        rows.append((criterion, interval_cell(mean, low, high), criterion.verdict(mean, low, high)))
    return rows


def interval_cell(estimate: float, low: float, high: float) -> str:
    """``estimate [low, high]`` (:func:`gpu_alloc_env.evaluation.format_interval`)."""
    return format_interval(estimate, low, high, bracketed=True)


PER_RUN_METRICS: tuple[str, ...] = (
    "episode_return",
    "task_latency_p95_s",
    "cost_per_1k_tasks_usd",
    "cold_starts",
)


def per_run_table(scored: Sequence[Scored], learned: str = LEARNED) -> list[str]:
    """Lines of the table of each ``learned`` run's mean paired difference against the heuristic."""
    by_metric = {m: paired_by_run(scored, learned, m) for m in PER_RUN_METRICS}
    lines = [
        f"Per run, the mean paired difference {learned} - {REFERENCE} over the episodes:",
        "",
        "| run | " + " | ".join(PER_RUN_METRICS) + " |",
        "|" + "---|" * (len(PER_RUN_METRICS) + 1),
    ]
    for run in sorted(by_metric[PER_RUN_METRICS[0]]):
        cells = [f"{float(np.mean(by_metric[m][run])):+.3f}" for m in PER_RUN_METRICS]
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    return lines
