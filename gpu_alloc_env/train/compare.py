"""``gpu-alloc compare``: every baseline on the same seeds, written to ``episodes.csv`` and ``summary.md``."""

from __future__ import annotations

import math
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gpu_alloc_env.baselines import TUNED_BASELINES, available_baselines, make_baseline
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.evaluation import (
    EpisodeResult,
    evaluate_policies,
    paired_ratio,
    summary_table,
    write_episodes_csv,
)
from gpu_alloc_env.limits import gap_table, seed_bounds
from gpu_alloc_env.policy import Policy


@dataclass(frozen=True)
class Claim:
    """A headline comparison: the per-seed ratio ``metric(numerator) / metric(denominator)``."""

    text: str
    metric: str
    numerator: str
    denominator: str
    bound: float
    at_most: bool

    def check(self, results: Sequence[EpisodeResult]) -> str | None:
        """A Markdown line with the measured ratio and whether the claim holds, or None."""
        present = {r.policy for r in results}
        if not {self.numerator, self.denominator} <= present:
            return None
        mean, low, high = paired_ratio(results, self.metric, self.numerator, self.denominator)
        sign = "<=" if self.at_most else ">="
        if math.isnan(low) or math.isnan(high):
            measured = "n/a" if math.isnan(mean) else f"{mean:.3f} [n/a]"
            return (
                f"| {self.text} | `{self.metric}` {self.numerator} / {self.denominator} | "
                f"{measured} | {sign} {self.bound:g} | undefined: needs two or more seeds |"
            )
        if self.at_most:
            mean_ok, interval_ok = mean <= self.bound, high <= self.bound
        else:
            mean_ok, interval_ok = mean >= self.bound, low >= self.bound
        if interval_ok:
            verdict = "holds"
        elif mean_ok:
            verdict = "mean only: the interval crosses the bound"
        else:
            verdict = "does not hold"
        return (
            f"| {self.text} | `{self.metric}` {self.numerator} / {self.denominator} | "
            f"{mean:.3f} [{low:.3f}, {high:.3f}] | {sign} {self.bound:g} | {verdict} |"
        )


HEADLINE: tuple[Claim, ...] = (
    Claim("85% lower latency than round-robin", "task_latency_mean_s", "adaptive", "round_robin", 0.15, True),
    Claim("throughput of static allocation", "throughput_tasks_per_s", "adaptive", "static", 0.95, False),
    Claim("lower latency than static", "task_latency_mean_s", "adaptive", "static", 1.0, True),
    Claim("lower cost per task than static", "cost_per_1k_tasks_usd", "adaptive", "static", 1.0, True),
    Claim("higher GPU utilisation than static", "gpu_utilization", "adaptive", "static", 1.0, False),
    Claim(
        "throughput of the tuned constant", "throughput_tasks_per_s", "adaptive", "provisioned", 0.95, False
    ),
    Claim(
        "lower latency than the tuned constant", "task_latency_mean_s", "adaptive", "provisioned", 1.0, True
    ),
    Claim(
        "lower cost per task than the tuned constant",
        "cost_per_1k_tasks_usd",
        "adaptive",
        "provisioned",
        1.0,
        True,
    ),
    Claim("lower latency than Knative's KPA", "task_latency_mean_s", "adaptive", "autoscaler", 1.0, True),
    Claim(
        "lower cost per task than Knative's KPA", "cost_per_1k_tasks_usd", "adaptive", "autoscaler", 1.0, True
    ),
)
"""The paper's headline, as measurable per-seed ratios; the last five ask the same of the baselines a
platform engineer would deploy (the tuned constant and the tuned KPA autoscaler)."""


def headline_table(results: Sequence[EpisodeResult]) -> str:
    """Markdown table of the :data:`HEADLINE` claims that the results can check."""
    lines = [
        "| claim | ratio | mean [95% CI] | bound | verdict |",
        "|---|---|---|---|---|",
    ]
    rows = [line for claim in HEADLINE if (line := claim.check(results)) is not None]
    return "\n".join(lines + rows) if rows else ""


def run_compare(
    config: ScenarioConfig,
    episodes: int,
    first_seed: int,
    out_dir: Path,
    policies: Sequence[str] | None = None,
    command: str | None = None,
    tuned_dir: Path | None = None,
) -> tuple[list[EpisodeResult], str]:
    """Run the baselines and write ``episodes.csv`` and ``summary.md`` into ``out_dir``.

    ``policies`` defaults to every deployable baseline that can run on ``config``
    (:func:`available_baselines`: the tuned ones where ``gpu-alloc tune`` saved settings for it).

    Returns:
        The results and the text of ``summary.md``.
    """
    if episodes < 1:
        raise ValueError(f"--episodes must be at least 1, got {episodes}")
    if first_seed < 0:
        raise ValueError(f"--seed must be >= 0 (Gymnasium seeds are non-negative), got {first_seed}")
    names = list(policies) if policies else available_baselines(config, tuned_dir)
    untuned = [] if policies else [n for n in TUNED_BASELINES if n not in names]
    chosen: dict[str, Policy] = {name: make_baseline(name, config, tuned_dir) for name in names}
    seeds = list(range(first_seed, first_seed + episodes))
    results = evaluate_policies(chosen, config, seeds)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_episodes_csv(results, out_dir / "episodes.csv")
    command = command or shlex.join(["gpu-alloc", *sys.argv[1:]])
    parts = [
        f"# Policy comparison on scenario `{config.name}`",
        "",
        f"Command: `{command}`",
        "",
        f"{episodes} episode{'s' if episodes > 1 else ''} per policy (seeds {seeds[0]}..{seeds[-1]}, "
        "the same workload for every "
        f"policy), {config.episode_length_s:g} s each, decision interval "
        f"{config.decision_interval_s:g} s. Cells: mean ± half-width of the Student-t 95% "
        "confidence interval across seeds.",
        "",
        summary_table(results),
        "",
    ]
    if untuned:
        parts += [
            f"Not run: {', '.join(untuned)}, which have no tuned settings for this scenario "
            f"(`gpu-alloc tune --scenario {config.name} --out DIR`, then `--tuned DIR`).",
            "",
        ]
    headline = headline_table(results)
    if headline:
        parts += [
            "## The paper's headline, measured",
            "",
            "Per-seed ratios (mean and Student-t 95% interval across seeds). A claim holds when the "
            "whole interval is on the right side of its bound.",
            "",
            headline,
            "",
        ]
    parts += ["## Gap to the limit", "", gap_table(results, seed_bounds(config, seeds)), ""]
    text = "\n".join(parts)
    (out_dir / "summary.md").write_text(text)
    return results, text
