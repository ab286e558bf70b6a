"""Fit the serving model's efficiencies to the bundled profiles and check it on data it did not see.

    python calibration/fit.py            # fit, print the tables, write gpu_alloc_env/serving/calibration.py
    python calibration/fit.py --check    # fit and fail if the committed calibration differs

Data (``calibration/profiles/``, copied unmodified with their MIT licenses, see its README):

* ``splitwise-sim/perf_model.csv``: prefill and per-iteration decode times of Llama-2-70B on 2, 4 and
  8 A100-80GB and H100-80GB, batches of 1 to 64, prompts of 128 to 8,192 tokens (several repeats);
  BLOOM-176B on 8 GPUs of each;
* ``vidur/network/h100_dgx/all_reduce.csv``: all-reduce times on an H100 DGX by message size and GPUs;
* ``vidur/h100/<model>/mlp.csv``: times of the linear operators of one layer of Llama-2-7B,
  Llama-2-70B and Qwen-72B on H100, tensor parallel 1 to 8, by tokens.

Fitted (per GPU type): memory and compute efficiency, per-layer and per-sequence overhead, on the
Llama-2-70B rows only, by robust least squares on log times; the all-reduce latency and efficiency
on Vidur's all-reduce table. Held out: BLOOM-176B (another architecture, 70 layers, 112 heads of
multi-head attention) and Vidur's per-operator times (Llama-2-7B at tensor parallel 1, where no
splitwise row exists). Errors are ``model / measured - 1``.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from gpu_alloc_env.serving.hardware import GPUS, GpuSpec
from gpu_alloc_env.serving.models import MODELS, ModelSpec
from gpu_alloc_env.serving.perf import IterationCoefficients, decode_time_s, prefill_time_s

ROOT = Path(__file__).resolve().parent
PROFILES = ROOT / "profiles"
OUTPUT = ROOT.parent / "gpu_alloc_env" / "serving" / "calibration.py"
SPLITWISE_MODELS = {"llama2-70b": "llama-2-70b", "bloom-176b": "bloom-176b"}
SPLITWISE_GPUS = {"h100-80gb": "h100-80gb", "a100-80gb": "a100-80gb"}
FITTED = ("memory_efficiency", "compute_efficiency", "layer_overhead_s", "sequence_overhead_s")
LOWER = (0.05, 0.05, 0.0, 0.0)
UPPER = (1.0, 1.0, 2e-3, 5e-3)
START = (0.7, 0.5, 1e-4, 1e-4)


@dataclass(frozen=True)
class Point:
    """One profiled configuration: median of its repeats, in seconds."""

    model: str
    gpu: str
    tensor_parallel: int
    phase: str
    """``prefill`` or ``decode``."""
    batch: int
    prompt_tokens: int
    output_tokens: int
    measured_s: float

    @property
    def context_tokens(self) -> float:
        """Mean KV tokens per request over a decode: the prompt and half the output."""
        return self.prompt_tokens + self.output_tokens / 2.0

    def label(self) -> str:
        """A short description for the tables."""
        shape = f"batch {self.batch}, prompt {self.prompt_tokens}"
        if self.phase == "decode":
            shape += f", output {self.output_tokens}"
        return f"{self.model} {self.gpu} TP{self.tensor_parallel} {self.phase} ({shape})"


def read_splitwise(path: Path) -> list[Point]:
    """The profile's configurations, each the median of its repeats."""
    groups: dict[tuple[str, str, int, int, int, int], list[tuple[float, float]]] = defaultdict(list)
    with path.open() as handle:
        for row in csv.DictReader(handle):
            if row["model"] not in SPLITWISE_MODELS or row["hardware"] not in SPLITWISE_GPUS:
                continue  # the power-capped H100 rows are another operating point
            key = (
                SPLITWISE_MODELS[row["model"]],
                SPLITWISE_GPUS[row["hardware"]],
                int(row["tensor_parallel"]),
                int(row["batch_size"]),
                int(row["prompt_size"]),
                int(row["token_size"]),
            )
            groups[key].append((float(row["prompt_time"]) / 1e3, float(row["token_time"]) / 1e3))
    points = []
    prefill_seen: set[tuple[str, str, int, int, int]] = set()
    for (model, gpu, tp, batch, prompt, output), values in sorted(groups.items()):
        # Prefill does not depend on the output length: one point per prompt shape.
        if (model, gpu, tp, batch, prompt) not in prefill_seen:
            prefill_seen.add((model, gpu, tp, batch, prompt))
            times = [
                v[0] for k, vals in groups.items() if k[:5] == (model, gpu, tp, batch, prompt) for v in vals
            ]
            points.append(Point(model, gpu, tp, "prefill", batch, prompt, 0, statistics.median(times)))
        points.append(
            Point(model, gpu, tp, "decode", batch, prompt, output, statistics.median(v[1] for v in values))
        )
    return points


