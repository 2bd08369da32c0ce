"""The rate limiter: GCRA arithmetic, the limiter, its operators and storages.

The public names are re-exported from ``rxresilience``.
"""

from ._config import RateLimiterConfig
from ._gcra import RateLimiterReservation
from ._limiter import RateLimiter
from ._operator import rate_limit
from ._pace import pace
from ._redis import RedisRateLimiterStorage
from ._storage import InMemoryRateLimiterStorage, RateLimiterStorage

__all__ = [
    "InMemoryRateLimiterStorage",
    "RateLimiter",
    "RateLimiterConfig",
    "RateLimiterReservation",
    "RateLimiterStorage",
    "RedisRateLimiterStorage",
    "pace",
    "rate_limit",
]
