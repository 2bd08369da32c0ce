"""``rxr.Saga``: steps run forward; a failure compensates the succeeded ones in reverse."""

from __future__ import annotations

import collections
import dataclasses
import threading
import typing
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, Literal, TypeVar

import reactivex as rx
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable, SingleAssignmentDisposable

from .._arguments import require_choice
from .._broadcast import Broadcast
from .._clock import choose_scheduler, clock_of
from .._codec import Codec, DataclassCodec, JsonCodec
from .._retry import RetryPolicy, retry
from .._timeout import TimeoutPolicy, timeout
from ..errors import SagaCancelledError, SagaError, SagaFailed, SagaStepEmptyError
from ._events import (
    CompensationFailed,
    CompensationStarted,
    SagaCompleted,
    SagaEvent,
    StepCompensated,
    StepFailed,
    StepStarted,
    StepSucceeded,
)
from ._journal import (
    COMPENSATED,
    COMPENSATION_FAILED,
    COMPENSATION_STARTED,
    STEP_FAILED,
    STEP_STARTED,
    STEP_SUCCEEDED,
    JournalEntry,
    SagaJournal,
    SagaState,
)
from ._step import SagaStep, call_with_key

__all__ = ["ParallelGroup", "Saga"]

_C = TypeVar("_C")
_NOTHING: Any = object()


@dataclass(frozen=True, slots=True)
class ParallelGroup:
    """Steps that run at once from the same context; ``merge`` joins their results."""

    name: str
    steps: tuple[SagaStep, ...]
    merge: Callable[[Any, list[Any]], Any]


