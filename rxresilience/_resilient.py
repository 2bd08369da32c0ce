"""``rxr.resilient``: the patterns for a call to a service, in one documented order."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc

from ._arguments import is_number, require_duration, require_instance
from ._bulkhead import Bulkhead
from ._bulkhead_operator import bulkhead as bulkhead_operator
from ._clock import is_virtual
from ._codec import fingerprint as fingerprint_of
from ._fallback import FallbackLike
from ._fallback import fallback as fallback_operator
from ._hedge import hedge as hedge_operator
from ._hedge_policy import HedgePolicy
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
from .rate_limit import RateLimiter
from .rate_limit import rate_limit as rate_limit_operator
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
    rate_limit: RateLimiter | None = None,
    bulkhead: Bulkhead | None = None,
    hedge: HedgePolicy | float | None = None,
    idempotency: IdempotencyPolicy | None = None,
    idempotency_key: str | None = None,
    payload: Any = _NO_PAYLOAD,
    scheduler: abc.SchedulerBase | None = None,
    name: str | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Apply the given patterns in one documented order; every part is optional.

    From the outside in::

        fallback( total_timeout( retry( hedge( rate_limit( bulkhead(
            circuit_breaker( timeout( source ))))))))

    which is ``source.pipe(rxr.timeout(...), rxr.circuit_breaker(breaker),
    rxr.bulkhead(bulkhead), rxr.rate_limit(limiter), rxr.hedge(...),
    rxr.retry(...), rxr.timeout(total=...), rxr.fallback(...))``. ``fallback``
    and ``total_timeout`` apply once per call; ``retry`` makes the attempts;
    ``hedge`` applies per retry attempt (one attempt is one hedged group);
    ``rate_limit``, ``bulkhead``, ``circuit_breaker`` and ``timeout`` apply
    per hedged attempt (without ``hedge``: per attempt). Why this order:

    - the per-attempt ``timeout`` is innermost, so a hanging attempt is
      abandoned, and its ``TimeoutError`` is an error like any other: the
      breaker counts it and the retry retries it; the waits for a permit or
      a slot come before it, so they are not charged to the attempt's budget
      (a wait for a slot is bounded by the bulkhead's own ``max_wait``, and
      every wait by ``total_timeout``);
    - the breaker sits inside the retry, so every attempt is one call to the
      breaker, and a refusal (``CircuitOpenError``, a ``CallRefusedError``)
      carries the ``retry_after`` that makes the retry wait until a trial is
      allowed: a refusal uses up no attempt, and the waits are bounded by the
      retry policy's ``max_refusal_wait`` and ``max_elapsed``;
    - the ``bulkhead`` sits outside the breaker, so a call it sheds
      (``BulkheadFullError``) is never counted as a failure of the service;
      its ``retry_after`` is None, so the retry gives up at once: load is
      shed, not retried;
    - ``rate_limit`` sits outside the bulkhead (a call waiting for its permit
      holds no slot) and outside the breaker (a refusal by the limiter is
      never a failure of the service; a permit is spent when the breaker
      then refuses, as in Microsoft.Extensions.Http.Resilience). It sits
      inside the retry, so every attempt, every request the service sees,
      takes a permit: the attempt waits for it on a timer (bounded by
      ``total_timeout``), and a ``RateLimitedError`` (a refusal, as from a
      Redis storage that refuses while Redis is unreachable) is waited out
      by the retry without spending an attempt;
    - ``hedge`` sits inside the retry and outside the per-attempt parts:
      every hedged attempt takes its own permit, slot, breaker decision and
      attempt timeout. One retry attempt is one hedged group: when every
      hedged attempt failed, the retry counts one attempt; when every one
      was refused, the retry waits out the refusal. An attempt still waiting
      for its permit or its slot is slow to the hedge, which may start the
      next one;
    - ``total_timeout`` bounds everything, retries and their waits included;
    - ``fallback`` is outermost, so it receives the final error, whatever it
      was (a total timeout included), and replaces it.

    With ``idempotency`` (a call that must take effect once, such as a
    charge), the order becomes::

        fallback( total_timeout( retry( timeout( idempotent( hedge(
            rate_limit( bulkhead( circuit_breaker( source )))))))))

    Here ``timeout`` applies per retry attempt, bounding its wait; the
    hedge, the limiter, the bulkhead and the breaker apply to the one
    execution per key (the last three per hedged attempt of it): an attempt
    that joins it, or gets its replay, takes none of them.

    - ``idempotent`` sits inside the per-attempt timeout and finishes what it
      starts (``finish_on_dispose``, which must not be False here): an
      attempt that gives up waiting leaves the operation running, and the
      next attempt *joins* it instead of running it again, then gets its
      value (or, once recorded, its replay). The attempt timeout then bounds
      the wait for the execution, the waits for a permit and a slot
      included, never the execution itself;
    - ``idempotent`` goes outside the ``hedge``: inside, a second hedged
      attempt would join the first, still-slow execution and no second
      request would be sent. The hedged attempts carry no attempt timeout of
      their own; hedge only a call that carries a server-side idempotency
      key, since both hedged requests may take effect;
    - the breaker, the bulkhead and the limiter sit inside ``idempotent``,
      so a replay of a recorded outcome touches none of them (it is served
      while the breaker is OPEN, and takes no permit and no slot), and the
      breaker sees the real call once: its outcome when it ends, whatever
      attempts gave up waiting for it. Attempt timeouts are not counted by
      the breaker in this order; a slow call counts through
      ``slow_call_duration`` if the breaker has a slow-call rule.

    To compose them in another order, pipe the single operators yourself
    (see "Where each operator goes" in the documentation).

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
        >>> read = resilient(
        ...     rate_limit=RateLimiter(rate=100, per=1.0, burst=10),
        ...     bulkhead=Bulkhead(max_concurrent=10),
        ...     hedge=0.2,
        ...     retry=3,
        ... )
        >>> rx.of("quote").pipe(read).run()
        'quote'

    Args:
        timeout: per attempt (per hedged attempt; with ``idempotency``,
            per retry attempt): seconds or a ``timedelta`` (as
            ``rxr.timeout(each)``), or a :class:`TimeoutPolicy`.
        retry: per call, making the attempts: a :class:`RetryPolicy`, or a
            number of attempts with the default backoff.
        breaker: per attempt (per hedged attempt): a :class:`CircuitBreaker`.
        fallback: per call: what to continue with on any final error: a
            value, an ``Observable`` or ``function(error) -> Observable``.
        total_timeout: per call: a budget for everything, or an absolute
            deadline.
        rate_limit: per attempt (per hedged attempt): a :class:`RateLimiter`;
            each attempt waits for its permit (``rxr.rate_limit(limiter)``).
        bulkhead: per attempt (per hedged attempt): a :class:`Bulkhead`; each
            attempt holds a slot while its call runs.
        hedge: per retry attempt: a :class:`HedgePolicy`, or the seconds to
            wait for an answer before one hedge (``HedgePolicy(hedge)``).
        idempotency: per call: an :class:`IdempotencyPolicy`: run the call
            once per ``idempotency_key`` (its ``finish_on_dispose`` None means
            True).
        idempotency_key: the key of this call; required with ``idempotency``.
        payload: what the call carries, fingerprinted as for
            ``rxr.idempotent``.
        scheduler: for the timeouts, the retry's delays, the limiter's waits,
            the bulkhead's ``max_wait`` and the hedges (a policy's own
            scheduler wins), else the subscribe-time scheduler. With a
            ``breaker`` or a ``rate_limit``, it must keep the same kind of
            time as their clocks: all virtual or all real.
        name: the name of the parts' telemetry events (the timeouts, the
            hedge, the retry and the fallback); a policy given with a name of
            its own keeps it, and a breaker, a rate limiter and a bulkhead
            (shared objects) always keep their own.

    Returns:
        An operator function for ``Observable.pipe``.

    Raises:
        ValueError: no part given, a bad budget or hedge delay, a
            ``scheduler`` in virtual time with a ``breaker`` or
            ``rate_limit`` on the real clock (or the reverse), or an
            ``idempotency`` policy with ``finish_on_dispose=False``.
        TypeError: a part of the wrong type; ``idempotency`` without
            ``idempotency_key``, or either of those without the other.
    """
    if name is not None:
        require_policy_name("name", name)
    clocks = _clocks(breaker, rate_limit)
    parts: list[Callable[[Any], Any]] = []  # from the inside out
    attempt_timeout: Callable[[Any], Any] | None = None
    if timeout is not None:
        policy = per_attempt("timeout", timeout)
        attempt_timeout = timeout_operator(
            policy, scheduler=scheduler, name=_own_name(name, policy.name, "timeout")
        )
        if idempotency is None:
            parts.append(attempt_timeout)
    if breaker is not None:
        parts.append(circuit_breaker(breaker))
    if bulkhead is not None:
        require_instance("bulkhead", bulkhead, Bulkhead)
        parts.append(bulkhead_operator(bulkhead, scheduler=scheduler))
    if rate_limit is not None:
        parts.append(rate_limit_operator(rate_limit, scheduler=scheduler))
    _require_one_kind_of_time("scheduler", scheduler, clocks)
    if hedge is not None:
        hedge_policy = _hedge_policy(hedge)
        parts.append(
            hedge_operator(
                hedge_policy,
                scheduler=scheduler,
                name=_own_name(name, hedge_policy.name, "hedge"),
            )
        )
    if idempotency is not None:
        parts.append(_idempotent_part(idempotency, idempotency_key, payload))
        if attempt_timeout is not None:  # outside: an attempt may give up waiting
            parts.append(attempt_timeout)
    elif idempotency_key is not None or payload is not _NO_PAYLOAD:
        raise TypeError("idempotency_key and payload need idempotency= (a policy)")
    if retry is not None:
        parts.append(_retry_part(retry, name, scheduler, clocks))
    if total_timeout is not None:
        parts.append(
            _named(
                "total_timeout",
                "total",
                lambda: timeout_operator(
                    total=total_timeout, scheduler=scheduler, name=name
                ),
            )
        )
    if fallback is not None:
        parts.append(
            fallback_operator(fallback, name=name or "fallback", scheduler=scheduler)
        )
    if not parts:
        raise ValueError(
            "resilient needs at least one part: timeout, retry, breaker, "
            "rate_limit, bulkhead, hedge, idempotency, fallback or total_timeout"
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


# A policy that keeps its own clock: (kind, name, scheduler), for the message.
_Clock = tuple[str, str, abc.SchedulerBase | None]


def _clocks(
    breaker: CircuitBreaker | None, limiter: RateLimiter | None
) -> list[_Clock]:
    """The clocks of the shared policies given, each checked for its type."""
    clocks: list[_Clock] = []
    if breaker is not None:
        require_instance("breaker", breaker, CircuitBreaker)
        clocks.append(("breaker", breaker.name, breaker.scheduler))
    if limiter is not None:
        require_instance("rate_limit", limiter, RateLimiter)
        clocks.append(("rate limiter", limiter.name, limiter.scheduler))
    return clocks


def _require_one_kind_of_time(
    name: str, scheduler: abc.SchedulerBase | None, clocks: list[_Clock]
) -> None:
    """Refuse a virtual pipeline around a breaker or limiter on the real clock,
    or the reverse: the retry would wait a refusal's ``retry_after`` (the
    limiter its permit's wait) on the wrong clock and be refused again."""
    if scheduler is None:
        return
    for kind, policy, own in clocks:
        if is_virtual(scheduler) == is_virtual(own):
            continue
        runs = "virtual time" if is_virtual(scheduler) else "real time"
        keeps = (
            f"virtual time ({type(own).__name__})"
            if is_virtual(own)
            else "the real clock"
        )
        made_as = "CircuitBreaker" if kind == "breaker" else "RateLimiter"
        raise ValueError(
            f"resilient({name}={type(scheduler).__name__}) runs in {runs}, but "
            f"{kind} {policy!r} keeps {keeps}: give the {kind} the same "
            f"scheduler ({made_as}(..., scheduler=...))"
        )


def _hedge_policy(hedge: object) -> HedgePolicy:
    """``hedge=`` as a policy: a ``HedgePolicy``, or seconds as its delay."""
    if isinstance(hedge, HedgePolicy):
        return hedge
    if not is_number(hedge):
        raise TypeError(
            f"hedge must be a HedgePolicy or a number of seconds, got "
            f"{type(hedge).__name__}"
        )
    return HedgePolicy(require_duration("hedge", hedge))


def _retry_part(
    retry: object,
    name: str | None,
    scheduler: abc.SchedulerBase | None,
    clocks: list[_Clock],
) -> Callable[[Any], Any]:
    """The retry as ``resilient`` places it: its name and scheduler decided."""
    if isinstance(retry, bool) or not isinstance(retry, RetryPolicy | int):
        raise TypeError(
            f"retry must be a RetryPolicy or a number of attempts, got "
            f"{type(retry).__name__}"
        )
    policy = (
        retry
        if isinstance(retry, RetryPolicy)
        else _named("retry", "max_attempts", lambda: RetryPolicy(retry))
    )
    if name is not None and policy.name == "retry":
        policy = dataclasses.replace(policy, name=name)
    _require_one_kind_of_time("retry.scheduler", policy.scheduler, clocks)
    if policy.scheduler is None and scheduler is not None:
        # A policy's own scheduler wins over resilient's.
        return retry_operator(policy, scheduler=scheduler)
    return retry_operator(policy)


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


_Part = TypeVar("_Part")


def _named(argument: str, inner: str, build: Callable[[], _Part]) -> _Part:
    """``build()``; a refusal of its ``inner`` argument names ``argument``, the
    one the caller of ``resilient`` passed."""
    try:
        return build()
    except (TypeError, ValueError) as error:
        message = str(error)
        if not message.startswith(f"{inner} "):
            raise
        raise type(error)(argument + message[len(inner) :]) from None
