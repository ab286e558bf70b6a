"""``gpu-alloc sweep`` and ``experiment --executor ray``: sweep files checked without Ray; with the
``ray`` extra (tests marked ``ray``), a grid killed mid-way resumes and an Optuna search completes."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray_processes import MARKER, ray_pids

from gpu_alloc_env.errors import TrainError
from gpu_alloc_env.train.cli import main
from gpu_alloc_env.train.sweep_spec import config_key, load_sweep, record_sweep, run_name, sweep_from_dict

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"
RAY_REASON = "needs the ray extra: pip install -e '.[train,ray]'"
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
BASE: dict[str, Any] = {"name": "s", "scenarios": ["paper"], "seeds": [0], "timesteps": 10}


@pytest.mark.parametrize("path", sorted(SWEEPS.glob("*.yaml")), ids=lambda p: p.name)
def test_the_bundled_sweeps_are_valid_and_round_trip(path: Path) -> None:
    spec = load_sweep(path)
    assert sweep_from_dict(spec.to_dict()) == spec
    assert spec.first_seed == 950_000  # a sweep selects: it is scored on tuning seeds


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": 1}, r"unknown key\(s\) \['colour'\]"),
        ({"name": "a b"}, "must be letters, digits"),
        ({"scenarios": ["nowhere"]}, r"scenarios \['nowhere'\] are not scenarios"),
        ({"seeds": [0, 0]}, "list a seed more than once"),
        ({"seeds": [900]}, r"seeds must be integers in \[0, 899\]"),
        ({"timesteps": 0}, "timesteps must be a positive integer"),
        ({"backend": "jax"}, "backend must be one of"),
        ({"search": "random"}, "search must be one of"),
        ({"search": "optuna", "scenarios": ["paper", "bursty"]}, "an optuna search studies one scenario"),
        ({"search": "optuna", "space": {"gamma": {"grid": [0.9]}}}, "Optuna cannot search a grid"),
        ({"space": {"gamma": {"choice": [0.9]}}}, "search: grid does not take"),
        ({"search": "optuna", "space": {"gamma": {"uniform": [0.9]}}}, r"takes \[low, high\]"),
        ({"hp": {"gamma": 0.9}, "space": {"gamma": {"grid": [0.9]}}}, "both fixed .hp. and searched"),
        ({"num_samples": 3}, "num_samples applies to search: optuna"),
        ({"evaluate": {"runs": 3}}, "evaluate has unknown key"),
    ],
)
def test_a_bad_sweep_is_refused_by_name(change: dict[str, Any], message: str) -> None:
    with pytest.raises(TrainError, match=message):
        sweep_from_dict({**BASE, **change})


def test_run_folders_are_named_by_scenario_seed_and_configuration() -> None:
    assert config_key({"a": 1, "b": 2.0}) == config_key({"b": 2.0, "a": 1}) != config_key({"a": 2, "b": 2.0})
    assert run_name("paper", 3, {}) == f"paper-seed3-{config_key({})}"


def test_an_out_folder_keeps_one_sweep(tmp_path: Path) -> None:
    spec = sweep_from_dict(BASE)
    record_sweep(spec, tmp_path)
    record_sweep(spec, tmp_path)  # the same sweep again: a resume
    assert yaml.safe_load((tmp_path / "sweep.yaml").read_text()) == spec.to_dict()
    with pytest.raises(TrainError, match="holds a sweep with other settings"):
        record_sweep(sweep_from_dict({**BASE, "timesteps": 20}), tmp_path)


def test_sweep_without_ray_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.delitem(sys.modules, "gpu_alloc_env.train.sweep", raising=False)
    status = main(["sweep", "--config", str(SWEEPS / "tiny-grid.yaml"), "--out", str(tmp_path)])
    assert status == 2
    assert "pip install -e '.[train,ray]'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- with Ray
def _sweep(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "gpu_alloc_env.train", "sweep", "--config", str(config), "--out", str(out)]


def _trials(out: Path) -> list[dict[str, str]]:
    with (out / "trials.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.ray
@pytest.mark.slow
def test_a_grid_sweep_killed_mid_way_resumes_without_training_a_finished_run_again(tmp_path: Path) -> None:
    pytest.importorskip("ray.tune", reason=RAY_REASON)
    out = tmp_path / "sweep"
    runs = [out / "runs" / run_name("paper", seed, {}) for seed in (0, 1)]
    marked = {**ENV, MARKER: str(tmp_path)}
    driver = subprocess.Popen(
        _sweep(SWEEPS / "tiny-grid.yaml", out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=marked
    )
    deadline = time.monotonic() + 300
    while not (runs[0] / "model").is_dir():  # the first trial (one at a time) finished its run
        assert driver.poll() is None, driver.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the first trial did not finish within 300 s"
        time.sleep(0.2)
    driver.kill()  # a crash: no cleanup runs, so the cluster's processes are left behind
    driver.wait()
    for pid in ray_pids(str(tmp_path)):  # the crashed cluster's processes, and no one else's
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    finished_at = (runs[0] / "checkpoints" / "state.json").stat().st_mtime_ns

    done = subprocess.run(_sweep(SWEEPS / "tiny-grid.yaml", out), capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming sweep tiny-grid" in done.stdout + done.stderr
    assert (runs[0] / "checkpoints" / "state.json").stat().st_mtime_ns == finished_at  # not trained again
    assert len((runs[0] / "command.txt").read_text().splitlines()) == 1
    trials = _trials(out)
    assert sorted((row["seed"], row["status"]) for row in trials) == [("0", "done"), ("1", "done")]
    assert all(row["timesteps"] == "512" and float(row["best_validation_return"]) < 0 for row in trials)
    evaluation = out / "evaluate" / f"paper-{config_key({})}"
    episodes = (evaluation / "episodes.csv").read_text().splitlines()
    assert sum(line.startswith("ppo-rllib,") for line in episodes) == 2 * 2  # 2 runs x 2 episodes
    assert "| ppo-rllib | 2 |" in (evaluation / "summary.md").read_text()


@pytest.mark.ray
@pytest.mark.slow
def test_an_optuna_sweep_tries_its_samples_and_scores_each(tmp_path: Path) -> None:
    pytest.importorskip("ray.tune.search.optuna", reason=RAY_REASON)
    pytest.importorskip("optuna", reason=RAY_REASON)
    out = tmp_path / "sweep"
    done = subprocess.run(_sweep(SWEEPS / "tiny-optuna.yaml", out), capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = _trials(out)
    rates = [float(row["learning_rate"]) for row in trials]
    assert len(trials) == 2 and len(set(rates)) == 2 and all(1e-5 <= rate <= 1e-3 for rate in rates)
    for row in trials:
        assert row["status"] == "done"
        assert Path(row["run_dirs"]).name == run_name(
            "paper", 0, {"learning_rate": float(row["learning_rate"])}
        )
        assert (out / "evaluate" / f"paper-{row['config']}" / "summary.md").exists()


@pytest.mark.ray
@pytest.mark.slow
def test_experiment_runs_its_seeds_as_a_tune_grid_into_its_own_run_folders(tmp_path: Path) -> None:
    pytest.importorskip("ray.tune", reason=RAY_REASON)
    spec = load_sweep(SWEEPS / "tiny-grid.yaml")
    hp = [f"--hp={key}={value}" for key, value in spec.hp.items()]
    command = [
        sys.executable,
        "-m",
        "gpu_alloc_env.train",
        "experiment",
        "--backend",
        "ray",
        "--seeds",
        "0",
        "1",
    ]
    command += ["--timesteps", "256", "--set", "episode_length_s=32", *hp, "--episodes", "1"]
    command += ["--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "eval")]
    done = subprocess.run(command, capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    for seed in (0, 1):
        run = tmp_path / "runs" / f"paper-seed{seed}"
        assert (run / "model.zip").exists()  # --backend ray trains Stable-Baselines3 runs
        assert json.loads((run / "args.json").read_text())["seed"] == seed
    assert [row["status"] for row in _trials(tmp_path / "runs" / "ray")] == ["done", "done"]
    assert "| ppo | 2 |" in (tmp_path / "eval" / "summary.md").read_text()


def test_a_sweeps_hyperparameters_are_checked_before_ray_starts() -> None:
    from gpu_alloc_env.train.sweep_spec import check_sweep_settings, points

    grid = sweep_from_dict({**BASE, "space": {"gamma": {"grid": [0.9, 0.99]}, "n_epochs": {"grid": [3, 5]}}})
    assert len(points(grid)) == 4
    check_sweep_settings(grid)
    with pytest.raises(TrainError, match=r"unknown hyperparameter\(s\) \['lr'\]"):
        check_sweep_settings(sweep_from_dict({**BASE, "space": {"lr": {"grid": [1e-4]}}}))
    optuna = {**BASE, "search": "optuna", "backend": "rllib"}
    with pytest.raises(TrainError, match="batch_size <= n_envs x n_steps"):
        check_sweep_settings(sweep_from_dict({**optuna, "space": {"n_steps": {"randint": [8, 64]}}}))
