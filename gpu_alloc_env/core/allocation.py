"""Feasible allocations: the priority fill and the repair of arbitrary requested allocations.

Allocations are handled in integer *slices* of ``gpu_granularity`` GPUs so that sums against the
capacity are exact. A feasible allocation gives every agent either zero or between its ``min_gpus``
and ``max_gpus``, on the granularity grid, with the total within ``capacity_gpus``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.config import ScenarioConfig

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

REPAIR_KINDS: tuple[str, ...] = (
    "clipped_negative",
    "clipped_above_max",
    "rounded_to_grid",
    "raised_to_min",
    "dropped_below_min",
    "cut_for_capacity",
)
"""Names of the repairs :func:`repair_allocation` reports, in order."""


@dataclass(frozen=True)
class AllocationLimits:
    """Per-agent limits in slices, derived once from a :class:`ScenarioConfig`.

    ``priority_order`` lists agents by descending priority (ties by index); it is fixed at
    construction so that no decision needs to sort.
    """

    granularity_gpus: float
    capacity_slices: int
    min_slices: IntArray
    max_slices: IntArray
    priority: FloatArray
    priority_order: IntArray

    @classmethod
    def from_config(cls, config: ScenarioConfig) -> AllocationLimits:
        """Limits of ``config``'s agents."""
        grain = config.gpu_granularity
        priority = np.array([a.priority for a in config.agents], dtype=np.float64)
        return cls(
            granularity_gpus=grain,
            capacity_slices=int(np.floor(config.capacity_gpus / grain + 1e-9)),
            min_slices=np.array([round(a.min_gpus / grain) for a in config.agents], np.int64),
            max_slices=np.array([round(a.max_gpus / grain) for a in config.agents], np.int64),
            priority=priority,
            priority_order=np.argsort(-priority, kind="stable").astype(np.int64),
        )


def priority_fill(
    minimum: FloatArray,
    cap: FloatArray,
    weight: FloatArray,
    capacity: FloatArray,
    order: IntArray,
) -> FloatArray:
    """Share ``capacity`` among agents: minimums first, the rest by weight, capped, excess passed on.

    Three linear passes over the agents in the fixed ``order`` (highest priority first), with no
    sorting: (1) each agent with a positive minimum receives it while it still fits, so when the
    minimums do not all fit the highest-priority ones are served and the rest get nothing;
    (2) the remainder is shared in proportion to ``weight`` among the agents that received their
    minimum, each capped at ``cap`` with what a capped agent cannot take passed on to the agents
    after it; (3) anything still left tops up agents below their cap, in order.

    Args:
        minimum: (B, N) smallest non-zero holding per agent; 0 marks an agent that wants nothing.
        cap: (B, N) most each agent may hold (>= ``minimum`` where ``minimum`` > 0).
        weight: (B, N) non-negative share weights (for example priority times demand).
        capacity: (B,) amount to share.
        order: (N,) agent indices, highest priority first.

    Returns:
        (B, N) allocation, zero or within [``minimum``, ``cap``], summing to at most ``capacity``.
    """
    alloc = np.zeros_like(minimum)
    remaining = capacity.astype(np.float64, copy=True)
    for n in order:
        give = np.where((minimum[:, n] > 0.0) & (minimum[:, n] <= remaining + 1e-9), minimum[:, n], 0.0)
        alloc[:, n] = give
        remaining -= give
    np.maximum(remaining, 0.0, out=remaining)
    room = np.where(alloc > 0.0, np.maximum(cap - alloc, 0.0), 0.0)
    share_weight = np.where(room > 0.0, weight, 0.0)
    weight_left = share_weight.sum(axis=1)
    for n in order:
        safe = np.where(weight_left > 0.0, weight_left, 1.0)
        share = np.where(weight_left > 0.0, remaining * share_weight[:, n] / safe, 0.0)
        give = np.minimum(share, room[:, n])
        alloc[:, n] += give
        room[:, n] -= give
        remaining -= give
        weight_left = np.maximum(weight_left - share_weight[:, n], 0.0)
    for n in order:
        give = np.minimum(room[:, n], np.maximum(remaining, 0.0))
        alloc[:, n] += give
        remaining -= give
    return alloc


@dataclass(frozen=True)
class RepairResult:
    """A feasible allocation and what had to change to reach it.

    ``repairs`` maps each name in :data:`REPAIR_KINDS` to a (B, N) boolean array marking the agents
    it touched; ``repair_gpus`` is the (B,) L1 distance between requested and feasible GPUs.
    """

    slices: IntArray
    repairs: dict[str, BoolArray]
    repair_gpus: FloatArray


def repair_allocation(desired_gpus: FloatArray, limits: AllocationLimits) -> RepairResult:
    """Turn a finite (B, N) request in GPUs into the nearest feasible allocation.

    Negative requests become 0 and requests above ``max_gpus`` become ``max_gpus``; the result is
    rounded to the slice grid; a request below ``min_gpus`` is raised to it from at least half of
    it, and dropped to zero below that; if the total still exceeds the capacity, agents keep their
    minimums in priority order and the rest of the capacity is shared in proportion to what each
    asked for above its minimum (rounded down to the grid).
    """
    grain = limits.granularity_gpus
    max_gpus = limits.max_slices * grain
    clipped = np.clip(desired_gpus, 0.0, max_gpus)
    slices = np.rint(clipped / grain).astype(np.int64)
    min_slices = limits.min_slices
    below = (slices > 0) & (slices < min_slices)
    raise_up = below & (2 * slices >= min_slices)
    slices = np.where(raise_up, min_slices, np.where(below, 0, slices))
    repairs = {
        "clipped_negative": desired_gpus < 0.0,
        "clipped_above_max": desired_gpus > max_gpus,
        "rounded_to_grid": np.abs(np.rint(clipped / grain) * grain - clipped) > 1e-9,
        "raised_to_min": raise_up,
        "dropped_below_min": below & ~raise_up,
        "cut_for_capacity": np.zeros_like(below),
    }
    over = slices.sum(axis=1) > limits.capacity_slices
    if over.any():
        rows = slices[over].astype(np.float64)
        wanted_min = np.where(rows > 0, min_slices.astype(np.float64), 0.0)
        filled = priority_fill(
            minimum=wanted_min,
            cap=rows,
            weight=rows - wanted_min,
            capacity=np.full(rows.shape[0], float(limits.capacity_slices)),
            order=limits.priority_order,
        )
        cut = np.floor(filled + 1e-9).astype(np.int64)
        repairs["cut_for_capacity"][over] = cut < slices[over]
        slices[over] = cut
    repair_gpus = np.abs(slices * grain - desired_gpus).sum(axis=1)
    return RepairResult(slices=slices, repairs=repairs, repair_gpus=repair_gpus)
