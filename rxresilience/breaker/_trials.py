"""``HalfOpenTrials``: the bookkeeping of one half-open spell of a breaker.

A HALF_OPEN breaker admits ``half_open_max_calls`` trials; a trial given back
(an ignored error, a call disposed with no value) frees its slot. When that
many trials succeed the breaker closes; one that fails, outlasts
``max_half_open_wait`` or (with a slow-call rule) is slow reopens it. The
calls refused meanwhile are told to come back when the earliest running
trial's ``max_half_open_wait`` ends (if set), or after a tenth of
``reset_timeout``, whichever is sooner: a caller that waits that long finds
the trial settled or close to it, never an answer stale by a whole
``reset_timeout``. ``redis_acquire.lua`` and ``redis_record.lua`` keep the
same rules in Redis.
"""

from __future__ import annotations

from .._clock import RESOLUTION
from . import _reasons as reasons
from ._types import BreakerConfig, CircuitState, Outcome

__all__ = ["HalfOpenTrials"]


class HalfOpenTrials:
    """The trials of one generation: taken, succeeded, and when each running one started."""

    __slots__ = ("_limit", "_max_wait", "_wait_cap", "starts", "succeeded", "taken")

    def __init__(self, config: BreakerConfig) -> None:
        self._limit = config.half_open_max_calls
        self._max_wait = config.max_half_open_wait
        self._wait_cap = reasons.trial_wait_cap(config.reset_timeout)
        self.taken = 0  # permits handed out (and not given back)
        self.succeeded = 0
        self.starts: list[float] = []  # of the trials running now

    def clear(self) -> None:
        """Start a new half-open spell: no trial taken."""
        self.taken = 0
        self.succeeded = 0
        self.starts.clear()

    def take(self, now: float) -> bool:
        """Take a trial's slot if one is free."""
        if self.taken >= self._limit:
            return False
        self.taken += 1
        self.starts.append(now)
        return True

    def wait(self, now: float) -> float:
        """How long a call refused now (every slot taken) should wait before asking again."""
        wait = self._wait_cap
        limit = self._max_wait
        if limit is not None and self.starts:
            wait = min(wait, min(self.starts) + limit - now)
        return max(wait, RESOLUTION)

    def settle(
        self, started_at: float, outcome: Outcome, slow: bool
    ) -> tuple[CircuitState, str] | None:
        """A trial (started at ``started_at``) ended: where the breaker moves, and why.

        None when it stays HALF_OPEN: the trial was given back (its slot is
        free again) or succeeded with others still to succeed.
        """
        if started_at in self.starts:
            self.starts.remove(started_at)
        if outcome is Outcome.NEITHER:
            self.taken -= 1
            return None
        if outcome is Outcome.TIMED_OUT:
            return CircuitState.OPEN, reasons.TRIAL_OUTLASTED
        if outcome is Outcome.FAILURE:
            return CircuitState.OPEN, reasons.TRIAL_FAILED
        if slow:
            return CircuitState.OPEN, reasons.TRIAL_SLOW
        self.succeeded += 1
        if self.succeeded < self._limit:
            return None
        successes = self.succeeded
        return CircuitState.CLOSED, reasons.TRIALS_SUCCEEDED.format(successes=successes)
