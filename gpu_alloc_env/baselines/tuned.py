"""Settings of the tuned baselines, saved per scenario so that evaluation reuses them.

``gpu-alloc tune --scenario NAME`` searches a baseline's settings on the tuning seeds
(:data:`gpu_alloc_env.seeds.TUNING_SEED_BASE`, never the evaluation seeds) and writes
``<directory>/<NAME>.json``. The package ships the records of its presets in
``gpu_alloc_env/data/tuned``; a user's own directory can be searched first (``tuned_dir``).

A record holds the scenario's fingerprint (a hash of its whole configuration), so a record is
never applied to a scenario that shares the name but not the settings it was tuned for.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_alloc_env.config import AgentSpec, ConfigError, RewardSpec, ScenarioConfig

PACKAGED_TUNED_DIR = Path(__file__).resolve().parent.parent / "data" / "tuned"
"""Where the package keeps the tuned settings of its preset scenarios."""


LATER_FIELDS: dict[type, dict[str, Any]] = {
    AgentSpec: {"ttft_slo_s": None, "tpot_slo_s": None},
    RewardSpec: {"goodput_miss_usd": 0.0},
}
"""Fields added after records were written, left out of the fingerprint while at these values (their
defaults, which change nothing the records were tuned on), so that the records stay valid."""


def _canonical(value: Any) -> Any:
    """``value`` with mappings sorted and numbers as floats, so equal settings serialise alike."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        later = LATER_FIELDS.get(type(value), {})
        value = {
            f.name: getattr(value, f.name)
            for f in dataclasses.fields(value)
            if not (f.name in later and getattr(value, f.name) == later[f.name])
        }
    if isinstance(value, Mapping):
        return {str(key): _canonical(item) for key, item in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def fingerprint(config: ScenarioConfig) -> str:
    """A short hash of every setting of ``config``: equal scenarios, equal fingerprints.

    Mappings are compared sorted and numbers as floats, so a configuration read back from a run
    folder's JSON has the fingerprint of the one it was written from.
    """
    text = json.dumps(_canonical(config), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TunedRecord:
    """One baseline's tuned settings for one scenario, and how they were found.

    Attributes:
        scenario: the scenario's name.
        fingerprint: :func:`fingerprint` of the scenario the settings apply to.
        baseline: the baseline's name (``provisioned`` or ``autoscaler``).
        settings: the tuned values (``replicas`` per agent, or ``target_concurrency`` per agent).
        tuned_on: the scenario whose tuning seeds were searched (a held-out trace part is tuned on
            its training part).
        seeds: the tuning seeds used.
        command: the command that wrote the record.
        search: how the search went (candidates tried, scores), for the record.
    """

    scenario: str
    fingerprint: str
    baseline: str
    settings: dict[str, list[float]]
    tuned_on: str
    seeds: list[int]
    command: str
    search: dict[str, Any] = field(default_factory=dict)

    def path_in(self, directory: Path) -> Path:
        """Where the record lives in ``directory``."""
        return directory / f"{self.scenario}.{self.baseline}.json"

    def save(self, directory: Path) -> Path:
        """Write the record as JSON into ``directory`` (created) and return its path."""
        directory.mkdir(parents=True, exist_ok=True)
        path = self.path_in(directory)
        path.write_text(json.dumps(self.__dict__, indent=2) + "\n")
        return path


def load_tuned(config: ScenarioConfig, baseline: str, tuned_dir: Path | None = None) -> TunedRecord:
    """The record of ``baseline`` tuned for ``config``: from ``tuned_dir`` first, then the package's.

    Raises:
        ConfigError: no record exists for the scenario's name, or the record was tuned for
            different settings; the message names the command that tunes it.
    """
    directories = [d for d in (tuned_dir, PACKAGED_TUNED_DIR) if d is not None]
    wanted = fingerprint(config)
    stale: list[Path] = []
    for directory in directories:
        path = directory / f"{config.name}.{baseline}.json"
        if not path.is_file():
            continue
        record = TunedRecord(**json.loads(path.read_text()))
        if record.fingerprint == wanted:
            return record
        stale.append(path)
    where = ", ".join(str(d) for d in directories)
    tune = f"gpu-alloc tune --scenario {config.name} --baseline {baseline} --out DIR"
    if stale:
        raise ConfigError(
            f"the tuned {baseline} settings for scenario {config.name!r} ({', '.join(map(str, stale))}) "
            f"were found for different scenario settings (fingerprint {wanted} wanted); run `{tune}` "
            "with the same --set options and pass --tuned DIR"
        )
    raise ConfigError(
        f"no tuned {baseline} settings for scenario {config.name!r} in {where}; run `{tune}` and pass "
        "--tuned DIR (tuned_dir=DIR in Python)"
    )


def has_tuned(config: ScenarioConfig, baseline: str, tuned_dir: Path | None = None) -> bool:
    """Whether :func:`load_tuned` finds a record of ``baseline`` for ``config``."""
    try:
        load_tuned(config, baseline, tuned_dir)
    except ConfigError:
        return False
    return True
