"""Sagas, part 2: recovery that never hangs and never stops early.

When recovery cannot finish one saga (its context no longer decodes, its
name is missing from ``sagas``, a compensation raises or hangs until its
budget), that saga stays ``running`` with a ``recovery_failed`` entry, its
lease is given up so the next recoverer may take it at once, the stream
emits ``RecoveryFailed`` and recovery goes on with the other sagas.
"""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr

from .. import _saga_worker as worker
from .._support import pending


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def journal(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Any]:
    yield from worker.journal_of(request, tmp_path)


@dataclasses.dataclass(frozen=True)
class Order:
    """The context as the code reads it now: it gained a required field."""

    id: str
    quantity: int


@dataclasses.dataclass(frozen=True)
class FixedOrder:
    """The code fixed: the new field has a default."""

    id: str
    quantity: int = 1


def undoing(undone: list[str], name: str) -> Callable[[Any], rx.Observable[Any]]:
    def compensate(ctx: Any) -> rx.Observable[Any]:
        return rx.empty().pipe(ops.do_action(on_completed=lambda: undone.append(name)))

    return compensate


def raising(ctx: Any) -> rx.Observable[Any]:
    raise RuntimeError("refund service misconfigured")


def hanging(ctx: Any) -> rx.Observable[Any]:
    return rx.never()


def good_saga(undone: list[str]) -> rxr.Saga[Any]:
    return rxr.Saga("good").step("a", rx.of, undoing(undone, "good"))


def plain_saga(compensate: Callable[[Any], rx.Observable[Any]]) -> rxr.Saga[Any]:
    return rxr.Saga("bad").step("a", rx.of, compensate)


def order_saga(codec_type: type[Any], undone: list[str]) -> rxr.Saga[Any]:
    return rxr.Saga("bad", codec=rxr.DataclassCodec(codec_type)).step(
        "a", rx.of, undoing(undone, "bad")
    )


# Each cause: (bad saga's name, its context as the journal holds it,
# the sagas as the broken code has them, the sagas once the code is fixed,
# a piece of the reason).
Case = tuple[
    str,
    bytes,
    Callable[[list[str]], dict[str, rxr.Saga[Any]]],
    Callable[[list[str]], dict[str, rxr.Saga[Any]]],
    str,
]

CASES: dict[str, Case] = {
    "context-no-longer-decodes": (
        "bad",
        b'{"id":"b"}',
        lambda undone: {"bad": order_saga(Order, undone)},
        lambda undone: {"bad": order_saga(FixedOrder, undone)},
        "decode",
    ),
    "saga-name-missing": (
        "bad",
        b"1",
        lambda undone: {},
        lambda undone: {"bad": plain_saga(undoing(undone, "bad"))},
        "bad",
    ),
    "compensation-raises": (
        "bad",
        b"1",
        lambda undone: {"bad": plain_saga(raising)},
        lambda undone: {"bad": plain_saga(undoing(undone, "bad"))},
        "refund service misconfigured",
    ),
    "compensation-hangs": (
        "bad",
        b"1",
        lambda undone: {"bad": plain_saga(hanging)},
        lambda undone: {"bad": plain_saga(undoing(undone, "bad"))},
        "TimeoutError",
    ),
}


def recover(
    journal: rxr.SagaJournal,
    sagas: dict[str, rxr.Saga[Any]],
    scheduler: TestScheduler,
) -> list[Any]:
    """Recover in virtual time until nothing is left to happen; the stream's
    events, then ``"completed"`` or the error."""
    events: list[Any] = []
    rxr.recover(journal, sagas, stale_after=1.0, scheduler=scheduler).subscribe(
        on_next=events.append,
        on_error=events.append,
        on_completed=lambda: events.append("completed"),
    )
    scheduler.advance_by(1000.0)
    return events


