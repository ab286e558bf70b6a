"""The README's results are the committed outputs of its command, and that command reproduces them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpu_alloc_env.scenarios import make_scenario
from train.compare import run_compare

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.mark.slow
def test_compare_command_reproduces_committed_summary(tmp_path: Path) -> None:
    committed = (ROOT / "results" / "paper" / "summary.md").read_text()
    _, text = run_compare(make_scenario("paper"), episodes=10, first_seed=0, out_dir=tmp_path)
    assert _block(text, "| policy") == _block(committed, "| policy")
    assert _block(text, "| claim") == _block(committed, "| claim")
    assert "| claim" in text and "does not hold" not in _block(text, "| claim")
    # Every per-episode figure too, not only those the summary shows.
    committed_rows = (ROOT / "results" / "paper" / "episodes.csv").read_text()
    assert (tmp_path / "episodes.csv").read_text() == committed_rows


@pytest.mark.parametrize(
    ("name", "start"),
    [
        ("results:ppo-paper", "| policy"),
        ("claims:ppo-paper", "| criterion"),
        ("per-run:ppo-paper", "| run | episode_return"),
        ("training:ppo-paper", "| run | train_seed"),
    ],
)
def test_readme_ppo_tables_match_committed_summary(name: str, start: str) -> None:
    summary = (ROOT / "results" / "ppo-paper" / "summary.md").read_text()
    assert _readme_block(name) == _block(summary, start)


def test_committed_ppo_results_come_from_the_regeneration_script() -> None:
    readme = (ROOT / "README.md").read_text()
    command = (
        "gpu-alloc experiment --scenario paper --seeds 0 1 2 3 4 --timesteps 4000000 "
        "--runs-dir runs/paper --out results/ppo-paper --episodes 20"
    )
    assert command in _regeneration_script()
    assert command in readme
    summary = (ROOT / "results" / "ppo-paper" / "summary.md").read_text()
    assert "Learned runs: paper-seed0, paper-seed1, paper-seed2, paper-seed3, paper-seed4." in summary
    assert "20 held-out episodes per policy and run" in summary
    for name in ("latency_cdf.png", "cost_vs_p95.png", "allocation_timeline.png", "learning_curves.png"):
        assert (ROOT / "results" / "ppo-paper" / name).stat().st_size > 1000
        assert f"results/ppo-paper/{name}" in readme


def test_committed_twin_report_is_what_the_twin_command_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from train.cli import main

    committed = (ROOT / "results" / "twins.md").read_text()
    assert "Command: `gpu-alloc twin --out results/twins.md`" in committed
    assert "gpu-alloc twin --out results/twins.md" in (ROOT / "results" / "regenerate.sh").read_text()
    assert main(["twin", "--out", str(tmp_path / "twins.md")]) == 0
    fresh = (tmp_path / "twins.md").read_text()
    assert fresh[fresh.index("### ") :] == committed[committed.index("### ") :]


GENERALISE_COMMAND = (
    "gpu-alloc generalise --seeds 0 1 2 --timesteps 2000000 --episodes 20 "
    "--runs-dir runs/generalisation --out results/generalisation"
)


@pytest.mark.parametrize("trace", ["conv", "code"])
@pytest.mark.parametrize(("kind", "start"), [("results", "| policy"), ("paired", "| trained on")])
def test_readme_generalisation_tables_match_committed_summary(trace: str, kind: str, start: str) -> None:
    summary = (ROOT / "results" / "generalisation" / "summary.md").read_text()
    section = summary[summary.index(f"## Held-out part of the `{trace}` trace") :]
    assert _readme_block(f"generalisation-{kind}:{trace}") == _block(section, start)


def test_committed_generalisation_results_come_from_the_regeneration_script() -> None:
    assert GENERALISE_COMMAND in _regeneration_script()
    assert GENERALISE_COMMAND in (ROOT / "README.md").read_text()
    summary = (ROOT / "results" / "generalisation" / "summary.md").read_text()
    assert f"Command: `{GENERALISE_COMMAND}`." in summary
    for trace in ("conv", "code"):
        rows = (ROOT / "results" / "generalisation" / f"episodes-{trace}.csv").read_text().splitlines()
        assert len(rows) == 1 + 20 * (3 + 3 * 3)
