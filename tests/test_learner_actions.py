"""The learner's discrete offset action, its paired reward and held decisions (action repeat)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

from gpu_alloc_env.baselines.provisioned import ProvisionedPolicy
from gpu_alloc_env.env import GpuAllocEnv
from gpu_alloc_env.errors import TrainError
from gpu_alloc_env.evaluation import run_episode
from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.train.actions import OffsetAction, make_action_transform
from gpu_alloc_env.train.learned import LearnedPolicy, load_run_config
from gpu_alloc_env.train.ppo import train
from gpu_alloc_env.train.run_folder import TrainArgs
from gpu_alloc_env.train.stepper import PolicyStepper, env_settings, make_reward_baseline
from gpu_alloc_env.train.vec_env import BatchVecEnv
from gpu_alloc_env.vector import GpuAllocVectorEnv

SHORT = {"episode_length_s": 20.0}
BASE = [2.0, 1.0, 2.0, 1.0]


def short_config(name: str = "diurnal"):  # type: ignore[no-untyped-def]
    return make_scenario(name, **SHORT)


def test_offset_action_is_discrete_and_adds_whole_replicas_to_the_constant() -> None:
    config = short_config()
    offset = make_action_transform(config, "offset", min_offset=-2, max_offset=2, offset_base=BASE)
    assert isinstance(offset, OffsetAction)
    assert offset.action_space() == spaces.MultiDiscrete([5, 5, 5, 5])
    obs = np.zeros((2, 57), np.float32)
    np.testing.assert_array_equal(
        offset.to_replicas(np.array([[2, 2, 2, 2], [0, 4, 3, 1]]), obs), [BASE, [0.0, 3.0, 3.0, 0.0]]
    )
    assert offset.spec() == {"action": "offset", "min_offset": -2, "max_offset": 2, "offset_base": BASE}
    with pytest.raises(ValueError, match=r"whole numbers in 0\.\.4"):
        offset.to_replicas(np.array([[5, 2, 2, 2]]), obs[:1])
    with pytest.raises(ValueError, match="both 0"):
        OffsetAction(config, min_offset=0, max_offset=0, offset_base=BASE)


def test_offset_action_reads_the_tuned_constant_of_a_tuned_scenario() -> None:
    config = make_scenario("diurnal")
    offset = OffsetAction(config)
    np.testing.assert_array_equal(offset.base_replicas, ProvisionedPolicy(config).replicas)


def paired_env(num_envs: int, action_repeat: int = 1) -> BatchVecEnv:
    config = short_config()
    transform = make_action_transform(config, "offset", offset_base=BASE)
    baseline = make_reward_baseline(config, "provisioned", {"offset_base": BASE})
    return BatchVecEnv(config, num_envs, transform, reward_baseline=baseline, action_repeat=action_repeat)


def test_paired_reward_of_the_baseline_itself_is_zero_through_automatic_resets() -> None:
    env = paired_env(3)
    env.seed(11)
    env.reset()
    ends = 0
    for _ in range(50):  # 2.5 episodes of 20 steps
        _, rewards, done, infos = env.step(np.ones((3, 4), dtype=np.int64))
        np.testing.assert_array_equal(rewards, 0.0)
        ends += int(done.sum())
        for env_index in np.flatnonzero(done):
            assert infos[env_index]["episode_metrics"]["tasks_arrived"] > 0
    assert ends == 6


def test_paired_reward_is_the_policys_reward_minus_the_baseline_on_the_same_seeds() -> None:
    env = paired_env(2)
    env.seed(5)
    env.reset()
    config = short_config()
    mine = GpuAllocVectorEnv(2, config)
    theirs = GpuAllocVectorEnv(2, config)
    mine.reset(seed=[5, 6])
    theirs.reset(seed=[5, 6])
    rng = np.random.default_rng(0)
    for _ in range(20):
        action = rng.integers(0, 3, size=(2, 4))
        _, paired, _, _ = env.step(action)
        _, own, *_ = mine.step(np.asarray(BASE) + action - 1)
        _, base, *_ = theirs.step(np.tile(BASE, (2, 1)))
        np.testing.assert_allclose(paired, (own - base).astype(np.float32), rtol=1e-6, atol=1e-6)


def test_action_repeat_holds_an_action_and_sums_its_rewards() -> None:
    config = short_config()
    transform = make_action_transform(config, "offset", offset_base=BASE)
    env = BatchVecEnv(config, 2, transform, action_repeat=5)
    env.seed(7)
    env.reset()
    plain = GpuAllocVectorEnv(2, config)
    plain.reset(seed=[7, 8])
    rng = np.random.default_rng(1)
    for step in range(4):  # one episode: 4 decisions of 5 intervals
        action = rng.integers(0, 3, size=(2, 4))
        obs, reward, done, infos = env.step(action)
        total = np.zeros(2)
        for _ in range(5):
            plain_obs, plain_reward, _, truncated, info = plain.step(np.asarray(BASE) + action - 1)
            total += plain_reward
        np.testing.assert_allclose(reward, total.astype(np.float32), rtol=1e-6)
        assert done.all() == (step == 3) == truncated.all()
        if not done.any():
            np.testing.assert_array_equal(obs, plain_obs)
    assert infos[0]["episode_metrics"]["cost_usd"] == info["episode_metrics"]["cost_usd"][0]
    with pytest.raises(ValueError, match=r"action_repeat=3 does not divide the episode's 20"):
        BatchVecEnv(config, 2, transform, action_repeat=3)


def test_an_unknown_reward_baseline_fails_clearly() -> None:
    with pytest.raises(TrainError, match="reward_baseline must be one of"):
        make_reward_baseline(short_config(), "oracle")


HELD_HP = {
    "n_envs": 2,
    "n_steps": 16,
    "batch_size": 32,
    "n_epochs": 1,
    "eval_freq_steps": 32,
    "eval_episodes": 2,
    "net_arch": [8],
    "action": "offset",
    "offset_base": BASE,
    "reward_baseline": "provisioned",
    "action_repeat": 4,
}


@pytest.fixture(scope="module")
def held_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    args = TrainArgs(
        scenario="diurnal",
        seed=2,
        timesteps=64,
        run_dir=str(tmp_path_factory.mktemp("runs") / "held"),
        hp_overrides=HELD_HP,
        scenario_overrides=dict(SHORT),
        checkpoint_interval_s=0.0,
    )
    return train(args, progress_bar=False)


class CountingModel:
    """Stands in for a run's model: its n-th decision is offset n mod 3 for every agent."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        self.calls += 1
        return np.full((obs.shape[0], 4), self.calls % 3), None


