"""The text of ``gpu-alloc evaluate``'s ``summary.md``.

The scenario and how it differs from the runs', the policies' table, the runs' training, and the
paired comparisons of :mod:`gpu_alloc_env.train.comparison`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.evaluation import SUMMARY_METRICS
from gpu_alloc_env.stats import bootstrap_ci95, iqm, undefined_note
from gpu_alloc_env.train.comparison import (
    LEARNED,
    LEARNED_POLICIES,
    REFERENCE,
    Scored,
    best_baseline,
    criteria_rows,
    groups_of,
    interval_cell,
    per_run_table,
)
from gpu_alloc_env.train.learned import (
    BACKENDS,
    MODEL_PATHS,
    LearnedPolicy,
    config_differences,
    show_value,
    training_record,
)


def training_table(runs: Sequence[LearnedPolicy]) -> list[str]:
    """Lines of the table of the runs' training: seed, steps, wall-clock time, best validation."""
    lines = [
        "## Training runs",
        "",
        "Steps from each run's last checkpoint; wall-clock minutes from its monitor logs (all "
        "training segments of the run); best validation from its `evaluations.npz`.",
        "",
        "| run | train_seed | timesteps | wall_clock_min | best_validation_step | best_validation_return |",
        "|---|---|---|---|---|---|",
    ]
    for run in sorted(runs, key=lambda r: r.label):
        rec = training_record(run.run_dir)

        def fmt(value: float, spec: str) -> str:
            return "n/a" if math.isnan(value) else format(value, spec)

        lines.append(
            f"| {run.label} | {run.train_seed} | {fmt(rec['timesteps'], '.0f')} | "
            f"{fmt(rec['wall_s'] / 60.0, '.1f')} | {fmt(rec['best_step'], '.0f')} | "
            f"{fmt(rec['best_validation_return'], '.1f')} |"
        )
    return lines


MODEL_NOTES = {"best": "the model with the best validation return", "final": "the final model"}


def model_note(model: str, runs: Sequence[LearnedPolicy]) -> str:
    """What ``--model`` ``model`` evaluates, naming the files of the runs' backends."""
    files = ", ".join(
        f"`{MODEL_PATHS[backend][model]}{'/' if backend == 'rllib' else ''}`"
        for backend in BACKENDS
        if any(run.backend == backend for run in runs)
    )
    return f"{MODEL_NOTES[model]} ({files}, `--model {model}`)"


def scenario_lines(
    config: ScenarioConfig, runs: Sequence[LearnedPolicy], preset: ScenarioConfig | None
) -> list[str]:
    """Lines saying how ``config`` differs from the runs' training scenarios (or from ``preset``)."""

    def listed(differences: Sequence[tuple[str, Any, Any]], before: str) -> str:
        return ", ".join(
            f"`{path}` = {show_value(new)} ({before}: {show_value(old)})" for path, old, new in differences
        )

    lines = []
    # Grouped by equality: a scenario is not hashable (its platform and GPU specs hold dicts).
    by_config: list[tuple[ScenarioConfig, list[str]]] = []
    for run in runs:
        group = next((labels for trained, labels in by_config if trained == run.config), None)
        if group is None:
            by_config.append((run.config, [run.label]))
        else:
            group.append(run.label)
    for trained, labels in by_config:
        differences = [d for d in config_differences(trained, config) if d[0] != "name"]
        who = f"run{'s' if len(labels) > 1 else ''} {', '.join(labels)}"
        if differences:
            lines.append(
                f"Differences from the training scenario `{trained.name}` of {who}: "
                f"{listed(differences, 'trained')}."
            )
        else:
            lines.append(f"The training scenario of {who} (`{trained.name}`), unchanged.")
    if not runs and preset is not None:
        differences = [d for d in config_differences(preset, config) if d[0] != "name"]
        if differences:
            lines.append(f"Differences from the preset `{preset.name}`: {listed(differences, 'preset')}.")
    return lines


