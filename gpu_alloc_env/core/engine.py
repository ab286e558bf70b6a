"""One replica's continuous-batching engine, iteration by iteration, compiled with numba.

Requests of an agent wait in the agent's first-come-first-served queue (the platform's request
queue) until a replica takes them, least loaded first: a replica takes the head of the queue only
when no other serving replica of the agent runs fewer requests and has room for it
(:func:`less_loaded_replica_fits`), so a burst is shared across replicas as a least-outstanding-
requests router shares it. A replica runs iterations back to back while it has requests:

* **Scheduling** (:func:`start_iteration`), as vLLM's scheduler does: within a token budget of
  ``max_tokens``, first the running requests in admission order (one token for each decoding
  request, the next prompt chunk for each prefilling one), then new requests from the head of the
  queue while the batch has fewer than ``max_seqs`` requests. A request is admitted only when KV
  blocks for its whole prompt are free (head-of-line: a request that does not fit stops admission).
  A decoding request that needs a new block when none is free preempts the newest running request
  (its blocks are freed, it returns to the front of the queue and is recomputed from its prompt and
  the tokens it had generated), itself included if it is the newest.
* **Duration**: :func:`gpu_alloc_env.serving.perf.iteration_time_s` of the batch.
* **Completion** (:func:`finish_iteration`): every scheduled token is computed; a request whose
  prompt (or recomputation) is done samples a token (the first one is its time to first token),
  and a request that has generated its output tokens completes and frees its blocks.

Every function works on one environment ``b`` of a :class:`~gpu_alloc_env.core.state.SimState`
and stays plain loops over its arrays, so that ``NUMBA_DISABLE_JIT=1`` runs the same code in Python.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gpu_alloc_env.core.state import (
    ACTIVE,
    DONE,
    NO_ROW,
    QUEUED,
    RUNNING,
    Params,
    SimState,
)
from gpu_alloc_env.serving.engine import BLOCK_TOKENS
from gpu_alloc_env.serving.perf import iteration_time_s


@njit(cache=True)
def blocks_for(tokens: int) -> int:
    """KV blocks that hold ``tokens`` tokens."""
    return (tokens + BLOCK_TOKENS - 1) // BLOCK_TOKENS


# ------------------------------------------------------------------------------- agent queues
@njit(cache=True)
def queue_push_back(s: SimState, b: int, n: int, i: int) -> None:
    """Append request ``i`` to agent ``n``'s queue."""
    s.rq[b, i]["state"] = QUEUED
    s.rq[b, i]["replica"] = NO_ROW
    s.rq[b, i]["next"] = NO_ROW
    tail = s.agent[b, n]["q_tail"]
    s.rq[b, i]["prev"] = tail
    if tail == NO_ROW:
        s.agent[b, n]["q_head"] = i
    else:
        s.rq[b, tail]["next"] = i
    s.agent[b, n]["q_tail"] = i
    s.agent[b, n]["q_len"] += 1


@njit(cache=True)
def queue_push_front(s: SimState, b: int, n: int, i: int) -> None:
    """Put request ``i`` at the front of agent ``n``'s queue (a preempted or re-queued request)."""
    s.rq[b, i]["state"] = QUEUED
    s.rq[b, i]["replica"] = NO_ROW
    s.rq[b, i]["prev"] = NO_ROW
    head = s.agent[b, n]["q_head"]
    s.rq[b, i]["next"] = head
    if head == NO_ROW:
        s.agent[b, n]["q_tail"] = i
    else:
        s.rq[b, head]["prev"] = i
    s.agent[b, n]["q_head"] = i
    s.agent[b, n]["q_len"] += 1


@njit(cache=True)
def queue_pop_front(s: SimState, b: int, n: int) -> int:
    """Remove and return the head of agent ``n``'s queue."""
    i: int = s.agent[b, n]["q_head"]
    nxt = s.rq[b, i]["next"]
    s.agent[b, n]["q_head"] = nxt
    if nxt == NO_ROW:
        s.agent[b, n]["q_tail"] = NO_ROW
    else:
        s.rq[b, nxt]["prev"] = NO_ROW
    s.agent[b, n]["q_len"] -= 1
    s.rq[b, i]["next"] = NO_ROW
    return i


# ------------------------------------------------------------------------------- running lists
@njit(cache=True)
def run_push_back(s: SimState, b: int, r: int, i: int) -> None:
    """Admit request ``i`` to replica ``r``'s running batch (newest last)."""
    s.rq[b, i]["state"] = RUNNING
    s.rq[b, i]["replica"] = r
    s.rq[b, i]["next"] = NO_ROW
    tail = s.rep[b, r]["run_tail"]
    s.rq[b, i]["prev"] = tail
    if tail == NO_ROW:
        s.rep[b, r]["run_head"] = i
    else:
        s.rq[b, tail]["next"] = i
    s.rep[b, r]["run_tail"] = i
    s.rep[b, r]["n_run"] += 1


