"""Rewrite the computed figures of README.md and docs/MODEL.md from the commands behind them.

    python docs/refresh.py            # rewrite both documents in place
    python docs/refresh.py --check    # exit 1, naming the stale parts, if a rewrite would change them

Three kinds of computed text are refreshed:

* every Python snippet of docs/MODEL.md that is followed by a plain code block: the block becomes
  what the snippet prints (``tests/test_docs.py`` checks the same);
* docs/MODEL.md's ``<!-- validation -->`` block: the report of ``calibration/validate.py``;
* blocks marked ``<!-- KIND:RESULT -->`` in either document (``results:paper``, ``claims:ppo-paper``,
  ``generalisation-paired:code``, ...): the table of that kind in ``results/RESULT/summary.md``
  (``tests/test_results_reproducible.py`` checks the same).

Run it after regenerating ``results/`` (``results/regenerate.sh``) or changing the model, then read the
prose around the tables: it is written by hand and may no longer say what the figures say.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "docs" / "MODEL.md"
README = ROOT / "README.md"

SNIPPET = re.compile(r"(```python\n(.*?)```\s*\n```\n)(.*?)(```)", re.S)
MARKED = re.compile(r"(<!-- ([a-z-]+):([a-z-]+) -->\n)(.*?)(\n<!-- /\2:\3 -->)", re.S)

TABLE_STARTS: dict[str, str] = {
    "results": "| policy",
    "claims": "| claim",
    "ppo-claims": "| criterion",
    "best-claims": "| criterion",
    "per-run": "| run | episode_return",
    "training": "| run | train_seed",
    "generalisation-results": "| policy",
    "generalisation-paired": "| trained on",
    "generalisation-best": "| trained on",
}
"""The first characters of the table each block kind shows."""


def table(text: str, start: str, occurrence: int = 0) -> str:
    """The markdown table of ``text`` beginning with ``start`` (its ``occurrence``-th), to the blank line."""
    at = -1
    for _ in range(occurrence + 1):
        at = text.index(start, at + 1)
    rest = text[at:]
    end = rest.find("\n\n")
    return (rest if end < 0 else rest[:end]).strip()


def summary_table(kind: str, result: str) -> str:
    """The table a ``<!-- kind:result -->`` block shows."""
    if kind.startswith("generalisation-"):
        summary = (ROOT / "results" / "generalisation" / "summary.md").read_text()
        summary = summary[summary.index(f"## Held-out part of the `{result}` trace") :]
        next_section = summary.find("\n## ", 1)
        summary = summary if next_section < 0 else summary[:next_section]
        return table(summary, TABLE_STARTS[kind], 1 if kind == "generalisation-best" else 0)
    summary = (ROOT / "results" / result / "summary.md").read_text()
    if kind == "ppo-claims":
        return table(summary[summary.index("## ppo against the adaptive") :], TABLE_STARTS[kind])
    if kind == "best-claims":
        return table(summary[summary.index("## ppo against the best baseline") :], TABLE_STARTS[kind])
    return table(summary, TABLE_STARTS[kind])


def refresh_marked(text: str) -> str:
    """``text`` with every marked block replaced by its table."""

    def replace(match: re.Match[str]) -> str:
        return match.group(1) + summary_table(match.group(2), match.group(3)) + match.group(5)

    return MARKED.sub(replace, text)


def run_snippet(code: str) -> str:
    """What ``code`` prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(MODEL), "exec"), {"__name__": "model_snippet"})
    return out.getvalue()


def refresh_snippets(text: str) -> str:
    """``text`` with the output block of every snippet replaced by what the snippet prints."""

    def replace(match: re.Match[str]) -> str:
        printed = run_snippet(match.group(2)).strip()
        return match.group(1) + printed + "\n" + match.group(4)

    return SNIPPET.sub(replace, text)


def demoted(markdown: str) -> str:
    """Level-2 headings as level-4 ones, as section 7 of docs/MODEL.md shows them."""
    return re.sub(r"^## ", "#### ", markdown, flags=re.M)


def refresh_validation(text: str) -> str:
    """``text`` with the validation block replaced by ``calibration/validate.py``'s report."""
    sys.path.insert(0, str(ROOT / "calibration"))
    try:
        import validate
    finally:
        sys.path.pop(0)
    report = demoted(validate.report()).strip()
    return re.sub(
        r"(<!-- validation -->\n).*?(\n<!-- /validation -->)",
        lambda m: m.group(1) + report + m.group(2),
        text,
        flags=re.S,
    )


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check``, check) both documents; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is stale")
    args = parser.parse_args(argv)
    steps: dict[Path, list[Callable[[str], str]]] = {
        README: [refresh_marked],
        MODEL: [refresh_marked, refresh_validation, refresh_snippets],
    }
    stale = []
    for path, refreshers in steps.items():
        text = path.read_text()
        fresh = text
        for refresh in refreshers:
            fresh = refresh(fresh)
        if fresh != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(fresh)
    verb = "stale" if args.check else "rewritten"
    print(f"{verb}: {', '.join(map(str, stale))}" if stale else "up to date")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
