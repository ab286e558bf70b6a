"""The trace part a scenario replays, read and checked before the simulator core sees it.

The core (:mod:`gpu_alloc_env.core`) takes a trace as arrays (:class:`ReplayPart`) and reads no
files; this module reads the trace a scenario names (:mod:`gpu_alloc_env.traces`), cuts the part
its episodes replay, checks that an episode fits in it and warns of gaps longer than an episode.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from gpu_alloc_env.arrays import FloatArray
from gpu_alloc_env.config import ConfigError, ScenarioConfig
from gpu_alloc_env.core.replay import ReplayPart, window_trace_s
from gpu_alloc_env.core.simulator import BatchSimulator
from gpu_alloc_env.traces import caller_stacklevel, split_bounds_s, trace_from_spec


def simulator_for(config: ScenarioConfig, batch_size: int = 1) -> BatchSimulator:
    """A simulator of ``config`` with ``batch_size`` environments, its trace part read if it replays one."""
    replay = replay_part(config) if config.workload.trace is not None else None
    return BatchSimulator(config, batch_size, replay=replay)


def _warn_of_gaps(arrival_s: FloatArray, start_s: float, end_s: float, window_s: float, part: str) -> None:
    """Warn when some episode windows of ``[start_s, end_s)`` can hold no request at all."""
    inside = arrival_s[(arrival_s >= start_s) & (arrival_s < end_s)]
    edges = np.concatenate(([start_s], inside, [end_s]))
    gaps = np.diff(edges)
    longest = int(np.argmax(gaps))
    if gaps[longest] > window_s:
        warnings.warn(
            f"{part} has no request for {gaps[longest]:.1f} trace seconds (from {edges[longest]:.1f} s), "
            f"longer than an episode's window of {window_s:.1f} s: episodes drawn there hold no tasks "
            "and score n/a; lower time_scale or lengthen episode_length_s so that a window spans the gap",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )


def replay_part(config: ScenarioConfig) -> ReplayPart:
    """The part of ``config``'s trace that its episodes replay, checked to hold one episode."""
    spec = config.workload.trace
    if spec is None:
        raise ValueError(f"scenario {config.name!r} does not replay a trace")
    trace = trace_from_spec(spec)
    start_s, end_s = split_bounds_s(trace, spec.split, spec.train_fraction)
    window_s = window_trace_s(config)
    span_s = end_s - start_s
    if window_s > span_s:
        if span_s < 1e-6:  # one instant (the end is nudged past the last request)
            fixes = "no setting makes an episode fit: replay a trace whose requests span some time"
        else:
            # Rounded so that the values quoted fit: the length down to whole decision intervals,
            # the time scale up.
            interval_s = config.decision_interval_s
            longest_s = math.floor(span_s * spec.time_scale / interval_s) * interval_s
            needed = config.episode_length_s / span_s
            scale = 10.0 ** (2 - math.floor(math.log10(needed)))
            fixes = (
                f"shorten episode_length_s to at most {longest_s:g} s, or raise time_scale to at "
                f"least {math.ceil(needed * scale) / scale:g} (each trace second then lasts longer, so an "
                "episode covers fewer of them)"
            )
            if spec.split != "all":
                fixes += ", or change train_fraction"
        raise ConfigError(
            f"an episode of {config.episode_length_s:g} s at time_scale={spec.time_scale:g} replays "
            f"{window_s:.1f} trace seconds, but the {spec.split!r} part of {trace.name} spans only "
            f"{span_s:.1f} s; {fixes}"
        )
    _warn_of_gaps(trace.arrival_s, start_s, end_s, window_s, f"the {spec.split!r} part of {trace.name}")
    return ReplayPart(
        arrival_s=trace.arrival_s,
        input_tokens=trace.input_tokens,
        output_tokens=trace.output_tokens,
        start_s=start_s,
        end_s=end_s,
    )
