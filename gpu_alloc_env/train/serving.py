"""``gpu-alloc serving``: one replica under a closed loop of clients, as users size a deployment.

``concurrency`` clients each send a request of ``input_tokens`` prompt and ``output_tokens`` output
tokens, and their next one as soon as the last completes (:func:`gpu_alloc_env.core.closed_loop.closed_loop`).
The replica is the model on ``tensor_parallel`` GPUs with vLLM's defaults (``gpu_memory_utilization``
0.9, the batch limits of the GPU type), built as the environment builds it
(:func:`gpu_alloc_env.serving.engine.build_engine`); the platform only sets the cold start printed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from gpu_alloc_env.core.closed_loop import ClosedLoopResult, closed_loop
from gpu_alloc_env.errors import ConfigError
from gpu_alloc_env.serving.engine import (
    BLOCK_TOKENS,
    EngineSpec,
    default_engine,
)
from gpu_alloc_env.serving.hardware import resolve_gpu
from gpu_alloc_env.serving.models import DTYPES, resolve_model
from gpu_alloc_env.serving.platforms import resolve_platform

JSON_KEYS: tuple[str, ...] = (
    "concurrency",
    "ttft_s",
    "itl_s",
    "e2e_latency_s",
    "output_tokens_per_s",
    "requests_per_s",
)
"""The keys of each object of ``gpu-alloc serving --json``, in order."""

OWNER = "serving"
"""Prefix of the error messages (after ``gpu-alloc: error:``)."""


def replica_engine(
    model: str, gpu: str, tensor_parallel: int, dtype: str, platform: str = "runpod"
) -> EngineSpec:
    """One replica of ``model`` in ``dtype`` on ``tensor_parallel`` GPUs of type ``gpu``.

    Engine settings are vLLM's defaults; the cold start is the platform's (its default weight
    source and engine start-up).

    Raises:
        ConfigError: an unknown model, GPU or platform, a degree that does not split the heads or
            exceeds a node, or weights that do not fit.
    """
    if tensor_parallel < 1:
        raise ConfigError(
            f"{OWNER}: --tensor-parallel must be >= 1 (GPUs per replica), got {tensor_parallel}; "
            "use 1, 2, 4 or 8"
        )
    if dtype not in DTYPES:
        raise ConfigError(f"{OWNER}: --dtype must be one of {list(DTYPES)}, got {dtype!r}")
    return default_engine(
        resolve_model(model),
        resolve_gpu(gpu),
        tensor_parallel,
        dtype,
        resolve_platform(platform),
        owner=OWNER,
    )


def check_load(engine: EngineSpec, concurrency: Sequence[int], input_tokens: int, output_tokens: int) -> None:
    """Raise ``ConfigError`` unless every concurrency and the request size can run on ``engine``."""
    low = [c for c in concurrency if c < 1]
    if low:
        raise ConfigError(f"{OWNER}: --concurrency must be >= 1 (clients), got {low[0]}; pass 1 or more")
    for flag, tokens in (("--input-tokens", input_tokens), ("--output-tokens", output_tokens)):
        if tokens < 1:
            raise ConfigError(f"{OWNER}: {flag} must be >= 1, got {tokens}; pass 1 or more")
    if input_tokens + output_tokens > engine.max_model_len:
        raise ConfigError(
            f"{OWNER}: a request of --input-tokens {input_tokens} + --output-tokens {output_tokens} = "
            f"{input_tokens + output_tokens} tokens exceeds the replica's max_model_len of "
            f"{engine.max_model_len} (the model's context, or what its KV cache holds); use fewer tokens, "
            "or more GPUs per replica if the KV cache is the limit"
        )


def sweep(
    engine: EngineSpec, concurrency: Sequence[int], input_tokens: int, output_tokens: int
) -> list[ClosedLoopResult]:
    """The closed loop at each concurrency, in the order given."""
    check_load(engine, concurrency, input_tokens, output_tokens)
    return [closed_loop(engine, c, input_tokens, output_tokens) for c in concurrency]


def json_records(results: Sequence[ClosedLoopResult]) -> list[dict[str, float | int | None]]:
    """One object per result with exactly :data:`JSON_KEYS`; an undefined ITL (one output token) is None."""
    records: list[dict[str, float | int | None]] = []
    for result in results:
        values = result.to_dict()
        records.append({key: None if _is_nan(values[key]) else values[key] for key in JSON_KEYS})
    return records


def _is_nan(value: float | int) -> bool:
    return isinstance(value, float) and math.isnan(value)


def render_table(
    engine: EngineSpec,
    results: Sequence[ClosedLoopResult],
    *,
    model: str,
    gpu: str,
    dtype: str,
    platform: str,
    input_tokens: int,
    output_tokens: int,
) -> str:
    """The replica's limits and cold start, then one Markdown row per concurrency."""
    k = engine.gpus_per_replica
    weight_source = resolve_platform(platform).weight_source
    lines = [
        f"{model} ({dtype}) on {k} x {gpu}: KV cache {engine.kv_capacity_tokens:,} tokens "
        f"({engine.kv_blocks:,} blocks of {BLOCK_TOKENS}), max_model_len {engine.max_model_len:,}, "
        f"max_num_seqs {engine.max_num_seqs:,}, max_num_batched_tokens {engine.max_batched_tokens:,}",
        f"cold start on {platform}: {engine.cold_start_s:.1f} s (container {engine.container_start_s:.1f} s "
        f"+ weights {engine.weight_load_s:.1f} s from {weight_source} + engine start-up "
        f"{engine.engine_startup_s:.1f} s)",
        f"closed loop of requests with {input_tokens} prompt and {output_tokens} output tokens; "
        "means over the requests of the measurement window",
        "",
        "| concurrency | TTFT (ms) | ITL (ms) | e2e latency (s) | output tok/s | requests/s | preemptions |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        itl = "-" if math.isnan(r.itl_s) else f"{1e3 * r.itl_s:.2f}"
        lines.append(
            f"| {r.concurrency} | {1e3 * r.ttft_s:.1f} | {itl} | {r.e2e_latency_s:.3f} | "
            f"{r.output_tokens_per_s:,.1f} | {r.requests_per_s:.3f} | {r.preemptions} |"
        )
    return "\n".join(lines)


def run_serving(
    *,
    model: str,
    gpu: str,
    tensor_parallel: int,
    dtype: str,
    concurrency: Sequence[int],
    input_tokens: int,
    output_tokens: int,
    as_json: bool = False,
    platform: str = "runpod",
) -> str:
    """The text ``gpu-alloc serving`` prints: the table, or with ``as_json`` a JSON list.

    Raises:
        ConfigError: see :func:`replica_engine` and :func:`check_load`.
    """
    engine = replica_engine(model, gpu, tensor_parallel, dtype, platform)
    results = sweep(engine, concurrency, input_tokens, output_tokens)
    if as_json:
        return json.dumps(json_records(results), indent=2)
    return render_table(
        engine,
        results,
        model=model,
        gpu=gpu,
        dtype=dtype,
        platform=platform,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )
