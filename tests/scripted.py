"""Shared helpers: small hand-checkable scenarios and a scripted workload."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gpu_alloc_env.config import AgentSpec, ScenarioConfig, WorkloadSpec
from gpu_alloc_env.core.simulator import BatchSimulator
from gpu_alloc_env.core.workload import TaskDraws


def agent(name: str, role: str = "specialist", **fields: Any) -> AgentSpec:
    """An agent with round, hand-checkable serving figures; ``fields`` override them."""
    spec: dict[str, Any] = {
        "name": name,
        "role": role,
        "model_params_b": 8.0,
        "min_gpus": 1.0,
        "max_gpus": 4.0,
        "priority": 1.0,
        "prefill_tokens_per_s_per_gpu": 1000.0,
        "decode_tokens_per_s_per_gpu": 100.0,
        "tpot_s": 0.05,
        "cold_start_s": 0.0,
        "request_slo_s": 10.0,
        "input_tokens_mean": 100.0,
        "input_tokens_cv": 0.0,
        "output_tokens_mean": 10.0,
        "output_tokens_cv": 0.0,
    }
    spec.update(fields)
    return AgentSpec(**spec)


def scenario(agents: Sequence[AgentSpec], **fields: Any) -> ScenarioConfig:
    """A scenario of ``agents`` with a 4-GPU pool, 1 s decisions and 20 s episodes by default."""
    spec: dict[str, Any] = {
        "name": "test",
        "agents": tuple(agents),
        "capacity_gpus": 4.0,
        "price_per_gpu_s": 0.001,
        "decision_interval_s": 1.0,
        "episode_length_s": 20.0,
        "workload": WorkloadSpec(task_rate_tps=1.0),
    }
    spec.update(fields)
    return ScenarioConfig(**spec)


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
    sim.streams[0] = ScriptedStream(tasks)  # type: ignore[assignment]
    return sim
