"""Compensation budgets: a hung compensation ends on its budget, on the saga's time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import reactivex as rx
from reactivex.testing import TestScheduler

import rxresilience as rxr

from .._support import pending, record


class Boom(Exception):
    pass


def hung_saga(**budgets: Any) -> tuple[rxr.Saga[int], dict[str, Any]]:
    step_budget = budgets.pop("step", None)
    saga = (
        rxr.Saga[int]("hung", **budgets)
        .step(
            "a",
            execute=rx.of,
            compensate=lambda n: rx.never(),
            compensation_timeout=step_budget,
        )
        .step("b", execute=lambda n: rx.throw(Boom()))
    )
    return saga, {}


@pytest.mark.parametrize(
    ("budgets", "ends_at"),
    [
        ({"step": 5.0}, 5.0),
        ({"compensation_timeout": 7.0}, 7.0),
        ({"compensation_timeout": 7.0, "step": timedelta(seconds=2)}, 2.0),
    ],
    ids=["step", "saga-default", "step-over-default"],
)
def test_a_hung_compensation_ends_as_compensation_failed_on_its_budget(
    budgets: dict[str, Any], ends_at: float
) -> None:
    scheduler = TestScheduler()
    saga, _ = hung_saga(**budgets)
    journal = rxr.InMemorySagaJournal()
    published: list[Any] = []
    saga.events.subscribe(published.append)
    events = record(
        scheduler,
        lambda: saga.execute(1, journal=journal, saga_id="h-1"),
        subscribe_at=0,
    )
    time, kind, failure = events[-1]
    assert (time, kind) == (ends_at, "error")
    assert isinstance(failure, rxr.SagaFailed)
    [(step, error)] = failure.compensation_errors
    assert step == "a"
    assert isinstance(error, rxr.TimeoutError)
    assert isinstance(published[-1], rxr.CompensationFailed)
    state = journal.state("h-1")
    assert state is not None
    assert state.status == "failed"
    assert pending(scheduler) == []


def test_a_compensation_budget_waits_on_the_sagas_own_scheduler() -> None:
    scheduler = TestScheduler()
    saga, _ = hung_saga(compensation_timeout=3.0, scheduler=scheduler)
    errors: list[Exception] = []
    saga.run(1).subscribe(on_error=errors.append)  # no subscribe-time scheduler
    scheduler.advance_to(2.0)
    assert errors == []
    scheduler.advance_to(3.0)
    assert [type(e) for e in errors] == [rxr.SagaFailed]


def test_recovery_gives_a_hung_compensation_300_seconds_by_default() -> None:
    journal = rxr.InMemorySagaJournal()
    journal.begin("s-1", "hung", now=0.0)
    journal.append(
        "s-1", rxr.JournalEntry("step_succeeded", "a", context=b"1"), now=0.0
    )
    saga, _ = hung_saga()
    later = TestScheduler(initial_clock=100.0)
    events = record(
        later,
        lambda: rxr.recover(journal, {"hung": saga}, stale_after=60.0),
        subscribe_at=100.0,
    )
    assert [(t, type(e).__name__) for t, kind, e in events if kind == "next"] == [
        (100.0, "CompensationStarted"),
        (400.0, "CompensationFailed"),
        (400.0, "RecoveryFailed"),
    ]
    assert events[-1][:2] == (400.0, "completed")
    state = journal.state("s-1")
    assert state is not None  # left running, to be recovered once fixed
    assert (state.status, state.touched) == ("running", 400.0)
    assert state.problem is not None
    assert "TimeoutError" in state.problem
    assert pending(later) == []


@pytest.mark.parametrize("where", ["step", "saga", "recover"])
def test_a_compensation_that_keeps_emitting_runs_out_of_its_budget(where: str) -> None:
    # The budget was the gap between values, which a compensation's values
    # reset: one emitting every second never timed out, and recovery waited
    # on it for good.
    scheduler = TestScheduler()
    chatty = lambda n: rx.interval(1.0, scheduler=scheduler)  # noqa: E731
    saga = rxr.Saga[int](
        "s", compensation_timeout=5.0 if where == "saga" else None
    ).step(
        "a",
        rx.of,
        compensate=chatty,
        compensation_timeout=5.0 if where == "step" else None,
    )
    journal = rxr.InMemorySagaJournal()
    journal.begin("s-1", "s", 0.0)
    journal.append("s-1", rxr.JournalEntry("step_succeeded", "a", b"1"), 0.0)
    scheduler.advance_to(100.0)  # the saga long untouched
    events: list[Any] = []
    rxr.recover(
        journal,
        {"s": saga},
        scheduler=scheduler,
        compensation_timeout=5.0 if where == "recover" else 300.0,
    ).subscribe(events.append, events.append, lambda: events.append("done"))
    scheduler.advance_to(200.0)
    failed = [e for e in events if isinstance(e, rxr.CompensationFailed)]
    assert len(failed) == 1
    assert isinstance(failed[0].error, rxr.TimeoutError)
    assert events[-1] == "done"
