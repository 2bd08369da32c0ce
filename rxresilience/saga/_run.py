"""One run of a saga plan: its steps forward, then, on failure or disposal, back."""

from __future__ import annotations

import logging
from typing import Any

from reactivex import abc
from reactivex.disposable import SingleAssignmentDisposable

from .._clock import seconds_now
from ..errors import (
    SagaCancelledError,
    SagaFailed,
    SagaOwnershipLostError,
    SagaStepEmptyError,
)
from ..telemetry import _bus
from ._compensation import Compensation, CompensationErrors
from ._events import SagaCompleted, StepFailed, StepStarted, StepSucceeded
from ._group_commit import group_commit_for
from ._history import EntryKind, SagaStatus
from ._journal import SagaJournal
from ._ownership import Ownership
from ._plan import ParallelGroup, SagaPlan
from ._recorder import NOTHING, Mailbox, Recorder, Subscriber
from ._step import SagaStep

__all__ = ["SagaRun"]

_log = logging.getLogger("rxresilience")

_FORWARD, _COMPENSATING, _ENDED = range(3)


class _Slot:
    """A running step: its subscription, the last value it emitted, and whether
    it completed (known at once, on the step's own thread, before the mailbox
    handles it)."""

    __slots__ = (
        "cancelled",
        "completed",
        "context",
        "index",
        "last",
        "recorded",
        "step",
        "subscription",
    )

    def __init__(self, step: SagaStep, context: Any, index: int) -> None:
        self.step = step
        self.context = context
        self.index = index
        self.last: Any = NOTHING
        self.cancelled = False
        self.completed = False
        self.recorded = False  # its success is in the journal already
        self.subscription = SingleAssignmentDisposable()

    def on_next(self, value: Any) -> None:
        self.last = value

    def stop(self) -> None:
        """Cancel the step; a disposal that raises is the step's own problem."""
        self.cancelled = True
        try:
            self.subscription.dispose()
        except Exception:
            _log.exception("cancelling saga step %r raised", self.step.name)


