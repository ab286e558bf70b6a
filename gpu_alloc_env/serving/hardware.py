"""GPU types: memory, bandwidth, compute and interconnect, with the efficiencies fitted to profiles.

Every figure of the catalogue names its source in :data:`GPU_SOURCES` (and ``docs/MODEL.md``,
section 2). Datasheet figures are dense (no sparsity). ``memory_gib`` is the device memory that the
CUDA runtime reports, which is what an engine sizes its KV cache from, not the marketing "80 GB".

The efficiency fields scale the roofline of :mod:`gpu_alloc_env.serving.perf` to what serving
engines reach; they are fitted to the bundled profiles by ``calibration/fit.py`` and written to
:mod:`gpu_alloc_env.serving.calibration`. A GPU without a profile borrows the fit of the nearest
profiled part (stated in its source).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gpu_alloc_env.errors import ConfigError, check_number, replace_checked, resolve_spec
from gpu_alloc_env.serving import calibration

GIB = 1024.0**3
"""Bytes per GiB."""


@dataclass(frozen=True)
class GpuSpec:
    """One GPU type.

    Hardware fields come from the vendor's datasheet; the ``*_efficiency`` and ``*_overhead_s``
    fields are fitted (see the module docstring).
    """

    name: str
    memory_gib: float
    """Device memory the CUDA runtime reports, GiB."""
    memory_bandwidth_bytes_per_s: float
    """Peak HBM (or GDDR) bandwidth."""
    bf16_flops_per_s: float
    """Dense bf16 tensor-core peak."""
    fp8_flops_per_s: float
    """Dense fp8 tensor-core peak; 0 where the GPU has no fp8 tensor cores (fp8 weights then run
    as weight-only quantisation, computing in bf16)."""
    interconnect_bytes_per_s: float
    """GPU-to-GPU bandwidth per direction within a node (NVLink, or PCIe without it)."""
    max_gpus_per_node: int = 8
    """Largest tensor-parallel degree: replicas do not span nodes."""
    memory_efficiency: float = calibration.H100["memory_efficiency"]
    """Fraction of peak bandwidth that weight and KV-cache reads reach."""
    compute_efficiency: float = calibration.H100["compute_efficiency"]
    """Fraction of peak FLOPs that prefill and attention reach."""
    layer_overhead_s: float = calibration.H100["layer_overhead_s"]
    """Fixed time per transformer layer per iteration (kernel launches, synchronisation)."""
    sequence_overhead_s: float = calibration.H100["sequence_overhead_s"]
    """Time per sequence in the batch per iteration (scheduling, sampling, attention metadata)."""
    allreduce_latency_s: float = calibration.H100["allreduce_latency_s"]
    """Fixed time of one tensor-parallel all-reduce."""
    allreduce_efficiency: float = calibration.H100["allreduce_efficiency"]
    """Fraction of ``interconnect_bytes_per_s`` that a ring all-reduce reaches."""

    def __post_init__(self) -> None:
        owner = f"GpuSpec({self.name!r})"
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"GpuSpec.name must be a non-empty string, got {self.name!r}")
        for name in (
            "memory_gib",
            "memory_bandwidth_bytes_per_s",
            "bf16_flops_per_s",
            "interconnect_bytes_per_s",
            "memory_efficiency",
            "compute_efficiency",
            "allreduce_efficiency",
        ):
            object.__setattr__(self, name, check_number(owner, name, getattr(self, name), positive=True))
        for name in ("fp8_flops_per_s", "layer_overhead_s", "sequence_overhead_s", "allreduce_latency_s"):
            object.__setattr__(self, name, check_number(owner, name, getattr(self, name), non_negative=True))
        for name in ("memory_efficiency", "compute_efficiency", "allreduce_efficiency"):
            if getattr(self, name) > 1.0:
                raise ConfigError(f"{owner}.{name} must be a fraction in (0, 1], got {getattr(self, name)!r}")
        if isinstance(self.max_gpus_per_node, bool) or not isinstance(self.max_gpus_per_node, int):
            raise ConfigError(f"{owner}.max_gpus_per_node must be an int, got {self.max_gpus_per_node!r}")
        if self.max_gpus_per_node < 1:
            raise ConfigError(f"{owner}.max_gpus_per_node must be >= 1, got {self.max_gpus_per_node}")

    @property
    def memory_bytes(self) -> float:
        """Device memory in bytes."""
        return self.memory_gib * GIB

    def flops_per_s(self, dtype: str) -> float:
        """Dense peak for matrix products with weights in ``dtype`` (``bf16`` or ``fp8``)."""
        if dtype == "fp8" and self.fp8_flops_per_s > 0.0:
            return self.fp8_flops_per_s
        return self.bf16_flops_per_s

    def replace(self, **overrides: Any) -> GpuSpec:
        """A copy with some fields changed (validated; unknown fields are an error)."""
        return replace_checked(self, overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return dataclasses.asdict(self)


TB = 1e12
TFLOPS = 1e12
GB = 1e9

GPUS: dict[str, GpuSpec] = {
    "h100-80gb": GpuSpec(
        name="h100-80gb",
        memory_gib=79.19,
        memory_bandwidth_bytes_per_s=3.35 * TB,
        bf16_flops_per_s=989.4 * TFLOPS,
        fp8_flops_per_s=1978.9 * TFLOPS,
        interconnect_bytes_per_s=450.0 * GB,
        **calibration.H100,  # type: ignore[arg-type]
    ),
    "a100-80gb": GpuSpec(
        name="a100-80gb",
        memory_gib=79.19,
        memory_bandwidth_bytes_per_s=2.039 * TB,
        bf16_flops_per_s=312.0 * TFLOPS,
        fp8_flops_per_s=0.0,
        interconnect_bytes_per_s=300.0 * GB,
        **calibration.A100,  # type: ignore[arg-type]
    ),
    "l40s-48gb": GpuSpec(
        name="l40s-48gb",
        memory_gib=44.52,
        memory_bandwidth_bytes_per_s=0.864 * TB,
        bf16_flops_per_s=362.05 * TFLOPS,
        fp8_flops_per_s=733.0 * TFLOPS,
        interconnect_bytes_per_s=32.0 * GB,
        **calibration.A100,  # type: ignore[arg-type]
    ),
}
"""The catalogue of GPU types, by name."""

GPU_SOURCES: dict[str, str] = {
    "h100-80gb": (
        "NVIDIA H100 Tensor Core GPU datasheet (SXM5): 80 GB HBM3 at 3.35 TB/s, 989.4 dense bf16 and "
        "1,978.9 dense fp8 TFLOPS, NVLink 900 GB/s (450 GB/s per direction). Memory as the CUDA runtime "
        "reports it, 79.19 GiB, from a vLLM start-up log on an H100 80GB "
        "(kubernetes-sigs/gateway-api-inference-extension PR 550). Efficiencies fitted to the "
        "splitwise-sim and Vidur H100 profiles."
    ),
    "a100-80gb": (
        "NVIDIA A100 Tensor Core GPU datasheet (SXM4 80GB): HBM2e at 2.039 TB/s, 312 dense bf16 TFLOPS, "
        "no fp8 tensor cores, NVLink 600 GB/s (300 GB/s per direction). Memory taken as the H100's "
        "79.19 GiB (both carry 80 GiB of HBM). Efficiencies fitted to the splitwise-sim A100 profiles."
    ),
    "l40s-48gb": (
        "NVIDIA L40S datasheet: 48 GB GDDR6 at 864 GB/s, 362.05 dense bf16 and 733 dense fp8 TFLOPS, "
        "PCIe Gen4 x16 (32 GB/s per direction), no NVLink. Memory 44.52 GiB as the CUDA runtime reports "
        "48 GB parts (estimate). No bundled profile: efficiencies borrowed from the A100 fit, so its "
        "error is not known."
    ),
}
"""Where each catalogue GPU's figures come from."""


def resolve_gpu(gpu: str | GpuSpec | Any) -> GpuSpec:
    """A catalogue name, a :class:`GpuSpec` or a mapping of its fields, as a :class:`GpuSpec`."""
    hint = (
        ": name, memory_gib, memory_bandwidth_bytes_per_s, bf16_flops_per_s, fp8_flops_per_s, "
        "interconnect_bytes_per_s"
    )
    return resolve_spec(gpu, GPUS, GpuSpec, "gpu", "GPU", hint)
