"""Redis-backed state against a real redis-server: processes, restarts, lost connections."""

from __future__ import annotations

import multiprocessing
import pathlib
import subprocess
import sys
import time
from typing import Any

import pytest

import rxresilience as rxr

from . import _idempotency_worker as worker
from ._redis_server import RedisServer
from ._support import DURATIONS_OUT_OF_RANGE


def test_eight_processes_racing_through_redis_run_the_key_once(
    redis_server: RedisServer, tmp_path: pathlib.Path
) -> None:
    effects_path = str(tmp_path / "effects.db")
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 2.0
    with context.Pool(8) as pool:
        results = pool.starmap(
            worker.race,
            [
                ("redis", redis_server.url, effects_path, f"p{i}", start_at)
                for i in range(8)
            ],
        )
    ran = worker.effects(effects_path)
    assert len(ran) == 1
    assert results == [[f"charged by {ran[0]}"]] * 8


def test_completed_records_survive_a_restart_with_aof(tmp_path: pathlib.Path) -> None:
    server = RedisServer(tmp_path / "aof", appendonly=True)
    server.start()
    try:
        store = rxr.RedisIdempotencyStore(server.client(), prefix="aof:")
        store.claim("k", None, "owner", now=time.time(), lease_until=time.time() + 60)
        assert store.complete(
            "k", "owner", b'{"values":[1],"error":null}', time.time() + 3600
        )
        server.stop()
        server.start()  # same folder, same port: the AOF is replayed
        again = rxr.RedisIdempotencyStore(server.client(), prefix="aof:")
        assert again.get("k") == b'{"values":[1],"error":null}'
    finally:
        server.stop()


def test_a_lost_connection_fails_the_operation_clearly_and_recovers(
    tmp_path: pathlib.Path,
) -> None:
    server = RedisServer(tmp_path / "lost")
    server.start()
    store = rxr.RedisIdempotencyStore(server.client(), prefix="lost:")
    store.claim("a", None, "o", now=0.0, lease_until=10.0)
    assert store.complete("a", "o", b"{}", expires_at=1e12)
    server.stop()
    started = time.monotonic()
    with pytest.raises(rxr.IdempotencyError, match="Redis"):
        store.claim("b", None, "o", now=0.0, lease_until=10.0)
    assert time.monotonic() - started < 10  # bounded, never a hang
    server.start()
    try:
        assert store.claim("b", None, "o", now=0.0, lease_until=10.0).status is (
            rxr.ClaimStatus.CLAIMED
        )
    finally:
        server.stop()


def test_a_lost_connection_fails_the_pipeline_not_the_process(
    tmp_path: pathlib.Path,
) -> None:
    import reactivex as rx

    server = RedisServer(tmp_path / "pipeline")
    server.start()
    store = rxr.RedisIdempotencyStore(server.client(), prefix="p:")
    server.stop()
    trace = rxr.testing.run(lambda: rx.of(1).pipe(rxr.idempotent(store, key="k")))
    trace.assert_error(rxr.IdempotencyError)


def test_importing_rxresilience_without_redis_works() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import rxresilience as rxr\n"
        "print(rxr.RedisIdempotencyStore.__name__, rxr.RedisBreakerStorage.__name__)\n"
        "class Client:\n"
        "    connection_pool = None\n"
        "    def register_script(self, text): pass\n"
        "for make in (\n"
        "    lambda: rxr.RedisBreakerStorage(Client(), name='n'),\n"
        "    lambda: rxr.RedisIdempotencyStore(Client()),\n"
        "    lambda: rxr.RedisSagaJournal(Client()),\n"
        "):\n"
        "    try:\n"
        "        make()\n"
        "    except ImportError as error:\n"
        "        print(error)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    hint = (
        "the Redis-backed parts of rxresilience need redis-py: "
        "pip install 'rxresilience[redis]'"
    )
    assert out.stdout.splitlines() == [
        "RedisIdempotencyStore RedisBreakerStorage",
        hint,
        hint,
        hint,
    ]


def test_the_store_refuses_what_is_not_a_client() -> None:
    with pytest.raises(TypeError, match="client"):
        rxr.RedisIdempotencyStore(object())


