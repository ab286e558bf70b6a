"""Score trained runs and the baselines on the same held-out seeds: ``gpu-alloc evaluate``.

Every policy plays the same episodes (seeds from ``--first-seed``, by default
:data:`EVALUATION_SEED_BASE`, which training and validation never use). Runs trained on a trace's
training part are scored on its held-out part unless told otherwise, and a run refuses a scenario
in which what it learned no longer applies (:meth:`LearnedPolicy.check_compatible`).
``summary.md`` gives, per policy, the interquartile mean of each metric and
its 95% bootstrap interval (runs of different training seeds resampled, then episodes within
them), and for every learned policy the paired difference against the adaptive heuristic on the
same seeds, with the verdicts of the win criteria, and the same against the best baseline when
that is not the heuristic.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gpu_alloc_env.baselines import BASELINES, make_baseline
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.env import GpuAllocEnv, resolve_scenario
from gpu_alloc_env.evaluation import (
    CSV_COLUMNS,
    SUMMARY_METRICS,
    EpisodeResult,
    run_episode,
    write_rows_csv,
)
from gpu_alloc_env.policy import Policy
from gpu_alloc_env.progress import progress_bar
from gpu_alloc_env.seeds import EVALUATION_SEED_BASE, FIRST_UNUSED_SEED, TUNING_SEED_BASE
from gpu_alloc_env.stats import bootstrap_ci95, iqm, undefined_note
from gpu_alloc_env.train.learned import (
    MODEL_FILES,
    LearnedPolicy,
    config_differences,
    is_policy_field,
    show_value,
    training_record,
)

EVALUATE_COLUMNS: tuple[str, ...] = (*CSV_COLUMNS, "run", "train_seed")
"""Columns of ``episodes.csv``: those of ``gpu-alloc compare`` plus the run and its training seed."""

UNDEFINED_VERDICT = "undefined: needs two or more episodes"
"""The verdict of a criterion whose interval is undefined (fewer than two paired episodes)."""

REFERENCE = "adaptive"
LEARNED = "ppo"


@dataclass(frozen=True)
class Criterion:
    """A win criterion: the paired difference learned - reference of ``metric`` on its ``better`` side."""

    text: str
    metric: str
    better: str
    """``"higher"`` or ``"lower"``: which direction is a win."""
    allow_equal: bool = False
    """True for "no worse than": the interval must not lie on the wrong side of zero."""

    def verdict(self, mean: float, low: float, high: float) -> str:
        """``holds`` when the whole interval is on the winning side, ``mean only`` when just the mean is."""
        if math.isnan(mean):
            return "n/a"
        if math.isnan(low) or math.isnan(high):
            return UNDEFINED_VERDICT
        sign = 1.0 if self.better == "higher" else -1.0
        near, point = min(sign * low, sign * high), sign * mean
        whole = near >= 0.0 if self.allow_equal else near > 0.0
        point_ok = point >= 0.0 if self.allow_equal else point > 0.0
        return "holds" if whole else "mean only" if point_ok else "does not hold"


CRITERIA: tuple[Criterion, ...] = (
    Criterion("higher mean episode reward", "episode_return", "higher"),
    Criterion("lower p95 task latency", "task_latency_p95_s", "lower"),
    Criterion("no higher cost per task", "cost_per_1k_tasks_usd", "lower", allow_equal=True),
)


@dataclass(frozen=True)
class Scored:
    """An episode result with the run it came from (empty for baselines)."""

    result: EpisodeResult
    run: str
    train_seed: int | None

    def row(self) -> dict[str, Any]:
        """The CSV row."""
        row = self.result.row()
        row["run"] = self.run
        row["train_seed"] = "" if self.train_seed is None else self.train_seed
        return row


def run_labels(run_dirs: Sequence[Path]) -> list[str]:
    """Names of distinct run folders in tables: the folder's name, or more of its path when needed.

    Each run gets the fewest trailing parts of its absolute path that no other run shares, so
    ``x/paper-seed0``, ``y/paper-seed0`` and ``x/paper-seed1`` are labelled ``x/paper-seed0``,
    ``y/paper-seed0`` and ``paper-seed1``.
    """
    parts = [Path(os.path.abspath(run_dir)).parts for run_dir in run_dirs]
    labels = []
    for i, mine in enumerate(parts):
        others = [theirs for j, theirs in enumerate(parts) if j != i]
        k = next(
            (k for k in range(1, len(mine)) if all(theirs[-k:] != mine[-k:] for theirs in others)),
            len(mine),
        )
        labels.append(str(Path(*mine[-k:])))
    return labels


def load_runs(run_dirs: Sequence[Path], model: str) -> list[LearnedPolicy]:
    """The runs' policies, labelled by :func:`run_labels`.

    Every folder must exist and hold a run, and none may be given twice (as the same resolved path).
    """
    seen: dict[Path, Path] = {}
    for run_dir in run_dirs:
        if not Path(run_dir).is_dir():
            raise ValueError(f"run folder {run_dir} does not exist; pass folders written by gpu-alloc train")
        resolved = Path(run_dir).resolve()
        if resolved in seen:
            same = "" if str(seen[resolved]) == str(run_dir) else f" (as {seen[resolved]} and {run_dir})"
            raise ValueError(
                f"run folder {run_dir} is given twice{same}; pass each run once, or its episodes would "
                "count twice"
            )
        seen[resolved] = Path(run_dir)
    labels = run_labels(run_dirs)
    return [LearnedPolicy(Path(d), model, label) for d, label in zip(run_dirs, labels, strict=True)]


def _listed(differences: Sequence[tuple[str, Any, Any]], limit: int = 8) -> str:
    """``path (a vs b), ...`` of at most ``limit`` differences."""
    shown = ", ".join(f"{path} ({show_value(a)} vs {show_value(b)})" for path, a, b in differences[:limit])
    return shown + (f" and {len(differences) - limit} more" if len(differences) > limit else "")


def resolve_config(
    runs: Sequence[LearnedPolicy], scenario: str | None, overrides: dict[str, Any]
) -> ScenarioConfig:
    """The evaluation scenario: ``scenario`` if given, else the runs' (which must agree)."""
    if scenario is not None:
        config = resolve_scenario(scenario, overrides)
    elif runs:
        first = runs[0]
        clashes = [(run, config_differences(first.config, run.config)) for run in runs[1:]]
        clashes = [(run, differences) for run, differences in clashes if differences]
        if clashes:
            described = "; ".join(
                f"{run.label} differs from {first.label} in {_listed(differences)}"
                for run, differences in clashes
            )
            policy = sorted({p for _, found in clashes for p, *_ in found if is_policy_field(p)})
            advice = (
                f"evaluate them separately: each run acts only with its own {', '.join(policy)}"
                if policy
                else "pass --scenario (and --set) to choose the one to evaluate all of them on, or "
                "evaluate them separately"
            )
            raise ValueError(f"the runs were trained on different scenarios: {described}; {advice}")
        config = first.config.replace(**overrides) if overrides else first.config
    else:
        config = resolve_scenario("paper", overrides)
    for run in runs:
        run.check_compatible(config)
    return config


