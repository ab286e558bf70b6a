"""Trace loading: CSV and JSON Lines, timestamp units, errors naming the line, bundled traces, splits."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from gpu_alloc_env import traces
from gpu_alloc_env.config import TraceSpec
from gpu_alloc_env.data import TRACES, verify_trace
from gpu_alloc_env.traces import (
    MAX_TOKENS,
    Trace,
    TraceError,
    bundled_trace,
    load_trace,
    split_bounds_s,
    trace_from_spec,
)

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens"
# Requests in each bundled trace, as documented in gpu_alloc_env/data/traces/README.md.
BUNDLED_REQUESTS = {"conv": 19_366, "code": 8_819}


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    return write(path, [json.dumps(record) for record in records])


def test_csv_with_datetime_timestamps_parses(tmp_path: Path) -> None:
    # The Azure format: seven fractional digits (100 ns ticks). Times since the first request are
    # 0, 0.052, 1.5 and 61.5 s (across a minute boundary).
    path = write(
        tmp_path / "azure.csv",
        [
            HEADER,
            "2023-11-16 18:17:03.9799600,4808,10",
            "2023-11-16 18:17:04.0319600,3180,8",
            "2023-11-16 18:17:05.4799600,110,27",
            "2023-11-16 18:18:05.4799600,0,1",
        ],
    )
    trace = load_trace(path)
    assert trace.count == 4
    np.testing.assert_allclose(trace.arrival_s, [0.0, 0.052, 1.5, 61.5], atol=1e-6)
    np.testing.assert_array_equal(trace.input_tokens, [4808, 3180, 110, 0])
    np.testing.assert_array_equal(trace.output_tokens, [10, 8, 27, 1])
    np.testing.assert_array_equal(trace.line, [2, 3, 4, 5])  # the header is line 1
    assert trace.input_tokens.dtype == np.int64 and trace.output_tokens.dtype == np.int64
    assert trace.reordered == 0
    assert trace.span_s == pytest.approx(61.5)
    assert trace.rate_rps == pytest.approx(4 / 61.5)


@pytest.mark.parametrize(
    ("stamp", "seconds"),
    [
        ("2023-11-16 18:17:04.5", 0.5),
        ("2023-11-16 18:17:04.25", 0.25),
        ("2023-11-16 18:17:04.125", 0.125),
        ("2023-11-16 18:17:04.062500", 0.0625),
        ("2023-11-16T18:17:04", 0.0),
        ("2023-11-16 18:17:05+00:00", 1.0),
        ("2023-11-16 19:17:06+01:00", 2.0),  # the same instant as 18:17:06 UTC
    ],
)
def test_datetime_timestamps_in_any_iso_8601_precision_and_zone(
    tmp_path: Path, stamp: str, seconds: float
) -> None:
    # The first row sets time 0; naive times are read as UTC, so zoned ones compare correctly.
    path = write(tmp_path / "t.csv", [HEADER, "2023-11-16 18:17:04,1,1", f"{stamp},2,2"])
    trace = load_trace(path, timestamp_unit="datetime")
    assert trace.arrival_s[1] == pytest.approx(seconds, abs=1e-9)


def test_blank_lines_are_skipped_and_line_numbers_stay_those_of_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "gaps.csv", [HEADER, "", "2023-11-16 18:00:00,1,2", "", "", "2023-11-16 18:00:01,3,4"]
    )
    trace = load_trace(path)
    np.testing.assert_array_equal(trace.line, [3, 6])
    np.testing.assert_array_equal(trace.input_tokens, [1, 3])


@pytest.mark.parametrize(("unit", "factor"), [("s", 1.0), ("ms", 1e-3)])
def test_numeric_timestamps_in_seconds_or_milliseconds(tmp_path: Path, unit: str, factor: float) -> None:
    path = write(tmp_path / "numeric.csv", [HEADER, "1000,5,6", "1250,7,8", "4000.5,9,10"])
    trace = load_trace(path, timestamp_unit=unit)
    np.testing.assert_allclose(trace.arrival_s, np.array([0.0, 250.0, 3000.5]) * factor)
    np.testing.assert_array_equal(trace.input_tokens, [5, 7, 9])
    np.testing.assert_array_equal(trace.output_tokens, [6, 8, 10])


def test_custom_column_names_in_csv(tmp_path: Path) -> None:
    # Extra columns are ignored and the named ones may come in any order.
    path = write(
        tmp_path / "custom.csv",
        ["completion,user,ts,prompt", "11,alice,10.0,100", "22,bob,12.5,200", "33,carol,20.0,300"],
    )
    trace = load_trace(
        path,
        timestamp_column="ts",
        input_tokens_column="prompt",
        output_tokens_column="completion",
        timestamp_unit="s",
    )
    np.testing.assert_allclose(trace.arrival_s, [0.0, 2.5, 10.0])
    np.testing.assert_array_equal(trace.input_tokens, [100, 200, 300])
    np.testing.assert_array_equal(trace.output_tokens, [11, 22, 33])


def test_jsonl_with_json_numbers_and_custom_keys(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "requests.jsonl",
        [
            {"ts": 5000, "prompt": 120, "completion": 30, "model": "x"},
            {"ts": 5500, "prompt": 80, "completion": 12.0},  # a whole float is a whole count
            {"ts": 9000.0, "prompt": 0, "completion": 7},
        ],
    )
    trace = load_trace(
        path,
        timestamp_column="ts",
        input_tokens_column="prompt",
        output_tokens_column="completion",
        timestamp_unit="ms",
    )
    np.testing.assert_allclose(trace.arrival_s, [0.0, 0.5, 4.0])
    np.testing.assert_array_equal(trace.input_tokens, [120, 80, 0])
    np.testing.assert_array_equal(trace.output_tokens, [30, 12, 7])
    np.testing.assert_array_equal(trace.line, [1, 2, 3])  # JSON Lines have no header


def test_jsonl_with_default_keys_and_datetime_strings(tmp_path: Path) -> None:
    records: list[dict[str, object]] = [
        {"TIMESTAMP": "2023-11-16 18:17:03.9799600", "ContextTokens": 10, "GeneratedTokens": 1},
        {"TIMESTAMP": "2023-11-16 18:17:13.9799600", "ContextTokens": 20, "GeneratedTokens": 2},
    ]
    trace = load_trace(write_jsonl(tmp_path / "r.ndjson", records))
    np.testing.assert_allclose(trace.arrival_s, [0.0, 10.0], atol=1e-6)
    np.testing.assert_array_equal(trace.input_tokens, [10, 20])


@pytest.mark.parametrize("unit", ["auto", "datetime"])
def test_numeric_timestamps_without_a_unit_are_refused(tmp_path: Path, unit: str) -> None:
    path = write(tmp_path / "numbers.csv", [HEADER, "1700000000,1,1", "1700000001,1,1"])
    with pytest.raises(TraceError) as info:
        load_trace(path, timestamp_unit=unit)
    message = str(info.value)
    assert "numbers.csv" in message and "line 2" in message
    assert "'s'" in message and "'ms'" in message


def test_json_numbers_without_a_unit_are_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "n.jsonl", [{"TIMESTAMP": 12.5, "ContextTokens": 1, "GeneratedTokens": 1}])
    with pytest.raises(TraceError, match=r"line 1: .*timestamp_unit='s' or 'ms'"):
        load_trace(path)


def test_unknown_timestamp_unit_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", [HEADER, "1,1,1"])
    with pytest.raises(TraceError, match=r"timestamp_unit must be one of .*'us'"):
        load_trace(path, timestamp_unit="us")


@pytest.mark.parametrize(
    ("name", "lines", "line", "words"),
    [
        ("header_only.csv", [HEADER], None, ["no requests"]),
        ("blank_after_header.csv", [HEADER, "", ""], None, ["no requests"]),
        ("no_column.csv", ["TIMESTAMP,ContextTokens", "2023-11-16 18:00:00,1"], 1, ["'GeneratedTokens'"]),
        (
            "bad_time.csv",
            [HEADER, "2023-11-16 18:00:00,1,1", "2023-11-16 18:00:01,1,1", "yesterday,1,1"],
            4,
            ["timestamp", "'yesterday'"],
        ),
        ("empty_time.csv", [HEADER, "2023-11-16 18:00:00,1,1", ",1,1"], 3, ["timestamp", "is empty"]),
        (
            "empty_tokens.csv",
            [HEADER, "2023-11-16 18:00:00,1,1", "2023-11-16 18:00:01, ,1"],
            3,
            ["token count in column 'ContextTokens' is empty"],
        ),
        (
            "null_tokens.jsonl",
            ['{"TIMESTAMP": "2023-11-16 18:00:00", "ContextTokens": 1, "GeneratedTokens": null}'],
            1,
            ["token count in column 'GeneratedTokens' is null"],
        ),
        (
            "null_time.jsonl",
            ['{"TIMESTAMP": null, "ContextTokens": 1, "GeneratedTokens": 1}'],
            1,
            ["timestamp in column 'TIMESTAMP' is null"],
        ),
        (
            "duplicate.csv",
            ["TIMESTAMP,ContextTokens,GeneratedTokens,ContextTokens", "2023-11-16 18:00:00,1,2,3"],
            1,
            ["column(s) ['ContextTokens'] appear more than once", "rename or remove"],
        ),
        ("negative.csv", [HEADER, "2023-11-16 18:00:00,1,1", "2023-11-16 18:00:01,-5,1"], 3, ["negative"]),
        (
            "fraction.csv",
            [HEADER, "2023-11-16 18:00:00,12.5,1"],
            2,
            ["'12.5'", "whole number", "'ContextTokens'"],
        ),
        ("text.csv", [HEADER, "2023-11-16 18:00:00,1,1", "2023-11-16 18:00:01,1,abc"], 3, ["'abc'", "whole"]),
        ("nan.csv", [HEADER, "2023-11-16 18:00:00,nan,1"], 2, ["'nan'", "whole"]),
        ("too_few.csv", [HEADER, "2023-11-16 18:00:00,1,1", "2023-11-16 18:00:01,1"], 3, ["2 fields"]),
        ("too_many.csv", [HEADER, "2023-11-16 18:00:00,1,1,9"], 2, ["4 fields", "3"]),
        (
            "bad_json.jsonl",
            ['{"TIMESTAMP": "2023-11-16 18:00:00", "ContextTokens": 1, "GeneratedTokens": 1}', "{oops"],
            2,
            ["JSON"],
        ),
        (
            "missing_key.jsonl",
            [
                '{"TIMESTAMP": "2023-11-16 18:00:00", "ContextTokens": 1, "GeneratedTokens": 1}',
                '{"TIMESTAMP": "2023-11-16 18:00:01", "ContextTokens": 1}',
            ],
            2,
            ["'GeneratedTokens'"],
        ),
        ("not_object.jsonl", ["[1, 2, 3]"], 1, ["JSON array", "object"]),
        (
            "second_not_object.jsonl",
            ['{"TIMESTAMP": "2023-11-16 18:00:00", "ContextTokens": 1, "GeneratedTokens": 1}', "[1, 2]"],
            2,
            ["expected a JSON object"],
        ),
        (
            "bool_tokens.jsonl",
            ['{"TIMESTAMP": "2023-11-16 18:00:00", "ContextTokens": true, "GeneratedTokens": 1}'],
            1,
            ["True", "whole"],
        ),
    ],
)
def test_malformed_file_names_the_file_the_line_and_the_problem(
    tmp_path: Path, name: str, lines: list[str], line: int | None, words: list[str]
) -> None:
    path = write(tmp_path / name, lines)
    with pytest.raises(TraceError) as info:
        load_trace(path)
    message = str(info.value)
    assert name in message
    if line is not None:
        assert f"line {line}:" in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_an_empty_field_is_called_empty_not_a_bad_number(tmp_path: Path) -> None:
    path = write(tmp_path / "gap.csv", [HEADER, "2023-11-16 18:00:00,,1"])
    with pytest.raises(TraceError) as info:
        load_trace(path)
    message = str(info.value)
    assert "line 2:" in message and "'ContextTokens' is empty" in message
    assert "whole number" not in message and "''" not in message


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("99999999999999999999999", "'99999999999999999999999'"),
        ("1e300", "'1e300'"),
        # Above 2**53: read as an integer, not rounded to ...992 through a float.
        ("9007199254740993", "'9007199254740993'"),
        (str(MAX_TOKENS + 1), f"'{MAX_TOKENS + 1}'"),
        ("inf", "'inf'"),
    ],
)
def test_a_huge_csv_token_count_is_too_large(tmp_path: Path, value: str, shown: str) -> None:
    path = write(tmp_path / "huge.csv", [HEADER, "0,1,1", f"1,{value},1"])
    with pytest.raises(TraceError) as info:
        load_trace(path, timestamp_unit="s")
    assert str(info.value) == (
        f"{path}: line 3: token count {shown} in column 'ContextTokens' is too large (more than "
        "1,000,000,000); check that the column holds token counts"
    )


@pytest.mark.parametrize("number", ["1e22", "1e400", "100000000000000000000000"])
def test_a_huge_json_token_count_is_too_large(tmp_path: Path, number: str) -> None:
    # 1e22 and 1e400 are JSON floats (1e400 reads as infinity); the last a JSON integer.
    line = f'{{"TIMESTAMP": 1, "ContextTokens": 5, "GeneratedTokens": {number}}}'
    path = write(tmp_path / "huge.jsonl", [line])
    with pytest.raises(
        TraceError, match=r"huge\.jsonl: line 1: token count .* in column 'GeneratedTokens' is too large"
    ):
        load_trace(path, timestamp_unit="s")


def test_token_counts_up_to_the_limit_are_read_exactly(tmp_path: Path) -> None:
    assert MAX_TOKENS == 10**9
    csv_path = write(tmp_path / "big.csv", [HEADER, f"0,{MAX_TOKENS},12.0", "1,+7,0", "2,1e3,  3  "])
    trace = load_trace(csv_path, timestamp_unit="s")
    np.testing.assert_array_equal(trace.input_tokens, [MAX_TOKENS, 7, 1000])
    np.testing.assert_array_equal(trace.output_tokens, [12, 0, 3])
    json_path = write_jsonl(
        tmp_path / "big.jsonl", [{"TIMESTAMP": 0, "ContextTokens": MAX_TOKENS, "GeneratedTokens": 1e3}]
    )
    json_trace = load_trace(json_path, timestamp_unit="s")
    assert json_trace.input_tokens.tolist() == [MAX_TOKENS] and json_trace.output_tokens.tolist() == [1000]


def test_blank_lines_before_the_csv_header_are_skipped(tmp_path: Path) -> None:
    path = write(
        tmp_path / "lead.csv", ["", "  ", HEADER, "2023-11-16 18:00:00,1,2", "", "2023-11-16 18:00:01,3,4"]
    )
    trace = load_trace(path)
    np.testing.assert_array_equal(trace.line, [4, 6])  # the lines of the file, blank ones counted
    np.testing.assert_array_equal(trace.input_tokens, [1, 3])
    # The header's own line is the one an error names.
    bad = write(tmp_path / "lead_bad.csv", ["", "", "ts,ContextTokens,GeneratedTokens", "1,1,1"])
    with pytest.raises(
        TraceError, match=r"lead_bad\.csv: line 3: no column 'TIMESTAMP' in the header \['ts',"
    ):
        load_trace(bad)


@pytest.mark.parametrize("name", ["blank.csv", "blank.jsonl"])
def test_a_file_of_blank_lines_is_empty(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("\n   \n\t\n\n", encoding="utf-8")
    with pytest.raises(TraceError) as info:
        load_trace(path)
    assert f"{name}: the file is empty; a trace needs" in str(info.value)


def test_json_suffix_reads_json_lines(tmp_path: Path) -> None:
    records: list[dict[str, object]] = [
        {"TIMESTAMP": 10, "ContextTokens": 3, "GeneratedTokens": 1},
        {"TIMESTAMP": 12, "ContextTokens": 4, "GeneratedTokens": 2},
    ]
    trace = load_trace(write_jsonl(tmp_path / "requests.JSON", records), timestamp_unit="s")
    np.testing.assert_allclose(trace.arrival_s, [0.0, 2.0])
    np.testing.assert_array_equal(trace.input_tokens, [3, 4])
    np.testing.assert_array_equal(trace.line, [1, 2])


@pytest.mark.parametrize("name", ["array.json", "array.jsonl"])
def test_a_json_array_is_refused_with_one_object_per_line_advice(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    records = [{"TIMESTAMP": 10, "ContextTokens": 3, "GeneratedTokens": 1}] * 2
    path.write_text("\n" + json.dumps(records, indent=2), encoding="utf-8")
    with pytest.raises(TraceError) as info:
        load_trace(path, timestamp_unit="s")
    message = str(info.value)
    assert f"{name}: line 2: the file is a JSON array, not JSON Lines" in message
    assert "a JSON object on a line of its own" in message


@pytest.mark.parametrize(
    ("name", "content", "line", "shape"),
    [
        ("lines.csv", '{"TIMESTAMP": 10, "ContextTokens": 3, "GeneratedTokens": 1}\n', 1, "JSON Lines"),
        ("array.txt", '\n[{"TIMESTAMP": 10, "ContextTokens": 3, "GeneratedTokens": 1}]\n', 2, "a JSON array"),
    ],
)
def test_json_in_a_csv_file_says_to_name_it_jsonl(
    tmp_path: Path, name: str, content: str, line: int, shape: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TraceError) as info:
        load_trace(path, timestamp_unit="s")
    message = str(info.value)
    assert f"{name}: line {line}: the file looks like {shape}, not CSV" in message
    assert "one JSON object per line" in message and ".jsonl, .ndjson or .json" in message
    assert "no column" not in message


def test_csv_in_a_json_file_says_to_name_it_csv(tmp_path: Path) -> None:
    path = write(tmp_path / "table.json", [HEADER, "2023-11-16 18:00:00,1,1"])
    with pytest.raises(
        TraceError, match=r"table\.json: line 1: not valid JSON .*if the file is CSV, name it \.csv"
    ):
        load_trace(path)


def test_a_duplicated_column_that_is_not_read_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path / "extra.csv", ["note,TIMESTAMP,note,ContextTokens,GeneratedTokens", "a,0,b,5,6"])
    trace = load_trace(path, timestamp_unit="s")
    assert trace.input_tokens.tolist() == [5] and trace.output_tokens.tolist() == [6]


def test_missing_file_and_directory_are_named(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"nowhere\.csv.*does not exist"):
        load_trace(tmp_path / "nowhere.csv")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(TraceError, match=r"folder\.csv.*directory"):
        load_trace(folder)


@pytest.mark.parametrize("name", ["empty.csv", "empty.jsonl"])
def test_empty_file_is_named(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(TraceError) as info:
        load_trace(path)
    message = str(info.value)
    assert name in message
    assert "empty" in message or "no requests" in message


def test_csv_with_a_utf8_byte_order_mark_reads_its_first_column(tmp_path: Path) -> None:
    # Spreadsheet programs save "CSV UTF-8" with a byte order mark before the header; it is not
    # part of the first column's name.
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"{HEADER}\n2023-11-16 18:00:00,1,2\n".encode())
    trace = load_trace(path)
    np.testing.assert_array_equal(trace.input_tokens, [1])


def test_unsorted_timestamps_are_sorted_with_a_warning(tmp_path: Path) -> None:
    # Lines 2..6 at t = 0, 5, 3, 4, 1: two requests (lines 4 and 6) come earlier than the line
    # before them. Each request keeps its own tokens: tokens encode the line (line * 10, line).
    path = write(
        tmp_path / "unsorted.csv",
        [HEADER, "100,20,2", "105,30,3", "103,40,4", "104,50,5", "101,60,6"],
    )
    with pytest.warns(UserWarning, match=r"unsorted\.csv: 2 request\(s\).*line 4.*sorted"):
        trace = load_trace(path, timestamp_unit="s")
    np.testing.assert_allclose(trace.arrival_s, [0.0, 1.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(trace.line, [2, 6, 4, 5, 3])
    np.testing.assert_array_equal(trace.input_tokens, trace.line * 10)
    np.testing.assert_array_equal(trace.output_tokens, trace.line)
    assert trace.reordered == 2
    assert trace.first_reordered_line == 4


def _unsorted_trace_file(path: Path) -> Path:
    # Long enough for a 600 s episode in the training part; line 4 (t = 3) comes after t = 5.
    return write(path, [HEADER, "0,10,5", "5,10,5", "3,10,5"] + [f"{t},10,5" for t in range(10, 2000, 2)])


def test_unsorted_warning_points_at_the_callers_line(tmp_path: Path) -> None:
    # Whether the trace is loaded directly, through a TraceSpec or by gym.make building the
    # simulator, the warning names this file (the user's code), not a line inside the package.
    path = _unsorted_trace_file(tmp_path / "late.csv")
    spec = TraceSpec(source=str(path), timestamp_unit="s")
    workload = {"pattern": "trace", "trace": {"source": str(path), "timestamp_unit": "s"}}
    with pytest.warns(UserWarning, match=r"late\.csv: 1 request\(s\).*line 4") as direct:
        load_trace(path, timestamp_unit="s")
    with pytest.warns(UserWarning, match=r"late\.csv: 1 request\(s\)") as through_spec:
        trace_from_spec(spec)
    with pytest.warns(UserWarning, match=r"late\.csv: 1 request\(s\)") as through_gym:
        gym.make("GpuAlloc-v1", workload=workload).close()
    for record in (direct, through_spec, through_gym):
        assert [warning.filename for warning in record] == [__file__]


def test_equal_timestamps_keep_file_order_without_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path / "ties.csv", [HEADER, "7,1,1", "7,2,2", "7,3,3", "8,4,4"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trace = load_trace(path, timestamp_unit="s")
    np.testing.assert_array_equal(trace.input_tokens, [1, 2, 3, 4])
    assert trace.reordered == 0


def test_cache_does_not_hide_a_rewritten_file(tmp_path: Path) -> None:
    path = write(tmp_path / "changing.csv", [HEADER, "0,1,1", "1,2,2"])
    first = load_trace(path, timestamp_unit="s")
    assert load_trace(path, timestamp_unit="s") is first  # read once, then cached
    write(path, [HEADER, "0,100,1000", "2,200,2000", "30,300,3000"])
    second = load_trace(path, timestamp_unit="s")
    assert second.count == 3
    np.testing.assert_array_equal(second.input_tokens, [100, 200, 300])
    np.testing.assert_allclose(second.arrival_s, [0.0, 2.0, 30.0])
    # The first result is untouched by the reload.
    np.testing.assert_array_equal(first.input_tokens, [1, 2])


def test_cache_distinguishes_column_options(tmp_path: Path) -> None:
    path = write(tmp_path / "two.csv", [HEADER, "0,1,9", "1000,2,8"])
    seconds = load_trace(path, timestamp_unit="s")
    millis = load_trace(path, timestamp_unit="ms")
    swapped = load_trace(
        path, timestamp_unit="s", input_tokens_column="GeneratedTokens", output_tokens_column="ContextTokens"
    )
    assert seconds.span_s == pytest.approx(1000.0) and millis.span_s == pytest.approx(1.0)
    np.testing.assert_array_equal(swapped.input_tokens, [9, 8])


@pytest.mark.parametrize("name", sorted(BUNDLED_REQUESTS))
def test_bundled_traces_load_from_any_directory(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    traces._bundled.cache_clear()  # read the resource now, from this directory
    trace = bundled_trace(name)
    assert trace.count == BUNDLED_REQUESTS[name]
    assert trace.arrival_s[0] == 0.0
    assert np.all(np.diff(trace.arrival_s) >= 0.0)
    assert trace.reordered == 0
    assert trace.input_tokens.min() >= 0 and trace.output_tokens.min() >= 0
    assert trace.line[0] == 2 and trace.line[-1] == BUNDLED_REQUESTS[name] + 1
    # The Azure traces span about an hour (README of the bundled data).
    assert 3000.0 < trace.span_s < 4000.0
    assert verify_trace(name) is True
    assert list(tmp_path.iterdir()) == []


def test_bundled_name_wins_over_a_file_of_that_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "code").write_text("not a trace\n", encoding="utf-8")
    assert trace_from_spec(TraceSpec(source="code")).count == BUNDLED_REQUESTS["code"]


def test_trace_from_spec_reads_a_file_with_its_columns_and_unit(tmp_path: Path) -> None:
    path = write(tmp_path / "spec.csv", ["t,a,b", "2000,1,2", "3500,3,4"])
    spec = TraceSpec(
        source=str(path),
        timestamp_column="t",
        input_tokens_column="a",
        output_tokens_column="b",
        timestamp_unit="ms",
    )
    trace = trace_from_spec(spec)
    np.testing.assert_allclose(trace.arrival_s, [0.0, 1.5])
    np.testing.assert_array_equal(trace.output_tokens, [2, 4])


@pytest.mark.parametrize(("source", "guess"), [("CONV", "conv"), (" Code", "code"), ("requests.csv", None)])
def test_unknown_source_lists_the_bundled_traces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, guess: str | None
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TraceError) as info:
        trace_from_spec(TraceSpec(source=source))
    message = str(info.value)
    assert f"trace source {source!r} is neither a bundled trace nor an existing file" in message
    assert "['code', 'conv'] (names are case-sensitive" in message
    assert (f"did you mean {guess!r}?" in message) is (guess is not None)
    assert str(tmp_path) in message  # where a relative path was looked for


def test_a_directory_as_source_is_called_a_directory(tmp_path: Path) -> None:
    with pytest.raises(TraceError) as info:
        trace_from_spec(TraceSpec(source=str(tmp_path)))
    message = str(info.value)
    assert "is a directory, not a file; pass the path of a CSV or JSON Lines file" in message
    assert "does not exist" not in message and "no such file" not in message


def test_unknown_bundled_trace_names_the_choices() -> None:
    with pytest.raises(TraceError, match=r"unknown bundled trace 'chat'.*\['code', 'conv'\]"):
        bundled_trace("chat")
    assert sorted(TRACES) == sorted(BUNDLED_REQUESTS)


def _parts(trace: Trace, train_fraction: float) -> tuple[Trace, Trace]:
    train = trace.between(*split_bounds_s(trace, "train", train_fraction))
    held_out = trace.between(*split_bounds_s(trace, "held_out", train_fraction))
    return train, held_out


@pytest.mark.parametrize("name", sorted(BUNDLED_REQUESTS))
@pytest.mark.parametrize("train_fraction", [0.3, 0.7])
def test_split_parts_are_disjoint_and_cover_every_request(name: str, train_fraction: float) -> None:
    trace = bundled_trace(name)
    boundary = train_fraction * trace.span_s
    start, end = split_bounds_s(trace, "train", train_fraction)
    assert start == 0.0 and end == pytest.approx(boundary)
    held_start, held_end = split_bounds_s(trace, "held_out", train_fraction)
    assert held_start == end and held_end > trace.span_s
    train, held_out = _parts(trace, train_fraction)
    assert train.count + held_out.count == trace.count
    assert np.all(train.arrival_s < boundary) and np.all(held_out.arrival_s >= boundary)
    np.testing.assert_array_equal(np.concatenate([train.line, held_out.line]), trace.line)
    assert held_out.arrival_s[-1] == trace.span_s  # the last request is held out, not dropped
    everything = trace.between(*split_bounds_s(trace, "all", train_fraction))
    assert everything.count == trace.count


def test_request_exactly_at_the_boundary_is_held_out(tmp_path: Path) -> None:
    # Span 10 s, train_fraction 0.5: the boundary is 5.0 s, where a request sits.
    path = write(tmp_path / "edge.csv", [HEADER] + [f"{t},{t},1" for t in range(11)])
    trace = load_trace(path, timestamp_unit="s")
    train, held_out = _parts(trace, 0.5)
    np.testing.assert_array_equal(train.input_tokens, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(held_out.input_tokens, [5, 6, 7, 8, 9, 10])


def test_unknown_split_is_refused(tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path / "s.csv", [HEADER, "0,1,1", "1,1,1"]), timestamp_unit="s")
    with pytest.raises(ValueError, match="split must be"):
        split_bounds_s(trace, "test", 0.7)


def test_csv_field_over_the_parser_limit_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text(
        'TIMESTAMP,ContextTokens,GeneratedTokens\n1,"' + "x" * 200_000 + '",3\n', encoding="utf-8"
    )
    with pytest.raises(TraceError, match=r"quote\.csv: line 2: the CSV cannot be read \(field larger"):
        load_trace(path, timestamp_unit="s")
