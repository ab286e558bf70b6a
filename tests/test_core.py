"""Hand-computed cases of the v1 serving core: one or two requests on warm replicas, iteration by iteration.

Every expected time is a sum of iterations, each worked out from
:func:`gpu_alloc_env.serving.perf.iteration_time_s` with the batch's sequences, tokens, KV tokens
read (context) and attention pairs written out by hand. The scenarios run on a test platform whose
cold start is round: 2 s of container start, the 8B model's weights in exactly 1 s from local SSD
(4 s from remote storage, 0.25 s from host memory) and 1 s of engine start-up.

This module also holds the small v1 scenario builders that the other v1 physics tests import.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from scripted import ScriptedTask, scripted_sim

from gpu_alloc_env.config import (
    TPOT_SLO_FACTOR,
    TTFT_SLO_FACTOR,
    AgentSpec,
    ScenarioConfig,
    TraceSpec,
    WorkloadSpec,
)
from gpu_alloc_env.core.metrics import episode_metrics
from gpu_alloc_env.core.reward import reward_components
from gpu_alloc_env.core.simulator import BatchSimulator, StepStats
from gpu_alloc_env.core.state import DONE, KIND_AGGREGATE, KIND_PLAN, KIND_SPECIALIST
from gpu_alloc_env.serving.engine import BLOCK_TOKENS
from gpu_alloc_env.serving.hardware import GIB, GPUS
from gpu_alloc_env.serving.models import MODELS
from gpu_alloc_env.serving.perf import iteration_time_s
from gpu_alloc_env.serving.platforms import PlatformSpec
from gpu_alloc_env.trace_replay import simulator_for

MODEL = "llama-3.1-8b"
WEIGHT_BYTES = 16_059_990_016.0
"""bf16 weights of llama-3.1-8b: 8,029,995,008 parameters x 2 bytes (worked out in test_engine)."""
PRICE = 0.001
"""Dollars per GPU-second on the test platform."""
CONTAINER_S = 2.0
STARTUP_S = 1.0
FAST = PlatformSpec(
    name="test",
    price_per_gpu_s={"h100-80gb": PRICE},
    billing_increment_s=1.0,
    keep_alive_s=0.0,
    container_start_s=CONTAINER_S,
    engine_startup_s=STARTUP_S,
    load_bandwidth_bytes_per_s={
        "remote": WEIGHT_BYTES / 4.0,
        "ssd": WEIGHT_BYTES,
        "host_memory": WEIGHT_BYTES * 4.0,
    },
)
"""A platform with round figures: the 8B model's weights load in 4 s, 1 s or 0.25 s."""
COLD_START_S = CONTAINER_S + 1.0 + STARTUP_S
"""Cold start of the 8B model from SSD (the test platform's default tier): 4 s."""


def agent(name: str, role: str = "specialist", **fields: Any) -> AgentSpec:
    """An 8B agent on one GPU with constant, small token counts; ``fields`` override."""
    spec: dict[str, Any] = {
        "name": name,
        "role": role,
        "model": MODEL,
        "tensor_parallel": 1,
        "max_replicas": 2,
        "priority": 1.0,
        "request_slo_s": 10.0,
        "input_tokens_mean": 10.0,
        "input_tokens_cv": 0.0,
        "output_tokens_mean": 10.0,
        "output_tokens_cv": 0.0,
    }
    spec.update(fields)
    return AgentSpec(**spec)


def scenario(agents: Sequence[AgentSpec] | None = None, **fields: Any) -> ScenarioConfig:
    """A scenario on the test platform: 2 GPUs, 1 s decisions, 60 s episodes (one coordinator by default)."""
    spec: dict[str, Any] = {
        "name": "test",
        "agents": tuple(agents) if agents is not None else (agent("coordinator", "coordinator"),),
        "platform": FAST,
        "capacity_gpus": 2,
        "decision_interval_s": 1.0,
        "episode_length_s": 60.0,
    }
    spec.update(fields)
    return ScenarioConfig(**spec)


