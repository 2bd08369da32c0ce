"""The circuit breaker's state machine: pure, with no clock, lock or callback.

Time comes in as an argument (``now``, seconds on the breaker's clock) and
transitions go out as :class:`StateChange` values to a sink (which only
queues them); a storage runs the machine under its own lock and the breaker
publishes the queued changes after releasing it.

Rules:

- CLOSED: every call is admitted. ``failure_threshold`` consecutive recorded
  failures open the breaker; so does a window's failure rate or slow-call rate
  reaching its threshold (``>=``) once it holds ``minimum_calls`` calls.
- OPEN: calls are refused with the time left until ``opened_at +
  reset_timeout``; the first call at or after it moves the breaker to
  HALF_OPEN and is its first trial.
- HALF_OPEN: up to ``half_open_max_calls`` trials are admitted; a trial given
  back (ignored error, or disposed with no value) frees its permit. When that
  many trials succeed the breaker closes; a failed trial (or, with a slow-call
  rule, a slow one) reopens it. The calls refused meanwhile are told to come
  back when the earliest running trial's ``max_half_open_wait`` ends (if set),
  or after a tenth of ``reset_timeout``, whichever is sooner: a caller that
  waits that long finds the trial settled or close to it, never an answer
  that is stale by a whole ``reset_timeout``.
- FORCED_OPEN and DISABLED hold until ``reset()``.

Every transition starts a new *generation*. A call's outcome changes the
state only if the call was admitted in the current generation: a slow call
admitted while CLOSED that fails after the breaker has moved on to HALF_OPEN
cannot reopen it, and a late success cannot close it (resilience4j lets such
calls count). Lifetime totals count every outcome.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from .._clock import RESOLUTION
from ._permit import Permit
from ._window import CountWindow, OutcomeWindow, TimeWindow

__all__ = [
    "BreakerConfig",
    "BreakerMetrics",
    "ChangeSink",
    "CircuitMachine",
    "CircuitState",
    "Outcome",
    "Refusal",
    "StateChange",
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

_SUCCESS = Outcome.SUCCESS
_CLOSED = CircuitState.CLOSED
_OPEN = CircuitState.OPEN
_FORCED_OPEN = Refusal(None, CircuitState.FORCED_OPEN)
_HALF_OPEN = CircuitState.HALF_OPEN


class CircuitMachine:
    """The state and counters of one breaker, changed only through its methods."""

    def __init__(self, config: BreakerConfig, sink: ChangeSink) -> None:
        self._config = config
        self.reset_timeout = config.reset_timeout
        self._sink = sink
        # No window and no slow-call rule: a success while CLOSED only resets a count.
        self._plain = config.window is None and config.slow_call_duration is None
        self._window: OutcomeWindow | None = (
            config.window.accumulator() if config.window is not None else None
        )
        self.state = CircuitState.CLOSED
        self.generation = 0
        self.opened_at = 0.0
        self._consecutive = 0
        self._trials_taken = 0
        self._trial_successes = 0
        self._trial_starts: list[float] = []  # of the trials running now
        self._reset_totals()

    def _reset_totals(self) -> None:
        self._successes = 0
        self._failures = 0
        self._slow = 0
        self._ignored = 0
        self._rejected = 0

    # -- admission ---------------------------------------------------------------

    def acquire(self, now: float) -> Permit | Refusal:
        """Admit a call (a permit) or refuse it (with ``retry_after`` if known)."""
        state = self.state
        if state is _OPEN:
            wait = self.opened_at + self.reset_timeout - now
            if wait > RESOLUTION:
                self._rejected += 1
                return Refusal(wait, _OPEN)
            self._move(CircuitState.HALF_OPEN, now, "reset timeout elapsed")
        elif state is CircuitState.FORCED_OPEN:
            self._rejected += 1
            return _FORCED_OPEN
        elif state is not CircuitState.HALF_OPEN:  # CLOSED or DISABLED
            return Permit(self.generation, False, now)
        if self._trials_taken < self._config.half_open_max_calls:
            self._trials_taken += 1
            self._trial_starts.append(now)
            return Permit(self.generation, True, now)
        self._rejected += 1
        return Refusal(self._trial_wait(now), _HALF_OPEN)

    def _trial_wait(self, now: float) -> float:
        """How long a call refused in HALF_OPEN should wait before asking again."""
        wait = self.reset_timeout / 10
        limit = self._config.max_half_open_wait
        if limit is not None and self._trial_starts:
            wait = min(wait, min(self._trial_starts) + limit - now)
        return max(wait, RESOLUTION)

    def half_open_if_due(self, now: float) -> None:
        """Move OPEN to HALF_OPEN (for ``auto_half_open``) once the timeout is over."""
        if (
            self.state is CircuitState.OPEN
            and now >= self.opened_at + self._config.reset_timeout - RESOLUTION
        ):
            self._move(CircuitState.HALF_OPEN, now, "reset timeout elapsed")

    # -- outcomes -------------------------------------------------------------------

    def record(self, permit: Permit, outcome: Outcome, now: float) -> None:
        """Settle ``permit`` with ``outcome``; a settled permit is left alone."""
        if permit.settled:
            return
        permit.settled = True
        if (
            outcome is _SUCCESS
            and self._plain
            and self.state is _CLOSED
            and permit.generation == self.generation
        ):  # the hot path: nothing to judge
            self._successes += 1
            self._consecutive = 0
            return
        config = self._config
        slow_limit = config.slow_call_duration
        slow = (
            slow_limit is not None
            and outcome is not Outcome.NEITHER
            and now - permit.started_at >= slow_limit
        )
        if outcome is Outcome.NEITHER:
            self._ignored += 1
        else:
            if outcome is Outcome.SUCCESS:
                self._successes += 1
            else:
                self._failures += 1
            if slow:
                self._slow += 1
        if permit.generation != self.generation:
            return
        if permit.trial:
            self._record_trial(permit, outcome, slow, now)
            return
        if self.state is not CircuitState.CLOSED or outcome is Outcome.NEITHER:
            return
        failed = outcome is not Outcome.SUCCESS
        self._consecutive = self._consecutive + 1 if failed else 0
        window = self._window
        if window is not None:
            window.add(now, failed, slow)
        threshold = config.failure_threshold
        if threshold is not None and self._consecutive >= threshold:
            reason = f"{self._consecutive} consecutive failures"
        elif window is not None:
            reason = self._rate_verdict(window, now)
        else:
            return
        if reason:
            self._move(CircuitState.OPEN, now, reason)

    def _record_trial(
        self, permit: Permit, outcome: Outcome, slow: bool, now: float
    ) -> None:
        if permit.started_at in self._trial_starts:
            self._trial_starts.remove(permit.started_at)
        if outcome is Outcome.NEITHER:
            self._trials_taken -= 1
            return
        if outcome is Outcome.TIMED_OUT:
            reason = "trial call outlasted max_half_open_wait"
        elif outcome is Outcome.FAILURE:
            reason = "trial call failed"
        elif slow:
            reason = "trial call was slow"
        else:
            self._trial_successes += 1
            successes = self._trial_successes
            if successes >= self._config.half_open_max_calls:
                self._move(
                    CircuitState.CLOSED,
                    now,
                    f"{successes} of {successes} trial calls succeeded",
                )
            return
        self._move(CircuitState.OPEN, now, reason)

    def _rate_verdict(self, window: OutcomeWindow, now: float) -> str:
        config = self._config
        totals = window.totals(now)
        if totals.calls < config.minimum_calls:
            return ""
        rate = config.failure_rate_threshold
        if rate is not None and totals.failures / totals.calls >= rate:
            return f"failure rate {totals.failures}/{totals.calls} reached {rate:.0%}"
        rate = config.slow_call_rate_threshold
        if rate is not None and totals.slow_calls / totals.calls >= rate:
            return (
                f"slow call rate {totals.slow_calls}/{totals.calls} reached {rate:.0%}"
            )
        return ""

    def adopt(self, state: CircuitState, opened_at: float) -> None:
        """Start over in ``state`` (a storage's fallback), silently.

        Counters and the window are cleared and a new generation starts, so
        permits handed out before count only in the totals.
        """
        self._reset_totals()
        self._consecutive = 0
        self._trials_taken = 0
        self._trial_successes = 0
        self._trial_starts.clear()
        if self._window is not None:
            self._window.clear()
        self.state = state
        self.opened_at = opened_at
        self.generation += 1

    # -- manual control -------------------------------------------------------------

    def force(self, target: CircuitState, now: float, reason: str) -> None:
        """``force_open()`` / ``disable()`` / ``reset()`` (target CLOSED)."""
        if target is CircuitState.CLOSED:
            self._reset_totals()
            self._consecutive = 0
            if self._window is not None:
                self._window.clear()
        if self.state is not target:
            self._move(target, now, reason)

    def _move(self, target: CircuitState, now: float, reason: str) -> None:
        change = StateChange(self.state, target, now, reason)
        self.state = target
        self.generation += 1
        if target is CircuitState.OPEN:
            self.opened_at = now
        elif target is CircuitState.HALF_OPEN:
            self._trials_taken = 0
            self._trial_successes = 0
            self._trial_starts.clear()
        elif target is CircuitState.CLOSED:
            self._consecutive = 0
            if self._window is not None:
                self._window.clear()
        self._sink(change)

    # -- reading --------------------------------------------------------------------

    def retry_after(self, now: float) -> float | None:
        """Seconds until a trial is let through, if known."""
        if self.state is CircuitState.OPEN:
            return max(0.0, self.opened_at + self._config.reset_timeout - now)
        return None

    def metrics(self, now: float) -> BreakerMetrics:
        window = self._window
        failure_rate: float | None = None
        slow_rate: float | None = None
        window_calls = 0
        if window is not None:
            totals = window.totals(now)
            window_calls = totals.calls
            if totals.calls and totals.calls >= self._config.minimum_calls:
                failure_rate = totals.failures / totals.calls
                slow_rate = totals.slow_calls / totals.calls
        return BreakerMetrics(
            state=self.state,
            calls=self._successes + self._failures,
            successes=self._successes,
            failures=self._failures,
            slow_calls=self._slow,
            ignored=self._ignored,
            rejected=self._rejected,
            consecutive_failures=self._consecutive,
            window_calls=window_calls,
            failure_rate=failure_rate,
            slow_call_rate=slow_rate,
        )
