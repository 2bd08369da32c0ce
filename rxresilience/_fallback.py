"""``rxr.fallback``: continue with a value, an observable or a function of the error."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar, cast

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable, SingleAssignmentDisposable

from ._arguments import (
    ErrorPredicate,
    close_coroutine,
    error_predicate,
    require_scheduler,
)
from ._clock import choose_scheduler, seconds_now
from .telemetry import _bus
from .telemetry._registry import require_policy_name

__all__ = ["FallbackLike", "fallback", "to_fallback"]

_T = TypeVar("_T")

FallbackLike: TypeAlias = Any
"""A value, an ``Observable``, or ``function(error) -> Observable``."""

Replacement = Callable[[Exception], Observable[Any]]


def _just(value: Any) -> Observable[Any]:
    def subscribe(
        observer: abc.ObserverBase[Any], _: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        observer.on_next(value)
        observer.on_completed()
        return SingleAssignmentDisposable()

    return Observable(subscribe)


def to_fallback(name: str, value: FallbackLike) -> Replacement:
    """Normalise a fallback to ``function(error) -> Observable``, checking its type.

    Raises:
        TypeError: for what is surely a mistake: an exception or exception
            type (to fail differently, return ``rx.throw(...)`` from a
            function), a coroutine function or an awaitable (wrap it in an
            observable first), or ``None``.
    """
    if isinstance(value, Observable):
        observable = value
        return lambda _: observable
    if value is None:
        raise TypeError(
            f"{name} must be a value, an Observable or a function, got None"
        )
    if isinstance(value, BaseException) or (
        isinstance(value, type) and issubclass(value, BaseException)
    ):
        raise TypeError(
            f"{name} must be a value, an Observable or a function of the error, got "
            f"an exception; to fail with another error, return rx.throw(...) from a "
            f"function"
        )
    if inspect.iscoroutinefunction(value) or inspect.isawaitable(value):
        close_coroutine(value)
        raise TypeError(
            f"{name} must return an Observable, got a coroutine; make one with "
            f"rxr.from_async in a function: lambda error: rxr.from_async(...)"
        )
    if callable(value):
        function = cast(Callable[[Exception], Any], value)

        def replacement(error: Exception) -> Observable[Any]:
            result = function(error)
            if not isinstance(result, Observable):
                close_coroutine(result)  # refused: no "never awaited" warning
                raise TypeError(
                    f"{name} function must return an Observable, got "
                    f"{type(result).__name__}"
                )
            return result

        return replacement
    constant = _just(value)
    return lambda _: constant


def fallback(
    replacement: FallbackLike,
    *,
    when: Any = None,
    name: str = "fallback",
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """On a matching error, continue with a value, an observable, or ``f(error)``.

    ::

        source:   --a--#
        fallback("b")
        result:   --a--(b|)

    Examples:
        >>> import reactivex as rx
        >>> rx.throw(ValueError("down")).pipe(fallback("cached")).run()
        'cached'
        >>> rx.throw(KeyError("k")).pipe(fallback(lambda e: rx.of(repr(e)))).run()
        "KeyError('k')"

    Args:
        replacement: a plain value (emitted, then completion), an
            ``Observable`` to switch to, or a function of the error that
            returns an ``Observable``. A function that raises, or returns
            something else, fails the stream with that error.
        when: which errors to replace: a predicate, an exception type or a
            tuple of them; default every error. Others pass through unchanged.
        name: the policy's name on its ``fallback.used`` telemetry events.
        scheduler: the clock of those events (virtual time under a
            ``TestScheduler``); else the subscribe-time scheduler's, else the
            real clock. Nothing here waits: no timer runs on it.

    Returns:
        An operator function for ``Observable.pipe``.

    Raises:
        TypeError: a ``replacement`` that is an exception, a coroutine or
            ``None``; a ``when`` that is neither a predicate nor exception
            types; a ``name`` that is not a string.
    """
    make = to_fallback("fallback", replacement)
    require_policy_name("name", name)
    require_scheduler("scheduler", scheduler)
    matches: ErrorPredicate | None = (
        None if when is None else error_predicate("when", when)
    )

    def apply(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            current = SerialDisposable()
            raised: Exception | None = None

            def on_next(value: _T) -> None:
                nonlocal raised
                try:
                    observer.on_next(value)
                except Exception as error:
                    raised = error  # the subscriber's bug, never the source's
                    raise

            def on_error(error: Exception) -> None:
                if error is raised:
                    observer.on_error(error)
                    return
                try:
                    if matches is not None and not matches(error):
                        observer.on_error(error)
                        return
                    next_source = make(error)
                except Exception as failure:
                    observer.on_error(failure)
                    return
                if _bus.listening:  # replaced: a function that failed replaced nothing
                    _bus.emit(
                        "fallback.used",
                        name,
                        seconds_now(choose_scheduler(scheduler, scheduler_)),
                        error=error,
                    )
                current.disposable = next_source.subscribe(
                    observer, scheduler=scheduler_
                )

            first = SingleAssignmentDisposable()
            current.disposable = first
            first.disposable = source.subscribe(
                on_next, on_error, observer.on_completed, scheduler=scheduler_
            )
            return current

        return Observable(subscribe)

    return apply
