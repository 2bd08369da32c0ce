"""The claim on a key (``idempotency/_claim.py``): asked for, renewed while the
source runs (a live owner keeps it, a dead one loses it), settled with the record."""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import signal
import sqlite3
import threading
import time
from typing import Any

import pytest
import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.stores import Claim, ClaimStatus

from .. import _idempotency_worker as worker
from .._support import pending, record
from ._doubles import (
    Flaky,
    Operation,
    Runs,
    two_handles,
    two_sqlite_stores,
)

# --- asking ---------------------------------------------------------------------------


def test_a_store_answering_nonsense_fails_that_call_and_wedges_nothing() -> None:
    class Odd(rxr.InMemoryIdempotencyStore):
        bad = True

        def claim(self, *args: Any) -> Claim:
            if self.bad:
                self.bad = False
                return None  # type: ignore[return-value]
            return super().claim(*args)

    store = Odd()
    charge = rx.of("v").pipe(rxr.idempotent(store, key="k"))
    with pytest.raises(AttributeError):
        charge.run()
    assert charge.run() == "v"


# --- renewing the lease ---------------------------------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
def handles(
    request: pytest.FixtureRequest, tmp_path: Any
) -> tuple[rxr.IdempotencyStore, rxr.IdempotencyStore]:
    server = (
        request.getfixturevalue("redis_server") if request.param == "redis" else None
    )
    return two_handles(request.param, tmp_path, server)


def test_a_run_lasting_twenty_leases_is_never_taken_over(
    handles: tuple[rxr.IdempotencyStore, rxr.IdempotencyStore],
) -> None:
    ours, theirs = handles
    scheduler = TestScheduler()
    runs = Runs(lambda: rx.timer(60.0, scheduler=scheduler).pipe(ops.map(str)))
    options = {"in_progress_timeout": 3.0, "poll_interval": 0.5, "scheduler": scheduler}
    first: list[Any] = []
    runs.observable().pipe(rxr.idempotent(ours, key="k", **options)).subscribe(
        first.append, first.append, scheduler=scheduler
    )
    duplicate: list[Any] = []
    scheduler.schedule_absolute(
        1.0,
        lambda *_: (
            runs.observable()
            .pipe(rxr.idempotent(theirs, key="k", **options))
            .subscribe(duplicate.append, duplicate.append, scheduler=scheduler)
        ),
    )
    scheduler.advance_to(100.0)
    assert runs.count == 1
    assert first == ["0"]
    assert duplicate == ["0"]  # waited the whole 60 s, then replayed
    assert pending(scheduler) == []  # no renewal timer left after the end


def test_an_owner_that_stops_renewing_is_taken_over_one_lease_after_its_last_renewal(
    handles: tuple[rxr.IdempotencyStore, rxr.IdempotencyStore],
) -> None:
    ours, theirs = handles
    flaky = Flaky(ours)
    scheduler = TestScheduler()
    starts: list[float] = []

    def operation(_: Any) -> rx.Observable[str]:
        starts.append(float(scheduler.clock))
        return rx.timer(60.0, scheduler=scheduler).pipe(ops.map(str))

    options = {"in_progress_timeout": 3.0, "poll_interval": 0.5, "scheduler": scheduler}
    first: list[Any] = []
    rx.defer(operation).pipe(rxr.idempotent(flaky, key="k", **options)).subscribe(
        first.append, first.append, scheduler=scheduler
    )
    rx.defer(operation).pipe(rxr.idempotent(theirs, key="k", **options)).subscribe(
        scheduler=scheduler
    )
    scheduler.advance_to(9.0)  # renewals at 1, 2, ..., 9: the lease runs to 12
    assert flaky.renewals[-1] == 12.0
    flaky.unreachable = True
    scheduler.advance_to(11.9)
    assert first == []  # still within the lease: ours runs on
    scheduler.advance_to(12.0)
    assert starts == [0.0, 12.0]  # taken over one lease after the last renewal
    [error] = first
    assert isinstance(error, rxr.IdempotencyClaimLostError)


