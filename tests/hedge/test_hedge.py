"""``rxr.hedge`` in virtual time: the first answer wins, exactly one attempt passes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import reactivex as rx
from hypothesis import given
from hypothesis import strategies as st
from reactivex import abc
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.testing import assert_no_pending, laws, pending_items, run

from ..test_docstrings import marble_events, marble_source, sketch
from ._model import (
    OUTCOMES,
    AttemptFailed,
    AttemptRejected,
    Attempts,
    messages,
    model,
    should_hedge,
)


class Boom(Exception):
    pass


def attempts(scheduler: TestScheduler, *scripts: tuple[float, str]) -> Attempts:
    return Attempts(scheduler, [messages(i, s) for i, s in enumerate(scripts)])


def hedged(
    scheduler: TestScheduler, operator: Any, *scripts: tuple[float, str]
) -> tuple[rxr.testing.Trace, Attempts]:
    source = attempts(scheduler, *scripts)
    trace = run(lambda: source.source().pipe(operator), scheduler=scheduler)
    return trace, source


# --- the example and the docstring's sketch ---------------------------------


def test_a_slow_first_attempt_loses_to_a_fast_hedge_which_emits_at_three() -> None:
    """First answers after 5 s, second after 1 s, delay 2: the item comes at t=3
    from the second attempt, and the first is disposed at t=3."""
    scheduler = TestScheduler()
    trace, source = hedged(scheduler, rxr.hedge(2), (5, "ok"), (1, "ok"))
    trace.assert_events(
        [(3.0, "next", "1a"), (3.0, "next", "1b"), (3.0, "completed", None)]
    )
    assert source.subscriptions() == [(0.0, 3.0), (2.0, 3.0)]
    assert_no_pending(scheduler)


def test_the_marble_sketch_matches_the_operator() -> None:
    lines = sketch(rxr.hedge)
    origin, first = lines["attempt 1"]
    drawn = [lines[f"attempt {k}"] for k in (1, 2)]
    scheduler = TestScheduler()
    starts: list[float] = []
    disposed: list[float] = []

    def factory(_: Any) -> rx.Observable[str]:
        marbles = drawn[len(starts)][1].split()[0]
        starts.append(scheduler.clock)
        return marble_source(scheduler, marbles).pipe(
            ops.finally_action(lambda: disposed.append(scheduler.clock))
        )

    events = run(
        lambda: rx.defer(factory).pipe(rxr.hedge(2)), scheduler=scheduler
    ).events
    observed = [
        (time, kind, type(value) if kind == "error" else value)
        for time, kind, value in events
    ]
    result_column, result = lines["result"]
    assert result_column == origin
    assert observed == marble_events(result)
    assert [float(column - origin) for column, _ in drawn] == starts
    assert disposed == [
        3.0,
        4.0,
    ]  # the first at 3 ("disposed at tick 3"), the winner ends at 4
    assert first.split()[0] == "-----a|"


# --- exactly one attempt's notifications (against the reference model) --------------

Played = tuple[list[tuple[Any, ...]], list[tuple[float, float | None]]]


def play(
    notes: list[list[Any]],
    make: Callable[[TestScheduler, rx.Observable[Any]], rx.Observable[Any]],
) -> Played:
    """The notifications and the attempts' (start, end) of ``make(source)``,
    disposed at ``HORIZON``."""
    scheduler = TestScheduler()
    source = Attempts(scheduler, notes)
    trace = run(
        lambda: make(scheduler, source.source()),
        scheduler=scheduler,
        dispose_at=HORIZON,
    )
    return [tuple(e) for e in trace.events], source.subscriptions()


def piped(operator: Any) -> Callable[[TestScheduler, rx.Observable[Any]], Any]:
    return lambda _, source: source.pipe(operator)


LATENCIES = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 5.0]),
    # Eighths: sums stay exact in floats, as the scheduler's clock keeps them.
    st.integers(0, 80).map(lambda n: n / 8),
)
SCRIPTS = st.lists(
    st.tuples(LATENCIES, st.sampled_from(OUTCOMES)), min_size=1, max_size=6
)
DELAYS = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 4.5])
HORIZON = 1000.0


@given(
    scripts=SCRIPTS,
    max_hedges=st.integers(1, 5),
    delays=st.lists(DELAYS, min_size=5, max_size=5),
    constant=st.booleans(),
)
def test_the_output_is_exactly_the_winning_attempts_notifications(
    scripts: list[tuple[float, str]],
    max_hedges: int,
    delays: list[float],
    constant: bool,
) -> None:
    """Against a model: every notification and every attempt's subscription and
    disposal time, for random latencies and outcomes, constant or varying waits."""
    if constant:
        delays = [delays[0]] * 5
        delay: Any = delays[0]
    else:
        delay = _Listed(delays)
    notes = [messages(i, s) for i, s in enumerate(scripts)]
    scheduler = TestScheduler()
    source = Attempts(scheduler, notes)
    operator = rxr.hedge(delay, max_hedges, should_hedge=should_hedge)
    trace = run(
        lambda: source.source().pipe(operator), scheduler=scheduler, dispose_at=HORIZON
    )
    expected = model(notes, delays, max_hedges, dispose_at=HORIZON)
    assert [tuple(e) for e in trace.events] == expected.events
    assert source.subscriptions() == expected.subscriptions
    assert_no_pending(scheduler)
    # The model's own sanity: exactly one attempt's notifications, shifted (or,
    # when all failed, one attempt's error: an earlier one beats a refusal).
    starts = [start for start, _ in expected.subscriptions]
    assert len(starts) <= 1 + max_hedges
    if [kind for _, kind, _ in expected.events] == ["error"]:
        [(_, _, error)] = expected.events
        assert any(
            error is payload
            for i in range(len(starts))
            for _, _, payload in notes[min(i, len(notes) - 1)]
        )
    elif expected.events:
        assert any(
            expected.events
            == [(starts[i] + t, k, p) for t, k, p in notes[min(i, len(notes) - 1)]]
            for i in range(len(starts))
        )


class _Listed(rxr.Backoff):
    """Given delays, then the last again (a backoff the model can read)."""

    __slots__ = ("_delays",)

    def __init__(self, delays: list[float]) -> None:
        self._delays = list(delays)

    def delays(self, rng: Any) -> Any:
        yield from self._delays
        while True:
            yield self._delays[-1]


@given(
    scripts=st.lists(
        st.tuples(
            LATENCIES, st.sampled_from(["ok", "empty", "fail", "partial", "hang"])
        ),
        min_size=1,
        max_size=4,
    ),
    max_hedges=st.integers(1, 3),
    delay=st.sampled_from([0.5, 1.0, 2.0, 3.0]),
)
def test_without_hedging_on_errors_it_is_rxpy_amb_of_delayed_subscriptions(
    scripts: list[tuple[float, str]], max_hedges: int, delay: float
) -> None:
    """``hedge(d, n, should_hedge=never)`` is RxPY's ``amb`` (the first
    notification wins) of the source and, after d, the same again, n deep:
    the same notifications and the same subscriptions, ties included."""
    notes = [messages(i, s) for i, s in enumerate(scripts)]

    def ours(
        scheduler: TestScheduler, source: rx.Observable[Any]
    ) -> rx.Observable[Any]:
        return source.pipe(rxr.hedge(delay, max_hedges, should_hedge=lambda e: False))

    def theirs(
        scheduler: TestScheduler, source: rx.Observable[Any]
    ) -> rx.Observable[Any]:
        def attempt(hedges_left: int) -> rx.Observable[Any]:
            if not hedges_left:
                return source
            later = rx.timer(delay, scheduler=scheduler).pipe(
                ops.flat_map(lambda _: attempt(hedges_left - 1))
            )
            return source.pipe(ops.amb(later))  # the source is subscribed first

        return attempt(max_hedges)

    assert play(notes, ours) == play(notes, theirs)


@given(
    script=st.tuples(LATENCIES, st.sampled_from(["ok", "empty", "partial", "hang"])),
    max_hedges=st.integers(1, 4),
)
def test_hedges_that_never_fire_change_nothing(
    script: tuple[float, str], max_hedges: int
) -> None:
    """With a delay longer than the source takes, the output is the source's own."""
    notes = [messages(0, script)]
    assert play(notes, piped(rxr.hedge(1e6, max_hedges))) == play(
        notes, piped(ops.map(lambda x: x))
    )


