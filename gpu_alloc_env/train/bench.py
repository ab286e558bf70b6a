"""``gpu-alloc bench``: the environment's speed and memory, as ratios against references in the same run.

Machines are shared and noisy, so every figure is paired with a reference measured in the same
process just before it (Gymnasium's CartPole-v1 and its native ``CartPoleVectorEnv``, SB3's
``DummyVecEnv``, the same episode at a coarser interval), with warm-up and the best of several
repeats. The rows:

* ``single``: one ``gym.make("GpuAlloc-v1")`` step (default wrappers, a fixed allocation, in steady
  state after every cold start) against a ``gym.make("CartPole-v1")`` step;
* ``vector``: one step of ``gym.make_vec("GpuAlloc-v1", num_envs=B)`` against ``CartPoleVectorEnv``
  at the same B, for B = 64 and 1,024;
* ``decision``: one adaptive decision (``AdaptivePolicy.predict`` on one observation) for N = 4,
  100, 10^4 and 10^6 agents, and how much each tenfold N costs;
* ``episode``: a 600 s episode of ``paper`` at a 10 ms decision interval with the adaptive policy,
  against the same episode at 1 s;
* ``train``: the environment's share of the wall time of ``gpu-alloc train`` (each environment call
  timed inside a short run), and PPO steps per second with the native batched environment against
  SB3's ``DummyVecEnv`` over single environments, same PPO settings;
* ``memory``: resident memory over 10^6 environment steps (flat if it does not grow).

Each row says whether it meets the speed targets of the project (:data:`TARGETS`).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from gpu_alloc_env.baselines import AdaptivePolicy, StaticEqualPolicy
from gpu_alloc_env.scenarios import fleet, make_scenario

PARTS: tuple[str, ...] = ("single", "vector", "decision", "episode", "train", "memory")
"""The groups of measurements, in the order they run."""

TARGETS: dict[str, str] = {
    "single": "single env >= 0.25x CartPole-v1's steps per second",
    "vector": "vector env at B = 1,024 >= 0.1x CartPoleVectorEnv's steps per second",
    "decision": "<= 20 us at N = 4, <= 100 ms at N = 10^6, 7x-13x per tenfold N (judged from N = 10^4, where "
    "the call's fixed cost no longer dominates)",
    "episode": "600 s at 10 ms decisions in under 5 s",
    "train": "environment under 15% of PPO training's wall time",
    "memory": "flat over 10^6 steps",
}
"""The speed targets, by group."""

WARM_UP_S = 150.0
"""Simulated seconds run before timing: past ``paper``'s slowest cold start (the 70B, 67 s)."""


@dataclass(frozen=True)
class BenchRow:
    """One measurement: what was timed, its figure, the reference's, their ratio and the verdict."""

    part: str
    measurement: str
    figure: str
    reference: str
    ratio: str
    meets: bool | None
    """Whether the row meets its target (None: a row without one)."""