@pytest.mark.parametrize("cause", list(CASES))
def test_a_saga_recovery_cannot_finish_stays_running_and_the_others_are_recovered(
    journal: rxr.SagaJournal, cause: str
) -> None:
    name, context, broken, fixed, reason_part = CASES[cause]
    journal.begin("bad-1", name, 0.0)
    journal.append("bad-1", rxr.JournalEntry("step_succeeded", "a", context), 0.0)
    journal.begin("good-1", "good", 1.0)
    journal.append("good-1", rxr.JournalEntry("step_succeeded", "a", b"2"), 1.0)
    undone: list[str] = []
    scheduler = TestScheduler()
    scheduler.advance_to(100.0)

    events = recover(journal, {**broken(undone), "good": good_saga(undone)}, scheduler)

    assert events[-1] == "completed"
    failures = [e for e in events if isinstance(e, rxr.RecoveryFailed)]
    assert [f.saga_id for f in failures] == ["bad-1"]
    reason = failures[0].reason
    assert reason_part in reason
    assert rxr.StepCompensated("a", "good-1") in events
    assert undone == ["good"]
    assert pending(scheduler) == []

    bad = journal.state("bad-1")
    assert bad is not None
    assert (bad.status, bad.problem) == ("running", reason)
    record = journal.load("bad-1")
    assert record is not None
    assert record.entries[-1] == rxr.JournalEntry("recovery_failed", "", None, reason)
    good = journal.state("good-1")
    assert good is not None
    assert (good.status, good.problem) == ("compensated", None)
    assert journal.unfinished() == ["bad-1"]

    # The lease was given up: the next recoverer takes it at once (here the
    # code is still broken, so it fails the same way).
    again = recover(journal, broken(undone), scheduler)
    assert [e.saga_id for e in again if isinstance(e, rxr.RecoveryFailed)] == ["bad-1"]
    assert again[-1] == "completed"
    assert pending(scheduler) == []

    # Once the code is fixed, the saga is recovered and its problem cleared.
    done = recover(journal, fixed(undone), scheduler)
    assert not any(isinstance(e, rxr.RecoveryFailed) for e in done)
    assert done[-2:] == [rxr.StepCompensated("a", "bad-1"), "completed"]
    assert undone == ["good", "bad"]
    bad = journal.state("bad-1")
    assert bad is not None
    assert (bad.status, bad.problem) == ("compensated", None)
    assert journal.unfinished() == []
    assert pending(scheduler) == []


def test_a_hung_compensation_fails_recovery_on_recovers_budget(
    journal: rxr.SagaJournal,
) -> None:
    journal.begin("bad-1", "bad", 0.0)
    journal.append("bad-1", rxr.JournalEntry("step_succeeded", "a", b"1"), 0.0)
    scheduler = TestScheduler()
    scheduler.advance_to(100.0)
    events: list[tuple[float, Any]] = []
    rxr.recover(
        journal,
        {"bad": plain_saga(hanging)},
        stale_after=1.0,
        scheduler=scheduler,
        compensation_timeout=20.0,
    ).subscribe(
        on_next=lambda e: events.append((scheduler.clock, type(e).__name__)),
        on_completed=lambda: events.append((scheduler.clock, "completed")),
    )
    scheduler.advance_by(1000.0)
    assert events == [
        (100.0, "CompensationStarted"),
        (120.0, "CompensationFailed"),
        (120.0, "RecoveryFailed"),
        (120.0, "completed"),
    ]
    assert pending(scheduler) == []


def test_the_problem_is_cleared_once_a_later_recovery_makes_progress() -> None:
    journal = rxr.InMemorySagaJournal()
    journal.begin("s", "bad", 0.0)
    for entry in [
        rxr.JournalEntry("step_succeeded", "a", b"1"),
        rxr.JournalEntry("recovery_failed", "", None, "first"),
    ]:
        journal.append("s", entry, 0.0)
    state = journal.state("s")
    assert state is not None
    assert state.problem == "first"
    journal.append("s", rxr.JournalEntry("compensation_started", "a"), 0.0)
    state = journal.state("s")
    assert state is not None
    assert state.problem is None


def test_a_live_runs_failing_compensation_still_ends_failed(
    journal: rxr.SagaJournal,
) -> None:
    saga = (
        rxr.Saga("live")
        .step("a", rx.of, raising)
        .step("b", lambda n: rx.throw(OSError()))
    )
    saga.execute(1, journal=journal, saga_id="l").subscribe(on_error=lambda _: None)
    state = journal.state("l")
    assert state is not None
    assert (state.status, state.problem) == ("failed", None)


def test_recovery_failed_is_public() -> None:
    from rxresilience.saga import RecoveryFailed

    assert RecoveryFailed is rxr.RecoveryFailed
    event = rxr.RecoveryFailed("s", "why")
    assert (event.saga_id, event.reason) == ("s", "why")


@pytest.mark.parametrize("cause", ["context-no-longer-decodes", "compensation-raises"])
def test_recovery_failed_is_published_on_the_sagas_events_too(cause: str) -> None:
    name, context, broken, _, _ = CASES[cause]
    journal = rxr.InMemorySagaJournal()
    journal.begin("bad-1", name, 0.0)
    journal.append("bad-1", rxr.JournalEntry("step_succeeded", "a", context), 0.0)
    sagas = broken([])
    seen: list[Any] = []
    sagas["bad"].events.subscribe(seen.append)
    scheduler = TestScheduler()
    scheduler.advance_to(100.0)
    events = recover(journal, sagas, scheduler)
    failed = [e for e in events if isinstance(e, rxr.RecoveryFailed)]
    assert len(failed) == 1
    assert failed[0] in seen


