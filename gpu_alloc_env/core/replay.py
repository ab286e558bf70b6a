"""Trace replay: the tasks of an episode arrive at the times of a window of a request trace.

Each trace request becomes one task. Its token counts become those of the request the task sends to
one agent, ``TraceSpec.tokens_agent``: for the coordinator, the planning prompt (input tokens) and
the final answer (output tokens, the aggregation's output); for a specialist, that specialist's
call, which every task then makes. Which other specialists a task calls, and every other token
count, are drawn from the scenario's distributions with the episode's generator, as in the
synthetic workloads.

An episode replays ``episode_length_s / time_scale`` trace seconds starting at an offset drawn
uniformly from the positions that keep the whole window inside the chosen part of the trace (the
training or the held-out part), so no request of one part ever enters an episode of the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gpu_alloc_env.arrays import FloatArray, IntArray
from gpu_alloc_env.config import ScenarioConfig, TraceSpec
from gpu_alloc_env.core.workload import TaskDraws, TaskStream


@dataclass(frozen=True)
class ReplayPart:
    """The part of a trace that episodes replay: requests in time order and the part's bounds.

    ``arrival_s`` is in trace seconds (since the trace's first request); only requests with
    ``start_s <= arrival_s < end_s`` are ever replayed.
    """

    arrival_s: FloatArray
    input_tokens: IntArray
    output_tokens: IntArray
    start_s: float
    end_s: float


def window_trace_s(config: ScenarioConfig) -> float:
    """Trace seconds one episode replays: ``episode_length_s / time_scale``."""
    spec = _spec(config)
    return config.episode_length_s / spec.time_scale


def _spec(config: ScenarioConfig) -> TraceSpec:
    spec = config.workload.trace
    if spec is None:
        raise ValueError(f"scenario {config.name!r} does not replay a trace (its pattern is not 'trace')")
    return spec


class TraceStream(TaskStream):
    """The task arrivals of one episode: a window of ``part``, scaled and mapped to tasks.

    Args:
        config: a scenario whose workload pattern is ``trace``.
        part: the part of the trace to replay (see :class:`ReplayPart`).
        rng: the episode's generator; it draws the window's offset, the ``load_scale`` copies and
            everything the trace does not give.
    """

    def __init__(self, config: ScenarioConfig, part: ReplayPart, rng: np.random.Generator) -> None:
        super().__init__(config, rng)
        spec = _spec(config)
        names = [a.name for a in config.agents]
        self.tokens_agent = names.index(spec.tokens_agent)
        if self.tokens_agent > 0:
            self._invoke = self._invoke.copy()
            self._invoke[self.tokens_agent - 1] = 1.0
        window_s = window_trace_s(config)
        room_s = part.end_s - part.start_s - window_s
        if room_s < 0.0:
            raise ValueError(
                f"an episode replays {window_s:.1f} trace seconds but the {spec.split} part of the trace "
                f"spans {part.end_s - part.start_s:.1f}"
            )
        self.offset_s = part.start_s + float(rng.uniform(0.0, room_s))
        """Trace time at which this episode's window starts."""
        lo, hi = np.searchsorted(part.arrival_s, [self.offset_s, self.offset_s + window_s], side="left")
        copies = _copies(spec.load_scale, int(hi - lo), rng)
        index = np.repeat(np.arange(lo, hi), copies)
        self.trace_index = index
        """Index into ``part`` of every task of the episode, in arrival order."""
        self._arrival_s = (part.arrival_s[index] - self.offset_s) * spec.time_scale
        self._input_tokens = part.input_tokens[index].astype(np.float64)
        self._output_tokens = part.output_tokens[index].astype(np.float64)
        self._next = 0
        self._mean_rate_tps = index.size / config.episode_length_s

    def rate_tps(self, t_s: float) -> float:
        """Mean task rate of the episode's window (tasks per second), whatever ``t_s``."""
        return self._mean_rate_tps

    def draw(self, t0_s: float, t1_s: float) -> TaskDraws:
        """The window's tasks arriving in ``[t0_s, t1_s)``, with the trace's token counts."""
        start = self._next
        stop = int(np.searchsorted(self._arrival_s, t1_s, side="left"))
        self._next = stop
        draws = self.tasks_at(self._arrival_s[start:stop])
        tokens_in = self._input_tokens[start:stop]
        tokens_out = self._output_tokens[start:stop]
        if self.tokens_agent == 0:
            draws.plan_input_tokens[:] = tokens_in
            draws.aggregate_output_tokens[:] = tokens_out
        else:
            mine = draws.call_agent == self.tokens_agent
            draws.call_input_tokens[mine] = tokens_in[draws.call_task[mine]]
            draws.call_output_tokens[mine] = tokens_out[draws.call_task[mine]]
        return draws


def _copies(load_scale: float, count: int, rng: np.random.Generator) -> IntArray:
    """Replays of each of ``count`` requests: ``floor(load_scale)`` plus one with the remainder's odds."""
    whole = math.floor(load_scale)
    extra = load_scale - whole
    copies = np.full(count, whole, dtype=np.int64)
    if extra > 0.0:
        copies += rng.random(count) < extra
    return copies
