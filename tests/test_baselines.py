"""Each baseline's known behaviour, through the same ``predict`` interface a trained model has."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gpu_alloc_env import GpuAllocEnv
from gpu_alloc_env.baselines import (
    BASELINES,
    CLAIRVOYANT,
    AdaptivePolicy,
    RoundRobinPolicy,
    StaticEqualPolicy,
    make_baseline,
)
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.state import ACTIVE
from gpu_alloc_env.observation import DecodedObservation
from gpu_alloc_env.policy import Policy
from gpu_alloc_env.scenarios import fleet, make_scenario

# Replicas of GPUs: coordinator 1 GPU (max 4), reasoning 4 (max 2), code 1 (max 6), retrieval 1 (max 4);
# priority [3, 2, 2, 1]; 16 GPUs.
PAPER = make_scenario("paper")
SCALARS = ("free_gpus", "time_s", "tasks_in_flight")


def decoded(config: ScenarioConfig, **fields: Any) -> DecodedObservation:
    """A batch-of-one observation in natural units: zeros except ``fields`` (per-agent lists)."""
    names = set(DecodedObservation.__dataclass_fields__)
    unknown = sorted(set(fields) - names)
    assert not unknown, f"DecodedObservation has no field(s) {unknown}"
    n = config.num_agents
    values: dict[str, np.ndarray] = {}
    for name in names:
        default = np.zeros(1) if name in SCALARS else np.zeros((1, n))
        values[name] = np.asarray(fields.get(name, default), dtype=np.float64).reshape(default.shape)
    return DecodedObservation(**values)


def arrivals_for(policy: AdaptivePolicy, need_replicas: list[float]) -> np.ndarray:
    """The arrival rates at which each agent needs ``need_replicas`` replicas (no queue)."""
    return np.asarray(need_replicas) * policy.replica_rate_rps


def gpus(config: ScenarioConfig, replicas: np.ndarray) -> float:
    """GPUs held by ``replicas`` (N,) of ``config``'s agents."""
    return float(np.dot(replicas, [a.tensor_parallel for a in config.agents]))


def test_every_baseline_is_a_policy_with_batched_predict() -> None:
    env = GpuAllocEnv("paper", episode_length_s=10.0)
    obs, _ = env.reset(seed=0)
    for name in BASELINES:
        policy = make_baseline(name, PAPER)
        if name in CLAIRVOYANT:  # it replays this environment's episode, so it is built for it
            with pytest.raises(ValueError, match="built for scenario 'paper'"):
                policy.start_episode(env, 0)  # type: ignore[attr-defined]
            policy = make_baseline(name, env)
            policy.start_episode(env, 0)  # type: ignore[attr-defined]
        assert isinstance(policy, Policy)
        action, state = policy.predict(obs, state=None, episode_start=np.array([True]), deterministic=True)
        assert action.shape == (4,) and action.dtype == np.float32 and state is None
        if name in CLAIRVOYANT:  # it plans the one episode whose future it read
            with pytest.raises(ValueError, match="one environment at a time"):
                policy.predict(np.stack([obs, obs, obs]))
            continue
        batch, _ = policy.predict(np.stack([obs, obs, obs]))
        assert batch.shape == (3, 4)
        np.testing.assert_array_equal(batch[1], action)
    with pytest.raises(ValueError, match="unknown baseline 'greedy'"):
        make_baseline("greedy", PAPER)


def test_policy_built_for_another_scenario_fails_clearly() -> None:
    policy = StaticEqualPolicy(fleet(8))
    # 13 features per agent and 5 global ones: 8 agents read 109 elements, paper's 4 write 57.
    with pytest.raises(ValueError, match="observation has 57 elements, expected 109 for scenario 'fleet8'"):
        policy.predict(np.zeros(13 * 4 + 5, np.float32))


