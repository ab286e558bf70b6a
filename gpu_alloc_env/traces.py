"""Request traces: the bundled Azure LLM inference traces and any CSV or JSON Lines file of requests.

A trace is a list of requests, each with a timestamp and input and output token counts. Files are
read once per process and cached. Malformed files fail with a :class:`TraceError` that names the
file, the line and the problem; requests out of time order are sorted, with a warning. The suffix
chooses the format: ``.jsonl``, ``.ndjson`` and ``.json`` are JSON Lines (one JSON object per line),
anything else is CSV with a header row.

```python
from gpu_alloc_env.traces import bundled_trace, load_trace
conv = bundled_trace("conv")            # shipped with the package
mine = load_trace("requests.jsonl", timestamp_column="ts", timestamp_unit="ms",
                  input_tokens_column="prompt", output_tokens_column="completion")
```
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, get_args

import numpy as np

from gpu_alloc_env.arrays import FloatArray, IntArray
from gpu_alloc_env.config import TimestampUnit, TraceSpec
from gpu_alloc_env.data import TRACES, trace_file

TIMESTAMP_UNITS: tuple[str, ...] = get_args(TimestampUnit)
"""How timestamps are read: ``datetime`` (ISO 8601 text), ``s`` or ``ms`` (numbers); ``auto`` is
``datetime`` and refuses numbers, whose unit it cannot know."""
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
"""Suffixes (in any case) of the files read as JSON Lines, one JSON object per line; every other
file is read as CSV. A ``.json`` file must hold JSON Lines too: a JSON array is refused."""
MAX_TOKENS = 10**9
"""Largest token count a request may have. Requests of real services have at most a few million
tokens; a larger count is almost surely another column (an id, a timestamp) and is refused rather
than replayed. The bound also keeps every count, and sums of counts, within 64-bit integers."""


class TraceError(ValueError):
    """A trace file that cannot be read: the message names the file, the line and the problem."""


@dataclass(frozen=True)
class Trace:
    """Requests in time order.

    ``arrival_s`` is seconds since the first request (so it starts at 0); ``input_tokens`` and
    ``output_tokens`` are whole token counts; ``line`` is each request's line in its file (1-based,
    the header of a CSV being line 1).
    """

    name: str
    arrival_s: FloatArray
    input_tokens: IntArray
    output_tokens: IntArray
    line: IntArray
    reordered: int = 0
    """Requests that came earlier than the line before them in the file (sorted on reading)."""
    first_reordered_line: int = 0

    @property
    def count(self) -> int:
        """Number of requests."""
        return int(self.arrival_s.size)

    @property
    def span_s(self) -> float:
        """Seconds from the first request to the last."""
        return float(self.arrival_s[-1]) if self.count else 0.0

    @property
    def rate_rps(self) -> float:
        """Mean arrival rate over the span, requests per second."""
        return self.count / self.span_s if self.span_s > 0 else math.nan

    def between(self, start_s: float, end_s: float) -> Trace:
        """The requests with ``start_s <= arrival_s < end_s`` (times kept, not shifted)."""
        lo, hi = np.searchsorted(self.arrival_s, [start_s, end_s], side="left")
        return Trace(
            name=self.name,
            arrival_s=self.arrival_s[lo:hi],
            input_tokens=self.input_tokens[lo:hi],
            output_tokens=self.output_tokens[lo:hi],
            line=self.line[lo:hi],
            reordered=self.reordered,
            first_reordered_line=self.first_reordered_line,
        )


def split_bounds_s(trace: Trace, split: str, train_fraction: float) -> tuple[float, float]:
    """``[start, end)`` in trace seconds of the part ``split`` (``train``, ``held_out`` or ``all``).

    The training part is the first ``train_fraction`` of the span; the held-out part the rest,
    including the last request. The two never share a request.
    """
    boundary = train_fraction * trace.span_s
    end = math.nextafter(trace.span_s, math.inf)
    if split == "train":
        return 0.0, boundary
    if split == "held_out":
        return boundary, end
    if split == "all":
        return 0.0, end
    raise ValueError(f"split must be 'train', 'held_out' or 'all', got {split!r}")


def bundled_trace(name: str) -> Trace:
    """The bundled Azure trace ``name`` (``conv`` or ``code``), read through ``importlib.resources``."""
    if name not in TRACES:
        raise TraceError(f"unknown bundled trace {name!r}; choose one of {sorted(TRACES)} or give a path")
    return _bundled(name)


@cache
def _bundled(name: str) -> Trace:
    text = trace_file(name).read_text(encoding="utf-8-sig")
    return _parse(
        text, f"bundled trace {name!r}", "csv", "TIMESTAMP", "ContextTokens", "GeneratedTokens", "auto"
    )


def load_trace(
    path: str | Path,
    *,
    timestamp_column: str = "TIMESTAMP",
    input_tokens_column: str = "ContextTokens",
    output_tokens_column: str = "GeneratedTokens",
    timestamp_unit: str = "auto",
) -> Trace:
    """Read a CSV (with a header row) or JSON Lines (``.jsonl``, ``.ndjson``, ``.json``) file of requests.

    Args:
        path: the file; its suffix chooses the format: ``.jsonl``, ``.ndjson`` or ``.json`` (any
            case) for JSON Lines, one JSON object per line; anything else for CSV.
        timestamp_column: the column (CSV) or key (JSON Lines) of the request times.
        input_tokens_column: the column of the prompt token counts.
        output_tokens_column: the column of the output token counts.
        timestamp_unit: ``datetime`` for ISO 8601 text (``2023-11-16 18:17:03.97``; with a time
            zone, times are compared in UTC), ``s`` or ``ms`` for numbers; ``auto`` reads datetimes
            and refuses numbers.

    Raises:
        TraceError: the file is missing, a directory or empty, is JSON in a CSV file or a JSON
            array, lacks a column or repeats one, or a line has an empty or unparsable timestamp
            or an empty, negative, fractional or too large (over :data:`MAX_TOKENS`) token count.
    """
    if timestamp_unit not in TIMESTAMP_UNITS:
        raise TraceError(f"timestamp_unit must be one of {list(TIMESTAMP_UNITS)}, got {timestamp_unit!r}")
    file = Path(path).expanduser()
    if not file.is_file():
        what = "is a directory, not a file" if file.is_dir() else "does not exist"
        raise TraceError(
            f"trace file {str(file)!r} {what}; pass the path of a CSV or JSON Lines file of requests"
        )
    stat = file.stat()
    trace = _load_cached(
        str(file.resolve()),
        stat.st_mtime_ns,
        stat.st_size,
        timestamp_column,
        input_tokens_column,
        output_tokens_column,
        timestamp_unit,
    )
    _warn_if_reordered(trace)
    return trace


@lru_cache(maxsize=16)
def _load_cached(
    path: str,
    _mtime_ns: int,
    _size: int,
    timestamp_column: str,
    input_tokens_column: str,
    output_tokens_column: str,
    timestamp_unit: str,
) -> Trace:
    fmt = "jsonl" if Path(path).suffix.lower() in JSONL_SUFFIXES else "csv"
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not UTF-8 text ({exc}); save the trace as UTF-8") from exc
    return _parse(
        text, path, fmt, timestamp_column, input_tokens_column, output_tokens_column, timestamp_unit
    )


def trace_from_spec(spec: TraceSpec) -> Trace:
    """The trace a :class:`TraceSpec` names: a bundled one, or a file read with its columns and unit.

    Raises:
        TraceError: ``source`` is neither a bundled trace name (case-sensitive) nor an existing
            file, or :func:`load_trace` cannot read the file.
    """
    if spec.source in TRACES:
        return bundled_trace(spec.source)
    if not Path(spec.source).expanduser().exists():
        guess = [name for name in sorted(TRACES) if name == spec.source.strip().lower()]
        hint = f": did you mean {guess[0]!r}?" if guess else ""
        raise TraceError(
            f"trace source {spec.source!r} is neither a bundled trace nor an existing file; the "
            f"bundled traces are {sorted(TRACES)} (names are case-sensitive{hint}); otherwise pass the "
            f"path of a CSV or JSON Lines file (a relative path is read from the working directory "
            f"{str(Path.cwd())!r})"
        )
    return load_trace(
        spec.source,
        timestamp_column=spec.timestamp_column,
        input_tokens_column=spec.input_tokens_column,
        output_tokens_column=spec.output_tokens_column,
        timestamp_unit=spec.timestamp_unit,
    )


# ---------------------------------------------------------------------------------------- parsing
_COLUMN_HINT = (
    "name the columns with timestamp_column, input_tokens_column and output_tokens_column (on the "
    "command line: --trace-timestamp-column, --trace-input-column, --trace-output-column)"
)
_JSON_LINES_HINT = "a JSON Lines file holds one complete JSON object per line"


def _rows(text: str, where: str, fmt: str, columns: tuple[str, str, str]) -> Iterator[tuple[int, list[Any]]]:
    """(line number, [timestamp, input, output]) of every request line."""
    if fmt == "csv":
        yield from _csv_rows(text, where, columns)
    else:
        yield from _jsonl_rows(text, where, columns)


def _checked(reader: Any, where: str) -> Iterator[list[str]]:
    """The rows of a ``csv.reader``, with its parse errors (such as a field over the size limit) named."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise TraceError(
                f"{where}: line {reader.line_num}: the CSV cannot be read ({exc}); check the quoting "
                "(an unclosed quote makes the rest of the file one field)"
            ) from None
        yield row


