"""``gpu-alloc evaluate`` on trained runs: compatibility, run labels, damaged folders, the summary."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_train import TINY_HP, TINY_SCENARIO, read_rows, tiny_args

from gpu_alloc_env.evaluation import EpisodeResult
from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.train.cli import main
from gpu_alloc_env.train.comparison import Scored, best_baseline, criteria_rows
from gpu_alloc_env.train.evaluate import run_evaluate, run_labels
from gpu_alloc_env.train.learned import LearnedPolicy, load_run_config
from gpu_alloc_env.train.ppo import train
from gpu_alloc_env.train.run_folder import TrainArgs

GENERALISE_SCENARIOS = (
    "paper",
    "trace-conv-held-out",
    "trace-code-held-out",
    "trace-conv-twin",
    "trace-code-twin",
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained briefly on paper with 20 s episodes (capacity 16 GPUs)."""
    return train(tiny_args(tmp_path_factory.mktemp("runs") / "tiny"), progress_bar=False)


@pytest.fixture(scope="module")
def trace_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained briefly on the training part of the conv trace."""
    args = TrainArgs(
        scenario="trace-conv",
        seed=4,
        timesteps=256,
        run_dir=str(tmp_path_factory.mktemp("runs") / "tc"),
        hp_overrides=dict(TINY_HP),
        scenario_overrides=dict(TINY_SCENARIO),
        checkpoint_interval_s=0.0,
    )
    return train(args, progress_bar=False)


def copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def edit_config(run: Path, edit: Any) -> None:
    """Apply ``edit`` to the run's recorded ``config.json``."""
    path = run / "config.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


# 1. Fields the policy's observation decoding and action transform depend on.


@pytest.mark.parametrize(
    ("overrides", "field", "trained", "here"),
    [
        ({"capacity_gpus": 24}, "capacity_gpus", "16", "24"),
        ({"decision_interval_s": 2.0}, "decision_interval_s", "1.0", "2.0"),
        ({"rate_window_s": 5.0}, "rate_window_s", "10.0", "5.0"),
        ({"agents": {"code": {"max_replicas": 4}}}, "agents.code.max_replicas", "6", "4"),
        ({"agents": {"reasoning": {"tensor_parallel": 8}}}, "agents.reasoning.tensor_parallel", "4", "8"),
        ({"agents": {"retrieval": {"priority": 2}}}, "agents.retrieval.priority", "1.0", "2.0"),
        (
            {"agents": {"coordinator": {"request_slo_s": 5}}},
            "agents.coordinator.request_slo_s",
            "10.0",
            "5.0",
        ),
    ],
)
def test_evaluation_refuses_a_scenario_the_policy_would_misread(
    tiny_run: Path, tmp_path: Path, overrides: dict[str, Any], field: str, trained: str, here: str
) -> None:
    with pytest.raises(ValueError, match=rf"{field} \(trained with {trained}, here {here}\) differs"):
        run_evaluate(
            [tiny_run], ["adaptive"], episodes=1, out_dir=tmp_path / "x", scenario_overrides=overrides
        )
    assert not (tmp_path / "x").exists()


