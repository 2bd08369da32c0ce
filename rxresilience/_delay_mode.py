"""The switch behind ``rxr.testing.no_delays()``: zero every retry delay.

A context variable (thread- and task-local) plus a process-wide flag, read
by ``rxr.retry`` when a subscription starts.
"""

from __future__ import annotations

import contextvars

__all__ = ["NO_DELAYS", "delays_disabled", "set_process_no_delays"]

NO_DELAYS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "rxresilience_no_delays", default=False
)
_process_wide = False


def set_process_no_delays(enabled: bool) -> None:
    global _process_wide
    _process_wide = bool(enabled)


def delays_disabled() -> bool:
    return _process_wide or NO_DELAYS.get()
