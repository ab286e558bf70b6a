"""One agent's serving engine: a model on ``tensor_parallel`` GPUs, its KV cache, limits and cold start.

:func:`build_engine` derives, from the model, the GPU, the dtype and the engine settings, what a
vLLM-style engine would: the KV-cache capacity (GPU memory x ``gpu_memory_utilization``, minus the
weights and a per-GPU reserve for activations, CUDA graphs and communication buffers), in blocks of
:data:`BLOCK_TOKENS` tokens; the batch limits; the longest request that fits; the iteration-time
coefficients; and the cold start on a platform. Anything that cannot run raises ``ConfigError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.errors import ConfigError
from gpu_alloc_env.serving.hardware import GIB, GpuSpec
from gpu_alloc_env.serving.models import ModelSpec
from gpu_alloc_env.serving.perf import IterationCoefficients
from gpu_alloc_env.serving.platforms import PlatformSpec

BLOCK_TOKENS = 16
"""Tokens per KV-cache block (vLLM's default ``block_size``)."""
GPU_MEMORY_UTILIZATION = 0.9
"""Share of GPU memory the engine may use (vLLM's default ``gpu_memory_utilization``)."""
KV_RESERVE_GIB = 2.5
"""Per-GPU memory kept for activations and buffers: 2.38 GiB of activation peak and 0.16 GiB of
non-torch memory in a vLLM start-up log on an H100 (kubernetes-sigs/gateway-api-inference-extension
PR 550)."""


def default_batch_limits(gpu: GpuSpec) -> tuple[int, int]:
    """The defaults of vLLM's OpenAI server, ``(max_num_batched_tokens, max_num_seqs)``.

    8,192 and 1,024 on GPUs of at least 70 GiB other than the A100, else 2,048 and 256
    (``EngineArgs.get_batch_defaults``, vllm/engine/arg_utils.py).
    """
    if gpu.memory_gib >= 70.0 and "a100" not in gpu.name.lower():
        return 8192, 1024
    return 2048, 256


@dataclass(frozen=True)
class EngineSpec:
    """What one replica of an agent is, derived by :func:`build_engine`."""

    gpus_per_replica: int
    coefficients: IterationCoefficients
    kv_capacity_tokens: int
    """KV-cache tokens of one replica (whole blocks)."""
    max_num_seqs: int
    """Most requests in one batch."""
    max_batched_tokens: int
    """Token budget of one iteration (decodes plus prefill chunks)."""
    max_model_len: int
    """Longest request (prompt and output) one replica accepts: the model's context, or what its KV
    cache holds if that is less."""
    weight_bytes: float
    weights_per_gpu_gib: float
    kv_cache_per_gpu_gib: float
    container_start_s: float
    weight_load_s: float
    engine_startup_s: float

    @property
    def kv_blocks(self) -> int:
        """KV-cache blocks of one replica."""
        return self.kv_capacity_tokens // BLOCK_TOKENS

    @property
    def cold_start_s(self) -> float:
        """Seconds from granting a replica to serving."""
        return self.container_start_s + self.weight_load_s + self.engine_startup_s

    def coefficient_array(self) -> NDArray[np.float64]:
        """The iteration-time coefficients as the kernel reads them."""
        return self.coefficients.as_array()

    def lone_request_s(
        self, prompt_tokens: NDArray[np.floating], output_tokens: NDArray[np.floating]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(TTFT, latency) of requests served alone on an idle replica: the unloaded latency.

        The prompt is prefilled in chunks of ``max_batched_tokens`` (one iteration each, the last
        one yielding the first token), then each further output token takes one decode iteration
        over a context one token longer, as the engine schedules them; summed in closed form.
        """
        c = self.coefficients
        prompt = np.maximum(np.asarray(prompt_tokens, dtype=np.float64), 1.0)
        output = np.maximum(np.asarray(output_tokens, dtype=np.float64), 1.0)
        budget = float(self.max_batched_tokens)

        def base(tokens: NDArray[np.float64] | float) -> NDArray[np.float64]:
            matmul = c.linear_s_per_token * np.asarray(tokens) + c.head_s_per_sequence
            weights = np.maximum(c.weights_s, matmul)
            cost: NDArray[np.float64] = c.fixed_s + c.per_sequence_s + weights + c.comm_s_per_token * tokens
            return cost

        full = np.floor(prompt / budget)
        rest = prompt - full * budget
        pairs_full = budget * budget * full * (full - 1.0) / 2.0 + full * budget * (budget + 1.0) / 2.0
        ttft = (
            full * base(budget)
            + c.context_s_per_token * budget * full * (full - 1.0) / 2.0
            + c.attention_s_per_pair * pairs_full
        )
        ttft = ttft + np.where(
            rest > 0.0,
            base(rest)
            + c.context_s_per_token * full * budget
            + c.attention_s_per_pair * (rest * full * budget + rest * (rest + 1.0) / 2.0),
            0.0,
        )
        steps = output - 1.0
        context = steps * prompt + steps * (steps - 1.0) / 2.0
        decode = (
            steps * base(1.0) + c.context_s_per_token * context + c.attention_s_per_pair * (context + steps)
        )
        return ttft, ttft + decode

    def lone_ttft_tpot_s(self, prompt_tokens: float, output_tokens: float) -> tuple[float, float]:
        """(TTFT, TPOT) of one request served alone on an idle replica (:meth:`lone_request_s`).

        TPOT is the mean time per output token after the first; a request of fewer than two
        output tokens is taken as two, so that it has one.
        """
        output = max(float(output_tokens), 2.0)
        ttft, latency = self.lone_request_s(np.array([prompt_tokens]), np.array([output]))
        return float(ttft[0]), float((latency[0] - ttft[0]) / (output - 1.0))


def default_engine(
    model: ModelSpec,
    gpu: GpuSpec,
    tensor_parallel: int,
    dtype: str,
    platform: PlatformSpec,
    weight_source: str | None = None,
    owner: str = "replica",
) -> EngineSpec:
    """:func:`build_engine` with vLLM's defaults and the platform's weight source and start-up."""
    return build_engine(
        owner=owner,
        model=model,
        gpu=gpu,
        tensor_parallel=tensor_parallel,
        dtype=dtype,
        gpu_memory_utilization=GPU_MEMORY_UTILIZATION,
        kv_reserve_gib=KV_RESERVE_GIB,
        max_num_seqs=None,
        max_batched_tokens=None,
        platform=platform,
        weight_source=weight_source if weight_source is not None else platform.weight_source,
        engine_startup_s=platform.engine_startup_s,
    )


def build_engine(
    *,
    owner: str,
    model: ModelSpec,
    gpu: GpuSpec,
    tensor_parallel: int,
    dtype: str,
    gpu_memory_utilization: float,
    kv_reserve_gib: float,
    max_num_seqs: int | None,
    max_batched_tokens: int | None,
    platform: PlatformSpec,
    weight_source: str,
    engine_startup_s: float,
) -> EngineSpec:
    """The engine of ``model`` in ``dtype`` on ``tensor_parallel`` GPUs of type ``gpu``.

    Raises:
        ConfigError: the degree does not split the heads or exceeds a node, the reserve exceeds the
            memory, or the weights do not fit beside the reserve.
    """
    k = tensor_parallel
    if k > gpu.max_gpus_per_node:
        raise ConfigError(
            f"{owner}: tensor_parallel={k} exceeds the {gpu.max_gpus_per_node} GPUs of one {gpu.name} "
            "node; a replica does not span nodes, so use at most that many"
        )
    try:
        model.check_tensor_parallel(k)
    except ConfigError as exc:
        raise ConfigError(f"{owner}: {exc}") from None
    usable_gib = gpu.memory_gib * gpu_memory_utilization
    if kv_reserve_gib >= usable_gib:
        raise ConfigError(
            f"{owner}: kv_reserve_gib={kv_reserve_gib:g} is not below the {usable_gib:.2f} GiB an engine "
            f"may use of a {gpu.name} ({gpu.memory_gib:g} GiB x gpu_memory_utilization "
            f"{gpu_memory_utilization:g}); lower the reserve"
        )
    weight_bytes = model.weight_bytes(dtype)
    weights_gib = weight_bytes / k / GIB
    kv_gib = usable_gib - kv_reserve_gib - weights_gib
    if kv_gib <= 0.0:
        needed = math.ceil((weights_gib * k) / (usable_gib - kv_reserve_gib))
        fits = [d for d in (1, 2, 4, 8) if d >= needed and d <= gpu.max_gpus_per_node]
        hint = f"use tensor_parallel={fits[0]} or more" if fits else "use a GPU with more memory"
        raise ConfigError(
            f"{owner}: {model.name} in {dtype} needs {weights_gib:.1f} GiB of weights per GPU at "
            f"tensor_parallel={k}, leaving no KV cache in the {usable_gib - kv_reserve_gib:.1f} GiB a "
            f"{gpu.name} offers after the reserve; {hint}, or dtype='fp8'"
        )
    kv_per_token_per_gpu = model.kv_bytes_per_token(dtype) * model.kv_heads_per_gpu(k) / model.num_kv_heads
    blocks = int(kv_gib * GIB // (kv_per_token_per_gpu * BLOCK_TOKENS))
    if blocks < 1:
        raise ConfigError(
            f"{owner}: {model.name} on {k} {gpu.name} leaves {kv_gib:.3f} GiB per GPU, less than one KV "
            f"block of {BLOCK_TOKENS} tokens; raise tensor_parallel or use dtype='fp8'"
        )
    default_tokens, default_seqs = default_batch_limits(gpu)
    kv_tokens = blocks * BLOCK_TOKENS
    return EngineSpec(
        gpus_per_replica=k,
        coefficients=IterationCoefficients.derive(model, gpu, k, dtype),
        kv_capacity_tokens=kv_tokens,
        max_num_seqs=max_num_seqs if max_num_seqs is not None else default_seqs,
        max_batched_tokens=max_batched_tokens if max_batched_tokens is not None else default_tokens,
        max_model_len=min(model.max_context_tokens, kv_tokens),
        weight_bytes=weight_bytes,
        weights_per_gpu_gib=weights_gib,
        kv_cache_per_gpu_gib=kv_gib,
        container_start_s=platform.container_start_s,
        weight_load_s=weight_bytes / platform.load_bandwidth_bytes_per_s[weight_source],
        engine_startup_s=engine_startup_s,
    )
