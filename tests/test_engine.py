"""One replica's engine: its coefficients, KV cache and limits by hand; admission, preemption, truncation.

The KV-cache cases shrink the cache (``kv_reserve_gib``) to a few blocks of 16 tokens, so that
admission and preemption happen at token counts small enough to follow iteration by iteration.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from scripted import ScriptedTask, scripted_sim
from test_core import (
    WEIGHT_BYTES,
    agent,
    coef_of,
    it,
    lone_request_s,
    near,
    reserve_for_blocks,
    rows,
    scenario,
    step,
    warm_sim,
)

from gpu_alloc_env.config import ScenarioConfig
from gpu_alloc_env.core.closed_loop import closed_loop
from gpu_alloc_env.core.metrics import episode_metrics
from gpu_alloc_env.core.state import DONE, QUEUED, RUNNING
from gpu_alloc_env.serving.engine import EngineSpec, build_engine, default_batch_limits
from gpu_alloc_env.serving.hardware import GIB, GPUS
from gpu_alloc_env.serving.models import MODELS, ModelSpec
from gpu_alloc_env.serving.perf import COEFFICIENT_NAMES, IterationCoefficients, iteration_time_s
from gpu_alloc_env.serving.platforms import PLATFORMS

H100 = GPUS["h100-80gb"]


# ------------------------------------------------------------------------------- sizes and coefficients
def test_weights_of_llama_3_1_8b_from_its_architecture() -> None:
    # Per layer: attention 4096 x 128 x (2 x 32 + 2 x 8) = 41,943,040 and a gated MLP
    # 3 x 4096 x 14,336 = 176,160,768; 32 layers, plus an input embedding and an untied output
    # projection of 128,256 x 4096 each: 8,029,995,008 parameters, 2 bytes each in bf16.
    spec = MODELS["llama-3.1-8b"]
    layer = 4096 * 128 * (2 * 32 + 2 * 8) + 3 * 4096 * 14336
    assert spec.layer_params == layer == 218_103_808
    assert spec.params == 32 * layer + 2 * 128256 * 4096 == 8_029_995_008
    assert spec.weight_bytes("bf16") == WEIGHT_BYTES and spec.weight_bytes("fp8") == WEIGHT_BYTES / 2
    # KV per token: keys and values of 32 layers x 8 KV heads x 128 dims.
    assert spec.kv_bytes_per_token("bf16") == 2 * 32 * 8 * 128 * 2 == 131_072


@pytest.mark.parametrize(("model", "k"), [("llama-3.1-8b", 1), ("llama-3.3-70b", 4), ("qwen2.5-14b", 2)])
def test_iteration_coefficients_are_the_roofline_terms_by_hand(model: str, k: int) -> None:
    spec = MODELS[model]
    coef = IterationCoefficients.derive(spec, H100, k, "bf16")
    bandwidth = H100.memory_bandwidth_bytes_per_s * H100.memory_efficiency
    compute = H100.bf16_flops_per_s * H100.compute_efficiency
    link = H100.interconnect_bytes_per_s * H100.allreduce_efficiency
    layers, hidden, heads, kv = spec.num_layers, spec.hidden_size, spec.num_attention_heads, spec.num_kv_heads
    allreduces = 2 * layers if k > 1 else 0
    # Every weight but the input embedding's is read once per iteration (the embedding is gathered
    # at the batch's tokens only): the layers and the untied output projection.
    read = layers * spec.layer_params + spec.vocab_size * hidden
    assert read == spec.params - spec.vocab_size * hidden
    assert coef.weights_s == pytest.approx(read * 2.0 / k / bandwidth, rel=1e-12)
    # Two FLOPs per weight of every layer for each token; the output projection (vocabulary x
    # hidden) only for the one token each sequence samples, not for every prompt token.
    assert coef.linear_s_per_token == pytest.approx(2.0 * layers * spec.layer_params / k / compute, rel=1e-12)
    assert coef.head_s_per_sequence == pytest.approx(2.0 * spec.vocab_size * hidden / k / compute, rel=1e-12)
    # Two ring all-reduces per layer of a bf16 activation vector, 2 (k - 1) / k of it on the link.
    assert coef.comm_s_per_token == pytest.approx(
        allreduces * 2.0 * (k - 1) / k * hidden * 2.0 / link, rel=1e-12
    )
    assert coef.context_s_per_token == pytest.approx(
        2.0 * layers * (kv // k) * spec.head_dim * 2.0 / bandwidth, rel=1e-12
    )
    assert coef.attention_s_per_pair == pytest.approx(
        4.0 * layers * heads * spec.head_dim / k / compute, rel=1e-12
    )
    expected_fixed = layers * H100.layer_overhead_s + allreduces * H100.allreduce_latency_s
    assert coef.fixed_s == pytest.approx(expected_fixed, rel=1e-12)
    assert coef.per_sequence_s == H100.sequence_overhead_s
    assert list(coef.as_array()) == [getattr(coef, name) for name in COEFFICIENT_NAMES]


def test_a_tied_output_projection_is_the_embedding_read_in_full() -> None:
    bloom = MODELS["bloom-176b"]
    assert bloom.tied_embeddings
    assert bloom.iteration_read_bytes("bf16") == bloom.weight_bytes("bf16")
    llama = MODELS["llama-3.1-8b"]
    embedding_bytes = llama.vocab_size * llama.hidden_size * 2.0
    assert llama.iteration_read_bytes("bf16") == llama.weight_bytes("bf16") - embedding_bytes


def test_iteration_time_reads_the_weights_once_or_is_compute_bound() -> None:
    coef = IterationCoefficients.derive(MODELS["llama-3.3-70b"], H100, 4, "bf16")
    c = coef.as_array()
    # A decode batch of 3 with 1,000 KV tokens read and 1,003 pairs: the weights' read dominates.
    decode = c[0] + 3 * c[1] + c[2] + 3 * c[4] + 1000 * c[5] + 1003 * c[6]
    assert c[3] * 3 + c[7] * 3 < c[2]
    assert iteration_time_s(c, 3.0, 3.0, 1000.0, 1003.0) == pytest.approx(decode, rel=1e-12)
    # A prefill of 4,096 tokens: the matmuls (the layers for every token, the output projection
    # for the one sampled) take longer than one read of the weights.
    pairs = 4096 * 4097 / 2
    prefill = c[0] + c[1] + 4096 * c[3] + c[7] + 4096 * c[4] + pairs * c[6]
    assert c[3] * 4096 + c[7] > c[2]
    assert iteration_time_s(c, 1.0, 4096.0, 0.0, pairs) == pytest.approx(prefill, rel=1e-12)
    assert iteration_time_s(c, 0.0, 0.0, 0.0, 0.0) == 0.0


def _engine(
    model: str | ModelSpec, k: int, dtype: str = "bf16", gpu: str = "h100-80gb", **fields: Any
) -> EngineSpec:
    settings: dict[str, Any] = {
        "gpu_memory_utilization": 0.9,
        "kv_reserve_gib": 2.5,
        "max_num_seqs": None,
        "max_batched_tokens": None,
        "weight_source": "ssd",
        "engine_startup_s": 20.0,
    }
    settings.update(fields)
    return build_engine(
        owner="test",
        model=MODELS[model] if isinstance(model, str) else model,
        gpu=GPUS[gpu],
        tensor_parallel=k,
        dtype=dtype,
        platform=PLATFORMS["runpod"],
        **settings,
    )


def test_kv_cache_of_an_8b_replica_is_memory_minus_weights_and_reserve() -> None:
    # 79.19 GiB x 0.9 = 71.271 GiB usable, minus 2.5 GiB reserve and 14.957 GiB of weights:
    # 53.814 GiB, in blocks of 16 tokens x 128 KiB = 2 MiB: 27,552 blocks, 440,832 tokens.
    engine = _engine("llama-3.1-8b", 1)
    kv_gib = 79.19 * 0.9 - 2.5 - WEIGHT_BYTES / GIB
    assert engine.kv_cache_per_gpu_gib == pytest.approx(kv_gib, rel=1e-12)
    assert engine.kv_blocks == math.floor(kv_gib * 512) == 27_552
    assert engine.kv_capacity_tokens == 27_552 * 16
    assert engine.max_model_len == 131_072  # the model's context: the cache holds more
    assert (engine.max_batched_tokens, engine.max_num_seqs) == (8192, 1024)


def test_kv_cache_of_a_70b_on_four_gpus_splits_its_kv_heads() -> None:
    # 141.1 GB of weights over 4 GPUs; each GPU holds 2 of the 8 KV heads: 2 x 80 x 2 x 128 x 2 =
    # 81,920 bytes per token per GPU.
    spec = MODELS["llama-3.3-70b"]
    engine = _engine("llama-3.3-70b", 4)
    kv_gib = 79.19 * 0.9 - 2.5 - spec.weight_bytes("bf16") / 4 / GIB
    assert engine.kv_blocks == math.floor(kv_gib * GIB / (81_920 * 16))
    fp8 = _engine("llama-3.3-70b", 4, dtype="fp8")
    fp8_gib = 79.19 * 0.9 - 2.5 - spec.weight_bytes("fp8") / 4 / GIB
    assert fp8.kv_blocks == math.floor(fp8_gib * GIB / (40_960 * 16))
    assert fp8.kv_blocks > 2 * engine.kv_blocks  # half the bytes per token and more room


def test_kv_heads_are_replicated_when_there_are_fewer_than_gpus() -> None:
    tiny = ModelSpec(
        "tiny",
        num_layers=4,
        hidden_size=512,
        num_attention_heads=8,
        num_kv_heads=2,
        intermediate_size=1024,
        vocab_size=1000,
        max_context_tokens=2048,
    )
    engine = _engine(tiny, 4)
    # One KV head per GPU (a copy of one of the two): 2 x 4 x 1 x 64 x 2 = 1,024 bytes per token.
    assert tiny.kv_heads_per_gpu(4) == 1
    kv_gib = 79.19 * 0.9 - 2.5 - tiny.weight_bytes("bf16") / 4 / GIB
    assert engine.kv_blocks == math.floor(kv_gib * GIB / (1024 * 16))
    assert engine.max_model_len == 2048


def test_longest_request_is_what_the_kv_cache_holds_when_below_the_context() -> None:
    # qwen2.5-32b on one H100: 61 GiB of weights leave 7.7 GiB, 31,712 tokens < its 32,768 context.
    engine = _engine("qwen2.5-32b", 1)
    assert engine.kv_capacity_tokens < MODELS["qwen2.5-32b"].max_context_tokens
    assert engine.max_model_len == engine.kv_capacity_tokens == 31_712


def test_batch_limits_default_to_vllms_by_gpu_and_can_be_set() -> None:
    assert default_batch_limits(GPUS["h100-80gb"]) == (8192, 1024)
    assert default_batch_limits(GPUS["a100-80gb"]) == (2048, 256)
    assert default_batch_limits(GPUS["l40s-48gb"]) == (2048, 256)
    engine = _engine("llama-3.1-8b", 1, max_num_seqs=8, max_batched_tokens=512)
    assert (engine.max_num_seqs, engine.max_batched_tokens) == (8, 512)
    config = scenario([agent("coordinator", "coordinator", max_num_seqs=3, max_num_batched_tokens=100)])
    assert (config.deployment.engines[0].max_num_seqs, config.deployment.engines[0].max_batched_tokens) == (
        3,
        100,
    )


# ------------------------------------------------------------------------------- KV admission
def small_kv(blocks: int, **fields: Any) -> ScenarioConfig:
    """A one-coordinator scenario whose replica holds ``blocks`` KV blocks."""
    config = scenario(
        [agent("coordinator", "coordinator", kv_reserve_gib=reserve_for_blocks(blocks), **fields)]
    )
    assert config.deployment.engines[0].kv_blocks == blocks
    return config


def test_a_request_waits_until_its_prompts_blocks_fit_and_blocks_those_behind_it() -> None:
    # 4 blocks (64 tokens). A (40 in, 20 out) holds 3 blocks, growing to 4 (60 tokens). B's
    # 40-token prompt needs 3 blocks: it waits for A to complete. C (8 in, 1 block) would fit
    # beside A but queues behind B: admission is first come, first served.
    config = small_kv(4)
    coef = coef_of(config)
    tasks = [
        ScriptedTask(5.0, (40.0, 20.0)),
        ScriptedTask(5.001, (40.0, 2.0)),
        ScriptedTask(5.002, (8.0, 2.0)),
    ]
    sim = warm_sim(config, tasks, [1])
    a_latency = lone_request_s(coef, 40, 20)[1]
    step(sim, [1], 2)
    a, b, c = rows(sim)
    assert a["state"] == DONE and a["done_s"] == near(5.0 + a_latency)
    # B and C are admitted together when A completes: one prefill iteration of 40 + 8 tokens.
    joint_prefill = it(coef, 2, 48, 0, 40 * 41 / 2 + 8 * 9 / 2)
    assert b["first_token_s"] == near(a["done_s"] + joint_prefill)
    assert c["first_token_s"] == near(a["done_s"] + joint_prefill)
    assert b["state"] == c["state"] == DONE
    assert episode_metrics(sim)["preemptions"] == 0


def test_a_request_waits_while_the_batch_is_full() -> None:
    config = scenario([agent("coordinator", "coordinator", max_num_seqs=1)])
    coef = coef_of(config)
    sim = warm_sim(config, [ScriptedTask(4.0, (100.0, 5.0)), ScriptedTask(4.001, (60.0, 3.0))], [1])
    step(sim, [1])
    a, b = rows(sim)
    assert b["first_token_s"] == near(a["done_s"] + it(coef, 1, 60, 0, 60 * 61 / 2))
    assert b["done_s"] == near(a["done_s"] + lone_request_s(coef, 60, 3)[1])


def test_the_newest_request_is_preempted_requeued_first_and_recomputed() -> None:
    # 4 blocks. A (16 in, 40 out) at 5.0 and B (16 in, 40 out) at 5.001 share the replica; C
    # (8 in, 2 out) arrives at 5.1 when the cache is full and queues.
    config = small_kv(4)
    coef = coef_of(config)
    tasks = [
        ScriptedTask(5.0, (16.0, 40.0)),
        ScriptedTask(5.001, (16.0, 40.0)),
        ScriptedTask(5.1, (8.0, 2.0)),
    ]
    sim = warm_sim(config, tasks, [1])
    stats = step(sim, [1], 2)
    a, b, c = rows(sim)
    # Iteration 1: A's prefill (1 block). 2: A's first decode takes its second block, B prefills
    # (1 block). 3: B's first decode takes its second block; the cache is full (4).
    e = [5.0 + it(coef, 1, 16, 0, 16 * 17 / 2)]
    e.append(e[-1] + it(coef, 2, 17, 16, 17 + 16 * 17 / 2))
    # Iterations 3 to 17: both decode; at iteration k, A has computed 16 + k - 2 tokens, B 16 + k - 3.
    for k in range(3, 18):
        context = (16 + k - 2) + (16 + k - 3)
        e.append(e[-1] + it(coef, 2, 2, context, context + 2))
    assert e[2] < 5.1 < e[16]  # C arrives while the cache is full
    # Iteration 18: A (32 computed) needs a third block and none is free: B, the newest, is
    # preempted with 16 tokens generated and goes back to the front of the queue, ahead of C. To
    # be recomputed it needs the blocks of 16 + 16 = 32 tokens (2), and only 1 is free: B and C
    # wait (C would fit, but is behind B). A runs alone to its 40th token at iteration 40.
    for k in range(18, 41):
        context = 16 + k - 2
        e.append(e[-1] + it(coef, 1, 1, context, context + 1))
    # Iteration 41: B recomputes its 32 tokens and C prefills 8, together; B samples token 17.
    e.append(e[-1] + it(coef, 2, 40, 0, 32 * 33 / 2 + 8 * 9 / 2))
    # Iteration 42: both decode (B reads 32, C 8); C completes. Then B alone to 40 tokens.
    e.append(e[-1] + it(coef, 2, 2, 32 + 8, 33 + 9))
    for context in range(33, 55):
        e.append(e[-1] + it(coef, 1, 1, context, context + 1))
    assert len(e) == 64
    assert a["done_s"] == near(e[39]) and a["preemptions"] == 0
    assert b["preemptions"] == 1 and b["generated"] == b["output"] == 40 and b["state"] == DONE
    assert b["first_token_s"] == near(e[1])  # its first token was already sent
    assert b["done_s"] == near(e[63])
    assert c["first_token_s"] == near(e[40]) and c["done_s"] == near(e[41])
    assert c["preemptions"] == 0
    assert sum(int(s.preemptions[0, 0]) for s in stats) == 1
    assert sim.totals.preemptions[0, 0] == 1
    metrics = episode_metrics(sim)
    per_agent = metrics["per_agent"]
    assert metrics["preemptions"] == 1
    assert isinstance(per_agent, dict) and per_agent["coordinator"]["preemptions"] == 1.0
    assert sim.view().preemption_rps[0, 0] > 0.0


def test_the_newest_request_preempts_itself_when_it_needs_the_block() -> None:
    # 3 blocks. A (24 in, 8 out) holds 2 blocks and stays within them (at most 31 tokens computed).
    # B (16 in, 8 out) fills the third with its prompt; its first decode needs a fourth: B is the
    # newest, so B itself is preempted (1 token generated) and waits to recompute 17 tokens.
    config = small_kv(3)
    coef = coef_of(config)
    sim = warm_sim(config, [ScriptedTask(5.0, (24.0, 8.0)), ScriptedTask(5.001, (16.0, 8.0))], [1])
    step(sim, [1], 2)
    e = [5.0 + it(coef, 1, 24, 0, 24 * 25 / 2)]
    e.append(e[-1] + it(coef, 2, 17, 24, 25 + 16 * 17 / 2))
    for context in range(25, 31):  # iterations 3 to 8: A alone, to its 8th token
        e.append(e[-1] + it(coef, 1, 1, context, context + 1))
    e.append(e[-1] + it(coef, 1, 17, 0, 17 * 18 / 2))  # B recomputes prompt + 1 generated token
    for context in range(17, 23):  # B's tokens 3 to 8
        e.append(e[-1] + it(coef, 1, 1, context, context + 1))
    a, b = rows(sim)
    assert a["done_s"] == near(e[7])
    assert b["done_s"] == near(e[-1])
    assert (a["preemptions"], b["preemptions"]) == (0, 1)
    assert b["generated"] == 8 and episode_metrics(sim)["preemptions"] == 1


def test_requests_above_the_longest_a_replica_accepts_are_cut_and_counted() -> None:
    # 4 blocks: a replica accepts 64 tokens. 100 in / 10 out -> 63 in (limit - 1) / 1 out;
    # 50 in / 30 out -> 50 / 14; 20 / 5 is untouched.
    config = small_kv(4)
    assert config.deployment.engines[0].max_model_len == 64
    tasks = [
        ScriptedTask(4.0, (100.0, 10.0)),
        ScriptedTask(6.0, (50.0, 30.0)),
        ScriptedTask(8.0, (20.0, 5.0)),
    ]
    sim = warm_sim(config, tasks, [1])
    stats = step(sim, [1], 6)
    cut = rows(sim)
    assert [(r["prompt"], r["output"], bool(r["truncated"])) for r in cut] == [
        (63, 1, True),
        (50, 14, True),
        (20, 5, False),
    ]
    assert (cut["state"] == DONE).all() and (cut["generated"] == cut["output"]).all()
    assert sum(int(s.truncated[0, 0]) for s in stats) == 2
    assert episode_metrics(sim)["truncated_requests"] == 2


def test_requests_above_the_models_context_are_cut_to_it() -> None:
    config = scenario([agent("coordinator", "coordinator", model="llama-2-7b")])
    assert config.deployment.engines[0].max_model_len == 4096
    sim = warm_sim(config, [ScriptedTask(4.0, (5000.0, 10.0))], [1])
    step(sim, [1], 2)
    (row,) = rows(sim)
    assert (row["prompt"], row["output"], bool(row["truncated"])) == (4095, 1, True)
    assert sim.totals.truncated[0, 0] == 1


# ------------------------------------------------------------------------------- routing
def test_requests_go_to_an_idle_replica_before_queueing_at_a_busy_one() -> None:
    config = scenario([agent("coordinator", "coordinator", max_replicas=2)])
    coef = coef_of(config)
    sim = warm_sim(config, [ScriptedTask(5.0, (100.0, 20.0)), ScriptedTask(5.001, (100.0, 20.0))], [2])
    step(sim, [2], 2)
    a, b = rows(sim)
    assert a["replica"] != b["replica"]
    lone = lone_request_s(coef, 100, 20)[1]
    assert a["done_s"] - 5.0 == near(lone)
    assert b["done_s"] - 5.001 == near(lone)


def test_a_burst_is_shared_by_the_replicas_least_loaded_first() -> None:
    # Both replicas serve one long request; 40 short ones arrive within 40 ms. Whichever replica
    # ends its iteration first may take a request only while the other runs no fewer.
    config = scenario([agent("coordinator", "coordinator", max_replicas=2)])
    long_tasks = [ScriptedTask(5.0, (100.0, 300.0)), ScriptedTask(5.0001, (100.0, 300.0))]
    burst = [ScriptedTask(5.5 + 0.001 * k, (20.0, 50.0)) for k in range(40)]
    sim = warm_sim(config, [*long_tasks, *burst], [2])
    step(sim, [2], 2)
    replica = rows(sim)["replica"]
    assert replica[0] != replica[1]
    burst_rows = rows(sim)[2:]
    assert (burst_rows["state"] != QUEUED).all()
    counts = [int((burst_rows["replica"] == r).sum()) for r in (replica[0], replica[1])]
    assert sum(counts) == 40
    assert abs(counts[0] - counts[1]) <= 2, counts


def test_a_replica_takes_the_request_a_less_loaded_one_cannot_hold() -> None:
    # 8 blocks per replica. A runs one request of 112 + 16 tokens, whose first decoded token takes
    # the last free block; B runs two short ones. Z arrives while A is full: B, the more loaded,
    # takes it at once instead of leaving it to wait for A.
    config = scenario(
        [agent("coordinator", "coordinator", max_replicas=2, kv_reserve_gib=reserve_for_blocks(8))]
    )
    tasks = [
        ScriptedTask(5.0, (112.0, 16.0)),
        ScriptedTask(5.0001, (4.0, 40.0)),
        ScriptedTask(5.0002, (4.0, 40.0)),
    ]
    a_latency = lone_request_s(coef_of(config), 112, 16)[1]
    z_arrival = 5.0 + a_latency / 2.0
    sim = warm_sim(config, [*tasks, ScriptedTask(z_arrival, (4.0, 2.0))], [2])
    step(sim, [2], 2)
    a, b1, b2, z = rows(sim)
    assert b1["replica"] == b2["replica"] == z["replica"] != a["replica"]
    assert z["first_token_s"] < a["done_s"]


def test_requests_are_not_left_to_a_replica_whose_token_budget_a_long_prefill_fills() -> None:
    # A runs two short requests; B one 6,000-token prompt, prefilled in chunks of its 256-token
    # budget, so B takes nothing new until that prefill ends. Short requests arriving meanwhile
    # go to A, more loaded but with room, instead of waiting behind B's prefill.
    config = scenario([agent("coordinator", "coordinator", max_replicas=2, max_num_batched_tokens=256)])
    tasks = [
        ScriptedTask(5.0, (20.0, 300.0)),
        ScriptedTask(5.0001, (6000.0, 10.0)),
        ScriptedTask(5.0002, (20.0, 300.0)),
    ]
    shorts = [ScriptedTask(5.05 + 0.001 * k, (20.0, 5.0)) for k in range(5)]
    sim = warm_sim(config, [*tasks, *shorts], [2])
    step(sim, [2], 3)
    long_prompt, *short_rows = rows(sim)[[1, 3, 4, 5, 6, 7]]
    assert (short_rows[0]["replica"] != long_prompt["replica"]) and len(short_rows) == 5
    for row in short_rows:
        assert row["replica"] != long_prompt["replica"]
        assert row["first_token_s"] < long_prompt["first_token_s"]
        assert row["first_token_s"] - row["arrival_s"] < 0.05


def test_a_preempted_request_goes_to_an_idle_replica_at_once() -> None:
    # 40 KV blocks a replica and 10 s decisions. A serves three requests whose decodes outgrow its
    # cache: the newest (R4) is preempted. B, granted at 10, is ready and idle from 14: R4 moves
    # there as soon as it is preempted, instead of waiting for the next arrival or decision.
    config = scenario(
        [agent("coordinator", "coordinator", max_replicas=2, kv_reserve_gib=reserve_for_blocks(40))],
        decision_interval_s=10.0,
    )
    tasks = [
        ScriptedTask(13.9, (16.0, 600.0)),
        ScriptedTask(13.9001, (16.0, 250.0)),
        ScriptedTask(13.9002, (16.0, 260.0)),
    ]
    sim = warm_sim(config, tasks, [1])
    step(sim, [2], 1)
    first, _, newest = rows(sim)
    assert newest["preemptions"] >= 1
    assert newest["state"] == DONE and newest["replica"] != first["replica"]
    assert newest["done_s"] < 17.5


def test_queue_and_running_counts_follow_the_request_states() -> None:
    config = small_kv(4)
    tasks = [ScriptedTask(4.9, (40.0, 400.0)), ScriptedTask(4.95, (40.0, 4.0))]
    sim = scripted_sim(config, tasks)
    step(sim, [1], 5)
    view = sim.view()
    states = rows(sim)["state"].tolist()
    assert states == [RUNNING, QUEUED]
    assert (view.queued[0, 0], view.running[0, 0]) == (1, 1)
    assert view.kv_used_blocks[0, 0] == 3 and view.kv_total_blocks[0, 0] == 4
    assert view.oldest_wait_s[0, 0] == pytest.approx(5.0 - 4.95)


# ------------------------------------------------------------------------------- closed loop
def test_closed_loop_of_one_client_is_a_lone_request_by_hand() -> None:
    engine = _engine("llama-3.1-8b", 1)
    coef = engine.coefficient_array()
    result = closed_loop(engine, 1, 100, 20)
    ttft, latency = lone_request_s(coef, 100, 20)
    assert result.ttft_s == pytest.approx(ttft, rel=1e-9)
    assert result.e2e_latency_s == pytest.approx(latency, rel=1e-9)
    assert result.itl_s == pytest.approx((latency - ttft) / 19, rel=1e-9)
    assert result.preemptions == 0
    assert result.requests_per_s == pytest.approx(1.0 / latency, rel=0.02)


def test_closed_loop_clients_start_spread_and_overlap_prefill_with_decode() -> None:
    # Two clients of identical requests, the second starting half a lone request's latency after the
    # first: each prompt is prefilled in an iteration beside the other request's decode, so the time to
    # first token lies between a lone prefill and a prefill of both prompts together.
    engine = _engine("llama-3.1-8b", 1)
    coef = engine.coefficient_array()
    result = closed_loop(engine, 2, 100, 20)
    alone = it(coef, 1, 100, 0, 100 * 101 / 2)
    together = it(coef, 2, 200, 0, 2 * 100 * 101 / 2)
    assert alone < result.ttft_s < together
    # Little's law: two clients, each always with one request in the system.
    assert result.requests_per_s * result.e2e_latency_s == pytest.approx(2.0, rel=0.02)
    assert result.output_tokens_per_s == pytest.approx(20 * result.requests_per_s, rel=1e-9)
    # Batched, each token takes longer than alone; two clients still finish more requests per second.
    lone = closed_loop(engine, 1, 100, 20)
    assert result.itl_s > lone.itl_s and result.requests_per_s > lone.requests_per_s
