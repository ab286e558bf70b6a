"""The baselines a platform engineer runs: provisioned constants (tuned or Erlang-C) and Knative's KPA."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_baselines import decoded

from gpu_alloc_env.baselines import (
    AutoscalerPolicy,
    ProvisionedErlangPolicy,
    ProvisionedPolicy,
    available_baselines,
    make_baseline,
)
from gpu_alloc_env.baselines.provisioned import erlang_c, erlang_replicas, offered_request_rates
from gpu_alloc_env.baselines.tuned import PACKAGED_TUNED_DIR, TunedRecord, fingerprint, load_tuned
from gpu_alloc_env.config import ConfigError
from gpu_alloc_env.scenarios import make_scenario

PAPER = make_scenario("paper")


def test_erlang_c_matches_hand_computed_values() -> None:
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1.0 / 3.0)
    assert erlang_c(3, 1.0) == pytest.approx(0.1875 / 2.0625)
    assert erlang_c(2, 2.0) == 1.0  # unstable
    assert erlang_replicas(1.0, 0.2, 6) == 3
    assert erlang_replicas(50.0, 0.2, 4) == 4  # capped at the most allowed


def test_offered_rates_follow_the_workflow() -> None:
    rates = offered_request_rates(PAPER)
    # A plan per task, an aggregation per task that calls anyone (1 - 0.4 * 0.5 * 0.3 of them).
    assert rates[0] == pytest.approx(3.5 * (1.0 + 0.94))
    assert rates[1:] == pytest.approx([3.5 * 0.6, 3.5 * 0.5, 3.5 * 0.7])
    code_trace = make_scenario("trace-code")
    assert offered_request_rates(code_trace)[2] == pytest.approx(3.5)  # every task calls the code agent


def test_erlang_sizing_fits_the_pool_and_serves_everyone() -> None:
    for capacity in (16, 9, 6):
        config = PAPER.replace(capacity_gpus=capacity)
        policy = ProvisionedErlangPolicy(config)
        gpus = float(policy.replicas @ policy.gpus_per_replica)
        assert gpus <= capacity
        if capacity >= 7:  # room for one replica of each (1 + 4 + 1 + 1 GPUs)
            assert np.all(policy.replicas >= 1)


def test_provisioned_holds_its_constant_and_checks_it() -> None:
    policy = ProvisionedPolicy(PAPER, [3, 2, 3, 2])
    action, _ = policy.predict(np.zeros((5, policy.layout.size), np.float32))
    assert action.shape == (5, 4) and np.all(action == [3, 2, 3, 2])
    for bad, words in (
        ([1, 1, 1], "one value per agent"),
        ([1, 1, 1.5, 1], "whole numbers"),
        ([1, 3, 1, 1], "max_replicas"),
        ([4, 2, 6, 4], "more than the pool"),
    ):
        with pytest.raises(ConfigError, match=words):
            ProvisionedPolicy(PAPER, bad)


def test_tuned_records_are_found_by_scenario_and_fingerprint(tmp_path: Path) -> None:
    packaged = json.loads((PACKAGED_TUNED_DIR / "paper.provisioned.json").read_text())
    assert packaged["fingerprint"] == fingerprint(PAPER)
    assert ProvisionedPolicy(PAPER).replicas.tolist() == packaged["settings"]["replicas"]
    assert "provisioned" in available_baselines(PAPER) and "autoscaler" in available_baselines(PAPER)
    changed = PAPER.replace(capacity_gpus=20)
    with pytest.raises(ConfigError, match="different scenario settings"):
        ProvisionedPolicy(changed)
    assert "provisioned" not in available_baselines(changed)
    mine = TunedRecord(
        "paper", fingerprint(changed), "provisioned", {"replicas": [4, 2, 4, 4]}, "paper", [1, 2], "cmd"
    )
    mine.save(tmp_path)
    assert ProvisionedPolicy(changed, tuned_dir=tmp_path).replicas.tolist() == [4, 2, 4, 4]
    assert make_baseline("provisioned", changed, tuned_dir=tmp_path).replicas.tolist() == [4, 2, 4, 4]
    with pytest.raises(ConfigError, match="gpu-alloc tune --scenario nameless"):
        load_tuned(PAPER.replace(name="nameless"), "provisioned")


def test_a_scenario_read_back_from_json_keeps_its_fingerprint() -> None:
    # A run folder stores its scenario as JSON (sorted keys, whole numbers as ints); the settings
    # tuned for the scenario must still apply to it when it is read back.
    for name in ("paper", "trace-conv-held-out"):
        config = make_scenario(name)
        text = json.dumps(config.to_dict(), sort_keys=True)
        back = type(config).from_dict(json.loads(text.replace(".0,", ",")))
        assert back == config and fingerprint(back) == fingerprint(config)
    assert fingerprint(PAPER.replace(capacity_gpus=20)) != fingerprint(PAPER)


def test_the_goodput_fields_change_the_fingerprint_only_away_from_their_defaults() -> None:
    # The records were tuned before the goodput fields existed; at their defaults they still apply.
    assert (
        fingerprint(PAPER)
        == json.loads((PACKAGED_TUNED_DIR / "paper.provisioned.json").read_text())["fingerprint"]
    )
    assert fingerprint(PAPER.replace(reward={"goodput_miss_usd": 0.0})) == fingerprint(PAPER)
    assert fingerprint(PAPER.replace(reward={"goodput_miss_usd": 0.01})) != fingerprint(PAPER)
    assert fingerprint(PAPER.replace(agents={"code": {"ttft_slo_s": 2.0}})) != fingerprint(PAPER)
    assert fingerprint(PAPER.replace(agents={"code": {"tpot_slo_s": 0.1}})) != fingerprint(PAPER)


class Feed:
    """Drives an autoscaler one decision at a time with chosen concurrency and ready replicas."""

    def __init__(self, policy: AutoscalerPolicy) -> None:
        self.policy = policy
        self.time_s = 0.0

    def __call__(self, queued: list[float], active: list[float]) -> np.ndarray:
        obs = decoded(PAPER, queued=queued, active_replicas=active, time_s=[self.time_s])
        self.time_s += PAPER.decision_interval_s
        return self.policy.allocate(obs)[0]


def test_autoscaler_sizes_to_target_concurrency_and_starts_with_one() -> None:
    feed = Feed(AutoscalerPolicy(PAPER, target_concurrency=10.0, target_utilization=1.0))
    first = feed([0, 0, 0, 0], [0, 0, 0, 0])
    assert first.tolist() == [1, 1, 1, 1]  # initial scale 1 for every revision
    for _ in range(60):
        action = feed([35, 5, 25, 0], [4, 1, 3, 1])
    assert action.tolist() == [4, 1, 3, 1]  # ceil(35/10), ceil(5/10), ceil(25/10), and one kept (grace)


def test_autoscaler_panics_on_a_burst_and_holds_until_calm() -> None:
    feed = Feed(AutoscalerPolicy(PAPER, target_concurrency=10.0, target_utilization=1.0))
    for _ in range(60):
        feed([0, 0, 5, 0], [1, 1, 1, 1])
    burst = feed([0, 0, 60, 0], [1, 1, 1, 1])
    # stable average (59 x 5 + 60) / 60 wants 1; panic average (5 x 5 + 60) / 6 wants 2 >= 2 x 1 ready.
    assert burst[2] == 2
    for _ in range(30):
        held = feed([0, 0, 5, 0], [1, 1, 2, 1])
    assert held[2] == 2  # panic mode never scales down
    for _ in range(40):
        calm = feed([0, 0, 5, 0], [1, 1, 2, 1])
    assert calm[2] == 1  # a stable window after the last panic signal, back to the stable desire


def test_autoscaler_scales_down_by_half_at_most_then_to_zero_after_the_grace() -> None:
    feed = Feed(AutoscalerPolicy(PAPER, target_concurrency=10.0, target_utilization=1.0))
    for _ in range(5):
        feed([0, 0, 40, 0], [1, 1, 4, 1])
    down = feed([0, 0, 0, 0], [1, 1, 4, 1])
    assert down[2] >= 2  # max scale-down rate 2: at least half the ready replicas stay
    actions = [feed([0, 0, 0, 0], [1, 1, 1, 1]) for _ in range(100)]
    idle_s = np.arange(1, 101) + 1.0  # seconds since the last traffic at each of those decisions
    kept = np.array([a[2] for a in actions])
    assert np.all(kept[idle_s < 90.0] >= 1) and np.all(kept[idle_s >= 91.0] == 0)


def test_autoscaler_forgets_its_windows_at_a_new_episode() -> None:
    policy = AutoscalerPolicy(PAPER, target_concurrency=10.0, target_utilization=1.0)
    feed = Feed(policy)
    for _ in range(30):
        feed([0, 0, 60, 0], [1, 1, 6, 1])
    feed.time_s = 0.0
    fresh = feed([0, 0, 0, 0], [0, 0, 0, 0])
    assert fresh.tolist() == [1, 1, 1, 1]


def test_autoscaler_defaults_and_checks() -> None:
    knative = AutoscalerPolicy(PAPER, target_concurrency=None)
    assert knative.target_per_replica.tolist() == [70.0] * 4 and knative.source == "Knative defaults"
    assert knative.stable_samples == 60 and knative.panic_samples == 6
    tuned = AutoscalerPolicy(PAPER)
    assert tuned.source.startswith("tuned on paper")
    with pytest.raises(ValueError, match="target_concurrency"):
        AutoscalerPolicy(PAPER, target_concurrency=[1.0, -1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="max_scale_down_rate"):
        AutoscalerPolicy(PAPER, target_concurrency=5.0, max_scale_down_rate=0.5)
