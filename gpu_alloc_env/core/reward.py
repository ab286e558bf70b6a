"""The reward of one decision interval, from what the simulator reports of it.

``reward = cost + delay + slo + goodput``, each component a negative dollar amount in units of the
whole pool's price for one interval (``ScenarioConfig.reward_scale_usd``):

| component     | dollars                                                                     |
|---------------|-----------------------------------------------------------------------------|
| ``cost``      | ``cost_weight`` x the interval's bill                                       |
| ``delay``     | ``delay_usd_per_task_s`` x task-seconds spent in the system                  |
| ``slo``       | ``slo_miss_usd`` x tasks completed later than ``task_slo_s``                 |
| ``goodput``   | ``goodput_miss_usd`` x requests completed past their agent's ``ttft_slo_s``  |
|               | or ``tpot_slo_s`` (outside goodput, as DistServe counts it)                  |

``goodput_miss_usd`` is 0 unless a scenario (or a run's training shaping) sets it; the component is
then -0.0 and leaves the sum, bit for bit, what the other three make.

The Gymnasium environment and the batched training environment both take their reward from
:func:`reward_components`.
"""

from __future__ import annotations

import numpy as np

from gpu_alloc_env.arrays import FloatArray
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.simulator import StepStats

REWARD_COMPONENTS: tuple[str, ...] = ("cost", "delay", "slo", "goodput")
"""Names of the reward components (``info["reward_components"]``); they sum to the reward."""


def reward_components(config: ScenarioConfig, stats: StepStats) -> dict[str, FloatArray]:
    """The (B,) reward components of one interval of every environment; they sum to the reward."""
    weights = config.reward
    scale = config.reward_scale_usd
    goodput_misses = stats.goodput_misses.sum(axis=1).astype(np.float64)
    return {
        "cost": -weights.cost_weight * stats.cost_usd / scale,
        "delay": -weights.delay_usd_per_task_s * stats.delay_task_s / scale,
        "slo": -weights.slo_miss_usd * stats.slo_misses.astype(np.float64) / scale,
        "goodput": -weights.goodput_miss_usd * goodput_misses / scale,
    }


def reward(config: ScenarioConfig, stats: StepStats) -> FloatArray:
    """The (B,) reward of one interval: the sum of :func:`reward_components`."""
    total: FloatArray = np.sum(np.stack(list(reward_components(config, stats).values())), axis=0)
    return total
