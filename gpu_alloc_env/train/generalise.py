r"""Does a policy trained elsewhere hold up on a real trace's held-out part? ``gpu-alloc generalise``.

PPO is trained on synthetic scenarios (``paper``, and each trace's fitted twin) and on the training
part of each bundled trace; every run and every baseline is then scored on the held-out part of
each trace, on the same episodes, with the statistics of ``gpu-alloc evaluate``. The table behind
``results/generalisation`` is::

    gpu-alloc generalise --seeds 0 1 2 --timesteps 2000000 --episodes 20 \
        --runs-dir runs/generalisation --out results/generalisation
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from gpu_alloc_env.baselines import available_baselines
from gpu_alloc_env.evaluation import SUMMARY_METRICS
from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.seeds import EVALUATION_SEED_BASE
from gpu_alloc_env.stats import bootstrap_ci95, iqm, undefined_note
from gpu_alloc_env.train.comparison import (
    CRITERIA,
    REFERENCE,
    Scored,
    best_baseline,
    criteria_rows,
    groups_of,
    interval_cell,
)
from gpu_alloc_env.train.evaluate import score, write_csv
from gpu_alloc_env.train.experiment import plan_runs, run_jobs
from gpu_alloc_env.train.learned import LearnedPolicy

TRACES = ("conv", "code")
"""Bundled traces evaluated on (their ``trace-<name>-held-out`` scenarios)."""


def training_scenarios(trace: str) -> tuple[str, ...]:
    """Where the PPO policies evaluated on ``trace`` were trained: synthetic, twin, trace."""
    return ("paper", f"trace-{trace}-twin", f"trace-{trace}")


def label(scenario: str) -> str:
    """The policy name of PPO runs trained on ``scenario``."""
    return f"ppo[{scenario}]"


def score_trace(
    trace: str, runs: dict[str, list[Path]], seeds: Sequence[int], progress: bool | None = None
) -> list[Scored]:
    """Baselines and the runs of each training scenario on ``trace-<trace>-held-out``."""
    config = make_scenario(f"trace-{trace}-held-out")
    scored = score([], available_baselines(config), config, seeds, progress)
    for scenario in training_scenarios(trace):
        policies = [LearnedPolicy(run, "best") for run in runs[scenario]]
        for policy in policies:
            policy.check_compatible(config)
        for item in score(policies, [], config, seeds, progress):
            relabelled = dataclasses.replace(item.result, policy=label(scenario))
            scored.append(Scored(relabelled, item.run, item.train_seed))
    return scored


def trace_table(trace: str, scored: Sequence[Scored], seeds: Sequence[int]) -> list[str]:
    """Markdown lines: every policy's metrics, then each PPO group against the heuristic."""
    policies = list(dict.fromkeys(item.result.policy for item in scored))
    lines = [
        f"## Held-out part of the `{trace}` trace (`trace-{trace}-held-out`)",
        "",
        "| policy | runs | " + " | ".join(SUMMARY_METRICS) + " |",
        "|" + "---|" * (len(SUMMARY_METRICS) + 2),
    ]
    for policy in policies:
        groups = groups_of(scored, policy, SUMMARY_METRICS[0])
        cells = [
            interval_cell(*bootstrap_ci95(groups, iqm)) + undefined_note([v for g in groups for v in g])
            for groups in (groups_of(scored, policy, m) for m in SUMMARY_METRICS)
        ]
        runs = len(groups) if policy.startswith("ppo[") else "-"
        lines.append(f"| {policy} | {runs} | " + " | ".join(cells) + " |")
    lines += ["", *paired_table(scored, policies, REFERENCE, f"the {REFERENCE} heuristic")]
    best = best_baseline(scored)
    if best is not None and best != REFERENCE:
        described = f"the best baseline, {best} (highest IQM return)"
        lines += ["", *paired_table(scored, policies, best, described)]
    return lines


def paired_table(
    scored: Sequence[Scored], policies: Sequence[str], reference: str, described: str
) -> list[str]:
    """Markdown lines: each PPO group's paired differences against ``reference``, with verdicts."""
    lines = [
        f"Paired per-seed difference against {described} (mean [95% bootstrap interval], runs then "
        "episodes resampled) and its verdict:",
        "",
        "| trained on | " + " | ".join(f"{c.metric}" for c in CRITERIA) + " |",
        "|" + "---|" * (len(CRITERIA) + 1),
    ]
    for policy in policies:
        if policy.startswith("ppo["):
            cells = [f"{cell} {verdict}" for _, cell, verdict in criteria_rows(scored, policy, reference)]
            lines.append(f"| `{policy[4:-1]}` | " + " | ".join(cells) + " |")
    return lines


def run_generalise(
    seeds: Sequence[int],
    timesteps: int,
    runs_dir: Path,
    out_dir: Path,
    episodes: int,
    parallel: int = 2,
    command: str | None = None,
    progress: bool | None = None,
) -> str:
    """Train every run that is not yet trained, score everything, write the table; returns it.

    ``progress`` shows bars of the runs' training and of the scoring (``None``: on a terminal).
    """
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    scenarios = list(dict.fromkeys(s for trace in TRACES for s in training_scenarios(trace)))
    if parallel < 1:
        raise ValueError(f"--parallel must be >= 1, got {parallel}")
    # Every scenario's runs in one pool, so that no run trains alone while another could run beside it.
    planned = {s: plan_runs(s, seeds, timesteps, runs_dir) for s in scenarios}
    run_jobs([job for _, jobs in planned.values() for job in jobs], timesteps, parallel, progress)
    runs = {s: folders for s, (folders, _) in planned.items()}
    eval_seeds = [EVALUATION_SEED_BASE + k for k in range(episodes)]
    out_dir = Path(out_dir)
    lines = [
        "# Generalisation to the held-out part of real traces",
        "",
        *([f"Command: `{command}`.", ""] if command else []),
        f"PPO trained with seeds {', '.join(map(str, seeds))} for {timesteps:,} steps on each of: "
        "`paper` (synthetic, steady Poisson), the trace's synthetic twin (fitted to the trace's "
        "training part, `results/twins.md`) and the training part of the trace itself (the first 70% "
        "of its span). Every policy plays the same "
        f"{episodes} episodes (seeds {eval_seeds[0]}..{eval_seeds[-1]}) of the held-out part (the "
        "last 30%), each a window at an offset drawn from its seed; windows of different episodes "
        "overlap, so the episodes are not independent samples of the trace.",
        "",
        "Cells: interquartile mean [95% bootstrap interval]; for PPO the bootstrap resamples runs "
        "(training seeds), then episodes.",
    ]
    for trace in TRACES:
        scored = score_trace(trace, runs, eval_seeds, progress)
        write_csv(scored, out_dir / f"episodes-{trace}.csv")
        lines += ["", *trace_table(trace, scored, eval_seeds)]
    text = "\n".join(lines) + "\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.md").write_text(text)
    return text
