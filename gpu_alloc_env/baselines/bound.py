"""A relaxation bound on an episode's return: no policy, however clairvoyant, scores above it.

Each task costs at least the cheaper of two ways to treat it:

- **complete it**: its time in the system is at least its unloaded latency ``L``
  (:func:`task_unloaded_latency_s`), at ``delay_usd_per_task_s`` a second; its requests need at
  least their busy GPU-seconds, billed at ``cost_weight x price_per_gpu_s``; and it misses its SLO
  (``slo_miss_usd``) when ``L`` alone exceeds ``task_slo_s``. Possible only when it arrives ``L``
  or more before the episode ends.
- **leave it unfinished**: it stays in the system from its arrival to the episode's end.

A request's busy GPU-seconds are bounded from the iteration-time model
(:mod:`gpu_alloc_env.serving.perf`): every iteration lasts at least ``per_sequence_s`` and
``head_s_per_sequence`` for each sequence in the batch plus ``linear_s_per_token`` and
``comm_s_per_token`` for each token, the other terms being non-negative, so a request with ``i``
prompt and ``o`` output tokens, in ``o`` or more iterations and over ``i + o - 1`` tokens, takes at
least ``gpus x (o (per_sequence_s + head_s_per_sequence) + (i + o - 1)(linear_s_per_token +
comm_s_per_token))`` GPU-seconds, whatever it shares its iterations with (its tokens cut, as the
simulator cuts them, to the longest request a replica accepts).

Everything else a policy pays (cold starts, idle and kept-alive replicas, billing increments,
queueing, batching slow-down, preemption) only lowers the return, so the sum over tasks, in reward
units, is an upper bound on the return: **kind: relaxation bound**, valid for every policy. It
ignores all of those costs, so it is loose; the gap of a policy to it is an upper limit on what
remains to be gained.
"""

from __future__ import annotations

import numpy as np

from gpu_alloc_env.arrays import FloatArray
from gpu_alloc_env.baselines.forecast import episode_draws, served_tokens, task_unloaded_latency_s
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.workload import TaskDraws

BOUND_KIND = "relaxation bound"
"""What :func:`return_bound` is: no policy's episode return exceeds it."""


def _busy_gpu_s(config: ScenarioConfig, agent: int, inputs: FloatArray, outputs: FloatArray) -> FloatArray:
    """Least GPU-seconds of iterations the requests of ``agent`` need (module docstring)."""
    engine = config.deployment.engines[agent]
    c = engine.coefficients
    prompt, output = served_tokens(config, agent, inputs, outputs)
    output = np.maximum(output, 1.0)
    per_request = output * (c.per_sequence_s + c.head_s_per_sequence) + (prompt + output - 1.0) * (
        c.linear_s_per_token + c.comm_s_per_token
    )
    busy: FloatArray = engine.gpus_per_replica * per_request
    return busy


def task_costs_usd(config: ScenarioConfig, draws: TaskDraws) -> FloatArray:
    """(K,) the least dollars each task of ``draws`` costs in any policy's reward (module docstring)."""
    weights = config.reward
    latency = task_unloaded_latency_s(config, draws)
    gpu_s = _busy_gpu_s(config, 0, draws.plan_input_tokens, draws.plan_output_tokens)
    called = np.zeros(draws.count, dtype=bool)
    called[draws.call_task] = True
    aggregate = _busy_gpu_s(config, 0, draws.plan_input_tokens, draws.aggregate_output_tokens)
    gpu_s = gpu_s + np.where(called, aggregate, 0.0)
    for agent in np.unique(draws.call_agent):
        mine = draws.call_agent == agent
        calls = _busy_gpu_s(config, int(agent), draws.call_input_tokens[mine], draws.call_output_tokens[mine])
        np.add.at(gpu_s, draws.call_task[mine], calls)
    price = weights.cost_weight * config.deployment.price_per_gpu_s
    complete = (
        price * gpu_s
        + weights.delay_usd_per_task_s * latency
        + weights.slo_miss_usd * (latency > config.task_slo_s)
    )
    left_s = config.episode_length_s - draws.arrival_s
    unfinished = weights.delay_usd_per_task_s * left_s
    cost: FloatArray = np.where(latency <= left_s, np.minimum(complete, unfinished), unfinished)
    return cost


def return_bound(config: ScenarioConfig, seed: int) -> float:
    """The relaxation bound on the return of the episode of ``config`` seeded with ``seed``."""
    total_usd = sum(float(task_costs_usd(config, d).sum()) for d in episode_draws(config, seed) if d.count)
    return -total_usd / config.reward_scale_usd
