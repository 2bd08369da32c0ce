"""``RedisSagaJournal``: one hash tag per journal, 0.1's keys migrated, Redis Cluster.

Every key of a journal begins with ``"{" + prefix + "}"``, so a journal lives
in one hash slot and its scripts run on Redis Cluster; the keys 0.1 wrote
(``prefix + saga_id + ":meta"`` ...) are moved there once, atomically per
saga, before a journal's first operation. Real servers only: a plain one
and a one-node cluster (which refuses CROSSSLOT scripts as a fleet does).
"""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex as rx
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.testing import TestScheduler
from redis.crc import key_slot

import rxresilience as rxr
from rxresilience._redis_client import glob_escape
from rxresilience.saga import _redis_journal_upgrade as upgrade

from .. import _redis_saga_worker as redis_worker
from .. import _saga_worker as worker
from .._redis_server import RedisClusterServer, RedisServer
from ..fixtures import redis_v01_journal as v01

#: Characters that mean something to a glob, to SQL, to a hash tag or a shell.
ODD = "*?[]\\%_'\" :é"  # braces: see the hash tag tests


def fresh(prefix: str = "") -> str:
    """``prefix`` made unique to one test."""
    return f"{prefix}{uuid.uuid4().hex}:"


def keys_of(client: Any, prefix: str) -> set[bytes]:
    """The keys under a journal's hash tag."""
    return set(client.scan_iter(match=glob_escape("{" + prefix + "}") + "*"))


def dump(client: Any, prefix: str) -> dict[bytes, bytes]:
    """Every key literally under ``prefix``, with its serialized value."""
    return {
        key: client.dump(key)
        for key in client.scan_iter(match=glob_escape(prefix) + "*")
    }


def entry(kind: str, step: str = "a", context: bytes | None = b'"x"') -> Any:
    return rxr.JournalEntry(kind, step, context)


# --- one hash tag per journal -------------------------------------------------------------


def test_the_keys_of_a_journal_begin_with_its_prefix_as_a_hash_tag(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    prefix = fresh("saga-")
    journal = rxr.RedisSagaJournal(client, prefix=prefix)
    journal.begin_owned("o-1", "order", 1.0, owner="me", lease_until=31.0)
    journal.append_owned("o-1", entry("step_started"), 2.0, owner="me")
    tag = "{" + prefix + "}"
    assert keys_of(client, prefix) == {
        f"{tag}o-1:meta".encode(),
        f"{tag}o-1:entries".encode(),
        f"{tag}running".encode(),
        f"{tag}version".encode(),
    }
    assert set(client.scan_iter(match=glob_escape(prefix) + "*")) == set()
    journal.close()


_PREFIXES = st.text(
    st.sampled_from(ODD) | st.characters(codec="utf-8"), min_size=0, max_size=8
).filter(lambda text: "{" not in text and "}" not in text)


@settings(max_examples=40)
@given(text=_PREFIXES, saga_id=st.sampled_from(["o-1", "a}{b", "{x}", "*:meta", "é "]))
def test_every_key_a_journal_writes_shares_one_slot(
    redis_server: RedisServer, text: str, saga_id: str
) -> None:
    client = redis_server.client()
    prefix = fresh(text)
    journal = rxr.RedisSagaJournal(client, prefix=prefix)
    journal.begin_owned(saga_id, "s", 1.0, owner="me", lease_until=31.0)
    assert journal.append_owned(saga_id, entry("step_started"), 2.0, owner="me")
    assert journal.renew(saga_id, 3.0, owner="me", lease_until=33.0)
    assert journal.take(saga_id, 40.0, owner="you", lease_until=70.0, stale_before=40.0)
    journal.begin("other", "s", 5.0)
    journal.append("other", entry("step_started"), 6.0)
    journal.finish("other", "completed", 7.0)
    assert journal.claim_stale(saga_id, 100.0, 100.0)
    written = keys_of(client, prefix)
    assert len(written) == 6  # two hashes, two lists, the running set, the marker
    assert len({key_slot(key) for key in written}) == 1
    record = journal.load(saga_id)
    assert record is not None
    assert (record.owner, record.entries) == ("you", (entry("step_started"),))
    assert journal.unfinished() == [saga_id]
    journal.close()


@pytest.mark.parametrize(
    "prefix", ["", "}", "}saga:", "}{x}", "a}b", "x{", "{}x", "{", "{{{", "a{}b}"]
)
def test_a_prefix_whose_braces_make_no_hash_tag_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match=r"^prefix .*hash tag"):
        rxr.RedisSagaJournal(redis.Redis(), prefix=prefix)


