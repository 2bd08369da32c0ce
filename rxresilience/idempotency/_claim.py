"""One execution's claim on its idempotency key in the store: won, renewed, settled.

An execution asks the store for its key. If it wins, it holds the claim while
the source runs (the claim's lease renewed every third of
``in_progress_timeout``) and settles it once, in one of three ways:

* completed with the record of the outcome, or, when the outcome cannot be
  recorded, with a marker saying the operation ran (never released then: the
  effect happened, so no duplicate may run it again);
* released, when nothing ran or the error is not one to record;
* forgotten without a word to the store, when the outcome is unknown
  (``max_run`` passed, nothing could be written): the lease lapses on its own.

Whether the claim is held is decided under the lock of the execution's
registry, so that a disposal and a claim coming back from the store agree on
who gives it back.

Every store call goes through the execution's :class:`StoreCalls`: in place,
or, under asyncio with a store whose calls may block, on a thread of our own
(renewals too, on a thread timer), the execution going on, on the loop, with
the answer. What must follow a call (an end told after a release, a run
after a claim) is passed to it as ``then``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import Any

from reactivex import abc
from reactivex.scheduler.eventloop import AsyncIOScheduler

from .._child_safe_lock import ChildSafeLock
from .._clock import thread_scheduler
from .._lease import Lease
from ..errors import IdempotencyClaimLostError
from ..stores._base import Claim, ClaimStatus
from ._policy import IdempotencyPolicy, store_renews
from ._record import (
    blamed_type,
    check_round_trip,
    encode_outcome,
    unrecordable,
    unrecordable_marker,
)
from ._store_calls import StoreCalls

__all__ = ["ABANDONED", "KeyClaim", "Terminal", "Unrecordable"]

#: Why a claim is no longer renewed when its execution's event loop closed
#: while the source ran: kept, never released, until its lease lapses.
ABANDONED = "abandoned"

#: What could not be recorded: the type to blame, and why.
Unrecordable = tuple[str, str]
#: A terminal notification: ``("completed", None)`` or ``("error", error)``.
Terminal = tuple[str, Exception | None]


class KeyClaim:
    """The claim of one execution on ``key``, under a fresh owner token.

    ``held`` is guarded by ``lock`` (the registry lock): read and write it
    only under that lock.
    """

    def __init__(
        self,
        policy: IdempotencyPolicy,
        key: str,
        fingerprint: str | None,
        lock: ChildSafeLock,
        scheduler: abc.SchedulerBase,
        clock: Callable[[], float],
        calls: StoreCalls,
    ) -> None:
        self.key = key
        self.held = False
        self._policy = policy
        self._store = policy.store
        self._fingerprint = fingerprint
        self._owner = uuid.uuid4().hex
        self._lock = lock
        self._scheduler = scheduler
        self._clock = clock
        self._calls = calls
        self._lease: Lease | None = None
        #: When the last claim was asked for, on the clock, where it was made
        #: (set before its answer is handed on).
        self.asked_at = 0.0

    def ask(
        self,
        cancelled: Callable[[], bool],
        then: Callable[[Claim | Exception | None], None],
    ) -> None:
        """Ask the store for the key; ``then`` gets its answer, or the exception
        the store raised (``TypeError`` for a completed claim without a
        record), or None when ``cancelled()`` (read under the lock) turned
        true while the claim was in flight: a claim won for nobody is given
        back by then, wherever the answer arrived.

        The claim's time, :attr:`asked_at`, is read where the store is called,
        right before the call: under asyncio the call may wait for a store
        thread longer than the lease lasts, and a lease counted from before
        that wait would be written already expired (a duplicate would take
        the key and run it again). A claim won (and not cancelled) is
        ``held`` before ``then`` runs, so a disposal from then on gives it back.
        """
        self._calls.run(lambda: self._claim(cancelled), then)

    def _claim(self, cancelled: Callable[[], bool]) -> Claim | None:
        """The store's claim, where the store is called."""
        # The operator's scheduler clock: safe to read on any thread.
        now = self.asked_at = self._clock()
        claim = self._store.claim(
            self.key,
            self._fingerprint,
            self._owner,
            now,
            now + self._policy.in_progress_timeout,
        )
        if claim.status is ClaimStatus.COMPLETED and not isinstance(
            claim.record, bytes
        ):
            raise TypeError(f"the store answered a claim with {claim!r}")
        won = claim.status is ClaimStatus.CLAIMED
        with self._lock:
            gone = cancelled()
            if won and not gone:
                self.held = True
        if not gone:
            return claim
        if won:  # disposed while the claim was in flight: give back what we won
            self._release_here()
        return None

    def give_back(self, then: Callable[[], None] | None = None) -> None:
        """Release the key whether held or not (a claim won for nobody);
        ``then`` runs once the store answered.

        If the store cannot be reached the claim expires by itself, and the
        error that made us release it is the one to report.
        """
        self._calls.run(self._release_here, _after(then))

    def _release_here(self) -> None:
        with contextlib.suppress(Exception):
            self._store.release(self.key, self._owner)

    def release(self, then: Callable[[], None] | None = None) -> None:
        """Release the key if we hold it (checked against our owner token by
        the store: harmless if another owner took it over); ``then`` runs
        once that is done (at once if we hold nothing)."""
        with self._lock:
            held, self.held = self.held, False
        if held:
            self.give_back(then)
        elif then is not None:
            then()

    def forget(self) -> None:
        """Hold it no more without telling the store: it is completed, or its
        outcome is unknown and its lease must lapse on its own."""
        with self._lock:
            self.held = False

    # -- before the source starts --------------------------------------------------

    def answered_late(self, now: float) -> bool:
        """Whether the claim made at ``now`` reached us so late (over a third of
        its lease: a busy event loop, a slow subscriber of ``claimed``) that
        its lease may lapse, or have lapsed, before a renewal lands."""
        return self._clock() - now > self._policy.in_progress_timeout / 3

    def unlapsed(self, now: float) -> bool:
        """Whether the lease of the claim made at ``now`` still runs."""
        return self._clock() < now + self._policy.in_progress_timeout

    def confirm(self, then: Callable[[bool | Exception], None]) -> None:
        """Before the source starts on a claim answered late: make sure it is
        still ours, a whole lease from now (:attr:`asked_at`), by renewing it.
        ``then`` gets True (it is), False (another execution took the key
        meanwhile) or the store's exception."""
        self._calls.run(self._confirm_here, then)

    def _confirm_here(self) -> bool:
        now = self._clock()
        timeout = self._policy.in_progress_timeout
        kept = self._store.renew(self.key, self._owner, now + timeout)
        if kept is True:
            self.asked_at = now
        return kept is True

    # -- while the source runs -----------------------------------------------------

    def renew_while_running(self, now: float, on_lost: Callable[[str], None]) -> None:
        """Keep the lease taken at ``now`` alive until :meth:`stop_renewing`;
        ``on_lost`` is called once if it is taken over or lapses, or with
        :data:`ABANDONED` if the execution's event loop closed under it. A
        store written for 0.1 cannot renew: its lease then lasts what it lasts.

        The first renewal is due a third of the lease after ``now`` (the
        claim's time), however late its answer reached us.
        """
        if not store_renews(self._store):
            return
        store, key, owner = self._store, self.key, self._owner
        timeout = self._policy.in_progress_timeout
        scheduler = self._scheduler
        lost = on_lost
        calls = self._calls
        loop = calls.loop

        def renew(until: float) -> bool:
            if loop is not None and loop.is_closed():
                # Nothing can finish the execution now (its timers and its
                # subscribers were on that loop): renew no more and let the
                # lease lapse, as a crashed process's would.
                self.stop_renewing()
                on_lost(ABANDONED)
                return True
            return store.renew(key, owner, until)

        if loop is not None:
            if isinstance(scheduler, AsyncIOScheduler):
                # A renewal is a store call: never on the event loop. Its timer
                # runs on a thread (the same real clock); "lost" goes back to
                # the loop.
                scheduler = thread_scheduler()

            def lost(why: str) -> None:
                calls.on_loop(on_lost, why)

        # Zero unless the answer came from a store thread, a while later.
        late = self._clock() - now
        self._lease = Lease(
            timeout,
            now + timeout,
            scheduler,
            self._clock,
            renew,
            lost,
            first=max(0.0, timeout / 3 - late) if late > 0 else None,
        )

    def stop_renewing(self) -> None:
        if self._lease is not None:
            self._lease.stop()

    # -- settling with the outcome -------------------------------------------------

    def record(
        self,
        values: list[Any],
        ended: Terminal,
        unrecorded: Unrecordable | None,
        then: Callable[[Terminal], None],
    ) -> None:
        """Complete the claim with the outcome ``values`` then ``ended`` (or a
        marker, if ``unrecorded`` says it cannot be recorded); ``then`` gets
        what the subscribers are told. The effect happened: whatever fails
        here, the claim is never released for another run.

        The outcome is encoded here, on the caller's thread (the values may
        be the caller's to change afterwards); only the store calls move.
        """
        codec = self._policy.outcome_codec
        record = b""
        if unrecorded is None:
            try:
                record = encode_outcome(codec, values, ended[1])
                check_round_trip(codec, self.key, record)
            except Exception as bad:
                unrecorded = (blamed_type(values), str(bad))
        # From here the claim is the completion's: a disposal while it is in
        # flight must not release it (the effect happened).
        self.forget()

        def settled(told: Terminal | Exception) -> None:
            then(("error", told) if isinstance(told, Exception) else told)

        self._calls.run(lambda: self._settle(record, ended, unrecorded), settled)

    def _settle(
        self,
        record: bytes,
        ended: Terminal,
        unrecorded: Unrecordable | None,
    ) -> Terminal:
        """The completions, where the store is called: the record, else the
        marker; what the subscribers are told. The ttl counts from here, not
        from before a wait for a store thread."""
        expires_at = self._clock() + self._policy.ttl
        if unrecorded is None:
            answer = self._complete(record, expires_at)
            if not isinstance(answer, Exception):
                return self._completed(answer, ended)
            # The store refused the record (too large, or a blip): say so with
            # the small marker instead, so no duplicate ever runs it again.
            unrecorded = ("outcome", f"the store refused it: {answer}")
        problem = unrecordable(self.key, *unrecorded)
        answer = self._complete(unrecordable_marker(*unrecorded), expires_at)
        if not isinstance(answer, Exception):
            return self._completed(answer, ("error", problem))
        # Nothing could be written: the claim is kept (its lease lapses on its
        # own; the outcome is then unknown); say why.
        problem.__cause__ = answer
        return "error", problem

    def _complete(self, record: bytes, expires_at: float) -> bool | Exception:
        """Whether the store kept the record as ours, or why it could not."""
        try:
            return self._store.complete(self.key, self._owner, record, expires_at)
        except Exception as failure:
            return failure

    def _completed(self, kept: bool, ended: Terminal) -> Terminal:
        if not kept:  # another owner took the key over while we ran
            return "error", IdempotencyClaimLostError(self.key)
        return ended


def _after(then: Callable[[], None] | None) -> Callable[[object], None]:
    """``then`` as the answer of a call whose answer does not matter."""

    def answered(_: object) -> None:
        if then is not None:
            then()

    return answered
