"""The idempotency store contract, the same for memory, SQLite and Redis; upgrades from 0.1."""

from __future__ import annotations

import math
import os
import pathlib
import shutil
import sqlite3
import stat
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rxresilience as rxr
from rxresilience._clock import LONGEST_WAIT

from ._redis_server import RedisServer
from ._support import DURATIONS_OUT_OF_RANGE
from .fixtures import redis_v01

CLAIMED = rxr.ClaimStatus.CLAIMED
COMPLETED = rxr.ClaimStatus.COMPLETED
IN_PROGRESS = rxr.ClaimStatus.IN_PROGRESS
RECORD = b'{"values":[1],"error":null}'
FIXTURES = pathlib.Path(__file__).parent / "fixtures"

#: Every literal a name reaching Redis may hold: glob and quoting characters.
ODD_PREFIX = "a*[x]\\?{t}%_' "


def odd_prefix() -> str:
    return f"{ODD_PREFIX}{uuid.uuid4().hex}:"


@pytest.fixture(params=["memory", "sqlite", "redis"])
def make_store(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> Iterator[Callable[[], rxr.IdempotencyStore]]:
    """Build stores of one backend; Redis ones on a prefix full of glob characters."""
    made: list[rxr.IdempotencyStore] = []

    def make() -> rxr.IdempotencyStore:
        store: rxr.IdempotencyStore
        if request.param == "memory":
            store = rxr.InMemoryIdempotencyStore()
        elif request.param == "redis":
            server: RedisServer = request.getfixturevalue("redis_server")
            store = rxr.RedisIdempotencyStore(server.client(), prefix=odd_prefix())
        else:
            store = rxr.SQLiteIdempotencyStore(tmp_path / f"{len(made)}.db")
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_store: Callable[[], rxr.IdempotencyStore]) -> rxr.IdempotencyStore:
    return make_store()


# --- A. renewal -----------------------------------------------------------------------


def test_the_owner_renews_its_claim_past_its_lease(store: rxr.IdempotencyStore) -> None:
    assert store.claim("k", "f", "owner", now=0.0, lease_until=10.0).status is CLAIMED
    assert store.renew("k", "owner", lease_until=100.0)
    assert store.claim("k", "f", "other", now=50.0, lease_until=60.0).status is (
        IN_PROGRESS
    )
    assert store.claim("k", "f", "other", now=100.0, lease_until=160.0).status is (
        CLAIMED
    )


def test_an_owner_whose_lease_passed_renews_if_nobody_took_the_key(
    store: rxr.IdempotencyStore,
) -> None:
    store.claim("k", None, "owner", now=0.0, lease_until=10.0)
    assert store.renew("k", "owner", lease_until=200.0)
    assert store.claim("k", None, "other", now=100.0, lease_until=160.0).status is (
        IN_PROGRESS
    )
    assert store.complete("k", "owner", RECORD, expires_at=1000.0)
    assert store.get("k", now=150.0) == RECORD


def test_a_renewed_claim_is_completed_and_its_record_expires_as_recorded(
    store: rxr.IdempotencyStore,
) -> None:
    store.claim("k", None, "owner", now=0.0, lease_until=10.0)
    assert store.renew("k", "owner", lease_until=5000.0)
    assert store.complete("k", "owner", RECORD, expires_at=100.0)
    assert store.get("k", now=99.0) == RECORD
    assert store.get("k", now=100.0) is None
    assert store.claim("k", None, "next", now=100.0, lease_until=110.0).status is (
        CLAIMED
    )


def test_renewal_of_a_completed_key_fails_and_changes_nothing(
    store: rxr.IdempotencyStore,
) -> None:
    store.claim("k", None, "owner", now=0.0, lease_until=10.0)
    store.complete("k", "owner", RECORD, expires_at=100.0)
    assert not store.renew("k", "owner", lease_until=5000.0)
    claim = store.claim("k", None, "other", now=50.0, lease_until=60.0)
    assert (claim.status, claim.record) == (COMPLETED, RECORD)
    assert store.get("k", now=100.0) is None  # its expiry did not move


