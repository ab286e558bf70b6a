"""The simulator's state as flat, preallocated record arrays with a leading batch axis.

One structured array per table, so that the compiled kernel (:mod:`gpu_alloc_env.core.kernel`) reads
a row's fields from one place (``s.rq[b, i]['prompt']``) and NumPy reads a whole field at once
(``s.rq['prompt']``, a (B, Q) view). Tables of :class:`SimState`, each with a leading axis of B
environments:

| table   | rows | one row is                                      | fields          |
|---------|------|-------------------------------------------------|-----------------|
| ``env`` | -    | an environment                                  | :data:`ENV`     |
| ``agent`` | N  | an agent: its queue and replica counts          | :data:`AGENT`   |
| ``rep`` | R    | a replica slot                                  | :data:`REPLICA` |
| ``rq``  | Q    | a request, appended through an episode          | :data:`REQUEST` |
| ``tk``  | T    | a task, appended through an episode             | :data:`TASK`    |
| ``cl``  | C    | a specialist call of a task                     | :data:`CALL`    |

Rows of requests, tasks and calls are cleared at reset by their counters; the tables double
whenever an interval could need more rows, so nothing is ever dropped.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.arrays import FloatArray, IntArray
from gpu_alloc_env.config import ScenarioConfig

Records = NDArray[np.void]

# Request kinds.
KIND_PLAN = 0
KIND_SPECIALIST = 1
KIND_AGGREGATE = 2
# Request states.
QUEUED = 0
RUNNING = 1
DONE = 2
# Replica states.
FREE = 0
STARTING = 1
ACTIVE = 2
DRAINING = 3
KEPT = 4
REPLICA_STATES: tuple[str, ...] = ("free", "starting", "active", "draining", "kept_alive")
"""Names of the replica states, by code."""
NO_ROW = -1

I8 = np.int64
F8 = np.float64

ENV = np.dtype(
    [
        ("time_s", F8),
        ("n_tasks", I8),
        ("n_calls", I8),
        ("n_reqs", I8),
        ("future_reqs", I8),  # requests the unfinished tasks will still create
        ("tasks_in_flight", I8),
        ("tasks_completed", I8),
        ("slo_met", I8),
        ("free_hint", I8),  # no replica slot below this one is free
    ]
)
AGENT = np.dtype(
    [
        ("q_head", I8),
        ("q_tail", I8),
        ("q_len", I8),
        ("n_starting", I8),
        ("n_active", I8),
        ("n_draining", I8),
        ("n_kept", I8),
        ("r_head", I8),  # the agent's replicas (any state but free), a list in slot order
    ]
)
REPLICA = np.dtype(
    [
        ("agent", I8),
        ("state", I8),
        ("ready_s", F8),
        ("start_s", F8),  # when its billed lifetime began
        ("billed_s", F8),  # lifetime billed so far (whole increments)
        ("kept_until_s", F8),
        ("busy_until_s", F8),  # end of the iteration under way (inf when idle)
        ("iter_start_s", F8),
        ("run_head", I8),
        ("run_tail", I8),
        ("n_run", I8),
        ("kv_used", I8),  # KV blocks held by its running requests
        ("a_next", I8),  # the next replica of the same agent, by slot
        ("a_prev", I8),
    ]
)
REQUEST = np.dtype(
    [
        ("agent", I8),
        ("task", I8),
        ("kind", I8),
        ("state", I8),
        ("arrival_s", F8),
        ("prompt", I8),
        ("output", I8),
        ("generated", I8),
        ("computed", I8),  # tokens whose KV is computed: the prompt so far, then one per decode step
        ("target", I8),  # tokens to compute before the next sample: the prompt (+ output if recomputed)
        ("blocks", I8),
        ("replica", I8),
        ("next", I8),
        ("prev", I8),
        ("sched", I8),  # tokens scheduled in the replica's current iteration
        ("first_token_s", F8),
        ("done_s", F8),
        ("preemptions", I8),
        ("truncated", np.bool_),
    ]
)
TASK = np.dtype(
    [
        ("arrival_s", F8),
        ("done_s", F8),
        ("plan_input", I8),
        ("plan_output", I8),
        ("agg_input", I8),
        ("agg_output", I8),
        ("pending", I8),
        ("call_start", I8),
        ("call_count", I8),
    ]
)
CALL = np.dtype([("agent", I8), ("input", I8), ("output", I8)])
AGENT_PARAMS = np.dtype(
    [
        ("gpus", I8),
        ("kv_blocks", I8),
        ("max_seqs", I8),
        ("max_tokens", I8),  # token budget of one iteration
        ("max_len", I8),  # longest request (prompt and output) a replica accepts
        ("cold_start_s", F8),
        ("max_replicas", I8),
        ("ttft_slo_s", F8),  # goodput objectives of one request
        ("tpot_slo_s", F8),
    ]
)

_EMPTY: dict[str, float] = {
    "q_head": NO_ROW,
    "q_tail": NO_ROW,
    "agent": NO_ROW,
    "r_head": NO_ROW,
    "a_next": NO_ROW,
    "a_prev": NO_ROW,
    "busy_until_s": np.inf,
    "run_head": NO_ROW,
    "run_tail": NO_ROW,
    "replica": NO_ROW,
    "next": NO_ROW,
    "prev": NO_ROW,
    "first_token_s": np.inf,
    "done_s": np.inf,
}
"""Values of an empty row, where not 0."""


class Params(NamedTuple):
    """What the kernel reads of the scenario."""

    agents: Records
    """(N,) :data:`AGENT_PARAMS` of each agent."""
    coef: FloatArray
    """(N, 8) iteration-time coefficients (:data:`gpu_alloc_env.serving.perf.COEFFICIENT_NAMES`)."""
    priority_order: IntArray
    """Agents by descending priority (ties by index)."""
    capacity_gpus: int
    price_per_gpu_s: float
    billing_increment_s: float
    keep_alive_s: float
    kill: bool
    """Scale-down kills busy replicas (else they drain)."""
    task_slo_s: float


def make_params(config: ScenarioConfig) -> Params:
    """The kernel's view of ``config``."""
    engines = config.deployment.engines
    agents = np.zeros(config.num_agents, dtype=AGENT_PARAMS)
    agents["gpus"] = [e.gpus_per_replica for e in engines]
    agents["kv_blocks"] = [e.kv_blocks for e in engines]
    agents["max_seqs"] = [e.max_num_seqs for e in engines]
    agents["max_tokens"] = [e.max_batched_tokens for e in engines]
    agents["max_len"] = [e.max_model_len for e in engines]
    agents["cold_start_s"] = [e.cold_start_s for e in engines]
    agents["max_replicas"] = [a.max_replicas for a in config.agents]
    agents["ttft_slo_s"] = config.deployment.ttft_slo_s
    agents["tpot_slo_s"] = config.deployment.tpot_slo_s
    priority = np.array([a.priority for a in config.agents])
    return Params(
        agents=agents,
        coef=np.stack([e.coefficient_array() for e in engines]),
        priority_order=np.argsort(-priority, kind="stable").astype(np.int64),
        capacity_gpus=int(config.capacity_gpus),
        price_per_gpu_s=float(config.deployment.price_per_gpu_s),
        billing_increment_s=float(config.deployment.billing_increment_s),
        keep_alive_s=float(config.deployment.keep_alive_s),
        kill=config.scale_down == "kill",
        task_slo_s=float(config.task_slo_s),
    )


