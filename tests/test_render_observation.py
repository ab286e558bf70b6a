"""Rendering (text table and picture) and the observation: its bounds, its squashing and its decoding."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest

from gpu_alloc_env import ENV_IDS, GpuAllocEnv, ObservationLayout
from gpu_alloc_env.core.state import ACTIVE, DRAINING, KEPT, STARTING
from gpu_alloc_env.observation import AGENT_FEATURES, GLOBAL_FEATURES, DecodedObservation, squash, unsquash
from gpu_alloc_env.render import (
    BARS_TOP_PX,
    DRAINING_RGB,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    KEPT_ALIVE_RGB,
    LOADING_RGB,
    WARM_RGB,
)

SHORT = {"episode_length_s": 30.0}
ACTION = np.array([1.0, 2.0, 2.0, 1.0], np.float32)  # replicas: 1 + 2 x 4 + 2 + 1 = 12 of 16 GPUs


def schedule(step: int) -> np.ndarray:
    """Replicas asked at ``step`` (1 s decisions) on ``paper``: every replica state in 120 steps.

    All start (the coordinator is ready after 30 s, retrieval 34 s, code 44 s, reasoning 67 s);
    at 50 s code and retrieval are taken away while busy (they drain); at 56 s the coordinator gives
    up an idle replica (kept alive) while code and retrieval take back draining ones; from 70 s
    everyone is starved, so queues and waits grow while the last replicas drain.
    """
    if step < 50:
        return np.array([2.0, 1.0, 1.0, 2.0], np.float32)
    if step < 56:
        return np.array([2.0, 1.0, 0.0, 0.0], np.float32)
    if step < 70:
        return np.ones(4, np.float32)
    return np.zeros(4, np.float32)


def table_rows(text: str) -> dict[str, list[float]]:
    """Agent name -> the numeric columns of its row of the ``ansi`` table."""
    rows = {}
    for line in text.splitlines()[2:]:
        name, *values = line.split()
        rows[name] = [float(v) for v in values]
    return rows


def test_ansi_render_is_a_table_naming_every_agent() -> None:
    env = gym.make("GpuAlloc-v1", render_mode="ansi", **SHORT)
    env.reset(seed=0)
    text = env.render()
    assert isinstance(text, str)
    names = [a.name for a in env.unwrapped.config.agents]  # type: ignore[attr-defined]
    for name in names:
        assert name in text
    lines = text.splitlines()
    assert lines[0].startswith("t=") and "capacity=16 GPUs" in lines[0] and "held=0" in lines[0]
    columns = ["agent", "serve", "start", "drain", "kept", "queue", "batch", "kv", "%", "req/s"]
    assert lines[1].split() == columns
    rows = table_rows(text)
    assert list(rows) == names
    assert all(value == 0.0 for row in rows.values() for value in row)


def test_ansi_render_shows_the_replicas_and_queues() -> None:
    env = gym.make("GpuAlloc-v1", render_mode="ansi", **SHORT)
    env.reset(seed=0)
    for _ in range(3):
        _, _, _, _, info = env.step(ACTION)
    sim = env.unwrapped.sim  # type: ignore[attr-defined]
    text = env.render()
    assert "t=     3.0 s" in text and "held=12" in text
    rows = table_rows(text)
    for n, row in enumerate(rows.values()):
        serve, start, drain, kept, queue, batch, kv = row[:7]
        # Every cold start of the paper's agents lasts longer than 3 s: every replica is starting.
        assert start == info["replicas"][n] > 0
        assert serve == drain == kept == batch == kv == 0.0
        assert queue == sim.queued[0, n]


def test_ansi_render_follows_every_replica_state() -> None:
    env = GpuAllocEnv("paper", render_mode="ansi", episode_length_s=120.0)
    env.reset(seed=2)
    shown = np.zeros(6)
    for step in range(100):
        env.step(schedule(step))
        text = env.render()
        assert isinstance(text, str)
        view = env.sim.view()
        assert f"held={int(view.held_gpus[0])} " in text.splitlines()[0]
        for n, row in enumerate(table_rows(text).values()):
            serve, start, drain, kept, queue, batch, kv, rate = row
            total = view.kv_total_blocks[0, n]
            expected_kv = round(100.0 * view.kv_used_blocks[0, n] / total) if total else 0
            assert [serve, start, drain, kept, queue, batch] == [
                view.active[0, n],
                view.starting[0, n],
                view.draining[0, n],
                view.kept_alive[0, n],
                view.queued[0, n],
                view.running[0, n],
            ], f"{text}step {step}"
            assert kv == expected_kv and rate == pytest.approx(view.arrival_rps[0, n], abs=0.005)
            shown = np.maximum(shown, [serve, start, drain, kept, batch, kv])
    assert np.all(shown > 0), shown  # every column was exercised


def test_rgb_render_is_a_uint8_picture_that_follows_the_replica_states() -> None:
    env = GpuAllocEnv("paper", render_mode="rgb_array", episode_length_s=120.0)
    env.reset(seed=2)

    def has(picture: np.ndarray, rgb: tuple[int, int, int]) -> bool:
        # Below the title and the legend, whose swatches show every colour.
        return bool(np.all(picture[BARS_TOP_PX:] == rgb, axis=2).any())

    first = env.render()
    assert isinstance(first, np.ndarray)
    assert first.dtype == np.uint8 and first.shape == (IMAGE_HEIGHT, IMAGE_WIDTH, 3)
    assert not any(has(first, rgb) for rgb in (WARM_RGB, LOADING_RGB, DRAINING_RGB, KEPT_ALIVE_RGB))
    env.step(schedule(0))
    starting = env.render()
    assert starting.shape == first.shape and starting.dtype == np.uint8
    assert np.any(starting != first)
    assert has(starting, LOADING_RGB)  # replicas in their cold start are drawn orange
    assert not has(starting, WARM_RGB)
    seen = {WARM_RGB: False, DRAINING_RGB: False, KEPT_ALIVE_RGB: False}
    for step in range(1, 100):
        env.step(schedule(step))
        picture = env.render()
        view = env.sim.view()
        states = {
            WARM_RGB: view.active,
            LOADING_RGB: view.starting,
            DRAINING_RGB: view.draining,
            KEPT_ALIVE_RGB: view.kept_alive,
        }
        for rgb, count in states.items():
            assert has(picture, rgb) == bool(count.any()), f"{rgb} at step {step}"
            if rgb in seen:
                seen[rgb] |= bool(count.any())
    assert all(seen.values()), seen
    # Rendering does not change the state: the same state draws the same picture.
    np.testing.assert_array_equal(env.render(), picture)


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
    kv_total = sim.kv_total_blocks[0].astype(np.float64)
    return {
        "queued": sim.queued[0].astype(np.float64),
        "running": sim.running[0].astype(np.float64),
        "arrival_rate_rps": sim.arrival_rps[0],
        "active_replicas": sim.replicas_in(ACTIVE)[0].astype(np.float64),
        "starting_replicas": sim.replicas_in(STARTING)[0].astype(np.float64),
        "draining_replicas": sim.replicas_in(DRAINING)[0].astype(np.float64),
        "kept_alive_replicas": sim.replicas_in(KEPT)[0].astype(np.float64),
        "kv_use": np.divide(sim.kv_used_blocks[0], kv_total, out=np.zeros(4), where=kv_total > 0),
        "preemption_rps": sim.preemption_rps[0],
        "oldest_wait_s": sim.oldest_wait_s[0],
        "free_gpus": env.config.capacity_gpus - sim.held_gpus().astype(np.float64),
        "time_s": sim.time_s,
        "tasks_in_flight": sim.tasks_in_flight.astype(np.float64),
    }


@pytest.mark.parametrize("scenario", ["paper", "diurnal"])
def test_decode_reads_the_simulator_state_back_in_natural_units(scenario: str) -> None:
    # Longer answers of the code agent grow its requests' KV past what its replica holds (a 32B on
    # one H100 keeps about 31k tokens), so that requests are preempted.
    code = {"code": {"output_tokens_mean": 500.0}}
    env = GpuAllocEnv(scenario, episode_length_s=120.0, keep_alive_s=5.0, agents=code)
    layout = env.layout
    obs, _ = env.reset(seed=2)
    seen: dict[str, float] = {}
    held = np.zeros(4)
    for step in range(120):
        decoded = layout.decode(obs)
        state = natural_state(env)
        assert set(state) == set(DecodedObservation.__dataclass_fields__)
        for name, expected in state.items():
            got = getattr(decoded, name)[0]
            np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-5, err_msg=f"{name} at step {step}")
            seen[name] = max(seen.get(name, 0.0), float(np.max(expected)))
        # The replicas held (starting or serving) are those the last allocation applied.
        np.testing.assert_array_equal(decoded.replicas[0], held)
        obs, _, _, truncated, info = env.step(schedule(step))
        held = info["replicas"]
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
    assert decoded.starting_replicas.shape == (3, 4) and decoded.time_s.shape == (3,)
    np.testing.assert_array_equal(decoded.replicas, np.tile(ACTION, (3, 1)))
    np.testing.assert_allclose(decoded.free_gpus, 16.0 - 12.0, atol=1e-5)
    np.testing.assert_allclose(decoded.time_s, 4.0, atol=1e-5)
    with pytest.raises(ValueError, match=r"observation has 56 elements, expected 57 .*'paper' with 4 agents"):
        env.layout.decode(obs[:-1])


def test_layout_names_size_and_bounds_match_the_space() -> None:
    env = GpuAllocEnv("diurnal", **SHORT)
    layout = ObservationLayout(env.config)
    n = env.config.num_agents
    assert layout.size == 13 * n + 5 == env.observation_space.shape[0]
    names = layout.names()
    assert len(names) == layout.size and len(set(names)) == layout.size
    assert names[:13] == [f"coordinator.{feature}" for feature, _ in AGENT_FEATURES]
    assert names[0] == "coordinator.queued" and names[13] == "reasoning.queued"
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
    # Ten times the paper's load on one coordinator replica, the specialists starved: queues and
    # waits grow without bound.
    env = GpuAllocEnv("paper", episode_length_s=120.0, workload={"task_rate_tps": 35.0})
    obs, _ = env.reset(seed=0)
    for _ in range(120):
        obs, *_ = env.step(np.array([1.0, 0.0, 0.0, 0.0], np.float32))
    assert env.observation_space.contains(obs)
    per_agent = obs[: 13 * 4].reshape(4, 13)
    assert per_agent[:, 0].min() > 0.9 and per_agent[:, 0].max() < 1.0  # queues squashed toward 1
    # Every head-of-queue request has waited longer than its agent's request SLO: above 0.5.
    assert per_agent[:, 12].min() > 0.5 and per_agent[:, 12].max() < 1.0
    decoded = env.layout.decode(obs)
    np.testing.assert_allclose(decoded.queued[0], env.sim.queued[0], rtol=1e-4)
    np.testing.assert_allclose(decoded.oldest_wait_s[0], env.sim.oldest_wait_s[0], rtol=1e-4)


def test_squash_is_monotone_bounded_and_inverted_by_unsquash() -> None:
    x = np.concatenate([[0.0], np.geomspace(1e-6, 1e6, 200)])
    for scale in (1.0, 10.0, np.float64(0.5)):
        y = squash(x, scale)
        assert y[0] == 0.0
        assert np.all(np.diff(y) > 0.0)  # strictly increasing
        assert np.all((y >= 0.0) & (y < 1.0))
        assert squash(np.array([scale]), scale)[0] == pytest.approx(0.5)
        np.testing.assert_allclose(unsquash(y, scale), x, rtol=1e-9)
    # Per-element scales broadcast.
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
    for _ in range(60):  # the coordinator serves after its 30 s cold start, then plans call reasoning
        obs, *_ = env.step(np.array([1.0, 0.0, 0.0, 0.0], np.float32))
        pairs.append((int(env.sim.queued[0, 1]), float(obs[index["reasoning.queued"]])))
        in_flight = int(env.sim.tasks_in_flight[0])
        assert obs[index["in_flight"]] == pytest.approx(in_flight / (in_flight + 100.0), rel=1e-6)
    # The starved reasoning agent's queue grows, and a larger queue never encodes as a smaller value.
    pairs.sort()
    assert pairs[-1][0] > pairs[0][0]
    assert all(b[1] >= a[1] for a, b in itertools.pairwise(pairs))
    assert all(b[1] > a[1] for a, b in itertools.pairwise(pairs) if b[0] > a[0])


def test_the_picture_names_the_agents_and_shows_the_time_and_a_legend() -> None:
    from gpu_alloc_env._font import draw_text
    from gpu_alloc_env.render import LEGEND, TEXT_RGB

    env = GpuAllocEnv("paper", render_mode="rgb_array")
    env.reset(seed=0)
    before = env.render()
    for _ in range(3):
        env.step(np.zeros(env.config.num_agents, dtype=np.float32))
    after = env.render()
    title_rows = slice(0, 12)
    assert np.any(before[title_rows] != after[title_rows])  # the time moved on
    expected = np.zeros_like(after)
    draw_text(expected, "t = 3 s", 4, 4, TEXT_RGB)
    assert np.array_equal(after[4:11, 4:46] == TEXT_RGB, expected[4:11, 4:46] == TEXT_RGB)
    for _, rgb in LEGEND:
        assert np.all(after[:BARS_TOP_PX] == rgb, axis=2).any()
    text_rows = np.flatnonzero(np.all(after == TEXT_RGB, axis=2).any(axis=1))
    assert text_rows.max() > BARS_TOP_PX  # the agents' names under their bars
