"""rxresilience: resilience patterns as ReactiveX operators.

Import as ``import rxresilience as rxr`` and pipe the operators like any
``reactivex.operators`` function::

    user = rx.defer(lambda _: api.get_user(uid)).pipe(rxr.retry(3))
"""

import importlib
from typing import TYPE_CHECKING, Any

from . import telemetry
from ._async import from_async, to_async
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
from ._bulkhead import Bulkhead, BulkheadMetrics
from ._bulkhead_operator import bulkhead
from ._codec import Codec, DataclassCodec, JsonCodec, fingerprint
from ._fallback import fallback
from ._hedge import HedgePolicy, hedge
from ._http import parse_retry_after, raise_for_retry_after
from ._optimistic import OptimisticState
from ._optimistic_operator import optimistic
from ._resilient import resilient
from ._retry import RetryEvent, RetryPolicy, retry
from ._timeout import TimeoutPolicy, timeout
from .breaker import (
    BreakerConfig,
    BreakerMetrics,
    BreakerStorage,
    ChangeSink,
    CircuitBreaker,
    CircuitState,
    CountWindow,
    InMemoryBreakerStorage,
    Outcome,
    Permit,
    RedisBreakerStorage,
    Refusal,
    StateChange,
    TimeWindow,
    circuit_breaker,
)
from .errors import (
    BufferOverflowError,
    BulkheadFullError,
    CallRefusedError,
    CircuitOpenError,
    EmptySequenceError,
    IdempotencyClaimLostError,
    IdempotencyCodecError,
    IdempotencyError,
    IdempotencyInProgressError,
    IdempotencyKeyReuseError,
    OptimisticApplyError,
    OptimisticStateDisposedError,
    RateLimitedError,
    RecordedError,
    ResilienceError,
    ResultRejectedError,
    RetryAfterError,
    SagaCancelledError,
    SagaError,
    SagaFailed,
    SagaOwnershipLostError,
    SagaStepEmptyError,
    TimeoutError,
)
from .idempotency import IdempotencyPolicy, idempotent, idempotent_map
from .rate_limit import (
    InMemoryRateLimiterStorage,
    RateLimiter,
    RateLimiterConfig,
    RateLimiterReservation,
    RateLimiterStorage,
    RedisRateLimiterStorage,
    pace,
    rate_limit,
)
from .saga import (
    CompensationFailed,
    CompensationStarted,
    InMemorySagaJournal,
    JournalEntry,
    JournalWrite,
    PostgresSagaJournal,
    RecoveryFailed,
    RedisSagaJournal,
    Saga,
    SagaCompleted,
    SagaEvent,
    SagaJournal,
    SagaPlan,
    SagaRecord,
    SagaState,
    SagaStatus,
    SagaStep,
    SQLiteSagaJournal,
    StepCompensated,
    StepFailed,
    StepStarted,
    StepSucceeded,
    recover,
)
from .stores import (
    Claim,
    ClaimStatus,
    IdempotencyStore,
    InMemoryIdempotencyStore,
    PostgresIdempotencyStore,
    RedisIdempotencyStore,
    SQLiteIdempotencyStore,
)
from .telemetry import TelemetryEvent

__all__ = [
    "Backoff",
    "BreakerConfig",
    "BreakerMetrics",
    "BreakerStorage",
    "BufferOverflowError",
    "Bulkhead",
    "BulkheadFullError",
    "BulkheadMetrics",
    "CallRefusedError",
    "CappedBackoff",
    "ChangeSink",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "Claim",
    "ClaimStatus",
    "Codec",
    "CompensationFailed",
    "CompensationStarted",
    "ConstantBackoff",
    "CountWindow",
    "DataclassCodec",
    "DecorrelatedJitterBackoff",
    "EmptySequenceError",
    "EqualJitterBackoff",
    "ExponentialBackoff",
    "FullJitterBackoff",
    "HedgePolicy",
    "IdempotencyClaimLostError",
    "IdempotencyCodecError",
    "IdempotencyError",
    "IdempotencyInProgressError",
    "IdempotencyKeyReuseError",
    "IdempotencyPolicy",
    "IdempotencyStore",
    "InMemoryBreakerStorage",
    "InMemoryIdempotencyStore",
    "InMemoryRateLimiterStorage",
    "InMemorySagaJournal",
    "JournalEntry",
    "JournalWrite",
    "JsonCodec",
    "LinearBackoff",
    "OptimisticApplyError",
    "OptimisticState",
    "OptimisticStateDisposedError",
    "Outcome",
    "Permit",
    "PostgresIdempotencyStore",
    "PostgresSagaJournal",
    "RateLimitedError",
    "RateLimiter",
    "RateLimiterConfig",
    "RateLimiterReservation",
    "RateLimiterStorage",
    "RecordedError",
    "RecoveryFailed",
    "RedisBreakerStorage",
    "RedisIdempotencyStore",
    "RedisRateLimiterStorage",
    "RedisSagaJournal",
    "Refusal",
    "ResilienceError",
    "ResultRejectedError",
    "RetryAfterError",
    "RetryEvent",
    "RetryPolicy",
    "SQLiteIdempotencyStore",
    "SQLiteSagaJournal",
    "Saga",
    "SagaCancelledError",
    "SagaCompleted",
    "SagaError",
    "SagaEvent",
    "SagaFailed",
    "SagaJournal",
    "SagaOwnershipLostError",
    "SagaPlan",
    "SagaRecord",
    "SagaState",
    "SagaStatus",
    "SagaStep",
    "SagaStepEmptyError",
    "StateChange",
    "StepCompensated",
    "StepFailed",
    "StepStarted",
    "StepSucceeded",
    "SumBackoff",
    "TelemetryEvent",
    "TimeWindow",
    "TimeoutError",
    "TimeoutPolicy",
    "bulkhead",
    "chaos",
    "circuit_breaker",
    "fallback",
    "fingerprint",
    "from_async",
    "hedge",
    "idempotent",
    "idempotent_map",
    "optimistic",
    "pace",
    "parse_retry_after",
    "raise_for_retry_after",
    "rate_limit",
    "recover",
    "resilient",
    "retry",
    "telemetry",
    "testing",
    "timeout",
    "to_async",
]

__version__ = "0.1.0"


if TYPE_CHECKING:  # typed as the modules they are; imported on first use
    from . import chaos, testing

#: Submodules loaded on first use: ``rxresilience.testing`` brings in
#: ``reactivex.testing`` (and Hypothesis where it is used), which an
#: application that only pipes operators should not pay for at import.
_LAZY = ("chaos", "testing")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
