"""Synthetic twins: the bursty or diurnal workload, and the token distributions, fitted to a trace.

A twin is a synthetic scenario whose arrivals and token counts look like a trace's, so that a
policy can train on unlimited episodes and be judged on the trace itself. It is fitted to the part
of the trace that the scenario trains on (never to the held-out part), in simulated time (after
``time_scale``); ``load_scale`` then multiplies its rates, as thinning does to a trace.

- **Rate**: requests over the span.
- **Burstiness** (``bursty``): the two-state Markov-modulated Poisson process whose index of
  dispersion of counts, IDC(T) = Var N(T) / E N(T), matches the trace's over windows T from 1 s to a
  tenth of the span (:func:`mmpp_idc`, fitted by least squares), and whose third cumulant of counts
  matches the trace's (which fixes how much of the time is spent in bursts). Arrivals whose IDC is
  within noise of 1 at every window are fitted as Poisson.
- **Daily shape** (``diurnal``): the sinusoid, over a grid of periods, that best fits the counts
  in 10 s bins by least squares.
- **Tokens**: log-normals with the trace's mean and coefficient of variation (so the twin's mean
  work per task is the trace's), for the agent whose requests carry the trace's tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.arrays import FloatArray
from gpu_alloc_env.config import ConfigError, ScenarioConfig, TraceSpec
from gpu_alloc_env.traces import Trace, split_bounds_s, trace_from_spec

IDC_WINDOWS_S: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)
"""Count windows (simulated seconds) over which the index of dispersion is fitted."""
MIN_WINDOWS = 10
"""A window length is used only if the span holds at least this many windows."""
TWIN_PATTERNS = ("bursty", "diurnal")
SIGNIFICANT_SE = 4.0
"""Arrivals are fitted as bursty only if, at some window, the IDC exceeds 1 by this many standard
errors (``IDC * sqrt(2 / (windows - 1))``); otherwise they are Poisson (``burst_peak_to_mean`` 1)."""


# ------------------------------------------------------------------------------- statistics
def window_counts(arrival_s: FloatArray, span_s: float, window_s: float) -> FloatArray:
    """Arrivals in each whole window ``[k w, (k + 1) w)`` of ``[0, span_s)``."""
    windows = int(span_s // window_s)
    counts = np.bincount(
        (arrival_s[arrival_s < windows * window_s] // window_s).astype(np.int64), minlength=windows
    )
    return counts.astype(np.float64)


def count_cumulants(arrival_s: FloatArray, span_s: float, window_s: float) -> tuple[float, float, float]:
    """First three cumulants (mean, variance, third central moment) of the counts per window."""
    counts = window_counts(arrival_s, span_s, window_s)
    mean = float(counts.mean())
    centred = counts - mean
    return mean, float(np.mean(centred**2)), float(np.mean(centred**3))


def index_of_dispersion(arrival_s: FloatArray, span_s: float, window_s: float) -> float:
    """IDC(T) = Var N(T) / E N(T) over consecutive windows of ``window_s`` (1 for Poisson)."""
    mean, variance, _ = count_cumulants(arrival_s, span_s, window_s)
    return variance / mean if mean > 0 else math.nan


def usable_windows(span_s: float) -> list[float]:
    """The windows of :data:`IDC_WINDOWS_S` that ``span_s`` holds at least :data:`MIN_WINDOWS` times."""
    return [w for w in IDC_WINDOWS_S if span_s / w >= MIN_WINDOWS]


# ------------------------------------------------------------------------------- MMPP model
def _g(x: FloatArray) -> FloatArray:
    """1 - (1 - exp(-x)) / x, the IDC's growth from 0 (x -> 0) to 1 (x -> inf)."""
    result: FloatArray = 1.0 - (-np.expm1(-x)) / x
    return result


def _h(a: float, window_s: FloatArray) -> FloatArray:
    """Integral over [0, T] of (T - u) u exp(-a u) du, the third cumulant's window factor."""
    t = window_s
    e = np.exp(-a * t)
    i1 = (1.0 - e * (1.0 + a * t)) / a**2
    i2 = (2.0 - e * (a * a * t * t + 2.0 * a * t + 2.0)) / a**3
    result: FloatArray = t * i1 - i2
    return result


