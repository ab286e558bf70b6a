"""PPO hyperparameters: the bundled table, overrides from the command line, and their checks.

``hyperparams.yml`` holds a ``default`` block and blocks for tuned scenarios; a run takes the
scenario's block over ``default``, then ``--hp`` overrides. Environment keys (:data:`ENV_KEYS`) and
policy keys (:data:`POLICY_KEYS`) are the command's own; every other key is a
``stable_baselines3.PPO`` argument. Every value is checked by kind before training starts.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from stable_baselines3 import PPO

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.errors import TrainError
from gpu_alloc_env.scenarios import SCENARIOS
from gpu_alloc_env.train.actions import BASELINES

ENV_KEYS = (
    "n_envs",
    "action",
    "residual_scale",
    "residual_base",
    "max_need_factor",
    "min_offset",
    "max_offset",
    "offset_base",
    "normalize_reward",
    "reward_baseline",
    "action_repeat",
    "frame_stack",
    "eval_freq_steps",
    "eval_episodes",
    "train_reward",
    "train_overrides",
)
POLICY_KEYS = ("net_arch", "log_std_init")


def default_hyperparams_path() -> Path:
    """The bundled ``gpu_alloc_env/train/hyperparams.yml``."""
    return Path(str(resources.files("gpu_alloc_env.train").joinpath("hyperparams.yml")))


def load_hyperparams(
    scenario: str, path: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``default`` merged with the block of ``scenario`` (if any), then ``overrides``."""
    source = path or default_hyperparams_path()
    try:
        table = yaml.safe_load(Path(source).read_text())
    except FileNotFoundError as exc:
        raise TrainError(f"hyperparameter file {source} does not exist; pass an existing YAML file") from exc
    except yaml.YAMLError as exc:
        raise TrainError(f"hyperparameter file {source} is not valid YAML: {exc}") from exc
    if not isinstance(table, dict) or not isinstance(table.get("default"), dict):
        raise TrainError(f"hyperparameter file {source} needs a mapping with a 'default' block")
    unknown = sorted(str(name) for name in table if name != "default" and name not in SCENARIOS)
    if unknown:
        raise TrainError(
            f"hyperparameter file {source}: block(s) {unknown} name no scenario, so they would never "
            f"be used; name a block 'default' or one of {sorted(SCENARIOS)}"
        )
    for name, block in table.items():
        if block is not None and not isinstance(block, dict):
            raise TrainError(
                f"hyperparameter file {source}: block {name!r} must be a mapping of hyperparameters, "
                f"got {block!r}"
            )
    resolved = dict(table["default"])
    resolved.update(table.get(scenario) or {})
    resolved.update(overrides or {})
    resolved = {key: _number_if_numeric(value) for key, value in resolved.items()}
    _check_hyperparams(resolved, source)
    for key, action in (
        ("residual_scale", "residual"),
        ("residual_base", "residual"),
        ("max_need_factor", "need_scale"),
        ("min_offset", "offset"),
        ("max_offset", "offset"),
        ("offset_base", "offset"),
    ):
        if key in (overrides or {}) and resolved.get("action") != action:
            raise TrainError(
                f"--hp {key} applies to action={action}, but the run's action is "
                f"{resolved.get('action')!r}; add --hp action={action} or drop {key}"
            )
    return resolved