def _client_of_no_server() -> Any:
    """A client of a port nobody listens on: a store built from it must not connect."""
    import redis

    from ._redis_server import _free_port

    return redis.Redis.from_url(f"redis://127.0.0.1:{_free_port()}/0")


_OUT_OF_RANGE = DURATIONS_OUT_OF_RANGE


@pytest.mark.parametrize(
    "build", [rxr.RedisIdempotencyStore, rxr.RedisSagaJournal], ids=["store", "journal"]
)
@pytest.mark.parametrize(("value", "error"), [*_OUT_OF_RANGE, (0, ValueError)])
def test_a_socket_timeout_out_of_range_is_refused_before_connecting(
    build: Any, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"^socket_timeout "):
        build(_client_of_no_server(), socket_timeout=value)


@pytest.mark.parametrize(
    "build", [rxr.RedisIdempotencyStore, rxr.RedisSagaJournal], ids=["store", "journal"]
)
def test_a_socket_timeout_in_range_is_accepted(build: Any) -> None:
    from rxresilience._clock import LONGEST_WAIT

    for value in (None, 5, 0.5, LONGEST_WAIT):
        build(_client_of_no_server(), socket_timeout=value)


# --- the saga journal ----------------------------------------------------------------


def test_a_saga_runs_with_a_redis_journal(redis_server: RedisServer) -> None:
    import reactivex as rx

    journal = rxr.RedisSagaJournal(redis_server.client(), prefix="j1:")
    undone: list[int] = []
    ok = rxr.Saga("s").step(
        "a", execute=lambda n: rx.of(n + 1), compensate=undone.append
    )
    assert ok.run(1, journal=journal, saga_id="s-ok").run() == 2
    state = journal.state("s-ok")
    assert state is not None
    assert (state.status, state.completed_steps) == ("completed", ("a",))
    failing = (
        rxr.Saga("f")
        .step("a", execute=lambda n: rx.of(n + 1), compensate=undone.append)
        .step("b", execute=lambda n: rx.throw(RuntimeError("no")))
    )
    with pytest.raises(rxr.SagaFailed):
        failing.run(1, journal=journal, saga_id="s-failed").run()
    state = journal.state("s-failed")
    assert state is not None
    assert (state.status, state.compensated_steps, state.failed_step) == (
        "compensated",
        ("a",),
        "b",
    )
    assert undone == [2]
    with pytest.raises(rxr.SagaError, match="already in the journal"):
        journal.begin("s-ok", "s", now=0.0)
    assert journal.unfinished() == []


def test_a_killed_saga_is_recovered_once_by_one_of_two_racing_processes(
    redis_server: RedisServer, tmp_path: pathlib.Path
) -> None:
    import os
    import signal

    from . import _saga_worker as sagas

    effects_path = str(tmp_path / "effects.db")
    ready_path = str(tmp_path / "ready")
    context = multiprocessing.get_context("spawn")
    child = context.Process(
        target=sagas.run_and_hang_redis,
        args=(redis_server.url, effects_path, ready_path),
    )
    child.start()
    deadline = time.time() + 60
    while not os.path.exists(ready_path) and time.time() < deadline:
        child.join(0.01)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    start_at = time.time() + 2.0
    with context.Pool(2) as pool:
        counts = pool.starmap(
            sagas.recover_redis, [(redis_server.url, effects_path, start_at)] * 2
        )
    assert sorted(counts) == [0, 2]  # one process took the saga, the other nothing
    assert sagas.effects(effects_path)[3:] == [
        "refund order-o-9:charge:compensate",
        "release order-o-9:reserve:compensate",
    ]


