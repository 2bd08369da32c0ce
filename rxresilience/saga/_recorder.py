"""Where a run's events go: the journal first, then its history, then the world."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from reactivex import abc

from .._clock import clock_of
from ..errors import SagaError, SagaOwnershipLostError
from ._events import CompensationStarted, SagaEvent, SagaEventBroadcast, StepStarted
from ._group_commit import GroupCommit, checked
from ._history import (
    KIND_VALUES,
    EntryKind,
    History,
    SagaStatus,
    describe,
    kind_of,
)
from ._journal import JournalEntry, JournalWrite, SagaJournal
from ._mailbox import Mailbox
from ._plan import SagaPlan
from ._subscriber import Subscriber

__all__ = ["NOTHING", "Recorder"]

NOTHING: Any = object()

_log = logging.getLogger("rxresilience")


#: Entries of what happened (kept through a failed commit) rather than of what
#: was about to begin (dropped with it).
_FACTS = frozenset(
    kind.value
    for kind in (
        EntryKind.STEP_SUCCEEDED,
        EntryKind.STEP_FAILED,
        EntryKind.COMPENSATED,
        EntryKind.COMPENSATION_FAILED,
        EntryKind.RECOVERY_FAILED,
    )
)
_BEGINNINGS = (StepStarted, CompensationStarted)


class Recorder:
    """Journals a run's events, folds them into its history, publishes them.

    What a run records between two waits is written in one transaction
    (:meth:`commit`): a step's success with the next step's start, the last
    one with the saga's end, the saga's beginning with its first start. Its
    events are published once their transaction is committed. Outside
    asyncio a commit writes at once, on the caller's thread; under asyncio
    (a ``writer``) it is handed to the journal's group commit, off the loop,
    and the run goes on from its mailbox once the write is committed.

    Every write is fenced on ``owner``: when the journal answers that another
    owner holds the saga, the recorder is ``lost``: it calls ``on_lost``
    once, and from then on writes, folds and publishes nothing.
    """

    __slots__ = (
        "_begin",
        "_clock",
        "_codec",
        "_entries",
        "_events",
        "_last_encoded",
        "_mailbox",
        "_plan",
        "_writer",
        "begun",
        "history",
        "journal",
        "lost",
        "on_begun",
        "on_lost",
        "owner",
        "saga_id",
        "subscriber",
    )

    def __init__(
        self,
        plan: SagaPlan,
        journal: SagaJournal | None,
        saga_id: str,
        time_scheduler: abc.SchedulerBase,
        subscriber: Subscriber,
        mailbox: Mailbox,
        writer: GroupCommit | None = None,
    ) -> None:
        self._plan = plan
        self.journal = journal
        self.saga_id = saga_id
        self._clock = clock_of(time_scheduler)
        self._codec = plan.codec
        self._mailbox = mailbox
        self._writer = writer if journal is not None else None
        self.subscriber = subscriber
        self.history: History[Any] = History()
        self.owner = ""
        self.lost = False
        self.begun = True  # False from begin() until the saga is in the journal
        self._begin: tuple[str, float] | None = None
        self._entries: list[JournalEntry] = []
        self._events: list[SagaEvent] = []
        self._last_encoded: tuple[Any, bytes] | None = None
        self.on_lost: Callable[[], None] = lambda: None
        self.on_begun: Callable[[float], None] = lambda until: None

    def lose(self) -> Exception:
        """The saga is another owner's now: call ``on_lost`` (once); return the
        error the run ends with. Called from a handler of the run's mailbox."""
        if not self.lost:
            self.lost = True
            self.on_lost()
        return SagaOwnershipLostError(self.saga_id)

    def taken_over(self) -> None:
        """A renewal heard "not yours": :meth:`lose`, from a mailbox handler."""
        self.lose()

    def now(self) -> float:
        return self._clock()

    def begin(self, saga_name: str, lease_until: float) -> None:
        """Create the saga, held by ``owner`` until ``lease_until``, with the
        next commit."""
        self._begin = (saga_name, lease_until)
        self.begun = False

    def record(
        self, event: SagaEvent, context: Any = NOTHING, *, fold: bool = True
    ) -> Exception | None:
        """Add ``event`` (with ``context`` encoded) to the next commit and fold
        it into the history; return the codec's error, if any (the event is
        then published without its context in the journal).

        ``fold=False`` leaves the history alone (a step is folded in as started
        only once it is subscribed).
        """
        if self.lost:
            return SagaOwnershipLostError(self.saga_id)
        kind = kind_of(event)
        step: str = getattr(event, "step", "")
        failure = None
        if kind is not None and self.journal is not None:
            error = getattr(event, "error", None)
            try:
                encoded = None if context is NOTHING else self._encode(context)
                self._entries.append(
                    JournalEntry(
                        KIND_VALUES[kind],
                        step,
                        encoded,
                        None if error is None else describe(error),
                    )
                )
            except Exception as codec_error:
                failure = codec_error
                if kind is EntryKind.STEP_SUCCEEDED:
                    # The success happened: journaled without its result, so
                    # that a recovery knows the step's effect is there (and
                    # that it cannot undo it from the journal).
                    self._entries.append(
                        JournalEntry(
                            KIND_VALUES[kind],
                            step,
                            None,
                            "its result was never journaled: " + describe(codec_error),
                        )
                    )
        if kind is not None and fold:
            self.history.apply(kind, step, None if context is NOTHING else context)
        self._events.append(event)
        return failure

    def _encode(self, context: Any) -> bytes:
        """The codec's bytes for ``context``; a step's start mostly records the
        very object the step before it succeeded with: encoded once. Only
        within one commit, and no user code (a merge) in between: a context
        may be mutated in place."""
        last = self._last_encoded
        if last is not None and last[0] is context:
            return last[1]
        encoded = self._codec.encode(context)
        self._last_encoded = (context, encoded)
        return encoded

    def commit(
        self,
        then: Callable[[Exception | None], None],
        status: SagaStatus | None = None,
    ) -> None:
        """Write what was recorded since the last commit (and, with ``status``,
        the saga's end) in one transaction; then publish its events and call
        ``then`` with the journal's error (None once committed): at once
        outside asyncio, from the mailbox once committed under it."""
        events, self._events = self._events, []
        self._last_encoded = None  # user code runs next: see _encode
        if self.lost:
            then(SagaOwnershipLostError(self.saga_id))
            return
        begin, self._begin = self._begin, None
        journal = self.journal
        if journal is None or not (self._entries or begin or status):
            self._published(events, then, None)
            return
        write = JournalWrite(
            self.saga_id,
            self.owner,
            self._clock(),
            tuple(self._entries),
            begin=None if begin is None else begin[0],
            lease_until=None if begin is None else begin[1],
            status=None if status is None else status.value,
        )
        self._entries = []
        if self._writer is not None:
            post = self._mailbox.post
            self._writer.submit(
                write,
                lambda done: post(lambda: self._committed(write, done, events, then)),
            )
            return
        try:
            answers = journal.write_owned([write])
            # the usual answer, checked at no cost; anything else, in full
            done: bool | Exception = (
                True
                if type(answers) is list and len(answers) == 1 and answers[0] is True
                else checked(journal, [write], answers)[0]
            )
        except Exception as error:
            done = error
        self._committed(write, done, events, then)

    def _committed(
        self,
        write: JournalWrite,
        done: bool | Exception,
        events: list[SagaEvent],
        then: Callable[[Exception | None], None],
    ) -> None:
        if self.lost:  # another write of ours heard "not yours" meanwhile
            then(SagaOwnershipLostError(self.saga_id))
            return
        if done is False:
            if write.begin is not None:  # the only reason a new saga is refused
                then(SagaError(f"saga id {self.saga_id!r} is already in the journal"))
                return
            then(self.lose())
            return
        if done is True:
            if write.begin is not None:
                self.begun = True
                assert write.lease_until is not None
                self.on_begun(write.lease_until)
            self._published(events, then, None)
            return
        # The journal failed (the write may or may not have happened). What
        # was begun (a step, a compensation) will not be: its "started" entry
        # and event are dropped. The facts (a success, a failure, an undoing)
        # did happen: they go with the next commit, and are published now.
        if self.begun:
            self._entries[:0] = [e for e in write.entries if e.kind in _FACTS]
        facts: list[SagaEvent] = [
            event for event in events if not isinstance(event, _BEGINNINGS)
        ]
        self._published(facts, then, done)

    def _published(
        self,
        events: list[SagaEvent],
        then: Callable[[Exception | None], None],
        error: Exception | None,
    ) -> None:
        if self.begun:  # a saga whose beginning failed never happened
            for event in events:
                self.publish(event)
        then(error)

    def forget_encoded(self) -> None:
        """User code is about to run (a merge): encode afresh after it."""
        self._last_encoded = None

    def publish(self, event: SagaEvent) -> None:
        self.subscriber.on_next(event)
        events = self._plan.events
        if isinstance(events, SagaEventBroadcast):  # its telemetry on our clock
            events.emit_timed(event, self._clock)
        else:
            events.emit(event)
