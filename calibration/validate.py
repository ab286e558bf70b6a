"""Check the serving model against published measurements it was not fitted to; print Markdown tables.

    python calibration/validate.py

The fit (``calibration/fit.py``) used only splitwise-sim's Llama-2-70B rows and Vidur's all-reduce
table. Every other figure here is a published measurement, named by its source; each row gives the
configuration, the measured figure, the model's and the error ``model / measured - 1``. The model is
the committed calibration (``gpu_alloc_env/serving/calibration.py``), with vLLM's engine defaults. No
network access: the measurements are written below, with where each comes from.

Some cold-start parameters were *chosen* from the rows they are compared with (the storage tiers'
bandwidths and the engine start-up, ``gpu_alloc_env/serving/platforms.py``); those rows say so and
check consistency, not prediction.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import fit

from gpu_alloc_env.core.closed_loop import ClosedLoopResult, closed_loop
from gpu_alloc_env.serving.engine import (
    GPU_MEMORY_UTILIZATION,
    KV_RESERVE_GIB,
    EngineSpec,
    default_engine,
)
from gpu_alloc_env.serving.hardware import GPUS, GpuSpec
from gpu_alloc_env.serving.models import MODELS, ModelSpec
from gpu_alloc_env.serving.perf import prefill_time_s
from gpu_alloc_env.serving.platforms import LOAD_BANDWIDTH_BYTES_PER_S, PLATFORMS

A100_40GB = GPUS["a100-80gb"].replace(
    name="a100-40gb", memory_gib=39.4, memory_bandwidth_bytes_per_s=1.555e12
)
"""The a100-80gb entry with the 40 GB part's memory (39.4 GiB as CUDA reports it) and bandwidth
(1.555 TB/s, NVIDIA A100 datasheet); compute, interconnect and fitted efficiencies unchanged."""

QWEN3_32B = ModelSpec("qwen3-32b", 64, 5120, 64, 8, 25600, 151936, 40960, head_dim=128)
"""Qwen/Qwen3-32B, config.json (32.8B parameters; the per-head q/k norms are neglected)."""

OPT_30B = ModelSpec("opt-30b", 48, 7168, 56, 56, 28672, 50272, 2048, gated_mlp=False, tied_embeddings=True)
"""facebook/opt-30b, config.json (ReLU MLP of 4 x hidden, tied embeddings; biases and learned
positions neglected)."""

HEADER = (
    "| source | configuration | figure | method | measured | model | error |",
    "|---|---|---|---|---:|---:|---:|",
)


@dataclass(frozen=True)
class Row:
    """One published figure against the model's."""

    source: str
    configuration: str
    figure: str
    """What is compared, with its unit."""
    method: str
    """How the model's figure is computed."""
    measured: float
    model: float

    @property
    def error(self) -> float:
        """``model / measured - 1``."""
        return self.model / self.measured - 1.0

    def markdown(self) -> str:
        """The row of a Markdown table under :data:`HEADER`."""
        cells = (self.source, self.configuration, self.figure, self.method)
        return (
            f"| {' | '.join(cells)} | {self.measured:,.4g} | {self.model:,.4g} | {100 * self.error:+.1f}% |"
        )


def replica(
    model: ModelSpec, gpu: GpuSpec, tensor_parallel: int = 1, dtype: str = "bf16", weight_source: str = "ssd"
) -> EngineSpec:
    """One replica with vLLM's defaults, weights loading from ``weight_source`` (RunPod's platform)."""
    return default_engine(model, gpu, tensor_parallel, dtype, PLATFORMS["runpod"], weight_source, "validate")


