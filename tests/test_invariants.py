"""Invariants that hold at every step of random rollouts, whatever the actions."""

from __future__ import annotations

import numpy as np
import pytest

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.allocation import AllocationLimits, priority_fill, repair_allocation
from gpu_alloc_env.core.simulator import BatchSimulator
from gpu_alloc_env.scenarios import fleet, make_scenario

CASES: dict[str, ScenarioConfig] = {
    "paper": make_scenario("paper", episode_length_s=120.0),
    "bursty": make_scenario("bursty", episode_length_s=120.0, workload={"task_rate_tps": 6.0}),
    "diurnal": make_scenario("diurnal", episode_length_s=120.0),
    "fleet8": fleet(8).replace(episode_length_s=60.0),
    "keep_alive": make_scenario("paper", episode_length_s=120.0, keep_alive_s=15.0),
    "decisions_10ms": make_scenario("paper", decision_interval_s=0.01, episode_length_s=3.0),
}


def random_actions(rng: np.random.Generator, limits: AllocationLimits, batch: int) -> np.ndarray:
    """Requests that exercise every repair: negative, above max, off-grid, below min, over capacity."""
    n = limits.max_slices.size
    max_gpus = limits.max_slices * limits.granularity_gpus
    kind = rng.integers(0, 4)
    if kind == 0:
        return rng.uniform(-1.0, 1.5, size=(batch, n)) * max_gpus
    if kind == 1:
        return np.where(rng.random((batch, n)) < 0.5, 0.0, max_gpus) * np.ones((batch, 1))
    if kind == 2:
        return rng.uniform(0.0, 1.0, size=(batch, n)) * limits.min_slices * limits.granularity_gpus
    return rng.exponential(2.0, size=(batch, n))


@pytest.mark.parametrize("name", list(CASES))
def test_random_rollout_keeps_every_invariant(name: str) -> None:
    config = CASES[name]
    batch = 3
    sim = BatchSimulator(config, batch_size=batch)
    for env in range(batch):
        sim.reset_env(env, np.random.default_rng(100 + env))
    rng = np.random.default_rng(7)
    limits = sim.limits
    grain = config.gpu_granularity
    arrived = np.zeros(batch, dtype=np.int64)
    completed = np.zeros(batch, dtype=np.int64)
    for _ in range(config.episode_steps):
        desired = random_actions(rng, limits, batch)
        before = sim.alloc_slices.copy()
        stats = sim.step(desired)
        alloc = stats.alloc_slices
        # Feasible: each agent zero or within [min, max], on the grid, within capacity.
        assert np.all((alloc == 0) | ((alloc >= limits.min_slices) & (alloc <= limits.max_slices)))
        assert np.all(alloc.sum(axis=1) <= limits.capacity_slices)
        np.testing.assert_array_equal(alloc, sim.alloc_slices)
        # Warm + loading GPUs are exactly the allocation.
        np.testing.assert_array_equal(sim.warm_slices + sim.loading_slices, alloc)
        assert np.all(sim.warm_slices >= 0) and np.all(sim.loading_slices >= 0)
        # Cold starts only where the allocation grew.
        assert np.all(stats.cold_starts <= (alloc > before))
        # Queues: non-negative lengths and remaining work; no work done beyond what was held.
        assert np.all(sim.queues.length >= 0)
        assert np.all(sim.queued_work_gpu_s() >= -1e-12)
        held = (alloc * grain) * config.decision_interval_s
        assert np.all(stats.busy_gpu_s <= held + 1e-9)
        assert np.all(stats.busy_gpu_s >= 0.0)
        # Billing: every billed GPU-second at the price, and at least the allocation.
        assert np.all(stats.alloc_gpu_s >= held - 1e-9)
        np.testing.assert_allclose(stats.cost_usd, stats.alloc_gpu_s.sum(axis=1) * config.price_per_gpu_s)
        # Tasks conserved: every task that arrived is complete or in flight.
        arrived += stats.tasks_arrived
        completed += stats.tasks_completed
        np.testing.assert_array_equal(arrived, completed + sim.tasks_in_flight)
        assert np.all(sim.tasks_in_flight >= 0)
        assert np.all(stats.delay_task_s >= -1e-9)
        assert np.all(stats.delay_task_s <= (sim.tasks_in_flight + stats.tasks_completed) * sim.dt_s + 1e-9)
        # Repair distance: zero exactly when the request was already feasible.
        assert np.all(stats.repair_gpus >= 0.0)
    np.testing.assert_array_equal(sim.totals.tasks_arrived, arrived)
    assert arrived.sum() > 0


@pytest.mark.parametrize("name", ["paper", "fleet8"])
def test_completed_requests_never_beat_their_latency_floor(name: str) -> None:
    config = CASES[name]
    sim = BatchSimulator(config, batch_size=1)
    sim.reset_env(0, np.random.default_rng(3))
    max_gpus = sim.limits.max_slices * config.gpu_granularity
    for _ in range(config.episode_steps):
        sim.step(max_gpus[None, :] * 0.5)
    # The fastest possible request of each agent: one token in, one token out.
    floors = 1.0 / (sim.prefill_tps * sim.min_gpus) + sim.tpot_s
    for n, latency in enumerate(sim.totals.request_latencies(0)):
        assert latency.size > 0
        assert latency.min() >= floors[n] - 1e-9


def test_repair_of_feasible_requests_is_the_identity() -> None:
    limits = AllocationLimits.from_config(make_scenario("paper"))
    feasible = np.array([[0.5, 2.0, 1.0, 0.5], [0.0, 8.0, 2.0, 0.0], [4.0, 0.0, 0.0, 4.0]])
    result = repair_allocation(feasible, limits)
    np.testing.assert_allclose(result.slices * limits.granularity_gpus, feasible)
    assert not any(mask.any() for mask in result.repairs.values())
    np.testing.assert_array_equal(result.repair_gpus, 0.0)


