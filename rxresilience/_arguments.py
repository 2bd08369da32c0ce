"""Construction-time checks: bad input raises at once, naming the argument."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeGuard

from ._clock import LONGEST_WAIT

__all__ = [
    "ErrorPredicate",
    "error_predicate",
    "is_number",
    "require_callable",
    "require_duration",
    "require_finite",
    "require_positive",
    "require_scheduler",
    "require_unit_interval",
]

ErrorPredicate = Callable[[Exception], bool]


def is_number(value: object) -> TypeGuard[int | float]:
    """True for ints and floats, never for ``bool``."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def require_finite(name: str, value: object, *, minimum: float = 0.0) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number >= minimum."""
    if not is_number(value):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    try:
        result = float(value)
    except OverflowError:  # an int beyond any float
        raise ValueError(f"{name} must be finite, got {value!r}") from None
    if not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if result < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {value!r}")
    return result


def require_positive(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number > 0."""
    result = require_finite(name, value)
    if result <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return result


def require_duration(name: str, value: object, *, positive: bool = False) -> float:
    """Return a duration in seconds as a float, or raise naming ``name``.

    A duration is a finite number (never a ``bool``), at least 0 (above 0
    with ``positive``), and at most :data:`~rxresilience._clock.LONGEST_WAIT`:
    a timer armed for longer dies with ``OverflowError`` on its own thread.
    """
    result = require_positive(name, value) if positive else require_finite(name, value)
    if result > LONGEST_WAIT:
        raise ValueError(
            f"{name} must be at most {LONGEST_WAIT:g} seconds (the longest wait a "
            f"timer can be armed for), got {value!r}"
        )
    return result


def require_unit_interval(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise if it is outside [0, 1]."""
    result = require_finite(name, value)
    if result > 1.0:
        raise ValueError(f"{name} must be within [0, 1], got {value!r}")
    return result


def require_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        listed = " or ".join(repr(choice) for choice in choices)
        raise ValueError(f"{name} must be {listed}, got {value!r}")


def require_name(name: str, value: object) -> str:
    """A non-empty string that a store can write: UTF-8 encodable (a lone
    surrogate, as ``os.fsdecode`` makes of undecodable bytes, is not)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    try:
        value.encode()
    except UnicodeEncodeError as error:
        raise ValueError(
            f"{name} must be text a journal can store (UTF-8), got {value!r}: {error}"
        ) from None
    return value


def require_callable(name: str, value: Any) -> None:
    """Raise ``TypeError`` unless ``value`` is callable."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}")


def error_predicate(name: str, value: Any) -> ErrorPredicate:
    """Normalise an exception type, a tuple of them, or a predicate to a predicate."""
    if isinstance(value, type) and issubclass(value, BaseException):
        kinds: tuple[type[BaseException], ...] = (value,)
    elif (
        isinstance(value, tuple)
        and value
        and all(isinstance(k, type) and issubclass(k, BaseException) for k in value)
    ):
        kinds = value
    elif callable(value):
        return value  # type: ignore[no-any-return]
    else:
        raise TypeError(
            f"{name} must be a callable predicate, an exception type or a tuple "
            f"of exception types, got {type(value).__name__}"
        )

    def matches(error: Exception) -> bool:
        return isinstance(error, kinds)

    return matches


def require_scheduler(name: str, value: object) -> None:
    """Raise ``TypeError`` unless ``value`` is None or a reactivex scheduler."""
    from reactivex import abc

    if value is not None and not isinstance(value, abc.SchedulerBase):
        raise TypeError(
            f"{name} must be a reactivex scheduler, got {type(value).__name__}"
        )
