"""Small-sample statistics: Student-t critical values, t intervals, interquartile means, the bootstrap."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from gpu_alloc_env.evaluation import EpisodeResult, summary_table
from gpu_alloc_env.stats import bootstrap_ci95, iqm, mean_ci95, t_critical_975, undefined_note


@pytest.mark.parametrize(
    ("df", "table"),
    [
        # Two-sided 95% (t_{0.975}) values of any Student-t table.
        (1, 12.706),
        (2, 4.303),
        (3, 3.182),
        (4, 2.776),
        (5, 2.571),
        (9, 2.262),
        (10, 2.228),
        (19, 2.093),
        (29, 2.045),
        (30, 2.042),
        (40, 2.021),
        (60, 2.000),
        (120, 1.980),
        # Between and beyond the tabulated rows the value is interpolated in 1/df.
        (50, 2.009),
        (80, 1.990),
        (200, 1.972),
        (1000, 1.962),
    ],
)
def test_t_critical_matches_the_table(df: int, table: float) -> None:
    assert t_critical_975(df) == pytest.approx(table, abs=1.5e-3)


def test_t_critical_decreases_toward_the_normal_quantile() -> None:
    values = [t_critical_975(df) for df in range(1, 2001)]
    assert all(b < a for a, b in itertools.pairwise(values))
    assert values[-1] > 1.959964
    assert t_critical_975(10**9) == pytest.approx(1.959964, abs=1e-6)


@pytest.mark.parametrize("df", [0, -1])
def test_t_critical_rejects_no_degrees_of_freedom(df: int) -> None:
    with pytest.raises(ValueError, match=rf"degrees of freedom must be >= 1, got {df}"):
        t_critical_975(df)


def test_mean_ci95_on_known_data() -> None:
    # 1..5: mean 3, sample variance 10 / 4 = 2.5, standard error sqrt(2.5 / 5), t_{0.975, 4} = 2.7764.
    mean, low, high = mean_ci95([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.7764 * math.sqrt(2.5 / 5)
    assert mean == pytest.approx(3.0)
    assert low == pytest.approx(3.0 - half) and high == pytest.approx(3.0 + half)
    # Two values 10 and 14: mean 12, sample sd 2 * sqrt(2), se 2, t_{0.975, 1} = 12.7062.
    mean, low, high = mean_ci95([10.0, 14.0])
    assert (mean, low, high) == pytest.approx((12.0, 12.0 - 2 * 12.7062, 12.0 + 2 * 12.7062))


def test_mean_ci95_is_symmetric_and_shift_invariant() -> None:
    data = np.random.default_rng(0).normal(5.0, 2.0, 12)
    mean, low, high = mean_ci95(data.tolist())
    assert high - mean == pytest.approx(mean - low)
    shifted = mean_ci95((data + 100.0).tolist())
    assert shifted == pytest.approx((mean + 100.0, low + 100.0, high + 100.0))


def test_mean_ci95_of_constant_data_is_a_point() -> None:
    assert mean_ci95([2.5, 2.5, 2.5]) == (2.5, 2.5, 2.5)


def test_mean_ci95_single_value_empty_and_nan() -> None:
    # One sample: the mean, and no interval (it says nothing of the spread).
    for values in ([7.0], [math.nan, 7.0, math.nan]):
        mean, low, high = mean_ci95(values)
        assert mean == 7.0 and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(v) for v in mean_ci95([]))
    assert all(math.isnan(v) for v in mean_ci95([math.nan, math.inf]))
    # NaNs are ignored: the interval is that of the finite values.
    assert mean_ci95([1.0, math.nan, 2.0, 3.0, 4.0, 5.0]) == mean_ci95([1.0, 2.0, 3.0, 4.0, 5.0])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 3, 4, 5, 6, 7, 8], 4.5),  # n = 8: two cut from each end, mean of 3, 4, 5, 6
        ([-100, 1, 2, 3, 4, 5, 6, 100], 3.5),  # the outliers are trimmed
        ([100, 6, 5, -100, 4, 3, 2, 1], 3.5),  # order does not matter
        ([1, 2, 3, 10], 2.5),  # n = 4: one cut from each end
        ([1, 2, 3, 4, 1000], 3.0),  # n = 5: one cut from each end, mean of 2, 3, 4
        ([1, 2, 9], 4.0),  # n = 3: nothing is cut
        ([5], 5.0),
        ([math.nan, 1, 2, 3, 10], 2.5),  # NaNs are dropped before trimming
    ],
)
def test_iqm_on_known_arrays(values: list[float], expected: float) -> None:
    assert iqm(values) == pytest.approx(expected)


def test_iqm_of_nothing_is_nan_and_accepts_arrays() -> None:
    assert math.isnan(iqm([]))
    assert math.isnan(iqm([math.nan]))
    assert iqm(np.arange(100, dtype=np.float64)) == pytest.approx(49.5)


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    data = np.random.default_rng(1).exponential(3.0, 30).tolist()
    first = bootstrap_ci95([data], np.mean, resamples=500, seed=11)
    assert bootstrap_ci95([data], np.mean, resamples=500, seed=11) == first
    assert bootstrap_ci95([data], np.mean, resamples=500, seed=12) != first
    # The point estimate does not depend on the seed.
    assert bootstrap_ci95([data], np.mean, resamples=500, seed=12)[0] == first[0]


def test_bootstrap_estimate_is_the_statistic_of_the_pooled_values_inside_its_interval() -> None:
    groups = [[1.0, 2.0, 3.0], [4.0, 5.0], [6.0, math.nan]]
    estimate, low, high = bootstrap_ci95(groups, np.mean, resamples=1000)
    assert estimate == pytest.approx(3.5)  # mean of 1..6, the NaN dropped
    assert low < estimate < high
    estimate, low, high = bootstrap_ci95(groups, iqm, resamples=1000)
    assert estimate == pytest.approx(iqm([1, 2, 3, 4, 5, 6]))
    assert low <= estimate <= high


def test_bootstrap_interval_matches_the_t_interval_for_a_normal_sample() -> None:
    data = np.random.default_rng(2).normal(10.0, 1.0, 200).tolist()
    _, low, high = bootstrap_ci95([data], np.mean, resamples=2000, seed=0)
    _, t_low, t_high = mean_ci95(data)
    assert (high - low) == pytest.approx(t_high - t_low, rel=0.15)


def test_bootstrap_narrows_with_more_data() -> None:
    rng = np.random.default_rng(3)
    widths = []
    for n in (10, 100, 1000):
        _, low, high = bootstrap_ci95([rng.normal(0.0, 1.0, n).tolist()], np.mean, resamples=1000)
        widths.append(high - low)
    assert widths[0] > 2.0 * widths[1] > 4.0 * widths[2]


def test_bootstrap_resamples_groups_as_well_as_values() -> None:
    # Two groups far apart: drawing the groups themselves is the main source of uncertainty, so the
    # two-level interval is much wider than the bootstrap of the same values pooled into one group.
    groups = [[0.0, 0.1, 0.2] * 20, [10.0, 10.1, 10.2] * 20]
    _, low, high = bootstrap_ci95(groups, np.mean, resamples=1000)
    _, pooled_low, pooled_high = bootstrap_ci95([groups[0] + groups[1]], np.mean, resamples=1000)
    assert high - low > 3.0 * (pooled_high - pooled_low)
    assert low == pytest.approx(0.1, abs=0.1) and high == pytest.approx(10.1, abs=0.1)


def test_bootstrap_degenerate_inputs() -> None:
    assert bootstrap_ci95([[4.0, 4.0, 4.0]], np.mean, resamples=100) == (4.0, 4.0, 4.0)
    assert all(math.isnan(v) for v in bootstrap_ci95([], np.mean))
    assert all(math.isnan(v) for v in bootstrap_ci95([[math.nan], []], np.mean))
    # Empty groups are dropped rather than resampled.
    assert bootstrap_ci95([[], [2.0, 2.0]], np.mean, resamples=50) == (2.0, 2.0, 2.0)


def test_undefined_note_counts_the_values_a_statistic_ignores() -> None:
    assert undefined_note([1.0, 2.0]) == ""
    assert undefined_note([4.0, math.nan, 4.2]) == " (2 of 3 defined)"
    assert undefined_note([1.0, math.inf, math.nan]) == " (1 of 3 defined)"


def test_summary_table_says_when_a_mean_rests_on_fewer_episodes() -> None:
    def result(seed: int, p95_s: float) -> EpisodeResult:
        return EpisodeResult("adaptive", seed, -1.0, 10, {"task_latency_p95_s": p95_s})

    table = summary_table([result(0, 4.0), result(1, math.nan), result(2, 4.2)], ["task_latency_p95_s"])
    assert "| adaptive | 3 | 4.100 ± 1.271 (2 of 3 defined) |" in table


def test_bootstrap_of_one_value_has_no_interval() -> None:
    estimate, low, high = bootstrap_ci95([[3.0], [math.nan]], lambda x: float(np.mean(x)))
    assert estimate == 3.0 and math.isnan(low) and math.isnan(high)
    assert not math.isnan(bootstrap_ci95([[3.0, 4.0]], lambda x: float(np.mean(x)))[1])
