"""One execution per key in a process (``idempotency/_execution.py``): joiners
share it, the last to leave stops it, a duplicate elsewhere waits for it."""

from __future__ import annotations

import pathlib
import threading
from typing import Any

import pytest
import reactivex as rx
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.stores import ClaimStatus

from .._support import pending, record
from ._doubles import (
    Gated,
    Operation,
    Runs,
    hold_elsewhere,
    two_sqlite_stores,
)

# --- joining --------------------------------------------------------------------------


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


# --- leaving --------------------------------------------------------------------------


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


def test_a_joiner_that_must_finish_keeps_the_run_going(store: Any) -> None:
    scheduler = TestScheduler()
    runs = Runs(lambda: rx.timer(3.0, scheduler=scheduler).pipe(ops.map(str)))
    plain = runs.observable().pipe(rxr.idempotent(store, key="k", scheduler=scheduler))
    finishing = runs.observable().pipe(
        rxr.idempotent(store, key="k", finish_on_dispose=True, scheduler=scheduler)
    )
    first = plain.subscribe(scheduler=scheduler)
    second = finishing.subscribe(scheduler=scheduler)
    scheduler.advance_to(1.0)
    first.dispose()
    second.dispose()
    scheduler.advance_to(10.0)
    assert runs.disposed == 1  # ran to its end, and was recorded
    assert plain.pipe(ops.to_list()).run() == ["0"]
    assert runs.count == 1


def test_disposal_while_polling_a_key_held_elsewhere_never_starts_the_source(
    store: Any,
) -> None:
    scheduler = TestScheduler()
    hold_elsewhere(store, "k")
    runs = Runs(lambda: rx.of("charged"))
    subscription = (
        runs.observable()
        .pipe(rxr.idempotent(store, key="k", poll_interval=1.0, scheduler=scheduler))
        .subscribe(scheduler=scheduler)
    )
    scheduler.advance_to(5.0)
    subscription.dispose()
    assert store.release("k", "another-process")
    scheduler.advance_to(100.0)
    assert runs.count == 0
    assert pending(scheduler) == []
    # Nothing of ours holds the key: a new owner claims it at once.
    assert store.claim("k", None, "later", 100.0, 160.0).status is ClaimStatus.CLAIMED


def test_a_claim_won_after_disposal_is_released_at_once(store: Any) -> None:
    """The poll's claim is in flight on another thread when the last subscriber
    disposes; it comes back CLAIMED: released, and the source never starts."""
    gated = Gated(store)
    scheduler = TestScheduler()
    hold_elsewhere(store, "k")
    runs = Runs(lambda: rx.of("charged"))
    subscription = (
        runs.observable()
        .pipe(rxr.idempotent(gated, key="k", poll_interval=1.0, scheduler=scheduler))
        .subscribe(scheduler=scheduler)
    )
    gated.entered.clear()
    gated.gate.clear()
    poller = threading.Thread(target=scheduler.advance_to, args=(1.0,))
    poller.start()
    assert gated.entered.wait(10)  # the claim is in flight on the poller thread
    subscription.dispose()
    assert store.release("k", "another-process")  # so the claim will be won
    gated.gate.set()
    poller.join(10)
    scheduler.advance_to(100.0)
    assert runs.count == 0
    assert store.claim("k", None, "later", 100.0, 160.0).status is ClaimStatus.CLAIMED


def test_a_waiting_duplicate_disposed_before_it_started_never_starts(
    store: Any,
) -> None:
    scheduler = TestScheduler()
    hold_elsewhere(store, "k")
    runs = Runs(lambda: rx.of("x"))
    subscription = (
        runs.observable()
        .pipe(
            rxr.idempotent(
                store,
                key="k",
                finish_on_dispose=True,
                poll_interval=1.0,
                scheduler=scheduler,
            )
        )
        .subscribe(scheduler=scheduler)
    )
    scheduler.advance_to(5.0)
    subscription.dispose()
    store.release("k", "another-process")
    scheduler.advance_to(50.0)
    assert runs.count == 0
    assert pending(scheduler) == []