# ----------------------------------------------------------------------------- serving speed
LAMBDA = "LambdaLabsML/vllm-benchmark, benchmark_v0.md"
LAMBDA_TOKENS = {"mistral-7b": (230, 224), "mistral-nemo-12b": (216, 164)}
"""Mean prompt and output tokens per request of the benchmark's 320 ShareGPT prompts, from its result
files (``results/prompt_320/1xH100-80GB-SXM/*.json``): Mistral-7B 73,671 / 71,810 tokens (the run
whose throughput and ITL the table reports), Mistral-Nemo 69,196 / 52,440 (a later run of the same
prompts; its output count is an approximation for the table's run)."""
LAMBDA_RUNS: tuple[tuple[str, str, int, float, float], ...] = (
    # model, GPU, GPUs (tensor parallel), output tok/s, median ITL in ms: the table's "1591.4/56.51"
    ("mistral-7b", "a100-80gb", 1, 1591.4, 56.51),
    ("mistral-7b", "h100-80gb", 1, 3281.19, 27.23),
    ("mistral-nemo-12b", "a100-80gb", 1, 1277.85, 61.48),
    ("mistral-nemo-12b", "h100-80gb", 1, 2414.81, 31.16),
    ("mistral-7b", "a100-80gb", 2, 1861.61, 53.52),
    ("mistral-7b", "a100-80gb", 4, 2228.35, 44.66),
    ("mistral-7b", "a100-80gb", 8, 2381.43, 39.89),
    ("mistral-7b", "h100-80gb", 2, 3758.54, 24.26),
    ("mistral-7b", "h100-80gb", 4, 4133.32, 21.79),
    ("mistral-7b", "h100-80gb", 8, 4397.11, 21.56),
)


def lambda_rows(tensor_parallel: Sequence[int]) -> list[Row]:
    """Throughput and ITL of the Lambda benchmark at the clients it kept decoding (Little's law)."""
    rows = []
    for name, gpu, k, tokens_per_s, itl_ms in LAMBDA_RUNS:
        if k not in tensor_parallel:
            continue
        prompt, output = LAMBDA_TOKENS[name]
        clients = round(tokens_per_s * itl_ms / 1e3)
        result = closed_loop(replica(MODELS[name], GPUS[gpu], k), clients, prompt, output)
        config = f"{name} bf16, {k}x {gpu}, {prompt} in / {output} out"
        method = f"closed loop, C = tok/s x ITL = {clients}"
        rows.append(Row(LAMBDA, config, "output tok/s", method, tokens_per_s, result.output_tokens_per_s))
        rows.append(Row(LAMBDA, config, "median ITL (ms)", method + ", mean ITL", itl_ms, 1e3 * result.itl_s))
    return rows


def musgrave_rows() -> list[Row]:
    """Llama-3.1-8B on one A100-40GB, fixed 1,024 in / 128 out, closed loop at 1 and 8 clients.

    The source's "75 tokens/s" at one client is 1 / TPOT, so only the TPOT is compared.
    """
    source = "johnmusgrave.com, vLLM sweep on A100"
    config = "llama-3.1-8b bf16, 1x a100-40gb, 1024 in / 128 out"
    engine = replica(MODELS["llama-3.1-8b"], A100_40GB)
    alone, eight = (closed_loop(engine, c, 1024, 128) for c in (1, 8))
    gain = eight.output_tokens_per_s / alone.output_tokens_per_s
    return [
        Row(source, config, "TPOT at C=1 (ms)", "closed loop C=1, mean ITL", 13.0, 1e3 * alone.itl_s),
        Row(source, config, "output tok/s, C=8 / C=1", "closed loops C=8 and C=1", 6.6, gain),
    ]


TENSORRT = "TensorRT-LLM docs/source/performance.md (v0.5)"
TENSORRT_RUNS: tuple[tuple[str, str, str, str, int, int, float], ...] = (
    # model, GPU, dtype run, dtype published, GPUs (tensor parallel), prompt tokens, first-token ms
    ("llama-2-7b", "a100-80gb", "bf16", "fp16", 1, 2048, 133.0),
    ("llama-2-7b", "a100-80gb", "bf16", "fp16", 1, 128, 16.0),
    ("llama-2-7b", "h100-80gb", "fp8", "fp8", 1, 2048, 36.0),
    ("llama-2-7b", "h100-80gb", "fp8", "fp8", 1, 128, 7.0),
    ("llama-2-70b", "a100-80gb", "bf16", "fp16", 4, 2048, 377.0),
    ("llama-2-70b", "a100-80gb", "bf16", "fp16", 4, 128, 47.0),
    ("llama-2-70b", "h100-80gb", "fp8", "fp8", 4, 2048, 109.0),
    ("llama-2-70b", "h100-80gb", "fp8", "fp8", 4, 128, 26.0),
)
"""The "Low Latency" tables (TensorRT-LLM v0.5, batch size 1): "LLaMA 7B" and "LLaMA 70B" (TP 4)
first-token latency, A100 in fp16 and H100 in fp8."""