@given(
    script=st.tuples(
        LATENCIES, st.sampled_from([o for o in OUTCOMES if o != "refuse"])
    ),
    max_hedges=st.integers(1, 4),
)
def test_when_no_error_is_hedged_and_no_hedge_fires_it_is_the_source(
    script: tuple[float, str], max_hedges: int
) -> None:
    """Refusals aside (they are hedged whatever ``should_hedge`` says)."""
    notes = [messages(0, script)]
    never = rxr.hedge(1e6, max_hedges, should_hedge=lambda e: False)
    assert play(notes, piped(never)) == play(notes, piped(ops.map(lambda x: x)))


# --- answers, failures, should_hedge, refusals -----------------------------------------


def test_an_answer_within_the_delay_never_hedges_and_leaves_no_timer() -> None:
    scheduler = TestScheduler()
    trace, source = hedged(scheduler, rxr.hedge(2, 3), (1.5, "ok"))
    trace.assert_values("0a", "0b").assert_completed(at=1.5)
    assert source.subscriptions() == [(0.0, 1.5)]
    assert_no_pending(scheduler)


def test_completion_without_items_is_an_answer_and_wins() -> None:
    scheduler = TestScheduler()
    trace, source = hedged(scheduler, rxr.hedge(1), (5, "ok"), (1, "empty"))
    assert [tuple(e) for e in trace.events] == [(2.0, "completed", None)]
    assert source.subscriptions() == [(0.0, 2.0), (1.0, 2.0)]