def test_static_equal_shares_the_capacity_as_evenly_as_whole_replicas_allow() -> None:
    policy = StaticEqualPolicy(PAPER)
    idle = policy.allocate(decoded(PAPER))
    busy = policy.allocate(
        decoded(PAPER, arrival_rate_rps=[9, 9, 9, 9], queued=[50, 50, 50, 50], running=[8, 8, 8, 8])
    )
    # One replica at a time to the agent holding the fewest GPUs: each gets its first replica (the
    # 70B's is 4 GPUs), then the 1-GPU agents take turns up to 4 GPUs each: 4 + 4 + 4 + 4 = 16.
    np.testing.assert_array_equal(idle, [[4.0, 1.0, 4.0, 4.0]])
    np.testing.assert_array_equal(busy, idle)
    assert gpus(PAPER, idle[0]) == PAPER.capacity_gpus
    # fleet(5): 21 GPUs over coordinator (1 GPU, max 5), reasoning-0 (4), code-1 (1), retrieval-2
    # (1, max 4), reasoning-3 (4). Everyone reaches 4 GPUs (20); the last GPU fits only a 1-GPU
    # agent below its max, the coordinator first by priority: 5, 4, 4, 4, 4 GPUs.
    five = fleet(5)
    shares = StaticEqualPolicy(five).allocate(decoded(five))
    np.testing.assert_array_equal(shares, [[5.0, 1.0, 4.0, 4.0, 1.0]])
    # A pool too small for everyone's first replica: first replicas go in priority order while they
    # fit (coordinator 1, reasoning 4, code 1 = 6 GPUs); retrieval gets nothing.
    small = PAPER.replace(capacity_gpus=6)
    np.testing.assert_array_equal(StaticEqualPolicy(small).allocate(decoded(small)), [[1.0, 1.0, 1.0, 0.0]])


def test_static_equal_in_the_environment_holds_the_same_replicas_every_step() -> None:
    env = GpuAllocEnv("paper", episode_length_s=70.0)
    obs, _ = env.reset(seed=0)
    policy = StaticEqualPolicy(PAPER)
    for _ in range(70):
        obs, _, _, _, info = env.step(policy.predict(obs)[0])
        np.testing.assert_array_equal(info["replicas"], [4, 1, 4, 4])
        assert not any(flags.any() for flags in info["repairs"].values())
        assert info["action_repair_replicas"] == 0.0
    # Every replica is past its cold start (the coordinator's 30 s ... the 70B's 67 s) and serves.
    assert env.sim.replicas_in(ACTIVE)[0].tolist() == [4, 1, 4, 4]