class SagaRun(abc.DisposableBase):
    """Executes one plan for one subscriber; disposing it cancels the saga.

    Every notification of a step or a compensation is handled in the run's
    mailbox, one at a time. Disposal, at any instant, stops the saga: no step
    is subscribed after it, the running ones are cancelled (the first as a
    ``StepFailed`` with ``SagaCancelledError``), and the compensations run to
    their end, journaled and published on ``Saga.events``.

    With a journal the run owns its saga there: it renews its lease while
    it works, and every write is fenced on its owner token. Told that another
    owner (a recoverer) holds the saga, by a renewal or by a write, it stops
    at once: the running steps are cancelled, no step or compensation starts,
    nothing more is written, and the subscriber gets
    :class:`~rxresilience.SagaOwnershipLostError`.
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
        self._phase = _FORWARD
        self._stage = 0
        self._stage_context: Any = None
        self._running: dict[str, _Slot] = {}
        self._results: list[Any] = []
        self._remaining = 0
        self._failure: tuple[str, BaseException] = ("", SagaCancelledError(""))
        self._ownership: Ownership | None = None

    def start(self, context: Any) -> None:
        self._mailbox.post(lambda: self._begin(context))

    def dispose(self) -> None:
        if self._subscriber.asks_to_dispose():
            self._cancel()

    def _disposed(self) -> bool:
        return self._cancelling  # read afresh: a subscriber may dispose any time

    def _cancel(self) -> None:
        if self._cancelling:
            return
        self._cancelling = True
        self._subscriber.detach()
        self._mailbox.post(self._on_cancel)

    def _on_cancel(self) -> None:
        if self._phase == _FORWARD and self._running:
            # else a handler already queued moves the saga on, and sees the flag
            first = next(iter(self._running.values()))
            self._fail(first.step.name, SagaCancelledError(first.step.name))

    # -- forward --------------------------------------------------------------------

    def _begin(self, context: Any) -> None:
        recorder = self._recorder
        if recorder.journal is not None:
            ownership = Ownership(
                recorder.journal,
                recorder.saga_id,
                self._plan.lease,
                self._schedulers[1],
                lambda: self._mailbox.post(recorder.taken_over),
            )
            self._ownership = ownership
            recorder.owner = ownership.owner
            recorder.on_lost = self._lost
            recorder.on_begun = ownership.hold
            # Written with the first step's start, in one transaction.
            recorder.begin(self._plan.name, ownership.first_lease())
        self._run_stage(0, context)

    def _release(self) -> None:
        """Renew the saga's lease no more (before its last write)."""
        if self._ownership is not None:
            self._ownership.stop()

    def _lost(self) -> None:
        """Another owner holds the saga: stop everything, write nothing more."""
        self._phase = _ENDED
        self._release()
        running, self._running = list(self._running.values()), {}
        for slot in running:
            slot.stop()
        saga_id = self._recorder.saga_id
        if _bus.listening:  # as recover reports it: the saga's own events do not
            try:
                _bus.emit(
                    "saga.ownership_lost",
                    self._plan.name,
                    seconds_now(self._schedulers[1]),
                    attributes={"saga_id": saga_id, "reason": "taken over"},
                )
            except Exception:
                _log.exception("reporting saga %r's telemetry event failed", saga_id)
        self._subscriber.end(SagaOwnershipLostError(saga_id))

    def _run_stage(self, index: int, context: Any) -> None:
        stages = self._plan.stages
        if self._recorder.lost:
            return
        if self._cancelling:  # no step starts after disposal; done ones are undone
            last = stages[min(index, len(stages) - 1)]
            self._fail(last.name, SagaCancelledError(last.name))
            return
        if index == len(stages):
            self._complete(context)
            return
        stage = stages[index]
        steps = stage.steps if isinstance(stage, ParallelGroup) else (stage,)
        self._stage, self._stage_context = index, context
        self._results, self._remaining = [NOTHING] * len(steps), len(steps)
        recorder = self._recorder
        saga_id = recorder.saga_id
        for step in steps:  # the journal knows of each before any is subscribed
            error = recorder.record(
                StepStarted(step.name, saga_id), context, fold=False
            )
            if error is not None or self._disposed():
                self._fail(step.name, error or SagaCancelledError(step.name))
                return
        recorder.commit(lambda error: self._subscribe_stage(steps, context, error))

    def _subscribe_stage(
        self, steps: tuple[SagaStep, ...], context: Any, error: Exception | None
    ) -> None:
        """The stage's starts are committed (or failed to be): subscribe its steps."""
        recorder = self._recorder
        if recorder.lost or self._phase != _FORWARD:
            # Failing meanwhile (a sibling's write failed, say): the stage's
            # steps never start; their "started" entries err on the safe side.
            return
        if not recorder.begun:  # the saga is not in the journal: nothing happened
            self._phase = _ENDED
            self._release()
            self._subscriber.end(error)
            return
        if error is not None:
            self._fail(steps[0].name, error)
            return
        saga_id = recorder.saga_id
        subscribe_scheduler, time_scheduler = self._schedulers
        post = self._mailbox.post
        for position, step in enumerate(steps):
            if self._disposed():
                self._fail(step.name, SagaCancelledError(step.name))
                return
            recorder.history.apply(EntryKind.STEP_STARTED, step.name, context)
            slot = self._running[step.name] = _Slot(step, context, position)

            def on_error(error: Exception, slot: _Slot = slot) -> None:
                post(lambda: self._step_failed(slot, error))

            def on_completed(slot: _Slot = slot) -> None:
                slot.completed = True
                post(lambda: self._step_completed(slot))

            observable = self._plan.execution(step, context, saga_id, time_scheduler)
            slot.subscription.disposable = observable.subscribe(
                slot.on_next, on_error, on_completed, scheduler=subscribe_scheduler
            )

    def _step_failed(self, slot: _Slot, error: BaseException) -> None:
        if slot.cancelled:  # cancelled after the saga failed: no news
            return
        del self._running[slot.step.name]
        self._fail(slot.step.name, error)

    def _step_completed(self, slot: _Slot) -> None:
        step = slot.step
        if slot.last is NOTHING:
            if not slot.cancelled:
                del self._running[step.name]
                self._fail(step.name, SagaStepEmptyError(step.name))
            return
        if not slot.cancelled:
            del self._running[step.name]
        elif slot.recorded:
            return  # recorded when the saga failed, and compensated with the rest
        recorder = self._recorder
        error = recorder.record(
            StepSucceeded(step.name, slot.last, recorder.saga_id), slot.last
        )
        if slot.cancelled:
            # It finished after all: its compensation comes from the history.
            recorder.commit(_ignore)
            return
        if error is not None:
            self._fail(step.name, error)
            return
        self._results[slot.index] = slot.last
        self._remaining -= 1
        if self._remaining:  # its siblings run on: write its success now
            recorder.commit(lambda error: self._sibling_written(step, error))
            return
        stage = self._plan.stages[self._stage]
        if isinstance(stage, ParallelGroup):
            recorder.forget_encoded()
            try:
                joined = stage.merge(self._stage_context, list(self._results))
            except Exception as merge_error:
                self._fail(stage.name, merge_error)
                return
        else:
            joined = self._results[0]
        self._run_stage(self._stage + 1, joined)

    def _sibling_written(self, step: SagaStep, error: Exception | None) -> None:
        if error is not None and self._phase == _FORWARD and not self._recorder.lost:
            self._fail(step.name, error)

    def _complete(self, context: Any) -> None:
        self._phase = _ENDED
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

    # -- back -------------------------------------------------------------------------

    def _fail(self, step_name: str, error: BaseException) -> None:
        """Cancel the running steps, then compensate what the history says."""
        if self._recorder.lost:
            return
        self._phase = _COMPENSATING
        self._failure = (step_name, error)
        running, self._running = list(self._running.values()), {}
        recorder = self._recorder
        for slot in running:
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
        if self._recorder.lost:
            return
        self._phase = _ENDED
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


def _ignore(_: Exception | None) -> None:
    return None
