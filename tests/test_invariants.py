"""Invariants that hold at every step of random rollouts, whatever the actions; batched equals single.

:func:`check_invariants` reads the state tables after a step and checks that nothing is created or
lost (tasks, requests, KV blocks, replicas), that the pool's capacity holds, that billing is the
rounded-up lifetime of every replica and that every counter (preemptions, truncations) matches the
rows it counts. ``test_properties`` runs the same checks over random scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from numpy.typing import NDArray
from test_core import reserve_for_blocks

from gpu_alloc_env.config import ScenarioConfig, TraceSpec
from gpu_alloc_env.core.allocation import fill_replicas, priority_fill
from gpu_alloc_env.core.replay import ReplayPart
from gpu_alloc_env.core.simulator import BatchSimulator, StepStats
from gpu_alloc_env.core.state import ACTIVE, DONE, DRAINING, FREE, KEPT, NO_ROW, QUEUED, RUNNING, STARTING
from gpu_alloc_env.scenarios import fleet, make_scenario
from gpu_alloc_env.serving.engine import BLOCK_TOKENS

EPS = 1e-9


@dataclass
class Running:
    """Cumulative counts of a rollout, from the step outputs."""

    batch: int
    num_agents: int
    tasks_arrived: NDArray[np.int64] = field(init=False)
    tasks_completed: NDArray[np.int64] = field(init=False)
    requests_arrived: NDArray[np.int64] = field(init=False)
    requests_completed: NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        self.tasks_arrived = np.zeros(self.batch, dtype=np.int64)
        self.tasks_completed = np.zeros(self.batch, dtype=np.int64)
        self.requests_arrived = np.zeros((self.batch, self.num_agents), dtype=np.int64)
        self.requests_completed = np.zeros((self.batch, self.num_agents), dtype=np.int64)

    def add(self, stats: StepStats) -> None:
        self.tasks_arrived += stats.tasks_arrived
        self.tasks_completed += stats.tasks_completed
        self.requests_arrived += stats.requests_arrived
        self.requests_completed += stats.requests_completed


def _walk(rq: NDArray[np.void], head: int, tail: int, limit: int) -> list[int]:
    """Rows of a doubly linked list from ``head``, checking the back links; at most ``limit + 1``."""
    seen: list[int] = []
    prev, i = NO_ROW, head
    while i != NO_ROW and len(seen) <= limit:
        assert rq[i]["prev"] == prev, f"row {i}: prev {rq[i]['prev']} != {prev}"
        seen.append(i)
        prev, i = i, int(rq[i]["next"])
    assert prev == tail
    return seen


def check_invariants(
    sim: BatchSimulator, stats: StepStats, desired: NDArray[np.float64], acc: Running
) -> None:
    """Every invariant of the state after ``sim.step(desired)`` returned ``stats``."""
    acc.add(stats)
    p = sim.params
    config = sim.config
    n_agents = sim.num_agents
    agents = p.agents
    now = sim.time_s
    view = sim.view()
    wanted, _ = sim.repair(desired)
    # Allocation: whole replicas within [0, max], cut only where the pool could not hold them.
    assert np.all(stats.replicas >= 0) and np.all(stats.replicas <= agents["max_replicas"])
    assert np.all(stats.replicas <= wanted)
    np.testing.assert_array_equal(stats.repairs["cut_for_capacity"], stats.replicas < wanted)
    np.testing.assert_array_equal(stats.replicas, view.active + view.starting)
    assert np.all(stats.repair_replicas >= 0.0)
    # Money: cost is the billed GPU-seconds at the price; nothing negative.
    assert np.all(stats.billed_gpu_s >= 0.0) and np.all(stats.busy_gpu_s >= -EPS)
    np.testing.assert_allclose(stats.cost_usd, stats.billed_gpu_s.sum(axis=1) * p.price_per_gpu_s, rtol=1e-12)
    assert np.all(stats.busy_gpu_s.sum(axis=1) <= p.capacity_gpus * sim.dt_s + EPS)
    assert np.all(sim.totals.busy_gpu_s.sum(axis=1) <= sim.totals.billed_gpu_s.sum(axis=1) + EPS)
    # Tasks: every task that arrived is completed or in flight.
    np.testing.assert_array_equal(acc.tasks_arrived, acc.tasks_completed + sim.tasks_in_flight)
    np.testing.assert_array_equal(sim.totals.tasks_arrived, acc.tasks_arrived)
    np.testing.assert_array_equal(sim.tasks_completed, acc.tasks_completed)
    assert np.all(stats.delay_task_s >= -EPS)
    assert np.all(stats.delay_task_s <= (sim.tasks_in_flight + stats.tasks_completed) * sim.dt_s + EPS)
    # Capacity: the GPUs of every replica not stopped.
    assert np.all(view.held_gpus <= p.capacity_gpus)
    for b in range(sim.batch_size):
        rq = sim.state.rq[b, : int(sim.state.env[b]["n_reqs"])]
        rep = sim.state.rep[b]
        env = sim.state.env[b]
        assert env["future_reqs"] >= 0 and env["tasks_in_flight"] >= 0
        # Requests: every one created is done, queued or running; the counters agree.
        assert np.isin(rq["state"], (QUEUED, RUNNING, DONE)).all()
        assert rq.size == acc.requests_arrived[b].sum()
        for n in range(n_agents):
            mine = rq["agent"] == n
            assert (mine & (rq["state"] == DONE)).sum() == acc.requests_completed[b, n]
            queued = np.flatnonzero(mine & (rq["state"] == QUEUED))
            assert queued.size == view.queued[b, n]
            walk = _walk(
                rq, int(sim.state.agent[b, n]["q_head"]), int(sim.state.agent[b, n]["q_tail"]), queued.size
            )
            assert sorted(walk) == queued.tolist()
            assert (mine & (rq["state"] == RUNNING)).sum() == view.running[b, n]
        # Counters of what happened to requests match the rows.
        np.testing.assert_array_equal(
            np.bincount(rq["agent"], weights=rq["preemptions"], minlength=n_agents), sim.totals.preemptions[b]
        )
        np.testing.assert_array_equal(
            np.bincount(rq["agent"], weights=rq["truncated"], minlength=n_agents), sim.totals.truncated[b]
        )
        assert np.all(sim.totals.requeued[b] >= 0)
        # Request rows: sizes within what a replica accepts, tokens within the output.
        limit = agents["max_len"][rq["agent"]]
        assert np.all(rq["prompt"] >= 1) and np.all(rq["prompt"] + rq["output"] <= limit)
        assert np.all((rq["generated"] >= 0) & (rq["generated"] <= rq["output"]))
        waiting = rq[rq["state"] == QUEUED]
        assert np.all(waiting["computed"] == 0) and np.all(waiting["blocks"] == 0)
        assert np.all(waiting["target"] == waiting["prompt"] + waiting["generated"])
        assert np.all(np.isinf(rq["done_s"][rq["state"] != DONE]))
        done = rq[rq["state"] == DONE]
        assert np.all(done["generated"] == done["output"])
        ttft = done["first_token_s"] - done["arrival_s"]
        latency = done["done_s"] - done["arrival_s"]
        assert np.all(ttft >= 0.0) and np.all(latency >= ttft) and np.all(done["done_s"] <= now[b] + EPS)
        # No request beats its lone prefill, nor a weights-read per later token.
        coef = p.coef[done["agent"]]
        prompt = done["prompt"].astype(np.float64)
        linear = np.maximum(coef[:, 2], coef[:, 3] * prompt)
        floor = (
            coef[:, 0] + coef[:, 1] + linear + coef[:, 4] * prompt + coef[:, 6] * prompt * (prompt + 1) / 2
        )
        assert np.all(ttft >= floor * (1 - 1e-9))
        per_token = coef[:, 0] + coef[:, 1] + coef[:, 2]
        assert np.all(latency - ttft >= (done["generated"] - 1) * per_token * (1 - 1e-9))
        # Replicas: counts per state, running lists, KV blocks, billing.
        for code, counts in (
            (STARTING, view.starting),
            (ACTIVE, view.active),
            (DRAINING, view.draining),
            (KEPT, view.kept_alive),
        ):
            live = rep["agent"][rep["state"] == code]
            np.testing.assert_array_equal(np.bincount(live, minlength=n_agents), counts[b])
        held = rep[rep["state"] != FREE]
        assert view.held_gpus[b] == agents["gpus"][held["agent"]].sum()
        kv_used = np.zeros(n_agents, dtype=np.int64)
        for r in np.flatnonzero(rep["state"] != FREE):
            row = rep[r]
            n = int(row["agent"])
            batch = _walk(rq, int(row["run_head"]), int(row["run_tail"]), int(row["n_run"]))
            assert len(batch) == row["n_run"] <= agents["max_seqs"][n]
            if row["state"] in (STARTING, KEPT):
                assert not batch
            assert all(
                rq[i]["state"] == RUNNING and rq[i]["replica"] == r and rq[i]["agent"] == n for i in batch
            )
            blocks = rq["blocks"][batch]
            assert row["kv_used"] == blocks.sum() <= agents["kv_blocks"][n]
            assert np.all(blocks * BLOCK_TOKENS >= np.maximum(rq["computed"][batch], rq["target"][batch]))
            if row["state"] in (ACTIVE, DRAINING):
                kv_used[n] += row["kv_used"]
            lifetime = now[b] - row["start_s"]
            increments = row["billed_s"] / p.billing_increment_s
            assert abs(increments - round(increments)) < 1e-6
            assert lifetime - EPS <= row["billed_s"] < lifetime + p.billing_increment_s + EPS
        np.testing.assert_array_equal(kv_used, view.kv_used_blocks[b])
        running_rows = rq[rq["state"] == RUNNING]
        assert np.isin(rep["state"][running_rows["replica"]], (ACTIVE, DRAINING)).all()
    assert config.capacity_gpus == p.capacity_gpus


def random_actions(
    rng: np.random.Generator, max_replicas: NDArray[np.float64], batch: int
) -> NDArray[np.float64]:
    """Requests that exercise every repair and transition: negative, above max, fractional, on/off."""
    n = max_replicas.size
    kind = rng.integers(0, 4)
    if kind == 0:
        return rng.uniform(-0.5, 1.5, size=(batch, n)) * max_replicas
    if kind == 1:
        return np.where(rng.random((batch, n)) < 0.5, 0.0, max_replicas) * np.ones((batch, 1))
    if kind == 2:
        return rng.integers(0, 3, size=(batch, n)).astype(np.float64)
    return rng.exponential(1.5, size=(batch, n))


def _tight() -> ScenarioConfig:
    """``paper`` with a code agent whose cache holds 6,400 tokens and whose iterations take 512."""
    paper = make_scenario("paper", episode_length_s=60.0, workload={"task_rate_tps": 6.0})
    return paper.replace(
        agents={
            "code": {"kv_reserve_gib": reserve_for_blocks(400, "qwen2.5-32b"), "max_num_batched_tokens": 512}
        }
    )


FAST_STARTS = {"weight_source": "host_memory", "engine_startup_s": 0.0}
"""Cold starts of 8 to 33 s instead of 30 to 67 s, so that short rollouts serve."""

CASES: dict[str, ScenarioConfig] = {
    "paper": make_scenario("paper", episode_length_s=120.0),
    "paper_fast_starts": make_scenario("paper", episode_length_s=60.0, **FAST_STARTS),
    "bursty": make_scenario("bursty", episode_length_s=60.0, workload={"task_rate_tps": 6.0}, **FAST_STARTS),
    "diurnal": make_scenario("diurnal", episode_length_s=60.0, **FAST_STARTS),
    "fleet8": fleet(8).replace(episode_length_s=30.0, **FAST_STARTS),
    "keep_alive": make_scenario("paper", episode_length_s=60.0, keep_alive_s=15.0, **FAST_STARTS),
    "kill": make_scenario("paper", episode_length_s=60.0, scale_down="kill", keep_alive_s=0.0, **FAST_STARTS),
    "tight_kv": _tight().replace(**FAST_STARTS),
    "billing_60s": make_scenario("paper", episode_length_s=60.0, billing_increment_s=60.0, **FAST_STARTS),
    "decisions_10ms": make_scenario("paper", decision_interval_s=0.01, episode_length_s=3.0),
}


def rollout(config: ScenarioConfig, batch: int, seed: int, warm_s: float = 15.0) -> BatchSimulator:
    """Random actions (after ``warm_s`` at every agent's maximum), checking the invariants at every step."""
    sim = BatchSimulator(config, batch_size=batch)
    for env in range(batch):
        sim.reset_env(env, np.random.default_rng(100 * seed + env))
    rng = np.random.default_rng(seed)
    acc = Running(batch, sim.num_agents)
    for _ in range(config.episode_steps):
        if sim.time_s[0] < warm_s:
            desired = sim.max_replicas * np.ones((batch, 1))
        else:
            desired = random_actions(rng, sim.max_replicas, batch)
        stats = sim.step(desired)
        check_invariants(sim, stats, desired, acc)
    return sim


@pytest.mark.parametrize("name", list(CASES))
def test_random_rollout_keeps_every_invariant(name: str) -> None:
    sim = rollout(CASES[name], 3, seed=7, warm_s=45.0 if name == "paper" else 15.0)
    assert sim.totals.tasks_arrived.sum() > 0
    if name not in ("decisions_10ms",):
        assert sim.tasks_completed.sum() > 0
    if name == "tight_kv":
        assert sim.totals.preemptions.sum() > 0 and sim.totals.truncated.sum() > 0
    if name == "kill":
        assert sim.totals.requeued.sum() > 0
    if name == "keep_alive":
        assert sim.view().kept_alive.sum() + sim.totals.cold_starts.sum() > 0


def test_the_checks_catch_a_request_lost_from_its_queue() -> None:
    config = CASES["paper"]
    sim = BatchSimulator(config, batch_size=1)
    sim.reset_env(0, np.random.default_rng(0))
    acc = Running(1, sim.num_agents)
    desired = np.zeros((1, config.num_agents))
    for _ in range(3):
        stats = sim.step(desired)
        check_invariants(sim, stats, desired, acc)
    assert sim.queued[0, 0] > 1
    head = int(sim.state.agent[0, 0]["q_head"])
    sim.state.agent[0, 0]["q_head"] = sim.state.rq[0, head]["next"]  # unlink the head, silently
    sim.state.rq[0, int(sim.state.agent[0, 0]["q_head"])]["prev"] = NO_ROW
    stats = sim.step(desired)
    with pytest.raises(AssertionError):
        check_invariants(sim, stats, desired, acc)


def test_a_task_arriving_at_an_interval_boundary_is_not_lost() -> None:
    # dt = 0.1: Python's interval 6 is [0.6000000000000001, 0.7000000000000001), the kernel's ends at
    # 0.1 summed seven times = 0.7. A replayed request at 0.7 is drawn into interval 6 and skipped.
    trace = TraceSpec(source="unused.csv", timestamp_unit="s", split="all")
    config = make_scenario(
        "paper", decision_interval_s=0.1, episode_length_s=2.0, workload={"pattern": "trace", "trace": trace}
    )
    part = ReplayPart(
        arrival_s=np.array([0.7]),
        input_tokens=np.array([10]),
        output_tokens=np.array([2]),
        start_s=0.0,
        end_s=2.0,  # an episode's window exactly: the offset is 0
    )
    sim = BatchSimulator(config, replay=part)
    sim.reset_env(0, np.random.default_rng(0))
    acc = Running(1, sim.num_agents)
    desired = np.zeros((1, config.num_agents))
    for _ in range(config.episode_steps):
        stats = sim.step(desired)
        check_invariants(sim, stats, desired, acc)
    assert sim.totals.tasks_arrived[0] == 1 and sim.tasks_in_flight[0] == 1


def test_batch_of_three_steps_like_three_batches_of_one() -> None:
    config = make_scenario(
        "bursty", episode_length_s=90.0, keep_alive_s=10.0, workload={"task_rate_tps": 5.0}
    )
    batched = BatchSimulator(config, batch_size=3)
    singles = [BatchSimulator(config, batch_size=1) for _ in range(3)]
    for env in range(3):
        batched.reset_env(env, np.random.default_rng(env))
        singles[env].reset_env(0, np.random.default_rng(env))
    rng = np.random.default_rng(11)
    for k in range(config.episode_steps):
        desired = (
            batched.max_replicas * np.ones((3, 1))
            if k < 30
            else rng.uniform(0.0, 5.0, size=(3, config.num_agents))
        )
        stats = batched.step(desired)
        for env, single in enumerate(singles):
            one = single.step(desired[env : env + 1])
            for name in (
                "tasks_arrived",
                "tasks_completed",
                "task_latency_sum_s",
                "delay_task_s",
                "requests_arrived",
                "requests_completed",
                "billed_gpu_s",
                "busy_gpu_s",
                "cold_starts",
                "preemptions",
                "requeued",
                "evicted",
                "cost_usd",
                "replicas",
            ):
                np.testing.assert_array_equal(getattr(stats, name)[env], getattr(one, name)[0], err_msg=name)
    for env, single in enumerate(singles):
        count = int(single.state.env[0]["n_reqs"])
        assert count == batched.state.env[env]["n_reqs"] and count > 0
        np.testing.assert_array_equal(batched.state.rq[env, :count], single.state.rq[0, :count])
        np.testing.assert_array_equal(batched.state.rep[env], single.state.rep[0])
    assert batched.tasks_completed.sum() > 0


# ------------------------------------------------------------------------------- repairs and sharing
def test_repair_of_feasible_requests_is_the_identity() -> None:
    sim = BatchSimulator(make_scenario("paper"), batch_size=3)  # max replicas 4, 2, 6, 4
    feasible = np.array([[1.0, 2.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0], [4.0, 2.0, 6.0, 4.0]])
    replicas, repairs = sim.repair(feasible)
    np.testing.assert_array_equal(replicas, feasible)
    assert not any(mask.any() for mask in repairs.values())


def test_repair_reports_each_kind_on_the_agent_it_touched() -> None:
    # -1 -> 0 (negative); 2.6 -> 2 (above the reasoning agent's max of 2); 1.4 -> 1 (rounded);
    # 9 -> 4 (above max). 0 + 8 + 1 + 4 = 13 GPUs fit the 16: no cut.
    sim = BatchSimulator(make_scenario("paper"), batch_size=1)
    sim.reset_env(0, np.random.default_rng(0))
    stats = sim.step(np.array([[-1.0, 2.6, 1.4, 9.0]]))
    assert stats.replicas[0].tolist() == [0, 2, 1, 4]
    assert stats.repairs["clipped_negative"][0].tolist() == [True, False, False, False]
    assert stats.repairs["clipped_above_max"][0].tolist() == [False, True, False, True]
    assert stats.repairs["rounded_to_integer"][0].tolist() == [False, False, True, False]
    assert stats.repairs["cut_for_capacity"][0].tolist() == [False, False, False, False]
    assert stats.repair_replicas[0] == pytest.approx(1.0 + 0.6 + 0.4 + 5.0)


def test_repair_over_capacity_cuts_by_priority() -> None:
    # Ask for every maximum: 4 + 8 + 6 + 4 = 22 GPUs of 16. One replica each first (1 + 4 + 1 + 1
    # = 7), then rounds of one more each in priority order (coordinator 3, reasoning and code 2,
    # retrieval 1): 2, 2, 2, 2 (14), then the coordinator's and code's third (16); retrieval's
    # third does not fit.
    sim = BatchSimulator(make_scenario("paper"), batch_size=1)
    sim.reset_env(0, np.random.default_rng(0))
    stats = sim.step(np.array([[4.0, 2.0, 6.0, 4.0]]))
    assert stats.replicas[0].tolist() == [3, 2, 3, 2]
    assert (stats.replicas[0] * sim.gpus_per_replica).sum() == 16
    assert stats.repairs["cut_for_capacity"][0].tolist() == [True, False, True, True]


def test_priority_fill_serves_highest_priority_minimums_when_they_do_not_all_fit() -> None:
    # Minimums 3, 2, 2 with priorities ordering agent 2 first, then 0, then 1; 5 to share:
    # agent 2 gets 2, agent 0 gets 3, agent 1 nothing.
    alloc = priority_fill(
        minimum=np.array([[3.0, 2.0, 2.0]]),
        cap=np.array([[6.0, 6.0, 6.0]]),
        weight=np.array([[1.0, 1.0, 1.0]]),
        capacity=np.array([5.0]),
        order=np.array([2, 0, 1]),
    )
    np.testing.assert_allclose(alloc, [[3.0, 0.0, 2.0]])


def test_priority_fill_passes_a_capped_agents_excess_on() -> None:
    # 10 to share, minimums 1 each (7 left), weights 6:1:0. Agent 0's share 6/7 x 7 = 6 is capped
    # at 1 more (cap 2); the 6 it cannot take pass on to agent 1, the only other weight.
    alloc = priority_fill(
        minimum=np.array([[1.0, 1.0, 1.0]]),
        cap=np.array([[2.0, 9.0, 3.0]]),
        weight=np.array([[6.0, 1.0, 0.0]]),
        capacity=np.array([10.0]),
        order=np.array([0, 1, 2]),
    )
    np.testing.assert_allclose(alloc, [[2.0, 7.0, 1.0]])
    assert alloc.sum() == pytest.approx(10.0)


def test_fill_replicas_rounds_shares_to_whole_replicas_and_hands_out_the_rest() -> None:
    # paper's sizes (1, 4, 1, 1 GPUs) and caps (4, 2, 6, 4 replicas), equal weights, 16 GPUs: one
    # replica each (7 GPUs), the other 9 shared 2.25 each -> 3.25, 6.25, 3.25, 3.25 GPUs -> 3, 1,
    # 3, 3 replicas (13 GPUs); the 3 left go one replica at a time, in order, to agents cut by the
    # rounding that still fit: 4, 1, 4, 4.
    replicas = fill_replicas(
        active=np.ones((1, 4), dtype=bool),
        cap_replicas=np.array([[4.0, 2.0, 6.0, 4.0]]),
        weight=np.ones((1, 4)),
        gpus_per_replica=np.array([1, 4, 1, 1]),
        capacity_gpus=16.0,
        order=np.array([0, 1, 2, 3]),
    )
    np.testing.assert_array_equal(replicas, [[4.0, 1.0, 4.0, 4.0]])
