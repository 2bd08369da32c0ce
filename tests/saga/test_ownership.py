"""Sagas, part 2: an owner holds its saga by a renewed lease; every write is fenced.

A run (or a recoverer) writes ``lease_until`` and an owner token when it takes
a saga, renews the lease every third of it while it works, and writes only
while it still holds the saga. ``recover`` takes a saga only once its lease
has run out (plus ``stale_after``); rows written by 0.1 have no lease, and
their ``touched + stale_after`` decides.
"""

from __future__ import annotations

import pathlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr

from .. import _saga_worker as worker
from .._support import POSITIVE_DURATIONS_OUT_OF_RANGE, pending


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def journal(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Any]:
    yield from worker.journal_of(request, tmp_path)


class OldJournal(rxr.SagaJournal):
    """A journal written against 0.1: no ownership methods."""

    def __init__(self, inner: rxr.SagaJournal | None = None) -> None:
        self.inner = inner if inner is not None else rxr.InMemorySagaJournal()

    def begin(self, saga_id: str, saga_name: str, now: float) -> None:
        self.inner.begin(saga_id, saga_name, now)

    def append(self, saga_id: str, entry: rxr.JournalEntry, now: float) -> None:
        self.inner.append(saga_id, entry, now)

    def finish(self, saga_id: str, status: str, now: float) -> None:
        self.inner.finish(saga_id, status, now)

    def load(self, saga_id: str) -> rxr.SagaRecord | None:
        return self.inner.load(saga_id)

    def unfinished(self) -> list[str]:
        return self.inner.unfinished()

    def claim_stale(self, saga_id: str, now: float, stale_before: float) -> bool:
        return self.inner.claim_stale(saga_id, now, stale_before)


class Flaky(OldJournal):
    """A journal whose renewals can be made to fail (as if it were unreachable)."""

    def __init__(self, inner: rxr.SagaJournal) -> None:
        super().__init__(inner)
        self.down = False
        self.renewals: list[float] = []

    def begin_owned(
        self,
        saga_id: str,
        saga_name: str,
        now: float,
        *,
        owner: str,
        lease_until: float,
    ) -> None:
        self.inner.begin_owned(
            saga_id, saga_name, now, owner=owner, lease_until=lease_until
        )

    def append_owned(
        self, saga_id: str, entry: rxr.JournalEntry, now: float, *, owner: str
    ) -> bool:
        return self.inner.append_owned(saga_id, entry, now, owner=owner)

    def finish_owned(
        self, saga_id: str, status: str, now: float, *, owner: str
    ) -> bool:
        return self.inner.finish_owned(saga_id, status, now, owner=owner)

    def take(
        self,
        saga_id: str,
        now: float,
        *,
        owner: str,
        lease_until: float,
        stale_before: float,
    ) -> bool:
        return self.inner.take(
            saga_id,
            now,
            owner=owner,
            lease_until=lease_until,
            stale_before=stale_before,
        )

    def renew(
        self, saga_id: str, now: float, *, owner: str, lease_until: float
    ) -> bool:
        if self.down:
            raise rxr.SagaError("journal unreachable")
        self.renewals.append(now)
        return self.inner.renew(saga_id, now, owner=owner, lease_until=lease_until)


def recover_at(
    scheduler: TestScheduler,
    journal: rxr.SagaJournal,
    sagas: dict[str, rxr.Saga[Any]],
    at: float,
    into: list[Any],
    **options: Any,
) -> None:
    """Subscribe a recoverer at virtual time ``at``; its events go to ``into``."""

    def go(_: Any, __: Any = None) -> None:
        rxr.recover(journal, sagas, scheduler=scheduler, **options).subscribe(
            into.append, into.append
        )

    scheduler.schedule_absolute(at, go)


def slow_step(scheduler: TestScheduler, seconds: float) -> Any:
    return lambda ctx: rx.timer(seconds, scheduler=scheduler).pipe(
        ops.map(lambda _: ctx)
    )