def test_a_renewal_answered_not_yours_stops_the_source_and_records_nothing(
    store: Any,
) -> None:
    flaky = Flaky(store)
    scheduler = TestScheduler()
    runs = Runs(lambda: rx.timer(10.0, scheduler=scheduler).pipe(ops.map(str)))
    seen: list[Any] = []
    runs.observable().pipe(
        rxr.idempotent(flaky, key="k", in_progress_timeout=3.0, scheduler=scheduler)
    ).subscribe(seen.append, seen.append, scheduler=scheduler)
    scheduler.advance_to(1.5)
    flaky.not_yours = True
    scheduler.advance_to(2.0)
    [error] = seen
    assert isinstance(error, rxr.IdempotencyClaimLostError)
    assert runs.disposed == 1  # the source was stopped at once
    scheduler.advance_to(30.0)
    assert store.get("k", 30.0) is None  # nothing recorded
    assert pending(scheduler) == []


def test_an_owner_that_cannot_renew_loses_its_claim_and_a_duplicate_takes_over(
    tmp_path: pathlib.Path,
) -> None:
    mine, theirs = two_sqlite_stores(tmp_path)
    unreachable = Flaky(theirs)
    unreachable.unreachable = True  # every renewal fails: the lease runs out
    scheduler = TestScheduler()
    slow = Operation(scheduler, latency=50.0)
    fast = Operation(scheduler, latency=1.0)
    slow_events = record(
        scheduler,
        lambda: slow.observable.pipe(
            rxr.idempotent(
                unreachable, key="k", scheduler=scheduler, in_progress_timeout=20.0
            )
        ),
        subscribe_at=0,
        until=0,
    )
    fast_events = record(
        scheduler,
        lambda: fast.observable.pipe(
            rxr.idempotent(mine, key="k", scheduler=scheduler, poll_interval=5.0)
        ),
        subscribe_at=1,
        until=100,
    )
    # the slow owner's lease ends at 20 unrenewed: it stops there, and the
    # waiting duplicate claims at 21 and records at 22
    assert slow_events[-1][:2] == (20.0, "error")
    assert isinstance(slow_events[-1][2], rxr.IdempotencyClaimLostError)
    assert fast_events[-1] == (22.0, "completed", None)
    replay = (
        rx.of("x")
        .pipe(rxr.idempotent(mine, key="k", scheduler=scheduler))
        .pipe(ops.to_list())
    )
    assert replay.run() == ["a1", "b1"]  # the fast one's record stands (its a1, b1)


# --- settling with the record ---------------------------------------------------------


def test_ttl_expiry_in_virtual_time_runs_the_source_again(store: Any) -> None:
    scheduler = TestScheduler()
    operation = Operation()
    charge = operation.observable.pipe(
        rxr.idempotent(store, key="k", ttl=100.0, scheduler=scheduler)
    )
    record(scheduler, lambda: charge, subscribe_at=0, until=0)
    replay = record(scheduler, lambda: charge, subscribe_at=99.9, until=99.9)
    rerun = record(scheduler, lambda: charge, subscribe_at=100, until=100)
    assert [v for _, k, v in replay if k == "next"] == ["a1", "b1"]
    assert [v for _, k, v in rerun if k == "next"] == ["a2", "b2"]
    assert operation.runs == 2


def test_a_store_that_fails_to_record_once_never_causes_a_second_run(
    store: Any,
) -> None:
    real = store.complete
    failures = [rxr.IdempotencyError("connection reset")]

    def complete(*args: Any) -> bool:
        if failures:
            raise failures.pop()
        return bool(real(*args))

    store.complete = complete
    runs = Runs(lambda: rx.of("ch"))
    charge = runs.observable().pipe(
        rxr.idempotent(store, key="c"), rxr.retry(3, backoff=None)
    )
    with pytest.raises(rxr.IdempotencyCodecError) as failure:
        charge.run()  # the marker was recorded instead of the refused outcome
    assert failure.value.ran
    with pytest.raises(rxr.IdempotencyCodecError):
        charge.run()
    assert runs.count == 1


def test_a_store_that_cannot_record_anything_keeps_the_claim(store: Any) -> None:
    def complete(*args: Any) -> bool:
        raise rxr.IdempotencyError("down")

    store.complete = complete
    runs = Runs(lambda: rx.of("ch"))
    charge = runs.observable().pipe(rxr.idempotent(store, key="c"))
    with pytest.raises(rxr.IdempotencyCodecError):
        charge.run()
    with pytest.raises(rxr.IdempotencyInProgressError):
        runs.observable().pipe(
            rxr.idempotent(store, key="c", on_in_progress="error")
        ).run()
    assert runs.count == 1  # the claim stands until its lease lapses