def tensorrt_rows(tensor_parallel: Sequence[int]) -> list[Row]:
    """TensorRT-LLM's batch-1 first-token latency of LLaMA 7B and 70B (A100 fp16, H100 fp8)."""
    method = "one prefill iteration (perf.prefill_time_s)"
    rows = []
    for name, gpu, dtype, label, k, prompt, measured_ms in TENSORRT_RUNS:
        if k not in tensor_parallel:
            continue
        coef = replica(MODELS[name], GPUS[gpu], k, dtype=dtype).coefficient_array()
        config = f"{name} {label}, {k}x {gpu}, batch 1"
        figure = f"first-token latency, {prompt:,} tokens (ms)"
        rows.append(Row(TENSORRT, config, figure, method, measured_ms, 1e3 * prefill_time_s(coef, 1, prompt)))
    return rows


LAMBDA_BURST = "LambdaLabsML/vllm-benchmark, results/prompt_10 (20240819 run)"
LAMBDA_BURST_RUNS: tuple[tuple[str, str, int, int, int, int, float, float], ...] = (
    # model, GPU, GPUs, prompts, input tokens, output tokens, output tok/s, median ITL in ms
    ("mistral-7b", "h100-80gb", 1, 10, 1585, 2490, 336.73, 7.877),
)
"""``results/prompt_10/1xH100-80GB-SXM/Mistral-7B-Instruct-v0.3_tp1_len2000.json``: the same 10-prompt
start of the ShareGPT set sent at once, vLLM 0.5.4, run the same day (20240819) as the 320-prompt
file the Lambda rows above use. The A100 file of the same name is a later vLLM 0.6 run (20240907,
ITLs of about 108 ms: ten tokens per step of multi-step scheduling), so it is left out; no other
10-prompt file was matched to the table's runs."""


def lambda_burst_rows() -> list[Row]:
    """The Lambda benchmark's 10-prompt runs: ITL at the few requests a small burst keeps decoding.

    Two long answers (890 and 928 tokens) give most of the tokens, so the median ITL is that of a
    batch of one to three; a 7B's iteration hardly changes over that range, in the model too.
    """
    rows = []
    for name, gpu, k, prompts, inputs, outputs, tokens_per_s, itl_ms in LAMBDA_BURST_RUNS:
        prompt, output = round(inputs / prompts), round(outputs / prompts)
        clients = round(tokens_per_s * itl_ms / 1e3)
        result = closed_loop(replica(MODELS[name], GPUS[gpu], k), clients, prompt, output)
        config = f"{name} bf16, {k}x {gpu}, {prompt} in / {output} out, {prompts} prompts"
        method = f"closed loop, C = tok/s x ITL = {clients}, mean ITL"
        rows.append(Row(LAMBDA_BURST, config, "median ITL (ms)", method, itl_ms, 1e3 * result.itl_s))
    return rows


NIM = "NVIDIA NIM docs, nim/benchmarking/llm/1.0.0/performance (NIM 1.8.0)"
NIM_CONFIG = "llama-3.3-70b fp8, 2x h100-80gb, 5000 in / 500 out"
NIM_SWEEP: tuple[tuple[int, float, float, float], ...] = (
    # concurrency, TTFT in ms, ITL in ms, throughput in output tok/s
    (1, 406.77, 18.58, 51.67),
    (5, 546.7, 21.83, 218.48),
    (25, 688.69, 38.75, 623.4),
    (50, 834.51, 59.73, 814.37),
    (100, 7996.25, 92.91, 917.26),
    (150, 34794.22, 92.86, 920.9),
)
"""The "Llama-3.3-70b-instruct Results, Version 1.8.0, 2 x H100 80G, fp8 TP2, 5000 Input Tokens / 500
Output Tokens" table (rows up to C=150 of its 1-250; 200 and 250 repeat the plateau). AIPerf's
concurrency mode: a closed loop of C clients. The page gives neither the engine profile nor the
KV-cache dtype; the plateau below implies fp8 KV (in bf16, 85 requests of 5,500 tokens would need
about 150 GB of cache on two 80 GB GPUs that also hold 70 GB of weights)."""


@functools.cache
def nim_engine() -> EngineSpec:
    """Llama-3.3-70B in fp8 (weights and KV cache) on two H100s, vLLM's defaults."""
    return replica(MODELS["llama-3.3-70b"], GPUS["h100-80gb"], 2, "fp8")


