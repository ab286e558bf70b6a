"""Scenario configuration: presets, registered ids, overrides, the resolved deployment, validation errors."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from gpu_alloc_env import ENV_IDS, GpuAllocEnv
from gpu_alloc_env.config import AgentSpec, ConfigError, RewardSpec, ScenarioConfig, WorkloadSpec
from gpu_alloc_env.scenarios import SCENARIOS, fleet, make_scenario
from gpu_alloc_env.serving.hardware import GPUS, GpuSpec
from gpu_alloc_env.serving.models import MODELS, ModelSpec
from gpu_alloc_env.serving.platforms import PLATFORMS, PlatformSpec


@pytest.mark.parametrize("preset", sorted(SCENARIOS))
def test_every_preset_validates_and_has_a_versioned_registered_id(preset: str) -> None:
    config = make_scenario(preset)
    assert isinstance(config, ScenarioConfig)
    assert config.name == (f"fleet{config.num_agents}" if preset == "fleet" else preset)
    # Constructing again from its own fields runs every check of __post_init__ once more.
    assert ScenarioConfig.from_dict(config.to_dict()) == config
    assert config.agents[0].role == "coordinator"
    assert all(a.role == "specialist" for a in config.agents[1:])
    assert config.episode_steps * config.decision_interval_s == pytest.approx(config.episode_length_s)
    assert len(config.deployment.engines) == config.num_agents
    ids = [env_id for env_id, name in ENV_IDS.items() if name == preset]
    assert ids, f"preset {preset!r} has no registered Gymnasium id"
    for env_id in ids:
        spec = gym.spec(env_id)
        assert spec.version == 1 and env_id.endswith("-v1")
        assert spec.kwargs["scenario"] == preset
        assert spec.entry_point == "gpu_alloc_env.env:GpuAllocEnv"


def test_registered_ids_cover_exactly_the_presets() -> None:
    assert set(ENV_IDS.values()) == set(SCENARIOS)
    assert ENV_IDS["GpuAlloc-v1"] == "paper"
    assert not [env_id for env_id in ENV_IDS if env_id.endswith("-v0")]


def test_presets_differ_only_in_their_workload() -> None:
    paper = make_scenario("paper")
    assert make_scenario("bursty").workload.pattern == "bursty"
    assert make_scenario("diurnal").workload.pattern == "diurnal"
    for name in ("bursty", "diurnal"):
        other = make_scenario(name)
        assert other.agents == paper.agents
        assert other.workload.task_rate_tps == paper.workload.task_rate_tps
        assert other.replace(name="paper", workload=paper.workload) == paper


def test_paper_agents_are_replicas_of_catalogue_models() -> None:
    paper = make_scenario("paper")
    assert [(a.model_spec.name, a.tensor_parallel, a.max_replicas) for a in paper.agents] == [
        ("llama-3.1-8b", 1, 4),
        ("llama-3.3-70b", 4, 2),
        ("qwen2.5-32b", 1, 6),
        ("qwen2.5-14b", 1, 4),
    ]
    assert [a.max_gpus for a in paper.agents] == [4, 8, 6, 4]
    assert paper.capacity_gpus == 16 and paper.gpu_spec.name == "h100-80gb"
    assert paper.platform_spec.name == "runpod"


def test_deployment_takes_the_platforms_terms_unless_overridden() -> None:
    paper = make_scenario("paper")
    d = paper.deployment
    runpod = PLATFORMS["runpod"]
    assert d.price_per_gpu_s == runpod.price_per_gpu_s["h100-80gb"] == 0.00116
    assert (d.billing_increment_s, d.keep_alive_s, d.weight_source, d.engine_startup_s) == (
        1.0,
        5.0,
        "ssd",
        20.0,
    )
    modal = make_scenario("paper", platform="modal").deployment
    assert (modal.price_per_gpu_s, modal.keep_alive_s) == (0.001097, 60.0)
    mine = make_scenario(
        "paper",
        price_per_gpu_s=0.002,
        billing_increment_s=60,
        keep_alive_s=0,
        weight_source="remote",
        engine_startup_s=5,
    ).deployment
    assert (mine.price_per_gpu_s, mine.billing_increment_s, mine.keep_alive_s) == (0.002, 60.0, 0.0)
    weights = MODELS["llama-3.1-8b"].weight_bytes("bf16")
    assert mine.engines[0].cold_start_s == pytest.approx(5.0 + weights / 1.7e9 + 5.0)
    assert mine.engines[0].weight_load_s == pytest.approx(weights / 1.7e9)


def test_a_model_gpu_and_platform_can_be_described_as_mappings() -> None:
    custom_model = dict(dataclasses.asdict(MODELS["mistral-7b"]), name="my-7b")
    custom_gpu = dict(dataclasses.asdict(GPUS["a100-80gb"]), name="my-a100")
    custom_platform = dict(PLATFORMS["modal"].to_dict(), name="mine", price_per_gpu_s={"my-a100": 0.0005})
    config = make_scenario(
        "paper", gpu=custom_gpu, platform=custom_platform, agents={"code": {"model": custom_model}}
    )
    assert config.gpu_spec.name == "my-a100" and config.platform_spec.name == "mine"
    assert config.agents[2].model_spec.name == "my-7b"
    assert config.deployment.price_per_gpu_s == 0.0005
    assert config.deployment.engines[0].max_batched_tokens == 2048  # an A100-class GPU's default
    assert ScenarioConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


LLAMA_3_2_1B = {
    "name": "llama-3.2-1b",
    "num_layers": 16,
    "hidden_size": 2048,
    "num_attention_heads": 32,
    "num_kv_heads": 8,
    "intermediate_size": 8192,
    "vocab_size": 128256,
    "max_context_tokens": 131072,
    "tied_embeddings": True,
}
"""meta-llama/Llama-3.2-1B's config.json, head_dim left to derive: 2048 / 32 = 64."""


