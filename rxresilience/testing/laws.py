"""Laws: plain functions raising ``AssertionError``, for any ``@given`` test.

Each law takes what it needs to build the pipeline under test and checks a
property that must hold for every input. They run in virtual time.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import reactivex as rx
from reactivex import abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable
from reactivex.testing import TestScheduler

from .._backoff import Backoff
from .._clock import RESOLUTION
from .._retry import RetryPolicy, retry
from .._timeout import timeout
from ..breaker import CircuitBreaker, circuit_breaker
from ..errors import CircuitOpenError
from ..errors import TimeoutError as ResilienceTimeoutError
from ..idempotency import idempotent
from ..saga._events import StepCompensated
from ..saga._saga import Saga
from ..stores._memory import InMemoryIdempotencyStore
from ._bulkhead_laws import bulkhead_never_exceeds_its_concurrency
from ._flaky import flaky
from ._hedge_laws import (
    HEDGE_OUTCOMES,
    HedgedAttemptError,
    hedging_emits_exactly_one_attempts_notifications,
)
from ._rate_limit_laws import (
    admissions_fit_the_rate,
    pace_delivers_every_item_in_order_within_the_rate,
    rate_limit_never_exceeds_the_rate,
)
from ._trace import assert_no_pending, run

__all__ = [
    "HEDGE_OUTCOMES",
    "HedgedAttemptError",
    "admissions_fit_the_rate",
    "backoff_schedule_is_sane",
    "breaker_admits_at_most_n_trials",
    "breaker_never_subscribes_while_open",
    "breaker_transitions_are_legal",
    "bulkhead_never_exceeds_its_concurrency",
    "disposal_leaves_nothing_behind",
    "hedging_emits_exactly_one_attempts_notifications",
    "idempotent_runs_once_per_key",
    "pace_delivers_every_item_in_order_within_the_rate",
    "rate_limit_never_exceeds_the_rate",
    "retry_exhausts_after_exactly_n_subscriptions",
    "retry_is_transparent_without_failures",
    "retry_succeeds_after_fewer_failures_than_attempts",
    "saga_compensates_exactly_the_succeeded_steps_in_reverse",
    "timeout_fires_exactly_at_the_deadline",
    "timeout_is_identity_when_every_gap_fits",
]


def _no_delay_policy(policy: RetryPolicy) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=policy.max_attempts,
        backoff=policy.backoff,
        should_retry=None,
        max_elapsed=None,
    )


def retry_succeeds_after_fewer_failures_than_attempts(
    policy: RetryPolicy, failures: int
) -> None:
    """With k < n failures, the source is subscribed k + 1 times and the value arrives."""
    policy = _no_delay_policy(policy)
    attempts = policy.max_attempts
    if attempts is not None and failures >= attempts:
        return
    source = flaky(["ok"], failures=failures)
    trace = run(lambda: source.pipe(retry(policy, rng=random.Random(0))))
    trace.assert_values("ok").assert_completed()
    assert source.calls == failures + 1, f"{source.calls} calls for {failures} failures"


def retry_exhausts_after_exactly_n_subscriptions(
    attempts: int, backoff: Backoff | float | None = None
) -> None:
    """Exhaustion delivers the last attempt's own error after exactly n subscriptions."""
    errors = [RuntimeError(f"attempt {i}") for i in range(1, attempts + 1)]
    source = flaky(["never"], failures=attempts, error=lambda call: errors[call - 1])
    trace = run(
        lambda: source.pipe(retry(attempts, backoff=backoff, rng=random.Random(0)))
    )
    assert source.calls == attempts, (
        f"{source.calls} subscriptions for {attempts} attempts"
    )
    assert trace.error is errors[-1], (
        f"got {trace.error!r}, not the last attempt's error"
    )


def retry_is_transparent_without_failures(
    values: Sequence[Any],
    repeats: int = 1,
    *,
    operator: Callable[[], Callable[[rx.Observable[Any]], rx.Observable[Any]]]
    | None = None,
) -> None:
    """On a source that never fails, retry changes nothing, under ``repeat`` too.

    ``operator`` makes the operator (or pipeline) under test, such as your own
    ``lambda: rxr.resilient(...)``; default ``rxr.retry(3)``. Any pipeline of
    retries, breakers, timeouts and fallbacks should pass on a source that
    never fails. The law runs in virtual time (a ``TestScheduler``): give a
    breaker inside it a virtual clock too (any ``TestScheduler``).
    """
    make = operator if operator is not None else (lambda: retry(3))
    plain = run(lambda: rx.from_iterable(values).pipe(ops.repeat(repeats)))
    retried = run(lambda: rx.from_iterable(values).pipe(make(), ops.repeat(repeats)))
    assert retried.events == plain.events, f"{retried.events} != {plain.events}"


