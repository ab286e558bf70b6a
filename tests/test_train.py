"""Training, resuming and evaluating PPO runs, on tiny budgets."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import PPO

from gpu_alloc_env.config import ConfigError, ScenarioConfig
from gpu_alloc_env.errors import TrainError
from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.seeds import EVALUATION_SEED_BASE, TUNING_SEED_BASE, VALIDATION_SEED_BASE
from gpu_alloc_env.train.cli import main
from gpu_alloc_env.train.evaluate import EVALUATE_COLUMNS, run_evaluate
from gpu_alloc_env.train.hyperparams import load_hyperparams, parse_hp_overrides, ppo_kwargs, training_config
from gpu_alloc_env.train.learned import LearnedPolicy, training_record
from gpu_alloc_env.train.plots import PLOT_FILES
from gpu_alloc_env.train.ppo import train
from gpu_alloc_env.train.run_folder import TrainArgs, training_lock

ROOT = Path(__file__).resolve().parents[1]
TINY_SCENARIO = {"episode_length_s": 20.0}
TINY_HP = {
    "n_envs": 4,
    "n_steps": 32,
    "batch_size": 64,
    "n_epochs": 1,
    "eval_freq_steps": 256,
    "eval_episodes": 2,
    "net_arch": [16, 16],
}
RUN_FILES = (
    "config.json",
    "args.json",
    "command.txt",
    "git_revision.txt",
    "model.zip",
    "best_model.zip",
    "vecnormalize.pkl",
    "evaluations.npz",
    "checkpoints/last.zip",
    "checkpoints/vecnormalize.pkl",
    "checkpoints/state.json",
    "checkpoints/evaluations.npz",
    "checkpoints/best_model.zip",
)


def tiny_args(run_dir: Path, timesteps: int = 640, seed: int = 3) -> TrainArgs:
    return TrainArgs(
        scenario="paper",
        seed=seed,
        timesteps=timesteps,
        run_dir=str(run_dir),
        hp_overrides=dict(TINY_HP),
        scenario_overrides=dict(TINY_SCENARIO),
        checkpoint_interval_s=0.0,
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(tiny_args(tmp_path_factory.mktemp("runs") / "tiny"), progress_bar=False)


def test_tiny_training_run_writes_a_complete_run_folder(tiny_run: Path) -> None:
    for name in RUN_FILES:
        assert (tiny_run / name).is_file(), name
    assert list((tiny_run / "tb").glob("PPO_1/events.out.tfevents.*"))
    assert list((tiny_run / "monitor").glob("*.monitor.csv"))
    saved = json.loads((tiny_run / "config.json").read_text())
    assert ScenarioConfig.from_dict(saved["scenario"]) == make_scenario("paper", **TINY_SCENARIO)
    assert saved["hyperparams"] == load_hyperparams("paper", overrides=TINY_HP)
    args = json.loads((tiny_run / "args.json").read_text())
    assert args["seed"] == 3 and args["timesteps"] == 640
    assert len((tiny_run / "git_revision.txt").read_text().strip()) >= 7
    model = PPO.load(tiny_run / "model.zip", device="cpu")
    assert model.num_timesteps >= 640
    state = json.loads((tiny_run / "checkpoints" / "state.json").read_text())
    assert state["num_timesteps"] == model.num_timesteps
    with np.load(tiny_run / "evaluations.npz") as data:
        assert data["results"].shape[1] == 2 and data["timesteps"].size >= 2


def test_same_seed_trains_the_same_model(tiny_run: Path, tmp_path: Path) -> None:
    again = train(tiny_args(tmp_path / "again"), progress_bar=False)
    obs = np.random.default_rng(0).uniform(0.0, 1.0, size=(8, 13 * 4 + 5)).astype(np.float32)
    first = LearnedPolicy(tiny_run, "final").predict(obs)[0]
    second = LearnedPolicy(again, "final").predict(obs)[0]
    np.testing.assert_array_equal(first, second)


@pytest.mark.slow
def test_killed_run_resumes_from_its_checkpoint_to_its_total_step_count(tmp_path: Path) -> None:
    run_dir = tmp_path / "killed"
    total = 5_000  # long enough that the run is still going when it is killed after 2000 steps
    command = [sys.executable, "-m", "gpu_alloc_env.train", "train", "--scenario", "paper", "--seed", "1"]
    command += ["--timesteps", str(total), "--run-dir", str(run_dir), "--checkpoint-interval-s", "0"]
    command += ["--no-progress", "--set", "episode_length_s=20"]
    for key, value in TINY_HP.items():
        command += ["--hp", f"{key}={json.dumps(value)}"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state_file = run_dir / "checkpoints" / "state.json"
    deadline = time.monotonic() + 120.0
    while time.monotonic() < deadline and process.poll() is None:
        if state_file.exists() and json.loads(state_file.read_text() or "{}").get("num_timesteps", 0) >= 2000:
            break
        time.sleep(0.05)
    assert process.poll() is None, f"the run ended before it could be killed: {process.stderr}"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = json.loads(state_file.read_text())["num_timesteps"]
    assert 0 < killed_at < total
    assert main(["train", "--run-dir", str(run_dir), "--resume", "--no-progress"]) == 0
    commands = (run_dir / "command.txt").read_text().splitlines()
    assert len(commands) == 2  # the first start, then the resume
    assert json.loads((run_dir / "args.json").read_text())["timesteps"] == total
    model = PPO.load(run_dir / "model.zip", device="cpu")
    assert total <= model.num_timesteps < total + 128  # one rollout of 4 x 32 steps at most beyond
    assert json.loads(state_file.read_text())["num_timesteps"] == model.num_timesteps
    with np.load(run_dir / "evaluations.npz") as data:
        steps = data["timesteps"]
    assert steps[0] < killed_at < steps[-1] and np.all(np.diff(steps) > 0)
    segments = sorted((run_dir / "monitor").glob("*.monitor.csv"))
    assert len(segments) == 2  # the killed start and the resume each log their own episodes
    record = training_record(run_dir)
    last_times = [float(seg.read_text().splitlines()[-1].split(",")[2]) for seg in segments]
    assert record["timesteps"] == model.num_timesteps
    assert record["wall_s"] == pytest.approx(sum(last_times)) and record["wall_s"] > max(last_times)


def test_new_run_refuses_a_used_folder_and_resume_needs_a_checkpoint(tiny_run: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="already exists and is not empty; pass --resume"):
        train(tiny_args(tiny_run), progress_bar=False)
    with pytest.raises(TrainError, match=r"holds no whole checkpoint.*start the run again without --resume"):
        train(tiny_args(tmp_path / "never"), resume=True, progress_bar=False)
    assert not (tmp_path / "never").exists()
    # A run refused for its settings before it writes anything leaves no empty folder either.
    args = tiny_args(tmp_path / "refused")
    with pytest.raises(TrainError, match="unknown hyperparameter"):
        train(TrainArgs(**{**args.__dict__, "hp_overrides": {"learning_rat": 0.1}}), progress_bar=False)
    assert not (tmp_path / "refused").exists()


@pytest.mark.parametrize(
    ("hp", "message"),
    [
        ({"learning_rat": 0.1}, r"unknown hyperparameter\(s\) \['learning_rat'\]"),
        ({"n_envs": 0}, "n_envs must be a positive integer, got 0"),
        ({"action": "softmax"}, "unknown action parameterisation 'softmax'"),
        (
            {"learning_rate": "fast"},
            "learning_rate must be a positive number, for example 3.0e-4, got 'fast'",
        ),
        ({"learning_rate": None}, "learning_rate must be a positive number"),
        ({"train_overrides": [35]}, r"train_overrides must be a mapping of fields, got \[35\]"),
        ({"seed": 3}, r"\['seed'\] .* are set by --seed; remove them"),
        ({"device": "cuda"}, r"\['device'\] .* are set by the command \(it trains on the CPU\)"),
        ({"n_epochs": 0}, "n_epochs must be a positive integer, got 0"),
        ({"gamma": 2}, r"gamma must be a number in \(0, 1\], for example 0.99, got 2"),
        ({"normalize_reward": "maybe"}, "normalize_reward must be true or false, got 'maybe'"),
        ({"net_arch": "abc"}, "net_arch must be a list of positive layer sizes"),
        ({"target_kl": "abc"}, "target_kl must be a positive number or null"),
        (
            {"residual_scale": 0.3},
            "--hp residual_scale applies to action=residual, but the run's action is 'need_scale'",
        ),
        ({"action": "offset", "min_offset": 1}, "min_offset must be an int <= 0, got 1"),
        ({"action": "offset", "max_offset": -1}, "max_offset must be an int >= 0, got -1"),
        ({"action": "offset", "offset_base": "3,2"}, "offset_base must be a list of replicas per agent"),
        ({"action": "offset", "offset_base": [9, 9, 9, 9]}, "exceed the agents. max_replicas"),
        ({"action_repeat": 0}, "action_repeat must be a positive integer, got 0"),
        ({"action_repeat": 3}, r"action_repeat=3 does not divide the episode's 20 decision intervals"),
        ({"frame_stack": 0}, "frame_stack must be a positive integer, got 0"),
        ({"frame_stack": 2.5}, "frame_stack must be a positive integer, got 2.5"),
        (
            {"reward_baseline": "oracle"},
            "reward_baseline must be provisioned, adaptive or null, got 'oracle'",
        ),
        ({"max_offset": 2}, "--hp max_offset applies to action=offset, but the run's action is 'need_scale'"),
    ],
)
def test_bad_hyperparameters_fail_clearly(hp: dict[str, object], message: str, tmp_path: Path) -> None:
    args = tiny_args(tmp_path / "bad")
    args = TrainArgs(**{**args.__dict__, "hp_overrides": {**TINY_HP, **hp}})
    with pytest.raises((TrainError, ValueError), match=message):
        train(args, progress_bar=False)


def test_a_folder_being_trained_refuses_a_second_trainer(tiny_run: Path) -> None:
    before = {path: path.stat().st_mtime_ns for path in tiny_run.rglob("*") if path.is_file()}
    with training_lock(tiny_run):
        with pytest.raises(TrainError, match=r"run folder .*tiny is being trained by another process"):
            train(tiny_args(tiny_run, timesteps=1280), resume=True, progress_bar=False)
        with pytest.raises(TrainError, match="is being trained by another process"), training_lock(tiny_run):
            pass
    # Nothing of the run was touched, and the lock is free again once released.
    assert before == {path: path.stat().st_mtime_ns for path in tiny_run.rglob("*") if path.is_file()}
    with training_lock(tiny_run):
        pass


def test_train_command_reports_bad_arguments(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["train", "--run-dir", str(tmp_path / "r"), "--timesteps", "0"]) == 2
    assert "--timesteps must be a positive integer, got 0" in capsys.readouterr().err
    assert main(["train", "--run-dir", str(tmp_path / "r")]) == 2
    assert "--timesteps is required" in capsys.readouterr().err
    assert main(["train", "--run-dir", str(tmp_path / "r"), "--timesteps", "10", "--hp", "gamma"]) == 2
    assert "--hp 'gamma' is not KEY=VALUE" in capsys.readouterr().err


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_evaluation_of_baselines_and_a_run_writes_csv_summary_and_plots(
    tiny_run: Path, tmp_path: Path
) -> None:
    # A minute, so that the baselines complete tasks (the run trained on 20 s episodes, in which the
    # cold starts leave no time to finish any).
    longer = {"episode_length_s": 60.0}
    text = run_evaluate([tiny_run], ["all"], episodes=2, out_dir=tmp_path / "eval", scenario_overrides=longer)
    rows = read_rows(tmp_path / "eval" / "episodes.csv")
    assert tuple(rows[0]) == EVALUATE_COLUMNS
    # "all": the deployable baselines that have settings for 60 s episodes (not the tuned ones), and the run.
    assert len(rows) == (4 + 1) * 2
    seeds = {(r["policy"], int(r["seed"])) for r in rows}
    for policy in ("static", "round_robin", "adaptive", "provisioned_erlang", "ppo"):
        assert {(policy, EVALUATION_SEED_BASE), (policy, EVALUATION_SEED_BASE + 1)} <= seeds
    learned = [r for r in rows if r["policy"] == "ppo"]
    assert all(r["run"] == "tiny" and r["train_seed"] == "3" for r in learned)
    assert all(r["run"] == "" and r["train_seed"] == "" for r in rows if r["policy"] != "ppo")
    assert all(np.isfinite(float(r["task_latency_p95_s"])) for r in rows)
    assert all(int(r["episode_steps"]) == 60 for r in rows)
    assert all(np.isfinite(float(r["cost_per_1k_tasks_usd"])) for r in rows if r["policy"] != "ppo")
    summary = (tmp_path / "eval" / "summary.md").read_text()
    assert summary == text
    assert "| ppo | 1 |" in summary and "| adaptive | - |" in summary
    for criterion in ("higher mean episode reward", "lower p95 task latency", "no higher cost per task"):
        assert criterion in summary
    model = PPO.load(tiny_run / "model.zip", device="cpu")
    row = next(line for line in summary.splitlines() if line.startswith("| tiny |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "3" and int(cells[2]) == model.num_timesteps
    per_run = next(
        line
        for line in summary.splitlines()[
            summary.splitlines().index(
                "| run | episode_return | task_latency_p95_s | cost_per_1k_tasks_usd | cold_starts |"
            ) :
        ]
        if line.startswith("| tiny |")
    )
    ppo_returns = [float(r["episode_return"]) for r in rows if r["policy"] == "ppo"]
    heuristic = [float(r["episode_return"]) for r in rows if r["policy"] == "adaptive"]
    assert float(per_run.split("|")[2]) == pytest.approx(np.mean(ppo_returns) - np.mean(heuristic), abs=1e-3)
    record = training_record(tiny_run)
    assert record["wall_s"] > 0.0 and cells[3] == f"{record['wall_s'] / 60.0:.1f}"
    assert int(cells[4]) == record["best_step"] <= model.num_timesteps
    for name in PLOT_FILES:
        assert (tmp_path / "eval" / name).stat().st_size > 1000, name


def test_plots_are_written_when_no_task_completes(tmp_path: Path) -> None:
    # 20 s episodes end before any replica of paper is out of its cold start: every cost per task
    # is undefined, and the plots say so instead of failing on an empty log axis.
    run_evaluate([], ["static"], episodes=1, out_dir=tmp_path / "eval", scenario_overrides=TINY_SCENARIO)
    rows = read_rows(tmp_path / "eval" / "episodes.csv")
    assert [r["tasks_completed"] for r in rows] == ["0"] and rows[0]["cost_per_1k_tasks_usd"] == "nan"
    for name in PLOT_FILES[:3]:
        assert (tmp_path / "eval" / name).stat().st_size > 1000, name


def test_evaluation_is_deterministic_for_fixed_seeds(tiny_run: Path, tmp_path: Path) -> None:
    for out in ("one", "two"):
        run_evaluate([tiny_run], ["adaptive"], episodes=2, out_dir=tmp_path / out, plots=False)
    assert (tmp_path / "one" / "episodes.csv").read_text() == (tmp_path / "two" / "episodes.csv").read_text()
    assert (tmp_path / "one" / "summary.md").read_text() == (tmp_path / "two" / "summary.md").read_text()


def test_evaluating_on_an_incompatible_scenario_fails_clearly(tiny_run: Path, tmp_path: Path) -> None:
    three_agents = list(make_scenario("paper").agents[:3])
    with pytest.raises(ValueError, match=r"trained on scenario 'paper' with agents .* cannot act in"):
        run_evaluate(
            [tiny_run],
            ["adaptive"],
            episodes=1,
            out_dir=tmp_path / "x",
            scenario="paper",
            scenario_overrides={"agents": three_agents},
        )


def test_evaluate_command_reports_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["evaluate", "--runs", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", "--baselines", "greedy", "--out", str(tmp_path / "o")]) == 2
    assert "unknown baseline(s) ['greedy']" in capsys.readouterr().err
    assert main(["evaluate", "--episodes", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--episodes must be >= 1, got 0" in capsys.readouterr().err


def test_evaluation_on_tuning_seeds_avoids_training_validation_and_held_out_seeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert VALIDATION_SEED_BASE + 1000 <= TUNING_SEED_BASE < EVALUATION_SEED_BASE - 10_000
    out = tmp_path / "tune"
    args = ["evaluate", "--baselines", "adaptive", "--episodes", "2", "--no-plots", "--out", str(out)]
    assert main([*args, "--first-seed", str(TUNING_SEED_BASE), "--set", "episode_length_s=20"]) == 0
    assert [int(r["seed"]) for r in read_rows(out / "episodes.csv")] == [
        TUNING_SEED_BASE,
        TUNING_SEED_BASE + 1,
    ]
    capsys.readouterr()
    assert main([*args, "--first-seed", "900003"]) == 2
    assert "--first-seed 900003 overlaps the seeds of training and validation" in capsys.readouterr().err


def test_hp_overrides_read_exponents_without_a_dot_as_numbers() -> None:
    # YAML 1.1 would read 1e-4 as a string, which PPO rejects deep inside SB3.
    parsed = parse_hp_overrides(["learning_rate=1e-4", "net_arch=[128, 128]", "action=residual", "n_envs=8"])
    assert parsed == {"learning_rate": 1e-4, "net_arch": [128, 128], "action": "residual", "n_envs": 8}
    assert load_hyperparams("paper", overrides=parsed)["learning_rate"] == 1e-4


def test_training_shaping_changes_only_the_training_scenario() -> None:
    config = make_scenario("paper")
    hp = load_hyperparams(
        "paper", overrides={"train_overrides": {"task_slo_s": 35}, "train_reward": {"slo_miss_usd": 0.1}}
    )
    shaped = training_config(config, hp)
    assert shaped.task_slo_s == 35.0 and shaped.reward.slo_miss_usd == 0.1
    assert shaped.replace(task_slo_s=config.task_slo_s, reward=config.reward) == config
    assert training_config(config, load_hyperparams("bursty")) == config
    # train_reward merges into the scenario's reward: the fields it does not name keep their values.
    priced = training_config(config, {"train_reward": {"goodput_miss_usd": 0.02}})
    assert priced.reward == config.reward.replace(goodput_miss_usd=0.02)
    with pytest.raises(ConfigError, match="unknown ScenarioConfig field"):
        training_config(config, {"train_overrides": {"slo": 35}})


def test_resuming_with_a_new_total_records_it_in_the_run_folder(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    run_dir = tmp_path / "longer"
    shutil.copytree(tiny_run, run_dir)
    assert main(["train", "--run-dir", str(run_dir), "--resume", "--timesteps", "1280", "--no-progress"]) == 0
    assert json.loads((run_dir / "args.json").read_text())["timesteps"] == 1280
    assert PPO.load(run_dir / "model.zip", device="cpu").num_timesteps >= 1280
    assert "--resume --timesteps 1280" in (run_dir / "command.txt").read_text().splitlines()[-1]


def test_policy_kwargs_add_to_the_policy_keys() -> None:
    hp = load_hyperparams("paper", overrides={"policy_kwargs": {"ortho_init": False, "net_arch": [8]}})
    kwargs = ppo_kwargs(hp)
    assert kwargs["policy_kwargs"] == {"net_arch": [8], "log_std_init": -2.0, "ortho_init": False}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("default: {n_envs: 4}\npapr: {gamma: 0.9}\n", r"block\(s\) \['papr'\] name no scenario"),
        ("default: {n_envs: 4}\npaper: 5\n", "block 'paper' must be a mapping of hyperparameters, got 5"),
    ],
)
def test_hyperparameter_file_blocks_are_checked(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "hp.yml"
    path.write_text(text)
    with pytest.raises(TrainError, match=message):
        load_hyperparams("paper", path)


def test_folder_of_a_run_stopped_before_its_first_checkpoint_starts_again(tmp_path: Path) -> None:
    run_dir = tmp_path / "stopped"
    (run_dir / "monitor").mkdir(parents=True)
    (run_dir / "monitor" / "train-0.monitor.csv").write_text("")
    (run_dir / "config.json").write_text(json.dumps({"algorithm": "PPO", "scenario": {}, "hyperparams": {}}))
    (run_dir / "args.json").write_text("{}")
    train(tiny_args(run_dir, timesteps=128), progress_bar=False)
    assert (run_dir / "model.zip").is_file()
    assert json.loads((run_dir / "config.json").read_text())["scenario"]["name"] == "paper"


def test_folder_with_a_config_json_of_its_own_is_never_cleared(tmp_path: Path) -> None:
    run_dir = tmp_path / "project"
    (run_dir / "tb").mkdir(parents=True)
    (run_dir / "tb" / "notes.txt").write_text("mine")
    (run_dir / "config.json").write_text('{"my": "important settings"}')
    with pytest.raises(TrainError, match="already exists and is not empty"):
        train(tiny_args(run_dir, timesteps=128), progress_bar=False)
    assert (run_dir / "tb" / "notes.txt").read_text() == "mine"
    assert "important" in (run_dir / "config.json").read_text()


def test_resume_keeps_the_history_of_a_checkpoint_without_copies(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    # A checkpoint written before checkpoints kept copies of the learning curve and best model.
    run_dir = tmp_path / "older"
    shutil.copytree(tiny_run, run_dir)
    state_file = run_dir / "checkpoints" / "state.json"
    state = json.loads(state_file.read_text())
    del state["copies"]
    state_file.write_text(json.dumps(state))
    for name in ("best_model.zip", "evaluations.npz"):
        (run_dir / "checkpoints" / name).unlink()
    with np.load(run_dir / "evaluations.npz") as data:
        before = list(data["timesteps"])
    assert main(["train", "--run-dir", str(run_dir), "--resume", "--timesteps", "1280", "--no-progress"]) == 0
    with np.load(run_dir / "evaluations.npz") as data:
        after = list(data["timesteps"])
    assert after[: len(before)] == before and len(after) > len(before)
    assert (run_dir / "best_model.zip").exists()


def test_resume_may_change_threads_and_checkpoint_interval(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    run_dir = tmp_path / "threads"
    shutil.copytree(tiny_run, run_dir)
    command = ["train", "--run-dir", str(run_dir), "--resume", "--timesteps", "768", "--no-progress"]
    assert main([*command, "--threads", "2", "--checkpoint-interval-s", "30"]) == 0
    saved = json.loads((run_dir / "args.json").read_text())
    assert saved["threads"] == 2 and saved["checkpoint_interval_s"] == 30.0


def test_folder_with_other_files_is_never_cleared(tmp_path: Path) -> None:
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("keep me")
    with pytest.raises(TrainError, match="already exists and is not empty"):
        train(tiny_args(run_dir, timesteps=128), progress_bar=False)
    assert (run_dir / "notes.txt").read_text() == "keep me"


def test_resume_refuses_options_it_would_ignore_and_a_smaller_total(
    tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["train", "--run-dir", str(tiny_run), "--resume", "--no-progress"]
    assert main([*base, "--hp", "learning_rate=1", "--seed", "7", "--set", "capacity_gpus=3"]) == 2
    err = capsys.readouterr().err
    assert "--seed, --hp, --set would be ignored" in err
    assert main([*base, "--timesteps", "64"]) == 2
    assert "the run's checkpoint already has" in capsys.readouterr().err


def test_resume_keeps_the_recorded_hyperparameters(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    run_dir = tmp_path / "recorded"
    shutil.copytree(tiny_run, run_dir)
    args = json.loads((run_dir / "args.json").read_text())
    args["hp_overrides"]["n_envs"] = 8  # what a changed hyperparameter file would now say
    (run_dir / "args.json").write_text(json.dumps(args))
    assert main(["train", "--run-dir", str(run_dir), "--resume", "--timesteps", "1280", "--no-progress"]) == 0
    assert PPO.load(run_dir / "model.zip", device="cpu").n_envs == TINY_HP["n_envs"]


def test_resume_rewinds_validation_done_after_the_checkpoint(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    run_dir = tmp_path / "rewound"
    shutil.copytree(tiny_run, run_dir)
    at_checkpoint = json.loads((run_dir / "checkpoints" / "state.json").read_text())["num_timesteps"]
    with np.load(run_dir / "evaluations.npz") as data:
        saved = {key: data[key] for key in data.files}
    # A validation the killed process ran after its last checkpoint, with a best model of its own.
    late = {
        "timesteps": np.append(saved["timesteps"], at_checkpoint + 64),
        "results": np.vstack([saved["results"], np.full((1, saved["results"].shape[1]), 1e9)]),
        "ep_lengths": np.vstack([saved["ep_lengths"], saved["ep_lengths"][-1:]]),
    }
    np.savez(run_dir / "evaluations.npz", **late)
    (run_dir / "best_model.zip").write_bytes(b"from the discarded stretch")
    assert main(["train", "--run-dir", str(run_dir), "--resume", "--timesteps", "1280", "--no-progress"]) == 0
    with np.load(run_dir / "evaluations.npz") as data:
        steps, results = data["timesteps"], data["results"]
    assert np.all(np.diff(steps) > 0) and results.max() < 1e9
    assert (run_dir / "best_model.zip").read_bytes() != b"from the discarded stretch"
    PPO.load(run_dir / "best_model.zip", device="cpu")


def test_short_run_says_that_no_validation_ran(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    command = ["train", "--run-dir", str(tmp_path / "short"), "--timesteps", "128", "--no-progress"]
    command += ["--set", "episode_length_s=20"]
    for key, value in TINY_HP.items():
        command += ["--hp", f"{key}={json.dumps(value)}"]
    assert main(command) == 0
    out = capsys.readouterr().out
    assert "model.zip, best_model.zip, tb/" in out and "no validation ran" in out


def test_the_training_bar_counts_the_whole_rollouts_ppo_trains() -> None:
    from gpu_alloc_env.train.callbacks import RolloutProgressBar

    assert RolloutProgressBar.steps_to_train(30_000, 4096) == 32_768
    assert RolloutProgressBar.steps_to_train(8192, 4096) == 8192
    assert RolloutProgressBar.steps_to_train(1, 128) == 128
