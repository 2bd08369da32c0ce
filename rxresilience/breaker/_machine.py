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
- HALF_OPEN: up to ``half_open_max_calls`` trials are admitted; the rules of
  a half-open spell are :mod:`rxresilience.breaker._trials`'s.
- FORCED_OPEN and DISABLED hold until ``reset()``.

Every transition starts a new *generation*. A call's outcome changes the
state only if the call was admitted in the current generation: a slow call
admitted while CLOSED that fails after the breaker has moved on to HALF_OPEN
cannot reopen it, and a late success cannot close it (resilience4j lets such
calls count). Lifetime totals count every outcome.
"""

from __future__ import annotations

from .._clock import RESOLUTION
from . import _reasons as reasons
from ._permit import Permit
from ._trials import HalfOpenTrials
from ._types import (
    BreakerConfig,
    BreakerMetrics,
    ChangeSink,
    CircuitState,
    Outcome,
    Refusal,
    StateChange,
    window_rates,
)
from ._window import OutcomeWindow

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

# The vocabulary lives in _types; the names above are re-exported from here
# for the modules (and storages) that import them with the machine.

_SUCCESS = Outcome.SUCCESS
_CLOSED = CircuitState.CLOSED
_OPEN = CircuitState.OPEN
_FORCED_OPEN = Refusal(None, CircuitState.FORCED_OPEN)
_HALF_OPEN = CircuitState.HALF_OPEN


class _Totals:
    """A breaker's lifetime counts of outcomes and refusals (``reset()`` clears them)."""

    __slots__ = ("failures", "ignored", "rejected", "slow", "successes")

    def __init__(self) -> None:
        self.successes = 0
        self.failures = 0
        self.slow = 0
        self.ignored = 0
        self.rejected = 0

    def count(self, outcome: Outcome, slow: bool) -> None:
        if outcome is Outcome.NEITHER:
            self.ignored += 1
            return
        if outcome is _SUCCESS:
            self.successes += 1
        else:
            self.failures += 1
        if slow:
            self.slow += 1


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
        self._trials = HalfOpenTrials(config)
        self._totals = _Totals()

    # -- admission ---------------------------------------------------------------

    def acquire(self, now: float) -> Permit | Refusal:
        """Admit a call (a permit) or refuse it (with ``retry_after`` if known)."""
        state = self.state
        if state is _OPEN:
            wait = self.opened_at + self.reset_timeout - now
            if wait > RESOLUTION:
                self._totals.rejected += 1
                return Refusal(wait, _OPEN)
            self._move(CircuitState.HALF_OPEN, reasons.RESET_TIMEOUT_ELAPSED, now)
        elif state is CircuitState.FORCED_OPEN:
            self._totals.rejected += 1
            return _FORCED_OPEN
        elif state is not CircuitState.HALF_OPEN:  # CLOSED or DISABLED
            return Permit(self.generation, False, now)
        if self._trials.take(now):
            return Permit(self.generation, True, now)
        self._totals.rejected += 1
        return Refusal(self._trials.wait(now), _HALF_OPEN)

    def half_open_if_due(self, now: float) -> None:
        """Move OPEN to HALF_OPEN (for ``auto_half_open``) once the timeout is over."""
        if (
            self.state is CircuitState.OPEN
            and now >= self.opened_at + self._config.reset_timeout - RESOLUTION
        ):
            self._move(CircuitState.HALF_OPEN, reasons.RESET_TIMEOUT_ELAPSED, now)

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
            self._totals.successes += 1
            self._consecutive = 0
            return
        config = self._config
        slow_limit = config.slow_call_duration
        slow = (
            slow_limit is not None
            and outcome is not Outcome.NEITHER
            and now - permit.started_at >= slow_limit
        )
        self._totals.count(outcome, slow)
        if permit.generation != self.generation:
            return
        if permit.trial:
            move = self._trials.settle(permit.started_at, outcome, slow)
            if move is not None:
                self._move(*move, now)
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
            reason = reasons.CONSECUTIVE_FAILURES.format(failures=self._consecutive)
        elif window is not None:
            totals = window.totals(now)
            reason = reasons.rate_reason(
                config, totals.calls, totals.failures, totals.slow_calls
            )
        else:
            return
        if reason:
            self._move(CircuitState.OPEN, reason, now)

    def adopt(self, state: CircuitState, opened_at: float) -> None:
        """Start over in ``state`` (a storage's fallback), silently.

        Counters and the window are cleared and a new generation starts, so
        permits handed out before count only in the totals.
        """
        self._totals = _Totals()
        self._trials.clear()
        self._clear_run_and_window()
        self.state = state
        self.opened_at = opened_at
        self.generation += 1

    # -- manual control -------------------------------------------------------------

    def force(self, target: CircuitState, now: float, reason: str) -> None:
        """``force_open()`` / ``disable()`` / ``reset()`` (target CLOSED)."""
        if target is CircuitState.CLOSED:
            self._totals = _Totals()
            self._clear_run_and_window()
        if self.state is not target:
            self._move(target, reason, now)
        elif target is CircuitState.CLOSED:
            # A reset while closed is no transition, but it fences the calls
            # admitted before it all the same: they count in no run or window.
            self.generation += 1

    def _move(self, target: CircuitState, reason: str, now: float) -> None:
        change = StateChange(self.state, target, now, reason)
        self.state = target
        self.generation += 1
        if target is CircuitState.OPEN:
            self.opened_at = now
        elif target is CircuitState.HALF_OPEN:
            self._trials.clear()
        elif target is CircuitState.CLOSED:
            self._clear_run_and_window()
        self._sink(change)

    def _clear_run_and_window(self) -> None:
        self._consecutive = 0
        if self._window is not None:
            self._window.clear()

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
            failure_rate, slow_rate = window_rates(
                self._config, totals.calls, totals.failures, totals.slow_calls
            )
        counts = self._totals
        return BreakerMetrics(
            state=self.state,
            calls=counts.successes + counts.failures,
            successes=counts.successes,
            failures=counts.failures,
            slow_calls=counts.slow,
            ignored=counts.ignored,
            rejected=counts.rejected,
            consecutive_failures=self._consecutive,
            window_calls=window_calls,
            failure_rate=failure_rate,
            slow_call_rate=slow_rate,
        )
