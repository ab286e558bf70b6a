"""The Ray processes a test started: its driver and everything the driver spawned."""

from __future__ import annotations

from pathlib import Path

MARKER = "GPU_ALLOC_TEST_RAY"
"""The environment variable a test sets on its driver; Ray's processes inherit it."""


def ray_pids(marker: str) -> set[int]:
    """Processes started under ``GPU_ALLOC_TEST_RAY=marker``: the test's driver and the Ray processes
    it spawned (they inherit its environment), never anyone else's."""
    found = set()
    needle = f"{MARKER}={marker}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if needle in environ.split(b"\0"):
                found.add(int(entry.name))
    return found
