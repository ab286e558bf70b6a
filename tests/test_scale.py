"""Scale in agents: the adaptive decision is linear passes with no sort, and fleets step end to end."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from gpu_alloc_env import GpuAllocEnv
from gpu_alloc_env.baselines import AdaptivePolicy
from gpu_alloc_env.core.workload import TaskStream
from gpu_alloc_env.scenarios import fleet


@contextmanager
def no_sorting() -> Iterator[None]:
    """Any sort called from Python inside the block fails the test (the priority order is fixed
    when the policy is built; a decision must not sort)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the adaptive decision sorted")

    with pytest.MonkeyPatch.context() as patch:
        for name in ("sort", "argsort", "lexsort", "partition", "argpartition"):
            patch.setattr(np, name, refuse)
        patch.setattr(builtins, "sorted", refuse)
        yield


@pytest.mark.parametrize("agents", [10, 100, 1000])
def test_adaptive_decision_is_nine_passes_over_the_agents(agents: int) -> None:
    policy = AdaptivePolicy(fleet(agents))
    rng = np.random.default_rng(agents)
    observations = rng.uniform(0.0, 0.2, size=(3, policy.layout.size)).astype(np.float32)
    before = int(policy.visits[0])
    with no_sorting():
        action, _ = policy.predict(observations)
    assert action.shape == (3, agents)
    assert int(policy.visits[0]) - before == 3 * 9 * agents


def test_the_compiled_decision_equals_the_decoded_one() -> None:
    policy = AdaptivePolicy(fleet(50))
    rng = np.random.default_rng(1)
    observations = rng.uniform(0.0, 1.0, size=(200, policy.layout.size)).astype(np.float32)
    observations[:100] *= 0.05  # light load: most agents below their caps
    decoded = policy.allocate(policy.layout.decode(observations))
    np.testing.assert_array_equal(policy.predict(observations)[0], decoded)
    np.testing.assert_array_equal(policy.predict(observations[7])[0], decoded[7])


def test_a_fleet_of_ten_thousand_agents_steps_with_the_adaptive_policy() -> None:
    config = fleet(10_000).replace(episode_length_s=3.0)
    env = GpuAllocEnv(config)
    policy = AdaptivePolicy(config)
    obs, _ = env.reset(seed=0)
    truncated = False
    steps = 0
    while not truncated:
        obs, reward, _, truncated, info = env.step(policy.predict(obs)[0])
        steps += 1
        assert np.isfinite(reward)
    assert steps == 3
    assert info["episode_metrics"]["tasks_arrived"] > 10_000


def test_sparse_call_draws_have_the_dense_distribution() -> None:
    """Beyond 64 specialists a task's calls are drawn sparsely: same per-specialist rates, calls
    grouped by task with specialists ascending, as the dense draw gives them."""
    config = fleet(301)
    stream = TaskStream(config, np.random.default_rng(0))
    assert stream._groups, "fleet(301) has 300 specialists: the sparse draw"
    tasks = 20_000
    draws = stream.tasks_at(np.linspace(0.0, 1.0, tasks))
    keys = draws.call_task * config.num_agents + draws.call_agent
    assert np.all(np.diff(keys) > 0)  # grouped by task, specialists ascending, no pair twice
    invoke = np.array([a.invoke_probability for a in config.agents[1:]])
    per_specialist = np.bincount(draws.call_agent - 1, minlength=invoke.size)
    expected = tasks * invoke
    # Each count is Binomial(tasks, p): all within 5 standard deviations, and the total within 4.
    assert np.all(np.abs(per_specialist - expected) < 5.0 * np.sqrt(expected * (1.0 - invoke)) + 1.0)
    total_sd = np.sqrt((expected * (1.0 - invoke)).sum())
    assert abs(per_specialist.sum() - expected.sum()) < 4.0 * total_sd
    assert draws.call_input_tokens.shape == draws.call_agent.shape


def test_bench_rows_and_table() -> None:
    from gpu_alloc_env.train.bench import bench_table, decision_rows, run_bench

    rows = decision_rows(quick=True, sizes=(4, 40))
    assert [row.measurement for row in rows] == ["adaptive decision, N = 4", "adaptive decision, N = 40"]
    assert "per tenfold N (from N = 4)" in rows[1].ratio and rows[1].meets is None
    table = bench_table(rows)
    assert table.startswith("| measurement | figure | reference | ratio | target met |")
    assert "- decision: <= 20 us at N = 4" in table
    with pytest.raises(ValueError, match="unknown bench parts"):
        run_bench(["speed"])
