"""``rxr.idempotent`` end to end (``idempotency/_operator.py``): once per key,
replayed to duplicates, across processes, and inside ``rxr.resilient``."""

from __future__ import annotations

import multiprocessing
import pathlib
import time
from typing import Any

import pytest
import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr

from .. import _idempotency_worker as worker
from .._fork import in_forked_child
from .._support import pending
from ._doubles import (
    Operation,
    Runs,
)

# --- exactly once ---------------------------------------------------------------------


def test_sequential_duplicates_replay_the_record(store: Any) -> None:
    operation = Operation()
    charge = operation.observable.pipe(
        rxr.idempotent(store, key="charge-1"), ops.to_list()
    )
    results = [charge.run() for _ in range(5)]
    assert operation.runs == 1
    assert results == [["a1", "b1"]] * 5


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


# --- processes ------------------------------------------------------------------------


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


# --- inside rxr.resilient -------------------------------------------------------------


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


class EqualToAll(rxr.InMemoryIdempotencyStore):
    """A store that compares equal to every other."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0


def test_two_stores_that_compare_equal_each_run_and_record_their_own_key() -> None:
    scheduler = TestScheduler()
    first, second = EqualToAll(), EqualToAll()
    runs = Runs(
        lambda: rx.timer(5.0, scheduler=scheduler).pipe(ops.map(lambda _: "ok"))
    )
    seen: list[Any] = []
    for store in (first, second):  # the same key, in flight at once
        runs.observable().pipe(
            rxr.idempotent(store, key="k", scheduler=scheduler)
        ).subscribe(seen.append, seen.append, scheduler=scheduler)
    scheduler.advance_to(10.0)
    assert seen == ["ok", "ok"]
    assert runs.count == 2  # one execution per store, not one shared
    for store in (first, second):
        claim = store.claim("k", None, "someone", 20.0, 80.0)
        assert claim.status is rxr.ClaimStatus.COMPLETED


def test_a_forked_child_runs_its_own_calls_whatever_its_parent_held() -> None:
    from rxresilience.idempotency import _execution

    def call() -> bool:
        store = rxr.InMemoryIdempotencyStore()
        return bool(rx.of("ok").pipe(rxr.idempotent(store, key="k")).run() == "ok")

    # A thread of the parent inside the registry's lock at the fork: the
    # child has no such thread, and must not wait for it.
    assert in_forked_child(call, holding=_execution._REGISTRY_LOCK) == 0


@pytest.mark.parametrize("key", ["\ud800", "order-\udcff"])
def test_a_key_no_store_can_encode_is_refused_when_the_operator_is_built(
    key: str,
) -> None:
    with pytest.raises(ValueError, match=r"^key must be text encodable as UTF-8"):
        rxr.idempotent(rxr.InMemoryIdempotencyStore(), key=key)


@pytest.mark.parametrize(
    "payload", [float("nan"), {"amount": float("inf")}, {float("nan"): 1}]
)
def test_a_payload_with_nan_is_refused_naming_payload(payload: Any) -> None:
    with pytest.raises(ValueError, match=r"^payload cannot be fingerprinted"):
        rxr.idempotent(rxr.InMemoryIdempotencyStore(), key="k", payload=payload)
