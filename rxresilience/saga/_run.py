"""One run of a saga plan: its steps forward, then, on failure or disposal, back."""

from __future__ import annotations

import logging
from typing import Any

from reactivex import abc

from .._clock import seconds_now
from ..errors import SagaCancelledError, SagaFailed, SagaOwnershipLostError
from ..telemetry import _bus
from ._compensation import Compensation, CompensationErrors
from ._events import SagaCompleted, StepFailed, StepSucceeded
from ._forward import ForwardRun
from ._group_commit import group_commit_for
from ._history import SagaStatus
from ._journal import SagaJournal
from ._mailbox import Mailbox
from ._ownership import Ownership
from ._plan import SagaPlan
from ._recorder import NOTHING, Recorder
from ._step import SagaStep
from ._subscriber import Subscriber

__all__ = ["SagaRun"]

_log = logging.getLogger("rxresilience")


class SagaRun(abc.DisposableBase):
    """Executes one plan for one subscriber; disposing it cancels the saga.

    Every notification of a step or a compensation is handled in the run's
    mailbox, one at a time. Disposal, at any instant, stops the saga: no step
    is subscribed after it, the running ones are cancelled (the first as a
    ``StepFailed`` with ``SagaCancelledError``), and the compensations run to
    their end, journaled and published on ``Saga.events``. Once the last
    step has succeeded the saga is done: a disposal while its end is being
    written lets it complete.

    With a journal the run owns its saga there: it renews its lease while
    it works, and every write is fenced on its owner token. Told that another
    owner (a recoverer) holds the saga, by a renewal or by a write, it stops
    at once: the running steps are cancelled, no step or compensation starts,
    nothing more is written, and the subscriber gets
    :class:`~rxresilience.SagaOwnershipLostError`.

    The steps forward are a :class:`ForwardRun`'s; the way back a
    :class:`Compensation`'s. This class starts the saga, turns it back, and
    ends it.
    """

    def __init__(
        self,
        plan: SagaPlan,
        journal: SagaJournal | None,
        saga_id: str,
        schedulers: tuple[abc.SchedulerBase | None, abc.SchedulerBase],
        observer: abc.ObserverBase[Any],
    ) -> None:
        self._plan = plan
        self._schedulers = schedulers
        self._mailbox = Mailbox()
        self._subscriber = Subscriber(observer, self._cancel)
        self._recorder = Recorder(
            plan,
            journal,
            saga_id,
            schedulers[1],
            self._subscriber,
            self._mailbox,
            group_commit_for(journal, schedulers[0]),
        )
        self._cancelling = False
        self._forward = ForwardRun(
            plan,
            self._recorder,
            self._mailbox,
            schedulers,
            cancelled=lambda: self._cancelling,
            completed=self._complete,
            failed=self._fail,
            unjournaled=self._end_unjournaled,
        )
        self._failure: tuple[str, BaseException] = ("", SagaCancelledError(""))
        self._ownership: Ownership | None = None
        # An exception tore through a handler: the run cannot go on, so its
        # lease is renewed no more, and lapses for a recoverer to finish it.
        self._mailbox.on_abandon = self._release

    def start(self, context: Any) -> None:
        self._mailbox.post(lambda: self._begin(context))

    def dispose(self) -> None:
        if self._subscriber.asks_to_dispose():
            self._cancel()

    def _cancel(self) -> None:
        if self._cancelling:
            return
        self._cancelling = True
        self._subscriber.detach()
        self._mailbox.post(self._on_cancel)

    def _on_cancel(self) -> None:
        forward = self._forward
        if forward.active and forward.running:
            # else a handler already queued moves the saga on, and sees the flag
            first = next(iter(forward.running.values()))
            self._fail(first.step.name, SagaCancelledError(first.step.name))

    def _begin(self, context: Any) -> None:
        recorder = self._recorder
        if recorder.journal is not None:
            ownership = Ownership(
                recorder.journal,
                recorder.saga_id,
                self._plan.lease,
                self._schedulers[1],
                lambda: self._mailbox.post(recorder.taken_over),
                self._schedulers[0],
            )
            self._ownership = ownership
            recorder.owner = ownership.owner
            recorder.on_lost = self._lost
            recorder.on_begun = ownership.hold
            # Written with the first step's start, in one transaction.
            recorder.begin(self._plan.name, ownership.first_lease())
        self._forward.run_stage(0, context)

    def _release(self) -> None:
        """Renew the saga's lease no more (before its last write)."""
        if self._ownership is not None:
            self._ownership.stop()

    def _lost(self) -> None:
        """Another owner holds the saga: stop everything, write nothing more."""
        self._forward.active = False
        self._release()
        for slot in self._forward.take_running():
            slot.stop()
        saga_id = self._recorder.saga_id
        if _bus.listening:  # as recover reports it: the saga's own events do not
            _report_ownership_lost(self._plan.name, saga_id, self._schedulers[1])
        self._subscriber.end(SagaOwnershipLostError(saga_id))

    # -- ends -----------------------------------------------------------------------

    def _end_unjournaled(self, error: Exception | None) -> None:
        """The saga never made it into the journal: nothing happened."""
        self._release()
        self._subscriber.end(error)

    def _complete(self, context: Any) -> None:
        self._forward.active = False
        self._release()

        def completed(error: Exception | None) -> None:
            if self._recorder.lost:
                return
            if error is not None:
                self._subscriber.end(error)
                return
            self._recorder.publish(SagaCompleted(context, self._recorder.saga_id))
            self._subscriber.end(None)

        self._recorder.commit(completed, SagaStatus.COMPLETED)

    def _fail(self, step_name: str, error: BaseException) -> None:
        """Cancel the running steps, then compensate what the history says."""
        if self._recorder.lost:
            return
        self._forward.active = False
        self._failure = (step_name, error)
        recorder = self._recorder
        for slot in self._forward.take_running():
            slot.stop()
            if slot.completed and slot.last is not NOTHING:
                # A sibling that succeeded just now (its news still queued):
                # it happened, so it is journaled and compensated like the rest.
                slot.recorded = True
                recorder.record(
                    StepSucceeded(slot.step.name, slot.last, recorder.saga_id),
                    slot.last,
                )
        journal_error = recorder.record(StepFailed(step_name, error, recorder.saga_id))
        history, steps = recorder.history, self._plan.steps

        def pending() -> list[tuple[SagaStep, Any]]:
            return history.to_compensate(steps, history.compensation_started)

        compensation = Compensation(
            self._plan,
            recorder,
            self._mailbox,
            self._schedulers,
            lambda: next(iter(pending()), None),
            lambda: [step.name for step, _ in pending()],
            self._end_failed,
        )
        if journal_error is not None:
            compensation.errors.append((step_name, journal_error))
        compensation.start()

    def _end_failed(
        self, errors: CompensationErrors, not_compensated: tuple[str, ...]
    ) -> None:
        self._forward.undone = True
        if self._recorder.lost:
            return
        self._release()
        failed = bool(errors or not_compensated)
        status = SagaStatus.FAILED if failed else SagaStatus.COMPENSATED
        recorder = self._recorder

        def ended(journal_error: Exception | None) -> None:
            if recorder.lost:
                return
            if not recorder.begun:  # the saga never made it into the journal
                self._subscriber.end(journal_error)
                return
            all_errors = errors
            if journal_error is not None:
                all_errors = (*errors, ("journal", journal_error))
            step_name, cause = self._failure
            self._subscriber.end(
                SagaFailed(
                    recorder.saga_id, step_name, cause, all_errors, not_compensated
                )
            )

        recorder.commit(ended, status)


def _report_ownership_lost(
    plan_name: str, saga_id: str, time_scheduler: abc.SchedulerBase
) -> None:
    """``saga.ownership_lost``, as recover reports it (never raises)."""
    try:
        _bus.emit(
            "saga.ownership_lost",
            plan_name,
            seconds_now(time_scheduler),
            attributes={"saga_id": saga_id, "reason": "taken over"},
        )
    except Exception:
        _log.exception("reporting saga %r's telemetry event failed", saga_id)
