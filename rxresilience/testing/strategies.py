"""Hypothesis strategies for resilience pipelines (install the ``testing`` extra).

Shrink-friendly, with delays drawn from small sets of round numbers, so that
generated schedules hit policy boundaries (a timeout equal to a gap, a retry
landing exactly at a reset timeout) as often as they miss them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from .._backoff import (
    Backoff,
    ConstantBackoff,
    DecorrelatedJitterBackoff,
    EqualJitterBackoff,
    ExponentialBackoff,
    FullJitterBackoff,
    LinearBackoff,
)
from .._retry import RetryPolicy
from .._timeout import TimeoutPolicy
from ..breaker import CountWindow, TimeWindow
from ._bulkhead_laws import BulkheadCall, bulkhead_loads, bulkheads
from ._flaky import FlakySource, flaky
from ._hedge_laws import hedge_policies, hedge_scripts
from ._rate_limit_laws import rate_limiter_configs

__all__ = [
    "BreakerCall",
    "BulkheadCall",
    "SagaPlan",
    "SagaShape",
    "backoff_policies",
    "breaker_configs",
    "bulkhead_loads",
    "bulkheads",
    "delays",
    "exceptions",
    "failure_schedules",
    "flaky_sources",
    "hedge_policies",
    "hedge_scripts",
    "idempotency_requests",
    "rate_limiter_configs",
    "retry_policies",
    "saga_plans",
    "saga_shapes",
    "timeout_budgets",
]

_ROUND = [0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0]


def delays(*, maximum: float = 30.0) -> st.SearchStrategy[float]:
    """Seconds, mostly round numbers (boundaries), sometimes anything up to ``maximum``."""
    return st.one_of(
        st.sampled_from([d for d in _ROUND if d <= maximum]),
        st.floats(0.0, maximum, allow_nan=False, allow_infinity=False),
    )


_ERROR_TYPES: list[type[Exception]] = [
    ConnectionError,
    TimeoutError,
    OSError,
    ValueError,
    RuntimeError,
    KeyError,
]


def exceptions(
    types: list[type[Exception]] | None = None,
) -> st.SearchStrategy[Exception]:
    """Exception instances of common failure types, with short messages."""
    kinds = types or _ERROR_TYPES
    return st.builds(
        lambda kind, text: kind(text),
        st.sampled_from(kinds),
        st.text(max_size=8),
    )


def flaky_sources(
    *,
    max_failures: int = 3,
    silent_failures: bool = False,
    latencies: st.SearchStrategy[float] | None = None,
    values: st.SearchStrategy[list[Any]] | None = None,
) -> st.SearchStrategy[FlakySource[Any]]:
    """``rxr.testing.flaky`` sources: k failures (or hangs, with
    ``silent_failures``) then success."""
    outcomes = st.sampled_from(["fail", "hang"] if silent_failures else ["fail"])
    scripts = st.lists(outcomes, max_size=max_failures).map(lambda s: [*s, "ok"])
    return st.builds(
        lambda vals, script, latency: flaky(vals, failures=script, latency=latency),
        values
        if values is not None
        else st.lists(st.integers(0, 9), min_size=1, max_size=3),
        scripts,
        latencies if latencies is not None else st.sampled_from([0.0, 1.0, 2.0]),
    )


@dataclass(frozen=True, slots=True)
class BreakerCall:
    """One call in a breaker schedule: its outcome, how long it takes, and the
    pause before the next call."""

    outcome: str  # "ok", "fail" or "ignored"
    duration: float
    pause: float


def failure_schedules(*, max_calls: int = 30) -> st.SearchStrategy[list[BreakerCall]]:
    """Time-ordered call outcomes and latencies, for driving breakers."""
    return st.lists(
        st.builds(
            BreakerCall,
            st.sampled_from(["ok", "fail", "fail", "ignored"]),
            st.sampled_from([0.0, 0.5, 1.0, 5.0]),
            delays(maximum=40.0),
        ),
        max_size=max_calls,
    )


def backoff_policies() -> st.SearchStrategy[Backoff]:
    """Every backoff policy, with small round parameters, sometimes capped."""
    base = st.sampled_from([0.0, 0.5, 1.0, 2.0])
    factor = st.sampled_from([1.0, 1.5, 2.0, 3.0])
    jitter = st.sampled_from([0.0, 0.1, 0.3, 1.0])

    def exponential(b: float, f: float, j: float, extra: float) -> Backoff:
        return ExponentialBackoff(
            base=b, factor=f, max_delay=max(b, 0.5) + extra, jitter=j
        )

    policies = st.one_of(
        st.builds(ConstantBackoff, st.sampled_from(_ROUND)),
        st.builds(
            LinearBackoff,
            base,
            st.sampled_from([0.0, 1.0, 2.0]),
            st.sampled_from([5.0, 30.0]),
        ),
        st.builds(exponential, base, factor, jitter, st.sampled_from([0.0, 5.0, 30.0])),
        st.builds(
            lambda b, f, extra: FullJitterBackoff(
                base=b, factor=f, max_delay=max(b, 0.5) + extra
            ),
            base,
            factor,
            st.sampled_from([0.0, 5.0, 30.0]),
        ),
        st.builds(
            lambda b, f, extra: EqualJitterBackoff(
                base=b, factor=f, max_delay=max(b, 0.5) + extra
            ),
            base,
            factor,
            st.sampled_from([0.0, 5.0, 30.0]),
        ),
        st.builds(
            lambda b, extra: DecorrelatedJitterBackoff(base=b, max_delay=b + extra),
            base,
            st.sampled_from([1.0, 5.0, 30.0]),
        ),
    )
    return st.one_of(
        policies,
        st.builds(lambda p, cap: p.capped(cap), policies, st.sampled_from([1.0, 5.0])),
    )


def retry_policies(*, max_attempts: int = 6) -> st.SearchStrategy[RetryPolicy]:
    """Retry policies: attempts (or unlimited), a backoff, sometimes a time budget.

    Each ends against a source that always fails, in virtual time: unlimited
    attempts come with a time budget and a delay above 0 (with no delay the
    budget would never be spent, the clock never moving).
    """
    limited = st.builds(
        lambda attempts, backoff, budget: RetryPolicy(
            max_attempts=attempts, backoff=backoff, max_elapsed=budget
        ),
        st.integers(1, max_attempts),
        st.one_of(st.none(), st.sampled_from([0.0, 1.0, 5.0]), backoff_policies()),
        st.one_of(st.none(), st.sampled_from([10.0, 60.0])),
    )
    unlimited = st.builds(
        lambda delay, budget: RetryPolicy(
            max_attempts=None, backoff=delay, max_elapsed=budget
        ),
        st.sampled_from([1.0, 5.0]),
        st.sampled_from([10.0, 60.0]),
    )
    return st.one_of(limited, unlimited)


def breaker_configs() -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for ``rxr.CircuitBreaker``: the classic rule, and sometimes
    a rate rule over a count or time window."""
    classic = st.fixed_dictionaries(
        {
            "failure_threshold": st.integers(1, 5),
            "reset_timeout": st.sampled_from([1.0, 5.0, 10.0, 30.0]),
            "half_open_max_calls": st.integers(1, 3),
        }
    )
    windowed = st.fixed_dictionaries(
        {
            "failure_threshold": st.one_of(st.none(), st.integers(2, 5)),
            "reset_timeout": st.sampled_from([1.0, 5.0, 10.0]),
            "half_open_max_calls": st.integers(1, 3),
            "window": st.one_of(
                st.builds(CountWindow, st.integers(2, 10)),
                st.builds(TimeWindow, st.sampled_from([5.0, 10.0, 60.0])),
            ),
            "failure_rate_threshold": st.sampled_from([0.25, 0.5, 1.0]),
            "minimum_calls": st.integers(1, 2),
        }
    )
    return st.one_of(classic, windowed)