def test_a_model_described_by_its_fields_is_that_model_not_a_merge_into_the_agents() -> None:
    described = ModelSpec(**LLAMA_3_2_1B)
    assert described.head_dim == 64
    config = make_scenario("paper", agents={"code": {"model": LLAMA_3_2_1B}})
    model = config.agents[2].model_spec
    assert model == described
    assert model.kv_bytes_per_token("bf16") == described.kv_bytes_per_token("bf16")
    with pytest.raises(ConfigError, match=r"hidden_size=500 is not a multiple of num_attention_heads=3"):
        make_scenario(
            "paper", agents={"code": {"model": dict(LLAMA_3_2_1B, hidden_size=500, num_attention_heads=3)}}
        )
    with pytest.raises(ConfigError, match=r"num_layers"):
        make_scenario("paper", agents={"code": {"model": {"name": "half-described", "hidden_size": 2048}}})


def test_a_partial_model_mapping_changes_the_agents_model_and_derives_its_head_size() -> None:
    config = make_scenario(
        "paper", agents={"code": {"model": {"hidden_size": 4096, "num_attention_heads": 64}}}
    )
    model = config.agents[2].model_spec
    assert (model.name, model.num_layers, model.head_dim) == ("qwen2.5-32b", 64, 64)
    nemo = MODELS["mistral-nemo-12b"]  # an explicit head size (128, not 5120 / 32)
    assert nemo.replace(num_attention_heads=32, hidden_size=5120) == nemo
    assert nemo.replace(num_attention_heads=64).head_dim == 128
    renamed = make_scenario("paper", agents={"code": {"model": {"name": "qwen2.5-14b", "num_layers": 24}}})
    assert renamed.agents[2].model_spec == MODELS["qwen2.5-14b"].replace(num_layers=24)


def test_fleet_scales_agents_and_rejects_too_few() -> None:
    config = fleet(10)
    assert config.num_agents == 10 and config.name == "fleet10"
    assert len({a.name for a in config.agents}) == 10
    # Three specialist kinds in the paper; nine specialists are three of each kind.
    assert config.workload.task_rate_tps == pytest.approx(3.0 * make_scenario().workload.task_rate_tps)
    assert config.capacity_gpus == 48
    assert config.agents[0].max_replicas == 12
    with pytest.raises(ConfigError, match=r"num_agents >= 2, got 1"):
        fleet(1)


def test_make_scenario_rejects_unknown_preset_naming_it() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown scenario 'nope'.*\['bursty', 'diurnal', 'fleet', 'paper', 'trace-code'"
    ):
        make_scenario("nope")


