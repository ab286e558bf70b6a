"""The configuration error and the checks that raise it, shared by every validated dataclass.

Messages name the owner, the field, the offending value and what to do.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """An invalid configuration: the message names the field, the value and the fix."""


def is_number(value: object) -> bool:
    """Whether ``value`` is a real number (int, float, NumPy scalar); bools are not numbers here."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_number(
    owner: str,
    name: str,
    value: object,
    *,
    positive: bool = False,
    non_negative: bool = False,
    at_most: float | None = None,
) -> float:
    """``value`` as a finite float, or a :class:`ConfigError` naming ``owner.name``."""
    if not is_number(value):
        raise ConfigError(
            f"{owner}.{name} must be a number, got {value!r} of type {type(value).__name__}; "
            "pass an int or a float"
        )
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:
        raise ConfigError(
            f"{owner}.{name} is too large to be a float, got {value!r}; pass a finite number"
        ) from None
    if not math.isfinite(number):
        raise ConfigError(f"{owner}.{name} must be finite, got {number!r}; pass a finite number")
    if positive and number <= 0.0:
        raise ConfigError(f"{owner}.{name} must be > 0, got {number!r}; pass a positive value")
    if non_negative and number < 0.0:
        raise ConfigError(f"{owner}.{name} must be >= 0, got {number!r}; pass zero or more")
    if at_most is not None and number > at_most:
        raise ConfigError(f"{owner}.{name} must be <= {at_most:g}, got {number!r}; pass at most {at_most:g}")
    return number


def check_int(owner: str, name: str, value: object, *, minimum: int = 0) -> int:
    """``value`` as an int of at least ``minimum`` (whole floats such as ``2.0`` are accepted)."""
    if is_number(value):
        try:
            whole = math.isfinite(float(value)) and float(value) == math.floor(float(value))  # type: ignore[arg-type]
        except OverflowError:
            raise ConfigError(f"{owner}.{name} is too large, got {value!r}; pass a whole number") from None
        if whole:
            number: int = int(value)  # type: ignore[call-overload]
            if number >= minimum:
                return number
    raise ConfigError(f"{owner}.{name} must be a whole number >= {minimum}, got {value!r}")


def reject_unknown(kind: str, known: set[str], given: Mapping[str, Any], where: str = "") -> None:
    """Raise ``ConfigError`` naming the keys of ``given`` that are not fields of ``kind``."""
    unknown = sorted(set(given) - known)
    if unknown:
        raise ConfigError(f"unknown {kind} field(s) {unknown}{where}; valid fields are {sorted(known)}")


def build_checked(cls: type[T], data: object, where: str) -> T:
    """``cls(**data)`` for a dataclass, with unknown and missing fields reported by name."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping of {cls.__name__} fields, got {data!r}")
    declared = fields(cls)  # type: ignore[arg-type]
    reject_unknown(cls.__name__, {f.name for f in declared}, data, f" in {where}")
    required = {
        f.name
        for f in declared
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    missing = sorted(required - set(data))
    if missing:
        raise ConfigError(f"{where} lacks the required {cls.__name__} field(s) {missing}")
    return cls(**data)


def resolve_spec(
    value: object, catalogue: Mapping[str, T], cls: type[T], field: str, kind: str, hint: str
) -> T:
    """A catalogue name, a ``cls`` or a mapping of its fields (for ``field``), as a ``cls``.

    ``kind`` names the catalogue in messages ("GPU", "model", ...); ``hint`` lists the fields a
    user describing their own must give.
    """
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        if value not in catalogue:
            raise ConfigError(
                f"unknown {kind} {value!r}; choose one of {sorted(catalogue)}, or describe your own with a "
                f"{cls.__name__} (or a mapping of its fields{hint})"
            )
        return catalogue[value]
    if isinstance(value, Mapping):
        return build_checked(cls, value, field)
    raise ConfigError(
        f"{field} must be a {kind} name, a {cls.__name__} or a mapping of its fields, got {value!r}"
    )


def replace_checked(instance: T, overrides: Mapping[str, Any]) -> T:
    """``dataclasses.replace`` that rejects unknown fields with a helpful message."""
    known = {f.name for f in fields(instance)}  # type: ignore[arg-type]
    reject_unknown(type(instance).__name__, known, overrides)
    return dataclasses.replace(instance, **overrides)  # type: ignore[type-var]


class TrainError(ValueError):
    """A training request that cannot be carried out; the message says what to change."""