RESERVED_KEYS = {
    "seed": "--seed",
    "verbose": "the command (it is quiet)",
    "device": "the command (it trains on the CPU)",
    "tensorboard_log": "the run folder (tb/)",
    "_init_setup_model": "Stable-Baselines3",
}
"""PPO arguments that ``gpu-alloc train`` sets itself, and what sets them."""
_POSITIVE_INTS = (
    "n_envs",
    "action_repeat",
    "frame_stack",
    "eval_freq_steps",
    "eval_episodes",
    "n_steps",
    "batch_size",
    "n_epochs",
)
_POSITIVE = ("learning_rate", "clip_range", "max_grad_norm", "max_need_factor", "residual_scale")
_NON_NEGATIVE = ("ent_coef", "vf_coef")
_UNIT = ("gamma", "gae_lambda")
_OPTIONAL_POSITIVE = ("clip_range_vf", "target_kl")
_BOOLS = ("normalize_reward", "normalize_advantage", "use_sde")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def _check_hyperparams(hp: Mapping[str, Any], source: Path | str) -> None:
    accepted = set(inspect.signature(PPO.__init__).parameters) - {"self", "policy", "env"}
    reserved = sorted(set(hp) & set(RESERVED_KEYS))
    if reserved:
        raise TrainError(
            f"hyperparameter(s) {reserved} (from {source} or --hp) are set by "
            f"{', '.join(RESERVED_KEYS[key] for key in reserved)}; remove them"
        )
    unknown = sorted(set(hp) - accepted - set(ENV_KEYS) - set(POLICY_KEYS))
    if unknown:
        raise TrainError(
            f"unknown hyperparameter(s) {unknown} (from {source} or --hp); valid keys are the "
            f"environment keys {list(ENV_KEYS)}, the policy keys {list(POLICY_KEYS)} and "
            "stable_baselines3.PPO's arguments"
        )

    def refuse(key: str, rule: str) -> TrainError:
        return TrainError(f"hyperparameter {key} must be {rule}, got {hp[key]!r} (from {source} or --hp)")

    for key in _POSITIVE_INTS:
        if key in hp and (not isinstance(hp[key], int) or isinstance(hp[key], bool) or hp[key] < 1):
            raise refuse(key, "a positive integer")
    for key in _POSITIVE:
        if key in hp and not callable(hp[key]) and not (_is_number(hp[key]) and hp[key] > 0):
            raise refuse(key, "a positive number, for example 3.0e-4")
    for key in _NON_NEGATIVE:
        if key in hp and not (_is_number(hp[key]) and hp[key] >= 0):
            raise refuse(key, "a number >= 0")
    for key in _UNIT:
        if key in hp and not (_is_number(hp[key]) and 0 < hp[key] <= 1):
            raise refuse(key, "a number in (0, 1], for example 0.99")
    for key in _OPTIONAL_POSITIVE:
        if hp.get(key) is not None and not (_is_number(hp[key]) and hp[key] > 0):
            raise refuse(key, "a positive number or null")
    for key in _BOOLS:
        if key in hp and not isinstance(hp[key], bool):
            raise refuse(key, "true or false")
    if "log_std_init" in hp and not _is_number(hp["log_std_init"]):
        raise refuse("log_std_init", "a number, for example -2.0")
    arch = hp.get("net_arch")
    if arch is not None and not (
        isinstance(arch, list) and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in arch)
    ):
        raise refuse("net_arch", "a list of positive layer sizes, for example [64, 64]")
    if hp.get("policy_kwargs") is not None and not isinstance(hp["policy_kwargs"], dict):
        raise refuse("policy_kwargs", "a mapping of Stable-Baselines3 policy arguments")
    for key, sign in (("min_offset", -1), ("max_offset", 1)):
        value = hp.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or sign * value < 0):
            raise refuse(key, "an int <= 0" if sign < 0 else "an int >= 0")
    base = hp.get("offset_base")
    if base is not None and not (isinstance(base, list) and all(_is_number(v) and v >= 0 for v in base)):
        raise refuse("offset_base", "a list of replicas per agent, for example [3, 2, 3, 2]")
    if hp.get("reward_baseline") is not None and hp["reward_baseline"] not in BASELINES:
        raise refuse("reward_baseline", f"{', '.join(BASELINES)} or null")
    for key in ("train_reward", "train_overrides"):
        if hp.get(key) is not None and not isinstance(hp[key], dict):
            raise refuse(key, "a mapping of fields")


def training_config(config: ScenarioConfig, hp: Mapping[str, Any]) -> ScenarioConfig:
    """The scenario of the training environments: ``config`` with the shaping of ``hp`` applied.

    ``train_overrides`` (scenario fields, e.g. a tighter ``task_slo_s``) and ``train_reward``
    (reward weights) change what the policy is trained on; validation and evaluation keep
    ``config``.
    """
    overrides = dict(hp.get("train_overrides") or {})
    if hp.get("train_reward"):
        overrides["reward"] = dict(hp["train_reward"])
    return config.replace(**overrides) if overrides else config


