"""Where a run's events go: the journal first, then its history, then the world.

Also the two pieces every run is made of: a :class:`Mailbox` that runs its
handlers one at a time on a flat stack, whatever thread a step or a
compensation notifies on; and a :class:`Subscriber` that keeps the run's
subscriber's exceptions to itself.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

from reactivex import abc

from .._clock import clock_of
from ..errors import SagaOwnershipLostError
from ._events import SagaEvent
from ._history import History, SagaStatus, describe, kind_of
from ._journal import JournalEntry, SagaJournal
from ._plan import SagaPlan

__all__ = ["NOTHING", "Mailbox", "Recorder", "Subscriber"]

NOTHING: Any = object()

_log = logging.getLogger("rxresilience")


class Mailbox:
    """Runs posted handlers one after the other: never two at once, never nested.

    The thread that posts into an idle mailbox runs the handlers, its own and
    those other threads post meanwhile, until none is left.
    """

    __slots__ = ("_busy", "_lock", "_queue")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: collections.deque[Callable[[], None]] = collections.deque()
        self._busy = False

    def post(self, handler: Callable[[], None]) -> None:
        with self._lock:
            self._queue.append(handler)
            if self._busy:
                return
            self._busy = True
        while True:
            with self._lock:
                if not self._queue:
                    self._busy = False
                    return
                handler = self._queue.popleft()
            try:
                handler()
            except BaseException:
                with self._lock:
                    self._busy = False
                raise


class Subscriber:
    """The run's subscriber: an exception its ``on_next`` raises is its own.

    It receives that exception once as ``on_error`` and is detached; the run
    goes on. A disposal it makes from inside ``on_next`` counts once
    ``on_next`` has returned, unless it raised (RxPY's auto-detaching observer
    disposes on the way out of a raising ``on_next``: that is not the
    subscriber's wish, and the run ignores it).
    """

    __slots__ = ("_delivering", "_dispose_asked", "_observer", "on_dispose", "raised")

    def __init__(
        self,
        observer: abc.ObserverBase[Any] | None,
        on_dispose: Callable[[], None] = lambda: None,
    ) -> None:
        self._observer = observer
        self._delivering: int | None = None
        self._dispose_asked = False
        self.raised = False
        self.on_dispose = on_dispose

    def detach(self) -> None:
        self._observer = None

    def asks_to_dispose(self) -> bool:
        """True when a disposal should be honoured now; False when it is to be
        decided after the ``on_next`` under way on this thread returns."""
        if self.raised:
            return False
        if self._delivering == threading.get_ident():
            self._dispose_asked = True
            return False
        return True

    def on_next(self, event: Any) -> None:
        observer = self._observer
        if observer is None:
            return
        self._delivering = threading.get_ident()
        try:
            observer.on_next(event)
        except Exception as error:
            self.raised = True
            self._observer = None
            self._safely(observer.on_error, error)
            return
        finally:
            self._delivering = None
        if self._dispose_asked:
            self._dispose_asked = False
            self.on_dispose()

    def end(self, error: Exception | None) -> None:
        observer, self._observer = self._observer, None
        if observer is None:
            return
        if error is None:
            self._safely(observer.on_completed)
        else:
            self._safely(observer.on_error, error)

    @staticmethod
    def _safely(call: Callable[..., None], *args: Any) -> None:
        try:
            call(*args)
        except Exception:
            _log.exception("a saga subscriber's on_error or on_completed raised")


class Recorder:
    """Journals a run's events, folds them into its history, publishes them.

    With an ``owner`` every write is fenced: when the journal answers that
    another owner holds the saga, the recorder is ``lost``: it calls
    ``on_lost`` once, and from then on writes, folds and publishes nothing.
    """

    __slots__ = (
        "_clock",
        "_codec",
        "_plan",
        "history",
        "journal",
        "lost",
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
    ) -> None:
        self._plan = plan
        self.journal = journal
        self.saga_id = saga_id
        self._clock = clock_of(time_scheduler)
        self._codec = plan.codec
        self.subscriber = subscriber
        self.history: History[Any] = History()
        self.owner: str | None = None
        self.lost = False
        self.on_lost: Callable[[], None] = lambda: None

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

    def record(
        self, event: SagaEvent, context: Any = NOTHING, *, fold: bool = True
    ) -> Exception | None:
        """Write ``event`` to the journal (with ``context`` encoded), fold it into
        the history and publish it; return the journal's error, if any.

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
                encoded = None if context is NOTHING else self._codec.encode(context)
                entry = JournalEntry(
                    kind.value,
                    step,
                    encoded,
                    None if error is None else describe(error),
                )
                if self.owner is None:
                    self.journal.append(self.saga_id, entry, self._clock())
                elif not self.journal.append_owned(
                    self.saga_id, entry, self._clock(), owner=self.owner
                ):
                    return self.lose()
            except Exception as journal_error:
                failure = journal_error
        if kind is not None and fold:
            self.history.apply(kind, step, None if context is NOTHING else context)
        self.publish(event)
        return failure

    def publish(self, event: SagaEvent) -> None:
        self.subscriber.on_next(event)
        self._plan.events.emit(event)

    def finish(self, status: SagaStatus) -> Exception | None:
        """Mark the saga's end in the journal; return the journal's error."""
        if self.lost:
            return SagaOwnershipLostError(self.saga_id)
        if self.journal is None:
            return None
        try:
            if self.owner is None:
                self.journal.finish(self.saga_id, status.value, self._clock())
            elif not self.journal.finish_owned(
                self.saga_id, status.value, self._clock(), owner=self.owner
            ):
                return self.lose()
        except Exception as error:
            return error
        return None
