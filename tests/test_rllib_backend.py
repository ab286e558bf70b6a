"""``gpu-alloc train --backend rllib``: the run folder, its evaluation, resume after SIGTERM, and the
errors without Ray. Tests marked ``ray`` need the ``ray`` extra and skip without it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ray_processes import MARKER, ray_pids

from gpu_alloc_env.errors import TrainError
from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.train.cli import main
from gpu_alloc_env.train.hyperparams import load_hyperparams
from gpu_alloc_env.train.learned import LearnedPolicy, run_backend
from gpu_alloc_env.train.run_folder import TrainArgs, never_checkpointed, rewind_to_checkpoint, write_json

RAY_REASON = "needs the ray extra: pip install -e '.[train,ray]'"
TINY = [
    "--scenario", "paper", "--set", "episode_length_s=32",
    "--hp", "n_envs=4", "--hp", "n_steps=64", "--hp", "batch_size=128", "--hp", "n_epochs=2",
    "--hp", "eval_freq_steps=256", "--hp", "eval_episodes=2",
]  # fmt: skip
"""A run of 32-decision episodes and 256-decision iterations, validated every iteration."""
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}


def _block_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import ray`` fail here as it does without the extra (the backend modules reloaded)."""
    monkeypatch.setitem(sys.modules, "ray", None)
    for name in ("gpu_alloc_env.train.rllib_backend", "gpu_alloc_env.train.rllib_model"):
        monkeypatch.delitem(sys.modules, name, raising=False)


def _fake_rllib_run(run: Path) -> None:
    """A run folder as an RLlib run writes it, with an empty model folder."""
    run.mkdir()
    write_json(
        run / "config.json",
        {
            "scenario": make_scenario("paper").to_dict(),
            "hyperparams": load_hyperparams("paper"),
            "algorithm": "PPO",
            "backend": "rllib",
        },
    )
    (run / "best_model").mkdir()


def test_train_with_rllib_without_ray_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _block_ray(monkeypatch)
    status = main(["train", "--backend", "rllib", "--timesteps", "10", "--run-dir", str(tmp_path / "run")])
    assert status == 2
    err = capsys.readouterr().err
    assert "needs the ray extra" in err and "pip install -e '.[train,ray]'" in err
    assert not (tmp_path / "run").exists()


def test_an_rllib_run_without_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_rllib_run(tmp_path / "run")
    assert run_backend(tmp_path / "run") == "rllib"
    _block_ray(monkeypatch)
    with pytest.raises(ValueError, match=r"trained with RLlib .*pip install -e '\.\[train,ray\]'"):
        LearnedPolicy(tmp_path / "run")


def test_an_unknown_backend_is_refused_by_name(tmp_path: Path) -> None:
    _fake_rllib_run(tmp_path / "run")
    data = json.loads((tmp_path / "run" / "config.json").read_text())
    write_json(tmp_path / "run" / "config.json", {**data, "backend": "jax"})
    with pytest.raises(ValueError, match="names the backend 'jax'"):
        run_backend(tmp_path / "run")


def test_train_arguments_check_the_backend_and_env_runners() -> None:
    base = {"scenario": "paper", "seed": 0, "timesteps": 10, "run_dir": "x"}
    with pytest.raises(TrainError, match="--backend must be one of"):
        TrainArgs(**base, backend="jax").validate()
    with pytest.raises(TrainError, match="--env-runners 2 applies to --backend rllib"):
        TrainArgs(**base, env_runners=2).validate()
    with pytest.raises(TrainError, match="--env-runners must be an integer >= 0"):
        TrainArgs(**base, backend="rllib", env_runners=-1).validate()
    TrainArgs(**base, backend="rllib", env_runners=2).validate()


def test_resume_refuses_a_new_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["train", "--run-dir", str(tmp_path), "--resume", "--backend", "rllib"])
    assert status == 2
    assert "--backend would be ignored" in capsys.readouterr().err


def test_a_resume_rewinds_an_rllib_runs_best_model_folder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints" / "best_model").mkdir(parents=True)
    (run / "checkpoints" / "best_model" / "weights").write_text("at the checkpoint")
    (run / "best_model").mkdir()
    (run / "best_model" / "weights").write_text("after the checkpoint")
    (run / "best_model" / "extra").write_text("after the checkpoint")
    rewind_to_checkpoint(run, {"num_timesteps": 10, "copies": ["best_model"]})
    assert sorted(p.name for p in (run / "best_model").iterdir()) == ["weights"]
    assert (run / "best_model" / "weights").read_text() == "at the checkpoint"
    rewind_to_checkpoint(run, {"num_timesteps": 10, "copies": []})  # none saved yet: none kept
    assert not (run / "best_model").exists()


