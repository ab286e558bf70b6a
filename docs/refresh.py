"""Rewrite the computed figures of README.md and docs/MODEL.md from the commands behind them.

    python docs/refresh.py            # rewrite both documents in place
    python docs/refresh.py --check    # exit 1, naming the stale parts, if a rewrite would change them

Three kinds of computed text are refreshed:

* every Python snippet of docs/MODEL.md that is followed by a plain code block: the block becomes
  what the snippet prints (``tests/test_docs.py`` checks the same);
* docs/MODEL.md's ``<!-- validation -->`` block: the report of ``calibration/validate.py``;
* blocks marked ``<!-- KIND:RESULT -->`` in either document (``results:paper``, ``ppo-claims:ppo-paper``,
  ``generalisation-paired:code``, ...; the kinds are :data:`TABLE_STARTS`): the table of that kind in
  ``results/RESULT/summary.md``; for the ``generalisation-*`` kinds in the section of trace RESULT
  of ``results/generalisation/summary.md``; for the ``benchmark-*`` kinds in
  ``results/benchmark/RESULT/summary.md`` (``tests/test_results_reproducible.py`` checks the same).

Every replacement is computed before anything is written; a marker of an unknown kind or a table
missing from its summary stops the script with an error naming the document and the marker.

Run it after regenerating ``results/`` (``results/regenerate.sh``) or changing the model, then read the
prose around the tables: it is written by hand and may no longer say what the figures say.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "docs" / "MODEL.md"
README = ROOT / "README.md"

SNIPPET = re.compile(r"(```python\n(.*?)```\s*\n```\n)(.*?)(```)", re.S)
MARKED = re.compile(r"(<!-- ([a-z0-9_-]+):([a-z0-9_.-]+) -->\n)(.*?)(\n<!-- /\2:\3 -->)", re.S)

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
    "gap": "| policy | share",
    "benchmark": "| policy | `",
    "learned": "| scenario | PPO runs",
    "benchmark-scenario": "| policy | episodes | IQM",
    "benchmark-ppo": "| criterion | difference",
    "bench": "| measurement | figure",
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
    """The table a ``<!-- kind:result -->`` block shows; ``ValueError`` naming what is missing."""
    if kind not in TABLE_STARTS:
        raise ValueError(f"unknown table kind {kind!r}; the kinds are {sorted(TABLE_STARTS)}")
    if kind.startswith("generalisation-"):
        path = ROOT / "results" / "generalisation" / "summary.md"
        section = f"## Held-out part of the `{result}` trace"
    elif kind.startswith("benchmark-"):
        path = ROOT / "results" / "benchmark" / result / "summary.md"
        section = ""
    else:
        path = ROOT / "results" / result / "summary.md"
        section = {"ppo-claims": "## ppo against the adaptive", "best-claims": "## ppo against the best"}.get(
            kind, ""
        )
    if not path.exists():
        raise ValueError(f"{path.relative_to(ROOT)} does not exist; run the command that writes it")
    summary = path.read_text()
    if section not in summary:
        raise ValueError(f"{path.relative_to(ROOT)} has no section {section!r}")
    summary = summary[summary.index(section) :]
    if kind.startswith("generalisation-"):
        next_section = summary.find("\n## ", 1)
        summary = summary if next_section < 0 else summary[:next_section]
    occurrence = 1 if kind == "generalisation-best" else 0
    if summary.count(TABLE_STARTS[kind]) <= occurrence:
        raise ValueError(f"{path.relative_to(ROOT)} has no {kind} table (starting {TABLE_STARTS[kind]!r})")
    return table(summary, TABLE_STARTS[kind], occurrence)


def refresh_marked(text: str, document: str = "") -> str:
    """``text`` with every marked block replaced by its table."""

    def replace(match: re.Match[str]) -> str:
        try:
            fresh = summary_table(match.group(2), match.group(3))
        except ValueError as exc:
            raise ValueError(f"{document} <!-- {match.group(2)}:{match.group(3)} -->: {exc}") from exc
        return match.group(1) + fresh + match.group(5)

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
    os.chdir(ROOT)  # the snippets read results/ relative to the repository
    fresh: dict[Path, str] = {}
    stale: list[str] = []
    try:
        for path, refreshers in ((README, ("tables",)), (MODEL, ("tables", "validation", "snippets"))):
            text = path.read_text()
            new = text
            for part in refreshers:
                before = new
                if part == "tables":
                    new = refresh_marked(new, str(path.relative_to(ROOT)))
                elif part == "validation":
                    new = refresh_validation(new)
                else:
                    new = refresh_snippets(new)
                if new != before:
                    stale.append(f"{path.relative_to(ROOT)} ({part})")
            fresh[path] = new
    except ValueError as exc:
        print(f"refresh: error: {exc}", file=sys.stderr)
        return 2
    if not args.check:
        for path, text in fresh.items():
            path.write_text(text)
    verb = "stale" if args.check else "rewritten"
    print(f"{verb}: {', '.join(stale)}" if stale else "up to date")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
