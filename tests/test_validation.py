"""``calibration/validate.py``: every printed error is model / measured - 1 of the printed figures."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from gpu_alloc_env.serving import calibration

CALIBRATION = Path(__file__).resolve().parent.parent / "calibration"


@pytest.fixture(scope="module")
def validate() -> Iterator[ModuleType]:
    sys.path.insert(0, str(CALIBRATION))  # validate.py imports fit.py beside it, as when run as a script
    try:
        spec = importlib.util.spec_from_file_location("calibration_validate", CALIBRATION / "validate.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(CALIBRATION))
        sys.modules.pop("calibration_validate", None)


@pytest.fixture(scope="module")
def printed(validate: ModuleType) -> str:
    text: str = validate.report()
    return text


def number(cell: str) -> float:
    return float(cell.strip().replace(",", "").rstrip("%"))


def comparison_rows(text: str) -> list[list[str]]:
    """The cells of every row of the comparison tables (seven columns, the last an error)."""
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 7 and re.fullmatch(r"[+-]\d+\.\d%", cells[6]):
            rows.append(cells)
    return rows


def test_main_prints_the_report(
    validate: ModuleType, printed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate.main() == 0
    assert capsys.readouterr().out == printed + "\n"
    for title in (
        "Calibration",
        "Serving speed",
        "Tensor-parallel scaling",
        "KV-cache capacity",
        "Cold starts",
    ):
        assert f"## {title}" in printed


def test_each_printed_error_is_model_over_measured(validate: ModuleType, printed: str) -> None:
    rows = comparison_rows(printed)
    expected = [row for section in validate.all_rows().values() for row in section]
    assert len(rows) == len(expected) > 30
    for cells, row in zip(rows, expected, strict=True):
        assert cells[:4] == [row.source, row.configuration, row.figure, row.method]
        measured, model, error = number(cells[4]), number(cells[5]), number(cells[6]) / 100.0
        assert measured == pytest.approx(row.measured, rel=5e-4)
        assert model == pytest.approx(row.model, rel=5e-4)
        assert error == pytest.approx(row.model / row.measured - 1.0, abs=5e-4)
        # The figures as printed (four significant digits) give the printed error too.
        assert error == pytest.approx(model / measured - 1.0, abs=2e-3), cells


def test_kv_capacity_matches_the_vllm_log(validate: ModuleType) -> None:
    rows = {(r.source, r.figure): r for r in validate.kv_rows()}
    log = "kubernetes-sigs/gateway-api-inference-extension PR 550 (vLLM log)"
    for figure in ("KV cache (GiB)", "KV-cache blocks of 16 tokens"):
        assert abs(rows[(log, figure)].error) < 0.01, figure


def test_ttft_and_itl_are_compared_at_several_concurrencies(validate: ModuleType) -> None:
    """The NIM sweep gives TTFT and ITL of one configuration at C=1 and three or more C above it."""
    rows = validate.nim_rows()
    for metric in ("TTFT", "ITL"):
        levels = {
            int(match.group(1))
            for row in rows
            if (match := re.fullmatch(rf"{metric} at C=(\d+) \((?:ms|s)\)", row.figure))
        }
        assert 1 in levels and len(levels - {1}) >= 3, (metric, levels)
    for row in rows:
        concurrency = re.search(r"C=(\d+)", row.figure)
        assert concurrency is not None and f"closed loop C={concurrency.group(1)}," in row.method


def test_kv_saturation_matches_the_nim_plateau(validate: ModuleType) -> None:
    """Requests decoding at once where NIM's sweep saturates (tok/s x ITL at C=150), within 10%."""
    row, throughput, itl = validate.kv_saturation_rows()
    assert row.measured == pytest.approx(920.9 * 92.86e-3)
    assert abs(row.error) < 0.10, row.error
    # At the plateau the model's iterations are slower (the engine-generation gap of section 7.1):
    # the same requests in flight, fewer tokens a second.
    assert (throughput.measured, itl.measured) == (920.9, 92.86)
    assert row.model == pytest.approx(throughput.model * itl.model / 1e3)


def test_calibration_reproduces_its_stated_errors(printed: str) -> None:
    """The committed calibration still has the errors its module docstring states (to rounding)."""
    assert calibration.__doc__ is not None
    stated = {
        cells[0]: cells[1:]
        for cells in (line.strip("|").split("|") for line in calibration.__doc__.splitlines() if "%" in line)
    }
    found = 0
    for line in printed.split("## Serving speed")[0].splitlines():
        cells = line.strip("|").split("|")
        if cells[0] in stated:
            found += 1
            assert int(cells[1]) == int(stated[cells[0]][0])
            for ours, theirs in zip(cells[2:], stated[cells[0]][1:], strict=True):
                assert number(ours) == pytest.approx(number(theirs), abs=0.2), cells[0]
    assert found == len(stated) == 12