class Unreachable(rxr.InMemorySagaJournal):
    """A journal that cannot be reached for one saga's record."""

    def load(self, saga_id: str) -> rxr.SagaRecord | None:
        if saga_id == "bad-1":
            raise OSError("journal unreachable")
        return super().load(saga_id)


def test_a_journal_that_fails_for_one_saga_is_announced_and_the_others_recovered() -> (
    None
):
    journal = Unreachable()
    journal.begin("bad-1", "good", 0.0)
    journal.begin("good-1", "good", 1.0)
    journal.append("good-1", rxr.JournalEntry("step_succeeded", "a", b"2"), 1.0)
    undone: list[str] = []
    scheduler = TestScheduler()
    scheduler.advance_to(100.0)
    events = recover(journal, {"good": good_saga(undone)}, scheduler)
    failed = [e for e in events if isinstance(e, rxr.RecoveryFailed)]
    assert [f.saga_id for f in failed] == ["bad-1"]
    assert "journal unreachable" in failed[0].reason
    assert rxr.StepCompensated("a", "good-1") in events
    assert events[-1] == "completed"
    assert undone == ["good"]


# --- found by a hostile review ------------------------------------------------------------


def test_recovering_a_thousand_sagas_with_nothing_left_to_undo_nests_nothing() -> None:
    journal = rxr.InMemorySagaJournal()
    saga = rxr.Saga("o").step("a", rx.of, lambda ctx: rx.empty())
    for index in range(1000):
        journal.begin(f"s{index}", "o", 0.0)
        journal.append(f"s{index}", rxr.JournalEntry("compensated", "a"), 0.0)
    scheduler = TestScheduler()
    scheduler.advance_to(100.0)
    ended: list[Any] = []
    rxr.recover(journal, {"o": saga}, stale_after=1.0, scheduler=scheduler).subscribe(
        on_error=ended.append, on_completed=lambda: ended.append("done")
    )
    assert ended == ["done"]
    assert journal.unfinished() == []


def test_one_saga_recovery_cannot_read_does_not_stop_the_others() -> None:
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Order:
        id: str

    journal = rxr.InMemorySagaJournal()
    undone: list[str] = []
    saga = rxr.Saga("o", codec=rxr.DataclassCodec(Order)).step(
        "a",
        rx.of,
        lambda order: rx.empty().pipe(
            ops.do_action(on_completed=lambda: undone.append(order.id))
        ),
    )
    journal.begin("bad", "o", 0.0)
    journal.append("bad", rxr.JournalEntry("step_succeeded", "a", b'{"wrong":1}'), 0.0)
    journal.begin("good", "o", 0.0)
    journal.append("good", rxr.JournalEntry("step_succeeded", "a", b'{"id":"g"}'), 0.0)
    scheduler = TestScheduler()
    scheduler.advance_to(100.0)
    ended: list[Any] = []
    rxr.recover(journal, {"o": saga}, stale_after=1.0, scheduler=scheduler).subscribe(
        on_error=ended.append, on_completed=lambda: ended.append("done")
    )
    assert ended == ["done"]
    assert undone == ["g"]
    assert journal.unfinished() == ["bad"]  # left for when the code is fixed


def test_a_step_whose_result_was_never_journaled_is_not_left_for_dead_by_recovery() -> (
    None
):
    # Step b's result did not encode (a Decimal): its success was dropped
    # from the journal, the run compensated it live, and the process died
    # during that compensation. Recovery saw b as never succeeded, undid a
    # alone and called the saga compensated, b's effect left in place.
    import decimal

    undone: list[str] = []
    scheduler = TestScheduler()
    journal = rxr.InMemorySagaJournal()
    saga = (
        rxr.Saga[Any]("pay")
        .step("a", execute=lambda n: rx.of(1), compensate=undoing(undone, "a"))
        .step(
            "b",
            execute=lambda n: rx.of(decimal.Decimal("9.99")),
            compensate=lambda n: rx.never(),  # the process dies during it
        )
    )
    saga.execute(0, journal=journal, saga_id="s-1").subscribe(scheduler=scheduler)
    scheduler.advance_to(1.0)
    record = journal.load("s-1")
    assert record is not None
    succeeded_b = [
        e for e in record.entries if (e.kind, e.step) == ("step_succeeded", "b")
    ]
    assert len(succeeded_b) == 1
    assert succeeded_b[0].context is None
    assert "Decimal" in (succeeded_b[0].error or "")

    # The crash, as the next process finds it: the same entries, owner gone.
    crashed = rxr.InMemorySagaJournal()
    crashed.begin("s-1", "pay", 0.0)
    for entry in record.entries:
        crashed.append("s-1", entry, 0.0)
    later = TestScheduler()
    later.advance_to(100.0)
    events = recover(crashed, {"pay": saga}, later)
    failures = [e for e in events if isinstance(e, rxr.RecoveryFailed)]
    assert [f.saga_id for f in failures] == ["s-1"]
    assert "'b'" in failures[0].reason
    assert "never journaled" in failures[0].reason
    state = crashed.state("s-1")
    assert state is not None
    assert state.status == "running"  # for a person to decide, not "compensated"
    assert undone == []