def test_hedges_follow_each_other_a_delay_apart_up_to_max_hedges() -> None:
    scheduler = TestScheduler()
    trace, source = hedged(scheduler, rxr.hedge(1, 3), (10, "hang"))
    assert source.subscriptions() == [
        (0.0, None),
        (1.0, None),
        (2.0, None),
        (3.0, None),
    ]
    assert trace.events == []
    assert pending_items(scheduler) == []  # no fifth attempt, no timer


def test_a_backoff_gives_each_hedge_its_own_wait() -> None:
    scheduler = TestScheduler()
    delay = rxr.LinearBackoff(initial=1.0, step=2.0)
    _, source = hedged(scheduler, rxr.hedge(delay, 3), (100, "hang"))
    assert [start for start, _ in source.subscriptions()] == [0.0, 1.0, 4.0, 9.0]


def test_a_zero_delay_starts_every_attempt_at_once() -> None:
    scheduler = TestScheduler()
    trace, source = hedged(scheduler, rxr.hedge(0, 2), (3, "ok"), (1, "ok"), (2, "ok"))
    trace.assert_values("1a", "1b").assert_completed(at=1.0)
    assert source.subscriptions() == [(0.0, 1.0), (0.0, 1.0), (0.0, 1.0)]


def test_a_failure_starts_the_next_hedge_at_once_and_the_wait_restarts_from_it() -> (
    None
):
    """Delay 3: attempt 1 fails at 1, so attempt 2 starts at 1 (not 3), and
    attempt 3 follows 3 s after attempt 2, at 4."""
    scheduler = TestScheduler()
    trace, source = hedged(
        scheduler, rxr.hedge(3, 2), (1, "fail"), (10, "ok"), (1, "ok")
    )
    trace.assert_values("2a", "2b").assert_completed(at=5.0)
    assert source.subscriptions() == [(0.0, 1.0), (1.0, 5.0), (4.0, 5.0)]
    assert_no_pending(scheduler)


def test_a_failure_when_no_hedge_is_left_waits_for_the_attempts_still_running() -> None:
    scheduler = TestScheduler()
    trace, source = hedged(scheduler, rxr.hedge(1, 1), (5, "ok"), (1, "fail"))
    trace.assert_values("0a", "0b").assert_completed(at=5.0)
    assert source.subscriptions() == [(0.0, 5.0), (1.0, 2.0)]


def test_when_every_attempt_fails_the_subscriber_gets_the_newest_error() -> None:
    scheduler = TestScheduler()
    source = attempts(scheduler, (4, "fail"), (1, "fail"), (1, "fail"))
    trace = run(lambda: source.source().pipe(rxr.hedge(1, 2)), scheduler=scheduler)
    trace.assert_error(AttemptFailed, at=4.0)
    assert trace.error is source.notes[0][0][2]  # attempt 1 failed last, at 4
    assert source.subscriptions() == [(0.0, 4.0), (1.0, 2.0), (2.0, 3.0)]
    assert_no_pending(scheduler)


def test_a_synchronous_failure_of_every_attempt_gives_the_last_error_at_once() -> None:
    errors = [Boom(i) for i in range(4)]
    calls: list[int] = []

    def failing(_: Any) -> rx.Observable[Any]:
        calls.append(1)
        return rx.throw(errors[len(calls) - 1])

    trace = run(lambda: rx.defer(failing).pipe(rxr.hedge(5, 3)))
    assert trace.error is errors[3]
    assert len(calls) == 4


