"""Who holds a saga: an owner token and a lease, renewed while the owner works.

The owner of a saga (a run, or a recoverer) writes a token and
``lease_until = now + lease`` into the journal when it begins or takes the
saga, and renews the lease every third of it with the shared
:class:`~rxresilience._lease.Lease` (the idempotency operator renews its
claims with the same helper). A renewal the journal answers "not yours"
means the saga was taken over: the owner is told at once and must stop. A
renewal that cannot reach the journal is tried again, every third of the
lease, for as long as the owner works: only a definite "not yours" ends the
hold (the owner's fenced writes would hear it too).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from reactivex import abc
from reactivex.scheduler.eventloop import AsyncIOScheduler

from .._clock import clock_of, thread_scheduler
from .._lease import Lease
from .._loop_scheduler import loop_of_scheduler
from ._journal import SagaJournal
from ._process_identity import new_owner_token

__all__ = ["Ownership"]

_log = logging.getLogger("rxresilience")


class Ownership:
    """One owner's hold on one saga: its token and its renewed lease.

    Args:
        journal: where the saga is (it supports ownership).
        saga_id: the saga.
        length: seconds a lease lasts from each renewal.
        scheduler: where renewals wait, and whose clock they read.
        on_taken: called once, on the renewal's thread, when the journal
            answers that another owner holds the saga.
        subscribed_on: the run's subscribe-time scheduler: when it (else
            ``scheduler``) is an asyncio loop's, the lease is renewed no more
            once that loop is closed.
    """

    __slots__ = (
        "_clock",
        "_journal",
        "_lease",
        "_length",
        "_lock",
        "_on_taken",
        "_scheduler",
        "_stopped",
        "_subscribed_on",
        "_time_scheduler",
        "owner",
        "saga_id",
    )

    def __init__(
        self,
        journal: SagaJournal,
        saga_id: str,
        length: float,
        scheduler: abc.SchedulerBase,
        on_taken: Callable[[], None],
        subscribed_on: abc.SchedulerBase | None = None,
    ) -> None:
        self.owner = new_owner_token()
        self.saga_id = saga_id
        self._journal = journal
        self._length = length
        self._clock = clock_of(scheduler)
        self._scheduler = scheduler
        self._time_scheduler = scheduler
        self._on_taken = on_taken
        # Where the run lives (read at a renewal, not here: a run begins a
        # thousand times a second and renews rarely).
        self._subscribed_on = subscribed_on
        if journal.writes_may_block and isinstance(scheduler, AsyncIOScheduler):
            # A renewal is a journal write: never on the event loop. Its timer
            # runs on a thread (the same real clock); "taken" goes back to the loop.
            loop = loop_of_scheduler(scheduler)
            self._scheduler = thread_scheduler()
            self._on_taken = lambda: _call_soon(loop, on_taken)
        self._lock = threading.Lock()
        self._stopped = False
        self._lease: Lease | None = None

    def first_lease(self) -> float:
        """When the lease of a saga begun now ends (the run writes it with its
        first batch, then calls :meth:`hold`)."""
        return self._clock() + self._length

    def take(self, stale_after: float, gone_owner: str | None = None) -> bool:
        """Take the saga if its owner is gone: its lease ended ``stale_after``
        seconds ago (or, without a lease, its last touch did), or it is still
        held by ``gone_owner``, whose process is known to be gone."""
        now = self._clock()
        until = now + self._length
        # ``gone_owner`` is passed only when there is one, so that a journal
        # written before it existed still recovers (waiting for leases).
        extra = {} if gone_owner is None else {"gone_owner": gone_owner}
        taken = self._journal.take(
            self.saga_id,
            now,
            owner=self.owner,
            lease_until=until,
            stale_before=now - stale_after,
            **extra,
        )
        if taken:
            self.hold(until)
        return taken

    def stop(self) -> None:
        """Renew no more (the lease stays in the journal until it ends)."""
        with self._lock:
            self._stopped = True
            lease, self._lease = self._lease, None
        if lease is not None:
            lease.stop()

    def hold(self, until: float) -> None:
        """Renew the lease (ending at ``until``) every third of it, until
        :meth:`stop`; the first renewal two thirds of a lease before ``until``
        (at once if that has passed: a first write answered late)."""
        self._hold(until, max(0.0, until - self._length * 2 / 3 - self._clock()))

    def _hold(self, until: float, first: float) -> None:
        with self._lock:
            if self._stopped:
                return
            self._lease = Lease(
                self._length,
                until,
                self._scheduler,
                self._clock,
                self._renew,
                self._lost,
                first=first,
            )

    def _run_loop_closed(self) -> bool:
        """Whether the run lives on an asyncio loop (its subscription's, else
        its clock's) that is closed: the run is gone with it."""
        for candidate in (self._subscribed_on, self._time_scheduler):
            if isinstance(candidate, AsyncIOScheduler):
                return loop_of_scheduler(candidate).is_closed()
        return False

    def _renew(self, until: float) -> bool:
        if self._run_loop_closed():
            # The run's loop is gone, and the run with it (its answers can no
            # longer reach it): renew no more, so that the lease lapses and a
            # recoverer finishes the saga.
            _log.warning(
                "saga %r: its event loop closed while it ran; its lease is "
                "renewed no more",
                self.saga_id,
            )
            self.stop()
            return True
        return self._journal.renew(
            self.saga_id, self._clock(), owner=self.owner, lease_until=until
        )

    def _lost(self, why: str) -> None:
        if why == "lapsed":  # unreachable for a whole lease: keep trying
            self._hold(self._clock(), self._length / 3)
            return
        self._on_taken()


def _call_soon(loop: asyncio.AbstractEventLoop, action: Callable[[], None]) -> None:
    try:
        loop.call_soon_threadsafe(action)
    except RuntimeError:  # the loop closed: its runs are gone with it
        _log.debug("a saga was taken over after its event loop closed")
