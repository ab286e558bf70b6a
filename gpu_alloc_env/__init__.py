"""gpu-alloc-env: allocate serverless GPUs among the agents of an LLM multi-agent system.

Importing the package registers the Gymnasium environments:

| id                   | scenario                                            |
|----------------------|-----------------------------------------------------|
| ``GpuAlloc-v1``      | ``paper`` (the default)                             |
| ``GpuAllocPaper-v1`` | ``paper``: four agents, steady Poisson tasks        |
| ``GpuAllocBursty-v1`` | ``bursty``: Markov-modulated bursts               |
| ``GpuAllocDiurnal-v1`` | ``diurnal``: a sinusoidal day                    |
| ``GpuAllocTraceConv-v1`` | ``trace-conv``: the Azure conversation trace, training part |
| ``GpuAllocTraceConvHeldOut-v1`` | ``trace-conv-held-out``: its held-out part   |
| ``GpuAllocTraceCode-v1`` | ``trace-code``: the Azure code trace, training part |
| ``GpuAllocTraceCodeHeldOut-v1`` | ``trace-code-held-out``: its held-out part   |
| ``GpuAllocTraceConvTwin-v1`` | ``trace-conv-twin``: synthetic twin of ``trace-conv`` |
| ``GpuAllocTraceCodeTwin-v1`` | ``trace-code-twin``: synthetic twin of ``trace-code`` |
| ``GpuAllocFleet-v1`` | ``fleet``: one coordinator and ``num_agents - 1`` specialists (``gym.make`` |
|                      | keyword ``num_agents``, default 64)                 |

Each id also has a native vector environment, :class:`GpuAllocVectorEnv`:
``gym.make_vec(id, num_envs=B)`` steps B environments as one batch. Once Ray is imported, the ids
are in its environment registry too, for RLlib (:mod:`gpu_alloc_env.ray_registry`).
"""

from gymnasium.envs.registration import register, registry

from gpu_alloc_env import ray_registry as _ray_registry
from gpu_alloc_env._kernel_cache import refresh as _refresh_kernel_cache
from gpu_alloc_env.config import (
    AgentSpec,
    ConfigError,
    RewardSpec,
    ScenarioConfig,
    TraceSpec,
    WorkloadSpec,
)
from gpu_alloc_env.env import GpuAllocEnv
from gpu_alloc_env.observation import ObservationLayout
from gpu_alloc_env.scenarios import SCENARIOS, make_scenario
from gpu_alloc_env.vector import GpuAllocVectorEnv

__version__ = "0.1.0"

_refresh_kernel_cache()

ENV_IDS: dict[str, str] = {
    "GpuAlloc-v1": "paper",
    "GpuAllocPaper-v1": "paper",
    "GpuAllocBursty-v1": "bursty",
    "GpuAllocDiurnal-v1": "diurnal",
    "GpuAllocTraceConv-v1": "trace-conv",
    "GpuAllocTraceConvHeldOut-v1": "trace-conv-held-out",
    "GpuAllocTraceCode-v1": "trace-code",
    "GpuAllocTraceCodeHeldOut-v1": "trace-code-held-out",
    "GpuAllocTraceConvTwin-v1": "trace-conv-twin",
    "GpuAllocTraceCodeTwin-v1": "trace-code-twin",
    "GpuAllocFleet-v1": "fleet",
}
"""Registered Gymnasium id -> scenario preset."""

for _env_id, _scenario in ENV_IDS.items():
    if _env_id not in registry:
        register(
            id=_env_id,
            entry_point="gpu_alloc_env.env:GpuAllocEnv",
            vector_entry_point="gpu_alloc_env.vector:GpuAllocVectorEnv",
            kwargs={"scenario": _scenario},
        )

# The same ids in Ray's registry once Ray is imported, for RLlib's remote env runners.
_ray_registry.install()

__all__ = [
    "ENV_IDS",
    "SCENARIOS",
    "AgentSpec",
    "ConfigError",
    "GpuAllocEnv",
    "GpuAllocVectorEnv",
    "ObservationLayout",
    "RewardSpec",
    "ScenarioConfig",
    "TraceSpec",
    "WorkloadSpec",
    "__version__",
    "make_scenario",
]
