"""Sagas in virtual time: forward, reverse compensation, journals and recovery."""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import reactivex as rx
from hypothesis import given
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr

from .. import _saga_worker as worker
from .._support import DURATIONS_OUT_OF_RANGE, record


class Boom(Exception):
    pass


def describe(event: Any) -> tuple[str, str]:
    """An event as (kind, step) for comparing sequences."""
    kind = type(event).__name__
    return (kind, getattr(event, "step", ""))


class Service:
    """Steps and compensations that take virtual time and log what they did."""

    def __init__(self, scheduler: TestScheduler | None = None) -> None:
        self.scheduler = scheduler
        self.log: list[str] = []

    def _later(self, seconds: float, value: Any) -> rx.Observable[Any]:
        if self.scheduler is None or not seconds:
            return rx.of(value)
        return rx.timer(seconds, scheduler=self.scheduler).pipe(
            ops.map(lambda _: value)
        )

    def step(
        self,
        name: str,
        *,
        fail: bool = False,
        seconds: float = 1.0,
        undo_fails: bool = False,
    ) -> dict[str, Any]:
        def execute(ctx: list[str]) -> rx.Observable[list[str]]:
            self.log.append(f"do {name}")
            if fail:
                return self._later(seconds, None).pipe(
                    ops.flat_map(lambda _: rx.throw(Boom(name)))
                )
            return self._later(seconds, [*ctx, name])

        def compensate(ctx: list[str]) -> rx.Observable[Any]:
            self.log.append(f"undo {name} after {ctx[-1]}")
            if undo_fails:
                return rx.throw(Boom(f"undo {name}"))
            return self._later(seconds, None).pipe(ops.ignore_elements())

        return {"execute": execute, "compensate": compensate}


def four_steps(service: Service, failing: int | None) -> rxr.Saga[list[str]]:
    saga: rxr.Saga[list[str]] = rxr.Saga("four")
    for index, name in enumerate("abcd"):
        saga.step(name, **service.step(name, fail=index == failing))
    return saga


# --- forward and reverse ------------------------------------------------------------


def test_a_saga_that_succeeds_emits_every_step_then_completes() -> None:
    scheduler = TestScheduler()
    service = Service(scheduler)
    events = record(
        scheduler,
        lambda: four_steps(service, None).execute([], saga_id="s1"),
        subscribe_at=0,
    )
    assert [describe(e[2]) for e in events if e[1] == "next"] == [
        ("StepStarted", "a"),
        ("StepSucceeded", "a"),
        ("StepStarted", "b"),
        ("StepSucceeded", "b"),
        ("StepStarted", "c"),
        ("StepSucceeded", "c"),
        ("StepStarted", "d"),
        ("StepSucceeded", "d"),
        ("SagaCompleted", ""),
    ]
    completed = events[-2][2]
    assert completed.context == ["a", "b", "c", "d"]
    assert completed.saga_id == "s1"
    assert events[-1][:2] == (4.0, "completed")


@pytest.mark.parametrize("failing", [0, 1, 2, 3])
def test_every_failure_position_compensates_exactly_the_succeeded_steps_in_reverse(
    failing: int,
) -> None:
    scheduler = TestScheduler()
    service = Service(scheduler)
    events = record(
        scheduler, lambda: four_steps(service, failing).execute([]), subscribe_at=0
    )
    names = "abcd"
    succeeded = names[:failing]
    expected: list[tuple[str, str]] = []
    for name in succeeded:
        expected += [("StepStarted", name), ("StepSucceeded", name)]
    expected += [("StepStarted", names[failing]), ("StepFailed", names[failing])]
    for name in reversed(succeeded):
        expected += [("CompensationStarted", name), ("StepCompensated", name)]
    assert [describe(e[2]) for e in events if e[1] == "next"] == expected
    # each compensation receives the context as it was after its own step
    assert service.log[failing + 1 :] == [
        f"undo {n} after {n}" for n in reversed(succeeded)
    ]
    time, kind, error = events[-1]
    assert kind == "error"
    assert isinstance(error, rxr.SagaFailed)
    assert error.step == names[failing]
    assert isinstance(error.cause, Boom)
    assert error.__cause__ is error.cause
    assert error.compensation_errors == ()
    # forward: 1 tick per succeeded step plus the failing one; back: 1 per undo
    assert time == float(failing + 1 + failing)


