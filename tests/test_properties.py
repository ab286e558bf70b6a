"""Property-based tests: random small scenarios and random actions keep every invariant of the physics.

Hypothesis draws the agents (model, tensor-parallel degree, KV cache down to a few blocks, batch
limits, token counts), the pool, keep-alive, scale-down mode, billing increment, clock and
workload, then a sequence of actions (desired replicas, including negative, fractional and
above-maximum ones). After every step :func:`test_invariants.check_invariants` holds: nothing is
created or lost, the pool's capacity holds, costs and latencies are non-negative, no request's
first token comes after its last. When the pool can hold a replica of every agent, stopping the
arrivals and holding one replica each drains every task: no request is ever stuck.

The kernel is compiled once per process (and cached on disk), so each example costs milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripted import ScriptedStream
from test_core import FAST, reserve_for_blocks
from test_invariants import Running, check_invariants

from gpu_alloc_env.config import AgentSpec, Pattern, ScenarioConfig, WorkloadSpec
from gpu_alloc_env.core.simulator import BatchSimulator
from gpu_alloc_env.core.state import DONE

MODELS_TP = [
    ("llama-3.1-8b", 1),
    ("llama-3.1-8b", 2),
    ("mistral-7b", 1),
    ("qwen2.5-14b", 1),
    ("qwen2.5-14b", 2),
]

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def agent_specs(draw: st.DrawFn, index: int) -> AgentSpec:
    model, tp = draw(st.sampled_from(MODELS_TP))
    input_mean = draw(st.sampled_from([8.0, 60.0, 400.0]))
    output_mean = draw(st.sampled_from([1.0, 8.0, 40.0]))
    fields: dict[str, Any] = {}
    blocks = draw(st.sampled_from([None, 4, 12, 60]))
    if blocks is not None:
        # A cache of a few blocks, but at least a mean request and a bit.
        blocks = max(blocks, math.ceil((input_mean + output_mean) / 16) + 1)
        fields["kv_reserve_gib"] = reserve_for_blocks(blocks, model, tp)
    return AgentSpec(
        name="coordinator" if index == 0 else f"specialist{index}",
        role="coordinator" if index == 0 else "specialist",
        model=model,
        tensor_parallel=tp,
        max_replicas=draw(st.integers(1, 3)),
        priority=draw(st.sampled_from([1.0, 2.0, 3.0])),
        request_slo_s=10.0,
        input_tokens_mean=input_mean,
        input_tokens_cv=draw(st.sampled_from([0.0, 1.0])),
        output_tokens_mean=output_mean,
        output_tokens_cv=draw(st.sampled_from([0.0, 1.0])),
        invoke_probability=draw(st.sampled_from([0.0, 0.5, 1.0])),
        max_num_seqs=draw(st.sampled_from([None, 2, 8])),
        max_num_batched_tokens=draw(st.sampled_from([None, 32, 256])),
        **fields,
    )


@st.composite
def scenarios(draw: st.DrawFn) -> ScenarioConfig:
    count = draw(st.integers(1, 3))
    agents = tuple(draw(agent_specs(i)) for i in range(count))
    widest = max(a.tensor_parallel for a in agents)
    dt = draw(st.sampled_from([0.25, 0.5, 1.0]))
    steps = draw(st.integers(4, 40))
    pattern: Pattern = draw(st.sampled_from(["steady", "bursty"]))
    workload = WorkloadSpec(
        pattern=pattern,
        task_rate_tps=draw(st.sampled_from([0.5, 2.0, 4.0])),
        burst_peak_to_mean=2.0,
        burst_mean_high_s=2.0,
        burst_mean_low_s=4.0,
        aggregate_output_tokens_mean=draw(st.sampled_from([1.0, 10.0])),
    )
    return ScenarioConfig(
        name="random",
        agents=agents,
        workload=workload,
        platform=FAST,
        capacity_gpus=draw(st.integers(widest, 6)),
        keep_alive_s=draw(st.sampled_from([0.0, 0.5, 3.0])),
        billing_increment_s=draw(st.sampled_from([0.25, 1.0, 60.0])),
        scale_down=draw(st.sampled_from(["drain", "kill"])),
        weight_source=draw(st.sampled_from(["remote", "ssd", "host_memory"])),
        engine_startup_s=draw(st.sampled_from([0.0, 1.0])),
        decision_interval_s=dt,
        episode_length_s=steps * dt,
        task_slo_s=5.0,
    )


@dataclass(frozen=True)
class Case:
    config: ScenarioConfig
    actions: list[list[list[float]]]
    """(steps, B, N) desired replicas."""
    seed: int


@st.composite
def cases(draw: st.DrawFn, batch: int = 1) -> Case:
    config = draw(scenarios())
    top = max(a.max_replicas for a in config.agents) + 1.5
    value = st.one_of(st.integers(0, 3).map(float), st.floats(-1.0, top, allow_nan=False))
    row = st.lists(value, min_size=config.num_agents, max_size=config.num_agents)
    # Actions held for a few intervals at a time, so that replicas get past their cold starts and
    # serve, drain, get killed or kept alive, not only flicker.
    segment = st.tuples(st.lists(row, min_size=batch, max_size=batch), st.integers(1, 8))
    segments = draw(st.lists(segment, min_size=1, max_size=config.episode_steps))
    actions = [action for action, repeat in segments for _ in range(repeat)]
    while len(actions) < config.episode_steps:
        actions += actions
    return Case(config, actions[: config.episode_steps], draw(st.integers(0, 2**16)))


def run_case(case: Case, batch: int) -> tuple[BatchSimulator, Running]:
    sim = BatchSimulator(case.config, batch_size=batch)
    for env in range(batch):
        sim.reset_env(env, np.random.default_rng(case.seed + env))
    acc = Running(batch, sim.num_agents)
    for action in case.actions:
        desired = np.array(action, dtype=np.float64)
        stats = sim.step(desired)
        check_invariants(sim, stats, desired, acc)
        assert np.all(stats.cost_usd >= 0.0) and np.all(sim.totals.cost_usd >= 0.0)
    return sim, acc


@SETTINGS
@given(cases(batch=2))
def test_random_scenarios_and_actions_keep_every_invariant(case: Case) -> None:
    sim, _ = run_case(case, batch=2)
    assert np.all(sim.view().held_gpus <= case.config.capacity_gpus)
    assert np.all(sim.totals.billed_gpu_s >= sim.totals.busy_gpu_s - 1e-9)


@SETTINGS
@given(cases())
def test_every_task_completes_once_arrivals_stop_and_every_agent_is_served(case: Case) -> None:
    config = case.config
    if config.capacity_gpus < sum(a.tensor_parallel for a in config.agents):
        config = config.replace(capacity_gpus=sum(a.tensor_parallel for a in config.agents))
        case = Case(config, case.actions, case.seed)
    sim, acc = run_case(case, batch=1)
    sim.streams[0] = ScriptedStream([])  # type: ignore[call-overload]
    one_each = np.ones((1, config.num_agents))
    # Generous: the backlog is at most a few hundred small requests on one replica per agent.
    for _ in range(int(900.0 / config.decision_interval_s)):
        if sim.tasks_in_flight[0] == 0:
            break
        stats = sim.step(one_each)
        check_invariants(sim, stats, one_each, acc)
    assert sim.tasks_in_flight[0] == 0
    rq = sim.state.rq[0, : int(sim.state.env[0]["n_reqs"])]
    assert np.all(rq["state"] == DONE) and np.all(rq["generated"] == rq["output"])
    assert sim.tasks_completed[0] == sim.totals.tasks_arrived[0]
