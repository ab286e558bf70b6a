"""Shared helper: a scripted workload of exact tasks for hand-checkable simulations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.simulator import BatchSimulator
from gpu_alloc_env.core.workload import TaskDraws


@dataclass
class ScriptedTask:
    """One task of a scripted workload: exact arrival time and token counts."""

    arrival_s: float
    plan_tokens: tuple[float, float]
    """(input, output) tokens of the coordinator's planning request."""
    aggregate_output_tokens: float = 1.0
    calls: list[tuple[int, float, float]] = field(default_factory=list)
    """(specialist index, input tokens, output tokens) of each specialist call."""


class ScriptedStream:
    """A drop-in for :class:`TaskStream` that replays given tasks exactly."""

    def __init__(self, tasks: Sequence[ScriptedTask]) -> None:
        self.tasks = sorted(tasks, key=lambda t: t.arrival_s)

    def draw(self, t0_s: float, t1_s: float) -> TaskDraws:
        """The scripted tasks arriving in ``[t0_s, t1_s)``."""
        mine = [t for t in self.tasks if t0_s <= t.arrival_s < t1_s]
        calls = [(k, *call) for k, t in enumerate(mine) for call in t.calls]
        return TaskDraws(
            arrival_s=np.array([t.arrival_s for t in mine], dtype=np.float64),
            plan_input_tokens=np.array([t.plan_tokens[0] for t in mine], dtype=np.float64),
            plan_output_tokens=np.array([t.plan_tokens[1] for t in mine], dtype=np.float64),
            aggregate_output_tokens=np.array([t.aggregate_output_tokens for t in mine], dtype=np.float64),
            call_task=np.array([c[0] for c in calls], dtype=np.int64),
            call_agent=np.array([c[1] for c in calls], dtype=np.int64),
            call_input_tokens=np.array([c[2] for c in calls], dtype=np.float64),
            call_output_tokens=np.array([c[3] for c in calls], dtype=np.float64),
        )


def scripted_sim(config: ScenarioConfig, tasks: Sequence[ScriptedTask]) -> BatchSimulator:
    """A batch-of-one simulator of ``config`` whose workload is exactly ``tasks``."""
    sim = BatchSimulator(config, batch_size=1)
    sim.reset_env(0, np.random.default_rng(0))
    sim.streams[0] = ScriptedStream(tasks)  # type: ignore[call-overload]
    return sim
