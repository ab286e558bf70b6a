"""Each baseline's known behaviour, through the same ``predict`` interface a trained model has."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from baselines import BASELINES, AdaptivePolicy, RoundRobinPolicy, StaticEqualPolicy, make_baseline
from gpu_alloc_env import GpuAllocEnv
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.observation import DecodedObservation
from gpu_alloc_env.policy import Policy
from gpu_alloc_env.scenarios import fleet, make_scenario

PAPER = make_scenario("paper")  # min [0.5, 2, 1, 0.5], max [4, 8, 8, 4], priority [3, 2, 2, 1], 12 GPUs


def decoded(config: ScenarioConfig, **fields: Any) -> DecodedObservation:
    """A batch-of-one observation in natural units: zeros except ``fields`` (per-agent lists)."""
    n = config.num_agents
    values: dict[str, np.ndarray] = {}
    for name in DecodedObservation.__dataclass_fields__:
        scalar = name in ("time_s", "tasks_in_flight")
        default = np.zeros(1) if scalar else np.zeros((1, n))
        values[name] = np.asarray(fields.get(name, default), dtype=np.float64).reshape(default.shape)
    return DecodedObservation(**values)


def test_every_baseline_is_a_policy_with_batched_predict() -> None:
    env = GpuAllocEnv("paper", episode_length_s=10.0)
    obs, _ = env.reset(seed=0)
    for name in BASELINES:
        policy = make_baseline(name, PAPER)
        assert isinstance(policy, Policy)
        action, state = policy.predict(obs, state=None, episode_start=np.array([True]), deterministic=True)
        assert action.shape == (4,) and action.dtype == np.float32 and state is None
        batch, _ = policy.predict(np.stack([obs, obs, obs]))
        assert batch.shape == (3, 4)
        np.testing.assert_array_equal(batch[1], action)
    with pytest.raises(ValueError, match="unknown baseline 'greedy'"):
        make_baseline("greedy", PAPER)


def test_policy_built_for_another_scenario_fails_clearly() -> None:
    policy = StaticEqualPolicy(fleet(8))
    with pytest.raises(ValueError, match="expected 101 for scenario 'fleet8'"):
        policy.predict(np.zeros(12 * 4 + 5, np.float32))


def test_static_equal_gives_capacity_over_n_always() -> None:
    policy = StaticEqualPolicy(PAPER)
    idle = policy.allocate(decoded(PAPER))
    busy = policy.allocate(decoded(PAPER, demand_gpus=[9, 9, 9, 9], queue_requests=[50, 50, 50, 50]))
    np.testing.assert_allclose(idle, [[3.0, 3.0, 3.0, 3.0]])
    np.testing.assert_allclose(busy, idle)
    # Shares are rounded down to the granularity: 12 GPUs over 5 agents is 2.375 (19 eighths).
    five = fleet(5)
    share = five.capacity_gpus / 5
    np.testing.assert_allclose(StaticEqualPolicy(five).allocate(decoded(five)), np.floor(share * 8) / 8)


def test_static_equal_in_the_environment_holds_the_same_allocation_every_step() -> None:
    env = GpuAllocEnv("paper", episode_length_s=30.0)
    obs, _ = env.reset(seed=0)
    policy = StaticEqualPolicy(PAPER)
    for _ in range(30):
        obs, _, _, _, info = env.step(policy.predict(obs)[0])
        np.testing.assert_allclose(info["allocation_gpus"], [3.0, 3.0, 3.0, 3.0])


def test_round_robin_hands_the_whole_pool_to_one_agent_per_quantum_in_turn() -> None:
    policy = RoundRobinPolicy(PAPER, quantum_s=60.0)
    for time_s, turn in ((0.0, 0), (59.0, 0), (60.0, 1), (150.0, 2), (199.0, 3), (240.0, 0)):
        action = policy.allocate(decoded(PAPER, time_s=[time_s]))[0]
        expected = np.zeros(4)
        expected[turn] = 12.0
        np.testing.assert_allclose(action, expected, err_msg=f"t = {time_s} s")


def test_round_robin_in_the_environment_serves_one_agent_capped_at_its_max() -> None:
    config = PAPER.replace(episode_length_s=40.0)
    env = GpuAllocEnv(config)
    policy = RoundRobinPolicy(config, quantum_s=10.0)
    obs, _ = env.reset(seed=0)
    holders = []
    for _ in range(40):
        obs, _, _, _, info = env.step(policy.predict(obs)[0])
        allocation = info["allocation_gpus"]
        assert np.count_nonzero(allocation) == 1
        holder = int(np.argmax(allocation))
        assert allocation[holder] == PAPER.agents[holder].max_gpus  # asked 12, capped at max
        holders.append(holder)
    assert holders == [0] * 10 + [1] * 10 + [2] * 10 + [3] * 10


@pytest.mark.parametrize("value", [0.0, -5.0, float("nan"), float("inf")])
def test_round_robin_rejects_a_bad_quantum(value: float) -> None:
    with pytest.raises(ValueError, match="quantum_s must be a positive number of seconds"):
        RoundRobinPolicy(PAPER, quantum_s=value)


def test_adaptive_scales_idle_agents_to_zero() -> None:
    np.testing.assert_array_equal(AdaptivePolicy(PAPER).allocate(decoded(PAPER)), 0.0)


def test_adaptive_holds_need_plus_headroom_and_no_more() -> None:
    # Code specialist needs 2 GPUs of work per second: 2 x 1.25 = 2.5 GPUs; retrieval has one
    # request queued and no measured need: its minimum, 0.5.
    obs = decoded(PAPER, demand_gpus=[0, 0, 2.0, 0], queue_requests=[0, 0, 0, 1])
    np.testing.assert_allclose(AdaptivePolicy(PAPER).allocate(obs), [[0.0, 0.0, 2.5, 0.5]])
    # Queued work counts as need spread over the drain time: 10 GPU-s over 10 s is 1 GPU more.
    queued = decoded(PAPER, demand_gpus=[0, 0, 2.0, 0], queued_work_gpu_s=[0, 0, 10.0, 0])
    np.testing.assert_allclose(AdaptivePolicy(PAPER).allocate(queued), [[0.0, 0.0, 3.75, 0.0]])
    lean = AdaptivePolicy(PAPER, headroom=0.0)
    np.testing.assert_allclose(lean.allocate(obs), [[0.0, 0.0, 2.0, 0.5]])


def test_adaptive_shares_the_rest_by_priority_times_demand_when_short() -> None:
    # Everyone needs far more than their max (caps 4 + 8 + 8 + 4 = 24 > 12): minimums first (4 GPUs),
    # the other 8 by priority x need = 3:2:2:1, giving 3, 2, 2 and 1 on top of the minimums.
    obs = decoded(PAPER, demand_gpus=[100.0] * 4)
    np.testing.assert_allclose(AdaptivePolicy(PAPER).allocate(obs), [[3.5, 4.0, 3.0, 1.5]])


def test_adaptive_passes_a_capped_agents_excess_on() -> None:
    # Coordinator needs 0.4 GPU (capped at 0.5 = its target 0.5, its minimum); the rest need 100:
    # its priority share would be far larger, so what it cannot take goes to the specialists.
    obs = decoded(PAPER, demand_gpus=[0.4, 100.0, 100.0, 100.0])
    alloc = AdaptivePolicy(PAPER).allocate(obs)[0]
    assert alloc[0] == pytest.approx(0.5)
    # 12 - 0.5 - 3.5 minimums = 8 shared 2:2:1 = 3.2, 3.2, 1.6, each floored to eighths of a GPU
    # (at most one slice per agent left unallocated).
    np.testing.assert_allclose(alloc[1:], np.floor(np.array([2.0 + 3.2, 1.0 + 3.2, 0.5 + 1.6]) * 8) / 8)
    assert 12.0 - 4 * 0.125 < alloc.sum() <= 12.0


def test_adaptive_serves_highest_priority_minimums_first_when_they_do_not_fit() -> None:
    # 2.5 GPUs: the coordinator (priority 3) takes its 0.5, reasoning (2, listed first among the
    # priority-2 agents) its 2; code and retrieval get nothing.
    small = PAPER.replace(capacity_gpus=2.5)
    obs = decoded(small, demand_gpus=[1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(AdaptivePolicy(small).allocate(obs), [[0.5, 2.0, 0.0, 0.0]])


def test_adaptive_hysteresis_keeps_an_allocation_within_its_band() -> None:
    # Need 2 GPUs: target 2.5, band [2.5, 3.75] with hysteresis 0.5.
    policy = AdaptivePolicy(PAPER)
    for held, expected in ((0.0, 2.5), (3.0, 3.0), (6.0, 3.75)):
        obs = decoded(PAPER, demand_gpus=[0, 0, 2.0, 0], alloc_gpus=[0, 0, held, 0])
        assert policy.allocate(obs)[0, 2] == pytest.approx(expected), f"held {held}"
    no_band = AdaptivePolicy(PAPER, hysteresis=0.0)
    obs = decoded(PAPER, demand_gpus=[0, 0, 2.0, 0], alloc_gpus=[0, 0, 3.0, 0])
    assert no_band.allocate(obs)[0, 2] == pytest.approx(2.5)


def test_adaptive_decision_does_not_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = AdaptivePolicy(fleet(64))
    obs = decoded(policy.config, demand_gpus=np.linspace(0.0, 3.0, 64))

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the adaptive decision must not sort")

    for name in ("sort", "argsort", "lexsort", "partition", "argpartition"):
        monkeypatch.setattr(np, name, forbidden)
    alloc = policy.allocate(obs)
    assert alloc.sum() <= policy.capacity_gpus + 1e-9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"headroom": -0.1}, "headroom must be a finite fraction >= 0"),
        ({"drain_time_s": 0.0}, "drain_time_s must be a positive number of seconds"),
        ({"hysteresis": float("nan")}, "hysteresis must be a finite fraction >= 0"),
    ],
)
def test_adaptive_rejects_bad_parameters(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdaptivePolicy(PAPER, **kwargs)


def test_adaptive_bills_less_than_static_for_the_same_tasks() -> None:
    config = PAPER.replace(episode_length_s=120.0)
    results = {}
    for name in ("static", "adaptive"):
        env = GpuAllocEnv(config)
        policy = make_baseline(name, config)
        obs, _ = env.reset(seed=4)
        while True:
            obs, _, _, truncated, info = env.step(policy.predict(obs)[0])
            if truncated:
                results[name] = info["episode_metrics"]
                break
    assert results["adaptive"]["tasks_arrived"] == results["static"]["tasks_arrived"]
    assert results["adaptive"]["cost_usd"] < results["static"]["cost_usd"]
    assert results["adaptive"]["gpu_utilization"] > results["static"]["gpu_utilization"]
