r"""Train PPO over several seeds, then evaluate every run against the baselines: ``gpu-alloc experiment``.

The full-budget experiment behind ``results/ppo-paper`` is::

    gpu-alloc experiment --scenario paper --seeds 0 1 2 3 4 --timesteps 4000000 \
        --runs-dir runs/paper --out results/ppo-paper

Runs are trained in parallel subprocesses (``--parallel``, one CPU thread each) into run folders
named after the resolved scenario (``<scenario name>-seed<seed>``); a run folder whose final model
has at least ``--timesteps`` steps is reused, and one with a checkpoint (interrupted, or trained
for fewer steps) is resumed up to the total, so an interrupted experiment continues where it
stopped. A folder trained with other settings (scenario fields or
hyperparameters) is never reused: the experiment stops and names the fields that differ.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpu_alloc_env.env import resolve_scenario
from gpu_alloc_env.errors import TrainError
from gpu_alloc_env.progress import Bar, progress_bar, say
from gpu_alloc_env.seeds import MAX_TRAIN_SEED
from gpu_alloc_env.trace_replay import replay_part
from gpu_alloc_env.train.evaluate import held_out_overrides, run_evaluate
from gpu_alloc_env.train.hyperparams import load_hyperparams, parse_hp_overrides
from gpu_alloc_env.train.learned import checkpoint_steps, has_checkpoint, json_differences, model_path
from gpu_alloc_env.train.run_folder import never_checkpointed, sigterm_as_exit


def train_command(
    scenario: str,
    seed: int,
    timesteps: int,
    run_dir: Path,
    hp: Sequence[str],
    overrides: Mapping[str, Any],
    backend: str = "sb3",
) -> list[str]:
    """The ``gpu-alloc train`` command line of one run (new, or resumed from its checkpoint)."""
    base = [sys.executable, "-m", "gpu_alloc_env.train", "train", "--run-dir", str(run_dir), "--no-progress"]
    if has_checkpoint(run_dir):
        return [*base, "--resume", "--timesteps", str(timesteps)]
    command = [*base, "--scenario", scenario, "--seed", str(seed), "--timesteps", str(timesteps)]
    if backend != "sb3":
        command += ["--backend", backend]
    for item in hp:
        command += ["--hp", item]
    for key, value in overrides.items():
        command += ["--set", f"{key}={json.dumps(value)}"]
    return command


def run_settings(
    scenario: str, hp: Sequence[str], overrides: Mapping[str, Any], backend: str = "sb3"
) -> dict[str, Any]:
    """The ``scenario``, ``hyperparams`` and ``backend`` ``gpu-alloc train`` records in ``config.json``."""
    config = resolve_scenario(scenario, dict(overrides))
    hyperparams = load_hyperparams(scenario, None, parse_hp_overrides(hp))
    settings = {"scenario": config.to_dict(), "hyperparams": hyperparams, "backend": backend}
    loaded: dict[str, Any] = json.loads(json.dumps(settings))
    return loaded


def check_reusable(run_dir: Path, settings: Mapping[str, Any]) -> None:
    """Refuse a run folder whose recorded settings differ from ``settings`` (see :func:`run_settings`)."""
    recorded = run_dir / "config.json"
    if not recorded.exists() or never_checkpointed(run_dir):
        return  # nothing trained yet: gpu-alloc train starts the folder afresh
    stored = json.loads(recorded.read_text())
    stored.setdefault("backend", "sb3")  # (Stable-Baselines3 runs record none)
    differ = [path for key in settings for path, *_ in json_differences(stored.get(key), settings[key], key)]
    if differ:
        shown = ", ".join(differ[:6]) + (f" and {len(differ) - 6} more" if len(differ) > 6 else "")
        raise ValueError(
            f"run folder {run_dir} was trained with other settings than this experiment asks for "
            f"({shown} {'differs' if len(differ) == 1 else 'differ'}); pass another --runs-dir, or "
            f"delete {run_dir} to train it again"
        )


def steps_of(run_dir: Path) -> int:
    """Steps of the run's last checkpoint (0 if it has none)."""
    return checkpoint_steps(run_dir) or 0


def finished(run_dir: Path, timesteps: int) -> bool:
    """Whether ``run_dir`` holds a final model of at least ``timesteps`` steps."""
    return run_dir.is_dir() and model_path(run_dir, "final").exists() and steps_of(run_dir) >= timesteps


@dataclass(frozen=True)
class Job:
    """One training run to carry out: its folder and the ``gpu-alloc train`` command that trains it."""

    run_dir: Path
    command: list[str]


