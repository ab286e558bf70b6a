"""One decision interval of a batch of environments, compiled with numba.

For every environment, :func:`step_interval` does, in order:

1. **Allocation** (:func:`apply_allocation`): the desired replicas per agent become the replicas it
   holds. Scale-downs first: starting replicas are cancelled (newest first), then idle replicas
   are released, then busy ones drain (stop admitting, finish their requests, billed) or are
   killed (their requests go back to the front of the queue, to be recomputed). A released replica
   stays warm for ``keep_alive_s`` (billed, holding its GPUs) unless killed. Scale-ups then reuse the
   agent's draining and kept-alive replicas, and start new ones (a cold start) while the pool has
   room, evicting other agents' kept-alive replicas if needed: first one replica for each agent
   that has none (highest priority first), then one at a time in priority order. What does not fit
   is cut.
2. **Serving**: a discrete-event loop over task arrivals, replicas becoming ready and iteration
   ends (:mod:`gpu_alloc_env.core.engine`), in time order; completed requests drive the workflow
   (plan -> specialist calls -> aggregation) at their completion times.
3. **Billing**: every replica's lifetime (start to stop, starting, serving, draining and kept alive
   alike) is billed rounded up to ``billing_increment_s``; kept-alive windows that end are closed.

Outputs for the interval go to a :class:`StepOut`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from gpu_alloc_env.arrays import FloatArray, IntArray
from gpu_alloc_env.core.engine import (
    finish_iteration,
    idle_replica,
    queue_push_back,
    requeue,
    start_iteration,
)
from gpu_alloc_env.core.state import (
    ACTIVE,
    DRAINING,
    FREE,
    KEPT,
    KIND_AGGREGATE,
    KIND_PLAN,
    KIND_SPECIALIST,
    NO_ROW,
    STARTING,
    Params,
    Records,
    SimState,
)

OUT_ENV = np.dtype(
    [
        ("tasks_completed", np.int64),
        ("task_latency_sum_s", np.float64),
        ("slo_misses", np.int64),
        ("delay_task_s", np.float64),  # task-seconds spent in the system during the interval
        ("output_tokens", np.float64),
        ("cost_usd", np.float64),
    ]
)
OUT_AGENT = np.dtype(
    [
        ("requests_arrived", np.int64),
        ("requests_completed", np.int64),
        ("goodput_misses", np.int64),  # requests completed past their agent's TTFT or TPOT objective
        ("billed_gpu_s", np.float64),
        ("busy_gpu_s", np.float64),  # GPU-seconds of replicas running iterations
        ("cold_starts", np.int64),
        ("preemptions", np.int64),
        ("requeued", np.int64),  # requests of killed replicas sent back to the queue
        ("truncated", np.int64),  # requests cut to the longest a replica accepts
        ("cut", np.int64),  # 1 where the pool could not hold the replicas asked for
        ("evicted", np.int64),  # kept-alive replicas stopped early to make room for another agent's
        ("replicas", np.int64),  # replicas starting or serving after the allocation
        ("running", np.int64),
        ("kv_used_blocks", np.int64),
        ("kv_total_blocks", np.int64),
        ("oldest_wait_s", np.float64),  # age of the request at the head of the queue at the end
    ]
)


class StepOut(NamedTuple):
    """What happened in one interval: ``env`` (B,) :data:`OUT_ENV`, ``agent`` (B, N) :data:`OUT_AGENT`."""

    env: Records
    agent: Records


def allocate_out(batch_size: int, num_agents: int) -> StepOut:
    """Zeroed outputs."""
    return StepOut(
        env=np.zeros(batch_size, dtype=OUT_ENV), agent=np.zeros((batch_size, num_agents), dtype=OUT_AGENT)
    )


class EventHeap(NamedTuple):
    """A binary min-heap of replica events (a cold start ending, an iteration ending) of one environment.

    Ordered by (time, slot), so that simultaneous events run in slot order. An entry is current while
    its replica still waits for that event at that time; others are dropped when they reach the top.
    """

    time_s: FloatArray
    slot: IntArray
    size: IntArray
    """(1,) entries in use."""


@njit(cache=True)
def _before(heap: EventHeap, i: int, j: int) -> bool:
    earlier: bool = heap.time_s[i] < heap.time_s[j] or (
        heap.time_s[i] == heap.time_s[j] and heap.slot[i] < heap.slot[j]
    )
    return earlier


@njit(cache=True)
def _swap(heap: EventHeap, i: int, j: int) -> None:
    heap.time_s[i], heap.time_s[j] = heap.time_s[j], heap.time_s[i]
    heap.slot[i], heap.slot[j] = heap.slot[j], heap.slot[i]


@njit(cache=True)
def heap_push(s: SimState, b: int, heap: EventHeap, t: float, r: int) -> None:
    """Add replica ``r``'s event at ``t`` (the heap is rebuilt from the replicas when it is full)."""
    if heap.size[0] == heap.time_s.shape[0]:
        heap_build(s, b, heap)
        if heap.size[0] == heap.time_s.shape[0]:  # pragma: no cover - one entry per slot fits
            raise RuntimeError("event heap overflow")
        for k in range(heap.size[0]):
            if heap.slot[k] == r and heap.time_s[k] == t:
                return  # the rebuild took it in
    _sift_in(heap, t, r)