def test_a_prefix_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(TypeError, match="prefix"):
        rxr.RedisSagaJournal(redis.Redis(), prefix=b"saga:")  # type: ignore[arg-type]


# --- take: an owner known to be gone -------------------------------------------------------


def test_take_takes_a_live_lease_only_from_the_gone_owner_it_names(
    redis_server: RedisServer,
) -> None:
    journal = rxr.RedisSagaJournal(redis_server.client(), prefix=fresh())
    journal.begin_owned("s-1", "s", 0.0, owner="dead", lease_until=100.0)

    def take(owner: str, gone_owner: str | None) -> bool:
        return journal.take(
            "s-1",
            10.0,
            owner=owner,
            lease_until=40.0,
            stale_before=10.0,
            gone_owner=gone_owner,
        )

    assert not take("me", None)  # its lease runs until 100
    assert not take("me", "")  # an empty name names nobody
    assert not take("me", "someone-else")
    assert take("me", "dead")
    record = journal.load("s-1")
    assert record is not None
    assert (record.owner, record.lease_until, record.touched) == ("me", 40.0, 10.0)
    assert not take("third", "dead")  # held by "me" now
    assert not journal.append_owned("s-1", entry("step_started"), 11.0, owner="dead")
    assert journal.finish_owned("s-1", "compensated", 12.0, owner="me")
    assert not take("third", "me")  # it ended
    journal.begin_owned("s-2", "s", 0.0, owner="", lease_until=100.0)
    assert not journal.take(
        "s-2", 10.0, owner="me", lease_until=40.0, stale_before=10.0
    )  # no gone owner named: not even an empty one
    journal.close()


