"""The simulator core: the serving physics of every replica and the workflow of tasks, compiled with numba.

No Gymnasium and no reinforcement learning here.
"""

from gpu_alloc_env.core.allocation import fill_replicas, priority_fill, priority_order
from gpu_alloc_env.core.metrics import EPISODE_METRICS, episode_metrics
from gpu_alloc_env.core.simulator import REPAIR_KINDS, BatchSimulator, StepStats

__all__ = [
    "EPISODE_METRICS",
    "REPAIR_KINDS",
    "BatchSimulator",
    "StepStats",
    "episode_metrics",
    "fill_replicas",
    "priority_fill",
    "priority_order",
]