def _csv_rows(text: str, where: str, columns: tuple[str, str, str]) -> Iterator[tuple[int, list[Any]]]:
    """The request rows of a CSV file: its first non-blank line is the header."""
    reader = csv.reader(io.StringIO(text))
    rows = _checked(reader, where)
    header = next((row for row in rows if any(cell.strip() for cell in row)), None)
    if header is None:
        raise TraceError(f"{where}: the file is empty; a trace needs a header line and requests")
    header_line = reader.line_num
    header = [name.strip() for name in header]
    missing = [c for c in columns if c not in header]
    if missing and header[0][:1] in ("{", "["):
        shape = "a JSON array" if header[0].startswith("[") else "JSON Lines"
        raise TraceError(
            f"{where}: line {header_line}: the file looks like {shape}, not CSV (the line starts with "
            f"{header[0][0]!r}); write the requests as JSON Lines, one JSON object per line, in a file "
            f"with the suffix {', '.join(JSONL_SUFFIXES[:-1])} or {JSONL_SUFFIXES[-1]}"
        )
    if missing:
        raise TraceError(
            f"{where}: line {header_line}: no column {missing[0]!r} in the header {header}; {_COLUMN_HINT}"
        )
    repeated = [c for c in dict.fromkeys(columns) if header.count(c) > 1]
    if repeated:
        raise TraceError(
            f"{where}: line {header_line}: column(s) {repeated} appear more than once in the header "
            f"{header}; rename or remove the repeated column(s) so that each column read is unique"
        )
    index = [header.index(c) for c in columns]
    for row in rows:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise TraceError(f"{where}: line {line}: {len(row)} fields, the header has {len(header)}")
        yield line, [row[i].strip() for i in index]