def best_seconds(fn: Callable[[], object], calls: int, repeats: int = 3) -> float:
    """Best of ``repeats`` timings of ``calls`` calls of ``fn``, per call."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / calls


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:,.1f} ms"


# ------------------------------------------------------------------------------------ single env
def cartpole_step_s(calls: int) -> float:
    """Seconds per ``gym.make("CartPole-v1")`` step (default wrappers), alternating actions."""
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    state = {"action": 0}

    def step() -> None:
        _, _, terminated, truncated, _ = env.step(state["action"])
        state["action"] ^= 1
        if terminated or truncated:
            env.reset()

    best_seconds(step, calls // 10, 1)
    return best_seconds(step, calls)


def gpualloc_step_s(calls: int, **overrides: Any) -> float:
    """Seconds per ``gym.make("GpuAlloc-v1")`` step with the static-equal allocation, in steady state."""
    env = gym.make("GpuAlloc-v1", **overrides)
    config = env.unwrapped.config  # type: ignore[attr-defined]
    action = StaticEqualPolicy(config).replicas.astype(np.float32)
    env.reset(seed=0)
    for _ in range(math.ceil(WARM_UP_S / config.decision_interval_s)):
        env.step(action)

    def step() -> None:
        _, _, _, truncated, _ = env.step(action)
        if truncated:
            env.reset()

    return best_seconds(step, calls)


def single_rows(quick: bool) -> list[BenchRow]:
    """``gym.make`` step against CartPole-v1."""
    calls = 500 if quick else 2000
    reference = cartpole_step_s(calls * 10)
    ours = gpualloc_step_s(calls)
    ratio = reference / ours
    return [
        BenchRow(
            "single",
            "GpuAlloc-v1 step (gym.make, fixed allocation), steps/s against CartPole-v1",
            f"{_us(ours)} ({1 / ours:,.0f} steps/s)",
            f"{_us(reference)} ({1 / reference:,.0f} steps/s)",
            f"{ratio:.4f}x",
            ratio >= 0.25,
        )
    ]


# ------------------------------------------------------------------------------------ vector env
def cartpole_vector_step_s(batch: int, calls: int) -> float:
    """Seconds per step of Gymnasium's ``CartPoleVectorEnv`` with ``batch`` environments."""
    env = gym.make_vec("CartPole-v1", num_envs=batch, vectorization_mode="vector_entry_point")
    env.reset(seed=0)
    flips = np.random.default_rng(0).integers(0, 2, size=(64, batch))
    state = {"k": 0}

    def step() -> None:
        env.step(flips[state["k"] % 64])
        state["k"] += 1

    return best_seconds(step, calls)


def gpualloc_vector_step_s(batch: int, calls: int, warm_up_steps: int | None = None) -> float:
    """Seconds per step of ``gym.make_vec("GpuAlloc-v1", num_envs=batch)``, a fixed allocation."""
    env = gym.make_vec("GpuAlloc-v1", num_envs=batch, vectorization_mode="vector_entry_point")
    config = env.unwrapped.config  # type: ignore[attr-defined]
    actions = np.tile(StaticEqualPolicy(config).replicas.astype(np.float32), (batch, 1))
    env.reset(seed=0)
    steps = math.ceil(WARM_UP_S / config.decision_interval_s) if warm_up_steps is None else warm_up_steps
    for _ in range(steps):
        env.step(actions)
    return best_seconds(lambda: env.step(actions), calls, 2)


