"""Why a breaker changed state, in words: defined here once, for Python and Lua.

The in-memory machine formats these texts with :meth:`str.format`; the Redis
storage renders each into its Lua scripts when it is bound (see
:mod:`rxresilience.breaker._redis_scripts`), a text as a Lua string, a text
with fields as a Lua function of a table holding them. A change here changes
both machines, and their differential test keeps them in step.

Fields take no format spec or conversion (Lua could not apply it): a rate
reaches the text already formatted by :func:`rate_text`.
"""

from __future__ import annotations

from ._types import BreakerConfig

__all__ = [
    "CONSECUTIVE_FAILURES",
    "DISABLED",
    "FAILURE_RATE",
    "FORCED_OPEN",
    "MACHINE_REASONS",
    "RESET",
    "RESET_TIMEOUT_ELAPSED",
    "SLOW_CALL_RATE",
    "STATE_LOST",
    "TRIALS_SUCCEEDED",
    "TRIAL_ABANDONED",
    "TRIAL_FAILED",
    "TRIAL_OUTLASTED",
    "TRIAL_SLOW",
    "TRIAL_WAIT_DIVISOR",
    "rate_reason",
    "rate_text",
    "trial_wait_cap",
]

# -- the machine's own transitions (both machines) ---------------------------------

RESET_TIMEOUT_ELAPSED = "reset timeout elapsed"
TRIAL_OUTLASTED = "trial call outlasted max_half_open_wait"
#: A fleet's trial held past ``reset_timeout`` with no ``max_half_open_wait``
#: set: the Redis storage's guard against a trial whose process is gone (in
#: one process, the breaker holds its own trials as long as they run).
TRIAL_ABANDONED = "trial call outlasted reset_timeout (no max_half_open_wait)"
TRIAL_FAILED = "trial call failed"
TRIAL_SLOW = "trial call was slow"
TRIALS_SUCCEEDED = "{successes} of {successes} trial calls succeeded"
CONSECUTIVE_FAILURES = "{failures} consecutive failures"
FAILURE_RATE = "failure rate {failures}/{calls} reached {threshold}"
SLOW_CALL_RATE = "slow call rate {slow_calls}/{calls} reached {threshold}"

#: Every reason the machines give, by name (the Lua names are ``REASON_`` + it;
#: ``TRIAL_ABANDONED`` is the Redis storage's alone).
MACHINE_REASONS: dict[str, str] = {
    "RESET_TIMEOUT_ELAPSED": RESET_TIMEOUT_ELAPSED,
    "TRIAL_OUTLASTED": TRIAL_OUTLASTED,
    "TRIAL_ABANDONED": TRIAL_ABANDONED,
    "TRIAL_FAILED": TRIAL_FAILED,
    "TRIAL_SLOW": TRIAL_SLOW,
    "TRIALS_SUCCEEDED": TRIALS_SUCCEEDED,
    "CONSECUTIVE_FAILURES": CONSECUTIVE_FAILURES,
    "FAILURE_RATE": FAILURE_RATE,
    "SLOW_CALL_RATE": SLOW_CALL_RATE,
}

# -- manual control (the breaker passes them to its storage) -------------------------

FORCED_OPEN = "forced open"
DISABLED = "disabled"
RESET = "reset"

# -- a shared storage's own ------------------------------------------------------------

#: The Redis storage found a new life of the state (deleted, flushed, or a
#: restart or failover that lost it): it publishes the move from the state it
#: knew to the new one, and forgets what it remembered of the old.
STATE_LOST = (
    "the breaker's state in Redis was lost (deleted, flushed, or a restart "
    "without persistence): following the fleet's new state"
)

# -- waits ----------------------------------------------------------------------------

#: A call refused in HALF_OPEN (every trial taken) is told to come back after
#: ``reset_timeout`` divided by this at most (sooner when the earliest running
#: trial's ``max_half_open_wait`` ends first). Lua gets the quotient, computed
#: here (:func:`trial_wait_cap`), so both machines tell the same float.
TRIAL_WAIT_DIVISOR = 10


def trial_wait_cap(reset_timeout: float) -> float:
    """The longest wait a call refused in HALF_OPEN is told."""
    return reset_timeout / TRIAL_WAIT_DIVISOR


def rate_text(rate: float) -> str:
    """A rate threshold as the reasons show it: ``0.5`` is ``"50%"``."""
    return f"{rate:.0%}"


def rate_reason(
    config: BreakerConfig, calls: int, failures: int, slow_calls: int
) -> str:
    """Why a CLOSED breaker's window opens it, or ``""`` if it does not.

    A rate is judged once the window holds ``minimum_calls`` calls; the
    failure rate first (``redis_record.lua`` judges the same way).
    """
    if calls < config.minimum_calls:
        return ""
    rate = config.failure_rate_threshold
    if rate is not None and failures / calls >= rate:
        return FAILURE_RATE.format(
            failures=failures, calls=calls, threshold=rate_text(rate)
        )
    rate = config.slow_call_rate_threshold
    if rate is not None and slow_calls / calls >= rate:
        return SLOW_CALL_RATE.format(
            slow_calls=slow_calls, calls=calls, threshold=rate_text(rate)
        )
    return ""
