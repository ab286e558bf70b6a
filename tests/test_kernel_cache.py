"""Cached kernels compiled from other sources are removed: a change to a callee recompiles its callers."""

from __future__ import annotations

from pathlib import Path

from gpu_alloc_env import _kernel_cache


def _cached(folder: Path, *names: str) -> list[Path]:
    files = [folder / name for name in names]
    for path in files:
        path.write_bytes(b"compiled")
    return files


def test_kernels_cached_from_other_sources_are_removed_once(tmp_path: Path) -> None:
    kernel, other = _cached(tmp_path, "kernel.step_interval-500.py311.nbi", "unrelated.f-1.py311.nbi")
    index = _cached(tmp_path, "kernel.step_interval-500.py311.1.nbc")[0]
    (tmp_path / _kernel_cache.STAMP).write_text("compiled from an older kernel")
    removed = _kernel_cache.refresh({tmp_path: ["kernel"]})
    assert sorted(removed) == sorted([kernel, index])
    assert not kernel.exists() and not index.exists() and other.exists()
    # The stamp now names the installed sources: a fresh compile is kept.
    fresh = _cached(tmp_path, "kernel.step_interval-500.py311.nbi")[0]
    assert _kernel_cache.refresh({tmp_path: ["kernel"]}) == []
    assert fresh.exists()


def test_the_fingerprint_covers_every_compiled_module() -> None:
    dirs = _kernel_cache.cache_dirs()
    stems = sorted(stem for names in dirs.values() for stem in names)
    assert stems == sorted(name.rsplit(".", 1)[1] for name in _kernel_cache.JIT_MODULES)
    sources = [Path(__file__).resolve().parents[1] / "gpu_alloc_env" / "serving" / "perf.py"]
    assert _kernel_cache.fingerprint(sources) != _kernel_cache.fingerprint(sources * 2)
