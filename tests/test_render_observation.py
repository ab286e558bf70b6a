"""Rendering (text table and picture) and the observation: its bounds, its squashing and its decoding."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest

from gpu_alloc_env import ENV_IDS, GpuAllocEnv, ObservationLayout
from gpu_alloc_env.observation import GLOBAL_FEATURES, squash, unsquash
from gpu_alloc_env.render import IMAGE_HEIGHT, IMAGE_WIDTH, LOADING_RGB, WARM_RGB

SHORT = {"episode_length_s": 30.0}
ACTION = np.array([1.0, 4.0, 2.0, 1.0], np.float32)


def table_rows(text: str) -> dict[str, list[float]]:
    """Agent name -> the numeric columns of its row of the ``ansi`` table."""
    rows = {}
    for line in text.splitlines()[2:]:
        name, *values = line.split()
        rows[name] = [float(v) for v in values]
    return rows


def test_ansi_render_is_a_table_naming_every_agent() -> None:
    env = gym.make("GpuAlloc-v0", render_mode="ansi", **SHORT)
    env.reset(seed=0)
    text = env.render()
    assert isinstance(text, str)
    names = [a.name for a in env.unwrapped.config.agents]  # type: ignore[attr-defined]
    for name in names:
        assert name in text
    lines = text.splitlines()
    assert lines[0].startswith("t=") and "capacity=12 GPUs" in lines[0] and "allocated=0" in lines[0]
    assert lines[1].split() == ["agent", "alloc", "warm", "load", "kept", "queue", "work", "s", "demand"]
    rows = table_rows(text)
    assert list(rows) == names
    assert all(value == 0.0 for row in rows.values() for value in row)


def test_ansi_render_shows_the_allocation_and_queues() -> None:
    env = gym.make("GpuAlloc-v0", render_mode="ansi", **SHORT)
    env.reset(seed=0)
    for _ in range(3):
        _, _, _, _, info = env.step(ACTION)
    sim = env.unwrapped.sim  # type: ignore[attr-defined]
    text = env.render()
    assert "t=     3.0 s" in text and "allocated=8" in text
    rows = table_rows(text)
    for n, row in enumerate(rows.values()):
        alloc, warm, loading, kept, queue = row[:5]
        assert alloc == info["allocation_gpus"][n]
        # All cold starts of the paper's agents last longer than 3 s: everything is still loading.
        assert warm == 0.0 and loading == alloc and kept == 0.0
        assert queue == sim.queues.length[0, n]


def test_rgb_render_is_a_uint8_picture_that_follows_the_state() -> None:
    env = gym.make("GpuAlloc-v0", render_mode="rgb_array", **SHORT)
    env.reset(seed=0)
    first = env.render()
    assert isinstance(first, np.ndarray)
    assert first.dtype == np.uint8 and first.shape == (IMAGE_HEIGHT, IMAGE_WIDTH, 3)
    assert not np.all(first == LOADING_RGB, axis=2).any()
    env.step(ACTION)
    loading = env.render()
    assert loading.shape == first.shape and loading.dtype == np.uint8
    assert np.any(loading != first)
    assert np.all(loading == LOADING_RGB, axis=2).any()  # GPUs in their cold start are drawn orange
    assert not np.all(loading == WARM_RGB, axis=2).any()
    for _ in range(15):  # the coordinator (8.2 s) and the retrieval agent (10.6 s) are warm by now
        env.step(ACTION)
    warm = env.render()
    assert np.all(warm == WARM_RGB, axis=2).any()
    assert np.any(warm != loading)
    # Rendering does not change the state: the same state draws the same picture.
    np.testing.assert_array_equal(env.render(), warm)


def test_same_state_same_picture_and_render_needs_reset() -> None:
    pictures = []
    for _ in range(2):
        env = GpuAllocEnv("paper", render_mode="rgb_array", **SHORT)
        env.reset(seed=4)
        for _ in range(5):
            env.step(ACTION)
        pictures.append(env.render())
    np.testing.assert_array_equal(pictures[0], pictures[1])
    with pytest.raises(RuntimeError, match=r"reset\(\) before render\(\)"):
        GpuAllocEnv("paper", render_mode="ansi").render()


def test_render_without_mode_warns_and_returns_none() -> None:
    env = GpuAllocEnv("paper", **SHORT)
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode='ansi' or 'rgb_array'"):
        assert env.render() is None


def natural_state(env: GpuAllocEnv) -> dict[str, np.ndarray]:
    """The simulator's state in the units of :class:`DecodedObservation`."""
    sim = env.sim
    grain = env.config.gpu_granularity
    return {
        "queue_requests": sim.queues.length[0].astype(np.float64),
        "queued_work_gpu_s": sim.queued_work_gpu_s()[0],
        "demand_gpus": sim.arrival_work_gpu[0],
        "arrival_rate_rps": sim.arrival_rps[0],
        "alloc_gpus": sim.alloc_slices[0] * grain,
        "warm_gpus": sim.warm_slices[0] * grain,
        "loading_gpus": sim.loading_slices[0] * grain,
        "kept_alive_gpus": sim.parked_slices[0] * grain,
        "oldest_wait_s": sim.oldest_wait_s()[0],
        "time_s": sim.time_s,
        "tasks_in_flight": sim.tasks_in_flight.astype(np.float64),
    }


