"""One armed timer for many deadlines, on a scheduler whose every timer is a thread.

On ``TimeoutScheduler`` (the default) and ``NewThreadScheduler`` each timer
starts a thread: arming and cancelling one costs about 100 us, many times the
work of an operator whose source answers at once, and most such timers are
cancelled long before they are due. A :class:`SharedTimer` keeps the
deadlines of one such scheduler in a heap, with one of the scheduler's own
timers armed at the earliest: arming a deadline is a push under a lock,
cancelling it a mark, and a thread starts only when the earliest deadline
moves earlier (or the previous one has fired). At a deadline its action is
handed to the scheduler with ``scheduler.schedule``: it runs where a timer of
its own would have run, on a thread of its own, and a slow action delays no
other deadline.

Nothing keeps a thread waiting for nothing: once the last deadline is
cancelled, an armed timer more than :data:`IDLE` seconds away is re-aimed to
run out within it (so a stream of deadlines that are each cancelled at once
costs one thread per :data:`IDLE` seconds, not one each); a timer that fires
with nothing left to wait for is not re-armed.

Deadlines are counted on the scheduler's clock (``clock_of``), but on a
monotonic one where that is the wall clock (the default scheduler's): a step
of the system clock moves no pending deadline, as it moves no relative wait
of the scheduler's own timers. After ``os.fork`` the child keeps none of
the parent's deadlines: the parent's timer threads are not in the child, so
timers of their own would not fire there either (and firing them would
repeat the parent's work).

``rxr.hedge`` arms its hedges here; other operators may. Virtual-time and
event-loop schedulers are not shared (:func:`shared_timer` returns None):
their timers cost little, and a test sees exactly what is pending.
``_lease.py`` keeps its own shared timer, which renews leases in place.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import weakref
from typing import Any, TypeVar

from reactivex import abc
from reactivex.disposable import SerialDisposable

from ._clock import (
    LONGEST_WAIT,
    RESOLUTION,
    clock_of_weakly,
    deadline_clock,
    thread_scheduler,
    timers_cost_a_thread,
)
from ._weak_identity_map import WeakIdentityMap

__all__ = ["IDLE", "SharedTimer", "shared_timer"]

_log = logging.getLogger("rxresilience")

_S = TypeVar("_S")

#: Seconds an armed timer may wait once nothing is left to wait for.
IDLE = 1.0


def _nothing(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
    """What a cancelled deadline would do."""


class _Deadline(abc.DisposableBase):
    """One armed deadline; disposing it cancels it (best effort once handed
    to the scheduler, as the scheduler's own timers are)."""

    __slots__ = ("_owner", "action", "cancelled", "fired", "running", "state")

    def __init__(
        self, owner: SharedTimer, action: abc.ScheduledAction[Any], state: Any
    ) -> None:
        self._owner = owner
        self.action = action
        self.state = state
        self.cancelled = False
        self.fired = False  # taken off the heap, to be handed to the scheduler
        self.running: abc.DisposableBase | None = None  # what the scheduler returned

    def dispose(self) -> None:
        self._owner.cancel(self)


class SharedTimer:
    """The deadlines of one scheduler, behind one of its timers (see the module).

    Args:
        scheduler: a real-clock scheduler; held weakly (each deadline's owner
            holds it, and so does the armed timer).
        idle: the most seconds the armed timer waits once nothing is pending.
    """

    __slots__ = (
        "__weakref__",
        "_armed",
        "_clock",
        "_far",
        "_heap",
        "_idle",
        "_live",
        "_lock",
        "_order",
        "_scheduler",
        "_timer",
    )

    def __init__(self, scheduler: abc.SchedulerBase, *, idle: float = IDLE) -> None:
        self._scheduler = weakref.ref(scheduler)
        # The scheduler held weakly too; never the wall clock (see the module).
        self._clock = deadline_clock(clock_of_weakly(scheduler))
        self._idle = idle
        self._reset()

    def _reset(self) -> None:
        # The scheduler's timer is armed under the lock, so that two threads
        # arming at once cannot leave the later timer in place of the earlier;
        # an RLock, for a scheduler that runs a due action at once.
        self._lock = threading.RLock()
        # (deadline, arming order, entry): ties fire in the order they were armed.
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._live = 0  # entries in the heap not cancelled
        self._order = itertools.count()
        self._timer = SerialDisposable()
        self._armed: float | None = None  # what the armed timer aims at
        # It was armed more than ``idle`` ahead: idle down once nothing is left.
        self._far = False

    def schedule_relative(
        self, duetime: float, action: abc.ScheduledAction[_S], state: _S | None = None
    ) -> abc.DisposableBase:
        """Hand ``action(scheduler, state)`` to the scheduler in ``duetime``
        seconds; dispose the result to cancel it. Raises what the scheduler
        raises when it cannot arm its timer (nothing is then armed)."""
        if not duetime > 0.0:  # one comparison on the usual path
            if duetime != duetime:
                raise ValueError("duetime must be a number of seconds, got nan")
            duetime = 0.0
        now = self._clock()
        due = now + duetime
        entry = _Deadline(self, action, state)
        with self._lock:
            heap = self._heap
            heapq.heappush(heap, (due, next(self._order), entry))
            self._live += 1
            if len(heap) > 64 and len(heap) > 2 * self._live:
                self._sweep()
            armed = self._armed
            if armed is not None and armed <= due:
                return entry  # the armed timer comes first, and re-arms for this
            while heap[0][2].cancelled:  # stale: never aim at one (this entry is live)
                heapq.heappop(heap)
            try:
                self._arm(heap[0][0], now)
            except BaseException:
                entry.cancelled = True
                self._live -= 1
                raise
        return entry

    def cancel(self, entry: _Deadline) -> None:
        """Cancel ``entry`` (what disposing it does)."""
        with self._lock:
            if entry.cancelled:
                return
            entry.cancelled = True
            if not entry.fired:
                # Let the action's owner go now, not when the entry is swept.
                entry.action = _nothing
                entry.state = None
                self._live -= 1
                if not self._live:
                    self._heap.clear()  # all stale: let their owners go
                    if self._far:
                        self._idle_down()
        # Without the lock: the firing thread sets ``running`` and then looks
        # at ``cancelled``; this thread did the reverse: one of them disposes it.
        running = entry.running
        if running is not None:
            running.dispose()

    def pending(self) -> int:
        """How many deadlines are armed and not yet due (nor cancelled)."""
        with self._lock:
            return self._live

    def armed(self) -> float | None:
        """The deadline the scheduler's timer is armed for, None when none is."""
        with self._lock:
            return self._armed

    def _arm(self, due: float, now: float) -> None:
        """Aim the scheduler's timer at ``due`` (lock held)."""
        scheduler = self._scheduler()
        if scheduler is None:  # gone: so are the owners of every deadline
            self._heap.clear()
            self._live = 0
            self._armed = None
            return
        # Beyond TIMEOUT_MAX a thread timer overflows; it re-arms when it fires.
        wait = min(max(0.0, due - now), LONGEST_WAIT)
        self._timer.disposable = scheduler.schedule_relative(wait, self._fire)
        self._armed = due
        self._far = wait > self._idle

    def _idle_down(self) -> None:
        """Nothing is pending: let the armed timer run out soon (lock held)."""
        armed = self._armed
        now = self._clock()
        if armed is None or armed - now <= self._idle:
            return
        try:
            self._arm(now + self._idle, now)
        except Exception:  # it stays armed for later: harmless, if late to go
            _log.exception("re-aiming the shared timer raised")

    def _sweep(self) -> None:
        """Drop the cancelled entries (lock held)."""
        self._heap = [item for item in self._heap if not item[2].cancelled]
        heapq.heapify(self._heap)

    def _fire(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        now = self._clock()
        due: list[_Deadline] = []
        with self._lock:
            heap = self._heap
            while heap and (heap[0][2].cancelled or heap[0][0] <= now + RESOLUTION):
                entry = heapq.heappop(heap)[2]
                if not entry.cancelled:
                    entry.fired = True
                    self._live -= 1
                    due.append(entry)
            self._armed = None
            self._far = False
            if heap:
                try:
                    self._arm(heap[0][0], now)
                except Exception:  # the next arming tries again
                    _log.exception("re-arming the shared timer raised")
        scheduler = self._scheduler()
        if scheduler is None:
            return
        for entry in due:  # in deadline order, each on the scheduler
            try:
                running = scheduler.schedule(entry.action, entry.state)
            except Exception:  # one action (or its hand-over) failed: the rest go on
                _log.exception("a shared timer's action raised")
                continue
            entry.running = running
            if entry.cancelled:  # cancelled while it was being handed over
                running.dispose()


_timers: WeakIdentityMap[abc.SchedulerBase, SharedTimer] = WeakIdentityMap()


def shared_timer(scheduler: abc.SchedulerBase) -> SharedTimer | None:
    """The scheduler's shared timer, when its every timer is a thread; None for
    other schedulers (and one that cannot be weakly referenced)."""
    if scheduler is _default[0]:  # the usual case, without a weak look-up
        return _default[1]
    if not timers_cost_a_thread(scheduler):
        return None
    try:
        return _timers.setdefault(scheduler, lambda: SharedTimer(scheduler))
    except TypeError:
        return None


#: The default scheduler (``TimeoutScheduler``'s singleton, which lives as long
#: as its class) and its shared timer, found without a look-up.
_default: tuple[abc.SchedulerBase | None, SharedTimer | None] = (None, None)
_default = (thread_scheduler(), shared_timer(thread_scheduler()))


def _forget_in_child() -> None:
    """After ``os.fork``, in the child: no deadline of the parent's is armed."""
    for timer in _timers.values():  # the map's own lock is made anew first
        timer._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
