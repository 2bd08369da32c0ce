"""Where the store is called (``idempotency/_store_calls.py``): under asyncio a
store whose calls may block is called on threads of our own, never on the
event loop, and the execution goes on, on the loop, with each answer; outside
asyncio every call stays on the caller's thread. Every guarantee holds while a
call is in flight on another thread."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import reactivex as rx
from psycopg import sql
from reactivex import operators as ops
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.stores import ClaimStatus

from .._postgres_server import PostgresServer
from ._doubles import Boom, Flaky, Runs, SubscriberBug, Watched


def later_claim(store: rxr.IdempotencyStore, key: str = "k") -> ClaimStatus:
    now = time.time()
    return store.claim(key, None, "later", now, now + 60.0).status


# --- which thread -----------------------------------------------------------------


def test_the_stores_say_whether_their_calls_may_block(tmp_path: pathlib.Path) -> None:
    assert rxr.InMemoryIdempotencyStore().calls_may_block is False
    sqlite_store = rxr.SQLiteIdempotencyStore(tmp_path / "i.db")
    assert sqlite_store.calls_may_block is True
    sqlite_store.close()
    assert rxr.RedisIdempotencyStore.calls_may_block is True
    assert rxr.PostgresIdempotencyStore.calls_may_block is True
    # A store written before the attribute existed is kept off the loop.
    assert rxr.IdempotencyStore.calls_may_block is True


def test_under_asyncio_no_call_of_a_blocking_store_runs_on_the_loop(
    store: rxr.IdempotencyStore,
) -> None:
    """Claim, complete, replay, release (an error), release (a cancellation) and
    renewals: every call of a store whose calls may block is off the loop; the
    in-memory store is called in place."""
    watched = Watched(store)
    runs = Runs(lambda: rx.of("charged"))

    async def slow() -> str:
        await asyncio.sleep(0.2)  # outlives a few renewals of a 0.09 s lease
        return "slow"

    async def main() -> int:
        once = rxr.idempotent(watched, key="k", in_progress_timeout=0.09)
        assert await rxr.to_async(runs.observable().pipe(once)) == "charged"
        assert await rxr.to_async(runs.observable().pipe(once)) == "charged"
        with pytest.raises(Boom):
            await rxr.to_async(rx.throw(Boom()).pipe(rxr.idempotent(watched, key="e")))
        long_run = rxr.from_async(slow).pipe(
            rxr.idempotent(watched, key="slow", in_progress_timeout=0.09)
        )
        assert await rxr.to_async(long_run) == "slow"
        watched.released.clear()
        cancelled = asyncio.create_task(
            rxr.to_async(
                rxr.from_async(slow).pipe(rxr.idempotent(watched, key="cancelled"))
            )
        )
        await asyncio.sleep(0.05)
        cancelled.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cancelled
        assert await asyncio.to_thread(watched.released.wait, 10)
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert runs.count == 1
    assert watched.names() == {"claim", "complete", "release", "renew"}
    if store.calls_may_block:
        assert loop_thread not in watched.threads()
    else:  # a few dict updates under a lock: no thread hop for them
        assert watched.threads() == {loop_thread}
    assert later_claim(store, "cancelled") is ClaimStatus.CLAIMED


def test_outside_asyncio_every_call_stays_on_the_callers_thread(
    store: rxr.IdempotencyStore,
) -> None:
    watched = Watched(store)
    watched.calls_may_block = True
    scheduler = TestScheduler()
    runs = Runs(lambda: rx.timer(1.0, scheduler=scheduler).pipe(ops.map(str)))
    threads_before = {thread.ident for thread in threading.enumerate()}
    once = rxr.idempotent(
        watched, key="k", in_progress_timeout=0.3, scheduler=scheduler
    )
    values: list[Any] = []
    runs.observable().pipe(once).subscribe(values.append)
    scheduler.advance_to(2.0)
    rx.throw(Boom()).pipe(
        rxr.idempotent(watched, key="e", scheduler=scheduler)
    ).subscribe(on_error=values.append)
    assert values[0] == "0"
    assert isinstance(values[1], Boom)
    assert watched.names() == {"claim", "complete", "release", "renew"}
    assert watched.threads() == {threading.get_ident()}
    assert {thread.ident for thread in threading.enumerate()} <= threads_before


def test_a_renewal_answered_not_yours_under_asyncio_ends_the_call_on_the_loop(
    store: rxr.IdempotencyStore,
) -> None:
    flaky = Flaky(store)  # calls_may_block: the base's default, True
    flaky.not_yours = True
    told_on: list[int] = []

    async def forever() -> str:
        await asyncio.sleep(30)
        return "never"

    async def main() -> int:
        call = rxr.from_async(forever).pipe(
            rxr.idempotent(flaky, key="k", in_progress_timeout=0.06),
            ops.do_action(on_error=lambda _: told_on.append(threading.get_ident())),
        )
        with pytest.raises(rxr.IdempotencyClaimLostError):
            await rxr.to_async(call)
        return threading.get_ident()

    assert told_on == [asyncio.run(main())]


# --- every guarantee while a call is in flight on another thread ---------------------


def test_a_claim_in_flight_when_the_caller_is_cancelled_is_given_back(
    store: rxr.IdempotencyStore,
) -> None:
    watched = Watched(store)
    watched.calls_may_block = True
    watched.gate.clear()
    runs = Runs(lambda: rx.of("x"))

    async def main() -> None:
        call = runs.observable().pipe(rxr.idempotent(watched, key="k"))
        task = asyncio.create_task(rxr.to_async(call))
        assert await asyncio.to_thread(watched.entered.wait, 10)
        task.cancel()  # disposes while the claim is on a store thread
        with pytest.raises(asyncio.CancelledError):
            await task
        watched.gate.set()  # the claim is won, for nobody
        assert await asyncio.to_thread(watched.released.wait, 10)

    asyncio.run(main())
    assert runs.count == 0
    assert later_claim(store) is ClaimStatus.CLAIMED


def test_a_claim_answered_after_the_loop_closed_is_still_given_back(
    store: rxr.IdempotencyStore,
) -> None:
    watched = Watched(store)
    watched.calls_may_block = True
    watched.gate.clear()
    runs = Runs(lambda: rx.of("x"))

    async def main() -> None:
        call = runs.observable().pipe(rxr.idempotent(watched, key="k"))
        task = asyncio.create_task(rxr.to_async(call))
        assert await asyncio.to_thread(watched.entered.wait, 10)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())  # the loop is closed, the claim still in flight
    watched.gate.set()
    assert watched.released.wait(10)
    assert runs.count == 0
    assert later_claim(store) is ClaimStatus.CLAIMED


def test_a_record_in_flight_when_the_caller_is_cancelled_is_kept(
    store: rxr.IdempotencyStore,
) -> None:
    """The source completed: the effect happened. A disposal (and the loop
    closing) while the completion is on a store thread never releases the key:
    the outcome is recorded and replays."""
    watched = Watched(store)
    watched.calls_may_block = True
    watched.complete_gate.clear()
    runs = Runs(lambda: rx.of("charged"))
    call = runs.observable().pipe(rxr.idempotent(watched, key="k"))

    async def main() -> None:
        task = asyncio.create_task(rxr.to_async(call))
        assert await asyncio.to_thread(watched.completing.wait, 10)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    watched.complete_gate.set()
    assert watched.completed.wait(10)
    assert "release" not in watched.names()
    assert later_claim(store) is ClaimStatus.COMPLETED
    assert asyncio.run(rxr.to_async(call)) == "charged"
    assert runs.count == 1


def test_an_error_is_told_only_once_its_claim_is_released(
    store: rxr.IdempotencyStore,
) -> None:
    """So a retry outside finds the key free at once, under asyncio too."""
    watched = Watched(store)
    watched.calls_may_block = True
    attempts = Runs(lambda: rx.throw(Boom()) if attempts.count < 3 else rx.of("ok"))
    call = attempts.observable().pipe(
        rxr.idempotent(watched, key="k", on_in_progress="error"),
        ops.retry(3),  # resubscribes at once
    )
    assert asyncio.run(rxr.to_async(call)) == "ok"
    assert attempts.count == 3


def test_a_subscriber_that_raises_under_asyncio_is_told_alone_and_recorded(
    store: rxr.IdempotencyStore,
) -> None:
    watched = Watched(store)
    runs = Runs(lambda: rx.of("a", "b"))
    charge = runs.observable().pipe(rxr.idempotent(watched, key="k"))

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        told: asyncio.Future[Exception] = loop.create_future()

        def raising(value: Any) -> None:
            raise SubscriberBug(value)

        charge.subscribe(raising, told.set_result, scheduler=AsyncIOScheduler(loop))
        assert isinstance(await told, SubscriberBug)
        assert await asyncio.to_thread(watched.completed.wait, 10)
        return await rxr.to_async(charge.pipe(ops.to_list()))

    assert asyncio.run(main()) == ["a", "b"]
    assert runs.count == 1


# --- the loop stays free --------------------------------------------------------------

#: How long another connection holds the store's lock while the calls start.
HOLD = 1.0
#: 200 calls, on 100 keys: each key asked for twice.
CALLS = 200


@dataclass
class Ticker:
    """A coroutine ticking every millisecond: its longest lateness is the
    longest the loop was kept from running it."""

    stall: float = 0.0
    running: bool = True

    async def tick(self) -> None:
        loop = asyncio.get_running_loop()
        while self.running:
            due = loop.time() + 0.001
            await asyncio.sleep(0.001)
            self.stall = max(self.stall, loop.time() - due)


@contextlib.contextmanager
def lock_held(
    store: rxr.IdempotencyStore, server: PostgresServer | None
) -> Iterator[threading.Event]:
    """Another connection holds the store's write lock for ``HOLD`` seconds from
    when the event is set (every claim waits for it, as for another process)."""
    held = threading.Event()

    def hold() -> None:
        if server is None:
            assert isinstance(store, rxr.SQLiteIdempotencyStore)
            conn = sqlite3.connect(store.path, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            held.set()
            threading.Event().wait(HOLD)
            conn.execute("COMMIT")
            conn.close()
            return
        assert isinstance(store, rxr.PostgresIdempotencyStore)
        with server.connect() as pg:
            pg.execute(
                sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                    sql.Identifier(store.table)
                )
            )
            held.set()
            threading.Event().wait(HOLD)
            pg.rollback()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        yield held
    finally:
        holder.join(30)


def two_hundred_calls(
    store: rxr.IdempotencyStore, server: PostgresServer | None
) -> tuple[float, Counter[str]]:
    """200 concurrent idempotent calls through ``rxr.to_async`` on 100 keys,
    started while another connection holds the store's lock; the ticker's
    longest lateness, and how often each key's operation ran."""
    ran: Counter[str] = Counter()

    def call(key: str) -> rx.Observable[str]:
        def run(_: Any) -> rx.Observable[str]:
            ran[key] += 1
            return rx.of(f"done {key}")

        return rx.defer(run).pipe(rxr.idempotent(store, key=key))

    async def main() -> float:
        ticker = Ticker()
        ticking = asyncio.create_task(ticker.tick())
        await asyncio.sleep(0.01)
        with lock_held(store, server) as held:
            assert await asyncio.to_thread(held.wait, 10)
            keys = [f"k{i % (CALLS // 2)}" for i in range(CALLS)]
            results = await asyncio.gather(*(rxr.to_async(call(k)) for k in keys))
        assert results == [f"done {key}" for key in keys]
        ticker.running = False
        await ticking
        return ticker.stall

    return asyncio.run(main()), ran