def test_a_client_that_decodes_responses_works_for_every_redis_part(
    redis_server: RedisServer,
) -> None:
    """The parts make their own pools: the client's decode_responses is irrelevant."""
    import reactivex as rx
    import redis

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    store = rxr.RedisIdempotencyStore(client, prefix="decoded:")
    charge = rx.defer(lambda _: rx.of("charged")).pipe(rxr.idempotent(store, key="k"))
    assert charge.run() == "charged"
    assert charge.run() == "charged"  # the replay, decoded from the record
    assert store.get("k") is not None
    journal = rxr.RedisSagaJournal(client, prefix="decoded-saga:")
    saga = rxr.Saga("s").step("a", execute=lambda n: rx.of(n + 1))
    assert saga.run(1, journal=journal, saga_id="one").run() == 2
    state = journal.state("one")
    assert state is not None
    assert state.status == "completed"
    breaker = rxr.CircuitBreaker(
        storage=rxr.RedisBreakerStorage(client, name="decoded")
    )
    assert breaker.call(lambda: 1) == 1


def test_a_lost_connection_fails_a_journal_write_and_keeps_what_was_written(
    tmp_path: pathlib.Path,
) -> None:
    server = RedisServer(tmp_path / "journal", appendonly=True)
    server.start()
    try:
        journal = rxr.RedisSagaJournal(server.client(), prefix="lost-saga:")
        journal.begin("s1", "order", now=1.0)
        journal.append("s1", rxr.JournalEntry("step_started", "charge"), now=2.0)
        server.stop()
        started = time.monotonic()
        with pytest.raises(rxr.SagaError, match="Redis saga journal failed"):
            journal.append("s1", rxr.JournalEntry("step_succeeded", "charge"), now=3.0)
        assert time.monotonic() - started < 10  # bounded, never a hang
        server.start()  # the AOF is replayed: nothing acknowledged is lost
        record = journal.load("s1")
        assert record is not None
        assert [entry.kind for entry in record.entries] == ["step_started"]
        assert journal.unfinished() == ["s1"]
    finally:
        server.stop()


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_a_non_positive_socket_timeout_is_refused(
    redis_server: RedisServer, timeout: float
) -> None:
    with pytest.raises(ValueError, match="socket_timeout"):
        rxr.RedisIdempotencyStore(redis_server.client(), socket_timeout=timeout)
    with pytest.raises(ValueError, match="socket_timeout"):
        rxr.RedisSagaJournal(redis_server.client(), socket_timeout=timeout)


def test_every_redis_part_takes_a_client_found_through_sentinel(
    redis_server: RedisServer, tmp_path: pathlib.Path
) -> None:
    """``Sentinel(...).master_for(...)`` is a ``redis.Redis``: the library's own
    copy of it finds the master through Sentinel too (it was refused with
    redis-py's own TypeError about the pool)."""
    from redis.sentinel import Sentinel

    from ._redis_server import SentinelServer

    sentinel = SentinelServer(tmp_path / "sentinel", redis_server)
    sentinel.start()
    try:
        master = Sentinel([("127.0.0.1", sentinel.port)], socket_timeout=5).master_for(
            "mymaster", socket_timeout=5
        )
        prefix = f"{tmp_path.name}-sentinel"
        limiter = rxr.RateLimiter(
            1, storage=rxr.RedisRateLimiterStorage(master, name=f"{prefix}-rl")
        )
        assert limiter.try_acquire()
        store = rxr.RedisIdempotencyStore(master, prefix=f"{prefix}:")
        assert store.claim("k", None, "o", 0.0, 1e12).status.name == "CLAIMED"
        breaker = rxr.CircuitBreaker(
            storage=rxr.RedisBreakerStorage(master, name=f"{prefix}-breaker")
        )
        assert breaker.state.name == "CLOSED"
        journal = rxr.RedisSagaJournal(master, prefix=f"{prefix}-sagas")
        journal.begin("s", "saga", 0.0)
        assert journal.unfinished() == ["s"]
    finally:
        sentinel.stop()


def test_an_asyncio_client_is_refused_when_built() -> None:
    import redis.asyncio

    client = redis.asyncio.Redis()
    for build in (
        lambda: rxr.RedisRateLimiterStorage(client, name="n"),
        lambda: rxr.RedisIdempotencyStore(client),
        lambda: rxr.RedisBreakerStorage(client, name="n"),
        lambda: rxr.RedisSagaJournal(client),
    ):
        with pytest.raises(TypeError, match=r"client must be a redis\.Redis client"):
            build()