def test_repair_reports_each_kind_on_the_agent_it_touched() -> None:
    # paper: coordinator min 0.5 max 4, reasoning min 2 max 8, code min 1 max 8, retrieval min 0.5
    # max 4; capacity 12, eighths of a GPU.
    limits = AllocationLimits.from_config(make_scenario("paper"))
    result = repair_allocation(np.array([[-1.0, 9.0, 0.6, 0.3]]), limits)
    gpus = result.slices[0] * limits.granularity_gpus
    # -1 -> 0; 9 -> max 8; 0.6 -> 0.625 on the grid, then below min 1 but at least half -> 1;
    # 0.3 -> 0.25 on the grid, below min 0.5 but half of it -> 0.5.
    np.testing.assert_allclose(gpus, [0.0, 8.0, 1.0, 0.5])
    assert result.repairs["clipped_negative"][0].tolist() == [True, False, False, False]
    assert result.repairs["clipped_above_max"][0].tolist() == [False, True, False, False]
    assert result.repairs["rounded_to_grid"][0].tolist() == [False, False, True, True]
    assert result.repairs["raised_to_min"][0].tolist() == [False, False, True, True]
    assert result.repair_gpus[0] == pytest.approx(1.0 + 1.0 + 0.4 + 0.2)
    dropped = repair_allocation(np.array([[0.0, 0.9, 0.0, 0.0]]), limits)
    assert dropped.slices[0, 1] == 0 and dropped.repairs["dropped_below_min"][0, 1]


def test_repair_over_capacity_keeps_minimums_by_priority_and_shares_the_rest() -> None:
    # Ask 4 + 8 + 8 + 4 = 24 GPUs of a 12-GPU pool. Minimums first (0.5 + 2 + 1 + 0.5 = 4), then
    # the remaining 8 in proportion to what each asked above its minimum (3.5, 6, 7, 3.5 of 20).
    limits = AllocationLimits.from_config(make_scenario("paper"))
    result = repair_allocation(np.array([[4.0, 8.0, 8.0, 4.0]]), limits)
    gpus = result.slices[0] * limits.granularity_gpus
    exact = np.array([0.5, 2.0, 1.0, 0.5]) + 8.0 * np.array([3.5, 6.0, 7.0, 3.5]) / 20.0
    np.testing.assert_allclose(gpus, np.floor(exact * 8.0) / 8.0)
    assert gpus.sum() <= 12.0
    assert result.repairs["cut_for_capacity"][0].all()


def test_priority_fill_serves_highest_priority_minimums_when_they_do_not_all_fit() -> None:
    # Minimums 3, 2, 2 with priorities ordering agent 2 first, then 0, then 1; 5 to share:
    # agent 2 gets 2, agent 0 gets 3, agent 1 nothing.
    alloc = priority_fill(
        minimum=np.array([[3.0, 2.0, 2.0]]),
        cap=np.array([[6.0, 6.0, 6.0]]),
        weight=np.array([[1.0, 1.0, 1.0]]),
        capacity=np.array([5.0]),
        order=np.array([2, 0, 1]),
    )
    np.testing.assert_allclose(alloc, [[3.0, 0.0, 2.0]])


def test_priority_fill_passes_a_capped_agents_excess_on() -> None:
    # 10 to share, minimums 1 each (7 left), weights 6:1:0. Agent 0's share 6/7 x 7 = 6 is capped
    # at 1 more (cap 2); the 6 it cannot take pass on to agent 1, the only other weight.
    alloc = priority_fill(
        minimum=np.array([[1.0, 1.0, 1.0]]),
        cap=np.array([[2.0, 9.0, 3.0]]),
        weight=np.array([[6.0, 1.0, 0.0]]),
        capacity=np.array([10.0]),
        order=np.array([0, 1, 2]),
    )
    np.testing.assert_allclose(alloc, [[2.0, 7.0, 1.0]])
    assert alloc.sum() == pytest.approx(10.0)
    idle = priority_fill(
        minimum=np.array([[1.0, 0.0]]),
        cap=np.array([[2.0, 0.0]]),
        weight=np.array([[1.0, 5.0]]),
        capacity=np.array([10.0]),
        order=np.array([1, 0]),
    )
    np.testing.assert_allclose(idle, [[2.0, 0.0]])


def test_batch_of_three_steps_like_three_batches_of_one() -> None:
    config = make_scenario("bursty", episode_length_s=90.0)
    batched = BatchSimulator(config, batch_size=3)
    singles = [BatchSimulator(config, batch_size=1) for _ in range(3)]
    for env in range(3):
        batched.reset_env(env, np.random.default_rng(env))
        singles[env].reset_env(0, np.random.default_rng(env))
    rng = np.random.default_rng(11)
    for _ in range(config.episode_steps):
        desired = rng.uniform(0.0, 6.0, size=(3, config.num_agents))
        stats = batched.step(desired)
        for env, single in enumerate(singles):
            one = single.step(desired[env : env + 1])
            np.testing.assert_array_equal(stats.alloc_slices[env], one.alloc_slices[0])
            assert stats.tasks_completed[env] == one.tasks_completed[0]
            np.testing.assert_allclose(stats.busy_gpu_s[env], one.busy_gpu_s[0], rtol=1e-12)
            np.testing.assert_allclose(stats.delay_task_s[env], one.delay_task_s[0], rtol=1e-12)
    for env, single in enumerate(singles):
        for a, b in zip(
            batched.totals.request_latencies(env), single.totals.request_latencies(0), strict=True
        ):
            np.testing.assert_allclose(a, b, rtol=1e-12)
