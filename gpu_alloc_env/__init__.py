"""gpu-alloc-env: allocate serverless GPUs among the agents of an LLM multi-agent system.

Importing the package registers the Gymnasium environments:

| id                   | scenario                                            |
|----------------------|-----------------------------------------------------|
| ``GpuAlloc-v0``      | ``paper`` (the default)                             |
| ``GpuAllocPaper-v0`` | ``paper``: four agents, steady Poisson tasks        |
| ``GpuAllocBursty-v0`` | ``bursty``: Markov-modulated bursts               |
| ``GpuAllocDiurnal-v0`` | ``diurnal``: a sinusoidal day                    |
| ``GpuAllocTraceConv-v0`` | ``trace-conv``: the Azure conversation trace, training part |
| ``GpuAllocTraceConvHeldOut-v0`` | ``trace-conv-held-out``: its held-out part   |
| ``GpuAllocTraceCode-v0`` | ``trace-code``: the Azure code trace, training part |
| ``GpuAllocTraceCodeHeldOut-v0`` | ``trace-code-held-out``: its held-out part   |
| ``GpuAllocTraceConvTwin-v0`` | ``trace-conv-twin``: synthetic twin of ``trace-conv`` |
| ``GpuAllocTraceCodeTwin-v0`` | ``trace-code-twin``: synthetic twin of ``trace-code`` |
"""

from gymnasium.envs.registration import register, registry

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

__version__ = "0.1.0"

ENV_IDS: dict[str, str] = {
    "GpuAlloc-v0": "paper",
    "GpuAllocPaper-v0": "paper",
    "GpuAllocBursty-v0": "bursty",
    "GpuAllocDiurnal-v0": "diurnal",
    "GpuAllocTraceConv-v0": "trace-conv",
    "GpuAllocTraceConvHeldOut-v0": "trace-conv-held-out",
    "GpuAllocTraceCode-v0": "trace-code",
    "GpuAllocTraceCodeHeldOut-v0": "trace-code-held-out",
    "GpuAllocTraceConvTwin-v0": "trace-conv-twin",
    "GpuAllocTraceCodeTwin-v0": "trace-code-twin",
}
"""Registered Gymnasium id -> scenario preset."""

for _env_id, _scenario in ENV_IDS.items():
    if _env_id not in registry:
        register(
            id=_env_id,
            entry_point="gpu_alloc_env.env:GpuAllocEnv",
            kwargs={"scenario": _scenario},
        )

__all__ = [
    "ENV_IDS",
    "SCENARIOS",
    "AgentSpec",
    "ConfigError",
    "GpuAllocEnv",
    "ObservationLayout",
    "RewardSpec",
    "ScenarioConfig",
    "TraceSpec",
    "WorkloadSpec",
    "__version__",
    "make_scenario",
]
