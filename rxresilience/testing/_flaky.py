"""``flaky``: a cold observable that fails on a script and logs its subscriptions."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable

from .._arguments import (
    made_error,
    require_callable_with,
    require_count,
    require_duration,
    require_error_or_factory,
)
from .._clock import choose_scheduler, clock_of

__all__ = ["FlakySource", "flaky"]

_T = TypeVar("_T")

#: an outcome in a script: "ok" (emit the values, complete), "fail" (error),
#: or "hang" (never end)
Outcome = str


class FlakySource(Observable[_T], Generic[_T]):
    """A cold observable whose n-th subscription follows ``script[n]``.

    Attributes:
        subscriptions: ``(start, end)`` per subscription on the scheduler's
            clock, ``end`` None while open.
    """

    def __init__(
        self,
        values: Sequence[_T],
        script: Callable[[int], Outcome],
        latency: float,
        error: Callable[[int], Exception],
    ) -> None:
        super().__init__()
        self._values = tuple(values)
        self._script = script
        self._latency = require_duration("latency", latency)
        self._error = error
        self._lock = threading.Lock()
        self.subscriptions: list[tuple[float, float | None]] = []

    @property
    def calls(self) -> int:
        """How many times the source was subscribed."""
        return len(self.subscriptions)

    def _subscribe_core(
        self,
        observer: abc.ObserverBase[_T],
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        sched = choose_scheduler(None, scheduler)
        clock = clock_of(sched)
        with self._lock:  # subscribed from several threads: one call each
            index = len(self.subscriptions)
            self.subscriptions.append((clock(), None))
        outcome = self._script(index)

        def close() -> None:
            with self._lock:
                start, end = self.subscriptions[index]
                if end is None:
                    self.subscriptions[index] = (start, clock())

        def act(*_: Any) -> None:
            if outcome == "hang":
                return
            # The call has answered: logged so before its subscriber, which
            # may raise, hears of it.
            close()
            if outcome == "fail":
                observer.on_error(made_error("error", self._error, index + 1))
                return
            for value in self._values:
                observer.on_next(value)
            observer.on_completed()

        if self._latency > 0 or scheduler is not None:
            timer = sched.schedule_relative(self._latency, act)
        else:
            act()
            timer = Disposable()
        return CompositeDisposable(timer, Disposable(close))


class FlakyError(Exception):
    """The default error of a ``flaky`` source's failing subscriptions."""


def flaky(
    values: Sequence[_T] = ("ok",),  # type: ignore[assignment]
    *,
    failures: int | Iterable[Outcome] = 1,
    latency: float = 0.0,
    error: Exception | Callable[[int], Exception] | None = None,
) -> FlakySource[_T]:
    """A cold observable that fails its first ``failures`` subscriptions.

    Each subscription is a call: after ``latency`` seconds on the
    subscribe-time scheduler it fails, or emits ``values`` and completes.
    ``failures`` may instead be a script, one outcome per subscription
    (``"ok"``, ``"fail"`` or ``"hang"``; the last one repeats).

    Examples:
        >>> import rxresilience as rxr
        >>> source = flaky(["user"], failures=2)
        >>> source.pipe(rxr.retry(3, backoff=None)).run(), source.calls
        ('user', 3)

    Args:
        values: what a successful call emits.
        failures: how many calls fail first, or a script of outcomes.
        latency: seconds before each call answers: at least 0 (0 answers at
            once), at most ``LONGEST_WAIT`` (about 292 years).
        error: the error of a failing call, or a function of the call's
            number (from 1) making it; default ``FlakyError``.

    Raises:
        ValueError: negative ``failures``, an empty script or one with an
            outcome other than those three, or a ``latency`` negative, not
            finite, or above ``LONGEST_WAIT``.
        TypeError: ``failures`` neither a count nor a list of outcomes (a
            string, a float, None); a ``latency`` that is not a number (a
            ``bool`` included); an ``error`` that is neither an exception nor
            a function of the call's number.

    An ``error`` function that raises fails the call with what it raised;
    one that makes no exception, with a ``TypeError`` saying so.
    """
    if isinstance(failures, int | float) or failures is None:  # a bool too
        if not isinstance(failures, int):
            raise TypeError(f"failures must be a count or a script, got {failures!r}")
        count = require_count("failures", failures, minimum=0)

        def script(index: int) -> Outcome:
            return "fail" if index < count else "ok"

    else:
        if isinstance(failures, str | bytes) or not isinstance(failures, Iterable):
            raise TypeError(
                "failures must be a count or a script (a list of 'ok', 'fail' "
                f"and 'hang'), got {failures!r}"
            )
        steps = list(failures)
        if not steps:
            raise ValueError("failures must not be an empty script")
        unknown = [step for step in steps if step not in _OUTCOMES]
        if unknown:  # a typo: refused now, not as an error a retry retries
            raise ValueError(
                f"failures: unknown outcome {unknown[0]!r}: use 'ok', 'fail' or 'hang'"
            )

        def script(index: int) -> Outcome:
            return steps[min(index, len(steps) - 1)]

    latency = require_duration("latency", latency)
    make_error: Callable[[int], Exception]
    if error is None:
        make_error = _default_error
    elif isinstance(error, Exception):
        fixed = error
        make_error = lambda _call: fixed  # noqa: E731
    else:
        require_error_or_factory("error", error)
        require_callable_with("error", error, (1,), "take the call's number (from 1)")
        make_error = error
    return FlakySource(values, script, latency, make_error)


_OUTCOMES = ("ok", "fail", "hang")


def _default_error(call: int) -> Exception:
    return FlakyError(f"call {call} failed")