@functools.cache
def nim_result(concurrency: int) -> ClosedLoopResult:
    """The model's closed loop at one of the NIM sweep's concurrencies."""
    return closed_loop(nim_engine(), concurrency, 5000, 500)


def nim_rows() -> list[Row]:
    """TTFT and ITL of NIM's sweep against closed loops at the same concurrency and lengths.

    TTFT up to C=100 (where requests queue for the cache, so it is given in seconds); ITL up to
    C=50 (past it the batch no longer grows, see :func:`kv_saturation_rows`).
    """
    rows = []
    for c, ttft_ms, _, _ in NIM_SWEEP[:5]:
        scale, unit = (1e-3, "s") if ttft_ms > 1e3 else (1.0, "ms")
        figure, method = f"TTFT at C={c} ({unit})", f"closed loop C={c}, mean TTFT"
        ttft = 1e3 * nim_result(c).ttft_s
        rows.append(Row(NIM, NIM_CONFIG, figure, method, scale * ttft_ms, scale * ttft))
    for c, _, itl_ms, _ in NIM_SWEEP[:4]:
        itl = 1e3 * nim_result(c).itl_s
        rows.append(Row(NIM, NIM_CONFIG, f"ITL at C={c} (ms)", f"closed loop C={c}, mean ITL", itl_ms, itl))
    return rows


# ----------------------------------------------------------------------------- KV-cache capacity
def kv_rows() -> list[Row]:
    """The start-up memory profiles of vLLM against :func:`build_engine`'s KV-cache sizing."""
    h100 = GPUS["h100-80gb"]
    llama2, llama3 = (replica(MODELS[name], h100) for name in ("llama-2-7b", "llama-3.1-8b"))
    on_a100 = replica(MODELS["llama-2-7b"], GPUS["a100-80gb"])
    log = "kubernetes-sigs/gateway-api-inference-extension PR 550 (vLLM log)"
    profile = "vllm-project/vllm PR 10511 (memory profile)"
    older = "vllm-project/vllm PR 2031 (vLLM of Dec 2023)"
    first = "llama-2-7b bf16, 1x h100-80gb, 0.90"
    second = "Llama-3-8B (llama-3.1-8b) bf16, 1x h100-80gb, 0.90"
    reserve = ("non-torch + activation peak (GiB)", "kv_reserve_gib")
    kv = ("KV cache (GiB)", "usable - weights - reserve")
    blocks = ("KV-cache blocks of 16 tokens", "build_engine kv_blocks")
    weights = ("weights (GiB)", "parameters x 2 bytes")
    usable = h100.memory_gib * GPU_MEMORY_UTILIZATION
    table = (
        (log, first, "usable memory (GiB)", "79.19 GiB x 0.90", 71.27, usable),
        (log, first, *weights, 12.55, llama2.weights_per_gpu_gib),
        (log, first, *reserve, 0.16 + 2.38, KV_RESERVE_GIB),
        (log, first, *kv, 56.18, llama2.kv_cache_per_gpu_gib),
        (log, first, *blocks, 7191, llama2.kv_blocks),
        (profile, second, *weights, 14.96, llama3.weights_per_gpu_gib),
        (profile, second, *reserve, 1.79 + 1.26, KV_RESERVE_GIB),
        (profile, second, *kv, 53.29, llama3.kv_cache_per_gpu_gib),
        (older, "llama-2-7b bf16, 1x a100-80gb, 0.90", *blocks, 7351, on_a100.kv_blocks),
    )
    return [Row(*entry) for entry in table]


def kv_saturation_rows() -> list[Row]:
    """Where the KV cache saturates: the requests NIM's engine keeps decoding once it stops growing.

    Past C=100 the sweep's throughput and ITL stay flat (920 tok/s, 93 ms) while TTFT grows with
    the queue: the batch is as large as the cache allows for 5,500-token requests. By Little's law
    the requests decoding at once are throughput x ITL; the model's, the same way from its closed
    loop at C=150, where it queues and preempts for its own cache.
    """
    c, _, itl_ms, tokens_per_s = NIM_SWEEP[-1]
    result = nim_result(c)
    kv_tokens = nim_engine().kv_capacity_tokens
    method = f"closed loop C={c}, tok/s x mean ITL (KV {kv_tokens:,} tokens)"
    figure = f"requests decoding at once, C={c}"
    return [
        Row(
            NIM,
            NIM_CONFIG,
            figure,
            method,
            tokens_per_s * itl_ms / 1e3,
            result.output_tokens_per_s * result.itl_s,
        ),
        Row(
            NIM,
            NIM_CONFIG,
            f"output tok/s, C={c}",
            f"closed loop C={c}",
            tokens_per_s,
            result.output_tokens_per_s,
        ),
        Row(
            NIM, NIM_CONFIG, f"ITL at C={c} (ms)", f"closed loop C={c}, mean ITL", itl_ms, 1e3 * result.itl_s
        ),
    ]


