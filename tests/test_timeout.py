"""``rxr.timeout``: budgets in virtual time, and differential tests against RxPY."""

from __future__ import annotations

import builtins
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import reactivex as rx
from hypothesis import given
from hypothesis import strategies as st
from reactivex import abc
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

import rxresilience as rxr

from ._support import pending, record

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed


class Boom(Exception):
    pass


def kinds(events: list[Any]) -> list[tuple[float, str, Any]]:
    """Events with errors reduced to their type, for comparisons."""
    return [
        (time, kind, type(value) if kind == "error" else value)
        for time, kind, value in events
    ]


# --- each / first / total ----------------------------------------------------------------


def test_each_times_out_a_gap_and_disposes_the_source_at_that_tick() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        on_next(1, "a"), on_next(4, "b"), on_next(11, "c"), on_completed(12)
    )
    events = record(scheduler, lambda: source.pipe(rxr.timeout(3)))
    assert kinds(events) == [
        (201.0, "next", "a"),
        (204.0, "next", "b"),
        (207.0, "error", rxr.TimeoutError),
    ]
    error = events[-1][2]
    assert (error.budget, error.seconds) == ("each", 3.0)
    assert source.subscriptions == [Subscription(200, 207)]


def test_all_gaps_within_the_budget_pass_everything_through() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        on_next(2, "a"), on_next(4, "b"), on_next(6, "c"), on_completed(8)
    )
    events = record(scheduler, lambda: source.pipe(rxr.timeout(2.5)))
    assert kinds(events) == [
        (202.0, "next", "a"),
        (204.0, "next", "b"),
        (206.0, "next", "c"),
        (208.0, "completed", None),
    ]
    assert pending(scheduler) == []


def test_first_overrides_the_budget_of_the_first_item() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        on_next(8, "a"), on_next(9, "b"), on_next(20, "c")
    )
    events = record(scheduler, lambda: source.pipe(rxr.timeout(first=10.0, each=2.0)))
    assert kinds(events) == [
        (208.0, "next", "a"),
        (209.0, "next", "b"),
        (211.0, "error", rxr.TimeoutError),
    ]


def test_a_slow_first_item_reports_the_first_budget() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(30, "late"))
    events = record(scheduler, lambda: source.pipe(rxr.timeout(first=10.0, each=2.0)))
    [(time, kind, error)] = events
    assert (time, kind) == (210.0, "error")
    assert (error.budget, error.seconds) == ("first", 10.0)


def test_first_alone_leaves_later_gaps_unbounded() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        on_next(5, "a"), on_next(500, "b"), on_completed(501)
    )
    events = record(scheduler, lambda: source.pipe(rxr.timeout(first=10.0)))
    assert [kind for _, kind, _ in events] == ["next", "next", "completed"]
    assert pending(scheduler) == []


def test_total_bounds_the_whole_subscription() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        on_next(10, "a"), on_next(20, "b"), on_next(30, "c"), on_completed(40)
    )
    events = record(scheduler, lambda: source.pipe(rxr.timeout(total=25.0)))
    assert kinds(events) == [
        (210.0, "next", "a"),
        (220.0, "next", "b"),
        (225.0, "error", rxr.TimeoutError),
    ]
    assert (events[-1][2].budget, events[-1][2].seconds) == ("total", 25.0)
    assert source.subscriptions == [Subscription(200, 225)]


def test_nothing_gets_through_at_the_total_deadline() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(5, "a"), on_completed(10))
    events = record(scheduler, lambda: source.pipe(rxr.timeout(total=10.0)))
    assert kinds(events) == [(205.0, "next", "a"), (210.0, "error", rxr.TimeoutError)]


def test_each_and_total_together_use_the_earlier_deadline() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        on_next(2, "a"), on_next(4, "b"), on_next(6, "c"), on_next(8, "d")
    )
    events = record(scheduler, lambda: source.pipe(rxr.timeout(3.0, total=7.0)))
    assert kinds(events) == [
        (202.0, "next", "a"),
        (204.0, "next", "b"),
        (206.0, "next", "c"),
        (207.0, "error", rxr.TimeoutError),
    ]
    assert events[-1][2].budget == "total"