def test_a_failing_compensation_is_reported_and_the_others_still_run() -> None:
    service = Service()
    saga = (
        rxr.Saga("s")
        .step("a", **service.step("a"))
        .step("b", **service.step("b", undo_fails=True))
        .step("c", **service.step("c"))
        .step("d", **service.step("d", fail=True))
    )
    events: list[Any] = []
    saga.execute([]).subscribe(events.append, events.append)
    assert [describe(e) for e in events[-7:-1]] == [
        ("CompensationStarted", "c"),
        ("StepCompensated", "c"),
        ("CompensationStarted", "b"),
        ("CompensationFailed", "b"),
        ("CompensationStarted", "a"),
        ("StepCompensated", "a"),
    ]
    failure = events[-1]
    assert isinstance(failure, rxr.SagaFailed)
    assert [(step, str(error)) for step, error in failure.compensation_errors] == [
        ("b", "undo b")
    ]


def test_stop_on_compensation_failure_says_which_never_ran() -> None:
    service = Service()
    saga = (
        rxr.Saga("s", on_compensation_failure="stop")
        .step("a", **service.step("a"))
        .step("b", **service.step("b", undo_fails=True))
        .step("c", **service.step("c", fail=True))
    )
    journal = rxr.InMemorySagaJournal()
    events: list[Any] = []
    saga.execute([], journal=journal, saga_id="s-1").subscribe(
        events.append, events.append
    )
    failure = events[-1]
    assert failure.not_compensated == ("a",)
    assert "undo a after a" not in service.log
    assert journal.state("s-1").status == "failed"  # type: ignore[union-attr]


def test_the_failed_steps_own_compensation_runs_only_when_marked() -> None:
    undone: list[Any] = []
    saga = (
        rxr.Saga("s")
        .step(
            "a",
            execute=lambda ctx: rx.of("after a"),
            compensate=lambda ctx: undone.append(ctx),
        )
        .step(
            "b",
            execute=lambda ctx: rx.throw(Boom()),
            compensate=lambda ctx: undone.append(("b got", ctx)),
            compensate_on_failure=True,
        )
    )
    with pytest.raises(rxr.SagaFailed):
        saga.run("start").run()
    assert undone == [("b got", "after a"), "after a"]


def test_retries_and_per_attempt_timeouts_run_in_virtual_time() -> None:
    scheduler = TestScheduler()
    attempts: list[float] = []

    def charge(ctx: str) -> rx.Observable[str]:
        attempts.append(scheduler.clock)
        if len(attempts) < 3:
            return rx.never()  # hangs: the per-attempt timeout abandons it
        return rx.of(f"{ctx} charged")

    saga = rxr.Saga("pay").step(
        "charge",
        execute=charge,
        retry=rxr.RetryPolicy(max_attempts=3, backoff=2.0),
        timeout=10.0,
    )
    events = record(scheduler, lambda: saga.run("order"), subscribe_at=0)
    assert attempts == [0.0, 12.0, 24.0]
    assert events == [(24.0, "next", "order charged"), (24.0, "completed", None)]


def test_a_step_timeout_after_retries_fails_the_step() -> None:
    scheduler = TestScheduler()
    saga = rxr.Saga("pay").step(
        "charge",
        execute=lambda ctx: rx.never(),
        retry=rxr.RetryPolicy(max_attempts=2, backoff=1.0),
        timeout=5.0,
    )
    events = record(scheduler, lambda: saga.run("order"), subscribe_at=0)
    [(time, kind, error)] = events
    assert (time, kind) == (11.0, "error")
    assert isinstance(error.cause, rxr.TimeoutError)


# --- disposal ------------------------------------------------------------------------


def test_disposal_cancels_the_running_step_and_still_compensates() -> None:
    scheduler = TestScheduler()
    service = Service(scheduler)
    saga = four_steps(service, None)
    everything: list[Any] = []
    saga.events.subscribe(everything.append)
    journal = rxr.InMemorySagaJournal()
    mine = record(
        scheduler,
        lambda: saga.execute([], journal=journal, saga_id="d-1"),
        subscribe_at=0,
        dispose_at=2.5,  # during step c
        until=100,
    )
    assert [describe(e[2]) for e in mine][-1] == ("StepStarted", "c")
    after = [describe(e) for e in everything][len(mine) :]
    assert after == [
        ("StepFailed", "c"),
        ("CompensationStarted", "b"),
        ("StepCompensated", "b"),
        ("CompensationStarted", "a"),
        ("StepCompensated", "a"),
    ]
    assert isinstance(everything[len(mine)].error, rxr.SagaCancelledError)
    state = journal.state("d-1")
    assert state is not None
    assert state.status == "compensated"
    assert state.compensated_steps == ("b", "a")
    assert "do d" not in service.log


