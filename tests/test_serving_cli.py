"""``gpu-alloc serving``: the table, the JSON it prints, and its errors on bad input."""

from __future__ import annotations

import json
import math
import re

import pytest

from gpu_alloc_env.serving.perf import prefill_time_s
from gpu_alloc_env.train.cli import main
from gpu_alloc_env.train.serving import JSON_KEYS, replica_engine

BASE = ["serving", "--model", "llama-2-7b", "--gpu", "h100-80gb", "--tensor-parallel", "1", "--dtype", "bf16"]
LOAD = ["--input-tokens", "512", "--output-tokens", "128"]
SWEEP = [1, 2, 4, 8, 16, 32]


def run_json(capsys: pytest.CaptureFixture[str], args: list[str]) -> list[dict[str, float]]:
    assert main(args) == 0
    records: list[dict[str, float]] = json.loads(capsys.readouterr().out)
    return records


def test_table_shows_the_replica_and_one_row_per_concurrency(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BASE, "--concurrency", "1", "8", *LOAD]) == 0
    out = capsys.readouterr().out
    engine = replica_engine("llama-2-7b", "h100-80gb", 1, "bf16")
    assert f"KV cache {engine.kv_capacity_tokens:,} tokens" in out
    assert f"max_model_len {engine.max_model_len:,}" in out
    assert f"cold start on runpod: {engine.cold_start_s:.1f} s" in out
    header = next(line for line in out.splitlines() if line.startswith("| concurrency"))
    for column in ("TTFT", "ITL", "e2e latency", "output tok/s", "requests/s", "preemptions"):
        assert column in header
    rows = [line for line in out.splitlines() if re.match(r"\| \d+ \|", line)]
    assert [int(row.split("|")[1]) for row in rows] == [1, 8]


def test_platform_changes_only_the_cold_start(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BASE, "--concurrency", "2", *LOAD, "--platform", "modal"]) == 0
    modal = capsys.readouterr().out
    assert main([*BASE, "--concurrency", "2", *LOAD]) == 0
    runpod = capsys.readouterr().out
    modal_engine = replica_engine("llama-2-7b", "h100-80gb", 1, "bf16", "modal")
    assert f"cold start on modal: {modal_engine.cold_start_s:.1f} s" in modal
    assert modal.splitlines()[-1] == runpod.splitlines()[-1]


def test_json_has_exactly_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    records = run_json(capsys, [*BASE, "--concurrency", "1", "4", *LOAD, "--json"])
    assert [list(r) for r in records] == [list(JSON_KEYS)] * 2
    assert [r["concurrency"] for r in records] == [1, 4]
    for r in records:
        assert all(isinstance(r[key], (int, float)) and r[key] > 0 for key in JSON_KEYS)
        # Little's law on the closed loop: clients = requests/s x latency (to the window's rounding).
        assert r["requests_per_s"] * r["e2e_latency_s"] == pytest.approx(r["concurrency"], rel=0.05)
        assert r["output_tokens_per_s"] == pytest.approx(128 * r["requests_per_s"], rel=1e-9)


def test_ttft_of_one_client_is_one_prefill_iteration(capsys: pytest.CaptureFixture[str]) -> None:
    (record,) = run_json(capsys, [*BASE, "--concurrency", "1", *LOAD, "--json"])
    engine = replica_engine("llama-2-7b", "h100-80gb", 1, "bf16")
    assert record["ttft_s"] == pytest.approx(prefill_time_s(engine.coefficient_array(), 1, 512), rel=1e-9)
    # Alone, every later token takes one decode iteration, so the latency is TTFT + 127 ITLs.
    assert record["e2e_latency_s"] == pytest.approx(record["ttft_s"] + 127 * record["itl_s"], rel=1e-9)


def test_throughput_and_latency_grow_with_concurrency_below_saturation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = run_json(capsys, [*BASE, "--concurrency", *map(str, SWEEP), *LOAD, "--json"])
    for key in ("requests_per_s", "output_tokens_per_s", "e2e_latency_s", "itl_s"):
        values = [r[key] for r in records]
        assert values == sorted(values) and len(set(values)) == len(values), (key, values)
    # Batching pays: 32 clients get far more than 1 but less than 32 times its throughput.
    ratio = records[-1]["requests_per_s"] / records[0]["requests_per_s"]
    assert 4.0 < ratio < 32.0


def test_one_output_token_has_no_inter_token_latency(capsys: pytest.CaptureFixture[str]) -> None:
    (record,) = run_json(
        capsys, [*BASE, "--concurrency", "1", "--input-tokens", "64", "--output-tokens", "1", "--json"]
    )
    assert record["itl_s"] is None
    assert record["e2e_latency_s"] == pytest.approx(record["ttft_s"], rel=1e-12)
    assert main([*BASE, "--concurrency", "1", "--input-tokens", "64", "--output-tokens", "1"]) == 0
    assert "| 1 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"--model": "llama-9000"}, "'llama-9000'"),
        ({"--gpu": "h200-141gb"}, "'h200-141gb'"),
        ({"--tensor-parallel": "3"}, "tensor_parallel=3"),
        ({"--tensor-parallel": "0"}, "got 0"),
        ({"--tensor-parallel": "16"}, "tensor_parallel=16"),
        ({"--model": "llama-3.3-70b"}, "tensor_parallel=2 or more"),
        ({"--input-tokens": "4000", "--output-tokens": "200"}, "4200"),
        ({"--input-tokens": "0"}, "--input-tokens must be >= 1"),
        ({"--platform": "lambda"}, "'lambda'"),
    ],
)
def test_bad_input_exits_2_naming_the_value(
    capsys: pytest.CaptureFixture[str], change: dict[str, str], named: str
) -> None:
    options = dict(zip(BASE[1::2], BASE[2::2], strict=True)) | dict(zip(LOAD[::2], LOAD[1::2], strict=True))
    options |= change
    args = ["serving", *[item for pair in options.items() for item in pair], "--concurrency", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert named in err
    assert "Traceback" not in err


def test_concurrency_below_one_exits_2_before_running(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BASE, "--concurrency", "4", "0", *LOAD]) == 2
    captured = capsys.readouterr()
    assert "--concurrency must be >= 1" in captured.err and "got 0" in captured.err
    assert captured.out == ""


def test_argparse_rejects_an_unknown_dtype(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main([*BASE[:-1], "fp16", "--concurrency", "1", *LOAD])
    assert excinfo.value.code == 2
    assert "fp16" in capsys.readouterr().err


def test_kv_cache_limit_shows_as_preemptions(capsys: pytest.CaptureFixture[str]) -> None:
    # 70B on 2 H100s: a small KV cache; 256 clients of 2,048 tokens overflow it.
    args = ["serving", "--model", "llama-3.3-70b", "--gpu", "h100-80gb", "--tensor-parallel", "2"]
    args += [
        "--dtype",
        "bf16",
        "--concurrency",
        "8",
        "256",
        "--input-tokens",
        "1024",
        "--output-tokens",
        "1024",
    ]
    records = run_json(capsys, [*args, "--json"])
    assert main(args) == 0
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines() if re.match(r"\| \d+ \|", line)]
    preemptions = {int(row[1]): int(row[7]) for row in rows}
    assert preemptions[8] == 0 and preemptions[256] > 0
    assert not math.isnan(records[1]["itl_s"])


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    # gpu-alloc serving ... | head: the pipe closes before the output is written.
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gpu_alloc_env.train", *BASE, "--concurrency", "1", *LOAD],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert done.stderr.decode() == ""