@njit(cache=True)
def _sift_in(heap: EventHeap, t: float, r: int) -> None:
    """Append the event (t, r) and move it up to its place (room for it is the caller's)."""
    i = heap.size[0]
    heap.time_s[i] = t
    heap.slot[i] = r
    heap.size[0] += 1
    while i > 0:
        parent = (i - 1) >> 1
        if not _before(heap, i, parent):
            break
        _swap(heap, i, parent)
        i = parent


@njit(cache=True)
def _heap_pop(heap: EventHeap) -> None:
    heap.size[0] -= 1
    last = heap.size[0]
    heap.time_s[0] = heap.time_s[last]
    heap.slot[0] = heap.slot[last]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= last:
            break
        child = left
        if left + 1 < last and _before(heap, left + 1, left):
            child = left + 1
        if not _before(heap, child, i):
            break
        _swap(heap, i, child)
        i = child


@njit(cache=True)
def _event_s(s: SimState, b: int, r: int) -> float:
    """When replica ``r`` next has an event: its cold start ends, or its iteration (inf: none)."""
    state = s.rep[b, r]["state"]
    if state == STARTING:
        t: float = s.rep[b, r]["ready_s"]
        return t
    if state in (ACTIVE, DRAINING):
        t = s.rep[b, r]["busy_until_s"]
        return t
    return np.inf


@njit(cache=True)
def heap_build(s: SimState, b: int, heap: EventHeap) -> None:
    """The heap of every replica's current event."""
    heap.size[0] = 0
    for r in range(s.rep.shape[1]):
        t = _event_s(s, b, r)
        if t != np.inf:
            _sift_in(heap, t, r)


@njit(cache=True)
def heap_top(s: SimState, b: int, heap: EventHeap) -> int:
    """The slot of the earliest current event (``NO_ROW`` if none); stale entries are dropped."""
    while heap.size[0] > 0:
        r: int = heap.slot[0]
        if _event_s(s, b, r) == heap.time_s[0]:
            return r
        _heap_pop(heap)
    return NO_ROW


# ------------------------------------------------------------------------------- replicas
@njit(cache=True)
def set_state(s: SimState, b: int, r: int, state: int) -> None:
    """Move replica ``r`` to ``state``, keeping the per-agent counts."""
    n = s.rep[b, r]["agent"]
    old = s.rep[b, r]["state"]
    for code, delta in ((old, -1), (state, 1)):
        if code == STARTING:
            s.agent[b, n]["n_starting"] += delta
        elif code == ACTIVE:
            s.agent[b, n]["n_active"] += delta
        elif code == DRAINING:
            s.agent[b, n]["n_draining"] += delta
        elif code == KEPT:
            s.agent[b, n]["n_kept"] += delta
    s.rep[b, r]["state"] = state


