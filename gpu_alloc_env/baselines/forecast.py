"""The workload of an episode, read before the episode: what clairvoyance sees.

The workload of a seed does not depend on the allocation (:mod:`gpu_alloc_env.core.workload`), so
replaying it in a private environment of the same scenario gives exactly the tasks the episode
will bring: their arrival times, the specialists each calls and every request's tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpu_alloc_env.arrays import BoolArray, FloatArray, IntArray
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.workload import TaskDraws


def episode_draws(config: ScenarioConfig, seed: int) -> list[TaskDraws]:
    """The tasks of every decision interval of the episode of ``config`` seeded with ``seed``."""
    from gpu_alloc_env.env import GpuAllocEnv

    probe = GpuAllocEnv(config)
    probe.reset(seed=seed)
    stream = probe.sim.streams[0]
    if stream is None:
        raise RuntimeError("the probe environment has no workload after reset")
    dt = config.decision_interval_s
    # The simulator's interval k runs from k dt to (k + 1) dt.
    return [stream.draw(k * dt, (k + 1) * dt) for k in range(config.episode_steps)]


def served_tokens(
    config: ScenarioConfig, agent: int, prompt: FloatArray, output: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """The prompt and output tokens the requests of ``agent`` are served with.

    Cut, as the simulator cuts them, to the longest request a replica accepts (``max_model_len``).
    """
    limit = float(config.deployment.engines[agent].max_model_len)
    cut_prompt: FloatArray = np.minimum(np.maximum(prompt, 1.0), limit - 1.0)
    cut_output: FloatArray = np.minimum(output, limit - cut_prompt)
    return cut_prompt, cut_output


@dataclass(frozen=True)
class UnloadedTimes:
    """The K tasks of one interval with every request alone on an idle replica, never waiting.

    ``plan_s``, ``slowest_call_s`` (0 without calls), ``aggregate_s`` (the aggregation's latency,
    its prompt taken as the plan's, without the calls' answers, so a lower bound) and ``called``
    are per task (K,); ``calls`` holds, per specialist called, its index, the tasks calling it
    and those calls' latencies. Tokens are cut as the simulator cuts them (:func:`served_tokens`).
    """

    plan_s: FloatArray
    calls: list[tuple[int, IntArray, FloatArray]]
    slowest_call_s: FloatArray
    called: BoolArray
    aggregate_s: FloatArray

    @property
    def task_s(self) -> FloatArray:
        """(K,) each task's latency: the plan, then the slowest call, then the aggregation."""
        latency: FloatArray = self.plan_s + np.where(self.called, self.slowest_call_s + self.aggregate_s, 0.0)
        return latency


def unloaded_times(config: ScenarioConfig, draws: TaskDraws) -> UnloadedTimes:
    """Every request of ``draws`` timed alone on an idle replica (:class:`UnloadedTimes`)."""
    engines = config.deployment.engines
    _, plan_s = engines[0].lone_request_s(
        *served_tokens(config, 0, draws.plan_input_tokens, draws.plan_output_tokens)
    )
    slowest = np.zeros(draws.count)
    called = np.zeros(draws.count, dtype=bool)
    calls = []
    for agent in np.unique(draws.call_agent):
        mine = draws.call_agent == agent
        tokens = served_tokens(
            config, int(agent), draws.call_input_tokens[mine], draws.call_output_tokens[mine]
        )
        _, call_s = engines[int(agent)].lone_request_s(*tokens)
        tasks = draws.call_task[mine]
        np.maximum.at(slowest, tasks, call_s)
        called[tasks] = True
        calls.append((int(agent), tasks, call_s))
    aggregate = served_tokens(config, 0, draws.plan_input_tokens, draws.aggregate_output_tokens)
    _, aggregate_s = engines[0].lone_request_s(*aggregate)
    return UnloadedTimes(plan_s, calls, slowest, called, aggregate_s)


def task_unloaded_latency_s(config: ScenarioConfig, draws: TaskDraws) -> FloatArray:
    """(K,) each task's latency if every request ran alone on an idle replica, never waiting."""
    return unloaded_times(config, draws).task_s
