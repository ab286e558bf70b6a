"""``gpu-alloc tune``: search the tuned baselines' settings on the tuning seeds, and save them.

- ``provisioned``: every constant allocation in whole replicas that fits the pool (each agent
  that receives requests holding at least one replica; when there are more than
  :data:`MAX_EXHAUSTIVE` of them, those within two replicas of the Erlang-C sizing), narrowed by
  successive halving: all candidates on the first seeds, the best quarter on more, the best
  three on all of them. The best mean episode return on all the seeds wins.
- ``autoscaler``: the target concurrency of each agent, by coordinate descent over
  :data:`TARGET_GRID` (two sweeps over the agents, Knative's default of 100 to start), scored by
  the mean episode return.

Every episode is on the tuning seeds (:data:`gpu_alloc_env.seeds.TUNING_SEED_BASE` on), never the
evaluation seeds. A held-out trace part is tuned on its training part, as an engineer sizes a
deployment from the traffic already seen.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gpu_alloc_env.baselines import AutoscalerPolicy, ProvisionedErlangPolicy, ProvisionedPolicy
from gpu_alloc_env.baselines.tuned import TunedRecord, fingerprint
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.evaluation import evaluate_policies, policy_means
from gpu_alloc_env.policy import Policy
from gpu_alloc_env.progress import progress_bar
from gpu_alloc_env.seeds import TUNING_SEED_BASE

MAX_EXHAUSTIVE = 2_000
"""The most constant allocations searched exhaustively."""
TARGET_GRID: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 100.0)
"""Target concurrencies per replica the autoscaler's search tries for each agent."""
HALVING_SEEDS: tuple[int, ...] = (2, 4)
"""Seeds added in each successive-halving round before the last (which uses all)."""


def tuning_scenario(config: ScenarioConfig) -> ScenarioConfig:
    """The scenario whose tuning seeds are searched: a held-out trace part's training part."""
    trace = config.workload.trace
    if config.workload.pattern != "trace" or trace is None or trace.split == "train":
        return config
    name = config.name.removesuffix("-held-out")
    name = name if name != config.name else f"{config.name}-train"
    return config.replace(name=name, workload={"trace": {"split": "train"}})


def mean_returns(
    policies: dict[str, Policy], config: ScenarioConfig, seeds: Sequence[int]
) -> dict[str, float]:
    """Mean episode return of each policy over ``seeds`` (the same workload for all)."""
    return policy_means(evaluate_policies(policies, config, seeds, progress=False), "episode_return")


def exhaustive(config: ScenarioConfig) -> bool:
    """Whether :func:`constant_candidates` holds every constant that fits (else those near Erlang-C)."""
    agents = config.agents
    sizes = [
        a.max_replicas + (1 if i > 0 and a.invoke_probability == 0.0 else 0) for i, a in enumerate(agents)
    ]
    return int(np.prod(sizes, dtype=np.float64)) <= MAX_EXHAUSTIVE


def constant_candidates(config: ScenarioConfig) -> list[tuple[int, ...]]:
    """Constant allocations to search: all that fit, or those near the Erlang-C sizing (module doc)."""
    agents = config.agents
    gpus = np.array([a.tensor_parallel for a in agents])
    lowest = [1 if (i == 0 or a.invoke_probability > 0.0) else 0 for i, a in enumerate(agents)]
    ranges = [range(lo, a.max_replicas + 1) for lo, a in zip(lowest, agents, strict=True)]
    if not exhaustive(config):
        centre = ProvisionedErlangPolicy(config).replicas.astype(int)
        ranges = [
            range(max(lo, c - 2), min(a.max_replicas, c + 2) + 1)
            for lo, c, a in zip(lowest, centre, agents, strict=True)
        ]
    return [c for c in itertools.product(*ranges) if int(np.dot(c, gpus)) <= config.capacity_gpus]


@dataclass(frozen=True)
class SearchResult:
    """The winning settings, their mean return on all seeds, and every score seen."""

    settings: dict[str, list[float]]
    mean_return: float
    tried: int
    scores: dict[str, float]
    space: str = ""


