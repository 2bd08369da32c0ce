"""Idempotency stores: where claims and recorded outcomes live.

The public names are re-exported from ``rxresilience``.
"""

from ._base import Claim, ClaimStatus, IdempotencyStore
from ._memory import InMemoryIdempotencyStore
from ._postgres import PostgresIdempotencyStore
from ._redis import RedisIdempotencyStore
from ._sqlite import SQLiteIdempotencyStore

__all__ = [
    "Claim",
    "ClaimStatus",
    "IdempotencyStore",
    "InMemoryIdempotencyStore",
    "PostgresIdempotencyStore",
    "RedisIdempotencyStore",
    "SQLiteIdempotencyStore",
]
