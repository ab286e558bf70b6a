"""Run a sweep on Ray Tune: ``gpu-alloc sweep``, and ``gpu-alloc experiment --executor ray``.

Tune is the scheduler and, for ``search: optuna``, the searcher; every trial trains ordinary run
folders in-process with the sweep's backend (:func:`gpu_alloc_env.train.ppo.train` or
:func:`gpu_alloc_env.train.rllib_backend.train`), so a sweep's runs are the runs ``gpu-alloc train``
writes, scored by the same ``evaluate``. :mod:`gpu_alloc_env.train.sweep_spec` says what a sweep
file holds and how trials map to run folders.

**Resuming.** Two things keep state: Tune's experiment folder (``OUT/tune/NAME``: which trials
finished, and the Optuna study) and the run folders (``OUT/runs``: each run's checkpoints). The
same command run again after a crash restores the experiment (``Tuner.restore`` with
``resume_errored``): finished trials are kept, and a trial that was running starts again and
resumes its run folders from their last checkpoints. A finished run folder is never trained again.

**Clusters.** Without ``--address`` the command starts a local Ray cluster with the machine's
cores and shuts it down at the end. With ``--address HOST:PORT`` it joins a running cluster
(``ray start --head`` on the head node); every node must reach ``OUT`` at the same path (shared
storage), because trials write their run folders where they run.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ray
from ray import tune

from gpu_alloc_env.env import resolve_scenario
from gpu_alloc_env.progress import say
from gpu_alloc_env.train.learned import has_checkpoint, model_path, training_record
from gpu_alloc_env.train.run_folder import TrainArgs, resume_args, sigterm_as_exit
from gpu_alloc_env.train.sweep_spec import (
    SweepSpec,
    check_sweep_settings,
    config_key,
    record_sweep,
    run_name,
    sweep_from_dict,
)

METRIC = "best_validation_return"
"""What a trial reports and a search maximises: the best validation return (mean over seeds)."""
TRIAL_COLUMNS = ("scenario", "seed", "config", "status", METRIC, "timesteps", "run_dirs")


def train_run(spec: SweepSpec, scenario: str, seed: int, values: Mapping[str, Any], run_dir: Path) -> float:
    """Train (or resume, or reuse when finished) one run folder of a trial; its best validation return."""
    done = run_dir.is_dir() and model_path(run_dir, "final").exists()
    steps = training_record(run_dir)["timesteps"] if done else math.nan
    if not (done and steps >= spec.timesteps):
        resume = has_checkpoint(run_dir)
        args = (
            resume_args(run_dir, spec.timesteps)
            if resume
            else TrainArgs(
                scenario=scenario,
                seed=seed,
                timesteps=spec.timesteps,
                run_dir=str(run_dir),
                hp_overrides={**spec.hp, **values},
                scenario_overrides=dict(spec.overrides),
                backend=spec.backend,
            )
        )
        command = f"gpu-alloc sweep (sweep {spec.name}, run {run_dir.name})"
        if spec.backend == "rllib":
            from gpu_alloc_env.train import rllib_backend

            rllib_backend.train(args, resume=resume, progress_bar_on=False, command=command)
        else:
            from gpu_alloc_env.train import ppo

            ppo.train(args, resume=resume, progress_bar=False, command=command)
    return training_record(run_dir)[METRIC]


def run_trial(
    config: Mapping[str, Any], spec_dict: Mapping[str, Any], runs_dir: str, plain_names: bool, workdir: str
) -> None:
    """One Tune trial: the run folders of its scenario, seed(s) and configuration; reports the score.

    ``config`` holds what Tune chose (scenario and seed in a grid, the searched values); the sweep
    (``spec_dict``), the run folders' root and their naming are the same for every trial.
    """
    import gpu_alloc_env  # noqa: F401  (a trial's worker is a fresh process: register the environments)

    if Path(workdir).is_dir():  # Tune starts trials in folders of its own: relative paths are the user's
        os.chdir(workdir)
    spec = sweep_from_dict(spec_dict)
    values = {key: config[key] for key in spec.space}
    scenario = str(config.get("scenario", spec.scenarios[0]))
    seeds = [int(config["seed"])] if "seed" in config else list(spec.seeds)
    root = Path(runs_dir)
    if plain_names:  # gpu-alloc experiment's folders: <scenario's name>-seed<K>
        name = resolve_scenario(scenario, dict(spec.overrides)).name
        runs = [root / f"{name}-seed{seed}" for seed in seeds]
    else:
        runs = [root / run_name(scenario, seed, values) for seed in seeds]
    returns = [train_run(spec, scenario, seed, values, run) for seed, run in zip(seeds, runs, strict=True)]
    tune.report(
        {
            METRIC: float(sum(returns) / len(returns)),
            "timesteps": spec.timesteps,
            "run_dirs": ";".join(str(run) for run in runs),
        }
    )


def _domain(kind: str, args: Sequence[Any]) -> Any:
    """A Tune search domain from a sweep file's ``{kind: [arguments]}``."""
    if kind == "grid":
        return tune.grid_search(list(args))
    if kind == "choice":
        return tune.choice(list(args))
    return {"uniform": tune.uniform, "loguniform": tune.loguniform, "randint": tune.randint}[kind](*args)


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """Tune's ``param_space``: the grid (scenario x seed x space), or Optuna's domains."""
    space: dict[str, Any] = {key: _domain(kind, args) for key, (kind, args) in spec.space.items()}
    if spec.search == "grid":
        space["scenario"] = tune.grid_search(list(spec.scenarios))
        space["seed"] = tune.grid_search(list(spec.seeds))
    return space


