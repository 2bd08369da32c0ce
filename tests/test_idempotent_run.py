"""``rxr.idempotent`` under faults: disposal mid-claim, unencodable results,
subscribers that raise, leases that must be renewed (memory, SQLite, Redis)."""

from __future__ import annotations

import decimal
import threading
from typing import Any

import pytest
import reactivex as rx
from hypothesis import given
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.stores import Claim, ClaimStatus

from ._support import pending


class SubscriberBug(Exception):
    pass


class Gated(rxr.IdempotencyStore):
    """A real store whose ``claim`` can be held at a gate (another thread's claim
    in flight), delegating everything else."""

    def __init__(self, inner: rxr.IdempotencyStore) -> None:
        self.inner = inner
        self.codec = inner.codec
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def claim(
        self,
        key: str,
        fingerprint: str | None,
        owner: str,
        now: float,
        lease_until: float,
    ) -> Claim:
        self.entered.set()
        assert self.gate.wait(10)
        return self.inner.claim(key, fingerprint, owner, now, lease_until)

    def complete(self, key: str, owner: str, record: bytes, expires_at: float) -> bool:
        return self.inner.complete(key, owner, record, expires_at)

    def release(self, key: str, owner: str) -> bool:
        return self.inner.release(key, owner)

    def renew(self, key: str, owner: str, lease_until: float) -> bool:
        return self.inner.renew(key, owner, lease_until)

    def get(self, key: str, now: float | None = None) -> bytes | None:
        return self.inner.get(key, now)

    def purge_expired(self, now: float | None = None) -> int:
        return self.inner.purge_expired(now)


class Runs:
    """A cold operation that counts its runs and how long each stayed subscribed."""

    def __init__(self, make: Any) -> None:
        self.count = 0
        self.disposed = 0
        self._make = make

    def observable(self) -> rx.Observable[Any]:
        def subscribe(_: Any) -> rx.Observable[Any]:
            self.count += 1
            return self._make().pipe(ops.finally_action(self._ended))

        return rx.defer(subscribe)

    def _ended(self) -> None:
        self.disposed += 1


def hold_elsewhere(store: rxr.IdempotencyStore, key: str, now: float = 0.0) -> None:
    claim = store.claim(key, None, "another-process", now, now + 60.0)
    assert claim.status is ClaimStatus.CLAIMED


# --- 1. disposal while a claim is being taken ----------------------------------------


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


# --- 2. a result the codec cannot encode -------------------------------------------------


def test_an_unencodable_result_is_never_run_again_and_the_source_runs_to_its_end(
    store: Any,
) -> None:
    scheduler = TestScheduler()
    runs = Runs(
        lambda: rx.timer(1.0, scheduler=scheduler).pipe(
            ops.flat_map(lambda _: rx.of("ok", decimal.Decimal("9.99"))),
            ops.concat(rx.timer(9.0, scheduler=scheduler).pipe(ops.map(str))),
        )
    )
    charge = runs.observable().pipe(
        rxr.idempotent(store, key="charge-7", ttl=100.0, scheduler=scheduler)
    )
    first: list[Any] = []
    charge.subscribe(first.append, first.append, scheduler=scheduler)
    scheduler.advance_to(1.0)
    # Told at once: the values before the bad one, then the error.
    [value, error] = first
    assert value == "ok"
    assert isinstance(error, rxr.IdempotencyCodecError)
    assert error.ran
    assert error.key == "charge-7"
    assert error.value_type == "decimal.Decimal"
    assert "charge-7" in str(error)
    assert "decimal.Decimal" in str(error)
    assert "codec=" in str(error)
    # A retry joining in this process gets the same, and nothing runs again.
    joined: list[Any] = []
    charge.subscribe(joined.append, joined.append, scheduler=scheduler)
    assert isinstance(joined[-1], rxr.IdempotencyCodecError)
    assert runs.disposed == 0  # the source runs on to its own end
    scheduler.advance_to(10.0)
    assert runs.disposed == 1
    # A duplicate after the end: the marker is replayed, never the operation.
    later: list[Any] = []
    charge.subscribe(later.append, later.append, scheduler=scheduler)
    scheduler.advance_to(50.0)
    assert isinstance(later[-1], rxr.IdempotencyCodecError)
    assert later[-1].ran
    assert runs.count == 1
    # After the ttl the key is free again.
    scheduler.advance_to(111.0)
    charge.subscribe(scheduler=scheduler)
    scheduler.advance_to(200.0)
    assert runs.count == 2