# ------------------------------------------------------------------------------------- with Ray
def _train(run: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gpu_alloc_env.train", "train", "--run-dir", str(run), "--no-progress"]
    return subprocess.run([*command, *extra], capture_output=True, text=True, env=ENV, check=False)


@pytest.fixture(scope="module")
def rllib_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("ray.rllib", reason=RAY_REASON)
    run = tmp_path_factory.mktemp("rllib") / "run"
    done = _train(run, "--backend", "rllib", "--seed", "3", "--timesteps", "512", *TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "model/, best_model/, evaluations.npz" in done.stdout
    return run


@pytest.mark.ray
@pytest.mark.slow
def test_an_rllib_run_writes_the_run_folder(rllib_run: Path) -> None:
    config = json.loads((rllib_run / "config.json").read_text())
    assert config["backend"] == "rllib" and config["algorithm"] == "PPO"
    assert config["scenario"]["episode_length_s"] == 32.0 and config["hyperparams"]["n_envs"] == 4
    args = json.loads((rllib_run / "args.json").read_text())
    assert args["backend"] == "rllib" and args["seed"] == 3 and args["env_runners"] == 0
    for folder in ("model", "best_model", "checkpoints/last", "checkpoints/best_model"):
        assert (rllib_run / folder).is_dir(), folder
    assert json.loads((rllib_run / "checkpoints" / "state.json").read_text())["num_timesteps"] == 512
    with np.load(rllib_run / "evaluations.npz") as curve:
        assert curve["timesteps"].tolist() == [256, 512]
        assert curve["results"].shape == (2, 2) and curve["ep_lengths"].tolist() == [[32, 32], [32, 32]]
    rows = (rllib_run / "monitor" / "train-0.monitor.csv").read_text().splitlines()[2:]
    assert [row.split(",")[1] for row in rows] == ["256", "256"]  # one row per iteration
    assert all(-1e4 < float(row.split(",")[0]) < 0 for row in rows)  # 8 episodes each, unnormalised
    stats = json.loads((rllib_run / "reward_stats.json").read_text())  # paper normalises rewards
    assert list(stats) == ["0"] and stats["0"]["gamma"] == 0.99 and stats["0"]["count"] > 100


@pytest.mark.ray
@pytest.mark.slow
def test_evaluate_scores_an_rllib_run_beside_the_baselines(rllib_run: Path, tmp_path: Path) -> None:
    from gpu_alloc_env.train.evaluate import run_evaluate
    from gpu_alloc_env.train.rllib_model import greedy_actions

    text = run_evaluate([rllib_run], ["adaptive", "static"], episodes=2, out_dir=tmp_path, plots=False)
    rows = (tmp_path / "episodes.csv").read_text().splitlines()
    policies = [row.split(",")[0] for row in rows[1:]]
    assert policies.count("ppo-rllib") == policies.count("adaptive") == 2
    assert "| ppo-rllib | 1 |" in text and "## ppo-rllib against the adaptive heuristic" in text
    assert "`best_model/`, `--model best`" in text
    # The policy acts with the module's mode, held and transformed as the run trained.
    policy = LearnedPolicy(rllib_run)
    assert policy.policy_name == "ppo-rllib" and policy.train_seed == 3
    obs = np.random.default_rng(0).uniform(0.0, 1.0, (5, policy.layout.size)).astype(np.float32)
    replicas, _ = policy.predict(obs)
    expected = policy.transform.to_replicas(greedy_actions(policy.model.module, obs), obs)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(replicas, expected.astype(np.float32))


@pytest.mark.ray
@pytest.mark.slow
def test_an_rllib_run_stopped_by_sigterm_shuts_ray_down_and_resumes(tmp_path: Path) -> None:
    pytest.importorskip("ray.rllib", reason=RAY_REASON)
    run = tmp_path / "run"
    marked = {**ENV, MARKER: str(tmp_path)}
    command = [sys.executable, "-m", "gpu_alloc_env.train", "train", "--run-dir", str(run), "--no-progress"]
    flags = ["--backend", "rllib", "--timesteps", "100000", "--checkpoint-interval-s", "0", *TINY]
    process = subprocess.Popen(
        [*command, *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=marked
    )
    state = run / "checkpoints" / "state.json"
    deadline = time.monotonic() + 240
    while not (state.exists() and json.loads(state.read_text())["num_timesteps"] >= 768):
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no checkpoint of 768 steps within 240 s"
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err[-3000:]
    # The run shut its Ray cluster down: none of its processes outlive it.
    deadline = time.monotonic() + 30
    while ray_pids(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = ray_pids(str(tmp_path))
    for pid in left:  # (never leave them behind, even when the test fails)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"Ray processes outlived the run: {sorted(left)}"

    stopped_at = json.loads(state.read_text())["num_timesteps"]
    total = stopped_at + 512
    done = _train(run, "--resume", "--timesteps", str(total))
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(state.read_text())["num_timesteps"] == total
    with np.load(run / "evaluations.npz") as curve:
        steps = curve["timesteps"].tolist()
    assert steps == list(range(256, total + 1, 256))  # every validation once, none lost or repeated
    assert len((run / "command.txt").read_text().splitlines()) == 2
    assert sorted(p.name for p in (run / "monitor").iterdir()) == [
        "train-0.monitor.csv",
        "train-1.monitor.csv",
    ]


def test_experiment_trains_and_reuses_only_runs_of_its_backend(tmp_path: Path) -> None:
    from gpu_alloc_env.train.experiment import check_reusable, run_settings, train_command

    assert train_command("paper", 1, 100, tmp_path / "new", [], {}, "rllib")[-2:] == ["--backend", "rllib"]
    assert "--backend" not in train_command("paper", 1, 100, tmp_path / "new", [], {})
    run = tmp_path / "run"  # a Stable-Baselines3 run with a checkpoint: its config.json names no backend
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.zip").write_bytes(b"")
    (run / "checkpoints" / "state.json").write_text('{"num_timesteps": 8}')
    settings = run_settings("paper", [], {})
    write_json(
        run / "config.json", {**{k: v for k, v in settings.items() if k != "backend"}, "algorithm": "PPO"}
    )
    check_reusable(run, settings)
    with pytest.raises(ValueError, match=r"\(backend differs\)"):
        check_reusable(run, run_settings("paper", [], {}, "rllib"))


@pytest.mark.ray
@pytest.mark.slow
def test_a_categorical_frame_stacked_rllib_run_trains_and_acts(tmp_path: Path) -> None:
    pytest.importorskip("ray.rllib", reason=RAY_REASON)
    run = tmp_path / "run"
    flags = ["--scenario", "bursty", "--set", "episode_length_s=32", "--hp", "action_repeat=2"]
    flags += ["--hp", "offset_base=[2, 1, 2, 1]"]  # (the tuned constant is for 600 s episodes)
    flags += ["--hp", "frame_stack=2", "--hp", "n_envs=4", "--hp", "n_steps=32", "--hp", "batch_size=64"]
    flags += ["--hp", "eval_freq_steps=128", "--hp", "eval_episodes=2"]
    done = _train(run, "--backend", "rllib", "--timesteps", "256", *flags)
    assert done.returncode == 0, done.stderr[-3000:]
    policy = LearnedPolicy(run)  # the offset action: one categorical per agent, no log std
    assert policy.transform.action_space().__class__.__name__ == "MultiDiscrete"
    from gpu_alloc_env.vector import GpuAllocVectorEnv

    env = GpuAllocVectorEnv(2, policy.config)
    obs, _ = env.reset(seed=[1, 2])
    state, start = None, np.ones(2, dtype=bool)
    for _ in range(4):
        replicas, state = policy.predict(obs, state=state, episode_start=start)
        assert replicas.shape == (2, 4) and np.array_equal(replicas, np.round(replicas))
        obs, *_ = env.step(replicas)
        start = np.zeros(2, dtype=bool)
    assert state is not None and len(state) == 3  # held actions, steps left, the stacked history


def test_rllib_settings_are_refused_by_name_before_ray_starts() -> None:
    from gpu_alloc_env.train.hyperparams import check_rllib_hyperparams

    hp = load_hyperparams("paper")
    check_rllib_hyperparams(hp)
    with pytest.raises(TrainError, match=r"batch_size <= n_envs x n_steps \(one rollout, 8 x 64 = 512\)"):
        check_rllib_hyperparams({**hp, "n_envs": 8, "n_steps": 64})
    with pytest.raises(TrainError, match="n_envs=32 environments do not split evenly over --env-runners 3"):
        check_rllib_hyperparams(hp, env_runners=3)
    with pytest.raises(TrainError, match=r"cannot follow target_kl=0\.01"):
        check_rllib_hyperparams({**hp, "target_kl": 0.01})


def test_a_checkpoint_without_its_state_is_no_checkpoint(tmp_path: Path) -> None:
    from gpu_alloc_env.train.learned import has_checkpoint

    _fake_rllib_run(tmp_path / "run")
    (tmp_path / "run" / "checkpoints" / "last").mkdir(parents=True)  # killed before state.json
    assert not has_checkpoint(tmp_path / "run") and never_checkpointed(tmp_path / "run")
    (tmp_path / "run" / "checkpoints" / "state.json").write_text('{"num_timesteps": 8}')
    assert has_checkpoint(tmp_path / "run") and not never_checkpointed(tmp_path / "run")


def test_resume_refuses_new_env_runners(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--run-dir", str(tmp_path), "--resume", "--env-runners", "2"]) == 2
    assert "--env-runners would be ignored" in capsys.readouterr().err