def held_out_overrides(config: ScenarioConfig) -> dict[str, Any]:
    """Overrides that turn ``config``, which replays a trace's training part, into its held-out part.

    The scenario is renamed ``<name>-held-out``, which for a preset is the held-out preset's name.
    """
    return {"name": f"{config.name}-held-out", "workload": {"trace": {"split": "held_out"}}}


def trained_on_training_parts(runs: Sequence[LearnedPolicy]) -> bool:
    """Whether every run (at least one) replays the training part of a trace."""
    traces = [run.config.workload.trace for run in runs]
    return bool(runs) and all(trace is not None and trace.split == "train" for trace in traces)


def _sets_split(overrides: Mapping[str, Any]) -> bool:
    workload = overrides.get("workload")
    trace = workload.get("trace") if isinstance(workload, Mapping) else None
    return isinstance(trace, Mapping) and "split" in trace


def baseline_names(requested: Sequence[str]) -> list[str]:
    """``all`` or names of baselines, validated."""
    names = list(BASELINES) if "all" in requested else list(dict.fromkeys(requested))
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; choose from {sorted(BASELINES)} or 'all'")
    return names


def score(
    runs: Sequence[LearnedPolicy],
    baselines: Sequence[str],
    config: ScenarioConfig,
    seeds: Sequence[int],
    progress: bool | None = None,
) -> list[Scored]:
    """Every baseline and every run on every seed, with the trajectories recorded.

    ``progress`` shows a bar of the episodes (``None``: on a terminal only).
    """
    if not seeds:
        raise ValueError("seeds is empty; pass at least one seed")
    players: list[tuple[str, Policy, str, int | None]] = [
        (name, make_baseline(name, config), "", None) for name in baselines
    ]
    players += [(LEARNED, run, run.label, run.train_seed) for run in runs]
    scored: list[Scored] = []
    env = GpuAllocEnv(config)
    with progress_bar(len(players) * len(seeds), f"{config.name}: episodes", "episode", progress) as bar:
        for name, policy, label, train_seed in players:
            bar.set_postfix_str(label or name)
            for seed in seeds:
                result = run_episode(env, policy, int(seed), name, record=True)
                scored.append(Scored(result, label, train_seed))
                bar.update(1)
    return scored