def search_provisioned(config: ScenarioConfig, seeds: Sequence[int]) -> SearchResult:
    """Successive halving over :func:`constant_candidates` on ``seeds`` (module docstring)."""
    candidates = constant_candidates(config)
    if not candidates:
        raise ValueError(f"no constant allocation of scenario {config.name!r} fits its pool")
    bounds = [*itertools.accumulate(HALVING_SEEDS), len(seeds)]
    bounds = [min(b, len(seeds)) for b in bounds]
    alive = list(candidates)
    totals = dict.fromkeys(alive, 0.0)
    done = 0
    with progress_bar(len(bounds), f"{config.name}: provisioned", "round") as bar:
        for round_index, upto in enumerate(bounds):
            if upto > done:
                chunk = list(seeds[done:upto])
                policies: dict[str, Policy] = {str(c): ProvisionedPolicy(config, list(c)) for c in alive}
                scores = mean_returns(policies, config, chunk)
                for c in alive:
                    totals[c] += scores[str(c)] * len(chunk)
                done = upto
            ranked = sorted(alive, key=lambda c: totals[c], reverse=True)
            keep = max(8, len(ranked) // 4) if round_index == 0 else 3
            alive = ranked if round_index == len(bounds) - 1 else ranked[:keep]
            bar.update(1)
    best = alive[0]
    return SearchResult(
        {"replicas": [float(v) for v in best]},
        totals[best] / done,
        len(candidates),
        {str(c): totals[c] / done for c in alive},
        "every constant that fits the pool"
        if exhaustive(config)
        else f"the constants within 2 replicas of the Erlang-C sizing (over {MAX_EXHAUSTIVE} fit the pool)",
    )


def search_autoscaler(config: ScenarioConfig, seeds: Sequence[int], sweep_seeds: int = 4) -> SearchResult:
    """Coordinate descent over each agent's target concurrency (module docstring)."""
    n = len(config.agents)
    targets: tuple[float, ...] = (100.0,) * n
    cache: dict[tuple[float, ...], float] = {}
    sweep = list(seeds[:sweep_seeds])

    def score(candidates: list[tuple[float, ...]]) -> None:
        fresh = [c for c in candidates if c not in cache]
        if fresh:
            policies: dict[str, Policy] = {str(c): AutoscalerPolicy(config, list(c)) for c in fresh}
            for c, value in zip(fresh, mean_returns(policies, config, sweep).values(), strict=True):
                cache[c] = value

    with progress_bar(2 * n, f"{config.name}: autoscaler", "agent") as bar:
        for _ in range(2):
            for agent in range(n):
                options = [(*targets[:agent], t, *targets[agent + 1 :]) for t in TARGET_GRID]
                score(options)
                targets = max(options, key=lambda c: cache[c])
                bar.update(1)
    final = mean_returns({"tuned": AutoscalerPolicy(config, list(targets))}, config, seeds)["tuned"]
    return SearchResult(
        {"target_concurrency": list(targets)},
        final,
        len(cache),
        {str(k): v for k, v in cache.items()},
        f"target concurrency per agent in {list(TARGET_GRID)}, two sweeps of coordinate descent",
    )


SEARCHES: dict[str, Callable[[ScenarioConfig, Sequence[int]], SearchResult]] = {
    "provisioned": search_provisioned,
    "autoscaler": search_autoscaler,
}
"""Tuned baseline -> its search."""


def tune(config: ScenarioConfig, baseline: str, episodes: int, command: str) -> TunedRecord:
    """Search ``baseline``'s settings for ``config`` on ``episodes`` tuning seeds; the record to save."""
    if baseline not in SEARCHES:
        raise ValueError(f"unknown tuned baseline {baseline!r}; choose one of {sorted(SEARCHES)}")
    if episodes < 2:
        raise ValueError(f"--episodes must be at least 2 (successive halving needs them), got {episodes}")
    seeds = list(range(TUNING_SEED_BASE, TUNING_SEED_BASE + episodes))
    target = tuning_scenario(config)
    result = SEARCHES[baseline](target, seeds)

    return TunedRecord(
        scenario=config.name,
        fingerprint=fingerprint(config),
        baseline=baseline,
        settings=result.settings,
        tuned_on=target.name,
        seeds=seeds,
        command=command,
        search={
            "candidates_tried": result.tried,
            "mean_return": result.mean_return,
            "finalists": result.scores,
        },
    )
