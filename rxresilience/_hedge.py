"""``rxr.hedge``: subscribe again when the source is slow; the first answer wins."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar, overload

from reactivex import Observable, abc

from ._arguments import require_scheduler
from ._hedge_policy import HedgeDelay, HedgePolicy, HedgePredicate
from ._hedge_run import HedgeRun
from ._seeded_random import SeededOnFirstUse
from .telemetry._registry import require_policy_name

__all__ = ["HedgePolicy", "hedge"]

_T = TypeVar("_T")


class _Default:
    """``max_hedges`` left alone (so a policy beside it can be told apart)."""

    def __repr__(self) -> str:
        return "1"


_DEFAULT_MAX_HEDGES: Any = _Default()


@overload
def hedge(
    delay: HedgePolicy,
    /,
    *,
    scheduler: abc.SchedulerBase | None = None,
    name: str | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]: ...


@overload
def hedge(
    delay: HedgeDelay,
    max_hedges: int = 1,
    *,
    should_hedge: HedgePredicate = None,
    scheduler: abc.SchedulerBase | None = None,
    name: str | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]: ...


def hedge(
    delay: HedgeDelay | HedgePolicy,
    max_hedges: int = _DEFAULT_MAX_HEDGES,
    *,
    should_hedge: HedgePredicate = None,
    scheduler: abc.SchedulerBase | None = None,
    name: str | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Subscribe to the source again when it is slow to answer; the first answer wins.

    Each attempt is drawn from the tick it is subscribed, one tick per
    character; the delay is 2 ticks::

        attempt 1:  -----a|   disposed at tick 3, when attempt 2 answers
        attempt 2:    -a|     subscribed at tick 2: no answer yet
        hedge(2)
        result:     ---a|

    The source is subscribed; if it has not answered within ``delay``, it is
    subscribed again, up to ``1 + max_hedges`` subscriptions (attempts) in
    all, each ``delay`` after the one before. The first attempt to emit an
    item, or to complete (completion is an answer), wins: every other
    attempt is disposed at that instant, the pending hedge is cancelled, and
    only the winner's notifications pass, its error included.

    An attempt that fails before anything answered starts the next hedge at
    once, if any remain (the pending one is cancelled; the next after it
    waits ``delay`` from this new start); the others run on. When every
    attempt has failed, the subscriber gets the newest error, as the failing
    attempt raised it. ``should_hedge`` decides which errors are worth
    another attempt: an error it rejects ends the hedge at once (every other
    attempt disposed, the subscriber gets that error); an exception it raises
    ends it the same way, with that exception.

    A refusal (a :class:`~rxresilience.CallRefusedError`, such as a breaker
    or rate limiter inside the hedge refusing an attempt) is that attempt's
    failure: nothing was called, so the next hedge starts at once and
    ``should_hedge`` is not asked. The subscriber gets a refusal only when
    every attempt was refused; if any attempt ran and failed, it gets the
    newest such error, so a ``retry`` outside counts the call as an attempt
    instead of waiting out a refusal. So ``hedge(d, n, should_hedge=lambda
    e: False)`` gives the same notifications and subscriptions as RxPY's
    ``amb`` of the source and, after ``d``, the same again, ``n`` deep, only
    when no attempt is refused: ``amb`` ends with a refusal.

    Hedge only operations that are safe to run twice (reads), or that carry
    a server-side idempotency key: a hedge runs them again while the first
    run may still complete. ``rxr.idempotent`` goes *outside* the hedge,
    never inside: inside, the second attempt would join the first,
    still-slow execution, and no second request would be sent.

    Timers run on ``scheduler``, else the scheduler given to ``subscribe``,
    else ``TimeoutScheduler``. A subscription keeps at most one pending
    timer, armed only once an attempt's ``subscribe`` returned without an
    answer: a source that answers synchronously costs no timer. On a
    scheduler whose every timer is a thread (``TimeoutScheduler``,
    ``NewThreadScheduler``), the hedges of every subscription are deadlines
    on one timer the scheduler's hedges share, and a hedge that fires runs on
    a thread of the scheduler's own: a source that answers soon after
    ``subscribe`` (``rx.of``, from the trampoline) costs no thread. Disposing
    the subscription disposes every attempt and cancels the timer. An
    exception raised by the subscriber's own ``on_next`` is never a reason
    to hedge: it travels on as RxPY lets it.

    While someone listens (:func:`rxresilience.telemetry.events`), each
    hedge reports ``hedge.started`` as it is subscribed (``attempt``: its
    attempt's number, 2 for the first hedge), and a call on which a hedge
    started reports ``hedge.won`` when an attempt answers first (``attempt``:
    the winner's number; ``duration``: seconds from the winner's start), both
    under the policy's ``name``, timed on the hedge timer's scheduler. A
    call answered before any hedge started reports nothing.

    Examples:
        >>> import reactivex as rx
        >>> rx.of("quote").pipe(hedge(0.2)).run()
        'quote'
        >>> fetch_quote = lambda: rx.of("quote")
        >>> quote = rx.defer(lambda _: fetch_quote()).pipe(
        ...     hedge(0.2, max_hedges=2, should_hedge=ConnectionError)
        ... )
        >>> same = rx.defer(lambda _: fetch_quote()).pipe(
        ...     hedge(HedgePolicy(0.2, max_hedges=2, should_hedge=ConnectionError))
        ... )

    Args:
        delay: seconds to wait for an answer before each hedge (0 starts
            every attempt at once), or a :class:`Backoff` policy whose k-th
            delay is the wait before hedge k, counted from the start of the
            attempt before it. A :class:`HedgePolicy` instead gives every
            option at once (only ``scheduler`` and ``name`` may then be
            given beside it).
        max_hedges: the most extra subscriptions (``1 + max_hedges``
            attempts in all).
        should_hedge: which errors start the next hedge: a predicate, an
            exception type, or a tuple of them; ``None`` hedges on every
            error.
        scheduler: where the hedge timer runs, overriding the subscribe-time
            scheduler.
        name: the policy's name on its telemetry events (default: the
            policy's, ``"hedge"``).

    Returns:
        An operator function for ``Observable.pipe``.

    Raises:
        ValueError: ``max_hedges < 1``, or a ``delay`` that is negative, not
            finite, or longer than ``threading.TIMEOUT_MAX``.
        TypeError: an argument of the wrong type (a ``bool`` or ``float``
            ``max_hedges``, a non-callable ``should_hedge``, a ``name`` that
            is not a string), or options beside a :class:`HedgePolicy`.
    """
    if isinstance(delay, HedgePolicy):
        if max_hedges is not _DEFAULT_MAX_HEDGES or should_hedge is not None:
            raise TypeError(
                "hedge() takes either a HedgePolicy or options, not both (only "
                "scheduler= and name= may accompany a policy)"
            )
        policy = delay
        if name is not None:  # renames it: the options stay the policy's
            policy = dataclasses.replace(policy, name=require_policy_name("name", name))
    else:
        policy = HedgePolicy(
            delay,
            1 if max_hedges is _DEFAULT_MAX_HEDGES else max_hedges,
            should_hedge,
            "hedge" if name is None else name,
        )
    require_scheduler("scheduler", scheduler)
    # Jitter of a backoff delay: drawn per operator, seeded on first use.
    rng = SeededOnFirstUse()

    def apply(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            run = HedgeRun(source, observer, scheduler_, policy, scheduler, rng)
            run.start()
            return run

        return Observable(subscribe)

    return apply