def vector_rows(quick: bool, batches: Sequence[int] = (64, 1024)) -> list[BenchRow]:
    """``gym.make_vec`` step against ``CartPoleVectorEnv`` at the same B."""
    rows = []
    for batch in batches:
        reference = cartpole_vector_step_s(batch, 200 if quick else 1000)
        warm_up = 30 if quick and batch > 64 else None
        ours = gpualloc_vector_step_s(batch, max(2, (200 if quick else 2000) // batch), warm_up)
        ratio = reference / ours
        rows.append(
            BenchRow(
                "vector",
                f"GpuAlloc-v1 vector env, B = {batch:,}: batch steps/s against CartPoleVectorEnv",
                f"{_us(ours)} per batch ({_us(ours / batch)} per env)",
                f"{_us(reference)} per batch",
                f"{ratio:.5f}x",
                ratio >= 0.1 if batch >= 1024 else None,
            )
        )
    return rows


# ------------------------------------------------------------------------------------ decision
def decision_s(agents: int, calls: int) -> float:
    """Seconds per adaptive decision on one observation of ``agents`` agents (4: ``paper``)."""
    config = make_scenario("paper") if agents == 4 else fleet(agents)
    policy = AdaptivePolicy(config)
    rng = np.random.default_rng(agents)
    observation = rng.uniform(0.0, 0.2, size=policy.layout.size).astype(np.float32)
    policy.predict(observation)
    return best_seconds(lambda: policy.predict(observation), calls)


def decision_rows(quick: bool, sizes: Sequence[int] = (4, 100, 10_000, 1_000_000)) -> list[BenchRow]:
    """The adaptive decision's cost against N, and each tenfold's growth."""
    rows = []
    previous: tuple[int, float] | None = None
    meets: bool | None
    for agents in sizes:
        calls = max(3, int((2e4 if quick else 1e5) // agents))
        seconds = decision_s(agents, calls)
        if previous is None:
            growth, meets = "", seconds <= 20e-6
        else:
            tenfolds = math.log10(agents / previous[0])
            factor = (seconds / previous[1]) ** (1.0 / tenfolds)
            growth = f"{factor:.1f}x per tenfold N (from N = {previous[0]:,})"
            # Below 10^4 agents the call's fixed cost still dominates: the growth says little.
            judged = agents >= 10_000
            meets = 7.0 <= factor <= 13.0 and (agents < 1_000_000 or seconds <= 0.1) if judged else None
        rows.append(
            BenchRow("decision", f"adaptive decision, N = {agents:,}", _us(seconds), "", growth, meets)
        )
        previous = (agents, seconds)
    return rows


# ------------------------------------------------------------------------------------ episode
def episode_wall_s(decision_interval_s: float) -> float:
    """Wall seconds of one 600 s ``paper`` episode with the adaptive policy at the given interval."""
    env = gym.make("GpuAlloc-v1", decision_interval_s=decision_interval_s, episode_length_s=600.0)
    policy = AdaptivePolicy(env)
    observation, _ = env.reset(seed=0)
    start = time.perf_counter()
    truncated = False
    while not truncated:
        observation, _, _, truncated, _ = env.step(policy.predict(observation)[0])
    return time.perf_counter() - start


def episode_rows(quick: bool) -> list[BenchRow]:
    """A 600 s episode at 10 ms decisions against the same episode at 1 s."""
    coarse = min(episode_wall_s(1.0) for _ in range(2))
    fine = episode_wall_s(0.01)
    return [
        BenchRow(
            "episode",
            "600 s of paper at 10 ms decisions (60,000 steps, adaptive), wall time",
            f"{fine:.2f} s",
            f"{coarse:.2f} s at 1 s decisions",
            f"{fine / coarse:.1f}x",
            fine < 5.0,
        )
    ]


# ------------------------------------------------------------------------------------ training
def env_share_of_training(timesteps: int) -> tuple[float, float]:
    """(environment seconds, total seconds) of a short ``gpu-alloc train`` run on ``paper``.

    Every call into the batched environment (``step_wait``, ``reset``) is timed inside the run.
    """
    from gpu_alloc_env.train.ppo import train
    from gpu_alloc_env.train.run_folder import TrainArgs
    from gpu_alloc_env.train.vec_env import BatchVecEnv

    spent = {"s": 0.0}
    originals = {name: getattr(BatchVecEnv, name) for name in ("step_wait", "reset")}

    def timed(name: str) -> Callable[..., Any]:
        original = originals[name]

        def call(self: BatchVecEnv, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                spent["s"] += time.perf_counter() - start

        return call

    with tempfile.TemporaryDirectory() as folder:
        for name in originals:
            setattr(BatchVecEnv, name, timed(name))
        try:
            start = time.perf_counter()
            train(
                TrainArgs(scenario="paper", seed=0, timesteps=timesteps, run_dir=str(Path(folder) / "run")),
                progress_bar=False,
                command="gpu-alloc bench",
            )
            total = time.perf_counter() - start
        finally:
            for name, original in originals.items():
                setattr(BatchVecEnv, name, original)
    return spent["s"], total


def ppo_steps_per_s(native: bool, num_envs: int, timesteps: int) -> float:
    """PPO (the project's default settings) steps per second on the batched env or a ``DummyVecEnv``."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from gpu_alloc_env.train.actions import AbsoluteAction
    from gpu_alloc_env.train.hyperparams import load_hyperparams, ppo_kwargs
    from gpu_alloc_env.train.vec_env import BatchVecEnv

    config = make_scenario("paper")
    if native:
        env: Any = BatchVecEnv(config, num_envs, AbsoluteAction(config))
    else:
        # The same absolute action: [-1, 1] rescaled onto [0, max_replicas].
        env = DummyVecEnv(
            [lambda: gym.wrappers.RescaleAction(gym.make("GpuAlloc-v1"), np.float32(-1.0), np.float32(1.0))]
            * num_envs
        )
    hp = load_hyperparams("paper", None, None)
    model = PPO("MlpPolicy", env, seed=0, device="cpu", **ppo_kwargs(hp))
    start = time.perf_counter()
    model.learn(timesteps)
    return timesteps / (time.perf_counter() - start)


def train_rows(quick: bool) -> list[BenchRow]:
    """The environment's share of PPO training, and native batching against ``DummyVecEnv``."""
    import torch

    torch.set_num_threads(1)
    rollout = 32 * 128
    env_s, total_s = env_share_of_training(rollout * (1 if quick else 3))
    share = env_s / total_s
    steps = rollout * (1 if quick else 2)
    native = ppo_steps_per_s(True, 32, steps)
    dummy = ppo_steps_per_s(False, 32, steps)
    return [
        BenchRow(
            "train",
            "environment's share of gpu-alloc train's wall time (paper, 32 envs)",
            f"{share:.0%} ({env_s:.1f} s of {total_s:.1f} s)",
            "",
            "",
            share < 0.15,
        ),
        BenchRow(
            "train",
            "PPO steps/s, native batched env against SB3 DummyVecEnv of 32 gym.make envs",
            f"{native:,.0f} steps/s",
            f"{dummy:,.0f} steps/s",
            f"{native / dummy:.2f}x",
            None,
        ),
    ]


# ------------------------------------------------------------------------------------ memory
def resident_bytes() -> int:
    """This process's resident memory now (Linux ``/proc``; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):  # pragma: no cover - not Linux
        return 0
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


def memory_rows(quick: bool) -> list[BenchRow]:
    """Resident memory at 10% and at the end of 10^6 steps (10^5 with ``quick``)."""
    steps = 100_000 if quick else 1_000_000
    env = gym.make("GpuAlloc-v1", decision_interval_s=0.01, episode_length_s=600.0)
    config = env.unwrapped.config  # type: ignore[attr-defined]
    action = StaticEqualPolicy(config).replicas.astype(np.float32)
    env.reset(seed=0)
    early = 0
    for k in range(steps):
        _, _, _, truncated, _ = env.step(action)
        if truncated:
            env.reset()
        if k == steps // 10:
            early = resident_bytes()
    late = resident_bytes()
    growth = (late - early) / early if early else math.nan
    return [
        BenchRow(
            "memory",
            f"resident memory over {steps:,} steps (10 ms decisions, episodes of 600 s)",
            f"{late / 2**20:,.0f} MiB at the end",
            f"{early / 2**20:,.0f} MiB after {steps // 10:,} steps",
            f"{growth:+.1%}",
            abs(growth) < 0.05,
        )
    ]


MEASUREMENTS: dict[str, Callable[[bool], list[BenchRow]]] = {
    "single": single_rows,
    "vector": vector_rows,
    "decision": decision_rows,
    "episode": episode_rows,
    "train": train_rows,
    "memory": memory_rows,
}


def run_bench(parts: Sequence[str] = PARTS, quick: bool = False) -> list[BenchRow]:
    """Every row of the named parts, in :data:`PARTS` order."""
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown bench parts {unknown}; choose among {list(PARTS)}")
    rows: list[BenchRow] = []
    for part in PARTS:
        if part in parts:
            rows.extend(MEASUREMENTS[part](quick))
    return rows


def bench_table(rows: Sequence[BenchRow]) -> str:
    """The rows as a Markdown table, then the targets."""
    lines = [
        "| measurement | figure | reference | ratio | target met |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        verdict = "" if row.meets is None else ("yes" if row.meets else "no")
        lines.append(f"| {row.measurement} | {row.figure} | {row.reference} | {row.ratio} | {verdict} |")
    lines.append("")
    parts = [part for part in PARTS if any(row.part == part for row in rows)]
    lines.extend(f"- {part}: {TARGETS[part]}" for part in parts)
    return "\n".join(lines) + "\n"