def write_csv(scored: Sequence[Scored], path: Path) -> None:
    """One row per policy, run and seed."""
    write_rows_csv((item.row() for item in scored), EVALUATE_COLUMNS, path)


def groups_of(scored: Sequence[Scored], policy: str, metric: str) -> list[list[float]]:
    """Per run (one group for a baseline), the metric's values over episodes."""
    by_run: dict[str, list[float]] = {}
    for item in scored:
        if item.result.policy == policy:
            by_run.setdefault(item.run, []).append(item.result.value(metric))
    return list(by_run.values())


def paired_by_run(
    scored: Sequence[Scored], policy: str, metric: str, reference: str = REFERENCE
) -> dict[str, list[float]]:
    """Run name -> the per-seed differences ``policy - reference`` of ``metric``."""
    values = {i.result.seed: i.result.value(metric) for i in scored if i.result.policy == reference}
    by_run: dict[str, list[float]] = {}
    for item in scored:
        if item.result.policy == policy and item.result.seed in values:
            diff = item.result.value(metric) - values[item.result.seed]
            by_run.setdefault(item.run, []).append(diff)
    return by_run


def paired_groups(
    scored: Sequence[Scored], policy: str, metric: str, reference: str = REFERENCE
) -> list[list[float]]:
    """Per run of ``policy``, the per-seed differences ``policy - reference`` of ``metric``."""
    return list(paired_by_run(scored, policy, metric, reference).values())


def best_baseline(scored: Sequence[Scored], metric: str = "episode_return") -> str | None:
    """The baseline with the highest interquartile mean of ``metric`` (``None`` without baselines).

    Learned policies are judged against it as well as against the heuristic: a constant allocation
    can beat the heuristic, and a learned policy is worth only what it adds to the best of them.
    """
    values: dict[str, list[float]] = {}
    for item in scored:
        if not item.run:
            values.setdefault(item.result.policy, []).append(item.result.value(metric))
    means = {policy: iqm(v) for policy, v in values.items()}
    defined = {policy: mean for policy, mean in means.items() if not math.isnan(mean)}
    return max(defined, key=lambda policy: defined[policy]) if defined else None


def criteria_rows(scored: Sequence[Scored], policy: str, reference: str) -> list[tuple[Criterion, str, str]]:
    """Per criterion: the paired difference ``policy - reference`` as a cell, and its verdict."""
    rows = []
    for criterion in CRITERIA:
        mean, low, high = bootstrap_ci95(
            paired_groups(scored, policy, criterion.metric, reference), lambda x: float(np.mean(x))
        )
        rows.append((criterion, interval_cell(mean, low, high), criterion.verdict(mean, low, high)))
    return rows


def interval_cell(estimate: float, low: float, high: float) -> str:
    """``estimate [low, high]`` with 3 decimals below 10 and 1 above; ``n/a`` for NaN."""
    if math.isnan(estimate):
        return "n/a"
    digits = 3 if abs(estimate) < 10 else 1
    if math.isnan(low) or math.isnan(high):
        return f"{estimate:.{digits}f} [n/a]"
    return f"{estimate:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


PER_RUN_METRICS: tuple[str, ...] = (
    "episode_return",
    "task_latency_p95_s",
    "cost_per_1k_tasks_usd",
    "cold_starts",
)


def per_run_table(scored: Sequence[Scored]) -> list[str]:
    """Lines of the table of each run's mean paired difference against the heuristic."""
    by_metric = {m: paired_by_run(scored, LEARNED, m) for m in PER_RUN_METRICS}
    lines = [
        f"Per run, the mean paired difference {LEARNED} - {REFERENCE} over the episodes:",
        "",
        "| run | " + " | ".join(PER_RUN_METRICS) + " |",
        "|" + "---|" * (len(PER_RUN_METRICS) + 1),
    ]
    for run in sorted(by_metric[PER_RUN_METRICS[0]]):
        cells = [f"{float(np.mean(by_metric[m][run])):+.3f}" for m in PER_RUN_METRICS]
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    return lines


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