# --- a live owner is never taken --------------------------------------------------------


def test_a_live_saga_whose_step_lasts_three_leases_is_never_taken(journal: Any) -> None:
    scheduler = TestScheduler()
    undone: list[Any] = []
    saga: rxr.Saga[str] = rxr.Saga("s", lease=30.0).step(
        "slow",
        execute=slow_step(scheduler, 90.0),
        compensate=lambda ctx: undone.append(ctx),
        compensate_on_failure=True,
    )
    events: list[Any] = []
    saga.execute("x", journal=journal, saga_id="s-1").subscribe(
        events.append, events.append, scheduler=scheduler
    )
    recovered: list[Any] = []
    for at in range(1, 90, 4):
        recover_at(scheduler, journal, {"s": saga}, float(at), recovered)
    scheduler.advance_to(200.0)
    assert recovered == []
    assert undone == []
    assert isinstance(events[-1], rxr.SagaCompleted)
    state = journal.state("s-1")
    assert state is not None
    assert state.status == "completed"
    assert pending(scheduler) == [], "a renewal timer is left behind"


def test_an_owner_that_stops_renewing_is_taken_one_lease_after_its_last_renewal(
    journal: Any,
) -> None:
    scheduler = TestScheduler()
    flaky = Flaky(journal)
    undone: list[Any] = []
    saga: rxr.Saga[str] = rxr.Saga("s", lease=30.0).step(
        "stuck",
        execute=lambda ctx: rx.never(),
        compensate=lambda ctx: undone.append(ctx),
        compensate_on_failure=True,
    )
    events: list[Any] = []
    saga.execute("x", journal=flaky, saga_id="s-1").subscribe(
        events.append, events.append, scheduler=scheduler
    )
    scheduler.advance_to(25.0)
    assert flaky.renewals == [10.0, 20.0]  # every third of the lease
    flaky.down = True  # renewals fail from now on: the last one was at 20
    early: list[Any] = []
    recover_at(scheduler, journal, {"s": saga}, 49.0, early)
    late: list[Any] = []
    recover_at(scheduler, journal, {"s": saga}, 51.0, late)
    scheduler.advance_to(51.0)
    assert early == []
    assert undone == ["x"]
    assert [type(e).__name__ for e in late] == [
        "CompensationStarted",
        "StepCompensated",
    ]
    # The journal answers again: the old owner's next renewal hears "not yours".
    flaky.down = False
    scheduler.advance_to(200.0)
    assert isinstance(events[-1], rxr.SagaOwnershipLostError)
    assert isinstance(events[-1], rxr.SagaError)
    state = journal.state("s-1")
    assert state is not None
    assert state.status == "compensated"
    assert undone == ["x"]
    assert pending(scheduler) == []


def test_a_renewal_that_cannot_reach_the_journal_is_retried_and_the_run_goes_on(
    journal: Any,
) -> None:
    scheduler = TestScheduler()
    flaky = Flaky(journal)
    saga: rxr.Saga[str] = rxr.Saga("s", lease=30.0).step(
        "slow", execute=slow_step(scheduler, 100.0)
    )
    events: list[Any] = []
    saga.execute("x", journal=flaky, saga_id="s-1").subscribe(
        events.append, events.append, scheduler=scheduler
    )
    scheduler.advance_to(15.0)
    flaky.down = True
    scheduler.advance_to(70.0)  # past the lease: nobody took it, though
    flaky.down = False
    scheduler.advance_to(200.0)
    assert isinstance(events[-1], rxr.SagaCompleted)
    assert [t for t in flaky.renewals if t > 70] != []  # renewing again
    state = journal.state("s-1")
    assert state is not None
    assert state.status == "completed"
    assert pending(scheduler) == []