def trace_note(config: ScenarioConfig) -> str:
    """`` Trace ..., part ...`` for a trace scenario (which part of which trace was played), else ``""``."""
    trace = config.workload.trace
    if trace is None:
        return ""
    return f" Workload: the `{trace.split}` part of trace `{trace.source}` (load_scale {trace.load_scale:g})."


def summary_markdown(
    scored: Sequence[Scored],
    config: ScenarioConfig,
    seeds: Sequence[int],
    learned_runs: Sequence[LearnedPolicy] = (),
    command: str | None = None,
    preset: ScenarioConfig | None = None,
) -> str:
    """The text of ``summary.md``.

    Args:
        scored: every episode of every policy.
        config: the scenario evaluated on.
        seeds: the episodes' seeds.
        learned_runs: the runs evaluated.
        command: the command line, recorded at the top.
        preset: without runs, the named scenario ``config`` was made from (its differences are listed).
    """
    policies = list(dict.fromkeys(i.result.policy for i in scored))
    runs = sorted({i.run for i in scored if i.run})
    models = sorted({run.model_choice for run in learned_runs})
    notes = scenario_lines(config, learned_runs, preset)
    if models:
        notes.append(f"Model of each run: {' and '.join(model_note(m, learned_runs) for m in models)}.")
    header = [f"Command: `{command}`", ""] if command else []
    if notes:
        header += [" ".join(notes), ""]
    lines = [
        f"# Evaluation on scenario `{config.name}`",
        "",
        *header,
        f"{len(seeds)} held-out episode{'s' if len(seeds) > 1 else ''} per policy and run "
        f"(seeds {seeds[0]}..{seeds[-1]}, the same workload for every policy), "
        f"{config.episode_length_s:g} s each. Learned runs: "
        f"{', '.join(runs) if runs else 'none'}.{trace_note(config)}",
        "",
        "Cells: interquartile mean [95% bootstrap interval]; for learned policies the bootstrap "
        "resamples runs (training seeds), then episodes within them.",
        "",
        "| policy | runs | " + " | ".join(SUMMARY_METRICS) + " |",
        "|" + "---|" * (len(SUMMARY_METRICS) + 2),
    ]
    for policy in policies:
        cells = [
            interval_cell(*bootstrap_ci95(groups, iqm)) + undefined_note([v for g in groups for v in g])
            for groups in (groups_of(scored, policy, m) for m in SUMMARY_METRICS)
        ]
        count = len(groups_of(scored, policy, SUMMARY_METRICS[0])) if policy in LEARNED_POLICIES else 0
        lines.append(f"| {policy} | {count or '-'} | " + " | ".join(cells) + " |")
    if learned_runs:
        lines += ["", *training_table(learned_runs)]
    best = best_baseline(scored)
    for learned in (name for name in LEARNED_POLICIES if name in policies):
        if REFERENCE in policies:
            heading = f"## {learned} against the {REFERENCE} heuristic"
            lines += [
                "",
                heading,
                "",
                *_criteria_table(scored, REFERENCE, learned),
                "",
                *per_run_table(scored, learned),
            ]
        if best is not None and best != REFERENCE:
            lines += [
                "",
                f"## {learned} against the best baseline, {best}",
                "",
                f"`{best}` has the highest interquartile mean episode return of the baselines here.",
                "",
                *_criteria_table(scored, best, learned),
            ]
    return "\n".join(lines) + "\n"


def _criteria_table(scored: Sequence[Scored], reference: str, learned: str = LEARNED) -> list[str]:
    """Lines of the table of the win criteria of the ``learned`` policy against ``reference``."""
    lines = [
        f"Paired per-seed difference {learned} - {reference} (mean [95% bootstrap interval], runs "
        "then episodes resampled). A criterion holds when the whole interval is on its side of zero.",
        "",
        "| criterion | metric | difference | verdict |",
        "|---|---|---|---|",
    ]
    for criterion, cell, verdict in criteria_rows(scored, learned, reference):
        lines.append(f"| {criterion.text} | `{criterion.metric}` | {cell} | {verdict} |")
    return lines
