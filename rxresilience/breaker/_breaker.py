"""``rxr.CircuitBreaker``: one breaker shared by many pipelines and plain calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from reactivex import abc

from .._clock import clock_of
from ..errors import CircuitOpenError
from ._config import check_arguments
from ._controls import BreakerControls
from ._gate import Gate
from ._permit import Permit
from ._storage import BreakerStorage
from ._window import CountWindow, TimeWindow

__all__ = ["CircuitBreaker"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


class CircuitBreaker(BreakerControls):
    """A circuit breaker: closed, open, half-open, shared by many callers.

    Guard an observable with :func:`rxresilience.circuit_breaker` (one
    subscription is one call) or a plain function with :meth:`call`. While
    the breaker refuses, callers get :class:`~rxresilience.CircuitOpenError`
    at once and the protected work never starts.

    Two rules can open it; either is enough:

    - the classic rule: ``failure_threshold`` consecutive recorded failures
      (``None`` turns it off);
    - the rate rule: over a sliding ``window`` (``CountWindow(n)`` or
      ``TimeWindow(seconds)``), a failure rate of at least
      ``failure_rate_threshold``, or a rate of calls lasting at least
      ``slow_call_duration`` of at least ``slow_call_rate_threshold``, once
      the window holds ``minimum_calls`` calls.

    The first call at least ``reset_timeout`` seconds after opening moves the
    breaker to HALF_OPEN (or a timer does, with ``auto_half_open``), which
    admits ``half_open_max_calls`` trials: when they all succeed the breaker
    closes; one failure (or, with a slow-call rule, one slow trial) reopens it.

    Time is the ``scheduler``'s clock (default: the real clock), so under a
    ``TestScheduler`` every transition happens at an exact virtual time. The
    breaker's lock is held only for its own bookkeeping, never while a call
    runs: calls through one breaker run concurrently.

    Examples:
        >>> breaker = CircuitBreaker(failure_threshold=5, reset_timeout=30.0)
        >>> breaker.state
        <CircuitState.CLOSED: 'closed'>
        >>> breaker.call(len, "abc")
        3

    Args:
        failure_threshold: consecutive failures that open a CLOSED breaker;
            ``None`` for none (then a rate rule is required).
        reset_timeout: seconds OPEN before a trial call is allowed.
        half_open_max_calls: trials admitted in HALF_OPEN, and successes
            needed there to close.
        window: the sliding window of the rate rules.
        failure_rate_threshold: failure rate in (0, 1] that opens the breaker.
        slow_call_duration: seconds from which a call is slow.
        slow_call_rate_threshold: slow-call rate in (0, 1] that opens it.
        minimum_calls: calls the window must hold before a rate is judged;
            default: a ``CountWindow``'s size, or 10 for a ``TimeWindow``.
        record: the errors that count as failures: a predicate, an exception
            type or a tuple of them; default every ``Exception``. Other errors
            count as neither success nor failure.
        ignore: errors that never count (checked before ``record``); an
            ignored error gives back a half-open permit.
        failure_if: a predicate on emitted values (or returned results) that
            marks the call as failed, such as an HTTP 503 response.
        max_half_open_wait: seconds after which a trial that neither ended
            nor was disposed counts as failed, so a stuck probe cannot wedge
            the breaker.
        auto_half_open: move OPEN to HALF_OPEN on a timer, on the scheduler,
            rather than when the next call arrives.
        scheduler: the clock, and where the breaker's own timers run
            (default: the real clock and ``TimeoutScheduler``).
        storage: where the state lives (default: in this process).
        name: a name for errors and logs.

    Raises:
        ValueError: thresholds out of range; a duration (``reset_timeout``,
            ``slow_call_duration``, ``max_half_open_wait``) that is not above
            0, not finite, or above ``LONGEST_WAIT`` (about 292 years, the
            longest wait a timer can be armed for);
            ``half_open_max_calls < 1``; a window without a rate threshold
            (or the reverse); no rule that could open the breaker; a
            ``minimum_calls`` larger than a ``CountWindow``'s size (the rate
            could never be judged; resilience4j lowers it silently); an
            empty ``name``.
        TypeError: an argument of the wrong type (a ``bool`` where a number
            goes included).
    """

    def __init__(
        self,
        failure_threshold: int | None = 5,
        reset_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        *,
        window: CountWindow | TimeWindow | None = None,
        failure_rate_threshold: float | None = None,
        slow_call_duration: float | None = None,
        slow_call_rate_threshold: float | None = None,
        minimum_calls: int | None = None,
        record: Any = Exception,
        ignore: Any = None,
        failure_if: Callable[[Any], bool] | None = None,
        max_half_open_wait: float | None = None,
        auto_half_open: bool = False,
        scheduler: abc.SchedulerBase | None = None,
        storage: BreakerStorage | None = None,
        name: str = "circuit-breaker",
    ) -> None:
        checked = check_arguments(
            failure_threshold=failure_threshold,
            reset_timeout=reset_timeout,
            half_open_max_calls=half_open_max_calls,
            window=window,
            failure_rate_threshold=failure_rate_threshold,
            slow_call_duration=slow_call_duration,
            slow_call_rate_threshold=slow_call_rate_threshold,
            minimum_calls=minimum_calls,
            record=record,
            ignore=ignore,
            failure_if=failure_if,
            max_half_open_wait=max_half_open_wait,
            auto_half_open=auto_half_open,
            scheduler=scheduler,
            storage=storage,
            name=name,
        )
        clock = clock_of(scheduler)
        gate = Gate(
            name=name,
            config=checked.config,
            storage=checked.storage,
            clock=clock,
            scheduler=scheduler,
            record=checked.record,
            ignore=checked.ignore,
            failure_if=failure_if,
            auto_half_open=auto_half_open,
        )
        super().__init__(
            name=name,
            config=checked.config,
            scheduler=scheduler,
            clock=clock,
            failure_if=failure_if,
            storage=checked.storage,
            gate=gate,
        )

    # -- admitting calls ---------------------------------------------------------------

    def admit(self) -> Permit:
        """A :class:`Permit` for one call, to settle once when the call ends.

        For work that neither :meth:`call` nor ``rxr.circuit_breaker`` can
        wrap. A half-open trial's permit, if never settled, is held until
        ``max_half_open_wait`` (if set) counts it as failed.

        Raises:
            CircuitOpenError: the breaker refused the call.
        """
        permit = self._gate.try_admit()
        if isinstance(permit, CircuitOpenError):
            raise permit
        return permit

    def try_admit(self) -> Permit | CircuitOpenError:
        """:meth:`admit`, with the refusal returned rather than raised (for a
        caller that delivers it, such as an operator's ``on_error``)."""
        return self._gate.try_admit()

    def call(self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """Call ``fn(*args, **kwargs)`` through the breaker.

        Raises:
            CircuitOpenError: the breaker refused; ``fn`` was not called.
        """
        permit = self._gate.try_admit()
        if isinstance(permit, CircuitOpenError):
            raise permit
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            permit.failure(error)
            raise
        if self._failure_if is None or not permit.check(result):
            permit.success()
        return result

    async def call_async(
        self, fn: Callable[_P, Awaitable[_R]], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _R:
        """Await ``fn(*args, **kwargs)`` through the breaker, outside Rx.

        Cancelling the awaiting task counts as neither success nor failure
        (and gives back a half-open permit).

        Raises:
            CircuitOpenError: the breaker refused; ``fn`` was not called.
        """
        permit = self._gate.try_admit()
        if isinstance(permit, CircuitOpenError):
            raise permit
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:  # a cancellation counts as neither
            permit.failure(error)
            raise
        if self._failure_if is None or not permit.check(result):
            permit.success()
        return result
