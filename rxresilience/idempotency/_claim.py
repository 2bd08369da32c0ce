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
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable
from typing import Any

from reactivex import abc

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

__all__ = ["KeyClaim", "Terminal", "Unrecordable"]

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
        lock: threading.Lock,
        scheduler: abc.SchedulerBase,
        clock: Callable[[], float],
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
        self._lease: Lease | None = None

    def ask(self, now: float) -> Claim:
        """The store's answer for the key at ``now``; raises what the store
        raises, and ``TypeError`` for a completed claim without a record."""
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
        return claim

    def give_back(self) -> None:
        """Release the key whether held or not (a claim won for nobody).

        If the store cannot be reached the claim expires by itself, and the
        error that made us release it is the one to report.
        """
        with contextlib.suppress(Exception):
            self._store.release(self.key, self._owner)

    def release(self) -> None:
        """Release the key if we hold it (checked against our owner token by
        the store: harmless if another owner took it over)."""
        with self._lock:
            held, self.held = self.held, False
        if held:
            self.give_back()

    def forget(self) -> None:
        """Hold it no more without telling the store: it is completed, or its
        outcome is unknown and its lease must lapse on its own."""
        with self._lock:
            self.held = False

    # -- while the source runs -----------------------------------------------------

    def renew_while_running(self, now: float, on_lost: Callable[[str], None]) -> None:
        """Keep the lease taken at ``now`` alive until :meth:`stop_renewing`;
        ``on_lost`` is called once if it is taken over or lapses. A store
        written for 0.1 cannot renew: its lease then lasts what it lasts."""
        if not store_renews(self._store):
            return
        store, key, owner = self._store, self.key, self._owner
        timeout = self._policy.in_progress_timeout
        self._lease = Lease(
            timeout,
            now + timeout,
            self._scheduler,
            self._clock,
            lambda until: store.renew(key, owner, until),
            on_lost,
        )

    def stop_renewing(self) -> None:
        if self._lease is not None:
            self._lease.stop()

    # -- settling with the outcome -------------------------------------------------

    def record(
        self, values: list[Any], ended: Terminal, unrecorded: Unrecordable | None
    ) -> Terminal:
        """Complete the claim with the outcome ``values`` then ``ended`` (or a
        marker, if ``unrecorded`` says it cannot be recorded); return what the
        subscribers are told. The effect happened: whatever fails here, the
        claim is never released for another run."""
        codec = self._policy.outcome_codec
        record = b""
        if unrecorded is None:
            try:
                record = encode_outcome(codec, values, ended[1])
                check_round_trip(codec, self.key, record)
            except Exception as bad:
                unrecorded = (blamed_type(values), str(bad))
        if unrecorded is None:
            answer = self._complete(record)
            if not isinstance(answer, Exception):
                return self._completed(answer, ended)
            # The store refused the record (too large, or a blip): say so with
            # the small marker instead, so no duplicate ever runs it again.
            unrecorded = ("outcome", f"the store refused it: {answer}")
        problem = unrecordable(self.key, *unrecorded)
        answer = self._complete(unrecordable_marker(*unrecorded))
        if not isinstance(answer, Exception):
            return self._completed(answer, ("error", problem))
        # Nothing could be written: keep the claim (its lease lapses on its own;
        # the outcome is then unknown) and say why.
        self.forget()
        problem.__cause__ = answer
        return "error", problem

    def _complete(self, record: bytes) -> bool | Exception:
        """Whether the store kept the record as ours, or why it could not."""
        try:
            return self._store.complete(
                self.key, self._owner, record, self._clock() + self._policy.ttl
            )
        except Exception as failure:
            return failure

    def _completed(self, kept: bool, ended: Terminal) -> Terminal:
        self.forget()
        if not kept:  # another owner took the key over while we ran
            return "error", IdempotencyClaimLostError(self.key)
        return ended
