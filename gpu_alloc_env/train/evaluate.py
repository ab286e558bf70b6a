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

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gpu_alloc_env.baselines import (
    BASELINES,
    CLAIRVOYANT,
    TUNED_BASELINES,
    available_baselines,
    make_baseline,
)
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.env import GpuAllocEnv, resolve_scenario
from gpu_alloc_env.evaluation import (
    CSV_COLUMNS,
    run_episode,
    write_rows_csv,
)
from gpu_alloc_env.limits import gap_table, seed_bounds
from gpu_alloc_env.policy import Policy
from gpu_alloc_env.progress import progress_bar
from gpu_alloc_env.seeds import EVALUATION_SEED_BASE, FIRST_UNUSED_SEED, TUNING_SEED_BASE
from gpu_alloc_env.train.comparison import Scored
from gpu_alloc_env.train.learned import (
    MODEL_FILES,
    LearnedPolicy,
    config_differences,
    is_policy_field,
    show_value,
)
from gpu_alloc_env.train.summary import summary_markdown

EVALUATE_COLUMNS: tuple[str, ...] = (*CSV_COLUMNS, "run", "train_seed")
"""Columns of ``episodes.csv``: those of ``gpu-alloc compare`` plus the run and its training seed."""


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


def baseline_names(
    requested: Sequence[str], config: ScenarioConfig | None = None, tuned_dir: Path | None = None
) -> list[str]:
    """Names of baselines, validated; ``all`` stands for every deployable one that can run on ``config``.

    Without ``config``, ``all`` is every deployable baseline; names given beside ``all`` (``oracle``,
    say) are kept.
    """
    unknown = [n for n in requested if n != "all" and n not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; choose from {sorted(BASELINES)} or 'all'")
    names: list[str] = []
    for name in requested:
        if name != "all":
            names.append(name)
        elif config is not None:
            names += available_baselines(config, tuned_dir)
        else:
            names += [n for n in BASELINES if n not in CLAIRVOYANT]
    return list(dict.fromkeys(names))


def untuned_note(config: ScenarioConfig, names: Sequence[str], requested: Sequence[str]) -> str:
    """A line naming the tuned baselines ``all`` left out for want of settings, or nothing."""
    if "all" not in requested:
        return ""
    missing = [n for n in TUNED_BASELINES if n not in names]
    if not missing:
        return ""
    return (
        f"Not run: {', '.join(missing)}, which have no tuned settings for this scenario "
        f"(`gpu-alloc tune --scenario {config.name} --out DIR`, then `--tuned DIR`).\n"
    )


def score(
    runs: Sequence[LearnedPolicy],
    baselines: Sequence[str],
    config: ScenarioConfig,
    seeds: Sequence[int],
    progress: bool | None = None,
    tuned_dir: Path | None = None,
) -> list[Scored]:
    """Every baseline and every run on every seed, with the trajectories recorded.

    ``progress`` shows a bar of the episodes (``None``: on a terminal only); ``tuned_dir`` is
    searched for the tuned baselines' settings before the package's records.
    """
    if not seeds:
        raise ValueError("seeds is empty; pass at least one seed")
    players: list[tuple[str, Policy, str, int | None]] = [
        (name, make_baseline(name, config, tuned_dir), "", None) for name in baselines
    ]
    players += [(run.policy_name, run, run.label, run.train_seed) for run in runs]
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
    tuned_dir: Path | None = None,
) -> str:
    """Evaluate, write ``episodes.csv``, ``summary.md`` and the plots to ``out_dir``; returns the summary.

    ``first_seed`` defaults to the held-out evaluation seeds. Comparing hyperparameters on them
    would tune on the test set: pass seeds of your own from :data:`TUNING_SEED_BASE` instead
    (``--first-seed 950000``), which no training, validation or evaluation episode uses.

    Without ``scenario``, runs that all replay the training part of a trace are evaluated on its
    held-out part (:func:`held_out_overrides`) unless ``scenario_overrides`` set
    ``workload.trace.split``. ``progress`` shows a bar of the episodes (``None``: on a terminal).
    ``command`` is recorded in ``summary.md`` (default: this process's
    command line). ``tuned_dir`` holds tuned settings searched before the package's.
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
    names = baseline_names(baselines, config, tuned_dir)
    scored = score(runs, names, config, seeds, progress, tuned_dir)
    out_dir = Path(out_dir)
    write_csv(scored, out_dir / "episodes.csv")
    preset = resolve_scenario(scenario or "paper", {}) if not runs else None
    command = command or shlex.join(["gpu-alloc", *sys.argv[1:]])
    text = summary_markdown(scored, config, seeds, runs, command=command, preset=preset)
    note = untuned_note(config, names, baselines)
    text += ("\n" + note if note else "") + (
        "\n## Gap to the limit\n\n"
        + gap_table([item.result for item in scored], seed_bounds(config, seeds))
        + "\n"
    )
    (out_dir / "summary.md").write_text(text)
    if plots:
        from gpu_alloc_env.train.plots import write_plots

        write_plots(scored, runs, config, out_dir)
    return text
