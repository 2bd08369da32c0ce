"""Construction-time checks: bad input raises at once, naming the argument."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

from ._clock import LONGEST_WAIT

__all__ = [
    "ErrorPredicate",
    "error_predicate",
    "is_number",
    "options_given",
    "require_bool",
    "require_callable",
    "require_choice",
    "require_count",
    "require_duration",
    "require_error_or_factory",
    "require_finite",
    "require_instance",
    "require_name",
    "require_number",
    "require_positive",
    "require_scheduler",
    "require_text",
    "require_unit_interval",
]

ErrorPredicate = Callable[[Exception], bool]


def is_number(value: object) -> TypeGuard[int | float]:
    """True for ints and floats, never for ``bool``."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def require_number(name: str, value: object) -> float:
    """Return ``value`` as a float (NaN and infinities included), or raise
    ``TypeError`` for what is not a number (a ``bool`` included) and
    ``ValueError`` for an int beyond any float (``10**400``)."""
    if not is_number(value):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{name} must be finite, got {value!r}") from None


def require_finite(name: str, value: object, *, minimum: float = 0.0) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number >= minimum."""
    result = require_number(name, value)
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
    """A non-empty string that any store can write (a breaker's, a journal's, a
    limiter's): UTF-8 encodable (a lone surrogate, as ``os.fsdecode`` makes of
    undecodable bytes, is not), without NUL (PostgreSQL text holds none)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must be a non-empty string, got ''")
    if "\x00" in value:  # PostgreSQL text holds none
        raise ValueError(f"{name} must not contain NUL, got {value!r}")
    try:
        value.encode()
    except UnicodeEncodeError as error:
        raise ValueError(
            f"{name} must be text encodable as UTF-8, got {value!r}: {error}"
        ) from None
    return value


def require_count(
    name: str,
    value: object,
    *,
    minimum: int = 1,
    or_none: bool = False,
    why: str = "",
) -> int:
    """Return ``value``, or raise unless it is an int (never a ``bool``) >= minimum.

    ``or_none`` only words the message for an argument that may also be None
    (the caller lets None through itself); ``why`` follows the bound in it.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        kind = "an int or None" if or_none else "an int"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__}")
    if value < minimum:
        because = f" ({why})" if why else ""
        raise ValueError(f"{name} must be >= {minimum}{because}, got {value!r}")
    return value


def require_bool(name: str, value: object, *, or_none: bool = False) -> None:
    """Raise ``TypeError`` unless ``value`` is a ``bool`` (or, with ``or_none``, None).

    A truthy stand-in (``1``, ``"yes"``) is refused: it is surely a mistake.
    """
    if isinstance(value, bool) or (or_none and value is None):
        return
    kind = "a bool or None" if or_none else "a bool"
    raise TypeError(f"{name} must be {kind}, got {type(value).__name__}")


def require_text(name: str, value: object) -> str:
    """Return ``value``, or raise ``TypeError`` for what is not a string and
    ``ValueError`` for the empty string."""
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be a non-empty string, got {type(value).__name__}"
        )
    if not value:
        raise ValueError(f"{name} must be a non-empty string, got ''")
    return value


def require_instance(
    name: str, value: object, kind: type, described: str | None = None
) -> None:
    """Raise ``TypeError`` unless ``value`` is a ``kind``.

    The message says ``name must be <described>``; by default "a"/"an" and
    the class's name.
    """
    if not isinstance(value, kind):
        if described is None:
            article = "an" if kind.__name__[:1] in "AEIOU" else "a"
            described = f"{article} {kind.__name__}"
        raise TypeError(f"{name} must be {described}, got {type(value).__name__}")


def require_callable(name: str, value: Any) -> None:
    """Raise ``TypeError`` unless ``value`` is callable."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}")


def require_observable_maker(name: str, value: object) -> None:
    """Raise ``TypeError`` unless ``value`` is callable and no coroutine
    function (its coroutine is no Observable: ``rxr.from_async`` makes one)."""
    require_callable(name, value)
    if inspect.iscoroutinefunction(value):
        raise TypeError(
            f"{name} must return an Observable, got a coroutine function: "
            f"pass lambda ...: rxr.from_async(lambda: {name}(...)) instead"
        )


def close_coroutine(value: object) -> bool:
    """Close ``value`` if it is a coroutine; True if it was one.

    A coroutine refused (given where a function or an Observable belongs) is
    closed, so that it does not warn later that it was never awaited.
    """
    if inspect.iscoroutine(value):
        value.close()
        return True
    return False


def require_error_or_factory(name: str, value: object) -> None:
    """Raise ``TypeError`` unless ``value`` is an exception or a function making one."""
    if not isinstance(value, Exception) and not callable(value):
        raise TypeError(f"{name} must be an exception or a function, got {value!r}")


def require_callable_with(
    name: str, function: Callable[..., object], args: tuple[object, ...], wanted: str
) -> None:
    """Raise ``TypeError`` (``name must <wanted>``) unless ``function`` can be
    called with ``args``, as its signature says (a builtin without one is let
    through: it is called as it is)."""
    try:
        inspect.signature(function, follow_wrapped=False).bind(*args)
    except TypeError:
        raise TypeError(f"{name} must {wanted}, got {function!r}") from None
    except ValueError:
        pass


def made_error(name: str, factory: Callable[..., object], *args: object) -> Exception:
    """The exception ``factory(*args)`` makes; what it raises, if it raises; a
    ``TypeError`` naming ``name`` if it makes something else (a string or
    None, delivered as an error, broke ``.run()`` and the traces)."""
    try:
        error = factory(*args)
    except Exception as raised:
        return raised
    if not isinstance(error, Exception):
        return TypeError(f"{name} must make an exception, made {error!r}")
    return error


def options_given(
    options: Mapping[str, object], defaults: Mapping[str, object]
) -> list[str]:
    """The names among keyword ``options`` given a value other than their default.

    For an operator that takes a policy *or* keyword options: an option
    passed at its default value (the operator's own signature used to pass
    them all) does not conflict with the policy. Numbers and strings compare
    by value (``60`` is ``60.0``), everything else by identity: an equal but
    new ``ExponentialBackoff()`` is taken as meant to override.
    """
    return [
        name
        for name, value in options.items()
        if not _same_as_default(value, defaults[name])
    ]


def _same_as_default(value: object, default: object) -> bool:
    if value is default:
        return True
    scalar = (int, float, str)
    return (
        isinstance(default, scalar) and isinstance(value, scalar) and value == default
    )


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
