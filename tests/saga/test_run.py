"""Guarantee 1: a saga can be cancelled at any instant and leaves the world consistent.

After disposal no step is subscribed; what succeeded (and what was running,
if marked ``compensate_on_failure``) is compensated exactly once, to the end;
the journal ends in a terminal status; no timer is left behind.
"""

from __future__ import annotations

import collections
import pathlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import reactivex as rx
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.disposable import SingleAssignmentDisposable
from reactivex.testing import TestScheduler

import rxresilience as rxr

from .. import _saga_worker as worker
from .._saga_worker import TERMINAL, wait_until_terminal
from .._support import pending


@pytest.fixture(params=["memory", "sqlite", "redis"])
def saga_journal(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> Iterator[rxr.SagaJournal]:
    yield from worker.journal_of(request, tmp_path)


class Boom(Exception):
    pass


@dataclass(frozen=True)
class Spec:
    """A generated step: how long it and its undo take, whether it fails."""

    seconds: int
    fails: bool
    marked: bool
    undo_seconds: int


@dataclass
class World:
    """What the steps and compensations really did, seen from their side."""

    scheduler: TestScheduler
    disposed: bool = False
    executed: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    undo_started: collections.Counter[str] = field(default_factory=collections.Counter)
    undo_done: collections.Counter[str] = field(default_factory=collections.Counter)

    def step(self, name: str, spec: Spec) -> rxr.SagaStep:
        scheduler = self.scheduler

        def execute(ctx: list[str]) -> rx.Observable[list[str]]:
            self.executed.append(name)
            if self.disposed:
                self.late.append(name)
            if spec.fails:
                outcome: rx.Observable[list[str]] = rx.throw(Boom(name))
            else:
                outcome = rx.of([*ctx, name]).pipe(
                    ops.do_action(on_completed=lambda: self.finished.append(name))
                )
            if not spec.seconds:
                return outcome
            return rx.timer(spec.seconds, scheduler=scheduler).pipe(
                ops.flat_map(lambda _: outcome)
            )

        def compensate(ctx: list[str]) -> rx.Observable[Any]:
            self.undo_started[name] += 1
            done: rx.Observable[Any] = rx.empty().pipe(
                ops.do_action(on_completed=lambda: self.undo_done.update([name]))
            )
            if not spec.undo_seconds:
                return done
            return rx.timer(spec.undo_seconds, scheduler=scheduler).pipe(
                ops.ignore_elements(), ops.concat(done)
            )

        return rxr.SagaStep(
            name, execute, compensate, compensate_on_failure=spec.marked
        )


specs = st.builds(
    Spec,
    seconds=st.integers(0, 3),
    fails=st.sampled_from([False, False, False, False, True]),
    marked=st.booleans(),
    undo_seconds=st.integers(0, 2),
)
stages = st.lists(
    st.one_of(specs, st.lists(specs, min_size=2, max_size=3)), min_size=1, max_size=4
)
disposals = st.one_of(
    st.tuples(st.just("at"), st.integers(0, 30).map(lambda n: n / 2)),
    st.tuples(st.just("on"), st.integers(0, 20)),
)


def build(world: World, shape: list[Any]) -> rxr.Saga[list[str]]:
    saga: rxr.Saga[list[str]] = rxr.Saga("cancel")
    for index, stage in enumerate(shape):
        if isinstance(stage, Spec):
            saga.add(world.step(f"s{index}", stage))
        else:
            group = [world.step(f"s{index}{k}", spec) for k, spec in enumerate(stage)]
            saga.parallel(f"g{index}", group, merge=lambda ctx, results: results[0])
    return saga


@settings(max_examples=300, deadline=None)
@given(shape=stages, disposal=disposals)
def test_disposal_at_any_instant_compensates_exactly_what_happened(
    shape: list[Any], disposal: tuple[str, float]
) -> None:
    scheduler = TestScheduler()
    world = World(scheduler)
    saga = build(world, shape)
    journal = rxr.InMemorySagaJournal()
    published: list[Any] = []
    saga.events.subscribe(published.append)
    seen_after_dispose: list[Any] = []
    subscription = SingleAssignmentDisposable()
    count = [0]
    asked = [False]

    def dispose() -> None:
        world.disposed = True
        subscription.dispose()

    def on_next(event: Any) -> None:
        if world.disposed:
            seen_after_dispose.append(event)
        count[0] += 1
        if disposal[0] == "on" and count[0] == disposal[1] + 1:
            if subscription.disposable is None:
                asked[0] = True  # inside subscribe: dispose once it returns
            else:
                dispose()

    subscription.disposable = saga.execute(
        [], journal=journal, saga_id="c-1"
    ).subscribe(on_next, lambda e: None, scheduler=scheduler)
    if asked[0]:
        dispose()
    if disposal[0] == "at":
        scheduler.schedule_absolute(disposal[1], lambda *_: dispose())
    scheduler.advance_to(100.0)

    assert world.late == [], "a step was subscribed after disposal"
    assert seen_after_dispose == []
    state = journal.state("c-1")
    assert state is not None
    assert state.status in TERMINAL
    assert pending(scheduler) == [], "a timer is left behind"
    succeeded = [e.step for e in published if isinstance(e, rxr.StepSucceeded)]
    assert sorted(succeeded) == sorted(world.finished)
    if state.status == "completed":
        assert not world.undo_started
        return
    marked = {
        name
        for name in world.executed
        if name not in world.finished and world_marked(saga, name)
    }
    expected = collections.Counter({*world.finished, *marked})
    assert world.undo_started == expected, "each compensated exactly once"
    assert world.undo_done == expected, "each compensation ran to its end"
    assert state.status == "compensated"
    assert sorted(state.compensated_steps) == sorted(expected)
    compensated = [e.step for e in published if isinstance(e, rxr.StepCompensated)]
    assert sorted(compensated) == sorted(expected)


def world_marked(saga: rxr.Saga[Any], name: str) -> bool:
    return saga.steps[name].compensate_on_failure


# --- the cases the property found, by name -----------------------------------------------


def test_disposal_between_two_steps_starts_no_further_step() -> None:
    """Disposed from inside on_next(StepSucceeded(a)): b never starts, a is undone."""
    scheduler = TestScheduler()
    world = World(scheduler)
    saga = build(world, [Spec(1, False, False, 0), Spec(1, False, False, 0)])
    journal = rxr.InMemorySagaJournal()
    holder = SingleAssignmentDisposable()

    def on_next(event: Any) -> None:
        if isinstance(event, rxr.StepSucceeded):
            world.disposed = True
            holder.dispose()

    holder.disposable = saga.execute([], journal=journal, saga_id="b-1").subscribe(
        on_next, scheduler=scheduler
    )
    scheduler.advance_to(10.0)
    assert world.executed == ["s0"]
    assert world.undo_done == {"s0": 1}
    state = journal.state("b-1")
    assert state is not None
    assert (state.status, state.failed_step) == ("compensated", "s1")


def test_disposal_between_a_steps_value_and_its_completion_cancels_it() -> None:
    scheduler = TestScheduler()
    undone: list[str] = []

    def slow_end(ctx: str) -> rx.Observable[str]:
        return rx.concat(
            rx.of(ctx), rx.timer(2.0, scheduler=scheduler).pipe(ops.ignore_elements())
        )

    saga = (
        rxr.Saga[str]("v")
        .step("a", execute=rx.of, compensate=lambda c: undone.append("a"))
        .step(
            "b",
            execute=slow_end,
            compensate=lambda c: undone.append("b"),
            compensate_on_failure=True,
        )
        .step("c", execute=rx.of, compensate=lambda c: undone.append("c"))
    )
    journal = rxr.InMemorySagaJournal()
    mine = saga.execute("x", journal=journal, saga_id="v-1").subscribe(
        scheduler=scheduler
    )
    scheduler.advance_to(1.0)  # b has emitted its value, not completed
    mine.dispose()
    scheduler.advance_to(10.0)
    assert undone == ["b", "a"]
    assert pending(scheduler) == []
    state = journal.state("v-1")
    assert state is not None
    assert state.status == "compensated"


def test_disposal_during_a_parallel_group_cancels_every_sibling() -> None:
    scheduler = TestScheduler()
    world = World(scheduler)
    saga = build(
        world,
        [Spec(1, False, False, 0), [Spec(1, False, False, 1), Spec(5, False, True, 1)]],
    )
    journal = rxr.InMemorySagaJournal()
    mine = saga.execute([], journal=journal, saga_id="p-1").subscribe(
        scheduler=scheduler
    )
    scheduler.advance_to(3.0)  # s10 done at 2, s11 runs until 6
    mine.dispose()
    scheduler.advance_to(20.0)
    assert world.finished == ["s0", "s10"]
    assert world.undo_done == {"s0": 1, "s10": 1, "s11": 1}
    assert pending(scheduler) == []
    state = journal.state("p-1")
    assert state is not None
    assert state.status == "compensated"


def test_disposal_on_threads_compensates_once_on_every_journal(
    saga_journal: rxr.SagaJournal,
) -> None:
    """Steps on timer threads; disposed from a timer thread, between two steps."""
    executed: list[str] = []
    undone: list[str] = []
    lock = threading.Lock()

    def step(name: str) -> dict[str, Any]:
        def execute(ctx: int) -> rx.Observable[int]:
            with lock:
                executed.append(name)
            return rx.timer(0.01).pipe(ops.map(lambda _: ctx + 1))

        def compensate(ctx: int) -> rx.Observable[Any]:
            with lock:
                undone.append(name)
            return rx.timer(0.01).pipe(ops.ignore_elements())

        return {"execute": execute, "compensate": compensate}

    saga = (
        rxr.Saga[int]("threads")
        .step("a", **step("a"))
        .step("b", **step("b"))
        .step("c", **step("c"))
    )
    holder = SingleAssignmentDisposable()

    def on_next(event: Any) -> None:
        if isinstance(event, rxr.StepSucceeded) and event.step == "b":
            holder.dispose()

    holder.disposable = saga.execute(0, journal=saga_journal, saga_id="t-1").subscribe(
        on_next
    )
    state = wait_until_terminal(saga_journal, "t-1")
    assert state.status == "compensated"
    assert executed == ["a", "b"]
    assert undone == ["b", "a"]
    assert state.compensated_steps == ("b", "a")
