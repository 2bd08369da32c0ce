"""A saga run's way forward: its stages one after the other, a group's steps
side by side, each step's start and success journaled."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from reactivex import abc
from reactivex.disposable import SingleAssignmentDisposable

from ..errors import SagaCancelledError, SagaStepEmptyError
from ._events import StepStarted, StepSucceeded
from ._history import EntryKind
from ._mailbox import Mailbox
from ._plan import ParallelGroup, SagaPlan
from ._recorder import NOTHING, Recorder
from ._step import SagaStep

__all__ = ["ForwardRun", "RunningStep"]

_log = logging.getLogger("rxresilience")


class RunningStep:
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


class ForwardRun:
    """Runs a plan's stages forward, in the run's mailbox, until the saga leaves
    this direction.

    It ends by calling exactly one of the run's callbacks: ``completed`` (every
    stage succeeded, with the last result), ``failed`` (a step, a merge or a
    journal write failed, or the run was cancelled: the run then compensates),
    or ``unjournaled`` (the saga's first write failed: nothing happened).
    :attr:`active` is True while the saga goes forward; the run clears it when
    it turns back or ends, and the step notifications still queued then are
    dropped. :attr:`running` holds the steps subscribed and not yet ended.
    """

    __slots__ = (
        "_cancelled",
        "_completed",
        "_failed",
        "_mailbox",
        "_plan",
        "_recorder",
        "_remaining",
        "_results",
        "_schedulers",
        "_stage",
        "_stage_context",
        "_unjournaled",
        "active",
        "running",
        "undone",
    )

    def __init__(
        self,
        plan: SagaPlan,
        recorder: Recorder,
        mailbox: Mailbox,
        schedulers: tuple[abc.SchedulerBase | None, abc.SchedulerBase],
        *,
        cancelled: Callable[[], bool],
        completed: Callable[[Any], None],
        failed: Callable[[str, BaseException], None],
        unjournaled: Callable[[Exception | None], None],
    ) -> None:
        self._plan = plan
        self._recorder = recorder
        self._mailbox = mailbox
        self._schedulers = schedulers
        self._cancelled = cancelled  # read afresh: a subscriber may dispose any time
        self._completed = completed
        self._failed = failed
        self._unjournaled = unjournaled
        self.active = True
        # The way back (if any) has ended: a late success is not recorded.
        self.undone = False
        self.running: dict[str, RunningStep] = {}
        self._stage = 0
        self._stage_context: Any = None
        self._results: list[Any] = []
        self._remaining = 0

    def take_running(self) -> list[RunningStep]:
        """The running steps, forgotten here (the caller stops them)."""
        running, self.running = list(self.running.values()), {}
        return running

    def run_stage(self, index: int, context: Any) -> None:
        stages = self._plan.stages
        if self._recorder.lost:
            return
        if self._cancelled():  # no step starts after disposal; done ones are undone
            last = stages[min(index, len(stages) - 1)]
            self._failed(last.name, SagaCancelledError(last.name))
            return
        if index == len(stages):
            self._completed(context)
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
            if error is not None or self._cancelled():
                self._failed(step.name, error or SagaCancelledError(step.name))
                return
        recorder.commit(lambda error: self._subscribe_stage(steps, context, error))

    def _subscribe_stage(
        self, steps: tuple[SagaStep, ...], context: Any, error: Exception | None
    ) -> None:
        """The stage's starts are committed (or failed to be): subscribe its steps."""
        recorder = self._recorder
        if recorder.lost or not self.active:
            # Failing meanwhile (a sibling's write failed, say): the stage's
            # steps never start; their "started" entries err on the safe side.
            return
        if not recorder.begun:  # the saga is not in the journal: nothing happened
            self.active = False
            self._unjournaled(error)
            return
        if error is not None:
            self._failed(steps[0].name, error)
            return
        saga_id = recorder.saga_id
        subscribe_scheduler, time_scheduler = self._schedulers
        post = self._mailbox.post
        for position, step in enumerate(steps):
            if self._cancelled():
                self._failed(step.name, SagaCancelledError(step.name))
                return
            recorder.history.apply(EntryKind.STEP_STARTED, step.name, context)
            slot = self.running[step.name] = RunningStep(step, context, position)

            def on_error(error: Exception, slot: RunningStep = slot) -> None:
                post(lambda: self._step_failed(slot, error))

            def on_completed(slot: RunningStep = slot) -> None:
                slot.completed = True
                post(lambda: self._step_completed(slot))

            observable = self._plan.execution(step, context, saga_id, time_scheduler)
            slot.subscription.disposable = observable.subscribe(
                slot.on_next, on_error, on_completed, scheduler=subscribe_scheduler
            )

    def _step_failed(self, slot: RunningStep, error: BaseException) -> None:
        if slot.cancelled:  # cancelled after the saga failed: no news
            return
        del self.running[slot.step.name]
        self._failed(slot.step.name, error)

    def _step_completed(self, slot: RunningStep) -> None:
        step = slot.step
        if slot.last is NOTHING:
            if not slot.cancelled:
                del self.running[step.name]
                self._failed(step.name, SagaStepEmptyError(step.name))
            return
        if not slot.cancelled:
            del self.running[step.name]
        elif slot.recorded:
            return  # recorded when the saga failed, and compensated with the rest
        elif self.undone:
            # Its completion was on its way as the saga stopped it, and the
            # way back has ended: too late to undo it with the rest, and a
            # success journaled after the saga's end would never be undone.
            # It counts as a step cancelled mid-way (compensated only if
            # marked compensate_on_failure, which it was then).
            _log.warning(
                "saga %r: step %r completed after the saga stopped it and its "
                "compensations ended: not compensated (compensate_on_failure "
                "undoes steps stopped mid-way)",
                self._recorder.saga_id,
                step.name,
            )
            return
        recorder = self._recorder
        error = recorder.record(
            StepSucceeded(step.name, slot.last, recorder.saga_id), slot.last
        )
        if slot.cancelled:
            # It finished after all: its compensation comes from the history.
            recorder.commit(_ignore)
            return
        if error is not None:
            self._failed(step.name, error)
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
                self._failed(stage.name, merge_error)
                return
        else:
            joined = self._results[0]
        self.run_stage(self._stage + 1, joined)

    def _sibling_written(self, step: SagaStep, error: Exception | None) -> None:
        if error is not None and self.active and not self._recorder.lost:
            self._failed(step.name, error)


def _ignore(_: Exception | None) -> None:
    return None