def test_budgets_accept_timedeltas_and_aware_datetimes() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(1, "a"), on_next(50, "b"))
    deadline = datetime.fromtimestamp(230, tz=UTC)  # virtual tick 230
    events = record(
        scheduler,
        lambda: source.pipe(rxr.timeout(timedelta(seconds=100), total=deadline)),
    )
    assert kinds(events) == [(201.0, "next", "a"), (230.0, "error", rxr.TimeoutError)]
    assert events[-1][2].seconds == 30.0


def test_an_absolute_each_is_a_fixed_deadline_as_in_rxpy() -> None:
    deadline = datetime.fromtimestamp(210, tz=UTC)

    def run(operator: Any) -> Any:
        scheduler = TestScheduler()
        source = scheduler.create_cold_observable(
            on_next(3, "a"), on_next(6, "b"), on_next(9, "c"), on_next(12, "d")
        )
        return kinds(record(scheduler, lambda: source.pipe(operator)))

    ours = run(rxr.timeout(deadline))
    theirs = run(ops.timeout(deadline))
    assert [e[:2] for e in ours] == [e[:2] for e in theirs]
    assert ours[-1] == (210.0, "error", rxr.TimeoutError)


def test_at_most_one_timer_is_pending_per_subscription() -> None:
    scheduler = TestScheduler()
    counts: list[int] = []
    source = rx.interval(1.0).pipe(ops.take(50))
    source.pipe(rxr.timeout(5.0)).subscribe(
        lambda _: counts.append(len(pending(scheduler))), scheduler=scheduler
    )
    scheduler.advance_to(100)
    # the interval's own next tick plus at most our one timer
    assert len(counts) == 50
    assert max(counts) <= 2


# --- errors, fallback, disposal ---------------------------------------------------------


def test_the_error_is_ours_and_the_builtin_timeout_error() -> None:
    error = rxr.TimeoutError("each", 5.0)
    assert isinstance(error, rxr.ResilienceError)
    assert isinstance(error, builtins.TimeoutError)
    assert isinstance(error, OSError)
    assert str(error) == "each timeout of 5s elapsed"


def test_fallback_replaces_the_timeout_and_receives_the_error() -> None:
    scheduler = TestScheduler()
    seen: list[Exception] = []

    def cached(error: Exception) -> rx.Observable[str]:
        seen.append(error)
        return rx.of("cached")

    source = scheduler.create_cold_observable(on_next(10, "slow"))
    events = record(scheduler, lambda: source.pipe(rxr.timeout(3.0, fallback=cached)))
    assert events == [(203.0, "next", "cached"), (203.0, "completed", None)]
    assert isinstance(seen[0], rxr.TimeoutError)


def test_fallback_accepts_a_plain_value() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(10, "slow"))
    events = record(scheduler, lambda: source.pipe(rxr.timeout(3.0, fallback=0)))
    assert events == [(203.0, "next", 0), (203.0, "completed", None)]


def test_errors_of_the_source_are_not_replaced_by_fallback() -> None:
    scheduler = TestScheduler()
    boom = Boom()
    source = scheduler.create_cold_observable(on_error(1, boom))
    events = record(scheduler, lambda: source.pipe(rxr.timeout(3.0, fallback=0)))
    assert events == [(201.0, "error", boom)]


def test_disposal_is_never_reported_as_a_timeout() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(10, "a"))
    events = record(
        scheduler, lambda: source.pipe(rxr.timeout(5.0)), dispose_at=205.0, until=300.0
    )
    assert events == []
    assert source.subscriptions == [Subscription(200, 205)]
    assert pending(scheduler) == []


def test_the_default_scheduler_times_out_in_real_time() -> None:
    done = threading.Event()
    errors: list[Exception] = []

    def hang(_: abc.ObserverBase[int], __: Any = None) -> None:
        return None

    rx.create(hang).pipe(rxr.timeout(0.02)).subscribe(
        on_error=lambda e: (errors.append(e), done.set())
    )
    assert done.wait(5.0)
    assert isinstance(errors[0], rxr.TimeoutError)