def test_a_slow_compensation_under_recovery_is_never_run_by_a_second_recoverer(
    journal: Any,
) -> None:
    dead = TestScheduler()  # the crashed process's clock: it never moves again
    scheduler = TestScheduler()
    calls: list[float] = []

    def undo(ctx: Any) -> rx.Observable[Any]:
        calls.append(scheduler.clock)
        return rx.timer(90.0, scheduler=scheduler)

    saga: rxr.Saga[str] = (
        rxr.Saga("s", lease=30.0)
        .step("a", execute=rx.of, compensate=undo)
        .step("b", execute=lambda ctx: rx.never())
    )
    saga.execute("x", journal=journal, saga_id="s-1").subscribe(scheduler=dead)
    dead.advance_to(1.0)
    first: list[Any] = []
    recover_at(scheduler, journal, {"s": saga}, 100.0, first)
    others: list[Any] = []
    for at in (101.0, 120.0, 135.0, 150.0, 170.0, 189.0):
        recover_at(scheduler, journal, {"s": saga}, at, others)
    scheduler.advance_to(400.0)
    assert calls == [100.0]
    assert others == []
    assert [type(e).__name__ for e in first] == [
        "CompensationStarted",
        "StepCompensated",
    ]
    state = journal.state("s-1")
    assert state is not None
    assert state.status == "compensated"
    assert pending(scheduler) == []


# --- fencing: a run that lost its saga stops at once ----------------------------------


@pytest.mark.parametrize("told_by", ["renewal", "write"])
def test_a_run_that_lost_its_saga_writes_nothing_more_and_starts_no_step(
    journal: Any, told_by: str
) -> None:
    scheduler = TestScheduler()
    flaky = Flaky(journal)
    started: list[str] = []

    def step(name: str, seconds: float) -> Any:
        def execute(ctx: str) -> rx.Observable[str]:
            started.append(name)
            return rx.timer(seconds, scheduler=scheduler).pipe(ops.map(lambda _: ctx))

        return execute

    saga: rxr.Saga[str] = (
        rxr.Saga("s", lease=30.0)
        .step("a", execute=step("a", 100.0), compensate=lambda ctx: None)
        .step("b", execute=step("b", 1.0), compensate=lambda ctx: None)
    )
    events: list[Any] = []
    saga.execute("x", journal=flaky, saga_id="s-1").subscribe(
        events.append, events.append, scheduler=scheduler
    )
    scheduler.advance_to(5.0)
    flaky.down = True
    recovered: list[Any] = []
    recover_at(scheduler, journal, {"s": saga}, 31.0, recovered)
    scheduler.advance_to(35.0)
    taken = journal.load("s-1")
    assert taken is not None
    assert taken.status == "compensated"
    if told_by == "renewal":
        flaky.down = False  # the renewal at 40 hears "not yours"
    scheduler.advance_to(300.0)
    assert started == ["a"]
    assert isinstance(events[-1], rxr.SagaOwnershipLostError)
    assert events[-1].saga_id == "s-1"
    assert [type(e).__name__ for e in events[:-1]] == ["StepStarted"]
    assert journal.load("s-1") == taken  # not one more write
    assert pending(scheduler) == []


def test_a_run_that_lost_its_saga_while_compensating_starts_no_further_compensation(
    journal: Any,
) -> None:
    scheduler = TestScheduler()
    flaky = Flaky(journal)
    undone: list[tuple[str, float]] = []

    def undo(name: str, seconds: float) -> Any:
        def compensate(ctx: str) -> rx.Observable[Any]:
            undone.append((name, scheduler.clock))
            return rx.timer(seconds, scheduler=scheduler)

        return compensate

    saga: rxr.Saga[str] = (
        rxr.Saga("s", lease=30.0)
        .step("a", execute=rx.of, compensate=undo("a", 1.0))
        .step("b", execute=rx.of, compensate=undo("b", 100.0))
        .step("c", execute=lambda ctx: rx.throw(RuntimeError("boom")))
    )
    events: list[Any] = []
    saga.execute("x", journal=flaky, saga_id="s-1").subscribe(
        events.append, events.append, scheduler=scheduler
    )
    scheduler.advance_to(5.0)
    flaky.down = True  # the run's lease ends at 30
    recovered: list[Any] = []
    recover_at(scheduler, journal, {"s": saga}, 31.0, recovered)
    scheduler.advance_to(400.0)
    # b's compensation started and never ended in the journal: the recoverer
    # runs it again (its key lets the participant deduplicate); the old owner
    # hears "not yours" when its own ends, and never starts a's.
    assert undone == [("b", 0.0), ("b", 31.0), ("a", 131.0)]
    assert isinstance(events[-1], rxr.SagaOwnershipLostError)
    assert not any(isinstance(e, rxr.SagaFailed) for e in events)
    assert [type(e).__name__ for e in recovered] == [
        "CompensationStarted",
        "StepCompensated",
        "CompensationStarted",
        "StepCompensated",
    ]
    state = journal.state("s-1")
    assert state is not None
    assert state.status == "compensated"
    assert pending(scheduler) == []