@njit(cache=True)
def bill(s: SimState, p: Params, b: int, r: int, until_s: float, out: StepOut) -> None:
    """Bill replica ``r``'s lifetime up to ``until_s``, rounded up to whole billing increments."""
    step = p.billing_increment_s
    lifetime = until_s - s.rep[b, r]["start_s"]
    due = np.ceil(lifetime / step - 1e-9) * step
    if due > s.rep[b, r]["billed_s"]:
        n = s.rep[b, r]["agent"]
        gpu_s = (due - s.rep[b, r]["billed_s"]) * p.agents[n]["gpus"]
        out.agent[b, n]["billed_gpu_s"] += gpu_s
        out.env[b]["cost_usd"] += gpu_s * p.price_per_gpu_s
        s.rep[b, r]["billed_s"] = due


@njit(cache=True)
def link(s: SimState, b: int, n: int, r: int) -> None:
    """Add replica slot ``r`` to agent ``n``'s list of replicas, which stays in slot order."""
    prev = NO_ROW
    nxt = s.agent[b, n]["r_head"]
    while nxt != NO_ROW and nxt < r:
        prev = nxt
        nxt = s.rep[b, nxt]["a_next"]
    s.rep[b, r]["a_prev"] = prev
    s.rep[b, r]["a_next"] = nxt
    if prev == NO_ROW:
        s.agent[b, n]["r_head"] = r
    else:
        s.rep[b, prev]["a_next"] = r
    if nxt != NO_ROW:
        s.rep[b, nxt]["a_prev"] = r


@njit(cache=True)
def unlink(s: SimState, b: int, r: int) -> None:
    """Remove replica slot ``r`` from its agent's list."""
    prev = s.rep[b, r]["a_prev"]
    nxt = s.rep[b, r]["a_next"]
    if prev == NO_ROW:
        s.agent[b, s.rep[b, r]["agent"]]["r_head"] = nxt
    else:
        s.rep[b, prev]["a_next"] = nxt
    if nxt != NO_ROW:
        s.rep[b, nxt]["a_prev"] = prev
    s.rep[b, r]["a_prev"] = NO_ROW
    s.rep[b, r]["a_next"] = NO_ROW


@njit(cache=True)
def stop(s: SimState, p: Params, b: int, r: int, t: float, out: StepOut) -> None:
    """Stop replica ``r`` at ``t``: bill it to ``t`` and free its slot."""
    bill(s, p, b, r, t, out)
    set_state(s, b, r, FREE)
    unlink(s, b, r)
    s.rep[b, r]["agent"] = NO_ROW
    s.rep[b, r]["busy_until_s"] = np.inf
    if r < s.env[b]["free_hint"]:
        s.env[b]["free_hint"] = r


@njit(cache=True)
def release(s: SimState, p: Params, b: int, r: int, t: float, out: StepOut) -> None:
    """Release an idle replica: kept alive for ``keep_alive_s`` if that is positive, else stopped."""
    if p.keep_alive_s > 0.0:
        set_state(s, b, r, KEPT)
        s.rep[b, r]["kept_until_s"] = t + p.keep_alive_s
    else:
        stop(s, p, b, r, t, out)


@njit(cache=True)
def kill(s: SimState, p: Params, b: int, r: int, t: float, out: StepOut) -> None:
    """Kill busy replica ``r``: its requests go back to the front of the queue, in their order."""
    n = s.rep[b, r]["agent"]
    i = s.rep[b, r]["run_tail"]
    while i != NO_ROW:
        prev = s.rq[b, i]["prev"]
        requeue(s, b, r, i)
        out.agent[b, n]["requeued"] += 1
        i = prev
    stop(s, p, b, r, t, out)


