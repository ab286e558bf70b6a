"""Synthetic twins: the fits recover known processes; a twin is fitted to the training part only."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from gpu_alloc_env.config import ConfigError, ScenarioConfig
from gpu_alloc_env.core.workload import TaskStream
from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.traces import bundled_trace, split_bounds_s
from gpu_alloc_env.twin import (
    count_cumulants,
    fit_bursty,
    fit_diurnal,
    fit_lognormal,
    index_of_dispersion,
    mmpp_idc,
    mmpp_third_cumulant,
    twin_overrides,
    twin_scenario,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
# Long enough that sampling noise is well inside the tolerances: for (3.5, 3, 30, 120) the count
# over the span has an index of dispersion of about 170, so the sample rate's relative standard
# deviation is sqrt(170 / (3.5 * span)), 0.7% here (3.5% at 40,000 s, too close to a 3% bound).
MMPP_SPAN_S = 1_000_000.0


def simulate_mmpp(
    rate: float, peak_to_mean: float, mean_high_s: float, mean_low_s: float, span_s: float, seed: int
) -> FloatArray:
    """Exact continuous-time two-state MMPP: exponential sojourns, Poisson arrivals within each."""
    rng = np.random.default_rng(seed)
    share_high = mean_high_s / (mean_high_s + mean_low_s)
    high = rate * peak_to_mean
    low = (rate - share_high * high) / (1.0 - share_high)
    first_high = bool(rng.random() < share_high)  # stationary start; sojourns are memoryless
    sojourns = 2 * int(span_s / (mean_high_s + mean_low_s)) + 2
    while True:
        is_high = (np.arange(sojourns) % 2 == 0) == first_high
        durations = rng.exponential(1.0, sojourns) * np.where(is_high, mean_high_s, mean_low_s)
        if durations.sum() >= span_s:
            break
        sojourns *= 2
    ends = np.cumsum(durations)
    starts = ends - durations
    keep = starts < span_s
    starts, ends, is_high = starts[keep], np.minimum(ends[keep], span_s), is_high[keep]
    counts = rng.poisson(np.where(is_high, high, low) * (ends - starts))
    arrivals: FloatArray = np.sort(rng.uniform(np.repeat(starts, counts), np.repeat(ends, counts)))
    return arrivals


MMPP_CASES = {
    "skewed": (3.5, 3.0, 30.0, 120.0),
    "symmetric": (5.0, 2.0, 60.0, 60.0),
    "mostly-high": (3.0, 1.4, 120.0, 60.0),
}


@cache
def mmpp_sample(case: str) -> FloatArray:
    return simulate_mmpp(*MMPP_CASES[case], MMPP_SPAN_S, seed=2024)


def test_simulated_mmpp_has_the_intended_rates() -> None:
    rate = MMPP_CASES["skewed"][0]
    arrivals = mmpp_sample("skewed")
    assert arrivals.size / MMPP_SPAN_S == pytest.approx(rate, rel=0.03)
    assert arrivals[0] >= 0.0 and arrivals[-1] < MMPP_SPAN_S


@pytest.mark.parametrize("case", ["skewed", "symmetric"])
def test_fit_bursty_recovers_a_known_mmpp(case: str) -> None:
    rate, peak, high_s, low_s = MMPP_CASES[case]
    arrivals = mmpp_sample(case)
    fit = fit_bursty(arrivals, MMPP_SPAN_S)
    assert fit.task_rate_tps == pytest.approx(arrivals.size / MMPP_SPAN_S)
    assert fit.task_rate_tps == pytest.approx(rate, rel=0.03)
    assert fit.burst_peak_to_mean == pytest.approx(peak, rel=0.15)
    assert fit.burst_mean_high_s == pytest.approx(high_s, rel=0.25)
    assert fit.burst_mean_low_s == pytest.approx(low_s, rel=0.25)
    assert fit.windows_s[0] == 1.0 and max(fit.windows_s) <= MMPP_SPAN_S / 10


@pytest.mark.parametrize("case", sorted(MMPP_CASES))
def test_mmpp_idc_formula_matches_simulation(case: str) -> None:
    params = MMPP_CASES[case]
    arrivals = mmpp_sample(case)
    for window_s in (1.0, 10.0, 100.0):
        empirical = index_of_dispersion(arrivals, MMPP_SPAN_S, window_s)
        assert empirical == pytest.approx(float(mmpp_idc(window_s, *params)), rel=0.1)
    # The IDC grows from 1 (short windows) to 1 + 2 D2 / (rate a) (long ones).
    curve = mmpp_idc(np.array([1e-6, 1.0, 10.0, 1e3, 1e7]), *params)
    assert curve[0] == pytest.approx(1.0, abs=1e-4)
    assert np.all(np.diff(curve) > 0)


@pytest.mark.parametrize("case", ["skewed", "mostly-high"])
def test_mmpp_third_cumulant_formula_matches_simulation(case: str) -> None:
    # In the symmetric case the chain's third-order term vanishes and the sample third cumulant is
    # dominated by noise, so the formula is checked where that term is positive and negative.
    params = MMPP_CASES[case]
    _, _, third = count_cumulants(mmpp_sample(case), MMPP_SPAN_S, 10.0)
    assert third == pytest.approx(float(mmpp_third_cumulant(10.0, *params)), rel=0.2)


def test_mmpp_formulas_reduce_to_poisson_without_bursts() -> None:
    # Peak-to-mean 1: both states run at the mean rate, a Poisson process (IDC 1, kappa3 = mean).
    assert float(mmpp_idc(10.0, 3.0, 1.0, 30.0, 120.0)) == pytest.approx(1.0)
    assert float(mmpp_third_cumulant(10.0, 3.0, 1.0, 30.0, 120.0)) == pytest.approx(30.0)


def poisson_sample(rate: float, span_s: float, seed: int) -> FloatArray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.uniform(0.0, span_s, rng.poisson(rate * span_s)))


@pytest.mark.parametrize("seed", range(20))
def test_fit_bursty_does_not_invent_bursts_in_poisson_arrivals(seed: int) -> None:
    span_s = 40_000.0
    arrivals = poisson_sample(3.5, span_s, seed)
    assert index_of_dispersion(arrivals, span_s, 100.0) < 1.3  # the data show no burstiness
    fit = fit_bursty(arrivals, span_s)
    assert fit.task_rate_tps == pytest.approx(3.5, rel=0.02)
    assert fit.burst_peak_to_mean < 1.3, fit


def test_fit_bursty_needs_enough_data() -> None:
    with pytest.raises(ConfigError, match="at least 100 arrivals"):
        fit_bursty(np.linspace(0.0, 1000.0, 50, endpoint=False), 1000.0)
    with pytest.raises(ConfigError, match="at least 100 arrivals"):
        fit_bursty(np.linspace(0.0, 40.0, 500, endpoint=False), 40.0)


def sinusoidal_poisson(
    rate: float, period_s: float, amplitude: float, span_s: float, seed: int, phase: float = 0.0
) -> FloatArray:
    """Poisson arrivals at rate ``rate * (1 + amplitude sin(2 pi t / period + phase))``, by thinning."""
    rng = np.random.default_rng(seed)
    peak = rate * (1.0 + amplitude)
    candidates = np.sort(rng.uniform(0.0, span_s, rng.poisson(peak * span_s)))
    keep = rng.random(candidates.size) * peak < rate * (
        1.0 + amplitude * np.sin(2.0 * math.pi * candidates / period_s + phase)
    )
    return candidates[keep]


@pytest.mark.parametrize("phase", [0.0, 2.0])
def test_fit_diurnal_recovers_period_and_amplitude(phase: float) -> None:
    span_s = 20_000.0
    arrivals = sinusoidal_poisson(3.0, 600.0, 0.6, span_s, seed=8, phase=phase)
    fit = fit_diurnal(arrivals, span_s)
    assert fit.diurnal_period_s == pytest.approx(600.0, rel=0.02)
    assert fit.diurnal_amplitude == pytest.approx(0.6, abs=0.05)
    assert fit.task_rate_tps == pytest.approx(3.0, rel=0.03)
    fields = fit.workload_fields(load_scale=2.0)
    assert fields["pattern"] == "diurnal" and fields["task_rate_tps"] == pytest.approx(2 * fit.task_rate_tps)


def test_fit_diurnal_finds_no_swing_in_a_steady_process() -> None:
    span_s = 20_000.0
    fit = fit_diurnal(poisson_sample(3.0, span_s, 9), span_s)
    assert fit.diurnal_amplitude < 0.05


def test_fit_lognormal_recovers_mean_and_cv() -> None:
    rng = np.random.default_rng(10)
    sigma2 = math.log1p(0.8**2)
    samples = rng.lognormal(math.log(1000.0) - 0.5 * sigma2, math.sqrt(sigma2), 200_000)
    mean, cv = fit_lognormal(samples)
    assert mean == pytest.approx(1000.0, rel=0.03)
    assert cv == pytest.approx(0.8, rel=0.03)
    whole_mean, whole_cv = fit_lognormal(np.rint(samples).astype(np.int64))  # token counts
    assert whole_mean == pytest.approx(mean, rel=1e-3) and whole_cv == pytest.approx(cv, rel=1e-3)


def test_fit_lognormal_refuses_too_few_or_zero_tokens() -> None:
    with pytest.raises(ConfigError):
        fit_lognormal(np.array([5]))
    with pytest.raises(ConfigError):
        fit_lognormal(np.zeros(10, dtype=np.int64))


def training_part(name: str, train_fraction: float) -> tuple[FloatArray, IntArray, IntArray, float]:
    trace = bundled_trace(name)
    start, end = split_bounds_s(trace, "train", train_fraction)
    part = trace.between(start, end)
    return part.arrival_s, part.input_tokens, part.output_tokens, end - start


def agent_named(config: ScenarioConfig, name: str) -> int:
    return [a.name for a in config.agents].index(name)


def test_twin_of_trace_code_is_fitted_to_its_training_part() -> None:
    config = make_scenario("trace-code")
    spec = config.workload.trace
    assert spec is not None and spec.tokens_agent == "code" and spec.split == "train"
    twin = twin_scenario(config)
    assert twin.workload.pattern == "bursty" and twin.workload.trace is None
    assert twin.name == "trace-code-twin"
    arrival_s, inputs, outputs, span_s = training_part("code", spec.train_fraction)
    code = twin.agents[agent_named(twin, "code")]
    assert code.invoke_probability == 1.0
    assert code.input_tokens_mean == pytest.approx(float(inputs.mean()))
    assert code.output_tokens_mean == pytest.approx(float(outputs.mean()))
    assert code.input_tokens_cv == pytest.approx(float(inputs.std() / inputs.mean()))
    assert twin.workload.task_rate_tps == pytest.approx(arrival_s.size / span_s * spec.load_scale)
    # Only the tokens agent changes; the other agents, the pool and the clock are the scenario's.
    for before, after in zip(config.agents, twin.agents, strict=True):
        if before.name != "code":
            assert before == after
    assert twin.replace(name=config.name, workload=config.workload, agents=config.agents) == config
    assert make_scenario("trace-code-twin") == twin


def test_twin_of_trace_conv_carries_tokens_on_the_coordinator() -> None:
    config = make_scenario("trace-conv")
    spec = config.workload.trace
    assert spec is not None
    twin = twin_scenario(config)
    _, inputs, outputs, _ = training_part("conv", spec.train_fraction)
    coordinator = twin.agents[0]
    assert coordinator.input_tokens_mean == pytest.approx(float(inputs.mean()))
    assert twin.workload.aggregate_output_tokens_mean == pytest.approx(float(outputs.mean()))
    assert twin.agents[1:] == config.agents[1:]
    assert make_scenario("trace-conv-twin") == twin


def test_twin_of_trace_code_arrives_at_its_fitted_rate() -> None:
    # The twin's WorkloadSpec says task_rate_tps (the training part's rate times load_scale); its
    # simulated arrivals must come at that rate, or the twin is more loaded than the trace it
    # stands for. Its bursts are short (a few seconds, near the 1 s decision interval), so the
    # burst process must keep its fitted time share at that scale. Over 100,000 s the sample
    # rate's relative standard deviation is about 1.5% (IDC of about 100 at 4.2 tasks/s).
    twin = make_scenario("trace-code-twin")
    workload = twin.workload
    assert workload.burst_mean_high_s < 10.0 * twin.decision_interval_s
    tasks = 0
    high_intervals = 0
    intervals = 25_000
    for seed in range(4):
        stream = TaskStream(twin, np.random.default_rng(seed))
        for k in range(intervals):
            high_intervals += stream.burst_high
            tasks += stream.draw(float(k), float(k + 1)).count
    total_s = 4 * intervals * twin.decision_interval_s
    assert tasks / total_s == pytest.approx(workload.task_rate_tps, rel=0.05)
    assert high_intervals / (4 * intervals) == pytest.approx(workload.burst_high_share, abs=0.006)


def write_requests(path: Path, times: FloatArray, inputs: IntArray, outputs: IntArray) -> Path:
    lines = ["ts,prompt,completion"]
    lines += [f"{t!r},{int(i)},{int(o)}" for t, i, o in zip(times.tolist(), inputs, outputs, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def file_scenario(path: Path, split: str) -> ScenarioConfig:
    trace = {
        "source": str(path),
        "timestamp_column": "ts",
        "input_tokens_column": "prompt",
        "output_tokens_column": "completion",
        "timestamp_unit": "s",
        "tokens_agent": "code",
        "split": split,
        "train_fraction": 0.6,
    }
    return make_scenario("paper", workload={"pattern": "trace", "trace": trace})


def test_twin_ignores_the_held_out_part(tmp_path: Path) -> None:
    # A bursty 2000 s trace; the copy changes every held-out request (t >= 1200 s) but the last,
    # which fixes the span and so the boundary: new tokens, and times jittered within the part.
    times = np.sort(simulate_mmpp(3.0, 3.0, 20.0, 80.0, 2000.0, seed=12))
    times = times - times[0]
    rng = np.random.default_rng(13)
    inputs = rng.integers(100, 4000, times.size)
    outputs = rng.integers(1, 400, times.size)
    original = write_requests(tmp_path / "original.csv", times, inputs, outputs)
    held = (times >= 0.6 * times[-1]) & (times < times[-1])
    assert held.sum() > 100
    changed_times = times.copy()
    changed_times[held] = np.sort(rng.uniform(0.6 * times[-1], times[-1], held.sum()))
    changed_inputs, changed_outputs = inputs.copy(), outputs.copy()
    changed_inputs[held] *= 7
    changed_outputs[held] += 1000
    changed = write_requests(tmp_path / "changed.csv", changed_times, changed_inputs, changed_outputs)

    twin = twin_overrides(file_scenario(original, "train"))
    assert twin == twin_overrides(file_scenario(changed, "train"))
    # The held-out part does enter the held-out twin, so the change above is one a fit would see.
    assert twin_overrides(file_scenario(original, "held_out")) != twin_overrides(
        file_scenario(changed, "held_out")
    )
    code = twin["agents"]["code"]
    train = times < 0.6 * times[-1]
    assert code["input_tokens_mean"] == pytest.approx(float(inputs[train].mean()))
    assert code["output_tokens_mean"] == pytest.approx(float(outputs[train].mean()))


def test_twin_of_a_scaled_trace_is_fitted_in_simulated_time(tmp_path: Path) -> None:
    times = np.sort(simulate_mmpp(3.0, 3.0, 20.0, 80.0, 2000.0, seed=14))
    times = times - times[0]
    tokens = np.full(times.size, 100)
    path = write_requests(tmp_path / "scaled.csv", times, tokens, tokens)
    base = file_scenario(path, "train")
    fast = base.replace(workload={"trace": {"time_scale": 0.5, "load_scale": 3.0}})
    slow_rate = twin_scenario(base).workload.task_rate_tps
    fast_twin = twin_scenario(fast).workload
    # Replaying twice as fast doubles the rate; load_scale multiplies it again.
    assert fast_twin.task_rate_tps == pytest.approx(2.0 * 3.0 * slow_rate)


def test_diurnal_twin(tmp_path: Path) -> None:
    times = sinusoidal_poisson(3.0, 300.0, 0.5, 4000.0, seed=15)
    tokens = np.full(times.size, 100)
    path = write_requests(tmp_path / "day.csv", times - times[0], tokens, tokens)
    twin = twin_scenario(file_scenario(path, "all"), "diurnal")
    assert twin.workload.pattern == "diurnal" and twin.workload.trace is None
    assert twin.workload.diurnal_period_s == pytest.approx(300.0, rel=0.05)
    assert twin.name == "paper-diurnal-twin"


def test_twin_of_a_synthetic_scenario_is_refused() -> None:
    with pytest.raises(ConfigError, match="does not replay a trace"):
        twin_scenario(make_scenario("paper"))
    with pytest.raises(ConfigError, match="does not replay a trace"):
        twin_overrides(make_scenario("bursty"), "diurnal")


def test_twin_pattern_must_be_bursty_or_diurnal() -> None:
    with pytest.raises(ConfigError, match="pattern must be one of"):
        twin_overrides(make_scenario("trace-code"), "steady")
