"""The registered ids in RLlib: tests marked ``ray`` need the ``ray`` extra and skip without it."""

from __future__ import annotations

import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import gpu_alloc_env
from gpu_alloc_env.ray_registry import make_rllib_env


def test_importing_the_package_does_not_import_ray() -> None:
    code = "import sys, gpu_alloc_env; print('ray' in sys.modules, 'ray.tune.registry' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_rllib_creator_builds_the_native_vector_env_or_one_env() -> None:
    vector = make_rllib_env("GpuAllocBursty-v1", {"num_envs": 3, "decision_interval_s": 2.0})
    assert isinstance(vector, gpu_alloc_env.GpuAllocVectorEnv)
    assert vector.num_envs == 3 and vector.config.name == "bursty"
    assert vector.config.decision_interval_s == 2.0
    single = make_rllib_env("GpuAlloc-v1", None)
    assert isinstance(single.unwrapped, gpu_alloc_env.GpuAllocEnv)
    # The creator's environments replay gym.make's for the same seed.
    reference = gym.make("GpuAlloc-v1")
    for env in (single, reference):
        env.reset(seed=11)
    action = np.full(4, 2.0, dtype=np.float32)
    assert single.step(action)[1] == reference.step(action)[1]


PLAIN_RLLIB_SCRIPT = """
import ray
import gpu_alloc_env
from ray.rllib.algorithms.ppo import PPOConfig


def session(env_id):
    config = (
        PPOConfig()
        .environment(env_id)
        .env_runners(
            num_env_runners=1,
            num_envs_per_env_runner=4,
            rollout_fragment_length=32,
            gym_env_vectorize_mode="vector_entry_point",
        )
        .training(train_batch_size_per_learner=128, minibatch_size=64, num_epochs=1)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    kinds = algo.env_runner_group.foreach_env_runner(
        lambda runner: type(runner.env.unwrapped).__name__, local_env_runner=False
    )
    result = algo.train()
    print(env_id, kinds, result["num_env_steps_sampled_lifetime"])
    algo.stop()
    ray.shutdown()


session("GpuAllocBursty-v1")  # the process's first Ray session: the bare id, from Ray's registry
session("gpu_alloc_env:GpuAlloc-v1")  # a second session: the module names itself to each runner
"""


@pytest.mark.ray
@pytest.mark.slow
def test_a_plain_rllib_config_trains_on_a_registered_id_in_a_remote_runner() -> None:
    pytest.importorskip("ray.rllib", reason="needs the ray extra: pip install -e '.[train,ray]'")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    command = [sys.executable, "-c", PLAIN_RLLIB_SCRIPT]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line.split(" ") for line in done.stdout.splitlines() if line.startswith(("GpuAlloc", "gpu_"))]
    # Each session's remote runner found its id and stepped the native vector environment.
    assert [(words[0], words[1]) for words in lines] == [
        ("GpuAllocBursty-v1", "['GpuAllocVectorEnv']"),
        ("gpu_alloc_env:GpuAlloc-v1", "['GpuAllocVectorEnv']"),
    ]
    assert all(float(words[2]) >= 128 for words in lines)