def test_renewal_of_a_released_or_absent_key_fails_and_claims_nothing(
    store: rxr.IdempotencyStore,
) -> None:
    store.claim("k", None, "owner", now=0.0, lease_until=10.0)
    assert store.release("k", "owner")
    assert not store.renew("k", "owner", lease_until=5000.0)
    assert not store.renew("never", "owner", lease_until=5000.0)
    for key in ("k", "never"):
        assert store.claim(key, None, "o", now=1.0, lease_until=2.0).status is CLAIMED


def test_renewal_by_an_owner_whose_key_was_taken_over_fails(
    store: rxr.IdempotencyStore,
) -> None:
    store.claim("k", None, "slow", now=0.0, lease_until=10.0)
    store.claim("k", None, "new", now=20.0, lease_until=30.0)
    assert not store.renew("k", "slow", lease_until=5000.0)
    assert not store.complete("k", "slow", RECORD, expires_at=5000.0)
    # the new owner's lease is its own, unchanged by the refused renewal
    assert store.claim("k", None, "third", now=29.0, lease_until=40.0).status is (
        IN_PROGRESS
    )
    assert store.claim("k", None, "third", now=30.0, lease_until=40.0).status is (
        CLAIMED
    )


def test_renewal_by_another_owner_fails(store: rxr.IdempotencyStore) -> None:
    store.claim("k", None, "owner", now=0.0, lease_until=10.0)
    assert not store.renew("k", "intruder", lease_until=5000.0)
    assert store.claim("k", None, "x", now=10.0, lease_until=20.0).status is CLAIMED


def test_a_store_written_for_0_1_without_renew_still_works_and_is_detectable() -> None:
    """A public base class gains a default: third-party 0.1 stores keep working."""

    class OldStore(rxr.IdempotencyStore):
        def claim(
            self,
            key: str,
            fingerprint: str | None,
            owner: str,
            now: float,
            lease_until: float,
        ) -> rxr.Claim:
            return rxr.Claim(CLAIMED)

        def complete(
            self, key: str, owner: str, record: bytes, expires_at: float
        ) -> bool:
            return True

        def release(self, key: str, owner: str) -> bool:
            return True

        def get(self, key: str, now: float | None = None) -> bytes | None:
            return None

        def purge_expired(self, now: float | None = None) -> int:
            return 0

    old = OldStore()
    assert type(old).renew is rxr.IdempotencyStore.renew
    with pytest.raises(NotImplementedError, match="renew"):
        old.renew("k", "owner", lease_until=10.0)
    for own in (
        rxr.InMemoryIdempotencyStore,
        rxr.SQLiteIdempotencyStore,
        rxr.RedisIdempotencyStore,
    ):
        assert own.renew is not rxr.IdempotencyStore.renew


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


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.claim("new", None, "o", now=0.0, lease_until=10.0),
        lambda s: s.complete("k", "owner", RECORD, expires_at=100.0),
        lambda s: s.release("k", "owner"),
        lambda s: s.renew("k", "owner", lease_until=100.0),
        lambda s: s.purge_expired(now=1000.0),
    ],
    ids=["claim", "complete", "release", "renew", "purge"],
)
def test_a_locked_sqlite_database_fails_a_write_with_idempotency_error(
    tmp_path: pathlib.Path, write: Callable[[rxr.IdempotencyStore], object]
) -> None:
    path = tmp_path / "locked.db"
    store = rxr.SQLiteIdempotencyStore(path, timeout=0)
    store.claim("k", None, "owner", now=0.0, lease_until=10.0)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(rxr.IdempotencyError, match="locked"):
            write(store)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert store.renew("k", "owner", lease_until=100.0)  # usable again
    store.close()


# --- names ------------------------------------------------------------------------------

ODD_KEYS = ["*", "?", "[x]", "\\", "%", "_", "{t}", "'q'", '"', " sp ", "a:b", "ü"]


def test_keys_with_odd_characters_are_literal(store: rxr.IdempotencyStore) -> None:
    for i, key in enumerate(ODD_KEYS):
        store.claim(key, None, "o", now=0.0, lease_until=10.0)
        store.complete(key, "o", key.encode(), expires_at=100.0 + i)
    assert store.purge_expired(now=100.5) == 1  # the first only
    assert store.get(ODD_KEYS[0], now=0.0) is None
    for key in ODD_KEYS[1:]:
        assert store.get(key, now=0.0) == key.encode()
    assert store.purge_expired(now=1000.0) == len(ODD_KEYS) - 1


