"""Progress bars for the commands that run for more than a few seconds.

Bars go to standard error and show only on a terminal (``tqdm``'s ``disable=None``), so logs and
captured output stay clean; ``enabled=True`` forces them, ``False`` hides them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import NoReturn, TypeAlias, TypeVar

from tqdm import tqdm

T = TypeVar("T")
Bar: TypeAlias = "tqdm[NoReturn]"
"""A bar advanced by hand (it wraps no iterable)."""


def progress_bar(total: int, description: str, unit: str, enabled: bool | None = None) -> Bar:
    """A bar to ``update`` by hand, counting ``unit`` up to ``total``."""
    return tqdm(total=total, desc=description, unit=unit, disable=_disabled(enabled), dynamic_ncols=True)


def with_progress(
    items: Iterable[T], total: int, description: str, unit: str, enabled: bool | None = None
) -> Iterator[T]:
    """``items``, advancing a bar by one for each."""
    with progress_bar(total, description, unit, enabled) as bar:
        for item in items:
            yield item
            bar.update(1)


def say(text: str) -> None:
    """Print a line without tearing the progress bars on the terminal (``tqdm.write``)."""
    tqdm.write(text)
    sys.stdout.flush()


def _disabled(enabled: bool | None) -> bool | None:
    """Tqdm's ``disable``: ``None`` hides the bar unless standard error is a terminal."""
    return None if enabled is None else not enabled
