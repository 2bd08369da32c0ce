"""The idempotency store interface: claim, complete, release, get, with expiry."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass

from .._clock import seconds_now
from .._codec import Codec, JsonCodec

__all__ = ["Claim", "ClaimStatus", "IdempotencyStore"]


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

    Attributes:
        codec: how the operator encodes outcomes for this store.
    """

    codec: Codec = JsonCodec()

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
        return seconds_now() if now is None else now