@pytest.mark.parametrize("key", ["", None, 7])
def test_a_key_that_is_not_a_non_empty_string_is_refused(
    store: rxr.IdempotencyStore, key: Any
) -> None:
    error = ValueError if key == "" else TypeError
    with pytest.raises(error, match=r"^key "):
        store.claim(key, None, "o", now=0.0, lease_until=10.0)
    with pytest.raises(error, match=r"^key "):
        store.get(key, now=0.0)
    assert store.purge_expired(now=1e6) == 0  # nothing was written


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


def _v01_database(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "idempotency.db"
    shutil.copyfile(FIXTURES / "idempotency-v0.1.db", path)
    path.chmod(0o644)
    return path


def test_a_sqlite_file_written_by_0_1_replays_expires_and_purges(
    tmp_path: pathlib.Path,
) -> None:
    path = _v01_database(tmp_path)
    store = rxr.SQLiteIdempotencyStore(path)
    receipt = b'{"values":["receipt-1"],"error":null}'
    claim = store.claim("paid-1", "f1", "new", now=1500.0, lease_until=1600.0)
    assert (claim.status, claim.record) == (COMPLETED, receipt)
    assert store.get("paid-2", now=1500.0) == b'{"values":[2],"error":null}'
    assert store.claim(
        "paid-1", "f2", "new", now=1500.0, lease_until=1600.0
    ).status is (rxr.ClaimStatus.KEY_REUSED)
    assert store.get("old", now=1500.0) is None
    assert store.claim(
        "charging", "f3", "new", now=1500.0, lease_until=1600.0
    ).status is (IN_PROGRESS)
    assert store.renew("charging", "worker-a", lease_until=2500.0)
    assert store.purge_expired(now=1500.0) == 1  # old
    assert store.claim(
        "charging", "f3", "new", now=2500.0, lease_until=2600.0
    ).status is (CLAIMED)
    store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # an existing file keeps its mode
    again = rxr.SQLiteIdempotencyStore(path)
    assert again.purge_expired(now=200_000.0) == 3
    again.close()


def test_a_claim_in_flight_in_a_0_1_sqlite_file_expires(tmp_path: pathlib.Path) -> None:
    store = rxr.SQLiteIdempotencyStore(_v01_database(tmp_path))
    assert store.claim(
        "charging", "f3", "new", now=1999.0, lease_until=3000.0
    ).status is (IN_PROGRESS)
    assert store.claim(
        "charging", "f3", "new", now=2000.0, lease_until=3000.0
    ).status is (CLAIMED)
    assert not store.complete("charging", "worker-a", RECORD, expires_at=9000.0)
    store.close()


# --- D. numbers: bounded, checked before the first write ---------------------------------


def test_a_record_kept_for_the_longest_wait_replays(
    store: rxr.IdempotencyStore,
) -> None:
    now = time.time()
    store.claim("k", None, "owner", now=now, lease_until=now + 60.0)
    assert store.complete("k", "owner", RECORD, expires_at=now + LONGEST_WAIT)
    assert store.get("k", now=now + 1.0) == RECORD
    claim = store.claim("k", None, "other", now=now + LONGEST_WAIT - 1.0, lease_until=0)
    assert (claim.status, claim.record) == (COMPLETED, RECORD)


def test_the_latest_time_a_store_takes_is_kept(store: rxr.IdempotencyStore) -> None:
    from rxresilience.stores._base import LATEST_TIME

    assert store.claim("k", None, "o", now=0.0, lease_until=LATEST_TIME).status is (
        CLAIMED
    )
    assert store.renew("k", "o", lease_until=LATEST_TIME)
    assert store.complete("k", "o", RECORD, expires_at=LATEST_TIME)
    assert store.get("k", now=LATEST_TIME - 1.0) == RECORD
    assert store.claim("n", None, "o", now=-LATEST_TIME, lease_until=0.0).status is (
        CLAIMED
    )
    assert store.purge_expired(now=LATEST_TIME) == 2


def test_the_latest_time_covers_every_clock_and_stays_exact_in_lua() -> None:
    from rxresilience.stores._base import LATEST_TIME

    year_9999 = 253_402_300_800  # the end of datetime's range, in epoch seconds
    assert year_9999 + LONGEST_WAIT < LATEST_TIME
    assert (2 * LATEST_TIME + 60) * 1000 < 2**53  # a span in ms is an exact double


_ABSURD_TIMES: list[Any] = [
    pytest.param(math.inf, ValueError, id="inf"),
    pytest.param(-math.inf, ValueError, id="-inf"),
    pytest.param(math.nan, ValueError, id="nan"),
    pytest.param(1e300, ValueError, id="1e300"),
    pytest.param(-1e300, ValueError, id="-1e300"),
    pytest.param(10**400, ValueError, id="int-10**400"),
    pytest.param(time.time() + sys.maxsize, ValueError, id="now+sys.maxsize"),
    pytest.param(True, TypeError, id="True"),
    pytest.param("5", TypeError, id="str"),
]

_TIMED_CALLS: list[Any] = [
    pytest.param(
        "now",
        lambda s, t: s.claim("new", None, "o", now=t, lease_until=10.0),
        id="claim-now",
    ),
    pytest.param(
        "lease_until",
        lambda s, t: s.claim("new", None, "o", now=0.0, lease_until=t),
        id="claim-lease_until",
    ),
    pytest.param(
        "expires_at",
        lambda s, t: s.complete("k", "owner", RECORD, expires_at=t),
        id="complete-expires_at",
    ),
    pytest.param(
        "lease_until", lambda s, t: s.renew("k", "owner", lease_until=t), id="renew"
    ),
    pytest.param("now", lambda s, t: s.get("k", now=t), id="get"),
    pytest.param("now", lambda s, t: s.purge_expired(now=t), id="purge"),
]


@pytest.mark.parametrize(("argument", "call"), _TIMED_CALLS)
@pytest.mark.parametrize(("value", "error"), _ABSURD_TIMES)
def test_an_absurd_time_is_refused_naming_it_and_nothing_is_written(
    store: rxr.IdempotencyStore,
    argument: str,
    call: Callable[[rxr.IdempotencyStore, object], object],
    value: object,
    error: type[Exception],
) -> None:
    store.claim("k", None, "owner", now=0.0, lease_until=10.0)
    with pytest.raises(error, match=rf"^{argument} "):
        call(store, value)
    assert store.claim("k", None, "other", now=5.0, lease_until=6.0).status is (
        IN_PROGRESS
    )
    assert store.claim("new", None, "other", now=5.0, lease_until=6.0).status is (
        CLAIMED
    )
    assert store.complete("k", "owner", RECORD, expires_at=100.0)
    assert store.get("k", now=50.0) == RECORD


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


# --- E. SQLite files: private when new, durability chosen -------------------------------


def _sqlite_builders() -> list[Any]:
    return [
        pytest.param(rxr.SQLiteIdempotencyStore, id="store"),
        pytest.param(rxr.SQLiteSagaJournal, id="journal"),
    ]


def _write_something(opened: Any) -> None:
    if isinstance(opened, rxr.SQLiteSagaJournal):
        opened.begin("s", "saga", now=0.0)
    else:
        opened.claim("k", None, "o", now=0.0, lease_until=10.0)


def _mode(path: str | pathlib.Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o000, 0o077])
@pytest.mark.parametrize("build", _sqlite_builders())
def test_a_new_database_and_its_wal_files_are_private(
    tmp_path: pathlib.Path, build: Any, umask: int
) -> None:
    path = tmp_path / "private.db"
    previous = os.umask(umask)
    try:
        opened = build(path)
        _write_something(opened)
        for suffix in ("", "-wal", "-shm"):
            assert _mode(f"{path}{suffix}") == 0o600, suffix
        opened.close()
    finally:
        os.umask(previous)