def test_gym_make_overrides_reach_the_config() -> None:
    env = gym.make(
        "GpuAlloc-v1",
        capacity_gpus=20,
        decision_interval_s=2.0,
        episode_length_s=40.0,
        keep_alive_s=15,
        scale_down="kill",
        workload={"task_rate_tps": 2.5},
        reward={"slo_miss_usd": 0.5},
        agents={"coordinator": {"max_replicas": 3}, "code": {"invoke_probability": 0.25}},
    )
    config = env.unwrapped.config  # type: ignore[attr-defined]
    paper = make_scenario("paper")
    assert config.capacity_gpus == 20 and isinstance(config.capacity_gpus, int)
    assert config.decision_interval_s == 2.0 and config.episode_steps == 20
    assert config.keep_alive_s == 15.0 and config.deployment.keep_alive_s == 15.0
    assert config.scale_down == "kill"
    assert config.workload.task_rate_tps == 2.5
    assert config.workload.pattern == paper.workload.pattern  # merged, not replaced
    assert config.reward.slo_miss_usd == 0.5
    assert config.reward.cost_weight == paper.reward.cost_weight
    by_name = {a.name: a for a in config.agents}
    assert by_name["coordinator"].max_replicas == 3
    assert by_name["code"].invoke_probability == 0.25
    assert by_name["reasoning"] == paper.agents[1]
    assert env.action_space.high.tolist() == [3.0, 2.0, 6.0, 4.0]  # type: ignore[attr-defined]
    # Everything not overridden is the preset's.
    assert config.deployment.price_per_gpu_s == paper.deployment.price_per_gpu_s
    assert config.task_slo_s == paper.task_slo_s


def test_overrides_of_a_non_default_preset_keep_its_workload() -> None:
    env = gym.make("GpuAllocBursty-v1", workload={"task_rate_tps": 2.0})
    workload = env.unwrapped.config.workload  # type: ignore[attr-defined]
    assert workload.pattern == "bursty" and workload.task_rate_tps == 2.0
    assert workload.burst_peak_to_mean == make_scenario("bursty").workload.burst_peak_to_mean


def test_agents_override_by_sequence_replaces_the_agents() -> None:
    paper = make_scenario()
    config = paper.replace(agents=[paper.agents[0], paper.agents[2]])
    assert [a.name for a in config.agents] == ["coordinator", "code"]
    assert len(config.deployment.engines) == 2
    as_mappings = paper.replace(agents=[dataclasses.asdict(a) for a in paper.agents[:2]])
    assert as_mappings.agents == paper.agents[:2]


def test_numbers_are_stored_as_their_types() -> None:
    spec = (
        make_scenario().agents[0].replace(priority=2, max_replicas=3.0, tensor_parallel=1.0, max_num_seqs=8.0)
    )
    assert isinstance(spec.priority, float) and spec.priority == 2.0
    assert isinstance(spec.max_replicas, int) and isinstance(spec.tensor_parallel, int)
    assert isinstance(spec.max_num_seqs, int) and spec.max_num_seqs == 8
    assert isinstance(WorkloadSpec(task_rate_tps=3).task_rate_tps, float)
    config = make_scenario(capacity_gpus=16.0, keep_alive_s=3)
    assert isinstance(config.capacity_gpus, int) and isinstance(config.keep_alive_s, float)


def test_configs_are_frozen() -> None:
    config = make_scenario()
    with pytest.raises(AttributeError):
        config.capacity_gpus = 3  # type: ignore[misc]


CUSTOM_GQA: dict[str, Any] = {
    "name": "odd-gqa",
    "num_layers": 8,
    "hidden_size": 2560,
    "num_attention_heads": 40,
    "num_kv_heads": 8,
    "intermediate_size": 6912,
    "vocab_size": 32000,
    "max_context_tokens": 4096,
}
"""40 query heads (divisible by 5) over 8 KV heads (neither divisible by nor dividing 5)."""

