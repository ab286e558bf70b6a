"""Keep numba's on-disk cache of the compiled kernels consistent with their sources.

numba reuses a cached function until its own source file changes, but a change to a function it
calls in another file (the iteration time of ``serving/perf.py``, say, inside the kernel of
``core/kernel.py``) goes unnoticed: the cached kernel keeps the old callee. So the sources of every
module with compiled functions are fingerprinted together, and when the fingerprint differs from
the one stored beside the cache, those modules' cached kernels are removed and compile again.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

JIT_MODULES: tuple[str, ...] = (
    "gpu_alloc_env.serving.perf",
    "gpu_alloc_env.core.allocation",
    "gpu_alloc_env.core.engine",
    "gpu_alloc_env.core.kernel",
    "gpu_alloc_env.core.closed_loop",
)
"""Modules whose functions numba compiles and caches."""
STAMP = "gpu_alloc_env-kernels.sha256"
"""File, beside the cached kernels, holding the fingerprint they were compiled from."""


def fingerprint(paths: list[Path]) -> str:
    """SHA-256 of the contents of ``paths``, in order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_dirs() -> dict[Path, list[str]]:
    """Each folder numba caches the compiled modules in, with the file stems cached there."""
    dirs: dict[Path, list[str]] = {}
    for name in JIT_MODULES:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if getattr(value, "__module__", None) != name:
                continue
            cache_path = getattr(getattr(value, "_cache", None), "_cache_path", None)
            if cache_path is not None:
                stems = dirs.setdefault(Path(cache_path), [])
                stem = Path(str(module.__file__)).stem
                if stem not in stems:
                    stems.append(stem)
    return dirs


def refresh(dirs: dict[Path, list[str]] | None = None) -> list[Path]:
    """Remove cached kernels compiled from other sources than the installed ones; returns them.

    A folder that cannot be written is left alone (numba then recompiles or uses its own fallback).
    """
    sources = [Path(str(importlib.import_module(name).__file__)) for name in JIT_MODULES]
    current = fingerprint(sources)
    removed: list[Path] = []
    for folder, stems in (cache_dirs() if dirs is None else dirs).items():
        stamp = folder / STAMP
        try:
            if stamp.is_file() and stamp.read_text() == current:
                continue
            for stem in stems:
                for cached in [*folder.glob(f"{stem}.*.nbi"), *folder.glob(f"{stem}.*.nbc")]:
                    cached.unlink()
                    removed.append(cached)
            folder.mkdir(parents=True, exist_ok=True)
            stamp.write_text(current)
        except OSError:
            continue
    return removed
