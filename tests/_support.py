"""Small helpers for the project's own tests (the public toolkit comes later)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reactivex as rx
from reactivex.scheduler import VirtualTimeScheduler
from reactivex.testing import TestScheduler

Event = tuple[float, str, Any]


def record(
    scheduler: TestScheduler,
    factory: Callable[[], rx.Observable[Any]],
    *,
    subscribe_at: float = 200.0,
    dispose_at: float | None = None,
    until: float | None = None,
) -> list[Event]:
    """Subscribe at ``subscribe_at`` and return (time, kind, payload) events.

    Errors stay exception objects, so tests compare them by identity or type,
    never by their text as RxPY's ``Recorded`` equality does.
    """
    events: list[Event] = []
    subscription: list[Any] = []

    def subscribe(*_: Any) -> None:
        subscription.append(
            factory().subscribe(
                on_next=lambda v: events.append((scheduler.clock, "next", v)),
                on_error=lambda e: events.append((scheduler.clock, "error", e)),
                on_completed=lambda: events.append(
                    (scheduler.clock, "completed", None)
                ),
                scheduler=scheduler,
            )
        )

    scheduler.schedule_absolute(subscribe_at, subscribe)
    if dispose_at is not None:
        scheduler.schedule_absolute(dispose_at, lambda *_: subscription[0].dispose())
    if until is None:
        VirtualTimeScheduler.start(scheduler)
    elif until > scheduler.clock:
        scheduler.advance_to(until)
    else:
        run_due(scheduler)  # advance_to(now) would run nothing at all
    return events


def run_due(scheduler: VirtualTimeScheduler) -> None:
    """Run the items due at the current virtual time, without moving the clock."""
    queue = scheduler._queue
    while queue and queue.peek().duetime <= scheduler.now:
        item = queue.dequeue()
        if not item.is_cancelled():
            item.invoke()


def pending(scheduler: VirtualTimeScheduler) -> list[Any]:
    """The scheduler's queued items that are not cancelled."""
    return [item for item, _ in scheduler._queue.items if not item.is_cancelled()]