# ----------------------------------------------------------------------------- cold starts
def weight_load_s(model: ModelSpec, tier: str, tensor_parallel: int = 1) -> float:
    """The model's weight-load time of one replica from ``tier`` (whole weights / the tier's bandwidth)."""
    return replica(model, GPUS["h100-80gb"], tensor_parallel, weight_source=tier).weight_load_s


def cold_start_rows() -> list[Row]:
    """Weight loading per storage tier, and engine start-up, against published times."""
    readme = "ServerlessLLM sllm_store/README.md"
    paper = "ServerlessLLM, OSDI'24 (arXiv 2401.14351), secondary summary"
    distill = "DeepSeek-R1-Distill-Qwen-32B (qwen2.5-32b) bf16, h100"
    qwen25 = MODELS["qwen2.5-32b"]
    loads = (
        (readme, "llama-3.1-8b bf16, h100, NVMe", MODELS["llama-3.1-8b"], "ssd", 1, 4.4, True),
        (readme, "qwen3-32b bf16, h100, NVMe", QWEN3_32B, "ssd", 1, 20.6, True),
        (readme, "qwen3-32b bf16, h100, cached", QWEN3_32B, "host_memory", 1, 12.5, True),
        (readme, f"{distill}, NVMe", qwen25, "ssd", 1, 19.1, False),
        (readme, f"{distill}, cached", qwen25, "host_memory", 1, 10.2, False),
        (paper, "opt-30b fp16, standard loader", OPT_30B, "remote", 1, 34.0, True),
        (paper, "llama-2-70b fp16, standard loader", MODELS["llama-2-70b"], "remote", 2, 84.0, True),
    )
    rows = [
        Row(source, config, "weight load (s)", _tier(tier, chosen), measured_s, weight_load_s(model, tier, k))
        for source, config, model, tier, k, measured_s, chosen in loads
    ]
    startup = PLATFORMS["runpod"].engine_startup_s
    method = f"engine_startup_s = {startup:g} s (chosen between these rows)"
    for source, config, measured_s in (
        ("vllm-project/vllm PR 11005", "Llama-3-8B, default", 14.2),
        ("vllm-project/vllm PR 11005", "Llama-3-8B, -O3", 39.3),
        ("vllm-project/vllm issue 20264", "Llama 3.2 q8 (3.4 GiB), cached torch.compile", 34.1),
    ):
        rows.append(Row(source, config, "engine start-up (s)", method, measured_s, startup))
    return rows


def _tier(tier: str, chosen: bool) -> str:
    note = " (set from these rows)" if chosen else ""
    return f"weights / {tier} tier {LOAD_BANDWIDTH_BYTES_PER_S[tier] / 1e9:g} GB/s{note}"


# ----------------------------------------------------------------------------- calibration
def calibration_table() -> list[str]:
    """The error table of ``calibration/fit.py``, for the committed calibration (fit's functions)."""
    points = fit.read_splitwise(fit.PROFILES / "splitwise-sim" / "perf_model.csv")
    excluded = fit.anomalies(points)
    points = [p for p in points if p not in excluded]
    lines = ["| data | points | median abs. error | p90 abs. error | worst |", "|---|---|---|---|---|"]
    for gpu in ("h100-80gb", "a100-80gb"):
        for model, role in (("llama-2-70b", "fitted"), ("bloom-176b", "held out")):
            for phase in ("prefill", "decode"):
                subset = [p for p in points if (p.model, p.gpu, p.phase) == (model, gpu, phase)]
                lines.append(
                    fit.summary_row(f"{model} {gpu} {phase} ({role})", fit.errors(subset, GPUS[gpu]))
                )
    h100 = GPUS["h100-80gb"]
    link = h100.interconnect_bytes_per_s * h100.allreduce_efficiency
    allreduce = fit.read_allreduce(fit.PROFILES / "vidur" / "network" / "h100_dgx" / "all_reduce.csv")
    errs = [
        fit.allreduce_time_s(k, size, h100.allreduce_latency_s, link) / t - 1.0 for k, size, t in allreduce
    ]
    lines.append(fit.summary_row("all-reduce, H100 DGX, 2-8 GPUs (fitted)", errs))
    for folder, name in fit.VIDUR_MODELS.items():
        spec = MODELS[name]
        rows = fit.vidur_linear_rows(fit.PROFILES / "vidur" / "h100" / folder, spec)
        errs = [fit.vidur_linear_model_s(spec, h100, tp, tokens) / t - 1.0 for tp, tokens, t in rows]
        lines.append(fit.summary_row(f"{name} linear operators per layer, H100 TP1-8 (held out)", errs))
    return lines


