"""``rxr.Saga``: steps run forward; a failure compensates the succeeded ones in reverse.

``Saga`` is the builder: it freezes its stages and options into a
:class:`~rxresilience.saga._plan.SagaPlan` when it first runs, and each
subscription executes that plan in a :class:`~rxresilience.saga._run.SagaRun`.

:meth:`Saga.execute` is cold: each subscription runs one saga and emits
``StepStarted``/``StepSucceeded`` per step, then ``SagaCompleted``. When a
step fails it emits ``StepFailed`` and compensates the succeeded steps in
reverse order of completion, one after the other (``CompensationStarted``
then ``StepCompensated`` or ``CompensationFailed`` each), then errors with
:class:`~rxresilience.SagaFailed`.

Disposing the subscription, at any instant, cancels the saga: no step is
subscribed after it; the running steps are cancelled (the first reported as
``StepFailed`` with :class:`~rxresilience.SagaCancelledError`; disposed
between two steps, the step that was next); the steps that succeeded, and
the cancelled ones marked ``compensate_on_failure``, are compensated once
each, to the end; their events go to the journal and to ``Saga.events``,
not to the disposed subscriber.

With a journal, a run owns its saga there: it writes an owner token and
``lease_until = now + lease``, renews the lease every third of it while it
works, and every journal write is conditional on still holding the saga.
``rxr.recover`` takes a saga only once its lease has run out, so a slow step
is never mistaken for a dead process (or at once, when the owner ran on the
same machine and its process is gone); a run that lost its saga to a
recoverer stops at once (no further step, nothing more written) and its
subscriber gets :class:`~rxresilience.SagaOwnershipLostError`.

An exception raised by the subscriber's
``on_next`` (on any thread) is the subscriber's: it receives it once as
``on_error`` and is detached, and the saga runs on to its own end, journaled
and published on ``Saga.events``; it is neither a step failure nor a
disposal.
"""

from __future__ import annotations

import dataclasses
import typing
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Generic, Literal, TypeVar

from reactivex import Observable, abc
from reactivex import operators as ops

from .._arguments import (
    require_choice,
    require_duration,
    require_name,
    require_scheduler,
)
from .._broadcast import Broadcast
from .._clock import choose_scheduler
from .._codec import Codec, DataclassCodec, JsonCodec
from .._retry import RetryPolicy
from .._timeout import TimeoutPolicy
from ..errors import SagaError
from ._events import SagaCompleted, SagaEvent, SagaEventBroadcast
from ._journal import SagaJournal, SagaState, check_ownership
from ._plan import ParallelGroup, SagaPlan
from ._run import SagaRun
from ._step import SagaStep, check_budget

__all__ = ["ParallelGroup", "Saga"]

_C = TypeVar("_C")

#: The shortest ``Saga(lease=)``, in seconds.
SHORTEST_LEASE = 0.1