def test_capacity_override_on_the_command_line_is_refused(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x"
    argv = ["evaluate", "--runs", str(tiny_run), "--set", "capacity_gpus=24", "--baselines", "adaptive"]
    assert main([*argv, "--episodes", "1", "--no-plots", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "capacity_gpus (trained with 16, here 24) differs" in err
    assert "train a run on this scenario" in err


def test_workload_and_episode_length_may_differ_from_the_training_scenario(tiny_run: Path) -> None:
    policy = LearnedPolicy(tiny_run, "final")
    for name in GENERALISE_SCENARIOS:  # what gpu-alloc generalise evaluates paper runs on
        policy.check_compatible(make_scenario(name))
    for a in GENERALISE_SCENARIOS:  # and runs trained on any of them, on any other
        trained = make_scenario(a)
        policy.config = trained
        for b in GENERALISE_SCENARIOS:
            policy.check_compatible(make_scenario(b))
    policy.config = make_scenario("paper", **TINY_SCENARIO)
    busier = policy.config.replace(
        workload={"task_rate_tps": 7.0}, episode_length_s=60.0, agents={"code": {"input_tokens_mean": 900}}
    )
    policy.check_compatible(busier)
    # The deployment may differ too: the platform and its terms, the models and their precision.
    elsewhere = policy.config.replace(
        platform="modal",
        keep_alive_s=0.0,
        weight_source="host_memory",
        scale_down="kill",
        agents={"code": {"model": "qwen2.5-14b", "dtype": "fp8"}},
    )
    policy.check_compatible(elsewhere)


# 2. Runs of the same folder name, and a run given twice.


def test_runs_with_the_same_folder_name_are_told_apart(tiny_run: Path, tmp_path: Path) -> None:
    first = copy_run(tiny_run, tmp_path / "x" / "paper-seed0")
    second = copy_run(tiny_run, tmp_path / "y" / "paper-seed0")
    text = run_evaluate([first, second], ["adaptive"], episodes=2, out_dir=tmp_path / "eval", plots=False)
    rows = read_rows(tmp_path / "eval" / "episodes.csv")
    learned = [r["run"] for r in rows if r["policy"] == "ppo"]
    assert sorted(learned) == ["x/paper-seed0"] * 2 + ["y/paper-seed0"] * 2
    assert "| ppo | 2 |" in text
    for label in ("x/paper-seed0", "y/paper-seed0"):
        # once in the training table, once in the per-run table
        assert sum(line.startswith(f"| {label} |") for line in text.splitlines()) == 2


def test_run_labels_use_the_fewest_path_parts_that_are_unique(tmp_path: Path) -> None:
    paths = [tmp_path / "x" / "paper-seed0", tmp_path / "y" / "paper-seed0", tmp_path / "x" / "paper-seed1"]
    assert run_labels(paths) == ["x/paper-seed0", "y/paper-seed0", "paper-seed1"]
    nested = [tmp_path / "a" / "r" / "s", tmp_path / "b" / "r" / "s"]
    assert run_labels(nested) == ["a/r/s", "b/r/s"]


def test_a_run_given_twice_is_refused(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match=r"is given twice; pass each run once"):
        run_evaluate([tiny_run, tiny_run], ["adaptive"], episodes=1, out_dir=tmp_path / "a")
    monkeypatch.chdir(tiny_run.parent)
    out = tmp_path / "b"
    argv = ["evaluate", "--runs", "tiny", f"../{tiny_run.parent.name}/tiny", "--episodes", "1"]
    assert main([*argv, "--no-plots", "--out", str(out)]) == 2
    assert f"is given twice (as tiny and ../{tiny_run.parent.name}/tiny)" in capsys.readouterr().err
    assert not out.exists()


# 3. The hint when a model is missing.


def test_missing_final_model_says_to_resume_the_run(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    killed = copy_run(tiny_run, tmp_path / "k")
    (killed / "model.zip").unlink()
    with pytest.raises(ValueError, match="has not finished training") as caught:
        LearnedPolicy(killed, "final")
    message = str(caught.value)
    assert f"resume it with `gpu-alloc train --run-dir {killed} --resume`" in message
    assert "or evaluate its best model so far with --model best" in message
    assert "--model final" not in message
    LearnedPolicy(killed, "best")  # the best model is still there
    (killed / "best_model.zip").unlink()
    with pytest.raises(ValueError, match="has not finished training") as caught:
        LearnedPolicy(killed, "final")
    assert "--model best" not in str(caught.value)
    assert main(["evaluate", "--runs", str(killed), "--model", "final", "--out", str(tmp_path / "o")]) == 2
    assert "--resume" in capsys.readouterr().err


def test_missing_best_model_suggests_the_final_one(tiny_run: Path, tmp_path: Path) -> None:
    run = copy_run(tiny_run, tmp_path / "r")
    (run / "best_model.zip").unlink()
    with pytest.raises(
        ValueError, match=r"saved no best model .*evaluate its final model with --model final"
    ):
        LearnedPolicy(run, "best")
    (run / "model.zip").unlink()
    with pytest.raises(ValueError, match=r"saved no model yet; resume it with `gpu-alloc train --run-dir"):
        LearnedPolicy(run, "best")


# 4. Damaged or old config.json.


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"config.json is not valid JSON \(Expecting value at line 1, column 1\)"),
        ('{"scenario": {}', r"config.json is not valid JSON \(.* at line 1, column 16\)"),
        ("[1, 2]", r"config.json holds list '\[1, 2\]', not the mapping gpu-alloc train writes"),
    ],
)
def test_invalid_config_json_names_the_file_and_the_position(
    tiny_run: Path, tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_run(tiny_run, tmp_path / "r")
    (run / "config.json").write_text(text)
    with pytest.raises(ValueError, match=message):
        LearnedPolicy(run)
    assert main(["evaluate", "--runs", str(run), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{run / 'config.json'} " in err and "Traceback" not in err


@pytest.mark.parametrize("key", ["hyperparams", "scenario"])
def test_config_json_of_an_older_layout_is_named_as_such(
    tiny_run: Path, tmp_path: Path, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_run(tiny_run, tmp_path / "r")
    edit_config(run, lambda data: data.pop(key))
    expected = f"{run / 'config.json'} lacks the key '{key}': {run} is not a run folder of this version"
    with pytest.raises(ValueError, match="lacks the key") as caught:
        load_run_config(run)
    assert expected in str(caught.value)
    assert main(["evaluate", "--runs", str(run), "--out", str(tmp_path / "o")]) == 2
    assert expected in capsys.readouterr().err


def test_invalid_recorded_scenario_names_the_file(tiny_run: Path, tmp_path: Path) -> None:
    run = copy_run(tiny_run, tmp_path / "r")
    edit_config(run, lambda data: data["scenario"].update(capacity_gpus=-1))
    with pytest.raises(ValueError, match=r"config.json: the recorded scenario is invalid .*capacity_gpus"):
        LearnedPolicy(run)


# 5. Runs trained on different scenarios.


def test_runs_trained_with_different_settings_name_the_fields(tiny_run: Path, tmp_path: Path) -> None:
    other = copy_run(tiny_run, tmp_path / "other")
    edit_config(other, lambda data: data["scenario"]["workload"].update(task_rate_tps=2.5))
    with pytest.raises(ValueError, match="different scenarios") as caught:
        run_evaluate([tiny_run, other], ["adaptive"], episodes=1, out_dir=tmp_path / "a")
    message = str(caught.value)
    assert "other differs from tiny in workload.task_rate_tps (3.5 vs 2.5)" in message
    assert "pass --scenario" in message
    edit_config(other, lambda data: data["scenario"].update(capacity_gpus=24))
    with pytest.raises(ValueError, match="different scenarios") as caught:
        run_evaluate([tiny_run, other], ["adaptive"], episodes=1, out_dir=tmp_path / "a")
    message = str(caught.value)
    assert "capacity_gpus (16 vs 24), workload.task_rate_tps (3.5 vs 2.5)" in message
    assert "evaluate them separately: each run acts only with its own capacity_gpus" in message


# 6. What summary.md records.


def test_summary_records_the_command_the_model_and_the_changed_fields(tiny_run: Path, tmp_path: Path) -> None:
    command = "gpu-alloc evaluate --runs tiny --model final --set 'workload={\"task_rate_tps\": 2}'"
    text = run_evaluate(
        [tiny_run],
        ["adaptive"],
        episodes=1,
        out_dir=tmp_path / "eval",
        scenario_overrides={"workload": {"task_rate_tps": 2}},
        model="final",
        plots=False,
        command=command,
    )
    assert (tmp_path / "eval" / "summary.md").read_text() == text
    assert f"Command: `{command}`" in text
    assert "Model of each run: the final model (`model.zip`, `--model final`)." in text
    assert "Differences from the training scenario `paper` of run tiny: " in text
    assert "`workload.task_rate_tps` = 2.0 (trained: 3.5)" in text
    best = run_evaluate([tiny_run], ["adaptive"], episodes=1, out_dir=tmp_path / "best", plots=False)
    assert "the model with the best validation return (`best_model.zip`, `--model best`)" in best
    assert "The training scenario of run tiny (`paper`), unchanged." in best


def test_summary_of_baselines_names_the_overridden_fields(tmp_path: Path) -> None:
    text = run_evaluate(
        [],
        ["adaptive"],
        episodes=1,
        out_dir=tmp_path / "eval",
        scenario_overrides={"capacity_gpus": 24, "episode_length_s": 20},
        plots=False,
        command="gpu-alloc evaluate --baselines adaptive --set capacity_gpus=24",
    )
    assert "Differences from the preset `paper`: `capacity_gpus` = 24 (preset: 16)" in text
    assert "Model of each run" not in text


# 7. Runs trained on a trace's training part.


def test_trace_run_is_evaluated_on_the_held_out_part_by_default(
    trace_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    argv = ["evaluate", "--runs", str(trace_run), "--baselines", "adaptive", "--episodes", "1", "--no-plots"]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "trained on the training part of trace 'conv': evaluating on its held-out part" in printed
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# Evaluation on scenario `trace-conv-held-out`")
    assert "the `held_out` part of trace `conv`" in summary
    assert '`workload.trace.split` = "held_out" (trained: "train")' in summary

    explicit = tmp_path / "train-part"
    assert main([*argv, "--trace-split", "train", "--out", str(explicit)]) == 0
    assert "held-out part" not in capsys.readouterr().out
    summary = (explicit / "summary.md").read_text()
    assert summary.startswith("# Evaluation on scenario `trace-conv`")
    assert "the `train` part of trace `conv`" in summary


def test_other_overrides_keep_the_held_out_default(
    trace_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    argv = ["evaluate", "--runs", str(trace_run), "--baselines", "adaptive", "--episodes", "1", "--no-plots"]
    assert main([*argv, "--set", "episode_length_s=40", "--out", str(out)]) == 0
    assert "evaluating on its held-out part" in capsys.readouterr().out
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# Evaluation on scenario `trace-conv-held-out`")
    assert "the `held_out` part of trace `conv`" in summary


def test_baselines_alone_apply_trace_options_to_paper(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "evaluate",
        "--baselines",
        "static",
        "--episodes",
        "1",
        "--no-plots",
        "--out",
        str(tmp_path / "o"),
    ]
    assert main([*argv, "--trace-split", "held_out"]) == 2
    assert (
        "--trace-split change(s) the trace a scenario replays, but scenario 'paper'"
        in capsys.readouterr().err
    )
    assert main([*argv, "--trace", "conv", "--set", "episode_length_s=40"]) == 0
    assert (
        (tmp_path / "o" / "summary.md").read_text().startswith("# Evaluation on scenario `paper-trace-conv`")
    )


CRITERION_METRICS = ("task_latency_p95_s", "cost_per_1k_tasks_usd")


def _scored(policy: str, returns: list[float], run: str = "") -> list[Scored]:
    return [
        Scored(
            EpisodeResult(policy, seed, value, 600, dict.fromkeys(CRITERION_METRICS, 1.0)),
            run,
            0 if run else None,
        )
        for seed, value in enumerate(returns)
    ]


def test_the_best_baseline_is_the_highest_defined_return_of_the_baselines_only() -> None:
    scored = [
        *_scored("static", [-10.0, -12.0, -11.0, -9.0]),
        *_scored("adaptive", [-20.0, -21.0, -19.0, -22.0]),
        *_scored("round_robin", [-math.inf] * 4),
        *_scored("ppo", [0.0, 0.0, 0.0, 0.0], run="r0"),
    ]
    assert best_baseline(scored) == "static"
    assert best_baseline(_scored("round_robin", [math.nan] * 3)) is None
    assert best_baseline(_scored("ppo", [1.0], run="r0")) is None
    rows = criteria_rows(scored, "ppo", "static")
    cell, verdict = next((cell, verdict) for c, cell, verdict in rows if c.metric == "episode_return")
    assert cell.startswith("10.5 [") and verdict == "holds"


def test_a_criterion_on_one_episode_is_undefined_not_holds() -> None:
    from gpu_alloc_env.train.comparison import UNDEFINED_VERDICT

    scored = [*_scored("adaptive", [-20.0]), *_scored("ppo", [-10.0], run="r0")]
    rows = criteria_rows(scored, "ppo", "adaptive")
    assert rows and all(cell.endswith("[n/a]") and verdict == UNDEFINED_VERDICT for _, cell, verdict in rows)