def test_the_lost_error_is_a_saga_error_that_pickles() -> None:
    import pickle

    error = rxr.SagaOwnershipLostError("s-1")
    assert isinstance(error, rxr.SagaError)
    again = pickle.loads(pickle.dumps(error))
    assert again.saga_id == "s-1"
    assert str(again) == str(error)


def test_journals_fence_every_write_on_the_owner_token(journal: Any) -> None:
    entry = rxr.JournalEntry("step_started", "a", b"1")
    journal.begin_owned("s-1", "s", 0.0, owner="me", lease_until=30.0)
    assert journal.append_owned("s-1", entry, 1.0, owner="me")
    assert not journal.append_owned("s-1", entry, 1.0, owner="other")
    assert not journal.renew("s-1", 2.0, owner="other", lease_until=40.0)
    assert journal.renew("s-1", 2.0, owner="me", lease_until=32.0)
    assert not journal.take(
        "s-1", 31.0, owner="other", lease_until=61.0, stale_before=31.0
    )
    assert journal.take("s-1", 33.0, owner="other", lease_until=63.0, stale_before=33.0)
    assert not journal.take(
        "s-1", 34.0, owner="third", lease_until=64.0, stale_before=34.0
    )
    assert not journal.append_owned("s-1", entry, 34.0, owner="me")
    assert not journal.renew("s-1", 34.0, owner="me", lease_until=64.0)
    assert not journal.finish_owned("s-1", "completed", 34.0, owner="me")
    record = journal.load("s-1")
    assert record.status == "running"
    assert len(record.entries) == 1
    assert journal.finish_owned("s-1", "compensated", 35.0, owner="other")
    assert journal.state("s-1").status == "compensated"
    assert journal.unfinished() == []
    with pytest.raises(rxr.SagaError, match="already in the journal"):
        journal.begin_owned("s-1", "s", 0.0, owner="me", lease_until=30.0)


def test_an_error_text_holding_nul_fails_no_write_of_its_batch(journal: Any) -> None:
    # PostgreSQL text holds no NUL: the whole batch failed there, every other
    # journal wrote it.
    failed = rxr.JournalEntry("step_failed", "a", None, "bad\x00text")
    started = rxr.JournalEntry("step_started", "a", b"1")
    done = journal.write_owned(
        [
            rxr.JournalWrite("s-1", "me", 0.0, (failed,), begin="s", lease_until=30.0),
            rxr.JournalWrite("s-2", "me", 0.0, (started,), begin="s", lease_until=30.0),
        ]
    )
    assert done == [True, True]
    error = journal.load("s-1").entries[0].error
    assert error in ("bad\x00text", "bad\\x00text")  # PostgreSQL: as describe() writes
    assert len(journal.load("s-2").entries) == 1


# --- the public base class ---------------------------------------------------------------


