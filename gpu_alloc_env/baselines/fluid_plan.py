"""The clairvoyant planner's model: replicas per agent per step, a mixed-integer program over fluid queues.

Given every agent's future work (known in advance: the planner is clairvoyant), choose the
replicas ``x[n, k]`` each agent holds in each step ``k`` of length ``step_s`` to minimise

    sum_k sum_n  price_per_gpu_s * gpus[n] * x[n, k] * step_s          (the bill)
               + delay_usd_per_unit_s * b[n, k] * step_s                (work waiting or in service)
    + terminal_usd_per_unit * sum_n b[n, K-1]                           (work left at the end)

subject to, for every agent and step:

- ``b[n, k] = b[n, k-1] + arrivals[n, k] - served[n, k]``, ``b >= 0``, ``served >= 0``
  (``b[n, -1] = backlog[n]``): a fluid queue of work, in units of the agent's mean request;
- ``served[n, k] <= rate[n] * step_s * ready[n, k]``: a ready replica completes ``rate[n]``
  units per second;
- ``ready[n, k] <= x[n, j]`` for every ``j`` in ``[k - start_steps[n], k]``: a replica serves
  only once it has been held for its cold start (the replicas held throughout a window are at
  least its minimum), and before ``start_steps[n]`` have passed, ``ready[n, k] <=
  ready_now[n, k]`` (the replicas already serving, and those starting once they are up);
- ``sum_n gpus[n] * x[n, k] <= capacity_gpus``; ``0 <= x[n, k] <= max_replicas[n]``, integer;
- ``drop[n, k] >= x[n, k-1] - x[n, k]`` (``x[n, -1] = held[n]``, the replicas held now), each
  replica released charged ``release_usd[n]``: a replica let go costs a cold start when it is
  needed again, which the plan cannot see beyond its horizon.

It is solved exactly by HiGHS (``scipy.optimize.milp``): :attr:`FluidPlan.objective_usd` is the
optimum of this model, which is a simplification of the simulator (no batching dynamics, no
per-request latency, no SLO threshold), so it is neither a bound on nor an estimate of a policy's
return in the simulator. The simulator scores the plan (:mod:`gpu_alloc_env.baselines.oracle`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

X, READY, SERVED, BACKLOG, DROP = range(5)
"""The five variables of each agent and step, in their order in the variable vector."""
VARIABLES = 5


@dataclass(frozen=True)
class PlanProblem:
    """One planning problem: N agents over K steps (shapes in brackets).

    Attributes:
        step_s: length of a step, seconds.
        arrivals: [N, K] work arriving in each step, in mean requests.
        backlog: [N] work in the system at the start.
        ready_now: [N, K] replicas serving in each step without any new start (those serving now,
            and those starting once their cold start ends).
        rate_per_s: [N] mean requests one ready replica completes per second.
        start_steps: [N] steps a new replica takes to start serving.
        gpus: [N] GPUs per replica.
        max_replicas: [N] the most replicas of each agent.
        capacity_gpus: the pool.
        price_per_gpu_s: dollars per GPU-second held.
        delay_usd_per_unit_s: dollars per mean request per second in the system.
        terminal_usd_per_unit: dollars per mean request still in the system after the last step.
        held: [N] replicas held now (serving or starting).
        release_usd: [N] dollars charged for each replica released.
    """

    step_s: float
    arrivals: NDArray[np.float64]
    backlog: NDArray[np.float64]
    ready_now: NDArray[np.float64]
    rate_per_s: NDArray[np.float64]
    start_steps: NDArray[np.int64]
    gpus: NDArray[np.float64]
    max_replicas: NDArray[np.float64]
    capacity_gpus: float
    price_per_gpu_s: float
    delay_usd_per_unit_s: float
    terminal_usd_per_unit: float
    held: NDArray[np.float64]
    release_usd: NDArray[np.float64]

    @property
    def shape(self) -> tuple[int, int]:
        """(N agents, K steps)."""
        n, k = self.arrivals.shape
        return int(n), int(k)


@dataclass(frozen=True)
class FluidPlan:
    """The solution of a :class:`PlanProblem`: [N, K] replicas, ready replicas, work served and left.

    ``optimal`` is False when the solver stopped at its time limit: the plan is then the best it
    found, ``objective_usd`` its cost and ``mip_gap`` how far that may be from the optimum.
    """

    replicas: NDArray[np.float64]
    ready: NDArray[np.float64]
    served: NDArray[np.float64]
    backlog: NDArray[np.float64]
    objective_usd: float
    optimal: bool = True
    mip_gap: float = 0.0


def solve_plan(problem: PlanProblem, time_limit_s: float = 10.0, mip_rel_gap: float = 1e-4) -> FluidPlan:
    """Solve ``problem`` with HiGHS (module docstring); raises RuntimeError if it finds no plan."""
    n_agents, n_steps = problem.shape
    size = n_agents * n_steps * VARIABLES

    def var(n: int, k: int, v: int) -> int:
        return (n * n_steps + k) * VARIABLES + v

    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lower: list[float] = []
    upper: list[float] = []

    def row(entries: list[tuple[int, float]], lo: float, hi: float) -> None:
        index = len(lower)
        for col, value in entries:
            rows.append(index)
            cols.append(col)
            vals.append(value)
        lower.append(lo)
        upper.append(hi)

    var_low = np.zeros(size)
    var_high = np.full(size, np.inf)
    cost = np.zeros(size)
    integrality = np.zeros(size)
    dt = problem.step_s
    for n in range(n_agents):
        lag = int(problem.start_steps[n])
        for k in range(n_steps):
            x, ready, served, backlog = (var(n, k, v) for v in (X, READY, SERVED, BACKLOG))
            var_high[x] = problem.max_replicas[n]
            integrality[x] = 1
            cost[x] = problem.price_per_gpu_s * problem.gpus[n] * dt
            cost[backlog] = problem.delay_usd_per_unit_s * dt
            if k == n_steps - 1:
                cost[backlog] += problem.terminal_usd_per_unit
            # b[k] - b[k-1] + served[k] = arrivals[k]
            entries = [(backlog, 1.0), (served, 1.0)]
            previous = problem.backlog[n]
            if k > 0:
                entries.append((var(n, k - 1, BACKLOG), -1.0))
                previous = 0.0
            row(entries, problem.arrivals[n, k] + previous, problem.arrivals[n, k] + previous)
            row([(served, 1.0), (ready, -problem.rate_per_s[n] * dt)], -np.inf, 0.0)
            if k < lag:
                var_high[ready] = problem.ready_now[n, k]
            # drop[k] - x[k-1] + x[k] >= 0
            drop = var(n, k, DROP)
            cost[drop] = problem.release_usd[n]
            if k > 0:
                row([(drop, 1.0), (var(n, k - 1, X), -1.0), (x, 1.0)], 0.0, np.inf)
            else:
                row([(drop, 1.0), (x, 1.0)], float(problem.held[n]), np.inf)
            for j in range(max(0, k - lag), k + 1):
                row([(ready, 1.0), (var(n, j, X), -1.0)], -np.inf, 0.0)
    for k in range(n_steps):
        row([(var(n, k, X), float(problem.gpus[n])) for n in range(n_agents)], -np.inf, problem.capacity_gpus)
    matrix = coo_matrix((vals, (rows, cols)), shape=(len(lower), size)).tocsr()
    result = milp(
        cost,
        constraints=LinearConstraint(matrix, np.array(lower), np.array(upper)),
        integrality=integrality,
        bounds=Bounds(var_low, var_high),
        options={"time_limit": time_limit_s, "mip_rel_gap": mip_rel_gap},
    )
    if result.x is None:
        raise RuntimeError(f"the planner found no plan: {result.message}")
    values = np.asarray(result.x).reshape(n_agents, n_steps, VARIABLES)
    return FluidPlan(
        replicas=np.round(values[:, :, X]),
        ready=values[:, :, READY],
        served=values[:, :, SERVED],
        backlog=values[:, :, BACKLOG],
        objective_usd=float(result.fun),
        optimal=int(result.status) == 0,
        mip_gap=float(getattr(result, "mip_gap", 0.0) or 0.0),
    )
