"""The README's results are the committed outputs of its command, and that command reproduces them."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from gpu_alloc_env.scenarios import make_scenario
from gpu_alloc_env.train.compare import run_compare

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
import refresh  # noqa: E402  (docs/refresh.py: the tables each marked block shows)

sys.path.pop(0)


def _block(text: str, start: str) -> str:
    table = text[text.index(start) :]
    end = table.find("\n\n")
    return (table if end < 0 else table[:end]).strip()


def _readme_block(name: str) -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {name} -->\n(.*?)\n<!-- /{name} -->", readme, re.S)
    assert match, f"README.md has no {name} block"
    return match.group(1).strip()


def _regeneration_script() -> str:
    """results/regenerate.sh with continuation lines joined and whitespace collapsed."""
    script = (ROOT / "results" / "regenerate.sh").read_text()
    return " ".join(script.replace("\\\n", " ").split())


def test_readme_tables_match_committed_summary() -> None:
    summary = (ROOT / "results" / "paper" / "summary.md").read_text()
    assert _readme_block("results:paper") == _block(summary, "| policy")
    assert _readme_block("claims:paper") == _block(summary, "| claim")


def _marked_blocks() -> list[tuple[str, str, str, str]]:
    """(document, kind, result, text) of every ``<!-- kind:result -->`` block of README and MODEL.md."""
    blocks = []
    for document in ("README.md", "docs/MODEL.md"):
        for match in refresh.MARKED.finditer((ROOT / document).read_text()):
            blocks.append((document, match.group(2), match.group(3), match.group(4)))
    return blocks


@pytest.mark.parametrize(
    ("document", "kind", "result", "text"), _marked_blocks(), ids=lambda v: v if len(v) < 40 else ""
)
def test_every_marked_table_is_the_committed_results(
    document: str, kind: str, result: str, text: str
) -> None:
    assert text.strip() == refresh.summary_table(kind, result), (
        f"{document}'s {kind}:{result} block is stale; run python docs/refresh.py"
    )


@pytest.mark.slow
def test_compare_command_reproduces_committed_summary(tmp_path: Path) -> None:
    committed = (ROOT / "results" / "paper" / "summary.md").read_text()
    _, text = run_compare(make_scenario("paper"), episodes=10, first_seed=0, out_dir=tmp_path)
    assert _block(text, "| policy") == _block(committed, "| policy")
    assert _block(text, "| claim") == _block(committed, "| claim")
    assert "| claim" in text
    # Every per-episode figure too, not only those the summary shows.
    committed_rows = (ROOT / "results" / "paper" / "episodes.csv").read_text()
    assert (tmp_path / "episodes.csv").read_text() == committed_rows


def test_committed_twin_report_is_what_the_twin_command_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gpu_alloc_env.train.cli import main

    committed = (ROOT / "results" / "twins.md").read_text()
    assert "Command: `gpu-alloc twin --out results/twins.md`" in committed
    assert "gpu-alloc twin --out results/twins.md" in (ROOT / "results" / "regenerate.sh").read_text()
    assert main(["twin", "--out", str(tmp_path / "twins.md")]) == 0
    fresh = (tmp_path / "twins.md").read_text()
    assert fresh[fresh.index("### ") :] == committed[committed.index("### ") :]


PPO_COMMAND = (
    "gpu-alloc experiment --scenario paper --seeds 0 1 2 3 4 --timesteps 2000000 "
    "--runs-dir runs/paper --out results/ppo-paper --episodes 20"
)


def test_committed_ppo_results_come_from_the_regeneration_script() -> None:
    assert PPO_COMMAND in _regeneration_script()
    assert PPO_COMMAND in " ".join((ROOT / "README.md").read_text().split())
    summary = (ROOT / "results" / "ppo-paper" / "summary.md").read_text()
    assert "Learned runs: paper-seed0, paper-seed1, paper-seed2, paper-seed3, paper-seed4." in summary
    assert "20 held-out episodes per policy and run" in summary
    rows = (ROOT / "results" / "ppo-paper" / "episodes.csv").read_text().splitlines()
    # Every deployable baseline with settings for paper (six), and the five runs.
    assert len(rows) == 1 + 20 * (6 + 5)
    for name in ("latency_cdf.png", "cost_vs_p95.png", "allocation_timeline.png", "learning_curves.png"):
        assert (ROOT / "results" / "ppo-paper" / name).stat().st_size > 1000
        assert f"results/ppo-paper/{name}" in (ROOT / "README.md").read_text()


def test_committed_ppo_results_where_the_load_moves_come_from_the_regeneration_script() -> None:
    script = _regeneration_script()
    assert "for scenario in bursty diurnal; do" in script
    assert (
        'gpu-alloc experiment --scenario "$scenario" --seeds 0 1 2 --timesteps 64000 '
        '--runs-dir "runs/$scenario" --out "results/ppo-$scenario" --episodes 20'
    ) in script
    readme = " ".join((ROOT / "README.md").read_text().split())
    for scenario in ("bursty", "diurnal"):
        command = (
            f"gpu-alloc experiment --scenario {scenario} --seeds 0 1 2 --timesteps 64000 "
            f"--runs-dir runs/{scenario} --out results/ppo-{scenario} --episodes 20"
        )
        summary = (ROOT / "results" / f"ppo-{scenario}" / "summary.md").read_text()
        assert f"Command: `{command}`" in summary
        assert f"Learned runs: {scenario}-seed0, {scenario}-seed1, {scenario}-seed2." in summary
        assert f"results/ppo-{scenario}/summary.md" in readme
    assert "gpu-alloc experiment --scenario diurnal --seeds 0 1 2 --timesteps 64000" in readme


def test_the_benchmarks_trace_runs_come_from_the_regeneration_script() -> None:
    """The trace parts' PPO: the learner of bursty and diurnal, trained on each trace's training part."""
    script = _regeneration_script()
    assert "for trace in conv code; do" in script
    settings = (
        "--hp action=offset --hp reward_baseline=provisioned --hp action_repeat=30 --hp n_steps=40 "
        "--hp batch_size=320 --hp gamma=0.9 --hp eval_freq_steps=6400 --hp 'train_reward={}'"
    )
    assert (
        f'gpu-alloc experiment --scenario "trace-$trace" --seeds 0 1 2 --timesteps 64000 {settings} '
        '--runs-dir "runs/trace-$trace" --out "results/ppo-trace-$trace" --episodes 20'
    ) in script
    for trace in ("conv", "code"):
        summary = (ROOT / "results" / f"ppo-trace-{trace}" / "summary.md").read_text()
        assert f"Learned runs: trace-{trace}-seed0, trace-{trace}-seed1, trace-{trace}-seed2." in summary
        benchmark = (ROOT / "results" / "benchmark" / f"trace-{trace}-held-out" / "summary.md").read_text()
        runs = " ".join(f"runs/trace-{trace}/trace-{trace}-seed{seed}" for seed in range(3))
        assert f"--runs {runs} --out results/benchmark`" in benchmark


GENERALISE_COMMAND = (
    "gpu-alloc generalise --seeds 0 1 2 --timesteps 2000000 --episodes 20 "
    "--runs-dir runs/generalisation --out results/generalisation"
)


def test_committed_generalisation_results_come_from_the_regeneration_script() -> None:
    assert GENERALISE_COMMAND in _regeneration_script()
    assert GENERALISE_COMMAND in " ".join((ROOT / "README.md").read_text().split())
    summary = (ROOT / "results" / "generalisation" / "summary.md").read_text()
    assert f"Command: `{GENERALISE_COMMAND}`." in summary
    for trace in ("conv", "code"):
        rows = (ROOT / "results" / "generalisation" / f"episodes-{trace}.csv").read_text().splitlines()
        assert len(rows) == 1 + 20 * (6 + 3 * 3)


def test_the_readme_shows_every_ppo_and_generalisation_table() -> None:
    shown = {(kind, result) for document, kind, result, _ in _marked_blocks() if document == "README.md"}
    for kind in ("results", "ppo-claims", "per-run", "training"):
        assert (kind, "ppo-paper") in shown
    for trace in ("conv", "code"):
        assert ("generalisation-results", trace) in shown
        assert ("generalisation-paired", trace) in shown


def test_refresh_names_an_unknown_kind_and_a_missing_summary() -> None:
    with pytest.raises(ValueError, match=r"unknown table kind 'resultz'"):
        refresh.summary_table("resultz", "paper")
    with pytest.raises(ValueError, match=r"results/nowhere/summary.md does not exist"):
        refresh.summary_table("results", "nowhere")
    with pytest.raises(ValueError, match=r"README.md <!-- results:nowhere -->"):
        refresh.refresh_marked("<!-- results:nowhere -->\nold\n<!-- /results:nowhere -->\n", "README.md")


BENCHMARK_POLICIES = {"static", "round_robin", "adaptive", "provisioned", "autoscaler", "ppo", "oracle"}


@pytest.mark.parametrize(
    "scenario", ["paper", "bursty", "diurnal", "trace-conv-held-out", "trace-code-held-out"]
)
def test_committed_benchmark_comes_from_the_regeneration_script(scenario: str) -> None:
    folder = ROOT / "results" / "benchmark" / scenario
    summary = (folder / "summary.md").read_text()
    command = summary.split("Command: `")[1].split("`")[0]
    assert command.startswith(f"gpu-alloc benchmark --scenario {scenario} --runs ")
    # The script names the runs with brace expansions; the summary, as the shell expanded them.
    script = _regeneration_script()
    assert f"gpu-alloc benchmark --scenario {scenario} --runs" in script or (
        "trace" in scenario and 'gpu-alloc benchmark --scenario "trace-$trace-held-out"' in script
    )
    rows = (folder / "episodes.csv").read_text().splitlines()
    policies = {row.split(",")[0] for row in rows[1:]}
    assert policies == BENCHMARK_POLICIES
    assert len((folder / "bounds.csv").read_text().splitlines()) == 1 + 20


def test_the_readme_shows_the_benchmark() -> None:
    shown = {(kind, result) for document, kind, result, _ in _marked_blocks() if document == "README.md"}
    assert {("benchmark", "benchmark"), ("learned", "benchmark"), ("gap", "paper")} <= shown
    assert (ROOT / "results" / "benchmark" / "performance_profile.png").stat().st_size > 1000
    assert "results/benchmark/performance_profile.png" in (ROOT / "README.md").read_text()


def test_the_committed_agreement_of_the_two_backends_comes_from_the_regeneration_script() -> None:
    script = _regeneration_script()
    for backend in ("sb3", "rllib"):
        assert (
            f"gpu-alloc experiment --scenario paper --backend {backend} --seeds 0 1 2 --timesteps 500000 "
            f"--parallel 1 --runs-dir runs/agreement-{backend}"
        ) in script
    evaluate = (
        "gpu-alloc evaluate --runs runs/agreement-sb3/paper-seed{0,1,2} "
        "runs/agreement-rllib/paper-seed{0,1,2} --baselines adaptive provisioned --episodes 20 "
        "--out results/agreement"
    )
    assert evaluate in script
    assert evaluate in " ".join((ROOT / "README.md").read_text().split())
    summary = (ROOT / "results" / "agreement" / "summary.md").read_text()
    runs = " ".join(f"runs/agreement-{b}/paper-seed{s}" for b in ("sb3", "rllib") for s in range(3))
    assert f"Command: `gpu-alloc evaluate --runs {runs} --baselines" in summary
    rows = (ROOT / "results" / "agreement" / "episodes.csv").read_text().splitlines()[1:]
    policies = [row.split(",")[0] for row in rows]
    assert policies.count("ppo") == policies.count("ppo-rllib") == 3 * 20
    assert "| agreement-rllib/paper-seed2 | 2 | 503808 |" in summary
