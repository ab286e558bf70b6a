"""Hand-computed cases of the simulator core: every expected figure is worked out in the comments."""

from __future__ import annotations

import numpy as np
import pytest
from scripted import ScriptedTask, agent, scenario, scripted_sim

from gpu_alloc_env.core.metrics import episode_metrics
from gpu_alloc_env.core.simulator import BatchSimulator


def run(sim: BatchSimulator, allocations: list[list[float]]) -> None:
    """Step ``sim`` once per row of ``allocations`` (desired GPUs per agent)."""
    for row in allocations:
        sim.step(np.array([row], dtype=np.float64))


def request_latencies(sim: BatchSimulator) -> list[list[float]]:
    return [lat.tolist() for lat in sim.totals.request_latencies(0)]


def test_one_request_latency_is_cold_start_plus_prefill_plus_decode() -> None:
    # One coordinator, min 1 GPU, 3 s cold start; one task at t = 0 with 500 prompt and 40 output
    # tokens. Work = 500/1000 + 40/100 = 0.9 GPU-s (0.9 s on 1 GPU); floor = 500/1000 + 40 x 0.05
    # = 2.5 s (prefill 0.5 s, then decode at 50 ms per token). GPUs granted at t = 0 serve from
    # t = 3, so the request completes at 3 + 2.5 = 5.5 s.
    config = scenario([agent("coordinator", "coordinator", cold_start_s=3.0)])
    sim = scripted_sim(config, [ScriptedTask(0.0, (500.0, 40.0))])
    run(sim, [[1.0]] * 5)
    assert sim.tasks_completed[0] == 0 and sim.tasks_in_flight[0] == 1
    run(sim, [[1.0]])
    metrics = episode_metrics(sim)
    assert request_latencies(sim) == [[pytest.approx(5.5)]]
    assert metrics["task_latency_mean_s"] == pytest.approx(5.5)
    assert metrics["tasks_completed"] == 1 and metrics["tasks_in_flight"] == 0
    assert metrics["cold_starts"] == 1
    # 1 GPU for 6 s at $0.001 per GPU-second, the 3 loading seconds included.
    assert metrics["cost_usd"] == pytest.approx(0.006)
    assert metrics["gpu_utilization"] == pytest.approx(0.9 / 6.0)
    assert metrics["throughput_tokens_per_s"] == pytest.approx(40.0 / 6.0)


def test_work_bound_request_takes_work_over_gpus() -> None:
    # tpot 5 ms: floor = 0.5 + 40 x 0.005 = 0.7 s < work on 1 GPU = 0.9 s; on 2 GPUs 0.45 s, so
    # the floor (0.7 s) binds instead. No cold start.
    for gpus, expected_s in ((1.0, 0.9), (2.0, 0.7)):
        config = scenario([agent("coordinator", "coordinator", tpot_s=0.005)])
        sim = scripted_sim(config, [ScriptedTask(0.25, (500.0, 40.0))])
        run(sim, [[gpus]] * 2)
        assert request_latencies(sim) == [[pytest.approx(expected_s)]]


def test_fifo_queue_carries_work_across_intervals() -> None:
    # Two requests of 1.0 GPU-s each (500/1000 + 50/100) on 1 GPU, arriving at 0.0 and 0.1 s:
    # the first departs at 1.0 s, the second starts then and departs at 2.0 s (latency 1.9 s),
    # its work spanning the boundary between the first and second intervals.
    config = scenario([agent("coordinator", "coordinator", tpot_s=0.005)])
    tasks = [ScriptedTask(0.0, (500.0, 50.0)), ScriptedTask(0.1, (500.0, 50.0))]
    sim = scripted_sim(config, tasks)
    stats = sim.step(np.array([[1.0]]))
    assert stats.tasks_completed[0] == 1
    assert stats.busy_gpu_s[0, 0] == pytest.approx(1.0)
    stats = sim.step(np.array([[1.0]]))
    assert stats.tasks_completed[0] == 1
    assert stats.busy_gpu_s[0, 0] == pytest.approx(1.0)
    assert request_latencies(sim) == [[pytest.approx(1.0), pytest.approx(1.9)]]