def reserve_for_blocks(blocks: int, model: str = MODEL, tensor_parallel: int = 1) -> float:
    """``kv_reserve_gib`` that leaves exactly ``blocks`` KV blocks per replica (bf16, 0.9 of an H100)."""
    spec = MODELS[model]
    usable_gib = GPUS["h100-80gb"].memory_gib * 0.9
    weights_gib = spec.weight_bytes("bf16") / tensor_parallel / GIB
    per_token = spec.kv_bytes_per_token("bf16") * spec.kv_heads_per_gpu(tensor_parallel) / spec.num_kv_heads
    return usable_gib - weights_gib - (blocks + 0.5) * per_token * BLOCK_TOKENS / GIB


def step(sim: BatchSimulator, replicas: Sequence[float], steps: int = 1) -> list[StepStats]:
    """Step a batch-of-one ``sim`` ``steps`` times asking for ``replicas`` per agent."""
    desired = np.array([list(replicas)], dtype=np.float64)
    return [sim.step(desired) for _ in range(steps)]


def warm_sim(
    config: ScenarioConfig, tasks: Sequence[ScriptedTask], replicas: Sequence[float]
) -> BatchSimulator:
    """``scripted_sim`` stepped through the cold start (4 s) with ``replicas``; tasks should arrive later."""
    sim = scripted_sim(config, tasks)
    stats = step(sim, replicas, math.ceil(COLD_START_S / config.decision_interval_s))
    assert stats[0].cold_starts.sum() == sum(replicas)
    live = sim.state.rep[0][sim.state.rep[0]["agent"] >= 0]
    assert (live["ready_s"] <= sim.time_s[0]).all()  # serving from the next interval's start
    return sim


def rows(sim: BatchSimulator) -> NDArray[np.void]:
    """Request rows of environment 0, in creation order."""
    return sim.state.rq[0, : int(sim.state.env[0]["n_reqs"])]


def coef_of(config: ScenarioConfig, agent_index: int = 0) -> NDArray[np.float64]:
    return config.deployment.engines[agent_index].coefficient_array()


def it(coef: NDArray[np.float64], sequences: int, tokens: int, context: float, pairs: float) -> float:
    """One iteration's seconds (``perf.iteration_time_s``)."""
    return float(iteration_time_s(coef, float(sequences), float(tokens), float(context), float(pairs)))


def lone_request_s(
    coef: NDArray[np.float64], prompt: int, output: int, budget: int = 8192
) -> tuple[float, float]:
    """(TTFT, latency) of one request alone on an idle replica: prefill chunks, then one token each."""
    t = 0.0
    done = 0
    while done < prompt:
        chunk = min(budget, prompt - done)
        t += it(coef, 1, chunk, done, chunk * done + chunk * (chunk + 1) / 2)
        done += chunk
    ttft = t
    for k in range(1, output):
        t += it(coef, 1, 1, prompt + k - 1, prompt + k)  # reads prompt + k - 1 tokens, writes one
    return ttft, t


def near(expected: float) -> Any:
    """``pytest.approx`` to rounding: the kernel sums the same iteration times in another order."""
    return pytest.approx(expected, rel=1e-12, abs=1e-12)