# --- owners killed in real processes --------------------------------------------------


def wait_until_ready(child: Any, ready_path: str) -> None:
    """Wait until the child says it holds its claim, however long a spawned
    interpreter takes to start on a loaded machine; fail at once if it dies
    first. The ten-minute bound is no expectation of speed: it only keeps a
    wedged child from hanging the suite."""
    give_up = time.monotonic() + 600.0
    while not os.path.exists(ready_path):
        assert child.exitcode is None, f"the child died first ({child.exitcode})"
        assert time.monotonic() < give_up, "the child never claimed its key"
        child.join(0.05)


def lease_end(store_path: str, key: str) -> float:
    """When the claim on ``key`` lapses, as the SQLite store holds it (read from
    its table: no public call tells a claim's lease without changing it)."""
    db = sqlite3.connect(store_path)
    try:
        row = db.execute(
            "SELECT expires_at FROM rxr_idempotency WHERE key = ?", (key,)
        ).fetchone()
    finally:
        db.close()
    assert row is not None, f"nobody claimed {key!r}"
    return float(row[0])


def test_a_killed_owners_claim_expires_and_the_next_subscription_runs(
    tmp_path: pathlib.Path,
) -> None:
    store_path = str(tmp_path / "crash.db")
    effects_path = str(tmp_path / "effects.db")
    ready_path = str(tmp_path / "ready")
    context = multiprocessing.get_context("spawn")
    child = context.Process(
        target=worker.claim_and_hang, args=(store_path, effects_path, ready_path)
    )
    child.start()
    wait_until_ready(child, ready_path)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    store = rxr.SQLiteIdempotencyStore(store_path)
    # The dead owner's claim (a 30 s lease on its real clock) is left behind:
    # it holds the key until the instant it lapses, read from the store, and
    # not a moment longer. The clock starts there, not at a guess of the
    # wall clock's.
    lapses = lease_end(store_path, "order-7")
    held = store.claim("order-7", None, "early", now=lapses - 1, lease_until=lapses)
    assert held.status is ClaimStatus.IN_PROGRESS
    scheduler = TestScheduler(initial_clock=lapses)

    def recover(_: Any) -> rx.Observable[str]:
        worker.count_effect(effects_path, "recovered")
        return rx.of("charged")

    result = record(
        scheduler,
        lambda: rx.defer(recover).pipe(
            rxr.idempotent(store, key="order-7", scheduler=scheduler)
        ),
        subscribe_at=scheduler.clock,
        until=scheduler.clock,
    )
    assert [v for _, k, v in result if k == "next"] == ["charged"]
    assert worker.effects(effects_path) == ["crashed", "recovered"]
    store.close()


def test_a_killed_owner_renewing_a_one_second_lease_is_taken_over(
    tmp_path: Any,
) -> None:
    """Real time and a real process: renewal keeps a live owner's claim past
    its 1 s lease; SIGKILL ends it, and a waiting duplicate takes over."""
    store_path = str(tmp_path / "renew.db")
    effects_path = str(tmp_path / "effects.db")
    ready_path = str(tmp_path / "ready")
    child = multiprocessing.get_context("spawn").Process(
        target=worker.claim_and_renew, args=(store_path, effects_path, ready_path)
    )
    child.start()
    wait_until_ready(child, ready_path)
    store = rxr.SQLiteIdempotencyStore(store_path)
    done = threading.Event()
    results: list[Any] = []

    def recover(_: Any) -> rx.Observable[str]:
        worker.count_effect(effects_path, "recovered")
        return rx.of("charged")

    rx.defer(recover).pipe(
        rxr.idempotent(
            store, key="order-8", in_progress_timeout=1.0, poll_interval=0.05
        )
    ).subscribe(results.append, results.append, done.set)
    # Three leases long, the live owner keeps its claim by renewing it.
    assert not done.wait(3.0)
    assert worker.effects(effects_path) == ["crashed"]
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert done.wait(30.0)
    assert results == ["charged"]
    assert worker.effects(effects_path) == ["crashed", "recovered"]
    store.close()
