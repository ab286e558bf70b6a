"""Tuning the baselines on the tuning seeds, the benchmark table and the gap to the limit."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from gpu_alloc_env.baselines import ProvisionedPolicy
from gpu_alloc_env.config import ConfigError
from gpu_alloc_env.evaluation import EpisodeResult
from gpu_alloc_env.limits import gap_shares, gap_table, worst_baseline
from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.seeds import TUNING_SEED_BASE
from gpu_alloc_env.stats import improvement_ci95, probability_of_improvement, stratified_bootstrap_ci95
from gpu_alloc_env.train.benchmark import run_benchmark
from gpu_alloc_env.train.tune import constant_candidates, mean_returns, tune, tuning_scenario

# A small pool and short episodes keep the searches quick: 1 + 4 + 1 + 1 GPUs for one replica each.
SMALL = make_scenario("paper", capacity_gpus=9, episode_length_s=40.0)


def test_candidates_are_every_constant_that_fits() -> None:
    candidates = constant_candidates(SMALL)
    gpus = np.array([a.tensor_parallel for a in SMALL.agents])
    assert all(int(np.dot(c, gpus)) <= 9 and min(c) >= 1 for c in candidates)
    # Reasoning holds 1 replica (2 would need 8 of 9 GPUs); the others share 5 GPUs, one each at least.
    assert len(candidates) == sum(
        1 for a in range(1, 5) for b in range(1, 7) for c in range(1, 5) if a + b + c <= 5
    )


def test_held_out_trace_parts_are_tuned_on_their_training_part() -> None:
    target = tuning_scenario(make_scenario("trace-conv-held-out"))
    assert target.name == "trace-conv" and target.workload.trace is not None
    assert target.workload.trace.split == "train"
    assert tuning_scenario(SMALL) is SMALL


def test_tuned_constant_is_the_best_finalist_and_is_reused(tmp_path: Path) -> None:
    record = tune(SMALL, "provisioned", 3, "gpu-alloc tune (test)")
    assert record.seeds == [TUNING_SEED_BASE, TUNING_SEED_BASE + 1, TUNING_SEED_BASE + 2]
    finalists = record.search["finalists"]
    best = tuple(int(v) for v in record.settings["replicas"])
    assert finalists[str(best)] == max(finalists.values())
    # Its score is what the harness measures on the same seeds.
    policy = {"mine": ProvisionedPolicy(SMALL, list(best))}
    assert mean_returns(policy, SMALL, record.seeds)["mine"] == pytest.approx(record.search["mean_return"])
    record.save(tmp_path)
    assert ProvisionedPolicy(SMALL, tuned_dir=tmp_path).replicas.tolist() == list(map(float, best))


def test_probability_of_improvement() -> None:
    assert probability_of_improvement([2.0, 3.0], [1.0, 1.5]) == 1.0
    assert probability_of_improvement([1.0], [1.0]) == 0.5
    assert probability_of_improvement([1.0, 3.0], [2.0, 2.0]) == 0.5
    estimate, low, high = improvement_ci95([3.0, 4.0, 5.0], [1.0, 2.0, 6.0])
    assert estimate == pytest.approx(6.0 / 9.0) and 0.0 <= low <= estimate <= high <= 1.0


def test_stratified_bootstrap_keeps_each_stratum() -> None:
    # Every resample keeps 2 values of the first stratum and 1 of the second, so the mean of the
    # stratum means stays within the strata's ranges.
    estimate, low, high = stratified_bootstrap_ci95(
        [[0.0, 0.0], [10.0]], lambda arrays: float(np.mean([a.mean() for a in arrays]))
    )
    assert estimate == low == high == 5.0


def result(policy: str, seed: int, value: float) -> EpisodeResult:
    return EpisodeResult(policy, seed, value, 1, {})


def test_gap_shares_run_from_the_worst_baseline_to_the_bound() -> None:
    results = [
        result("round_robin", 0, -100.0),
        result("static", 0, -60.0),
        result("round_robin", 1, -50.0),
        result("static", 1, -50.0),
        result("ppo", 0, -200.0),  # a learned policy below every baseline is not the zero
    ]
    bounds = {0: -20.0, 1: -10.0}
    assert worst_baseline(results) == "round_robin"
    shares = gap_shares(results, bounds, "round_robin")
    assert shares["static"] == pytest.approx([0.5, 0.0])
    assert shares["round_robin"] == pytest.approx([0.0, 0.0])
    assert shares["ppo"] == pytest.approx([-1.25])
    table = gap_table(results, bounds)
    assert "relaxation bound" in table and "(`round_robin`)" in table and "| static |" in table
    assert "undefined without a baseline" in gap_table([result("ppo", 0, -50.0)], bounds)
    with pytest.raises(ValueError, match=r"static scored -5\.000 on seed 0, above the relaxation bound"):
        gap_shares([*results, result("static", 0, -5.0)], bounds, "round_robin")


def test_benchmark_writes_every_file(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="no tuned settings for provisioned, autoscaler; run `gpu-alloc tune"
    ):
        run_benchmark(SMALL, [], 2, tmp_path)
    text = run_benchmark(
        SMALL,
        [],
        2,
        tmp_path,
        first_seed=TUNING_SEED_BASE,
        command="gpu-alloc benchmark (test)",
        require_tuned=False,
    )
    folder = tmp_path / SMALL.name
    with (folder / "episodes.csv").open() as handle:
        policies = {row["policy"] for row in csv.DictReader(handle)}
    # No tuned settings for this small pool: the tuned baselines are not run, the others are.
    assert policies == {"static", "round_robin", "adaptive", "oracle"}
    assert (folder / "bounds.csv").is_file() and (tmp_path / "performance_profile.png").stat().st_size > 0
    assert "Best deployable baseline" in text and "relaxation bound" in text
    table = [line for line in text.splitlines() if line.startswith("| ")][: 1 + 4]
    assert "seeds won" in table[0]
    assert {line.count("|") for line in table} == {table[0].count("|")}  # every row fills every column
    aggregate = (tmp_path / "summary.md").read_text()
    assert f"`{SMALL.name}`" in aggregate and "| oracle |" in aggregate