def test_two_agents_at_known_allocations() -> None:
    # Coordinator on 1 GPU (tpot 10 ms), specialist on 2 GPUs (decode 50 tok/s/GPU, tpot 5 ms).
    # Task at t = 0: plan (100 in, 10 out): work 0.1 + 0.1 = 0.2 GPU-s, floor 0.1 + 0.1 = 0.2 s,
    # done at 0.2. Specialist call (1000 in, 150 out): work 1.0 + 3.0 = 4.0 GPU-s = 2.0 s on 2 GPUs,
    # floor 1000/1000 + 150 x 0.005 = 1.75 s, so done at 0.2 + 2.0 = 2.2. Aggregation: input =
    # prompt 100 + answer 150 = 250 tokens, 20 out: work 0.25 + 0.2 = 0.45, floor 0.25 + 0.2 = 0.45,
    # done at 2.65. Task latency 2.65 s.
    config = scenario(
        [
            agent("coordinator", "coordinator", tpot_s=0.01),
            agent("specialist", decode_tokens_per_s_per_gpu=50.0, tpot_s=0.005),
        ]
    )
    task = ScriptedTask(0.0, (100.0, 10.0), aggregate_output_tokens=20.0, calls=[(1, 1000.0, 150.0)])
    sim = scripted_sim(config, [task])
    run(sim, [[1.0, 2.0]] * 2)
    assert sim.tasks_in_flight[0] == 1
    run(sim, [[1.0, 2.0]])
    coordinator, specialist = request_latencies(sim)
    assert coordinator == [pytest.approx(0.2), pytest.approx(0.45)]
    assert specialist == [pytest.approx(2.0)]
    metrics = episode_metrics(sim)
    assert metrics["task_latency_mean_s"] == pytest.approx(2.65)
    assert metrics["per_agent"]["specialist"]["gpu_utilization"] == pytest.approx(4.0 / 6.0)
    assert metrics["cost_usd"] == pytest.approx(3.0 * 3.0 * 0.001)


def test_task_waits_for_its_slowest_specialist() -> None:
    # Two specialists on 1 GPU each; calls of 1.0 and 3.0 GPU-s (prefill-only answers of 1 token
    # are negligible: 1/100 GPU-s each). Plan done at 0.2 (as above); the answers land at 1.21 and
    # 3.21; the aggregation (input 100 + 1 + 1 tokens, 1 out) follows the slower one.
    config = scenario(
        [
            agent("coordinator", "coordinator", tpot_s=0.01),
            agent("fast", tpot_s=0.0),
            agent("slow", tpot_s=0.0),
        ],
        capacity_gpus=3.0,
    )
    task = ScriptedTask(0.0, (100.0, 10.0), calls=[(1, 1000.0, 1.0), (2, 3000.0, 1.0)])
    sim = scripted_sim(config, [task])
    run(sim, [[1.0, 1.0, 1.0]] * 4)
    coordinator, fast, slow = request_latencies(sim)
    assert fast == [pytest.approx(1.01)] and slow == [pytest.approx(3.01)]
    aggregate_s = 102.0 / 1000.0 + 1.0 / 100.0  # work 0.112 GPU-s > floor 0.102 + 0.01
    assert coordinator == [pytest.approx(0.2), pytest.approx(aggregate_s)]
    assert episode_metrics(sim)["task_latency_mean_s"] == pytest.approx(0.2 + 3.01 + aggregate_s)


def test_task_without_specialist_calls_ends_at_its_plan() -> None:
    config = scenario([agent("coordinator", "coordinator", tpot_s=0.01), agent("specialist")])
    sim = scripted_sim(config, [ScriptedTask(0.5, (100.0, 10.0))])
    run(sim, [[1.0, 0.0]])
    assert episode_metrics(sim)["task_latency_mean_s"] == pytest.approx(0.2)
    assert request_latencies(sim) == [[pytest.approx(0.2)], []]


def test_agent_scaled_to_zero_does_not_serve_and_is_not_billed() -> None:
    # Nothing allocated for 4 s, then 1 GPU with no cold start: the request arriving at 0.0 waits
    # 4 s, then runs 0.9 s (work 0.9 GPU-s on 1 GPU, above its 0.7 s floor).
    config = scenario([agent("coordinator", "coordinator", tpot_s=0.005)])
    sim = scripted_sim(config, [ScriptedTask(0.0, (500.0, 40.0))])
    run(sim, [[0.0]] * 4)
    assert sim.totals.cost_usd[0] == 0.0
    assert sim.queues.length[0, 0] == 1
    run(sim, [[1.0]])
    assert request_latencies(sim) == [[pytest.approx(4.9)]]
    assert sim.totals.cost_usd[0] == pytest.approx(0.001)


def test_scale_down_during_cold_start_cancels_loading() -> None:
    # 2 GPUs granted at t = 0 with a 3 s cold start, cut to 1 at t = 1: one loading GPU is
    # cancelled (billed for the second it was held), the other serves from t = 3.
    config = scenario([agent("coordinator", "coordinator", cold_start_s=3.0)])
    sim = scripted_sim(config, [])
    run(sim, [[2.0], [1.0]])
    assert sim.loading_slices[0, 0] * config.gpu_granularity == pytest.approx(1.0)
    run(sim, [[1.0]])
    assert sim.warm_slices[0, 0] == 0
    run(sim, [[1.0]])
    assert sim.warm_slices[0, 0] * config.gpu_granularity == pytest.approx(1.0)
    assert sim.loading_slices[0, 0] == 0
    assert sim.totals.cost_usd[0] == pytest.approx((2.0 + 1.0 + 1.0 + 1.0) * 0.001)
    assert sim.totals.cold_starts[0, 0] == 1