def backoff_schedule_is_sane(
    policy: Backoff, *, attempts: int = 20, seed: int = 0
) -> None:
    """Delays are finite and non-negative, and a seeded rng repeats them exactly."""
    first = policy.sample(attempts, random.Random(seed))
    again = policy.sample(attempts, random.Random(seed))
    assert first == again, "a seeded rng must give the same delays"
    for delay in first:
        assert math.isfinite(delay), delay
        assert delay >= 0, delay
    cap = getattr(policy, "max_delay", None)
    if cap is not None:
        assert max(first, default=0.0) <= cap, f"a delay above max_delay={cap}"


def _items_at(times: Sequence[float], *, complete: bool) -> rx.Observable[int]:
    """A cold source emitting ``i`` at ``times[i]`` after subscription."""

    def subscribe(
        observer: abc.ObserverBase[int], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        assert scheduler is not None, "laws run on a virtual-time scheduler"

        def emit(index: int) -> Callable[..., None]:
            return lambda *_: observer.on_next(index)

        scheduled = [
            scheduler.schedule_relative(t, emit(i)) for i, t in enumerate(times)
        ]
        if complete:
            scheduled.append(
                scheduler.schedule_relative(
                    times[-1] if times else 0.0, lambda *_: observer.on_completed()
                )
            )
        return CompositeDisposable(scheduled)

    return rx.create(subscribe)


def timeout_is_identity_when_every_gap_fits(gaps: Sequence[int], budget: float) -> None:
    """If the first item and every gap come within the budget, nothing changes."""
    if any(gap >= budget for gap in gaps[:1]) or any(gap > budget for gap in gaps):
        return
    times = [float(sum(gaps[: i + 1])) for i in range(len(gaps))]
    plain = run(lambda: _items_at(times, complete=True))
    timed = run(lambda: _items_at(times, complete=True).pipe(timeout(budget)))
    assert timed.events == plain.events, f"{timed.events} != {plain.events}"


def timeout_fires_exactly_at_the_deadline(gaps: Sequence[int], budget: int) -> None:
    """On a source that stalls, our error arrives exactly at the last item's time
    plus the budget, and the source is disposed at that very tick.

    The tie rule is ``ops.timeout``'s for a cold source: the first deadline is
    scheduled before the source, so a first item exactly at the budget is too
    late; a later item exactly at its gap's deadline was scheduled before
    that deadline's timer, so it is in time.
    """
    times = [float(sum(gaps[: i + 1])) for i in range(len(gaps))]
    last = 0.0
    for index, t in enumerate(times):
        late = t - last >= budget if index == 0 else t - last > budget
        if late:
            break
        last = t
    expected_at = last + budget
    disposed: list[float] = []

    def source(scheduler: TestScheduler) -> rx.Observable[int]:
        return _items_at(times, complete=False).pipe(
            ops.finally_action(lambda: disposed.append(float(scheduler.clock)))
        )

    trace = run(
        lambda s: source(s).pipe(timeout(float(budget))), until=expected_at + 100
    )
    trace.assert_error(ResilienceTimeoutError, at=expected_at)
    assert disposed == [expected_at], (
        f"source disposed at {disposed}, not {expected_at}"
    )


_LEGAL = {
    ("closed", "open"),
    ("open", "half-open"),
    ("half-open", "open"),
    ("half-open", "closed"),
}


def breaker_transitions_are_legal(
    breaker: CircuitBreaker, drive: Callable[[CircuitBreaker], None]
) -> None:
    """Every transition ``drive`` causes is one of the state machine's (manual ones aside)."""
    seen: list[Any] = []
    subscription = breaker.state_changes.subscribe(seen.append)
    try:
        drive(breaker)
    finally:
        subscription.dispose()
    for change in seen:
        manual = change.reason in ("forced open", "disabled", "reset")
        pair = (change.previous.value, change.current.value)
        assert manual or pair in _LEGAL, f"illegal transition {pair} ({change.reason})"
    for earlier, later in itertools.pairwise(seen):
        assert earlier.current is later.previous, "transitions must chain"


def breaker_never_subscribes_while_open(
    breaker: CircuitBreaker, calls: int = 10
) -> None:
    """While the breaker refuses, the source is never subscribed and the error is ours."""
    source = flaky(["x"], failures=0)
    for _ in range(calls):
        state = breaker.state.value
        wait = breaker.retry_after()
        # Within the clock's resolution of the reset timeout, a call is a trial.
        refusing = state == "forced-open" or (
            state == "open" and (wait or 0.0) > RESOLUTION
        )
        if not refusing:
            return
        before = source.calls
        trace = run(lambda: source.pipe(circuit_breaker(breaker)))
        assert source.calls == before, (
            "the source was subscribed while the breaker refused"
        )
        assert isinstance(trace.error, CircuitOpenError), f"got {trace.error!r}"


def breaker_admits_at_most_n_trials(breaker: CircuitBreaker, attempts: int) -> None:
    """In HALF_OPEN, at most ``half_open_max_calls`` calls are in flight.

    The calls it makes never end on their own: they are disposed at the end,
    so the breaker's trial permits go back (it was left half-open, every
    permit held, refusing calls for good).
    """
    source = flaky(["x"], failures=["hang"])
    calls = [
        source.pipe(circuit_breaker(breaker)).subscribe(on_error=lambda _: None)
        for _ in range(attempts)
    ]
    try:
        limit = breaker.config.half_open_max_calls
        if breaker.state.value == "half-open":
            assert source.calls <= limit, (
                f"{source.calls} trials in flight, limit {limit}"
            )
    finally:
        for call in calls:
            call.dispose()


def idempotent_runs_once_per_key(
    keys: Sequence[str],
    *,
    operator_for: Callable[[str], Callable[[rx.Observable[Any]], rx.Observable[Any]]]
    | None = None,
) -> None:
    """Whatever the order of requests, each key's source runs once.

    ``operator_for(key)`` makes the operator under test for one key, such as
    your own ``lambda key: rxr.idempotent(my_policy, key=key)`` (its store
    must start empty for these keys); default ``rxr.idempotent`` on a fresh
    in-memory store.
    """
    store = InMemoryIdempotencyStore()
    make = (
        operator_for
        if operator_for is not None
        else (lambda key: idempotent(store, key=key))
    )
    runs: dict[str, int] = {}

    def call(key: str) -> rx.Observable[str]:
        def source(_: Any) -> rx.Observable[str]:
            runs[key] = runs.get(key, 0) + 1
            # answered at the same virtual instant, once every request of
            # the merge below is subscribed: they overlap, no time passes
            return rx.timer(0.0).pipe(ops.map(lambda _: f"result {key}"))

        return rx.defer(source).pipe(make(key))

    # One after another, then all at once: requests of one key overlapping
    # while its first run is under way (an operator that remembers a key only
    # once it completes runs the source again then).
    for key in keys:
        assert run(lambda key=key: call(key)).values == [f"result {key}"]
    assert all(count == 1 for count in runs.values()), runs
    runs.clear()
    store = InMemoryIdempotencyStore()  # the default operator's, afresh
    fresh = [f"{key} (at once)" for key in keys]
    answers = run(
        lambda: rx.merge(*(call(key) for key in fresh)) if fresh else rx.empty()
    ).values
    assert sorted(answers) == sorted(f"result {key}" for key in fresh), answers
    assert all(count == 1 for count in runs.values()), runs


def saga_compensates_exactly_the_succeeded_steps_in_reverse(
    steps: int, failing: int
) -> None:
    """A failure at step k compensates steps k-1 .. 0, in that order, each once."""
    undone: list[int] = []
    saga: Saga[int] = Saga("law")
    for index in range(steps):
        saga.step(
            f"s{index}",
            execute=(
                lambda ctx, i=index: (
                    rx.throw(RuntimeError(i)) if i == failing else rx.of(ctx + 1)
                )
            ),
            compensate=lambda ctx, i=index: undone.append(i),
        )
    events = run(lambda: saga.execute(0)).values
    expected = list(reversed(range(min(failing, steps)))) if failing < steps else []
    assert undone == expected, f"compensated {undone}, expected {expected}"
    compensated = [e.step for e in events if isinstance(e, StepCompensated)]
    assert compensated == [f"s{i}" for i in expected]


def disposal_leaves_nothing_behind(
    operator: Callable[[rx.Observable[Any]], rx.Observable[Any]], dispose_at: float
) -> None:
    """After disposal no source subscription is open and nothing is left pending.

    The source fails its first call and hangs in the next ones, each after
    one second, so the operator is caught mid-attempt or mid-wait.
    """
    scheduler = TestScheduler()
    source = flaky(["x"], failures=["fail", "hang"], latency=1.0)
    run(lambda: source.pipe(operator), dispose_at=dispose_at, scheduler=scheduler)
    still_open = [start for start, end in source.subscriptions if end is None]
    assert not still_open, f"source subscriptions still open since {still_open}"
    assert_no_pending(scheduler)


def __dir__() -> list[str]:
    """The public names only (not the helpers this module imports)."""
    return sorted(__all__)