def _mmpp_moments(
    rate_tps: float, peak_to_mean: float, mean_high_s: float, mean_low_s: float
) -> tuple[float, float, float]:
    """(a, D2, D3): switching rate sum, rate-process variance and third cumulant of a 2-state MMPP."""
    a = 1.0 / mean_high_s + 1.0 / mean_low_s
    p = mean_high_s / (mean_high_s + mean_low_s)
    delta = rate_tps * (peak_to_mean - 1.0) / (1.0 - p)
    return a, delta**2 * p * (1 - p), delta**3 * p * (1 - p) * (1 - 2 * p)


def mmpp_idc(
    window_s: FloatArray | float, rate_tps: float, peak_to_mean: float, mean_high_s: float, mean_low_s: float
) -> FloatArray:
    """Index of dispersion of counts in windows of ``window_s`` of the ``bursty`` workload.

    For a two-state MMPP with rate-process variance D2 and switching rates summing to a:
    IDC(T) = 1 + 2 D2 / (rate a) * (1 - (1 - exp(-a T)) / (a T)).
    """
    t = np.asarray(window_s, dtype=np.float64)
    a, d2, _ = _mmpp_moments(rate_tps, peak_to_mean, mean_high_s, mean_low_s)
    result: FloatArray = 1.0 + 2.0 * d2 / (rate_tps * a) * _g(a * t)
    return result


def mmpp_third_cumulant(
    window_s: FloatArray | float, rate_tps: float, peak_to_mean: float, mean_high_s: float, mean_low_s: float
) -> FloatArray:
    """Third cumulant of counts in windows of ``window_s`` of the ``bursty`` workload.

    kappa3(N) = rate T + 3 Var(Lambda) + 6 D3 h(T), Lambda the integrated rate over the window and
    D3 the third cumulant of the rate process (a Cox process's cumulants, with the two-state
    chain's third-order correlation D3 exp(-a (t3 - t1))).
    """
    t = np.asarray(window_s, dtype=np.float64)
    a, d2, d3 = _mmpp_moments(rate_tps, peak_to_mean, mean_high_s, mean_low_s)
    var_lambda = 2.0 * d2 * (t / a + np.expm1(-a * t) / a**2)
    result: FloatArray = rate_tps * t + 3.0 * var_lambda + 6.0 * d3 * _h(a, t)
    return result


@dataclass(frozen=True)
class BurstyFit:
    """A fitted ``bursty`` workload: the :class:`WorkloadSpec` fields, and the fit's windows."""

    task_rate_tps: float
    burst_peak_to_mean: float
    burst_mean_high_s: float
    burst_mean_low_s: float
    windows_s: tuple[float, ...]

    def workload_fields(self, load_scale: float = 1.0) -> dict[str, Any]:
        """``WorkloadSpec`` fields of the fit, with the rate multiplied by ``load_scale``."""
        return {
            "pattern": "bursty",
            "task_rate_tps": self.task_rate_tps * load_scale,
            "burst_peak_to_mean": self.burst_peak_to_mean,
            "burst_mean_high_s": self.burst_mean_high_s,
            "burst_mean_low_s": self.burst_mean_low_s,
        }


