"""Scale in agents: the adaptive decision is linear passes with no sort, and fleets step end to end."""

from __future__ import annotations

import ast
import inspect
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gpu_alloc_env import GpuAllocEnv
from gpu_alloc_env.baselines import AdaptivePolicy, adaptive
from gpu_alloc_env.core import allocation
from gpu_alloc_env.core.workload import TaskStream
from gpu_alloc_env.scenarios import fleet

SORTS = {"sort", "argsort", "lexsort", "partition", "argpartition", "sorted", "heapify", "nsmallest"}
DECISION_KERNELS = (adaptive.adaptive_decisions, adaptive._allocate_row, adaptive._unsquash,
                    allocation.priority_fill_row, allocation.round_replicas_row)  # fmt: skip


def test_the_decision_kernels_call_no_sort() -> None:
    """Every function the compiled decision runs, read from its source: no sort of any kind."""
    for kernel in DECISION_KERNELS:
        tree = ast.parse(textwrap.dedent(inspect.getsource(kernel.py_func)))
        called = {
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
        }
        assert not called & SORTS, f"{kernel.py_func.__name__} calls {sorted(called & SORTS)}"


NO_SORT_RUN = textwrap.dedent(
    """
    import builtins, json
    import numpy as np
    from gpu_alloc_env.baselines import AdaptivePolicy, adaptive
    from gpu_alloc_env.scenarios import fleet

    # Sizing replicas runs the serving model (slow as plain Python); the count does not depend on it.
    adaptive.replica_rates_rps = lambda config, slack: np.ones(config.num_agents)

    def refuse(*args, **kwargs):
        raise AssertionError("the adaptive decision sorted")

    counts = {}
    for agents in (10, 100, 1000):
        policy = AdaptivePolicy(fleet(agents))  # its priority order is sorted once, here
        observations = np.random.default_rng(agents).uniform(0.0, 0.2, size=(3, policy.layout.size))
        names = ("sort", "argsort", "lexsort", "partition", "argpartition")
        saved = {name: getattr(np, name) for name in names}
        saved_sorted = builtins.sorted
        for name in names:
            setattr(np, name, refuse)
        builtins.sorted = refuse
        before = int(policy.visits[0])
        policy.predict(observations.astype(np.float32))
        counts[agents] = int(policy.visits[0]) - before
        for name, function in saved.items():
            setattr(np, name, function)
        builtins.sorted = saved_sorted
    print(json.dumps(counts))
    """
)


def test_adaptive_decision_is_nine_linear_passes_and_never_sorts() -> None:
    """Run as plain Python (``NUMBA_DISABLE_JIT=1``), where any sort would be caught, and count the
    agents its loops visit: exactly 9 N per observation (3 observations a call)."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    done = subprocess.run(
        [sys.executable, "-c", NO_SORT_RUN], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {str(n): 3 * 9 * n for n in (10, 100, 1000)}


@pytest.mark.parametrize("agents", [10, 100, 1000])
def test_the_compiled_decision_counts_the_same_visits(agents: int) -> None:
    policy = AdaptivePolicy(fleet(agents))
    observations = np.random.default_rng(agents).uniform(0.0, 0.2, size=(3, policy.layout.size))
    action, _ = policy.predict(observations.astype(np.float32))
    assert action.shape == (3, agents)
    assert int(policy.visits[0]) == 3 * 9 * agents


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
