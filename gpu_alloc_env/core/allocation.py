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
def priority_fill_row(
    minimum: FloatArray,
    cap: FloatArray,
    weight: FloatArray,
    capacity: float,
    order: IntArray,
    alloc: FloatArray,
    visits: IntArray,
) -> None:
    """:func:`priority_fill` of one environment into ``alloc`` (N,), zeroed by the caller.

    ``visits[0]`` counts the agents its loops visit (four linear passes: 4 N).
    """
    agents = minimum.shape[0]
    visited = 0
    remaining = capacity
    for n in order:
        visited += 1
        if minimum[n] > 0.0 and minimum[n] <= remaining + 1e-9:
            alloc[n] = minimum[n]
            remaining -= minimum[n]
    remaining = max(remaining, 0.0)
    weight_left = 0.0
    for n in range(agents):
        visited += 1
        if alloc[n] > 0.0 and cap[n] - alloc[n] > 0.0:
            weight_left += weight[n]
    for n in order:
        visited += 1
        room = cap[n] - alloc[n] if alloc[n] > 0.0 else 0.0
        if room <= 0.0:
            continue
        if weight_left > 0.0:
            give = min(remaining * weight[n] / weight_left, room)
            alloc[n] += give
            remaining -= give
        weight_left = max(weight_left - weight[n], 0.0)
    for n in order:
        visited += 1
        room = cap[n] - alloc[n] if alloc[n] > 0.0 else 0.0
        if room > 0.0 and remaining > 0.0:
            give = min(room, remaining)
            alloc[n] += give
            remaining -= give
    visits[0] += visited


@njit(cache=True)
def _priority_fill(
    minimum: FloatArray, cap: FloatArray, weight: FloatArray, capacity: FloatArray, order: IntArray
) -> FloatArray:
    batch, agents = minimum.shape
    alloc = np.zeros((batch, agents))
    visits = np.zeros(1, dtype=np.int64)
    for b in range(batch):
        priority_fill_row(minimum[b], cap[b], weight[b], capacity[b], order, alloc[b], visits)
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
def round_replicas_row(
    share: FloatArray,
    cap: FloatArray,
    size: FloatArray,
    capacity_gpus: float,
    held: FloatArray,
    order: IntArray,
    replicas: FloatArray,
    visits: IntArray,
) -> None:
    """:func:`fill_replicas`' rounding of one environment's GPU ``share`` into ``replicas`` (N,).

    ``visits[0]`` counts the agents its loops visit (three linear passes: 3 N).
    """
    agents = share.shape[0]
    visited = 0
    left = capacity_gpus
    for n in range(agents):
        visited += 1
        replicas[n] = np.floor(share[n] / size[n] + 1e-9)
        left -= replicas[n] * size[n]
    for keeping in (True, False):
        for n in order:
            visited += 1
            wants = share[n] > replicas[n] * size[n] + 1e-9 and replicas[n] < cap[n] / size[n]
            if keeping:
                wants = wants and held[n] > replicas[n]
            if wants and left >= size[n]:
                replicas[n] += 1.0
                left -= size[n]
    visits[0] += visited


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
    visits = np.zeros(1, dtype=np.int64)
    for b in range(batch):
        round_replicas_row(share[b], cap[b], size, capacity_gpus, held[b], order, replicas[b], visits)
    return replicas
