"""The idempotency store contract, the same for memory, SQLite, Redis and PostgreSQL."""

from __future__ import annotations

import base64
import math
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rxresilience as rxr
from rxresilience._clock import LONGEST_WAIT

from .._postgres_server import fresh_name
from .._redis_server import RedisServer
from ._store_values import (
    CLAIMED,
    COMPLETED,
    IN_PROGRESS,
    RECORD,
    odd_prefix,
)

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


def _long_key(seed: int, length: int = 8000) -> str:
    """An incompressible key of ``length`` characters (PostgreSQL's btree rows
    hold at most 2704 bytes, compressed)."""
    text = base64.b64encode(random.Random(seed).randbytes(length)).decode()
    return text[:length]


LONG_KEYS = [
    _long_key(0),
    _long_key(0)[:-1] + "!",  # differs from the first in its last character only
    "ü" * 3000 + _long_key(1, 4000),  # multi-byte: 10,000 bytes of UTF-8
    _long_key(2, 100_000),
]


def test_keys_of_any_length_work_and_are_kept_apart(
    store: rxr.IdempotencyStore,
) -> None:
    for i, key in enumerate(LONG_KEYS):
        assert store.claim(key, "f", "o", now=0.0, lease_until=10.0).status is CLAIMED
        assert store.renew(key, "o", lease_until=20.0)
        assert store.complete(key, "o", f"{i}".encode(), expires_at=100.0 + i)
    for i, key in enumerate(LONG_KEYS):
        assert store.get(key, now=0.0) == f"{i}".encode()
        claim = store.claim(key, "f", "other", now=1.0, lease_until=10.0)
        assert (claim.status, claim.record) == (COMPLETED, f"{i}".encode())
        reused = store.claim(key, "g", "other", now=1.0, lease_until=10.0)
        assert reused.status is rxr.ClaimStatus.KEY_REUSED
    assert store.get(LONG_KEYS[0][:-1] + "?", now=0.0) is None
    assert store.claim(LONG_KEYS[0][:-1], None, "o", 0.0, 10.0).status is CLAIMED
    assert store.release(LONG_KEYS[0][:-1], "o")
    assert store.purge_expired(now=100.5) == 1  # the first only
    assert store.get(LONG_KEYS[0], now=0.0) is None
    assert store.get(LONG_KEYS[1], now=0.0) == b"1"
    assert store.purge_expired(now=1000.0) == len(LONG_KEYS) - 1


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
    redis_server: RedisServer, postgres_pool: Any, steps: list[tuple[Any, ...]]
) -> None:
    stores = [
        rxr.InMemoryIdempotencyStore(),
        rxr.SQLiteIdempotencyStore(":memory:"),
        rxr.RedisIdempotencyStore(redis_server.client(), prefix=odd_prefix()),
        rxr.PostgresIdempotencyStore(postgres_pool, table=fresh_name()),
    ]
    try:
        memory, *others = (_replay(store, steps) for store in stores)
        for answers in others:
            assert answers == memory
    finally:
        for store in stores:
            store.close()


def test_a_record_that_is_not_bytes_is_refused(store: Any) -> None:
    """``bytes(5)`` is five NUL bytes: a number given as a record was stored so."""
    assert store.claim("k", None, "o", 0.0, 1e9).status is rxr.ClaimStatus.CLAIMED
    with pytest.raises(TypeError, match="record must be bytes"):
        store.complete("k", "o", 5, 1e9)
    assert store.complete("k", "o", bytearray(b"ok"), 1e9)
    assert store.get("k", 0.0) == b"ok"
