"""The project's own test helpers: thin adapters over ``rxresilience.testing``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reactivex as rx
from reactivex.testing import TestScheduler

from rxresilience.testing import advance, pending_items, run

Event = tuple[float, str, Any]

pending = pending_items
run_due = advance


def record(
    scheduler: TestScheduler,
    factory: Callable[[], rx.Observable[Any]],
    *,
    subscribe_at: float = 200.0,
    dispose_at: float | None = None,
    until: float | None = None,
) -> list[Any]:
    """Subscribe at ``subscribe_at``; return the live list of (time, kind, payload).

    Errors stay exception objects, so tests compare them by identity or type,
    never by their text as RxPY's ``Recorded`` equality does.
    """
    trace = run(
        factory,
        subscribe_at=subscribe_at,
        dispose_at=dispose_at,
        until=until,
        scheduler=scheduler,
    )
    return trace.events  # type: ignore[return-value]
