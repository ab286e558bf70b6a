"""Replica lifecycle and billing: cold starts, scale-down order, drain, kill, keep-alive, eviction, priority.

The test platform (``test_core.FAST``) starts an 8B replica in 2 s of container start, 1 s of weight
loading from SSD (4 s from remote storage, 0.25 s from host memory) and 1 s of engine start-up, and
charges $0.001 per GPU-second billed in whole seconds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scripted import ScriptedTask, scripted_sim
from test_core import (
    COLD_START_S,
    CONTAINER_S,
    PRICE,
    STARTUP_S,
    WEIGHT_BYTES,
    agent,
    coef_of,
    it,
    lone_request_s,
    near,
    rows,
    scenario,
    step,
    warm_sim,
)

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.state import DONE, QUEUED
from gpu_alloc_env.observation import ObservationLayout
from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.serving.models import MODELS

LONG = (100.0, 300.0)
"""A request that decodes for about 3.5 s on an 8B replica, across several decision intervals."""


def two_replica_scenario(**fields: Any) -> ScenarioConfig:
    return scenario([agent("coordinator", "coordinator", max_replicas=2)], **fields)


# ------------------------------------------------------------------------------- cold starts
@pytest.mark.parametrize(("source", "load_s"), [("remote", 4.0), ("ssd", 1.0), ("host_memory", 0.25)])
def test_cold_start_is_container_plus_weights_over_the_tiers_bandwidth_plus_startup(
    source: str, load_s: float
) -> None:
    config = scenario(weight_source=source)
    engine = config.deployment.engines[0]
    assert engine.weight_load_s == pytest.approx(load_s)
    assert engine.cold_start_s == pytest.approx(CONTAINER_S + load_s + STARTUP_S)
    sim = scripted_sim(config, [ScriptedTask(0.5, (100.0, 2.0))])
    step(sim, [1], 8)
    (row,) = rows(sim)
    ttft, latency = lone_request_s(coef_of(config), 100, 2)
    assert row["first_token_s"] == near(engine.cold_start_s + ttft)
    assert row["done_s"] == near(engine.cold_start_s + latency)
    assert sim.totals.cold_starts[0, 0] == 1


def test_platform_presets_give_the_cold_starts_of_their_tiers() -> None:
    # runpod: 5 s container, SSD at 3.4 GB/s, 20 s engine start-up.
    paper = make_scenario("paper")
    by_name = dict(zip([a.name for a in paper.agents], paper.deployment.engines, strict=True))
    assert by_name["coordinator"].cold_start_s == pytest.approx(5.0 + WEIGHT_BYTES / 3.4e9 + 20.0)
    weights_70b = MODELS["llama-3.3-70b"].weight_bytes("bf16")
    assert by_name["reasoning"].cold_start_s == pytest.approx(5.0 + weights_70b / 3.4e9 + 20.0)
    cached = make_scenario("paper", weight_source="host_memory", engine_startup_s=0.0, platform="modal")
    assert cached.deployment.engines[0].cold_start_s == pytest.approx(1.0 + WEIGHT_BYTES / 5.1e9)


# ------------------------------------------------------------------------------- scale-down order
@pytest.mark.parametrize("scale_down", ["drain", "kill"])
def test_a_starting_replica_is_cancelled_before_a_serving_one(scale_down: str) -> None:
    # Serving A from 5.0; a second replica granted at 5 and taken away at 6, while it starts:
    # the starting one is cancelled (billed its second), A's replica is untouched.
    config = two_replica_scenario(scale_down=scale_down)
    sim = warm_sim(config, [ScriptedTask(5.0, LONG)], [1])
    step(sim, [1])
    step(sim, [2])
    assert sim.view().starting[0, 0] == 1
    stats = step(sim, [1])[0]
    view = sim.view()
    assert (view.starting[0, 0], view.active[0, 0], view.draining[0, 0]) == (0, 1, 0)
    assert stats.requeued[0, 0] == 0
    step(sim, [1], 4)
    (a,) = rows(sim)
    assert a["done_s"] == near(5.0 + lone_request_s(coef_of(config), *map(int, LONG))[1])
    assert sim.totals.cold_starts[0, 0] == 2
    # One replica for 11 s (to t = 11), the cancelled one for 1 s.
    assert sim.totals.billed_gpu_s[0, 0] == pytest.approx(11.0 + 1.0)


@pytest.mark.parametrize("scale_down", ["drain", "kill"])
def test_an_idle_replica_is_released_before_a_busy_one(scale_down: str) -> None:
    config = two_replica_scenario(scale_down=scale_down)
    sim = warm_sim(config, [ScriptedTask(5.0, LONG)], [2])
    step(sim, [2], 2)
    stats = step(sim, [1])[0]
    view = sim.view()
    assert (view.active[0, 0], view.draining[0, 0], view.held_gpus[0]) == (1, 0, 1)
    assert stats.requeued[0, 0] == 0
    step(sim, [1], 3)
    (a,) = rows(sim)
    assert a["done_s"] == near(5.0 + lone_request_s(coef_of(config), *map(int, LONG))[1])


# ------------------------------------------------------------------------------- drain
@pytest.mark.parametrize("keep_alive_s", [0.0, 5.0])
def test_a_draining_replica_finishes_its_batch_admits_nothing_and_then_stops(keep_alive_s: float) -> None:
    # A (100 in, 300 out) from 5.0, done at about 8.5; scaled to zero at 6; B arrives at 6.5.
    config = scenario(keep_alive_s=keep_alive_s)
    coef = coef_of(config)
    sim = warm_sim(config, [ScriptedTask(5.0, LONG), ScriptedTask(6.5, (100.0, 2.0))], [1])
    step(sim, [1], 2)
    stats = step(sim, [0])[0]
    view = sim.view()
    # Draining: serving A, billed, holding its GPU, not counted as a replica of the allocation.
    assert (view.draining[0, 0], view.active[0, 0], view.held_gpus[0]) == (1, 0, 1)
    assert stats.replicas[0, 0] == 0 and stats.billed_gpu_s[0, 0] == pytest.approx(1.0)
    assert (view.queued[0, 0], view.running[0, 0]) == (1, 1)  # B is not admitted beside A
    step(sim, [0], 3)  # to t = 10
    a, b = rows(sim)
    a_done = 5.0 + lone_request_s(coef, *map(int, LONG))[1]
    assert 8.0 < a_done < 9.0
    assert a["state"] == DONE and a["done_s"] == near(a_done)
    assert b["state"] == QUEUED
    view = sim.view()
    assert view.draining[0, 0] == 0
    assert view.kept_alive[0, 0] == (1 if keep_alive_s > 0 else 0)
    step(sim, [1], 6)  # asked for again at 10
    a, b = rows(sim)
    if keep_alive_s > 0:
        # Kept alive until a_done + 5 > 10: reused at once, no cold start; billed throughout.
        assert sim.totals.cold_starts[0, 0] == 1
        assert b["first_token_s"] == near(10.0 + it(coef, 1, 100, 0, 5050))
        assert sim.totals.billed_gpu_s[0, 0] == pytest.approx(16.0)
    else:
        # Stopped when A completed (billed to 9 s); a new replica starts at 10 and serves from 14.
        assert sim.totals.cold_starts[0, 0] == 2
        assert b["first_token_s"] == near(10.0 + COLD_START_S + it(coef, 1, 100, 0, 5050))
        assert sim.totals.billed_gpu_s[0, 0] == pytest.approx(math.ceil(a_done) + 6.0)


def test_a_draining_replica_asked_for_again_is_reused_and_admits_again() -> None:
    config = scenario()
    sim = warm_sim(config, [ScriptedTask(5.0, LONG), ScriptedTask(6.5, (100.0, 2.0))], [1])
    step(sim, [1], 2)
    step(sim, [0])
    stats = step(sim, [1])[0]  # at 7, A still decoding
    assert stats.cold_starts[0, 0] == 0 and sim.view().active[0, 0] == 1
    step(sim, [1], 2)
    a, b = rows(sim)
    assert b["replica"] == a["replica"] and b["state"] == DONE
    # B joined A's batch at A's first iteration boundary after 7.0: well before A completed.
    assert 7.0 < b["first_token_s"] < 7.1 and b["done_s"] < a["done_s"]
    assert sim.totals.cold_starts[0, 0] == 1


# ------------------------------------------------------------------------------- kill
def test_a_killed_replicas_requests_go_to_the_front_and_are_recomputed_on_a_new_replica() -> None:
    # One request at a time (max_num_seqs 1): A (100 in, 300 out) runs from 5.0, C (50 in, 2 out)
    # queues behind it at 5.5. Killed at 6: A goes back to the front, ahead of C, with the tokens
    # it generated; a new replica granted at 7 serves from 11, recomputing A's prompt and tokens.
    config = scenario([agent("coordinator", "coordinator", max_num_seqs=1)], scale_down="kill")
    coef = coef_of(config)
    sim = warm_sim(config, [ScriptedTask(5.0, LONG), ScriptedTask(5.5, (50.0, 2.0))], [1])
    step(sim, [1], 2)
    stats = step(sim, [0])[0]
    a, c = rows(sim)
    generated = int(a["generated"])
    assert 0 < generated < 300
    assert stats.requeued[0, 0] == 1 and stats.preemptions[0, 0] == 0
    assert a["state"] == QUEUED and a["computed"] == 0 and a["target"] == 100 + generated
    assert sim.state.agent[0, 0]["q_head"] == 0  # A at the front, C behind
    assert sim.view().held_gpus[0] == 0
    assert stats.billed_gpu_s[0, 0] == 0.0  # stopped at 6: its 6 s were billed by then
    step(sim, [1], 9)  # granted at 7, serving from 11
    a, c = rows(sim)
    recompute = 100 + generated
    a_done = 7.0 + COLD_START_S + it(coef, 1, recompute, 0, recompute * (recompute + 1) / 2)
    a_done += sum(it(coef, 1, 1, recompute + j, recompute + j + 1) for j in range(300 - generated - 1))
    assert a["state"] == DONE and a["generated"] == 300
    assert a["done_s"] == pytest.approx(a_done, rel=1e-12)
    assert c["first_token_s"] > a["done_s"]
    assert sim.totals.requeued[0, 0] == 1 and sim.totals.billed_gpu_s[0, 0] == pytest.approx(6.0 + 9.0)


def test_requests_of_a_killed_replica_complete_on_the_one_left() -> None:
    config = two_replica_scenario(scale_down="kill")
    coef = coef_of(config)
    sim = warm_sim(config, [ScriptedTask(5.0, LONG), ScriptedTask(5.001, LONG)], [2])
    step(sim, [2], 2)
    first = rows(sim)["replica"].copy()
    assert first[0] != first[1]
    stats = step(sim, [1])[0]
    assert stats.requeued[0, 0] == 1 and sim.view().held_gpus[0] == 1
    step(sim, [1], 4)
    a, b = rows(sim)
    assert (a["state"], b["state"]) == (DONE, DONE)
    assert a["generated"] == b["generated"] == 300
    # The least loaded busy replica (the first, on a tie) was killed; A moved to B's replica.
    assert a["replica"] == b["replica"] == first[1]
    # Both are later than alone: A recomputed its tokens, and the two then shared one batch.
    lone = lone_request_s(coef, *map(int, LONG))[1]
    assert a["done_s"] > 5.0 + lone and b["done_s"] > 5.001 + lone
    assert sim.totals.requeued[0, 0] == 1 and sim.totals.preemptions[0, 0] == 0


# ------------------------------------------------------------------------------- keep-alive
@pytest.mark.parametrize(("back_at_s", "cold_starts"), [(8, 1), (10, 2)])
def test_a_kept_alive_replica_holds_capacity_is_billed_and_is_reused_within_its_window(
    back_at_s: int, cold_starts: int
) -> None:
    # Serving from 4; released idle at 6 with a 3 s keep-alive: warm, billed and holding its GPU
    # until 9. Asked for again at 8 it serves at once; at 10 it has stopped and starts cold.
    config = scenario(keep_alive_s=3.0)
    coef = coef_of(config)
    sim = warm_sim(config, [ScriptedTask(back_at_s + 0.25, (100.0, 2.0))], [1])
    step(sim, [1], 2)
    stats = step(sim, [0])[0]
    view = sim.view()
    assert (view.kept_alive[0, 0], view.active[0, 0], view.held_gpus[0]) == (1, 0, 1)
    assert stats.replicas[0, 0] == 0 and stats.billed_gpu_s[0, 0] == pytest.approx(1.0)
    free_gpus = ObservationLayout(config).decode(ObservationLayout(config).encode(view)).free_gpus
    assert free_gpus[0] == pytest.approx(config.capacity_gpus - 1, abs=1e-5)
    step(sim, [0], back_at_s - 7)
    assert sim.view().kept_alive[0, 0] == (1 if back_at_s < 9 else 0)
    step(sim, [1], 15 - back_at_s)  # to t = 15
    (row,) = rows(sim)
    ready_s = back_at_s if cold_starts == 1 else back_at_s + COLD_START_S
    assert sim.totals.cold_starts[0, 0] == cold_starts
    assert row["first_token_s"] == near(max(ready_s, back_at_s + 0.25) + it(coef, 1, 100, 0, 5050))
    # Billed: one lifetime of 15 s, or 9 s (stopped at the window's end) and then 5 s.
    assert sim.totals.billed_gpu_s[0, 0] == pytest.approx(15.0 if cold_starts == 1 else 9.0 + 5.0)


def test_other_agents_kept_alive_replicas_are_evicted_to_make_room() -> None:
    # One GPU: the coordinator's replica is released into keep-alive at 6 when the specialist asks
    # for one; the pool is full, so the kept-alive replica is stopped (evicted) and the new one starts.
    config = scenario(
        [agent("coordinator", "coordinator"), agent("specialist")], capacity_gpus=1, keep_alive_s=30.0
    )
    sim = scripted_sim(config, [])
    step(sim, [1, 0], 6)
    stats = step(sim, [0, 1])[0]
    view = sim.view()
    assert stats.evicted[0].tolist() == [1, 0] and stats.cold_starts[0].tolist() == [0, 1]
    assert view.kept_alive[0].tolist() == [0, 0] and view.starting[0].tolist() == [0, 1]
    assert view.held_gpus[0] == 1
    assert sim.totals.billed_gpu_s[0].tolist() == [pytest.approx(6.0), pytest.approx(1.0)]
    assert sim.totals.evicted[0, 0] == 1


def test_kept_alive_replicas_are_not_evicted_when_the_pool_has_room() -> None:
    config = scenario(
        [agent("coordinator", "coordinator"), agent("specialist")], capacity_gpus=2, keep_alive_s=30.0
    )
    sim = scripted_sim(config, [])
    step(sim, [1, 0], 6)
    stats = step(sim, [0, 1])[0]
    assert stats.evicted.sum() == 0 and sim.view().kept_alive[0].tolist() == [1, 0]
    assert sim.view().held_gpus[0] == 2


def test_kept_alive_replicas_are_not_evicted_for_a_replica_that_still_cannot_start() -> None:
    # 4 GPUs: the coordinator's kept-alive replica (1) and z's two serving replicas (2) leave 1
    # free; y asks for a 4-GPU replica. Evicting the kept-alive one frees only 2: y is cut anyway,
    # so the warm replica should stay.
    config = scenario(
        [agent("coordinator", "coordinator"), agent("z"), agent("y", tensor_parallel=4, max_replicas=1)],
        capacity_gpus=4,
        keep_alive_s=30.0,
    )
    sim = scripted_sim(config, [])
    step(sim, [1, 2, 0], 5)
    stats = step(sim, [0, 2, 1])[0]
    assert stats.repairs["cut_for_capacity"][0].tolist() == [False, False, True]
    assert stats.evicted[0, 0] == 0
    assert sim.view().kept_alive[0, 0] == 1


# ------------------------------------------------------------------------------- capacity and priority
def test_scale_ups_give_each_agent_one_replica_first_then_go_in_priority_order() -> None:
    config = scenario(
        [
            agent("coordinator", "coordinator", max_replicas=3, priority=1.0),
            agent("specialist", max_replicas=3, priority=2.0),
        ],
        capacity_gpus=3,
    )
    sim = scripted_sim(config, [])
    stats = step(sim, [3, 3])[0]
    assert stats.replicas[0].tolist() == [1, 2]
    assert stats.repairs["cut_for_capacity"][0].tolist() == [True, True]
    assert stats.repair_replicas[0] == pytest.approx(3.0)
    assert sim.view().held_gpus[0] == 3
    # Two GPUs: one each, although the specialist comes first.
    sim = scripted_sim(config.replace(capacity_gpus=2), [])
    assert step(sim, [3, 3])[0].replicas[0].tolist() == [1, 1]


def test_when_not_every_agent_fits_the_highest_priorities_get_theirs() -> None:
    agents = [
        agent("coordinator", "coordinator", priority=1.0),
        agent("a", priority=3.0),
        agent("b", priority=2.0),
    ]
    sim = scripted_sim(scenario(agents, capacity_gpus=2), [])
    stats = step(sim, [1, 1, 1])[0]
    assert stats.replicas[0].tolist() == [0, 1, 1]
    assert stats.repairs["cut_for_capacity"][0].tolist() == [True, False, False]


# ------------------------------------------------------------------------------- billing
@pytest.mark.parametrize("tensor_parallel", [1, 2])
@pytest.mark.parametrize(
    ("increment_s", "per_step_s"),
    [
        (1.0, [1.0] * 9 + [0.0]),
        (60.0, [60.0] + [0.0] * 9),
        (0.25, [1.0] * 8 + [0.5, 0.0]),
    ],
)
def test_a_replicas_lifetime_is_billed_rounded_up_to_the_increment(
    increment_s: float, per_step_s: list[float], tensor_parallel: int
) -> None:
    # Granted at 0 (starting to 4), serving to 6, kept alive 2.5 s: stopped at 8.5. Billed in
    # whole increments of its lifetime so far at every step: 1 s -> 9 s, 60 s -> 60 s, 0.25 s ->
    # 8.5 s, times its GPUs.
    config = scenario(
        [agent("coordinator", "coordinator", tensor_parallel=tensor_parallel)],
        billing_increment_s=increment_s,
        keep_alive_s=2.5,
    )
    assert config.deployment.engines[0].cold_start_s == pytest.approx(COLD_START_S)
    sim = scripted_sim(config, [])
    stats = step(sim, [1], 6) + step(sim, [0], 4)
    billed = [float(s.billed_gpu_s[0, 0]) for s in stats]
    assert billed == [pytest.approx(tensor_parallel * s) for s in per_step_s]
    total = tensor_parallel * sum(per_step_s)
    assert sim.totals.billed_gpu_s[0, 0] == pytest.approx(total)
    assert sim.totals.cost_usd[0] == pytest.approx(total * PRICE)
    assert [float(s.cost_usd[0]) for s in stats] == [pytest.approx(b * PRICE) for b in billed]


def test_each_replica_is_rounded_up_on_its_own() -> None:
    # Two replicas granted at 0 and cancelled at 1.5 while starting: 2 s each (not 3 s in all).
    config = two_replica_scenario(decision_interval_s=0.5)
    sim = scripted_sim(config, [])
    step(sim, [2], 3)
    step(sim, [0], 2)
    assert sim.totals.billed_gpu_s[0, 0] == pytest.approx(4.0)
    assert sim.totals.cold_starts[0, 0] == 2 and sim.view().held_gpus[0] == 0
    assert np.isclose(sim.totals.cost_usd[0], 4.0 * PRICE)