# ------------------------------------------------------------------------------- one request
def test_one_request_on_a_warm_replica_takes_a_prefill_then_one_iteration_per_token() -> None:
    # Replica granted at 0, serving from 4.0; request at 5.25 with 100 prompt and 4 output tokens.
    config = scenario()
    coef = coef_of(config)
    sim = warm_sim(config, [ScriptedTask(5.25, (100.0, 4.0))], [1])
    step(sim, [1], 4)  # to t = 8
    # Prefill: 1 sequence, 100 tokens, no KV read, 100 x 101 / 2 causal pairs; it samples token 1.
    prefill = it(coef, 1, 100, 0, 100 * 101 / 2)
    # Decode k (k = 1, 2, 3) computes the KV of token k and samples token k + 1: it reads the
    # prompt and k - 1 generated tokens and attends over prompt + k keys.
    decodes = [it(coef, 1, 1, 100, 101), it(coef, 1, 1, 101, 102), it(coef, 1, 1, 102, 103)]
    (row,) = rows(sim)
    assert row["state"] == DONE and row["generated"] == 4 and row["preemptions"] == 0
    assert row["first_token_s"] - row["arrival_s"] == near(prefill)
    assert row["done_s"] - row["arrival_s"] == near(prefill + sum(decodes))
    metrics = episode_metrics(sim)
    assert metrics["ttft_mean_s"] == near(prefill)
    assert metrics["tpot_mean_s"] == near(sum(decodes) / 3)
    assert metrics["request_latency_mean_s"] == near(prefill + sum(decodes))
    assert metrics["task_latency_mean_s"] == near(prefill + sum(decodes))
    assert metrics["tasks_completed"] == 1 and metrics["requests_completed"] == 1
    assert metrics["throughput_tokens_per_s"] == pytest.approx(4 / 8.0)
    # The GPU is busy exactly while the four iterations run; the replica is billed 8 s.
    assert sim.totals.busy_gpu_s.sum() == near(prefill + sum(decodes))
    assert metrics["cost_usd"] == pytest.approx(8.0 * PRICE)
    assert metrics["gpu_utilization"] == pytest.approx((prefill + sum(decodes)) / 8.0)


def test_prompt_above_the_token_budget_is_prefilled_in_chunks() -> None:
    # max_num_batched_tokens = 64: a 150-token prompt is computed in chunks of 64, 64 and 22; each
    # chunk reads the KV of the chunks before it and attends over them plus itself.
    config = scenario([agent("coordinator", "coordinator", max_num_batched_tokens=64)])
    coef = coef_of(config)
    sim = warm_sim(config, [ScriptedTask(4.5, (150.0, 3.0))], [1])
    step(sim, [1], 2)
    chunks = [
        it(coef, 1, 64, 0, 64 * 65 / 2),
        it(coef, 1, 64, 64, 64 * 64 + 64 * 65 / 2),
        it(coef, 1, 22, 128, 22 * 128 + 22 * 23 / 2),
    ]
    decodes = [it(coef, 1, 1, 150, 151), it(coef, 1, 1, 151, 152)]
    (row,) = rows(sim)
    assert row["first_token_s"] - 4.5 == near(sum(chunks))
    assert row["done_s"] - 4.5 == near(sum(chunks) + sum(decodes))
    # Three iterations cost more than the one a 150-token budget would allow (fixed costs thrice).
    assert sum(chunks) > it(coef, 1, 150, 0, 150 * 151 / 2)
    assert lone_request_s(coef, 150, 3, budget=64) == (
        near(sum(chunks)),
        near(sum(chunks) + sum(decodes)),
    )


def test_a_one_token_answer_completes_at_its_first_token() -> None:
    config = scenario()
    coef = coef_of(config)
    sim = warm_sim(config, [ScriptedTask(4.0, (500.0, 1.0))], [1])
    step(sim, [1])
    (row,) = rows(sim)
    assert row["done_s"] == row["first_token_s"]
    assert row["done_s"] - 4.0 == near(it(coef, 1, 500, 0, 500 * 501 / 2))
    tpot = episode_metrics(sim)["tpot_mean_s"]
    assert isinstance(tpot, float) and math.isnan(tpot)  # TPOT needs two tokens or more