@pytest.mark.parametrize("scenario", ["paper", "diurnal"])
def test_decode_reads_the_simulator_state_back_in_natural_units(scenario: str) -> None:
    env = GpuAllocEnv(scenario, episode_length_s=60.0, keep_alive_s=5.0)
    layout = env.layout
    rng = np.random.default_rng(1)
    obs, _ = env.reset(seed=2)
    seen: dict[str, float] = {}
    for step in range(60):
        decoded = layout.decode(obs)
        for name, expected in natural_state(env).items():
            got = getattr(decoded, name)[0]
            np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-5, err_msg=f"{name} at step {step}")
            seen[name] = max(seen.get(name, 0.0), float(np.max(expected)))
        # Alternate between holding GPUs, scaling some agents to zero and starving everyone.
        phase = step % 12
        action = ACTION * rng.uniform(0.5, 2.0, 4) if phase < 6 else (ACTION * (phase < 9)) * [1, 0, 1, 0]
        obs, _, _, truncated, _ = env.step(action.astype(np.float32))
        if truncated:
            break
    # The rollout exercised every quantity, so the comparison above was not vacuous.
    assert all(value > 0.0 for value in seen.values()), seen


def test_decode_accepts_a_batch_and_rejects_a_wrong_size() -> None:
    env = GpuAllocEnv("paper", **SHORT)
    obs, _ = env.reset(seed=0)
    for _ in range(4):
        obs, *_ = env.step(ACTION)
    batch = np.stack([obs, obs, obs])
    decoded = env.layout.decode(batch)
    assert decoded.alloc_gpus.shape == (3, 4) and decoded.time_s.shape == (3,)
    np.testing.assert_allclose(decoded.alloc_gpus, np.tile(ACTION, (3, 1)), atol=1e-5)
    np.testing.assert_allclose(decoded.time_s, 4.0, atol=1e-5)
    with pytest.raises(ValueError, match=r"observation has 52 elements, expected 53 .*'paper' with 4 agents"):
        env.layout.decode(obs[:-1])


def test_layout_names_size_and_bounds_match_the_space() -> None:
    env = GpuAllocEnv("diurnal", **SHORT)
    layout = ObservationLayout(env.config)
    n = env.config.num_agents
    assert layout.size == 12 * n + 5 == env.observation_space.shape[0]
    names = layout.names()
    assert len(names) == layout.size and len(set(names)) == layout.size
    assert names[0] == "coordinator.queue" and names[12] == "reasoning.queue"
    assert names[-len(GLOBAL_FEATURES) :] == [f for f, _ in GLOBAL_FEATURES]
    low, high = layout.bounds()
    assert low.dtype == np.float32 and high.dtype == np.float32
    signed = [i for i, name in enumerate(names) if name in ("phase_sin", "phase_cos")]
    assert low[signed].tolist() == [-1.0, -1.0]
    assert np.delete(low, signed).tolist() == [0.0] * (layout.size - 2)
    assert np.all(high == 1.0)
    np.testing.assert_array_equal(env.observation_space.low, low)
    np.testing.assert_array_equal(env.observation_space.high, high)


