"""How ``RedisBreakerStorage`` talks to its Lua scripts: keys, arguments, replies.

Every script is called with ``now``, the generation and epoch the caller
last saw, and a fresh epoch for Redis to stamp if the state has none (see
``redis_prelude.lua``), then its own arguments. It replies with one bulk
string: ``epoch<TAB>gen<TAB>state<TAB>fields...`` (the epoch empty when it is
the one the caller sent), then one line per transition the caller has not
seen, newest first, each ``gen<TAB>previous<TAB>current<TAB>at<TAB>reason``.
Times go to Lua as ``repr`` of a float and come back as text Lua wrote with
``%.17g`` (or as the caller wrote it), so they read back exactly.
"""

from __future__ import annotations

import re
from typing import NamedTuple

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
    "Reply",
    "is_window_key",
    "keys",
    "metrics_of",
    "parse_change",
    "parse_reply",
    "permit_or_refusal",
    "record_args",
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
    """A permit Redis handed out, with the epoch of the state that admitted it;
    a trial's carries the id Redis holds it under."""

    __slots__ = ("epoch", "key")

    def __init__(
        self, epoch: str, generation: int, key: str, started_at: float
    ) -> None:
        super().__init__(generation, bool(key), started_at)
        self.epoch = epoch
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
) -> tuple[str, int, str, str, str]:
    """The record script's own arguments: epoch, generation, permit id, outcome, slow."""
    limit = None if config is None else config.slow_call_duration
    slow = (
        limit is not None
        and outcome is not Outcome.NEITHER
        and now - permit.started_at >= limit
    )
    code = _OUTCOME_CODES[outcome]
    return permit.epoch, permit.generation, permit.key, code, "1" if slow else "0"


# -- replies ------------------------------------------------------------------------------


class Reply(NamedTuple):
    """A script's reply: the state's epoch and generation, its state, the
    script's own fields, and the log lines the caller has not seen."""

    epoch: str
    generation: int
    state: CircuitState
    fields: list[str]
    changes: list[str]


def parse_reply(text: str, sent_epoch: str) -> Reply:
    """A script's reply to a caller that sent ``sent_epoch``."""
    head, *changes = text.split("\n")
    epoch, generation, state, *fields = head.split("\t")
    return Reply(
        epoch or sent_epoch, int(generation), CircuitState(state), fields, changes
    )


def parse_change(line: str) -> tuple[int, StateChange]:
    """A log line: the generation it started, and the transition."""
    entry, previous, current, at, reason = line.split("\t", 4)
    change = StateChange(
        CircuitState(previous), CircuitState(current), float(at), reason
    )
    return int(entry), change


def permit_or_refusal(reply: Reply, now: float) -> Permit | Refusal:
    """The acquire script's answer."""
    kind, detail, more = reply.fields
    if kind == "permit":  # detail: the generation; more: a trial's id
        return RedisPermit(reply.epoch, int(detail), more, now)
    # detail: the wait, if known; more: the state that refused
    return Refusal(float(detail) if detail else None, CircuitState(more))


def metrics_of(reply: Reply, config: BreakerConfig | None) -> BreakerMetrics:
    """The read script's answer (asked with the window's totals)."""
    fields = reply.fields
    successes, failures, slow, ignored, rejected, consecutive = (
        int(value) for value in fields[1:7]
    )
    calls, failed, slow_calls = (int(value) for value in fields[7:10])
    failure_rate: float | None = None
    slow_rate: float | None = None
    if config is not None:
        failure_rate, slow_rate = window_rates(config, calls, failed, slow_calls)
    return BreakerMetrics(
        state=reply.state,
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
