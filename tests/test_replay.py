"""Trace replay through the simulator: exact arrivals and tokens, scaling, splits, seeds and errors."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import gpu_alloc_env
from gpu_alloc_env.config import ConfigError, ScenarioConfig
from gpu_alloc_env.core.replay import ReplayPart, TraceStream
from gpu_alloc_env.core.simulator import BatchSimulator
from gpu_alloc_env.core.state import DONE, KIND_PLAN, KIND_SPECIALIST
from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.trace_replay import replay_part, simulator_for
from gpu_alloc_env.traces import load_trace

EPISODE_S = 100.0


def write_trace(path: Path, count: int = 200, span_s: float = 300.0, seed: int = 7) -> Path:
    """``count`` requests over ``span_s`` seconds (numeric timestamps) with distinct token counts."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0.0, span_s, count))
    times[0], times[-1] = 0.0, span_s
    lines = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    lines += [f"{t:.6f},{1000 + i},{10 + i}" for i, t in enumerate(times)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def trace_config(path: Path, episode_length_s: float = EPISODE_S, **trace: Any) -> ScenarioConfig:
    spec: dict[str, Any] = {"source": str(path), "timestamp_unit": "s", "split": "all"}
    spec.update(trace)
    return make_scenario(
        "paper", episode_length_s=episode_length_s, workload={"pattern": "trace", "trace": spec}
    )


STATIC = [4.0, 1.0, 4.0, 4.0]
"""paper's static equal replicas: 16 GPUs."""


def run_episode(config: ScenarioConfig, seed: int) -> BatchSimulator:
    sim = simulator_for(config, 1)
    sim.reset_env(0, np.random.default_rng(seed))
    allocation = np.array([STATIC])
    while not sim.done[0]:
        sim.step(allocation)
    return sim


def stream_of(sim: BatchSimulator) -> TraceStream:
    stream = sim.streams[0]
    assert isinstance(stream, TraceStream)
    return stream


def task_count(sim: BatchSimulator, env: int = 0) -> int:
    return int(sim.state.env["n_tasks"][env])


def tasks_of(sim: BatchSimulator, env: int = 0) -> np.ndarray:
    """The task rows of environment ``env``'s episode, in arrival order."""
    return sim.state.tk[env, : task_count(sim, env)]


def calls_of(sim: BatchSimulator, env: int = 0) -> np.ndarray:
    """The specialist-call rows of environment ``env``'s episode."""
    return sim.state.cl[env, : int(sim.state.env["n_calls"][env])]


@pytest.fixture
def trace_path(tmp_path: Path) -> Path:
    return write_trace(tmp_path / "requests.csv")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_episode_replays_exactly_the_requests_of_its_window(trace_path: Path, seed: int) -> None:
    trace = load_trace(trace_path, timestamp_unit="s")
    sim = run_episode(trace_config(trace_path, load_scale=1, time_scale=1), seed)
    stream = stream_of(sim)
    offset = stream.offset_s
    assert 0.0 <= offset <= trace.span_s - EPISODE_S
    window = trace.between(offset, offset + EPISODE_S)
    assert window.count > 0
    tasks = tasks_of(sim)
    assert task_count(sim) == window.count == sim.totals.tasks_arrived[0]
    np.testing.assert_allclose(tasks["arrival_s"], window.arrival_s - offset, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(tasks["plan_input"], window.input_tokens)
    np.testing.assert_array_equal(tasks["agg_output"], window.output_tokens)
    # The coordinator's planning requests carry the trace's prompts: the first request of every
    # task is its plan, with the task's prompt (the trace's are short enough not to be cut).
    requests = sim.state.rq[0, : int(sim.state.env["n_reqs"][0])]
    plans = requests[requests["kind"] == KIND_PLAN]
    np.testing.assert_array_equal(plans["prompt"], window.input_tokens[plans["task"]])
    assert not requests["truncated"].any()
    part = sim.replay
    assert part is not None
    np.testing.assert_array_equal(part.arrival_s[stream.trace_index], window.arrival_s)


def test_replay_part_of_split_all_is_the_whole_trace(trace_path: Path) -> None:
    trace = load_trace(trace_path, timestamp_unit="s")
    part = replay_part(trace_config(trace_path))
    assert part.start_s == 0.0 and part.end_s > trace.span_s
    np.testing.assert_array_equal(part.arrival_s, trace.arrival_s)
    np.testing.assert_array_equal(part.input_tokens, trace.input_tokens)
    np.testing.assert_array_equal(part.output_tokens, trace.output_tokens)


def test_specialist_tokens_agent_gets_every_task_and_the_trace_tokens(trace_path: Path) -> None:
    trace = load_trace(trace_path, timestamp_unit="s")
    config = trace_config(trace_path, tokens_agent="code")
    code = [a.name for a in config.agents].index("code")
    assert config.agents[code].invoke_probability < 1.0  # replay makes it 1, not the config
    sim = run_episode(config, 3)
    offset = stream_of(sim).offset_s
    window = trace.between(offset, offset + EPISODE_S)
    tasks, calls = tasks_of(sim), calls_of(sim)
    count = tasks.size
    assert count == window.count > 0
    code_calls = []
    for task in range(count):
        mine = np.arange(tasks["call_start"][task], tasks["call_start"][task] + tasks["call_count"][task])
        agents = calls["agent"][mine]
        assert np.count_nonzero(agents == code) == 1, f"task {task} calls {agents.tolist()}"
        code_calls.append(int(mine[agents == code][0]))
    np.testing.assert_array_equal(calls["input"][code_calls], window.input_tokens)
    np.testing.assert_array_equal(calls["output"][code_calls], window.output_tokens)
    # The coordinator's requests are drawn, not the trace's.
    assert not np.array_equal(tasks["plan_input"], window.input_tokens)
    # The other specialists are still called with their own probabilities.
    others = calls["agent"]
    assert set(np.unique(others[others != code]).tolist()) <= {1, 3}


def test_half_time_scale_replays_twice_the_trace_seconds_twice_as_fast(trace_path: Path) -> None:
    trace = load_trace(trace_path, timestamp_unit="s")
    sim = run_episode(trace_config(trace_path, time_scale=0.5), 4)
    offset = stream_of(sim).offset_s
    assert offset <= trace.span_s - 2.0 * EPISODE_S
    window = trace.between(offset, offset + 2.0 * EPISODE_S)
    tasks = tasks_of(sim)
    assert tasks.size == window.count
    arrival = tasks["arrival_s"]
    np.testing.assert_allclose(arrival, 0.5 * (window.arrival_s - offset), atol=1e-9)
    np.testing.assert_allclose(np.diff(arrival), 0.5 * np.diff(window.arrival_s), atol=1e-9)
    assert arrival.max() < EPISODE_S
    np.testing.assert_array_equal(tasks["plan_input"], window.input_tokens)


def test_load_scale_two_replays_each_request_exactly_twice(trace_path: Path) -> None:
    trace = load_trace(trace_path, timestamp_unit="s")
    sim = run_episode(trace_config(trace_path, load_scale=2.0), 5)
    stream = stream_of(sim)
    window = trace.between(stream.offset_s, stream.offset_s + EPISODE_S)
    tasks = tasks_of(sim)
    assert tasks.size == 2 * window.count
    np.testing.assert_allclose(
        tasks["arrival_s"], np.repeat(window.arrival_s - stream.offset_s, 2), atol=1e-9
    )
    np.testing.assert_array_equal(tasks["plan_input"], np.repeat(window.input_tokens, 2))
    np.testing.assert_array_equal(tasks["agg_output"], np.repeat(window.output_tokens, 2))
    assert np.all(np.bincount(stream.trace_index)[np.unique(stream.trace_index)] == 2)


def test_load_scale_half_keeps_about_half_the_requests_unchanged(tmp_path: Path) -> None:
    # 4000 requests over 1000 s; a 900 s episode holds about 3600, of which each is kept with
    # probability 0.5: about 1800, with a standard deviation of 30.
    path = write_trace(tmp_path / "long.csv", count=4000, span_s=1000.0)
    trace = load_trace(path, timestamp_unit="s")
    config = trace_config(path, episode_length_s=900.0, load_scale=0.5)
    sim = simulator_for(config, 1)
    sim.reset_env(0, np.random.default_rng(6))
    stream = stream_of(sim)
    draws = stream.draw(0.0, 900.0)
    window = trace.between(stream.offset_s, stream.offset_s + 900.0)
    assert 0.45 * window.count < draws.count < 0.55 * window.count
    index = stream.trace_index
    assert np.all(np.diff(index) > 0)  # each request at most once, in order
    np.testing.assert_allclose(draws.arrival_s, trace.arrival_s[index] - stream.offset_s, atol=1e-9)
    np.testing.assert_array_equal(draws.plan_input_tokens, trace.input_tokens[index])
    np.testing.assert_array_equal(draws.aggregate_output_tokens, trace.output_tokens[index])
    lo, hi = np.searchsorted(trace.arrival_s, [stream.offset_s, stream.offset_s + 900.0])
    assert index[0] >= lo and index[-1] < hi


@pytest.mark.parametrize(
    ("train", "held_out"), [("trace-conv", "trace-conv-held-out"), ("trace-code", "trace-code-held-out")]
)
def test_no_request_of_one_split_enters_an_episode_of_the_other(train: str, held_out: str) -> None:
    for preset, is_train in ((train, True), (held_out, False)):
        config = make_scenario(preset)
        spec = config.workload.trace
        assert spec is not None and spec.split == ("train" if is_train else "held_out")
        sim = simulator_for(config, 1)
        part = sim.replay
        assert part is not None
        span = float(part.arrival_s[-1])
        boundary = spec.train_fraction * span
        window = config.episode_length_s / spec.time_scale
        for seed in range(30):
            sim.reset_env(0, np.random.default_rng(seed))
            stream = stream_of(sim)
            times = part.arrival_s[stream.trace_index]
            assert times.size > 0
            assert np.all(times >= stream.offset_s) and np.all(times < stream.offset_s + window)
            if is_train:
                assert stream.offset_s >= 0.0 and stream.offset_s + window <= boundary
                assert np.all(times < boundary)
            else:
                assert stream.offset_s >= boundary and stream.offset_s + window <= part.end_s
                assert np.all(times >= boundary)
            assert np.all((times >= part.start_s) & (times < part.end_s))


def test_same_seed_same_episode_and_different_seeds_different_windows(trace_path: Path) -> None:
    config = trace_config(trace_path)
    first, again = run_episode(config, 11), run_episode(config, 11)
    assert stream_of(first).offset_s == stream_of(again).offset_s
    assert task_count(first) == task_count(again)
    np.testing.assert_array_equal(tasks_of(first), tasks_of(again))  # every field, completion times too
    np.testing.assert_array_equal(calls_of(first), calls_of(again))
    np.testing.assert_array_equal(first.totals.cost_usd, again.totals.cost_usd)
    sim = simulator_for(config, 1)
    offsets = set()
    for seed in range(10):
        sim.reset_env(0, np.random.default_rng(seed))
        offsets.add(stream_of(sim).offset_s)
    assert len(offsets) == 10


def test_batch_environments_replay_independent_windows(trace_path: Path) -> None:
    config = trace_config(trace_path)
    sim = simulator_for(config, 3)
    for env, seed in enumerate((21, 22, 21)):
        sim.reset_env(env, np.random.default_rng(seed))
    offsets = [s.offset_s for s in sim.streams if isinstance(s, TraceStream)]
    assert len(offsets) == 3 and offsets[0] == offsets[2] != offsets[1]
    allocation = np.array([STATIC] * 3)
    while not sim.done.all():
        sim.step(allocation)
    assert task_count(sim, 0) == task_count(sim, 2) != task_count(sim, 1)
    np.testing.assert_array_equal(tasks_of(sim, 0), tasks_of(sim, 2))
    assert sim.totals.cost_usd[0] == sim.totals.cost_usd[2]


@pytest.mark.parametrize(("episode_length_s", "time_scale"), [(400.0, 1.0), (200.0, 0.5)])
def test_episode_longer_than_the_part_is_a_config_error(
    trace_path: Path, episode_length_s: float, time_scale: float
) -> None:
    # The trace spans 300 s: 400 s at time_scale 1, or 200 s at 0.5 (400 trace seconds), do not fit.
    config = trace_config(trace_path, episode_length_s=episode_length_s, time_scale=time_scale)
    with pytest.raises(ConfigError) as info:
        simulator_for(config, 1)
    message = str(info.value)
    assert "episode_length_s" in message and "time_scale" in message
    assert "400.0" in message and "300.0" in message
    assert "requests.csv" in message


def test_train_part_too_short_names_the_split(trace_path: Path) -> None:
    # The training part is 0.3 x 300 = 90 s, shorter than the 100 s episode; all 300 s would fit.
    config = trace_config(trace_path, split="train", train_fraction=0.3)
    with pytest.raises(ConfigError, match=r"'train' part .* 90\.0 s.*episode_length_s"):
        simulator_for(config, 1)
    simulator_for(config.replace(workload={"trace": {"split": "all"}}), 1)


def test_too_short_part_gives_the_settings_that_fit(trace_path: Path) -> None:
    # 400 s episodes over a 300 s trace: 300 s episodes, or time_scale 400/300 = 1.333..., would fit;
    # the quoted time scale is rounded up, so that it fits as written.
    config = trace_config(trace_path, episode_length_s=400.0)
    with pytest.raises(ConfigError) as info:
        simulator_for(config, 1)
    message = str(info.value)
    assert "at most 300 s" in message and "raise time_scale to at least 1.34" in message
    assert "train_fraction" not in message  # split 'all': the fraction changes nothing
    simulator_for(config.replace(workload={"trace": {"time_scale": 1.34}}), 1)
    simulator_for(config.replace(episode_length_s=300.0), 1)


def test_quoted_settings_fit_the_held_out_part_of_a_bundled_trace() -> None:
    config = make_scenario("trace-conv-held-out", episode_length_s=1200.0)
    with pytest.raises(ConfigError, match=r"at most 1050 s, or raise time_scale to at least 1\.15 "):
        simulator_for(config, 1)
    simulator_for(config.replace(workload={"trace": {"time_scale": 1.15}}), 1)
    simulator_for(config.replace(episode_length_s=1050.0), 1)


def test_trace_of_one_instant_says_no_setting_fits(tmp_path: Path) -> None:
    path = tmp_path / "instant.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n5,10,2\n5,11,3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"spans only 0\.0 s; no setting makes an episode fit"):
        simulator_for(trace_config(path), 1)


def test_gap_longer_than_a_window_warns_that_episodes_can_be_empty(tmp_path: Path) -> None:
    path = tmp_path / "sparse.csv"
    rows = [f"{t},{100 + t},5" for t in (0, 1, 2, 250, 251, 300)]
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"no request for 248\.0 trace seconds \(from 2\.0 s\)"):
        simulator_for(trace_config(path), 1)


def test_dense_trace_does_not_warn_of_gaps(trace_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        simulator_for(trace_config(trace_path), 1)


def test_load_scale_is_bounded() -> None:
    with pytest.raises(ConfigError, match=r"load_scale must be <= 100, got 1000000000\.0; pass at most 100"):
        make_scenario("trace-conv", workload={"trace": {"load_scale": 1e9}})


@pytest.mark.parametrize(
    "fields",
    [{"timestamp_column": "ts"}, {"input_tokens_column": "p"}, {"timestamp_unit": "ms"}],
)
def test_file_columns_with_a_bundled_trace_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"bundled trace 'conv' has its own columns, so \{"):
        make_scenario("trace-conv", workload={"trace": fields})


def test_stream_refuses_a_part_shorter_than_the_window(trace_path: Path) -> None:
    config = trace_config(trace_path)
    short = ReplayPart(np.array([0.0, 10.0]), np.array([1, 2]), np.array([3, 4]), 0.0, 50.0)
    with pytest.raises(ValueError, match=r"100\.0 trace seconds"):
        TraceStream(config, short, np.random.default_rng(0))


def test_tokens_agent_must_be_an_agent(trace_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tokens_agent='planner'.*coordinator"):
        trace_config(trace_path, tokens_agent="planner")


def test_trace_pattern_and_trace_go_together(trace_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a trace"):
        make_scenario("paper", workload={"pattern": "trace"})
    with pytest.raises(ConfigError, match=r"pattern is 'steady'"):
        make_scenario("paper", workload={"trace": {"source": str(trace_path)}})
    with pytest.raises(ConfigError, match=r"pattern is 'bursty'"):
        make_scenario("bursty", workload={"trace": {"source": "conv"}})


@pytest.mark.parametrize(
    "fields",
    [
        {"split": "test"},
        {"timestamp_unit": "us"},
        {"time_scale": 0.0},
        {"load_scale": -1.0},
        {"train_fraction": 1.0},
        {"train_fraction": 0.0},
        {"source": ""},
        {"shift_s": 3.0},
    ],
)
def test_invalid_trace_fields_are_config_errors(trace_path: Path, fields: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(fields))):
        trace_config(trace_path, **fields)


def test_trace_scenario_round_trips_through_plain_data(trace_path: Path) -> None:
    config = trace_config(trace_path, tokens_agent="code", time_scale=0.5, load_scale=1.5, split="held_out")
    data = config.to_dict()
    assert data["workload"]["trace"]["source"] == str(trace_path)
    restored = ScenarioConfig.from_dict(data)
    assert restored == config
    assert restored.workload.trace == config.workload.trace
    for preset in ("trace-conv", "trace-code-held-out"):
        assert ScenarioConfig.from_dict(make_scenario(preset).to_dict()) == make_scenario(preset)


@pytest.mark.parametrize(
    ("env_id", "preset"),
    [("GpuAllocTraceConv-v1", "trace-conv"), ("GpuAllocTraceCodeHeldOut-v1", "trace-code-held-out")],
)
def test_gym_make_trace_environment(env_id: str, preset: str) -> None:
    if env_id not in gpu_alloc_env.ENV_IDS:
        pytest.skip(f"{env_id} is not registered yet")
    assert gpu_alloc_env.ENV_IDS[env_id] == preset
    env = gym.make(env_id)
    try:
        observation, _ = env.reset(seed=0)
        assert env.observation_space.contains(observation)
        for _ in range(5):
            observation, reward, terminated, _, _ = env.step(env.action_space.sample())
            assert env.observation_space.contains(observation)
            assert np.isfinite(float(reward)) and not terminated
    finally:
        env.close()


def test_requests_without_tokens_complete(tmp_path: Path) -> None:
    # Every fifth request has no input and no output tokens; each still needs a serving replica
    # (one token of prompt, no output) and must complete rather than stay queued forever.
    path = tmp_path / "empty-requests.csv"
    rows = [f"{t * 0.5:.1f},{0 if t % 5 == 0 else 500},{0 if t % 5 == 0 else 20}" for t in range(400)]
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "\n".join(rows) + "\n", encoding="utf-8")
    config = trace_config(path, episode_length_s=180.0, tokens_agent="code")
    sim = simulator_for(config, 1)
    sim.reset_env(0, np.random.default_rng(0))
    allocation = np.array([[2.0, 2.0, 4.0, 2.0]])
    while not sim.done[0]:
        sim.step(allocation)
    code = [a.name for a in config.agents].index("code")
    requests = sim.state.rq[0, : int(sim.state.env["n_reqs"][0])]
    empty = (requests["agent"] == code) & (requests["kind"] == KIND_SPECIALIST) & (requests["output"] == 0)
    assert empty.sum() > 10 and np.all(requests["prompt"][empty] == 1)
    # The code replicas serve from 44 s (their cold start); every empty request that arrived before
    # the last 10 s has completed, its first (and last) "token" at the end of its prefill.
    early = empty & (requests["arrival_s"] < config.episode_length_s - 10.0)
    assert early.sum() > 5
    assert np.all(requests["state"][early] == DONE)
    assert np.all(requests["done_s"][early] == requests["first_token_s"][early])
    tasks = tasks_of(sim)
    # Every task of the first minute has completed (the 70B's replicas serve from 67 s).
    early_tasks = tasks["arrival_s"] < 60.0
    assert early_tasks.sum() > 20 and np.all(np.isfinite(tasks["done_s"][early_tasks]))


def test_the_core_takes_a_trace_as_arrays_and_names_where_to_read_it(trace_path: Path) -> None:
    config = trace_config(trace_path)
    with pytest.raises(ValueError, match=r"replays a trace: pass replay=replay_part\(config\)"):
        BatchSimulator(config, 1)
    sim = BatchSimulator(config, 1, replay=replay_part(config))
    assert sim.replay is not None and sim.replay.arrival_s.size > 0
    with pytest.raises(ValueError, match=r"does not replay a trace"):
        BatchSimulator(config.replace(workload={"pattern": "steady", "trace": None}), 1, replay=sim.replay)