def _jsonl_rows(text: str, where: str, columns: tuple[str, str, str]) -> Iterator[tuple[int, list[Any]]]:
    """The requests of a JSON Lines file, one JSON object per non-blank line."""
    started = False
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        if not started and raw.lstrip().startswith("["):
            raise TraceError(
                f"{where}: line {line}: the file is a JSON array, not JSON Lines; write each request as "
                "a JSON object on a line of its own, without the enclosing [ ] and the commas between "
                "the objects"
            )
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            csv_hint = "" if started or raw.lstrip().startswith("{") else "; if the file is CSV, name it .csv"
            raise TraceError(
                f"{where}: line {line}: not valid JSON ({exc.msg}); {_JSON_LINES_HINT}{csv_hint}"
            ) from None
        started = True
        if not isinstance(record, dict):
            raise TraceError(f"{where}: line {line}: expected a JSON object, got {raw.strip()[:60]!r}")
        missing = [c for c in columns if c not in record]
        if missing:
            raise TraceError(
                f"{where}: line {line}: no key {missing[0]!r} (keys: {sorted(record)}); {_COLUMN_HINT}"
            )
        yield line, [record[c] for c in columns]
    if not started:
        raise TraceError(f"{where}: the file is empty; a trace needs requests, one JSON object per line")


