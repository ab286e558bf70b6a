"""Data shipped with the package, read through ``importlib.resources`` (never from the network).

``traces/`` holds two production LLM inference traces from the Azure Public Dataset, unmodified,
under CC-BY 4.0 (``traces/LICENSE-CC-BY-4.0.txt``). Attribution: Patel et al., "Splitwise:
Efficient generative LLM inference using phase splitting", ISCA 2024.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from importlib.abc import Traversable

TRACES: dict[str, tuple[str, str]] = {
    "conv": (
        "AzureLLMInferenceTrace_conv_2023.csv",
        "2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8",
    ),
    "code": (
        "AzureLLMInferenceTrace_code_2023.csv",
        "54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6",
    ),
}
"""Bundled trace name -> (file name, SHA-256 of the file)."""


def trace_file(name: str) -> Traversable:
    """The bundled trace ``name`` (``conv`` or ``code``) as a package resource."""
    if name not in TRACES:
        raise ValueError(f"unknown bundled trace {name!r}; choose one of {sorted(TRACES)}")
    return resources.files("gpu_alloc_env") / "data" / "traces" / TRACES[name][0]


def verify_trace(name: str) -> bool:
    """Whether the bundled trace ``name`` is byte-for-byte the published file."""
    digest = hashlib.sha256(trace_file(name).read_bytes()).hexdigest()
    return digest == TRACES[name][1]
