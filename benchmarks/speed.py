"""Simulator speed, as ratios against reference runs in the same process.

    python benchmarks/speed.py [--quick]

Machines here are shared and noisy, so absolute rates are printed only for context; the figures to
compare across machines are the ratios:

* env step cost against Gymnasium's CartPole-v1 step (the cheapest classic env),
* per-environment step cost of a batch of B environments against one environment,
* per-agent step cost of fleet(N) scenarios against the four-agent paper scenario,
* wall time per simulated second at a 10 ms decision interval against 1 s,
* env step cost replaying the Azure conversation trace against the synthetic paper workload.

The v1 floor: one env step with the adaptive policy costs no more CartPole steps than a v0 step
did (:data:`V0_CARTPOLE_RATIO`, measured by this script on the v0 simulator on the 2-core
development machine).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from gpu_alloc_env import GpuAllocEnv
from gpu_alloc_env.baselines import AdaptivePolicy, StaticEqualPolicy
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core import BatchSimulator
from gpu_alloc_env.scenarios import fleet, make_scenario

V0_CARTPOLE_RATIO = 130.0
"""CartPole-v1 steps per ``GpuAlloc-v0`` step with the adaptive policy (this script, v0)."""


def seconds_per_call(fn: Callable[[], None], calls: int, repeats: int = 3) -> float:
    """Best of ``repeats`` timings of ``calls`` calls of ``fn``, per call."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / calls


def cartpole_step_s(steps: int) -> float:
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    action = 0

    def step() -> None:
        nonlocal action
        _, _, terminated, truncated, _ = env.step(action)
        action ^= 1
        if terminated or truncated:
            env.reset()

    return seconds_per_call(step, steps)


WARM_UP_S = 150.0
"""Simulated seconds run before timing: the slowest cold start of ``paper`` (the 70B, 67 s) and the
backlog it leaves are over by then."""


def warm_up_steps(config: ScenarioConfig) -> int:
    """Decision intervals that cover :data:`WARM_UP_S`."""
    return math.ceil(WARM_UP_S / config.decision_interval_s)


def env_step_s(config: ScenarioConfig, policy_cls: type, steps: int) -> float:
    env = GpuAllocEnv(config)
    policy = policy_cls(config)
    obs, _ = env.reset(seed=0)
    for _ in range(warm_up_steps(config)):  # past every agent's cold start, into steady state
        obs, *_ = env.step(policy.predict(obs)[0])

    def step() -> None:
        nonlocal obs
        action, _ = policy.predict(obs)
        obs, _, _, truncated, _ = env.step(action)
        if truncated:
            obs, _ = env.reset()

    return seconds_per_call(step, steps)


def batch_step_s(config: ScenarioConfig, batch: int, steps: int) -> float:
    sim = BatchSimulator(config, batch)
    for e in range(batch):
        sim.reset_env(e, np.random.default_rng(e))
    action = np.tile(StaticEqualPolicy(config).replicas, (batch, 1))
    for _ in range(warm_up_steps(config)):
        sim.step(action)
    return seconds_per_call(lambda: sim.step(action), steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (noisier)")
    args = parser.parse_args()
    steps = 100 if args.quick else 400
    paper = make_scenario("paper", episode_length_s=100_000.0)

    reference = cartpole_step_s(steps * 10)
    print(f"reference: CartPole-v1 step {reference * 1e6:.1f} us\n")
    print("| measurement | per step | ratio |")
    print("|---|---|---|")
    single = {}
    for policy in (StaticEqualPolicy, AdaptivePolicy):
        cost = env_step_s(paper, policy, steps)
        single[policy.__name__] = cost
        print(
            f"| GpuAlloc-v1 step + {policy.__name__}.predict | {cost * 1e6:.0f} us "
            f"({1 / cost:.0f} steps/s) | {cost / reference:.1f}x CartPole |"
        )
    ratio = single["AdaptivePolicy"] / reference
    verdict = "meets" if ratio <= V0_CARTPOLE_RATIO else "misses"
    print(
        f"| floor: v1 step + adaptive against v0's {V0_CARTPOLE_RATIO:.0f}x CartPole | | "
        f"{ratio:.1f}x, {verdict} the floor |"
    )
    one = batch_step_s(paper, 1, steps)
    for batch in (16, 64):
        cost = batch_step_s(paper, batch, max(steps // 4, 20))
        print(
            f"| BatchSimulator B={batch}, per environment | {cost / batch * 1e6:.0f} us | "
            f"{cost / batch / one:.3f}x B=1 |"
        )
    base = env_step_s(fleet(4).replace(episode_length_s=100_000.0), AdaptivePolicy, steps)
    for n in (64, 1024):
        cost = env_step_s(
            fleet(n).replace(episode_length_s=100_000.0), AdaptivePolicy, max(steps // (n // 16), 5)
        )
        print(
            f"| fleet({n}) + adaptive, per agent | {cost / n * 1e6:.1f} us | "
            f"{(cost / n) / (base / 4):.3f}x fleet(4) |"
        )
    fine = make_scenario("paper", decision_interval_s=0.01, episode_length_s=100_000.0)
    fine_cost = env_step_s(fine, AdaptivePolicy, steps)
    coarse_cost = single["AdaptivePolicy"]
    print(
        f"| 10 ms decisions, wall time per simulated second | {fine_cost * 100 * 1e3:.1f} ms | "
        f"{fine_cost * 100 / coarse_cost:.1f}x 1 s decisions |"
    )
    replay = make_scenario("trace-conv", episode_length_s=3_000.0, workload={"trace": {"split": "all"}})
    replay_cost = env_step_s(replay, AdaptivePolicy, min(steps, 900))
    print(
        f"| trace-conv replay + adaptive | {replay_cost * 1e6:.0f} us | "
        f"{replay_cost / coarse_cost:.2f}x paper |"
    )


if __name__ == "__main__":
    main()