# --- differential: rxr.timeout(d, fallback=other) == ops.timeout(d, other) --------------


@st.composite
def timelines(draw: st.DrawFn, *, hot: bool) -> list[Any]:
    count = draw(st.integers(0, 5))
    # narrow ranges make items land exactly on deadlines often: the ties matter
    low, high = (190, 225) if hot else (0, 20)
    times = sorted(
        draw(st.lists(st.integers(low, high), min_size=count + 1, max_size=count + 1))
    )
    messages: list[Any] = [
        on_next(t, v) for t, v in zip(times[:-1], range(count), strict=True)
    ]
    ending = draw(st.sampled_from(["error", "completed", "silent"]))
    if ending == "error":
        messages.append(on_error(times[-1], _ERROR))
    elif ending == "completed":
        messages.append(on_completed(times[-1]))
    return messages


_ERROR = Boom("source failed")


def _differential(
    messages: list[Any],
    other_messages: list[Any],
    duetime: int,
    hot: bool,
    with_fallback: bool,
) -> None:
    def run(make_operator: Any) -> Any:
        scheduler = TestScheduler()
        if hot:
            source = scheduler.create_hot_observable(messages)
        else:
            source = scheduler.create_cold_observable(messages)
        other = scheduler.create_cold_observable(other_messages)
        events = record(
            scheduler,
            lambda: source.pipe(make_operator(other)),
            dispose_at=400,
            until=500,
        )
        return kinds(events), source.subscriptions, other.subscriptions

    if with_fallback:
        ours = run(lambda other: rxr.timeout(duetime, fallback=other))
        theirs = run(lambda other: ops.timeout(duetime, other))
        assert ours == theirs
    else:
        ours = run(lambda _: rxr.timeout(duetime))
        theirs = run(lambda _: ops.timeout(duetime))
        # the only difference: our error type where RxPY raises Exception("Timeout")
        swapped = [
            (t, k, Exception if v is rxr.TimeoutError else v) for t, k, v in ours[0]
        ]
        assert (swapped, ours[1]) == theirs[:2]


@given(
    messages=timelines(hot=False),
    other=timelines(hot=False),
    duetime=st.integers(1, 6),
    with_fallback=st.booleans(),
)
def test_matches_rxpy_timeout_on_cold_sources(
    messages: list[Any], other: list[Any], duetime: int, with_fallback: bool
) -> None:
    _differential(messages, other, duetime, hot=False, with_fallback=with_fallback)


@given(
    messages=timelines(hot=True),
    other=timelines(hot=False),
    duetime=st.integers(1, 6),
    with_fallback=st.booleans(),
)
def test_matches_rxpy_timeout_on_hot_sources(
    messages: list[Any], other: list[Any], duetime: int, with_fallback: bool
) -> None:
    _differential(messages, other, duetime, hot=True, with_fallback=with_fallback)


def _tie_kinds(operator: Any, *messages: Any) -> list[str]:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(*messages)
    return [kind for _, kind, _ in record(scheduler, lambda: source.pipe(operator))]


def test_ties_follow_rxpy_first_deadline_beats_a_cold_item() -> None:
    for operator in (rxr.timeout(5), ops.timeout(5)):
        assert _tie_kinds(operator, on_next(5, "a")) == ["error"]


def test_ties_follow_rxpy_a_later_cold_item_beats_its_gap_deadline() -> None:
    messages = (on_next(1, "a"), on_next(6, "b"), on_completed(7))
    for operator in (rxr.timeout(5), ops.timeout(5)):
        assert _tie_kinds(operator, *messages) == ["next", "next", "completed"]


