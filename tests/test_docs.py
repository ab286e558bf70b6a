"""docs/MODEL.md's figures are what its own snippets print."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

MODEL = Path(__file__).resolve().parents[1] / "docs" / "MODEL.md"
# A Python snippet immediately followed by the block of what it prints.
SNIPPET = re.compile(r"```python\n(.*?)```\s*\n```\n(.*?)```", re.S)


def _snippets() -> list[tuple[str, str]]:
    return [(code, printed) for code, printed in SNIPPET.findall(MODEL.read_text())]


def test_model_document_has_snippets() -> None:
    assert len(_snippets()) >= 4


@pytest.mark.parametrize(("code", "printed"), _snippets(), ids=lambda v: v.split("\n")[0][:40])
def test_snippet_prints_what_the_document_shows(code: str, printed: str) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(MODEL), "exec"), {"__name__": "model_snippet"})
    assert out.getvalue().strip() == printed.strip()
