"""The README's snippets run on their own, and its commands write only where git ignores or keeps results."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, re.S)
COMMANDS = [
    " ".join(block.replace("\\\n", " ").split()) for block in re.findall(r"```bash\n(.*?)```", README, re.S)
]


def test_the_readme_has_snippets_and_commands() -> None:
    assert len(SNIPPETS) >= 3 and len(COMMANDS) >= 4


RAY_SKIP = "needs the ray extra: pip install -e '.[train,ray]'"


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(code, marks=[pytest.mark.ray, pytest.mark.slow]) if "from ray" in code else code
        for code in SNIPPETS
    ],
    ids=lambda code: code.splitlines()[-1][:40],
)
def test_every_snippet_runs_in_a_fresh_namespace(code: str) -> None:
    if "from ray" in code:
        # A script of its own, as a user runs it: its Ray session starts and ends with the process.
        pytest.importorskip("ray.rllib", reason=RAY_SKIP)
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        command = [sys.executable, "-c", code]
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return
    # The README trains for 10,000 steps; one rollout shows the same code runs.
    code = code.replace(".learn(10_000)", ".learn(256)")
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_snippet"})


def _written_paths() -> list[str]:
    paths = []
    for line in COMMANDS:
        words = shlex.split(line.replace("&&", " ; "))
        for option in ("--out", "--runs-dir", "--run-dir"):
            paths += [words[i + 1] for i, word in enumerate(words[:-1]) if word == option]
    return paths


def test_the_readmes_commands_write_only_to_ignored_or_committed_folders() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paths = _written_paths()
    assert "results/quick" in paths and "runs/quick" in paths
    for path in paths:
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False).returncode == 0
        committed = (ROOT / path / "summary.md").exists() and not ignored
        assert ignored or committed, (
            f"README command writes {path}: neither ignored by git nor committed results"
        )
