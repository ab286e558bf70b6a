"""Sharing a GPU pool among agents in whole replicas: the priority fill the policies build on.

An agent's replica costs ``tensor_parallel`` GPUs. :func:`priority_fill` shares a continuous amount
(minimums first, the rest by weight, capped, excess passed on); :func:`fill_replicas` turns that
into whole replicas. Both make linear passes over the agents in a priority order fixed in advance:
O(N) per decision, no sorting.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gpu_alloc_env.arrays import BoolArray, FloatArray, IntArray


def priority_order(priority: FloatArray) -> IntArray:
    """Agents by descending priority, ties by index (computed once per scenario)."""
    order: IntArray = np.argsort(-np.asarray(priority, dtype=np.float64), kind="stable").astype(np.int64)
    return order


@njit(cache=True)
def _priority_fill(
    minimum: FloatArray, cap: FloatArray, weight: FloatArray, capacity: FloatArray, order: IntArray
) -> FloatArray:
    batch, agents = minimum.shape
    alloc = np.zeros((batch, agents))
    for b in range(batch):
        remaining = capacity[b]
        for n in order:
            if minimum[b, n] > 0.0 and minimum[b, n] <= remaining + 1e-9:
                alloc[b, n] = minimum[b, n]
                remaining -= minimum[b, n]
        remaining = max(remaining, 0.0)
        weight_left = 0.0
        for n in range(agents):
            if alloc[b, n] > 0.0 and cap[b, n] - alloc[b, n] > 0.0:
                weight_left += weight[b, n]
        for n in order:
            room = cap[b, n] - alloc[b, n] if alloc[b, n] > 0.0 else 0.0
            if room <= 0.0:
                continue
            if weight_left > 0.0:
                give = min(remaining * weight[b, n] / weight_left, room)
                alloc[b, n] += give
                remaining -= give
            weight_left = max(weight_left - weight[b, n], 0.0)
        for n in order:
            room = cap[b, n] - alloc[b, n] if alloc[b, n] > 0.0 else 0.0
            if room > 0.0 and remaining > 0.0:
                give = min(room, remaining)
                alloc[b, n] += give
                remaining -= give
    return alloc


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
    after it; (3) anything still left tops up agents below their cap, in order. Compiled with
    numba.

    Args:
        minimum: (B, N) smallest non-zero holding per agent; 0 marks an agent that wants nothing.
        cap: (B, N) most each agent may hold (>= ``minimum`` where ``minimum`` > 0).
        weight: (B, N) non-negative share weights (for example priority times demand).
        capacity: (B,) amount to share.
        order: (N,) agent indices, highest priority first.

    Returns:
        (B, N) allocation, zero or within [``minimum``, ``cap``], summing to at most ``capacity``.
    """
    alloc: FloatArray = _priority_fill(
        np.ascontiguousarray(minimum, dtype=np.float64),
        np.ascontiguousarray(cap, dtype=np.float64),
        np.ascontiguousarray(weight, dtype=np.float64),
        np.ascontiguousarray(capacity, dtype=np.float64),
        np.ascontiguousarray(order, dtype=np.int64),
    )
    return alloc


def fill_replicas(
    active: BoolArray,
    cap_replicas: FloatArray,
    weight: FloatArray,
    gpus_per_replica: IntArray,
    capacity_gpus: float,
    order: IntArray,
    current: FloatArray | None = None,
) -> FloatArray:
    """Whole replicas per agent: one for each active agent first, the rest by weight, capped.

    :func:`priority_fill` shares the GPUs (an active agent's minimum is one replica), each share is
    rounded down to whole replicas, and the GPUs this leaves go, one replica at a time, to agents
    whose share was cut by the rounding: first to those that hold more than the rounded share now
    (``current``), so that rounding does not take a replica from one agent to start one for
    another, then in priority order.

    Args:
        active: (B, N) agents that should hold at least one replica.
        cap_replicas: (B, N) most replicas each agent should hold (>= 1 where active).
        weight: (B, N) share weights.
        gpus_per_replica: (N,) GPUs of one replica of each agent.
        capacity_gpus: GPUs of the pool.
        order: (N,) agents, highest priority first.
        current: (B, N) replicas each agent holds now (none when omitted).

    Returns:
        (B, N) replicas, whole numbers as floats, using at most ``capacity_gpus``.
    """
    size = gpus_per_replica.astype(np.float64)
    minimum = np.where(active, size, 0.0)
    cap = np.where(active, np.maximum(cap_replicas, 1.0) * size, 0.0)
    share = priority_fill(minimum, cap, weight, np.full(active.shape[0], float(capacity_gpus)), order)
    held = np.zeros_like(share) if current is None else np.ascontiguousarray(current, dtype=np.float64)
    replicas: FloatArray = _round_replicas(share, cap, size, float(capacity_gpus), held, order)
    return replicas


@njit(cache=True)
def _round_replicas(
    share: FloatArray,
    cap: FloatArray,
    size: FloatArray,
    capacity_gpus: float,
    held: FloatArray,
    order: IntArray,
) -> FloatArray:
    batch, agents = share.shape
    replicas = np.zeros((batch, agents))
    for b in range(batch):
        left = capacity_gpus
        for n in range(agents):
            replicas[b, n] = np.floor(share[b, n] / size[n] + 1e-9)
            left -= replicas[b, n] * size[n]
        for keeping in (True, False):
            for n in order:
                wants = share[b, n] > replicas[b, n] * size[n] + 1e-9 and replicas[b, n] < cap[b, n] / size[n]
                if keeping:
                    wants = wants and held[b, n] > replicas[b, n]
                if wants and left >= size[n]:
                    replicas[b, n] += 1.0
                    left -= size[n]
    return replicas
