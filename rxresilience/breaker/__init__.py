"""The circuit breaker: the breaker, its operator, its state machine and storages.

The public names are re-exported from ``rxresilience``.
"""

from ._breaker import CircuitBreaker
from ._machine import (
    BreakerConfig,
    BreakerMetrics,
    ChangeSink,
    CircuitState,
    Outcome,
    Refusal,
    StateChange,
)
from ._operator import circuit_breaker
from ._permit import Permit
from ._redis import RedisBreakerStorage
from ._storage import BreakerStorage, InMemoryBreakerStorage
from ._window import CountWindow, TimeWindow

__all__ = [
    "BreakerConfig",
    "BreakerMetrics",
    "BreakerStorage",
    "ChangeSink",
    "CircuitBreaker",
    "CircuitState",
    "CountWindow",
    "InMemoryBreakerStorage",
    "Outcome",
    "Permit",
    "RedisBreakerStorage",
    "Refusal",
    "StateChange",
    "TimeWindow",
    "circuit_breaker",
]
