"""A PostgreSQL server stopped and started mid-run loses nothing acknowledged."""

from __future__ import annotations

import threading
import time

import rxresilience as rxr

from .._postgres_server import PostgresServer

RECORD = b'{"values":[1],"error":null}'


def test_a_server_restart_mid_run_loses_nothing_acknowledged(
    own_server: PostgresServer,
) -> None:
    store = rxr.PostgresIdempotencyStore(own_server.url, timeout=2.0)
    journal = rxr.PostgresSagaJournal(own_server.url, timeout=2.0)
    keys: list[str] = []  # completed, as the store acknowledged
    sagas: list[str] = []  # begun, as the journal acknowledged
    failures: list[Exception] = []
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            key = f"k-{i}"
            try:
                store.claim(key, None, "o", now=0.0, lease_until=60.0)
                if store.complete(key, "o", RECORD, expires_at=1e9):
                    keys.append(key)
                write = rxr.JournalWrite(
                    f"s-{i}", "o", 0.0, begin="s", lease_until=60.0
                )
                if journal.write_owned([write]) == [True]:
                    sagas.append(f"s-{i}")
            except (rxr.IdempotencyError, rxr.SagaError) as error:
                failures.append(error)
                threading.Event().wait(0.05)  # the server is down: try on later

    writer = threading.Thread(target=write)
    writer.start()
    try:
        deadline = time.monotonic() + 30
        while len(keys) < 50 and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        own_server.stop("immediate")  # as a crash: the start replays the WAL
        threading.Event().wait(0.3)
        own_server.start()
        before = len(keys)
        while len(keys) < before + 50 and time.monotonic() < deadline:
            threading.Event().wait(0.01)  # it works again, on its own
    finally:
        stop.set()
        writer.join()
    assert failures  # the outage was seen, as errors of the store or journal
    assert len(keys) >= before + 50
    for key in keys:
        assert store.get(key, now=1.0) == RECORD
    for saga_id in sagas:
        assert journal.load(saga_id) is not None
    store.close()
    journal.close()