@njit(cache=True)
def _find(s: SimState, b: int, n: int, state: int, newest: bool) -> int:
    """A replica of agent ``n`` in ``state``: the most (or least) recently started one."""
    best = NO_ROW
    r = s.agent[b, n]["r_head"]
    while r != NO_ROW:
        if s.rep[b, r]["state"] == state and (
            best == NO_ROW or (s.rep[b, r]["start_s"] > s.rep[b, best]["start_s"]) == newest
        ):
            best = r
        r = s.rep[b, r]["a_next"]
    return best


@njit(cache=True)
def _least_loaded_busy(s: SimState, b: int, n: int) -> int:
    best = NO_ROW
    r = s.agent[b, n]["r_head"]
    while r != NO_ROW:
        if s.rep[b, r]["state"] == ACTIVE and (
            best == NO_ROW or s.rep[b, r]["n_run"] < s.rep[b, best]["n_run"]
        ):
            best = r
        r = s.rep[b, r]["a_next"]
    return best


@njit(cache=True)
def _idle_active(s: SimState, b: int, n: int) -> int:
    r: int = s.agent[b, n]["r_head"]
    while r != NO_ROW:
        if s.rep[b, r]["state"] == ACTIVE and s.rep[b, r]["n_run"] == 0:
            return r
        r = s.rep[b, r]["a_next"]
    return NO_ROW


@njit(cache=True)
def _start_new(
    s: SimState, p: Params, b: int, n: int, t: float, free_gpus: int, kept_gpus: IntArray, out: StepOut
) -> int:
    """Start a replica of agent ``n`` if the pool has room, evicting other agents' kept-alive ones.

    ``kept_gpus[0]`` holds the GPUs of every kept-alive replica (kept up to date here). Returns the
    GPUs left free, or -1 when the replica does not fit.
    """
    need = p.agents[n]["gpus"]
    if free_gpus < need:
        evictable = kept_gpus[0] - s.agent[b, n]["n_kept"] * need
        if free_gpus + evictable < need:
            return -1  # eviction could not make room: keep the warm replicas
    while free_gpus < need:
        oldest = NO_ROW
        for r in range(s.rep.shape[1]):
            other = s.rep[b, r]["state"] == KEPT and s.rep[b, r]["agent"] != n
            if other and (oldest == NO_ROW or s.rep[b, r]["kept_until_s"] < s.rep[b, oldest]["kept_until_s"]):
                oldest = r
        if oldest == NO_ROW:
            return -1
        out.agent[b, s.rep[b, oldest]["agent"]]["evicted"] += 1
        free_gpus += p.agents[s.rep[b, oldest]["agent"]]["gpus"]
        kept_gpus[0] -= p.agents[s.rep[b, oldest]["agent"]]["gpus"]
        stop(s, p, b, oldest, t, out)
    slot = s.env[b]["free_hint"]
    while s.rep[b, slot]["state"] != FREE:
        slot += 1
    s.env[b]["free_hint"] = slot + 1
    s.rep[b, slot]["agent"] = n
    link(s, b, n, slot)
    s.rep[b, slot]["state"] = FREE
    set_state(s, b, slot, STARTING)
    s.rep[b, slot]["ready_s"] = t + p.agents[n]["cold_start_s"]
    s.rep[b, slot]["start_s"] = t
    s.rep[b, slot]["billed_s"] = 0.0
    s.rep[b, slot]["busy_until_s"] = np.inf
    s.rep[b, slot]["run_head"] = NO_ROW
    s.rep[b, slot]["run_tail"] = NO_ROW
    s.rep[b, slot]["n_run"] = 0
    s.rep[b, slot]["kv_used"] = 0
    out.agent[b, n]["cold_starts"] += 1
    left: int = free_gpus - need
    return left