def _shown(value: Any) -> str:
    """``repr(value)``, cut to 60 characters for a message."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _is_empty(value: Any) -> bool:
    """An empty CSV field, or ``null`` in JSON."""
    return value is None or (isinstance(value, str) and not value.strip())


def _timestamp_s(value: Any, unit: str, where: str, line: int, column: str) -> float:
    if _is_empty(value):
        raise TraceError(
            f"{where}: line {line}: the timestamp in column {column!r} is "
            f"{'null' if value is None else 'empty'}; every request needs its time"
        )
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(value, str) and value.strip():
        try:
            number = float(value)
            numeric = math.isfinite(number)
        except ValueError:
            pass
    if unit in ("s", "ms"):
        try:
            seconds = float(value) * (1e-3 if unit == "ms" else 1.0)
        except (TypeError, ValueError, OverflowError):
            seconds = math.nan
        if not math.isfinite(seconds):
            raise TraceError(
                f"{where}: line {line}: timestamp {_shown(value)} in column {column!r} is not a finite "
                f"number of {'milliseconds' if unit == 'ms' else 'seconds'}"
            )
        return seconds
    if numeric:
        raise TraceError(
            f"{where}: line {line}: timestamp {_shown(value)} in column {column!r} is a number; say its "
            "unit with timestamp_unit='s' or 'ms' (auto reads only datetimes)"
        )
    try:
        moment = _parse_datetime(str(value).strip())
    except ValueError:
        raise TraceError(
            f"{where}: line {line}: cannot parse timestamp {_shown(value)} in column {column!r} as an ISO "
            "8601 datetime (for example 2023-11-16 18:17:03.98); for numbers pass timestamp_unit='s' "
            "or 'ms'"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?")


def _parse_datetime(text: str) -> datetime:
    """An ISO 8601 datetime, with any number of fractional-second digits and ``Z`` for UTC.

    Python 3.10's ``datetime.fromisoformat`` takes only 3 or 6 digits and no ``Z``.
    """
    match = _DATETIME.fullmatch(text)
    if match is None:
        return datetime.fromisoformat(text)
    base, fraction, zone = match.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")
    offset = "+00:00" if zone == "Z" else (zone or "")
    if len(offset) == 5:
        offset = f"{offset[:3]}:{offset[3:]}"
    return datetime.fromisoformat(f"{base}.{micro}{offset}")


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _tokens(value: Any, where: str, line: int, column: str) -> int:
    """A token count: a whole number from 0 to :data:`MAX_TOKENS`, integers read exactly."""
    if _is_empty(value):
        raise TraceError(
            f"{where}: line {line}: the token count in column {column!r} is "
            f"{'null' if value is None else 'empty'}; every request needs its number of tokens (0 if none)"
        )
    number: int | float
    if isinstance(value, bool):
        number = math.nan
    elif isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
    problem = f"{where}: line {line}: token count {_shown(value)} in column {column!r}"
    if isinstance(number, float) and math.isnan(number):
        raise TraceError(f"{problem} is not a whole number")
    if number < 0:
        raise TraceError(f"{problem} is negative")
    if number > MAX_TOKENS:
        raise TraceError(
            f"{problem} is too large (more than {MAX_TOKENS:,}); check that the column holds token counts"
        )
    if number != math.floor(number):
        raise TraceError(f"{problem} is not a whole number")
    return int(number)


def _parse(
    text: str,
    where: str,
    fmt: str,
    timestamp_column: str,
    input_tokens_column: str,
    output_tokens_column: str,
    timestamp_unit: str,
) -> Trace:
    columns = (timestamp_column, input_tokens_column, output_tokens_column)
    lines: list[int] = []
    stamps: list[float] = []
    inputs: list[int] = []
    outputs: list[int] = []
    for line, (stamp, tokens_in, tokens_out) in _rows(text, where, fmt, columns):
        stamps.append(_timestamp_s(stamp, timestamp_unit, where, line, timestamp_column))
        inputs.append(_tokens(tokens_in, where, line, input_tokens_column))
        outputs.append(_tokens(tokens_out, where, line, output_tokens_column))
        lines.append(line)
    if not stamps:
        raise TraceError(f"{where}: no requests after the header; a trace needs at least one request")
    times = np.array(stamps, dtype=np.float64)
    line_array = np.array(lines, dtype=np.int64)
    order = np.argsort(times, kind="stable")
    backwards = np.flatnonzero(np.diff(times) < 0)
    times = times[order]
    return Trace(
        name=where,
        arrival_s=times - times[0],
        input_tokens=np.array(inputs, dtype=np.int64)[order],
        output_tokens=np.array(outputs, dtype=np.int64)[order],
        line=line_array[order],
        reordered=int(backwards.size),
        first_reordered_line=int(line_array[backwards[0] + 1]) if backwards.size else 0,
    )


_WARN_PAST = (__name__.partition(".")[0], "gymnasium")
"""Packages whose frames a warning skips, so that it points at the code that asked for the trace."""


def caller_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning of the caller point past the library.

    That is, at the first frame outside :data:`_WARN_PAST` (this package, and Gymnasium's
    ``gym.make``): the user's code that asked for the trace.
    """
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and _package(frame.f_globals) in _WARN_PAST:
        frame = frame.f_back
        level += 1
    return level


def _package(module_globals: dict[str, Any]) -> str:
    """The top-level package of the module whose globals these are."""
    return str(module_globals.get("__name__", "")).partition(".")[0]


def _warn_if_reordered(trace: Trace) -> None:
    if trace.reordered:
        warnings.warn(
            f"{trace.name}: {trace.reordered} request(s) earlier than the line before them (first at "
            f"line {trace.first_reordered_line}); the trace was sorted by timestamp",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )
