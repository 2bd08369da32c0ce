"""The idempotency store interface: claim, renew, complete, release, get, with expiry."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass

from .._arguments import require_number, require_text
from .._clock import seconds_now
from .._codec import Codec, JsonCodec

__all__ = ["LATEST_TIME", "Claim", "ClaimStatus", "IdempotencyStore"]

#: The latest time (and, negated, the earliest) a store takes, in seconds:
#: beyond the year 9999 that a ``datetime`` clock reaches, plus
#: ``LONGEST_WAIT``; small enough that the difference of two times, in
#: milliseconds, is an exact integer in a double (below ``2**53``), as Redis's
#: Lua scripts compute it.
LATEST_TIME = 1e12


def require_record(value: object) -> bytes:
    """A record as ``bytes`` (a ``bytearray`` or ``memoryview`` copied), or
    ``TypeError``: ``bytes(5)`` would store five NUL bytes, silently."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"record must be bytes, got {type(value).__name__}")


def require_time(name: str, value: object) -> float:
    """A time argument as a float, or ``ValueError``/``TypeError`` naming it.

    A time is a finite number (never a ``bool``) within ``LATEST_TIME`` of
    the epoch; checked before anything is written.
    """
    seconds = require_number(name, value)
    if not -LATEST_TIME <= seconds <= LATEST_TIME:  # NaN fails this too
        raise ValueError(
            f"{name} must be a finite time within {LATEST_TIME:g} seconds of the "
            f"epoch, got {value!r}"
        )
    return seconds


def require_store_key(key: object) -> str:
    """An idempotency key must be a non-empty string, as the operator makes them."""
    return require_text("key", key)


class ClaimStatus(enum.Enum):
    """What ``claim`` found."""

    CLAIMED = "claimed"  # the caller owns the key now and must run the operation
    COMPLETED = "completed"  # an unexpired outcome is recorded: replay it
    IN_PROGRESS = "in progress"  # another owner holds an unexpired claim
    KEY_REUSED = "key reused"  # the key is held or recorded with another payload


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer of ``claim``; ``record`` is set for ``COMPLETED``."""

    status: ClaimStatus
    record: bytes | None = None


class IdempotencyStore(ABC):
    """Where idempotency claims and outcomes live.

    Every method is atomic with respect to every other caller of the same
    store, in this process and (for shared stores) in others. Times are
    absolute epoch seconds on the callers' clocks; a claim expires at its
    ``lease_until``, a recorded outcome at its ``expires_at``, and an expired
    entry is treated as absent.

    The stores of this library refuse, before writing anything, a key that
    is not a non-empty string and a time (``now``, ``lease_until``,
    ``expires_at``) that is not a finite number within :data:`LATEST_TIME`
    (1e12 seconds) of the epoch, naming the argument (``TypeError`` for a
    non-number or a ``bool``, else ``ValueError``).

    Writing a store: implement the abstract methods, and :meth:`renew` (a
    store written for 0.1 has no ``renew``; it still works, with the
    unrenewed leases of 0.1, and the operator warns about it).

    Attributes:
        codec: how the operator encodes outcomes for this store.
        calls_may_block: whether a call may wait (on a disk, a network,
            another process's lock). Under asyncio (an ``AsyncIOScheduler``,
            as ``rxr.to_async`` sets up) the operator makes such a store's
            calls on a thread of its own, never on the event loop, and goes
            on, on the loop, with the answer; outside asyncio every call is
            made on the caller's thread. True by default, so a store written
            for an earlier release is kept off the loop; a store whose calls
            never wait (``InMemoryIdempotencyStore``) says False and is
            called in place.
    """

    codec: Codec = JsonCodec()

    #: See the class's attributes: True unless every call is quick and in memory.
    calls_may_block: bool = True

    @abstractmethod
    def claim(
        self,
        key: str,
        fingerprint: str | None,
        owner: str,
        now: float,
        lease_until: float,
    ) -> Claim:
        """Claim ``key`` for ``owner`` unless it is held or recorded.

        A key held or recorded with another fingerprint answers
        ``KEY_REUSED`` and changes nothing.
        """

    def renew(self, key: str, owner: str, lease_until: float) -> bool:
        """Extend ``owner``'s claim of ``key`` to ``lease_until``; True if it holds it.

        ``owner`` holds the claim while the key is in progress under its name,
        even past its old lease, as long as nobody else has taken the key.
        A completed, released, taken over or absent key answers False and
        changes nothing. Atomic, like every method.

        The operator renews a claim every third of its lease while the
        operation runs, so a lease measures how fast a dead owner is
        detected, not how long the operation may take.

        This default, kept for stores written for 0.1, raises
        ``NotImplementedError``; the operator detects it with
        ``type(store).renew is IdempotencyStore.renew``, warns, and leaves
        such claims unrenewed (0.1's behaviour). Override it.

        Args:
            key: the idempotency key.
            owner: who claimed it.
            lease_until: when the claim now expires, on the callers' clock.

        Returns:
            True while ``owner`` holds the claim, now until ``lease_until``.

        Raises:
            IdempotencyError: the store cannot be reached (the operator tries
                again at its next tick).
            NotImplementedError: this default, for stores that do not renew.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement IdempotencyStore.renew"
        )

    @abstractmethod
    def complete(self, key: str, owner: str, record: bytes, expires_at: float) -> bool:
        """Record the outcome, if ``owner`` still holds the claim; else False."""

    @abstractmethod
    def release(self, key: str, owner: str) -> bool:
        """Drop the claim, if ``owner`` still holds it; else False."""

    @abstractmethod
    def get(self, key: str, now: float | None = None) -> bytes | None:
        """The recorded outcome of ``key``, if there is one and it has not expired."""

    @abstractmethod
    def purge_expired(self, now: float | None = None) -> int:
        """Delete expired claims and records; return how many went."""

    def close(self) -> None:  # noqa: B027 - optional for stores without resources
        """Release the store's resources (connections); the default does nothing."""

    @staticmethod
    def _now(now: float | None) -> float:
        return seconds_now() if now is None else require_time("now", now)