@pytest.mark.parametrize("build", _sqlite_builders())
def test_an_existing_database_keeps_its_mode(
    tmp_path: pathlib.Path, build: Any
) -> None:
    path = tmp_path / "shared.db"
    build(path).close()
    path.chmod(0o640)
    opened = build(path)
    _write_something(opened)
    assert _mode(path) == 0o640
    assert _mode(f"{path}-wal") == 0o640  # SQLite gives its files the database's mode
    opened.close()


@pytest.mark.parametrize("build", _sqlite_builders())
def test_durability_is_normal_by_default_or_full_on_request(
    tmp_path: pathlib.Path, build: Any
) -> None:
    normal = build(tmp_path / "normal.db")
    full = build(tmp_path / "full.db", synchronous="FULL")
    assert normal.synchronous == "NORMAL"
    assert full.synchronous == "FULL"
    assert normal._db.execute("PRAGMA synchronous").fetchone()[0] == 1
    assert full._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    _write_something(full)
    normal.close()
    full.close()


@pytest.mark.parametrize("value", ["OFF", "EXTRA", "normal", "", 2, None, True])
@pytest.mark.parametrize("build", _sqlite_builders())
def test_another_durability_is_refused_before_the_file_is_touched(
    tmp_path: pathlib.Path, build: Any, value: object
) -> None:
    path = tmp_path / "refused.db"
    with pytest.raises(ValueError, match=r"^synchronous "):
        build(path, synchronous=value)
    assert not path.exists()


