"""The frozen plan a ``Saga`` builds: its stages, steps and options.

A run executes one plan; recovery compensates from the same plan. The plan
also makes each step's and compensation's observable, with its budgets and
retries on the run's time scheduler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import reactivex as rx
from reactivex import Observable, abc

from .._arguments import require_callable, require_name
from .._broadcast import Broadcast
from .._clock import choose_scheduler
from .._codec import Codec
from .._retry import RetryPolicy, retry
from .._timeout import AttemptBudget, TimeoutPolicy, per_attempt, timeout
from ._events import SagaEvent
from ._step import SagaStep

__all__ = ["Budget", "ParallelGroup", "SagaPlan"]

Budget = AttemptBudget | None
"""A per-attempt budget of a step or compensation, or None for none."""


@dataclass(frozen=True, slots=True)
class ParallelGroup:
    """Steps that run at once from the same context; ``merge`` joins their results."""

    name: str
    steps: tuple[SagaStep, ...]
    merge: Callable[[Any, list[Any]], Any]

    def __post_init__(self) -> None:
        require_name("name", self.name)
        if not self.steps:
            raise ValueError("steps must not be empty")
        if not all(isinstance(s, SagaStep) for s in self.steps):
            raise TypeError("steps must be SagaStep values")
        require_callable("merge", self.merge)
        names = [self.name, *(s.name for s in self.steps)]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate step name in parallel group {self.name!r}")


@dataclass(frozen=True, slots=True)
class SagaPlan:
    """What one run of a saga executes, frozen when the saga first runs.

    Attributes:
        name: the saga's name.
        stages: steps and parallel groups, in order.
        steps: every step by name (parallel siblings included).
        codec: how contexts are written in a journal.
        stop_on_compensation_failure: ``on_compensation_failure="stop"``.
        compensation_timeout: the budget of compensations that set none.
        scheduler: the saga's own scheduler, if it was given one.
        lease: seconds an owner's hold on the saga lasts from each renewal.
        events: where every run publishes its events (``Saga.events``).
    """

    name: str
    stages: tuple[SagaStep | ParallelGroup, ...]
    steps: Mapping[str, SagaStep]
    codec: Codec
    stop_on_compensation_failure: bool = False
    compensation_timeout: Budget = None
    scheduler: abc.SchedulerBase | None = None
    lease: float = 30.0
    events: Broadcast[SagaEvent] = field(default_factory=Broadcast, compare=False)

    def execution(
        self,
        step: SagaStep,
        context: Any,
        saga_id: str,
        time_scheduler: abc.SchedulerBase,
    ) -> Observable[Any]:
        """A step's observable: ``execute`` per attempt, its timeout inside its
        retry, both on ``time_scheduler`` (a retry policy's own scheduler wins)."""
        key = f"{saga_id}:{step.name}"

        def attempt(_: abc.SchedulerBase | None) -> Observable[Any]:
            result = step.execution(context, key)
            if not isinstance(result, Observable):
                raise TypeError(
                    f"step {step.name!r}: execute must return an Observable, got "
                    f"{type(result).__name__}"
                )
            return result

        return _budgeted(rx.defer(attempt), step.timeout, step.retry, time_scheduler)

    def compensation(
        self,
        step: SagaStep,
        context: Any,
        saga_id: str,
        time_scheduler: abc.SchedulerBase,
        default_budget: Budget = None,
    ) -> Observable[Any]:
        """A compensation's observable: its own budget, else the saga's, else
        ``default_budget`` (recovery's), inside ``compensation_retry``."""
        key = f"{saga_id}:{step.name}:compensate"

        def attempt(_: abc.SchedulerBase | None) -> Observable[Any]:
            result = step.compensation(context, key)
            if result is None:
                return rx.empty()
            if not isinstance(result, Observable):
                raise TypeError(
                    f"step {step.name!r}: compensate must return an Observable or "
                    f"None, got {type(result).__name__}"
                )
            return result

        budget = step.compensation_timeout
        if budget is None:
            budget = self.compensation_timeout
        if budget is None:
            budget = default_budget
        if budget is not None and not isinstance(budget, TimeoutPolicy):
            # Its values are ignored: the budget is the whole attempt's (a gap
            # budget let one that keeps emitting run, and a recovery wait, for
            # good).
            budget = TimeoutPolicy(total=budget)
        return _budgeted(
            rx.defer(attempt), budget, step.compensation_retry, time_scheduler
        )


def _budgeted(
    observable: Observable[Any],
    budget: Budget,
    policy: RetryPolicy | None,
    time_scheduler: abc.SchedulerBase,
) -> Observable[Any]:
    if budget is not None:
        each = per_attempt("timeout", budget)
        observable = observable.pipe(timeout(each, scheduler=time_scheduler))
    if policy is not None:
        own = choose_scheduler(policy.scheduler, time_scheduler)
        observable = observable.pipe(retry(policy, scheduler=own))
    return observable
