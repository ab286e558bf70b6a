"""The command line with traces: ``--trace`` options, ``--twin``, ``gpu-alloc twin`` and the
held-out evaluation of trace-trained runs."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from gpu_alloc_env.baselines import available_baselines
from gpu_alloc_env.config import ConfigError
from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.seeds import EVALUATION_SEED_BASE
from gpu_alloc_env.train.cli import build_parser, main
from gpu_alloc_env.train.cli.options import scenario_overrides, trace_overrides, trace_scenario_name
from gpu_alloc_env.train.experiment import run_experiment
from gpu_alloc_env.train.generalise import label, score_trace, trace_table

SHORT = ["--set", "episode_length_s=20"]
TINY_HP = [
    "n_envs=4",
    "n_steps=32",
    "batch_size=64",
    "n_epochs=1",
    "eval_freq_steps=256",
    "eval_episodes=1",
    "net_arch=[16,16]",
]


def write_trace(path: Path, requests: int = 400, seed: int = 0) -> Path:
    """A CSV of requests with millisecond timestamps and custom column names."""
    rng = np.random.default_rng(seed)
    times_ms = np.cumsum(rng.exponential(250.0, requests))
    lines = ["ts,prompt,completion"]
    lines += [f"{t:.1f},{rng.integers(50, 3000)},{rng.integers(1, 400)}" for t in times_ms]
    path.write_text("\n".join(lines) + "\n")
    return path


def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def test_trace_options_become_a_trace_workload_with_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_trace(tmp_path / "requests.csv")
    monkeypatch.chdir(tmp_path)
    args = parse(
        [
            "compare",
            "--out",
            "x",
            "--trace",
            "requests.csv",
            "--trace-timestamp-column",
            "ts",
            "--trace-timestamp-unit",
            "ms",
            "--trace-split",
            "held_out",
            *SHORT,
        ]
    )
    overrides = scenario_overrides(args)
    trace = overrides["workload"]["trace"]
    assert overrides["workload"]["pattern"] == "trace"
    assert trace["source"] == str(tmp_path / "requests.csv")
    assert trace["timestamp_column"] == "ts" and trace["timestamp_unit"] == "ms"
    assert trace["split"] == "held_out" and overrides["episode_length_s"] == 20


def test_trace_options_without_trace_change_the_scenarios_trace() -> None:
    args = parse(["compare", "--out", "x", "--scenario", "trace-conv", "--trace-split", "held_out"])
    config = make_scenario("trace-conv", **scenario_overrides(args))
    assert config.workload.trace is not None
    assert config.workload.trace.split == "held_out" and config.workload.trace.source == "conv"


def test_compare_replays_a_users_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_trace(tmp_path / "requests.csv")
    code = main(
        [
            "compare",
            "--trace",
            str(path),
            "--trace-timestamp-column",
            "ts",
            "--trace-input-column",
            "prompt",
            "--trace-output-column",
            "completion",
            "--trace-timestamp-unit",
            "ms",
            "--trace-split",
            "all",
            "--episodes",
            "2",
            "--policies",
            "adaptive",
            "--out",
            str(tmp_path / "out"),
            *SHORT,
        ]
    )
    assert code == 0
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "--trace" in summary and "| adaptive | 2 |" in summary


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--trace", "missing.csv"], "no such file"),
        (["--trace", "conv", "--trace-split", "held_out"], "spans only"),
        (["--trace-split", "held_out"], "--trace-split change(s) the trace a scenario replays, but scenario"),
        (["--trace", "conv", "--trace-timestamp-column", "ts"], "bundled trace 'conv' has its own columns"),
        (["--twin", "bursty"], "does not replay a trace"),
        (["--trace", "conv", "--trace-tokens-agent", "nobody"], "not an agent"),
    ],
)
def test_bad_trace_options_fail_with_a_clear_error(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setting = ["--set", "episode_length_s=1200"] if "held_out" in extra and "conv" in extra else SHORT
    code = main(["compare", "--episodes", "1", "--out", str(tmp_path / "o"), *extra, *setting])
    assert code == 2
    assert message in capsys.readouterr().err


def test_twin_option_trains_on_the_fitted_synthetic_workload() -> None:
    args = parse(
        ["train", "--run-dir", "r", "--timesteps", "10", "--scenario", "trace-code", "--twin", "bursty"]
    )
    config = make_scenario("trace-code", **scenario_overrides(args))
    assert config.name == "trace-code-twin" and config.workload.pattern == "bursty"
    assert config.workload.trace is None
    assert config == make_scenario("trace-code-twin")


def test_twin_command_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "twins.md"
    code = main(["twin", "--scenario", "trace-code", "--episodes", "2", "--out", str(out)])
    assert code == 0
    text = out.read_text()
    assert text in capsys.readouterr().out
    assert "| statistic | trace | bursty twin | diurnal twin |" in text
    for row in ("arrival rate", "index of dispersion, 10 s windows", "input tokens p99", "output tokens CV"):
        assert f"| {row}" in text


def test_experiment_on_a_trace_evaluates_on_the_held_out_part(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = run_experiment(
        "trace-conv",
        [3],
        256,
        tmp_path / "runs",
        tmp_path / "eval",
        episodes=1,
        hp=TINY_HP,
        overrides={"episode_length_s": 20},
        progress=True,
    )
    assert "the `held_out` part of trace `conv`" in text
    printed = capsys.readouterr()
    log = tmp_path / "runs" / "trace-conv-seed3.log"
    # Where the child's log is, and its command as a user would type it; a bar per run.
    assert f"training trace-conv-seed3 (log: {log}): gpu-alloc train --run-dir " in printed.out
    assert "-m gpu_alloc_env" not in printed.out and log.stat().st_size > 0
    assert "trace-conv-seed3: 100%" in printed.err and "trace-conv-held-out: episodes: 100%" in printed.err
    run = tmp_path / "runs" / "trace-conv-seed3"
    assert '"split": "train"' in (run / "config.json").read_text()

    runs = {scenario: [run] for scenario in ("paper", "trace-conv-twin", "trace-conv")}
    scored = score_trace("conv", runs, [EVALUATION_SEED_BASE])
    policies = {item.result.policy for item in scored}
    deployable = available_baselines(make_scenario("trace-conv-held-out"))
    assert {"static", "round_robin", "adaptive"} <= set(deployable)
    assert policies == {*deployable, *(label(s) for s in runs)}
    lines = trace_table("conv", scored, [EVALUATION_SEED_BASE])
    assert any(line.startswith("| ppo[trace-conv] | 1 |") for line in lines)
    assert any(line.startswith("| `trace-conv-twin` |") for line in lines)


@pytest.mark.parametrize(
    ("scenario", "extra", "name"),
    [
        ("paper", ["--trace", "{csv}"], "paper-trace-requests"),
        ("paper", ["--trace", "{csv}", "--trace-split", "held_out"], "paper-trace-requests-held-out"),
        ("paper", ["--trace", "code", "--trace-tokens-agent", "code"], "paper-trace-code"),
        ("trace-code", ["--trace-split", "held_out"], "trace-code-held-out"),
        ("trace-code", ["--trace", "code"], "trace-code"),
        ("trace-conv", ["--trace-split", "held_out", "--twin", "bursty"], "trace-conv-held-out-twin"),
        ("paper", ["--trace", "{csv}", "--set", "name=mine"], "mine"),
    ],
)
def test_scenario_is_named_after_the_trace_it_replays(
    scenario: str, extra: list[str], name: str, tmp_path: Path
) -> None:
    csv = str(write_trace(tmp_path / "requests.csv"))
    extra = [item.replace("{csv}", csv) for item in extra]
    if csv in extra:
        extra += ["--trace-timestamp-column", "ts", "--trace-timestamp-unit", "ms"]
        extra += ["--trace-input-column", "prompt", "--trace-output-column", "completion"]
    args = parse(["compare", "--out", "x", "--scenario", scenario, *extra])
    assert make_scenario(scenario, **scenario_overrides(args)).name == name


def test_held_out_preset_and_the_split_option_are_the_same_scenario() -> None:
    args = parse(["compare", "--out", "x", "--scenario", "trace-code", "--trace-split", "held_out"])
    assert make_scenario("trace-code", **scenario_overrides(args)) == make_scenario("trace-code-held-out")


def test_out_that_is_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "requests.csv"
    existing.write_text("x\n")
    assert main(["compare", "--episodes", "1", "--out", str(existing), *SHORT]) == 2
    assert f"--out {existing} is a file; pass a directory" in capsys.readouterr().err
    assert existing.read_text() == "x\n"
    assert main(["twin", "--scenario", "trace-code", "--out", str(tmp_path)]) == 2
    assert "is a directory; pass the path of the Markdown file" in capsys.readouterr().err


def test_experiment_checks_the_held_out_part_before_training(tmp_path: Path) -> None:
    # conv's held-out part is about 1050 s: 1200 s episodes fit the training part only.
    with pytest.raises(ConfigError, match=r"'held_out' part of bundled trace 'conv' spans only"):
        run_experiment(
            "trace-conv",
            [0],
            256,
            tmp_path / "runs",
            tmp_path / "eval",
            episodes=1,
            hp=TINY_HP,
            overrides={"episode_length_s": 1200},
        )
    assert not (tmp_path / "runs").exists()


def test_experiment_refuses_a_run_folder_trained_with_other_settings(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    run_experiment(
        "paper",
        [0],
        128,
        runs_dir,
        tmp_path / "a",
        episodes=1,
        hp=TINY_HP,
        overrides={"episode_length_s": 20},
    )
    stamp = (runs_dir / "paper-seed0" / "model.zip").stat().st_mtime_ns
    with pytest.raises(
        ValueError, match=r"paper-seed0 was trained with other settings .*scenario\.capacity_gpus"
    ):
        run_experiment(
            "paper",
            [0],
            128,
            runs_dir,
            tmp_path / "b",
            episodes=1,
            hp=TINY_HP,
            overrides={"episode_length_s": 20, "capacity_gpus": 24},
        )
    with pytest.raises(ValueError, match=r"hyperparams\.n_epochs differ"):
        run_experiment(
            "paper",
            [0],
            128,
            runs_dir,
            tmp_path / "b",
            episodes=1,
            hp=[*TINY_HP, "n_epochs=2"],
            overrides={"episode_length_s": 20},
        )
    # The same settings reuse the finished run without training it again, and say so.
    run_experiment(
        "paper",
        [0],
        128,
        runs_dir,
        tmp_path / "c",
        episodes=1,
        hp=TINY_HP,
        overrides={"episode_length_s": 20},
    )
    assert (runs_dir / "paper-seed0" / "model.zip").stat().st_mtime_ns == stamp


@pytest.mark.parametrize(
    ("seeds", "timesteps", "message"),
    [
        ([0, 0], 128, r"--seeds lists \[0\] more than once"),
        ([900], 128, r"--seeds \[900\]: training seeds must lie in \[0, 899\]"),
        ([0], 0, "--timesteps must be a positive integer, got 0"),
    ],
)
def test_experiment_checks_seeds_and_steps_before_training(
    seeds: list[int], timesteps: int, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=message):
        run_experiment("paper", seeds, timesteps, tmp_path / "runs", tmp_path / "eval", episodes=1)
    assert not (tmp_path / "runs").exists()


def test_another_trace_replaces_the_old_files_columns_and_name(tmp_path: Path) -> None:
    csv = str(write_trace(tmp_path / "requests.csv"))
    columns = ["--trace-timestamp-column", "ts", "--trace-timestamp-unit", "ms"]
    columns += ["--trace-input-column", "prompt", "--trace-output-column", "completion"]
    trained = make_scenario(
        "paper", **scenario_overrides(parse(["compare", "--out", "x", "--trace", csv, *columns]))
    )
    assert trained.name == "paper-trace-requests"
    # What gpu-alloc evaluate --trace conv does with a run trained on the file.
    traces = trace_overrides(parse(["compare", "--out", "x", "--trace", "conv"]), trained)
    config = trained.replace(**traces)
    assert config.workload.trace is not None and config.workload.trace.timestamp_unit == "auto"
    assert trace_scenario_name(trained, config) == "paper-trace-conv"


def test_jobs_of_several_scenarios_train_in_one_pool(tmp_path: Path) -> None:
    import sys

    from gpu_alloc_env.train.experiment import Job, run_jobs

    script = (
        "import sys, time; open(sys.argv[1], 'a').write(f'{time.time()} '); time.sleep(0.6); "
        "open(sys.argv[1], 'a').write(f'{time.time()}')"
    )
    jobs = [
        Job(tmp_path / "runs" / name, [sys.executable, "-c", script, str(tmp_path / f"{name}.times")])
        for name in ("paper-seed0", "paper-seed1", "paper-seed2", "trace-conv-seed0")
    ]
    run_jobs(jobs, timesteps=10, parallel=2, progress=False)
    spans = [tuple(map(float, (tmp_path / f"{job.run_dir.name}.times").read_text().split())) for job in jobs]
    # Never more than two at once, and the third paper run shares the pool with the trace run.
    for t in (start for start, _ in spans):
        assert sum(start <= t < end for start, end in spans) <= 2
    third, other = spans[2], spans[3]
    assert third[0] < other[1] and other[0] < third[1]
    failing = [Job(tmp_path / "runs" / "bad", [sys.executable, "-c", "raise SystemExit(3)"])]
    with pytest.raises(RuntimeError, match=r"training bad failed \(exit 3\); see .*bad\.log"):
        run_jobs(failing, timesteps=10, parallel=2, progress=False)


def test_stopping_an_experiment_stops_its_trainings(tmp_path: Path) -> None:
    """SIGTERM to the process running the jobs (or a failing run) leaves no training running."""
    import os
    import signal
    import subprocess
    import sys
    import time

    sleeper = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(120)"
    driver = (
        "import sys; from pathlib import Path; from gpu_alloc_env.train.experiment import Job, run_jobs; "
        "root = Path(sys.argv[1]); "
        f"run_jobs([Job(root / n, [sys.executable, '-c', {sleeper!r}, str(root / (n + '.pid'))]) "
        "for n in ('a', 'b')], timesteps=10, parallel=2, progress=False)"
    )
    parent = subprocess.Popen([sys.executable, "-c", driver, str(tmp_path)])
    pid_files = [tmp_path / "a.pid", tmp_path / "b.pid"]
    deadline = time.monotonic() + 60
    while not all(path.exists() and path.read_text() for path in pid_files):
        assert time.monotonic() < deadline and parent.poll() is None, "the trainings never started"
        time.sleep(0.1)
    children = [int(path.read_text()) for path in pid_files]
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=60) == 128 + signal.SIGTERM
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
