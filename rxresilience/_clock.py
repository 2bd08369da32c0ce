"""Reading a scheduler's clock as float seconds, cheaply.

Virtual-time schedulers count seconds in ``clock``; schedulers that keep
RxPY's default ``now`` (the wall clock in UTC) read ``time.time()`` directly,
which costs a fraction of building a ``datetime``; any other scheduler is
asked for its ``now``. Absolute deadlines given as ``datetime`` convert with
the scheduler's ``to_seconds``, on the same scale.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from reactivex import abc
from reactivex.scheduler import VirtualTimeScheduler
from reactivex.scheduler.scheduler import Scheduler

__all__ = ["RESOLUTION", "clock_of", "seconds_now"]

#: reactivex schedulers keep time as ``datetime``: a microsecond is the finest
#: step they resolve. A deadline within this of "now" is due now; without the
#: slack a timer re-armed for a sub-microsecond remainder would fire at the
#: same instant forever.
RESOLUTION = 1e-6


def clock_of(scheduler: abc.SchedulerBase | None) -> Callable[[], float]:
    """A zero-argument clock: the scheduler's, or the real epoch clock for None."""
    if scheduler is None:
        return time.time
    if isinstance(scheduler, VirtualTimeScheduler):
        return lambda: float(scheduler.clock)
    if isinstance(scheduler, Scheduler) and type(scheduler).now is Scheduler.now:
        return time.time
    return lambda: scheduler.to_seconds(scheduler.now)


def seconds_now(scheduler: abc.SchedulerBase) -> float:
    """The scheduler's current time in seconds (virtual ticks for virtual time)."""
    return clock_of(scheduler)()