class SimState(NamedTuple):
    """Every table of a batch of environments (see the module docstring)."""

    env: Records
    agent: Records
    rep: Records
    rq: Records
    tk: Records
    cl: Records


_DTYPES = {"env": ENV, "agent": AGENT, "rep": REPLICA, "rq": REQUEST, "tk": TASK, "cl": CALL}


def empty_rows(table: str, shape: tuple[int, ...]) -> Records:
    """Rows of ``table`` in their empty state."""
    rows = np.zeros(shape, dtype=_DTYPES[table])
    for name, value in _EMPTY.items():
        if name in (rows.dtype.names or ()):
            rows[name] = value
    return rows


def allocate_state(
    batch_size: int,
    num_agents: int,
    replica_slots: int,
    requests: int = 256,
    tasks: int = 256,
    calls: int = 512,
) -> SimState:
    """A state with every environment empty."""
    b = batch_size
    return SimState(
        env=empty_rows("env", (b,)),
        agent=empty_rows("agent", (b, num_agents)),
        rep=empty_rows("rep", (b, replica_slots)),
        rq=empty_rows("rq", (b, requests)),
        tk=empty_rows("tk", (b, tasks)),
        cl=empty_rows("cl", (b, calls)),
    )


def grow(state: SimState, table: str, needed: int) -> SimState:
    """``state`` with the rows of ``table`` (``rq``, ``tk`` or ``cl``) doubled until ``needed`` fit."""
    old = getattr(state, table)
    width = old.shape[1]
    new_width = width
    while new_width < needed:
        new_width *= 2
    if new_width == width:
        return state
    rows = empty_rows(table, (old.shape[0], new_width))
    rows[:, :width] = old
    return state._replace(**{table: rows})


def clear_env(state: SimState, env: int) -> None:
    """Empty environment ``env``: no tasks, requests or replicas, every queue empty, time 0.

    Rows of requests, tasks and calls past the (zeroed) counters are never read, so they stay.
    """
    for table in ("env", "agent", "rep"):
        rows = getattr(state, table)
        rows[env] = empty_rows(table, rows.shape[1:])