@pytest.fixture(params=["sqlite", "postgres"])
def locked_store(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> Iterator[tuple[rxr.IdempotencyStore, PostgresServer | None]]:
    store: rxr.IdempotencyStore
    server: PostgresServer | None = None
    if request.param == "sqlite":
        store = rxr.SQLiteIdempotencyStore(tmp_path / "i.db")
    else:
        server = request.getfixturevalue("postgres_server")
        assert server is not None
        store = rxr.PostgresIdempotencyStore(
            server.url, table=f"stall_{tmp_path.name[-20:]}".lower()
        )
        store.create_schema()  # not under the lock, which would hold it too
    yield store, server
    store.close()


def test_two_hundred_calls_waiting_on_a_locked_store_never_stall_the_loop(
    locked_store: tuple[rxr.IdempotencyStore, PostgresServer | None],
) -> None:
    """The bound, HOLD / 2 (500 ms). Off the loop, the loop runs only the
    operator's own work: ``gather`` subscribes the 200 calls in one turn (about
    30-60 ms on this 2-core machine under load, the same as 200 calls on the
    in-memory store, which is called in place), then a continuation per
    answer, and the GIL is shared with the four store threads; so the ticker
    is late by some tens of milliseconds, 140 ms at worst in our runs on a
    machine loaded four times over. A claim made on the loop stalls it for the
    whole hold (1 s), as the control below shows: the bound separates the
    two with a margin of 3x or more on either side."""
    store, server = locked_store
    stall, ran = two_hundred_calls(store, server)
    assert stall < HOLD / 2
    assert set(ran.values()) == {1}
    assert len(ran) == CALLS // 2


def test_control_the_same_calls_made_on_the_loop_stall_it_for_the_hold(
    locked_store: tuple[rxr.IdempotencyStore, PostgresServer | None],
) -> None:
    store, server = locked_store
    store.calls_may_block = False  # as if it never waited: called in place
    stall, ran = two_hundred_calls(store, server)
    assert stall >= HOLD / 2
    assert set(ran.values()) == {1}


def test_a_store_that_stopped_answering_leaves_a_thread_for_the_others(
    tmp_path: pathlib.Path,
) -> None:
    """Under asyncio every blocking store's calls share a few threads: one
    store whose server froze (here: held at a gate) takes at most all but
    one of them, and another store's call goes through meanwhile (it waited
    behind the frozen calls for as long as they hung)."""
    from ._doubles import Gated

    frozen = Gated(rxr.SQLiteIdempotencyStore(tmp_path / "frozen.db"))
    frozen.gate.clear()
    healthy = rxr.SQLiteIdempotencyStore(tmp_path / "healthy.db")

    async def main() -> str:
        stuck = [
            asyncio.ensure_future(
                rxr.to_async(rx.of(i).pipe(rxr.idempotent(frozen, key=f"k{i}")))
            )
            for i in range(8)  # more than there are threads
        ]
        assert await asyncio.to_thread(frozen.entered.wait, 10)
        answer = await asyncio.wait_for(
            rxr.to_async(rx.of("ok").pipe(rxr.idempotent(healthy, key="h"))), 10
        )
        frozen.gate.set()
        await asyncio.gather(*stuck)
        return answer

    assert asyncio.run(main()) == "ok"
    frozen.inner.close()  # type: ignore[attr-defined]
    healthy.close()
