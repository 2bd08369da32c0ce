"""``rxr.idempotent``: exactly once per key, in virtual time, threads and processes."""

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
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler

import rxresilience as rxr

from . import _idempotency_worker as worker
from ._support import DURATIONS_OUT_OF_RANGE, pending, record
from .test_idempotent_run import Flaky

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed


class Boom(Exception):
    pass


class Operation:
    """A cold source that counts its runs (the side effect)."""

    def __init__(
        self, scheduler: TestScheduler | None = None, *, latency: float = 0.0
    ) -> None:
        self.runs = 0
        self.scheduler = scheduler
        self.latency = latency
        self.observable: rx.Observable[str] = rx.defer(self._run)

    def _run(self, _: Any) -> rx.Observable[str]:
        self.runs += 1
        run = self.runs
        if self.scheduler is not None and self.latency:
            return rx.timer(self.latency, scheduler=self.scheduler).pipe(
                ops.flat_map(lambda _: rx.of(f"a{run}", f"b{run}"))
            )
        return rx.of(f"a{run}", f"b{run}")


# --- exactly once ------------------------------------------------------------------


def test_sequential_duplicates_replay_the_record(store: Any) -> None:
    operation = Operation()
    charge = operation.observable.pipe(
        rxr.idempotent(store, key="charge-1"), ops.to_list()
    )
    results = [charge.run() for _ in range(5)]
    assert operation.runs == 1
    assert results == [["a1", "b1"]] * 5


def test_interleaved_duplicates_join_the_running_execution(store: Any) -> None:
    scheduler = TestScheduler()
    operation = Operation(scheduler, latency=10.0)
    charge = operation.observable.pipe(
        rxr.idempotent(store, key="charge-2", scheduler=scheduler)
    )
    first = record(scheduler, lambda: charge, subscribe_at=0, until=0)
    second = record(scheduler, lambda: charge, subscribe_at=5, until=5)
    late = record(scheduler, lambda: charge, subscribe_at=20, until=30)
    assert operation.runs == 1
    expected = [(10.0, "next", "a1"), (10.0, "next", "b1"), (10.0, "completed", None)]
    assert first == expected
    assert second == expected  # joined at 5, saw the values live at 10
    assert late == [
        (20.0, "next", "a1"),
        (20.0, "next", "b1"),
        (20.0, "completed", None),
    ]


def test_sixteen_threads_run_the_source_once(store: Any) -> None:
    runs: list[int] = []
    lock = threading.Lock()
    gate = threading.Event()

    def operation(_: Any) -> rx.Observable[str]:
        with lock:
            runs.append(1)
        gate.wait(5)  # hold the claim while the others arrive
        return rx.of("charged")

    charge = rx.defer(operation).pipe(
        rxr.idempotent(store, key="charge-3", poll_interval=0.01)
    )
    results: list[Any] = []
    barrier = threading.Barrier(16)

    def subscriber() -> None:
        barrier.wait()
        results.append(charge.run())

    threads = [threading.Thread(target=subscriber) for _ in range(16)]
    for thread in threads:
        thread.start()
    while not runs:
        gate.wait(0.001)
    gate.set()
    for thread in threads:
        thread.join(30)
    assert runs == [1]
    assert results == ["charged"] * 16


# --- errors, retries, records ---------------------------------------------------------


def test_errors_are_not_recorded_and_release_the_claim(store: Any) -> None:
    attempts = 0

    def flaky(_: Any) -> rx.Observable[str]:
        nonlocal attempts
        attempts += 1
        return rx.throw(Boom()) if attempts < 3 else rx.of("ok")

    charge = rx.defer(flaky).pipe(rxr.idempotent(store, key="charge-4"))
    with pytest.raises(Boom):
        charge.run()
    assert charge.pipe(rxr.retry(3, backoff=None)).run() == "ok"
    assert charge.run() == "ok"
    assert attempts == 3


def test_record_errors_replays_a_recorded_error(store: Any) -> None:
    operation_runs = 0

    def declined(_: Any) -> rx.Observable[str]:
        nonlocal operation_runs
        operation_runs += 1
        return rx.concat(rx.of("attempted"), rx.throw(ValueError("card declined")))

    charge = rx.defer(declined).pipe(
        rxr.idempotent(store, key="charge-5", record_errors=ValueError)
    )
    first: list[Any] = []
    charge.subscribe(first.append, first.append)
    replay: list[Any] = []
    charge.subscribe(replay.append, replay.append)
    assert operation_runs == 1
    assert first[0] == "attempted"
    assert type(first[1]) is ValueError  # the first execution sees the original
    assert replay[0] == "attempted"
    assert isinstance(replay[1], rxr.RecordedError)
    assert replay[1].type_name == "builtins.ValueError"
    assert replay[1].message == "card declined"


def test_the_same_key_with_another_payload_runs_nothing(store: Any) -> None:
    operation = Operation()
    operation.observable.pipe(
        rxr.idempotent(store, key="k", payload={"total": 10})
    ).run()
    with pytest.raises(rxr.IdempotencyKeyReuseError):
        operation.observable.pipe(
            rxr.idempotent(store, key="k", payload={"total": 11})
        ).run()
    assert operation.runs == 1


def test_a_joiner_with_another_payload_is_refused(store: Any) -> None:
    scheduler = TestScheduler()
    operation = Operation(scheduler, latency=10.0)
    first = record(
        scheduler,
        lambda: operation.observable.pipe(
            rxr.idempotent(store, key="k", payload=1, scheduler=scheduler)
        ),
        subscribe_at=0,
        until=0,
    )
    other = record(
        scheduler,
        lambda: operation.observable.pipe(
            rxr.idempotent(store, key="k", payload=2, scheduler=scheduler)
        ),
        subscribe_at=1,
        until=20,
    )
    assert [kind for _, kind, _ in first] == ["next", "next", "completed"]
    assert [(t, k, type(e)) for t, k, e in other] == [
        (1.0, "error", rxr.IdempotencyKeyReuseError)
    ]


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


def test_a_value_the_codec_cannot_encode_is_never_run_again(store: Any) -> None:
    """The effect happened: a marker is recorded and duplicates get the error."""
    calls = 0

    def operation(_: Any) -> rx.Observable[Any]:
        nonlocal calls
        calls += 1
        return rx.of(object()) if calls == 1 else rx.of("fine")

    charge = rx.defer(operation).pipe(rxr.idempotent(store, key="k"))
    with pytest.raises(rxr.IdempotencyCodecError) as failure:
        charge.run()
    assert isinstance(failure.value.__cause__, TypeError)
    assert failure.value.ran
    with pytest.raises(rxr.IdempotencyCodecError) as again:
        charge.run()
    assert again.value.ran
    assert calls == 1


# --- disposal ---------------------------------------------------------------------------


def test_the_last_subscriber_disposing_stops_the_source_and_releases(
    store: Any,
) -> None:
    scheduler = TestScheduler()
    operation = Operation(scheduler, latency=10.0)
    charge = operation.observable.pipe(
        rxr.idempotent(store, key="k", scheduler=scheduler)
    )
    a = charge.subscribe(scheduler=scheduler)
    b = charge.subscribe(scheduler=scheduler)
    scheduler.advance_to(2)
    a.dispose()
    assert pending(scheduler) != []  # b still holds the execution
    b.dispose()
    assert pending(scheduler) == []
    rerun = record(scheduler, lambda: charge, subscribe_at=5, until=20)
    assert operation.runs == 2
    assert [v for _, k, v in rerun if k == "next"] == ["a2", "b2"]


def test_finish_on_dispose_keeps_running_to_record_the_outcome(store: Any) -> None:
    scheduler = TestScheduler()
    operation = Operation(scheduler, latency=10.0)
    charge = operation.observable.pipe(
        rxr.idempotent(store, key="k", scheduler=scheduler, finish_on_dispose=True)
    )
    charge.subscribe(scheduler=scheduler).dispose()
    scheduler.advance_to(10)
    replay = record(scheduler, lambda: charge, subscribe_at=11, until=11)
    assert operation.runs == 1
    assert [v for _, k, v in replay if k == "next"] == ["a1", "b1"]


# --- another owner: waiting, erroring, expiring ---------------------------------------


def _two_stores(tmp_path: pathlib.Path) -> tuple[Any, Any]:
    path = tmp_path / "shared.db"
    return rxr.SQLiteIdempotencyStore(path), rxr.SQLiteIdempotencyStore(path)


def test_a_duplicate_elsewhere_waits_then_replays(tmp_path: pathlib.Path) -> None:
    mine, theirs = _two_stores(tmp_path)
    scheduler = TestScheduler()
    operation = Operation(scheduler, latency=10.0)
    record(
        scheduler,
        lambda: operation.observable.pipe(
            rxr.idempotent(theirs, key="k", scheduler=scheduler)
        ),
        subscribe_at=0,
        until=0,
    )
    waited = record(
        scheduler,
        lambda: operation.observable.pipe(
            rxr.idempotent(mine, key="k", scheduler=scheduler, poll_interval=1.0)
        ),
        subscribe_at=3,
        until=30,
    )
    assert operation.runs == 1
    assert waited == [
        (11.0, "next", "a1"),
        (11.0, "next", "b1"),
        (11.0, "completed", None),
    ]


def test_a_duplicate_elsewhere_can_fail_at_once(tmp_path: pathlib.Path) -> None:
    mine, theirs = _two_stores(tmp_path)
    scheduler = TestScheduler()
    operation = Operation(scheduler, latency=10.0)
    record(
        scheduler,
        lambda: operation.observable.pipe(
            rxr.idempotent(theirs, key="k", scheduler=scheduler)
        ),
        subscribe_at=0,
        until=0,
    )
    failed = record(
        scheduler,
        lambda: operation.observable.pipe(
            rxr.idempotent(mine, key="k", scheduler=scheduler, on_in_progress="error")
        ),
        subscribe_at=3,
        until=3,
    )
    assert [(t, k, type(e)) for t, k, e in failed] == [
        (3.0, "error", rxr.IdempotencyInProgressError)
    ]


def test_an_owner_that_cannot_renew_loses_its_claim_and_a_duplicate_takes_over(
    tmp_path: pathlib.Path,
) -> None:
    mine, theirs = _two_stores(tmp_path)
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


# --- stores ---------------------------------------------------------------------------


