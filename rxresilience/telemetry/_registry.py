"""Names of live policies: checked once, warned about when two share one, and
the breakers whose last known state the gauges report.

A stateful policy (a breaker, a rate limiter, a bulkhead) registers itself
when it is made. Two live ones of the same kind sharing a name merge their
series on every dashboard, so the second one warns, once per kind and name
(``RuntimeWarning``). Default names (``"circuit-breaker"``, ...) are not
warned about: leaving a name out says the series do not matter. Policy
*values* (``RetryPolicy``, ``TimeoutPolicy``, ...) are not registered: they
are often rebuilt per call under one name, which is one policy.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Protocol

from .._arguments import require_name
from .._child_safe_lock import ChildSafeLock

__all__ = [
    "StateReporting",
    "breaker_state_names",
    "breaker_states",
    "register",
    "require_policy_name",
    "track_breaker",
]


class StateReporting(Protocol):
    """What a breaker registers for the state gauges: no I/O in either call."""

    @property
    def name(self) -> str: ...

    def last_known_state(self) -> str: ...


def require_policy_name(argument: str, value: object) -> str:
    """``value`` as a policy's name, or ``TypeError`` (not a string) /
    ``ValueError`` (empty, with NUL, not UTF-8: no exporter could write it,
    and one such name would break a whole Prometheus scrape) naming
    ``argument``."""
    return require_name(argument, value)


_lock = ChildSafeLock()
_live: dict[tuple[str, str], weakref.WeakSet[object]] = {}
_warned: set[tuple[str, str]] = set()
_breakers: weakref.WeakSet[StateReporting] = weakref.WeakSet()
#: Names noted before ``_live`` is swept of the names nothing lives under
#: any more (per-tenant names come and go; the sweep keeps it as large as
#: what lives, in amortised constant time).
_sweep_at = 1024


def register(
    kind: str, name: str, owner: object, *, default: str, stacklevel: int = 3
) -> None:
    """Note that ``owner`` (weakly referenced) is a live ``kind`` named ``name``;
    warn once when another live one already has that name (``stacklevel`` as
    ``warnings.warn`` counts it: 2 points at the caller of ``register``)."""
    if name == default:
        return
    global _sweep_at
    key = (kind, name)
    with _lock:
        live = _live.get(key)
        if live is None:
            if len(_live) >= _sweep_at:
                for gone in [k for k, owners in _live.items() if not owners]:
                    del _live[gone]
                    _warned.discard(gone)
                _sweep_at = max(1024, 2 * len(_live))
            live = _live[key] = weakref.WeakSet()
        shared = bool(live) and key not in _warned
        if shared:
            _warned.add(key)
        live.add(owner)
    if shared:
        warnings.warn(
            f"two live {kind}s are named {name!r}: their telemetry series "
            f"(events, durations, states) are merged; give each its own name",
            RuntimeWarning,
            stacklevel=stacklevel,
        )


#: Every state a tracked breaker can report, as the gauges label them (told by
#: the breakers: telemetry, the ground floor, imports no policy).
_state_names: tuple[str, ...] = ()


def track_breaker(breaker: StateReporting, states: tuple[str, ...]) -> None:
    """Report ``breaker``'s last known state, one of ``states``, on the gauges
    while it lives."""
    global _state_names
    with _lock:
        _breakers.add(breaker)
        if not set(states) <= set(_state_names):
            _state_names = (
                *_state_names,
                *(s for s in states if s not in _state_names),
            )


def breaker_state_names() -> tuple[str, ...]:
    """Every state a tracked breaker can be in."""
    return _state_names


def breaker_states() -> list[tuple[str, str]]:
    """``(name, last known state)`` of every live breaker, without any I/O."""
    with _lock:
        breakers = list(_breakers)
    states = []
    for breaker in breakers:
        try:
            states.append((breaker.name, breaker.last_known_state()))
        except Exception:  # a breaker being torn down: it is simply not reported
            continue
    return states
