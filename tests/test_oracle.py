"""The offline limit: the fluid planner on hand-sized instances, the clairvoyant policy and the bound."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_alloc_env import GpuAllocEnv
from gpu_alloc_env.baselines import ClairvoyantPolicy, ProvisionedErlangPolicy, StaticEqualPolicy
from gpu_alloc_env.baselines.bound import return_bound, task_costs_usd
from gpu_alloc_env.baselines.fluid_plan import PlanProblem, solve_plan
from gpu_alloc_env.baselines.forecast import episode_draws
from gpu_alloc_env.evaluation import evaluate_policies, run_episode
from gpu_alloc_env.scenarios import make_scenario


def problem(**fields: object) -> PlanProblem:
    """A one-agent problem of 1 s steps, price 1, no cold start, with ``fields`` changed."""
    arrivals = np.asarray(fields.pop("arrivals", [[2.0, 0.0, 0.0]]), dtype=np.float64)
    n, k = arrivals.shape
    values: dict[str, object] = {
        "step_s": 1.0,
        "arrivals": arrivals,
        "backlog": np.zeros(n),
        "ready_now": np.zeros((n, k)),
        "rate_per_s": np.ones(n),
        "start_steps": np.zeros(n, dtype=np.int64),
        "gpus": np.ones(n),
        "max_replicas": np.ones(n),
        "capacity_gpus": float(n),
        "price_per_gpu_s": 1.0,
        "delay_usd_per_unit_s": 0.5,
        "terminal_usd_per_unit": 10.0,
        "held": np.zeros(n),
        "release_usd": np.zeros(n),
    }
    values.update(fields)
    return PlanProblem(**values)  # type: ignore[arg-type]


def test_plan_spreads_work_over_steps_when_one_replica_is_the_most() -> None:
    # x = (1, 1, 0): 2 dollars of replicas and one unit waiting one step (0.5); every other plan costs more
    # ((1, 0, 1): 3.0, (0, 1, 1): 3.5, (1, 0, 0): 12.5).
    plan = solve_plan(problem())
    assert plan.replicas.tolist() == [[1.0, 1.0, 0.0]]
    assert plan.objective_usd == pytest.approx(2.5)


def test_plan_starts_replicas_a_cold_start_ahead() -> None:
    # Three units arrive at step 2; a replica serves two steps after it is taken. Holding (2, 2, 2, 1)
    # serves two at step 2 and one at step 3: 7 dollars of replicas and one unit waiting one step.
    # (3, 3, 3, 0) costs 9, (2, 2, 2, 2) costs 9, and waiting longer pays the terminal charge.
    plan = solve_plan(
        problem(
            arrivals=[[0.0, 0.0, 3.0, 0.0]],
            start_steps=np.array([2]),
            max_replicas=np.array([3.0]),
            capacity_gpus=3.0,
            delay_usd_per_unit_s=1.0,
            terminal_usd_per_unit=100.0,
        )
    )
    assert plan.replicas.tolist() == [[2.0, 2.0, 2.0, 1.0]]
    assert plan.objective_usd == pytest.approx(8.0)


def test_plan_shares_the_pool() -> None:
    # Two agents, one GPU: serving either costs 0.1 and leaves the other's unit waiting (1.0).
    plan = solve_plan(
        problem(
            arrivals=[[1.0], [1.0]],
            capacity_gpus=1.0,
            price_per_gpu_s=0.1,
            delay_usd_per_unit_s=1.0,
            terminal_usd_per_unit=0.0,
        )
    )
    assert plan.replicas.sum() == 1.0
    assert plan.objective_usd == pytest.approx(1.1)


def test_plan_keeps_a_replica_whose_release_costs_more() -> None:
    idle = {"arrivals": [[0.0, 0.0]], "held": np.array([1.0])}
    kept = solve_plan(problem(**idle, release_usd=np.array([5.0])))
    assert kept.replicas.tolist() == [[1.0, 1.0]] and kept.objective_usd == pytest.approx(2.0)
    released = solve_plan(problem(**idle))
    assert released.replicas.tolist() == [[0.0, 0.0]] and released.objective_usd == pytest.approx(0.0)


SHORT = make_scenario("paper", episode_length_s=60.0)


def test_forecast_is_the_episode_workload() -> None:
    draws = episode_draws(SHORT, 7)
    env = GpuAllocEnv(SHORT)
    result = run_episode(env, StaticEqualPolicy(SHORT), 7, "static")
    assert sum(d.count for d in draws) == result.metrics["tasks_arrived"]


def test_clairvoyant_policy_needs_the_seed_and_respects_the_pool() -> None:
    oracle = ClairvoyantPolicy(SHORT)
    env = GpuAllocEnv(SHORT)
    obs, _ = env.reset(seed=3)
    with pytest.raises(RuntimeError, match="start_episode"):
        oracle.predict(obs)
    result = run_episode(env, oracle, 3, "oracle", record=True)
    assert result.allocation_gpus is not None
    assert result.allocation_gpus.sum(axis=1).max() <= SHORT.capacity_gpus
    assert result.metrics["tasks_completed"] > 0
    # Its twin lived the same episode, and it searched once per 30 s window.
    assert oracle.twin is not None
    assert oracle.twin.tasks_completed[0] == env.sim.tasks_completed[0] == result.metrics["tasks_completed"]
    assert oracle.searches == 2
    # Out of step with the episode (its twin is at the end): a clear error.
    obs, _ = env.reset(seed=3)
    with pytest.raises(RuntimeError, match="twin is at 60 s but the episode at 0 s"):
        oracle.predict(obs)


def test_clairvoyant_candidates_fit_the_pool_and_include_the_fluid_plan() -> None:
    oracle = ClairvoyantPolicy(SHORT)
    env = GpuAllocEnv(SHORT)
    oracle.start_episode(env, 0)
    obs, _ = env.reset(seed=0)
    candidates = oracle.candidates(oracle.layout.decode(obs[None]))
    gpus = np.array([a.tensor_parallel for a in SHORT.agents])
    assert all(c @ gpus <= SHORT.capacity_gpus and np.all(c >= 0) for c in candidates)
    assert np.array_equal(candidates[0], oracle.constant)  # the held allocation first
    assert len({tuple(c) for c in candidates}) == len(candidates)
    without_plan = ClairvoyantPolicy(SHORT, use_plan=False)
    without_plan.start_episode(env, 0)
    assert len(without_plan.candidates(oracle.layout.decode(obs[None]))) <= len(candidates)


def test_no_policy_scores_above_the_bound() -> None:
    seeds = [0, 1]
    policies = {
        "static": StaticEqualPolicy(SHORT),
        "erlang": ProvisionedErlangPolicy(SHORT),
        "oracle": ClairvoyantPolicy(SHORT),
    }
    for result in evaluate_policies(policies, SHORT, seeds):
        assert result.episode_return <= return_bound(SHORT, result.seed)


def test_bound_is_zero_when_nothing_is_priced_and_each_task_costs_at_most_staying() -> None:
    free = SHORT.replace(reward={"cost_weight": 0.0, "delay_usd_per_task_s": 0.0, "slo_miss_usd": 0.0})
    assert return_bound(free, 0) == 0.0
    for draws in episode_draws(SHORT, 0):
        if draws.count:
            costs = task_costs_usd(SHORT, draws)
            staying = SHORT.reward.delay_usd_per_task_s * (SHORT.episode_length_s - draws.arrival_s)
            assert np.all(costs > 0.0) and np.all(costs <= staying + 1e-12)
