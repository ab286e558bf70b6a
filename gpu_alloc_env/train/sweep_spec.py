"""What a sweep asks for (``gpu-alloc sweep --config sweeps/NAME.yaml``), read and checked without Ray.

A sweep file is YAML::

    name: paper-lr               # the Tune experiment (OUT/tune/NAME); letters, digits, - and _
    backend: sb3                 # the learner of every trial: sb3 or rllib (gpu-alloc train --backend)
    search: grid                 # grid: every combination; optuna: num_samples configurations (TPE)
    scenarios: [paper]           # grid: any number; optuna: one (one study per scenario)
    seeds: [0, 1, 2]             # training seeds
    timesteps: 1000000           # per run
    hp: {n_envs: 32}             # fixed hyperparameters (as --hp), over the scenario's block
    set: {}                      # scenario fields (as --set)
    space:                       # searched hyperparameters, one domain each:
      learning_rate: {grid: [1.0e-4, 3.0e-4]}   # grid (search: grid only), choice, uniform,
                                                # loguniform, randint (search: optuna only)
    num_samples: 8               # optuna: configurations tried
    optuna_seed: 0               # optuna: the sampler's seed
    max_concurrent_trials: 2     # default: as many as the cluster's CPUs allow
    cpus_per_trial: 1
    evaluate: {episodes: 20, first_seed: 950000, baselines: [all]}

A **trial** trains run folders (:mod:`gpu_alloc_env.train.run_folder`) under ``OUT/runs``. In a
grid, a trial is one scenario, one seed and one point of the space; in an Optuna search, one
configuration trained on every seed, scored by the mean of the seeds' best validation returns (so a
configuration is never chosen for a lucky seed). A run folder is named
``<scenario>-seed<K>-<config>``, where ``<config>`` digests the searched values
(:func:`config_key`), so a restarted trial finds its folder and resumes it.

The sweep evaluates each configuration's runs with ``gpu-alloc evaluate``'s harness on the tuning
seeds (``first_seed`` 950000) by default, never on the held-out ones: a sweep selects, so it must
not see the test set.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gpu_alloc_env.errors import TrainError
from gpu_alloc_env.scenarios import SCENARIOS
from gpu_alloc_env.seeds import MAX_TRAIN_SEED, TUNING_SEED_BASE
from gpu_alloc_env.train.learned import BACKENDS

SEARCHES = ("grid", "optuna")
GRID_DOMAINS = ("grid",)
OPTUNA_DOMAINS = ("choice", "uniform", "loguniform", "randint")
KEYS = frozenset(
    {
        "name",
        "backend",
        "search",
        "scenarios",
        "seeds",
        "timesteps",
        "hp",
        "set",
        "space",
        "num_samples",
        "optuna_seed",
        "max_concurrent_trials",
        "cpus_per_trial",
        "evaluate",
    }
)
EVALUATE_KEYS = frozenset({"episodes", "first_seed", "baselines"})


@dataclass(frozen=True)
class SweepSpec:
    """A checked sweep (the module docstring describes each field)."""

    name: str
    scenarios: tuple[str, ...]
    seeds: tuple[int, ...]
    timesteps: int
    backend: str = "sb3"
    search: str = "grid"
    hp: Mapping[str, Any] = field(default_factory=dict)
    overrides: Mapping[str, Any] = field(default_factory=dict)
    space: Mapping[str, tuple[str, tuple[Any, ...]]] = field(default_factory=dict)
    num_samples: int = 1
    optuna_seed: int = 0
    max_concurrent_trials: int | None = None
    cpus_per_trial: float = 1.0
    episodes: int = 20
    first_seed: int = TUNING_SEED_BASE
    baselines: tuple[str, ...] = ("all",)

    def to_dict(self) -> dict[str, Any]:
        """The spec as the YAML mapping that reads back to it."""
        return {
            "name": self.name,
            "backend": self.backend,
            "search": self.search,
            "scenarios": list(self.scenarios),
            "seeds": list(self.seeds),
            "timesteps": self.timesteps,
            "hp": dict(self.hp),
            "set": dict(self.overrides),
            "space": {key: {kind: list(args)} for key, (kind, args) in self.space.items()},
            "num_samples": self.num_samples,
            "optuna_seed": self.optuna_seed,
            "max_concurrent_trials": self.max_concurrent_trials,
            "cpus_per_trial": self.cpus_per_trial,
            "evaluate": {
                "episodes": self.episodes,
                "first_seed": self.first_seed,
                "baselines": list(self.baselines),
            },
        }


def config_key(values: Mapping[str, Any]) -> str:
    """Eight hex digits naming a configuration of the searched values (the same values, the same key)."""
    text = json.dumps({key: values[key] for key in sorted(values)}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def run_name(scenario: str, seed: int, values: Mapping[str, Any]) -> str:
    """The run folder of one scenario, seed and configuration of a sweep."""
    return f"{scenario}-seed{seed}-{config_key(values)}"


def load_sweep(path: Path) -> SweepSpec:
    """The sweep in the YAML file ``path``, checked (:class:`TrainError` naming any bad entry)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise TrainError(
            f"sweep file {path} does not exist; pass a YAML file such as sweeps/paper-grid.yaml"
        ) from None
    except yaml.YAMLError as exc:
        raise TrainError(f"sweep file {path} is not valid YAML: {exc}") from None
    return sweep_from_dict(data, str(path))


