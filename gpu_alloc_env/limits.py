"""Each policy's gap to the limit: how much of the way from the worst baseline to the bound it covers.

The limit is :func:`gpu_alloc_env.baselines.bound.return_bound`, a relaxation bound that no policy
exceeds, computed per seed. On seed ``s`` a policy with return ``R(s)`` covers

    share(s) = (R(s) - R_worst(s)) / (bound(s) - R_worst(s))

of the way from the worst baseline of the comparison (the non-clairvoyant baseline with the lowest
mean return, usually round-robin) to the bound, and leaves ``bound(s) - R(s)`` of return on the
table. A share of 1 would reach the
bound; since the bound ignores cold starts, queueing and idle billing, no policy reaches it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from gpu_alloc_env.baselines import BASELINES, CLAIRVOYANT
from gpu_alloc_env.baselines.bound import BOUND_KIND, return_bound
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.evaluation import EpisodeResult, format_interval, policy_means
from gpu_alloc_env.stats import bootstrap_ci95, iqm


def seed_bounds(config: ScenarioConfig, seeds: Sequence[int]) -> dict[int, float]:
    """Seed -> the relaxation bound on the return of that episode."""
    return {int(seed): return_bound(config, int(seed)) for seed in seeds}


def worst_baseline(results: Sequence[EpisodeResult]) -> str | None:
    """The deployable baseline with the lowest mean return (the zero of the shares), if any ran."""
    means = policy_means(
        [r for r in results if r.policy in BASELINES and r.policy not in CLAIRVOYANT], "episode_return"
    )
    return min(means, key=lambda p: means[p]) if means else None


def check_below_bound(results: Sequence[EpisodeResult], bounds: Mapping[int, float]) -> None:
    """Raise if any episode scored above its bound: the bound would then be wrong, not the policy good."""
    for r in results:
        if r.seed in bounds and r.episode_return > bounds[r.seed] + 1e-6 * max(1.0, abs(bounds[r.seed])):
            raise ValueError(
                f"{r.policy} scored {r.episode_return:.3f} on seed {r.seed}, above the relaxation bound "
                f"{bounds[r.seed]:.3f}: the bound does not hold for this scenario; please report it"
            )


def gap_shares(
    results: Sequence[EpisodeResult], bounds: Mapping[int, float], worst: str
) -> dict[str, list[float]]:
    """Policy -> its per-episode share of the way from ``worst`` to the bound (module docstring)."""
    check_below_bound(results, bounds)
    floor = {r.seed: r.episode_return for r in results if r.policy == worst}
    shares: dict[str, list[float]] = {}
    for r in results:
        if r.seed in floor and r.seed in bounds and bounds[r.seed] > floor[r.seed]:
            share = (r.episode_return - floor[r.seed]) / (bounds[r.seed] - floor[r.seed])
            shares.setdefault(r.policy, []).append(share)
    return shares


def gap_table(results: Sequence[EpisodeResult], bounds: Mapping[int, float]) -> str:
    """A Markdown table of every policy's gap to the bound, with the bound's kind stated.

    Without a baseline among ``results`` there is no zero for the shares; the table then shows the
    return left on the table only.
    """
    worst = worst_baseline(results)
    shares = gap_shares(results, bounds, worst) if worst else {}
    gaps: dict[str, list[float]] = {}
    for r in results:
        if r.seed in bounds:
            gaps.setdefault(r.policy, []).append(bounds[r.seed] - r.episode_return)
    bound_values = [bounds[s] for s in sorted({r.seed for r in results}) if s in bounds]
    lines = [
        f"Limit: the {BOUND_KIND} on the return, mean {np.mean(bound_values):.1f} over "
        f"{len(bound_values)} episodes (`gpu_alloc_env.baselines.bound`): no policy can score above it. "
        + (
            f"Share: of the way from the worst baseline here (`{worst}`) to the bound, per episode; "
            if worst
            else "Share: undefined without a baseline to start from; "
        )
        + "interquartile mean and 95% bootstrap interval.",
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