@pytest.mark.parametrize(
    ("value", "error"),
    [
        *DURATIONS_OUT_OF_RANGE,
        pytest.param(2_147_484, ValueError, id="past-int-milliseconds"),
        pytest.param(-0.5, ValueError, id="-0.5"),
    ],
)
def test_a_journal_timeout_out_of_range_is_refused_naming_it(
    tmp_path: pathlib.Path, value: object, error: type[Exception]
) -> None:
    path = tmp_path / "sagas.db"
    with pytest.raises(error, match=r"^timeout "):
        rxr.SQLiteSagaJournal(path, timeout=value)  # type: ignore[arg-type]
    assert not path.exists()


# --- every backend answers alike ---------------------------------------------------------

_KEYS = st.sampled_from(["k1", "k2"])
_OWNERS = st.sampled_from(["o1", "o2"])
_SPAN = st.integers(min_value=0, max_value=30).map(float)
_STEPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("claim"), _KEYS, _OWNERS, st.sampled_from([None, "f"]), _SPAN
        ),
        st.tuples(st.just("complete"), _KEYS, _OWNERS, _SPAN),
        st.tuples(st.just("release"), _KEYS, _OWNERS),
        st.tuples(st.just("renew"), _KEYS, _OWNERS, _SPAN),
        st.tuples(st.just("get"), _KEYS),
        st.tuples(st.just("purge")),
        st.tuples(st.just("wait"), _SPAN),
    ),
    max_size=40,
)


def _replay(store: rxr.IdempotencyStore, steps: list[tuple[Any, ...]]) -> list[object]:
    now = 1000.0
    answers: list[object] = []
    for step in steps:
        match step:
            case ("claim", key, owner, fingerprint, span):
                claim = store.claim(key, fingerprint, owner, now, now + span)
                answers.append((claim.status, claim.record))
            case ("complete", key, owner, span):
                answers.append(
                    store.complete(key, owner, f"{now}".encode(), now + span)
                )
            case ("release", key, owner):
                answers.append(store.release(key, owner))
            case ("renew", key, owner, span):
                answers.append(store.renew(key, owner, now + span))
            case ("get", key):
                answers.append(store.get(key, now))
            case ("purge",):
                answers.append(store.purge_expired(now))
            case ("wait", span):
                now += span
    return answers


@settings(max_examples=60)
@given(steps=_STEPS)
def test_memory_sqlite_and_redis_answer_every_sequence_alike(
    redis_server: RedisServer, steps: list[tuple[Any, ...]]
) -> None:
    stores = [
        rxr.InMemoryIdempotencyStore(),
        rxr.SQLiteIdempotencyStore(":memory:"),
        rxr.RedisIdempotencyStore(redis_server.client(), prefix=odd_prefix()),
    ]
    try:
        memory, *others = (_replay(store, steps) for store in stores)
        for answers in others:
            assert answers == memory
    finally:
        for store in stores:
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
