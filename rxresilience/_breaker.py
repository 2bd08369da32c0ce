"""``rxr.CircuitBreaker``: one breaker shared by many pipelines and plain calls."""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from ._arguments import (
    ErrorPredicate,
    error_predicate,
    require_callable,
    require_duration,
    require_positive,
    require_scheduler,
)
from ._breaker_machine import (
    BreakerConfig,
    BreakerMetrics,
    CircuitState,
    Outcome,
    Refusal,
    StateChange,
    Ticket,
)
from ._breaker_storage import BreakerStorage, InMemoryBreakerStorage
from ._broadcast import Broadcast
from ._clock import choose_scheduler, clock_of
from ._window import CountWindow, TimeWindow
from .errors import CircuitOpenError

__all__ = ["CircuitBreaker"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

_DEFAULT_TIME_WINDOW_MINIMUM = 10


class CircuitBreaker:
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
            (or the reverse); no rule that could open the breaker.
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
        config = _make_config(
            failure_threshold=failure_threshold,
            reset_timeout=reset_timeout,
            half_open_max_calls=half_open_max_calls,
            window=window,
            failure_rate_threshold=failure_rate_threshold,
            slow_call_duration=slow_call_duration,
            slow_call_rate_threshold=slow_call_rate_threshold,
            minimum_calls=minimum_calls,
        )
        self._record: ErrorPredicate = error_predicate("record", record)
        self._ignore: ErrorPredicate | None = (
            None if ignore is None else error_predicate("ignore", ignore)
        )
        if failure_if is not None:
            require_callable("failure_if", failure_if)
        self._failure_if = failure_if
        self._max_half_open_wait = (
            None
            if max_half_open_wait is None
            else require_duration(
                "max_half_open_wait", max_half_open_wait, positive=True
            )
        )
        config = dataclasses.replace(
            config, max_half_open_wait=self._max_half_open_wait
        )
        if not isinstance(auto_half_open, bool):
            raise TypeError(
                f"auto_half_open must be a bool, got {type(auto_half_open).__name__}"
            )
        self._auto_half_open = auto_half_open
        require_scheduler("scheduler", scheduler)
        self._scheduler = scheduler
        self._clock = clock_of(scheduler)
        if storage is None:
            storage = InMemoryBreakerStorage()
        elif not isinstance(storage, BreakerStorage):
            raise TypeError(
                f"storage must be a BreakerStorage, got {type(storage).__name__}"
            )
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        self._name = name
        self._config = config
        self._changes: Broadcast[StateChange] = Broadcast()
        self._outbox: collections.deque[StateChange] = collections.deque()
        self._publish_lock = threading.Lock()
        self._publishing = False
        self._half_open_timer = SerialDisposable()
        self._storage = storage
        storage.bind(config, self._outbox.append)

    # -- what users read ------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def scheduler(self) -> abc.SchedulerBase | None:
        """The breaker's clock and where its own timers run; None for the real clock."""
        return self._scheduler

    @property
    def state(self) -> CircuitState:
        """The current state. An OPEN breaker whose timeout has passed stays OPEN
        until the next call arrives (unless ``auto_half_open``).

        With a shared storage this asks it (one round trip to Redis), and any
        transition made elsewhere since this process last looked is
        published on :attr:`state_changes`."""
        state = self._storage.observe(self._clock())
        if self._outbox:
            self._publish()
        return state

    @property
    def state_changes(self) -> Observable[StateChange]:
        """Every transition from now on, once each, in order (no replay)."""
        return self._changes

    def metrics(self) -> BreakerMetrics:
        """A frozen snapshot: totals, window rates and the state."""
        metrics = self._storage.metrics(self._clock())
        if self._outbox:
            self._publish()
        return metrics

    def __repr__(self) -> str:
        # The state as last known: a repr never waits for a shared storage.
        state = self._storage.state.value
        return f"CircuitBreaker(name={self._name!r}, state={state!r})"

    # -- manual control --------------------------------------------------------------

    def force_open(self) -> None:
        """Refuse every call (``retry_after`` unknown) until :meth:`reset`."""
        self._force(CircuitState.FORCED_OPEN, "forced open")

    def disable(self) -> None:
        """Let every call through, counting but never opening, until :meth:`reset`."""
        self._force(CircuitState.DISABLED, "disabled")

    def reset(self) -> None:
        """Back to CLOSED with every counter and the window cleared."""
        self._force(CircuitState.CLOSED, "reset")

    def _force(self, target: CircuitState, reason: str) -> None:
        self._storage.force(target, self._clock(), reason)
        self._publish()

    # -- guarding plain calls -------------------------------------------------------

    def call(self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """Call ``fn(*args, **kwargs)`` through the breaker.

        Raises:
            CircuitOpenError: the breaker refused; ``fn`` was not called.
        """
        ticket = self._admit()
        if not isinstance(ticket, Ticket):
            raise ticket
        try:
            result = fn(*args, **kwargs)
        except Exception as error:
            self._settle_error(ticket, error)
            raise
        except BaseException:
            self._settle(ticket, Outcome.NEITHER)
            raise
        if self._failure_if is not None:
            self._settle_result(ticket, result)
            return result
        # The hot path, inlined: settle a success.
        self._storage.record(ticket, Outcome.SUCCESS, self._clock())
        if ticket.timer is not None:
            ticket.timer.dispose()
        if self._outbox:
            self._publish()
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
        ticket = self._admit()
        if not isinstance(ticket, Ticket):
            raise ticket
        try:
            result = await fn(*args, **kwargs)
        except Exception as error:
            self._settle_error(ticket, error)
            raise
        except BaseException:  # cancellation
            self._settle(ticket, Outcome.NEITHER)
            raise
        self._settle_result(ticket, result)
        return result

    def _settle_error(self, ticket: Ticket, error: Exception) -> None:
        try:
            outcome = self._classify(error)
        except Exception:
            self._settle(ticket, Outcome.NEITHER)
            raise
        self._settle(ticket, outcome)

    def _settle_result(self, ticket: Ticket, result: Any) -> None:
        try:
            failed = self._flags_failure(result)
        except Exception:
            self._settle(ticket, Outcome.NEITHER)
            raise
        self._settle(ticket, Outcome.FAILURE if failed else Outcome.SUCCESS)

    # -- the protocol the operator uses ---------------------------------------------

    def _admit(self) -> Ticket | CircuitOpenError:
        """A ticket for one call, or the error that refuses it."""
        ticket = self._storage.acquire(self._clock())
        if self._outbox:
            self._publish()
        if isinstance(ticket, Refusal):
            return CircuitOpenError(self._name, ticket.state.value, ticket.retry_after)
        if ticket.trial and self._max_half_open_wait is not None:
            ticket.timer = self._timer_scheduler().schedule_relative(
                self._max_half_open_wait,
                lambda _s, _t: self._settle(ticket, Outcome.TIMED_OUT),
            )
        return ticket

    def _settle(self, ticket: Ticket, outcome: Outcome) -> None:
        """Record how a call ended; later settles of the same ticket do nothing."""
        if ticket.settled:
            return
        self._storage.record(ticket, outcome, self._clock())
        timer = ticket.timer
        if timer is not None and outcome is not Outcome.TIMED_OUT:
            timer.dispose()
        if self._outbox:
            self._publish()

    def _classify(self, error: Exception) -> Outcome:
        ignore = self._ignore
        if ignore is not None and ignore(error):
            return Outcome.NEITHER
        return Outcome.FAILURE if self._record(error) else Outcome.NEITHER

    def _flags_failure(self, value: Any) -> bool:
        failure_if = self._failure_if
        return failure_if is not None and bool(failure_if(value))

    @property
    def _checks_values(self) -> bool:
        return self._failure_if is not None

    # -- publishing transitions ------------------------------------------------------

    def _timer_scheduler(self) -> abc.SchedulerBase:
        return choose_scheduler(self._scheduler, None)

    def _publish(self) -> None:
        """Emit queued transitions in order, from one thread at a time, lock-free."""
        with self._publish_lock:
            if self._publishing:
                return  # the thread publishing now will emit ours too
            self._publishing = True
        while True:
            with self._publish_lock:
                if not self._outbox:
                    self._publishing = False
                    return
                change = self._outbox.popleft()
            if self._auto_half_open:
                if change.current is CircuitState.OPEN:
                    self._half_open_timer.disposable = (
                        self._timer_scheduler().schedule_relative(
                            self._config.reset_timeout, self._on_half_open_timer
                        )
                    )
                elif change.previous is CircuitState.OPEN:
                    self._half_open_timer.disposable = Disposable()
            self._changes.emit(change)

    def _on_half_open_timer(self, _scheduler: abc.SchedulerBase, _state: Any) -> None:
        self._storage.half_open_if_due(self._clock())
        self._publish()


def _make_config(
    *,
    failure_threshold: int | None,
    reset_timeout: float,
    half_open_max_calls: int,
    window: CountWindow | TimeWindow | None,
    failure_rate_threshold: float | None,
    slow_call_duration: float | None,
    slow_call_rate_threshold: float | None,
    minimum_calls: int | None,
) -> BreakerConfig:
    """Validate the breaker's settings, naming the argument at fault."""
    if failure_threshold is not None:
        _require_count("failure_threshold", failure_threshold)
    timeout = require_duration("reset_timeout", reset_timeout, positive=True)
    _require_count("half_open_max_calls", half_open_max_calls)
    if window is not None and not isinstance(window, CountWindow | TimeWindow):
        raise TypeError(
            f"window must be a CountWindow or a TimeWindow, got {type(window).__name__}"
        )
    for name, rate in (
        ("failure_rate_threshold", failure_rate_threshold),
        ("slow_call_rate_threshold", slow_call_rate_threshold),
    ):
        if rate is not None:
            checked = require_positive(name, rate)
            if checked > 1.0:
                raise ValueError(f"{name} must be within (0, 1], got {rate!r}")
    if slow_call_duration is not None:
        slow_call_duration = require_duration(
            "slow_call_duration", slow_call_duration, positive=True
        )
    if (slow_call_duration is None) != (slow_call_rate_threshold is None):
        raise ValueError(
            "slow_call_duration and slow_call_rate_threshold go together: "
            "give both or neither"
        )
    has_rate = (
        failure_rate_threshold is not None or slow_call_rate_threshold is not None
    )
    if window is not None and not has_rate:
        raise ValueError(
            "window needs failure_rate_threshold or slow_call_rate_threshold"
        )
    if window is None and has_rate:
        raise ValueError(
            "failure_rate_threshold and slow_call_rate_threshold need a window "
            "(rxr.CountWindow or rxr.TimeWindow)"
        )
    if failure_threshold is None and not has_rate:
        raise ValueError(
            "failure_threshold=None leaves no rule that could open the breaker: "
            "give a window with a rate threshold"
        )
    if minimum_calls is not None:
        _require_count("minimum_calls", minimum_calls)
        if isinstance(window, CountWindow) and minimum_calls > window.size:
            raise ValueError(
                f"minimum_calls must be <= the window's size {window.size}, "
                f"got {minimum_calls!r}"
            )
        minimum = minimum_calls
    elif isinstance(window, CountWindow):
        minimum = window.size
    else:
        minimum = _DEFAULT_TIME_WINDOW_MINIMUM
    return BreakerConfig(
        failure_threshold=failure_threshold,
        reset_timeout=timeout,
        half_open_max_calls=half_open_max_calls,
        window=window,
        failure_rate_threshold=failure_rate_threshold,
        slow_call_duration=slow_call_duration,
        slow_call_rate_threshold=slow_call_rate_threshold,
        minimum_calls=minimum,
    )


def _require_count(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
