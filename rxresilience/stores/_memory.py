"""``InMemoryIdempotencyStore``: thread-safe, bounded, O(1) per operation."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

from .._arguments import require_count
from .._codec import Codec, codec_or_json
from ._base import (
    Claim,
    ClaimStatus,
    IdempotencyStore,
    require_record,
    require_store_key,
    require_time,
)

__all__ = ["InMemoryIdempotencyStore"]


class _Held(NamedTuple):
    owner: str
    fingerprint: str | None
    lease_until: float


class _Recorded(NamedTuple):
    fingerprint: str | None
    record: bytes
    expires_at: float


_IN_PROGRESS = Claim(ClaimStatus.IN_PROGRESS)
_KEY_REUSED = Claim(ClaimStatus.KEY_REUSED)
_CLAIMED = Claim(ClaimStatus.CLAIMED)


class InMemoryIdempotencyStore(IdempotencyStore):
    """Claims and outcomes in this process's memory.

    Recorded outcomes are kept in least-recently-used order and the oldest
    is evicted beyond ``max_entries``; claims in progress are kept apart and
    never evicted (there are only as many as operations running).

    Examples:
        >>> store = InMemoryIdempotencyStore(max_entries=1000)
        >>> store.claim("k", None, "owner-1", now=0.0, lease_until=60.0).status
        <ClaimStatus.CLAIMED: 'claimed'>

    Every operation refuses an empty key or a time out of range, as
    :class:`IdempotencyStore` describes.

    Args:
        max_entries: how many recorded outcomes to keep at most.
        codec: how outcomes are encoded (default JSON), so that replays look
            the same as with a durable store.
    """

    calls_may_block = False  # a lock held for a few dict updates: called in place

    def __init__(
        self, max_entries: int = 100_000, *, codec: Codec | None = None
    ) -> None:
        require_count("max_entries", max_entries)
        self.codec = codec_or_json(codec)
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}
        self._recorded: OrderedDict[str, _Recorded] = OrderedDict()

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
        with self._lock:
            recorded = self._recorded.get(key)
            if recorded is not None:
                if recorded.expires_at > now:
                    self._recorded.move_to_end(key)
                    if recorded.fingerprint != fingerprint:
                        return _KEY_REUSED
                    return Claim(ClaimStatus.COMPLETED, recorded.record)
                del self._recorded[key]
            held = self._held.get(key)
            if held is not None and held.lease_until > now:
                return _KEY_REUSED if held.fingerprint != fingerprint else _IN_PROGRESS
            self._held[key] = _Held(owner, fingerprint, lease_until)
            return _CLAIMED

    def renew(self, key: str, owner: str, lease_until: float) -> bool:
        require_store_key(key)
        lease_until = require_time("lease_until", lease_until)
        with self._lock:
            held = self._held.get(key)
            if held is None or held.owner != owner:
                return False
            self._held[key] = held._replace(lease_until=lease_until)
            return True

    def complete(self, key: str, owner: str, record: bytes, expires_at: float) -> bool:
        record = require_record(record)
        require_store_key(key)
        expires_at = require_time("expires_at", expires_at)
        with self._lock:
            held = self._held.get(key)
            if held is None or held.owner != owner:
                return False
            del self._held[key]
            self._recorded[key] = _Recorded(held.fingerprint, record, expires_at)
            self._recorded.move_to_end(key)
            while len(self._recorded) > self._max_entries:
                self._recorded.popitem(last=False)
            return True

    def release(self, key: str, owner: str) -> bool:
        require_store_key(key)
        with self._lock:
            held = self._held.get(key)
            if held is None or held.owner != owner:
                return False
            del self._held[key]
            return True

    def get(self, key: str, now: float | None = None) -> bytes | None:
        require_store_key(key)
        moment = self._now(now)
        with self._lock:
            recorded = self._recorded.get(key)
            if recorded is None or recorded.expires_at <= moment:
                return None
            return recorded.record

    def purge_expired(self, now: float | None = None) -> int:
        moment = self._now(now)
        with self._lock:
            stale = [k for k, r in self._recorded.items() if r.expires_at <= moment]
            for key in stale:
                del self._recorded[key]
            lapsed = [k for k, h in self._held.items() if h.lease_until <= moment]
            for key in lapsed:
                del self._held[key]
            return len(stale) + len(lapsed)

    def __len__(self) -> int:
        """Recorded outcomes plus claims in progress."""
        with self._lock:
            return len(self._recorded) + len(self._held)
