"""The tasks of a batch of environments: one row per environment, one column per task.

A task is the unit of user work: the coordinator plans it, the specialists it calls answer in
parallel, and the coordinator aggregates their answers. Columns are task indices in arrival order;
the table doubles its capacity whenever needed, so no task is ever dropped.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


class TaskTable:
    """Per-task state of B environments with N agents.

    ``arrival_s`` / ``complete_s`` (inf while unfinished); ``calls`` (B, T, N) which specialists a
    task calls; ``input_tokens`` / ``output_tokens`` (B, T, N) its requests' tokens (column 0: the
    planning request); ``aggregate_output_tokens``; ``pending`` specialist requests not yet answered;
    ``specialists_done_s``, when the last answer arrived; ``aggregate_input_tokens``, the prompt plus
    the answers so far. ``count`` (B,) tasks so far in each environment.
    """

    def __init__(self, batch_size: int, num_agents: int, capacity: int = 256) -> None:
        self.batch_size = batch_size
        self.num_agents = num_agents
        self.count = np.zeros(batch_size, dtype=np.int64)
        self._allocate(capacity)

    _FIELDS_2D = (
        "arrival_s",
        "complete_s",
        "aggregate_output_tokens",
        "aggregate_input_tokens",
        "specialists_done_s",
        "pending",
    )
    _FIELDS_3D = ("calls", "input_tokens", "output_tokens")

    def _allocate(self, capacity: int) -> None:
        b, n = self.batch_size, self.num_agents
        self.arrival_s = np.zeros((b, capacity))
        self.complete_s = np.full((b, capacity), np.inf)
        self.aggregate_output_tokens = np.zeros((b, capacity))
        self.aggregate_input_tokens = np.zeros((b, capacity))
        self.specialists_done_s = np.full((b, capacity), -np.inf)
        self.pending = np.zeros((b, capacity), dtype=np.int64)
        self.calls = np.zeros((b, capacity, n), dtype=np.bool_)
        self.input_tokens = np.zeros((b, capacity, n))
        self.output_tokens = np.zeros((b, capacity, n))

    @property
    def capacity(self) -> int:
        """Current number of task columns T."""
        return int(self.arrival_s.shape[1])

    def _grow(self, needed: int) -> None:
        capacity = self.capacity
        while capacity < needed:
            capacity *= 2
        old = {name: getattr(self, name) for name in self._FIELDS_2D + self._FIELDS_3D}
        t = self.capacity
        self._allocate(capacity)
        for name, previous in old.items():
            getattr(self, name)[:, :t] = previous

    def clear(self, env: int) -> None:
        """Forget every task of environment ``env``."""
        self.count[env] = 0

    def add(
        self,
        env: IntArray,
        arrival_s: FloatArray,
        calls: BoolArray,
        input_tokens: FloatArray,
        output_tokens: FloatArray,
        aggregate_output_tokens: FloatArray,
    ) -> IntArray:
        """Register K tasks (``env`` sorted ascending, arrivals in order within an env).

        Returns:
            (K,) task indices within their environments.
        """
        if env.size == 0:
            return np.zeros(0, dtype=np.int64)
        first = np.searchsorted(env, env, side="left")
        index = self.count[env] + (np.arange(env.size) - first)
        needed = int(index.max()) + 1
        if needed > self.capacity:
            self._grow(needed)
        self.arrival_s[env, index] = arrival_s
        self.complete_s[env, index] = np.inf
        self.calls[env, index] = calls
        self.input_tokens[env, index] = input_tokens
        self.output_tokens[env, index] = output_tokens
        self.aggregate_output_tokens[env, index] = aggregate_output_tokens
        self.aggregate_input_tokens[env, index] = input_tokens[:, 0]
        self.specialists_done_s[env, index] = -np.inf
        self.pending[env, index] = calls.sum(axis=1)
        np.add.at(self.count, env, 1)
        return index