def timeout_budgets() -> st.SearchStrategy[TimeoutPolicy]:
    """``TimeoutPolicy`` values with round budgets (so items land on deadlines)."""
    budget = st.sampled_from([1.0, 2.0, 3.0, 5.0, 10.0])
    total = st.sampled_from([10.0, 20.0, 60.0])
    return st.one_of(
        st.builds(lambda e: TimeoutPolicy(each=e), budget),
        st.builds(lambda f, e: TimeoutPolicy(first=f, each=e), budget, budget),
        st.builds(lambda t: TimeoutPolicy(total=t), total),
        st.builds(lambda e, t: TimeoutPolicy(each=e, total=t), budget, total),
    )


@dataclass(frozen=True, slots=True)
class SagaShape:
    """A saga to generate: how many steps, which one fails (None: none), and which
    compensations fail (not an ``rxr.SagaPlan``, the plan a saga builds)."""

    steps: int
    failing_step: int | None
    failing_compensations: frozenset[int]


def saga_shapes(*, max_steps: int = 6) -> st.SearchStrategy[SagaShape]:
    """Saga shapes for property tests of compensation order."""
    return st.integers(1, max_steps).flatmap(
        lambda n: st.builds(
            SagaShape,
            st.just(n),
            st.one_of(st.none(), st.integers(0, n - 1)),
            st.frozensets(st.integers(0, n - 1)),
        )
    )


#: The names of 0.1, kept: ``SagaPlan`` read as ``rxr.SagaPlan``, another thing.
SagaPlan = SagaShape
saga_plans = saga_shapes


def idempotency_requests(
    *, keys: str = "abc", max_requests: int = 12, horizon: int = 30
) -> st.SearchStrategy[list[tuple[str, int]]]:
    """Requests ``(key, virtual time)`` with repeated keys, in any order."""
    return st.lists(
        st.tuples(st.sampled_from(list(keys)), st.integers(0, horizon)),
        min_size=1,
        max_size=max_requests,
    )


def __dir__() -> list[str]:
    """The public names only (not the helpers this module imports)."""
    return sorted(__all__)
