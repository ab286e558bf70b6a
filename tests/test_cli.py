"""``gpu-alloc compare``: the files it writes, the installed command, and its errors on bad input."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gpu_alloc_env.baselines import BASELINES, CLAIRVOYANT, TUNED_BASELINES
from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.train.cli import main
from gpu_alloc_env.train.cli.options import parse_overrides
from gpu_alloc_env.train.compare import HEADLINE, run_compare

# A minute: long enough for every baseline to complete tasks (the coordinator's replicas serve
# after a 30 s cold start), so that every metric is defined.
SHORT = ["--set", "episode_length_s=60"]
REQUIRED_COLUMNS = (
    "policy",
    "seed",
    "task_latency_mean_s",
    "task_latency_p95_s",
    "task_latency_p99_s",
    "throughput_tasks_per_s",
    "cost_usd",
    "cost_per_1k_tasks_usd",
    "gpu_utilization",
    "cold_starts",
    "slo_attainment",
)


UNTUNED = [name for name in BASELINES if name not in TUNED_BASELINES + CLAIRVOYANT]
"""The baselines compare runs on a scenario without tuned settings."""


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def check_outputs(out: Path, policies: list[str], seeds: list[int], episode_steps: int) -> None:
    columns, rows = read_rows(out / "episodes.csv")
    assert set(REQUIRED_COLUMNS) <= set(columns), set(REQUIRED_COLUMNS) - set(columns)
    assert columns[:2] == ["policy", "seed"]
    assert sorted((r["policy"], int(r["seed"])) for r in rows) == sorted(
        (p, s) for p in policies for s in seeds
    )
    for row in rows:
        assert int(row["episode_steps"]) == episode_steps
        for column in REQUIRED_COLUMNS[2:]:
            if column == "cost_per_1k_tasks_usd" and int(row["tasks_completed"]) == 0:
                assert math.isnan(float(row[column]))  # no task finished: no cost per task
            else:
                assert float(row[column]) >= 0.0, (column, row[column])
        assert 0.0 <= float(row["slo_attainment"]) <= 1.0
        assert 0.0 <= float(row["gpu_utilization"]) <= 1.0
        assert float(row["task_latency_p95_s"]) <= float(row["task_latency_p99_s"]) + 1e-9
    # The workload of a seed is the same for every policy.
    arrived = {(r["policy"], r["seed"]): r["tasks_arrived"] for r in rows}
    for seed in seeds:
        assert len({arrived[(p, str(seed))] for p in policies}) == 1
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# Policy comparison on scenario `paper`")
    assert f"{len(seeds)} episodes per policy (seeds {seeds[0]}..{seeds[-1]}" in summary
    for policy in policies:
        assert f"| {policy} | {len(seeds)} |" in summary


def test_compare_writes_one_row_per_policy_and_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nested" / "out"
    code = main(["compare", "--episodes", "2", "--seed", "5", "--out", str(out), *SHORT])
    assert code == 0
    check_outputs(out, UNTUNED, [5, 6], episode_steps=60)
    printed = capsys.readouterr().out
    assert "| policy | episodes |" in printed
    assert f"wrote {out / 'episodes.csv'} and {out / 'summary.md'}" in printed
    summary = (out / "summary.md").read_text()
    # The paper's three baselines ran, so every headline claim is measured; the tuned ones have no
    # settings for 60 s episodes, and the summary says so.
    assert "## The paper's headline, measured" in summary
    assert "Not run: provisioned, autoscaler" in summary and "## Gap to the limit" in summary
    for claim in HEADLINE:
        measured = {claim.numerator, claim.denominator} <= set(UNTUNED)
        assert (claim.text in summary) == measured


def test_compare_chosen_policies_and_json_overrides(tmp_path: Path) -> None:
    code = main(
        [
            "compare",
            "--scenario",
            "bursty",
            "--episodes",
            "1",
            "--policies",
            "static",
            "--out",
            str(tmp_path),
            "--set",
            "episode_length_s=8",
            "--set",
            'workload={"task_rate_tps": 1.5}',
        ]
    )
    assert code == 0
    _, rows = read_rows(tmp_path / "episodes.csv")
    assert [(r["policy"], r["seed"], r["episode_steps"]) for r in rows] == [("static", "0", "8")]
    summary = (tmp_path / "summary.md").read_text()
    assert "scenario `bursty`" in summary and ", 8 s each" in summary
    # With one policy no headline ratio can be measured.
    assert "headline" not in summary


def test_compare_is_reproducible(tmp_path: Path) -> None:
    config = make_scenario("paper", episode_length_s=20.0)
    first, text = run_compare(config, 2, 0, tmp_path / "a", ["adaptive"], command="gpu-alloc x")
    second, _ = run_compare(config, 2, 0, tmp_path / "b", ["adaptive"], command="gpu-alloc x")
    assert [r.episode_return for r in first] == [r.episode_return for r in second]
    assert "Command: `gpu-alloc x`" in text
    assert (tmp_path / "a" / "episodes.csv").read_bytes() == (tmp_path / "b" / "episodes.csv").read_bytes()
    assert (tmp_path / "a" / "summary.md").read_text() == (tmp_path / "b" / "summary.md").read_text()


def installed_command() -> str:
    found = shutil.which("gpu-alloc") or shutil.which("gpu-alloc", path=str(Path(sys.executable).parent))
    assert found, "the gpu-alloc console script is not installed (pip install -e .)"
    return found


def test_installed_console_script_runs_from_any_directory(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": ""}
    result = subprocess.run(
        [installed_command(), "compare", "--episodes", "2", "--out", "out", *SHORT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    check_outputs(tmp_path / "out", UNTUNED, [0, 1], episode_steps=60)
    assert (
        "Command: `gpu-alloc compare --episodes 2 --out out --set episode_length_s=60`"
        in (tmp_path / "out" / "summary.md").read_text()
    )


def test_installed_console_script_reports_errors_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [installed_command(), "compare", "--out", "out", "--set", "capacity_gpus=-2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert (
        "gpu-alloc: error: ScenarioConfig.capacity_gpus must be a whole number >= 1, got -2" in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "nope"], r"argument --scenario: invalid choice: 'nope'"),
        (["--policies", "greedy"], r"argument --policies: invalid choice: 'greedy'"),
        (["--episodes", "two"], r"argument --episodes: invalid int value: 'two'"),
    ],
)
def test_compare_argparse_errors_exit_2_naming_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--out", str(tmp_path / "out"), *args])
    assert exc.value.code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--episodes", "0"], "--episodes must be at least 1, got 0"),
        (["--episodes", "-3"], "--episodes must be at least 1, got -3"),
        (
            ["--set", "capacity_gpus"],
            "--set 'capacity_gpus' is not FIELD=VALUE; for example --set capacity_gpus=16",
        ),
        (["--set", "=16"], "--set '=16' is not FIELD=VALUE"),
        (["--set", "capacity=16"], "unknown ScenarioConfig field(s) ['capacity']; valid fields are"),
        (["--set", 'workload={"rate": 2}'], "unknown WorkloadSpec field(s) ['rate']"),
        (["--set", 'agents={"vision": {}}'], "unknown agent name(s) ['vision']"),
        # A value that is not JSON is passed on as a string, which the field then rejects by name.
        (["--set", "capacity_gpus=sixteen"], "capacity_gpus must be a whole number >= 1, got 'sixteen'"),
        # ... unless it looks like a JSON object or list: then the JSON error is the message.
        (
            ["--set", "workload={task_rate_tps: 2}"],
            "--set 'workload={task_rate_tps: 2}': the value is not valid JSON",
        ),
        (["--set", 'agents={"code": 3}'], "agents override for 'code' must be a mapping of AgentSpec fields"),
        (["--set", "capacity_gpus=NaN"], "capacity_gpus must be a whole number >= 1, got nan"),
        (["--set", "capacity_gpus=Infinity"], "capacity_gpus must be a whole number >= 1, got inf"),
        # GPUs come whole: a fractional pool is refused by name.
        (["--set", "capacity_gpus=12.5"], "capacity_gpus must be a whole number >= 1, got 12.5"),
        # A replica that cannot fit in the pool could never serve.
        (["--set", "capacity_gpus=3"], "one replica needs tensor_parallel=4 GPUs, more than capacity_gpus=3"),
        (
            ["--set", 'agents={"code": {"max_replicas": 0}}'],
            "max_replicas must be a whole number >= 1, got 0",
        ),
        (["--set", 'agents={"code": {"model": "gpt-9"}}'], "gpt-9"),
        (["--set", "scale_down=pause"], "scale_down must be one of ['drain', 'kill'], got 'pause'"),
        (["--set", "decision_interval_s=0"], "decision_interval_s must be > 0, got 0.0"),
        (["--seed", "-1"], "--seed must be >= 0 (Gymnasium seeds are non-negative), got -1"),
    ],
)
def test_compare_bad_input_exits_2_naming_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "out"
    code = main(["compare", "--out", str(out), *SHORT, *args])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("gpu-alloc: error: ")
    assert message in captured.err
    assert captured.out == ""
    assert not out.exists()


def test_parse_overrides_reads_json_and_falls_back_to_strings() -> None:
    parsed = parse_overrides(
        ["capacity_gpus=16", 'workload={"task_rate_tps": 4}', "name=mine", "keep_alive_s=2.5", "x=a=b"]
    )
    assert parsed == {
        "capacity_gpus": 16,
        "workload": {"task_rate_tps": 4},
        "name": "mine",
        "keep_alive_s": 2.5,
        "x": "a=b",
    }
    assert json.dumps(parse_overrides([])) == "{}"


def test_compare_summary_records_the_command_it_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["pytest", "-q", "unrelated"])
    out = tmp_path / "out"
    args = ["compare", "--episodes", "1", "--policies", "static", "--out", str(out), *SHORT]
    assert main(args) == 0
    capsys.readouterr()
    assert f"Command: `gpu-alloc {' '.join(args)}`" in (out / "summary.md").read_text()


def test_compare_can_rename_the_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert (
        main(
            [
                "compare",
                "--episodes",
                "1",
                "--policies",
                "static",
                "--out",
                str(out),
                *SHORT,
                "--set",
                "name=mine",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert "scenario `mine`" in (out / "summary.md").read_text()


def test_compare_runs_the_fleet_scenario_with_its_number_of_agents(tmp_path: Path) -> None:
    args = ["compare", "--scenario", "fleet", "--set", "num_agents=5", "--set", "episode_length_s=20"]
    assert main([*args, "--episodes", "2", "--policies", "static", "--out", str(tmp_path)]) == 0
    summary = (tmp_path / "summary.md").read_text()
    assert "`fleet5`" in summary


def test_one_episode_gives_no_interval_and_no_verdict(tmp_path: Path) -> None:
    args = ["compare", "--episodes", "1", "--set", "episode_length_s=30", "--out", str(tmp_path)]
    assert main(args) == 0
    summary = (tmp_path / "summary.md").read_text()
    table = summary[summary.index("| policy") : summary.index("## The paper")]
    assert "± n/a" in table and "± 0.0" not in table
    claims = [line for line in summary.splitlines() if "` adaptive / " in line]
    assert claims and all("undefined: needs two or more seeds" in line for line in claims)
    assert not [line for line in claims if "| holds |" in line or "mean only" in line]


def test_tune_then_compare_evaluate_and_benchmark_read_the_tuned_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = ["--set", "capacity_gpus=9", "--set", "episode_length_s=60"]
    tuned = tmp_path / "tuned"
    assert main(["tune", "--episodes", "2", "--out", str(tuned), *small]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {tuned / 'paper.provisioned.json'}" in printed and "paper: autoscaler" in printed
    deployable = [n for n in BASELINES if n not in CLAIRVOYANT]
    assert (
        main(["compare", "--episodes", "2", "--tuned", str(tuned), "--out", str(tmp_path / "c"), *small]) == 0
    )
    check_outputs(tmp_path / "c", deployable, [0, 1], episode_steps=60)
    assert "Not run" not in (tmp_path / "c" / "summary.md").read_text()
    args = ["--episodes", "2", "--scenario", "paper", "--tuned", str(tuned), *small]
    assert (
        main(["evaluate", "--baselines", "all", "oracle", "--no-plots", "--out", str(tmp_path / "e"), *args])
        == 0
    )
    _, rows = read_rows(tmp_path / "e" / "episodes.csv")
    assert {r["policy"] for r in rows} == {*deployable, "oracle"}
    bench = tmp_path / "b"
    assert main(["benchmark", "--no-oracle", "--tuned", str(tuned), "--out", str(bench), *args]) == 0
    _, rows = read_rows(bench / "paper" / "episodes.csv")
    assert {r["policy"] for r in rows} == {"static", "round_robin", "adaptive", "provisioned", "autoscaler"}
    # Without the tuned settings of this changed scenario, the benchmark refuses and says how to get them.
    untuned = ["--episodes", "2", "--scenario", "paper", *small]
    assert main(["benchmark", "--no-oracle", "--out", str(bench), *untuned]) == 2
    assert "gpu-alloc tune --scenario paper" in capsys.readouterr().err