def start_ray(address: str | None) -> None:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``'s), or start one with this process's cores."""
    local = address is None and not os.environ.get("RAY_ADDRESS")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        ray.init(
            address=address,
            num_cpus=cores if local else None,
            include_dashboard=False,
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError) as exc:
        if address is None:
            raise
        raise RuntimeError(
            f"cannot join the Ray cluster at --address {address} ({exc}); start it with ray start --head "
            "--port PORT, and run this command with RAY_AUTH_MODE=token (Ray 2.60 clusters require the "
            "token that ray start wrote to ~/.ray/auth_token)"
        ) from None


def fit(
    spec: SweepSpec,
    out: Path,
    restore: bool = True,
    plain_names: bool = False,
    runs_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Run the sweep's trials on the connected Ray cluster; one row per trial (:data:`TRIAL_COLUMNS`).

    ``restore`` continues Tune's experiment in ``out/tune/NAME`` when it exists. Raises
    RuntimeError naming the trials that failed (after writing the rows).
    """
    runs_dir = runs_dir or out / "runs"
    storage = out / "tune"
    trainable = tune.with_resources(
        tune.with_parameters(
            run_trial,
            spec_dict=spec.to_dict(),
            runs_dir=str(runs_dir),
            plain_names=plain_names,
            workdir=str(Path.cwd()),
        ),
        {"cpu": spec.cpus_per_trial},
    )
    experiment = storage / spec.name
    if restore and tune.Tuner.can_restore(str(experiment)):
        say(f"resuming sweep {spec.name} from {experiment}")
        tuner = tune.Tuner.restore(str(experiment), trainable, resume_errored=True)
    else:
        search_alg = None
        if spec.search == "optuna":
            from ray.tune.search.optuna import OptunaSearch

            search_alg = OptunaSearch(metric=METRIC, mode="max", seed=spec.optuna_seed)
        tuner = tune.Tuner(
            trainable,
            param_space=param_space(spec),
            tune_config=tune.TuneConfig(
                search_alg=search_alg,
                num_samples=spec.num_samples,
                max_concurrent_trials=spec.max_concurrent_trials,
                metric=METRIC,
                mode="max",
            ),
            run_config=tune.RunConfig(name=spec.name, storage_path=str(storage.resolve()), verbose=1),
        )
    results = tuner.fit()
    rows = []
    for result in results:
        config = result.config or {}
        metrics = result.metrics or {}
        values = {key: config.get(key) for key in spec.space}
        rows.append(
            {
                "scenario": config.get("scenario", spec.scenarios[0]),
                "seed": config.get("seed", " ".join(str(s) for s in spec.seeds)),
                "config": config_key(values),
                **values,
                "status": "error" if result.error else "done",
                METRIC: metrics.get(METRIC, math.nan),
                "timesteps": metrics.get("timesteps", 0),
                "run_dirs": metrics.get("run_dirs", ""),
            }
        )
    write_trials(rows, out / "trials.csv", list(spec.space))
    failed = [result for result in results if result.error]
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(rows)} trials failed (first: {failed[0].error}); see "
            f"{out / 'trials.csv'} and {experiment}; run the same command again to retry them from their "
            "checkpoints"
        )
    return rows


def write_trials(rows: Sequence[Mapping[str, Any]], path: Path, space: Sequence[str]) -> None:
    """``trials.csv``: one row per trial, the searched values after the configuration key."""
    columns = [*TRIAL_COLUMNS[:3], *space, *TRIAL_COLUMNS[3:]]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def evaluate_configs(
    spec: SweepSpec, rows: Sequence[Mapping[str, Any]], out: Path, progress: bool | None
) -> list[Path]:
    """``gpu-alloc evaluate`` of each scenario and configuration's runs; the output folders."""
    from gpu_alloc_env.train.evaluate import run_evaluate

    groups: dict[tuple[str, str], list[Path]] = {}
    for row in rows:
        runs = [Path(run) for run in str(row["run_dirs"]).split(";") if run]
        groups.setdefault((str(row["scenario"]), str(row["config"])), []).extend(runs)
    folders = []
    for (scenario, key), runs in sorted(groups.items()):
        folder = out / "evaluate" / f"{scenario}-{key}"
        run_evaluate(
            sorted(runs),
            list(spec.baselines),
            spec.episodes,
            folder,
            plots=False,
            first_seed=spec.first_seed,
            command=f"gpu-alloc sweep (sweep {spec.name}, configuration {key})",
            progress=progress,
        )
        folders.append(folder)
    return folders


def run_sweep(
    spec: SweepSpec,
    out: Path,
    address: str | None = None,
    progress: bool | None = None,
    evaluate: Callable[..., list[Path]] = evaluate_configs,
) -> str:
    """Run (or resume) the sweep into ``out``, then evaluate it; returns a table of the trials."""
    out = Path(out).resolve()
    check_sweep_settings(spec)
    record_sweep(spec, out)
    started = not ray.is_initialized()
    if started:
        start_ray(address)
    try:
        with sigterm_as_exit():
            rows = fit(spec, out)
    finally:
        if started:
            ray.shutdown()
    folders = evaluate(spec, rows, out, progress)
    return trials_table(rows, list(spec.space), folders, out)


def trials_table(
    rows: Sequence[Mapping[str, Any]], space: Sequence[str], folders: Sequence[Path], out: Path
) -> str:
    """The trials, best first, and where their evaluations are."""
    ordered = sorted(
        rows, key=lambda row: -float(row[METRIC]) if math.isfinite(float(row[METRIC])) else math.inf
    )
    columns = ["scenario", "seed", "config", *space, METRIC]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in ordered:
        cells = [f"{row[c]:.1f}" if c == METRIC else str(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"trials: {out / 'trials.csv'}"] + [
        f"evaluation: {folder / 'summary.md'}" for folder in folders
    ]
    return "\n".join(lines)
