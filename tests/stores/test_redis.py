"""``RedisIdempotencyStore`` beyond the contract: its keys, its scripts, upgrades from 0.1."""

from __future__ import annotations

import pathlib
import time
import uuid
from typing import Any

import pytest

import rxresilience as rxr
from rxresilience._clock import LONGEST_WAIT

from .._redis_server import RedisServer
from ..fixtures import redis_v01
from ._store_values import (
    CLAIMED,
    COMPLETED,
    IN_PROGRESS,
    RECORD,
    odd_prefix,
)


def test_a_renewal_that_cannot_reach_redis_raises_idempotency_error(
    tmp_path: pathlib.Path,
) -> None:
    server = RedisServer(tmp_path / "down")
    server.start()
    store = rxr.RedisIdempotencyStore(server.client(), prefix="down:")
    store.claim("k", None, "owner", now=0.0, lease_until=10.0)
    server.stop()
    started = time.monotonic()
    with pytest.raises(rxr.IdempotencyError, match="Redis"):
        store.renew("k", "owner", lease_until=100.0)
    assert time.monotonic() - started < 10  # bounded, never a hang
    store.close()


# --- B. Redis: a store touches only the keys it wrote -----------------------------------


def test_purge_on_a_glob_prefix_removes_its_own_keys_and_nobody_elses(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    prefix = odd_prefix()
    store = rxr.RedisIdempotencyStore(client, prefix=prefix)
    store.claim("done", None, "o", now=0.0, lease_until=10.0)
    store.complete("done", "o", RECORD, expires_at=50.0)
    store.claim("lapsed", None, "o", now=0.0, lease_until=10.0)
    store.claim("fresh", None, "o", now=0.0, lease_until=1000.0)
    # What the unescaped glob prefix + "*" would have matched, and a look-alike
    # of ours written by another application under our own prefix:
    unescaped_match = "aZx*" + uuid.uuid4().hex
    client.hset(unescaped_match, mapping={"expires": "1", "status": "completed"})
    client.hset(prefix + "theirs", mapping={"expires": "1", "status": "x"})
    client.set(prefix + "a-string", "v")
    client.rpush(prefix + "a-list", "v")
    assert store.purge_expired(now=100.0) == 2
    assert store.get("done", now=0.0) is None
    assert store.claim("fresh", None, "p", now=100.0, lease_until=200.0).status is (
        IN_PROGRESS
    )
    assert client.hgetall(unescaped_match) == {
        b"expires": b"1",
        b"status": b"completed",
    }
    assert client.hgetall(prefix + "theirs") == {b"expires": b"1", b"status": b"x"}
    assert client.get(prefix + "a-string") == b"v"
    assert client.lrange(prefix + "a-list", 0, -1) == [b"v"]
    store.close()


def test_a_store_purges_beside_a_saga_journal_on_a_longer_prefix(
    redis_server: RedisServer,
) -> None:
    app = f"app-{uuid.uuid4().hex}:"
    store = rxr.RedisIdempotencyStore(redis_server.client(), prefix=app)
    journal = rxr.RedisSagaJournal(redis_server.client(), prefix=f"{app}saga:")
    journal.begin("s1", "order", now=1.0)
    journal.append("s1", rxr.JournalEntry("step_started", "charge", b"{}"), now=2.0)
    store.claim("k", None, "o", now=0.0, lease_until=10.0)
    store.complete("k", "o", RECORD, expires_at=50.0)
    before = journal.load("s1")
    assert store.purge_expired(now=100.0) == 1
    assert journal.load("s1") == before
    assert journal.unfinished() == ["s1"]
    store.close()
    journal.close()


def test_the_store_keeps_its_index_small_without_purge(
    redis_server: RedisServer,
) -> None:
    """Redis's own expiry cleans records up; the index must not keep them forever."""
    client = redis_server.client()
    prefix = odd_prefix()
    store = rxr.RedisIdempotencyStore(client, prefix=prefix)
    for i in range(300):
        store.claim(f"k{i}", None, "o", now=float(i), lease_until=i + 1.0)
    assert 0 < client.zcard(prefix) < 200  # swept on the way, a batch at a time
    store.close()


def _breaker_keys(client: Any, name: str, prefix: str) -> list[bytes]:
    base = f"{prefix}{{{name}}}".encode()
    own = (base, base + b":permits", base + b":log", base + b":window:count:5")
    return sorted(k for k in client.keys("*") if k in own)


@pytest.mark.parametrize(
    "name", ["pay*", "pay?ents", "[p]ayments", "pay\\", "p*", "a", "a}:window:"]
)
def test_deleting_a_breaker_with_a_glob_name_removes_its_keys_only(
    redis_server: RedisServer, name: str
) -> None:
    client = redis_server.client()
    prefix = f"breaker-{uuid.uuid4().hex}:"
    storages = {}
    victims = ["payments", "pay\\ments", name + "}:window:count:5"]
    for each in (name, *victims):
        storages[each] = rxr.RedisBreakerStorage(client, name=each, prefix=prefix)
        breaker = rxr.CircuitBreaker(
            window=rxr.CountWindow(5),
            failure_rate_threshold=0.5,
            storage=storages[each],
            name=each,
        )
        breaker.call(lambda: 1)
    others = {each: _breaker_keys(client, each, prefix) for each in storages}
    assert all(len(keys) >= 2 for keys in others.values())
    storages[name].delete()
    assert _breaker_keys(client, name, prefix) == []
    for each in victims:
        assert _breaker_keys(client, each, prefix) == others[each]


# --- C. upgrades: data written by 0.1 ----------------------------------------------------


def test_keys_written_by_0_1_are_replayed_expired_and_purged(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    prefix = odd_prefix()

    def write(key: str, now: float, lease: float, expires: float | None) -> None:
        assert redis_v01.claim(client, prefix, key, "f", "old", now, lease) == "claimed"
        if expires is not None:
            assert redis_v01.complete(client, prefix, key, "old", RECORD, expires)

    write("done", 0.0, 10.0, 10_000.0)
    write("stale", 0.0, 10.0, 50.0)
    write("running", 90.0, 200.0, None)
    write("lapsed", 0.0, 20.0, None)
    client.hset(prefix + "look-alike", mapping={"expires": "1", "status": "x"})
    store = rxr.RedisIdempotencyStore(client, prefix=prefix)
    claim = store.claim("done", "f", "new", now=100.0, lease_until=110.0)
    assert (claim.status, claim.record) == (COMPLETED, RECORD)
    assert store.claim("running", "f", "new", now=100.0, lease_until=110.0).status is (
        IN_PROGRESS
    )
    assert store.get("stale", now=100.0) is None
    assert store.purge_expired(now=100.0) == 2  # stale and lapsed
    assert store.purge_expired(now=100.0) == 0
    assert client.exists(prefix + "done", prefix + "running") == 2
    assert client.hgetall(prefix + "look-alike") == {b"expires": b"1", b"status": b"x"}
    # the claim in flight across the upgrade still expires, and is claimable
    assert store.purge_expired(now=200.0) == 1
    assert store.claim("running", "f", "new", now=200.0, lease_until=210.0).status is (
        CLAIMED
    )
    assert store.purge_expired(now=20_000.0) == 2  # done, and the new claim
    store.close()


def test_a_0_1_claim_is_claimable_once_expired_and_its_owner_can_renew(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    prefix = odd_prefix()
    redis_v01.claim(client, prefix, "a", None, "old", 0.0, 10.0)
    redis_v01.claim(client, prefix, "b", None, "old", 0.0, 10.0)
    store = rxr.RedisIdempotencyStore(client, prefix=prefix)
    assert store.claim("a", None, "new", now=10.0, lease_until=20.0).status is CLAIMED
    assert store.renew("b", "old", lease_until=100.0)
    assert store.claim("b", None, "new", now=50.0, lease_until=60.0).status is (
        IN_PROGRESS
    )
    assert store.complete("b", "old", RECORD, expires_at=500.0)
    assert store.purge_expired(now=499.0) == 1  # a's new claim
    assert store.purge_expired(now=500.0) == 1  # b's record
    store.close()


def test_the_latest_time_covers_every_clock_and_stays_exact_in_lua() -> None:
    from rxresilience.stores._base import LATEST_TIME

    year_9999 = 253_402_300_800  # the end of datetime's range, in epoch seconds
    assert year_9999 + LONGEST_WAIT < LATEST_TIME
    assert (2 * LATEST_TIME + 60) * 1000 < 2**53  # a span in ms is an exact double


def _snapshot(client: Any, *keys: str) -> list[object]:
    return [(client.dump(key), client.pttl(key) > 0) for key in keys]


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e300", "x", ""])
def test_every_redis_script_checks_its_times_before_its_first_write(
    redis_server: RedisServer, bad: str
) -> None:
    """The Python side checks first; the scripts check again, for any caller."""
    import redis

    from rxresilience.stores import _redis_scripts as lua

    client = redis_server.client()
    prefix = odd_prefix()
    store = rxr.RedisIdempotencyStore(client, prefix=prefix)
    store.claim("k", None, "owner", now=0.0, lease_until=10.0)
    record, index = prefix + "k", prefix
    before = _snapshot(client, record, index)
    calls = [
        (lua.CLAIM, [bad, "-", "o", "10.0", "new"]),
        (lua.CLAIM, ["0.0", "-", "o", bad, "new"]),
        (lua.RENEW, ["owner", bad, "k"]),
        (lua.COMPLETE, ["owner", RECORD, bad, "k"]),
    ]
    for script, args in calls:
        with pytest.raises(redis.exceptions.ResponseError, match="must be a finite"):
            client.register_script(script)(keys=[record, index], args=args)
    with pytest.raises(redis.exceptions.ResponseError, match="must be a finite"):
        client.register_script(lua.PURGE)(keys=[index, record], args=[bad, "k"])
    assert _snapshot(client, record, index) == before
    assert client.exists(prefix + "new") == 0
    store.close()


def test_a_redis_index_key_taken_by_other_data_fails_every_write_cleanly(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    prefix = odd_prefix()
    client.set(prefix, "someone else's")
    store = rxr.RedisIdempotencyStore(client, prefix=prefix)
    with pytest.raises(rxr.IdempotencyError, match="index"):
        store.claim("k", None, "o", now=0.0, lease_until=10.0)
    with pytest.raises(rxr.IdempotencyError):
        store.purge_expired(now=0.0)
    assert client.exists(prefix + "k") == 0
    assert client.get(prefix) == b"someone else's"
    store.close()


def test_a_redis_claim_never_overwrites_another_applications_hash(
    redis_server: Any,
) -> None:
    client = redis_server.client()
    store = rxr.RedisIdempotencyStore(client, prefix="shared-app:")
    client.hset("shared-app:user:42", mapping={"name": "Ada", "expires": "1"})
    with pytest.raises(rxr.IdempotencyError, match="did not write"):
        store.claim("user:42", None, "me", 10.0, 20.0)
    assert client.hgetall("shared-app:user:42") == {b"name": b"Ada", b"expires": b"1"}
    store.purge_expired(1e9)
    assert client.hgetall("shared-app:user:42") == {b"name": b"Ada", b"expires": b"1"}