# ----------------------------------------------------------------------------- report
SECTIONS: tuple[tuple[str, str], ...] = (
    (
        "Serving speed",
        "Lambda: vLLM 0.5.4, 320 ShareGPT prompts sent at once, max-num-seqs 256; the model runs the "
        "clients the measured throughput and ITL imply (Little's law) with the mean request, and "
        "compares its mean ITL with the published median; the 10-prompt run of the same day gives "
        "the same configuration's ITL at a few requests. johnmusgrave.com: vLLM 0.23, closed loop "
        "(max-concurrency C). a100-40gb: the a100-80gb entry with 39.4 GiB and 1.555 TB/s (NVIDIA "
        "A100 datasheet). TensorRT-LLM: fp16 on the A100 is run as bf16 (same bytes and FLOPs). "
        "NIM: NVIDIA's published sweep, AIPerf closed loop of C clients with fixed 5,000 in / 500 "
        "out tokens, figures taken as means; the engine is NIM's (the page names no profile; "
        "NIM 1.x serves H100 fp8 with TensorRT-LLM), not vLLM; H100 80G taken as the SXM part. "
        "The model runs a closed loop at the same C and lengths, fp8 weights and KV cache.",
    ),
    (
        "Tensor-parallel scaling",
        "Held-out scaling data of the calibration: the BLOOM-176B TP8 rows above (another "
        "architecture on 8 GPUs). Below, Mistral-7B on 2, 4 and 8 GPUs of the same Lambda table, "
        "same method as its 1-GPU rows, and TensorRT-LLM's LLaMA 70B (llama-2-70b) first-token "
        "latency on 4 GPUs, same method as its LLaMA 7B rows (another engine's measurement of the "
        "model and degree whose splitwise-sim prefill rows were fitted; the H100 rows in fp8).",
    ),
    (
        "KV-cache capacity",
        "vLLM's start-up memory profile against build_engine (GPU memory x 0.90 - weights - 2.5 GiB "
        "reserve per GPU, in blocks of 16 tokens). Last row, where the cache saturates: past C=100 "
        "NIM's sweep keeps 920 tok/s at 93 ms ITL while TTFT grows with the queue, so throughput x "
        "ITL (Little's law) is the number of 5,500-token requests its cache holds; the model's is "
        "computed the same way from its closed loop, which queues and preempts for its own cache.",
    ),
    (
        "Cold starts",
        "Weight loading of the model's storage tiers (weights / bandwidth) and its engine start-up. "
        "qwen3-32b and opt-30b are ModelSpecs from their config.json (defined in this script).",
    ),
)


def all_rows() -> dict[str, list[Row]]:
    """Every comparison, by section title."""
    return {
        "Serving speed": lambda_rows([1])
        + lambda_burst_rows()
        + musgrave_rows()
        + tensorrt_rows([1])
        + nim_rows(),
        "Tensor-parallel scaling": lambda_rows([2, 4, 8]) + tensorrt_rows([4]),
        "KV-cache capacity": kv_rows() + kv_saturation_rows(),
        "Cold starts": cold_start_rows(),
    }


def report() -> str:
    """The Markdown the script prints."""
    lines = ["## Calibration: the bundled profiles", "", *calibration_table()]
    rows = all_rows()
    for title, intro in SECTIONS:
        lines += ["", f"## {title}", "", intro, "", *HEADER, *(row.markdown() for row in rows[title])]
    return "\n".join(lines)


def main() -> int:
    """Print the tables."""
    print(report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