def test_a_second_request_joins_the_running_batch_at_the_next_iteration() -> None:
    # A (100 in, 3 out) at 5.0; B (50 in, 2 out) at 5.001, during A's prefill: the replica is busy,
    # so B waits for the iteration to end and is admitted beside A's first decode.
    config = scenario()
    coef = coef_of(config)
    sim = warm_sim(config, [ScriptedTask(5.0, (100.0, 3.0)), ScriptedTask(5.001, (50.0, 2.0))], [1])
    step(sim, [1], 2)
    e1 = 5.0 + it(coef, 1, 100, 0, 100 * 101 / 2)
    assert e1 > 5.001
    # A decodes (reads 100, attends 101) while B prefills 50 tokens (1275 pairs): 2 sequences, 51 tokens.
    e2 = e1 + it(coef, 2, 51, 100, 101 + 50 * 51 / 2)
    # Both decode: A reads 101 and attends 102, B reads 50 and attends 51.
    e3 = e2 + it(coef, 2, 2, 101 + 50, 102 + 51)
    a, b = rows(sim)
    assert a["first_token_s"] == near(e1)
    assert b["first_token_s"] == near(e2)
    assert a["done_s"] == near(e3) and b["done_s"] == near(e3)
    assert a["replica"] == b["replica"]
    # A batch of two is slower per iteration than either request alone: the batch shares the GPU.
    assert e3 - e2 > it(coef, 1, 1, 101, 102)


# ------------------------------------------------------------------------------- cold start
def test_cold_start_is_exact_and_not_rounded_to_decision_intervals() -> None:
    # From host memory the weights load in 0.25 s: 2 + 0.25 + 1 = 3.25 s. Granted at 0, the
    # replica serves from 3.25, inside the fourth interval, and takes the request queued at 0.3.
    config = scenario(weight_source="host_memory")
    engine = config.deployment.engines[0]
    assert engine.cold_start_s == pytest.approx(CONTAINER_S + WEIGHT_BYTES / (4.0 * WEIGHT_BYTES) + STARTUP_S)
    assert engine.cold_start_s == pytest.approx(3.25)
    sim = scripted_sim(config, [ScriptedTask(0.3, (100.0, 2.0))])
    stats = step(sim, [1], 3)
    assert [s.cold_starts[0, 0] for s in stats] == [1, 0, 0]
    view = sim.view()
    assert view.starting[0, 0] == 1 and view.active[0, 0] == 0 and view.queued[0, 0] == 1
    assert view.oldest_wait_s[0, 0] == pytest.approx(3.0 - 0.3)
    step(sim, [1])
    assert sim.view().active[0, 0] == 1
    (row,) = rows(sim)
    ttft, latency = lone_request_s(coef_of(config), 100, 2)
    assert row["first_token_s"] == near(3.25 + ttft)
    assert row["done_s"] == near(3.25 + latency)
    # Billed from the grant: the 3.25 s of starting count (4 whole seconds by t = 4).
    assert sim.totals.billed_gpu_s[0, 0] == pytest.approx(4.0)


def test_agent_scaled_to_zero_queues_its_requests_and_is_not_billed() -> None:
    config = scenario()
    sim = scripted_sim(config, [ScriptedTask(0.5, (100.0, 2.0))])
    step(sim, [0], 3)
    assert sim.totals.cost_usd[0] == 0.0 and sim.totals.billed_gpu_s.sum() == 0.0
    view = sim.view()
    assert view.queued[0, 0] == 1 and view.tasks_in_flight[0] == 1 and view.held_gpus[0] == 0
    assert view.oldest_wait_s[0, 0] == pytest.approx(2.5)
    step(sim, [1], 6)  # granted at 3, serving from 7
    (row,) = rows(sim)
    ttft, latency = lone_request_s(coef_of(config), 100, 2)
    assert row["first_token_s"] - 0.5 == near(3.0 + COLD_START_S - 0.5 + ttft)
    assert row["done_s"] == near(3.0 + COLD_START_S + latency)
    assert sim.totals.billed_gpu_s[0, 0] == pytest.approx(6.0)
    assert sim.totals.cost_usd[0] == pytest.approx(6.0 * PRICE)