def test_ties_follow_rxpy_an_item_at_subscription_moves_the_first_deadline() -> None:
    messages = (on_next(0, "a"), on_next(5, "b"), on_completed(6))
    for operator in (rxr.timeout(5), ops.timeout(5)):
        assert _tie_kinds(operator, *messages) == ["next", "next", "completed"]


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({}, ValueError, "budget"),
        ({"each": 0}, ValueError, "each"),
        ({"each": -1.0}, ValueError, "each"),
        ({"each": timedelta(0)}, ValueError, "each"),
        ({"each": float("inf")}, ValueError, "each"),
        ({"each": "5s"}, TypeError, "each"),
        ({"each": datetime(2030, 1, 1)}, ValueError, "aware"),
        ({"first": 0}, ValueError, "first"),
        ({"first": datetime(2030, 1, 1, tzinfo=UTC)}, TypeError, "first"),
        ({"total": -3}, ValueError, "total"),
        ({"total": datetime(2030, 1, 1)}, ValueError, "aware"),
        ({"each": 1.0, "fallback": Boom()}, TypeError, "fallback"),
        ({"each": 1.0, "fallback": Boom}, TypeError, "fallback"),
        ({"each": 1.0, "scheduler": "loop"}, TypeError, "scheduler"),
    ],
)
def test_bad_input_raises_at_construction_naming_the_argument(
    kwargs: dict[str, Any], error: type[Exception], argument: str
) -> None:
    with pytest.raises(error, match=argument):
        rxr.timeout(**kwargs)


def test_a_deadline_a_fraction_of_a_microsecond_away_is_due_now() -> None:
    """Float clocks vs microsecond schedulers: re-arming must not spin at one instant.

    These times (found by a search) left a remainder below a microsecond,
    which the scheduler rounds to zero: the timer fired at the same instant
    forever. Now a deadline within a microsecond is due.
    """
    times = [1.481952, 3.146765, 3.618195]

    def source(scheduler: Any) -> rx.Observable[float]:
        items = [
            rx.timer(t, scheduler=scheduler).pipe(ops.map(lambda _, t=t: t))
            for t in times
        ]
        return rx.concat(rx.merge(*items), rx.never()).pipe(rxr.timeout(1.1))

    trace = rxr.testing.run(source, subscribe_at=0.9980855560803873, until=100)
    trace.assert_values().assert_error(rxr.TimeoutError)
    assert trace.ended_at is not None
    assert abs(trace.ended_at - (0.9980855560803873 + 1.1)) < 1e-5


def test_the_fallback_is_subscribed_on_the_timeouts_scheduler_as_ops_timeout_does() -> (
    None
):
    """Given to the operator alone, the scheduler is the fallback's too (it was
    subscribed without it: its timer ran on a real thread)."""
    seen: dict[str, list[Any]] = {}
    for kind, operator in (
        ("ours", lambda s: rxr.timeout(3.0, fallback=rx.timer(1.0), scheduler=s)),
        ("rxpy", lambda s: ops.timeout(3.0, other=rx.timer(1.0), scheduler=s)),
    ):
        scheduler = TestScheduler()
        got: list[Any] = seen.setdefault(kind, [])
        rx.never().pipe(operator(scheduler)).subscribe(
            lambda value, got=got, s=scheduler: got.append((s.clock, value)),
            lambda error, got=got: got.append(error),
            lambda got=got, s=scheduler: got.append((s.clock, "completed")),
        )
        scheduler.advance_to(10.0)
    assert seen["ours"] == seen["rxpy"] == [(4.0, 0), (4.0, "completed")]


def test_a_deadline_passed_already_is_reported_as_a_budget_of_none() -> None:
    """From subscription to the deadline: none left, never a negative budget."""
    scheduler = TestScheduler()
    scheduler.advance_to(7200.0)
    past = datetime(1970, 1, 1, tzinfo=UTC)  # before the virtual now
    seen: list[Exception] = []
    for budget in ({"each": past}, {"total": past}):
        rx.never().pipe(rxr.timeout(**budget)).subscribe(
            on_error=seen.append, scheduler=scheduler
        )
    scheduler.advance_by(1.0)
    assert [(e.budget, e.seconds) for e in seen] == [("first", 0.0), ("total", 0.0)]  # type: ignore[attr-defined]
