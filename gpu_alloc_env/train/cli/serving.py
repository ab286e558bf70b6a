"""``gpu-alloc serving``: one replica under a closed loop of clients, as a deployment is sized."""

from __future__ import annotations

import argparse
from typing import Any

NAME = "serving"


def add_parser(sub: Any) -> None:
    """The ``serving`` subcommand and its options."""
    from gpu_alloc_env.serving.hardware import GPUS
    from gpu_alloc_env.serving.models import MODELS
    from gpu_alloc_env.serving.platforms import PLATFORMS

    serving = sub.add_parser(
        "serving",
        help="one replica under a closed loop of clients: TTFT, ITL, latency and throughput",
        description="Run the serving model on its own, as users size a deployment: C clients each "
        "send a request of I prompt and O output tokens to one replica (the model on K GPUs, vLLM's "
        "defaults) and the next as soon as the last completes. Prints, per concurrency, the mean time "
        "to first token, inter-token latency, end-to-end latency, output tokens/s and requests/s, "
        "with the replica's KV-cache capacity, max_model_len and cold start.",
    )
    serving.add_argument("--model", required=True, metavar="NAME", help=f"one of {sorted(MODELS)}")
    serving.add_argument("--gpu", required=True, metavar="NAME", help=f"one of {sorted(GPUS)}")
    serving.add_argument("--tensor-parallel", type=int, required=True, metavar="K", help="GPUs per replica")
    serving.add_argument("--dtype", choices=["bf16", "fp8"], required=True, help="weights and KV cache")
    serving.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        required=True,
        metavar="C",
        help="closed-loop clients, one run each",
    )
    serving.add_argument("--input-tokens", type=int, required=True, metavar="I", help="prompt tokens")
    serving.add_argument("--output-tokens", type=int, required=True, metavar="O", help="output tokens")
    serving.add_argument(
        "--platform",
        default="runpod",
        metavar="NAME",
        help=f"sets only the cold start printed: one of {sorted(PLATFORMS)} (default runpod)",
    )
    serving.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list of {concurrency, ttft_s, itl_s, e2e_latency_s, output_tokens_per_s, "
        "requests_per_s} instead of the table",
    )


def run(args: argparse.Namespace) -> int:
    """Run the closed loops and print the table (or the JSON)."""
    from gpu_alloc_env.train.serving import run_serving

    print(
        run_serving(
            model=args.model,
            gpu=args.gpu,
            tensor_parallel=args.tensor_parallel,
            dtype=args.dtype,
            concurrency=args.concurrency,
            input_tokens=args.input_tokens,
            output_tokens=args.output_tokens,
            as_json=args.json,
            platform=args.platform,
        )
    )
    return 0