# ------------------------------------------------------------------------------- workflow
def test_trace_task_runs_plan_then_specialist_then_aggregation(tmp_path: Path) -> None:
    # A trace gives the task's arrival (6.0 s) and the specialist call's tokens (300 in, 5 out);
    # the plan (40 in, 6 out) and the aggregation's output (3) are constant draws (cv 0). The
    # aggregation's prompt is the plan's prompt plus the specialist's answer: 40 + 5 = 45 tokens.
    trace = tmp_path / "requests.csv"
    trace.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n0.0,1,1\n6.0,300,5\n20.0,1,1\n", encoding="utf-8"
    )
    workload = WorkloadSpec(
        pattern="trace",
        aggregate_output_tokens_mean=3.0,
        aggregate_output_tokens_cv=0.0,
        trace=TraceSpec(source=str(trace), timestamp_unit="s", split="all", tokens_agent="specialist"),
    )
    config = scenario(
        [
            agent("coordinator", "coordinator", input_tokens_mean=40.0, output_tokens_mean=6.0),
            agent("specialist", invoke_probability=1.0),
        ],
        workload=workload,
        episode_length_s=20.0,
    )
    sim = simulator_for(config)
    sim.reset_env(0, np.random.default_rng(0))
    step(sim, [1, 1], 9)
    plan, call, aggregate = rows(sim)
    assert (plan["kind"], call["kind"], aggregate["kind"]) == (KIND_PLAN, KIND_SPECIALIST, KIND_AGGREGATE)
    assert (plan["prompt"], plan["output"]) == (40, 6)
    assert (call["agent"], call["prompt"], call["output"]) == (1, 300, 5)
    assert (aggregate["agent"], aggregate["prompt"], aggregate["output"]) == (0, 45, 3)
    coordinator, specialist = coef_of(config, 0), coef_of(config, 1)
    plan_s = lone_request_s(coordinator, 40, 6)[1]
    call_s = lone_request_s(specialist, 300, 5)[1]
    aggregate_s = lone_request_s(coordinator, 45, 3)[1]
    # The window starts at a random offset within a nudge of 1e-15 s, so arrivals are 6.0 to 1e-12.
    assert plan["arrival_s"] == pytest.approx(6.0, abs=1e-12)
    assert call["arrival_s"] == near(plan["done_s"])
    assert call["done_s"] - call["arrival_s"] == near(call_s)
    assert aggregate["arrival_s"] == near(call["done_s"])
    assert aggregate["done_s"] - aggregate["arrival_s"] == near(aggregate_s)
    metrics = episode_metrics(sim)
    assert metrics["tasks_completed"] == 1 and metrics["requests_created"] == 3
    assert metrics["task_latency_mean_s"] == pytest.approx(plan_s + call_s + aggregate_s, rel=1e-9)
    assert metrics["throughput_tokens_per_s"] == pytest.approx((6 + 5 + 3) / 9.0)


def test_task_waits_for_its_slowest_specialist() -> None:
    # Plan (20 in, 2 out), then two specialists in parallel on their own replicas: 50 in / 2 out
    # and 50 in / 40 out. The aggregation (20 + 2 + 40 = 62 in, 1 out) starts when the slow one ends.
    agents = [agent("coordinator", "coordinator"), agent("fast"), agent("slow")]
    config = scenario(agents, capacity_gpus=3)
    task = ScriptedTask(
        5.0, (20.0, 2.0), aggregate_output_tokens=1.0, calls=[(1, 50.0, 2.0), (2, 50.0, 40.0)]
    )
    sim = warm_sim(config, [task], [1, 1, 1])
    step(sim, [1, 1, 1], 2)
    _plan, fast, slow, aggregate = rows(sim)
    plan_s = lone_request_s(coef_of(config, 0), 20, 2)[1]
    slow_s = lone_request_s(coef_of(config, 2), 50, 40)[1]
    aggregate_s = lone_request_s(coef_of(config, 0), 62, 1)[1]
    assert fast["done_s"] < slow["done_s"]
    assert aggregate["prompt"] == 62 and aggregate["arrival_s"] == slow["done_s"]
    assert episode_metrics(sim)["task_latency_mean_s"] == pytest.approx(
        plan_s + slow_s + aggregate_s, rel=1e-9
    )