def test_a_journal_written_against_0_1_is_refused_naming_what_it_lacks() -> None:
    old = OldJournal()
    saga = rxr.Saga("s").step("a", execute=rx.of, compensate=lambda ctx: None)
    missing = (
        r"begin_owned\(\), append_owned\(\), finish_owned\(\), take\(\), renew\(\)"
    )
    with pytest.raises(TypeError, match=missing):
        saga.execute(1, journal=old, saga_id="s-1")
    with pytest.raises(TypeError, match=missing):
        rxr.recover(old, {"s": saga}, stale_after=60)
    old.begin("s-1", "s", 0.0)  # what 0.1 offered still works
    assert old.unfinished() == ["s-1"]
    with pytest.raises(NotImplementedError, match="renew"):
        old.renew("s-1", 1.0, owner="me", lease_until=2.0)


def test_the_journals_shipped_support_ownership(journal: Any) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rxr.Saga("s").step("a", execute=rx.of).execute(1, journal=journal)
        rxr.recover(journal, {})


@pytest.mark.parametrize(("value", "error"), POSITIVE_DURATIONS_OUT_OF_RANGE)
def test_a_lease_out_of_range_is_refused_naming_it(
    value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"^lease "):
        rxr.Saga("s", lease=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [1e-6, 0.0999])
def test_a_lease_too_short_to_outlast_a_write_is_refused(value: float) -> None:
    # Accepted, a microsecond lease was renewed in a hot loop (894 SQLite
    # transactions in a one-second step), and lapsed under a live owner.
    with pytest.raises(ValueError, match=r"^lease must be at least 0.1 seconds"):
        rxr.Saga("s", lease=value)
    rxr.Saga("s", lease=0.1)


def test_stale_after_zero_is_allowed_and_is_the_default() -> None:
    journal = rxr.InMemorySagaJournal()
    saga = rxr.Saga("s").step("a", execute=rx.of, compensate=lambda ctx: None)
    journal.begin_owned("s-1", "s", 0.0, owner="dead", lease_until=30.0)
    journal.append_owned(
        "s-1", rxr.JournalEntry("step_succeeded", "a", b"1"), 1.0, owner="dead"
    )
    early = rxr.recover(
        journal, {"s": saga}, stale_after=0, scheduler=TestScheduler(29)
    )
    assert early.pipe(ops.to_list()).run() == []
    late = rxr.recover(journal, {"s": saga}, scheduler=TestScheduler(31))
    assert len(late.pipe(ops.to_list()).run()) == 2


# --- rows written by 0.1 -----------------------------------------------------------------

_V01_SCHEMA = """
CREATE TABLE rxr_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO rxr_meta VALUES ('saga_schema', '1');
CREATE TABLE rxr_sagas (
    saga_id TEXT PRIMARY KEY, saga_name TEXT NOT NULL, status TEXT NOT NULL,
    touched REAL NOT NULL
);
CREATE TABLE rxr_saga_entries (
    saga_id TEXT NOT NULL REFERENCES rxr_sagas (saga_id), seq INTEGER NOT NULL,
    kind TEXT NOT NULL, step TEXT NOT NULL, context BLOB, error TEXT,
    PRIMARY KEY (saga_id, seq)
);
CREATE INDEX rxr_sagas_running ON rxr_sagas (status, touched);
INSERT INTO rxr_sagas VALUES ('old-1', 's', 'running', 1000.0);
INSERT INTO rxr_saga_entries VALUES ('old-1', 1, 'step_started', 'a', X'227822', NULL);
INSERT INTO rxr_saga_entries VALUES ('old-1', 2, 'step_succeeded', 'a', X'227822', NULL);
"""