def test_an_error_should_hedge_rejects_ends_the_hedge_at_once() -> None:
    scheduler = TestScheduler()
    source = attempts(scheduler, (10, "ok"), (1, "reject"), (10, "ok"))
    trace = run(
        lambda: source.source().pipe(rxr.hedge(1, 2, should_hedge=should_hedge)),
        scheduler=scheduler,
    )
    trace.assert_error(AttemptRejected, at=2.0)
    assert trace.error is source.notes[1][0][2]
    assert source.subscriptions() == [(0.0, 2.0), (1.0, 2.0)]  # no third attempt
    assert_no_pending(scheduler)


def test_should_hedge_takes_an_exception_type() -> None:
    scheduler = TestScheduler()
    source = attempts(scheduler, (1, "fail"), (1, "ok"))
    hedged_on = run(
        lambda: source.source().pipe(rxr.hedge(5, should_hedge=AttemptFailed)),
        scheduler=scheduler,
    )
    hedged_on.assert_values("1a", "1b")
    scheduler = TestScheduler()
    source = attempts(scheduler, (1, "fail"), (1, "ok"))
    refused = run(
        lambda: source.source().pipe(rxr.hedge(5, should_hedge=KeyError)),
        scheduler=scheduler,
    )
    refused.assert_error(AttemptFailed, at=1.0)


def test_a_should_hedge_that_raises_ends_the_hedge_with_its_exception() -> None:
    bug = RuntimeError("predicate bug")

    def predicate(error: Exception) -> bool:
        raise bug

    scheduler = TestScheduler()
    source = attempts(scheduler, (5, "ok"), (1, "fail"))
    trace = run(
        lambda: source.source().pipe(rxr.hedge(1, 1, should_hedge=predicate)),
        scheduler=scheduler,
    )
    assert trace.error is bug
    assert trace.ended_at == 2.0
    assert source.subscriptions() == [(0.0, 2.0), (1.0, 2.0)]
    assert_no_pending(scheduler)


def test_the_winners_own_error_passes_on_and_is_not_hedged() -> None:
    scheduler = TestScheduler()
    trace, source = hedged(scheduler, rxr.hedge(1, 2), (2, "partial"), (5, "ok"))
    trace.assert_values("0a").assert_error(AttemptFailed, at=2.0)
    assert source.subscriptions() == [(0.0, 2.0), (1.0, 2.0)]


def test_a_refusal_is_that_attempts_failure_and_should_hedge_is_not_asked() -> None:
    asked: list[Exception] = []

    def predicate(error: Exception) -> bool:
        asked.append(error)
        return False

    scheduler = TestScheduler()
    trace, source = hedged(
        scheduler,
        rxr.hedge(10, 1, should_hedge=predicate),
        (0, "refuse"),
        (1, "ok"),
    )
    trace.assert_values("1a", "1b").assert_completed(at=1.0)
    assert source.subscriptions() == [(0.0, 0.0), (0.0, 1.0)]
    assert asked == []


def test_when_every_attempt_is_refused_the_subscriber_gets_the_newest_refusal() -> None:
    scheduler = TestScheduler()
    source = attempts(scheduler, (2, "refuse"), (0, "refuse"))
    trace = run(lambda: source.source().pipe(rxr.hedge(1)), scheduler=scheduler)
    assert trace.error is source.notes[0][0][2]
    assert trace.ended_at == 2.0


def test_a_call_that_ran_and_failed_beats_a_later_refusal() -> None:
    """So a retry outside counts an attempt instead of waiting out a refusal."""
    scheduler = TestScheduler()
    source = attempts(scheduler, (1, "fail"), (1, "refuse"))
    trace = run(lambda: source.source().pipe(rxr.hedge(5)), scheduler=scheduler)
    assert trace.error is source.notes[0][0][2]
    assert trace.ended_at == 2.0


def test_an_open_breaker_inside_refuses_every_attempt_and_a_retry_outside_waits() -> (
    None
):
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(1, reset_timeout=10.0, scheduler=scheduler)
    rx.throw(Boom()).pipe(rxr.circuit_breaker(breaker)).subscribe(
        on_error=lambda e: None
    )
    calls: list[float] = []

    def call(_: Any) -> rx.Observable[str]:
        calls.append(scheduler.clock)
        return rx.of("ok")

    trace = run(
        lambda: rx.defer(call).pipe(
            rxr.circuit_breaker(breaker), rxr.hedge(1, 2), rxr.retry(2)
        ),
        scheduler=scheduler,
    )
    trace.assert_values("ok").assert_completed(at=10.0)
    assert calls == [10.0]  # three refusals at 0, one attempt's wait: no call spent


