"""``rxr.resilient``: timeout, circuit breaker, retry and fallback in one order."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc

from ._arguments import require_instance
from ._clock import is_virtual
from ._codec import fingerprint as fingerprint_of
from ._fallback import FallbackLike
from ._fallback import fallback as fallback_operator
from ._retry import RetryPolicy
from ._retry import retry as retry_operator
from ._timeout import AttemptBudget, Budget, per_attempt
from ._timeout import timeout as timeout_operator
from .breaker import CircuitBreaker, circuit_breaker
from .idempotency._operator import idempotent_by_fingerprint
from .idempotency._policy import (
    IdempotencyPolicy,
    require_key,
    warn_without_renewal,
)
from .telemetry._registry import require_policy_name

__all__ = ["resilient"]

_T = TypeVar("_T")

_NO_PAYLOAD: Any = object()


def resilient(
    *,
    timeout: AttemptBudget | None = None,
    retry: RetryPolicy | int | None = None,
    breaker: CircuitBreaker | None = None,
    fallback: FallbackLike = None,
    total_timeout: Budget | None = None,
    idempotency: IdempotencyPolicy | None = None,
    idempotency_key: str | None = None,
    payload: Any = _NO_PAYLOAD,
    scheduler: abc.SchedulerBase | None = None,
    name: str | None = None,
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

    With ``idempotency`` (a call that must take effect once, such as a
    charge), the order becomes::

        fallback( total_timeout( retry( timeout( idempotent( circuit_breaker(
            source ))))))

    - ``idempotent`` sits inside the per-attempt timeout and finishes what it
      starts (``finish_on_dispose``, which must not be False here): an
      attempt that gives up waiting leaves the operation running, and the
      next attempt *joins* it instead of running it again, then gets its
      value (or, once recorded, its replay);
    - the breaker sits inside ``idempotent``, so a replay of a recorded
      outcome never touches the breaker (it is served while the breaker is
      OPEN), and the breaker sees the real call once: its outcome when it
      ends, whatever attempts gave up waiting for it. Attempt timeouts are
      not counted by the breaker in this order; a slow call counts through
      ``slow_call_duration`` if the breaker has a slow-call rule.

    To compose them in another order, pipe the single operators yourself
    (see the README's "Where each operator goes").

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
        idempotency: an :class:`IdempotencyPolicy`: run the call once per
            ``idempotency_key`` (its ``finish_on_dispose`` None means True).
        idempotency_key: the key of this call; required with ``idempotency``.
        payload: what the call carries, fingerprinted as for
            ``rxr.idempotent``.
        scheduler: for the timeouts and the retry's delays (a policy's own
            scheduler wins), else the subscribe-time scheduler. With a
            ``breaker``, it must keep the same kind of time as the breaker's
            clock: both virtual or both real.
        name: the name of the parts' telemetry events (the timeouts, the
            retry and the fallback); a policy given with a name of its own
            keeps it, and a breaker always keeps its own.

    Returns:
        An operator function for ``Observable.pipe``.

    Raises:
        ValueError: no part given, a bad budget, a ``scheduler`` in virtual
            time with a ``breaker`` on the real clock (or the reverse), or an
            ``idempotency`` policy with ``finish_on_dispose=False``.
        TypeError: a part of the wrong type; ``idempotency`` without
            ``idempotency_key``, or either of those without the other.
    """
    if name is not None:
        require_policy_name("name", name)
    parts: list[Callable[[Any], Any]] = []
    attempt_timeout: Callable[[Any], Any] | None = None
    if timeout is not None:
        policy = per_attempt("timeout", timeout)
        attempt_timeout = timeout_operator(
            policy, scheduler=scheduler, name=_own_name(name, policy.name, "timeout")
        )
        if idempotency is None:
            parts.append(attempt_timeout)
    if breaker is not None:
        require_instance("breaker", breaker, CircuitBreaker)
        _require_one_kind_of_time("scheduler", scheduler, breaker)
        parts.append(circuit_breaker(breaker))
    if idempotency is not None:
        parts.append(_idempotent_part(idempotency, idempotency_key, payload))
        if attempt_timeout is not None:  # outside: an attempt may give up waiting
            parts.append(attempt_timeout)
    elif idempotency_key is not None or payload is not _NO_PAYLOAD:
        raise TypeError("idempotency_key and payload need idempotency= (a policy)")
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, RetryPolicy | int):
            raise TypeError(
                f"retry must be a RetryPolicy or a number of attempts, got "
                f"{type(retry).__name__}"
            )
        retry_policy = retry if isinstance(retry, RetryPolicy) else RetryPolicy(retry)
        if name is not None and retry_policy.name == "retry":
            retry_policy = dataclasses.replace(retry_policy, name=name)
        if breaker is not None:
            _require_one_kind_of_time(
                "retry.scheduler", retry_policy.scheduler, breaker
            )
        if retry_policy.scheduler is None and scheduler is not None:
            # A policy's own scheduler wins over resilient's.
            parts.append(retry_operator(retry_policy, scheduler=scheduler))
        else:
            parts.append(retry_operator(retry_policy))
    if total_timeout is not None:
        parts.append(
            timeout_operator(total=total_timeout, scheduler=scheduler, name=name)
        )
    if fallback is not None:
        parts.append(fallback_operator(fallback, name=name or "fallback"))
    if not parts:
        raise ValueError(
            "resilient needs at least one part: timeout, retry, breaker, "
            "idempotency, fallback or total_timeout"
        )

    def apply(source: Observable[_T]) -> Observable[_T]:
        result: Any = source
        for part in parts:
            result = part(result)
        return result  # type: ignore[no-any-return]

    return apply


def _own_name(given: str | None, own: str, default: str) -> str | None:
    """``given`` for a part whose policy kept its default name, else None (keep)."""
    return given if given is not None and own == default else None


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


def _idempotent_part(
    policy: IdempotencyPolicy, key: str | None, payload: Any
) -> Callable[[Any], Any]:
    """``idempotent`` as ``resilient`` places it: it finishes what it starts."""
    require_instance("idempotency", policy, IdempotencyPolicy)
    if key is None:
        raise TypeError("idempotency= needs idempotency_key=, the key of this call")
    if policy.finish_on_dispose is False:
        raise ValueError(
            "resilient(idempotency=...) needs finish_on_dispose True (or None): an "
            "attempt that times out disposes its subscription, and the operation "
            "it started must run on, so that the next attempt joins it instead of "
            "running it again; leave finish_on_dispose=None"
        )
    decided = policy.with_finish_on_dispose(True)
    warn_without_renewal(decided.store)
    fingerprint = None if payload is _NO_PAYLOAD else fingerprint_of(payload)
    return idempotent_by_fingerprint(decided, require_key(key), fingerprint)
