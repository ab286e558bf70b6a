"""One replica under a closed loop of clients: the serving model on its own, as users size a deployment.

``concurrency`` clients each send a request of ``input_tokens`` prompt and ``output_tokens`` output
tokens, and the next one as soon as the last completes. The replica runs the same compiled engine as
the environment (:mod:`gpu_alloc_env.core.engine`). Requests completing after a warm-up are measured
over a window long enough to hold many of them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np
from numba import njit

from gpu_alloc_env.core.engine import finish_iteration, queue_push_back, start_iteration
from gpu_alloc_env.core.state import (
    ACTIVE,
    AGENT_PARAMS,
    Params,
    SimState,
    allocate_state,
)
from gpu_alloc_env.serving.engine import EngineSpec
from gpu_alloc_env.serving.perf import decode_time_s, prefill_time_s

MIN_COMPLETIONS = 200
"""Requests the measurement window holds at least (per client, at least 5)."""


@dataclass(frozen=True)
class ClosedLoopResult:
    """Means over the requests completed in the measurement window."""

    concurrency: int
    ttft_s: float
    itl_s: float
    """Mean inter-token latency: (completion - first token) / (output tokens - 1)."""
    e2e_latency_s: float
    output_tokens_per_s: float
    requests_per_s: float
    preemptions: int
    """Preemptions (KV cache full) in the window."""

    def to_dict(self) -> dict[str, float | int]:
        """Plain-data form (``gpu-alloc serving --json`` prints these keys but ``preemptions``)."""
        return asdict(self)


def engine_params(engine: EngineSpec) -> Params:
    """Kernel parameters of a one-agent scenario served by ``engine``."""
    agents = np.zeros(1, dtype=AGENT_PARAMS)
    agents["gpus"] = engine.gpus_per_replica
    agents["kv_blocks"] = engine.kv_blocks
    agents["max_seqs"] = engine.max_num_seqs
    agents["max_tokens"] = engine.max_batched_tokens
    agents["max_len"] = engine.max_model_len
    agents["cold_start_s"] = engine.cold_start_s
    agents["max_replicas"] = 1
    return Params(
        agents=agents,
        coef=engine.coefficient_array()[None, :],
        priority_order=np.zeros(1, dtype=np.int64),
        capacity_gpus=engine.gpus_per_replica,
        price_per_gpu_s=0.0,
        billing_increment_s=1.0,
        keep_alive_s=0.0,
        kill=False,
        task_slo_s=np.inf,
    )


@njit(cache=True)
def _reset_request(s: SimState, i: int, t: float, prompt: int, output: int) -> None:
    row = s.rq[0, i]
    row["agent"] = 0
    row["arrival_s"] = t
    row["prompt"] = prompt
    row["output"] = output
    row["generated"] = 0
    row["computed"] = 0
    row["target"] = prompt
    row["blocks"] = 0
    row["sched"] = 0
    row["first_token_s"] = np.inf
    row["done_s"] = np.inf
    row["preemptions"] = 0


PREEMPTIONS = np.dtype([("preemptions", np.int64)])


@njit(cache=True)
def _run(
    s: SimState,
    p: Params,
    first_s: np.ndarray,
    prompt: int,
    output: int,
    warmup_s: float,
    end_s: float,
) -> np.ndarray:
    """Run the loop; returns sums over the requests completed in ``[warmup_s, end_s)``.

    Client ``i`` sends its first request at ``first_s[i]`` and its next one when the last completes.
    The sums are, in order: requests, TTFT, latency, output tokens, time from first token to
    completion over output tokens after the first, requests of two tokens or more, preemptions.
    """
    clients = first_s.shape[0]
    completed = np.zeros(p.agents[0]["max_seqs"] + 1, dtype=np.int64)
    counts = np.zeros((1, 1), dtype=PREEMPTIONS)
    sums = np.zeros(7)
    started = 0
    while True:
        arrival = first_s[started] if started < clients else np.inf
        busy = s.rep[0, 0]["busy_until_s"]
        t = arrival if arrival <= busy else busy
        if t >= end_s:
            break
        if arrival <= busy:
            _reset_request(s, started, t, prompt, output)
            queue_push_back(s, 0, 0, started)
            started += 1
            if busy == np.inf:
                start_iteration(s, p, 0, 0, t, True, counts)
            continue
        done = finish_iteration(s, 0, 0, t, completed)
        for k in range(done):
            row = s.rq[0, completed[k]]
            if t >= warmup_s:
                sums[0] += 1.0
                sums[1] += row["first_token_s"] - row["arrival_s"]
                sums[2] += t - row["arrival_s"]
                sums[3] += row["generated"]
                if row["generated"] > 1:
                    sums[4] += (t - row["first_token_s"]) / (row["generated"] - 1)
                    sums[5] += 1.0
            _reset_request(s, completed[k], t, prompt, output)
            queue_push_back(s, 0, 0, completed[k])
        start_iteration(s, p, 0, 0, t, True, counts)
        if t < warmup_s:
            counts[0, 0]["preemptions"] = 0
    sums[6] = counts[0, 0]["preemptions"]
    return sums


def closed_loop(
    engine: EngineSpec, concurrency: int, input_tokens: int, output_tokens: int
) -> ClosedLoopResult:
    """Serve ``concurrency`` closed-loop clients on one replica of ``engine`` and measure it.

    The clients start spread over one unloaded request's latency (client ``i`` at ``i / C`` of
    it), so that identical requests do not all arrive, and stay, in step. The warm-up lasts three
    of the slowest possible request times (every client's prefill before the first decode, then
    the output at the largest batch); the window then holds at least :data:`MIN_COMPLETIONS`
    requests (and five per client).
    """
    if concurrency < 1 or input_tokens < 1 or output_tokens < 1:
        raise ValueError(
            f"concurrency, input_tokens and output_tokens must be >= 1, got {concurrency}, {input_tokens}, "
            f"{output_tokens}"
        )
    if input_tokens + output_tokens > engine.max_model_len:
        raise ValueError(
            f"a request of {input_tokens} + {output_tokens} tokens exceeds the {engine.max_model_len} a "
            "replica accepts (its KV cache or the model's context); use fewer tokens"
        )
    p = engine_params(engine)
    coef = p.coef[0]
    batch = min(concurrency, engine.max_num_seqs)
    slowest_s = prefill_time_s(coef, 1, input_tokens) * concurrency + output_tokens * decode_time_s(
        coef, batch, input_tokens + output_tokens
    )
    warmup_s = 3.0 * slowest_s
    measured = max(MIN_COMPLETIONS, 5 * concurrency)
    window_s = measured * slowest_s / concurrency * 2.0
    alone_s = float(engine.lone_request_s(np.array([input_tokens]), np.array([output_tokens]))[1][0])
    first_s = np.arange(concurrency) * alone_s / concurrency
    s = allocate_state(1, 1, 1, requests=concurrency, tasks=1, calls=1)
    s.rep[0, 0]["agent"] = 0
    s.rep[0, 0]["state"] = ACTIVE
    s.agent[0, 0]["n_active"] = 1
    s.agent[0, 0]["r_head"] = 0
    sums = _run(s, p, first_s, input_tokens, output_tokens, warmup_s, warmup_s + window_s)
    count = sums[0]
    if count == 0:
        raise RuntimeError("no request completed in the measurement window")  # pragma: no cover
    return ClosedLoopResult(
        concurrency=concurrency,
        ttft_s=float(sums[1] / count),
        itl_s=float(sums[4] / sums[5]) if sums[5] else math.nan,
        e2e_latency_s=float(sums[2] / count),
        output_tokens_per_s=float(sums[3] / window_s),
        requests_per_s=float(count / window_s),
        preemptions=int(sums[6]),
    )


@functools.lru_cache(maxsize=256)
def sustainable_rate(
    engine: EngineSpec, input_tokens: int, output_tokens: int, latency_slack: float
) -> tuple[float, int]:
    """(requests/s, concurrency) one replica sustains within ``latency_slack`` x its unloaded latency.

    The concurrency is the largest power of two (up to ``max_num_seqs``) whose closed-loop mean
    latency stays within ``latency_slack`` times that of a lone request; the rate is what the
    replica completes there. This is how a deployment is sized from a benchmark: a target
    concurrency per replica, and the throughput it gives.
    """
    tokens_in = max(1, min(input_tokens, engine.max_model_len - 2))
    tokens_out = max(1, min(output_tokens, engine.max_model_len - tokens_in))
    alone = closed_loop(engine, 1, tokens_in, tokens_out)
    best = alone
    concurrency = 2
    while concurrency <= engine.max_num_seqs:
        result = closed_loop(engine, concurrency, tokens_in, tokens_out)
        if result.e2e_latency_s > latency_slack * alone.e2e_latency_s:
            break
        best = result
        concurrency *= 2
    return best.requests_per_s, best.concurrency