def test_the_marker_is_read_whatever_the_codec(store: Any) -> None:
    """A duplicate whose codec could not decode the marker still reads it."""

    class Refusing:
        def encode(self, value: Any) -> bytes:
            if isinstance(value, dict):
                raise TypeError("no dicts here")
            return b"v"

        def decode(self, data: bytes) -> Any:
            raise AssertionError("the marker must be read before the codec")

    policy = rxr.IdempotencyPolicy(store, codec=Refusing())
    runs = Runs(lambda: rx.of(1))
    charge = runs.observable().pipe(rxr.idempotent(policy, key="k"))
    for _ in range(3):
        with pytest.raises(rxr.IdempotencyCodecError) as failure:
            charge.run()
        assert failure.value.ran
    assert runs.count == 1


# --- 3. a subscriber's exception belongs to that subscriber ---------------------------


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


def test_idempotent_map_tells_a_raising_subscriber_and_records_the_request(
    store: Any,
) -> None:
    calls: list[str] = []

    def process(request: str) -> rx.Observable[str]:
        calls.append(request)
        return rx.of(f"{request}-1", f"{request}-2")

    seen: list[Any] = []

    def raising(value: Any) -> None:
        seen.append(value)
        raise SubscriberBug(value)

    rx.of("r1").pipe(rxr.idempotent_map(process, store=store, key=str)).subscribe(
        raising, seen.append
    )
    assert seen[0] == "r1-1"
    assert isinstance(seen[1], SubscriberBug)
    again = (
        rx.of("r1")
        .pipe(rxr.idempotent_map(process, store=store, key=str), ops.to_list())
        .run()
    )
    assert again == ["r1-1", "r1-2"]
    assert calls == ["r1"]


# --- 5. the policy, and where idempotency goes in resilient -------------------------------


def test_a_slow_charge_under_attempt_timeouts_runs_once_and_answers(
    store: Any,
) -> None:
    """It takes effect at once and answers after 8 s; attempts give up at 4 s."""
    scheduler = TestScheduler()
    effects: list[float] = []

    def charge(_: Any) -> rx.Observable[str]:
        effects.append(float(scheduler.clock))
        return rx.timer(8.0, scheduler=scheduler).pipe(ops.map(lambda _: "ch_1"))

    breaker = rxr.CircuitBreaker(failure_threshold=2, scheduler=scheduler)
    payment = rx.defer(charge).pipe(
        rxr.resilient(
            timeout=4.0,
            retry=rxr.RetryPolicy(max_attempts=4, backoff=1.0),
            breaker=breaker,
            idempotency=rxr.IdempotencyPolicy(store, scheduler=scheduler),
            idempotency_key="order-1",
            payload={"amount": 100},
            scheduler=scheduler,
        )
    )
    seen: list[tuple[float, Any]] = []
    payment.subscribe(
        lambda value: seen.append((float(scheduler.clock), value)),
        lambda error: seen.append((float(scheduler.clock), error)),
        scheduler=scheduler,
    )
    scheduler.advance_to(60.0)
    assert effects == [0.0]  # charged once
    assert seen == [(8.0, "ch_1")]  # attempt 2 (from t=5) joined and got it
    assert breaker.metrics().successes == 1  # the breaker saw the real call once
    assert breaker.metrics().failures == 0
    assert pending(scheduler) == []


