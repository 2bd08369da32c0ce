"""``rxr.idempotent``: an operation keyed by an idempotency key runs once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc
from typing_extensions import Unpack

from .._codec import fingerprint as fingerprint_of
from ..stores._base import IdempotencyStore
from ._execution import join
from ._policy import (
    IdempotencyOptions,
    IdempotencyPolicy,
    policy_from,
    require_key,
)

__all__ = ["idempotent", "idempotent_by_fingerprint"]

_T = TypeVar("_T")

_NO_PAYLOAD: Any = object()


def idempotent(
    store: IdempotencyStore | IdempotencyPolicy,
    *,
    key: str,
    payload: Any = _NO_PAYLOAD,
    **options: Unpack[IdempotencyOptions],
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Run the source once per idempotency key; duplicates get the recorded outcome.

    ::

        first subscription:   --a--b--|     runs the source, records a, b, |
        later subscriptions:  (ab|)         replay the record, source untouched

    The first subscription claims ``key`` in ``store`` (atomically), runs the
    source, and records its values and completion. Later subscriptions, in
    this process or any other sharing the store, replay the record without
    subscribing to the source. Subscriptions that arrive in this process
    while the key is in flight join the running execution and see the same
    values. A duplicate in another process waits, polling the store every
    ``poll_interval`` on the scheduler, and then replays (or, with
    ``on_in_progress="error"``, fails with ``IdempotencyInProgressError``).

    Errors are not recorded unless ``record_errors`` matches them: the claim
    is released and the error delivered, so a ``retry`` placed outside runs
    the source again. A recorded error replays as ``rxr.RecordedError``
    (its type name and message: nothing is unpickled).

    A claim is a lease of ``in_progress_timeout`` seconds, which the owner
    renews every third of it while the source runs: the lease measures how
    fast a *dead* owner is detected (a waiting duplicate then claims the key
    and runs the source), not how long the operation may take. A renewal
    answered "not yours" disposes the source, records nothing and ends with
    ``IdempotencyClaimLostError``; one that cannot reach the store is tried
    again at the next tick, and the execution ends so only once the lease has
    run out on our clock. ``max_run`` bounds a hung but live owner: at
    ``max_run`` the source is disposed, renewal stops, the claim is kept until
    its lease lapses (the outcome is unknown) and subscribers get
    ``rxr.TimeoutError`` (budget ``"max_run"``); a duplicate waiting in
    another process waits at most ``max_run``, then fails with
    ``IdempotencyInProgressError``. A store written for 0.1, without
    ``renew``, keeps 0.1's unrenewed leases (a ``RuntimeWarning`` says so).

    A value the codec cannot encode (a ``Decimal``, a ``datetime``, a
    response object) arrives after the side effect happened: the source runs
    on to its own end, a marker is recorded instead of the outcome, and the
    subscribers get ``IdempotencyCodecError`` (``ran=True``, naming the key
    and the type) at once; duplicates get the same error until the ``ttl``
    ends, and the operation never runs again for the key. Map the value to
    JSON before ``idempotent``, or pass ``codec=``.

    A subscriber whose ``on_next`` raises gets its own exception as
    ``on_error`` and is detached alone; the source runs on to its own end,
    which is recorded (as with ``finish_on_dispose=True``), and the other
    subscribers are unaffected.

    Under asyncio (an ``AsyncIOScheduler`` at subscribe time, as
    ``rxr.to_async`` sets up, or as ``scheduler``) a store whose calls may
    block (SQLite, Redis, PostgreSQL: ``store.calls_may_block``) is called on
    a few threads of the library's own, never on the event loop, and the
    execution goes on, on the loop, with each answer (renewals run on a thread
    timer); the times written (a lease, the ``ttl``) are read when the call
    is made. Without an ``AsyncIOScheduler`` every store call is made on the
    caller's thread: so under RxPY's own ``await observable`` or
    ``ops.to_future()``, or a plain ``subscribe()`` in a coroutine, a
    blocking store is called on the loop; use ``rxr.to_async`` or pass an
    ``AsyncIOScheduler``. (A running loop is not guessed at: answers handed
    back to it would never arrive for a caller blocking it, such as
    ``observable.run()`` inside a coroutine.) If the loop closes while the
    source runs, the claim is renewed no more and kept until its lease
    lapses, as for a crashed process.

    Disposal: the execution is disposed when its last subscriber disposes,
    and its claim released (a claim won while the disposal happened is
    released at once, and the source never starts); the operation's outcome
    is then unknown (it may or may not have taken effect) and a later
    subscription runs it again. With ``finish_on_dispose=True`` the source
    runs on to record its outcome, for operations that must not be left
    half-done (a charge).

    Examples:
        >>> import reactivex as rx
        >>> store = InMemoryIdempotencyStore()
        >>> charges = []
        >>> charge = rx.defer(lambda _: rx.of(charges.append(1) or "ch_1")).pipe(
        ...     idempotent(store, key="charge-42", ttl=3600)
        ... )
        >>> charge.run(), charge.run(), len(charges)
        ('ch_1', 'ch_1', 1)
        >>> policy = IdempotencyPolicy(store, ttl=3600)  # frozen, reusable
        >>> again = rx.defer(lambda _: rx.of("ch_2")).pipe(
        ...     idempotent(policy, key="charge-42")
        ... )
        >>> again.run()
        'ch_1'

    Args:
        store: where claims and outcomes live (``InMemoryIdempotencyStore``,
            ``SQLiteIdempotencyStore``, ...), or an :class:`IdempotencyPolicy`
            holding every option (then only ``key`` and ``payload`` may be
            given beside it).
        key: the idempotency key, a non-empty string.
        ttl: seconds a recorded outcome lives, on the scheduler's clock.
        payload: what the request carries; its fingerprint is recorded, and
            the same key with another payload fails with
            ``IdempotencyKeyReuseError`` and runs nothing.
        in_progress_timeout: the lease of a claim, in seconds, renewed every
            third of it while the source runs.
        max_run: the longest the operation may run, in seconds; default
            unbounded.
        on_in_progress: ``"wait"`` (default) or ``"error"``, for a duplicate
            that finds the key held by another process or store.
        poll_interval: seconds between looks at the store while waiting.
        record_errors: errors to record and replay too (a predicate or
            exception types); default none.
        codec: how outcomes are encoded; default the store's own.
        finish_on_dispose: keep the source running after the last subscriber
            disposes, to record its outcome.
        scheduler: the clock for ``ttl`` and leases and where polls and
            renewals run, else
            the subscribe-time scheduler, else the real clock. Expiries are
            stored as epoch seconds of that clock: processes sharing a store
            must all use real clocks.

    Returns:
        An operator function for ``Observable.pipe``.

    Raises:
        ValueError: an empty key; a ``ttl``, ``in_progress_timeout`` or
            ``poll_interval`` not above 0, not finite, or above
            ``LONGEST_WAIT`` (about 292 years, the longest wait a timer can be
            armed for); an unknown ``on_in_progress``.
        TypeError: a key that is not a string, a payload that cannot be
            fingerprinted, a store or option of the wrong type (a ``bool``
            where seconds go included).
    """
    policy = policy_from(
        "idempotent",
        store,
        options,
    )
    checked_key = require_key(key)
    fingerprint = None if payload is _NO_PAYLOAD else fingerprint_of(payload)
    return idempotent_by_fingerprint(policy, checked_key, fingerprint)


def idempotent_by_fingerprint(
    policy: IdempotencyPolicy, key: str, fingerprint: str | None
) -> Callable[[Observable[_T]], Observable[_T]]:
    """The operator for a decided policy and an already validated key and payload."""

    def apply(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            return join(policy, key, fingerprint, source, observer, scheduler_)

        return Observable(subscribe)

    return apply