@njit(cache=True)
def apply_allocation(s: SimState, p: Params, b: int, desired: IntArray, t: float, out: StepOut) -> None:
    """Make environment ``b`` hold ``desired`` (N,) replicas per agent, as far as the pool allows."""
    agents = desired.shape[0]
    for n in range(agents):
        surplus = s.agent[b, n]["n_active"] + s.agent[b, n]["n_starting"] - desired[n]
        while surplus > 0:
            r = _find(s, b, n, STARTING, True)
            if r != NO_ROW:
                stop(s, p, b, r, t, out)
            else:
                r = _idle_active(s, b, n)
                if r != NO_ROW:
                    release(s, p, b, r, t, out)
                else:
                    r = _least_loaded_busy(s, b, n)
                    if p.kill:
                        kill(s, p, b, r, t, out)
                    else:
                        set_state(s, b, r, DRAINING)
            surplus -= 1
    need = np.zeros(agents, dtype=np.int64)
    for n in range(agents):
        need[n] = max(desired[n] - s.agent[b, n]["n_active"] - s.agent[b, n]["n_starting"], 0)
        while need[n] > 0:
            r = _find(s, b, n, DRAINING, True)
            if r == NO_ROW:
                r = _find(s, b, n, KEPT, True)
            if r == NO_ROW:
                break
            set_state(s, b, r, ACTIVE)
            need[n] -= 1
    held = 0
    for r in range(s.rep.shape[1]):
        if s.rep[b, r]["state"] != FREE:
            held += p.agents[s.rep[b, r]["agent"]]["gpus"]
    free_gpus = p.capacity_gpus - held
    kept_gpus = np.zeros(1, dtype=np.int64)
    for n in range(agents):
        kept_gpus[0] += s.agent[b, n]["n_kept"] * p.agents[n]["gpus"]
    # The agents still to start replicas, in priority order; rounds visit only those.
    waiting = np.empty(agents, dtype=np.int64)
    count = 0
    for k in range(agents):
        if need[p.priority_order[k]] > 0:
            waiting[count] = p.priority_order[k]
            count += 1
    # One pass for the agents that hold no replica, then rounds of one replica each until none fits.
    for first_only in (True, False):
        progress = True
        while progress:
            progress = False
            kept = 0
            for k in range(count):
                n = waiting[k]
                held_n = s.agent[b, n]["n_active"] + s.agent[b, n]["n_starting"]
                if need[n] > 0 and not (first_only and held_n > 0):
                    left = _start_new(s, p, b, n, t, free_gpus, kept_gpus, out)
                    if left < 0:
                        need[n] = 0
                    else:
                        free_gpus = left
                        need[n] -= 1
                        progress = not first_only
                if need[n] > 0:
                    waiting[kept] = n
                    kept += 1
            count = kept
    for n in range(agents):
        held_n = s.agent[b, n]["n_active"] + s.agent[b, n]["n_starting"]
        out.agent[b, n]["replicas"] = held_n
        out.agent[b, n]["cut"] = 1 if held_n < desired[n] else 0


# ------------------------------------------------------------------------------- workflow
@njit(cache=True)
def create_request(
    s: SimState,
    p: Params,
    b: int,
    n: int,
    kind: int,
    task: int,
    t: float,
    prompt: int,
    output: int,
    out: StepOut,
) -> None:
    """Queue a new request at agent ``n``, cut to the longest request its replicas accept."""
    i = s.env[b]["n_reqs"]
    s.env[b]["n_reqs"] += 1
    s.env[b]["future_reqs"] -= 1
    limit = p.agents[n]["max_len"]
    prompt = max(prompt, 1)
    truncated = False
    if prompt > limit - 1:
        prompt = limit - 1
        truncated = True
    if prompt + output > limit:
        output = limit - prompt
        truncated = True
    s.rq[b, i]["agent"] = n
    s.rq[b, i]["task"] = task
    s.rq[b, i]["kind"] = kind
    s.rq[b, i]["arrival_s"] = t
    s.rq[b, i]["prompt"] = prompt
    s.rq[b, i]["output"] = output
    s.rq[b, i]["generated"] = 0
    s.rq[b, i]["computed"] = 0
    s.rq[b, i]["target"] = prompt
    s.rq[b, i]["blocks"] = 0
    s.rq[b, i]["sched"] = 0
    s.rq[b, i]["first_token_s"] = np.inf
    s.rq[b, i]["done_s"] = np.inf
    s.rq[b, i]["preemptions"] = 0
    s.rq[b, i]["truncated"] = truncated
    if truncated:
        out.agent[b, n]["truncated"] += 1
    out.agent[b, n]["requests_arrived"] += 1
    queue_push_back(s, b, n, i)