def plan_runs(
    scenario: str,
    seeds: Sequence[int],
    timesteps: int,
    runs_dir: Path,
    hp: Sequence[str] = (),
    overrides: Mapping[str, Any] | None = None,
    backend: str = "sb3",
) -> tuple[list[Path], list[Job]]:
    """The run folders of one scenario's seeds (in seed order), and the jobs for those not finished.

    Every folder is checked first: one trained with other settings stops the experiment
    (:func:`check_reusable`).
    """
    if not seeds:
        raise ValueError("--seeds is empty; pass at least one training seed")
    repeated = sorted({seed for seed in seeds if list(seeds).count(seed) > 1})
    if repeated:
        raise TrainError(f"--seeds lists {repeated} more than once; each seed is one run, so list it once")
    bad = [seed for seed in seeds if not 0 <= seed <= MAX_TRAIN_SEED]
    if bad:
        raise TrainError(f"--seeds {bad}: training seeds must lie in [0, {MAX_TRAIN_SEED}]")
    if timesteps < 1:
        raise TrainError(f"--timesteps must be a positive integer, got {timesteps}")
    overrides = dict(overrides or {})
    settings = run_settings(scenario, hp, overrides, backend)
    runs = [runs_dir / f"{settings['scenario']['name']}-seed{seed}" for seed in seeds]
    for run in runs:
        check_reusable(run, settings)
    jobs = []
    for seed, run in zip(seeds, runs, strict=True):
        if finished(run, timesteps):
            print(f"reusing {run}: finished with {steps_of(run):,} steps ({timesteps:,} asked)", flush=True)
        else:
            jobs.append(Job(run, train_command(scenario, seed, timesteps, run, hp, overrides, backend)))
    return runs, jobs


def run_jobs(jobs: Sequence[Job], timesteps: int, parallel: int, progress: bool | None = None) -> None:
    """Train ``jobs`` in subprocesses, ``parallel`` at a time, each logging to ``<run folder>.log``.

    ``progress`` shows a bar per run being trained (``None``: on a terminal only). A run that fails
    stops the others and raises, naming its log. So does an interrupt (Ctrl-C) or a SIGTERM to this
    process: no training is left running behind it, and the experiment run again resumes every run
    from its last checkpoint.
    """
    if parallel < 1:
        raise ValueError(f"--parallel must be >= 1, got {parallel}")
    pending = list(jobs)
    active: list[tuple[Path, subprocess.Popen[bytes], Any, Bar]] = []
    with sigterm_as_exit():
        try:
            while pending or active:
                while pending and len(active) < parallel:
                    active.append(_start(pending.pop(0), timesteps, progress))
                time.sleep(1.0)
                for item in list(active):
                    run, process, log, bar = item
                    bar.update(max(min(monitored_steps(run), timesteps) - bar.n, 0))
                    code = process.poll()
                    if code is None:
                        continue
                    log.close()
                    if code == 0:
                        bar.update(max(min(steps_of(run), timesteps) - bar.n, 0))
                    bar.close()
                    active.remove(item)
                    if code != 0:
                        raise RuntimeError(
                            f"training {run.name} failed (exit {code}); see {run.parent / run.name}.log"
                        )
                    say(f"finished {run.name}: {steps_of(run):,} steps")
        finally:
            _stop(active)


def _start(job: Job, timesteps: int, progress: bool | None) -> tuple[Path, subprocess.Popen[bytes], Any, Bar]:
    """Start one training subprocess, logging to ``<run folder>.log``."""
    run = job.run_dir
    run.parent.mkdir(parents=True, exist_ok=True)
    log_path = run.parent / f"{run.name}.log"
    log = log_path.open("ab")
    # What the child runs, as the user would type it (with a progress bar of its own).
    shown = shlex.join(["gpu-alloc", *(word for word in job.command[3:] if word != "--no-progress")])
    say(f"training {run.name} (log: {log_path}): {shown}")
    bar = progress_bar(timesteps, run.name, "step", enabled=progress)
    bar.update(min(steps_of(run), timesteps))
    process = subprocess.Popen(job.command, stdout=log, stderr=subprocess.STDOUT)
    return run, process, log, bar


def _stop(active: Sequence[tuple[Path, subprocess.Popen[bytes], Any, Bar]]) -> None:
    """Terminate the trainings still running and wait for them (killing any that hang)."""
    for _, process, _, _ in active:
        if process.poll() is None:
            process.terminate()
    for _, process, log, bar in active:
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        bar.close()


STOP_TIMEOUT_S = 30.0
"""Seconds a terminated training has to exit before it is killed."""