# --- parallel groups -------------------------------------------------------------------


def test_a_parallel_group_merges_results_in_the_given_order() -> None:
    scheduler = TestScheduler()
    saga = rxr.Saga("p").parallel(
        "reserve",
        [
            rxr.SagaStep(
                "slow",
                execute=lambda ctx: rx.timer(5.0, scheduler=scheduler).pipe(
                    ops.map(lambda _: "slow")
                ),
            ),
            rxr.SagaStep(
                "fast",
                execute=lambda ctx: rx.timer(1.0, scheduler=scheduler).pipe(
                    ops.map(lambda _: "fast")
                ),
            ),
        ],
        merge=lambda ctx, results: [ctx, *results],
    )
    events = record(scheduler, lambda: saga.run("start"), subscribe_at=0)
    assert events == [
        (5.0, "next", ["start", "slow", "fast"]),
        (5.0, "completed", None),
    ]


def test_a_failing_sibling_cancels_the_others_and_compensates_in_reverse_completion() -> (
    None
):
    scheduler = TestScheduler()
    undone: list[str] = []
    cancelled: list[str] = []

    def timed(name: str, seconds: float, fail: bool = False) -> rxr.SagaStep:
        def execute(ctx: Any) -> rx.Observable[str]:
            result = rx.timer(seconds, scheduler=scheduler).pipe(
                ops.flat_map(lambda _: rx.throw(Boom(name)) if fail else rx.of(name)),
                ops.finally_action(lambda: cancelled.append(name)),
            )
            return result

        return rxr.SagaStep(
            name, execute=execute, compensate=lambda ctx: undone.append(ctx)
        )

    saga = (
        rxr.Saga("p")
        .step(
            "first",
            execute=lambda ctx: rx.of("first"),
            compensate=lambda ctx: undone.append(ctx),
        )
        .parallel(
            "group",
            [
                timed("x", 2.0),
                timed("y", 1.0),
                timed("boom", 3.0, fail=True),
                timed("z", 10.0),
            ],
            merge=lambda ctx, results: results,
        )
    )
    events = record(scheduler, lambda: saga.execute("ctx"), subscribe_at=0)
    assert undone == ["x", "y", "first"]  # reverse order of completion: y at 1, x at 2
    assert "z" in cancelled
    kinds = [describe(e[2]) for e in events if e[1] == "next"]
    assert ("StepFailed", "boom") in kinds
    assert ("StepSucceeded", "z") not in kinds


# --- journals ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ctx:
    order: str
    paid: bool = False


def test_the_journal_records_each_step_before_it_is_subscribed(
    tmp_path: pathlib.Path,
) -> None:
    journal = rxr.SQLiteSagaJournal(tmp_path / "sagas.db")
    seen_in_journal: list[tuple[str, ...]] = []

    def pay(ctx: Ctx) -> rx.Observable[Ctx]:
        state = journal.load("j-1")
        assert state is not None
        seen_in_journal.append(tuple(e.kind for e in state.entries))
        return rx.of(Ctx(ctx.order, paid=True))

    saga = rxr.Saga[Ctx]("pay").step("pay", execute=pay)
    assert saga.run(Ctx("o-1"), journal=journal, saga_id="j-1").run() == Ctx(
        "o-1", True
    )
    assert seen_in_journal == [("step_started",)]
    state = saga.state("j-1", journal)
    assert state is not None
    assert (state.status, state.completed_steps) == ("completed", ("pay",))
    record_ = journal.load("j-1")
    assert record_ is not None
    assert saga.codec().decode(record_.entries[-1].context or b"") == Ctx("o-1", True)
    journal.close()


