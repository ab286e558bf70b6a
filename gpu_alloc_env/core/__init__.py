"""The pure NumPy simulator core: no Gymnasium, no reinforcement learning."""

from gpu_alloc_env.core.allocation import (
    REPAIR_KINDS,
    AllocationLimits,
    RepairResult,
    priority_fill,
    repair_allocation,
)
from gpu_alloc_env.core.metrics import EPISODE_METRICS, episode_metrics
from gpu_alloc_env.core.simulator import BatchSimulator, StepStats

__all__ = [
    "EPISODE_METRICS",
    "REPAIR_KINDS",
    "AllocationLimits",
    "BatchSimulator",
    "RepairResult",
    "StepStats",
    "episode_metrics",
    "priority_fill",
    "repair_allocation",
]
