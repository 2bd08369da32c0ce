"""``rxr.resilient``: timeout, circuit breaker, retry and fallback in one order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from reactivex import Observable, abc

from ._breaker import CircuitBreaker
from ._circuit_breaker import circuit_breaker
from ._clock import is_virtual
from ._fallback import FallbackLike
from ._fallback import fallback as fallback_operator
from ._retry import RetryPolicy
from ._retry import retry as retry_operator
from ._timeout import Budget, TimeoutPolicy
from ._timeout import timeout as timeout_operator

__all__ = ["resilient"]

_T = TypeVar("_T")


def resilient(
    *,
    timeout: float | timedelta | TimeoutPolicy | None = None,
    retry: RetryPolicy | int | None = None,
    breaker: CircuitBreaker | None = None,
    fallback: FallbackLike = None,
    total_timeout: Budget | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Apply the given patterns in one documented order; every part is optional.

    From the outside in::

        fallback( total_timeout( retry( circuit_breaker( timeout( source ))))))

    which is ``source.pipe(rxr.timeout(...), rxr.circuit_breaker(breaker),
    rxr.retry(...), rxr.timeout(total=...), rxr.fallback(...))``. Why this
    order:

    - the per-attempt ``timeout`` is innermost, so a hanging attempt is
      abandoned, and its ``TimeoutError`` is an error like any other: the
      breaker counts it and the retry retries it;
    - the breaker sits inside the retry, so every attempt is one call to the
      breaker, and a refusal (``CircuitOpenError``, a ``CallRefusedError``)
      carries the ``retry_after`` that makes the retry wait until a trial is
      allowed: a refusal uses up no attempt, and the waits are bounded by the
      retry policy's ``max_refusal_wait`` and ``max_elapsed``;
    - ``total_timeout`` bounds everything, retries and their waits included;
    - ``fallback`` is outermost, so it receives the final error, whatever it
      was (a total timeout included), and replaces it.

    To compose them in another order, pipe the single operators yourself
    (see the README).

    An exception raised by the subscriber's own ``on_next`` is never taken
    for the source's failure: no part counts it, retries it or falls back
    on it; it travels on as RxPY lets it.

    Examples:
        >>> import reactivex as rx
        >>> breaker = CircuitBreaker(failure_threshold=5, reset_timeout=30.0)
        >>> fetch = resilient(
        ...     timeout=5.0,
        ...     retry=RetryPolicy(max_attempts=3, backoff=None),
        ...     breaker=breaker,
        ...     fallback=lambda error: rx.of("cached"),
        ... )
        >>> rx.throw(ConnectionError("down")).pipe(fetch).run()
        'cached'

    Args:
        timeout: the per-attempt budget: seconds or a ``timedelta`` (as
            ``rxr.timeout(each)``), or a :class:`TimeoutPolicy`.
        retry: a :class:`RetryPolicy`, or a number of attempts with the
            default backoff.
        breaker: a :class:`CircuitBreaker` guarding every attempt.
        fallback: what to continue with on any final error: a value, an
            ``Observable`` or ``function(error) -> Observable``.
        total_timeout: a budget for everything, or an absolute deadline.
        scheduler: for the timeouts and the retry's delays (a policy's own
            scheduler wins), else the subscribe-time scheduler. With a
            ``breaker``, it must keep the same kind of time as the breaker's
            clock: both virtual or both real.

    Returns:
        An operator function for ``Observable.pipe``.

    Raises:
        ValueError: no part given, a bad budget, or a ``scheduler`` in virtual
            time with a ``breaker`` on the real clock (or the reverse).
        TypeError: a part of the wrong type.
    """
    parts: list[Callable[[Any], Any]] = []
    if timeout is not None:
        policy = timeout if isinstance(timeout, TimeoutPolicy) else None
        if policy is None:
            if not isinstance(timeout, int | float | timedelta) or isinstance(
                timeout, bool
            ):
                raise TypeError(
                    "timeout must be seconds, a timedelta or a TimeoutPolicy, got "
                    f"{type(timeout).__name__}"
                )
            policy = TimeoutPolicy(each=timeout)
        parts.append(timeout_operator(policy, scheduler=scheduler))
    if breaker is not None:
        if not isinstance(breaker, CircuitBreaker):
            raise TypeError(
                f"breaker must be a CircuitBreaker, got {type(breaker).__name__}"
            )
        _require_one_kind_of_time("scheduler", scheduler, breaker)
        parts.append(circuit_breaker(breaker))
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, RetryPolicy | int):
            raise TypeError(
                f"retry must be a RetryPolicy or a number of attempts, got "
                f"{type(retry).__name__}"
            )
        retry_policy = retry if isinstance(retry, RetryPolicy) else RetryPolicy(retry)
        if breaker is not None:
            _require_one_kind_of_time(
                "retry.scheduler", retry_policy.scheduler, breaker
            )
        # A policy's own scheduler wins over resilient's.
        given = None if retry_policy.scheduler is not None else scheduler
        parts.append(retry_operator(retry_policy, scheduler=given))
    if total_timeout is not None:
        parts.append(timeout_operator(total=total_timeout, scheduler=scheduler))
    if fallback is not None:
        parts.append(fallback_operator(fallback))
    if not parts:
        raise ValueError(
            "resilient needs at least one part: timeout, retry, breaker, fallback "
            "or total_timeout"
        )

    def apply(source: Observable[_T]) -> Observable[_T]:
        result: Any = source
        for part in parts:
            result = part(result)
        return result  # type: ignore[no-any-return]

    return apply


def _require_one_kind_of_time(
    name: str, scheduler: abc.SchedulerBase | None, breaker: CircuitBreaker
) -> None:
    """Refuse a virtual pipeline around a breaker on the real clock, or the reverse:
    the retry would wait the breaker's ``retry_after`` on the wrong clock and be
    refused again."""
    if scheduler is None or is_virtual(scheduler) == is_virtual(breaker.scheduler):
        return
    kind = "virtual time" if is_virtual(scheduler) else "real time"
    breaker_kind = (
        f"virtual time ({type(breaker.scheduler).__name__})"
        if is_virtual(breaker.scheduler)
        else "the real clock"
    )
    raise ValueError(
        f"resilient({name}={type(scheduler).__name__}) runs in {kind}, but "
        f"breaker {breaker.name!r} keeps {breaker_kind}: give the breaker the "
        f"same scheduler (CircuitBreaker(..., scheduler=...))"
    )