@njit(cache=True)
def run_unlink(s: SimState, b: int, r: int, i: int) -> None:
    """Remove request ``i`` from replica ``r``'s running batch and free its KV blocks."""
    prev = s.rq[b, i]["prev"]
    nxt = s.rq[b, i]["next"]
    if prev == NO_ROW:
        s.rep[b, r]["run_head"] = nxt
    else:
        s.rq[b, prev]["next"] = nxt
    if nxt == NO_ROW:
        s.rep[b, r]["run_tail"] = prev
    else:
        s.rq[b, nxt]["prev"] = prev
    s.rq[b, i]["next"] = NO_ROW
    s.rq[b, i]["prev"] = NO_ROW
    s.rep[b, r]["n_run"] -= 1
    s.rep[b, r]["kv_used"] -= s.rq[b, i]["blocks"]
    s.rq[b, i]["blocks"] = 0
    s.rq[b, i]["sched"] = 0


@njit(cache=True)
def requeue(s: SimState, b: int, r: int, i: int) -> None:
    """Send running request ``i`` back to the front of its agent's queue, to be recomputed."""
    run_unlink(s, b, r, i)
    s.rq[b, i]["computed"] = 0
    s.rq[b, i]["target"] = s.rq[b, i]["prompt"] + s.rq[b, i]["generated"]
    queue_push_front(s, b, s.rq[b, i]["agent"], i)


# ------------------------------------------------------------------------------- routing
@njit(cache=True)
def less_loaded_replica_fits(s: SimState, p: Params, b: int, r: int, needed: int) -> bool:
    """Whether another serving replica of ``r``'s agent runs fewer requests and will take one more.

    Such a replica, not ``r``, should take the next request of the queue (least-loaded routing). It
    must be sure to admit it at the start of its next iteration: serving and not draining, fewer
    running requests than ``r``, a free batch slot, ``needed`` KV blocks free beyond one more block
    for each of its running requests (what their decodes may take first), and token budget left
    after its running requests' tokens (a long prompt prefilled in chunks can fill the budget).
    """
    n = s.rep[b, r]["agent"]
    load = s.rep[b, r]["n_run"]
    others = s.agent[b, n]["n_active"] - 1  # r is serving: the other serving replicas to look at
    o = s.agent[b, n]["r_head"]
    while o != NO_ROW and others > 0:
        here = o
        o = s.rep[b, o]["a_next"]
        if here == r or s.rep[b, here]["state"] != ACTIVE:
            continue
        others -= 1
        if (
            s.rep[b, here]["n_run"] >= load
            or s.rep[b, here]["n_run"] >= p.agents[n]["max_seqs"]
            or needed + s.rep[b, here]["n_run"] > p.agents[n]["kv_blocks"] - s.rep[b, here]["kv_used"]
        ):
            continue
        committed = 0
        i = s.rep[b, here]["run_head"]
        while i != NO_ROW:
            remaining = s.rq[b, i]["target"] - s.rq[b, i]["computed"] - s.rq[b, i]["sched"]
            committed += remaining if remaining > 1 else 1
            i = s.rq[b, i]["next"]
        if committed < p.agents[n]["max_tokens"]:
            return True
    return False