def test_steps_declared_with_two_parameters_get_stable_keys() -> None:
    keys: list[str] = []
    saga = (
        rxr.Saga("k")
        .step(
            "charge",
            execute=lambda ctx, key: (keys.append(key), rx.of(ctx))[1],
            compensate=lambda ctx, key: keys.append(key),
        )
        .step("fail", execute=lambda ctx: rx.throw(Boom()))
    )
    with pytest.raises(rxr.SagaFailed):
        saga.run("c", saga_id="order-9").run()
    assert keys == ["order-9:charge", "order-9:charge:compensate"]


def test_the_sqlite_journal_refuses_an_unknown_schema(tmp_path: pathlib.Path) -> None:
    import sqlite3

    path = tmp_path / "sagas.db"
    rxr.SQLiteSagaJournal(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE rxr_meta SET value = '7' WHERE name = 'saga_schema'")
    db.commit()
    db.close()
    with pytest.raises(rxr.SagaError, match="schema version '7'"):
        rxr.SQLiteSagaJournal(path)


# --- recovery ---------------------------------------------------------------------------


def test_a_killed_saga_is_recovered_once(tmp_path: pathlib.Path) -> None:
    journal_path = str(tmp_path / "sagas.db")
    effects_path = str(tmp_path / "effects.db")
    ready_path = str(tmp_path / "ready")
    rxr.SQLiteSagaJournal(journal_path).close()
    child = multiprocessing.get_context("spawn").Process(
        target=worker.run_and_hang, args=(journal_path, effects_path, ready_path)
    )
    child.start()
    deadline = time.time() + 60
    while not os.path.exists(ready_path) and time.time() < deadline:
        child.join(0.01)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert worker.effects(effects_path) == ["reserve", "charge", "ship started"]

    journal = rxr.SQLiteSagaJournal(journal_path)
    saga = worker.order_saga(effects_path, hang_at_third=False)
    future = TestScheduler(initial_clock=time.time() + 120)  # past stale_after
    events = record(
        future,
        lambda: rxr.recover(journal, {"order": saga}, stale_after=60.0),
        subscribe_at=future.clock,
        until=future.clock,
    )
    assert [describe(e[2]) for e in events if e[1] == "next"] == [
        ("CompensationStarted", "charge"),
        ("StepCompensated", "charge"),
        ("CompensationStarted", "reserve"),
        ("StepCompensated", "reserve"),
    ]
    assert events[-1][1] == "completed"
    assert worker.effects(effects_path)[3:] == [
        "refund order-o-1:charge:compensate",
        "release order-o-1:reserve:compensate",
    ]
    again = rxr.recover(journal, {"order": saga}, stale_after=60.0).pipe(ops.to_list())
    assert again.run(scheduler=future) == []
    assert len(worker.effects(effects_path)) == 5
    state = journal.state("order-o-1")
    assert state is not None
    assert state.status == "compensated"
    journal.close()


def test_recover_leaves_sagas_that_are_still_running_alone() -> None:
    journal = rxr.InMemorySagaJournal()
    scheduler = TestScheduler()
    saga = rxr.Saga("s").step(
        "a", execute=lambda c: rx.of(c), compensate=lambda c: rx.empty()
    )
    saga.execute("x", journal=journal, saga_id="s-1").pipe(ops.take(2)).subscribe(
        scheduler=scheduler
    )
    journal.begin("s-2", "s", now=0.0)  # a saga that is running elsewhere, touched now
    recovered = record(
        scheduler,
        lambda: rxr.recover(journal, {"s": saga}, stale_after=60.0),
        subscribe_at=30,
    )
    assert recovered == [(30.0, "completed", None)]


def test_two_recoverers_never_take_the_same_saga() -> None:
    journal = rxr.InMemorySagaJournal()
    journal.begin("s-1", "s", now=0.0)
    assert journal.claim_stale("s-1", now=100.0, stale_before=40.0)
    assert not journal.claim_stale("s-1", now=100.0, stale_before=40.0)


# --- a property: forward to the failure, back over exactly the succeeded steps ------------


@given(
    steps=st.integers(1, 7),
    failing=st.integers(0, 8),
    failing_compensations=st.sets(st.integers(0, 7)),
)
def test_events_match_the_reference_model(
    steps: int, failing: int, failing_compensations: set[int]
) -> None:
    service = Service()
    saga: rxr.Saga[list[str]] = rxr.Saga("model")
    names = [f"s{i}" for i in range(steps)]
    for index, name in enumerate(names):
        saga.step(
            name,
            **service.step(
                name, fail=index == failing, undo_fails=index in failing_compensations
            ),
        )
    events: list[Any] = []
    saga.execute([]).subscribe(events.append, events.append)
    expected: list[tuple[str, str]] = []
    succeeded = names if failing >= steps else names[:failing]
    for name in succeeded:
        expected += [("StepStarted", name), ("StepSucceeded", name)]
    if failing >= steps:
        expected.append(("SagaCompleted", ""))
        assert [describe(e) for e in events] == expected
        return
    expected += [("StepStarted", names[failing]), ("StepFailed", names[failing])]
    for index in reversed(range(failing)):
        undo = (
            "CompensationFailed"
            if index in failing_compensations
            else "StepCompensated"
        )
        expected += [("CompensationStarted", names[index]), (undo, names[index])]
    assert [describe(e) for e in events[:-1]] == expected
    failure = events[-1]
    assert isinstance(failure, rxr.SagaFailed)
    assert [s for s, _ in failure.compensation_errors] == [
        names[i] for i in reversed(range(failing)) if i in failing_compensations
    ]


# --- bad input ---------------------------------------------------------------------------


def test_duplicate_step_names_are_refused() -> None:
    saga = rxr.Saga("s").step("a", execute=rx.of)
    with pytest.raises(ValueError, match="duplicate step name 'a'"):
        saga.step("a", execute=rx.of)
    with pytest.raises(ValueError, match="duplicate"):
        saga.parallel("g", [rxr.SagaStep("a", execute=rx.of)], merge=lambda c, r: c)


def test_an_execute_that_is_not_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="execute"):
        rxr.Saga("s").step("a", execute="charge")  # type: ignore[arg-type]


