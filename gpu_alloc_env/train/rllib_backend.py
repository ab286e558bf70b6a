"""Train PPO with RLlib's new API stack into the run folder of ``gpu-alloc train --backend rllib``.

The run trains on the same environments as a Stable-Baselines3 run
(:class:`~gpu_alloc_env.train.policy_env.PolicyVectorEnv`, stepped by RLlib's env runners through
``vector_entry_point``), with the same hyperparameters (``hyperparams.yml``, in Stable-Baselines3's
names, mapped by :func:`ppo_config`), seeds, validation and run folder
(:mod:`gpu_alloc_env.train.run_folder`), so ``gpu-alloc evaluate`` scores both kinds of run on
the same seeds.

What differs from Stable-Baselines3's PPO, by RLlib's design:

* RLlib standardises the advantages over the whole training batch, Stable-Baselines3 per minibatch;
* the networks start from RLlib's initialisation, not Stable-Baselines3's orthogonal one;
* validation runs at the end of a training iteration (a rollout of ``n_envs x n_steps`` decisions)
  once ``eval_freq_steps`` more decisions have been trained, where Stable-Baselines3 validates in
  the middle of a rollout;
* a resumed run continues its environments from fresh seeds, as a resumed Stable-Baselines3 run
  does, and is therefore not the same run as an uninterrupted one.

Stable-Baselines3 settings RLlib has no equivalent for (``target_kl``, ``clip_range_vf``,
``use_sde``, ``normalize_advantage: false``, other ``policy_kwargs``) are refused with their name.

Every training iteration appends a row to ``monitor/train-<segment>.monitor.csv``: the mean return
of the training episodes it finished (NaN if none; the training reward before normalisation, as
Stable-Baselines3's monitor logs it), the decisions it sampled, and the seconds since the segment
started.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import ray
from gymnasium import spaces
from numpy.typing import NDArray
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.tune.registry import register_env

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.errors import TrainError
from gpu_alloc_env.progress import progress_bar
from gpu_alloc_env.seeds import VALIDATION_SEED_BASE, training_seed
from gpu_alloc_env.train.actions import transform_from_hyperparams
from gpu_alloc_env.train.hyperparams import MAPPED_TO_RLLIB, check_rllib_hyperparams
from gpu_alloc_env.train.learned import MODEL_PATHS, has_checkpoint
from gpu_alloc_env.train.policy_env import PolicyVectorEnv, build_policy_env
from gpu_alloc_env.train.rllib_model import GpuAllocPPOModule, greedy_actions
from gpu_alloc_env.train.run_folder import (
    CHECKPOINT_DIR,
    RLLIB_CHECKPOINT_COPIES,
    TrainArgs,
    new_run_settings,
    record_resume,
    record_start,
    resume_settings,
    segment,
    sigterm_as_exit,
    training_lock,
    write_json,
)

TRAIN_ENV_ID = "gpu-alloc-train"
"""The Ray registry id of a run's training environments (their settings travel in ``env_config``)."""
MODELS = MODEL_PATHS["rllib"]
LAST = "last"
"""The resumable ``Algorithm`` checkpoint inside ``checkpoints/``."""
REWARD_STATS = "reward_stats.json"
"""Reward-normalisation statistics per env runner, beside the checkpoint and in the run folder."""


def make_train_env(env_config: Mapping[str, Any]) -> PolicyVectorEnv:
    """RLlib's creator of a run's training environments (``vector_entry_point``: ``num_envs`` given).

    ``env_config`` holds the run's ``scenario`` (as ``ScenarioConfig.to_dict``) and
    ``hyperparams``. The env runner's index, which RLlib's vector entry point leaves out, is set by
    :class:`RunnerIndexCallback` before the first reset.
    """
    config = ScenarioConfig.from_dict(env_config["scenario"])
    return build_policy_env(config, env_config["hyperparams"], int(env_config.get("num_envs", 1)))


class RunnerIndexCallback(RLlibCallback):  # type: ignore[misc]
    """Tells each new training environment which env runner holds it, for its seeds."""

    def on_environment_created(self, *, env_runner: Any, env: Any, env_context: Any, **kwargs: Any) -> None:
        """Set the environment's ``worker_index`` from the runner's context."""
        unwrapped = env.unwrapped
        if isinstance(unwrapped, PolicyVectorEnv):
            unwrapped.worker_index = int(env_context.worker_index or 0)