def test_task_without_specialist_calls_ends_at_its_plan() -> None:
    config = scenario([agent("coordinator", "coordinator"), agent("specialist")])
    sim = warm_sim(config, [ScriptedTask(4.5, (100.0, 3.0))], [1, 1])
    step(sim, [1, 1])
    metrics = episode_metrics(sim)
    assert metrics["requests_created"] == 1 and metrics["tasks_completed"] == 1
    assert metrics["task_latency_mean_s"] == near(lone_request_s(coef_of(config), 100, 3)[1])
    per_agent = metrics["per_agent"]
    assert isinstance(per_agent, dict) and per_agent["specialist"]["requests_completed"] == 0.0


# ------------------------------------------------------------------------------- task accounting
def test_delay_integrates_the_task_seconds_in_the_system() -> None:
    # One task from 4.25 to 4.25 + latency (about 2.4 s for 200 tokens): 0.75 task-s in [4, 5),
    # 1 in [5, 6), the rest in the interval where it completes; the sum is its latency.
    config = scenario()
    latency = lone_request_s(coef_of(config), 100, 200)[1]
    assert 1.75 < latency < 2.75
    sim = warm_sim(config, [ScriptedTask(4.25, (100.0, 200.0))], [1])
    delays = [s.delay_task_s[0] for s in step(sim, [1], 4)]
    assert delays[:2] == [pytest.approx(0.75), pytest.approx(1.0)]
    assert delays[2] == pytest.approx(4.25 + latency - 6.0)
    assert delays[3] == 0.0
    assert sum(delays) == pytest.approx(latency)


@pytest.mark.parametrize(("slo_factor", "attained"), [(0.5, 0.0), (2.0, 1.0)])
def test_a_task_later_than_its_slo_is_a_miss(slo_factor: float, attained: float) -> None:
    config = scenario()
    latency = lone_request_s(coef_of(config), 100, 50)[1]
    sim = warm_sim(config.replace(task_slo_s=slo_factor * latency), [ScriptedTask(4.5, (100.0, 50.0))], [1])
    stats = step(sim, [1], 2)
    assert sum(int(s.slo_misses[0]) for s in stats) == int(attained == 0.0)
    assert episode_metrics(sim)["slo_attainment"] == attained


@pytest.mark.parametrize(
    ("ttft_factor", "tpot_factor", "misses"),
    [(2.0, 2.0, 0), (0.5, 2.0, 1), (2.0, 0.5, 1), (0.5, 0.5, 1), (1.0, 1.0, 0)],
)
def test_goodput_counts_a_request_past_its_ttft_or_tpot_objective(
    ttft_factor: float, tpot_factor: float, misses: int
) -> None:
    # The request of the first test (100 prompt, 4 output tokens at 5.25): TTFT is its prefill,
    # TPOT its three decodes over three. At exactly its objective a request is good.
    config = scenario()
    coef = coef_of(config)
    ttft = it(coef, 1, 100, 0, 100 * 101 / 2)
    tpot = (it(coef, 1, 1, 100, 101) + it(coef, 1, 1, 101, 102) + it(coef, 1, 1, 102, 103)) / 3
    sim = warm_sim(config, [ScriptedTask(5.25, (100.0, 4.0))], [1])
    step(sim, [1], 4)
    (row,) = rows(sim)
    assert row["first_token_s"] - row["arrival_s"] == near(ttft)
    assert (row["done_s"] - row["first_token_s"]) / 3 == near(tpot)
    # The objectives as multiples of the times the kernel measured (factor 1: exactly at them).
    objectives = {
        "ttft_slo_s": ttft_factor * (row["first_token_s"] - row["arrival_s"]),
        "tpot_slo_s": tpot_factor * (row["done_s"] - row["first_token_s"]) / 3,
    }
    priced = config.replace(agents={"coordinator": objectives}, reward={"goodput_miss_usd": 0.02})
    sim = warm_sim(priced, [ScriptedTask(5.25, (100.0, 4.0))], [1])
    stats = step(sim, [1], 4)
    assert 5.25 < rows(sim)[0]["done_s"] < 6.0
    assert [int(s.goodput_misses.sum()) for s in stats] == [0, misses, 0, 0]  # counted as it completes
    goodput = [float(reward_components(priced, s)["goodput"][0]) for s in stats]
    assert goodput[1] == pytest.approx(-0.02 * misses / priced.reward_scale_usd)
    assert goodput[0] == goodput[2] == goodput[3] == 0.0