def write_v01_redis(client: Any, prefix: str) -> None:
    """What 0.1's RedisSagaJournal wrote for a saga that step ``a`` had succeeded in."""
    client.hset(
        f"{prefix}old-1:meta",
        mapping={"name": "s", "status": "running", "touched": "1000.0"},
    )
    client.zadd(f"{prefix}running", {"old-1": 1000.0})
    for kind in ("step_started", "step_succeeded"):
        client.rpush(
            f"{prefix}old-1:entries",
            f'{{"kind": "{kind}", "step": "a", "context": "Ingi", "error": null}}',
        )


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_saga_written_by_0_1_is_taken_once_untouched_for_stale_after(
    kind: str, tmp_path: pathlib.Path, request: pytest.FixtureRequest
) -> None:
    journal: rxr.SagaJournal
    if kind == "sqlite":
        path = tmp_path / "sagas-v01.db"
        db = sqlite3.connect(path)
        db.executescript(_V01_SCHEMA)
        db.close()
        journal = rxr.SQLiteSagaJournal(path)
    else:
        server = request.getfixturevalue("redis_server")
        prefix = f"v01-{uuid.uuid4().hex}:"
        write_v01_redis(server.client(), prefix)
        journal = rxr.RedisSagaJournal(server.client(), prefix=prefix)
    undone: list[Any] = []
    saga = rxr.Saga("s").step("a", execute=rx.of, compensate=undone.append)
    assert journal.unfinished() == ["old-1"]
    early = rxr.recover(
        journal, {"s": saga}, stale_after=60, scheduler=TestScheduler(1059)
    )
    assert early.pipe(ops.to_list()).run() == []
    late = rxr.recover(
        journal, {"s": saga}, stale_after=60, scheduler=TestScheduler(1061)
    )
    assert len(late.pipe(ops.to_list()).run()) == 2
    assert undone == ["x"]
    state = journal.state("old-1")
    assert state is not None
    assert state.status == "compensated"
    journal.close()


# --- threads, on the real clock ---------------------------------------------------------


def test_recoverers_on_threads_never_take_a_live_saga_from_its_renewing_owner(
    journal: Any,
) -> None:
    undone: list[Any] = []
    saga: rxr.Saga[str] = rxr.Saga("s", lease=0.5).step(
        "slow",
        execute=lambda ctx: rx.timer(1.6).pipe(ops.map(lambda _: ctx)),
        compensate=undone.append,
        compensate_on_failure=True,
    )
    done = threading.Event()
    saga.execute("x", journal=journal, saga_id="s-1").subscribe(
        on_completed=done.set, on_error=lambda e: done.set()
    )
    stop = threading.Event()
    taken: list[Any] = []

    def recoverer() -> None:
        while not stop.is_set():
            taken.extend(rxr.recover(journal, {"s": saga}).pipe(ops.to_list()).run())
            stop.wait(0.01)  # real threads: a short real pause between looks

    threads = [threading.Thread(target=recoverer) for _ in range(4)]
    for thread in threads:
        thread.start()
    assert done.wait(10)
    stop.set()
    for thread in threads:
        thread.join()
    assert taken == []
    assert undone == []
    assert worker.wait_until_terminal(journal, "s-1").status == "completed"


# --- two processes on SQLite ------------------------------------------------------------


def start_slow_saga(
    tmp_path: pathlib.Path, lease: float, step_seconds: float, elsewhere: bool = False
) -> tuple[Any, str, str]:
    import multiprocessing

    journal_path = str(tmp_path / "sagas.db")
    effects_path = str(tmp_path / "effects.db")
    rxr.SQLiteSagaJournal(journal_path).close()
    child = multiprocessing.get_context("spawn").Process(
        target=worker.run_slow_saga,
        args=(journal_path, effects_path, lease, step_seconds, elsewhere),
    )
    child.start()
    deadline = time.monotonic() + 60
    while "a started" not in worker.effects(effects_path):
        assert time.monotonic() < deadline, "the child never started its saga"
        child.join(0.01)
    return child, journal_path, effects_path


def test_another_process_never_takes_a_live_saga_whose_step_lasts_three_leases(
    tmp_path: pathlib.Path,
) -> None:
    child, journal_path, effects_path = start_slow_saga(tmp_path, 0.5, 1.6)
    journal = rxr.SQLiteSagaJournal(journal_path)
    saga = worker.slow_saga(effects_path, 0.5, 1.6)
    taken: list[Any] = []
    while child.is_alive():
        taken.extend(rxr.recover(journal, {"slow": saga}).pipe(ops.to_list()).run())
        child.join(0.02)
    assert child.exitcode == 0
    assert taken == []
    assert worker.effects(effects_path) == ["a started", "b started", "completed"]
    assert journal.state("slow-1").status == "completed"
    journal.close()