def anomalies(points: Sequence[Point]) -> list[Point]:
    """Points more than 10% faster than the same shape at half the batch: not monotone in work.

    Doubling the batch doubles the tokens of a prefill and adds sequences to a decode; a time that
    falls instead (Llama-2-70B on 2 GPUs at batch 64: a 360 ms prefill after 2,398 ms at batch 32)
    is a measurement artefact, left out of the fit and of the error tables.
    """
    index = {
        (p.model, p.gpu, p.tensor_parallel, p.phase, p.batch, p.prompt_tokens, p.output_tokens): p
        for p in points
    }
    flagged = []
    for p in points:
        half = index.get(
            (p.model, p.gpu, p.tensor_parallel, p.phase, p.batch // 2, p.prompt_tokens, p.output_tokens)
        )
        if p.batch > 1 and half is not None and p.measured_s < 0.9 * half.measured_s:
            flagged.append(p)
    return flagged


def predict(point: Point, gpu: GpuSpec) -> float:
    """The model's time for ``point`` on ``gpu`` (its calibration as given)."""
    model = MODELS[point.model]
    coef = IterationCoefficients.derive(model, gpu, point.tensor_parallel, "bf16").as_array()
    if point.phase == "prefill":
        return prefill_time_s(coef, point.batch, point.prompt_tokens)
    return decode_time_s(coef, point.batch, point.context_tokens)


# ------------------------------------------------------------------------------- all-reduce
def read_allreduce(path: Path) -> list[tuple[int, float, float]]:
    """(GPUs, message bytes, median seconds) of Vidur's H100 DGX all-reduce table."""
    groups: dict[tuple[int, int], list[float]] = defaultdict(list)
    with path.open() as handle:
        for row in csv.DictReader(handle):
            groups[(int(row["num_workers"]), int(row["size"]))].append(
                float(row["time_stats.all_reduce.median"]) / 1e3
            )
    return [(k, float(size), statistics.median(times)) for (k, size), times in sorted(groups.items())]


def allreduce_time_s(gpus: int, size_bytes: float, latency_s: float, bytes_per_s: float) -> float:
    """Ring all-reduce: a latency plus ``2 (k - 1) / k`` of the message over the link."""
    return latency_s + 2.0 * (gpus - 1) / gpus * size_bytes / bytes_per_s


def fit_allreduce(rows: Sequence[tuple[int, float, float]], link_bytes_per_s: float) -> tuple[float, float]:
    """(latency_s, efficiency) minimising the log error over the table."""
    k = np.array([r[0] for r in rows], dtype=float)
    size = np.array([r[1] for r in rows])
    measured = np.array([r[2] for r in rows])

    def residual(theta: np.ndarray) -> np.ndarray:
        model = theta[0] * 1e-6 + 2.0 * (k - 1) / k * size / (link_bytes_per_s * theta[1])
        logs: np.ndarray = np.log(model / measured)
        return logs

    fit = least_squares(
        residual, x0=[20.0, 0.5], bounds=([0.1, 0.01], [200.0, 1.0]), loss="soft_l1", f_scale=0.1
    )
    return float(fit.x[0] * 1e-6), float(fit.x[1])


# ------------------------------------------------------------------------------- efficiencies
def with_fit(gpu: GpuSpec, theta: Iterable[float], latency_s: float, efficiency: float) -> GpuSpec:
    """``gpu`` with fitted efficiencies."""
    values = dict(zip(FITTED, theta, strict=True))
    return gpu.replace(**values, allreduce_latency_s=latency_s, allreduce_efficiency=efficiency)


def fit_gpu(points: Sequence[Point], gpu: GpuSpec, latency_s: float, efficiency: float) -> GpuSpec:
    """The four efficiencies of ``gpu`` minimising the robust log error over ``points``."""
    measured = np.array([p.measured_s for p in points])

    def residual(theta: np.ndarray) -> np.ndarray:
        fitted = with_fit(gpu, theta, latency_s, efficiency)
        logs: np.ndarray = np.log(np.array([predict(p, fitted) for p in points]) / measured)
        return logs

    fit = least_squares(residual, x0=START, bounds=(LOWER, UPPER), loss="soft_l1", f_scale=0.1, x_scale="jac")
    return with_fit(gpu, fit.x, latency_s, efficiency)


# ------------------------------------------------------------------------------- reports
def errors(points: Sequence[Point], gpu: GpuSpec) -> list[float]:
    """``model / measured - 1`` of every point."""
    return [predict(p, gpu) / p.measured_s - 1.0 for p in points]


def summary_row(name: str, errs: Sequence[float]) -> str:
    """A Markdown row: points, median and 90th-percentile absolute error, worst error."""
    absolute = sorted(abs(e) for e in errs)
    p90 = absolute[min(len(absolute) - 1, math.ceil(0.9 * len(absolute)) - 1)]
    worst = max(errs, key=abs)
    return (
        f"| {name} | {len(errs)} | {100 * statistics.median(absolute):.1f}% | {100 * p90:.1f}% | "
        f"{100 * worst:+.1f}% |"
    )


def vidur_linear_rows(model_dir: Path, spec: ModelSpec) -> list[tuple[int, int, float]]:
    """(tensor parallel, tokens, measured seconds of one layer's linear operators)."""
    ops = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")
    rows = []
    with (model_dir / "mlp.csv").open() as handle:
        for row in csv.DictReader(handle):
            total = sum(float(row[f"time_stats.{op}.median"]) for op in ops) / 1e3
            rows.append((int(row["num_tensor_parallel_workers"]), int(row["num_tokens"]), total))
    return rows


def vidur_linear_model_s(spec: ModelSpec, gpu: GpuSpec, tensor_parallel: int, tokens: int) -> float:
    """The roofline of one layer's linear operators: weights read, or matmul FLOPs, per GPU."""
    weights = (
        spec.layer_params * 2.0 / tensor_parallel / (gpu.memory_bandwidth_bytes_per_s * gpu.memory_efficiency)
    )
    flops = (
        2.0 * spec.layer_params * tokens / tensor_parallel / (gpu.bf16_flops_per_s * gpu.compute_efficiency)
    )
    return max(weights, flops)


VIDUR_MODELS = {"Llama-2-7b-hf": "llama-2-7b", "Llama-2-70b-hf": "llama-2-70b", "Qwen-72B": "qwen-72b"}


def render_module(fits: dict[str, GpuSpec], table: str) -> str:
    """The source of ``gpu_alloc_env/serving/calibration.py``."""
    lines = [
        '"""Efficiencies of the serving model, fitted to the bundled profiles by ``calibration/fit.py``.',
        "",
        "Do not edit: regenerate with ``python calibration/fit.py``. Errors of the fit",
        "(model / measured - 1), as that command printed them:",
        "",
        *table.strip().splitlines(),
        '"""',
        "",
    ]
    for key, gpu in fits.items():
        lines.append(f"{key} = {{")
        for name in (*FITTED, "allreduce_latency_s", "allreduce_efficiency"):
            lines.append(f'    "{name}": {float(f"{getattr(gpu, name):.4g}")!r},')
        lines.append("}")
        lines.append(f'"""Fitted to the {gpu.name} rows of the profiles."""')
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def run(check: bool) -> int:
    """Fit, print the tables, and write (or check) the calibration module."""
    points = read_splitwise(PROFILES / "splitwise-sim" / "perf_model.csv")
    excluded = anomalies(points)
    points = [p for p in points if p not in excluded]
    latency_s, efficiency = fit_allreduce(
        read_allreduce(PROFILES / "vidur" / "network" / "h100_dgx" / "all_reduce.csv"),
        GPUS["h100-80gb"].interconnect_bytes_per_s,
    )
    fits = {}
    for key, name in (("H100", "h100-80gb"), ("A100", "a100-80gb")):
        fitted_on = [p for p in points if p.model == "llama-2-70b" and p.gpu == name]
        fits[key] = fit_gpu(fitted_on, GPUS[name], latency_s, efficiency)

    lines = ["| data | points | median abs. error | p90 abs. error | worst |", "|---|---|---|---|---|"]
    for key, name in (("H100", "h100-80gb"), ("A100", "a100-80gb")):
        for model, role in (("llama-2-70b", "fitted"), ("bloom-176b", "held out")):
            for phase in ("prefill", "decode"):
                subset = [p for p in points if p.model == model and p.gpu == name and p.phase == phase]
                lines.append(summary_row(f"{model} {name} {phase} ({role})", errors(subset, fits[key])))
    ar_rows = read_allreduce(PROFILES / "vidur" / "network" / "h100_dgx" / "all_reduce.csv")
    ar_errors = [
        allreduce_time_s(k, size, latency_s, GPUS["h100-80gb"].interconnect_bytes_per_s * efficiency) / t
        - 1.0
        for k, size, t in ar_rows
    ]
    lines.append(summary_row("all-reduce, H100 DGX, 2-8 GPUs (fitted)", ar_errors))
    for folder, model in VIDUR_MODELS.items():
        spec = MODELS[model]
        rows = vidur_linear_rows(PROFILES / "vidur" / "h100" / folder, spec)
        errs = [vidur_linear_model_s(spec, fits["H100"], tp, tokens) / t - 1.0 for tp, tokens, t in rows]
        lines.append(summary_row(f"{model} linear operators per layer, H100 TP1-8 (held out)", errs))
    table = "\n".join(lines)
    table += "\n\nLeft out as not monotone in the batch (see ``anomalies``):\n" + "\n".join(
        f"- {p.label()}: {1e3 * p.measured_s:.1f} ms" for p in excluded
    )

    print("Fitted efficiencies:")
    for key, gpu in fits.items():
        values = ", ".join(
            f"{n}={getattr(gpu, n):.4g}" for n in (*FITTED, "allreduce_latency_s", "allreduce_efficiency")
        )
        print(f"  {key}: {values}")
    print()
    print(table)
    source = render_module(fits, table)
    if check:
        if OUTPUT.read_text() != source:
            print(f"\n{OUTPUT} differs from a fresh fit; run python calibration/fit.py", file=sys.stderr)
            return 1
        print(f"\n{OUTPUT} matches the fit")
        return 0
    OUTPUT.write_text(source)
    print(f"\nwrote {OUTPUT}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed calibration differs")
    return run(parser.parse_args(argv).check)


if __name__ == "__main__":
    sys.exit(main())
