"""The subscribers of an execution (``idempotency/_audience.py``): a subscriber's
exception belongs to that subscriber alone."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr

from ._doubles import (
    Runs,
    SubscriberBug,
)


def test_a_raising_subscriber_of_a_synchronous_source_is_told_alone_and_recorded(
    store: Any,
) -> None:
    runs = Runs(lambda: rx.of("a", "b"))
    charge = runs.observable().pipe(rxr.idempotent(store, key="k"))
    seen: list[Any] = []

    def raising(value: Any) -> None:
        seen.append(value)
        raise SubscriberBug(value)

    charge.subscribe(raising, seen.append, lambda: seen.append("done"))
    assert [type(x).__name__ if isinstance(x, Exception) else x for x in seen] == [
        "a",
        "SubscriberBug",
    ]
    # The operation ran to its end and was recorded: a duplicate replays it.
    assert charge.pipe(ops.to_list()).run() == ["a", "b"]
    assert runs.count == 1


@pytest.mark.parametrize("subscribers", [1, 2])
def test_a_raising_subscriber_of_a_timer_driven_source_leaves_the_others_alone(
    store: Any, subscribers: int
) -> None:
    scheduler = TestScheduler()
    runs = Runs(lambda: rx.interval(1.0, scheduler=scheduler).pipe(ops.take(3)))
    charge = runs.observable().pipe(rxr.idempotent(store, key="k", scheduler=scheduler))
    bad: list[Any] = []
    good: list[Any] = []

    def raising(value: Any) -> None:
        bad.append(value)
        raise SubscriberBug(value)

    charge.subscribe(raising, bad.append, scheduler=scheduler)
    if subscribers == 2:
        charge.subscribe(good.append, good.append, lambda: good.append("done"))
    scheduler.advance_to(10.0)
    assert bad[0] == 0
    assert isinstance(bad[1], SubscriberBug)
    assert len(bad) == 2
    if subscribers == 2:
        assert good == [0, 1, 2, "done"]
    assert runs.disposed == 1  # ran to its own end
    replayed = charge.pipe(ops.to_list()).run()
    assert replayed == [0, 1, 2]
    assert runs.count == 1


def test_a_subscriber_raising_on_completion_robs_no_other_of_theirs(store: Any) -> None:
    scheduler = TestScheduler()
    runs = Runs(lambda: rx.timer(1.0, scheduler=scheduler).pipe(ops.map(str)))
    charge = runs.observable().pipe(rxr.idempotent(store, key="k", scheduler=scheduler))
    seen: list[str] = []

    def raising() -> None:
        raise SubscriberBug("done")

    charge.subscribe(on_completed=raising, scheduler=scheduler)
    charge.subscribe(on_completed=lambda: seen.append("done"), scheduler=scheduler)
    scheduler.advance_to(5.0)
    assert seen == ["done"]
