"""The workload of an episode, read before the episode: what clairvoyance sees.

The workload of a seed does not depend on the allocation (:mod:`gpu_alloc_env.core.workload`), so
replaying it in a private environment of the same scenario gives exactly the tasks the episode
will bring: their arrival times, the specialists each calls and every request's tokens.
"""

from __future__ import annotations

import numpy as np

from gpu_alloc_env.arrays import FloatArray
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


def task_unloaded_latency_s(config: ScenarioConfig, draws: TaskDraws) -> FloatArray:
    """(K,) each task's latency if every request ran alone on an idle replica, never waiting.

    The plan, then the slowest of the task's specialist calls, then the aggregation (whose prompt
    is taken as the plan's, without the calls' answers, so the figure is a lower bound).
    """
    engines = config.deployment.engines
    _, plan_s = engines[0].lone_request_s(draws.plan_input_tokens, draws.plan_output_tokens)
    slowest = np.zeros(draws.count)
    called = np.zeros(draws.count, dtype=bool)
    for agent in np.unique(draws.call_agent):
        mine = draws.call_agent == agent
        _, call_s = engines[int(agent)].lone_request_s(
            draws.call_input_tokens[mine], draws.call_output_tokens[mine]
        )
        np.maximum.at(slowest, draws.call_task[mine], call_s)
        called[draws.call_task[mine]] = True
    _, aggregate_s = engines[0].lone_request_s(draws.plan_input_tokens, draws.aggregate_output_tokens)
    latency: FloatArray = plan_s + np.where(called, slowest + aggregate_s, 0.0)
    return latency