def test_a_run_with_action_repeat_holds_its_decisions_in_evaluation(held_run: Path) -> None:
    policy = LearnedPolicy(held_run)
    assert policy.action_repeat == 4
    policy.model = CountingModel()  # type: ignore[assignment]
    env = GpuAllocEnv(short_config())
    obs, _ = env.reset(seed=3)
    state = None
    requested, total = [], 0.0
    for step in range(20):
        replicas, state = policy.predict(obs, state=state, episode_start=np.array([step == 0]))
        requested.append(replicas)
        obs, reward, *_ = env.step(replicas)
        total += float(reward)
    assert policy.model.calls == 5  # one decision per 4 intervals
    for step, replicas in enumerate(requested):
        np.testing.assert_array_equal(replicas, np.asarray(BASE) + (step // 4 + 1) % 3 - 1)
    # A new episode decides afresh, whatever was left of the last decision.
    _, (_, left) = policy.predict(obs, state=state, episode_start=np.array([True]))
    assert left.tolist() == [3] and policy.model.calls == 6
    # The evaluation harness passes the state back, so it scores the same held decisions.
    policy.model = CountingModel()  # type: ignore[assignment]
    result = run_episode(GpuAllocEnv(short_config()), policy, seed=3, name="held")
    assert result.episode_return == pytest.approx(total, rel=1e-12) and policy.model.calls == 5


@pytest.fixture(scope="module")
def stacked_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``held_run``'s settings with the last 3 decisions' observations stacked."""
    args = TrainArgs(
        scenario="diurnal",
        seed=2,
        timesteps=64,
        run_dir=str(tmp_path_factory.mktemp("runs") / "stacked"),
        hp_overrides={**HELD_HP, "frame_stack": 3},
        scenario_overrides=dict(SHORT),
        checkpoint_interval_s=0.0,
    )
    return train(args, progress_bar=False)


class RecordingModel:
    """Wraps a run's model, recording what it is asked to act on and what it answers."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.seen: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        action, _ = self.model.predict(obs, deterministic=deterministic)
        self.seen.append(np.array(obs, copy=True))
        self.actions.append(np.asarray(action).copy())
        return action, None


def test_a_stacked_run_acts_in_evaluation_on_the_observations_it_trained_on(stacked_run: Path) -> None:
    policy = LearnedPolicy(stacked_run)
    assert (policy.frame_stack, policy.action_repeat) == (3, 4)
    assert policy.model.observation_space.shape == (3 * 57,)
    recorder = RecordingModel(policy.model)
    policy.model = recorder  # type: ignore[assignment]
    env = GpuAllocEnv(policy.config)
    state = None
    seeds = (3, 4)
    for seed in seeds:  # the state carried into the second episode, whose start begins a new history
        obs, _ = env.reset(seed=seed)
        for step in range(20):
            replicas, state = policy.predict(obs, state=state, episode_start=np.array([step == 0]))
            obs, *_ = env.step(replicas)
    assert len(recorder.seen) == 2 * 5  # one decision per 4 intervals
    # The training environments' stepper, on the same seeds with the same decisions, stacks the same.
    hp = load_run_config(stacked_run)["hyperparams"]
    settings = env_settings(policy.config, hp)
    for episode, seed in enumerate(seeds):
        stepper = PolicyStepper(
            settings.scenario,
            1,
            settings.transform,
            settings.reward_baseline,
            settings.action_repeat,
            settings.frame_stack,
        )
        stacked = stepper.reset([seed])
        for decision in range(5):
            np.testing.assert_array_equal(recorder.seen[5 * episode + decision], stacked)
            stacked, *_ = stepper.step(recorder.actions[5 * episode + decision].reshape(1, -1))
    first = recorder.seen[5]  # the second episode's first decision sees its first observation 3 times
    np.testing.assert_array_equal(first, np.tile(first[:, :57], (1, 3)))


def test_a_stacked_history_moves_at_decisions_only_and_starts_without_a_state(stacked_run: Path) -> None:
    policy = LearnedPolicy(stacked_run)
    recorder = RecordingModel(policy.model)
    policy.model = recorder  # type: ignore[assignment]
    env = GpuAllocEnv(policy.config)
    obs, _ = env.reset(seed=8)
    observations, state = [], None
    for step in range(9):
        observations.append(obs)
        replicas, state = policy.predict(obs, state=state, episode_start=np.array([step == 0]))
        obs, *_ = env.step(replicas)
    assert state is not None and len(state) == 3 and state[2].shape == (1, 3, 57)
    decided = [observations[0], observations[0], observations[0], observations[4], observations[8]]
    for d, seen in enumerate(recorder.seen):  # steps 0, 4 and 8 decide
        np.testing.assert_array_equal(seen[0], np.concatenate(decided[d : d + 3]))
    policy.predict(obs)  # without a state: the observation alone, 3 times
    np.testing.assert_array_equal(recorder.seen[-1][0], np.tile(obs, 3))


def test_a_run_from_before_frame_stack_acts_as_before(held_run: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(held_run, old)
    config = json.loads((old / "config.json").read_text())
    assert config["hyperparams"].pop("frame_stack") == 1
    (old / "config.json").write_text(json.dumps(config))
    policies = [LearnedPolicy(held_run), LearnedPolicy(old)]
    assert [p.frame_stack for p in policies] == [1, 1]
    env = GpuAllocEnv(short_config())
    obs, _ = env.reset(seed=6)
    states: list[Any] = [None, None]
    for step in range(20):
        start = np.array([step == 0])
        new, old_run = policies[0].predict(obs, states[0], start), policies[1].predict(obs, states[1], start)
        np.testing.assert_array_equal(new[0], old_run[0])
        states = [new[1], old_run[1]]
        assert len(states[1]) == 2  # (held actions, steps left): no history
        obs, *_ = env.step(new[0])
