"""Train a PPO allocator with Stable-Baselines3: ``gpu-alloc train``.

:func:`train` builds the batched environments of a run (:mod:`gpu_alloc_env.train.vec_env`), with
the hyperparameters of :mod:`gpu_alloc_env.train.hyperparams`, trains or resumes the model with the
callbacks of :mod:`gpu_alloc_env.train.callbacks`, and writes the run folder that
:mod:`gpu_alloc_env.train.run_folder` describes.

Seeds (:mod:`gpu_alloc_env.seeds`): training environment ``e`` of a run with seed ``K`` starts from
seed ``1000 K + e`` and its generator continues across episodes; validation uses seeds from
:data:`~gpu_alloc_env.seeds.VALIDATION_SEED_BASE`; ``gpu-alloc evaluate`` uses seeds from
:data:`~gpu_alloc_env.seeds.EVALUATION_SEED_BASE`, which no training or validation episode uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.errors import TrainError
from gpu_alloc_env.seeds import VALIDATION_SEED_BASE, training_seed
from gpu_alloc_env.train.callbacks import CheckpointCallback, RolloutProgressBar, ValidationCallback
from gpu_alloc_env.train.hyperparams import ppo_kwargs
from gpu_alloc_env.train.learned import has_checkpoint
from gpu_alloc_env.train.run_folder import (
    CHECKPOINT_DIR,
    TrainArgs,
    command_line,
    new_run_settings,
    record_resume,
    record_start,
    resume_settings,
    segment,
    training_lock,
)
from gpu_alloc_env.train.stepper import env_settings
from gpu_alloc_env.train.vec_env import BatchVecEnv


def build_env(
    config: ScenarioConfig,
    hp: Mapping[str, Any],
    num_envs: int,
    monitor_file: Path | None,
    training: bool = True,
) -> VecEnv:
    """The batched environment of a run, monitored, with reward normalisation if configured.

    ``config`` is the run's scenario. Training environments (``training``) step it with the
    shaping of :func:`~gpu_alloc_env.train.hyperparams.training_config` and, with
    ``reward_baseline``, the paired reward; validation environments step it as it is, with its own
    reward, unnormalised. The action transform and the baseline always come from ``config``
    itself, as an evaluation rebuilds them (:func:`~gpu_alloc_env.train.stepper.env_settings`,
    which :func:`~gpu_alloc_env.train.policy_env.build_policy_env` shares).
    """
    settings = env_settings(config, hp, training)
    env: VecEnv = VecMonitor(
        BatchVecEnv(
            settings.scenario,
            num_envs,
            settings.transform,
            reward_baseline=settings.reward_baseline,
            action_repeat=settings.action_repeat,
            frame_stack=settings.frame_stack,
        ),
        filename=str(monitor_file) if monitor_file else None,
    )
    if training and hp.get("normalize_reward", False):
        env = VecNormalize(env, norm_obs=False, norm_reward=True, gamma=float(hp.get("gamma", 0.99)))
    return env


def train(
    args: TrainArgs,
    resume: bool = False,
    progress_bar: bool = True,
    verbose: int = 0,
    command: str | None = None,
) -> Path:
    """Train (or resume) the run ``args`` describes; returns the run folder.

    ``command`` is the command line recorded in ``command.txt`` (default: this process's).
    """
    command = command or command_line()
    args.validate()
    run_dir = Path(args.run_dir)
    checkpoint = run_dir / CHECKPOINT_DIR / "last.zip"
    if resume and not has_checkpoint(run_dir):
        raise TrainError(
            f"--resume: {run_dir} holds no whole checkpoint ({checkpoint} and its state.json); start the run "
            "again without --resume"
        )
    with training_lock(run_dir):
        return _train_locked(args, resume, progress_bar, verbose, command)


def _train_locked(args: TrainArgs, resume: bool, progress_bar: bool, verbose: int, command: str) -> Path:
    """:func:`train`, with the run folder locked to this process."""
    import torch

    run_dir = Path(args.run_dir)
    config, hp = resume_settings(args) if resume else new_run_settings(args)
    torch.set_num_threads(args.threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "monitor").mkdir(exist_ok=True)
    monitor_file = run_dir / "monitor" / f"train-{segment(run_dir)}"
    env = build_env(config, hp, int(hp["n_envs"]), monitor_file)
    eval_env = build_env(config, hp, int(hp["eval_episodes"]), None, training=False)
    if isinstance(env, VecNormalize):
        eval_env = VecNormalize(eval_env, training=False, norm_obs=False, norm_reward=False)

    if resume:
        stats = run_dir / CHECKPOINT_DIR / "vecnormalize.pkl"
        if isinstance(env, VecNormalize) and stats.exists():
            env = VecNormalize.load(str(stats), env.venv)
            env.training = True
        model = PPO.load(run_dir / CHECKPOINT_DIR / "last.zip", env=env, device="cpu")
        remaining = args.timesteps - model.num_timesteps
        record_resume(args, command)
    else:
        record_start(args, config, hp, command)
        env.seed(training_seed(args.seed))
        model = PPO(
            "MlpPolicy",
            env,
            seed=args.seed,
            device="cpu",
            verbose=verbose,
            tensorboard_log=str(run_dir / "tb"),
            **ppo_kwargs(hp),
        )
        remaining = args.timesteps

    checkpoints = CheckpointCallback(run_dir, args.checkpoint_interval_s)
    validation = ValidationCallback(
        eval_env,
        VALIDATION_SEED_BASE,
        n_eval_episodes=int(hp["eval_episodes"]),
        eval_freq=max(int(hp["eval_freq_steps"]) // int(hp["n_envs"]), 1),
        best_model_save_path=str(run_dir),
        log_path=str(run_dir),
        deterministic=True,
        verbose=verbose,
    )
    validation.restore(run_dir / "evaluations.npz")
    if remaining > 0:
        callbacks: list[BaseCallback] = [checkpoints, validation]
        if progress_bar:
            callbacks.append(RolloutProgressBar())
        model.learn(
            total_timesteps=remaining,
            callback=CallbackList(callbacks),
            reset_num_timesteps=not resume,
            tb_log_name="PPO",
        )
    model.save(run_dir / "model.zip")
    if isinstance(env, VecNormalize):
        env.save(str(run_dir / "vecnormalize.pkl"))
    if not (run_dir / "best_model.zip").exists():
        model.save(run_dir / "best_model.zip")
    checkpoints.init_callback(model)
    checkpoints.save()
    return run_dir