# ------------------------------------------------------------------------------- iterations
@njit(cache=True)
def start_iteration(
    s: SimState, p: Params, b: int, r: int, t: float, admit: bool, counts: np.ndarray
) -> bool:
    """Schedule replica ``r``'s next iteration at time ``t``; False when there is nothing to run.

    ``admit`` allows new requests from the queue (not while draining). Preemptions are counted in
    ``counts[b, agent]['preemptions']`` (the per-agent record of a step's outputs).
    """
    n = s.rep[b, r]["agent"]
    budget = p.agents[n]["max_tokens"]
    capacity = p.agents[n]["kv_blocks"]
    sequences = 0
    tokens = 0
    context = 0.0
    pairs = 0.0
    i = s.rep[b, r]["run_head"]
    while i != NO_ROW and budget > 0:
        computed = s.rq[b, i]["computed"]
        remaining = s.rq[b, i]["target"] - computed
        if remaining > 0:
            # Prefill chunk: the prompt's blocks were reserved at admission.
            chunk = remaining if remaining < budget else budget
            s.rq[b, i]["sched"] = chunk
            context += computed
            pairs += chunk * computed + chunk * (chunk + 1) / 2.0
        else:
            needed = blocks_for(computed + 1) - s.rq[b, i]["blocks"]
            victim_was_self = False
            while needed > capacity - s.rep[b, r]["kv_used"]:
                victim = s.rep[b, r]["run_tail"]
                requeue(s, b, r, victim)
                s.rq[b, victim]["preemptions"] += 1
                counts[b, n]["preemptions"] += 1
                if victim == i:
                    victim_was_self = True
                    break
            if victim_was_self:
                break  # everything after i was preempted first
            if needed > 0:
                s.rq[b, i]["blocks"] += needed
                s.rep[b, r]["kv_used"] += needed
            s.rq[b, i]["sched"] = 1
            context += computed
            pairs += computed + 1.0
        budget -= s.rq[b, i]["sched"]
        tokens += s.rq[b, i]["sched"]
        sequences += 1
        i = s.rq[b, i]["next"]
    if admit:
        while (
            budget > 0
            and s.rep[b, r]["n_run"] < p.agents[n]["max_seqs"]
            and s.agent[b, n]["q_head"] != NO_ROW
        ):
            j = s.agent[b, n]["q_head"]
            needed = blocks_for(s.rq[b, j]["target"])
            if needed > capacity - s.rep[b, r]["kv_used"]:
                break
            if less_loaded_replica_fits(s, p, b, r, needed):
                break  # routed to the less loaded replica: it takes the request at its next iteration
            queue_pop_front(s, b, n)
            run_push_back(s, b, r, j)
            s.rq[b, j]["blocks"] = needed
            s.rep[b, r]["kv_used"] += needed
            chunk = s.rq[b, j]["target"] if s.rq[b, j]["target"] < budget else budget
            s.rq[b, j]["sched"] = chunk
            pairs += chunk * (chunk + 1) / 2.0
            budget -= chunk
            tokens += chunk
            sequences += 1
    if tokens == 0:
        s.rep[b, r]["busy_until_s"] = np.inf
        return False
    s.rep[b, r]["iter_start_s"] = t
    s.rep[b, r]["busy_until_s"] = t + iteration_time_s(p.coef[n], sequences, tokens, context, pairs)
    return True


@njit(cache=True)
def finish_iteration(s: SimState, b: int, r: int, t: float, completed: np.ndarray) -> int:
    """Apply replica ``r``'s iteration ending at ``t``; returns how many requests completed.

    The rows of the completed requests are written to ``completed[:count]`` (state ``DONE``, KV
    freed, ``rq_done_s`` set) for the caller's workflow. The replica stays marked busy
    (``r_busy_until_s``) until the caller schedules its next iteration, so that the workflow does
    not hand it requests in between.
    """
    count = 0
    i = s.rep[b, r]["run_head"]
    while i != NO_ROW:
        nxt = s.rq[b, i]["next"]
        scheduled = s.rq[b, i]["sched"]
        if scheduled > 0:
            s.rq[b, i]["sched"] = 0
            s.rq[b, i]["computed"] += scheduled
            if s.rq[b, i]["computed"] >= s.rq[b, i]["target"]:
                if s.rq[b, i]["output"] > s.rq[b, i]["generated"]:
                    s.rq[b, i]["generated"] += 1
                if s.rq[b, i]["first_token_s"] == np.inf:
                    s.rq[b, i]["first_token_s"] = t
                if s.rq[b, i]["generated"] >= s.rq[b, i]["output"]:
                    run_unlink(s, b, r, i)
                    s.rq[b, i]["state"] = DONE
                    s.rq[b, i]["done_s"] = t
                    completed[count] = i
                    count += 1
        i = nxt
    return count


@njit(cache=True)
def idle_replica(s: SimState, b: int, n: int) -> int:
    """An active replica of agent ``n`` with no iteration under way, or ``NO_ROW``.

    Among several, the one with the fewest running requests, then the most free KV blocks.
    """
    best = NO_ROW
    left = s.agent[b, n]["n_active"]  # serving replicas of n not yet looked at
    r = s.agent[b, n]["r_head"]
    while r != NO_ROW and left > 0:
        here = r
        r = s.rep[b, r]["a_next"]
        if s.rep[b, here]["state"] != ACTIVE:
            continue
        left -= 1
        if s.rep[b, here]["busy_until_s"] != np.inf:
            continue
        if (
            best == NO_ROW
            or s.rep[b, here]["n_run"] < s.rep[b, best]["n_run"]
            or (
                s.rep[b, here]["n_run"] == s.rep[b, best]["n_run"]
                and s.rep[b, here]["kv_used"] < s.rep[b, best]["kv_used"]
            )
        ):
            best = here
    return best