def test_goodput_judges_tpot_only_from_two_output_tokens() -> None:
    # A one-token answer has no TPOT: however tight the TPOT objective, only its TTFT counts.
    config = scenario(agents=[agent("coordinator", "coordinator", ttft_slo_s=10.0, tpot_slo_s=1e-9)])
    sim = warm_sim(config, [ScriptedTask(4.0, (500.0, 1.0)), ScriptedTask(4.5, (500.0, 2.0))], [1])
    stats = step(sim, [1])
    assert rows(sim)["generated"].tolist() == [1, 2] and (rows(sim)["state"] == DONE).all()
    assert int(stats[0].goodput_misses.sum()) == 1  # the two-token answer's TPOT
    relaxed = config.replace(agents={"coordinator": {"tpot_slo_s": 10.0}})
    sim = warm_sim(relaxed, [ScriptedTask(4.0, (500.0, 1.0)), ScriptedTask(4.5, (500.0, 2.0))], [1])
    assert int(step(sim, [1])[0].goodput_misses.sum()) == 0


def test_goodput_misses_are_counted_per_agent_when_their_requests_complete() -> None:
    # Plan at 4.5 on the coordinator, then a call to the specialist, whose TTFT objective is
    # tighter than its prefill: one miss, the specialist's, counted in the interval it completes.
    specialist = agent("specialist", ttft_slo_s=1e-6)
    config = scenario([agent("coordinator", "coordinator"), specialist])
    task = ScriptedTask(4.5, (20.0, 2.0), calls=[(1, 50.0, 3.0)])
    sim = warm_sim(config, [task], [1, 1])
    stats = step(sim, [1, 1], 2)
    misses = np.sum([s.goodput_misses[0] for s in stats], axis=0)
    assert misses.tolist() == [0, 1]
    specialist_row = rows(sim)[1]
    completed_in = int(specialist_row["done_s"]) - 4
    assert int(stats[completed_in].goodput_misses[0, 1]) == 1


def test_default_goodput_objectives_are_multiples_of_an_unloaded_mean_request() -> None:
    config = scenario([agent("coordinator", "coordinator", input_tokens_mean=100.0, output_tokens_mean=4.0)])
    coef = coef_of(config)
    ttft, latency = lone_request_s(coef, 100, 4)
    assert config.deployment.ttft_slo_s == (pytest.approx(TTFT_SLO_FACTOR * ttft, rel=1e-12),)
    assert config.deployment.tpot_slo_s == (pytest.approx(TPOT_SLO_FACTOR * (latency - ttft) / 3, rel=1e-12),)
    given = config.replace(agents={"coordinator": {"ttft_slo_s": 0.5, "tpot_slo_s": 0.02}})
    assert given.deployment.ttft_slo_s == (0.5,) and given.deployment.tpot_slo_s == (0.02,)


def test_in_flight_tasks_enter_latency_statistics_at_their_age() -> None:
    # Never served: the task arriving at 1.0 s is 4.0 s old at t = 5 and counts as such.
    config = scenario(task_slo_s=3.0)
    sim = scripted_sim(config, [ScriptedTask(1.0, (100.0, 10.0))])
    step(sim, [0], 5)
    metrics = episode_metrics(sim)
    assert metrics["task_latency_mean_s"] == pytest.approx(4.0)
    completed = metrics["task_latency_completed_mean_s"]
    assert isinstance(completed, float) and math.isnan(completed)
    assert metrics["slo_attainment"] == 0.0
    assert metrics["tasks_in_flight"] == 1 and metrics["backlog_requests"] == 1
