"""Time has one owner: which scheduler a timer runs on, and how its clock is read.

Every time-based part of the library asks this module, and only this module:

- :func:`choose_scheduler` picks where an operator's timers run: the
  operator's own ``scheduler`` argument, else the scheduler given to
  ``subscribe``, else ``TimeoutScheduler`` (RxPY's rule for ``timeout`` and
  ``delay``).
- :func:`clock_of` reads a scheduler's clock as float seconds, cheaply.
  Virtual-time schedulers count seconds in ``clock``; schedulers that keep
  RxPY's default ``now`` (the wall clock in UTC) read ``time.time()``
  directly, which costs a fraction of building a ``datetime``; any other
  scheduler is asked for its ``now``. ``None`` is the real clock, the same
  one ``TimeoutScheduler`` keeps. Absolute deadlines given as ``datetime``
  convert with the scheduler's ``to_seconds``, on the same scale.
- :data:`LONGEST_WAIT` is the longest wait a timer can be armed for.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime

from reactivex import abc
from reactivex.scheduler import (
    NewThreadScheduler,
    TimeoutScheduler,
    VirtualTimeScheduler,
)
from reactivex.scheduler.scheduler import Scheduler

__all__ = [
    "LONGEST_WAIT",
    "RESOLUTION",
    "choose_scheduler",
    "clock_of",
    "clock_of_weakly",
    "is_virtual",
    "seconds_now",
]

#: reactivex schedulers keep time as ``datetime``: a microsecond is the finest
#: step they resolve. A deadline within this of "now" is due now; without the
#: slack a timer re-armed for a sub-microsecond remainder would fire at the
#: same instant forever.
RESOLUTION = 1e-6

#: The longest wait a timer can be armed for, in seconds (about 292 years):
#: thread timers raise ``OverflowError`` beyond it, on the timer's own thread,
#: where nobody hears it. A duration argument beyond it is refused; a wait
#: beyond it that arrives at run time (a ``Retry-After``) means "never".
LONGEST_WAIT: float = threading.TIMEOUT_MAX

#: ``TimeoutScheduler.singleton()``, looked up once. The singleton lives as long
#: as its class (a weak dictionary keyed by the class holds it) and keeps no
#: state of its own (each timer is a fresh ``threading.Timer``), so the same
#: object serves every subscription and both sides of an ``os.fork``. Asking
#: ``singleton()`` per subscription costs a lock and a weak-dictionary look-up
#: (about 0.4 us), and that class-wide lock could be held by another thread at
#: the instant of a fork, leaving a child that asks again blocked forever.
_TIMEOUT_SCHEDULER: abc.SchedulerBase = TimeoutScheduler.singleton()


def choose_scheduler(
    own: abc.SchedulerBase | None, subscribed: abc.SchedulerBase | None
) -> abc.SchedulerBase:
    """The scheduler a subscription's timers run on: ``own``, else ``subscribed``,
    else ``TimeoutScheduler``."""
    if own is not None:
        return own
    if subscribed is not None:
        return subscribed
    return _TIMEOUT_SCHEDULER


def clock_of(scheduler: abc.SchedulerBase | None) -> Callable[[], float]:
    """A zero-argument clock: the scheduler's, or the real epoch clock for None."""
    if scheduler is None:
        return time.time
    if isinstance(scheduler, VirtualTimeScheduler):
        if isinstance(scheduler.clock, int | float):  # TestScheduler: seconds
            return lambda: float(scheduler.clock)
        # HistoricalScheduler keeps a datetime: its seconds since the epoch
        # (a naive one read as UTC, as RxPY's own arithmetic on it does).
        return lambda: scheduler.to_seconds(_aware(scheduler.clock))
    if isinstance(scheduler, Scheduler) and type(scheduler).now is Scheduler.now:
        return time.time
    return lambda: scheduler.to_seconds(scheduler.now)


def deadline_clock(clock: Callable[[], float]) -> Callable[[], float]:
    """The clock to count deadlines on where ``clock`` (a :func:`clock_of`)
    reads the time: a monotonic one instead of the wall clock, so that a step
    of the system clock (NTP, a manual change) moves no deadline (the
    scheduler's timers count relative waits); ``clock`` itself otherwise."""
    return time.monotonic if clock is time.time else clock


def _aware(clock: datetime) -> datetime:
    return clock if clock.tzinfo is not None else clock.replace(tzinfo=UTC)


def clock_of_weakly(scheduler: abc.SchedulerBase) -> Callable[[], float]:
    """:func:`clock_of` for what outlives its scheduler (a shared timer, a
    registry's value): it does not keep the scheduler alive, and reads the
    real clock once the scheduler is gone."""
    clock = clock_of(scheduler)
    if clock is time.time:  # it reads no scheduler
        return clock
    try:
        reference = weakref.ref(scheduler)
    except TypeError:  # held then: nothing that registers it holds it weakly
        return clock

    def read() -> float:
        return clock_of(reference())()

    return read


def seconds_now(scheduler: abc.SchedulerBase | None = None) -> float:
    """The scheduler's current time in seconds (virtual ticks for virtual time);
    the real epoch clock for None."""
    return clock_of(scheduler)()


def thread_scheduler() -> abc.SchedulerBase:
    """A real-clock scheduler whose actions run on threads of their own: for
    timed work that may block (a journal's renewal under asyncio)."""
    return _TIMEOUT_SCHEDULER


def timers_cost_a_thread(scheduler: abc.SchedulerBase | None) -> bool:
    """True for a scheduler whose every timer starts a thread
    (``TimeoutScheduler``, ``NewThreadScheduler``, ``ThreadPoolScheduler``)."""
    return isinstance(scheduler, TimeoutScheduler | NewThreadScheduler)


def is_virtual(scheduler: abc.SchedulerBase | None) -> bool:
    """True for a virtual-time scheduler (``TestScheduler``, ``HistoricalScheduler``)."""
    return isinstance(scheduler, VirtualTimeScheduler)
