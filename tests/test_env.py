"""The Gymnasium adapter: registration, both env checkers, seeding, bad actions, info and episode end."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.evaluation import evaluate_policy

import gpu_alloc_env
from gpu_alloc_env import ENV_IDS, GpuAllocEnv
from gpu_alloc_env.baselines import make_baseline
from gpu_alloc_env.config import ConfigError
from gpu_alloc_env.core.reward import REWARD_COMPONENTS
from gpu_alloc_env.scenarios import make_scenario

SHORT = {"episode_length_s": 30.0}

# Both checkers recommend a normalised Box action space; this environment's actions are replica
# counts in [0, max_replicas] on purpose (policies speak replicas; training maps [-1, 1] onto them).
# That recommendation is the only warning either checker may give.
EXPECTED_WARNING = "symmetric and normalized"
# The code trace has stretches of 173.5 s (training part) and 217.2 s (held-out part) without
# requests; the short test episodes (SHORT) can fall inside them, and the simulator warns of that.
EXPECTED_GAP_WARNING = "bundled trace 'code' has no request for"


def unexpected_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    expected = (EXPECTED_WARNING, EXPECTED_GAP_WARNING)
    return [str(w.message) for w in caught if not any(text in str(w.message) for text in expected)]


@pytest.mark.parametrize("env_id", list(ENV_IDS))
def test_gymnasium_env_checker_passes(env_id: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(env_id, render_mode="rgb_array", **SHORT)
        gym_check_env(env.unwrapped, skip_render_check=False)
    assert unexpected_warnings(caught) == []


@pytest.mark.parametrize("env_id", list(ENV_IDS))
def test_stable_baselines3_env_checker_passes(env_id: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(env_id, **SHORT)
        sb3_check_env(env, warn=True)
    assert unexpected_warnings(caught) == []


def test_registered_ids_build_their_presets_and_take_overrides() -> None:
    for env_id, preset in ENV_IDS.items():
        env = gym.make(env_id)
        assert isinstance(env.unwrapped, GpuAllocEnv)
        assert env.unwrapped.config.name == make_scenario(preset).name
    env = gym.make("GpuAlloc-v1", capacity_gpus=16, workload={"task_rate_tps": 4.0})
    config = env.unwrapped.config  # type: ignore[attr-defined]
    assert config.capacity_gpus == 16.0 and config.workload.task_rate_tps == 4.0
    assert env.action_space.shape == (config.num_agents,)
    assert gpu_alloc_env.__version__


def rollout(env: gym.Env, seed: int, actions: np.ndarray) -> list[tuple[np.ndarray, float, dict]]:
    obs, _ = env.reset(seed=seed)
    out = [(obs, 0.0, {})]
    for action in actions:
        obs, reward, _, truncated, info = env.step(action)
        out.append((obs, float(reward), info))
        if truncated:
            break
    return out


def test_same_seed_same_trajectory_and_other_seeds_differ() -> None:
    env = gym.make("GpuAllocBursty-v1", **SHORT)
    actions = np.random.default_rng(0).uniform(0.0, 5.0, size=(30, 4)).astype(np.float32)
    first = rollout(env, 42, actions)
    second = rollout(gym.make("GpuAllocBursty-v1", **SHORT), 42, actions)
    third = rollout(env, 43, actions)
    for (o1, r1, i1), (o2, r2, i2) in zip(first, second, strict=True):
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2
        assert i1.get("metrics", {}).get("tasks_arrived") == i2.get("metrics", {}).get("tasks_arrived")
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, third, strict=True))


def test_reset_without_seed_continues_the_generator() -> None:
    env = gym.make("GpuAlloc-v1", **SHORT)
    actions = np.full((30, 4), 3.0, dtype=np.float32)
    rollout(env, 5, actions)
    again = rollout(env, None, actions)  # type: ignore[arg-type]
    fresh = rollout(gym.make("GpuAlloc-v1", **SHORT), 5, actions)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(again, fresh, strict=True))


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (np.zeros(3, np.float32), r"shape \(3,\), expected \(4,\)"),
        (np.zeros((1, 4), np.float32), r"shape \(1, 4\), expected \(4,\)"),
        (np.array([1.0, np.nan, 1.0, 1.0], np.float32), r"NaN or infinity.*finite replica counts"),
        (np.array([1.0, 1.0, np.inf, 1.0], np.float32), r"\[1\.0, 1\.0, inf, 1\.0\]"),
        (np.array(["1", "2", "3", "1"]), r"dtype <U1; pass real replica counts"),
        (np.array([True, False, True, True]), r"dtype bool; pass real replica counts"),
        (np.array([1 + 1j, 1, 1, 1]), r"dtype complex128; pass real replica counts"),
    ],
)
def test_bad_action_raises_naming_the_value(action: np.ndarray, message: str) -> None:
    env = GpuAllocEnv("paper", **SHORT)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)


def test_info_keeps_the_requested_action_when_the_caller_reuses_its_array() -> None:
    env = GpuAllocEnv("paper", **SHORT)
    env.reset(seed=0)
    action = np.array([1.0, 2.0, 1.0, 1.0])
    info = env.step(action)[4]
    action[:] = 99.0
    np.testing.assert_array_equal(info["requested_replicas"], [1.0, 2.0, 1.0, 1.0])
    np.testing.assert_array_equal(info["replicas"], [1, 2, 1, 1])


def test_pool_smaller_than_an_agents_max_keeps_observations_in_the_space() -> None:
    # paper's reasoning agent may hold 8 GPUs and code 6; a pool of 4 caps what any agent can hold.
    env = gym.make("GpuAlloc-v1", capacity_gpus=4.0, **SHORT).unwrapped
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    for _ in range(10):
        obs, *_ = env.step(env.action_space.high)
        assert env.observation_space.contains(obs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env)
    assert unexpected_warnings(caught) == []


def test_step_before_reset_raises() -> None:
    env = GpuAllocEnv("paper", **SHORT)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(4, np.float32))


def test_info_reports_repairs_components_and_episode_metrics() -> None:
    env = GpuAllocEnv("paper", episode_length_s=20.0)
    env.reset(seed=1)
    price = env.config.deployment.price_per_gpu_s
    # Coordinator asks -1 (clipped to 0), reasoning 100 (capped at its 2 replicas of 4 GPUs), code
    # 0.3 (rounded to 0), retrieval 2 (feasible): 8 + 2 = 10 of the 16 GPUs.
    _, reward, terminated, truncated, info = env.step(np.array([-1.0, 100.0, 0.3, 2.0], np.float32))
    assert not terminated and not truncated
    np.testing.assert_array_equal(info["replicas"], [0, 2, 0, 2])
    np.testing.assert_allclose(info["requested_replicas"], [-1.0, 100.0, 0.3, 2.0], rtol=1e-6)
    assert info["repairs"]["clipped_negative"].tolist() == [True, False, False, False]
    assert info["repairs"]["clipped_above_max"].tolist() == [False, True, False, False]
    assert info["repairs"]["rounded_to_integer"].tolist() == [False, False, True, False]
    assert info["repairs"]["cut_for_capacity"].tolist() == [False, False, False, False]
    assert info["action_repair_replicas"] == pytest.approx(1.0 + 98.0 + 0.3, rel=1e-6)
    assert set(info["reward_components"]) == set(REWARD_COMPONENTS)
    assert reward == pytest.approx(sum(info["reward_components"].values()))
    # Cost component: 10 GPUs of a 16-GPU pool for one interval (billed per second, while starting).
    assert info["reward_components"]["cost"] == pytest.approx(-10.0 / 16.0)
    assert info["metrics"]["cost_usd"] == pytest.approx(10.0 * price)
    assert info["metrics"]["cold_starts"] == 4
    first = info["metrics"]
    # Asking for 4 + 2 x 4 + 6 + 4 = 22 GPUs: reasoning keeps its 2 replicas and retrieval its 2 (6
    # GPUs free); the coordinator and code, with none, get a first replica each (priority order),
    # then one more at a time in priority order while GPUs are free: coordinator, code, retrieval,
    # coordinator. The rest is cut.
    _, _, _, _, info = env.step(np.array([4.0, 2.0, 6.0, 4.0], np.float32))
    np.testing.assert_array_equal(info["replicas"], [3, 2, 2, 3])
    assert info["repairs"]["cut_for_capacity"].tolist() == [True, False, True, True]
    assert not info["repairs"]["clipped_above_max"].any() and not info["repairs"]["rounded_to_integer"].any()
    assert info["action_repair_replicas"] == pytest.approx(1.0 + 0.0 + 4.0 + 1.0)
    assert info["metrics"]["cold_starts"] == 6
    assert info["metrics"]["cost_usd"] == pytest.approx(16.0 * price)
    steps = 2
    totals = {key: first[key] + info["metrics"][key] for key in ("tasks_arrived", "cost_usd")}
    while True:
        _, _, terminated, truncated, info = env.step(np.array([1.0, 1.0, 2.0, 1.0], np.float32))
        steps += 1
        totals["tasks_arrived"] += info["metrics"]["tasks_arrived"]
        totals["cost_usd"] += info["metrics"]["cost_usd"]
        assert "episode_metrics" in info or not truncated
        if truncated:
            break
        assert all(np.isfinite(v) for v in info["metrics"].values() if np.isscalar(v))
    assert not terminated and steps == 20
    final = info["episode_metrics"]
    assert final["tasks_arrived"] == totals["tasks_arrived"]
    assert final["cost_usd"] == pytest.approx(totals["cost_usd"])
    assert final["tasks_arrived"] == final["tasks_completed"] + final["tasks_in_flight"]
    assert final["cold_starts"] == 4 + 6  # the scale-downs of the third step started nothing
    assert final["action_repair_replicas"] == pytest.approx(99.3 + 6.0, rel=1e-6)  # the rest were feasible
    assert final["elapsed_s"] == pytest.approx(20.0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(4, np.float32))


def test_reward_weights_scale_their_components() -> None:
    action = np.array([1.0, 4.0, 2.0, 1.0], np.float32)
    base = GpuAllocEnv("paper", **SHORT)
    doubled = GpuAllocEnv("paper", reward={"delay_usd_per_task_s": 0.001, "cost_weight": 0.0}, **SHORT)
    base.reset(seed=3)
    doubled.reset(seed=3)
    for _ in range(10):
        _, _, _, _, a = base.step(action)
        _, _, _, _, b = doubled.step(action)
    assert b["reward_components"]["cost"] == 0.0
    assert b["reward_components"]["delay"] == pytest.approx(2.0 * a["reward_components"]["delay"])
    assert a["reward_components"]["delay"] < 0.0


@pytest.mark.parametrize("name", ["paper", "bursty", "diurnal"])
def test_the_goodput_term_at_its_default_weight_leaves_the_reward_as_it_was(name: str) -> None:
    # The reward before the goodput term: cost + delay + slo, summed in that order.
    env = GpuAllocEnv(name, episode_length_s=120.0)
    env.reset(seed=4)
    misses = 0
    for k in range(120):
        _, reward, _, _, info = env.step(np.array([3.0, 2.0, 3.0, 2.0 - (k // 60)], np.float32))
        parts = info["reward_components"]
        assert parts["goodput"] == 0.0
        assert reward == 0.0 + parts["cost"] + parts["delay"] + parts["slo"]  # bit for bit
        misses += info["metrics"]["goodput_misses"]
    assert misses > 0  # counted (and reported) whatever the weight


def test_the_goodput_weight_prices_each_request_outside_goodput() -> None:
    action = np.array([1.0, 1.0, 1.0, 1.0], np.float32)
    base = GpuAllocEnv("paper", episode_length_s=90.0)
    priced = GpuAllocEnv("paper", reward={"goodput_miss_usd": 0.05}, episode_length_s=90.0)
    base.reset(seed=3)
    priced.reset(seed=3)
    scale = base.config.reward_scale_usd
    charged = 0
    for _ in range(90):
        _, r0, _, _, a = base.step(action)
        _, r1, _, _, b = priced.step(action)
        misses = b["metrics"]["goodput_misses"]
        charged += misses
        assert a["metrics"]["goodput_misses"] == misses
        assert b["reward_components"]["goodput"] == pytest.approx(-0.05 * misses / scale)
        assert r1 == pytest.approx(r0 - 0.05 * misses / scale)
    assert charged > 0


@pytest.mark.parametrize("name", ["static", "round_robin", "adaptive"])
def test_stable_baselines3_evaluate_policy_scores_a_baseline(name: str) -> None:
    env = gym.make("GpuAlloc-v1", **SHORT)
    policy = make_baseline(name, env.unwrapped.config)  # type: ignore[attr-defined]
    mean, std = evaluate_policy(policy, env, n_eval_episodes=2, warn=False)  # type: ignore[arg-type]
    assert np.isfinite(mean) and mean < 0.0 and std >= 0.0


def test_constructor_rejects_bad_scenario_and_render_mode() -> None:
    with pytest.raises(ValueError, match="render_mode='human'"):
        GpuAllocEnv(render_mode="human")
    with pytest.raises(ValueError, match="unknown"):
        GpuAllocEnv("no-such-scenario")
    with pytest.raises(TypeError, match="preset name or a ScenarioConfig"):
        GpuAllocEnv(42)  # type: ignore[arg-type]


def test_fleet_is_registered_with_its_number_of_agents() -> None:
    env = gym.make("GpuAllocFleet-v1", num_agents=10)
    config = env.unwrapped.config  # type: ignore[attr-defined]
    assert (config.name, config.num_agents) == ("fleet10", 10)
    obs, _ = env.reset(seed=0)
    assert env.action_space.shape == (10,) and env.observation_space.contains(obs)
    assert gym.make("GpuAllocFleet-v1").unwrapped.config.num_agents == 64  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"num_agents"):
        gym.make("GpuAlloc-v1", num_agents=10)