def ppo_config(
    config: ScenarioConfig, hp: Mapping[str, Any], seed: int | None, env_runners: int = 0
) -> PPOConfig:
    """RLlib's PPO configured as ``hp`` (Stable-Baselines3's names) asks, on ``config``'s environments.

    ``n_envs`` environments are split evenly over the env runners (``env_runners`` 0: the training
    process steps them all, as Stable-Baselines3 does). ``seed`` None seeds the environments from
    fresh entropy. The value loss is not clipped, as in Stable-Baselines3 (``clip_range_vf`` None):
    RLlib's default clip of 10 would hold this environment's value loss at the clip.
    """
    check_rllib_hyperparams(hp, env_runners)
    n_envs, n_steps = int(hp["n_envs"]), int(hp["n_steps"])
    runners = max(env_runners, 1)
    register_env(TRAIN_ENV_ID, make_train_env)  # Algorithm takes a registered id, not a creator
    model_config: dict[str, Any] = {
        "fcnet_hiddens": [int(width) for width in hp.get("net_arch", [64, 64])],
        "fcnet_activation": "tanh",
        "vf_share_layers": False,  # Stable-Baselines3's MlpPolicy: separate policy and value networks
    }
    if isinstance(transform_from_hyperparams(config, dict(hp)).action_space(), spaces.Box):
        # Gaussian policies: a state-independent log standard deviation, as Stable-Baselines3's
        # (categorical ones, the offset action's, have none).
        model_config.update(free_log_std=True, log_std_init=float(hp.get("log_std_init", 0.0)))
    settings = {rllib: hp[sb3] for sb3, rllib in MAPPED_TO_RLLIB.items() if sb3 in hp and sb3 != "n_steps"}
    return (
        PPOConfig()
        .environment(
            TRAIN_ENV_ID,
            env_config={"scenario": config.to_dict(), "hyperparams": dict(hp)},
        )
        .env_runners(
            num_env_runners=env_runners,
            num_envs_per_env_runner=n_envs // runners,
            rollout_fragment_length=n_steps,
            gym_env_vectorize_mode="vector_entry_point",
        )
        .learners(num_learners=0)
        .training(
            train_batch_size_per_learner=n_envs * n_steps,
            grad_clip_by="global_norm",
            use_kl_loss=False,
            vf_clip_param=math.inf,
            **settings,
        )
        .rl_module(rl_module_spec=RLModuleSpec(module_class=GpuAllocPPOModule, model_config=model_config))
        .callbacks(RunnerIndexCallback)
        .debugging(seed=seed)
    )


