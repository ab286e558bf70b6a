"""The time of one engine iteration: a roofline over the GPU's memory, compute and interconnect.

One iteration of a replica (its model on ``tensor_parallel`` GPUs) runs the model once over a batch:
one token for each decoding request plus chunks of prompts being prefilled. Its duration is

    t = fixed_s + per_sequence_s * sequences
        + max(weights_s, linear_s_per_token * tokens         # weights read once, or matmul-bound
                         + head_s_per_sequence * sequences)
        + comm_s_per_token * tokens                          # tensor-parallel all-reduces
        + context_s_per_token * context_tokens_read          # KV cache read by attention
        + attention_s_per_pair * attention_pairs             # attention FLOPs (query x key pairs)

per GPU of the replica, each term a hardware figure over its fitted efficiency:

- ``weights_s``: bytes of the layers' weights and the output projection (the input embedding is only
  gathered at the batch's tokens) / tensor_parallel / (memory bandwidth x memory efficiency);
- ``linear_s_per_token``: 2 x the layers' weights / tensor_parallel / (dense peak x compute
  efficiency);
- ``head_s_per_sequence``: the output projection's logits for the one token each sequence samples,
  2 x vocabulary x hidden / tensor_parallel / (dense peak x compute efficiency);
- ``comm_s_per_token``: two ring all-reduces per layer of the token's activations (bf16),
  ``2 (k - 1) / k x hidden x 2 bytes`` each, over the interconnect x all-reduce efficiency;
- ``context_s_per_token``: KV bytes of a token held per GPU / (bandwidth x memory efficiency);
- ``attention_s_per_pair``: 4 x layers x heads x head_dim / tensor_parallel / (peak x efficiency);
- ``fixed_s``: layers x layer overhead, plus two all-reduce latencies per layer when k > 1;
- ``per_sequence_s``: the GPU's sequence overhead.

:func:`iteration_time_s` evaluates it; it is compiled with numba and called by the serving kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import NDArray

from gpu_alloc_env.serving.hardware import GpuSpec
from gpu_alloc_env.serving.models import BYTES_PER_ELEMENT, ModelSpec

ACTIVATION_BYTES = 2.0
"""Activations are all-reduced in bf16, whatever the weights' dtype."""

COEFFICIENT_NAMES: tuple[str, ...] = (
    "fixed_s",
    "per_sequence_s",
    "weights_s",
    "linear_s_per_token",
    "comm_s_per_token",
    "context_s_per_token",
    "attention_s_per_pair",
    "head_s_per_sequence",
)
"""Order of the coefficients in :meth:`IterationCoefficients.as_array`."""


@dataclass(frozen=True)
class IterationCoefficients:
    """The terms of one replica's iteration time (see the module docstring), in seconds."""

    fixed_s: float
    per_sequence_s: float
    weights_s: float
    linear_s_per_token: float
    comm_s_per_token: float
    context_s_per_token: float
    attention_s_per_pair: float
    head_s_per_sequence: float

    @classmethod
    def derive(
        cls, model: ModelSpec, gpu: GpuSpec, tensor_parallel: int, dtype: str
    ) -> IterationCoefficients:
        """The coefficients of ``model`` in ``dtype`` on ``tensor_parallel`` GPUs of type ``gpu``."""
        k = tensor_parallel
        bandwidth = gpu.memory_bandwidth_bytes_per_s * gpu.memory_efficiency
        compute = gpu.flops_per_s(dtype) * gpu.compute_efficiency
        # Attention runs on bf16 (or fp8) activations at the dense peak of the weights' dtype.
        allreduces = 2 * model.num_layers if k > 1 else 0
        ring_bytes_per_token = 2.0 * (k - 1) / k * model.hidden_size * ACTIVATION_BYTES
        link = gpu.interconnect_bytes_per_s * gpu.allreduce_efficiency
        kv_per_gpu = (
            2.0 * model.num_layers * model.kv_heads_per_gpu(k) * model.head_dim * BYTES_PER_ELEMENT[dtype]
        )
        return cls(
            fixed_s=model.num_layers * gpu.layer_overhead_s + allreduces * gpu.allreduce_latency_s,
            per_sequence_s=gpu.sequence_overhead_s,
            weights_s=model.iteration_read_bytes(dtype) / k / bandwidth,
            linear_s_per_token=model.linear_flops_per_token() / k / compute,
            comm_s_per_token=allreduces * ring_bytes_per_token / link,
            context_s_per_token=kv_per_gpu / bandwidth,
            attention_s_per_pair=model.attention_flops_per_pair() / k / compute,
            head_s_per_sequence=model.head_flops_per_sample() / k / compute,
        )

    def as_array(self) -> NDArray[np.float64]:
        """The coefficients in :data:`COEFFICIENT_NAMES` order, as the kernel reads them."""
        return np.array([getattr(self, name) for name in COEFFICIENT_NAMES], dtype=np.float64)


@njit(cache=True)
def iteration_time_s(
    coef: NDArray[np.float64], sequences: float, tokens: float, context_tokens: float, attention_pairs: float
) -> float:
    """Seconds of one iteration of ``sequences`` requests computing ``tokens`` tokens in all.

    Args:
        coef: the replica's :meth:`IterationCoefficients.as_array`.
        sequences: requests in the batch.
        tokens: tokens computed (one per decoding request plus the prefill chunks).
        context_tokens: KV-cache tokens read by attention (earlier tokens of every request).
        attention_pairs: query-key pairs of attention over the batch.
    """
    if tokens <= 0.0:
        return 0.0
    linear = coef[3] * tokens + coef[7] * sequences
    weights = coef[2] if coef[2] > linear else linear
    seconds: float = (
        coef[0]
        + coef[1] * sequences
        + weights
        + coef[4] * tokens
        + coef[5] * context_tokens
        + coef[6] * attention_pairs
    )
    return seconds


def prefill_time_s(coef: NDArray[np.float64], batch: int, prompt_tokens: int) -> float:
    """One iteration prefilling ``batch`` prompts of ``prompt_tokens`` tokens from scratch."""
    pairs = batch * prompt_tokens * (prompt_tokens + 1) / 2.0
    seconds: float = iteration_time_s(coef, float(batch), float(batch * prompt_tokens), 0.0, pairs)
    return float(seconds)


def decode_time_s(coef: NDArray[np.float64], batch: int, context_tokens: float) -> float:
    """One decode iteration of ``batch`` requests that each hold ``context_tokens`` tokens of KV."""
    seconds: float = iteration_time_s(
        coef, float(batch), float(batch), batch * context_tokens, batch * (context_tokens + 1.0)
    )
    return float(seconds)
