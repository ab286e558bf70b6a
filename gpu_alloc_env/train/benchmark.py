"""``gpu-alloc benchmark``: every policy on the same seeds of a scenario, in rliable's statistics.

For one scenario, every deployable baseline, the trained PPO runs given and the clairvoyant
``oracle`` play the same evaluation seeds; the relaxation bound of every seed is computed beside
them. ``<out>/<scenario>/episodes.csv`` holds one row per policy, run and seed, ``bounds.csv`` the
bound per seed, and ``summary.md``:

- per policy, the interquartile mean (IQM) of the episode return with a 95% bootstrap interval
  (runs, then episodes within them), the share of the way from the worst baseline to the bound, and
  the probability of improvement over the best deployable baseline (rliable's P(X > Y));
- PPO's paired differences against that best baseline on return, p95 latency and cost.

``<out>/summary.md`` and ``<out>/performance_profile.png`` then aggregate every scenario found in
``<out>``: per policy the IQM share of the way to the bound with a stratified bootstrap interval
(episodes resampled within each scenario), and the performance profile, the fraction of
episodes whose share exceeds each threshold (rliable's score distribution), scenarios weighted
equally.
"""

from __future__ import annotations

import csv
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gpu_alloc_env.baselines import TUNED_BASELINES, available_baselines
from gpu_alloc_env.baselines.bound import BOUND_KIND
from gpu_alloc_env.baselines.oracle import ORACLE_KIND
from gpu_alloc_env.config import ConfigError, ScenarioConfig
from gpu_alloc_env.core.metrics import EPISODE_METRICS
from gpu_alloc_env.evaluation import EpisodeResult, format_interval, write_rows_csv
from gpu_alloc_env.limits import gap_shares, seed_bounds, worst_baseline
from gpu_alloc_env.seeds import EVALUATION_SEED_BASE
from gpu_alloc_env.stats import bootstrap_ci95, improvement_ci95, iqm, stratified_bootstrap_ci95
from gpu_alloc_env.train.comparison import LEARNED, Scored, criteria_rows, groups_of, paired_by_run
from gpu_alloc_env.train.evaluate import load_runs, score, write_csv

BENCHMARK_SCENARIOS: tuple[str, ...] = (
    "paper",
    "bursty",
    "diurnal",
    "trace-conv-held-out",
    "trace-code-held-out",
)
"""The scenarios of the benchmark table."""
POLICY_ORDER: tuple[str, ...] = (
    "static",
    "round_robin",
    "adaptive",
    "provisioned",
    "autoscaler",
    LEARNED,
    "oracle",
)
"""Policies of the benchmark, in the tables' order."""
DEPLOYABLE: tuple[str, ...] = ("static", "round_robin", "adaptive", "provisioned", "autoscaler")
"""Baselines a platform could run: the best of them is the bar a learned policy must clear."""


def profile_thresholds(shares: dict[str, dict[str, list[float]]]) -> np.ndarray:
    """Shares at which the performance profile is drawn: from just below the policies' to 1.

    The worst baseline of each scenario scores 0 by definition and is left out of the range, so
    that the differences among the others are visible.
    """
    values = np.array([v for by_policy in shares.values() for s in by_policy.values() for v in s if v > 0.0])
    low = np.floor(20.0 * np.percentile(values, 5)) / 20.0 if values.size else 0.0
    return np.linspace(float(np.clip(low, 0.0, 0.95)), 1.0, 101)


def best_deployable(scored: Sequence[Scored]) -> str:
    """The deployable baseline with the highest IQM return."""
    returns = {p: iqm(v[0]) for p in DEPLOYABLE if (v := groups_of(scored, p, "episode_return"))}
    return max(returns, key=lambda p: returns[p])


def seeds_won(scored: Sequence[Scored], policy: str, reference: str) -> float:
    """Share of ``policy``'s episodes scoring above ``reference`` on the same seed (ties: half)."""
    differences = [
        d for run in paired_by_run(scored, policy, "episode_return", reference).values() for d in run
    ]
    wins = [float(d > 0.0) + 0.5 * float(d == 0.0) for d in differences]
    return float(np.mean(wins)) if wins else float("nan")


