r"""Train PPO over several seeds, then evaluate every run against the baselines: ``gpu-alloc experiment``.

The full-budget experiment behind ``results/ppo-paper`` is::

    gpu-alloc experiment --scenario paper --seeds 0 1 2 3 4 --timesteps 4000000 \
        --runs-dir runs/paper --out results/ppo-paper

Runs are trained in parallel subprocesses (``--parallel``, one CPU thread each); a run folder
that already holds a finished model is reused, and one with a checkpoint is resumed, so an
interrupted experiment continues where it stopped.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpu_alloc_env.config import ScenarioConfig
from train.evaluate import run_evaluate
from train.learned import load_run_config


def train_command(
    scenario: str, seed: int, timesteps: int, run_dir: Path, hp: Sequence[str], overrides: Sequence[str]
) -> list[str]:
    """The ``gpu-alloc train`` command line of one run (new, or resumed from its checkpoint)."""
    base = [sys.executable, "-m", "train", "train", "--run-dir", str(run_dir), "--no-progress"]
    if (run_dir / "checkpoints" / "last.zip").exists():
        return [*base, "--resume", "--timesteps", str(timesteps)]
    command = [*base, "--scenario", scenario, "--seed", str(seed), "--timesteps", str(timesteps)]
    for item in hp:
        command += ["--hp", item]
    for item in overrides:
        command += ["--set", item]
    return command


def finished(run_dir: Path, timesteps: int) -> bool:
    """Whether ``run_dir`` holds a final model of at least ``timesteps`` steps."""
    import json

    state = run_dir / "checkpoints" / "state.json"
    if not (run_dir / "model.zip").exists() or not state.exists():
        return False
    return int(json.loads(state.read_text())["num_timesteps"]) >= timesteps


def train_runs(
    scenario: str,
    seeds: Sequence[int],
    timesteps: int,
    runs_dir: Path,
    parallel: int,
    hp: Sequence[str] = (),
    overrides: Sequence[str] = (),
) -> list[Path]:
    """Train one run per seed, ``parallel`` at a time; returns the run folders in seed order."""
    if parallel < 1:
        raise ValueError(f"--parallel must be >= 1, got {parallel}")
    if not seeds:
        raise ValueError("--seeds is empty; pass at least one training seed")
    runs = [runs_dir / f"{scenario}-seed{seed}" for seed in seeds]
    pending = [(seed, run) for seed, run in zip(seeds, runs, strict=True) if not finished(run, timesteps)]
    active: list[tuple[Path, subprocess.Popen[bytes], Any]] = []
    runs_dir.mkdir(parents=True, exist_ok=True)
    while pending or active:
        while pending and len(active) < parallel:
            seed, run = pending.pop(0)
            log = (runs_dir / f"{run.name}.log").open("ab")
            command = train_command(scenario, seed, timesteps, run, hp, overrides)
            print(f"training {run.name}: {' '.join(command[1:])}", flush=True)
            active.append((run, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log))
        time.sleep(1.0)
        for item in list(active):
            run, process, log = item
            code = process.poll()
            if code is None:
                continue
            log.close()
            active.remove(item)
            if code != 0:
                for _, other, other_log in active:
                    other.terminate()
                    other_log.close()
                raise RuntimeError(f"training {run.name} failed (exit {code}); see {runs_dir / run.name}.log")
            print(f"finished {run.name}", flush=True)
    return runs


def run_experiment(
    scenario: str,
    seeds: Sequence[int],
    timesteps: int,
    runs_dir: Path,
    out_dir: Path,
    episodes: int,
    parallel: int = 2,
    hp: Sequence[str] = (),
    overrides: Sequence[str] = (),
) -> str:
    """Train the runs, then evaluate them and every baseline; returns the summary.

    Runs trained on the training part of a trace are evaluated on its held-out part.
    """
    runs = train_runs(scenario, seeds, timesteps, runs_dir, parallel, hp, overrides)
    trace = ScenarioConfig.from_dict(load_run_config(runs[0])["scenario"]).workload.trace
    held_out: dict[str, Any] = {}
    if trace is not None and trace.split == "train":
        held_out = {"workload": {"trace": {"split": "held_out"}}}
        print("evaluating on the held-out part of the trace", flush=True)
    return run_evaluate(runs, ["all"], episodes, out_dir, scenario_overrides=held_out)