@njit(cache=True)
def wake(s: SimState, p: Params, b: int, n: int, t: float, heap: EventHeap, out: StepOut) -> None:
    """Let idle replicas of agent ``n`` take its queued requests at ``t``."""
    while s.agent[b, n]["q_head"] != NO_ROW:
        r = idle_replica(s, b, n)
        if r == NO_ROW or not start_iteration(s, p, b, r, t, True, out.agent):
            return
        heap_push(s, b, heap, s.rep[b, r]["busy_until_s"], r)


@njit(cache=True)
def finish_task(s: SimState, p: Params, b: int, task: int, t: float, t1: float, out: StepOut) -> None:
    """Task ``task`` completes at ``t``."""
    s.tk[b, task]["done_s"] = t
    latency = t - s.tk[b, task]["arrival_s"]
    out.env[b]["tasks_completed"] += 1
    out.env[b]["task_latency_sum_s"] += latency
    if latency > p.task_slo_s:
        out.env[b]["slo_misses"] += 1
    else:
        s.env[b]["slo_met"] += 1
    out.env[b]["delay_task_s"] -= t1 - t
    s.env[b]["tasks_in_flight"] -= 1
    s.env[b]["tasks_completed"] += 1


@njit(cache=True)
def meets_goodput_slos(s: SimState, p: Params, b: int, i: int) -> bool:
    """Whether completed request ``i`` met its agent's TTFT and TPOT objectives (TPOT: two tokens or more).

    TTFT runs from the request's arrival at its agent to its first token; TPOT is the mean time per
    output token after the first, as :func:`gpu_alloc_env.core.metrics.request_times` reports them.
    """
    n = s.rq[b, i]["agent"]
    first_s = s.rq[b, i]["first_token_s"]
    if first_s - s.rq[b, i]["arrival_s"] > p.agents[n]["ttft_slo_s"]:
        return False
    generated = s.rq[b, i]["generated"]
    if generated < 2:
        return True
    tpot_s = (s.rq[b, i]["done_s"] - first_s) / (generated - 1)
    met: bool = tpot_s <= p.agents[n]["tpot_slo_s"]
    return met


@njit(cache=True)
def on_complete(
    s: SimState, p: Params, b: int, i: int, t: float, t1: float, heap: EventHeap, out: StepOut
) -> None:
    """Request ``i`` completed at ``t``: move its task on through the workflow."""
    n = s.rq[b, i]["agent"]
    out.agent[b, n]["requests_completed"] += 1
    out.env[b]["output_tokens"] += s.rq[b, i]["generated"]
    if not meets_goodput_slos(s, p, b, i):
        out.agent[b, n]["goodput_misses"] += 1
    task = s.rq[b, i]["task"]
    kind = s.rq[b, i]["kind"]
    if kind == KIND_PLAN:
        calls = s.tk[b, task]["call_count"]
        if calls == 0:
            finish_task(s, p, b, task, t, t1, out)
            return
        s.tk[b, task]["pending"] = calls
        first = s.tk[b, task]["call_start"]
        for c in range(first, first + calls):
            agent = s.cl[b, c]["agent"]
            create_request(
                s, p, b, agent, KIND_SPECIALIST, task, t, s.cl[b, c]["input"], s.cl[b, c]["output"], out
            )
            wake(s, p, b, agent, t, heap, out)
    elif kind == KIND_SPECIALIST:
        s.tk[b, task]["pending"] -= 1
        s.tk[b, task]["agg_input"] += s.rq[b, i]["generated"]
        if s.tk[b, task]["pending"] == 0:
            create_request(
                s,
                p,
                b,
                0,
                KIND_AGGREGATE,
                task,
                t,
                s.tk[b, task]["agg_input"],
                s.tk[b, task]["agg_output"],
                out,
            )
            wake(s, p, b, 0, t, heap, out)
    else:
        finish_task(s, p, b, task, t, t1, out)


