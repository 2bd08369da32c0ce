"""What a retried source's failure means: wait this long and try again, or give up."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator

from ._arguments import is_number
from ._backoff import next_delay
from ._clock import LONGEST_WAIT, RESOLUTION
from ._retry_policy import RetryEvent, RetryPolicy
from .errors import CallRefusedError
from .telemetry import _bus

__all__ = ["RetryDecisions"]

_log = logging.getLogger("rxresilience")

# A refusal that says "come back now" is waited at least this long, so a
# policy that keeps refusing with ``retry_after=0`` cannot spin the retry.
_SHORTEST_REFUSAL_WAIT = 0.001


class RetryDecisions:
    """One retry episode's answers to its failures, by the policy.

    Made at the episode's first failure and dropped when a value resets the
    episode (``reset_on_success``): it holds what the answers depend on, the
    attempts used, the backoff's delays drawn so far and the refusal waits.
    """

    __slots__ = (
        "_attempt_started",
        "_attempts",
        "_context",
        "_delays",
        "_elapsed_now",
        "_episode_start",
        "_no_delays",
        "_now",
        "_policy",
        "_refusal_waited",
        "_rng",
    )

    def __init__(
        self,
        policy: RetryPolicy,
        rng: random.Random,
        *,
        no_delays: bool,
        episode_start: float,
        now: Callable[[], float],
        elapsed_now: Callable[[], float] | None = None,
        context: object = None,
    ) -> None:
        self._policy = policy
        self._rng = rng
        self._no_delays = no_delays
        self._episode_start = episode_start  # read on elapsed_now
        self._now = now
        # max_elapsed is counted on it (never the wall clock): else on now.
        self._elapsed_now = now if elapsed_now is None else elapsed_now
        self._context = context  # the subscriber's tracing context, for telemetry
        self._attempt_started: float | None = None
        self._attempts = 0
        self._delays: Iterator[float] | None = None
        self._refusal_waited = 0.0

    def delay_after(
        self, error: Exception, attempt_started: float | None = None
    ) -> float | None:
        """The delay before the next attempt, or None to give up with ``error``.

        ``attempt_started`` is when the failed attempt began (telemetry only:
        known while someone listens).
        """
        self._attempt_started = attempt_started
        if isinstance(error, CallRefusedError):
            return self._refusal_delay(error)
        policy = self._policy
        self._attempts += 1
        attempt = self._attempts
        if policy.max_attempts is not None and attempt >= policy.max_attempts:
            return self._give_up("retry.exhausted", error, "attempts")
        should_retry = policy.retry_predicate
        if should_retry is not None and not should_retry(error):
            return self._give_up("retry.gave_up", error, "not retryable")
        delay = 0.0
        backoff = policy.backoff_policy
        if backoff is not None:
            delays = self._delays
            if delays is None:
                delays = self._delays = backoff.delays(self._rng)
            delay = next_delay(delays, backoff)
        retry_after = getattr(error, "retry_after", None)
        if is_number(retry_after) and retry_after > delay:
            if retry_after > LONGEST_WAIT:  # "in 300 years", or never: give up now
                return self._give_up("retry.exhausted", error, "never")
            delay = float(retry_after)
        if delay > LONGEST_WAIT:  # a function backoff's answer, as absurd
            return self._give_up("retry.exhausted", error, "never")
        if self._no_delays:  # rxr.testing.no_delays(): every backoff is zero
            delay = 0.0
        if not self._within_budget(delay):
            return self._give_up("retry.exhausted", error, "max_elapsed")
        if _bus.listening:
            self._report("retry.scheduled", error, attempt, delay=delay)
        if policy.on_retry is not None:
            policy.on_retry(RetryEvent(attempt, delay, error))
        return delay

    def _refusal_delay(self, refusal: CallRefusedError) -> float | None:
        """Wait out a refusal: no attempt used, the backoff left where it is."""
        wait = refusal.retry_after
        if not is_number(wait) or not wait <= LONGEST_WAIT or self._no_delays:
            # unknown, never, or no waiting allowed: end with it
            return self._give_up("retry.exhausted", refusal, "refused")
        # Never shorter than a millisecond (and never float() of -10**400).
        wait = float(wait) if wait > _SHORTEST_REFUSAL_WAIT else _SHORTEST_REFUSAL_WAIT
        policy = self._policy
        waited = self._refusal_waited + wait
        if waited > policy.max_refusal_wait + RESOLUTION:
            return self._give_up("retry.exhausted", refusal, "max_refusal_wait")
        if not self._within_budget(wait):
            return self._give_up("retry.exhausted", refusal, "max_elapsed")
        self._refusal_waited = waited
        if _bus.listening:
            self._report(
                "retry.refusal_waited", refusal, self._attempts + 1, delay=wait
            )
        if policy.on_retry is not None:
            policy.on_retry(RetryEvent(self._attempts + 1, wait, refusal, True))
        return wait

    def _give_up(self, kind: str, error: Exception, reason: str) -> float | None:
        """Report why the retry ends with ``error`` (if anyone listens): None."""
        if _bus.listening:
            refused = isinstance(error, CallRefusedError)
            attempt = self._attempts + 1 if refused else self._attempts
            self._report(kind, error, attempt, reason=reason)
        return None

    def _within_budget(self, delay: float) -> bool:
        """False when an attempt after ``delay`` would start past ``max_elapsed``."""
        budget = self._policy.max_elapsed
        if budget is None:
            return True
        elapsed = self._elapsed_now() - self._episode_start
        return elapsed + delay <= budget + RESOLUTION

    def _report(
        self,
        kind: str,
        error: Exception,
        attempt: int,
        *,
        delay: float | None = None,
        reason: str | None = None,
    ) -> None:
        """Emit one telemetry event; never fails the retry."""
        try:
            now = self._now()
            started = self._attempt_started
            refused = isinstance(error, CallRefusedError)
            _bus.emit(
                kind,
                self._policy.name,
                now,
                # A refused attempt never ran: it has no duration.
                duration=None if started is None or refused else now - started,
                attempt=attempt,
                error=error,
                attributes={"delay": delay} if reason is None else {"reason": reason},
                context=self._context,
            )
        except Exception:
            _log.exception("reporting a retry's telemetry event failed")
