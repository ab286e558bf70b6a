"""How closely a synthetic twin resembles its trace: the statistics of both, side by side.

The trace's statistics are those of the part the twin is fitted to (the part its scenario
replays, by default the training part), taken as it is (``load_scale`` 1); each twin's are
measured on arrivals and token counts it generates, ``episodes`` episodes drawn with the workload
generator the simulator uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpu_alloc_env.arrays import FloatArray
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.workload import TaskStream
from gpu_alloc_env.seeds import TWIN_REPORT_SEED_BASE
from gpu_alloc_env.twin import TWIN_PATTERNS, replayed_part, twin_scenario, window_counts

REPORT_WINDOWS_S = (1.0, 10.0, 60.0)
"""Windows of the reported index of dispersion."""
"""First seed of the twins' generated episodes."""


@dataclass(frozen=True)
class WorkloadSample:
    """Arrivals of one or more spans and the token counts of the trace-mapped agent's requests."""

    arrival_s: list[FloatArray]
    span_s: float
    input_tokens: FloatArray
    output_tokens: FloatArray

    def rate_tps(self) -> float:
        """Arrivals per second over every span."""
        return sum(a.size for a in self.arrival_s) / (self.span_s * len(self.arrival_s))

    def idc(self, window_s: float) -> float:
        """Index of dispersion of counts in ``window_s`` windows, pooled over the spans."""
        counts = np.concatenate([window_counts(a, self.span_s, window_s) for a in self.arrival_s])
        return float(counts.var() / counts.mean()) if counts.mean() > 0 else float("nan")


def trace_sample(config: ScenarioConfig) -> WorkloadSample:
    """The part of ``config``'s trace that a twin is fitted to, as a sample."""
    part, span_s = replayed_part(config)
    return WorkloadSample(
        [part.arrival_s], span_s, part.input_tokens.astype(float), part.output_tokens.astype(float)
    )


def twin_sample(twin: ScenarioConfig, tokens_agent: str, episodes: int) -> WorkloadSample:
    """``episodes`` episodes of the twin's workload, drawn as the simulator draws them."""
    names = [a.name for a in twin.agents]
    agent = names.index(tokens_agent)
    arrivals: list[FloatArray] = []
    inputs: list[FloatArray] = []
    outputs: list[FloatArray] = []
    dt = twin.decision_interval_s
    for episode in range(episodes):
        stream = TaskStream(twin, np.random.default_rng(TWIN_REPORT_SEED_BASE + episode))
        times = []
        for step in range(twin.episode_steps):
            draws = stream.draw(step * dt, (step + 1) * dt)
            times.append(draws.arrival_s)
            if agent == 0:
                inputs.append(draws.plan_input_tokens)
                outputs.append(draws.aggregate_output_tokens)
            else:
                mine = draws.call_agent == agent
                inputs.append(draws.call_input_tokens[mine])
                outputs.append(draws.call_output_tokens[mine])
        arrivals.append(np.concatenate(times))
    return WorkloadSample(arrivals, twin.episode_length_s, np.concatenate(inputs), np.concatenate(outputs))


def _token_cells(tokens: FloatArray) -> list[str]:
    mean = tokens.mean()
    return [
        f"{mean:,.0f}",
        f"{tokens.std() / mean:.2f}",
        f"{np.percentile(tokens, 50):,.0f}",
        f"{np.percentile(tokens, 99):,.0f}",
    ]


def report_markdown(config: ScenarioConfig, episodes: int = 20) -> list[str]:
    """Markdown lines: the trace part's statistics next to its bursty and diurnal twins'."""
    spec = config.workload.trace
    if spec is None:
        raise ValueError(f"scenario {config.name!r} does not replay a trace")
    as_is = config.replace(workload={"trace": {"load_scale": 1.0}})
    twins = {pattern: twin_scenario(as_is, pattern) for pattern in TWIN_PATTERNS}
    samples = {"trace": trace_sample(as_is)}
    samples.update({f"{p} twin": twin_sample(t, spec.tokens_agent, episodes) for p, t in twins.items()})
    columns = list(samples)
    rows: list[tuple[str, list[str]]] = [
        ("arrival rate (requests/s)", [f"{s.rate_tps():.2f}" for s in samples.values()])
    ]
    for window in REPORT_WINDOWS_S:
        rows.append(
            (f"index of dispersion, {window:g} s windows", [f"{s.idc(window):.2f}" for s in samples.values()])
        )
    for kind in ("input", "output"):
        cells = [_token_cells(getattr(s, f"{kind}_tokens")) for s in samples.values()]
        for i, stat in enumerate(("mean", "CV", "p50", "p99")):
            rows.append((f"{kind} tokens {stat}", [c[i] for c in cells]))
    bursty = twins["bursty"].workload
    diurnal = twins["diurnal"].workload
    part = "training part" if spec.split == "train" else f"{spec.split} part".replace("_", "-")
    bursts = (
        f"bursts at {bursty.burst_peak_to_mean:.2f}x the mean lasting {bursty.burst_mean_high_s:.1f} s "
        f"on average, {bursty.burst_mean_low_s:.1f} s between them"
        if bursty.burst_peak_to_mean > 1.0
        else "Poisson (no window's index of dispersion is significantly above 1)"
    )
    lines = [
        f"### `{config.name}`: trace `{spec.source}`, {part}, tokens of `{spec.tokens_agent}`",
        "",
        f"Fitted bursty twin: {bursty.task_rate_tps:.2f} requests/s, {bursts}. Fitted diurnal twin: period "
        f"{diurnal.diurnal_period_s:.0f} s, amplitude {diurnal.diurnal_amplitude:.2f}. Twins' "
        f"statistics over {episodes} generated episodes of {config.episode_length_s:g} s; the "
        f"trace's over its {samples['trace'].span_s:.0f} s {part}, at load_scale 1.",
        "",
        "| statistic | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows]
    return lines
