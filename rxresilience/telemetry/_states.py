"""The breaker-state gauges' readings, shared by the metric adapters."""

from __future__ import annotations

from collections import Counter

from ._registry import breaker_state_names, breaker_states

__all__ = ["state_readings"]


def state_readings() -> list[tuple[str, str, int]]:
    """``(policy, state, breakers)`` for every live breaker's name and every
    state: how many breakers of that name were last known in that state
    (1 or 0 for a breaker with a name of its own). No I/O: a shared storage's
    state as this process last saw it."""
    counts = Counter(breaker_states())
    names = sorted({name for name, _ in counts})
    states = breaker_state_names()
    return [(name, state, counts[(name, state)]) for name in names for state in states]
