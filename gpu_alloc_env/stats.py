"""Small-sample statistics for result tables: Student-t intervals, interquartile means, bootstrap."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

# Two-sided 95% critical values of Student's t, t_{0.975, df}, for df = 1..30.
_T_975 = (
    12.7062,
    4.3027,
    3.1824,
    2.7764,
    2.5706,
    2.4469,
    2.3646,
    2.3060,
    2.2622,
    2.2281,
    2.2010,
    2.1788,
    2.1604,
    2.1448,
    2.1314,
    2.1199,
    2.1098,
    2.1009,
    2.0930,
    2.0860,
    2.0796,
    2.0739,
    2.0687,
    2.0639,
    2.0595,
    2.0555,
    2.0518,
    2.0484,
    2.0452,
    2.0423,
)
_T_975_LARGE = ((40, 2.0211), (60, 2.0003), (120, 1.9799))
_Z_975 = 1.959964


def t_critical_975(df: int) -> float:
    """Two-sided 95% critical value of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T_975):
        return _T_975[df - 1]
    previous_df, previous_t = len(_T_975), _T_975[-1]
    for next_df, next_t in _T_975_LARGE:
        if df <= next_df:
            # Interpolate linearly in 1/df, which is how t quantiles behave for large df.
            w = (1.0 / previous_df - 1.0 / df) / (1.0 / previous_df - 1.0 / next_df)
            return previous_t + w * (next_t - previous_t)
        previous_df, previous_t = next_df, next_t
    w = (1.0 / previous_df - 1.0 / df) / (1.0 / previous_df)
    return previous_t + w * (_Z_975 - previous_t)


def mean_ci95(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high) of the Student-t 95% interval of the mean; NaNs are ignored.

    With a single finite value the interval is undefined (NaN bounds: one sample says nothing of
    the spread); with none, all three are NaN.
    """
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(array.mean())
    if array.size == 1:
        return mean, math.nan, math.nan
    half = t_critical_975(array.size - 1) * float(array.std(ddof=1)) / math.sqrt(array.size)
    return mean, mean - half, mean + half


def undefined_note(values: Sequence[float] | NDArray[np.float64]) -> str:
    """``""`` when every value is finite, else `` (k of n defined)``, for a table cell.

    The statistics here ignore NaNs (an episode without a completed task has no latency), so a
    cell must say when they rest on fewer episodes than its row.
    """
    array = np.asarray(values, dtype=np.float64).ravel()
    defined = int(np.isfinite(array).sum())
    return "" if defined == array.size else f" ({defined} of {array.size} defined)"


def iqm(values: Sequence[float] | NDArray[np.float64]) -> float:
    """Interquartile mean: the mean of the values left after trimming a quarter from each end.

    ``floor(n / 4)`` values are cut from each end (as ``scipy.stats.trim_mean(x, 0.25)``); NaNs are
    ignored; NaN when nothing is left.
    """
    array = np.sort(np.asarray(values, dtype=np.float64))
    array = array[np.isfinite(array)]
    cut = array.size // 4
    kept = array[cut : array.size - cut]
    return float(kept.mean()) if kept.size else math.nan


def bootstrap_ci95(
    groups: Sequence[Sequence[float]],
    statistic: Callable[[NDArray[np.float64]], float],
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(estimate, low, high): ``statistic`` of the pooled values and its 95% percentile bootstrap interval.

    Two-level resampling: the groups (for example the runs of different training seeds) are drawn
    with replacement, then the values (episodes) within each drawn group. A single group reduces
    to the ordinary bootstrap over its values. NaNs are dropped first. With fewer than two values in
    all the interval is undefined (NaN bounds): resampling one value has no spread to show.
    """
    arrays = [np.asarray(g, dtype=np.float64) for g in groups]
    arrays = [a[np.isfinite(a)] for a in arrays]
    arrays = [a for a in arrays if a.size]
    if not arrays:
        return math.nan, math.nan, math.nan
    estimate = statistic(np.concatenate(arrays))
    if sum(a.size for a in arrays) < 2:
        return float(estimate), math.nan, math.nan
    rng = np.random.default_rng(seed)
    replicates = np.empty(resamples)
    for k in range(resamples):
        chosen = rng.integers(0, len(arrays), size=len(arrays))
        pooled = [arrays[i][rng.integers(0, arrays[i].size, size=arrays[i].size)] for i in chosen]
        replicates[k] = statistic(np.concatenate(pooled))
    low, high = np.percentile(replicates, [2.5, 97.5])
    return float(estimate), float(low), float(high)


def stratified_bootstrap_ci95(
    strata: Sequence[Sequence[float]],
    statistic: Callable[[Sequence[NDArray[np.float64]]], float],
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(estimate, low, high) of ``statistic`` over strata, with a stratified 95% bootstrap interval.

    Each resample draws, with replacement, as many values from every stratum (for example the
    episodes of one scenario) as it holds, so every stratum keeps its weight, as rliable's
    aggregate intervals do. ``statistic`` takes the list of (resampled) strata.
    """
    arrays = [np.asarray(s, dtype=np.float64) for s in strata]
    arrays = [a[np.isfinite(a)] for a in arrays]
    arrays = [a for a in arrays if a.size]
    if not arrays:
        return math.nan, math.nan, math.nan
    estimate = statistic(arrays)
    if sum(a.size for a in arrays) < 2:
        return float(estimate), math.nan, math.nan
    rng = np.random.default_rng(seed)
    replicates = np.array(
        [statistic([a[rng.integers(0, a.size, size=a.size)] for a in arrays]) for _ in range(resamples)]
    )
    low, high = np.percentile(replicates, [2.5, 97.5])
    return float(estimate), float(low), float(high)


def probability_of_improvement(
    x: Sequence[float] | NDArray[np.float64], y: Sequence[float] | NDArray[np.float64]
) -> float:
    """P(X > Y) + P(X = Y) / 2 for a random draw of each: the Mann-Whitney statistic over n x m.

    rliable's probability of improvement of the policy scoring ``x`` over the one scoring ``y``
    (0.5: neither is better).
    """
    a = np.asarray(x, dtype=np.float64)[:, None]
    b = np.asarray(y, dtype=np.float64)[None, :]
    if a.size == 0 or b.size == 0:
        return math.nan
    return float(np.mean((a > b) + 0.5 * (a == b)))


def improvement_ci95(
    x: Sequence[float], y: Sequence[float], resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """:func:`probability_of_improvement` with a 95% bootstrap interval (each sample resampled)."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    estimate = probability_of_improvement(a, b)
    if a.size < 2 or b.size < 2:
        return estimate, math.nan, math.nan
    rng = np.random.default_rng(seed)
    replicates = [
        probability_of_improvement(a[rng.integers(0, a.size, a.size)], b[rng.integers(0, b.size, b.size)])
        for _ in range(resamples)
    ]
    low, high = np.percentile(replicates, [2.5, 97.5])
    return estimate, float(low), float(high)
