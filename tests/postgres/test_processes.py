"""The PostgreSQL store and journal shared by real processes on a real server."""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import signal
import threading
import time
from typing import Any

import reactivex as rx

import rxresilience as rxr

from .. import _idempotency_worker as effects
from .. import _saga_worker as sagas
from .._postgres_server import PostgresServer, fresh_name
from ..idempotency.test_claim import wait_until_ready
from . import _worker as worker


def test_eight_processes_racing_for_one_key_run_it_once(
    postgres_server: PostgresServer, tmp_path: pathlib.Path
) -> None:
    effects_path = str(tmp_path / "effects.db")
    table = fresh_name()
    maker = rxr.PostgresIdempotencyStore(postgres_server.url, table=table)
    maker.create_schema()
    maker.close()
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0
    with context.Pool(8) as pool:
        results = pool.starmap(
            worker.race,
            [
                (postgres_server.url, table, effects_path, f"p{i}", start_at)
                for i in range(8)
            ],
        )
    ran = effects.effects(effects_path)
    assert len(ran) == 1
    assert results == [[f"charged by {ran[0]}"]] * 8


def test_a_killed_owner_renewing_a_one_second_lease_is_taken_over(
    postgres_server: PostgresServer, tmp_path: pathlib.Path
) -> None:
    """Renewal keeps a live owner's claim past its 1 s lease; SIGKILL ends it,
    and a waiting duplicate takes over one lease later."""
    effects_path = str(tmp_path / "effects.db")
    ready_path = str(tmp_path / "ready")
    table = fresh_name()
    child = multiprocessing.get_context("spawn").Process(
        target=worker.claim_and_renew,
        args=(postgres_server.url, table, effects_path, ready_path),
    )
    child.start()
    wait_until_ready(child, ready_path)
    store = rxr.PostgresIdempotencyStore(postgres_server.url, table=table)
    done = threading.Event()
    results: list[Any] = []

    def take_over(_: Any) -> rx.Observable[str]:
        effects.count_effect(effects_path, "recovered")
        return rx.of("charged")

    rx.defer(take_over).pipe(
        rxr.idempotent(
            store, key="order-8", in_progress_timeout=1.0, poll_interval=0.05
        )
    ).subscribe(results.append, results.append, done.set)
    assert not done.wait(3.0)  # three leases long, the live owner keeps its claim
    assert effects.effects(effects_path) == ["crashed"]
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert done.wait(30.0)
    assert results == ["charged"]
    assert effects.effects(effects_path) == ["crashed", "recovered"]
    store.close()


def test_four_processes_racing_to_recover_compensate_each_saga_once(
    postgres_server: PostgresServer, tmp_path: pathlib.Path
) -> None:
    effects_path = str(tmp_path / "effects.db")
    ready_path = str(tmp_path / "ready")
    prefix = fresh_name("saga")
    count = 5
    context = multiprocessing.get_context("spawn")
    child = context.Process(
        target=worker.run_and_hang,
        args=(postgres_server.url, prefix, effects_path, ready_path, count),
    )
    child.start()
    wait_until_ready(child, ready_path)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    start_at = time.time() + 3.0
    with context.Pool(4) as pool:
        counts = pool.starmap(
            worker.recover, [(postgres_server.url, prefix, effects_path, start_at)] * 4
        )
    assert sum(counts) == 2 * count  # two compensations per saga, in all
    undone = [
        e for e in sagas.effects(effects_path) if e.startswith(("refund", "release"))
    ]
    assert sorted(undone) == sorted(
        f"{what} order-{i}:{step}:compensate"
        for i in range(count)
        for what, step in (("refund", "charge"), ("release", "reserve"))
    )
    journal = rxr.PostgresSagaJournal(postgres_server.url, table_prefix=prefix)
    assert journal.unfinished() == []
    for i in range(count):
        state = journal.state(f"order-{i}")
        assert state is not None
        assert state.status == "compensated"
    journal.close()


def test_a_store_made_before_a_fork_gets_connections_of_its_own_in_the_child(
    postgres_server: PostgresServer,
) -> None:
    """The child of a fork must not talk on its parent's sockets (both would
    read each other's answers: claims lost or doubled). Its first call opens
    a pool of its own; the parent's connections go on serving the parent."""
    from .._fork import in_forked_child

    store = rxr.PostgresIdempotencyStore(postgres_server.url, table=fresh_name())
    store.create_schema()
    keys = [f"k{i}" for i in range(40)]
    assert store.claim("warm", None, "parent", 0.0, 1e9).status.name == "CLAIMED"
    done = threading.Event()
    parent_answers: list[str] = []

    def parent_claims() -> None:
        for key in keys:
            parent_answers.append(
                store.claim(f"p-{key}", None, "p", 0.0, 1e9).status.name
            )
        done.set()

    def child() -> bool:
        answers = [
            store.claim(f"c-{key}", None, "c", 0.0, 1e9).status.name for key in keys
        ]
        return answers == ["CLAIMED"] * len(keys)

    thread = threading.Thread(target=parent_claims)
    thread.start()
    assert in_forked_child(child) == 0
    thread.join(30)
    assert parent_answers == ["CLAIMED"] * len(keys)
    for key in keys:  # each side's claims are its own, every one there
        assert store.claim(f"c-{key}", None, "x", 0.0, 1e9).status.name == "IN_PROGRESS"
    store.close()


def test_a_users_pool_made_before_a_fork_is_refused_in_the_child(
    postgres_pool: Any,
) -> None:
    from .._fork import in_forked_child

    store = rxr.PostgresIdempotencyStore(postgres_pool, table=fresh_name())
    store.create_schema()

    def child() -> bool:
        try:
            store.claim("k", None, "c", 0.0, 1e9)
        except rxr.IdempotencyError as error:
            return "fork" in str(error)
        return False

    assert in_forked_child(child) == 0
    assert store.claim("k", None, "p", 0.0, 1e9).status.name == "CLAIMED"


def test_a_fork_while_a_parent_thread_checks_the_tables_leaves_the_child_free(
    postgres_server: PostgresServer,
) -> None:
    from .._fork import in_forked_child

    store = rxr.PostgresIdempotencyStore(postgres_server.url, table=fresh_name())

    def child() -> bool:
        return store.claim("k", None, "c", 0.0, 1e9).status.name == "CLAIMED"

    # A parent thread inside the first-use check's lock at the fork.
    assert in_forked_child(child, holding=store._tables._lock) == 0
    store.close()
