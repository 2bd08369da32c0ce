"""Reading a scheduler's clock as float seconds, cheaply."""

from __future__ import annotations

import time
from collections.abc import Callable

from reactivex import abc
from reactivex.scheduler import VirtualTimeScheduler

__all__ = ["clock_of", "seconds_now"]


def seconds_now(scheduler: abc.SchedulerBase) -> float:
    """The scheduler's current time in seconds (virtual ticks for virtual time)."""
    if isinstance(scheduler, VirtualTimeScheduler):
        return float(scheduler.clock)
    return scheduler.to_seconds(scheduler.now)


def clock_of(scheduler: abc.SchedulerBase | None) -> Callable[[], float]:
    """A zero-argument clock: the scheduler's, or the real epoch clock for None."""
    if scheduler is None:
        return time.time
    if isinstance(scheduler, VirtualTimeScheduler):
        return lambda: float(scheduler.clock)
    return lambda: scheduler.to_seconds(scheduler.now)
