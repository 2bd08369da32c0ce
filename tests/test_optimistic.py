"""``rxr.OptimisticState``: layered updates in virtual time, a model, and threads."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
import reactivex as rx
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import rxresilience as rxr


class Boom(Exception):
    pass


def server(
    scheduler: TestScheduler, seconds: float, *, fail: bool = False, answer: Any = None
) -> Any:
    """A commit that succeeds (or fails) after ``seconds`` of virtual time."""

    def commit(value: Any) -> rx.Observable[Any]:
        later = rx.timer(seconds, scheduler=scheduler)
        if fail:
            return later.pipe(
                ops.flat_map(lambda _: rx.throw(Boom(f"rejected {value!r}")))
            )
        return later.pipe(ops.map(lambda _: value if answer is None else answer))

    return commit


def watch(
    state: rxr.OptimisticState[Any], scheduler: TestScheduler
) -> list[tuple[float, Any]]:
    shown: list[tuple[float, Any]] = []
    state.subscribe(lambda v: shown.append((scheduler.clock, v)))
    return shown


def outcome(observable: rx.Observable[bool]) -> list[bool]:
    seen: list[bool] = []
    observable.subscribe(seen.append)
    return seen


def test_a_successful_update_shows_at_once_and_stays() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState(0)
    shown = watch(state, scheduler)
    result = outcome(state.update(lambda n: n + 1, server(scheduler, 5)))
    assert shown == [(0.0, 0), (0.0, 1)]
    scheduler.advance_to(5)
    assert shown == [(0.0, 0), (0.0, 1)]
    assert result == [True]
    assert state.confirmed == 1


def test_a_failed_update_rolls_back_and_reports_the_error() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState("Ada")
    shown = watch(state, scheduler)
    errors: list[Exception] = []
    state.errors.subscribe(errors.append)
    result = outcome(state.update("Grace", server(scheduler, 3, fail=True)))
    scheduler.advance_to(3)
    assert shown == [(0.0, "Ada"), (0.0, "Grace"), (3.0, "Ada")]
    assert result == [False]
    assert [str(e) for e in errors] == ["rejected 'Grace'"]


def test_a_functions_older_failure_never_clobbers_a_newer_success() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState(0)
    shown = watch(state, scheduler)
    a = outcome(state.update(lambda n: n + 1, server(scheduler, 10, fail=True)))
    b = outcome(state.update(lambda n: n + 10, server(scheduler, 2)))
    scheduler.advance_to(10)
    assert shown == [(0.0, 0), (0.0, 1), (0.0, 11), (10.0, 10)]
    assert (a, b) == ([False], [True])
    assert state.confirmed == 10


def test_function_b_fails_after_a_succeeds() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState(0)
    shown = watch(state, scheduler)
    state.update(lambda n: n + 1, server(scheduler, 2))
    state.update(lambda n: n + 10, server(scheduler, 5, fail=True))
    scheduler.advance_to(5)
    assert [v for _, v in shown] == [0, 1, 11, 1]
    assert state.confirmed == 1


def test_both_functions_fail_in_any_order() -> None:
    for first, second in ((3.0, 6.0), (6.0, 3.0)):
        scheduler = TestScheduler()
        state = rxr.OptimisticState(0)
        state.update(lambda n: n + 1, server(scheduler, first, fail=True))
        state.update(lambda n: n + 10, server(scheduler, second, fail=True))
        scheduler.advance_to(3)
        assert state.value == (10 if first == 3.0 else 1)
        scheduler.advance_to(6)
        assert state.value == 0


def test_out_of_order_completions_of_functions_reach_the_sum() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState(0)
    for amount, seconds in ((1, 9.0), (10, 3.0), (100, 6.0)):
        state.update(lambda n, amount=amount: n + amount, server(scheduler, seconds))
    assert state.value == 111
    scheduler.advance_to(9)
    assert (state.value, state.confirmed) == (111, 111)


def test_a_newer_value_supersedes_an_older_one() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState("start")
    shown = watch(state, scheduler)
    errors: list[Exception] = []
    state.errors.subscribe(errors.append)
    a = outcome(state.update("A", server(scheduler, 10, fail=True)))
    b = outcome(state.update("B", server(scheduler, 2)))
    scheduler.advance_to(10)
    assert [v for _, v in shown] == ["start", "A", "B"]  # "B" throughout
    assert (a, b) == ([False], [True])
    assert len(errors) == 1  # A's failure is still reported


def test_an_older_value_succeeding_late_changes_nothing_shown() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState("start")
    state.update("A", server(scheduler, 10))
    state.update("B", server(scheduler, 2))
    scheduler.advance_to(10)
    assert (state.value, state.confirmed) == ("B", "B")


def test_a_value_failing_leaves_a_newer_function_on_the_base() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState(5)
    state.update(50, server(scheduler, 4, fail=True))
    state.update(lambda n: n * 2, server(scheduler, 8))
    assert state.value == 100
    scheduler.advance_to(4)
    assert state.value == 10
    scheduler.advance_to(8)
    assert (state.value, state.confirmed) == (10, 10)


def test_commit_receives_the_displayed_value_after_the_change() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState(1)
    received: list[Any] = []
    state.update(lambda n: n + 1, server(scheduler, 5))

    def commit(value: int) -> rx.Observable[int]:
        received.append(value)
        return rx.of(value)

    state.update(lambda n: n * 10, commit)
    assert received == [20]


def test_confirm_with_result_takes_the_servers_value() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState({"name": "Ada", "version": 1})
    state.update(
        lambda u: {**u, "name": "Grace"},
        server(scheduler, 2, answer={"name": "Grace", "version": 2}),
        confirm_with_result=True,
    )
    scheduler.advance_to(2)
    assert state.value == {"name": "Grace", "version": 2}


def test_is_updating_follows_the_pending_updates() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState(0)
    flags: list[bool] = []
    state.is_updating.subscribe(flags.append)
    state.update(lambda n: n + 1, server(scheduler, 2))
    state.update(lambda n: n + 1, server(scheduler, 4))
    scheduler.advance_to(2)
    assert flags == [False, True]
    scheduler.advance_to(4)
    assert flags == [False, True, False]


def test_the_update_is_hot_whether_or_not_anyone_subscribes() -> None:
    state = rxr.OptimisticState(0)
    committed: list[int] = []

    def commit(value: int) -> rx.Observable[int]:
        committed.append(value)
        return rx.of(value)

    result = state.update(5, commit)
    assert committed == [5]
    assert outcome(result) == [True]  # a late subscriber still gets the outcome


def test_set_confirmed_replaces_the_base_and_reapplies_pending_layers() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState(0)
    state.update(lambda n: n + 1, server(scheduler, 5))
    state.set_confirmed(100)
    assert state.value == 101


def test_a_stale_refresh_is_discarded() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState(0)
    fetched = Subject[int]()
    state.update(lambda n: n + 1, server(scheduler, 2))
    applied = outcome(
        state.refresh(lambda: fetched)
    )  # started before the update settled
    scheduler.advance_to(2)
    fetched.on_next(0)  # the server's value as it was before the update
    fetched.on_completed()
    assert applied == [False]
    assert state.value == 1


def test_a_fresh_refresh_becomes_the_base() -> None:
    state = rxr.OptimisticState(0)
    applied = outcome(state.refresh(lambda: rx.of(42)))
    assert applied == [True]
    assert state.value == 42


def test_a_commit_returning_no_observable_fails_and_rolls_back() -> None:
    state = rxr.OptimisticState(0)
    errors: list[Exception] = []
    state.errors.subscribe(errors.append)
    result = outcome(state.update(7, lambda v: "saved"))
    assert result == [False]
    assert state.value == 0
    assert isinstance(errors[0], TypeError)


def test_a_commit_that_is_not_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="commit"):
        rxr.OptimisticState(0).update(1, "save")  # type: ignore[arg-type]


def test_dispose_completes_the_streams_and_refuses_updates() -> None:
    state = rxr.OptimisticState(0)
    done: list[str] = []
    state.subscribe(on_completed=lambda: done.append("value"))
    state.is_updating.subscribe(on_completed=lambda: done.append("updating"))
    state.errors.subscribe(on_completed=lambda: done.append("errors"))
    state.dispose()
    assert sorted(done) == ["errors", "updating", "value"]
    with pytest.raises(rxr.OptimisticStateDisposedError):
        state.update(1, rx.of)


def test_the_operator_applies_each_intent() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState(0)
    results: list[bool] = []
    rx.of(lambda n: n + 1, lambda n: n + 2).pipe(
        rxr.optimistic(state, commit=server(scheduler, 1))
    ).subscribe(results.append)
    scheduler.advance_to(1)
    assert results == [True, True]
    assert state.confirmed == 3


# --- a model: the display is the fold of the pending layers over the base ---------


@dataclass
class Pending:
    change: Any
    is_function: bool
    subject: Subject[Any]
    id: int


@dataclass
class ModelState:
    base: int = 0
    layers: list[Pending] = field(default_factory=list)

    def display(self) -> int:
        value = self.base
        for layer in self.layers:
            value = layer.change(value) if layer.is_function else layer.change
        return value


class OptimisticMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = rxr.OptimisticState(0)
        self.model = ModelState()
        self.ids = 0
        self.shown: list[int] = []
        self.state.subscribe(self.shown.append)

    @rule(amount=st.integers(-5, 5), as_value=st.booleans())
    def start(self, amount: int, as_value: bool) -> None:
        subject: Subject[Any] = Subject()
        change: Any = amount * 10 if as_value else (lambda n, a=amount: n + a)
        self.ids += 1
        self.model.layers.append(Pending(change, not as_value, subject, self.ids))
        self.state.update(change, lambda _v, s=subject: s)

    @precondition(lambda self: bool(self.model.layers))
    @rule(index=st.integers(0, 10))
    def confirm(self, index: int) -> None:
        layer = self.model.layers[index % len(self.model.layers)]
        self.model.layers.remove(layer)
        self.model.base = (
            layer.change(self.model.base) if layer.is_function else layer.change
        )
        if not layer.is_function:
            self.model.layers = [p for p in self.model.layers if p.id > layer.id]
        layer.subject.on_completed()

    @precondition(lambda self: bool(self.model.layers))
    @rule(index=st.integers(0, 10))
    def fail(self, index: int) -> None:
        layer = self.model.layers[index % len(self.model.layers)]
        self.model.layers.remove(layer)
        layer.subject.on_error(Boom())

    @invariant()
    def display_is_the_fold(self) -> None:
        assert self.state.value == self.model.display()
        assert self.shown[-1] == self.model.display()
        assert self.state.confirmed == self.model.base


TestOptimisticAgainstModel = OptimisticMachine.TestCase


def test_threads_never_lose_an_update() -> None:
    state = rxr.OptimisticState(0)
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for _ in range(500):
            state.update(lambda n: n + 1, rx.of)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (state.value, state.confirmed) == (4000, 4000)