def test_a_step_added_after_the_saga_ran_is_refused() -> None:
    saga = rxr.Saga("s").step("a", execute=rx.of)
    saga.run(1).run()
    with pytest.raises(rxr.SagaError, match="already run"):
        saga.step("b", execute=rx.of)


_OUT_OF_RANGE = DURATIONS_OUT_OF_RANGE


@pytest.mark.parametrize(
    ("value", "error"),
    [
        *_OUT_OF_RANGE,
        pytest.param(0, ValueError, id="0"),
        pytest.param(timedelta(0), ValueError, id="timedelta-0"),
        pytest.param(timedelta(seconds=-1), ValueError, id="timedelta-negative"),
        pytest.param(timedelta(days=200_000), ValueError, id="timedelta-huge"),
        pytest.param(datetime.now(UTC), TypeError, id="datetime"),
    ],
)
def test_a_step_timeout_out_of_range_is_refused_when_the_step_is_made(
    value: object, error: type[Exception]
) -> None:
    """Accepted once, such a budget hung the saga (or killed a timer thread)."""
    with pytest.raises(error, match=r"^timeout "):
        rxr.SagaStep("a", execute=rx.of, timeout=value)  # type: ignore[arg-type]
    with pytest.raises(error, match=r"^timeout "):
        rxr.Saga("s").step("a", execute=rx.of, timeout=value)  # type: ignore[arg-type]


def test_a_step_timeout_in_range_is_accepted() -> None:
    from rxresilience._clock import LONGEST_WAIT

    for value in (5, 0.5, LONGEST_WAIT):
        step = rxr.SagaStep("a", execute=rx.of, timeout=value)
        assert type(step.timeout) is float
        assert step.timeout == value
    for budget in (timedelta(seconds=5), rxr.TimeoutPolicy(each=5.0), None):
        assert rxr.SagaStep("a", execute=rx.of, timeout=budget).timeout == budget


def test_a_step_timeout_of_longest_wait_lets_the_step_finish() -> None:
    from rxresilience._clock import LONGEST_WAIT

    scheduler = TestScheduler()
    saga: rxr.Saga[int] = rxr.Saga("s", scheduler=scheduler).step(
        "slow",
        execute=lambda ctx: rx.timer(1e6, scheduler=scheduler).pipe(
            ops.map(lambda _: ctx + 1)
        ),
        timeout=LONGEST_WAIT,
    )
    results: list[Any] = []
    saga.run(1).subscribe(results.append, scheduler=scheduler)
    scheduler.advance_by(2e6)
    assert results == [2]