# ------------------------------------------------------------------------------- tasks
@njit(cache=True)
def add_tasks(
    s: SimState,
    b: int,
    arrival_s: FloatArray,
    plan_input: FloatArray,
    plan_output: FloatArray,
    aggregate_output: FloatArray,
    call_task: IntArray,
    call_agent: IntArray,
    call_input: FloatArray,
    call_output: FloatArray,
) -> None:
    """Append the tasks arriving in an interval (sorted) and their calls (grouped by task) to env ``b``.

    The tables must already hold the rows; the requests the tasks will create are counted in
    ``future_reqs`` so that the request table can be grown before the interval is served.
    """
    first = s.env[b]["n_tasks"]
    call_first = s.env[b]["n_calls"]
    count = arrival_s.shape[0]
    for k in range(count):
        row = s.tk[b, first + k]
        row["arrival_s"] = arrival_s[k]
        row["done_s"] = np.inf
        row["plan_input"] = int(plan_input[k])
        row["plan_output"] = int(plan_output[k])
        row["agg_input"] = int(plan_input[k])
        row["agg_output"] = int(aggregate_output[k])
        row["pending"] = 0
        row["call_start"] = call_first
        row["call_count"] = 0
    for c in range(call_task.shape[0]):
        task = s.tk[b, first + call_task[c]]
        if task["call_count"] == 0:
            task["call_start"] = call_first + c
        task["call_count"] += 1
        call = s.cl[b, call_first + c]
        call["agent"] = call_agent[c]
        call["input"] = int(call_input[c])
        call["output"] = int(call_output[c])
    with_calls = 0
    for k in range(count):
        if s.tk[b, first + k]["call_count"] > 0:
            with_calls += 1
    s.env[b]["n_tasks"] += count
    s.env[b]["n_calls"] += call_task.shape[0]
    s.env[b]["future_reqs"] += count + call_task.shape[0] + with_calls


# ------------------------------------------------------------------------------- the interval
@njit(cache=True)
def _replica_event(
    s: SimState,
    p: Params,
    b: int,
    r: int,
    t: float,
    t0: float,
    t1: float,
    scratch: IntArray,
    heap: EventHeap,
    out: StepOut,
) -> None:
    n = s.rep[b, r]["agent"]
    if s.rep[b, r]["state"] == STARTING:
        set_state(s, b, r, ACTIVE)
        s.rep[b, r]["busy_until_s"] = np.inf
        wake(s, p, b, n, t, heap, out)
        return
    out.agent[b, n]["busy_gpu_s"] += (t - max(s.rep[b, r]["iter_start_s"], t0)) * p.agents[n]["gpus"]
    count = finish_iteration(s, b, r, t, scratch)
    for k in range(count):
        on_complete(s, p, b, scratch[k], t, t1, heap, out)
    draining = s.rep[b, r]["state"] == DRAINING
    if start_iteration(s, p, b, r, t, not draining, out.agent):
        heap_push(s, b, heap, s.rep[b, r]["busy_until_s"], r)
    elif draining:
        release(s, p, b, r, t, out)
    if s.agent[b, n]["q_head"] != NO_ROW:
        wake(s, p, b, n, t, heap, out)  # requests it preempted, or left to a less loaded idle replica


