"""``RedisIdempotencyStore``: claims and outcomes shared by a fleet of processes.

One hash per key, and an index of the store's own keys (a sorted set by
expiry, at the key named by the prefix itself): see
:mod:`rxresilience.stores._redis_scripts` for the layout. Every write is one
Lua script, so it is atomic and one round trip. Times are the callers'
(absolute seconds, as for every store) and are compared inside the script;
Redis's own key expiry only cleans up, a while after an entry has expired by
those times.

``redis`` (redis-py) is an optional dependency: ``pip install
rxresilience[redis]``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .._codec import Codec, codec_or_json
from .._redis_client import glob_escape, store_client
from ..errors import IdempotencyError
from . import _redis_scripts as lua
from ._base import (
    Claim,
    ClaimStatus,
    IdempotencyStore,
    require_record,
    require_store_key,
    require_time,
)

__all__ = ["RedisIdempotencyStore"]

_BATCH = 500  # keys per purge or adoption script
_SWEEP_EVERY = 100  # claims between two sweeps of expired keys
_SWEEP_BATCH = 2 * _SWEEP_EVERY  # keys a sweep purges at most: more than come in

_IN_PROGRESS = Claim(ClaimStatus.IN_PROGRESS)
_KEY_REUSED = Claim(ClaimStatus.KEY_REUSED)
_CLAIMED = Claim(ClaimStatus.CLAIMED)


class RedisIdempotencyStore(IdempotencyStore):
    """Idempotency claims and outcomes in Redis, for processes on many machines.

    The store touches only the keys it wrote: ``prefix + key`` for each key,
    and its index, the key named ``prefix`` itself. The prefix is literal
    (``*``, ``?``, ``[`` or ``\\`` in it mean themselves), and other data
    under the same prefix (another application's keys, a saga journal on
    ``prefix + "saga:"``) is never read or deleted. Two stores must not use
    prefixes of which one is the other plus a key.

    Redis deletes a record by itself about a minute after it expired (by
    real time), so :meth:`purge_expired` is optional; the index is swept of
    expired keys every hundred claims, so it stays as small as the store.
    An owner renewing its claim later than that after its lease ended finds
    the key gone: :meth:`renew` answers False.
    On Redis Cluster, give the prefix a hash tag (``prefix="{idem}:"``):
    each script touches a record and the index, which must share a slot.

    Keys written by 0.1 (which kept no index) are read as they are; the
    first :meth:`purge_expired` of a store on a database without a complete
    index scans the prefix once (a literal ``SCAN MATCH``), indexes each key
    that is one of ours by its fields, and marks the index complete. Keys
    that 0.1 processes still write during a rolling upgrade, after that,
    are left to Redis's own expiry.

    Every operation refuses an empty key or a time out of range, before
    writing anything, as :class:`IdempotencyStore` describes.

    Args:
        client: a ``redis.Redis`` client; the store makes its own
            connection pool from its settings (replies are read as bytes
            whatever its ``decode_responses``; no retries, so a write whose
            reply was lost is never sent twice).
        prefix: prepended to every key, literally.
        codec: how outcomes are encoded (default JSON; never pickle: a shared
            Redis must not become a way to run code in every process).
        socket_timeout: seconds to wait for a connection or a reply, above 0
            and at most ``LONGEST_WAIT`` (about 292 years); default the
            client's own, or 5 when it sets none, so an operation never
            hangs.

    Raises:
        IdempotencyError: on any operation, when Redis cannot be reached; no
            record Redis acknowledged is lost.
        ValueError: a ``socket_timeout`` not above 0, not finite, or above
            ``LONGEST_WAIT``; checked before connecting.
        TypeError: ``client`` is not a ``redis.Redis`` client, ``prefix`` not
            a string, or ``socket_timeout`` not a number (a ``bool``
            included).
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "idem:",
        codec: Codec | None = None,
        socket_timeout: float | None = None,
    ) -> None:
        client = store_client(client, prefix=prefix, socket_timeout=socket_timeout)
        self.codec = codec_or_json(codec)
        self.prefix = prefix
        self._client = client
        self._index = prefix
        self._prefix_bytes = prefix.encode()
        self._claims = 0
        self._adopted = False
        register = client.register_script
        self._claim = register(lua.CLAIM)
        self._renew = register(lua.RENEW)
        self._complete = register(lua.COMPLETE)
        self._release = register(lua.RELEASE)
        self._purge = register(lua.PURGE)
        self._adopt = register(lua.ADOPT)

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """Any failure of Redis (unreachable, a script error) as IdempotencyError."""
        try:
            yield
        except Exception as error:
            raise IdempotencyError(
                f"Redis idempotency store failed: {error}"
            ) from error

    def _run(self, script: Any, key: str, args: list[Any]) -> Any:
        """Run a script on a record and the index, the key last in ``args``."""
        with self._failures():
            return script(keys=[self.prefix + key, self._index], args=[*args, key])

    def claim(
        self,
        key: str,
        fingerprint: str | None,
        owner: str,
        now: float,
        lease_until: float,
    ) -> Claim:
        require_store_key(key)
        now = require_time("now", now)
        lease_until = require_time("lease_until", lease_until)
        self._claims += 1
        if self._claims % _SWEEP_EVERY == 0:
            with self._failures():
                self._purge_batch(now, _SWEEP_BATCH)
        answer = self._run(
            self._claim,
            key,
            [repr(now), fingerprint or lua.NONE, owner, repr(lease_until)],
        )
        status = answer[0].decode() if isinstance(answer[0], bytes) else answer[0]
        if status == "claimed":
            return _CLAIMED
        if status == "completed":
            return Claim(ClaimStatus.COMPLETED, bytes(answer[1]))
        if status == "reused":
            return _KEY_REUSED
        return _IN_PROGRESS

    def renew(self, key: str, owner: str, lease_until: float) -> bool:
        require_store_key(key)
        lease_until = require_time("lease_until", lease_until)
        return bool(self._run(self._renew, key, [owner, repr(lease_until)]))

    def complete(self, key: str, owner: str, record: bytes, expires_at: float) -> bool:
        record = require_record(record)
        require_store_key(key)
        expires_at = require_time("expires_at", expires_at)
        done = self._run(self._complete, key, [owner, record, repr(expires_at)])
        return bool(done)

    def release(self, key: str, owner: str) -> bool:
        require_store_key(key)
        return bool(self._run(self._release, key, [owner]))

    def get(self, key: str, now: float | None = None) -> bytes | None:
        require_store_key(key)
        moment = self._now(now)
        with self._failures():
            status, expires, record = self._client.hmget(
                self.prefix + key, "status", "expires", "record"
            )
        if status != b"completed" or expires is None or float(expires) <= moment:
            return None
        return bytes(record)

    def purge_expired(self, now: float | None = None) -> int:
        """Delete the store's expired claims and records; return how many went.

        Only keys in the store's index are looked at (after the one-time
        adoption of 0.1's keys described on the class).
        """
        moment = self._now(now)
        removed = 0
        with self._failures():
            self._adopt_unindexed()
            while True:
                count, more = self._purge_batch(moment, _BATCH)
                removed += count
                if not more:
                    return removed

    def _purge_batch(self, moment: float, limit: int) -> tuple[int, bool]:
        """Purge up to ``limit`` keys the index says expired by ``moment``;
        the count, and whether there may be more."""
        members = self._client.zrangebyscore(
            self._index, "-inf", repr(moment), start=0, num=limit
        )
        if not members:
            return 0, False
        keys = [self._prefix_bytes + member for member in members]
        removed = self._purge(keys=[self._index, *keys], args=[repr(moment), *members])
        return int(removed), len(members) == limit

    def _adopt_unindexed(self) -> None:
        """Index the keys 0.1 wrote under the prefix, once per database."""
        if self._adopted:
            return
        if self._client.zscore(self._index, "") is None:  # the index is not complete
            index = self._prefix_bytes
            batch: list[bytes] = []
            pattern = glob_escape(self.prefix) + "*"
            for key in self._client.scan_iter(match=pattern, count=_BATCH):
                if key != index:
                    batch.append(key)
                if len(batch) == _BATCH:
                    self._adopt_batch(batch, last=False)
                    batch = []
            self._adopt_batch(batch, last=True)
        self._adopted = True

    def _adopt_batch(self, keys: list[bytes], *, last: bool) -> None:
        members = [key[len(self._prefix_bytes) :] for key in keys]
        self._adopt(keys=[self._index, *keys], args=["1" if last else "0", *members])

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisIdempotencyStore(prefix={self.prefix!r})"
