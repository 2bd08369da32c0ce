"""The exception hierarchy of rxresilience.

Every error the library raises on its own account derives from
:class:`ResilienceError`, so ``except rxr.ResilienceError`` catches exactly
what the library adds on top of the errors of the work it protects. Errors of
the protected work itself are never wrapped: ``rxr.retry`` delivers the last
attempt's own exception object, unchanged.

Bad configuration is not a ``ResilienceError``: it raises the built-in
``ValueError`` or ``TypeError`` at construction time, naming the argument.

Every exception is ``rxresilience.errors.X`` (its ``__module__`` says so, in
tracebacks and pickles alike); the classes are written in private modules by
area: the roots, the refusals, single operators, idempotency, sagas.
"""

from __future__ import annotations

from ._base import CallRefusedError, ResilienceError
from ._idempotency import (
    IdempotencyClaimLostError,
    IdempotencyCodecError,
    IdempotencyError,
    IdempotencyInProgressError,
    IdempotencyKeyReuseError,
    RecordedError,
)
from ._operators import (
    BufferOverflowError,
    EmptySequenceError,
    OptimisticApplyError,
    OptimisticStateDisposedError,
    ResultRejectedError,
    RetryAfterError,
    TimeoutError,
)
from ._refusals import BulkheadFullError, CircuitOpenError, RateLimitedError
from ._saga import (
    SagaCancelledError,
    SagaError,
    SagaFailed,
    SagaOwnershipLostError,
    SagaStepEmptyError,
)

__all__ = [
    "BufferOverflowError",
    "BulkheadFullError",
    "CallRefusedError",
    "CircuitOpenError",
    "EmptySequenceError",
    "IdempotencyClaimLostError",
    "IdempotencyCodecError",
    "IdempotencyError",
    "IdempotencyInProgressError",
    "IdempotencyKeyReuseError",
    "OptimisticApplyError",
    "OptimisticStateDisposedError",
    "RateLimitedError",
    "RecordedError",
    "ResilienceError",
    "ResultRejectedError",
    "RetryAfterError",
    "SagaCancelledError",
    "SagaError",
    "SagaFailed",
    "SagaOwnershipLostError",
    "SagaStepEmptyError",
    "TimeoutError",
]

# The area modules are where the classes are written, not where users find
# them: ``rxresilience.errors.CircuitOpenError`` in a traceback, a pickle
# found by that name, and the doctests run once, here.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name


def __dir__() -> list[str]:
    return sorted(__all__)
