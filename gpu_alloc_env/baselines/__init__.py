"""Fixed allocation policies, each with Stable-Baselines3's ``predict`` interface.

| name            | class                      | rule (in whole replicas)                                  |
|-----------------|----------------------------|-----------------------------------------------------------|
| ``static``      | :class:`StaticEqualPolicy` | the capacity shared as evenly as replicas allow, always   |
| ``round_robin`` | :class:`RoundRobinPolicy`  | the whole pool to one agent per quantum, in turn          |
| ``adaptive``    | :class:`AdaptivePolicy`    | one replica first, the rest by priority x need, capped at |
|                 |                            | need x (1 + headroom), with hysteresis                    |
"""

from collections.abc import Callable

from gpu_alloc_env.baselines.adaptive import AdaptivePolicy
from gpu_alloc_env.baselines.round_robin import RoundRobinPolicy
from gpu_alloc_env.baselines.static import StaticEqualPolicy
from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.policy import FixedPolicy

BASELINES: dict[str, Callable[[ScenarioConfig | object], FixedPolicy]] = {
    "static": StaticEqualPolicy,
    "round_robin": RoundRobinPolicy,
    "adaptive": AdaptivePolicy,
}
"""Baseline name -> constructor taking the scenario config."""


def make_baseline(name: str, config: ScenarioConfig | object) -> FixedPolicy:
    """The baseline ``name`` for scenario ``config`` (or the environment that has it)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    return BASELINES[name](config)


__all__ = [
    "BASELINES",
    "AdaptivePolicy",
    "RoundRobinPolicy",
    "StaticEqualPolicy",
    "make_baseline",
]