# --- subscribers, synchronous sources, schedulers ----------------------------------


def test_a_synchronous_answer_wins_before_any_timer_is_armed() -> None:
    scheduler = TestScheduler()
    calls: list[int] = []

    def call(_: Any) -> rx.Observable[int]:
        calls.append(1)
        return rx.of(1, 2)

    trace = run(lambda: rx.defer(call).pipe(rxr.hedge(1, 5)), scheduler=scheduler)
    trace.assert_values(1, 2).assert_completed(at=0.0)
    assert calls == [1]
    assert (
        scheduler._queue.items == []
    )  # nothing was ever scheduled, not even cancelled


def test_a_subscriber_that_raises_is_never_a_reason_to_hedge() -> None:
    """A synchronous source hands the subscriber's exception back as on_error:
    it travels on as RxPY lets it, exactly as without the hedge."""

    def outcome(operator: Any) -> tuple[list[Any], int]:
        calls: list[int] = []
        received: list[Any] = []

        def call(_: Any) -> rx.Observable[int]:
            calls.append(1)
            return rx.of(1, 2)

        def on_next(value: int) -> None:
            received.append(value)
            raise Boom("subscriber bug")

        try:
            rx.defer(call).pipe(operator).subscribe(on_next, received.append)
        except Boom as error:
            received.append(error)
        return [type(x) if isinstance(x, Exception) else x for x in received], len(
            calls
        )

    outcomes = [outcome(rxr.hedge(1, 3)), outcome(ops.map(lambda x: x))]
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1] == 1


def test_a_subscriber_raising_on_a_timer_driven_winner_starts_no_new_attempt() -> None:
    scheduler = TestScheduler()
    source = attempts(scheduler, (3, "ok"), (5, "ok"))

    def on_next(_: Any) -> None:
        raise Boom("subscriber bug")

    source.source().pipe(rxr.hedge(1, 3)).subscribe(on_next, scheduler=scheduler)
    with pytest.raises(Boom):  # out of the scheduler, as RxPY lets it
        scheduler.advance_to(10.0)
    # The losers were disposed when the winner answered, at 3; no hedge is left
    # armed: only the rest of the winner's own notifications are still queued.
    assert source.subscriptions() == [(0.0, None), (1.0, 3.0), (2.0, 3.0)]
    left = pending_items(scheduler)
    assert [scheduler.to_seconds(item.duetime) for item in left] == [3.0, 3.0]


def test_the_operators_scheduler_carries_the_timer_and_the_subscribe_time_one_the_source() -> (
    None
):
    own, subscribed = TestScheduler(), TestScheduler()
    source = attempts(subscribed, (10, "hang"))
    source.source().pipe(rxr.hedge(2, scheduler=own)).subscribe(scheduler=subscribed)
    subscribed.advance_to(5.0)
    assert len(source.spans) == 1  # the hedge's timer is on `own`, not here
    own.advance_to(2.0)
    assert len(source.spans) == 2


def test_a_scheduler_that_refuses_the_timer_ends_the_hedge_with_its_error() -> None:
    class Closed(TestScheduler):
        def schedule_relative(
            self, duetime: Any, action: Any, state: Any = None
        ) -> Any:
            if state is not None:  # our hedge timer (the source's carry no state)
                raise RuntimeError("Event loop is closed")
            return super().schedule_relative(duetime, action, state)

    scheduler = Closed()
    trace, source = hedged(scheduler, rxr.hedge(1), (5, "ok"))
    trace.assert_error(RuntimeError, at=0.0)
    assert source.subscriptions() == [(0.0, 0.0)]
    assert_no_pending(scheduler)


def test_a_huge_max_hedges_hedges_until_an_attempt_answers() -> None:
    calls: list[int] = []

    def call(_: Any) -> rx.Observable[str]:
        calls.append(1)
        return rx.throw(Boom()) if len(calls) < 50 else rx.of("ok")

    trace = run(lambda: rx.defer(call).pipe(rxr.hedge(1e9, 10**400)))
    trace.assert_values("ok").assert_completed(at=0.0)
    assert len(calls) == 50


def test_ten_thousand_synchronous_failures_use_constant_stack() -> None:
    calls: list[int] = []
    error = Boom()

    def call(_: Any) -> rx.Observable[str]:
        calls.append(1)
        return rx.throw(error)

    trace = run(lambda: rx.defer(call).pipe(rxr.hedge(1.0, 10_000)))
    assert trace.error is error
    assert len(calls) == 10_001


