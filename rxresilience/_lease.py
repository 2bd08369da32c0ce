"""A lease kept alive by its owner: renewed every third of its length, on a scheduler.

A lease measures how fast a *dead* owner is detected, not how long the work
may take: a live owner renews it while it works. A renewal answered "not
yours" means the lease is lost at once; a renewal that cannot reach the store
is tried again at the next tick, and the lease counts as lost only once it
has run out on the owner's own clock (by then another owner may hold it).
Used by ``rxr.idempotent`` for its claims and by sagas for their ownership.

On a scheduler whose timers each start a thread (the default
``TimeoutScheduler``), the leases share one timer (a :class:`_Keeper`):
arming and cancelling a timer per lease costs about 130 us there, more than
a whole saga of immediate steps, while most leases end long before their
first renewal; under asyncio the leases of one loop share one too (a timer
costs less there, but so does a saga). The shared timer fires at the earliest renewal due, hands
each due lease its renewal as an action of its own on the scheduler (a slow
store delays that lease alone), and, once no lease is left, fires once more
and stops. In virtual time, where a test sees exactly what is pending, and
on other schedulers, every lease keeps a timer of its own.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from reactivex import abc
from reactivex.disposable import SerialDisposable
from reactivex.scheduler.eventloop import AsyncIOScheduler

from ._child_safe_lock import ChildSafeLock
from ._clock import RESOLUTION, clock_of_weakly, timers_cost_a_thread
from ._loop_scheduler import loop_of_scheduler
from ._weak_identity_map import WeakIdentityMap

__all__ = ["Lease"]


class Lease:
    """Renews a lease until stopped; calls ``on_lost`` once if it is lost.

    Args:
        length: seconds a lease lasts from each renewal.
        until: when the lease taken now ends, on ``clock``.
        scheduler: where the renewal timer runs.
        clock: the owner's clock, in seconds.
        renew: ``renew(new_until) -> bool``: True while we hold it, False
            for "not yours"; raising means the store could not be reached.
        on_lost: called with ``"taken"`` (answered "not yours") or
            ``"lapsed"`` (renewals failed until the lease ran out).
        shared: share the scheduler's timer with its other leases; default
            on a real clock only.
        first: seconds until the first renewal; a third of ``length`` by
            default (less for a lease taken a while before it is kept).
    """

    __slots__ = (
        "_clock",
        "_keeper",
        "_length",
        "_lock",
        "_on_lost",
        "_renew",
        "_scheduler",
        "_stopped",
        "_timer",
        "until",
    )

    def __init__(
        self,
        length: float,
        until: float,
        scheduler: abc.SchedulerBase,
        clock: Callable[[], float],
        renew: Callable[[float], bool],
        on_lost: Callable[[str], None],
        *,
        shared: bool | None = None,
        first: float | None = None,
    ) -> None:
        self._length = length
        self.until = until
        self._scheduler = scheduler
        self._clock = clock
        self._renew = renew
        self._on_lost = on_lost
        self._lock = threading.Lock()
        self._stopped = False
        if shared is None:  # see the module
            shared = timers_cost_a_thread(scheduler) or isinstance(
                scheduler, AsyncIOScheduler
            )
        self._keeper = _keeper_of(scheduler) if shared else None
        # A timer of its own only without a keeper (a SerialDisposable holds a
        # lock of its own: not made for each of a thousand sagas a second).
        self._timer = None if self._keeper is not None else SerialDisposable()
        self._arm(first)

    def _arm(self, delay: float | None = None) -> None:
        wait = self._length / 3 if delay is None else delay
        if self._keeper is not None:
            self._keeper.add(self, wait)
            return
        assert self._timer is not None
        self._timer.disposable = self._scheduler.schedule_relative(wait, self._tick)

    def _tick(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        if self._stopped:
            return
        now = self._clock()
        until = now + self._length
        try:
            held = self._renew(until)
        except Exception:  # the store could not be reached: try at the next tick
            if now >= self.until - RESOLUTION:
                self._lose("lapsed")
            else:  # the last try lands on the lease's end, not past it
                self._arm(min(self._length / 3, self.until - now))
            return
        if self.stopped():  # by its owner meanwhile (or by ``renew`` itself)
            return
        if not held:
            self._lose("taken")
            return
        self.until = until
        # The next one a third of a lease after this one began, not after it
        # was answered: a call of two thirds of a lease would let it lapse.
        self._arm(self._next_delay())

    def _next_delay(self) -> float:
        """Seconds until the renewal due two thirds of a lease before
        :attr:`until` (0: it is due already)."""
        return max(0.0, self.until - self._length * 2 / 3 - self._clock())

    def _lose(self, why: str) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if self._keeper is not None:
            self._keeper.remove(self)
        elif self._timer is not None:
            self._timer.dispose()
        self._on_lost(why)

    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """Renew no more; cancels the pending timer (the lease itself stays)."""
        with self._lock:
            self._stopped = True
        if self._keeper is not None:
            self._keeper.remove(self)
        elif self._timer is not None:
            self._timer.dispose()


class _Keeper:
    """One timer for every lease of a real-clock scheduler.

    ``_due`` maps each live lease to when its renewal is due; the heap may
    also hold entries of leases since stopped or rearmed (skipped when they
    come up, and swept out once they outnumber the live ones).
    """

    __slots__ = (
        "__weakref__",
        "_armed",
        "_clock",
        "_due",
        "_heap",
        "_lock",
        "_order",
        "_timer",
        "loop",
    )

    def __init__(self, scheduler: abc.SchedulerBase) -> None:
        # The scheduler itself is not kept (the registry of keepers is keyed
        # by it, weakly): each lease holds it, and the timers go through them.
        self._clock = clock_of_weakly(scheduler)
        # Timers are armed under the lock, so that two threads arming at once
        # cannot leave the later timer in place of the earlier one; an RLock,
        # for a scheduler that runs a zero delay at once.
        self._lock = threading.RLock()
        # Strong references, as a timer of its own would hold: a lease is
        # renewed while its owner has not stopped it, referenced or not.
        self._heap: list[tuple[float, int, Lease]] = []
        self._due: dict[Lease, float] = {}
        self._order = itertools.count()
        self._timer = SerialDisposable()
        self._armed: float | None = None
        self.loop: weakref.ref[asyncio.AbstractEventLoop] | None = None

    def add(self, lease: Lease, delay: float) -> None:
        """Renew ``lease`` in ``delay`` seconds."""
        due = self._clock() + delay
        with self._lock:
            self._due[lease] = due
            heapq.heappush(self._heap, (due, next(self._order), lease))
            if len(self._heap) > 64 and len(self._heap) > 2 * len(self._due):
                self._sweep()
            if self._armed is not None and self._armed <= due:
                return  # the armed timer comes first: it re-arms for this one
            self._armed = due
            self._timer.disposable = lease._scheduler.schedule_relative(
                delay, self._fire
            )

    def forget_all(self) -> None:
        """Drop every lease and the armed timer (in a forked child: both are
        the parent's)."""
        self._lock = threading.RLock()
        self._heap = []
        self._due = {}
        self._timer = SerialDisposable()
        self._armed = None

    def remove(self, lease: Lease) -> None:
        with self._lock:
            self._due.pop(lease, None)
            if not self._due:  # every entry is stale: let their owners go
                self._heap.clear()

    def _sweep(self) -> None:
        """Drop the entries of leases stopped or rearmed since (lock held)."""
        self._heap = [
            entry for entry in self._heap if self._due.get(entry[2]) == entry[0]
        ]
        heapq.heapify(self._heap)

    def _fire(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        now = self._clock()
        due: list[Lease] = []
        with self._lock:
            heap = self._heap
            while heap and heap[0][0] <= now + RESOLUTION:
                when, _, lease = heapq.heappop(heap)
                if self._due.get(lease) == when:
                    del self._due[lease]
                    due.append(lease)
            while heap and self._due.get(heap[0][2]) != heap[0][0]:
                heapq.heappop(heap)  # stale: stopped or rearmed
            self._armed = heap[0][0] if heap else None
            if self._armed is not None:
                self._timer.disposable = heap[0][2]._scheduler.schedule_relative(
                    max(0.0, self._armed - now), self._fire
                )
        for lease in due:  # each renewal on its own: a slow store delays one lease
            lease._scheduler.schedule(lease._tick)


_keepers: WeakIdentityMap[abc.SchedulerBase, _Keeper] = WeakIdentityMap()
_keepers_lock = ChildSafeLock()


#: The keepers of asyncio loops, by ``id(loop)``, held weakly: a keeper lives
#: while a lease or its armed timer (in the loop's queue) holds it, so a
#: closed loop and its keeper go together. rxr.to_async makes an
#: AsyncIOScheduler per subscription: the leases of a loop share its keeper.
_loop_keepers: weakref.WeakValueDictionary[int, _Keeper] = weakref.WeakValueDictionary()


def _keeper_of(scheduler: abc.SchedulerBase) -> _Keeper | None:
    """The scheduler's (or its loop's) shared keeper; None for a scheduler that
    cannot be weakly referenced (its leases keep timers of their own)."""
    if isinstance(scheduler, AsyncIOScheduler):
        loop = loop_of_scheduler(scheduler)
        with _keepers_lock:
            keeper = _loop_keepers.get(id(loop))
            if keeper is None or keeper.loop is None or keeper.loop() is not loop:
                keeper = _Keeper(scheduler)
                keeper.loop = weakref.ref(loop)
                _loop_keepers[id(loop)] = keeper
            return keeper
    try:
        return _keepers.setdefault(scheduler, lambda: _Keeper(scheduler))
    except TypeError:
        return None


def _forget_in_child() -> None:
    """After ``os.fork``, in the child: the parent's leases are the parent's
    to renew (a child renewing them would keep a dead parent's claims alive),
    and their timers stayed behind with its threads; the child's own leases
    arm timers of their own."""
    _loop_keepers.clear()  # the parent's loops do not run here
    for keeper in _keepers.values():
        keeper.forget_all()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
