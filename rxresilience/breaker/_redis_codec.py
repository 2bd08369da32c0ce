"""How ``RedisBreakerStorage`` talks to its Lua scripts: keys, arguments, replies.

Every script replies with one bulk string: ``gen<TAB>state<TAB>fields...``,
then one line per transition the caller has not seen, newest first, each
``gen<TAB>previous<TAB>current<TAB>at<TAB>reason`` (see
``redis_prelude.lua``). Times go to Lua as ``repr`` of a float and come back
as text Lua wrote with ``%.17g`` (or as the caller wrote it), so they read
back exactly.
"""

from __future__ import annotations

import re

from ._permit import Permit
from ._types import (
    BreakerConfig,
    BreakerMetrics,
    CircuitState,
    Outcome,
    Refusal,
    StateChange,
    window_rates,
)
from ._window import CountWindow, TimeWindow

__all__ = [
    "RedisPermit",
    "is_window_key",
    "keys",
    "metrics_of",
    "parse_change",
    "permit_or_refusal",
    "record_args",
    "split_reply",
    "window_shape",
]

_OUTCOME_CODES = {
    Outcome.SUCCESS: "s",
    Outcome.FAILURE: "f",
    Outcome.NEITHER: "n",
    Outcome.TIMED_OUT: "t",
}

# The end of a window key: its shape (see window_shape).
_WINDOW_SHAPE = re.compile(r"count:[0-9]+|time:[^:{}]+:[0-9]+|none")


class RedisPermit(Permit):
    """A permit Redis handed out; a trial's carries the id Redis holds it under."""

    __slots__ = ("key",)

    def __init__(self, generation: int, key: str, started_at: float) -> None:
        super().__init__(generation, bool(key), started_at)
        self.key = key


# -- keys -------------------------------------------------------------------------------


def window_shape(window: CountWindow | TimeWindow | None) -> str:
    """The window's shape as its key ends: processes with another never share it."""
    if isinstance(window, CountWindow):
        return f"count:{window.size}"
    if isinstance(window, TimeWindow):
        return f"time:{window.seconds!r}:{window.bucket_count}"
    return "none"


def keys(base: str, config: BreakerConfig) -> list[str]:
    """The ``KEYS`` of every script: the state, permits, log and window."""
    return [
        base,
        f"{base}:permits",
        f"{base}:log",
        f"{base}:window:{window_shape(config.window)}",
    ]


def is_window_key(suffix: str) -> bool:
    """Whether ``suffix`` (what follows ``{base}:window:``) is a window's shape."""
    return _WINDOW_SHAPE.fullmatch(suffix) is not None


# -- arguments ----------------------------------------------------------------------------


def record_args(
    permit: RedisPermit, outcome: Outcome, now: float, config: BreakerConfig | None
) -> tuple[int, str, str, str]:
    """The record script's own arguments: generation, permit id, outcome, slow."""
    limit = None if config is None else config.slow_call_duration
    slow = (
        limit is not None
        and outcome is not Outcome.NEITHER
        and now - permit.started_at >= limit
    )
    return permit.generation, permit.key, _OUTCOME_CODES[outcome], "1" if slow else "0"


# -- replies ------------------------------------------------------------------------------


def split_reply(reply: str) -> tuple[list[str], list[str]]:
    """A reply's fields (generation, state, the script's own) and its log lines."""
    head, *changes = reply.split("\n")
    return head.split("\t"), changes


def parse_change(line: str) -> tuple[int, StateChange]:
    """A log line: the generation it started, and the transition."""
    entry, previous, current, at, reason = line.split("\t", 4)
    change = StateChange(
        CircuitState(previous), CircuitState(current), float(at), reason
    )
    return int(entry), change


def permit_or_refusal(fields: list[str], now: float) -> Permit | Refusal:
    """The acquire script's answer."""
    if fields[2] == "permit":
        return RedisPermit(int(fields[3]), fields[4], now)
    wait = fields[3]
    return Refusal(float(wait) if wait else None, CircuitState(fields[4]))


def metrics_of(fields: list[str], config: BreakerConfig | None) -> BreakerMetrics:
    """The read script's answer (asked with the window's totals)."""
    successes, failures, slow, ignored, rejected, consecutive = (
        int(value) for value in fields[3:9]
    )
    calls, failed, slow_calls = (int(value) for value in fields[9:12])
    failure_rate: float | None = None
    slow_rate: float | None = None
    if config is not None:
        failure_rate, slow_rate = window_rates(config, calls, failed, slow_calls)
    return BreakerMetrics(
        state=CircuitState(fields[1]),
        calls=successes + failures,
        successes=successes,
        failures=failures,
        slow_calls=slow,
        ignored=ignored,
        rejected=rejected,
        consecutive_failures=consecutive,
        window_calls=calls,
        failure_rate=failure_rate,
        slow_call_rate=slow_rate,
    )
