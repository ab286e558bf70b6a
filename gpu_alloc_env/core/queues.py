"""Per-agent FIFO request queues of a batch of environments, as padded arrays.

Service model (stated in ``docs/MODEL.md``): an agent with ``c`` warm GPUs processes its queued work
in arrival order as a fluid server of rate ``c`` GPU-seconds per second, which is its saturated,
batched throughput. A request's work begins when the work queued before it is done (its *start*),
and it completes at ``start + max(work / c, latency_floor)``: a lone request still takes its latency
floor (prefill at the minimum allocation plus ``tpot_s`` per output token), and a busy agent adds
queueing in front of it. The server moves on to the next request once a request's work is done,
so the throughput of a loaded agent is ``c`` times its per-GPU throughput.

Within one interval the capacity is constant, so departures follow Lindley's recursion
``D_j = max(a_j, D_{j-1}) + s_j``, evaluated for all requests at once as
``D = S + max(s0, cummax(a - S_prev))`` with ``S`` the cumulative service time.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

KIND_PLAN = 0
KIND_SPECIALIST = 1
KIND_AGGREGATE = 2

_INF = np.inf


class RequestQueues:
    """Queues of shape (B, N, Q): entries ``[0, length[b, n])`` of ``[b, n]`` are live, in FIFO order.

    Per entry: ``arrival_s``; remaining ``work_gpu_s``; ``floor_s``, the latency floor;
    ``floor_end_s``, when the floor ends (inf until the work starts); ``work_done_s``, when the work
    finished (inf until then); ``task``, the index of the task it belongs to; ``kind``, one of
    :data:`KIND_PLAN`, :data:`KIND_SPECIALIST`, :data:`KIND_AGGREGATE`. The capacity Q doubles
    whenever an append needs it: nothing is ever dropped.
    """

    def __init__(self, batch_size: int, num_agents: int, capacity: int = 64) -> None:
        self.batch_size = batch_size
        self.num_agents = num_agents
        self.length: IntArray = np.zeros((batch_size, num_agents), dtype=np.int64)
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        shape = (self.batch_size, self.num_agents, capacity)
        self.arrival_s = np.zeros(shape)
        self.work_gpu_s = np.zeros(shape)
        self.floor_s = np.zeros(shape)
        self.floor_end_s = np.full(shape, _INF)
        self.work_done_s = np.full(shape, _INF)
        self.task = np.zeros(shape, dtype=np.int64)
        self.kind = np.zeros(shape, dtype=np.int8)

    @property
    def capacity(self) -> int:
        """Current padded length Q."""
        return int(self.arrival_s.shape[2])

    def _grow(self, needed: int) -> None:
        new_capacity = self.capacity
        while new_capacity < needed:
            new_capacity *= 2
        old = (
            self.arrival_s,
            self.work_gpu_s,
            self.floor_s,
            self.floor_end_s,
            self.work_done_s,
            self.task,
            self.kind,
        )
        q = self.capacity
        self._allocate(new_capacity)
        for new, previous in zip(
            (
                self.arrival_s,
                self.work_gpu_s,
                self.floor_s,
                self.floor_end_s,
                self.work_done_s,
                self.task,
                self.kind,
            ),
            old,
            strict=True,
        ):
            new[:, :, :q] = previous

    def append(
        self,
        agent: int,
        env: IntArray,
        arrival_s: FloatArray,
        work_gpu_s: FloatArray,
        floor_s: FloatArray,
        task: IntArray,
        kind: int,
    ) -> None:
        """Append K requests to agent ``agent``'s queues, ordered by (env, arrival time)."""
        if env.size == 0:
            return
        order = np.lexsort((arrival_s, env))
        env = env[order]
        first = np.searchsorted(env, env, side="left")
        rank = np.arange(env.size) - first
        position = self.length[env, agent] + rank
        needed = int(position.max()) + 1
        if needed > self.capacity:
            self._grow(needed)
        self.arrival_s[env, agent, position] = arrival_s[order]
        self.work_gpu_s[env, agent, position] = work_gpu_s[order]
        self.floor_s[env, agent, position] = floor_s[order]
        self.floor_end_s[env, agent, position] = _INF
        self.work_done_s[env, agent, position] = _INF
        self.task[env, agent, position] = task[order]
        self.kind[env, agent, position] = kind
        np.add.at(self.length[:, agent], env, 1)

    def serve(
        self,
        agent: int,
        t0_s: FloatArray,
        t1_s: FloatArray,
        capacity_gpus: FloatArray,
        server_free_s: FloatArray,
        first_index: IntArray | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """Serve agent ``agent``'s pending work over ``[t0_s, t1_s)`` (B,) at constant capacity.

        Requests whose work is not yet done, from position ``first_index`` (B,) on (default 0),
        are served after the server is free at ``server_free_s`` (B,): a second pass in the same
        interval serves requests appended since the first, behind the first pass's work. A
        request's start sets its floor end; finished work sets ``work_done_s``.

        Returns:
            ``busy_gpu_s`` (B,), the GPU-seconds of work done, and the new ``server_free_s`` (B,),
            when the server finishes all work queued so far (inf without capacity).
        """
        q = self.capacity
        index = np.arange(q)
        live = index < self.length[:, agent, None]
        if first_index is not None:
            live &= index >= first_index[:, None]
        work = self.work_gpu_s[:, agent, :]
        pending = live & (work > 0.0)
        serving = capacity_gpus > 0.0
        if not pending.any():
            return np.zeros(self.batch_size), server_free_s
        rate = np.where(serving, capacity_gpus, 1.0)[:, None]
        service_s = np.where(pending, work / rate, 0.0)
        cum_s = np.cumsum(service_s, axis=1)
        ready_s = np.where(pending, np.maximum(self.arrival_s[:, agent, :], t0_s[:, None]), -_INF)
        lindley = np.maximum.accumulate(ready_s - (cum_s - service_s), axis=1)
        depart_s = cum_s + np.maximum(server_free_s[:, None], lindley)
        start_s = depart_s - service_s
        began = pending & serving[:, None] & (start_s < t1_s[:, None])
        served_gpu_s = np.where(began, np.clip(t1_s[:, None] - start_s, 0.0, service_s) * rate, 0.0)
        finished = began & (depart_s <= t1_s[:, None])
        floor_end = self.floor_end_s[:, agent, :]
        first_start = began & np.isinf(floor_end)
        floor_end[first_start] = start_s[first_start] + self.floor_s[:, agent, :][first_start]
        work -= served_gpu_s
        work[finished] = 0.0
        np.maximum(work, 0.0, out=work)
        self.work_done_s[:, agent, :][finished] = depart_s[finished]
        last = np.where(pending, depart_s, -_INF).max(axis=1)
        new_free_s = np.where(serving, np.maximum(server_free_s, last), _INF)
        return served_gpu_s.sum(axis=1), new_free_s

    def completions(self, agent: int, t1_s: FloatArray) -> BoolArray:
        """(B, Q) mask of agent ``agent``'s live requests complete by ``t1_s`` (B,)."""
        live = np.arange(self.capacity) < self.length[:, agent, None]
        return live & (self.completion_s(agent) <= t1_s[:, None])

    def completion_s(self, agent: int) -> FloatArray:
        """(B, Q) completion times of agent ``agent``'s requests (inf when not complete)."""
        done_s: FloatArray = np.maximum(self.work_done_s[:, agent, :], self.floor_end_s[:, agent, :])
        return done_s

    def clear(self, env: int) -> None:
        """Empty every queue of environment ``env``."""
        self.length[env, :] = 0

    def remove(self, agent: int, done: BoolArray) -> None:
        """Drop the entries marked in ``done`` (B, Q) from agent ``agent``'s queues, keeping order."""
        if not done.any():
            return
        live = np.arange(self.capacity) < self.length[:, agent, None]
        keep = live & ~done
        target = np.cumsum(keep, axis=1) - 1
        rows, cols = np.nonzero(keep)
        dest = target[rows, cols]
        for array in (
            self.arrival_s,
            self.work_gpu_s,
            self.floor_s,
            self.floor_end_s,
            self.work_done_s,
            self.task,
            self.kind,
        ):
            view = array[:, agent, :]
            view[rows, dest] = view[rows, cols]
        self.length[:, agent] = keep.sum(axis=1)