def test_a_recorded_charge_is_replayed_while_the_breaker_is_open(store: Any) -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(failure_threshold=1, scheduler=scheduler)
    runs = Runs(lambda: rx.of("ch_1"))
    policy = rxr.IdempotencyPolicy(store, scheduler=scheduler)

    def payment(key: str) -> rx.Observable[str]:
        return runs.observable().pipe(
            rxr.resilient(
                breaker=breaker,
                idempotency=policy,
                idempotency_key=key,
                scheduler=scheduler,
            )
        )

    assert payment("order-1").run() == "ch_1"
    breaker.force_open()
    assert payment("order-1").run() == "ch_1"  # replayed: the breaker untouched
    with pytest.raises(rxr.CircuitOpenError):
        payment("order-2").run()
    assert runs.count == 1


def test_resilient_refuses_an_idempotency_that_would_stop_on_a_timeout() -> None:
    policy = rxr.IdempotencyPolicy(
        rxr.InMemoryIdempotencyStore(), finish_on_dispose=False
    )
    with pytest.raises(ValueError, match="finish_on_dispose"):
        rxr.resilient(idempotency=policy, idempotency_key="k")
    with pytest.raises(TypeError, match="idempotency_key"):
        rxr.resilient(idempotency=rxr.IdempotencyPolicy(policy.store))
    with pytest.raises(TypeError, match="idempotency="):
        rxr.resilient(timeout=1.0, idempotency_key="k")


def test_a_policy_is_frozen_reusable_and_refuses_options_beside_it() -> None:
    store = rxr.InMemoryIdempotencyStore()
    policy = rxr.IdempotencyPolicy(store, ttl=60, max_run=30)
    assert (policy.ttl, policy.max_run, policy.finish_on_dispose) == (60.0, 30.0, None)
    with pytest.raises(AttributeError):
        policy.ttl = 5  # type: ignore[misc]
    with pytest.raises(TypeError, match="ttl"):
        rxr.idempotent(policy, key="k", ttl=5)
    assert rx.of(1).pipe(rxr.idempotent(policy, key="a")).run() == 1
    assert rx.of(2).pipe(rxr.idempotent(policy, key="a")).run() == 1
    assert (
        rx.of("r").pipe(rxr.idempotent_map(rx.of, policy=policy, key=str)).run() == "r"
    )
    with pytest.raises(TypeError, match="exactly one"):
        rxr.idempotent_map(rx.of, key=str)
    with pytest.raises(TypeError, match="ttl"):  # an option beside a policy
        rxr.idempotent_map(rx.of, policy=policy, key=str, ttl=5)
    with pytest.raises(ValueError, match="max_run"):
        rxr.IdempotencyPolicy(store, max_run=0)


# --- 4. leases renewed while the operation runs, within max_run -----------------------


class Flaky(Gated):
    """A real store whose renewals can be made to fail or to answer "not yours"."""

    def __init__(self, inner: rxr.IdempotencyStore) -> None:
        super().__init__(inner)
        self.renewals: list[float] = []
        self.unreachable = False
        self.not_yours = False

    def renew(self, key: str, owner: str, lease_until: float) -> bool:
        if self.unreachable:
            raise rxr.IdempotencyError("the store cannot be reached")
        if self.not_yours:
            return False
        self.renewals.append(lease_until)
        return super().renew(key, owner, lease_until)


def two_handles(
    kind: str, tmp_path: Any, redis_server: Any
) -> tuple[rxr.IdempotencyStore, rxr.IdempotencyStore]:
    """Two store objects on one store: as two processes see it."""
    if kind == "sqlite":
        path = tmp_path / "shared.db"
        return rxr.SQLiteIdempotencyStore(path), rxr.SQLiteIdempotencyStore(path)
    prefix = f"{tmp_path.name}:"
    return (
        rxr.RedisIdempotencyStore(redis_server.client(), prefix=prefix),
        rxr.RedisIdempotencyStore(redis_server.client(), prefix=prefix),
    )


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


