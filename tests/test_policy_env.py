"""PolicyVectorEnv: the Gymnasium (NEXT_STEP) twin of BatchVecEnv gives the same transitions."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from gymnasium.wrappers.vector import DictInfoToList, RecordEpisodeStatistics
from stable_baselines3.common.vec_env import VecNormalize

from gpu_alloc_env.errors import TrainError
from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.train.policy_env import (
    PolicyVectorEnv,
    ReturnNormaliser,
    build_policy_env,
    runner_seeds,
)
from gpu_alloc_env.train.ppo import build_env
from gpu_alloc_env.train.vec_env import entry
from gpu_alloc_env.vector import GpuAllocVectorEnv

CONFIG = make_scenario("diurnal", episode_length_s=20.0)  # 20 decision intervals an episode
BASE = [2.0, 1.0, 2.0, 1.0]
ACTIONS: dict[str, dict[str, Any]] = {
    "need_scale": {"action": "need_scale", "max_need_factor": 2.0},
    "offset": {"action": "offset", "offset_base": BASE},
}
B = 3


def random_actions(rng: np.random.Generator, action: str) -> np.ndarray:
    if action == "offset":
        return rng.integers(0, 3, size=(B, 4))
    return rng.uniform(-1.0, 1.0, size=(B, 4)).astype(np.float32)


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("action_repeat", [1, 5])
@pytest.mark.parametrize("baseline", [None, "provisioned", "adaptive"])
@pytest.mark.parametrize("frame_stack", [1, 3])
def test_same_seeds_and_actions_give_batch_vec_envs_transitions(
    action: str, action_repeat: int, baseline: str | None, frame_stack: int
) -> None:
    hp = {**ACTIONS[action], "action_repeat": action_repeat, "reward_baseline": baseline}
    hp["frame_stack"] = frame_stack
    if baseline == "provisioned":
        hp["offset_base"] = BASE  # the constant it holds (the scenario's tuned one is for 600 s episodes)
    if baseline == "adaptive":
        hp["train_reward"] = {"delay_usd_per_task_s": 0.004}  # the training shaping, applied to both
    sb3 = build_env(CONFIG, hp, B, None)  # VecMonitor over BatchVecEnv, as gpu-alloc train builds it
    env = build_policy_env(CONFIG, hp, B)
    assert sb3.observation_space == env.single_observation_space
    assert env.single_observation_space.shape == (frame_stack * (13 * 4 + 5),)
    sb3.seed(40)
    np.testing.assert_array_equal(env.reset(seed=40)[0], sb3.reset())
    rng = np.random.default_rng(3)
    decisions = 20 // action_repeat
    ended = 0
    for step in range(2 * decisions + 3):  # two whole episodes and the start of a third
        actions = random_actions(rng, action)
        obs, rewards, terminated, truncated, info = env.step(actions)
        sb3_obs, sb3_rewards, dones, infos = sb3.step(actions)
        assert rewards.dtype == sb3_rewards.dtype == np.float32
        np.testing.assert_array_equal(rewards, sb3_rewards)  # bit for bit, paired and summed alike
        assert not terminated.any()
        np.testing.assert_array_equal(truncated, dones)
        assert dones.all() == ((step + 1) % decisions == 0)
        if not dones.any():
            np.testing.assert_array_equal(obs, sb3_obs)
            assert info == {}
            continue
        ended += 1
        np.testing.assert_array_equal(obs, np.stack([i["terminal_observation"] for i in infos]))
        for k in range(B):
            np.testing.assert_equal(entry(info, k)["episode_metrics"], infos[k]["episode_metrics"])
            assert infos[k]["episode"]["l"] == decisions  # VecMonitor's episode
        # NEXT_STEP: the next step only resets, whatever its action, to BatchVecEnv's next episode.
        obs, rewards, terminated, truncated, info = env.step(random_actions(rng, action))
        np.testing.assert_array_equal(obs, sb3_obs)
        np.testing.assert_array_equal(rewards, np.zeros(B, np.float32))
        assert not terminated.any() and not truncated.any() and info == {}
    assert ended == 2


@pytest.mark.parametrize("gamma", [0.99, 0.9])
def test_normalised_rewards_are_vec_normalizes(gamma: float) -> None:
    hp = {**ACTIONS["offset"], "action_repeat": 5, "normalize_reward": True, "gamma": gamma}
    sb3 = build_env(CONFIG, hp, B, None)  # VecNormalize(norm_obs=False) over BatchVecEnv
    assert isinstance(sb3, VecNormalize)
    env = build_policy_env(CONFIG, hp, B)
    assert env.reward_normaliser is not None
    sb3.seed(11)
    sb3.reset()
    env.reset(seed=11)
    rng = np.random.default_rng(5)
    for _ in range(10):  # two and a half episodes of 4 decisions, with their reset steps
        actions = random_actions(rng, "offset")
        _, rewards, _, truncated, _ = env.step(actions)
        _, sb3_rewards, _, _ = sb3.step(actions)
        np.testing.assert_allclose(rewards, sb3_rewards, rtol=1e-6)
        if truncated.any():
            env.step(actions)  # the reset step: reward 0, and the statistics do not move
    state = env.reward_normaliser.state()
    assert state["mean"] == pytest.approx(float(sb3.ret_rms.mean))
    assert state["var"] == pytest.approx(float(sb3.ret_rms.var))
    assert state["count"] == pytest.approx(sb3.ret_rms.count)


def test_reward_statistics_restore_and_refuse_another_discount() -> None:
    normaliser = ReturnNormaliser(0.9, 2)
    for _ in range(5):
        normaliser(np.array([-3.0, -5.0]), np.zeros(2, bool))
    again = ReturnNormaliser(0.9, 2)
    again.load_state(normaliser.state())
    normaliser.returns[:] = 0.0  # a restored run's returns restart from 0, as VecNormalize's do
    ended = np.zeros(2, bool)
    np.testing.assert_array_equal(
        again(np.array([-1.0, 2.0]), ended), normaliser(np.array([-1.0, 2.0]), ended)
    )
    with pytest.raises(ValueError, match=r"gamma 0\.9.*another run"):
        ReturnNormaliser(0.99, 2).load_state(normaliser.state())
    assert (
        build_policy_env(
            CONFIG, {**ACTIONS["offset"], "normalize_reward": True}, B, training=False
        ).reward_normaliser
        is None
    )


def decision_observations(
    hp: dict[str, Any], seeds: list[int], actions: list[np.ndarray]
) -> list[np.ndarray]:
    """The unstacked (B, D) observations of a PolicyVectorEnv's reset and of each of its steps.

    That is each decision's observation, plus each episode's last (the step it ends) before the
    next episode's first (the reset step).
    """
    env = build_policy_env(CONFIG, {**hp, "frame_stack": 1}, B)
    seen = [env.reset(seed=seeds)[0]]
    for action in actions:
        seen.append(env.step(action)[0])
    return seen


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_a_stacked_observation_is_the_last_decisions_oldest_first(action: str) -> None:
    k, repeat = 3, 5  # 4 decisions an episode
    hp = {**ACTIONS[action], "action_repeat": repeat, "frame_stack": k}
    env = build_policy_env(CONFIG, hp, B)
    sb3 = build_env(CONFIG, hp, B, None)
    size = 13 * 4 + 5
    plain_space = GpuAllocVectorEnv(1, CONFIG).single_observation_space
    for space in (env.single_observation_space, sb3.observation_space):
        assert space.shape == (k * size,) and space.dtype == np.float32
        np.testing.assert_array_equal(space.low, np.tile(plain_space.low, k))
        np.testing.assert_array_equal(space.high, np.tile(plain_space.high, k))
    assert env.observation_space.shape == (B, k * size)
    rng = np.random.default_rng(9)
    actions = [random_actions(rng, action) for _ in range(12)]  # two episodes (each + a reset step), 2 more
    raw = decision_observations(hp, [5, 6, 7], actions)
    stacked = [env.reset(seed=[5, 6, 7])[0]]
    stacked += [env.step(a)[0] for a in actions]
    sb3.seed(5)
    sb3_first = sb3.reset()
    np.testing.assert_array_equal(sb3_first, stacked[0])
    # Per episode: decisions 0-3, then the last observation (the step it ends), then the reset step.
    for start in (0, 5):
        first = raw[start]
        episode = [first, first, *raw[start : start + 5]]  # the first decision sees the first K times
        for d in range(5):  # decisions 0..3 and the episode's last observation
            expected = np.concatenate(episode[d : d + k], axis=1)
            np.testing.assert_array_equal(stacked[start + d], expected)
    np.testing.assert_array_equal(stacked[10], np.tile(raw[10], (1, k)))  # the third episode's first
    np.testing.assert_array_equal(stacked[11], np.concatenate([raw[10], raw[10], raw[11]], axis=1))
    # BatchVecEnv: the same stacks, with the last one as the terminal observation.
    sb3_actions = [a for i, a in enumerate(actions) if i not in (4, 9)]  # no reset steps
    sb3_stacked = [sb3.step(a) for a in sb3_actions]
    np.testing.assert_array_equal(
        np.stack([info["terminal_observation"] for info in sb3_stacked[3][3]]), stacked[4]
    )
    np.testing.assert_array_equal(sb3_stacked[3][0], stacked[5])


def test_the_transform_reads_the_current_observation_not_the_stack() -> None:
    # need_scale reads the observation; stacked or not, the same actions give the same rewards.
    hp = {**ACTIONS["need_scale"], "action_repeat": 5}
    plain, stacked = build_policy_env(CONFIG, hp, B), build_policy_env(CONFIG, {**hp, "frame_stack": 4}, B)
    plain.reset(seed=1)
    stacked.reset(seed=1)
    rng = np.random.default_rng(2)
    for _ in range(10):
        actions = random_actions(rng, "need_scale")
        plain_obs, plain_rewards, *_ = plain.step(actions)
        obs, rewards, *_ = stacked.step(actions)
        np.testing.assert_array_equal(rewards, plain_rewards)
        np.testing.assert_array_equal(obs[:, -plain_obs.shape[1] :], plain_obs)  # newest last
    assert stacked.stepper.obs is not None and stacked.stepper.obs.shape == (B, 13 * 4 + 5)


def test_validation_environments_step_the_scenario_as_it_is() -> None:
    hp = {
        **ACTIONS["need_scale"],
        "reward_baseline": "adaptive",
        "train_reward": {"delay_usd_per_task_s": 1.0},
    }
    validation = build_policy_env(CONFIG, hp, B, training=False)
    assert validation.stepper.reward_baseline is None and validation.config == CONFIG
    assert build_policy_env(CONFIG, hp, B).config != CONFIG  # the shaping trains only
    plain = GpuAllocVectorEnv(B, CONFIG)
    validation.reset(seed=[7, 8, 9])
    plain_obs, _ = plain.reset(seed=[7, 8, 9])
    actions = np.zeros((B, 4), np.float32)
    obs, rewards, *_ = validation.step(actions)
    plain_obs, plain_rewards, *_ = plain.step(validation.transform.to_replicas(actions, plain_obs))
    np.testing.assert_array_equal(obs, plain_obs)
    np.testing.assert_array_equal(rewards, plain_rewards.astype(np.float32))


def test_the_paired_reward_of_the_baseline_itself_is_zero_without_a_seed() -> None:
    # Unseeded, both the policy's and the baseline's environments get the same fresh seeds.
    env = build_policy_env(CONFIG, {**ACTIONS["offset"], "reward_baseline": "provisioned"}, B)
    env.reset()
    for _ in range(25):
        _, rewards, *_ = env.step(np.ones((B, 4), dtype=np.int64))  # offset 0: the constant itself
        np.testing.assert_array_equal(rewards, 0.0)


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_spaces_reset_and_step_are_a_gymnasium_vector_envs(action: str) -> None:
    env = build_policy_env(CONFIG, {**ACTIONS[action], "action_repeat": 4}, B)
    assert isinstance(env, VectorEnv) and env.unwrapped is env
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert env.num_envs == B
    assert env.single_observation_space == GpuAllocVectorEnv(1, CONFIG).single_observation_space
    assert env.single_action_space == env.transform.action_space()
    assert env.observation_space == batch_space(env.single_observation_space, B)
    assert env.action_space == batch_space(env.single_action_space, B)
    assert env.action_space.shape == (B, 4)
    obs, info = env.reset(seed=1)
    assert obs.dtype == np.float32 and obs.shape == (B, 13 * 4 + 5) and info == {}
    assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(env.reset(seed=1)[0], obs)  # seeded resets are deterministic
    env.action_space.seed(0)
    first = [env.step(env.action_space.sample()) for _ in range(6)]  # past the end at 5 decisions
    env.reset(seed=1)
    env.action_space.seed(0)
    again = [env.step(env.action_space.sample()) for _ in range(6)]
    for (obs, rewards, terminated, truncated, info), repeat in zip(first, again, strict=True):
        assert env.observation_space.contains(obs)
        assert rewards.shape == terminated.shape == truncated.shape == (B,)
        assert rewards.dtype == np.float32 and terminated.dtype == truncated.dtype == np.bool_
        assert isinstance(info, dict)
        for ours, theirs in zip((obs, rewards, terminated, truncated), repeat[:4], strict=True):
            np.testing.assert_array_equal(ours, theirs)
    assert [bool(step[3].all()) for step in first] == [False] * 4 + [True, False]
    env.close()
    assert env.closed


def test_rllibs_info_wrapper_and_episode_statistics_see_whole_episodes() -> None:
    env = DictInfoToList(
        RecordEpisodeStatistics(build_policy_env(CONFIG, {**ACTIONS["offset"], "action_repeat": 5}, B))
    )
    env.reset(seed=0)
    total = np.zeros(B)
    for _ in range(4):
        _, rewards, _, truncated, infos = env.step(np.ones((B, 4), dtype=np.int64))
        total += rewards
    assert truncated.all()
    for k in range(B):
        assert infos[k]["episode_metrics"]["tasks_arrived"] > 0
        assert infos[k]["episode"]["l"] == 4  # the reset step is no decision of the episode
        assert infos[k]["episode"]["r"] == pytest.approx(total[k], rel=1e-6)


def test_bad_actions_and_settings_are_named() -> None:
    env = build_policy_env(CONFIG, ACTIONS["need_scale"], 2)
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        env.step(np.zeros((2, 4), np.float32))
    env.reset(seed=0)
    for wrong in (np.zeros((2, 3)), np.zeros((4, 2)), np.zeros(8)):  # transposed or flat: not guessed
        with pytest.raises(
            ValueError, match=rf"finite with shape \(2, 4\) .*got shape {re.escape(str(wrong.shape))}"
        ):
            env.step(wrong.astype(np.float32))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full((2, 4), np.nan, np.float32))
    for _ in range(20):
        env.step(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"got shape \(2, 3\)"):  # the reset step checks its action too
        env.step(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"action_repeat=3 does not divide the episode's 20"):
        build_policy_env(CONFIG, {**ACTIONS["need_scale"], "action_repeat": 3}, 2)
    with pytest.raises(ValueError, match=r"action_repeat must be a positive int, got 0"):
        PolicyVectorEnv(CONFIG, 2, env.transform, action_repeat=0)
    for wrong_k in (0, 2.0, True):
        with pytest.raises(ValueError, match=rf"frame_stack must be a positive int .*got {wrong_k!r}"):
            PolicyVectorEnv(CONFIG, 2, env.transform, frame_stack=wrong_k)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"worker_index must be an int >= 0 .*got -1"):
        PolicyVectorEnv(CONFIG, 2, env.transform, worker_index=-1)
    with pytest.raises(ValueError, match=r"list of 2 seeds .*got \[1, 2, 3\]"):
        env.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match=r"takes no options .*reset_mask"):
        env.reset(options={"reset_mask": np.ones(2, bool)})
    with pytest.raises(TrainError, match=r"reward_baseline must be one of .*got 'oracle'"):
        build_policy_env(CONFIG, {**ACTIONS["need_scale"], "reward_baseline": "oracle"}, 2)


def test_env_runners_seed_their_environments_apart() -> None:
    base, n = 3000, 4
    # RLlib resets runner w with base + w; environment e of runner w gets base + w n + e.
    seeds = [runner_seeds(base + w, n, w) for w in range(3)]
    assert seeds == [[3000, 3001, 3002, 3003], [3004, 3005, 3006, 3007], [3008, 3009, 3010, 3011]]
    assert len({s for runner in seeds for s in runner}) == 3 * n  # no two environments share one
    env = build_policy_env(CONFIG, ACTIONS["need_scale"], n, worker_index=2)
    obs, _ = env.reset(seed=base + 2)
    np.testing.assert_array_equal(obs, GpuAllocVectorEnv(n, CONFIG).reset(seed=seeds[2])[0])
    # Runner 0 (num_env_runners=0) seeds as BatchVecEnv.seed(base) does; a list is taken as given.
    sb3 = build_env(CONFIG, ACTIONS["need_scale"], n, None)
    sb3.seed(base)
    first = sb3.reset()
    np.testing.assert_array_equal(
        build_policy_env(CONFIG, ACTIONS["need_scale"], n).reset(seed=base)[0], first
    )
    np.testing.assert_array_equal(env.reset(seed=seeds[0])[0], first)
