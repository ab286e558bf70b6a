"""The native vector environment: gym.make_vec works, and B environments replay B single ones."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from gpu_alloc_env import ENV_IDS, GpuAllocVectorEnv
from gpu_alloc_env.core.simulator import BatchSimulator
from gpu_alloc_env.scenarios import make_scenario

SHORT = {"episode_length_s": 40.0}
B = 3


def _singles(seed: int, env_id: str = "GpuAllocBursty-v1") -> tuple[list[gym.Env[Any, Any]], np.ndarray]:
    envs = [gym.make(env_id, **SHORT) for _ in range(B)]
    first = np.stack([env.reset(seed=seed + k)[0] for k, env in enumerate(envs)])
    return envs, first


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_every_id_has_a_vector_entry_point(env_id: str) -> None:
    venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    assert isinstance(venv.unwrapped, GpuAllocVectorEnv)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (2, *venv.unwrapped.single_observation_space.shape)
    assert venv.observation_space.contains(obs)
    obs, rewards, terminated, truncated, _ = venv.step(venv.action_space.sample())
    assert obs.dtype == np.float32 and rewards.shape == (2,)
    assert not terminated.any() and not truncated.any()


def test_next_step_autoreset_replays_single_environments() -> None:
    venv = gym.make_vec("GpuAllocBursty-v1", num_envs=B, **SHORT)
    obs, _ = venv.reset(seed=5)
    envs, single = _singles(5)
    np.testing.assert_array_equal(obs, single)
    rng = np.random.default_rng(0)
    reset_next = np.zeros(B, dtype=bool)
    ends = 0
    for _ in range(125):  # three episodes of 40 steps, each followed by the step that resets
        actions = rng.uniform(0.0, 4.0, size=(B, 4)).astype(np.float32)
        obs, rewards, terminated, truncated, info = venv.step(actions)
        for k, env in enumerate(envs):
            if reset_next[k]:
                expected, reward, ended = env.reset()[0], 0.0, False
            else:
                expected, reward, _, ended, _ = env.step(actions[k])
            np.testing.assert_array_equal(obs[k], expected)
            assert rewards[k] == reward and truncated[k] == ended
        assert not terminated.any()
        if truncated.any():
            ends += 1
            assert info["_episode_metrics"].all()
            assert info["episode_metrics"][0]["tasks_arrived"] > 0
        reset_next = truncated
    assert ends == 3


def test_same_step_autoreset_keeps_the_final_observation() -> None:
    venv = gym.make_vec("GpuAllocBursty-v1", num_envs=B, autoreset_mode=AutoresetMode.SAME_STEP, **SHORT)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    obs, _ = venv.reset(seed=9)
    envs, single = _singles(9)
    actions = np.tile(np.array([2.0, 2.0, 1.0, 1.0], dtype=np.float32), (B, 1))
    for step in range(50):
        obs, rewards, _, truncated, info = venv.step(actions)
        results = [env.step(actions[k]) for k, env in enumerate(envs)]
        np.testing.assert_array_equal(rewards, [r[1] for r in results])
        if truncated.any():
            assert step == 39 and truncated.all()
            np.testing.assert_array_equal(np.stack(info["final_obs"]), np.stack([r[0] for r in results]))
            assert info["_final_info"].all() and "reward_components" in info["final_info"]
            single = np.stack([env.reset()[0] for env in envs])
            np.testing.assert_array_equal(obs, single)
        else:
            np.testing.assert_array_equal(obs, np.stack([r[0] for r in results]))
    assert (venv.unwrapped.sim.time_s == 10.0).all()


def test_disabled_autoreset_waits_for_a_masked_reset() -> None:
    venv = GpuAllocVectorEnv(2, "bursty", autoreset_mode="Disabled", **SHORT)
    venv.reset(seed=[3, 4])
    actions = np.ones((2, 4))
    for _ in range(40):
        *_, truncated, _ = venv.step(actions)
    assert truncated.all()
    with pytest.raises(RuntimeError, match="reset_mask"):
        venv.step(actions)
    _, info = venv.reset(options={"reset_mask": np.array([True, False])})
    assert info["_time_s"].tolist() == [True, False]
    assert venv.sim.time_s.tolist() == [0.0, 40.0]
    with pytest.raises(RuntimeError, match="reset_mask"):
        venv.step(actions)


def test_record_episode_statistics_sums_the_single_environment_rewards() -> None:
    venv = RecordEpisodeStatistics(gym.make_vec("GpuAllocBursty-v1", num_envs=B, **SHORT))
    venv.reset(seed=1)
    envs, _ = _singles(1)
    actions = np.full((B, 4), 2.0, dtype=np.float32)
    returns = np.zeros(B)
    for _ in range(40):
        _, _, _, truncated, info = venv.step(actions)
        returns += [env.step(actions[k])[1] for k, env in enumerate(envs)]
    assert truncated.all() and info["_episode"].all()
    np.testing.assert_allclose(info["episode"]["r"], returns, rtol=1e-12)
    assert info["episode"]["l"].tolist() == [40] * B


def test_seeds_and_resets_without_seed() -> None:
    venv = GpuAllocVectorEnv(2, "paper")
    a, _ = venv.reset(seed=[11, None])
    b, _ = venv.reset(seed=11)
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="3 seeds for 2 environments"):
        venv.reset(seed=[1, 2, 3])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_envs": 0}, "num_envs must be a positive int"),
        ({"num_envs": 2, "autoreset_mode": "sometimes"}, "autoreset_mode='sometimes'"),
        ({"num_envs": 2, "render_mode": "rgb_array"}, "render_mode='rgb_array'"),
    ],
)
def test_bad_construction_is_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GpuAllocVectorEnv(**kwargs)


def test_bad_actions_are_named() -> None:
    venv = GpuAllocVectorEnv(2, "paper")
    with pytest.raises(RuntimeError, match="reset"):
        venv.step(np.ones((2, 4)))
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected \(2, 4\)"):
        venv.step(np.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        venv.step(np.array([[1.0, np.nan, 1.0, 1.0], [1.0] * 4]))
    with pytest.raises(ValueError, match="dtype"):
        venv.step(np.array([["a"] * 4] * 2))


def test_ansi_render_is_one_table_per_environment() -> None:
    venv = GpuAllocVectorEnv(2, "paper", render_mode="ansi")
    venv.reset(seed=0)
    frames = venv.render()
    assert frames is not None and len(frames) == 2 and all("coordinator" in f for f in frames)


def test_inactive_environments_stand_still() -> None:
    config = make_scenario("paper", episode_length_s=30.0)
    both, alone = BatchSimulator(config, 2), BatchSimulator(config, 1)
    for sim in (both, alone):
        for env in range(sim.batch_size):
            sim.reset_env(env, np.random.default_rng(env))
    desired = np.array([[2.0, 1.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    for _ in range(5):
        stats = both.step(desired, active=np.array([False, True]))
        assert stats.cost_usd[0] == 0.0 and stats.tasks_arrived[0] == 0
    assert both.time_s.tolist() == [0.0, 5.0] and both.state.env["n_tasks"][0] == 0
    # Environment 0 starts late but, drawing from its own generator, runs as it would alone.
    for _ in range(10):
        stats = both.step(desired)
        expected = alone.step(desired[:1])
        assert stats.tasks_arrived[0] == expected.tasks_arrived[0]
        assert stats.tasks_completed[0] == expected.tasks_completed[0]
        assert stats.cost_usd[0] == expected.cost_usd[0]
    np.testing.assert_array_equal(both.view().queued[0], alone.view().queued[0])