def test_max_run_stops_a_hung_owner_and_keeps_the_claim_until_its_lease_lapses(
    store: Any,
) -> None:
    scheduler = TestScheduler()
    runs = Runs(rx.never)
    seen: list[Any] = []
    runs.observable().pipe(
        rxr.idempotent(
            store, key="k", in_progress_timeout=3.0, max_run=10.0, scheduler=scheduler
        )
    ).subscribe(seen.append, seen.append, scheduler=scheduler)
    scheduler.advance_to(10.0)
    [error] = seen
    assert isinstance(error, rxr.TimeoutError)
    assert (error.budget, error.seconds) == ("max_run", 10.0)
    assert runs.disposed == 1
    assert pending(scheduler) == []  # renewal stopped
    # The outcome is unknown: the claim stands until its lease (renewed at 9 s,
    # to 12 s) lapses, then the key is free.
    assert store.claim("k", None, "next", 11.0, 20.0).status is ClaimStatus.IN_PROGRESS
    assert store.claim("k", None, "next", 12.0, 20.0).status is ClaimStatus.CLAIMED


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


def test_a_store_without_renew_warns_when_the_operator_is_built() -> None:
    class Old(rxr.IdempotencyStore):  # a third-party store written for 0.1
        def __init__(self) -> None:
            self.inner = rxr.InMemoryIdempotencyStore()

        def claim(self, *args: Any) -> Claim:
            return self.inner.claim(*args)

        def complete(self, *args: Any) -> bool:
            return self.inner.complete(*args)

        def release(self, *args: Any) -> bool:
            return self.inner.release(*args)

        def get(self, *args: Any) -> bytes | None:
            return self.inner.get(*args)

        def purge_expired(self, now: float | None = None) -> int:
            return self.inner.purge_expired(now)

    old = Old()
    with pytest.warns(RuntimeWarning, match="renew"):
        charge = rx.of("ok").pipe(rxr.idempotent(old, key="k"))
    assert charge.run() == "ok"  # 0.1's behaviour: it works, unrenewed


def test_a_killed_owner_renewing_a_one_second_lease_is_taken_over(
    tmp_path: Any,
) -> None:
    """Real time and a real process: renewal keeps a live owner's claim past
    its 1 s lease; SIGKILL ends it, and a waiting duplicate takes over."""
    import multiprocessing
    import os
    import signal
    import time

    from . import _idempotency_worker as worker

    store_path = str(tmp_path / "renew.db")
    effects_path = str(tmp_path / "effects.db")
    ready_path = str(tmp_path / "ready")
    child = multiprocessing.get_context("spawn").Process(
        target=worker.claim_and_renew, args=(store_path, effects_path, ready_path)
    )
    child.start()
    deadline = time.time() + 60
    while not os.path.exists(ready_path) and time.time() < deadline:
        child.join(0.01)
    assert os.path.exists(ready_path)
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


# --- disposal at every instant -------------------------------------------------------------


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


# --- found by a hostile review -------------------------------------------------------------


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


def test_a_breaker_refusal_is_never_recorded(store: Any) -> None:
    breaker = rxr.CircuitBreaker(failure_threshold=1)
    breaker.force_open()
    runs = Runs(lambda: rx.of("ch"))
    charge = runs.observable().pipe(
        rxr.circuit_breaker(breaker),
        rxr.idempotent(store, key="c", record_errors=Exception),
    )
    with pytest.raises(rxr.CircuitOpenError):
        charge.run()
    breaker.reset()
    assert charge.run() == "ch"
    assert runs.count == 1


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


def test_the_librarys_dataclass_codec_replays_dataclasses(store: Any) -> None:
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Receipt:
        id: str
        cents: int

    policy = rxr.IdempotencyPolicy(store, codec=rxr.DataclassCodec(Receipt))
    runs = Runs(lambda: rx.of(Receipt("r-1", 999)))
    charge = runs.observable().pipe(rxr.idempotent(policy, key="k"))
    assert charge.run() == Receipt("r-1", 999)
    assert charge.run() == Receipt("r-1", 999)
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


@pytest.mark.parametrize("argument", ["in_progress_timeout", "poll_interval"])
def test_a_lease_or_poll_below_a_millisecond_is_refused(argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        rxr.IdempotencyPolicy(rxr.InMemoryIdempotencyStore(), **{argument: 1e-7})