BAD_OVERRIDES: list[tuple[dict[str, Any], str]] = [
    # Ranges.
    ({"capacity_gpus": -4}, r"ScenarioConfig\.capacity_gpus must be a whole number >= 1, got -4"),
    ({"capacity_gpus": 0}, r"capacity_gpus must be a whole number >= 1, got 0"),
    ({"capacity_gpus": 12.5}, r"capacity_gpus must be a whole number >= 1, got 12\.5"),
    ({"decision_interval_s": 0.0}, r"decision_interval_s must be > 0, got 0\.0"),
    ({"decision_interval_s": -1.0}, r"decision_interval_s must be > 0, got -1\.0"),
    ({"decision_interval_s": 1e-4}, r"decision_interval_s=0\.0001 is below 1 ms; use >= 0\.001"),
    ({"episode_length_s": 10.5}, r"episode_length_s=10\.5 must be a whole.*10\.5 intervals"),
    ({"price_per_gpu_s": -0.1}, r"price_per_gpu_s must be > 0, got -0\.1; pass a positive value"),
    # The reward's unit is the pool's price per interval: a free pool would divide by zero.
    ({"price_per_gpu_s": 0.0}, r"price_per_gpu_s must be > 0, got 0\.0"),
    ({"billing_increment_s": 0}, r"ScenarioConfig\.billing_increment_s must be > 0, got 0\.0"),
    ({"keep_alive_s": -1}, r"keep_alive_s must be >= 0, got -1\.0"),
    ({"engine_startup_s": -5}, r"engine_startup_s must be >= 0, got -5\.0"),
    (
        {"weight_source": "tape"},
        r"weight_source must be one of \['remote', 'ssd', 'host_memory'\], got 'tape'",
    ),
    ({"scale_down": "pause"}, r"scale_down must be one of \['drain', 'kill'\], got 'pause'"),
    # Catalogue names.
    ({"gpu": "b200"}, r"unknown GPU 'b200'; choose one of \['a100-80gb', 'h100-80gb', 'l40s-48gb'\]"),
    ({"platform": "aws"}, r"unknown platform 'aws'; choose one of \['modal', 'replicate', 'runpod'\]"),
    ({"agents": {"code": {"model": "gpt-5"}}}, r"unknown model 'gpt-5'; choose one of \["),
    ({"gpu": 7}, r"gpu must be a GPU name, a GpuSpec or a mapping of its fields, got 7"),
    (
        {"agents": {"code": {"model": {"name": "x", "layers": 3}}}},
        r"unknown ModelSpec field\(s\) \['layers'\]",
    ),
    (
        {"gpu": GPUS["h100-80gb"].replace(name="my-gpu")},
        r"platform 'runpod' lists no price for GPU 'my-gpu'.*or set price_per_gpu_s",
    ),
    # Models that do not fit their replicas.
    (
        {"agents": {"reasoning": {"tensor_parallel": 1}}},
        r"agent 'reasoning': llama-3\.3-70b in bf16 needs 131\.4 GiB of weights per GPU at "
        r"tensor_parallel=1.*use tensor_parallel=2 or more",
    ),
    (
        {"agents": {"coordinator": {"tensor_parallel": 3}}},
        r"agent 'coordinator': model 'llama-3\.1-8b' has 32 attention heads, which tensor_parallel=3 "
        r"does not divide; use one of \[1, 2, 4, 8\]",
    ),
    (
        {"agents": {"code": {"model": CUSTOM_GQA, "tensor_parallel": 5}}},
        r"agent 'code': model 'odd-gqa' has 8 KV heads: tensor_parallel=5 must divide them",
    ),
    (
        {"agents": {"code": {"tensor_parallel": 16}}},
        r"agent 'code': tensor_parallel=16 exceeds the 8 GPUs of one h100-80gb node",
    ),
    (
        {"capacity_gpus": 2},
        r"agent 'reasoning': one replica needs tensor_parallel=4 GPUs, more than capacity_gpus=2; it could",
    ),
    (
        {"agents": {"code": {"kv_reserve_gib": 80.0}}},
        r"agent 'code': kv_reserve_gib=80 is not below the 71\.27 GiB an engine may use of a h100-80gb",
    ),
    (
        {"agents": {"code": {"kv_reserve_gib": 70.0}}},
        r"agent 'code': qwen2\.5-32b in bf16 needs 61\.0 GiB of weights per GPU.*leaving no KV cache",
    ),
    (
        {"agents": {"code": {"input_tokens_mean": 40000.0}}},
        r"agent 'code': one replica's KV cache holds 31712 tokens, less than a mean request \(40200\)",
    ),
    (
        {"agents": {"code": {"kv_reserve_gib": -1.0}}},
        r"AgentSpec\('code'\)\.kv_reserve_gib must be >= 0, got -1\.0",
    ),
    ({"agents": {"code": {"gpu_memory_utilization": 1.5}}}, r"gpu_memory_utilization must be <= 1, got 1\.5"),
    ({"agents": {"code": {"gpu_memory_utilization": 0}}}, r"gpu_memory_utilization must be > 0, got 0\.0"),
    (
        {"agents": {"code": {"dtype": "int4"}}},
        r"AgentSpec\('code'\)\.dtype must be one of \['bf16', 'fp8'\], got 'int4'",
    ),
    # Agents.
    (
        {"agents": {"code": {"max_replicas": 0}}},
        r"AgentSpec\('code'\)\.max_replicas must be a whole number >= 1, got 0",
    ),
    ({"agents": {"code": {"max_replicas": 1.5}}}, r"max_replicas must be a whole number >= 1, got 1\.5"),
    ({"agents": {"code": {"tensor_parallel": 0}}}, r"tensor_parallel must be a whole number >= 1, got 0"),
    ({"agents": {"code": {"max_num_seqs": 0}}}, r"max_num_seqs must be a whole number >= 1, got 0"),
    (
        {"agents": {"code": {"max_num_batched_tokens": -8}}},
        r"max_num_batched_tokens must be a whole number >= 1, got -8",
    ),
    ({"agents": {"code": {"role": "boss"}}}, r"AgentSpec\('code'\)\.role must be one of .*got 'boss'"),
    ({"agents": {"code": {"priority": 0}}}, r"AgentSpec\('code'\)\.priority must be > 0, got 0\.0"),
    (
        {"agents": {"code": {"role": "coordinator"}}},
        r"only one coordinator is allowed; also found \['code'\]",
    ),
    ({"agents": {"code": {"name": "reasoning"}}}, r"agent names must be unique"),
    ({"agents": []}, r"agents must be a non-empty sequence of AgentSpec, got \(\)"),
    ({"agents": "code"}, r"agents override must be a sequence .* got 'code'"),
    (
        {"agents": [{"name": "solo"}]},
        r"agent 'solo' lacks the required AgentSpec field\(s\) \['input_tokens_cv'",
    ),
    ({"agents": {"code": 3}}, r"agents override for 'code' must be a mapping of AgentSpec fields, got 3"),
    ({"agents": [42]}, r"agents override items must be AgentSpec or mappings, got 42"),
    # Unknown fields and names, including the fields v1 removed.
    (
        {"capacity": 16},
        r"unknown ScenarioConfig field\(s\) \['capacity'\]; valid fields are .*'capacity_gpus'",
    ),
    ({"gpu_granularity": 0.125}, r"unknown ScenarioConfig field\(s\) \['gpu_granularity'\]"),
    (
        {"workload": {"rate": 2.0}},
        r"unknown WorkloadSpec field\(s\) \['rate'\]; valid fields .*'task_rate_tps'",
    ),
    ({"reward": {"cost": 1.0}}, r"unknown RewardSpec field\(s\) \['cost'\]; valid fields .*'cost_weight'"),
    (
        {"agents": {"code": {"gpus": 2}}},
        r"unknown AgentSpec field\(s\) \['gpus'\]; valid fields .*'max_replicas'",
    ),
    ({"agents": {"code": {"min_gpus": 1.0}}}, r"unknown AgentSpec field\(s\) \['min_gpus'\]"),
    ({"agents": {"code": {"cold_start_s": 3.0}}}, r"unknown AgentSpec field\(s\) \['cold_start_s'\]"),
    ({"agents": {"code": {"tpot_s": 0.01}}}, r"unknown AgentSpec field\(s\) \['tpot_s'\]"),
    (
        {"agents": {"vision": {"priority": 2.0}}},
        r"unknown agent name\(s\) \['vision'\] in agents override; agents are \['coordinator', 'reasoning'",
    ),
    # Types.
    ({"capacity_gpus": "16"}, r"capacity_gpus must be a whole number >= 1, got '16'"),
    ({"capacity_gpus": True}, r"capacity_gpus must be a whole number >= 1, got True"),
    ({"capacity_gpus": None}, r"capacity_gpus must be a whole number >= 1, got None"),
    ({"task_slo_s": "60"}, r"task_slo_s must be a number, got '60' of type str; pass an int or a float"),
    ({"workload": {"task_rate_tps": "fast"}}, r"WorkloadSpec\.task_rate_tps must be a number, got 'fast'"),
    (
        {"reward": {"slo_miss_usd": False}},
        r"RewardSpec\.slo_miss_usd must be a number, got False of type bool",
    ),
    (
        {"agents": {"code": {"request_slo_s": "8"}}},
        r"AgentSpec\('code'\)\.request_slo_s must be a number, got '8'",
    ),
    (
        {"agents": {"code": {"tpot_slo_s": "fast"}}},
        r"AgentSpec\('code'\)\.tpot_slo_s must be a number, got 'fast'",
    ),
    ({"agents": {"code": {"ttft_slo_s": 0}}}, r"AgentSpec\('code'\)\.ttft_slo_s must be > 0, got 0\.0"),
    (
        {"agents": {"code": {"tpot_slo_s": math.inf}}},
        r"AgentSpec\('code'\)\.tpot_slo_s must be finite, got inf",
    ),
    ({"reward": {"goodput_miss_usd": -0.01}}, r"RewardSpec\.goodput_miss_usd must be >= 0, got -0\.01"),
    ({"workload": 5}, r"ScenarioConfig\.workload must be a WorkloadSpec, got 5"),
    ({"reward": "none"}, r"ScenarioConfig\.reward must be a RewardSpec, got 'none'"),
    ({"workload": {"pattern": "weekly"}}, r"WorkloadSpec\.pattern must be one of .*'trace'\], got 'weekly'"),
    # NaN and infinity.
    ({"capacity_gpus": math.nan}, r"capacity_gpus must be a whole number >= 1, got nan"),
    ({"capacity_gpus": math.inf}, r"capacity_gpus must be a whole number >= 1, got inf"),
    ({"episode_length_s": -math.inf}, r"episode_length_s must be finite, got -inf"),
    ({"workload": {"task_rate_tps": math.nan}}, r"WorkloadSpec\.task_rate_tps must be finite, got nan"),
    ({"reward": {"cost_weight": math.inf}}, r"RewardSpec\.cost_weight must be finite, got inf"),
    ({"agents": {"code": {"priority": math.nan}}}, r"AgentSpec\('code'\)\.priority must be finite, got nan"),
    # Probabilities and fractions outside [0, 1].
    ({"agents": {"code": {"invoke_probability": 1.5}}}, r"invoke_probability must be <= 1, got 1\.5; pass"),
    ({"agents": {"code": {"invoke_probability": -0.1}}}, r"invoke_probability must be >= 0, got -0\.1"),
    ({"agents": {"code": {"invoke_probability": math.nan}}}, r"invoke_probability must be finite, got nan"),
    ({"workload": {"diurnal_amplitude": 1.2}}, r"diurnal_amplitude must be <= 1, got 1\.2; pass at"),
    ({"workload": {"diurnal_amplitude": -0.2}}, r"diurnal_amplitude must be >= 0, got -0\.2"),
    # Workload consistency.
    ({"workload": {"burst_peak_to_mean": 0.5}}, r"burst_peak_to_mean must be >= 1, got 0\.5"),
    (
        {"workload": {"burst_peak_to_mean": 10.0}},
        r"burst_peak_to_mean=10\.0 .* negative low-state rate; lower burst_peak_to_mean to at most 5\.000",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_OVERRIDES, ids=lambda p: str(p)[:60])
def test_invalid_override_raises_config_error_naming_it(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_scenario("paper", **overrides)


def test_a_huge_integer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"capacity_gpus"):
        make_scenario("paper", capacity_gpus=10**400)


def test_a_huge_float_field_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"task_slo_s is too large to be a float"):
        make_scenario("paper", task_slo_s=10**400)