_Compensate: typing.TypeAlias = (
    Callable[[_C], Observable[Any] | None] | Callable[[_C, str], Observable[Any] | None]
)


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

    :meth:`execute` runs one saga per subscription; what it emits, and what
    disposal and a raising subscriber do, is told in this module's docstring.

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
        scheduler: the saga's time: where step timeouts, step retries and
            compensation budgets wait, and the clock of journal entries; else
            the subscribe-time scheduler, else the real clock.
        compensation_timeout: the per-attempt budget of compensations that
            set none (``SagaStep(compensation_timeout=)``): seconds for the
            whole attempt, or a ``TimeoutPolicy``; None (the default): no budget.
        lease: seconds a run's (or a recoverer's) hold on the saga in its
            journal lasts; renewed every third of it while a step or a
            compensation runs. It bounds how long a dead process's saga
            waits for recovery from another machine (on the same machine,
            a gone owner is not waited for), not how long a step may take. At
            least ``SHORTEST_LEASE`` (0.1 s: renewed every 33 ms, a lease
            must outlast a journal write by far), at most ``LONGEST_WAIT``;
            default 30.

    Raises:
        ValueError: an empty name, an ``on_compensation_failure`` other than
            those two, or a ``compensation_timeout`` or ``lease`` out of
            range.
        TypeError: a journal, codec, scheduler, ``compensation_timeout`` or
            ``lease`` of the wrong type.

    Warns:
        DeprecationWarning: from ``execute`` (and ``run``), for a journal
            that does not support ownership (a ``SagaJournal`` written
            against 0.1), naming what it lacks; its sagas run as in 0.1,
            unfenced.
    """

    def __init__(
        self,
        name: str,
        *,
        journal: SagaJournal | None = None,
        codec: Codec | None = None,
        on_compensation_failure: Literal["continue", "stop"] = "continue",
        scheduler: abc.SchedulerBase | None = None,
        compensation_timeout: float | timedelta | TimeoutPolicy | None = None,
        lease: float = 30.0,
    ) -> None:
        require_name("name", name)
        if journal is not None and not isinstance(journal, SagaJournal):
            raise TypeError(
                f"journal must be a SagaJournal, got {type(journal).__name__}"
            )
        if codec is not None and not isinstance(codec, Codec):
            raise TypeError(
                f"codec must have encode() and decode(), got {type(codec).__name__}"
            )
        require_scheduler("scheduler", scheduler)
        require_choice(
            "on_compensation_failure", on_compensation_failure, ("continue", "stop")
        )
        self.name = name
        self._journal = journal
        self._codec = codec
        self._stop_on_compensation_failure = on_compensation_failure == "stop"
        self._scheduler = scheduler
        self._compensation_timeout = check_budget(
            "compensation_timeout", compensation_timeout
        )
        self._lease = require_duration("lease", lease, positive=True)
        if self._lease < SHORTEST_LEASE:
            # Renewed every third of it: a microsecond lease renewed in a hot
            # loop, and lapsed whenever one write took longer than it.
            raise ValueError(
                f"lease must be at least {SHORTEST_LEASE} seconds, got {lease!r}"
            )
        self._stages: list[SagaStep | ParallelGroup] = []
        self._steps: dict[str, SagaStep] = {}
        self._frozen: SagaPlan | None = None
        self._events: Broadcast[SagaEvent] = SagaEventBroadcast(name, scheduler)

    # -- building --------------------------------------------------------------------

    def step(
        self,
        name: str,
        execute: Callable[[_C], Observable[_C]] | Callable[[_C, str], Observable[_C]],
        compensate: _Compensate[_C] | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | timedelta | TimeoutPolicy | None = None,
        compensation_retry: RetryPolicy | None = None,
        compensate_on_failure: bool = False,
        compensation_timeout: float | timedelta | TimeoutPolicy | None = None,
    ) -> Saga[_C]:
        """Add a step (see :class:`~rxresilience.SagaStep`); returns the saga.

        ``execute`` takes the context (or the context and the idempotency key)
        and returns an observable of the next context, of the saga's type.
        """
        return self.add(
            SagaStep(
                name,
                execute,
                compensate,
                retry=retry,
                timeout=timeout,
                compensation_retry=compensation_retry,
                compensate_on_failure=compensate_on_failure,
                compensation_timeout=compensation_timeout,
            )
        )

    def add(self, step: SagaStep) -> Saga[_C]:
        """Add a ready-made :class:`~rxresilience.SagaStep`; returns the saga."""
        if not isinstance(step, SagaStep):
            raise TypeError(f"step must be a SagaStep, got {type(step).__name__}")
        self._check_open()
        self._claim_name(step.name)
        self._steps[step.name] = step
        self._stages.append(step)
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
        group = ParallelGroup(name, tuple(steps), merge)
        for each in (name, *(s.name for s in group.steps)):
            self._claim_name(each)
        self._steps.update((step.name, step) for step in group.steps)
        self._stages.append(group)
        return self

    def _check_open(self) -> None:
        if self._frozen is not None:
            raise SagaError(
                f"saga {self.name!r} has already run: build a new saga to add steps"
            )

    def _claim_name(self, name: str) -> None:
        require_name("name", name)
        taken = set(self._steps) | {
            p.name for p in self._stages if isinstance(p, ParallelGroup)
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

    def plan(self) -> SagaPlan:
        """The frozen plan every run of this saga executes; no step can be added
        once it is made (the first run makes it)."""
        if not self._stages:
            raise SagaError(f"saga {self.name!r} has no steps")
        if self._frozen is None:
            self._frozen = SagaPlan(
                name=self.name,
                stages=tuple(self._stages),
                steps=dict(self._steps),
                codec=self.codec(),
                stop_on_compensation_failure=self._stop_on_compensation_failure,
                compensation_timeout=self._compensation_timeout,
                scheduler=self._scheduler,
                lease=self._lease,
                events=self._events,
            )
        return self._frozen

    def execute(
        self,
        context: _C,
        *,
        journal: SagaJournal | None = None,
        saga_id: str | None = None,
    ) -> Observable[SagaEvent]:
        """Run one saga per subscription, as a stream of events (cold)."""
        if not self._stages:
            raise SagaError(f"saga {self.name!r} has no steps")
        if saga_id is not None:
            require_name("saga_id", saga_id)
        chosen = journal if journal is not None else self._journal
        if chosen is not None and not isinstance(chosen, SagaJournal):
            raise TypeError(
                f"journal must be a SagaJournal, got {type(chosen).__name__}"
            )
        if chosen is not None:
            check_ownership(chosen)
        plan = self.plan()

        def subscribe(
            observer: abc.ObserverBase[SagaEvent],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            run = SagaRun(
                plan,
                chosen,
                saga_id or f"{self.name}-{uuid.uuid4().hex}",
                (scheduler_, choose_scheduler(plan.scheduler, scheduler_)),
                observer,
            )
            run.start(context)
            return run

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
        return _codec_of(getattr(self, "__orig_class__", None))

    def __repr__(self) -> str:
        return f"Saga({self.name!r}, steps={list(self._steps)})"


def _codec_of(parametrised: object) -> Codec:
    """A ``DataclassCodec`` for ``Saga[SomeDataclass]``, else JSON."""
    kind = next(iter(typing.get_args(parametrised)), None)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return DataclassCodec(kind)
    return JsonCodec()
