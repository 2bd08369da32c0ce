"""``rxr.retry``: resubscribe to a failing source, with backoff, on a scheduler."""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeAlias, TypeVar, overload

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable, SingleAssignmentDisposable
from reactivex.scheduler import CurrentThreadScheduler

from ._arguments import (
    ErrorPredicate,
    error_predicate,
    is_number,
    require_callable,
    require_duration,
    require_scheduler,
)
from ._backoff import Backoff, ExponentialBackoff, to_backoff
from ._clock import LONGEST_WAIT, RESOLUTION, choose_scheduler, seconds_now
from ._delay_mode import delays_disabled
from .errors import CallRefusedError, ResultRejectedError

__all__ = ["RetryEvent", "RetryPolicy", "retry"]

_T = TypeVar("_T")

BackoffLike: TypeAlias = Backoff | float | Callable[[int], float] | None
"""What ``backoff=`` accepts: a policy, constant seconds, ``f(attempt)``, or None."""

RetryPredicate: TypeAlias = (
    Callable[[Exception], bool]
    | type[BaseException]
    | tuple[type[BaseException], ...]
    | None
)
"""What ``should_retry=`` accepts: a predicate, exception type(s), or None (all)."""

_DEFAULT_BACKOFF = ExponentialBackoff()
_DEFAULT_MAX_REFUSAL_WAIT = 60.0
# A refusal that says "come back now" is waited at least this long, so a
# policy that keeps refusing with ``retry_after=0`` cannot spin the retry.
_SHORTEST_REFUSAL_WAIT = 0.001


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """What ``on_retry`` receives each time a retry is scheduled.

    Attributes:
        attempt: the number of the attempt that just failed (1 for the first);
            for a refusal, the number of the attempt that was refused and will
            be made again.
        delay: seconds until the next attempt starts (0 means at once).
        error: the exception that attempt failed with.
        refused: True when ``error`` is a :class:`~rxresilience.CallRefusedError`
            (nothing was called; the wait does not use up an attempt).
    """

    attempt: int
    delay: float
    error: Exception
    refused: bool = False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The options of :func:`retry` as one frozen, reusable value.

    ``rxr.retry(policy)`` and ``rxr.retry(max_attempts=..., ...)`` build the
    same operator. See :func:`retry` for the meaning of every field.

    Examples:
        >>> policy = RetryPolicy(max_attempts=5, backoff=ConstantBackoff(0.1))
        >>> policy.max_attempts
        5
    """

    max_attempts: int | None = 3
    backoff: BackoffLike = _DEFAULT_BACKOFF
    should_retry: RetryPredicate = None
    max_elapsed: float | None = None
    reset_on_success: bool = False
    rng: random.Random | None = None
    scheduler: abc.SchedulerBase | None = None
    on_retry: Callable[[RetryEvent], None] | None = None
    retry_if_result: Callable[[Any], bool] | None = None
    max_refusal_wait: float = _DEFAULT_MAX_REFUSAL_WAIT

    _backoff_policy: Backoff | None = field(init=False, repr=False, compare=False)
    _should_retry: ErrorPredicate | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts is not None:
            if not isinstance(self.max_attempts, int) or isinstance(
                self.max_attempts, bool
            ):
                raise TypeError(
                    "max_attempts must be an int or None, got "
                    f"{type(self.max_attempts).__name__}"
                )
            if self.max_attempts < 1:
                raise ValueError(
                    f"max_attempts must be >= 1 (the first attempt counts), got "
                    f"{self.max_attempts!r}"
                )
        object.__setattr__(self, "_backoff_policy", to_backoff(self.backoff))
        object.__setattr__(
            self,
            "_should_retry",
            None
            if self.should_retry is None
            else error_predicate("should_retry", self.should_retry),
        )
        if self.max_elapsed is not None:
            require_duration("max_elapsed", self.max_elapsed, positive=True)
        require_duration("max_refusal_wait", self.max_refusal_wait)
        if not isinstance(self.reset_on_success, bool):
            raise TypeError(
                "reset_on_success must be a bool, got "
                f"{type(self.reset_on_success).__name__}"
            )
        if self.rng is not None and not isinstance(self.rng, random.Random):
            raise TypeError(
                f"rng must be a random.Random, got {type(self.rng).__name__}"
            )
        require_scheduler("scheduler", self.scheduler)
        if self.on_retry is not None:
            require_callable("on_retry", self.on_retry)
        if self.retry_if_result is not None:
            require_callable("retry_if_result", self.retry_if_result)


@overload
def retry(
    max_attempts: RetryPolicy,
    /,
    *,
    rng: random.Random | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]: ...


@overload
def retry(
    max_attempts: int | None = 3,
    *,
    backoff: BackoffLike = _DEFAULT_BACKOFF,
    should_retry: RetryPredicate = None,
    max_elapsed: float | None = None,
    reset_on_success: bool = False,
    rng: random.Random | None = None,
    scheduler: abc.SchedulerBase | None = None,
    on_retry: Callable[[RetryEvent], None] | None = None,
    retry_if_result: Callable[[Any], bool] | None = None,
    max_refusal_wait: float = _DEFAULT_MAX_REFUSAL_WAIT,
) -> Callable[[Observable[_T]], Observable[_T]]: ...


def retry(
    max_attempts: int | RetryPolicy | None = 3,
    *,
    backoff: BackoffLike = _DEFAULT_BACKOFF,
    should_retry: RetryPredicate = None,
    max_elapsed: float | None = None,
    reset_on_success: bool = False,
    rng: random.Random | None = None,
    scheduler: abc.SchedulerBase | None = None,
    on_retry: Callable[[RetryEvent], None] | None = None,
    retry_if_result: Callable[[Any], bool] | None = None,
    max_refusal_wait: float = _DEFAULT_MAX_REFUSAL_WAIT,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Resubscribe to the source when it fails, waiting a backoff between attempts.

    Each attempt below is ``-a#`` (one value, then an error), one tick per
    character; the backoff is 2 ticks::

        attempt 1:  -a#
        attempt 2:      -a#
        attempt 3:          -a#
        retry(3, backoff=ConstantBackoff(2))
        result:     -a---a---a#

    ``max_attempts`` counts every subscription to the source, the first
    included, as ``reactivex.operators.retry(n)`` does (RxJS and RxJava
    ``retry(n)`` subscribe n + 1 times; we do not). When the attempts run
    out, or ``should_retry`` says no, the subscriber receives the failing
    attempt's own exception object, unchanged.

    Delays run on ``scheduler``, else the scheduler given to ``subscribe``,
    else ``TimeoutScheduler``; under a ``TestScheduler`` a 30 s backoff takes
    no wall time. Disposing the subscription cancels a pending delay. Every
    subscription has its own attempt count and delay sequence, so
    ``repeat()`` after ``retry`` gets a fresh budget each time.

    A refusal is not a call: a :class:`~rxresilience.CallRefusedError` (such
    as ``rxr.CircuitOpenError``) means nothing was called, so it uses up no
    attempt and does not advance the backoff; the retry waits exactly its
    ``retry_after`` and tries again. The waits on refusals add up to at most
    ``max_refusal_wait`` seconds, and stay within ``max_elapsed``; past
    either, or for a refusal with ``retry_after=None`` (a breaker forced
    open), the retry ends with the refusal at once. ``should_retry`` is not
    asked about refusals (``max_refusal_wait=0`` fails fast on them). The
    retry trusts the error's type: a refusal raised from deep inside the
    retried work, after it did something, is waited out and the work runs
    again; put breakers directly inside the retry (as ``rxr.resilient``
    does).

    Any other error with a numeric ``retry_after`` attribute (seconds, such
    as ``rxr.RetryAfterError`` from a server's ``Retry-After``) counts as an
    attempt and makes the next delay at least that long, even beyond the
    policy's cap or with ``backoff=None``. A delay longer than a timer can
    wait (``threading.TIMEOUT_MAX``, about 292 years, or infinity) means
    "never": the retry gives up at once with that error.

    An exception raised by the subscriber's own ``on_next`` is never retried
    (``reactivex.operators.retry`` would retry it when a synchronous source
    hands it back as ``on_error``): it travels on as RxPY lets it.

    Examples:
        >>> import reactivex as rx
        >>> user = rx.defer(lambda _: fetch_user()).pipe(
        ...     retry(
        ...         max_attempts=3,
        ...         backoff=ExponentialBackoff(base=1.0, factor=2.0, max_delay=30.0),
        ...         should_retry=ConnectionError,
        ...     )
        ... )
        >>> same = rx.defer(lambda _: fetch_user()).pipe(retry(RetryPolicy()))

    Args:
        max_attempts: total subscriptions to the source, the first included;
            ``None`` for no limit. A :class:`RetryPolicy` instead gives every
            option at once (only ``rng`` and ``scheduler`` may then be given
            beside it).
        backoff: a :class:`Backoff` policy, a constant number of seconds, a
            function ``f(attempt) -> seconds`` of the failed attempt's number,
            or ``None`` to resubscribe at once with no scheduling. A zero delay
            also resubscribes at once. The default is
            ``ExponentialBackoff(base=1, factor=2, max_delay=30, jitter=0.3)``:
            ``min(base * factor ** (k - 1) * (1 + U * jitter), max_delay)``
            seconds before attempt k + 1.
        should_retry: which errors are retried: a predicate, an exception
            type, or a tuple of them; ``None`` retries every error. A false
            answer ends the stream with that error; an exception the predicate
            raises is delivered as the stream's error.
        max_elapsed: a time budget in seconds on the scheduler's clock, from
            subscription (with ``reset_on_success``, from the latest value): no
            attempt is scheduled to start after it (one starting exactly at the
            budget is allowed); the error is delivered at once instead.
        reset_on_success: for long-lived streams: every value the source emits
            resets the attempt count, the delay sequence and the time budget.
        rng: where jitter comes from; a seeded ``random.Random`` gives the same
            delays every run. Default: one fresh ``random.Random`` for this
            operator (never the global ``random`` state).
        scheduler: where delays are scheduled, overriding the subscribe-time
            scheduler.
        on_retry: called with a :class:`RetryEvent` each time a retry is
            scheduled, a refusal's wait included (``event.refused``); an
            exception it raises becomes the stream's error.
        max_refusal_wait: the most seconds, in total, spent waiting on
            refusals (``CallRefusedError``); 0 ends the retry at the first
            refusal.
        retry_if_result: a predicate on values (tenacity's
            ``retry_if_result``): a value it flags (an HTTP 503 response, say)
            ends the attempt as a failure with
            :class:`~rxresilience.ResultRejectedError` carrying the value,
            which is retried like any error and delivered if attempts run out.

    Returns:
        An operator function for ``Observable.pipe``.

    Raises:
        ValueError: ``max_attempts < 1``, negative delays, ``jitter`` outside
            [0, 1], ``factor < 1``, a non-positive ``max_elapsed``, a negative
            ``max_refusal_wait``, or a duration that is not finite or longer
            than ``threading.TIMEOUT_MAX``.
        TypeError: an argument of the wrong type, such as a non-callable
            ``should_retry``.
    """
    if isinstance(max_attempts, RetryPolicy):
        given = (
            backoff is not _DEFAULT_BACKOFF
            or should_retry is not None
            or max_elapsed is not None
            or reset_on_success
            or on_retry is not None
            or retry_if_result is not None
            or max_refusal_wait != _DEFAULT_MAX_REFUSAL_WAIT
        )
        if given:
            raise TypeError(
                "retry() takes either a RetryPolicy or keyword options, not both "
                "(only rng= and scheduler= may accompany a policy)"
            )
        policy = max_attempts
        if rng is not None or scheduler is not None:
            policy = dataclasses.replace(
                policy,
                rng=rng if rng is not None else policy.rng,
                scheduler=scheduler if scheduler is not None else policy.scheduler,
            )
    else:
        policy = RetryPolicy(
            max_attempts=max_attempts,
            backoff=backoff,
            should_retry=should_retry,
            max_elapsed=max_elapsed,
            reset_on_success=reset_on_success,
            rng=rng,
            scheduler=scheduler,
            on_retry=on_retry,
            retry_if_result=retry_if_result,
            max_refusal_wait=max_refusal_wait,
        )
    operator_rng = policy.rng if policy.rng is not None else random.Random()

    def apply(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            run = _RetryRun(source, observer, scheduler_, policy, operator_rng)
            run.start()
            return run

        return Observable(subscribe)

    return apply


class _RetryRun(abc.DisposableBase, Generic[_T]):
    """The state of one subscription to a retried source.

    Resubscription goes through a drain loop: an attempt that fails while its
    own ``subscribe`` call is still on the stack only bumps ``_pending``, and
    the loop that is already running subscribes again. So a source failing
    synchronously a million times uses constant stack and memory. Only the
    first attempt's synchronous failure hands the loop to the current
    thread's trampoline, so that our subscriber holds our disposable (and can
    stop us) before the loop goes on.
    """

    __slots__ = (
        "_attempts",
        "_delays",
        "_disposed",
        "_episode_start",
        "_inner",
        "_lock",
        "_no_delays",
        "_observer",
        "_on_next",
        "_pending",
        "_policy",
        "_raised",
        "_refusal_waited",
        "_rng",
        "_scheduler",
        "_source",
        "_subscribe_scheduler",
        "_timer",
    )

    def __init__(
        self,
        source: Observable[_T],
        observer: abc.ObserverBase[_T],
        subscribe_scheduler: abc.SchedulerBase | None,
        policy: RetryPolicy,
        rng: random.Random,
    ) -> None:
        self._source = source
        self._observer = observer
        self._subscribe_scheduler = subscribe_scheduler
        self._policy = policy
        self._rng = rng
        self._scheduler: abc.SchedulerBase | None = None
        self._attempts = 0
        self._delays: Iterator[float] | None = None
        self._episode_start: float = 0.0
        self._inner = SerialDisposable()
        self._timer: SerialDisposable | None = None
        self._disposed = False
        self._pending = 1
        self._lock = threading.Lock()
        self._no_delays = delays_disabled()
        self._on_next: Callable[[_T], None] = (
            self._on_next_resetting if policy.reset_on_success else self._forward
        )
        self._raised: Exception | None = None
        self._refusal_waited = 0.0

    def start(self) -> None:
        if self._policy.max_elapsed is not None:
            self._episode_start = self._now()
        self._drain(first=True)

    # The scheduler for delays and the clock for the time budget.
    def _time_scheduler(self) -> abc.SchedulerBase:
        scheduler = self._scheduler
        if scheduler is None:
            scheduler = choose_scheduler(
                self._policy.scheduler, self._subscribe_scheduler
            )
            self._scheduler = scheduler
        return scheduler

    def _now(self) -> float:
        return seconds_now(self._time_scheduler())

    def _drain(self, first: bool = False) -> None:
        source, observer = self._source, self._observer
        checks_values = self._policy.retry_if_result is not None
        while True:
            if self._disposed:
                return
            if checks_values:
                attempt = _CheckedAttempt(self)
                self._inner.disposable = attempt.subscription
                attempt.subscription.disposable = source.subscribe(
                    attempt.on_next,
                    attempt.on_error,
                    attempt.on_completed,
                    scheduler=self._subscribe_scheduler,
                )
            else:
                self._inner.disposable = source.subscribe(
                    self._on_next,
                    self._on_error,
                    observer.on_completed,
                    scheduler=self._subscribe_scheduler,
                )
            with self._lock:
                self._pending -= 1
                if not self._pending:
                    return
            if first:
                # The first attempt failed synchronously, inside our own subscribe
                # call: our caller does not hold our disposable yet, so a downstream
                # take(n) could not stop an endless loop here. Loop on once the
                # subscribe call has returned, from the current thread's trampoline.
                CurrentThreadScheduler.singleton().schedule(self._on_trampoline)
                return

    def _on_trampoline(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        self._drain()

    def _resubscribe(self) -> None:
        with self._lock:
            self._pending += 1
            if self._pending != 1:
                return
        self._drain()

    def _forward(self, value: _T) -> None:
        try:
            self._observer.on_next(value)
        except Exception as error:
            # Our subscriber's own bug: a synchronous source hands it back to
            # us as on_error (RxPY's rule), and it must not be retried.
            self._raised = error
            raise

    def _on_next_resetting(self, value: _T) -> None:
        self._attempts = 0
        self._delays = None
        self._refusal_waited = 0.0
        if self._policy.max_elapsed is not None:
            self._episode_start = self._now()
        self._forward(value)

    def _on_error(self, error: Exception) -> None:
        if self._disposed:
            return
        if error is self._raised:  # the subscriber's exception belongs to it
            self._observer.on_error(error)
            return
        try:
            delay = self._next_delay(error)
        except Exception as failure:  # a user callback or policy failed
            self._observer.on_error(failure)
            return
        if delay is None:
            self._observer.on_error(error)
        elif delay > 0.0:
            self._schedule_retry(delay)
        else:
            self._resubscribe()

    def _schedule_retry(self, delay: float) -> None:
        timer = self._timer
        if timer is None:
            timer = self._timer = SerialDisposable()
        timer.disposable = self._time_scheduler().schedule_relative(
            delay, self._on_timer
        )
        if self._disposed:  # disposed on another thread before the timer existed
            timer.dispose()

    def _on_timer(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        self._resubscribe()

    def _next_delay(self, error: Exception) -> float | None:
        """The delay before the next attempt, or None to give up with ``error``."""
        if isinstance(error, CallRefusedError):
            return self._refusal_delay(error)
        policy = self._policy
        self._attempts += 1
        attempt = self._attempts
        if policy.max_attempts is not None and attempt >= policy.max_attempts:
            return None
        should_retry = policy._should_retry
        if should_retry is not None and not should_retry(error):
            return None
        delay = 0.0
        backoff = policy._backoff_policy
        if backoff is not None:
            delays = self._delays
            if delays is None:
                delays = self._delays = backoff.delays(self._rng)
            delay = next(delays)
        retry_after = getattr(error, "retry_after", None)
        if is_number(retry_after) and retry_after > delay:
            if retry_after > LONGEST_WAIT:  # "in 300 years", or never: give up now
                return None
            delay = float(retry_after)
        if delay > LONGEST_WAIT:  # a function backoff's answer, as absurd
            return None
        if self._no_delays:  # rxr.testing.no_delays(): every backoff is zero
            delay = 0.0
        if not self._within_budget(delay):
            return None
        if policy.on_retry is not None:
            policy.on_retry(RetryEvent(attempt, delay, error))
        return delay

    def _refusal_delay(self, refusal: CallRefusedError) -> float | None:
        """Wait out a refusal: no attempt used, the backoff left where it is."""
        wait = refusal.retry_after
        if not is_number(wait) or not wait <= LONGEST_WAIT or self._no_delays:
            return None  # unknown, never, or no waiting allowed: end with it
        # Never shorter than a millisecond (and never float() of -10**400).
        wait = float(wait) if wait > _SHORTEST_REFUSAL_WAIT else _SHORTEST_REFUSAL_WAIT
        policy = self._policy
        waited = self._refusal_waited + wait
        if waited > policy.max_refusal_wait + RESOLUTION:
            return None
        if not self._within_budget(wait):
            return None
        self._refusal_waited = waited
        if policy.on_retry is not None:
            policy.on_retry(RetryEvent(self._attempts + 1, wait, refusal, True))
        return wait

    def _within_budget(self, delay: float) -> bool:
        """False when an attempt after ``delay`` would start past ``max_elapsed``."""
        budget = self._policy.max_elapsed
        if budget is None:
            return True
        return self._now() - self._episode_start + delay <= budget + RESOLUTION

    def dispose(self) -> None:
        self._disposed = True
        self._inner.dispose()
        timer = self._timer
        if timer is not None:
            timer.dispose()


class _CheckedAttempt(Generic[_T]):
    """One attempt under ``retry_if_result``: a flagged value ends it as a failure."""

    __slots__ = ("_live", "_run", "subscription")

    def __init__(self, run: _RetryRun[_T]) -> None:
        self._run = run
        self._live = True
        self.subscription = SingleAssignmentDisposable()

    def on_next(self, value: _T) -> None:
        if not self._live:
            return
        run = self._run
        predicate = run._policy.retry_if_result
        assert predicate is not None
        try:
            rejected = predicate(value)
        except Exception as error:
            self._end()
            run._observer.on_error(error)
            return
        if rejected:
            self._end()
            run._on_error(ResultRejectedError(value))
        else:
            run._on_next(value)

    def on_error(self, error: Exception) -> None:
        if self._live:
            self._live = False
            self._run._on_error(error)

    def on_completed(self) -> None:
        if self._live:
            self._live = False
            self._run._observer.on_completed()

    def _end(self) -> None:
        self._live = False
        self.subscription.dispose()
