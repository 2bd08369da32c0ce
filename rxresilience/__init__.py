"""rxresilience: resilience patterns as ReactiveX operators.

Import as ``import rxresilience as rxr`` and pipe the operators like any
``reactivex.operators`` function::

    user = rx.defer(lambda _: api.get_user(uid)).pipe(rxr.retry(3))
"""

from ._backoff import (
    Backoff,
    CappedBackoff,
    ConstantBackoff,
    DecorrelatedJitterBackoff,
    EqualJitterBackoff,
    ExponentialBackoff,
    FullJitterBackoff,
    LinearBackoff,
    SumBackoff,
)
from ._breaker import CircuitBreaker
from ._breaker_machine import BreakerMetrics, CircuitState, StateChange
from ._breaker_storage import BreakerStorage, InMemoryBreakerStorage
from ._circuit_breaker import circuit_breaker
from ._fallback import fallback
from ._resilient import resilient
from ._retry import RetryEvent, RetryPolicy, retry
from ._timeout import TimeoutPolicy, timeout
from ._window import CountWindow, TimeWindow
from .errors import CircuitOpenError, ResilienceError, TimeoutError

__all__ = [
    "Backoff",
    "BreakerMetrics",
    "BreakerStorage",
    "CappedBackoff",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "ConstantBackoff",
    "CountWindow",
    "DecorrelatedJitterBackoff",
    "EqualJitterBackoff",
    "ExponentialBackoff",
    "FullJitterBackoff",
    "InMemoryBreakerStorage",
    "LinearBackoff",
    "ResilienceError",
    "RetryEvent",
    "RetryPolicy",
    "StateChange",
    "SumBackoff",
    "TimeWindow",
    "TimeoutError",
    "TimeoutPolicy",
    "circuit_breaker",
    "fallback",
    "resilient",
    "retry",
    "timeout",
]

__version__ = "0.1.0"