def test_scale_up_of_a_warm_agent_loads_only_the_new_gpus() -> None:
    # Warm on 1 GPU from t = 2 (granted at 0, 2 s cold start), raised to 2 GPUs at t = 2: the new
    # GPU loads until t = 4, so a 2 GPU-s request (1000/1000 + 100/100) arriving at t = 2 runs on
    # the one warm GPU and takes 2 s; the scale-up is a second cold start.
    config = scenario([agent("coordinator", "coordinator", cold_start_s=2.0, tpot_s=0.0)])
    sim = scripted_sim(config, [ScriptedTask(2.0, (1000.0, 100.0))])
    run(sim, [[1.0], [1.0], [2.0], [2.0]])
    assert request_latencies(sim) == [[pytest.approx(2.0)]]
    assert sim.totals.cold_starts[0, 0] == 2


@pytest.mark.parametrize(("back_at_step", "cold_starts"), [(6, 1), (9, 2)])
def test_keep_alive_reuses_a_warm_instance_within_its_window(back_at_step: int, cold_starts: int) -> None:
    # 1 GPU (its minimum) from t = 0 with a 2 s cold start; scaled to zero at t = 4 with a 3 s
    # keep-alive: the instance stays loaded and billed until t = 7. Granted again at t = 6 it
    # serves at once (no new cold start); at t = 9 the window is over and it loads again.
    config = scenario([agent("coordinator", "coordinator", cold_start_s=2.0)], keep_alive_s=3.0)
    sim = scripted_sim(config, [])
    run(sim, [[1.0]] * 4 + [[0.0]] * (back_at_step - 4))
    assert (sim.parked_slices[0, 0] > 0) == (back_at_step < 7)
    run(sim, [[1.0]])
    assert sim.totals.cold_starts[0, 0] == cold_starts
    warm = sim.warm_slices[0, 0] * config.gpu_granularity
    assert warm == pytest.approx(1.0 if cold_starts == 1 else 0.0)
    parked_billed_s = min(back_at_step, 7) - 4
    expected_gpu_s = 4.0 + parked_billed_s + 1.0
    assert sim.totals.cost_usd[0] == pytest.approx(expected_gpu_s * 0.001)


def test_tasks_are_conserved_and_late_tasks_miss_the_slo() -> None:
    # Six tasks of 1 GPU-s each, one every 0.5 s, on 1 GPU: the queue grows by 1 s every task,
    # latencies 1.0, 1.5, 2.0, 2.5, 3.0, 3.5 s; with a 2.2 s task SLO, three miss.
    config = scenario([agent("coordinator", "coordinator", tpot_s=0.005)], task_slo_s=2.2)
    tasks = [ScriptedTask(0.5 * k, (500.0, 50.0)) for k in range(6)]
    sim = scripted_sim(config, tasks)
    for _ in range(6):  # the last task departs at exactly 6.0 s, the end of the sixth interval
        stats = sim.step(np.array([[1.0]]))
        assert sim.totals.tasks_arrived[0] == sim.tasks_completed[0] + sim.tasks_in_flight[0]
    assert stats.tasks_completed[0] == 1 and sim.tasks_in_flight[0] == 0
    metrics = episode_metrics(sim)
    assert metrics["task_latency_mean_s"] == pytest.approx(np.mean([1.0, 1.5, 2.0, 2.5, 3.0, 3.5]))
    assert metrics["slo_attainment"] == pytest.approx(3 / 6)


def test_in_flight_tasks_enter_latency_statistics_at_their_age() -> None:
    # Never served: the task arriving at 1.0 s is 4.0 s old at t = 5 and counts as such.
    config = scenario([agent("coordinator", "coordinator")], task_slo_s=3.0)
    sim = scripted_sim(config, [ScriptedTask(1.0, (100.0, 10.0))])
    run(sim, [[0.0]] * 5)
    metrics = episode_metrics(sim)
    assert metrics["task_latency_mean_s"] == pytest.approx(4.0)
    assert np.isnan(metrics["task_latency_completed_mean_s"])
    assert metrics["slo_attainment"] == 0.0
    assert metrics["tasks_in_flight"] == 1 and metrics["backlog_requests"] == 1


def test_delay_integrates_task_seconds_in_the_system() -> None:
    # One task in flight from 0.25 s to 1.25 s (work 1.0 GPU-s on 1 GPU): 0.75 task-s in the first
    # interval, 0.25 in the second.
    config = scenario([agent("coordinator", "coordinator", tpot_s=0.005)])
    sim = scripted_sim(config, [ScriptedTask(0.25, (500.0, 50.0))])
    first = sim.step(np.array([[1.0]]))
    second = sim.step(np.array([[1.0]]))
    assert first.delay_task_s[0] == pytest.approx(0.75)
    assert second.delay_task_s[0] == pytest.approx(0.25)
