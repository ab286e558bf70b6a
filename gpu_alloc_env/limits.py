"""Each policy's gap to the limit: how much of the way from the worst baseline to the bound it covers.

The limit is :func:`gpu_alloc_env.baselines.bound.return_bound`, a relaxation bound that no policy
exceeds, computed per seed. On seed ``s`` a policy with return ``R(s)`` covers

    share(s) = (R(s) - R_worst(s)) / (bound(s) - R_worst(s))

of the way from the worst policy of the comparison (the lowest mean return, usually round-robin)
to the bound, and leaves ``bound(s) - R(s)`` of return on the table. A share of 1 would reach the
bound; since the bound ignores cold starts, queueing and idle billing, no policy reaches it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from gpu_alloc_env.baselines.bound import BOUND_KIND, return_bound
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.evaluation import EpisodeResult, format_interval, policy_means
from gpu_alloc_env.stats import bootstrap_ci95, iqm


def seed_bounds(config: ScenarioConfig, seeds: Sequence[int]) -> dict[int, float]:
    """Seed -> the relaxation bound on the return of that episode."""
    return {int(seed): return_bound(config, int(seed)) for seed in seeds}


def worst_policy(results: Sequence[EpisodeResult]) -> str:
    """The policy with the lowest mean return: the zero of the shares."""
    means = policy_means(results, "episode_return")
    return min(means, key=lambda p: means[p])


def gap_shares(
    results: Sequence[EpisodeResult], bounds: Mapping[int, float], worst: str
) -> dict[str, list[float]]:
    """Policy -> its per-episode share of the way from ``worst`` to the bound (module docstring)."""
    floor = {r.seed: r.episode_return for r in results if r.policy == worst}
    shares: dict[str, list[float]] = {}
    for r in results:
        if r.seed in floor and r.seed in bounds and bounds[r.seed] > floor[r.seed]:
            share = (r.episode_return - floor[r.seed]) / (bounds[r.seed] - floor[r.seed])
            shares.setdefault(r.policy, []).append(share)
    return shares


def gap_table(results: Sequence[EpisodeResult], bounds: Mapping[int, float]) -> str:
    """A Markdown table of every policy's gap to the bound, with the bound's kind stated."""
    worst = worst_policy(results)
    shares = gap_shares(results, bounds, worst)
    gaps: dict[str, list[float]] = {}
    for r in results:
        if r.seed in bounds:
            gaps.setdefault(r.policy, []).append(bounds[r.seed] - r.episode_return)
    bound_values = [bounds[s] for s in sorted({r.seed for r in results}) if s in bounds]
    lines = [
        f"Limit: the {BOUND_KIND} on the return, mean {np.mean(bound_values):.1f} over "
        f"{len(bound_values)} episodes (`gpu_alloc_env.baselines.bound`): no policy can score above it. "
        f"Share: of the way from the worst policy here (`{worst}`) to the bound, per episode; "
        "interquartile mean and 95% bootstrap interval.",
        "",
        "| policy | share of the way to the bound | bound - return |",
        "|---|---|---|",
    ]
    for policy in dict.fromkeys(r.policy for r in results):
        share = bootstrap_ci95([shares.get(policy, [])], iqm)
        gap = bootstrap_ci95([gaps.get(policy, [])], iqm)
        cells = [format_interval(*share, bracketed=True), format_interval(*gap, bracketed=True)]
        lines.append(f"| {policy} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)