@njit(cache=True)
def serve(
    s: SimState, p: Params, b: int, t0: float, t1: float, first_task: int, scratch: IntArray, out: StepOut
) -> None:
    """The discrete-event loop of environment ``b`` over ``[t0, t1)``.

    Events run in time order: task arrivals first on ties, then replica events by slot.
    """
    slots = s.rep.shape[1]
    heap = EventHeap(np.empty(slots + 1), np.empty(slots + 1, dtype=np.int64), np.zeros(1, dtype=np.int64))
    heap_build(s, b, heap)
    out.env[b]["delay_task_s"] += s.env[b]["tasks_in_flight"] * (t1 - t0)
    for n in range(s.agent.shape[1]):
        wake(s, p, b, n, t0, heap, out)  # replicas reused or requests re-queued by the allocation
    k = first_task
    while True:
        event_r = heap_top(s, b, heap)
        event_s = heap.time_s[0] if event_r != NO_ROW else np.inf
        arrival_s = s.tk[b, k]["arrival_s"] if k < s.env[b]["n_tasks"] else np.inf
        if arrival_s <= event_s:
            if arrival_s >= t1:
                return
            s.env[b]["tasks_in_flight"] += 1
            out.env[b]["delay_task_s"] += t1 - arrival_s
            create_request(
                s, p, b, 0, KIND_PLAN, k, arrival_s, s.tk[b, k]["plan_input"], s.tk[b, k]["plan_output"], out
            )
            wake(s, p, b, 0, arrival_s, heap, out)
            k += 1
        else:
            if event_s >= t1:
                return
            _heap_pop(heap)
            _replica_event(s, p, b, event_r, event_s, t0, t1, scratch, heap, out)


@njit(cache=True)
def close_interval(s: SimState, p: Params, b: int, t0: float, t1: float, out: StepOut) -> None:
    """Busy time of iterations under way, expired keep-alives, billing and the per-agent summary."""
    for r in range(s.rep.shape[1]):
        state = s.rep[b, r]["state"]
        if state == FREE:
            continue
        n = s.rep[b, r]["agent"]
        if state == KEPT and s.rep[b, r]["kept_until_s"] <= t1:
            stop(s, p, b, r, s.rep[b, r]["kept_until_s"], out)
            continue
        if state in (ACTIVE, DRAINING) and s.rep[b, r]["busy_until_s"] != np.inf:
            out.agent[b, n]["busy_gpu_s"] += (t1 - max(s.rep[b, r]["iter_start_s"], t0)) * p.agents[n]["gpus"]
        if state in (ACTIVE, DRAINING):
            out.agent[b, n]["running"] += s.rep[b, r]["n_run"]
            out.agent[b, n]["kv_used_blocks"] += s.rep[b, r]["kv_used"]
            out.agent[b, n]["kv_total_blocks"] += p.agents[n]["kv_blocks"]
        bill(s, p, b, r, t1, out)
    for n in range(s.agent.shape[1]):
        head = s.agent[b, n]["q_head"]
        out.agent[b, n]["oldest_wait_s"] = t1 - s.rq[b, head]["arrival_s"] if head != NO_ROW else 0.0
    s.env[b]["time_s"] = t1


@njit(cache=True)
def step_interval(
    s: SimState,
    p: Params,
    desired: IntArray,
    first_task: IntArray,
    active: np.ndarray,
    dt: float,
    scratch: IntArray,
    out: StepOut,
) -> None:
    """Advance the ``active`` (B,) environments of ``s`` by ``dt`` with ``desired`` (B, N) replicas.

    ``first_task[b]`` is the first task row added for this interval (rows ``first_task[b]`` to
    ``n_tasks[b]``, sorted by arrival, arrive within it). Inactive environments are left as they are.
    """
    for b in range(desired.shape[0]):
        if not active[b]:
            continue
        t0 = s.env[b]["time_s"]
        t1 = t0 + dt
        apply_allocation(s, p, b, desired[b], t0, out)
        serve(s, p, b, t0, t1, first_task[b], scratch, out)
        close_interval(s, p, b, t0, t1, out)