@pytest.mark.parametrize(("value", "error"), _OUT_OF_RANGE)
def test_a_stale_after_out_of_range_is_refused_naming_it(
    value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"^stale_after "):
        rxr.recover(rxr.InMemorySagaJournal(), {}, stale_after=value)  # type: ignore[arg-type]


def test_a_stale_after_in_range_is_accepted() -> None:
    from rxresilience._clock import LONGEST_WAIT

    for value in (0, 0.0, 5, 0.5, LONGEST_WAIT):
        assert (
            rxr.recover(rxr.InMemorySagaJournal(), {}, stale_after=value)
            .pipe(ops.to_list())
            .run()
            == []
        )


@pytest.mark.parametrize(
    ("value", "error"),
    [*_OUT_OF_RANGE, pytest.param(2_147_484, ValueError, id="past-int-ms")],
)
def test_a_sqlite_journal_timeout_out_of_range_is_refused_naming_it(
    tmp_path: pathlib.Path, value: object, error: type[Exception]
) -> None:
    path = tmp_path / "sagas.db"
    with pytest.raises(error, match=r"^timeout "):
        rxr.SQLiteSagaJournal(path, timeout=value)  # type: ignore[arg-type]
    assert not path.exists()
    for good in (0, 5, 0.5, 2_147_483.647):
        rxr.SQLiteSagaJournal(path, timeout=good).close()


def test_a_step_function_that_raises_is_a_step_failure() -> None:
    def broken(ctx: Any) -> rx.Observable[Any]:
        raise Boom("no observable")

    saga = rxr.Saga("s").step("a", execute=broken)
    with pytest.raises(rxr.SagaFailed) as failure:
        saga.run(1).run()
    assert str(failure.value.cause) == "no observable"


def test_an_empty_step_is_a_step_failure() -> None:
    saga = rxr.Saga("s").step("a", execute=lambda ctx: rx.empty())
    with pytest.raises(rxr.SagaFailed) as failure:
        saga.run(1).run()
    assert isinstance(failure.value.cause, rxr.SagaStepEmptyError)


def test_a_saga_without_steps_cannot_run() -> None:
    with pytest.raises(rxr.SagaError, match="no steps"):
        rxr.Saga("s").execute(1)


def test_compensation_retry_retries_a_failing_compensation() -> None:
    attempts = 0

    def flaky_undo(ctx: Any) -> rx.Observable[Any]:
        nonlocal attempts
        attempts += 1
        return rx.throw(Boom()) if attempts < 3 else rx.empty()

    saga = (
        rxr.Saga("s")
        .step(
            "a",
            execute=rx.of,
            compensate=flaky_undo,
            compensation_retry=rxr.RetryPolicy(max_attempts=3, backoff=None),
        )
        .step("b", execute=lambda ctx: rx.throw(Boom()))
    )
    events: list[Any] = []
    saga.execute(1).subscribe(events.append, events.append)
    assert describe(events[-2]) == ("StepCompensated", "a")
    assert attempts == 3


def test_recovery_compensates_a_step_that_may_have_happened() -> None:
    journal = rxr.InMemorySagaJournal()
    undone: list[Any] = []
    saga = (
        rxr.Saga("s")
        .step("a", execute=lambda ctx: rx.of(f"{ctx}+a"), compensate=undone.append)
        .step(
            "b",
            execute=lambda ctx: rx.never(),  # the process "dies" here
            compensate=lambda ctx: undone.append(("b", ctx)),
            compensate_on_failure=True,
        )
        .step("c", execute=rx.of, compensate=undone.append)
    )
    scheduler = TestScheduler(initial_clock=1000.0)
    saga.execute("start", journal=journal, saga_id="s-1").subscribe(scheduler=scheduler)
    scheduler.advance_by(1)  # step a succeeds; step b hangs
    later = TestScheduler(initial_clock=2000.0)
    events = record(
        later,
        lambda: rxr.recover(journal, {"s": saga}, stale_after=60.0),
        subscribe_at=2000.0,
        until=2000.0,
    )
    assert undone == [("b", "start+a"), "start+a"]
    assert [describe(e[2]) for e in events if e[1] == "next"] == [
        ("CompensationStarted", "b"),
        ("StepCompensated", "b"),
        ("CompensationStarted", "a"),
        ("StepCompensated", "a"),
    ]