@given(
    latency=st.sampled_from([0.0, 0.5, 4.0, 12.0]),
    held_until=st.sampled_from([None, 2.0, 7.0]),
    finish_on_dispose=st.booleans(),
    dispose_at=st.floats(0.0, 20.0, allow_nan=False).map(lambda t: round(t, 1)),
)
def test_disposal_at_any_instant_leaves_the_key_recorded_or_free(
    latency: float,
    held_until: float | None,
    finish_on_dispose: bool,
    dispose_at: float,
) -> None:
    """Nothing starts after disposal, no timer stays, no claim of ours wedges the key."""
    store = rxr.InMemoryIdempotencyStore()
    scheduler = TestScheduler()
    if held_until is not None:  # another process holds the key for a while
        store.claim("k", None, "elsewhere", 0.0, held_until)
    starts: list[float] = []

    def operation(_: Any) -> rx.Observable[str]:
        starts.append(float(scheduler.clock))
        return rx.timer(latency, scheduler=scheduler).pipe(ops.map(lambda _: "done"))

    subscription = (
        rx.defer(operation)
        .pipe(
            rxr.idempotent(
                store,
                key="k",
                in_progress_timeout=3.0,
                poll_interval=0.5,
                finish_on_dispose=finish_on_dispose,
                scheduler=scheduler,
            )
        )
        .subscribe(on_error=lambda _: None, scheduler=scheduler)
    )
    scheduler.advance_to(dispose_at)
    subscription.dispose()
    started = len(starts)
    scheduler.advance_to(100.0)
    if not finish_on_dispose:
        assert len(starts) == started  # nothing started after the disposal
    assert pending(scheduler) == []
    # The key is recorded (and replays) or free (a newcomer claims it at once).
    claim = store.claim("k", None, "newcomer", 100.0, 200.0)
    assert claim.status in (ClaimStatus.COMPLETED, ClaimStatus.CLAIMED)
    if claim.status is ClaimStatus.COMPLETED:
        assert starts  # recorded only by a run that happened


# --- another owner: waiting, or failing at once ---------------------------------------


def test_a_duplicate_elsewhere_waits_then_replays(tmp_path: pathlib.Path) -> None:
    mine, theirs = two_sqlite_stores(tmp_path)
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
    mine, theirs = two_sqlite_stores(tmp_path)
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


def test_a_duplicate_waits_at_most_max_run_for_a_key_held_elsewhere(store: Any) -> None:
    scheduler = TestScheduler()
    hold_elsewhere(store, "k")
    runs = Runs(lambda: rx.of("x"))
    seen: list[tuple[float, Any]] = []
    runs.observable().pipe(
        rxr.idempotent(
            store, key="k", max_run=5.0, poll_interval=2.0, scheduler=scheduler
        )
    ).subscribe(
        lambda v: seen.append((scheduler.clock, v)),
        lambda e: seen.append((scheduler.clock, e)),
        scheduler=scheduler,
    )
    scheduler.advance_to(30.0)
    [(at, error)] = seen
    assert at == 5.0
    assert isinstance(error, rxr.IdempotencyInProgressError)
    assert runs.count == 0


class LateAnswers(Gated):
    """A store whose first claim's answer reaches its execution ``delay``
    (virtual) seconds after the claim was made (a busy event loop, a hung
    telemetry subscriber): what is due meanwhile runs meanwhile."""

    def __init__(
        self, inner: rxr.IdempotencyStore, scheduler: TestScheduler, delay: float
    ) -> None:
        super().__init__(inner)
        self.scheduler = scheduler
        self.delay = delay

    def claim(self, *args: Any) -> Any:
        answer = super().claim(*args)
        delay, self.delay = self.delay, 0.0
        if delay:
            self.scheduler.advance_by(delay)
        return answer


def race(
    scheduler: TestScheduler,
    first: rxr.IdempotencyStore,
    second: rxr.IdempotencyStore,
    winner: str,
) -> list[str]:
    """A charges through ``first`` at 0; B, another process, through
    ``second`` at 4.5 (A's 5 s lease still runs) or, when B is to win, at 6
    (lapsed). Both must see the winner's charge; the runs, in order."""
    stores = {"A": first, "B": second}
    runs: list[str] = []

    def charge(who: str) -> rx.Observable[str]:
        def run(_: Any) -> rx.Observable[str]:
            runs.append(who)
            return rx.of(f"charged by {who}")

        return rx.defer(run).pipe(
            rxr.idempotent(
                stores[who], key="charge-7", in_progress_timeout=5.0, poll_interval=1.0
            )
        )

    seen: dict[str, list[Any]] = {"A": [], "B": []}
    scheduler.schedule_absolute(
        6.0 if winner == "B" else 4.5,
        lambda *_: charge("B").subscribe(
            seen["B"].append, seen["B"].append, scheduler=scheduler
        ),
    )
    charge("A").subscribe(seen["A"].append, seen["A"].append, scheduler=scheduler)
    scheduler.advance_to(60.0)
    assert seen["A"] == seen["B"] == [f"charged by {winner}"]
    return runs