def train_runs(
    scenario: str,
    seeds: Sequence[int],
    timesteps: int,
    runs_dir: Path,
    parallel: int,
    hp: Sequence[str] = (),
    overrides: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    backend: str = "sb3",
) -> list[Path]:
    """Train one run per seed, ``parallel`` at a time; returns the run folders in seed order.

    Finished runs are reused, interrupted ones resumed (:func:`plan_runs`); ``progress`` shows a bar
    per run being trained (``None``: on a terminal only). ``backend`` is the learner library of
    ``gpu-alloc train --backend``.
    """
    if parallel < 1:
        raise ValueError(f"--parallel must be >= 1, got {parallel}")
    runs, jobs = plan_runs(scenario, seeds, timesteps, runs_dir, hp, overrides, backend)
    run_jobs(jobs, timesteps, parallel, progress)
    return runs


def train_runs_on_ray(
    scenario: str,
    seeds: Sequence[int],
    timesteps: int,
    runs_dir: Path,
    parallel: int,
    hp: Sequence[str] = (),
    overrides: Mapping[str, Any] | None = None,
    backend: str = "sb3",
) -> list[Path]:
    """:func:`train_runs` with the runs as trials of a Ray Tune grid over the seeds (``--executor ray``).

    The folders are the same, checked and reused the same way (:func:`plan_runs`); Tune schedules
    ``parallel`` trials at a time on a local Ray cluster and keeps its records in
    ``runs_dir/ray``. An interrupted experiment resumes from the run folders' checkpoints.
    """
    from gpu_alloc_env.train import sweep
    from gpu_alloc_env.train.sweep_spec import SweepSpec

    runs, jobs = plan_runs(scenario, seeds, timesteps, runs_dir, hp, overrides, backend)
    if not jobs:
        return runs
    spec = SweepSpec(
        name=f"experiment-{runs[0].name.rsplit('-seed', 1)[0]}-{time.strftime('%Y%m%d-%H%M%S')}",
        scenarios=(scenario,),
        seeds=tuple(seeds),
        timesteps=timesteps,
        backend=backend,
        hp=parse_hp_overrides(hp),
        overrides=dict(overrides or {}),
        max_concurrent_trials=parallel,
    )
    started = not ray_running()
    if started:
        sweep.start_ray(None)
    try:
        with sigterm_as_exit():
            sweep.fit(
                spec,
                Path(runs_dir).resolve() / "ray",
                restore=False,
                plain_names=True,
                runs_dir=Path(runs_dir).resolve(),
            )
    finally:
        if started:
            import ray

            ray.shutdown()
    return runs


def ray_running() -> bool:
    """Whether this process is connected to a Ray cluster (False without Ray installed)."""
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def monitored_steps(run_dir: Path) -> int:
    """Environment steps of the run's finished training episodes, from its monitor logs.

    A lower bound of the steps trained, for progress: episodes still under way are not counted.
    """
    folder = run_dir / "monitor"
    steps = 0
    for log in folder.glob("*.monitor.csv") if folder.is_dir() else ():
        with log.open() as handle:
            lines = handle.read().splitlines()[2:]  # a JSON comment line, then the header r,l,t
        steps += sum(int(line.split(",")[1]) for line in lines if line.count(",") == 2)
    return steps


def run_experiment(
    scenario: str,
    seeds: Sequence[int],
    timesteps: int,
    runs_dir: Path,
    out_dir: Path,
    episodes: int,
    parallel: int = 2,
    hp: Sequence[str] = (),
    overrides: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    backend: str = "sb3",
    executor: str = "local",
) -> str:
    """Train the runs, then evaluate them and every baseline; returns the summary.

    ``executor`` trains the runs in local subprocesses (``local``), or as trials of a Ray Tune grid
    on a local Ray cluster (``ray``, the path of ``gpu-alloc sweep``; needs the ray extra), into the
    same run folders either way.

    ``progress`` shows bars of the runs' training and of the evaluation (``None``: on a terminal).

    Runs trained on the training part of a trace are evaluated on its held-out part. Both parts
    are checked to hold an episode before anything trains. A twin (``--twin``) replays no trace,
    so its runs are evaluated on the twin; ``gpu-alloc generalise`` scores twin-trained runs on
    the held-out part of their trace.
    """
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    config = resolve_scenario(scenario, dict(overrides or {}))
    trace = config.workload.trace
    held_out = held_out_overrides(config) if trace and trace.split == "train" else {}
    if trace is not None:  # an episode must fit in both parts before hours go into training
        replay_part(config)
        replay_part(resolve_scenario(config, held_out))
    if executor == "ray":
        runs = train_runs_on_ray(scenario, seeds, timesteps, runs_dir, parallel, hp, overrides, backend)
    elif executor == "local":
        runs = train_runs(scenario, seeds, timesteps, runs_dir, parallel, hp, overrides, progress, backend)
    else:
        raise ValueError(f"--executor must be local or ray, got {executor!r}")
    if held_out:
        print("evaluating on the held-out part of the trace", flush=True)
    return run_evaluate(runs, ["all"], episodes, out_dir, scenario_overrides=held_out, progress=progress)