# 60 s episodes can fall inside the code trace's gaps without requests (docs/MODEL.md, 1.9), of
# which the simulator warns; empty episodes must stay inside the space as well.
@pytest.mark.filterwarnings("ignore:the .* part of bundled trace 'code' has no request for:UserWarning")
@pytest.mark.parametrize("env_id", list(ENV_IDS))
def test_random_rollout_stays_inside_the_observation_space(env_id: str) -> None:
    env = gym.make(env_id, episode_length_s=60.0, keep_alive_s=3.0)
    env.action_space.seed(7)
    obs, _ = env.reset(seed=7)
    observations = [obs]
    truncated = False
    while not truncated:
        obs, _, _, truncated, _ = env.step(env.action_space.sample())
        observations.append(obs)
    for obs in observations:
        assert obs.dtype == np.float32
        assert env.observation_space.contains(obs), obs
    values = np.stack(observations)
    assert np.ptp(values, axis=0).max() > 0.1  # the observation moved


def test_overload_saturates_below_one() -> None:
    # Ten times the paper's load, every agent starved: queues, work and waits grow without bound.
    env = GpuAllocEnv("paper", episode_length_s=120.0, workload={"task_rate_tps": 35.0})
    obs, _ = env.reset(seed=0)
    for _ in range(120):
        obs, *_ = env.step(np.array([1.0, 0.0, 0.0, 0.0], np.float32))
    assert env.observation_space.contains(obs)
    per_agent = obs[: 12 * 4].reshape(4, 12)
    assert per_agent[:, 0].max() > 0.9 and per_agent[:, 0].max() < 1.0  # queue squashed toward 1
    decoded = env.layout.decode(obs)
    np.testing.assert_allclose(decoded.queue_requests[0], env.sim.queues.length[0], rtol=1e-4)


def test_squash_is_monotone_bounded_and_inverted_by_unsquash() -> None:
    x = np.concatenate([[0.0], np.geomspace(1e-6, 1e6, 200)])
    for scale in (1.0, 10.0, np.float64(0.5)):
        y = squash(x, scale)
        assert y[0] == 0.0
        assert np.all(np.diff(y) > 0.0)  # strictly increasing
        assert np.all((y >= 0.0) & (y < 1.0))
        assert squash(np.array([scale]), scale)[0] == pytest.approx(0.5)
        np.testing.assert_allclose(unsquash(y, scale), x, rtol=1e-9)
    # Per-element scales (as the per-agent max_gpus) broadcast.
    scales = np.array([1.0, 2.0, 8.0])
    np.testing.assert_allclose(squash(np.array([1.0, 2.0, 8.0]), scales), 0.5)
    np.testing.assert_allclose(squash(np.array([3.0, 3.0, 3.0]), scales), [0.75, 0.6, 3.0 / 11.0])
    # Out-of-range inputs to unsquash are clipped, not turned into negative or infinite counts.
    assert unsquash(np.array([-0.5]), 10.0)[0] == 0.0
    assert np.isfinite(unsquash(np.array([1.0]), 10.0)[0])


def test_squashed_features_grow_with_their_quantity() -> None:
    env = GpuAllocEnv("paper", episode_length_s=60.0, workload={"task_rate_tps": 10.0})
    env.reset(seed=3)
    index = {name: i for i, name in enumerate(env.layout.names())}
    pairs = []
    for _ in range(30):
        obs, *_ = env.step(np.array([1.0, 0.0, 0.0, 0.0], np.float32))
        pairs.append((int(env.sim.queues.length[0, 1]), float(obs[index["reasoning.queue"]])))
        in_flight = int(env.sim.tasks_in_flight[0])
        assert obs[index["in_flight"]] == pytest.approx(in_flight / (in_flight + 100.0), rel=1e-6)
    # The starved reasoning agent's queue grows, and a larger queue never encodes as a smaller value.
    pairs.sort()
    assert pairs[-1][0] > pairs[0][0]
    assert all(b[1] >= a[1] for a, b in itertools.pairwise(pairs))
    assert all(b[1] > a[1] for a, b in itertools.pairwise(pairs) if b[0] > a[0])