@pytest.mark.parametrize(("delay", "winner"), [(2.0, "A"), (4.0, "A"), (10.0, "B")])
def test_a_claim_answered_after_its_lease_may_have_lapsed_never_starts_the_source(
    delay: float, winner: str
) -> None:
    """A's claim (lease 5 s) is answered late. Meanwhile B, another process,
    finds the key held (at 4.5) or, at 6, A's lease lapsed: B takes the key
    and runs. A must not run it as well: it renews its claim before it starts
    (it still holds it) or, the key taken, replays B's outcome."""
    scheduler = TestScheduler()
    shared = rxr.InMemoryIdempotencyStore()
    late = LateAnswers(shared, scheduler, delay)
    assert race(scheduler, late, Gated(shared), winner) == [winner]


class AlwaysLate(LateAnswers):
    """Every claim and renewal answered ``delay`` seconds after it was made."""

    def claim(self, *args: Any) -> Any:
        answer = Gated.claim(self, *args)
        self.scheduler.advance_by(self.delay)
        return answer

    def renew(self, key: str, owner: str, lease_until: float) -> bool:
        kept = super().renew(key, owner, lease_until)
        self.scheduler.advance_by(self.delay)
        return kept


def test_a_lease_too_short_for_the_delays_fails_clearly_and_runs_nothing() -> None:
    scheduler = TestScheduler()
    shared = rxr.InMemoryIdempotencyStore()
    runs = Operation()
    seen: list[Any] = []
    runs.observable.pipe(
        rxr.idempotent(
            AlwaysLate(shared, scheduler, 3.0), key="charge-7", in_progress_timeout=5.0
        )
    ).subscribe(seen.append, seen.append, scheduler=scheduler)
    scheduler.advance_to(60.0)
    assert runs.runs == 0
    assert len(seen) == 1
    assert isinstance(seen[0], rxr.IdempotencyError)
    assert "in_progress_timeout" in str(seen[0])
    # Given back: another execution claims the key at once.
    claim = shared.claim("charge-7", None, "other", scheduler.clock, 100.0)
    assert claim.status is ClaimStatus.CLAIMED


class LateAnswersWithoutRenew(rxr.IdempotencyStore):
    """A store written for 0.1 (no ``renew``) on a shared one, its first claim
    answered ``delay`` seconds late."""

    def __init__(
        self, inner: rxr.IdempotencyStore, scheduler: TestScheduler, delay: float
    ) -> None:
        self.inner = inner
        self.codec = inner.codec
        self.scheduler = scheduler
        self.delay = delay

    def claim(self, *args: Any) -> Any:
        answer = self.inner.claim(*args)
        delay, self.delay = self.delay, 0.0
        if delay:
            self.scheduler.advance_by(delay)
        return answer

    def complete(self, key: str, owner: str, record: bytes, expires_at: float) -> bool:
        return self.inner.complete(key, owner, record, expires_at)

    def release(self, key: str, owner: str) -> bool:
        return self.inner.release(key, owner)

    def get(self, key: str, now: float | None = None) -> bytes | None:
        return self.inner.get(key, now)

    def purge_expired(self, now: float | None = None) -> int:
        return self.inner.purge_expired(now)


@pytest.mark.filterwarnings("ignore:LateAnswersWithoutRenew does not implement")
@pytest.mark.parametrize(("delay", "winner"), [(4.0, "A"), (10.0, "B")])
def test_a_late_claim_on_a_store_that_cannot_renew_starts_only_while_unlapsed(
    delay: float, winner: str
) -> None:
    """Its lease is all there is: judged as the source would start. Lapsed
    (B took the key at 6), A claims again and replays B's outcome."""
    scheduler = TestScheduler()
    shared = rxr.InMemoryIdempotencyStore()
    old = LateAnswersWithoutRenew(shared, scheduler, delay)
    assert race(scheduler, old, Gated(shared), winner) == [winner]
