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


def assert_same(native: Any, sync: Any, where: str = "info") -> None:
    """Equal vector infos (or observations): same keys, masks and values, recursively."""
    if isinstance(sync, dict):
        assert isinstance(native, dict) and sorted(native) == sorted(sync), (
            where,
            sorted(native),
            sorted(sync),
        )
        for key in sync:
            assert_same(native[key], sync[key], f"{where}[{key!r}]")
    elif isinstance(sync, np.ndarray) and sync.dtype == object:
        assert native.shape == sync.shape, where
        for a, b in zip(native, sync, strict=True):
            assert (a is None) == (b is None), where
            if b is not None:
                np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        np.testing.assert_array_equal(native, sync, err_msg=where)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_the_vector_env_is_sync_vector_env_over_gym_make(mode: AutoresetMode) -> None:
    """Observations, rewards, truncations and every info key and mask, through staggered resets."""
    kwargs = {"num_envs": B, "episode_length_s": 12.0}
    native = gym.make_vec("GpuAllocBursty-v1", autoreset_mode=mode, **kwargs)
    sync = gym.make_vec(
        "GpuAllocBursty-v1", vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode}, **kwargs
    )
    rng = np.random.default_rng(0)
    ends = 0
    for envs in (native, sync):
        envs.reset(seed=5)
    for step in range(40):
        if step == 4:  # stagger: environment 1 starts its episode again
            mask = {"reset_mask": np.array([False, True, False])}
            results = [envs.reset(options=mask) for envs in (native, sync)]
        else:
            actions = rng.uniform(0.0, 4.0, size=(B, 4)).astype(np.float32)
            results = [envs.step(actions) for envs in (native, sync)]
            ends += int(results[1][3].any())
        for a, b in zip(results[0], results[1], strict=True):
            assert_same(a, b, f"step {step}")
    assert ends >= 4
    assert native.unwrapped.np_random_seed == 5


def test_next_step_ignores_the_action_of_an_environment_being_reset() -> None:
    venv = GpuAllocVectorEnv(2, "bursty", episode_length_s=2.0)
    venv.reset(seed=0)
    actions = np.ones((2, 4))
    for _ in range(2):
        *_, truncated, _ = venv.step(actions)
    assert truncated.all()
    actions[0, 0] = np.nan
    _, rewards, _, truncated, info = venv.step(actions)  # both only reset: NaN is never used
    assert rewards.tolist() == [0.0, 0.0] and not truncated.any() and info["_time_s"].all()
    with pytest.raises(ValueError, match=r"NaN or infinity \(first at index \(0, 0\)"):
        venv.step(actions)


def test_max_episode_steps_truncates_as_time_limit_would() -> None:
    native = gym.make_vec("GpuAllocBursty-v1", num_envs=2, max_episode_steps=3)
    single = gym.make("GpuAllocBursty-v1", max_episode_steps=3)
    obs, _ = native.reset(seed=2)
    first, _ = single.reset(seed=2)
    np.testing.assert_array_equal(obs[0], first)
    for step in range(3):
        obs, rewards, _, truncated, info = native.step(np.full((2, 4), 2.0))
        expected, reward, _, ended, _ = single.step(np.full(4, 2.0))
        np.testing.assert_array_equal(obs[0], expected)
        assert rewards[0] == reward and truncated[0] == ended == (step == 2)
    assert info["_episode_metrics"].all()
    with pytest.raises(ValueError, match="max_episode_steps must be a positive int"):
        GpuAllocVectorEnv(2, "paper", max_episode_steps=0)


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
    def after_steps(seed: int | list[int | None]) -> np.ndarray:
        venv = GpuAllocVectorEnv(2, "paper")
        venv.reset(seed=seed)
        for _ in range(30):
            obs, *_ = venv.step(np.full((2, 4), 2.0))
        return obs

    by_list, by_int = after_steps([11, 12]), after_steps(11)
    np.testing.assert_array_equal(by_list, by_int)  # an int seed gives environment k seed + k
    assert not np.array_equal(by_list[0], by_list[1])  # different seeds, different workloads
    np.testing.assert_array_equal(after_steps([11, 99])[0], by_int[0])
    venv = GpuAllocVectorEnv(2, "paper")
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
    with pytest.raises(ValueError, match=r"NaN or infinity \(first at index \(0, 1\), 1 in all\)"):
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
