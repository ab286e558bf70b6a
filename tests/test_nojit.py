"""With ``NUMBA_DISABLE_JIT=1`` the same kernels run as plain Python and give the same results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

EPISODE = textwrap.dedent(
    """
    import json
    import numpy as np
    from gpu_alloc_env import GpuAllocEnv
    env = GpuAllocEnv("paper", episode_length_s=40.0, workload={"task_rate_tps": 1.0})
    obs, _ = env.reset(seed=7)
    total, held = 0.0, []
    for step in range(env.config.episode_steps):
        action = np.array([1, 1, 1, 1]) if step < 30 else np.array([1, 0, 2, 1])
        obs, reward, _, truncated, info = env.step(action)
        total += reward
        held.append(info["replicas"].tolist())
    metrics = info["episode_metrics"]
    keys = ("task_latency_mean_s", "cost_usd", "tasks_completed", "requests_completed", "ttft_mean_s")
    summary = {k: metrics[k] for k in keys}
    print(json.dumps({"return": total, "held": held, "obs": obs.tolist(), "metrics": summary}))
    """
)


def _run(disable_jit: bool) -> dict[str, object]:
    env = dict(os.environ, NUMBA_DISABLE_JIT="1" if disable_jit else "0")
    done = subprocess.run(
        [sys.executable, "-c", EPISODE], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_pure_python_kernels_replay_the_compiled_ones() -> None:
    compiled, python = _run(disable_jit=False), _run(disable_jit=True)
    assert python["held"] == compiled["held"]
    assert python["return"] == compiled["return"]
    assert python["metrics"] == compiled["metrics"]
    assert python["obs"] == compiled["obs"]
    # The episode exercises the engine: tasks complete and replicas change.
    assert compiled["metrics"]["tasks_completed"] > 0  # type: ignore[index]
