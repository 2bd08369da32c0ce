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
from ._retry import RetryEvent, RetryPolicy, retry
from .errors import ResilienceError

__all__ = [
    "Backoff",
    "CappedBackoff",
    "ConstantBackoff",
    "DecorrelatedJitterBackoff",
    "EqualJitterBackoff",
    "ExponentialBackoff",
    "FullJitterBackoff",
    "LinearBackoff",
    "ResilienceError",
    "RetryEvent",
    "RetryPolicy",
    "SumBackoff",
    "retry",
]

__version__ = "0.1.0"
