"""Compensations, one after the other, each to its end: for a run and for recovery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import abc

from ._events import CompensationFailed, CompensationStarted, StepCompensated
from ._mailbox import Mailbox
from ._plan import Budget, SagaPlan
from ._recorder import Recorder
from ._step import SagaStep

__all__ = ["Compensation", "CompensationErrors"]

CompensationErrors = tuple[tuple[str, BaseException], ...]
NextItem = Callable[[], tuple[SagaStep, Any] | None]


class Compensation:
    """Undoes steps in the order ``next_item`` gives them, then calls ``on_end``.

    Each compensation is journaled and published (``CompensationStarted``,
    then ``StepCompensated`` or ``CompensationFailed``) and runs to its end:
    nobody's disposal cancels it; its budget (``compensation_timeout``) ends
    a hung one. A failure does not stop the others unless the plan says
    ``stop``; then ``on_end`` also gets the steps ``remaining`` names, which
    never ran. Every notification goes through the run's mailbox. Once the
    recorder is ``lost`` (another owner holds the saga) no compensation starts
    and ``on_end`` is never called.
    """

    __slots__ = (
        "_default_budget",
        "_mailbox",
        "_next_item",
        "_on_end",
        "_plan",
        "_recorder",
        "_remaining",
        "_subscribe_scheduler",
        "_time_scheduler",
        "errors",
    )

    def __init__(
        self,
        plan: SagaPlan,
        recorder: Recorder,
        mailbox: Mailbox,
        schedulers: tuple[abc.SchedulerBase | None, abc.SchedulerBase],
        next_item: NextItem,
        remaining: Callable[[], list[str]],
        on_end: Callable[[CompensationErrors, tuple[str, ...]], None],
        default_budget: Budget = None,
    ) -> None:
        self._plan = plan
        self._recorder = recorder
        self._mailbox = mailbox
        self._subscribe_scheduler, self._time_scheduler = schedulers
        self._next_item = next_item
        self._remaining = remaining
        self._on_end = on_end
        self._default_budget = default_budget
        self.errors: list[tuple[str, BaseException]] = []

    def start(self) -> None:
        """Begin (from a handler of the mailbox)."""
        self._next()

    def _next(self) -> None:
        if self._recorder.lost:  # the saga is another owner's: stop here
            return
        item = self._next_item()
        if item is None:
            self._on_end(tuple(self.errors), ())
            return
        step, context = item
        recorder = self._recorder
        recorder.record(CompensationStarted(step.name, recorder.saga_id))
        # Committed (with what came before it) before the compensation runs.
        recorder.commit(lambda error: self._run(step, context, error))

    def _run(
        self, step: SagaStep, context: Any, journal_error: Exception | None
    ) -> None:
        recorder = self._recorder
        if recorder.lost:
            return
        if journal_error is not None:
            self._ended(step, journal_error)
            return
        try:
            observable = self._plan.compensation(
                step,
                context,
                recorder.saga_id,
                self._time_scheduler,
                self._default_budget,
            )
        except Exception as error:
            self._ended(step, error)
            return
        post = self._mailbox.post

        def on_error(error: Exception) -> None:
            post(lambda: self._ended(step, error))

        def on_completed() -> None:
            post(lambda: self._ended(step, None))

        # Not kept: a compensation runs to its end even if our subscriber disposes.
        observable.subscribe(
            on_next=_ignore,
            on_error=on_error,
            on_completed=on_completed,
            scheduler=self._subscribe_scheduler,
        )

    def _ended(self, step: SagaStep, error: BaseException | None) -> None:
        saga_id = self._recorder.saga_id
        if self._recorder.lost:
            return
        if error is None:
            # Written with the next compensation's start, or the saga's end.
            self._recorder.record(StepCompensated(step.name, saga_id))
            self._next()
            return
        self.errors.append((step.name, error))
        self._recorder.record(CompensationFailed(step.name, error, saga_id))
        if self._plan.stop_on_compensation_failure:
            self._on_end(tuple(self.errors), tuple(self._remaining()))
            return
        self._next()


def _ignore(_: Any) -> None:
    return None
