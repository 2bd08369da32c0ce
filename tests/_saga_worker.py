"""A saga run in a child process, killed mid-way by the crash-recovery test."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import reactivex as rx

import rxresilience as rxr


@dataclass(frozen=True)
class Order:
    id: str
    reserved: bool = False
    charged: bool = False


def count(effects_path: str, what: str) -> None:
    db = sqlite3.connect(effects_path, timeout=30, isolation_level=None)
    try:
        db.execute("CREATE TABLE IF NOT EXISTS effects (what TEXT)")
        db.execute("INSERT INTO effects VALUES (?)", (what,))
    finally:
        db.close()


def effects(effects_path: str) -> list[str]:
    db = sqlite3.connect(effects_path, timeout=30)
    try:
        db.execute("CREATE TABLE IF NOT EXISTS effects (what TEXT)")
        return [row[0] for row in db.execute("SELECT what FROM effects")]
    finally:
        db.close()


def order_saga(
    effects_path: str, hang_at_third: bool, ready_path: str = "", lease: float = 30.0
) -> rxr.Saga[Order]:
    def reserve(order: Order) -> rx.Observable[Order]:
        count(effects_path, "reserve")
        return rx.of(replace(order, reserved=True))

    def release(order: Order, key: str) -> rx.Observable[Any]:
        count(effects_path, f"release {key}")
        return rx.empty()

    def charge(order: Order) -> rx.Observable[Order]:
        count(effects_path, "charge")
        return rx.of(replace(order, charged=True))

    def refund(order: Order, key: str) -> rx.Observable[Any]:
        assert order.charged  # compensations get the context after their own step
        count(effects_path, f"refund {key}")
        return rx.empty()

    def ship(order: Order) -> rx.Observable[Order]:
        count(effects_path, "ship started")
        if ready_path:  # tell the test that steps 1 and 2 are done and 3 runs
            with open(ready_path, "w") as ready:
                ready.write("step 2 done")
        return rx.never() if hang_at_third else rx.of(order)

    return (
        rxr.Saga[Order]("order", lease=lease)
        .step("reserve", execute=reserve, compensate=release)
        .step("charge", execute=charge, compensate=refund)
        .step("ship", execute=ship)
    )


def run_and_hang(
    journal_path: str,
    effects_path: str,
    ready_path: str,
    lease: float = 30.0,
    redis_url: str = "",
) -> None:
    """Run the order saga up to its hanging third step, in SQLite at
    ``journal_path``, or in Redis at ``redis_url`` (prefix ``instant:``)."""
    journal: rxr.SagaJournal
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        journal = rxr.RedisSagaJournal(client, prefix="instant:")
    else:
        journal = rxr.SQLiteSagaJournal(journal_path)
    saga = order_saga(effects_path, True, ready_path, lease)
    saga.execute(Order("o-1"), journal=journal, saga_id="order-o-1").subscribe()
    threading.Event().wait()  # hang until SIGKILL


def run_and_hang_redis(url: str, effects_path: str, ready_path: str) -> None:
    """As ``run_and_hang``, with the journal in Redis."""
    import redis

    journal = rxr.RedisSagaJournal(
        redis.Redis.from_url(url, socket_timeout=5), prefix="fleet:"
    )
    saga = order_saga(effects_path, hang_at_third=True, ready_path=ready_path)
    saga.execute(Order("o-9"), journal=journal, saga_id="order-o-9").subscribe()
    threading.Event().wait()  # hang until SIGKILL


def recover_redis(url: str, effects_path: str, start_at: float) -> int:
    """Recover the fleet's sagas; return how many compensations this process ran."""
    import time

    import redis
    from reactivex.testing import TestScheduler

    journal = rxr.RedisSagaJournal(
        redis.Redis.from_url(url, socket_timeout=5), prefix="fleet:"
    )
    saga = order_saga(effects_path, hang_at_third=False)
    future = TestScheduler(initial_clock=time.time() + 120)
    while time.time() < start_at:
        pass  # both recoverers start at the same moment
    trace = rxr.testing.run(
        lambda: rxr.recover(journal, {"order": saga}, stale_after=60.0),
        subscribe_at=future.clock,
        until=future.clock + 1,
        scheduler=future,
    )
    return sum(1 for e in trace.values if isinstance(e, rxr.StepCompensated))