def scenario_summary(
    scored: Sequence[Scored],
    bounds: dict[int, float],
    config: ScenarioConfig,
    seeds: Sequence[int],
    command: str,
) -> str:
    """The ``summary.md`` of one scenario (module docstring)."""
    results = [item.result for item in scored]
    best = best_deployable(scored)
    worst = worst_baseline(results) or best
    shares = gap_shares(results, bounds, worst)
    best_returns = [v for g in groups_of(scored, best, "episode_return") for v in g]
    lines = [
        f"# Benchmark on scenario `{config.name}`",
        "",
        f"Command: `{command}`",
        "",
        f"{len(seeds)} evaluation seeds ({seeds[0]}..{seeds[-1]}), the same workload for every policy; "
        "PPO pools its training runs (one row per run and seed in `episodes.csv`). IQM: interquartile "
        "mean; intervals: 95% bootstrap (runs, then episodes). `oracle` is the clairvoyant planner "
        f"(kind: {ORACLE_KIND}, an achievable return); the bound is a {BOUND_KIND} (no policy exceeds "
        f"it), mean {np.mean(list(bounds.values())):.1f}. Share: of the way from `{worst}` to the bound.",
        "",
        f"Best deployable baseline: **{best}**. P(improvement): rliable's probability that an episode "
        f"of the policy scores above one of `{best}` (episodes unpaired); seeds won: the share of "
        f"seeds (and runs) on which it scores above `{best}` on the same workload (ties count half).",
        "",
        "| policy | episodes | IQM return | p95 latency s | cost $/1k tasks | SLO attainment | "
        "IQM share to bound | P(improvement) over best | seeds won |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for policy in [p for p in POLICY_ORDER if any(r.policy == p for r in results)]:
        groups = groups_of(scored, policy, "episode_return")
        flat = [v for g in groups for v in g]
        means = [
            format_interval(*bootstrap_ci95(groups_of(scored, policy, metric), lambda x: float(np.mean(x))))
            for metric in ("task_latency_p95_s", "cost_per_1k_tasks_usd", "slo_attainment")
        ]
        improvement = (
            "—" if policy == best else format_interval(*improvement_ci95(flat, best_returns), bracketed=True)
        )
        returns = format_interval(*bootstrap_ci95(groups, iqm), bracketed=True)
        share = format_interval(*bootstrap_ci95([shares.get(policy, [])], iqm), bracketed=True)
        won = "—" if policy == best else f"{seeds_won(scored, policy, best):.2f}"
        cells = [str(len(flat)), returns, *means, share, improvement, won]
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    if any(r.policy == LEARNED for r in results):
        lines += [
            "",
            f"## PPO against the best deployable baseline (`{best}`)",
            "",
            "Paired per seed, PPO minus the baseline; mean and 95% bootstrap interval over runs and seeds.",
            "",
            "| criterion | difference | verdict |",
            "|---|---|---|",
        ]
        for criterion, cell, verdict in criteria_rows(scored, LEARNED, best):
            lines.append(f"| {criterion.text} | {cell} | {verdict} |")
    return "\n".join(lines) + "\n"


def run_benchmark(
    config: ScenarioConfig,
    run_dirs: Sequence[Path],
    episodes: int,
    out_root: Path,
    first_seed: int = EVALUATION_SEED_BASE,
    model: str = "best",
    oracle: bool = True,
    command: str | None = None,
    progress: bool | None = None,
    tuned_dir: Path | None = None,
    require_tuned: bool = True,
) -> str:
    """Benchmark one scenario into ``out_root/<scenario>`` and refresh the aggregate; its summary.

    Raises:
        ConfigError: with ``require_tuned``, when the scenario has no tuned settings for
            ``provisioned`` or ``autoscaler`` (the benchmark judges against the strongest baselines).
    """
    if episodes < 2:
        raise ValueError(f"--episodes must be at least 2 for intervals, got {episodes}")
    command = command or shlex.join(["gpu-alloc", *sys.argv[1:]])
    seeds = list(range(first_seed, first_seed + episodes))
    runs = load_runs(run_dirs, model)
    for run in runs:
        run.check_compatible(config)
    names = [p for p in available_baselines(config, tuned_dir) if p in DEPLOYABLE]
    missing = [p for p in TUNED_BASELINES if p not in names]
    if missing and require_tuned:
        raise ConfigError(
            f"scenario {config.name!r} has no tuned settings for {', '.join(missing)}; run `gpu-alloc tune "
            f"--scenario {config.name} --out DIR` (with the same --set options) and pass --tuned DIR"
        )
    names += ["oracle"] if oracle else []
    scored = score(runs, names, config, seeds, progress, tuned_dir)
    bounds = seed_bounds(config, seeds)
    out = out_root / config.name
    write_csv(scored, out / "episodes.csv")
    write_rows_csv(
        ({"seed": s, "return_bound": b} for s, b in bounds.items()),
        ("seed", "return_bound"),
        out / "bounds.csv",
    )
    text = scenario_summary(scored, bounds, config, seeds, command)
    (out / "summary.md").write_text(text)
    write_aggregate(out_root)
    return text


def read_scenario(folder: Path) -> tuple[list[Scored], dict[int, float]]:
    """The episodes and bounds a scenario's folder holds (as :func:`run_benchmark` wrote them)."""
    scored = []
    with (folder / "episodes.csv").open() as handle:
        for row in csv.DictReader(handle):
            metrics = {key: float(value) for key, value in row.items() if key in EPISODE_METRICS}
            result = EpisodeResult(
                row["policy"],
                int(row["seed"]),
                float(row["episode_return"]),
                int(row["episode_steps"]),
                metrics,
            )
            seed = row["train_seed"]
            scored.append(Scored(result, row["run"], int(seed) if seed else None))
    with (folder / "bounds.csv").open() as handle:
        bounds = {int(row["seed"]): float(row["return_bound"]) for row in csv.DictReader(handle)}
    return scored, bounds


def per_seed_means(results: Sequence[EpisodeResult]) -> list[EpisodeResult]:
    """One result per policy and seed: a policy with several runs (PPO) counts their mean return.

    So every policy has as many episodes in every scenario, and the pooled statistics weigh the
    scenarios alike.
    """
    returns: dict[tuple[str, int], list[float]] = {}
    for r in results:
        returns.setdefault((r.policy, r.seed), []).append(r.episode_return)
    return [EpisodeResult(policy, seed, float(np.mean(v)), 0, {}) for (policy, seed), v in returns.items()]


def ppo_rows(scored_by_scenario: dict[str, list[Scored]]) -> list[str]:
    """Markdown rows: per scenario with PPO runs, PPO against the best deployable baseline, paired."""
    rows = []
    for scenario, scored in scored_by_scenario.items():
        if not any(item.result.policy == LEARNED for item in scored):
            continue
        best = best_deployable(scored)
        cells = criteria_rows(scored, LEARNED, best)
        runs = len({item.run for item in scored if item.result.policy == LEARNED})
        verdicts = ", ".join(verdict for _, _, verdict in cells)
        rows.append(
            f"| `{scenario}` | {runs} | {best} | "
            + " | ".join(cell for _, cell, _ in cells)
            + f" | {verdicts} |"
        )
    return rows


def write_aggregate(out_root: Path) -> str:
    """``summary.md`` and ``performance_profile.png`` over every scenario folder in ``out_root``."""
    shares: dict[str, dict[str, list[float]]] = {}
    scored_by_scenario: dict[str, list[Scored]] = {}
    folders = [out_root / name for name in BENCHMARK_SCENARIOS if (out_root / name / "bounds.csv").is_file()]
    extra = sorted(
        f for f in out_root.iterdir() if f.is_dir() and (f / "bounds.csv").is_file() and f not in folders
    )
    for folder in folders + extra:
        scored, bounds = read_scenario(folder)
        results = [item.result for item in scored]
        scored_by_scenario[folder.name] = scored
        shares[folder.name] = gap_shares(per_seed_means(results), bounds, worst_baseline(results) or "static")
    policies = [p for p in POLICY_ORDER if any(p in s for s in shares.values())]
    lines = [
        "# Benchmark: every policy on every scenario",
        "",
        "Commands: `results/regenerate.sh` (one `gpu-alloc benchmark` per scenario; each scenario's "
        "`summary.md` names its own). Cells: interquartile mean of the per-seed share of the way "
        f"from the scenario's worst baseline to its {BOUND_KIND} (0: the worst baseline, 1: the bound, "
        "which no policy reaches; PPO: the mean of its runs on each seed), with 95% bootstrap "
        "intervals; the last column pools the scenarios, each with the same number of seeds, with a "
        "stratified bootstrap (seeds resampled within each scenario).",
        "",
        "| policy | " + " | ".join(f"`{s}`" for s in shares) + " | all scenarios |",
        "|---|" + "---|" * (len(shares) + 1),
    ]
    for policy in policies:
        cells = [
            format_interval(*bootstrap_ci95([s.get(policy, [])], iqm), bracketed=True)
            for s in shares.values()
        ]
        strata = [s[policy] for s in shares.values() if policy in s]
        pooled = stratified_bootstrap_ci95(strata, lambda arrays: iqm(np.concatenate(arrays)))
        everywhere = len(strata) == len(shares)
        cells.append(format_interval(*pooled, bracketed=True) if everywhere else "not on every scenario")
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    learned = ppo_rows(scored_by_scenario)
    if learned:
        lines += [
            "",
            "PPO against the best deployable baseline of each scenario: paired per seed, PPO minus the "
            "baseline, mean and 95% bootstrap interval over runs and seeds; verdicts of higher return, "
            "lower p95 latency and no higher cost, in that order.",
            "",
            "| scenario | PPO runs | best deployable | return | p95 latency s | cost $/1k tasks | verdicts |",
            "|---|---|---|---|---|---|---|",
            *learned,
        ]
    lines += ["", "![performance profile](performance_profile.png)", ""]
    text = "\n".join(lines)
    (out_root / "summary.md").write_text(text)
    from gpu_alloc_env.train.plots import performance_profile_plot

    performance_profile_plot(
        {p: [s[p] for s in shares.values() if p in s] for p in policies},
        profile_thresholds(shares),
        out_root / "performance_profile.png",
    )
    return text
