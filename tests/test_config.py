"""Scenario configuration: presets, their registered ids, overrides, validation errors, plain-data form."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from scripted import agent, scenario

from gpu_alloc_env import ENV_IDS, GpuAllocEnv
from gpu_alloc_env.config import AgentSpec, ConfigError, RewardSpec, ScenarioConfig, WorkloadSpec
from gpu_alloc_env.scenarios import SCENARIOS, cold_start_s, fleet, make_scenario


@pytest.mark.parametrize("preset", sorted(SCENARIOS))
def test_every_preset_validates_and_has_a_versioned_registered_id(preset: str) -> None:
    config = make_scenario(preset)
    assert isinstance(config, ScenarioConfig) and config.name == preset
    # Constructing again from its own fields runs every check of __post_init__ once more.
    assert ScenarioConfig.from_dict(config.to_dict()) == config
    assert config.agents[0].role == "coordinator"
    assert all(a.role == "specialist" for a in config.agents[1:])
    assert config.episode_steps * config.decision_interval_s == pytest.approx(config.episode_length_s)
    ids = [env_id for env_id, name in ENV_IDS.items() if name == preset]
    assert ids, f"preset {preset!r} has no registered Gymnasium id"
    for env_id in ids:
        spec = gym.spec(env_id)
        assert spec.version == 0 and env_id.endswith("-v0")
        assert spec.kwargs["scenario"] == preset
        assert spec.entry_point == "gpu_alloc_env.env:GpuAllocEnv"


def test_registered_ids_cover_exactly_the_presets() -> None:
    assert set(ENV_IDS.values()) == set(SCENARIOS)
    assert ENV_IDS["GpuAlloc-v0"] == "paper"


def test_presets_differ_only_in_their_workload() -> None:
    paper = make_scenario("paper")
    assert make_scenario("bursty").workload.pattern == "bursty"
    assert make_scenario("diurnal").workload.pattern == "diurnal"
    for name in ("bursty", "diurnal"):
        other = make_scenario(name)
        assert other.agents == paper.agents
        assert other.workload.task_rate_tps == paper.workload.task_rate_tps
        assert other.replace(name="paper", workload=paper.workload) == paper


def test_cold_start_is_container_start_plus_weight_loading() -> None:
    # 70 B parameters in bf16 are 140 GB; at 5 GB/s that is 28 s, plus 5 s of container start.
    assert cold_start_s(70.0) == pytest.approx(33.0)
    assert cold_start_s(8.0, load_gb_per_s=2.0, container_start_s=0.0) == pytest.approx(8.0)
    assert make_scenario().agents[1].cold_start_s == pytest.approx(33.0)


def test_fleet_scales_agents_and_rejects_too_few() -> None:
    config = fleet(10)
    assert config.num_agents == 10 and config.name == "fleet10"
    assert len({a.name for a in config.agents}) == 10
    # Three specialist kinds in the paper; nine specialists are three of each kind.
    assert config.workload.task_rate_tps == pytest.approx(3.0 * make_scenario().workload.task_rate_tps)
    assert config.capacity_gpus == pytest.approx(36.0)
    with pytest.raises(ConfigError, match=r"num_agents >= 2, got 1"):
        fleet(1)


def test_make_scenario_rejects_unknown_preset_naming_it() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown scenario 'nope'.*\['bursty', 'diurnal', 'paper', 'trace-code'"
    ):
        make_scenario("nope")


def test_gym_make_overrides_reach_the_config() -> None:
    env = gym.make(
        "GpuAlloc-v0",
        capacity_gpus=20,
        decision_interval_s=2.0,
        episode_length_s=40.0,
        keep_alive_s=15,
        workload={"task_rate_tps": 2.5},
        reward={"slo_miss_usd": 0.5},
        agents={"coordinator": {"max_gpus": 6.0}, "code": {"invoke_probability": 0.25}},
    )
    config = env.unwrapped.config  # type: ignore[attr-defined]
    paper = make_scenario("paper")
    assert config.capacity_gpus == 20.0 and isinstance(config.capacity_gpus, float)
    assert config.decision_interval_s == 2.0 and config.episode_steps == 20
    assert config.keep_alive_s == 15.0
    assert config.workload.task_rate_tps == 2.5
    assert config.workload.pattern == paper.workload.pattern  # merged, not replaced
    assert config.reward.slo_miss_usd == 0.5
    assert config.reward.cost_weight == paper.reward.cost_weight
    by_name = {a.name: a for a in config.agents}
    assert by_name["coordinator"].max_gpus == 6.0
    assert by_name["code"].invoke_probability == 0.25
    assert by_name["reasoning"] == paper.agents[1]
    assert env.action_space.high.tolist() == [6.0, 8.0, 8.0, 4.0]
    # Everything not overridden is the preset's.
    assert config.price_per_gpu_s == paper.price_per_gpu_s and config.task_slo_s == paper.task_slo_s


def test_overrides_of_a_non_default_preset_keep_its_workload() -> None:
    env = gym.make("GpuAllocBursty-v0", workload={"task_rate_tps": 2.0})
    workload = env.unwrapped.config.workload  # type: ignore[attr-defined]
    assert workload.pattern == "bursty" and workload.task_rate_tps == 2.0
    assert workload.burst_peak_to_mean == make_scenario("bursty").workload.burst_peak_to_mean


def test_agents_override_by_sequence_replaces_the_agents() -> None:
    paper = make_scenario()
    config = paper.replace(agents=[paper.agents[0], paper.agents[2]])
    assert [a.name for a in config.agents] == ["coordinator", "code"]
    as_mappings = paper.replace(agents=[dataclasses.asdict(a) for a in paper.agents[:2]])
    assert as_mappings.agents == paper.agents[:2]


def test_numbers_are_stored_as_floats() -> None:
    spec = agent("a", role="coordinator", min_gpus=1, max_gpus=2)
    assert isinstance(spec.min_gpus, float) and isinstance(spec.max_gpus, float)
    assert isinstance(WorkloadSpec(task_rate_tps=3).task_rate_tps, float)


def test_configs_are_frozen() -> None:
    config = make_scenario()
    with pytest.raises(AttributeError):
        config.capacity_gpus = 3.0  # type: ignore[misc]


BAD_OVERRIDES: list[tuple[dict[str, Any], str]] = [
    # Ranges.
    ({"capacity_gpus": -4.0}, r"ScenarioConfig\.capacity_gpus must be > 0, got -4\.0"),
    ({"capacity_gpus": 0}, r"capacity_gpus must be > 0, got 0\.0; pass a positive value"),
    ({"decision_interval_s": 0.0}, r"decision_interval_s must be > 0, got 0\.0"),
    ({"decision_interval_s": -1.0}, r"decision_interval_s must be > 0, got -1\.0"),
    ({"decision_interval_s": 1e-4}, r"decision_interval_s=0\.0001 is below 1 ms; use >= 0\.001"),
    ({"episode_length_s": 10.5}, r"episode_length_s=10\.5 must be a whole.*10\.5 intervals"),
    ({"price_per_gpu_s": -0.1}, r"price_per_gpu_s must be > 0, got -0\.1; pass a positive value"),
    # The reward's unit is the pool's price per interval: a free pool would divide by zero.
    ({"price_per_gpu_s": 0.0}, r"price_per_gpu_s must be > 0, got 0\.0"),
    ({"capacity_gpus": 12.1}, r"capacity_gpus=12\.1 is not a multiple of gpu_granularity=0\.125"),
    ({"keep_alive_s": -1}, r"keep_alive_s must be >= 0, got -1\.0"),
    ({"capacity_gpus": 0.1}, r"capacity_gpus=0\.1 is below gpu_granularity=0\.125; raise capacity_gpus"),
    # Agents.
    (
        {"agents": {"code": {"min_gpus": 6.0, "max_gpus": 2.0}}},
        r"AgentSpec\('code'\): min_gpus=6\.0 is above max_gpus=2\.0; set min_gpus <= max_gpus",
    ),
    ({"agents": {"code": {"min_gpus": 1.1}}}, r"'code': min_gpus=1\.1 is not a multiple of gpu_granularity"),
    (
        {"capacity_gpus": 1.0},
        r"agent 'reasoning': min_gpus=2\.0 exceeds capacity_gpus=1\.0; it could never be served",
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
        r"agent 'solo' lacks the required AgentSpec field\(s\) \['cold_start_s'",
    ),
    ({"agents": {"code": 3}}, r"agents override for 'code' must be a mapping of AgentSpec fields, got 3"),
    ({"capacity_gpus": 10**400}, r"capacity_gpus is too large to be a float"),
    ({"agents": [42]}, r"agents override items must be AgentSpec or mappings, got 42"),
    # Unknown fields and names.
    (
        {"capacity": 16},
        r"unknown ScenarioConfig field\(s\) \['capacity'\]; valid fields are .*'capacity_gpus'",
    ),
    (
        {"workload": {"rate": 2.0}},
        r"unknown WorkloadSpec field\(s\) \['rate'\]; valid fields .*'task_rate_tps'",
    ),
    ({"reward": {"cost": 1.0}}, r"unknown RewardSpec field\(s\) \['cost'\]; valid fields .*'cost_weight'"),
    (
        {"agents": {"code": {"gpus": 2}}},
        r"unknown AgentSpec field\(s\) \['gpus'\]; valid fields .*'max_gpus'",
    ),
    (
        {"agents": {"vision": {"priority": 2.0}}},
        r"unknown agent name\(s\) \['vision'\] in agents override; agents are \['coordinator', 'reasoning'",
    ),
    # Types.
    (
        {"capacity_gpus": "16"},
        r"capacity_gpus must be a number, got '16' of type str; pass an int or a float",
    ),
    ({"capacity_gpus": True}, r"capacity_gpus must be a number, got True of type bool"),
    ({"capacity_gpus": None}, r"capacity_gpus must be a number, got None of type NoneType"),
    ({"workload": {"task_rate_tps": "fast"}}, r"WorkloadSpec\.task_rate_tps must be a number, got 'fast'"),
    (
        {"reward": {"slo_miss_usd": False}},
        r"RewardSpec\.slo_miss_usd must be a number, got False of type bool",
    ),
    ({"agents": {"code": {"max_gpus": "8"}}}, r"AgentSpec\('code'\)\.max_gpus must be a number, got '8'"),
    ({"workload": 5}, r"ScenarioConfig\.workload must be a WorkloadSpec, got 5"),
    ({"reward": "none"}, r"ScenarioConfig\.reward must be a RewardSpec, got 'none'"),
    (
        {"workload": {"pattern": "weekly"}},
        r"WorkloadSpec\.pattern must be one of .*'trace'\], got 'weekly'",
    ),
    # NaN and infinity.
    ({"capacity_gpus": math.nan}, r"capacity_gpus must be finite, got nan; pass a finite number"),
    ({"capacity_gpus": math.inf}, r"capacity_gpus must be finite, got inf"),
    ({"episode_length_s": -math.inf}, r"episode_length_s must be finite, got -inf"),
    ({"workload": {"task_rate_tps": math.nan}}, r"WorkloadSpec\.task_rate_tps must be finite, got nan"),
    ({"reward": {"cost_weight": math.inf}}, r"RewardSpec\.cost_weight must be finite, got inf"),
    ({"agents": {"code": {"tpot_s": math.nan}}}, r"AgentSpec\('code'\)\.tpot_s must be finite, got nan"),
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


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"capacity_gpus": -1}, r"capacity_gpus must be > 0, got -1\.0"),
        ({"decision_interval_s": 0}, r"decision_interval_s must be > 0"),
        ({"bogus": 1}, r"unknown ScenarioConfig field\(s\) \['bogus'\]"),
        ({"agents": {"nobody": {}}}, r"unknown agent name\(s\) \['nobody'\]"),
    ],
)
def test_gym_make_and_the_constructor_reject_invalid_overrides(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        gym.make("GpuAlloc-v0", **overrides)
    with pytest.raises(ConfigError, match=message):
        GpuAllocEnv("paper", **overrides)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"AgentSpec\('x'\): min_gpus=3\.0 is above max_gpus=2\.0"):
        agent("x", min_gpus=3.0, max_gpus=2.0)
    with pytest.raises(ConfigError, match=r"AgentSpec\.name must be a non-empty string, got ''"):
        agent("")
    with pytest.raises(ConfigError, match=r"agents\[0\] must be the coordinator, got role 'specialist'"):
        scenario([agent("a"), agent("b", role="coordinator")])
    with pytest.raises(ConfigError, match=r"agent 'big': min_gpus=8\.0 exceeds capacity_gpus=4\.0"):
        scenario([agent("c", role="coordinator"), agent("big", min_gpus=8.0, max_gpus=8.0)])
    with pytest.raises(ConfigError, match=r"RewardSpec\.delay_usd_per_task_s must be >= 0, got -1\.0"):
        RewardSpec(delay_usd_per_task_s=-1.0)
    with pytest.raises(ConfigError, match=r"WorkloadSpec\.burst_mean_high_s must be > 0, got 0\.0"):
        WorkloadSpec(burst_mean_high_s=0.0)
    with pytest.raises(ConfigError, match=r"ScenarioConfig\.name must be a non-empty string, got ''"):
        make_scenario().replace(name="")


@pytest.mark.parametrize("preset", sorted(SCENARIOS))
def test_to_dict_from_dict_round_trip_through_json(preset: str) -> None:
    config = make_scenario(preset, keep_alive_s=30.0, agents={"code": {"priority": 2.5}})
    data = config.to_dict()
    assert data["name"] == preset and data["keep_alive_s"] == 30.0
    assert data["agents"][2]["name"] == "code" and data["agents"][2]["priority"] == 2.5
    assert data["workload"]["pattern"] == config.workload.pattern
    text = json.dumps(data)  # plain data: JSON-serialisable
    again = ScenarioConfig.from_dict(json.loads(text))
    assert again == config
    assert isinstance(again.agents, tuple) and all(isinstance(a, AgentSpec) for a in again.agents)
    assert isinstance(again.workload, WorkloadSpec) and isinstance(again.reward, RewardSpec)


def test_from_dict_fills_defaults_for_missing_optional_fields() -> None:
    paper = make_scenario()
    data = {"name": "minimal", "agents": [dataclasses.asdict(a) for a in paper.agents]}
    config = ScenarioConfig.from_dict(data)
    assert config.workload == WorkloadSpec() and config.reward == RewardSpec()
    assert config.capacity_gpus == 16.0 and config.agents == paper.agents


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
            lambda d: d["agents"][1].pop("max_gpus"),
            r"agents\[1\] lacks the required AgentSpec field\(s\) \['max_gpus'\]",
        ),
        (lambda d: d.update(workload=None), r"workload must be a mapping of WorkloadSpec fields, got None"),
        (lambda d: d.pop("agents"), r"agents must be a non-empty sequence"),
        (lambda d: d.update(capacity_gpus="12"), r"capacity_gpus must be a number, got '12'"),
        (lambda d: d["agents"][2].update(min_gpus=20.0), r"AgentSpec\('code'\): min_gpus=20\.0 is above"),
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
    assert config.name == "mine" and config.capacity_gpus == 16.0 and config.task_slo_s == 45.0
    assert gym.make("GpuAlloc-v0", name="mine").unwrapped.config.name == "mine"