# --- ownership across processes ----------------------------------------------------------


def slow_saga(effects_path: str, lease: float, step_seconds: float) -> rxr.Saga[str]:
    """Step ``a`` lasts ``step_seconds`` (real time), then ``b``; ``a`` is undone
    on failure too (it may have happened)."""

    def step_a(ctx: str) -> rx.Observable[str]:
        count(effects_path, "a started")
        return rx.timer(step_seconds).pipe(rx.operators.map(lambda _: ctx))

    def step_b(ctx: str) -> rx.Observable[str]:
        count(effects_path, "b started")
        return rx.of(ctx)

    def undo_a(ctx: str) -> rx.Observable[Any]:
        count(effects_path, "undo a")
        return rx.empty()

    return (
        rxr.Saga[str]("slow", lease=lease)
        .step("a", execute=step_a, compensate=undo_a, compensate_on_failure=True)
        .step("b", execute=step_b)
    )


def as_another_machine() -> None:
    """Make this process's owner tokens name another machine (another boot
    id), so that a recoverer here cannot tell it is gone and must wait for
    its lease, as it would for a process on another machine."""
    from rxresilience.saga import _process_identity as identity

    here = identity.current()
    assert here is not None
    elsewhere = replace(here, boot_id="0" * 8 + here.boot_id[8:])
    identity.current = lambda: elsewhere  # type: ignore[assignment]


def run_slow_saga(
    journal_path: str,
    effects_path: str,
    lease: float,
    step_seconds: float,
    elsewhere: bool = False,
) -> None:
    """Run ``slow_saga`` as ``slow-1``; write how it ended among the effects.
    ``elsewhere``: as if on another machine (see ``as_another_machine``)."""
    if elsewhere:
        as_another_machine()
    journal = rxr.SQLiteSagaJournal(journal_path)
    ended = threading.Event()

    def on_error(error: Exception) -> None:
        count(effects_path, f"error {type(error).__name__}")
        ended.set()

    def on_completed() -> None:
        count(effects_path, "completed")
        ended.set()

    saga = slow_saga(effects_path, lease, step_seconds)
    saga.execute("x", journal=journal, saga_id="slow-1").subscribe(
        on_error=on_error, on_completed=on_completed
    )
    ended.wait(60)


# --- journals for the saga guarantee tests ----------------------------------------------

#: The statuses a saga ends in.
TERMINAL = ("completed", "compensated", "failed")


def journal_of(request: Any, tmp_path: Any) -> Iterator[rxr.SagaJournal]:
    """The journal named by ``request.param``: memory, sqlite, redis or postgres
    (a real server)."""
    import uuid

    journal: rxr.SagaJournal
    if request.param == "memory":
        journal = rxr.InMemorySagaJournal()
    elif request.param == "sqlite":
        journal = rxr.SQLiteSagaJournal(tmp_path / "sagas.db")
    elif request.param == "postgres":
        pg = request.getfixturevalue("postgres_server")
        journal = rxr.PostgresSagaJournal(pg.url, table_prefix=f"s_{uuid.uuid4().hex}")
    else:
        server = request.getfixturevalue("redis_server")
        journal = rxr.RedisSagaJournal(
            server.client(), prefix=f"guarantees-{uuid.uuid4().hex}:"
        )
    yield journal
    journal.close()


def wait_until_terminal(
    journal: rxr.SagaJournal, saga_id: str, seconds: float = 20.0
) -> rxr.SagaState:
    """The saga's state once it has ended (threads are at work meanwhile)."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        state = journal.state(saga_id)
        if state is not None and state.status in TERMINAL:
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"saga {saga_id!r} never ended: {state}")
        threading.Event().wait(0.005)  # another process writes it: look again
