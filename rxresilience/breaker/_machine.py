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

from .._clock import RESOLUTION
from . import _reasons as reasons
from ._permit import Permit
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


class _Trials:
    """The half-open trials of one generation."""

    __slots__ = ("starts", "succeeded", "taken")

    def __init__(self) -> None:
        self.taken = 0  # permits handed out (and not given back)
        self.succeeded = 0
        self.starts: list[float] = []  # of the trials running now

    def clear(self) -> None:
        self.taken = 0
        self.succeeded = 0
        self.starts.clear()

    def wait(self, now: float, cap: float, limit: float | None) -> float:
        """How long a call refused in HALF_OPEN should wait before asking again.

        Until the earliest running trial's ``max_half_open_wait`` (``limit``)
        ends, or ``cap`` (a share of the reset timeout), whichever is sooner.
        """
        wait = cap
        if limit is not None and self.starts:
            wait = min(wait, min(self.starts) + limit - now)
        return max(wait, RESOLUTION)


class CircuitMachine:
    """The state and counters of one breaker, changed only through its methods."""

    def __init__(self, config: BreakerConfig, sink: ChangeSink) -> None:
        self._config = config
        self.reset_timeout = config.reset_timeout
        self._trial_wait_cap = reasons.trial_wait_cap(config.reset_timeout)
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
        self._trials = _Trials()
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
            self._move(CircuitState.HALF_OPEN, now, reasons.RESET_TIMEOUT_ELAPSED)
        elif state is CircuitState.FORCED_OPEN:
            self._rejected += 1
            return _FORCED_OPEN
        elif state is not CircuitState.HALF_OPEN:  # CLOSED or DISABLED
            return Permit(self.generation, False, now)
        trials = self._trials
        if trials.taken < self._config.half_open_max_calls:
            trials.taken += 1
            trials.starts.append(now)
            return Permit(self.generation, True, now)
        self._rejected += 1
        wait = trials.wait(now, self._trial_wait_cap, self._config.max_half_open_wait)
        return Refusal(wait, _HALF_OPEN)

    def half_open_if_due(self, now: float) -> None:
        """Move OPEN to HALF_OPEN (for ``auto_half_open``) once the timeout is over."""
        if (
            self.state is CircuitState.OPEN
            and now >= self.opened_at + self._config.reset_timeout - RESOLUTION
        ):
            self._move(CircuitState.HALF_OPEN, now, reasons.RESET_TIMEOUT_ELAPSED)

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
            reason = reasons.CONSECUTIVE_FAILURES.format(failures=self._consecutive)
        elif window is not None:
            totals = window.totals(now)
            reason = reasons.rate_reason(
                config, totals.calls, totals.failures, totals.slow_calls
            )
        else:
            return
        if reason:
            self._move(CircuitState.OPEN, now, reason)

    def _record_trial(
        self, permit: Permit, outcome: Outcome, slow: bool, now: float
    ) -> None:
        trials = self._trials
        if permit.started_at in trials.starts:
            trials.starts.remove(permit.started_at)
        if outcome is Outcome.NEITHER:
            trials.taken -= 1
            return
        if outcome is Outcome.TIMED_OUT:
            reason = reasons.TRIAL_OUTLASTED
        elif outcome is Outcome.FAILURE:
            reason = reasons.TRIAL_FAILED
        elif slow:
            reason = reasons.TRIAL_SLOW
        else:
            trials.succeeded += 1
            successes = trials.succeeded
            if successes >= self._config.half_open_max_calls:
                self._move(
                    CircuitState.CLOSED,
                    now,
                    reasons.TRIALS_SUCCEEDED.format(successes=successes),
                )
            return
        self._move(CircuitState.OPEN, now, reason)

    def adopt(self, state: CircuitState, opened_at: float) -> None:
        """Start over in ``state`` (a storage's fallback), silently.

        Counters and the window are cleared and a new generation starts, so
        permits handed out before count only in the totals.
        """
        self._reset_totals()
        self._trials.clear()
        self._clear_run_and_window()
        self.state = state
        self.opened_at = opened_at
        self.generation += 1

    # -- manual control -------------------------------------------------------------

    def force(self, target: CircuitState, now: float, reason: str) -> None:
        """``force_open()`` / ``disable()`` / ``reset()`` (target CLOSED)."""
        if target is CircuitState.CLOSED:
            self._reset_totals()
            self._clear_run_and_window()
        if self.state is not target:
            self._move(target, now, reason)
        elif target is CircuitState.CLOSED:
            # A reset while closed is no transition, but it fences the calls
            # admitted before it all the same: they count in no run or window.
            self.generation += 1

    def _move(self, target: CircuitState, now: float, reason: str) -> None:
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