def ppo_kwargs(hp: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of ``stable_baselines3.PPO`` among the hyperparameters."""
    kwargs = {k: v for k, v in hp.items() if k not in ENV_KEYS and k not in POLICY_KEYS}
    # policy_kwargs, when given, adds to (and overrides) the policy keys.
    policy = {**{k: hp[k] for k in POLICY_KEYS if k in hp}, **(hp.get("policy_kwargs") or {})}
    if policy:
        kwargs["policy_kwargs"] = policy
    return kwargs


def _number_if_numeric(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; read such a string as the number it spells."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_hp_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs with YAML values (``--hp learning_rate=1e-4 --hp net_arch=[128,128]``)."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise TrainError(f"--hp {item!r} is not KEY=VALUE; write for example --hp learning_rate=1e-4")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise TrainError(f"--hp {item!r}: the value is not valid YAML ({exc})") from exc
        overrides[key] = _number_if_numeric(value)
    return overrides


RLLIB_SB3_DEFAULTS: dict[str, Any] = {
    "target_kl": None,
    "clip_range_vf": None,
    "use_sde": False,
    "sde_sample_freq": -1,
    "normalize_advantage": True,
}
"""Stable-Baselines3 PPO arguments RLlib cannot follow, with the only value it can honour."""
MAPPED_TO_RLLIB = {
    "learning_rate": "lr",
    "n_steps": "rollout_fragment_length",
    "batch_size": "minibatch_size",
    "n_epochs": "num_epochs",
    "gamma": "gamma",
    "gae_lambda": "lambda_",
    "clip_range": "clip_param",
    "ent_coef": "entropy_coeff",
    "vf_coef": "vf_loss_coeff",
    "max_grad_norm": "grad_clip",
}
"""Stable-Baselines3's PPO argument names and RLlib's for the same setting."""
RLLIB_POLICY_OPTIONS = ("net_arch", "log_std_init")


def check_rllib_hyperparams(hp: Mapping[str, Any], env_runners: int = 0) -> None:
    """Refuse, by name, what RLlib's PPO cannot follow (:data:`RLLIB_SB3_DEFAULTS`), before Ray starts.

    Also the settings RLlib checks in its own terms: ``batch_size`` (RLlib's minibatch) at most one
    rollout of ``n_envs x n_steps`` decisions, and ``n_envs`` split evenly over ``env_runners``.
    """
    kwargs = ppo_kwargs(hp)
    for key, value in kwargs.items():
        if key in MAPPED_TO_RLLIB:
            continue
        if key == "policy_kwargs":
            other = sorted(set(value) - set(RLLIB_POLICY_OPTIONS))
            if other:
                raise TrainError(
                    f"--backend rllib builds its networks from {list(RLLIB_POLICY_OPTIONS)} only; "
                    f"policy_kwargs {other} have no RLlib equivalent: drop them or train with --backend sb3"
                )
        elif key in RLLIB_SB3_DEFAULTS:
            if value != RLLIB_SB3_DEFAULTS[key]:
                raise TrainError(
                    f"--backend rllib cannot follow {key}={value!r} (RLlib's PPO has no equivalent); drop it "
                    f"(the default is {RLLIB_SB3_DEFAULTS[key]!r}) or train with --backend sb3"
                )
        else:
            raise TrainError(
                f"--backend rllib has no equivalent of the Stable-Baselines3 argument {key}={value!r}; drop "
                "it or train with --backend sb3"
            )
    rollout = int(hp["n_envs"]) * int(hp["n_steps"])
    if int(hp["batch_size"]) > rollout:
        raise TrainError(
            f"--backend rllib needs batch_size <= n_envs x n_steps (one rollout, {hp['n_envs']} x "
            f"{hp['n_steps']} = {rollout}), got batch_size={hp['batch_size']}; lower batch_size or raise "
            "n_envs or n_steps"
        )
    if int(hp["n_envs"]) % max(env_runners, 1):
        raise TrainError(
            f"n_envs={hp['n_envs']} environments do not split evenly over --env-runners {env_runners}; "
            "choose a divisor of n_envs"
        )