class Saga(Generic[_C]):
    """A saga: steps that run forward, compensated in reverse when one fails.

    Build it once, run it many times::

        order_saga = (
            rxr.Saga[OrderContext]("order")
            .step("reserve_inventory", execute=reserve, compensate=release)
            .step("process_payment", execute=charge, compensate=refund,
                  retry=rxr.RetryPolicy(max_attempts=3), timeout=10.0)
            .step("create_shipping", execute=ship, compensate=cancel_label)
        )
        events = order_saga.execute(OrderContext(order))   # Observable[SagaEvent]
        final = order_saga.run(OrderContext(order))        # Observable[OrderContext]

    :meth:`execute` is cold: each subscription runs one saga and emits
    ``StepStarted``/``StepSucceeded`` per step, then ``SagaCompleted``. When a
    step fails it emits ``StepFailed`` and compensates the succeeded steps in
    reverse order of completion, one after the other (``CompensationStarted``
    then ``StepCompensated`` or ``CompensationFailed`` each), then errors with
    :class:`~rxresilience.SagaFailed`. Disposing mid-saga cancels the running
    step but still runs the compensations to the end; their events go to the
    journal and to :attr:`events`, not to the disposed subscriber.

    Examples:
        >>> import reactivex as rx
        >>> saga = (
        ...     Saga("double")
        ...     .step("twice", execute=lambda n: rx.of(n * 2))
        ...     .step("plus_one", execute=lambda n: rx.of(n + 1))
        ... )
        >>> saga.run(20).run()
        41

    Args:
        name: the saga's name (what ``rxr.recover`` finds it by).
        journal: the default journal of :meth:`execute`, :meth:`run` and
            :meth:`state`.
        codec: how contexts are stored in a journal; default: a
            :class:`~rxresilience.DataclassCodec` when the saga is
            parametrised with a dataclass (``Saga[OrderContext]``), else JSON.
        on_compensation_failure: ``"continue"`` (default) runs the other
            compensations after one fails; ``"stop"`` stops there and the
            ``SagaFailed`` lists the compensations that never ran.
        scheduler: the clock of journal entries, else the subscribe-time
            scheduler, else the real clock.
    """

    def __init__(
        self,
        name: str,
        *,
        journal: SagaJournal | None = None,
        codec: Codec | None = None,
        on_compensation_failure: Literal["continue", "stop"] = "continue",
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        if journal is not None and not isinstance(journal, SagaJournal):
            raise TypeError(
                f"journal must be a SagaJournal, got {type(journal).__name__}"
            )
        require_choice(
            "on_compensation_failure", on_compensation_failure, ("continue", "stop")
        )
        self.name = name
        self._journal = journal
        self._codec = codec
        self._stop_on_compensation_failure = on_compensation_failure == "stop"
        self._scheduler = scheduler
        self._plan: list[SagaStep | ParallelGroup] = []
        self._steps: dict[str, SagaStep] = {}
        self._sealed = False
        self._events: Broadcast[SagaEvent] = Broadcast()

    # -- building --------------------------------------------------------------------

    def step(
        self,
        name: str,
        execute: Callable[..., Observable[Any]],
        compensate: Callable[..., Observable[Any] | None] | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | timedelta | TimeoutPolicy | None = None,
        compensation_retry: RetryPolicy | None = None,
        compensate_on_failure: bool = False,
    ) -> Saga[_C]:
        """Add a step (see :class:`~rxresilience.SagaStep`); returns the saga."""
        return self.add(
            SagaStep(
                name,
                execute,
                compensate,
                retry=retry,
                timeout=timeout,
                compensation_retry=compensation_retry,
                compensate_on_failure=compensate_on_failure,
            )
        )

    def add(self, step: SagaStep) -> Saga[_C]:
        """Add a ready-made :class:`~rxresilience.SagaStep`; returns the saga."""
        if not isinstance(step, SagaStep):
            raise TypeError(f"step must be a SagaStep, got {type(step).__name__}")
        self._check_open()
        self._claim_name(step.name)
        self._steps[step.name] = step
        self._plan.append(step)
        return self

    def parallel(
        self,
        name: str,
        steps: Sequence[SagaStep],
        merge: Callable[[_C, list[_C]], _C],
    ) -> Saga[_C]:
        """Add steps that run at once; ``merge(ctx, results)`` joins their contexts.

        ``results`` come in the order the steps were given. When one fails,
        its running siblings are cancelled and the steps that succeeded are
        compensated in reverse order of completion.
        """
        self._check_open()
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        group = tuple(steps)
        if not group:
            raise ValueError("steps must not be empty")
        if not all(isinstance(s, SagaStep) for s in group):
            raise TypeError("steps must be SagaStep values")
        if not callable(merge):
            raise TypeError(f"merge must be callable, got {type(merge).__name__}")
        names = [name, *(s.name for s in group)]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate step name in parallel group {name!r}")
        for each in names:
            self._claim_name(each)
        for step in group:
            self._steps[step.name] = step
        self._plan.append(ParallelGroup(name, group, merge))
        return self

    def _check_open(self) -> None:
        if self._sealed:
            raise SagaError(
                f"saga {self.name!r} has already run: build a new saga to add steps"
            )

    def _claim_name(self, name: str) -> None:
        taken = set(self._steps) | {
            p.name for p in self._plan if isinstance(p, ParallelGroup)
        }
        if name in taken:
            raise ValueError(f"duplicate step name {name!r} in saga {self.name!r}")

    # -- running -------------------------------------------------------------------------

    @property
    def events(self) -> Observable[SagaEvent]:
        """A hot stream of the events of every run of this saga (no replay)."""
        return self._events

    @property
    def steps(self) -> dict[str, SagaStep]:
        """The saga's steps by name (parallel siblings included)."""
        return dict(self._steps)

    def execute(
        self,
        context: _C,
        *,
        journal: SagaJournal | None = None,
        saga_id: str | None = None,
    ) -> Observable[SagaEvent]:
        """Run one saga per subscription, as a stream of events (cold)."""
        if not self._plan:
            raise SagaError(f"saga {self.name!r} has no steps")
        if saga_id is not None and (not isinstance(saga_id, str) or not saga_id):
            raise ValueError(f"saga_id must be a non-empty string, got {saga_id!r}")
        chosen = journal if journal is not None else self._journal
        if chosen is not None and not isinstance(chosen, SagaJournal):
            raise TypeError(
                f"journal must be a SagaJournal, got {type(chosen).__name__}"
            )
        self._sealed = True

        def subscribe(
            observer: abc.ObserverBase[SagaEvent],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            run = _SagaRun(
                self,
                chosen,
                saga_id or f"{self.name}-{uuid.uuid4().hex}",
                scheduler_,
                choose_scheduler(self._scheduler, scheduler_),
                observer,
            )
            run.start(context)
            return Disposable(run.detach)

        return Observable(subscribe)

    def run(
        self,
        context: _C,
        *,
        journal: SagaJournal | None = None,
        saga_id: str | None = None,
    ) -> Observable[_C]:
        """Run one saga per subscription; emit only the final context."""
        completed: Observable[_C] = self.execute(
            context, journal=journal, saga_id=saga_id
        ).pipe(
            ops.filter(lambda event: isinstance(event, SagaCompleted)),
            ops.map(lambda event: typing.cast(SagaCompleted, event).context),
        )
        return completed

    def state(
        self, saga_id: str, journal: SagaJournal | None = None
    ) -> SagaState | None:
        """What a saga run is doing, from ``journal`` or the saga's own."""
        chosen = journal if journal is not None else self._journal
        if chosen is None:
            raise SagaError("state() needs a journal: give one here or to the Saga")
        return chosen.state(saga_id)

    def codec(self) -> Codec:
        """The codec of this saga's contexts in a journal."""
        if self._codec is not None:
            return self._codec
        kind = next(iter(typing.get_args(getattr(self, "__orig_class__", None))), None)
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            return DataclassCodec(kind)
        return JsonCodec()

    def __repr__(self) -> str:
        return f"Saga({self.name!r}, steps={list(self._steps)})"


def _ignore(_: Any) -> None:
    return None


class _Completion:
    """How one compensation ended, whether at once or later on another callback."""

    __slots__ = ("_async", "_done", "_error", "_lock", "_on_async")

    def __init__(self, on_async: Callable[[BaseException | None], None]) -> None:
        self._lock = threading.Lock()
        self._done = False
        self._async = False
        self._error: BaseException | None = None
        self._on_async = on_async

    def finish(self, error: BaseException | None) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
            self._error = error
            later = self._async
        if later:
            self._on_async(error)

    def complete(self) -> None:
        self.finish(None)

    def settle_now(self) -> tuple[bool, BaseException | None]:
        """(True, error) if it already ended; else hand the end to ``on_async``."""
        with self._lock:
            if self._done:
                return True, self._error
            self._async = True
            return False, None


class _SagaRun:
    """One run of a saga (or one recovery): forward steps, then compensations."""

    def __init__(
        self,
        saga: Saga[Any],
        journal: SagaJournal | None,
        saga_id: str,
        scheduler_: abc.SchedulerBase | None,
        time_scheduler: abc.SchedulerBase,
        observer: abc.ObserverBase[SagaEvent] | None,
        on_end: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self.saga = saga
        self.journal = journal
        self.saga_id = saga_id
        self._scheduler = scheduler_
        # The journal's clock, and where step timeouts and retries wait.
        self._time_scheduler = time_scheduler
        self._clock = clock_of(time_scheduler)
        self._codec = saga.codec() if journal is not None else None
        self._observer = observer
        self._on_end = on_end
        self._lock = threading.RLock()
        self._completed: list[tuple[SagaStep, Any]] = []
        self._running: dict[str, tuple[SagaStep, Any, SingleAssignmentDisposable]] = {}
        self._failed = False
        self._failed_step = ""
        self._cause: BaseException | None = None
        self._queue: collections.deque[tuple[SagaStep, Any]] = collections.deque()
        self._compensation_errors: list[tuple[str, BaseException]] = []
        self._not_compensated: list[str] = []
        self._ended = False

    # -- plumbing ---------------------------------------------------------------------

    def _emit(self, event: SagaEvent) -> None:
        observer = self._observer
        if observer is not None:
            observer.on_next(event)
        self.saga._events.emit(event)

    def _write(
        self,
        kind: str,
        step: str,
        context: Any = _NOTHING,
        error: BaseException | None = None,
    ) -> None:
        journal = self.journal
        if journal is None:
            return
        assert self._codec is not None
        encoded = None if context is _NOTHING else self._codec.encode(context)
        described = None if error is None else f"{type(error).__qualname__}: {error}"
        journal.append(
            self.saga_id, JournalEntry(kind, step, encoded, described), self._clock()
        )

    def detach(self) -> None:
        """The subscriber disposed: cancel the running steps, compensate detached."""
        with self._lock:
            self._observer = None
            running = list(self._running.values())
        for step, context, subscription in running:
            subscription.dispose()
            self._step_failed(step, context, SagaCancelledError(step.name))

    # -- forward --------------------------------------------------------------------

    def start(self, context: Any) -> None:
        if self.journal is not None:
            try:
                self.journal.begin(self.saga_id, self.saga.name, self._clock())
            except Exception as error:
                self._end(error)
                return
        self._forward(0, context)

    def _forward(self, index: int, context: Any) -> None:
        plan = self.saga._plan
        if index == len(plan):
            self._succeed(context)
            return
        item = plan[index]
        if isinstance(item, SagaStep):
            self._start_steps(
                (item,), context, lambda results: self._forward(index + 1, results[0])
            )
            return

        def merged(results: list[Any]) -> None:
            try:
                joined = item.merge(context, results)
            except Exception as error:
                self._fail(item.name, error, ())
                return
            self._forward(index + 1, joined)

        self._start_steps(item.steps, context, merged)

    def _start_steps(
        self,
        steps: tuple[SagaStep, ...],
        context: Any,
        on_all: Callable[[list[Any]], None],
    ) -> None:
        results: list[Any] = [None] * len(steps)
        remaining = [len(steps)]
        for step in steps:
            self._emit(StepStarted(step.name, self.saga_id))
            try:
                self._write(STEP_STARTED, step.name, context)
            except Exception as error:
                self._step_failed(step, context, error)
                return
        for index, step in enumerate(steps):
            if self._failed:
                return
            subscription = SingleAssignmentDisposable()
            with self._lock:
                self._running[step.name] = (step, context, subscription)
            last: list[Any] = [_NOTHING]

            def on_next(value: Any, last: list[Any] = last) -> None:
                last[0] = value

            def on_error(error: Exception, step: SagaStep = step) -> None:
                self._step_failed(step, context, error)

            def on_completed(
                step: SagaStep = step, index: int = index, last: list[Any] = last
            ) -> None:
                if last[0] is _NOTHING:
                    self._step_failed(step, context, SagaStepEmptyError(step.name))
                    return
                self._step_succeeded(step, last[0], index, results, remaining, on_all)

            subscription.disposable = self._step_observable(step, context).subscribe(
                on_next, on_error, on_completed, scheduler=self._scheduler
            )

    def _step_observable(self, step: SagaStep, context: Any) -> Observable[Any]:
        key = f"{self.saga_id}:{step.name}"

        def attempt(_: abc.SchedulerBase | None) -> Observable[Any]:
            result = call_with_key(step.execute, context, key)
            if not isinstance(result, Observable):
                raise TypeError(
                    f"step {step.name!r}: execute must return an Observable, got "
                    f"{type(result).__name__}"
                )
            return result

        observable: Observable[Any] = rx.defer(attempt)
        if step.timeout is not None:
            budget = step.timeout
            policy = (
                budget
                if isinstance(budget, TimeoutPolicy)
                else TimeoutPolicy(each=budget)
            )
            observable = observable.pipe(
                timeout(policy, scheduler=self._time_scheduler)
            )
        if step.retry is not None:
            observable = observable.pipe(self._retry(step.retry))
        return observable

    def _step_succeeded(
        self,
        step: SagaStep,
        context: Any,
        index: int,
        results: list[Any],
        remaining: list[int],
        on_all: Callable[[list[Any]], None],
    ) -> None:
        with self._lock:
            self._running.pop(step.name, None)
            late = self._failed
            self._completed.append((step, context))
            if late:  # a sibling that finished after another failed: undo it too
                self._queue.appendleft((step, context))
        try:
            self._write(STEP_SUCCEEDED, step.name, context)
        except Exception as error:
            if not late:
                self._fail(step.name, error, ())
            return
        self._emit(StepSucceeded(step.name, context, self.saga_id))
        if late:
            return
        results[index] = context
        remaining[0] -= 1
        if remaining[0] == 0:
            on_all(results)

    def _step_failed(self, step: SagaStep, context: Any, error: BaseException) -> None:
        with self._lock:
            entry = self._running.pop(step.name, None)
            if self._failed:
                if entry is not None and step.compensate_on_failure:
                    self._queue.appendleft((step, context))
                return
            cancelled = list(self._running.values())
            self._running.clear()
        for _, _, subscription in cancelled:
            subscription.dispose()
        partial = [(step, context)] if step.compensate_on_failure else []
        partial += [(s, c) for s, c, _ in cancelled if s.compensate_on_failure]
        self._fail(step.name, error, tuple(partial))

    def _fail(
        self,
        step_name: str,
        error: BaseException,
        partial: tuple[tuple[SagaStep, Any], ...],
    ) -> None:
        with self._lock:
            self._failed = True
            self._failed_step = step_name
            self._cause = error
            self._queue.extend(partial)
            self._queue.extend(reversed(self._completed))
        self._emit(StepFailed(step_name, error, self.saga_id))
        try:
            self._write(STEP_FAILED, step_name, error=error)
        except Exception as journal_error:
            self._compensation_errors.append((step_name, journal_error))
        self._compensate_next()

    def _succeed(self, context: Any) -> None:
        if self.journal is not None:
            try:
                self.journal.finish(self.saga_id, "completed", self._clock())
            except Exception as error:
                self._end(error)
                return
        self._emit(SagaCompleted(context, self.saga_id))
        self._end(None)

    # -- compensation ---------------------------------------------------------------

    def compensate(
        self, failed_step: str, cause: BaseException, queue: list[tuple[SagaStep, Any]]
    ) -> None:
        """Start compensating ``queue`` (for recovery, with no forward run)."""
        self._failed = True
        self._failed_step = failed_step
        self._cause = cause
        self._queue.extend(queue)
        self._compensate_next()

    def _compensate_next(self) -> None:
        """Run the queued compensations one after the other, then end."""
        while True:
            with self._lock:
                if not self._queue:
                    break
                step, context = self._queue.popleft()
            if step.compensate is None:
                continue
            self._emit(CompensationStarted(step.name, self.saga_id))

            def resume(error: BaseException | None, step: SagaStep = step) -> None:
                if self._compensation_ended(step, error):
                    self._compensate_next()

            completion = _Completion(resume)
            try:
                self._write(COMPENSATION_STARTED, step.name)
                observable = self._compensation_observable(step, context)
            except Exception as failure:
                completion.finish(failure)
            else:
                # Not kept: a compensation runs to its end even if our subscriber
                # disposes (the explicit exception to disposal cancelling work).
                observable.subscribe(
                    on_next=_ignore,
                    on_error=completion.finish,
                    on_completed=completion.complete,
                    scheduler=self._scheduler,
                )
            finished, outcome = completion.settle_now()
            if not finished:
                return  # `resume` carries on when the compensation ends
            if not self._compensation_ended(step, outcome):
                return
        self._end_failed()

    def _compensation_observable(self, step: SagaStep, context: Any) -> Observable[Any]:
        assert step.compensate is not None
        compensate = step.compensate
        key = f"{self.saga_id}:{step.name}:compensate"

        def attempt(_: abc.SchedulerBase | None) -> Observable[Any]:
            result = call_with_key(compensate, context, key)
            if result is None:
                return rx.empty()
            if not isinstance(result, Observable):
                raise TypeError(
                    f"step {step.name!r}: compensate must return an Observable or "
                    f"None, got {type(result).__name__}"
                )
            return result

        observable: Observable[Any] = rx.defer(attempt)
        if step.compensation_retry is not None:
            observable = observable.pipe(self._retry(step.compensation_retry))
        return observable

    def _retry(
        self, policy: RetryPolicy
    ) -> Callable[[Observable[Any]], Observable[Any]]:
        """A step's retry: on its policy's own scheduler, else the saga's."""
        own = choose_scheduler(policy.scheduler, self._time_scheduler)
        return retry(policy, scheduler=own)

    def _compensation_ended(self, step: SagaStep, error: BaseException | None) -> bool:
        """Record a compensation's end; False when the saga stops compensating."""
        if error is None:
            try:
                self._write(COMPENSATED, step.name)
            except Exception as journal_error:
                error = journal_error
            else:
                self._emit(StepCompensated(step.name, self.saga_id))
                return True
        self._compensation_errors.append((step.name, error))
        try:
            self._write(COMPENSATION_FAILED, step.name, error=error)
        except Exception as journal_error:
            self._compensation_errors.append((step.name, journal_error))
        self._emit(CompensationFailed(step.name, error, self.saga_id))
        if self.saga._stop_on_compensation_failure:
            with self._lock:
                self._not_compensated = [
                    s.name for s, _ in self._queue if s.compensate is not None
                ]
                self._queue.clear()
            self._end_failed()
            return False
        return True

    def _end_failed(self) -> None:
        status = (
            "failed"
            if self._compensation_errors or self._not_compensated
            else "compensated"
        )
        if self.journal is not None:
            try:
                self.journal.finish(self.saga_id, status, self._clock())
            except Exception as error:
                self._compensation_errors.append(("journal", error))
        cause = self._cause if self._cause is not None else SagaError("unknown cause")
        self._end(
            SagaFailed(
                self.saga_id,
                self._failed_step,
                cause,
                tuple(self._compensation_errors),
                tuple(self._not_compensated),
            )
        )

    def _end(self, error: BaseException | None) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
            observer = self._observer
        if self._on_end is not None:
            self._on_end(error)
        if observer is None:
            return
        if error is None:
            observer.on_completed()
        else:
            observer.on_error(
                error if isinstance(error, Exception) else SagaError(str(error))
            )
