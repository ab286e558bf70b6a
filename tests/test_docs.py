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


def _demoted(markdown: str) -> str:
    """The script's level-2 headings as level-4 ones, as section 7 of docs/MODEL.md shows them."""
    return re.sub(r"^## ", "#### ", markdown, flags=re.M)


def test_validation_tables_are_what_the_validation_script_prints() -> None:
    import sys

    sys.path.insert(0, str(MODEL.parents[1] / "calibration"))
    try:
        import validate
    finally:
        sys.path.pop(0)
    block = re.search(r"<!-- validation -->\n(.*?)\n<!-- /validation -->", MODEL.read_text(), re.S)
    assert block, "docs/MODEL.md has no validation block"
    assert block.group(1).strip() == _demoted(validate.report()).strip()
