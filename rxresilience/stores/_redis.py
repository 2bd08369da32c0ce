"""``RedisIdempotencyStore``: claims and outcomes shared by a fleet of processes.

One hash per key. Every operation is one Lua script, so it is atomic and one
round trip. Times are the callers' (absolute seconds, as for every store)
and are compared inside the script; Redis's own key expiry only cleans up,
a while after an entry has expired by those times.

``redis`` (redis-py) is an optional dependency: ``pip install
rxresilience[redis]``.
"""

from __future__ import annotations

from typing import Any

from .._codec import Codec, codec_or_json
from .._redis_client import store_client
from ..errors import IdempotencyError
from ._base import Claim, ClaimStatus, IdempotencyStore

__all__ = ["RedisIdempotencyStore"]

_NONE = "-"  # the fingerprint of "no payload" (a real one is hex)
_CLEANUP_SLACK = 60.0  # seconds Redis keeps an entry after it expired by our times

_CLAIM = """
local key = KEYS[1]
local now, fingerprint, owner, lease = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local found = redis.call('HMGET', key, 'status', 'fingerprint', 'expires', 'record')
if found[1] and tonumber(found[3]) > now then
  if found[2] ~= fingerprint then return {'reused'} end
  if found[1] == 'completed' then return {'completed', found[4]} end
  return {'in_progress'}
end
redis.call('DEL', key)
redis.call('HSET', key, 'status', 'in_progress', 'fingerprint', fingerprint,
           'owner', owner, 'expires', lease, 'claimed', ARGV[1])
redis.call('PEXPIRE', key, math.floor((tonumber(lease) - now + tonumber(ARGV[5])) * 1000))
return {'claimed'}
"""

_COMPLETE = """
local key = KEYS[1]
local found = redis.call('HMGET', key, 'status', 'owner', 'claimed')
if found[1] ~= 'in_progress' or found[2] ~= ARGV[1] then return 0 end
redis.call('HSET', key, 'status', 'completed', 'record', ARGV[2], 'expires', ARGV[3])
redis.call('HDEL', key, 'owner')
local keep = tonumber(ARGV[3]) - tonumber(found[3]) + tonumber(ARGV[4])
redis.call('PEXPIRE', key, math.max(1000, math.floor(keep * 1000)))
return 1
"""

_RELEASE = """
local key = KEYS[1]
local found = redis.call('HMGET', key, 'status', 'owner')
if found[1] ~= 'in_progress' or found[2] ~= ARGV[1] then return 0 end
redis.call('DEL', key)
return 1
"""

_PURGE = """
local removed = 0
for _, key in ipairs(KEYS) do
  local expires = redis.call('HGET', key, 'expires')
  if expires and tonumber(expires) <= tonumber(ARGV[1]) then
    redis.call('DEL', key)
    removed = removed + 1
  end
end
return removed
"""

_IN_PROGRESS = Claim(ClaimStatus.IN_PROGRESS)
_KEY_REUSED = Claim(ClaimStatus.KEY_REUSED)
_CLAIMED = Claim(ClaimStatus.CLAIMED)


class RedisIdempotencyStore(IdempotencyStore):
    """Idempotency claims and outcomes in Redis, for processes on many machines.

    Args:
        client: a ``redis.Redis`` client; the store makes its own
            connection pool from its settings (replies are read as bytes
            whatever its ``decode_responses``; no retries, so a write whose
            reply was lost is never sent twice).
        prefix: prepended to every key.
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
        self._claim = client.register_script(_CLAIM)
        self._complete = client.register_script(_COMPLETE)
        self._release = client.register_script(_RELEASE)
        self._purge = client.register_script(_PURGE)

    def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return script(keys=keys, args=args)
        except Exception as error:
            raise IdempotencyError(
                f"Redis idempotency store failed: {error}"
            ) from error

    def claim(
        self,
        key: str,
        fingerprint: str | None,
        owner: str,
        now: float,
        lease_until: float,
    ) -> Claim:
        answer = self._run(
            self._claim,
            [self.prefix + key],
            [repr(now), fingerprint or _NONE, owner, repr(lease_until), _CLEANUP_SLACK],
        )
        status = answer[0].decode() if isinstance(answer[0], bytes) else answer[0]
        if status == "claimed":
            return _CLAIMED
        if status == "completed":
            return Claim(ClaimStatus.COMPLETED, bytes(answer[1]))
        if status == "reused":
            return _KEY_REUSED
        return _IN_PROGRESS

    def complete(self, key: str, owner: str, record: bytes, expires_at: float) -> bool:
        done = self._run(
            self._complete,
            [self.prefix + key],
            [owner, record, repr(expires_at), _CLEANUP_SLACK],
        )
        return bool(done)

    def release(self, key: str, owner: str) -> bool:
        return bool(self._run(self._release, [self.prefix + key], [owner]))

    def get(self, key: str, now: float | None = None) -> bytes | None:
        moment = self._now(now)
        try:
            status, expires, record = self._client.hmget(
                self.prefix + key, "status", "expires", "record"
            )
        except Exception as error:
            raise IdempotencyError(
                f"Redis idempotency store failed: {error}"
            ) from error
        if status != b"completed" or expires is None or float(expires) <= moment:
            return None
        return bytes(record)

    def purge_expired(self, now: float | None = None) -> int:
        moment = self._now(now)
        removed = 0
        try:
            batch: list[str] = []
            for key in self._client.scan_iter(match=self.prefix + "*", count=500):
                batch.append(key.decode() if isinstance(key, bytes) else key)
                if len(batch) == 500:
                    removed += int(self._purge(keys=batch, args=[repr(moment)]))
                    batch = []
            if batch:
                removed += int(self._purge(keys=batch, args=[repr(moment)]))
        except IdempotencyError:
            raise
        except Exception as error:
            raise IdempotencyError(
                f"Redis idempotency store failed: {error}"
            ) from error
        return removed

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisIdempotencyStore(prefix={self.prefix!r})"
