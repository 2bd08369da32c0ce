"""The circuit breaker's vocabulary: its states, settings, answers and snapshots.

These are the types a :class:`~rxresilience.BreakerStorage` is written
against (re-exported from ``rxresilience``); the state machine that uses
them is :mod:`rxresilience.breaker._machine`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from ._window import CountWindow, TimeWindow

__all__ = [
    "BreakerConfig",
    "BreakerMetrics",
    "ChangeSink",
    "CircuitState",
    "Outcome",
    "Refusal",
    "StateChange",
    "window_rates",
]


class CircuitState(enum.StrEnum):
    """The states of a circuit breaker; the values are the names users see."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"
    FORCED_OPEN = "forced-open"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class StateChange:
    """One transition of a breaker.

    Attributes:
        previous: the state left.
        current: the state entered.
        at: when, in seconds on the breaker's clock (virtual ticks under a
            ``TestScheduler``, epoch seconds on the real clock).
        reason: why, in words ("3 consecutive failures", "reset timeout
            elapsed", ...).
        local: True when the state is this process's own because the
            breaker's shared storage cannot be reached (see
            :class:`~rxresilience.RedisBreakerStorage`). The change that
            announces the fallback (and the one that announces the return to
            the shared state) may have ``previous == current``.
    """

    previous: CircuitState
    current: CircuitState
    at: float
    reason: str
    local: bool = False


@dataclass(frozen=True, slots=True)
class BreakerMetrics:
    """A frozen snapshot of a breaker's counters.

    The lifetime totals count since creation or the last ``reset()``; the
    rates describe the sliding window and are ``None`` without a window or
    while it holds fewer than ``minimum_calls`` calls.

    Attributes:
        state: the state when the snapshot was taken.
        calls: admitted calls that ended as a success or a failure.
        successes: calls that succeeded.
        failures: calls that failed (recorded errors, flagged values, trials
            that overran ``max_half_open_wait``).
        slow_calls: calls (successful or not) at least ``slow_call_duration`` long.
        ignored: admitted calls that counted as neither (ignored or unrecorded
            errors, disposal before any value).
        rejected: calls refused with ``CircuitOpenError``.
        consecutive_failures: the current run of failures while CLOSED.
        window_calls: calls in the sliding window now.
        failure_rate: failures / calls in the window, or None.
        slow_call_rate: slow calls / calls in the window, or None.
    """

    state: CircuitState
    calls: int
    successes: int
    failures: int
    slow_calls: int
    ignored: int
    rejected: int
    consecutive_failures: int
    window_calls: int
    failure_rate: float | None
    slow_call_rate: float | None


class Outcome(enum.Enum):
    """How a call ended, as a storage records it.

    ``SUCCESS`` and ``FAILURE`` count (and judge the state); ``NEITHER`` counts
    only in ``ignored`` and gives back a half-open permit; ``TIMED_OUT`` is a
    trial that outlasted ``max_half_open_wait``, a failure.
    """

    SUCCESS = "success"
    FAILURE = "failure"
    NEITHER = "neither"
    TIMED_OUT = "timed out"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """A breaker's validated settings, as its storage is bound with them.

    ``CircuitBreaker`` builds it from its arguments (see there for each
    setting's meaning) and passes it to :meth:`BreakerStorage.bind`;
    ``minimum_calls`` is already resolved from the window's default, and a
    ``failure_threshold`` of ``None`` means no consecutive-failure rule.
    """

    failure_threshold: int | None
    reset_timeout: float
    half_open_max_calls: int
    window: CountWindow | TimeWindow | None
    failure_rate_threshold: float | None
    slow_call_duration: float | None
    slow_call_rate_threshold: float | None
    minimum_calls: int
    max_half_open_wait: float | None = None


class Refusal(NamedTuple):
    """A storage's answer to a call it does not admit.

    Attributes:
        retry_after: seconds until asking again makes sense, or None if unknown
            (FORCED_OPEN).
        state: the state that refused the call.
    """

    retry_after: float | None
    state: CircuitState


#: What a storage passes each transition to, in order, while its update is
#: still atomic (the breaker's sink only queues it, and publishes it later).
ChangeSink = Callable[[StateChange], None]


def window_rates(
    config: BreakerConfig, calls: int, failures: int, slow_calls: int
) -> tuple[float | None, float | None]:
    """The failure and slow-call rates of a window holding ``calls`` calls.

    Both None while it holds fewer than ``minimum_calls`` (or none at all).
    """
    if calls and calls >= config.minimum_calls:
        return failures / calls, slow_calls / calls
    return None, None