class Interrupting(rxr.InMemorySagaJournal):
    """Raises ``error`` out of ``method``."""

    def __init__(self, method: str, error: BaseException | None, answer: Any = None):
        super().__init__()
        self.method, self.error, self.answer = method, error, answer

    def load(self, saga_id: str) -> rxr.SagaRecord | None:
        if self.method == "load" and self.error is not None:
            raise self.error
        return super().load(saga_id)

    def unfinished(self) -> list[str]:
        if self.method == "unfinished":
            if self.error is not None:
                raise self.error
            return self.answer  # type: ignore[no-any-return]
        return super().unfinished()


@pytest.mark.parametrize("method", ["load", "unfinished"])
def test_a_ctrl_c_out_of_the_journal_during_recovery_reaches_the_caller(
    method: str,
) -> None:
    # It became a RuntimeError, reported as RecoveryFailed, and recovery
    # went on with the next saga.
    journal = Interrupting(method, KeyboardInterrupt())
    journal.begin("s-1", "plain", 0.0)
    with pytest.raises(KeyboardInterrupt):
        rxr.recover(journal, {}).subscribe(scheduler=TestScheduler())


def test_a_journal_listing_what_is_no_list_of_ids_fails_the_recovery_under_asyncio() -> (
    None
):
    # The TypeError went to asyncio's exception handler and the recovery
    # never ended.
    journal = Interrupting("unfinished", None, answer=None)
    journal.writes_may_block = True  # type: ignore[misc]

    async def main() -> Any:
        return await asyncio.wait_for(rxr.to_async(rxr.recover(journal, {})), 5.0)

    with pytest.raises(TypeError, match=r"unfinished\(\) must answer a list"):
        asyncio.run(main())


def test_a_recovery_an_exception_tore_through_renews_its_saga_no_more() -> None:
    class Stop(BaseException):  # as a KeyboardInterrupt would
        pass

    scheduler = TestScheduler()
    journal = rxr.InMemorySagaJournal()
    journal.begin("s-1", "o", 0.0)
    journal.append("s-1", rxr.JournalEntry("step_succeeded", "a", b"1"), 0.0)
    journal.append("s-1", rxr.JournalEntry("step_succeeded", "b", b"2"), 0.0)
    slow = lambda n: rx.timer(1.0)  # noqa: E731
    saga = (
        rxr.Saga[Any]("o", lease=3.0)
        .step("a", rx.of, compensate=slow)
        .step("b", rx.of, compensate=slow)
    )
    scheduler.advance_to(100.0)

    def interrupted(event: Any) -> None:
        if isinstance(event, rxr.StepCompensated):
            raise Stop

    rxr.recover(journal, {"o": saga}, scheduler=scheduler).subscribe(
        interrupted, scheduler=scheduler
    )
    with pytest.raises(Stop):
        scheduler.advance_to(105.0)
    scheduler.stop()  # the interrupted advance left the scheduler marked running
    scheduler.advance_to(10_000.0)
    record = journal.load("s-1")
    assert record is not None
    assert record.lease_until is not None
    assert record.lease_until < 110.0  # renewed no more: it lapsed long ago


def test_a_disposed_recovery_takes_no_further_saga_and_finishes_the_one_under_way() -> (
    None
):
    # Disposed, it went on taking and compensating every saga left.
    scheduler = TestScheduler()
    journal = rxr.InMemorySagaJournal()
    for saga_id in ("s-1", "s-2", "s-3"):
        journal.begin(saga_id, "o", 0.0)
        journal.append(saga_id, rxr.JournalEntry("step_succeeded", "a", b"1"), 0.0)
    undone: list[float] = []
    saga = rxr.Saga[Any]("o").step(
        "a",
        rx.of,
        compensate=lambda n: rx.timer(1.0).pipe(
            ops.do_action(lambda _: undone.append(scheduler.clock))
        ),
    )
    scheduler.advance_to(100.0)
    subscription = rxr.recover(journal, {"o": saga}, scheduler=scheduler).subscribe(
        scheduler=scheduler
    )
    scheduler.advance_to(100.5)  # the first saga's compensation under way
    subscription.dispose()
    scheduler.advance_to(1000.0)
    assert undone == [101.0]
    statuses = [journal.load(i).status for i in ("s-1", "s-2", "s-3")]  # type: ignore[union-attr]
    assert sorted(statuses) == ["compensated", "running", "running"]
    assert pending(scheduler) == []