def _gpu(**fields: Any) -> GpuSpec:
    return GPUS["h100-80gb"].replace(name="g", **fields)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: _gpu(memory_bandwidth_bytes_per_s=0.0),
            r"GpuSpec\('g'\)\.memory_bandwidth_bytes_per_s must be > 0, got 0\.0",
        ),
        (
            lambda: _gpu(interconnect_bytes_per_s=-1.0),
            r"GpuSpec\('g'\)\.interconnect_bytes_per_s must be > 0, got -1\.0",
        ),
        (lambda: _gpu(bf16_flops_per_s=0), r"GpuSpec\('g'\)\.bf16_flops_per_s must be > 0, got 0\.0"),
        (lambda: _gpu(memory_gib=-80.0), r"GpuSpec\('g'\)\.memory_gib must be > 0, got -80\.0"),
        (lambda: _gpu(fp8_flops_per_s=-1.0), r"GpuSpec\('g'\)\.fp8_flops_per_s must be >= 0, got -1\.0"),
        (
            lambda: _gpu(memory_efficiency=1.2),
            r"GpuSpec\('g'\)\.memory_efficiency must be a fraction in \(0, 1\], got 1\.2",
        ),
        (lambda: _gpu(max_gpus_per_node=0), r"GpuSpec\('g'\)\.max_gpus_per_node must be >= 1, got 0"),
        (lambda: _gpu(bogus=1), r"unknown GpuSpec field\(s\) \['bogus'\]"),
        (
            lambda: PLATFORMS["runpod"].replace(price_per_gpu_s={"h100-80gb": 0.0}),
            r"PlatformSpec\('runpod'\)\.price_per_gpu_s\['h100-80gb'\] must be > 0, got 0\.0",
        ),
        (
            lambda: PLATFORMS["runpod"].replace(price_per_gpu_s={"h100-80gb": -0.001}),
            r"price_per_gpu_s\['h100-80gb'\] must be > 0, got -0\.001",
        ),
        (
            lambda: PLATFORMS["runpod"].replace(price_per_gpu_s={}),
            r"price_per_gpu_s must be a non-empty mapping",
        ),
        (
            lambda: PLATFORMS["runpod"].replace(
                load_bandwidth_bytes_per_s={"remote": 1e9, "ssd": 0.0, "host_memory": 5e9}
            ),
            r"PlatformSpec\('runpod'\)\.load_bandwidth_bytes_per_s\['ssd'\] must be > 0, got 0\.0",
        ),
        (
            lambda: PLATFORMS["runpod"].replace(load_bandwidth_bytes_per_s={"remote": 1e9, "nfs": 2e9}),
            r"needs exactly the tiers .*missing \['host_memory', 'ssd'\], unknown \['nfs'\]",
        ),
        (
            lambda: PLATFORMS["runpod"].replace(billing_increment_s=0),
            r"billing_increment_s must be > 0, got 0\.0",
        ),
        (
            lambda: PLATFORMS["runpod"].replace(container_start_s=-1),
            r"container_start_s must be >= 0, got -1\.0",
        ),
        (
            lambda: PLATFORMS["runpod"].replace(weight_source="tape"),
            r"weight_source must be one of .*got 'tape'",
        ),
        (
            lambda: ModelSpec(**{**CUSTOM_GQA, "hidden_size": 2500}),
            r"ModelSpec\('odd-gqa'\): hidden_size=2500 is not a multiple of num_attention_heads=40",
        ),
        (
            lambda: MODELS["llama-3.1-8b"].replace(num_kv_heads=5),
            r"num_attention_heads=32 is not a multiple of num_kv_heads=5",
        ),
        (
            lambda: MODELS["llama-3.1-8b"].replace(num_layers=0),
            r"num_layers must be a whole number >= 1, got 0",
        ),
        (
            lambda: ModelSpec(**{**CUSTOM_GQA, "vocab_size": 2.5}),
            r"vocab_size must be a whole number >= 1, got 2\.5",
        ),
    ],
    ids=lambda p: p if isinstance(p, str) else "",
)
def test_invalid_hardware_platform_and_model_specs_raise_naming_the_value(build: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()


def test_a_custom_platform_without_the_gpu_needs_an_explicit_price() -> None:
    platform = PlatformSpec(
        name="p",
        price_per_gpu_s={"a100-80gb": 0.001},
        billing_increment_s=1.0,
        keep_alive_s=0.0,
        container_start_s=1.0,
    )
    with pytest.raises(ConfigError, match=r"platform 'p' lists no price for GPU 'h100-80gb'"):
        make_scenario("paper", platform=platform)
    assert (
        make_scenario("paper", platform=platform, price_per_gpu_s=0.002).deployment.price_per_gpu_s == 0.002
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"capacity_gpus": -1}, r"capacity_gpus must be a whole number >= 1, got -1"),
        ({"decision_interval_s": 0}, r"decision_interval_s must be > 0"),
        ({"bogus": 1}, r"unknown ScenarioConfig field\(s\) \['bogus'\]"),
        ({"agents": {"nobody": {}}}, r"unknown agent name\(s\) \['nobody'\]"),
        ({"gpu": "b200"}, r"unknown GPU 'b200'"),
    ],
)
def test_gym_make_and_the_constructor_reject_invalid_overrides(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        gym.make("GpuAlloc-v1", **overrides)
    with pytest.raises(ConfigError, match=message):
        GpuAllocEnv("paper", **overrides)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_direct_construction_is_validated() -> None:
    coordinator = make_scenario().agents[0]
    with pytest.raises(ConfigError, match=r"AgentSpec\.name must be a non-empty string, got ''"):
        coordinator.replace(name="")
    with pytest.raises(ConfigError, match=r"agents\[0\] must be the coordinator, got role 'specialist'"):
        ScenarioConfig(
            name="x", agents=(coordinator.replace(role="specialist"), coordinator.replace(name="c2"))
        )
    with pytest.raises(
        ConfigError, match=r"agent 'big': one replica needs tensor_parallel=8 GPUs, more than capacity_gpus=4"
    ):
        ScenarioConfig(
            name="x",
            agents=(coordinator, coordinator.replace(name="big", role="specialist", tensor_parallel=8)),
            capacity_gpus=4,
        )
    with pytest.raises(ConfigError, match=r"RewardSpec\.delay_usd_per_task_s must be >= 0, got -1\.0"):
        RewardSpec(delay_usd_per_task_s=-1.0)
    with pytest.raises(ConfigError, match=r"WorkloadSpec\.burst_mean_high_s must be > 0, got 0\.0"):
        WorkloadSpec(burst_mean_high_s=0.0)
    with pytest.raises(ConfigError, match=r"ScenarioConfig\.name must be a non-empty string, got ''"):
        make_scenario().replace(name="")


def test_fleet_round_trips_through_json() -> None:
    config = make_scenario("fleet", num_agents=7, keep_alive_s=30.0)
    assert ScenarioConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize("preset", sorted(p for p in SCENARIOS if p != "fleet"))  # fleet: its agents differ
def test_to_dict_from_dict_round_trip_through_json(preset: str) -> None:
    config = make_scenario(preset, keep_alive_s=30.0, agents={"code": {"priority": 2.5}})
    data = config.to_dict()
    assert data["name"] == preset and data["keep_alive_s"] == 30.0
    assert data["agents"][2]["name"] == "code" and data["agents"][2]["priority"] == 2.5
    assert data["agents"][2]["model"]["name"] == "qwen2.5-32b"
    assert data["workload"]["pattern"] == config.workload.pattern
    text = json.dumps(data)  # plain data: JSON-serialisable
    again = ScenarioConfig.from_dict(json.loads(text))
    assert again == config
    assert again.deployment == config.deployment
    assert isinstance(again.agents, tuple) and all(isinstance(a, AgentSpec) for a in again.agents)
    assert isinstance(again.workload, WorkloadSpec) and isinstance(again.reward, RewardSpec)


def test_from_dict_fills_defaults_for_missing_optional_fields() -> None:
    paper = make_scenario()
    data = {"name": "minimal", "agents": [dataclasses.asdict(a) for a in paper.agents]}
    config = ScenarioConfig.from_dict(data)
    assert config.workload == WorkloadSpec() and config.reward == RewardSpec()
    assert config.capacity_gpus == 12 and config.agents == paper.agents
    assert config.gpu_spec.name == "h100-80gb" and config.platform_spec.name == "runpod"
    assert config.scale_down == "drain" and config.keep_alive_s is None


def test_a_config_saved_before_the_goodput_fields_loads_with_their_defaults() -> None:
    paper = make_scenario()
    data = _paper_dict()
    del data["reward"]["goodput_miss_usd"]
    for agent in data["agents"]:
        del agent["ttft_slo_s"], agent["tpot_slo_s"]
    assert ScenarioConfig.from_dict(data) == paper
    assert paper.reward.goodput_miss_usd == 0.0
    assert all(a.ttft_slo_s is None and a.tpot_slo_s is None for a in paper.agents)


def _paper_dict() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(make_scenario().to_dict()))
    return result


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(extra=1), r"unknown ScenarioConfig field\(s\) \['extra'\]"),
        (lambda d: d["workload"].update(bogus=1), r"unknown WorkloadSpec field\(s\) \['bogus'\] in workload"),
        (lambda d: d["reward"].update(bogus=1), r"unknown RewardSpec field\(s\) \['bogus'\] in reward"),
        (
            lambda d: d["agents"][1].update(bogus=1),
            r"unknown AgentSpec field\(s\) \['bogus'\] in agents\[1\]",
        ),
        (
            lambda d: d["agents"][1].pop("max_replicas"),
            r"agents\[1\] lacks the required AgentSpec field\(s\) \['max_replicas'\]",
        ),
        (lambda d: d.update(workload=None), r"workload must be a mapping of WorkloadSpec fields, got None"),
        (lambda d: d.pop("agents"), r"agents must be a non-empty sequence"),
        (lambda d: d.update(capacity_gpus="12"), r"capacity_gpus must be a whole number >= 1, got '12'"),
        (
            lambda d: d["agents"][2].update(tensor_parallel=3),
            r"agent 'code': model 'qwen2\.5-32b' has 40 attention heads",
        ),
        (
            lambda d: d["gpu"].update(memory_bandwidth_bytes_per_s=-1.0),
            r"memory_bandwidth_bytes_per_s must be > 0",
        ),
        (
            lambda d: d["platform"]["price_per_gpu_s"].update({"h100-80gb": 0}),
            r"price_per_gpu_s\['h100-80gb'\] must be > 0",
        ),
        (
            lambda d: d["agents"][0]["model"].update(num_kv_heads=0),
            r"num_kv_heads must be a whole number >= 1, got 0",
        ),
    ],
)
def test_from_dict_rejects_invalid_data_naming_it(edit: Any, message: str) -> None:
    data = _paper_dict()
    edit(data)
    with pytest.raises(ConfigError, match=message):
        ScenarioConfig.from_dict(data)


def test_from_dict_rejects_a_non_mapping() -> None:
    with pytest.raises(ConfigError, match=r"a scenario must be a mapping of its fields, got \[1, 2\]"):
        ScenarioConfig.from_dict([1, 2])  # type: ignore[arg-type]


def test_numpy_scalars_are_numbers_and_the_scenario_can_be_renamed() -> None:
    config = make_scenario("paper", name="mine", capacity_gpus=np.int64(16), task_slo_s=np.float32(45.0))
    assert config.name == "mine" and config.capacity_gpus == 16 and config.task_slo_s == 45.0
    assert gym.make("GpuAlloc-v1", name="mine").unwrapped.config.name == "mine"  # type: ignore[attr-defined]
