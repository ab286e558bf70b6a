"""The tasks of a batch of environments: one row per environment, one column per task.

A task is the unit of user work: the coordinator plans it, the specialists it calls answer in
parallel, and the coordinator aggregates their answers. Columns are task indices in arrival order.
A task's specialist calls are stored sparsely, as a contiguous run of entries in per-environment
call arrays, so memory grows with the calls made, not with tasks times agents. Both tables double
their capacity whenever needed, so no task is ever dropped.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.core.workload import TaskDraws

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_TASK_FIELDS = {
    "arrival_s": (np.float64, 0.0),
    "complete_s": (np.float64, np.inf),
    "plan_input_tokens": (np.float64, 0.0),
    "plan_output_tokens": (np.float64, 0.0),
    "aggregate_output_tokens": (np.float64, 0.0),
    "aggregate_input_tokens": (np.float64, 0.0),
    "specialists_done_s": (np.float64, -np.inf),
    "pending": (np.int64, 0),
    "call_start": (np.int64, 0),
    "call_count": (np.int64, 0),
}
_CALL_FIELDS = {
    "call_agent": (np.int64, 0),
    "call_input_tokens": (np.float64, 0.0),
    "call_output_tokens": (np.float64, 0.0),
}


class TaskTable:
    """Per-task state of B environments.

    Task fields (B, T): ``arrival_s``; ``complete_s`` (inf while unfinished); the planning request's
    ``plan_input_tokens`` / ``plan_output_tokens``; ``aggregate_output_tokens``;
    ``aggregate_input_tokens``, the prompt plus the specialists' answers so far; ``pending``,
    specialist requests not yet answered; ``specialists_done_s``, when the last answer arrived;
    ``call_start`` / ``call_count``, the task's run in the call arrays. Call fields (B, C):
    ``call_agent``, ``call_input_tokens``, ``call_output_tokens``. ``count`` (B,) tasks and
    ``calls`` (B,) calls so far in each environment.
    """

    arrival_s: FloatArray
    complete_s: FloatArray
    plan_input_tokens: FloatArray
    plan_output_tokens: FloatArray
    aggregate_output_tokens: FloatArray
    aggregate_input_tokens: FloatArray
    specialists_done_s: FloatArray
    pending: IntArray
    call_start: IntArray
    call_count: IntArray
    call_agent: IntArray
    call_input_tokens: FloatArray
    call_output_tokens: FloatArray

    def __init__(self, batch_size: int, task_capacity: int = 256, call_capacity: int = 512) -> None:
        self.batch_size = batch_size
        self.count: IntArray = np.zeros(batch_size, dtype=np.int64)
        self.calls: IntArray = np.zeros(batch_size, dtype=np.int64)
        for name, (dtype, fill) in _TASK_FIELDS.items():
            setattr(self, name, np.full((batch_size, task_capacity), fill, dtype=dtype))
        for name, (dtype, fill) in _CALL_FIELDS.items():
            setattr(self, name, np.full((batch_size, call_capacity), fill, dtype=dtype))

    @property
    def capacity(self) -> int:
        """Current number of task columns T."""
        return int(self.arrival_s.shape[1])

    def _grow(self, fields: Mapping[str, tuple[type, float]], needed: int) -> None:
        width = getattr(self, next(iter(fields))).shape[1]
        new_width = width
        while new_width < needed:
            new_width *= 2
        for name, (dtype, fill) in fields.items():
            grown = np.full((self.batch_size, new_width), fill, dtype=dtype)
            grown[:, :width] = getattr(self, name)
            setattr(self, name, grown)

    def clear(self, env: int) -> None:
        """Forget every task of environment ``env``."""
        self.count[env] = 0
        self.calls[env] = 0

    def add(self, env: IntArray, draws: list[TaskDraws]) -> IntArray:
        """Register the tasks of ``draws[e]`` in environment ``env[e]`` (``env`` ascending).

        Returns:
            Task indices within their environments, all tasks of ``draws`` in order.
        """
        counts = np.array([d.count for d in draws], dtype=np.int64)
        task_env = np.repeat(env, counts)
        if task_env.size == 0:
            return np.zeros(0, dtype=np.int64)
        index = self.count[task_env] + _ranks(counts)
        if int(index.max()) + 1 > self.capacity:
            self._grow(_TASK_FIELDS, int(index.max()) + 1)
        call_counts = np.array([d.call_task.size for d in draws], dtype=np.int64)
        call_env = np.repeat(env, call_counts)
        call_index = self.calls[call_env] + _ranks(call_counts)
        if call_index.size and int(call_index.max()) + 1 > self.call_agent.shape[1]:
            self._grow(_CALL_FIELDS, int(call_index.max()) + 1)

        def cat(name: str) -> FloatArray:
            return np.concatenate([getattr(d, name) for d in draws])

        per_task_calls = np.concatenate([np.bincount(d.call_task, minlength=d.count) for d in draws]).astype(
            np.int64
        )
        first_call = self.calls[task_env] + _ranks(counts, per_task_calls)
        self.arrival_s[task_env, index] = cat("arrival_s")
        self.complete_s[task_env, index] = np.inf
        self.plan_input_tokens[task_env, index] = cat("plan_input_tokens")
        self.plan_output_tokens[task_env, index] = cat("plan_output_tokens")
        self.aggregate_output_tokens[task_env, index] = cat("aggregate_output_tokens")
        self.aggregate_input_tokens[task_env, index] = cat("plan_input_tokens")
        self.specialists_done_s[task_env, index] = -np.inf
        self.pending[task_env, index] = per_task_calls
        self.call_start[task_env, index] = first_call
        self.call_count[task_env, index] = per_task_calls
        if call_index.size:
            self.call_agent[call_env, call_index] = cat("call_agent")
            self.call_input_tokens[call_env, call_index] = cat("call_input_tokens")
            self.call_output_tokens[call_env, call_index] = cat("call_output_tokens")
        self.count[env] += counts
        self.calls[env] += call_counts
        return index

    def expand_calls(self, env: IntArray, task: IntArray) -> tuple[IntArray, IntArray, IntArray]:
        """The calls of tasks (``env``, ``task``): (env, task, call index) per call."""
        counts = self.call_count[env, task]
        call_env = np.repeat(env, counts)
        call_task = np.repeat(task, counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        call_index = np.repeat(self.call_start[env, task], counts) + offsets
        return call_env, call_task, call_index


def _ranks(group_sizes: IntArray, weights: IntArray | None = None) -> IntArray:
    """Position of each item within its group (groups laid out one after another).

    With ``weights``, the exclusive running sum of the weights within each group instead.
    """
    if weights is None:
        total = int(group_sizes.sum())
        return np.arange(total) - np.repeat(np.cumsum(group_sizes) - group_sizes, group_sizes)
    running = np.cumsum(weights) - weights
    group_first = np.cumsum(group_sizes) - group_sizes
    base = running[np.minimum(group_first, max(running.size - 1, 0))] if running.size else running
    ranks: IntArray = running - np.repeat(base, group_sizes)
    return ranks