def validate(
    module: Any, config: ScenarioConfig, hp: Mapping[str, Any]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The deterministic returns and lengths (in decisions) of ``module`` on the validation episodes.

    The episodes are those a Stable-Baselines3 run validates on: ``eval_episodes`` environments
    seeded from :data:`~gpu_alloc_env.seeds.VALIDATION_SEED_BASE`, with the scenario's own reward.
    """
    episodes = int(hp["eval_episodes"])
    env = build_policy_env(config, hp, episodes, training=False)
    obs, _ = env.reset(seed=VALIDATION_SEED_BASE)
    total = np.zeros(episodes)
    length = np.zeros(episodes, dtype=np.int64)
    while True:
        obs, rewards, _, truncated, _ = env.step(greedy_actions(module, obs))
        total += rewards
        length += 1
        if truncated.all():
            return total, length


def _replace_dir(source: Path, target: Path) -> None:
    """Put the folder ``source`` in place of ``target``, never leaving neither."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(source, target)
    shutil.rmtree(old, ignore_errors=True)


def _save_module(algo: Algorithm, target: Path) -> None:
    """Save the algorithm's policy network as an ``RLModule`` checkpoint at ``target``, atomically."""
    partial_dir = target.with_name(target.name + ".partial")
    shutil.rmtree(partial_dir, ignore_errors=True)
    algo.get_module().save_to_path(str(partial_dir.resolve()))
    _replace_dir(partial_dir, target)


def _runner_reward_stats(runner: Any) -> tuple[int, dict[str, float] | None]:
    """(env runner index, its reward-normalisation statistics or None)."""
    env = getattr(runner, "env", None)
    normaliser = getattr(env.unwrapped, "reward_normaliser", None) if env is not None else None
    return int(runner.worker_index or 0), None if normaliser is None else normaliser.state()


def _load_runner_reward_stats(stats: Mapping[str, Mapping[str, float]], runner: Any) -> None:
    """Put back the statistics :func:`_runner_reward_stats` saved for ``runner``'s index."""
    env = getattr(runner, "env", None)
    normaliser = getattr(env.unwrapped, "reward_normaliser", None) if env is not None else None
    saved = stats.get(str(int(runner.worker_index or 0)))
    if normaliser is not None and saved is not None:
        normaliser.load_state(saved)


def _runner_finished_returns(runner: Any) -> list[float]:
    """The returns of the training episodes ``runner``'s environments finished since last asked."""
    env = getattr(runner, "env", None)
    unwrapped = env.unwrapped if env is not None else None
    return unwrapped.take_finished_returns() if isinstance(unwrapped, PolicyVectorEnv) else []


def reward_stats(algo: Algorithm) -> dict[str, dict[str, float]]:
    """Every env runner's reward-normalisation statistics, by runner index (empty without them)."""
    found = algo.env_runner_group.foreach_env_runner(_runner_reward_stats, local_env_runner=True)
    return {str(index): stats for index, stats in found if stats is not None}


@contextmanager
def _ray_session(address: str | None = None) -> Iterator[bool]:
    """Ray for one training: a local cluster started (and shut down) here unless one is running."""
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield started
    finally:
        if started:
            ray.shutdown()


def train(
    args: TrainArgs,
    resume: bool = False,
    progress_bar_on: bool = True,
    command: str = "",
) -> Path:
    """Train (or resume) the RLlib run ``args`` describes; returns the run folder.

    Inside a running Ray session (a Tune trial) it uses that session; otherwise it starts a local
    one for the run and shuts it down however the run ends (SIGTERM included).
    """
    args.validate()
    run_dir = Path(args.run_dir)
    checkpoint = run_dir / CHECKPOINT_DIR / LAST
    if resume and not has_checkpoint(run_dir):
        raise TrainError(
            f"--resume: {run_dir} holds no whole checkpoint ({checkpoint} and its state.json); start the run "
            "again without --resume"
        )
    with training_lock(run_dir):
        return _train_locked(args, resume, progress_bar_on, command)


def _train_locked(args: TrainArgs, resume: bool, progress_bar_on: bool, command: str) -> Path:
    """:func:`train`, with the run folder locked to this process."""
    import torch

    run_dir = Path(args.run_dir)
    folder = run_dir / CHECKPOINT_DIR
    if resume:
        config, hp = resume_settings(args)
        record_resume(args, command)
    else:
        config, hp = new_run_settings(args)
        check_rllib_hyperparams(hp, args.env_runners)
        run_dir.mkdir(parents=True, exist_ok=True)
        record_start(args, config, hp, command, backend="rllib")
    torch.set_num_threads(args.threads)
    (run_dir / "monitor").mkdir(exist_ok=True)
    monitor = run_dir / "monitor" / f"train-{segment(run_dir)}.monitor.csv"
    monitor.write_text('#{"backend": "rllib", "rows": "one per training iteration"}\nr,l,t\n')
    # SIGTERM ends the run through its cleanup (the algorithm stopped, Ray shut down); the handler
    # goes in after ray.init, which installs its own.
    with _ray_session(), sigterm_as_exit():
        check_cpus(args.env_runners)
        # A resumed run restores its networks, optimiser and step counts into a fresh algorithm
        # whose environments start from fresh seeds (None), as a resumed Stable-Baselines3 run's do.
        algo = ppo_config(
            config, hp, None if resume else training_seed(args.seed), args.env_runners
        ).build_algo()
        try:
            if resume:
                algo.restore_from_path(str(checkpoint_path(run_dir).resolve()))
                stats_file = folder / REWARD_STATS
                if stats_file.exists():
                    stats = json.loads(stats_file.read_text())
                    algo.env_runner_group.foreach_env_runner(
                        partial(_load_runner_reward_stats, stats), local_env_runner=True
                    )
            _iterate(algo, args, config, hp, monitor, progress_bar_on)
        finally:
            algo.stop()
    return run_dir


def check_cpus(env_runners: int) -> None:
    """Refuse more env runners than the Ray cluster has CPUs: each holds one, the others would wait."""
    cpus = float(ray.cluster_resources().get("CPU", 0.0))
    if env_runners > cpus:
        raise TrainError(
            f"--env-runners {env_runners} asks for {env_runners} CPUs (one per runner) and the Ray cluster "
            f"has {cpus:g}; use at most {int(cpus)} (0 steps the environments in the training process)"
        )


def checkpoint_path(run_dir: Path) -> Path:
    """The resumable checkpoint of an RLlib run (an ``Algorithm`` folder)."""
    return Path(run_dir) / CHECKPOINT_DIR / LAST


def _steps(algo: Algorithm) -> int:
    """Decisions sampled over the run's life (all segments)."""
    return int(algo.metrics.peek(("env_runners", "num_env_steps_sampled_lifetime"), default=0) or 0)


def _iterate(
    algo: Algorithm,
    args: TrainArgs,
    config: ScenarioConfig,
    hp: Mapping[str, Any],
    monitor: Path,
    progress_bar_on: bool,
) -> None:
    """Train until ``args.timesteps``, validating, checkpointing and logging as the module says."""
    run_dir = Path(args.run_dir)
    log = run_dir / "evaluations.npz"
    curve: dict[str, list[Any]] = {"timesteps": [], "results": [], "ep_lengths": []}
    if log.exists():
        with np.load(log) as data:
            curve = {key: list(data[key]) for key in curve}
    best = max((float(np.mean(r)) for r in curve["results"]), default=-math.inf)
    eval_freq = int(hp["eval_freq_steps"])
    start = last_checkpoint = time.monotonic()
    steps = _steps(algo)
    rollout = int(hp["n_envs"]) * int(hp["n_steps"])
    bar = progress_bar(
        max(-(-(args.timesteps - steps) // rollout) * rollout, 0),
        "training",
        "step",
        None if progress_bar_on else False,
    )
    try:
        while steps < args.timesteps:
            algo.train()
            before, steps = steps, _steps(algo)
            bar.update(steps - before)
            finished = algo.env_runner_group.foreach_env_runner(
                _runner_finished_returns, local_env_runner=True
            )
            trained = [value for runner in finished for value in runner]
            episode_return = float(np.mean(trained)) if trained else math.nan
            with monitor.open("a") as handle:
                handle.write(f"{episode_return},{steps - before},{time.monotonic() - start:.3f}\n")
            if steps // eval_freq > before // eval_freq:
                returns, lengths = validate(algo.get_module(), config, hp)
                curve["timesteps"].append(steps)
                curve["results"].append(returns)
                curve["ep_lengths"].append(lengths)
                np.savez(
                    log,
                    timesteps=np.asarray(curve["timesteps"]),
                    results=np.asarray(curve["results"]),
                    ep_lengths=np.asarray(curve["ep_lengths"]),
                )
                if returns.mean() > best:
                    best = float(returns.mean())
                    _save_module(algo, run_dir / MODELS["best"])
            if time.monotonic() - last_checkpoint >= args.checkpoint_interval_s:
                save_checkpoint(algo, run_dir, steps)
                last_checkpoint = time.monotonic()
    finally:
        bar.close()
    _save_module(algo, run_dir / MODELS["final"])
    if not (run_dir / MODELS["best"]).exists():
        shutil.copytree(run_dir / MODELS["final"], run_dir / MODELS["best"])
    stats = reward_stats(algo)
    if stats:
        write_json(run_dir / REWARD_STATS, stats)
    save_checkpoint(algo, run_dir, steps)


def save_checkpoint(algo: Algorithm, run_dir: Path, steps: int) -> None:
    """Write ``checkpoints/last`` (swapped in whole), reward statistics, copies, then ``state.json``.

    ``state.json`` comes last and marks the checkpoint whole: a run killed while writing its first
    one is started afresh (:func:`~gpu_alloc_env.train.learned.has_checkpoint`); one killed while
    writing a later one resumes the new algorithm state with the previous step count and learning
    curve, which only leaves a gap in the curve.
    """
    folder = run_dir / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    partial_dir = folder / f"{LAST}.partial"
    shutil.rmtree(partial_dir, ignore_errors=True)
    algo.save_to_path(str(partial_dir.resolve()))
    _replace_dir(partial_dir, folder / LAST)
    stats = reward_stats(algo)
    if stats:
        write_json(folder / f"{REWARD_STATS}.partial", stats)
        os.replace(folder / f"{REWARD_STATS}.partial", folder / REWARD_STATS)
    copies = []
    for name in RLLIB_CHECKPOINT_COPIES:
        current, saved = run_dir / name, folder / name
        partial_copy = folder / f"{name}.partial"
        shutil.rmtree(partial_copy, ignore_errors=True)
        if current.is_dir():
            shutil.copytree(current, partial_copy)
            _replace_dir(partial_copy, saved)
        elif current.exists():
            shutil.copyfile(current, partial_copy)
            os.replace(partial_copy, saved)
        else:
            if saved.is_dir():
                shutil.rmtree(saved)
            saved.unlink(missing_ok=True)
            continue
        copies.append(name)
    state = {"num_timesteps": steps, "saved_unix_s": time.time(), "copies": copies}
    (folder / "state.json").write_text(json.dumps(state) + "\n")
