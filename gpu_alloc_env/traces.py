"""Request traces: the bundled Azure LLM inference traces and any CSV or JSON Lines file of requests.

A trace is a list of requests, each with a timestamp and input and output token counts. Files are
read once per process and cached. Malformed files fail with a :class:`TraceError` that names the
file, the line and the problem; requests out of time order are sorted, with a warning.

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
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, get_args

import numpy as np
from numpy.typing import NDArray

from gpu_alloc_env.config import TimestampUnit, TraceSpec
from gpu_alloc_env.data import TRACES, trace_file

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

TIMESTAMP_UNITS: tuple[str, ...] = get_args(TimestampUnit)
"""How timestamps are read: ``datetime`` (ISO 8601 text), ``s`` or ``ms`` (numbers); ``auto`` is
``datetime`` and refuses numbers, whose unit it cannot know."""
JSONL_SUFFIXES = (".jsonl", ".ndjson")


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
    """Read a CSV (with a header row) or JSON Lines (``.jsonl``, ``.ndjson``) file of requests.

    Args:
        path: the file; its suffix chooses the format.
        timestamp_column: the column (CSV) or key (JSON Lines) of the request times.
        input_tokens_column: the column of the prompt token counts.
        output_tokens_column: the column of the output token counts.
        timestamp_unit: ``datetime`` for ISO 8601 text (``2023-11-16 18:17:03.97``; with a time
            zone, times are compared in UTC), ``s`` or ``ms`` for numbers; ``auto`` reads datetimes
            and refuses numbers.

    Raises:
        TraceError: the file is missing or empty, lacks a column, or a line has an unparsable
            timestamp or a negative or fractional token count.
    """
    if timestamp_unit not in TIMESTAMP_UNITS:
        raise TraceError(f"timestamp_unit must be one of {list(TIMESTAMP_UNITS)}, got {timestamp_unit!r}")
    file = Path(path).expanduser()
    if not file.is_file():
        what = "is a directory, not a file" if file.is_dir() else "does not exist"
        raise TraceError(f"trace file {str(file)!r} {what}; pass the path of a CSV or JSON Lines file")
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
    """The trace a :class:`TraceSpec` names: a bundled one, or a file read with its columns and unit."""
    if spec.source in TRACES:
        return bundled_trace(spec.source)
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


def _rows(text: str, where: str, fmt: str, columns: tuple[str, str, str]) -> Iterator[tuple[int, list[Any]]]:
    """(line number, [timestamp, input, output]) of every request line."""
    if fmt == "csv":
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if header is None:
            raise TraceError(f"{where}: the file is empty; a trace needs a header line and requests")
        header = [name.strip() for name in header]
        missing = [c for c in columns if c not in header]
        if missing:
            raise TraceError(
                f"{where}: line 1: no column {missing[0]!r} in the header {header}; {_COLUMN_HINT}"
            )
        index = [header.index(c) for c in columns]
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise TraceError(f"{where}: line {line}: {len(row)} fields, the header has {len(header)}")
            yield line, [row[i].strip() for i in index]
        return
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise TraceError(f"{where}: line {line}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise TraceError(f"{where}: line {line}: expected a JSON object, got {raw.strip()[:60]!r}")
        missing = [c for c in columns if c not in record]
        if missing:
            raise TraceError(
                f"{where}: line {line}: no key {missing[0]!r} (keys: {sorted(record)}); {_COLUMN_HINT}"
            )
        yield line, [record[c] for c in columns]


def _timestamp_s(value: Any, unit: str, where: str, line: int, column: str) -> float:
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
        except (TypeError, ValueError):
            seconds = math.nan
        if not math.isfinite(seconds):
            raise TraceError(
                f"{where}: line {line}: timestamp {value!r} in column {column!r} is not a finite "
                f"number of {'milliseconds' if unit == 'ms' else 'seconds'}"
            )
        return seconds
    if numeric:
        raise TraceError(
            f"{where}: line {line}: timestamp {value!r} in column {column!r} is a number; say its "
            "unit with timestamp_unit='s' or 'ms' (auto reads only datetimes)"
        )
    try:
        moment = _parse_datetime(str(value).strip())
    except ValueError:
        raise TraceError(
            f"{where}: line {line}: cannot parse timestamp {value!r} in column {column!r} as an ISO "
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


def _tokens(value: Any, where: str, line: int, column: str) -> int:
    if isinstance(value, bool):
        number = math.nan
    elif isinstance(value, int):
        number = float(value)
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
    if not math.isfinite(number) or number != math.floor(number):
        raise TraceError(
            f"{where}: line {line}: token count {value!r} in column {column!r} is not a whole number"
        )
    if number < 0:
        raise TraceError(f"{where}: line {line}: token count {value!r} in column {column!r} is negative")
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


def _warn_if_reordered(trace: Trace) -> None:
    if trace.reordered:
        warnings.warn(
            f"{trace.name}: {trace.reordered} request(s) earlier than the line before them (first at "
            f"line {trace.first_reordered_line}); the trace was sorted by timestamp",
            UserWarning,
            stacklevel=3,
        )