def test_a_process_paused_past_its_lease_is_taken_over_and_stops_when_resumed(
    tmp_path: pathlib.Path,
) -> None:
    import os
    import signal

    child, journal_path, effects_path = start_slow_saga(tmp_path, 0.3, 2.0)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGSTOP)  # slow, not dead: its lease runs out
    try:
        child.join(0.6)  # a real process, paused: let its 0.3 s lease run out
        journal = rxr.SQLiteSagaJournal(journal_path)
        saga = worker.slow_saga(effects_path, 0.3, 2.0)
        events = rxr.recover(journal, {"slow": saga}).pipe(ops.to_list()).run()
    finally:
        os.kill(child.pid, signal.SIGCONT)
    assert [type(e).__name__ for e in events] == [
        "CompensationStarted",
        "StepCompensated",
    ]
    child.join(30)
    assert child.exitcode == 0
    assert worker.effects(effects_path) == [
        "a started",
        "undo a",
        "error SagaOwnershipLostError",
    ]
    record = journal.load("slow-1")
    assert record is not None
    assert record.status == "compensated"
    assert [e.kind for e in record.entries] == [
        "step_started",
        "compensation_started",
        "compensated",
    ]
    journal.close()


def test_a_sigkilled_owner_on_another_machine_is_taken_one_lease_after_its_renewal(
    tmp_path: pathlib.Path,
) -> None:
    import os
    import signal

    child, journal_path, effects_path = start_slow_saga(tmp_path, 2.0, 60.0, True)
    journal = rxr.SQLiteSagaJournal(journal_path)
    record = journal.load("slow-1")
    assert record is not None
    assert record.owner is not None
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    # Read after its death: its last renewal is the one that counts.
    until = journal.load("slow-1").lease_until  # type: ignore[union-attr]
    assert until is not None
    saga = worker.slow_saga(effects_path, 2.0, 60.0)

    def recover_at(clock: float) -> list[Any]:
        events = rxr.recover(journal, {"slow": saga}, scheduler=TestScheduler(clock))
        return events.pipe(ops.to_list()).run()

    assert recover_at(until - 0.01) == []  # not gone: it could be slow
    assert [type(e).__name__ for e in recover_at(until + 0.01)] == [
        "CompensationStarted",
        "StepCompensated",
    ]
    assert worker.effects(effects_path) == ["a started", "undo a"]
    journal.close()


class RenewalLog(rxr.InMemorySagaJournal):
    """Answers every renewal "yours", and notes when it came."""

    def __init__(self, scheduler: TestScheduler) -> None:
        super().__init__()
        self.scheduler = scheduler
        self.renewals: list[tuple[float, float]] = []

    def renew(
        self, saga_id: str, now: float, *, owner: str, lease_until: float
    ) -> bool:
        self.renewals.append((float(self.scheduler.clock), lease_until))
        return True


def test_a_lease_whose_first_write_was_slow_is_renewed_before_it_runs_out() -> None:
    # The first write carries lease_until = begin + lease; the first renewal
    # was armed a third of a lease after that write was answered: a write
    # answered after two thirds of the lease let it lapse while the step ran,
    # and a recoverer compensated a live saga.
    from rxresilience.saga._ownership import Ownership

    scheduler = TestScheduler()
    journal = RenewalLog(scheduler)
    ownership = Ownership(journal, "s-1", 3.0, scheduler, lambda: None)
    until = ownership.first_lease()  # 3.0, written with the first batch
    scheduler.advance_to(2.4)  # the batch is answered 2.4 s later
    ownership.hold(until)
    scheduler.advance_to(2.5)
    assert journal.renewals == [(2.4, 5.4)]  # at once: its renewal was due at 1.0
    scheduler.advance_to(3.5)
    assert journal.renewals[1:] == [(3.4, 6.4)]
    ownership.stop()