def sweep_from_dict(data: Any, source: str = "the sweep") -> SweepSpec:
    """A :class:`SweepSpec` from its YAML mapping, every entry checked."""
    if not isinstance(data, dict):
        raise TrainError(f"{source} must be a mapping of the keys {sorted(KEYS)}, got {data!r}")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise TrainError(f"{source}: unknown key(s) {unknown}; the keys are {sorted(KEYS)}")
    missing = [key for key in ("name", "scenarios", "seeds", "timesteps") if key not in data]
    if missing:
        raise TrainError(f"{source}: {missing} missing; a sweep needs name, scenarios, seeds and timesteps")
    name = str(data["name"])
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise TrainError(f"{source}: name {name!r} must be letters, digits, - and _ (it names a folder)")
    search = str(data.get("search", "grid"))
    if search not in SEARCHES:
        raise TrainError(f"{source}: search must be one of {list(SEARCHES)}, got {search!r}")
    backend = str(data.get("backend", "sb3"))
    if backend not in BACKENDS:
        raise TrainError(f"{source}: backend must be one of {list(BACKENDS)}, got {backend!r}")
    scenarios = _list(data["scenarios"], "scenarios", source)
    bad = [s for s in scenarios if s not in SCENARIOS]
    if bad:
        raise TrainError(f"{source}: scenarios {bad} are not scenarios; choose from {sorted(SCENARIOS)}")
    if search == "optuna" and len(scenarios) != 1:
        raise TrainError(
            f"{source}: an optuna search studies one scenario, got {scenarios}; write one sweep per "
            "scenario (a configuration good on one need not be on another)"
        )
    seeds = _list(data["seeds"], "seeds", source)
    if not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_TRAIN_SEED for s in seeds):
        raise TrainError(f"{source}: seeds must be integers in [0, {MAX_TRAIN_SEED}], got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise TrainError(f"{source}: seeds {seeds} list a seed more than once")
    space = _space(data.get("space") or {}, search, source)
    fixed = _mapping(data.get("hp"), "hp", source)
    clash = sorted(set(fixed) & set(space))
    if clash:
        raise TrainError(f"{source}: {clash} are both fixed (hp) and searched (space); keep one")
    evaluate = _mapping(data.get("evaluate"), "evaluate", source)
    unknown = sorted(set(evaluate) - EVALUATE_KEYS)
    if unknown:
        raise TrainError(
            f"{source}: evaluate has unknown key(s) {unknown}; its keys are {sorted(EVALUATE_KEYS)}"
        )
    spec = SweepSpec(
        name=name,
        scenarios=tuple(str(s) for s in scenarios),
        seeds=tuple(int(s) for s in seeds),
        timesteps=_positive_int(data["timesteps"], "timesteps", source),
        backend=backend,
        search=search,
        hp=fixed,
        overrides=_mapping(data.get("set"), "set", source),
        space=space,
        num_samples=_positive_int(data.get("num_samples", 1), "num_samples", source),
        optuna_seed=int(data.get("optuna_seed", 0)),
        max_concurrent_trials=(
            None
            if data.get("max_concurrent_trials") is None
            else _positive_int(data["max_concurrent_trials"], "max_concurrent_trials", source)
        ),
        cpus_per_trial=float(data.get("cpus_per_trial", 1.0)),
        episodes=_positive_int(evaluate.get("episodes", 20), "evaluate.episodes", source),
        first_seed=int(evaluate.get("first_seed", TUNING_SEED_BASE)),
        baselines=tuple(
            str(b) for b in _list(evaluate.get("baselines", ["all"]), "evaluate.baselines", source)
        ),
    )
    if not spec.cpus_per_trial > 0:
        raise TrainError(f"{source}: cpus_per_trial must be > 0, got {spec.cpus_per_trial!r}")
    if search == "grid" and spec.num_samples != 1:
        raise TrainError(
            f"{source}: num_samples applies to search: optuna; a grid runs every combination once"
        )
    return spec


def points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The searched values to check before a sweep starts: every grid point, or each choice and range end."""
    if spec.search == "grid":
        keys = list(spec.space)
        return [
            dict(zip(keys, combo, strict=True))
            for combo in itertools.product(*(spec.space[k][1] for k in keys))
        ]
    found: list[dict[str, Any]] = [{}]
    for key, (kind, args) in spec.space.items():
        values = list(args) if kind == "choice" else [args[0], args[1] - 1 if kind == "randint" else args[1]]
        found += [{key: value} for value in values]
    return found


def check_sweep_settings(spec: SweepSpec) -> None:
    """Check every scenario's settings, fixed hyperparameters and searched values before Ray starts.

    A misspelled hyperparameter or a value out of range would otherwise fail every trial, after the
    cluster started. Raises :class:`TrainError` or :class:`~gpu_alloc_env.config.ConfigError`
    naming the value.
    """
    from gpu_alloc_env.env import resolve_scenario
    from gpu_alloc_env.train.hyperparams import check_rllib_hyperparams, load_hyperparams

    for scenario in spec.scenarios:
        resolve_scenario(scenario, dict(spec.overrides))
        for values in points(spec):
            hp = load_hyperparams(scenario, None, {**spec.hp, **values})
            if spec.backend == "rllib":
                check_rllib_hyperparams(hp)


def record_sweep(spec: SweepSpec, out: Path) -> None:
    """Refuse an ``OUT`` holding another sweep; record this one there (``OUT/sweep.yaml``)."""
    saved = out / "sweep.yaml"
    if saved.exists():
        recorded = yaml.safe_load(saved.read_text())
        if recorded != spec.to_dict():
            raise TrainError(
                f"{out} holds a sweep with other settings ({saved}); pass another --out, or restore that "
                "sweep file to resume it"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    saved.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))


def _space(data: Any, search: str, source: str) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """The searched hyperparameters: ``{key: {kind: [arguments]}}`` checked against ``search``."""
    allowed = GRID_DOMAINS if search == "grid" else OPTUNA_DOMAINS
    space: dict[str, tuple[str, tuple[Any, ...]]] = {}
    for key, domain in _mapping(data, "space", source).items():
        if not isinstance(domain, dict) or len(domain) != 1:
            raise TrainError(
                f"{source}: space.{key} must be one domain, e.g. {{{allowed[0]}: [...]}}; got {domain!r}"
            )
        ((kind, args),) = domain.items()
        if kind not in allowed:
            raise TrainError(
                f"{source}: space.{key} uses {kind!r}, which search: {search} does not take; use one of "
                f"{list(allowed)}" + (" (Optuna cannot search a grid)" if kind == "grid" else "")
            )
        values = _list(args, f"space.{key}.{kind}", source)
        if kind in ("uniform", "loguniform", "randint") and len(values) != 2:
            raise TrainError(f"{source}: space.{key}.{kind} takes [low, high], got {values!r}")
        space[str(key)] = (str(kind), tuple(values))
    return space


def _list(value: Any, key: str, source: str) -> list[Any]:
    """``value`` as a non-empty list (a scalar becomes a list of one)."""
    values = list(value) if isinstance(value, list | tuple) else [value]
    if not values:
        raise TrainError(f"{source}: {key} is empty; list at least one value")
    return values


def _mapping(value: Any, key: str, source: str) -> dict[str, Any]:
    """``value`` as a mapping (None is empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TrainError(f"{source}: {key} must be a mapping, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _positive_int(value: Any, key: str, source: str) -> int:
    """``value`` checked to be a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TrainError(f"{source}: {key} must be a positive integer, got {value!r}")
    return value
