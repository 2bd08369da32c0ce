"""Functions that run in child processes for the PostgreSQL process tests."""

from __future__ import annotations

import threading
import time
from typing import Any

import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr

from .. import _idempotency_worker as effects
from .. import _saga_worker as sagas


def race(url: str, table: str, effects_path: str, who: str, start_at: float) -> Any:
    """Wait for the common start, then run the keyed operation once."""
    store = rxr.PostgresIdempotencyStore(url, table=table)

    def operation(_: Any) -> rx.Observable[Any]:
        effects.count_effect(effects_path, who)
        # a little real latency so that the others arrive while it is in flight
        return rx.timer(0.2).pipe(ops.map(lambda _: f"charged by {who}"))

    while time.time() < start_at:
        pass  # a busy wait of a few ms: every process starts at the same moment
    try:
        return (
            rx.defer(operation)
            .pipe(
                rxr.idempotent(
                    store, key="order-42", payload={"total": 99}, poll_interval=0.02
                ),
                ops.to_list(),
            )
            .run()
        )
    finally:
        store.close()


def claim_and_renew(url: str, table: str, effects_path: str, ready_path: str) -> None:
    """Claim the key with a 1 s lease, start the effect, and run (renewing it)
    until killed."""
    store = rxr.PostgresIdempotencyStore(url, table=table)

    def operation(_: Any) -> rx.Observable[Any]:
        effects.count_effect(effects_path, "crashed")
        with open(ready_path, "w") as ready:
            ready.write("claimed")
        return rx.never()

    rx.defer(operation).pipe(
        rxr.idempotent(store, key="order-8", in_progress_timeout=1.0)
    ).subscribe()
    threading.Event().wait()  # hang (renewing on timer threads) until SIGKILL


def run_and_hang(
    url: str, prefix: str, effects_path: str, ready_path: str, count: int
) -> None:
    """Run ``count`` order sagas up to their hanging third step; signal when
    every one of them is there; hang until SIGKILL."""
    journal = rxr.PostgresSagaJournal(url, table_prefix=prefix)
    saga = sagas.order_saga(effects_path, hang_at_third=True)
    for i in range(count):
        saga.execute(
            sagas.Order(f"o-{i}"), journal=journal, saga_id=f"order-{i}"
        ).subscribe()
    while sagas.effects(effects_path).count("ship started") < count:
        threading.Event().wait(0.01)  # the sagas run on this thread: look again
    with open(ready_path, "w") as ready:
        ready.write("hanging")
    threading.Event().wait()


def recover(url: str, prefix: str, effects_path: str, start_at: float) -> int:
    """Recover the sagas, two minutes in the future (their leases have run
    out); return how many compensations this process ran."""
    journal = rxr.PostgresSagaJournal(url, table_prefix=prefix)
    saga = sagas.order_saga(effects_path, hang_at_third=False)
    future = TestScheduler(initial_clock=time.time() + 120)
    while time.time() < start_at:
        pass  # every recoverer starts at the same moment
    try:
        trace = rxr.testing.run(
            lambda: rxr.recover(journal, {"order": saga}, stale_after=60.0),
            subscribe_at=future.clock,
            until=future.clock + 1,
            scheduler=future,
        )
    finally:
        journal.close()
    return sum(1 for e in trace.values if isinstance(e, rxr.StepCompensated))