def test_round_robin_hands_the_whole_pool_to_one_agent_per_quantum_in_turn() -> None:
    policy = RoundRobinPolicy(PAPER, quantum_s=60.0)
    # The turn-holder asks for as many replicas as the pool holds, capped at its max_replicas.
    turn_replicas = [min(a.max_replicas, PAPER.capacity_gpus // a.tensor_parallel) for a in PAPER.agents]
    assert turn_replicas == [4, 2, 6, 4]
    for time_s, turn in ((0.0, 0), (59.0, 0), (60.0, 1), (150.0, 2), (199.0, 3), (240.0, 0)):
        action = policy.allocate(decoded(PAPER, time_s=[time_s]))[0]
        expected = np.zeros(4)
        expected[turn] = turn_replicas[turn]
        np.testing.assert_array_equal(action, expected, err_msg=f"t = {time_s} s")


def test_round_robin_in_the_environment_serves_one_agent_capped_at_its_max() -> None:
    # 60 s turns: the coordinator (cold start 30 s), retrieval (34 s) and code (44 s) serve part of
    # their turns, then drain or stay kept alive while the next agent starts; reasoning (67 s) never
    # gets ready. Replicas that drain or are kept alive are not the agent's replicas any more.
    config = PAPER.replace(episode_length_s=240.0)
    env = GpuAllocEnv(config)
    policy = RoundRobinPolicy(config, quantum_s=60.0)
    obs, _ = env.reset(seed=0)
    holders = []
    served = np.zeros(4, dtype=bool)
    for _ in range(240):
        obs, _, _, _, info = env.step(policy.predict(obs)[0])
        replicas = info["replicas"]
        assert np.count_nonzero(replicas) == 1
        holder = int(np.argmax(replicas))
        assert replicas[holder] == PAPER.agents[holder].max_replicas  # within the pool: nothing cut
        assert not info["repairs"]["cut_for_capacity"].any()
        served |= env.sim.replicas_in(ACTIVE)[0] > 0
        holders.append(holder)
    assert holders == [0] * 60 + [1] * 60 + [2] * 60 + [3] * 60
    assert served.tolist() == [True, False, True, True]


@pytest.mark.parametrize("value", [0.0, -5.0, float("nan"), float("inf")])
def test_round_robin_rejects_a_bad_quantum(value: float) -> None:
    with pytest.raises(ValueError, match="quantum_s must be a positive number of seconds"):
        RoundRobinPolicy(PAPER, quantum_s=value)


def test_adaptive_scales_idle_agents_to_zero() -> None:
    np.testing.assert_array_equal(AdaptivePolicy(PAPER).allocate(decoded(PAPER)), 0.0)


def test_adaptive_measures_a_replicas_rate_from_the_serving_model() -> None:
    policy = AdaptivePolicy(PAPER)
    rates = policy.replica_rate_rps
    assert rates.shape == (4,) and np.all(rates > 0.0)
    # The 8B coordinator on one GPU sustains more requests per second than the 32B on one GPU.
    assert rates[0] > rates[2]
    # A looser latency objective lets a replica take more concurrent requests: a higher rate.
    assert np.all(AdaptivePolicy(PAPER, latency_slack=3.0).replica_rate_rps >= rates)


def test_adaptive_holds_need_plus_headroom_and_no_more() -> None:
    policy = AdaptivePolicy(PAPER)
    # Code needs 2 replicas: ceil(2 x 1.25) = 3. Retrieval has one request queued and no measured
    # rate: it is active, so it gets one replica. The pool (16 GPUs) would hold far more.
    obs = decoded(PAPER, arrival_rate_rps=arrivals_for(policy, [0, 0, 2.0, 0]), queued=[0, 0, 0, 1])
    np.testing.assert_array_equal(policy.allocate(obs), [[0.0, 0.0, 3.0, 1.0]])
    # Requests in service keep an agent active too.
    running = decoded(PAPER, running=[2, 0, 0, 0])
    np.testing.assert_array_equal(policy.allocate(running), [[1.0, 0.0, 0.0, 0.0]])
    # Queued requests count as need spread over the drain time: 10 x rate queued over 10 s is one
    # replica more, 3 x 1.25 = 3.75, so 4.
    queued = decoded(
        PAPER,
        arrival_rate_rps=arrivals_for(policy, [0, 0, 2.0, 0]),
        queued=[0, 0, 10.0 * policy.replica_rate_rps[2], 0],
    )
    np.testing.assert_array_equal(policy.allocate(queued), [[0.0, 0.0, 4.0, 0.0]])
    lean = AdaptivePolicy(PAPER, headroom=0.0)
    np.testing.assert_array_equal(lean.allocate(obs), [[0.0, 0.0, 2.0, 1.0]])
    # Capped at max_replicas: code needs 100 replicas and holds its 6.
    greedy = decoded(PAPER, arrival_rate_rps=arrivals_for(policy, [0, 0, 100.0, 0]))
    np.testing.assert_array_equal(policy.allocate(greedy), [[0.0, 0.0, 6.0, 0.0]])


def test_adaptive_shares_the_rest_by_priority_times_need_when_short() -> None:
    # Everyone needs 100 replicas, capped at max_replicas [4, 2, 6, 4] = 22 GPUs > 16. First one
    # replica each (1 + 4 + 1 + 1 = 7 GPUs); the other 9 GPUs by priority x need in GPUs, 300 : 800 :
    # 200 : 100, in priority order with caps: coordinator 9 x 3/14 = 1.93, reasoning 7.07 x 8/11 =
    # 5.14 capped at its 4 more, code 3.07 x 2/3 = 2.05, retrieval 1.02. In whole replicas: 2, 2, 3
    # and 2 (15 GPUs); the GPU left goes, in priority order, to the first agent whose share was cut
    # by the rounding: the coordinator.
    policy = AdaptivePolicy(PAPER)
    obs = decoded(PAPER, arrival_rate_rps=arrivals_for(policy, [100.0] * 4))
    alloc = policy.allocate(obs)
    np.testing.assert_array_equal(alloc, [[3.0, 2.0, 3.0, 2.0]])
    assert gpus(PAPER, alloc[0]) == PAPER.capacity_gpus


def test_adaptive_passes_a_capped_agents_excess_on() -> None:
    # The coordinator needs 0.4 replica: capped at ceil(0.4 x 1.25) = 1, so its priority share
    # (highest of all) goes to the others. Minimums 7 GPUs; the 9 left by 800 : 200 : 100 among the
    # specialists: reasoning 6.55 capped at 4, code 5 x 2/3 = 3.33, retrieval 1.67; in replicas
    # 2, 4 and 2 (15 GPUs with the coordinator's), and the last GPU to code, whose share was cut most.
    policy = AdaptivePolicy(PAPER)
    obs = decoded(PAPER, arrival_rate_rps=arrivals_for(policy, [0.4, 100.0, 100.0, 100.0]))
    alloc = policy.allocate(obs)[0]
    np.testing.assert_array_equal(alloc, [1.0, 2.0, 5.0, 2.0])
    assert gpus(PAPER, alloc) == PAPER.capacity_gpus  # nothing the coordinator left goes unused


def test_adaptive_serves_highest_priority_first_replicas_first_when_they_do_not_fit() -> None:
    # 5 GPUs: the coordinator (priority 3) takes its one GPU, reasoning (2, listed first among the
    # priority-2 agents) its 4; code and retrieval get nothing.
    small = PAPER.replace(capacity_gpus=5)
    policy = AdaptivePolicy(small)
    obs = decoded(small, arrival_rate_rps=arrivals_for(policy, [1.0, 1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(policy.allocate(obs), [[1.0, 1.0, 0.0, 0.0]])
    # 4 GPUs: reasoning's first replica no longer fits after the coordinator's, so the 1-GPU agents
    # after it take theirs, and the GPU left goes by priority x need (the coordinator's 3).
    tiny = PAPER.replace(capacity_gpus=4)
    policy = AdaptivePolicy(tiny)
    obs = decoded(tiny, arrival_rate_rps=arrivals_for(policy, [1.0, 1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(policy.allocate(obs), [[2.0, 0.0, 1.0, 1.0]])


@pytest.mark.parametrize(
    ("active", "starting", "expected"), [(0, 0, 3.0), (4, 0, 4.0), (2, 2, 4.0), (6, 0, 5.0), (0, 6, 5.0)]
)
def test_adaptive_hysteresis_keeps_replicas_within_its_band(
    active: int, starting: int, expected: float
) -> None:
    # Need 2 replicas: target ceil(2.5) = 3, band [3, ceil(3 x 1.5) = 5] with hysteresis 0.5. The
    # replicas held count those still in their cold start.
    policy = AdaptivePolicy(PAPER)
    rates = arrivals_for(policy, [0, 0, 2.0, 0])
    obs = decoded(
        PAPER,
        arrival_rate_rps=rates,
        active_replicas=[0, 0, active, 0],
        starting_replicas=[0, 0, starting, 0],
    )
    assert policy.allocate(obs)[0, 2] == expected
    no_band = AdaptivePolicy(PAPER, hysteresis=0.0)
    assert no_band.allocate(obs)[0, 2] == 3.0


def test_adaptive_decision_does_not_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = AdaptivePolicy(fleet(64))
    rates = np.linspace(0.0, 3.0, 64) * policy.replica_rate_rps
    obs = decoded(policy.config, arrival_rate_rps=rates, queued=np.arange(64) % 3)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the adaptive decision must not sort")

    for name in ("sort", "argsort", "lexsort", "partition", "argpartition"):
        monkeypatch.setattr(np, name, forbidden)
    alloc = policy.allocate(obs)
    assert 0.0 < gpus(policy.config, alloc[0]) <= policy.capacity_gpus


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"headroom": -0.1}, "headroom must be a finite number >= 0, got -0.1"),
        ({"drain_time_s": 0.0}, "drain_time_s must be a positive number of seconds, got 0.0"),
        ({"hysteresis": float("nan")}, "hysteresis must be a finite number >= 0, got nan"),
        ({"latency_slack": 0.5}, "latency_slack must be a finite number >= 1, got 0.5"),
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
    # Static holds the whole pool from the start; adaptive starts one replica per agent with work.
    assert results["adaptive"]["allocated_share"] < results["static"]["allocated_share"] == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["static", "round_robin", "adaptive", "provisioned", "provisioned_erlang"])
def test_a_baseline_takes_the_environment_or_its_config(name: str) -> None:
    import gymnasium as gym

    from gpu_alloc_env.baselines import BASELINES

    wrapped = gym.make("GpuAlloc-v1")
    from_env = BASELINES[name](wrapped)
    from_unwrapped = BASELINES[name](wrapped.unwrapped)
    from_config = BASELINES[name](wrapped.unwrapped.config)  # type: ignore[attr-defined]
    obs, _ = wrapped.reset(seed=3)
    for _ in range(5):
        obs, *_ = wrapped.step(from_config.predict(obs)[0])
    for policy in (from_env, from_unwrapped):
        assert policy.config == from_config.config
        assert np.array_equal(policy.predict(obs)[0], from_config.predict(obs)[0])
    with pytest.raises(TypeError, match=r"pass the environment .* or its ScenarioConfig .*got int"):
        BASELINES[name](42)
