"""BatchVecEnv: the batched SB3 vector environment replays GpuAllocEnv exactly."""

from __future__ import annotations

import re

import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecEnv

from gpu_alloc_env import GpuAllocEnv
from gpu_alloc_env.baselines import AdaptivePolicy, ProvisionedPolicy
from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.train.actions import AbsoluteAction, make_action_transform
from gpu_alloc_env.train.vec_env import BatchVecEnv

CONFIG = make_scenario("bursty", episode_length_s=40.0)


@pytest.mark.parametrize("action", ["absolute", "residual", "need_scale"])
def test_batched_environments_replay_single_environments(action: str) -> None:
    transform = make_action_transform(CONFIG, action)
    venv = BatchVecEnv(CONFIG, 3, transform)
    assert isinstance(venv, VecEnv)
    venv.seed(5)
    obs = venv.reset()
    envs = [GpuAllocEnv(CONFIG) for _ in range(3)]
    single = np.stack([env.reset(seed=5 + k)[0] for k, env in enumerate(envs)])
    np.testing.assert_array_equal(obs, single)
    rng = np.random.default_rng(0)
    episodes_ended = 0
    for _ in range(95):  # two whole episodes and part of a third, through the automatic resets
        actions = rng.uniform(-1.0, 1.0, size=(3, 4)).astype(np.float32)
        replicas = transform.to_replicas(actions, single)
        obs, rewards, dones, infos = venv.step(actions)
        steps = [env.step(replicas[k]) for k, env in enumerate(envs)]
        np.testing.assert_allclose(rewards, [s[1] for s in steps], rtol=1e-5)
        single = np.stack([s[0] for s in steps])
        if dones.any():
            assert dones.all()
            episodes_ended += 1
            terminal = np.stack([info["terminal_observation"] for info in infos])
            np.testing.assert_array_equal(terminal, single)
            for k, info in enumerate(infos):
                assert info["TimeLimit.truncated"]
                assert (
                    info["episode_metrics"]["tasks_arrived"]
                    == steps[k][4]["episode_metrics"]["tasks_arrived"]
                )
            single = np.stack([env.reset()[0] for env in envs])
        np.testing.assert_array_equal(obs, single)
    assert episodes_ended == 2


def test_zero_action_of_the_heuristic_parameterisations_is_the_heuristic() -> None:
    config = make_scenario("paper", episode_length_s=60.0)
    policy = AdaptivePolicy(config)
    env = GpuAllocEnv(config)
    obs, _ = env.reset(seed=2)
    for name in ("residual", "need_scale"):
        transform = make_action_transform(config, name)
        np.testing.assert_allclose(
            transform.to_replicas(np.zeros((1, 4)), obs[None]), policy.predict(obs[None])[0]
        )
    for _ in range(60):
        obs, *_ = env.step(policy.predict(obs)[0])
        zero = np.zeros((1, 4))
        for name in ("residual", "need_scale"):
            replicas = make_action_transform(config, name).to_replicas(zero, obs[None])
            np.testing.assert_allclose(replicas, policy.predict(obs[None])[0], atol=1e-6)


def test_residual_over_the_tuned_constant_starts_at_it() -> None:
    bursty = make_scenario("bursty")  # the preset, whose tuned constant the package ships
    transform = make_action_transform(bursty, "residual", residual_scale=0.25, residual_base="provisioned")
    constant = ProvisionedPolicy(bursty).replicas
    obs = np.zeros((2, 13 * 4 + 5), np.float32)
    np.testing.assert_allclose(transform.to_replicas(np.zeros((2, 4)), obs), [constant, constant])
    # One unit of action moves an agent by a quarter of its max_replicas (4, 2, 6, 4).
    np.testing.assert_allclose(
        transform.to_replicas(np.ones((1, 4)), obs[:1]), [constant + np.array([1.0, 0.5, 1.5, 1.0])]
    )
    assert transform.spec() == {"action": "residual", "residual_scale": 0.25, "residual_base": "provisioned"}
    with pytest.raises(
        ValueError, match=r"residual_base must be one of \['adaptive', 'provisioned'\], got 'kpa'"
    ):
        make_action_transform(bursty, "residual", residual_base="kpa")


def test_absolute_action_spans_zero_to_max_replicas() -> None:
    transform = AbsoluteAction(CONFIG)
    obs = np.zeros((1, 13 * 4 + 5), np.float32)
    max_replicas = [[4.0, 2.0, 6.0, 4.0]]
    np.testing.assert_allclose(transform.to_replicas(-np.ones((1, 4)), obs), 0.0)
    np.testing.assert_allclose(transform.to_replicas(np.zeros((1, 4)), obs), np.multiply(max_replicas, 0.5))
    np.testing.assert_allclose(transform.to_replicas(np.ones((1, 4)), obs), max_replicas)
    np.testing.assert_allclose(transform.to_replicas(np.full((1, 4), 7.0), obs), max_replicas)


def test_bad_actions_and_options_raise_clearly() -> None:
    venv = BatchVecEnv(CONFIG, 2, AbsoluteAction(CONFIG))
    venv.reset()
    for wrong in (np.zeros((2, 3)), np.zeros((4, 2)), np.zeros(8)):  # transposed or flat: not guessed
        with pytest.raises(
            ValueError, match=rf"finite with shape \(2, 4\) .*got shape {re.escape(str(wrong.shape))}"
        ):
            venv.step(wrong.astype(np.float32))
    with pytest.raises(ValueError, match="finite"):
        venv.step(np.full((2, 4), np.nan, np.float32))
    with pytest.raises(
        ValueError, match=r"takes options \['residual_scale', 'residual_base'\], got \['scale'\]"
    ):
        make_action_transform(CONFIG, "residual", scale=0.5)
    with pytest.raises(ValueError, match=r"max_need_factor must be > 1, got 0\.5"):
        make_action_transform(CONFIG, "need_scale", max_need_factor=0.5)
