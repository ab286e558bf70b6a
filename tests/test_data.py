"""Bundled traces: read as package resources from anywhere, shipped with their license, checksummed."""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import gpu_alloc_env.data as data
from gpu_alloc_env.data import TRACES, trace_file, verify_trace
from gpu_alloc_env.scenarios import paper_agents

ROOT = Path(__file__).resolve().parents[1]
TRACE_DIR = resources.files("gpu_alloc_env") / "data" / "traces"
# Requests in each trace, as documented in gpu_alloc_env/data/traces/README.md.
REQUESTS = {"conv": 19_366, "code": 8_819}


def read_trace(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(trace_file(name).read_text(encoding="utf-8"))))


@pytest.mark.parametrize("name", sorted(TRACES))
def test_traces_are_read_as_resources_from_another_directory(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    resource = trace_file(name)
    assert resource.is_file() and resource.name == TRACES[name][0]
    rows = read_trace(name)
    assert list(rows[0]) == ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]
    assert len(rows) == REQUESTS[name]
    assert all(r["TIMESTAMP"].startswith("2023-11-16 ") for r in rows)
    assert all(int(r["ContextTokens"]) >= 0 and int(r["GeneratedTokens"]) >= 0 for r in rows)
    assert list(tmp_path.iterdir()) == []  # nothing was written to the working directory


@pytest.mark.parametrize("name", sorted(TRACES))
def test_verify_trace_passes_on_the_bundled_files(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert verify_trace(name) is True
    assert hashlib.sha256(trace_file(name).read_bytes()).hexdigest() == TRACES[name][1]


@pytest.mark.parametrize("name", sorted(TRACES))
def test_verify_trace_fails_on_a_corrupted_copy(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = trace_file(name).read_bytes()
    copy = tmp_path / TRACES[name][0]
    monkeypatch.setattr(data, "trace_file", lambda _: copy)
    copy.write_bytes(original)
    assert verify_trace(name) is True  # an intact copy elsewhere still verifies
    corrupted = bytearray(original)
    corrupted[len(corrupted) // 2] ^= 0x01  # flip one bit
    copy.write_bytes(bytes(corrupted))
    assert verify_trace(name) is False
    copy.write_bytes(original[:-1])  # truncated by one byte
    assert verify_trace(name) is False
    copy.write_bytes(original.replace(b"\n", b"\r\n", 1))  # line endings rewritten
    assert verify_trace(name) is False


def test_verify_trace_fails_when_the_recorded_digest_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TRACES, "conv", (TRACES["conv"][0], "0" * 64))
    assert verify_trace("conv") is False


def test_unknown_trace_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match=r"unknown bundled trace 'chat'; choose one of \['code', 'conv'\]"):
        trace_file("chat")
    with pytest.raises(ValueError, match=r"unknown bundled trace 'chat'"):
        verify_trace("chat")


def test_license_and_readme_ship_with_the_traces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    license_file = TRACE_DIR / "LICENSE-CC-BY-4.0.txt"
    assert license_file.is_file()
    text = license_file.read_text(encoding="utf-8-sig")
    assert text.startswith("Attribution 4.0 International")
    assert "Creative Commons" in text
    readme = (TRACE_DIR / "README.md").read_text(encoding="utf-8")
    assert "CC-BY 4.0" in readme and "Splitwise" in readme
    for name, (file_name, digest) in TRACES.items():
        assert file_name in readme
        assert f"{name} {digest}" in readme  # the README records the same checksums


def test_package_data_declares_every_bundled_file() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["gpu_alloc_env"]
    files = sorted(entry.name for entry in TRACE_DIR.iterdir() if entry.is_file())
    assert "LICENSE-CC-BY-4.0.txt" in files
    assert {file_name for file_name, _ in TRACES.values()} <= set(files)
    for file_name in files:
        path = f"data/traces/{file_name}"
        assert any(fnmatch.fnmatch(path, pattern) for pattern in patterns), path


def test_distribution_metadata_names_both_licenses() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT AND CC-BY-4.0"
    for license_path in project["license-files"]:
        assert (ROOT / license_path).is_file(), license_path
    assert "gpu_alloc_env/data/traces/LICENSE-CC-BY-4.0.txt" in project["license-files"]


@pytest.mark.parametrize(("trace", "agent_name"), [("conv", "coordinator"), ("code", "code")])
def test_paper_prompt_lengths_are_fitted_to_the_traces(trace: str, agent_name: str) -> None:
    # The agent's log-normal prompt length has the trace's mean and median:
    # median = mean / sqrt(1 + cv^2) for a log-normal.
    tokens = np.array([float(r["ContextTokens"]) for r in read_trace(trace)])
    spec = next(a for a in paper_agents() if a.name == agent_name)
    assert spec.input_tokens_mean == pytest.approx(tokens.mean(), rel=1e-3)
    median = spec.input_tokens_mean / np.sqrt(1.0 + spec.input_tokens_cv**2)
    assert median == pytest.approx(np.median(tokens), rel=0.01)