def fit_bursty(arrival_s: FloatArray, span_s: float) -> BurstyFit:
    """The two-state MMPP matching the rate, IDC curve and third cumulant of ``arrival_s``.

    Args:
        arrival_s: sorted arrival times in ``[0, span_s)``, seconds.
        span_s: the observed span.
    """
    windows = usable_windows(span_s)
    if len(windows) < 3 or arrival_s.size < 100:
        raise ConfigError(
            f"cannot fit burstiness to {arrival_s.size} arrivals over {span_s:.0f} s; a twin needs at "
            f"least 100 arrivals and a span of {MIN_WINDOWS * IDC_WINDOWS_S[2]:.0f} s"
        )
    rate = arrival_s.size / span_s
    t = np.array(windows)
    cumulants = np.array([count_cumulants(arrival_s, span_s, w) for w in windows])
    idc_excess = cumulants[:, 1] / cumulants[:, 0] - 1.0
    counts = np.array([span_s // w for w in windows])
    standard_error = (idc_excess + 1.0) * np.sqrt(2.0 / (counts - 1.0))
    if not np.any(idc_excess > SIGNIFICANT_SE * standard_error):
        return BurstyFit(rate, 1.0, 30.0, 120.0, tuple(windows))
    weights = 1.0 / np.maximum(idc_excess + 1.0, 1.0) ** 2
    best: tuple[float, float, float] = (math.inf, 0.0, 1.0)
    for a in np.geomspace(1e-4, 10.0, 400):
        g = _g(a * t)
        amplitude = max(float(np.sum(weights * idc_excess * g) / np.sum(weights * g * g)), 0.0)
        residual = float(np.sum(weights * (idc_excess - amplitude * g) ** 2))
        if residual < best[0]:
            best = (residual, amplitude, float(a))
    _, amplitude, a = best
    d2 = amplitude * rate * a / 2.0
    if d2 <= 0.0:
        return BurstyFit(rate, 1.0, 30.0, 120.0, tuple(windows))
    mean, variance, third = cumulants.T
    var_lambda = variance - mean
    excess3 = third - mean - 3.0 * var_lambda
    h = 6.0 * _h(a, t)
    d3 = float(np.median(excess3 / h))
    skew = d3 / d2**1.5
    share_high = 0.5 * (1.0 - skew / math.sqrt(skew * skew + 4.0))
    share_high = min(max(share_high, 1e-3), 1.0 - 1e-3)
    delta = math.sqrt(d2 / (share_high * (1.0 - share_high)))
    peak_to_mean = 1.0 + delta * (1.0 - share_high) / rate
    peak_to_mean = min(peak_to_mean, 1.0 / share_high)
    return BurstyFit(
        task_rate_tps=rate,
        burst_peak_to_mean=peak_to_mean,
        burst_mean_high_s=1.0 / (a * (1.0 - share_high)),
        burst_mean_low_s=1.0 / (a * share_high),
        windows_s=tuple(windows),
    )


@dataclass(frozen=True)
class DiurnalFit:
    """A fitted ``diurnal`` workload."""

    task_rate_tps: float
    diurnal_period_s: float
    diurnal_amplitude: float

    def workload_fields(self, load_scale: float = 1.0) -> dict[str, Any]:
        """``WorkloadSpec`` fields of the fit, with the rate multiplied by ``load_scale``."""
        return {
            "pattern": "diurnal",
            "task_rate_tps": self.task_rate_tps * load_scale,
            "diurnal_period_s": self.diurnal_period_s,
            "diurnal_amplitude": self.diurnal_amplitude,
        }


def fit_diurnal(arrival_s: FloatArray, span_s: float, bin_s: float = 10.0) -> DiurnalFit:
    """The sinusoidal rate that best fits the counts of ``arrival_s`` in ``bin_s`` bins.

    Periods from 20 bins to twice the span are tried on a log grid, then refined around the best;
    each is a linear least-squares fit of ``c + s sin + k cos``; the amplitude is
    ``hypot(s, k) / c``.
    """
    counts = window_counts(arrival_s, span_s, bin_s)
    if counts.size < 20 or arrival_s.size < 100:
        raise ConfigError(
            f"cannot fit a daily shape to {arrival_s.size} arrivals over {span_s:.0f} s; a twin needs "
            f"at least 100 arrivals and {20 * bin_s:.0f} s"
        )
    centres = (np.arange(counts.size) + 0.5) * bin_s
    best: tuple[float, float, float, float] = (math.inf, span_s, 0.0, 1.0)
    coarse = np.geomspace(20.0 * bin_s, 2.0 * span_s, 400)
    step = float(coarse[1] / coarse[0])
    for grid in (coarse, None):
        if grid is None:
            grid = np.geomspace(best[1] / step, best[1] * step, 101)
        for period in grid:
            angle = 2.0 * math.pi * centres / period
            design = np.stack([np.ones_like(angle), np.sin(angle), np.cos(angle)], axis=1)
            coef, *_ = np.linalg.lstsq(design, counts, rcond=None)
            residual = float(np.sum((design @ coef - counts) ** 2))
            if residual < best[0]:
                best = (residual, float(period), float(math.hypot(coef[1], coef[2])), float(coef[0]))
    _, period, swing, level = best
    return DiurnalFit(
        task_rate_tps=arrival_s.size / span_s,
        diurnal_period_s=period,
        diurnal_amplitude=min(swing / level, 1.0) if level > 0 else 0.0,
    )


def fit_lognormal(tokens: NDArray[np.integer] | FloatArray) -> tuple[float, float]:
    """(mean, coefficient of variation) of token counts: the twin's log-normal parameters."""
    values = np.asarray(tokens, dtype=np.float64)
    if values.size < 2 or values.mean() <= 0:
        raise ConfigError(f"cannot fit token counts from {values.size} values with mean {values.mean():g}")
    return float(values.mean()), float(values.std() / values.mean())


# ------------------------------------------------------------------------------- scenarios
def replayed_part(config: ScenarioConfig) -> tuple[Trace, float]:
    """The part of ``config``'s trace its episodes replay, in simulated seconds, and its span.

    Arrival times are shifted to start at 0 and multiplied by ``time_scale``.
    """
    spec = _trace_spec(config)
    trace = trace_from_spec(spec)
    start_s, end_s = split_bounds_s(trace, spec.split, spec.train_fraction)
    part = trace.between(start_s, end_s)
    span_s = (min(end_s, trace.span_s) - start_s) * spec.time_scale
    shifted = Trace(
        name=part.name,
        arrival_s=(part.arrival_s - start_s) * spec.time_scale,
        input_tokens=part.input_tokens,
        output_tokens=part.output_tokens,
        line=part.line,
    )
    return shifted, span_s


def _trace_spec(config: ScenarioConfig) -> TraceSpec:
    spec = config.workload.trace
    if spec is None:
        raise ConfigError(
            f"scenario {config.name!r} does not replay a trace; a twin is fitted to a trace scenario "
            "(for example trace-conv, or any scenario with --trace PATH)"
        )
    return spec


def twin_overrides(config: ScenarioConfig, pattern: str = "bursty") -> dict[str, Any]:
    """``ScenarioConfig.replace`` arguments that turn a trace scenario into its synthetic twin.

    The twin is fitted to the part of the trace that ``config`` replays (its ``split``), and keeps
    every other field of ``config``; its name is ``config.name`` with ``-twin`` (or
    ``-diurnal-twin``) appended.
    """
    if pattern not in TWIN_PATTERNS:
        raise ConfigError(f"a twin's pattern must be one of {list(TWIN_PATTERNS)}, got {pattern!r}")
    spec = _trace_spec(config)
    part, span_s = replayed_part(config)
    fit: BurstyFit | DiurnalFit = (
        fit_bursty(part.arrival_s, span_s) if pattern == "bursty" else fit_diurnal(part.arrival_s, span_s)
    )
    workload = {**fit.workload_fields(spec.load_scale), "trace": None}
    in_mean, in_cv = fit_lognormal(part.input_tokens)
    out_mean, out_cv = fit_lognormal(part.output_tokens)
    agents: dict[str, dict[str, float]] = {}
    if spec.tokens_agent == config.agents[0].name:
        agents[spec.tokens_agent] = {"input_tokens_mean": in_mean, "input_tokens_cv": in_cv}
        workload["aggregate_output_tokens_mean"] = out_mean
        workload["aggregate_output_tokens_cv"] = out_cv
    else:
        agents[spec.tokens_agent] = {
            "input_tokens_mean": in_mean,
            "input_tokens_cv": in_cv,
            "output_tokens_mean": out_mean,
            "output_tokens_cv": out_cv,
            "invoke_probability": 1.0,
        }
    suffix = "-twin" if pattern == "bursty" else "-diurnal-twin"
    return {"name": f"{config.name}{suffix}", "workload": workload, "agents": agents}


def twin_scenario(config: ScenarioConfig, pattern: str = "bursty") -> ScenarioConfig:
    """The synthetic twin of the trace scenario ``config`` (see :func:`twin_overrides`)."""
    return config.replace(**twin_overrides(config, pattern))