# --- disposal ---------------------------------------------------------------------


@given(
    scripts=SCRIPTS,
    max_hedges=st.integers(1, 4),
    delay=DELAYS,
    dispose_at=st.integers(0, 24).map(lambda n: n / 2),
)
def test_disposal_at_any_instant_leaves_no_attempt_and_no_timer(
    scripts: list[tuple[float, str]], max_hedges: int, delay: float, dispose_at: float
) -> None:
    notes = [messages(i, s) for i, s in enumerate(scripts)]
    scheduler = TestScheduler()
    source = Attempts(scheduler, notes)
    trace = run(
        lambda: source.source().pipe(
            rxr.hedge(delay, max_hedges, should_hedge=should_hedge)
        ),
        scheduler=scheduler,
        dispose_at=dispose_at,
    )
    assert all(
        end is not None and end <= dispose_at for _, end in source.subscriptions()
    )
    assert_no_pending(scheduler)
    expected = model(notes, [delay] * max_hedges, max_hedges, dispose_at=dispose_at)
    before = [tuple(e) for e in trace.events]
    # What arrived before the disposal is what the model says (the disposal was
    # scheduled first, so it comes before anything due at that instant).
    assert before == [e for e in expected.events if e[0] < dispose_at]
    assert source.subscriptions() == expected.subscriptions
    scheduler.advance_to(HORIZON)
    assert [tuple(e) for e in trace.events] == before


@pytest.mark.parametrize("dispose_at", [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.5, 7.0])
def test_the_disposal_law_holds(dispose_at: float) -> None:
    laws.disposal_leaves_nothing_behind(rxr.hedge(0.5, 2), dispose_at)
    laws.disposal_leaves_nothing_behind(
        rxr.hedge(rxr.ConstantBackoff(1.0), 3), dispose_at
    )


def test_disposing_from_inside_the_winners_on_next_stops_everything() -> None:
    scheduler = TestScheduler()
    source = attempts(scheduler, (5, "ok"), (1, "ok"))
    received: list[Any] = []
    holder: list[abc.DisposableBase] = []

    def on_next(value: Any) -> None:
        received.append(value)
        holder[0].dispose()

    holder.append(
        source.source().pipe(rxr.hedge(1)).subscribe(on_next, scheduler=scheduler)
    )
    scheduler.advance_to(100.0)
    assert received == ["1a"]
    assert source.subscriptions() == [(0.0, 2.0), (1.0, 2.0)]
    assert_no_pending(scheduler)


def test_the_winner_chosen_while_a_later_attempt_is_being_subscribed() -> None:
    """Attempt 1 answers from inside attempt 2's subscribe: attempt 2 is disposed
    as soon as its subscribe returns, and what it emitted meanwhile never passes."""
    first: Subject[str] = Subject()
    disposed: list[str] = []

    def second(observer: abc.ObserverBase[str], _: Any = None) -> abc.DisposableBase:
        first.on_next("first")  # attempt 1 wins, here
        observer.on_next("second")  # the loser's item, dropped
        return rx.disposable.Disposable(lambda: disposed.append("second"))

    sources = iter(
        [
            first.pipe(ops.finally_action(lambda: disposed.append("first"))),
            rx.create(second),
        ]
    )
    scheduler = TestScheduler()
    trace = run(
        lambda: rx.defer(lambda _: next(sources)).pipe(rxr.hedge(1)),
        scheduler=scheduler,
        until=10.0,
    )
    trace.assert_values("first")
    assert disposed == ["second"]
    assert_no_pending(scheduler)


def test_a_loser_whose_disposal_raises_is_logged_and_the_winner_still_passes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = TestScheduler()
    calls: list[int] = []

    def cleanup() -> None:
        raise Boom("cleanup failed")

    def call(_: Any) -> rx.Observable[str]:
        calls.append(1)
        if len(calls) == 1:
            return rx.never().pipe(ops.finally_action(cleanup))
        return rx.timer(1.0, scheduler=scheduler).pipe(ops.map(lambda _: "b"))

    trace = run(lambda: rx.defer(call).pipe(rxr.hedge(1)), scheduler=scheduler)
    trace.assert_values("b").assert_completed(at=2.0)
    assert "disposing a hedged attempt raised" in caplog.text
    assert_no_pending(scheduler)
