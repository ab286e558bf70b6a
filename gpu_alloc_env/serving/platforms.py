"""Serverless GPU platforms: prices, billing granularity, keep-alive and cold-start tiers.

A replica's cold start is ``container_start_s + weight bytes / load bandwidth + engine_startup_s``
(:func:`cold_start_s`): the container (image, drivers) starts, the weights stream from the storage
tier into GPU memory, then the engine profiles memory, allocates the KV cache, compiles and captures
CUDA graphs. Each figure names its source in :data:`PLATFORM_SOURCES` and ``docs/MODEL.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from gpu_alloc_env.errors import ConfigError, check_number, replace_checked, resolve_spec

WeightSource = Literal["remote", "ssd", "host_memory"]
WEIGHT_SOURCES: tuple[str, ...] = get_args(WeightSource)

GB = 1e9

LOAD_BANDWIDTH_BYTES_PER_S: dict[str, float] = {
    "remote": 1.7 * GB,
    "ssd": 3.4 * GB,
    "host_memory": 5.1 * GB,
}
"""Default weight-loading bandwidth of each storage tier with the standard (safetensors) loader:
remote storage 1.7 GB/s (OPT-30B in 34 s and Llama-2-70B in 84 s with standard loaders, ServerlessLLM,
OSDI'24); local NVMe 3.4 GB/s (Llama-3.1-8B in 4.4 s and Qwen3-32B in 20.6 s with safetensors on an
H100, ServerlessLLM's ``sllm_store`` README: 3.7 and 3.2 GB/s); host memory 5.1 GB/s (Qwen3-32B
cached in host memory, 12.5 s with safetensors, same README)."""

ENGINE_STARTUP_S = 20.0
"""vLLM engine start-up after the weights are in GPU memory (memory profile, KV-cache allocation,
torch.compile, CUDA-graph capture, warm-up): 14.2 s for Llama-3-8B by default and 39.3 s with -O3
(vllm-project/vllm PR 11005); 34.1 s with a cached torch.compile (issue 20264). 20 s lies between."""


@dataclass(frozen=True)
class PlatformSpec:
    """A serverless GPU platform.

    ``price_per_gpu_s`` maps GPU type names to dollars per GPU-second; a GPU the platform does not
    list cannot be priced from it (give ``ScenarioConfig.price_per_gpu_s`` instead).
    """

    name: str
    price_per_gpu_s: Mapping[str, float]
    billing_increment_s: float
    """A replica's lifetime (start to stop) is billed rounded up to a multiple of this."""
    keep_alive_s: float
    """Default window an idle replica stays warm (and billed) before it stops."""
    container_start_s: float
    """Container start with GPU drivers, before weights load."""
    weight_source: WeightSource = "ssd"
    """Default storage tier weights load from at a cold start."""
    load_bandwidth_bytes_per_s: Mapping[str, float] = field(
        default_factory=lambda: dict(LOAD_BANDWIDTH_BYTES_PER_S)
    )
    """Weight-loading bandwidth of each tier (``remote``, ``ssd``, ``host_memory``)."""
    engine_startup_s: float = ENGINE_STARTUP_S

    def __post_init__(self) -> None:
        owner = f"PlatformSpec({self.name!r})"
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"PlatformSpec.name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.price_per_gpu_s, Mapping) or not self.price_per_gpu_s:
            raise ConfigError(
                f"{owner}.price_per_gpu_s must be a non-empty mapping of GPU name to $/GPU-s, got "
                f"{self.price_per_gpu_s!r}"
            )
        prices = {
            str(gpu): check_number(owner, f"price_per_gpu_s[{gpu!r}]", price, positive=True)
            for gpu, price in self.price_per_gpu_s.items()
        }
        object.__setattr__(self, "price_per_gpu_s", prices)
        object.__setattr__(
            self,
            "billing_increment_s",
            check_number(owner, "billing_increment_s", self.billing_increment_s, positive=True),
        )
        for name in ("keep_alive_s", "container_start_s", "engine_startup_s"):
            object.__setattr__(self, name, check_number(owner, name, getattr(self, name), non_negative=True))
        if self.weight_source not in WEIGHT_SOURCES:
            raise ConfigError(
                f"{owner}.weight_source must be one of {list(WEIGHT_SOURCES)}, got {self.weight_source!r}"
            )
        if not isinstance(self.load_bandwidth_bytes_per_s, Mapping):
            raise ConfigError(f"{owner}.load_bandwidth_bytes_per_s must be a mapping of tier to bytes/s")
        missing = sorted(set(WEIGHT_SOURCES) - set(self.load_bandwidth_bytes_per_s))
        unknown = sorted(set(self.load_bandwidth_bytes_per_s) - set(WEIGHT_SOURCES))
        if missing or unknown:
            raise ConfigError(
                f"{owner}.load_bandwidth_bytes_per_s needs exactly the tiers {list(WEIGHT_SOURCES)}; "
                f"missing {missing}, unknown {unknown}"
            )
        bandwidths = {
            tier: check_number(owner, f"load_bandwidth_bytes_per_s[{tier!r}]", value, positive=True)
            for tier, value in self.load_bandwidth_bytes_per_s.items()
        }
        object.__setattr__(self, "load_bandwidth_bytes_per_s", bandwidths)

    def price_for(self, gpu: str) -> float:
        """Dollars per GPU-second of ``gpu`` on this platform."""
        if gpu not in self.price_per_gpu_s:
            raise ConfigError(
                f"platform {self.name!r} lists no price for GPU {gpu!r} (it prices "
                f"{sorted(self.price_per_gpu_s)}); choose one of those or set price_per_gpu_s"
            )
        return self.price_per_gpu_s[gpu]

    def replace(self, **overrides: Any) -> PlatformSpec:
        """A copy with some fields changed (validated; unknown fields are an error)."""
        return replace_checked(self, overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        data = dataclasses.asdict(self)
        data["price_per_gpu_s"] = dict(self.price_per_gpu_s)
        data["load_bandwidth_bytes_per_s"] = dict(self.load_bandwidth_bytes_per_s)
        return data


def cold_start_s(
    weight_bytes: float, platform: PlatformSpec, weight_source: str, engine_startup_s: float
) -> float:
    """Seconds from granting a replica to serving: container, weight load and engine start-up."""
    bandwidth = platform.load_bandwidth_bytes_per_s[weight_source]
    return platform.container_start_s + weight_bytes / bandwidth + engine_startup_s


PLATFORMS: dict[str, PlatformSpec] = {
    "runpod": PlatformSpec(
        name="runpod",
        price_per_gpu_s={"h100-80gb": 0.00116, "a100-80gb": 0.00076, "l40s-48gb": 0.00053},
        billing_increment_s=1.0,
        keep_alive_s=5.0,
        container_start_s=5.0,
    ),
    "modal": PlatformSpec(
        name="modal",
        price_per_gpu_s={"h100-80gb": 0.001097, "a100-80gb": 0.000694, "l40s-48gb": 0.000542},
        billing_increment_s=1.0,
        keep_alive_s=60.0,
        container_start_s=1.0,
    ),
    "replicate": PlatformSpec(
        name="replicate",
        price_per_gpu_s={"h100-80gb": 0.001525, "a100-80gb": 0.0014, "l40s-48gb": 0.000975},
        billing_increment_s=1.0,
        keep_alive_s=120.0,
        container_start_s=5.0,
    ),
}
"""The catalogue of serverless platforms, by name."""

PLATFORM_SOURCES: dict[str, str] = {
    "runpod": (
        "docs.runpod.io/serverless/pricing: flex workers per second (H100 PRO $0.00116, A100 80GB "
        "$0.00076, L40S $0.00053), billed from worker start until it fully stops, rounded up to the "
        "second, start-up and idle time included; default idle timeout 5 s. Container start 5 s: "
        "Cloud Run GPU's instance start (cloud.google.com/run/docs/configuring/services/gpu), RunPod "
        "publishing none."
    ),
    "modal": (
        "Prices from a copy of modal.com/pricing (H100 $3.9492/h, A100 80GB $2.4984/h, L40S $1.9512/h; "
        "techbytes.app, May 2026), billed per second of container time; containers spin down after "
        "60 s of inactivity by default and start in about 1 s (modal.com/docs/guide/cold-start)."
    ),
    "replicate": (
        "replicate.com/pricing: H100 $0.001525/s, A100 80GB $0.0014/s, L40S $0.000975/s, per second; "
        "private models are billed for set-up, idle and active time and go idle for 'a few minutes' "
        "before shutting down (replicate.com/docs/billing), taken here as 120 s (estimate). Container "
        "start 5 s as for RunPod."
    ),
}
"""Where each platform's figures come from."""


def resolve_platform(platform: str | PlatformSpec | Any) -> PlatformSpec:
    """A catalogue name, a :class:`PlatformSpec` or a mapping of its fields, as a :class:`PlatformSpec`."""
    return resolve_spec(platform, PLATFORMS, PlatformSpec, "platform", "platform", "")
