"""A frozen PostgreSQL server (SIGSTOP: its kernel still answers TCP) fails each
call within ``timeout`` + ``GRACE``, never blocks it forever; once it thaws
(SIGCONT) the pool recovers by itself."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import psycopg_pool
import pytest
import reactivex as rx

import rxresilience as rxr
from rxresilience._postgres import GRACE

from .._postgres_server import PostgresServer

TIMEOUT = 1.0
#: How late past the bound a call may fail on a loaded machine: the watchdog
#: fires on a timer thread, which then wakes the blocked call.
SLACK = 1.0
BOUND = TIMEOUT + GRACE + SLACK
#: How soon after a thaw a pool serves again, at most: the library's own
#: pool reconnects on the first call's demand (in milliseconds); a user's pool
#: (psycopg's defaults) on its reconnection backoff, a few seconds after a
#: short outage.
RECOVERY = 30.0

RECORD = b'{"values":[1],"error":null}'


def server_processes(server: PostgresServer) -> list[int]:
    """The postmaster and its children (the backends that hold connections)."""
    found = [server.pid]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            if parent == server.pid:
                found.append(int(entry))
    return found


@contextlib.contextmanager
def frozen(server: PostgresServer) -> Iterator[None]:
    """Every process of the server stopped (its kernel still accepts and
    acknowledges TCP), then continued, whatever happens."""
    stopped: list[int] = []
    try:
        # The postmaster first: stopped, it forks no backend after the list
        # of its children is read (a connection opening meanwhile would be
        # served by a backend left running).
        os.kill(server.pid, signal.SIGSTOP)
        stopped.append(server.pid)
        for pid in server_processes(server)[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def fails_within_the_bound(call: Callable[[], Any], error: type[Exception]) -> str:
    started = time.monotonic()
    with pytest.raises(error) as raised:
        call()
    assert time.monotonic() - started < BOUND
    return str(raised.value)


def recovered(call: Callable[[], Any]) -> Any:
    """The first answer of ``call`` once the server thawed: until the pool has a
    connection again each try fails within ``TIMEOUT`` (a pool timeout)."""
    started = time.monotonic()
    while True:
        try:
            answer = call()
        except (rxr.IdempotencyError, rxr.SagaError):
            assert time.monotonic() - started < RECOVERY
            continue
        return answer


def test_a_frozen_server_fails_every_call_within_the_bound_then_recovers(
    own_server: PostgresServer,
) -> None:
    store = rxr.PostgresIdempotencyStore(own_server.url, timeout=TIMEOUT)
    journal = rxr.PostgresSagaJournal(own_server.url, timeout=TIMEOUT)
    now = time.time()
    assert store.claim("before", None, "o", now, now + 60).status.name == "CLAIMED"
    assert store.complete("before", "o", RECORD, now + 3600)
    begin = rxr.JournalWrite("s-before", "o", now, begin="s", lease_until=now + 60)
    assert journal.write_owned([begin]) == [True]
    with frozen(own_server):
        why = fails_within_the_bound(
            lambda: store.claim("k", None, "o", now, now + 60), rxr.IdempotencyError
        )
        assert "no answer within 1.5 seconds" in why
        fails_within_the_bound(lambda: store.get("before", now), rxr.IdempotencyError)
        fails_within_the_bound(
            lambda: store.complete("before", "o", RECORD, now + 3600),
            rxr.IdempotencyError,
        )
        write = rxr.JournalWrite("s-1", "o", now, begin="s", lease_until=now + 60)
        fails_within_the_bound(lambda: journal.write_owned([write]), rxr.SagaError)
        fails_within_the_bound(lambda: journal.load("s-before"), rxr.SagaError)
        # The operator: its claim fails, nothing runs.
        runs: list[int] = []
        call = rx.defer(lambda _: rx.of(runs.append(1) or "x")).pipe(
            rxr.idempotent(store, key="op")
        )
        fails_within_the_bound(call.run, rxr.IdempotencyError)
        assert runs == []
    # Thawed: the pools recover by themselves, and nothing acknowledged is lost.
    thawed = time.monotonic()
    assert recovered(lambda: store.get("before", time.time())) == RECORD
    assert recovered(lambda: journal.load("s-before")) is not None
    # The library's own pool serves from the first call after the thaw.
    assert time.monotonic() - thawed < TIMEOUT + SLACK
    assert call.run() == "x"
    assert runs == [1]
    store.close()
    journal.close()


def test_eight_callers_stuck_on_a_frozen_server_all_fail_within_the_bound(
    own_server: PostgresServer,
) -> None:
    store = rxr.PostgresIdempotencyStore(own_server.url, timeout=TIMEOUT)
    store.create_schema()
    now = time.time()
    # Eight connections in the pool, each about to be stuck on the server.
    barrier = threading.Barrier(8)

    def warm(i: int) -> None:
        barrier.wait(10)
        store.claim(f"w{i}", None, "o", now, now + 60)

    warmers = [threading.Thread(target=warm, args=(i,)) for i in range(8)]
    for thread in warmers:
        thread.start()
    for thread in warmers:
        thread.join(30)
    took: list[float] = []
    errors: list[Exception] = []

    def claim(i: int) -> None:
        started = time.monotonic()
        try:
            store.claim(f"k{i}", None, "o", now, now + 60)
        except rxr.IdempotencyError as error:
            errors.append(error)
        took.append(time.monotonic() - started)

    with frozen(own_server):
        callers = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
        for thread in callers:
            thread.start()
        for thread in callers:
            thread.join(BOUND + 5)
        assert not any(thread.is_alive() for thread in callers)
    assert len(errors) == 8
    assert max(took) < BOUND
    later = time.time()
    assert store.claim("after", None, "o", later, later + 60).status.name == "CLAIMED"
    store.close()


def test_a_users_pool_and_a_lone_connection_are_bounded_too(
    own_server: PostgresServer,
) -> None:
    with psycopg_pool.ConnectionPool(
        own_server.url, min_size=1, max_size=2, open=True
    ) as pool:
        store = rxr.PostgresIdempotencyStore(pool, timeout=TIMEOUT)
        store.create_schema()
        lone = psycopg.connect(own_server.url, autocommit=True)
        journal = rxr.PostgresSagaJournal(lone, timeout=TIMEOUT)
        journal.create_schema()
        now = time.time()
        with frozen(own_server):
            fails_within_the_bound(
                lambda: store.claim("k", None, "o", now, now + 60),
                rxr.IdempotencyError,
            )
            fails_within_the_bound(lambda: journal.load("s"), rxr.SagaError)
        # The user's pool recovers; the lone connection was lost with the server's
        # answer: it says so, at once.
        claimed = recovered(lambda: store.claim("k2", None, "o", now, now + 60))
        assert claimed.status.name == "CLAIMED"
        assert "closed" in fails_within_the_bound(
            lambda: journal.load("s"), rxr.SagaError
        )
        lone.close()


def test_eight_first_calls_on_a_frozen_server_all_fail_within_the_bound(
    own_server: PostgresServer,
) -> None:
    """The tables are checked once, at the first call: callers arriving
    meanwhile wait for that check and fail with it, rather than each trying
    again in turn (a whole timeout after another: up to 9 s here)."""
    store = rxr.PostgresIdempotencyStore(own_server.url, timeout=TIMEOUT)
    took: list[float] = []
    failed: list[Exception] = []
    lock = threading.Lock()

    def first_call() -> None:
        started = time.monotonic()
        try:
            store.get("k", time.time())
        except rxr.IdempotencyError as error:
            with lock:
                failed.append(error)
        with lock:
            took.append(time.monotonic() - started)

    with frozen(own_server):
        callers = [threading.Thread(target=first_call) for _ in range(8)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(30)
    assert len(failed) == 8
    assert max(took) < BOUND
    assert recovered(lambda: store.get("k", time.time())) is None
    store.close()
