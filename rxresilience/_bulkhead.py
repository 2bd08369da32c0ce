"""``rxr.Bulkhead``: a concurrency limit shared by many pipelines, with a FIFO queue."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Protocol

from ._arguments import require_count, require_duration, require_name
from .errors import BulkheadFullError
from .telemetry._registry import register, require_policy_name

__all__ = ["Bulkhead", "BulkheadMetrics", "Waiter"]

_log = logging.getLogger("rxresilience")

_QUEUE_FULL = "queue full"
_WAIT_EXCEEDED = "wait exceeded"


class Waiter(Protocol):
    """A call that may wait for a slot: the bulkhead starts it when one is its."""

    def start(self) -> None:
        """Begin the call; it now holds a slot, which it gives back with
        :meth:`Bulkhead.leave`."""


@dataclass(frozen=True, slots=True)
class BulkheadMetrics:
    """A frozen snapshot of a bulkhead's counters.

    Every call that entered is counted once: ``admitted`` (it got a slot, at
    once or from the queue), ``rejected`` (refused: the queue was full or its
    wait ran out), or it is still ``queued``, or it left the queue (disposed)
    before a slot was free, which no counter records.

    Attributes:
        active: calls holding a slot now (at most ``max_concurrent``).
        queued: calls waiting for a slot now.
        admitted: calls that got a slot, since creation.
        rejected: calls refused, since creation.
        max_concurrent: the bulkhead's limit.
    """

    active: int
    queued: int
    admitted: int
    rejected: int
    max_concurrent: int


class Bulkhead:
    """At most ``max_concurrent`` calls at once, shared by every pipeline that uses it.

    Guard an observable with :func:`rxresilience.bulkhead`: one subscription
    is one call, holding a slot from its subscription to the source until the
    source completes, errors or is disposed. A call that finds every slot
    taken waits in a first-in, first-out queue, without blocking any thread,
    and starts when a slot frees; when ``max_queue`` calls already wait, or
    its wait exceeds ``max_wait`` seconds, it is refused with
    :class:`~rxresilience.BulkheadFullError` (``retry_after`` is ``None``:
    load is shed, so a retry outside gives up at once).

    The defaults are Polly's: no queue (``max_queue=0``, as Polly's
    concurrency limiter's ``QueueLimit`` and its v7 bulkhead's
    ``maxQueuingActions``; resilience4j's ``maxWaitDuration=0`` likewise
    refuses at once), and a queued call waits as long as it takes
    (``max_wait=None``). ``max_concurrent`` has no default: no number suits
    every service. ``max_wait=0`` allows no wait at all (a call that finds
    every slot taken is refused at once, as with ``max_queue=0``).

    A bulkhead keeps no clock: ``max_wait`` is timed per subscription, on the
    operator's scheduler (its ``scheduler`` argument, else the subscribe-time
    scheduler, else ``TimeoutScheduler``).

    A slot is handed straight from the call that frees it to the first
    waiter, which is started on the thread that freed it, by a drain loop:
    waiters whose sources end at once inside their own subscription are
    started one after another, in constant stack. Thread-safe: the lock is
    held for bookkeeping only, never while a call starts or runs.

    Your own calls (outside Rx) take part through :meth:`enter` and
    :meth:`leave` with an object that has a ``start()`` method.

    The operator reports telemetry events under the bulkhead's ``name``
    (``bulkhead.queued``, ``bulkhead.rejected``; see
    :func:`rxresilience.telemetry.events`), timed on its scheduler's clock;
    calls made through :meth:`enter` are counted in :meth:`metrics` only.

    Examples:
        >>> bulkhead = Bulkhead(max_concurrent=10, max_queue=100, name="inventory")
        >>> bulkhead.metrics()
        BulkheadMetrics(active=0, queued=0, admitted=0, rejected=0, max_concurrent=10)

    Args:
        max_concurrent: calls that may hold a slot at once (an int >= 1).
        max_queue: calls that may wait for a slot (an int >= 0); more are
            refused with reason ``"queue full"``.
        max_wait: seconds a call may wait for a slot before it is refused
            with reason ``"wait exceeded"``; ``None`` for no bound.
        name: a name for errors, logs and telemetry events (two live
            bulkheads given one name merge their series: the second warns,
            once, with a ``RuntimeWarning``).

    Raises:
        TypeError: a count that is not an int (a ``bool`` or a float
            included), a ``max_wait`` that is not a number, a ``name`` that
            is not a string.
        ValueError: ``max_concurrent < 1``, ``max_queue < 0``, a
            ``max_wait`` that is negative, NaN, infinite or above
            ``LONGEST_WAIT`` (about 292 years), an empty name (or one
            that is not UTF-8 text).
    """

    __slots__ = (
        "__weakref__",
        "_active",
        "_admitted",
        "_lock",
        "_max_concurrent",
        "_max_queue",
        "_max_wait",
        "_name",
        "_queue",
        "_rejected",
    )

    def __init__(
        self,
        max_concurrent: int,
        max_queue: int = 0,
        max_wait: float | None = None,
        *,
        name: str = "bulkhead",
    ) -> None:
        self._max_concurrent = require_count("max_concurrent", max_concurrent)
        self._max_queue = require_count("max_queue", max_queue, minimum=0)
        self._max_wait = (
            None if max_wait is None else require_duration("max_wait", max_wait)
        )
        self._name = require_name("name", require_policy_name("name", name))
        register("bulkhead", name, self, default="bulkhead", stacklevel=3)
        self._lock = threading.Lock()
        # Both keyed by id(): a waiter is itself, whatever its __eq__ says, and
        # is kept alive while it is here, so its id cannot be reused meanwhile.
        # The calls holding a slot: membership makes giving one back idempotent.
        self._active: dict[int, Waiter] = {}
        # The waiters in arrival order; any of them may leave in O(1).
        self._queue: OrderedDict[int, Waiter] = OrderedDict()
        self._admitted = 0
        self._rejected = 0

    @property
    def max_concurrent(self) -> int:
        """Calls that may hold a slot at once."""
        return self._max_concurrent

    @property
    def max_queue(self) -> int:
        """Calls that may wait for a slot."""
        return self._max_queue

    @property
    def max_wait(self) -> float | None:
        """Seconds a call may wait for a slot, or ``None`` for no bound."""
        return self._max_wait

    @property
    def name(self) -> str:
        """The name errors, logs and telemetry events give."""
        return self._name

    def enter(self, waiter: Waiter) -> bool | BulkheadFullError:
        """Ask for a slot for ``waiter``.

        Returns:
            ``True``: ``waiter`` holds a slot now (start the call yourself).
            ``False``: it waits in the queue; the bulkhead calls its
            ``start()`` when a slot is its, on the thread that freed it.
            A :class:`~rxresilience.BulkheadFullError`: refused (counted).
        """
        with self._lock:
            active = self._active
            # A slot is only ever free while nobody waits: a freed slot goes
            # to the first waiter, so a newcomer never overtakes the queue.
            if len(active) < self._max_concurrent:
                active[id(waiter)] = waiter
                self._admitted += 1
                return True
            queue = self._queue
            if self._max_wait != 0.0 and len(queue) < self._max_queue:
                queue[id(waiter)] = waiter
                return False
            self._rejected += 1
        # With max_wait=0 nobody ever waits: a queue there is refused by the wait.
        waits = self._max_wait == 0.0 and self._max_queue
        reason = _WAIT_EXCEEDED if waits else _QUEUE_FULL
        return BulkheadFullError(self._name, reason)

    def leave(self, waiter: Waiter) -> None:
        """``waiter`` is done: its slot (if it holds one) goes to the first
        waiter, started on this thread; its place in the queue (if it waits)
        is given up. Idempotent: a second call does nothing."""
        key = id(waiter)
        with self._lock:
            active = self._active
            if key not in active:
                self._queue.pop(key, None)
                return
            del active[key]
            queue = self._queue
            if not queue:
                return
            successor_key, successor = queue.popitem(last=False)
            active[successor_key] = successor
            self._admitted += 1
        _start(self._name, successor)

    def expire(self, waiter: Waiter) -> BulkheadFullError | None:
        """``waiter``'s wait ran out: if it still waits, it leaves the queue
        and the refusal to give it is returned (counted); ``None`` if a slot
        was handed to it first, or it left."""
        with self._lock:
            if self._queue.pop(id(waiter), None) is None:
                return None
            self._rejected += 1
        return BulkheadFullError(self._name, _WAIT_EXCEEDED)

    def metrics(self) -> BulkheadMetrics:
        """A frozen snapshot of the counters, taken at one instant."""
        with self._lock:
            return BulkheadMetrics(
                active=len(self._active),
                queued=len(self._queue),
                admitted=self._admitted,
                rejected=self._rejected,
                max_concurrent=self._max_concurrent,
            )

    def __repr__(self) -> str:
        return (
            f"Bulkhead(name={self._name!r}, max_concurrent={self._max_concurrent}, "
            f"max_queue={self._max_queue}, max_wait={self._max_wait!r})"
        )


class _Handovers(threading.local):
    """The waiters handed a slot on this thread and not started yet, while a
    drain loop runs on it (``None`` when none does)."""

    pending: deque[tuple[str, Waiter]] | None = None


_handovers = _Handovers()


def _start(name: str, waiter: Waiter) -> None:
    """Start ``waiter``, which now holds a slot, from this thread's drain loop.

    A waiter whose source ends inside its own subscription frees its slot
    there, re-entrantly, and the next waiter is handed it: that start is
    queued for the loop already running here, so ten thousand such waiters
    take one stack frame each in turn, never ten thousand nested.
    """
    local = _handovers
    pending = local.pending
    if pending is not None:
        pending.append((name, waiter))
        return
    pending = local.pending = deque([(name, waiter)])
    stopping: BaseException | None = None
    try:
        while pending:
            name, waiter = pending.popleft()
            try:
                waiter.start()
            except Exception:
                # Raised by the waiter's own subscriber (its on_error, say, as a
                # source failed at once): it belongs to that subscriber, never to
                # the call whose end freed the slot, on whose stack we run.
                _log.exception(
                    "a call queued in bulkhead %r raised as it started", name
                )
            except BaseException as error:  # KeyboardInterrupt, SystemExit
                # It goes on once the waiters handed a slot here are started:
                # left in the queue, each would hold its slot for good.
                if stopping is None:
                    stopping = error
    finally:
        local.pending = None
    if stopping is not None:
        raise stopping