def test_take_with_a_gone_owner_still_takes_an_expired_lease_of_anyone(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    prefix = fresh()
    v01.write_running_saga(client, prefix, "old-1", touched=1000.0)
    journal = rxr.RedisSagaJournal(client, prefix=prefix)
    journal.begin_owned("s-1", "s", 0.0, owner="alive", lease_until=5.0)
    for saga_id in ("old-1", "s-1"):
        assert not journal.take(
            saga_id,
            3.0,
            owner="me",
            lease_until=33.0,
            stale_before=3.0,
            gone_owner="dead",
        )
    assert journal.take(
        "s-1", 6.0, owner="me", lease_until=36.0, stale_before=6.0, gone_owner="dead"
    )
    assert journal.take(
        "old-1",
        1061.0,
        owner="me",
        lease_until=1091.0,
        stale_before=1001.0,
        gone_owner="dead",
    )
    journal.close()


# --- 0.1's keys, migrated in place -----------------------------------------------------------


def expected_records(prefix: str) -> dict[str, rxr.SagaRecord]:
    """What the journal read of the 0.1 fixture before 0.2 (the layout aside)."""
    started = entry("step_started")
    succeeded = entry("step_succeeded")
    return {
        "run-1": rxr.SagaRecord("run-1", "s", "running", 1000.0, (started, succeeded)),
        "done-1": rxr.SagaRecord(
            "done-1", "s", "completed", 500.0, (started, succeeded)
        ),
        "claimed-1": rxr.SagaRecord(
            "claimed-1", "s", "running", 2000.0, (started, succeeded)
        ),
    }


def write_fixture(client: Any, prefix: str) -> None:
    v01.write_running_saga(client, prefix, "run-1", touched=1000.0)
    v01.write_completed_saga(client, prefix, "done-1", touched=500.0)
    v01.write_claimed_saga(client, prefix, "claimed-1", touched=2000.0)


def test_sagas_written_by_0_1_read_the_same_after_the_journal_opens(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    prefix = fresh(ODD)
    write_fixture(client, prefix)
    journal = rxr.RedisSagaJournal(client, prefix=prefix)
    assert journal.unfinished() == ["run-1", "claimed-1"]  # oldest first
    for saga_id, record in expected_records(prefix).items():
        assert journal.load(saga_id) == record
        assert journal.state(saga_id) == record.state()
    assert dump(client, prefix) == {}  # 0.1's keys are gone, moved
    tag = "{" + prefix + "}"
    assert client.get(f"{tag}version") == upgrade.LAYOUT.encode()
    assert client.zrange(f"{tag}running", 0, -1, withscores=True) == [
        (b"run-1", 1000.0),
        (b"claimed-1", 2000.0),
    ]
    journal.close()


def test_recover_compensates_a_0_1_saga_once_untouched_for_stale_after(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    prefix = fresh()
    write_fixture(client, prefix)
    journal = rxr.RedisSagaJournal(client, prefix=prefix)
    undone: list[Any] = []
    saga: rxr.Saga[Any] = rxr.Saga("s").step(
        "a", execute=rx.of, compensate=undone.append
    )
    early = rxr.recover(
        journal, {"s": saga}, stale_after=60, scheduler=TestScheduler(1059)
    )
    assert early.pipe(ops.to_list()).run() == []
    late = rxr.recover(
        journal, {"s": saga}, stale_after=60, scheduler=TestScheduler(1061)
    )
    assert [type(e).__name__ for e in late.pipe(ops.to_list()).run()] == [
        "CompensationStarted",
        "StepCompensated",
    ]
    assert undone == ["x"]
    assert journal.state("run-1").status == "compensated"  # type: ignore[union-attr]
    assert journal.unfinished() == ["claimed-1"]  # touched at 2000 by 0.1's claim
    journal.close()


def test_opening_twice_migrates_once_and_the_second_finds_the_marker(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    prefix = fresh()
    write_fixture(client, prefix)
    assert upgrade.upgrade(client, prefix, cluster=False) == 3
    assert upgrade.upgrade(client, prefix, cluster=False) == 0
    client.delete("{" + prefix + "}version")  # as if the first died before marking
    assert upgrade.upgrade(client, prefix, cluster=False) == 0
    journal = rxr.RedisSagaJournal(client, prefix=prefix)
    for saga_id, record in expected_records(prefix).items():
        assert journal.load(saga_id) == record
    journal.close()


def test_eight_threads_opening_at_once_migrate_each_saga_exactly_once(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    prefix = fresh(ODD)
    ids = [f"s-{i}" for i in range(60)]
    for i, saga_id in enumerate(ids):
        v01.write_running_saga(client, prefix, saga_id, touched=1000.0 + i)
        if i % 3 == 0:
            v01.finish(client, prefix, saga_id, "completed", 5000.0 + i)
    start = threading.Barrier(16)
    moved: list[int] = []
    seen: list[list[str]] = []

    def migrate() -> None:
        start.wait()
        moved.append(upgrade.upgrade(redis_server.client(), prefix, cluster=False))

    def open_and_list() -> None:
        journal = rxr.RedisSagaJournal(redis_server.client(), prefix=prefix)
        start.wait()
        seen.append(journal.unfinished())
        journal.close()

    threads = [threading.Thread(target=migrate) for _ in range(8)]
    threads += [threading.Thread(target=open_and_list) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    running = [s for i, s in enumerate(ids) if i % 3]
    assert sum(moved) <= len(ids)  # the other openers moved the rest
    assert seen == [running] * 8
    journal = rxr.RedisSagaJournal(client, prefix=prefix)
    for i, saga_id in enumerate(ids):
        record = journal.load(saga_id)
        assert record is not None
        assert len(record.entries) == 2  # never lost, never doubled
        assert record.status == ("running" if i % 3 else "completed")
    assert dump(client, prefix) == {}
    journal.close()


def test_racing_migrations_move_each_saga_exactly_once(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    prefix = fresh()
    for i in range(60):
        v01.write_running_saga(client, prefix, f"s-{i}", touched=1000.0 + i)
    start = threading.Barrier(8)
    moved: list[int] = []

    def migrate() -> None:
        start.wait()
        moved.append(upgrade.upgrade(redis_server.client(), prefix, cluster=False))

    threads = [threading.Thread(target=migrate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(moved) == 60
    journal = rxr.RedisSagaJournal(client, prefix=prefix)
    assert journal.unfinished() == [f"s-{i}" for i in range(60)]
    journal.close()


def test_a_glob_prefix_migrates_only_its_own_keys(redis_server: RedisServer) -> None:
    client = redis_server.client()
    base = uuid.uuid4().hex
    star, plain = f"{base}a*", f"{base}ab"
    v01.write_running_saga(client, star, "mine")
    v01.write_running_saga(client, plain, "theirs")
    v01.write_completed_saga(client, plain, "theirs-done")
    theirs = dump(client, plain)
    journal = rxr.RedisSagaJournal(client, prefix=star)
    assert journal.unfinished() == ["mine"]
    assert journal.load("theirs") is None
    assert dump(client, plain) == theirs  # not one key of "ab" touched
    other = rxr.RedisSagaJournal(client, prefix=plain)
    assert other.unfinished() == ["theirs"]
    assert other.load("theirs-done") is not None
    assert journal.unfinished() == ["mine"]
    journal.close()
    other.close()


def test_saga_ids_that_look_like_key_suffixes_migrate_whole(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    prefix = fresh()
    ids = ["x", "x:meta", "x:entries", "running", "version", ":meta", "{y}"]
    for i, saga_id in enumerate(ids):
        v01.write_running_saga(client, prefix, saga_id, touched=1000.0 + i)
    journal = rxr.RedisSagaJournal(client, prefix=prefix)
    assert journal.unfinished() == ids
    for saga_id in ids:
        record = journal.load(saga_id)
        assert record is not None
        assert len(record.entries) == 2
    assert dump(client, prefix) == {}
    journal.close()


def test_the_migration_never_touches_another_journals_new_layout_keys(
    redis_server: RedisServer,
) -> None:
    """A prefix with a hash tag of its own keeps its keys unwrapped: those of
    ``p + "{a}:"`` begin with ``p``, so the search for ``p``'s 0.1 keys finds
    them, and must leave them alone."""
    client = redis_server.client()
    plain = fresh()
    tagged = plain + "{a}:"
    other = rxr.RedisSagaJournal(client, prefix=tagged)
    other.begin_owned("x", "s", 1.0, owner="me", lease_until=31.0)
    other.begin("done", "s", 1.0)
    other.finish("done", "completed", 3.0)
    theirs = {
        key: client.dump(key)
        for key in client.scan_iter(match=glob_escape(tagged) + "*")
    }
    assert len(theirs) == 4  # two hashes, the running set, the marker
    journal = rxr.RedisSagaJournal(client, prefix=plain)
    assert journal.unfinished() == []
    after = {
        key: client.dump(key)
        for key in client.scan_iter(match=glob_escape(tagged) + "*")
    }
    assert after == theirs
    assert other.unfinished() == ["x"]
    journal.close()
    other.close()


@pytest.mark.parametrize("prefix", ["{orders}:", "app:{orders}", "{o}"])
def test_a_prefix_with_a_hash_tag_of_its_own_is_used_as_it_is(
    redis_server: RedisServer, prefix: str
) -> None:
    client = redis_server.client()
    prefix = prefix.replace("orders", fresh("orders-"))
    journal = rxr.RedisSagaJournal(client, prefix=prefix)
    journal.begin_owned("o-1", "order", 1.0, owner="me", lease_until=31.0)
    written = set(client.scan_iter(match=glob_escape(prefix) + "*"))
    assert written == {
        f"{prefix}o-1:meta".encode(),
        f"{prefix}running".encode(),
        f"{prefix}version".encode(),
    }
    assert len({key_slot(key) for key in written}) == 1
    journal.close()


def test_a_0_1_journal_with_a_tagged_prefix_is_read_in_place_even_on_a_cluster(
    redis_cluster: RedisClusterServer,
) -> None:
    """0.1's scripts ran on a cluster when the prefix held a hash tag: those
    keys are this release's already."""
    client = redis_cluster.cluster_client()
    prefix = "{" + fresh("orders-") + "}:"
    v01.write_running_saga(client, prefix, "run-1")
    journal = rxr.RedisSagaJournal(client, prefix=prefix)
    assert journal.unfinished() == ["run-1"]
    record = journal.load("run-1")
    assert record is not None
    assert record.status == "running"
    journal.close()


def test_the_migration_leaves_what_is_not_a_0_1_saga_alone(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    prefix = fresh()
    client.hset(f"{prefix}k:meta", mapping={"status": "x", "fingerprint": "f"})
    client.set(f"{prefix}s:meta", "a string")
    client.hset(f"{prefix}l:meta", mapping={"name": "s", "status": "done"})
    v01.write_completed_saga(client, prefix, "e")
    client.delete(f"{prefix}e:entries")
    client.set(f"{prefix}e:entries", "not a list")
    theirs = dump(client, prefix)
    journal = rxr.RedisSagaJournal(client, prefix=prefix)
    assert journal.unfinished() == []
    assert journal.load("k") is None
    assert dump(client, prefix) == theirs
    journal.close()


def test_a_running_saga_is_migrated_by_the_journal_whose_running_set_lists_it(
    redis_server: RedisServer,
) -> None:
    """Prefixes "p" and "pab": 0.1's "p" saw "pab"'s keys as its own saga "abx"."""
    client = redis_server.client()
    short = fresh()
    long = short + "ab"
    v01.write_running_saga(client, long, "x")
    journal = rxr.RedisSagaJournal(client, prefix=short)
    assert journal.unfinished() == []
    assert journal.load("abx") is None
    other = rxr.RedisSagaJournal(client, prefix=long)
    assert other.unfinished() == ["x"]
    journal.close()
    other.close()


def test_a_0_1_saga_beside_a_new_one_of_the_same_id_is_left_alone(
    redis_server: RedisServer,
) -> None:
    """A 0.1 process that wrote after the upgrade: its keys are kept, not merged."""
    client = redis_server.client()
    prefix = fresh()
    journal = rxr.RedisSagaJournal(client, prefix=prefix)
    journal.begin("s-1", "new", 1.0)
    v01.write_running_saga(client, prefix, "s-1")
    old = dump(client, prefix)
    client.delete("{" + prefix + "}version")
    assert upgrade.upgrade(client, prefix, cluster=False) == 0
    assert dump(client, prefix) == old
    record = journal.load("s-1")
    assert record is not None
    assert record.saga_name == "new"
    journal.close()


def test_a_layout_from_a_newer_release_is_refused(redis_server: RedisServer) -> None:
    client = redis_server.client()
    prefix = fresh()
    client.set("{" + prefix + "}version", "99")
    journal = rxr.RedisSagaJournal(client, prefix=prefix)
    with pytest.raises(rxr.SagaError, match="layout"):
        journal.unfinished()
    journal.close()


def test_a_journal_opened_while_redis_is_down_migrates_once_it_is_back(
    tmp_path: pathlib.Path,
) -> None:
    server = RedisServer(tmp_path / "down", appendonly=True)
    server.start()
    try:
        prefix = fresh()
        write_fixture(server.client(), prefix)
        server.stop()
        journal = rxr.RedisSagaJournal(server.client(), prefix=prefix)  # no connection
        with pytest.raises(rxr.SagaError, match="Redis saga journal failed"):
            journal.unfinished()
        server.start()
        assert journal.unfinished() == ["run-1", "claimed-1"]
        for saga_id, record in expected_records(prefix).items():
            assert journal.load(saga_id) == record
    finally:
        server.stop()


# --- Redis Cluster -----------------------------------------------------------------------------


@pytest.fixture
def cluster_journal(redis_cluster: RedisClusterServer) -> Iterator[Any]:
    journal = rxr.RedisSagaJournal(redis_cluster.cluster_client(), prefix=fresh(ODD))
    yield journal
    journal.close()


def test_0_1_keys_are_refused_by_a_redis_cluster(
    redis_cluster: RedisClusterServer,
) -> None:
    with pytest.raises(redis.exceptions.ResponseError, match=r"CROSSSLOT|same slot"):
        v01.begin(redis_cluster.client(), fresh(), "s-1", "s", 1.0)


def test_a_saga_runs_and_compensates_on_redis_cluster(cluster_journal: Any) -> None:
    undone: list[int] = []
    ok: rxr.Saga[int] = rxr.Saga("s").step(
        "a", execute=lambda n: rx.of(n + 1), compensate=undone.append
    )
    assert ok.run(1, journal=cluster_journal, saga_id="s-ok").run() == 2
    failing: rxr.Saga[int] = (
        rxr.Saga("f")
        .step("a", execute=lambda n: rx.of(n + 1), compensate=undone.append)
        .step("b", execute=lambda n: rx.throw(RuntimeError("no")))
    )
    with pytest.raises(rxr.SagaFailed):
        failing.run(1, journal=cluster_journal, saga_id="s-failed").run()
    assert undone == [2]
    assert cluster_journal.state("s-ok").status == "completed"
    assert cluster_journal.state("s-failed").status == "compensated"
    assert cluster_journal.unfinished() == []


def test_journal_writes_are_fenced_on_redis_cluster(cluster_journal: Any) -> None:
    journal = cluster_journal
    journal.begin_owned("s-1", "s", 0.0, owner="me", lease_until=30.0)
    assert journal.append_owned("s-1", entry("step_started"), 1.0, owner="me")
    assert not journal.append_owned("s-1", entry("step_started"), 1.0, owner="x")
    assert journal.renew("s-1", 2.0, owner="me", lease_until=32.0)
    assert not journal.take(
        "s-1", 31.0, owner="other", lease_until=61.0, stale_before=31.0
    )
    assert journal.take(
        "s-1", 31.0, owner="other", lease_until=61.0, stale_before=31.0, gone_owner="me"
    )
    assert not journal.renew("s-1", 34.0, owner="me", lease_until=64.0)
    assert not journal.finish_owned("s-1", "completed", 34.0, owner="me")
    assert journal.unfinished() == ["s-1"]
    assert journal.finish_owned("s-1", "compensated", 35.0, owner="other")
    assert journal.unfinished() == []
    journal.begin("s-2", "s", 40.0)
    journal.append("s-2", entry("step_started"), 41.0)
    assert journal.claim_stale("s-2", 100.0, 50.0)
    journal.finish("s-2", "failed", 101.0)
    record = journal.load("s-2")
    assert (record.status, len(record.entries)) == ("failed", 1)


def test_recover_takes_a_dead_owners_saga_on_redis_cluster(
    cluster_journal: Any,
) -> None:
    journal = cluster_journal
    undone: list[Any] = []
    saga: rxr.Saga[Any] = rxr.Saga("s", lease=30.0).step(
        "a", execute=rx.of, compensate=undone.append
    )
    journal.begin_owned("s-1", "s", 0.0, owner="dead", lease_until=30.0)
    journal.append_owned("s-1", entry("step_started"), 1.0, owner="dead")
    journal.append_owned("s-1", entry("step_succeeded"), 2.0, owner="dead")
    early = rxr.recover(journal, {"s": saga}, scheduler=TestScheduler(29.0))
    assert early.pipe(ops.to_list()).run() == []
    late = rxr.recover(journal, {"s": saga}, scheduler=TestScheduler(31.0))
    assert len(late.pipe(ops.to_list()).run()) == 2
    assert undone == ["x"]
    assert journal.state("s-1").status == "compensated"


@settings(max_examples=20)
@given(text=_PREFIXES)
def test_a_journal_on_any_prefix_works_on_redis_cluster(
    redis_cluster: RedisClusterServer, text: str
) -> None:
    journal = rxr.RedisSagaJournal(redis_cluster.cluster_client(), prefix=fresh(text))
    saga: rxr.Saga[int] = rxr.Saga("s").step("a", execute=lambda n: rx.of(n + 1))
    assert saga.run(1, journal=journal, saga_id="o-1").run() == 2
    assert journal.state("o-1").status == "completed"  # type: ignore[union-attr]
    journal.close()


def test_a_cluster_journal_talks_through_its_own_client_bounded_and_without_retries(
    redis_cluster: RedisClusterServer,
) -> None:
    from redis.cluster import RedisCluster

    theirs = RedisCluster(
        host="127.0.0.1", port=redis_cluster.port, decode_responses=True
    )
    journal = rxr.RedisSagaJournal(theirs, prefix=fresh(), socket_timeout=2.5)
    ours = journal._client
    assert isinstance(ours, RedisCluster)
    assert ours is not theirs
    assert ours.retry.get_retries() == 0
    assert ours.nodes_manager.connection_kwargs["socket_timeout"] == 2.5
    journal.begin("s-1", "s", 1.0)  # replies read as bytes despite decode_responses
    assert journal.unfinished() == ["s-1"]
    journal.close()
    theirs.close()


# --- two processes ------------------------------------------------------------------------------


def start_slow_saga(
    server: RedisServer,
    tmp_path: pathlib.Path,
    lease: float,
    step_seconds: float,
    elsewhere: bool = False,
) -> tuple[Any, str, str]:
    prefix = fresh()
    effects_path = str(tmp_path / "effects.db")
    child = multiprocessing.get_context("spawn").Process(
        target=redis_worker.run_slow_saga,
        args=(server.url, prefix, effects_path, lease, step_seconds, elsewhere),
    )
    child.start()
    deadline = time.monotonic() + 60
    while "a started" not in worker.effects(effects_path):
        assert time.monotonic() < deadline, "the child never started its saga"
        child.join(0.01)
    return child, prefix, effects_path


def test_another_process_never_takes_a_live_saga_whose_step_lasts_three_leases(
    redis_server: RedisServer, tmp_path: pathlib.Path
) -> None:
    child, prefix, effects_path = start_slow_saga(redis_server, tmp_path, 0.5, 1.6)
    journal = rxr.RedisSagaJournal(redis_server.client(), prefix=prefix)
    saga = worker.slow_saga(effects_path, 0.5, 1.6)
    taken: list[Any] = []
    looks: list[float] = []
    while child.is_alive():
        taken.extend(rxr.recover(journal, {"slow": saga}).pipe(ops.to_list()).run())
        looks.append(time.monotonic())
        child.join(0.02)
    assert looks[-1] - looks[0] > 2 * 0.5  # it kept looking, lease after lease
    assert child.exitcode == 0
    assert taken == []
    assert worker.effects(effects_path) == ["a started", "b started", "completed"]
    assert journal.state(redis_worker.SAGA_ID).status == "completed"  # type: ignore[union-attr]
    journal.close()


def test_a_killed_owner_is_taken_over_one_lease_after_its_last_renewal_and_not_before(
    redis_server: RedisServer, tmp_path: pathlib.Path
) -> None:
    # As if on another machine: a recoverer here cannot see that it died.
    child, prefix, effects_path = start_slow_saga(
        redis_server, tmp_path, 0.3, 60.0, elsewhere=True
    )
    journal = rxr.RedisSagaJournal(redis_server.client(), prefix=prefix)
    first = journal.load(redis_worker.SAGA_ID)
    assert first is not None
    assert first.lease_until is not None
    deadline = time.monotonic() + 10
    while journal.load(redis_worker.SAGA_ID).lease_until == first.lease_until:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the owner never renewed its lease"
        child.join(0.02)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    last = journal.load(redis_worker.SAGA_ID)
    assert last is not None
    assert last.lease_until is not None
    assert last.lease_until == pytest.approx(last.touched + 0.3)  # its last renewal
    saga = worker.slow_saga(effects_path, 0.3, 60.0)
    early = rxr.recover(
        journal, {"slow": saga}, scheduler=TestScheduler(last.lease_until - 0.01)
    )
    assert early.pipe(ops.to_list()).run() == []
    assert journal.load(redis_worker.SAGA_ID) == last  # not even touched
    late = rxr.recover(
        journal, {"slow": saga}, scheduler=TestScheduler(last.lease_until + 0.01)
    )
    assert [type(e).__name__ for e in late.pipe(ops.to_list()).run()] == [
        "CompensationStarted",
        "StepCompensated",
    ]
    assert worker.effects(effects_path) == ["a started", "undo a"]
    assert journal.state(redis_worker.SAGA_ID).status == "compensated"  # type: ignore[union-attr]
    journal.close()


def test_a_slow_compensation_under_recovery_is_never_run_by_a_recoverer_in_another_process(
    redis_server: RedisServer, tmp_path: pathlib.Path
) -> None:
    prefix = fresh()
    effects_path = str(tmp_path / "effects.db")
    journal = rxr.RedisSagaJournal(redis_server.client(), prefix=prefix)
    gone = time.time() - 10.0  # a dead owner's lease, long over
    journal.begin_owned(
        redis_worker.SAGA_ID, "slow-undo", gone, owner="dead", lease_until=gone + 0.3
    )
    for kind, step in [
        ("step_started", "a"),
        ("step_succeeded", "a"),
        ("step_started", "b"),
    ]:
        assert journal.append_owned(
            redis_worker.SAGA_ID, entry(kind, step), gone, owner="dead"
        )
    child = multiprocessing.get_context("spawn").Process(
        target=redis_worker.recover_slowly,
        args=(redis_server.url, prefix, effects_path, 0.3, 1.5),
    )
    child.start()
    deadline = time.monotonic() + 60
    while "undo a" not in worker.effects(effects_path):
        assert time.monotonic() < deadline, "the child never started recovering"
        child.join(0.01)
    saga = redis_worker.slow_undo_saga(effects_path, 0.3, 1.5)
    taken: list[Any] = []
    looks: list[float] = []
    while child.is_alive():
        taken.extend(
            rxr.recover(journal, {"slow-undo": saga}).pipe(ops.to_list()).run()
        )
        looks.append(time.monotonic())
        child.join(0.02)
    assert looks[-1] - looks[0] > 3 * 0.3  # through the recoverer's renewed leases
    assert child.exitcode == 0
    assert taken == []
    assert worker.effects(effects_path) == ["undo a", "recovered 1"]
    assert journal.state(redis_worker.SAGA_ID).status == "compensated"  # type: ignore[union-attr]
    journal.close()


def test_a_process_paused_past_its_lease_is_taken_over_and_stops_when_resumed(
    redis_server: RedisServer, tmp_path: pathlib.Path
) -> None:
    child, prefix, effects_path = start_slow_saga(redis_server, tmp_path, 0.3, 2.0)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGSTOP)  # slow, not dead: its lease runs out
    try:
        child.join(0.6)  # a real process, paused: let its 0.3 s lease run out
        journal = rxr.RedisSagaJournal(redis_server.client(), prefix=prefix)
        saga = worker.slow_saga(effects_path, 0.3, 2.0)
        events = rxr.recover(journal, {"slow": saga}).pipe(ops.to_list()).run()
    finally:
        os.kill(child.pid, signal.SIGCONT)
    assert [type(e).__name__ for e in events] == [
        "CompensationStarted",
        "StepCompensated",
    ]
    taken = journal.load(redis_worker.SAGA_ID)
    child.join(30)
    assert child.exitcode == 0
    assert worker.effects(effects_path) == [
        "a started",
        "undo a",
        "error SagaOwnershipLostError",
    ]
    record = journal.load(redis_worker.SAGA_ID)
    assert record == taken  # the resumed run wrote nothing more
    assert record is not None
    assert record.status == "compensated"
    assert [e.kind for e in record.entries] == [
        "step_started",
        "compensation_started",
        "compensated",
    ]
    journal.close()
