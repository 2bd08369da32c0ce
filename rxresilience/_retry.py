"""``rxr.retry``: resubscribe to a failing source, with backoff, on a scheduler."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar, overload

from reactivex import Observable, abc
from typing_extensions import Unpack

from ._arguments import options_given
from ._retry_policy import (
    OPTION_DEFAULTS,
    RetryEvent,
    RetryOptions,
    RetryPlacement,
    RetryPolicy,
)
from ._retry_run import RetryRun
from ._seeded_random import SeededOnFirstUse

__all__ = ["RetryEvent", "RetryPolicy", "retry"]

_T = TypeVar("_T")


@overload
def retry(
    max_attempts: RetryPolicy, /, **placement: Unpack[RetryPlacement]
) -> Callable[[Observable[_T]], Observable[_T]]: ...


@overload
def retry(
    max_attempts: int | None = 3, **options: Unpack[RetryOptions]
) -> Callable[[Observable[_T]], Observable[_T]]: ...


def retry(
    max_attempts: int | RetryPolicy | None = 3, **options: Unpack[RetryOptions]
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
        name: the policy's name on its telemetry events (``"retry"`` by
            default); see :func:`rxresilience.telemetry.events`, which
            receives ``retry.scheduled``, ``retry.refusal_waited``,
            ``retry.exhausted`` and ``retry.gave_up``.

    Returns:
        An operator function for ``Observable.pipe``.

    Raises:
        ValueError: ``max_attempts < 1``, negative delays, ``jitter`` outside
            [0, 1], ``factor < 1``, a non-positive ``max_elapsed``, a negative
            ``max_refusal_wait``, or a duration that is not finite or longer
            than ``threading.TIMEOUT_MAX``.
        TypeError: an argument of the wrong type, such as a non-callable
            ``should_retry`` or a ``name`` that is not a string.
    """
    # Users build operators per call (inside flat_map): the common cases are cheap.
    if not options and isinstance(max_attempts, RetryPolicy):
        policy = max_attempts
    elif not options and (max_attempts is None or type(max_attempts) is int):
        policy = _default_policy(max_attempts)
    else:
        unknown = options.keys() - OPTION_DEFAULTS.keys()
        if unknown:
            raise TypeError(
                f"retry() got an unexpected keyword argument {min(unknown)!r}"
            )
        if isinstance(max_attempts, RetryPolicy):
            policy = _placed(max_attempts, options)
        else:
            policy = RetryPolicy(max_attempts, **options)
    operator_rng = policy.rng if policy.rng is not None else SeededOnFirstUse()

    def apply(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            run = RetryRun(source, observer, scheduler_, policy, operator_rng)
            run.start()
            return run

        return Observable(subscribe)

    return apply


#: ``retry(n)`` with every other option left alone, by ``n``: users build
#: operators per call (inside ``flat_map``), and a policy is a frozen value.
_DEFAULT_POLICIES: dict[int | None, RetryPolicy] = {}


def _default_policy(max_attempts: int | None) -> RetryPolicy:
    policy = _DEFAULT_POLICIES.get(max_attempts)
    if policy is None:
        policy = RetryPolicy(max_attempts)  # checks it, as ever
        if len(_DEFAULT_POLICIES) < 256:  # a few counts are common; not all
            _DEFAULT_POLICIES[max_attempts] = policy
    return policy


def _placed(policy: RetryPolicy, options: RetryOptions) -> RetryPolicy:
    """``policy`` with the ``rng`` and ``scheduler`` given beside it (None keeps
    the policy's own); any other option given is an error."""
    others = {
        name: value
        for name, value in options.items()
        if name != "rng" and name != "scheduler"
    }
    if options_given(others, OPTION_DEFAULTS):
        raise TypeError(
            "retry() takes either a RetryPolicy or keyword options, not both "
            "(only rng= and scheduler= may accompany a policy)"
        )
    rng, scheduler = options.get("rng"), options.get("scheduler")
    if rng is None and scheduler is None:
        return policy
    return dataclasses.replace(
        policy,
        rng=rng if rng is not None else policy.rng,
        scheduler=scheduler if scheduler is not None else policy.scheduler,
    )