def test_a_record_survives_reopening_the_sqlite_store(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "restart.db"
    operation = Operation()
    first = rxr.SQLiteIdempotencyStore(path)
    operation.observable.pipe(rxr.idempotent(first, key="k"), ops.to_list()).run()
    first.close()
    again = rxr.SQLiteIdempotencyStore(path)
    replay = operation.observable.pipe(rxr.idempotent(again, key="k"), ops.to_list())
    assert replay.run() == ["a1", "b1"]
    assert operation.runs == 1
    again.close()


def test_sqlite_runs_in_wal_mode(tmp_path: pathlib.Path) -> None:
    store = rxr.SQLiteIdempotencyStore(tmp_path / "wal.db")
    store.close()
    db = sqlite3.connect(tmp_path / "wal.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_sqlite_refuses_a_schema_it_does_not_understand(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "future.db"
    rxr.SQLiteIdempotencyStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE rxr_meta SET value = '99' WHERE name = 'idempotency_schema'")
    db.commit()
    db.close()
    with pytest.raises(rxr.IdempotencyError, match="schema version '99'"):
        rxr.SQLiteIdempotencyStore(path)


def test_purge_expired_deletes_old_records(store: Any) -> None:
    store.claim("old", None, "o", now=0.0, lease_until=10.0)
    store.complete("old", "o", b'{"values":[],"error":null}', expires_at=50.0)
    store.claim("lapsed", None, "o", now=0.0, lease_until=10.0)
    store.claim("fresh", None, "o", now=0.0, lease_until=1000.0)
    assert store.purge_expired(now=100.0) == 2
    assert store.get("old", now=0.0) is None
    assert store.claim("fresh", None, "p", now=100.0, lease_until=200.0).status is (
        rxr.ClaimStatus.IN_PROGRESS
    )


def test_only_the_owner_completes_or_releases(store: Any) -> None:
    store.claim("k", None, "owner", now=0.0, lease_until=10.0)
    assert not store.complete("k", "intruder", b"{}", expires_at=100.0)
    assert not store.release("k", "intruder")
    assert store.complete("k", "owner", b"{}", expires_at=100.0)
    assert store.get("k", now=1.0) == b"{}"


def test_the_memory_store_is_bounded_least_recently_used_first() -> None:
    store = rxr.InMemoryIdempotencyStore(max_entries=2)
    for key in ("a", "b"):
        store.claim(key, None, "o", now=0.0, lease_until=10.0)
        store.complete(key, "o", key.encode(), expires_at=100.0)
    store.claim("a", None, "o", now=1.0, lease_until=10.0)  # touches a: b is oldest
    store.claim("c", None, "o", now=1.0, lease_until=10.0)
    store.complete("c", "o", b"c", expires_at=100.0)
    assert store.get("b", now=2.0) is None
    assert store.get("a", now=2.0) == b"a"
    assert len(store) == 2


# --- processes --------------------------------------------------------------------------


def test_eight_processes_racing_on_one_key_run_it_once(tmp_path: pathlib.Path) -> None:
    store_path = str(tmp_path / "race.db")
    effects_path = str(tmp_path / "effects.db")
    rxr.SQLiteIdempotencyStore(store_path).close()
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 2.0  # spawned interpreters need a moment to start
    with context.Pool(8) as pool:
        results = pool.starmap(
            worker.race,
            [("sqlite", store_path, effects_path, f"p{i}", start_at) for i in range(8)],
        )
    ran = worker.effects(effects_path)
    assert len(ran) == 1
    assert results == [[f"charged by {ran[0]}"]] * 8


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
    deadline = time.time() + 60
    while not os.path.exists(ready_path) and time.time() < deadline:
        child.join(0.01)
    assert os.path.exists(ready_path)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    store = rxr.SQLiteIdempotencyStore(store_path)
    # A clock 31 s ahead of the crash: the 30 s claim has expired.
    scheduler = TestScheduler(initial_clock=time.time() + 31)

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


# --- a property over interleavings -----------------------------------------------------


@settings(max_examples=60)
@given(
    requests=st.lists(
        st.tuples(st.sampled_from("abc"), st.integers(0, 30)), min_size=1, max_size=15
    ),
    latency=st.integers(0, 12),
)
def test_each_key_runs_once_and_every_request_gets_its_keys_values(
    requests: list[tuple[str, int]], latency: int
) -> None:
    scheduler = TestScheduler()
    store = rxr.InMemoryIdempotencyStore()
    runs: dict[str, int] = {}

    def operation(key: str) -> rx.Observable[str]:
        def run(_: Any) -> rx.Observable[str]:
            runs[key] = runs.get(key, 0) + 1
            values = rx.of(f"{key}-1", f"{key}-2")
            if not latency:
                return values
            return rx.timer(latency, scheduler=scheduler).pipe(
                ops.flat_map(lambda _: values)
            )

        return rx.defer(run).pipe(rxr.idempotent(store, key=key, scheduler=scheduler))

    seen: list[tuple[str, list[Any]]] = []
    for key, at in requests:
        values: list[Any] = []
        seen.append((key, values))
        scheduler.schedule_absolute(
            at,
            lambda *_, key=key, values=values: operation(key).subscribe(
                values.append, scheduler=scheduler
            ),
        )
    scheduler.advance_to(100)
    assert runs == {key: 1 for key, _ in requests}
    for key, values in seen:
        assert values == [f"{key}-1", f"{key}-2"]


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"key": ""}, ValueError, "key"),
        ({"key": 42}, TypeError, "key"),
        ({"key": "k", "ttl": 0}, ValueError, "ttl"),
        ({"key": "k", "ttl": -5}, ValueError, "ttl"),
        ({"key": "k", "on_in_progress": "ignore"}, ValueError, "on_in_progress"),
        ({"key": "k", "in_progress_timeout": 0}, ValueError, "in_progress_timeout"),
        ({"key": "k", "payload": object()}, TypeError, "payload"),
        ({"key": "k", "record_errors": "all"}, TypeError, "record_errors"),
        ({"key": "k", "finish_on_dispose": "yes"}, TypeError, "finish_on_dispose"),
    ],
)
def test_bad_input_raises_at_construction_naming_the_argument(
    kwargs: dict[str, Any], error: type[Exception], argument: str
) -> None:
    with pytest.raises(error, match=argument):
        rxr.idempotent(rxr.InMemoryIdempotencyStore(), **kwargs)


