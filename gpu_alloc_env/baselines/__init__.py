"""Fixed allocation policies, each with Stable-Baselines3's ``predict`` interface.

| name                   | class                            | rule (in whole replicas)                 |
|------------------------|----------------------------------|------------------------------------------|
| ``static``             | :class:`StaticEqualPolicy`       | the pool shared as evenly as it allows   |
| ``round_robin``        | :class:`RoundRobinPolicy`        | the whole pool to one agent per quantum  |
| ``adaptive``           | :class:`AdaptivePolicy`          | one replica first, the rest by priority  |
|                        |                                  | x need, capped, with hysteresis          |
| ``provisioned``        | :class:`ProvisionedPolicy`       | the best constant, tuned                 |
| ``provisioned_erlang`` | :class:`ProvisionedErlangPolicy` | a constant sized by the Erlang-C rule    |
| ``autoscaler``         | :class:`AutoscalerPolicy`        | Knative's KPA, target concurrency tuned  |
| ``oracle``             | :class:`ClairvoyantPolicy`       | rolling plans knowing the arrivals       |

``provisioned`` and ``autoscaler`` read the settings ``gpu-alloc tune`` saved for the scenario
(:mod:`gpu_alloc_env.baselines.tuned`); the package ships them for its presets. ``oracle`` is
clairvoyant: no deployable policy can see the future, so it runs only when asked for by name, and
:mod:`gpu_alloc_env.baselines.bound` gives the bound on every policy's return.
"""

from collections.abc import Callable
from pathlib import Path

from gpu_alloc_env.baselines.adaptive import AdaptivePolicy
from gpu_alloc_env.baselines.autoscaler import AutoscalerPolicy
from gpu_alloc_env.baselines.oracle import ClairvoyantPolicy
from gpu_alloc_env.baselines.provisioned import ProvisionedErlangPolicy, ProvisionedPolicy
from gpu_alloc_env.baselines.round_robin import RoundRobinPolicy
from gpu_alloc_env.baselines.static import StaticEqualPolicy
from gpu_alloc_env.baselines.tuned import has_tuned
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.policy import FixedPolicy, scenario_of

BASELINES: dict[str, Callable[..., FixedPolicy]] = {
    "static": StaticEqualPolicy,
    "round_robin": RoundRobinPolicy,
    "adaptive": AdaptivePolicy,
    "provisioned": ProvisionedPolicy,
    "provisioned_erlang": ProvisionedErlangPolicy,
    "autoscaler": AutoscalerPolicy,
    "oracle": ClairvoyantPolicy,
}
"""Baseline name -> constructor taking the scenario config."""

TUNED_BASELINES: tuple[str, ...] = ("provisioned", "autoscaler")
"""Baselines whose settings come from ``gpu-alloc tune``."""
CLAIRVOYANT: tuple[str, ...] = ("oracle",)
"""Baselines that see the episode's future: run only when named."""


def make_baseline(name: str, config: ScenarioConfig | object, tuned_dir: Path | None = None) -> FixedPolicy:
    """The baseline ``name`` for scenario ``config`` (or the environment that has it).

    ``tuned_dir`` is searched for tuned settings before the package's own records.
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    if name in TUNED_BASELINES or name in CLAIRVOYANT:
        return BASELINES[name](config, tuned_dir=tuned_dir)
    return BASELINES[name](config)


def available_baselines(config: ScenarioConfig | object, tuned_dir: Path | None = None) -> list[str]:
    """Every deployable baseline that can run on ``config``: the tuned ones where a record fits it.

    The clairvoyant ``oracle`` is left out; name it to run it.
    """
    scenario = scenario_of(config)
    return [
        name
        for name in BASELINES
        if name not in CLAIRVOYANT and (name not in TUNED_BASELINES or has_tuned(scenario, name, tuned_dir))
    ]


__all__ = [
    "BASELINES",
    "CLAIRVOYANT",
    "TUNED_BASELINES",
    "AdaptivePolicy",
    "AutoscalerPolicy",
    "ClairvoyantPolicy",
    "ProvisionedErlangPolicy",
    "ProvisionedPolicy",
    "RoundRobinPolicy",
    "StaticEqualPolicy",
    "available_baselines",
    "make_baseline",
]