MODEL_NOTES = {
    "best": "the model with the best validation return (`best_model.zip`, `--model best`)",
    "final": "the final model (`model.zip`, `--model final`)",
}


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
        notes.append(f"Model of each run: {' and '.join(MODEL_NOTES[m] for m in models)}.")
    header = [f"Command: `{command}`", ""] if command else []
    if notes:
        header += [" ".join(notes), ""]
    lines = [
        f"# Evaluation on scenario `{config.name}`",
        "",
        *header,
        f"{len(seeds)} held-out episodes per policy and run (seeds {seeds[0]}..{seeds[-1]}, the same "
        f"workload for every policy), {config.episode_length_s:g} s each. Learned runs: "
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
        count = len(groups_of(scored, policy, SUMMARY_METRICS[0])) if policy == LEARNED else 0
        lines.append(f"| {policy} | {count or '-'} | " + " | ".join(cells) + " |")
    if learned_runs:
        lines += ["", *training_table(learned_runs)]
    if LEARNED in policies and REFERENCE in policies:
        heading = f"## {LEARNED} against the {REFERENCE} heuristic"
        lines += ["", heading, "", *_criteria_table(scored, REFERENCE), "", *per_run_table(scored)]
    best = best_baseline(scored)
    if LEARNED in policies and best is not None and best != REFERENCE:
        lines += [
            "",
            f"## {LEARNED} against the best baseline, {best}",
            "",
            f"`{best}` has the highest interquartile mean episode return of the baselines here.",
            "",
            *_criteria_table(scored, best),
        ]
    return "\n".join(lines) + "\n"


def _criteria_table(scored: Sequence[Scored], reference: str) -> list[str]:
    """Lines of the table of the win criteria of the learned policy against ``reference``."""
    lines = [
        f"Paired per-seed difference {LEARNED} - {reference} (mean [95% bootstrap interval], runs "
        "then episodes resampled). A criterion holds when the whole interval is on its side of zero.",
        "",
        "| criterion | metric | difference | verdict |",
        "|---|---|---|---|",
    ]
    for criterion, cell, verdict in criteria_rows(scored, LEARNED, reference):
        lines.append(f"| {criterion.text} | `{criterion.metric}` | {cell} | {verdict} |")
    return lines


def run_evaluate(
    run_dirs: Sequence[Path],
    baselines: Sequence[str],
    episodes: int,
    out_dir: Path,
    scenario: str | None = None,
    scenario_overrides: dict[str, Any] | None = None,
    model: str = "best",
    plots: bool = True,
    first_seed: int = EVALUATION_SEED_BASE,
    command: str | None = None,
    progress: bool | None = None,
) -> str:
    """Evaluate, write ``episodes.csv``, ``summary.md`` and the plots to ``out_dir``; returns the summary.

    ``first_seed`` defaults to the held-out evaluation seeds. Comparing hyperparameters on them
    would tune on the test set: pass seeds of your own from :data:`TUNING_SEED_BASE` instead
    (``--first-seed 950000``), which no training, validation or evaluation episode uses.

    Without ``scenario``, runs that all replay the training part of a trace are evaluated on its
    held-out part (:func:`held_out_overrides`) unless ``scenario_overrides`` set
    ``workload.trace.split``. ``progress`` shows a bar of the episodes (``None``: on a terminal).
    ``command`` is recorded in ``summary.md`` (default: this process's
    command line).
    """
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    if first_seed < FIRST_UNUSED_SEED:
        raise ValueError(
            f"--first-seed {first_seed} overlaps the seeds of training and validation episodes (below "
            f"{FIRST_UNUSED_SEED}); use {TUNING_SEED_BASE} to tune or {EVALUATION_SEED_BASE} "
            "(the default) for held-out evaluation"
        )
    names = baseline_names(baselines)
    if model not in MODEL_FILES:
        raise ValueError(f"--model must be one of {sorted(MODEL_FILES)}, got {model!r}")
    runs = load_runs(run_dirs, model)
    if not runs and not names:
        raise ValueError("nothing to evaluate: pass --runs, --baselines, or both")
    overrides = dict(scenario_overrides or {})
    config = resolve_config(runs, scenario, overrides)
    trace = config.workload.trace
    if scenario is None and not _sets_split(overrides) and trained_on_training_parts(runs) and trace:
        config = config.replace(**held_out_overrides(config))
        print(
            f"the runs were trained on the training part of trace {trace.source!r}: evaluating on its "
            f"held-out part (scenario {config.name}); pass --trace-split train to evaluate on the "
            "training part",
            flush=True,
        )
    seeds = [first_seed + k for k in range(episodes)]
    scored = score(runs, names, config, seeds, progress)
    out_dir = Path(out_dir)
    write_csv(scored, out_dir / "episodes.csv")
    preset = resolve_scenario(scenario or "paper", {}) if not runs else None
    command = command or shlex.join(["gpu-alloc", *sys.argv[1:]])
    text = summary_markdown(scored, config, seeds, runs, command=command, preset=preset)
    (out_dir / "summary.md").write_text(text)
    if plots:
        from gpu_alloc_env.train.plots import write_plots

        write_plots(scored, runs, config, out_dir)
    return text