def test_a_store_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match="store"):
        rxr.idempotent({}, key="k")  # type: ignore[arg-type]


def test_a_bad_max_entries_is_refused() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        rxr.InMemoryIdempotencyStore(max_entries=0)


_OUT_OF_RANGE = DURATIONS_OUT_OF_RANGE


@pytest.mark.parametrize("argument", ["ttl", "in_progress_timeout", "poll_interval"])
@pytest.mark.parametrize(("value", "error"), [*_OUT_OF_RANGE, (0, ValueError)])
def test_a_duration_out_of_range_is_refused_naming_it(
    argument: str, value: object, error: type[Exception]
) -> None:
    store = rxr.InMemoryIdempotencyStore()
    options: dict[str, Any] = {argument: value}
    with pytest.raises(error, match=rf"^{argument} "):
        rxr.idempotent(store, key="k", **options)
    with pytest.raises(error, match=rf"^{argument} "):
        rxr.idempotent_map(rx.of, store=store, key=str, **options)


@pytest.mark.parametrize("argument", ["ttl", "in_progress_timeout", "poll_interval"])
def test_a_duration_in_range_is_kept_as_seconds(argument: str) -> None:
    from rxresilience._clock import LONGEST_WAIT

    for value in (5, 0.5, LONGEST_WAIT):
        options: dict[str, Any] = {argument: value}
        policy = rxr.IdempotencyPolicy(rxr.InMemoryIdempotencyStore(), **options)
        kept = getattr(policy, argument)
        assert type(kept) is float
        assert kept == value
    store = rxr.InMemoryIdempotencyStore()
    options = {argument: 5}
    values = rx.of(1).pipe(rxr.idempotent(store, key="k", **options)).run()
    assert values == 1


@pytest.mark.parametrize(
    ("value", "error"),
    [
        *_OUT_OF_RANGE,
        pytest.param(2_147_484, ValueError, id="past-int-milliseconds"),
        pytest.param(-0.5, ValueError, id="-0.5"),
    ],
)
def test_a_sqlite_timeout_out_of_range_is_refused_naming_it(
    tmp_path: pathlib.Path, value: object, error: type[Exception]
) -> None:
    """SQLite keeps its busy timeout as an int of milliseconds: a longer one
    would wrap round to "do not wait at all"."""
    path = tmp_path / "idempotency.db"
    with pytest.raises(error, match=r"^timeout "):
        rxr.SQLiteIdempotencyStore(path, timeout=value)  # type: ignore[arg-type]
    assert not path.exists()  # refused before the database is touched


def test_the_longest_sqlite_timeout_still_waits_for_the_lock(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "idempotency.db"
    for value in (0, 5, 0.5):
        rxr.SQLiteIdempotencyStore(path, timeout=value).close()
    store = rxr.SQLiteIdempotencyStore(path, timeout=2_147_483.647)
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, lambda: writer.execute("COMMIT")).start()
    started = time.monotonic()
    claim = store.claim("k", None, "owner", now=0.0, lease_until=60.0)
    assert claim.status is rxr.ClaimStatus.CLAIMED
    assert time.monotonic() - started >= 0.2  # it waited, rather than "locked"
    store.close()
    writer.close()
