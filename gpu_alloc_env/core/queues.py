"""Per-agent FIFO request queues of a batch of environments, as padded arrays.

Service model (stated in ``docs/MODEL.md``): an agent with ``c`` warm GPUs processes its queued work
in arrival order as a fluid server of rate ``c`` GPU-seconds per second, which is its saturated,
batched throughput. A request's work begins when the work queued before it is done (its *start*),
and it completes at ``start + max(work / c, latency_floor)``: a lone request still takes its latency
floor (prefill at the minimum allocation plus ``tpot_s`` per output token), and a busy agent adds
queueing in front of it. The server moves on to the next request once a request's work is done,
so the throughput of a loaded agent is ``c`` times its per-GPU throughput.

Within one interval the capacity is constant, so departures follow Lindley's recursion
``D_j = max(a_j, D_{j-1}) + s_j``, evaluated for all requests of many agents at once as
``D = S + max(s0, cummax(a - S_prev))`` with ``S`` the cumulative service time. Operations take a
slice of agents, so agents that do not interact within an interval (the specialists) are served
in one vectorised pass, whatever their number.
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
_FIELDS = (
    "arrival_s",
    "work_gpu_s",
    "floor_s",
    "floor_end_s",
    "work_done_s",
    "output_tokens",
    "task",
    "kind",
)


class RequestQueues:
    """Queues of shape (B, N, Q): entries ``[0, length[b, n])`` of ``[b, n]`` are live, in FIFO order.

    Per entry: ``arrival_s``; remaining ``work_gpu_s``; ``floor_s``, the latency floor;
    ``floor_end_s``, when the floor ends (inf until the work starts); ``work_done_s``, when the work
    finished (inf until then); ``output_tokens``; ``task``, the index of the task it belongs to;
    ``kind``, one of :data:`KIND_PLAN`, :data:`KIND_SPECIALIST`, :data:`KIND_AGGREGATE`. The
    capacity Q doubles whenever an append needs it: nothing is ever dropped. Methods taking
    ``agents`` act on that slice of agents; their (B, A) and (B, A, W) arrays refer to it, W being
    the longest live queue among them.
    """

    def __init__(self, batch_size: int, num_agents: int, capacity: int = 16) -> None:
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
        self.output_tokens = np.zeros(shape)
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
        old = {name: getattr(self, name) for name in _FIELDS}
        q = self.capacity
        self._allocate(new_capacity)
        for name, previous in old.items():
            getattr(self, name)[:, :, :q] = previous

    def clear(self, env: int) -> None:
        """Empty every queue of environment ``env``."""
        self.length[env, :] = 0

    def width(self, agents: slice) -> int:
        """Longest live queue among ``agents``: operations on them look at no more positions."""
        return int(self.length[:, agents].max(initial=0))

    def live(self, agents: slice) -> BoolArray:
        """(B, A, W) mask of the live entries of ``agents``, W = :meth:`width`."""
        live: BoolArray = np.arange(self.width(agents)) < self.length[:, agents, None]
        return live

    def append(
        self,
        env: IntArray,
        agent: IntArray,
        arrival_s: FloatArray,
        work_gpu_s: FloatArray,
        floor_s: FloatArray,
        output_tokens: FloatArray,
        task: IntArray,
        kind: int,
    ) -> None:
        """Append K requests, the k-th to agent ``agent[k]`` of env ``env[k]``, in arrival order."""
        if env.size == 0:
            return
        order = np.lexsort((arrival_s, agent, env))
        env, agent = env[order], agent[order]
        key = env * self.num_agents + agent
        rank = np.arange(key.size) - np.searchsorted(key, key, side="left")
        position = self.length[env, agent] + rank
        needed = int(position.max()) + 1
        if needed > self.capacity:
            self._grow(needed)
        self.arrival_s[env, agent, position] = arrival_s[order]
        self.work_gpu_s[env, agent, position] = work_gpu_s[order]
        self.floor_s[env, agent, position] = floor_s[order]
        self.floor_end_s[env, agent, position] = _INF
        self.work_done_s[env, agent, position] = _INF
        self.output_tokens[env, agent, position] = output_tokens[order]
        self.task[env, agent, position] = task[order]
        self.kind[env, agent, position] = kind
        np.add.at(self.length, (env, agent), 1)

    def serve(
        self,
        agents: slice,
        t0_s: FloatArray,
        t1_s: FloatArray,
        capacity_gpus: FloatArray,
        server_free_s: FloatArray,
        first_index: IntArray | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """Serve the pending work of ``agents`` over ``[t0_s, t1_s)`` (B,) at constant capacity.

        Requests whose work is not yet done, from position ``first_index`` (B, A) on (default 0),
        are served after the server is free at ``server_free_s`` (B, A): a second pass in the same
        interval serves requests appended since the first, behind the first pass's work. A
        request's start sets its floor end; finished work sets ``work_done_s``.

        Args:
            agents: the agents served.
            t0_s: (B,) interval starts.
            t1_s: (B,) interval ends.
            capacity_gpus: (B, A) warm GPUs able to serve (0 for an agent below its minimum).
            server_free_s: (B, A) when each server is free of earlier work of this interval.
            first_index: (B, A) first queue position to serve.

        Returns:
            ``busy_gpu_s`` (B, A), the GPU-seconds of work done, and the new ``server_free_s``
            (B, A), when each server finishes all work queued so far (inf without capacity).
        """
        w = self.width(agents)
        live = self.live(agents)
        if first_index is not None:
            live &= np.arange(w) >= first_index[:, :, None]
        work = self.work_gpu_s[:, agents, :w]
        # Unfinished requests; one with no work (no tokens) still needs a warm server to start its floor.
        pending = live & np.isinf(self.work_done_s[:, agents, :w])
        if not pending.any():
            return np.zeros(capacity_gpus.shape), server_free_s
        serving = capacity_gpus > 0.0
        rate = np.where(serving, capacity_gpus, 1.0)[:, :, None]
        service_s = np.where(pending, work / rate, 0.0)
        cum_s = np.cumsum(service_s, axis=2)
        t0 = t0_s[:, None, None]
        t1 = t1_s[:, None, None]
        ready_s = np.where(pending, np.maximum(self.arrival_s[:, agents, :w], t0), -_INF)
        lindley = np.maximum.accumulate(ready_s - (cum_s - service_s), axis=2)
        depart_s = cum_s + np.maximum(server_free_s[:, :, None], lindley)
        start_s = depart_s - service_s
        began = pending & serving[:, :, None] & (start_s < t1)
        served_gpu_s = np.where(began, np.clip(t1 - start_s, 0.0, service_s) * rate, 0.0)
        finished = began & (depart_s <= t1)
        floor_end = self.floor_end_s[:, agents, :w]
        first_start = began & np.isinf(floor_end)
        floor_end[first_start] = start_s[first_start] + self.floor_s[:, agents, :w][first_start]
        work -= served_gpu_s
        work[finished] = 0.0
        np.maximum(work, 0.0, out=work)
        self.work_done_s[:, agents, :w][finished] = depart_s[finished]
        last = np.where(pending, depart_s, -_INF).max(axis=2)
        new_free_s = np.where(serving, np.maximum(server_free_s, last), _INF)
        busy: FloatArray = served_gpu_s.sum(axis=2)
        return busy, new_free_s

    def completion_s(self, agents: slice) -> FloatArray:
        """(B, A, W) completion times of the requests of ``agents`` (inf when not complete)."""
        w = self.width(agents)
        done_s: FloatArray = np.maximum(self.work_done_s[:, agents, :w], self.floor_end_s[:, agents, :w])
        return done_s

    def completions(self, agents: slice, t1_s: FloatArray) -> BoolArray:
        """(B, A, W) mask of the live requests of ``agents`` complete by ``t1_s`` (B,)."""
        return self.live(agents) & (self.completion_s(agents) <= t1_s[:, None, None])

    def remove(self, agents: slice, done: BoolArray) -> None:
        """Drop the entries marked in ``done`` (B, A, W) from the queues of ``agents``, keeping order."""
        if not done.any():
            return
        keep = self.live(agents) & ~done
        target = np.cumsum(keep, axis=2) - 1
        rows, cols, slots = np.nonzero(keep)
        dest = target[rows, cols, slots]
        w = done.shape[2]
        for name in _FIELDS:
            view = getattr(self, name)[:, agents, :w]
            view[rows, cols, dest] = view[rows, cols, slots]
        self.length[:, agents] = keep.sum(axis=2)

    def queued_work_gpu_s(self) -> FloatArray:
        """(B, N) remaining work of every agent's queue."""
        every = slice(None)
        w = self.width(every)
        work: FloatArray = np.where(self.live(every), self.work_gpu_s[:, :, :w], 0.0).sum(axis=2)
        return work
