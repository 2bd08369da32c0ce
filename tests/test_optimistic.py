"""``rxr.OptimisticState``: layered updates in virtual time, a model, and threads."""

from __future__ import annotations

import pickle
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


# --- a function that cannot be re-applied: the server's acceptance stands ----------


def raises_on_second_call(change: Any) -> Any:
    """A change that works once (for the display) and raises the next time."""
    calls = [0]

    def function(value: Any) -> Any:
        calls[0] += 1
        if calls[0] > 1:
            raise Boom("cannot re-apply")
        return change(value)

    return function


def test_an_update_accepted_by_the_server_but_failing_to_reapply_still_emits_true() -> (
    None
):
    state = rxr.OptimisticState(1)
    errors: list[Exception] = []
    state.errors.subscribe(errors.append)
    flags: list[bool] = []
    state.is_updating.subscribe(flags.append)
    events: list[Any] = []
    state.update(raises_on_second_call(lambda n: n + 1), rx.of).subscribe(
        events.append, events.append, lambda: events.append("done")
    )
    assert events == [True, "done"]
    assert [type(e) for e in errors] == [rxr.OptimisticApplyError]
    assert isinstance(errors[0].__cause__, Boom)
    assert (state.value, state.confirmed) == (1, 1)  # the layer is dropped
    assert flags[-1] is False


def test_an_apply_error_carries_its_cause_and_asks_for_a_refresh() -> None:
    cause = Boom("cannot re-apply")
    error = rxr.OptimisticApplyError(cause)
    assert isinstance(error, rxr.ResilienceError)
    assert error.cause is cause
    assert error.__cause__ is cause
    assert "may now differ from the server" in str(error)
    assert "refresh()" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is rxr.OptimisticApplyError
    assert isinstance(copy.cause, Boom)
    assert copy.__cause__ is copy.cause
    assert str(copy) == str(error)


def test_an_update_failing_to_reapply_on_a_virtual_clock_keeps_the_base_and_the_rest() -> (
    None
):
    scheduler = TestScheduler()
    state: rxr.OptimisticState[dict[str, Any]] = rxr.OptimisticState({"n": 1})
    errors: list[Exception] = []
    state.errors.subscribe(errors.append)
    a = outcome(state.update(lambda d: {**d, "n": d["n"] + 1}, server(scheduler, 5)))
    b = outcome(state.update(lambda d: {**d, "tag": "x"}, server(scheduler, 8)))
    scheduler.advance_to(2)
    state.set_confirmed({"count": 0})  # a base the first change cannot take
    assert state.value == {"count": 0, "tag": "x"}
    assert [type(e) for e in errors] == [KeyError]  # the display left it out
    scheduler.advance_to(5)
    assert a == [True]
    assert [type(e) for e in errors] == [KeyError, rxr.OptimisticApplyError]
    assert isinstance(errors[1].__cause__, KeyError)
    assert state.confirmed == {"count": 0}
    assert state.value == {"count": 0, "tag": "x"}
    scheduler.advance_to(8)
    assert b == [True]
    assert (state.value, state.confirmed) == ({"count": 0, "tag": "x"},) * 2


def test_an_update_failing_to_reapply_with_the_states_scheduler_still_emits_true() -> (
    None
):
    scheduler = TestScheduler()
    state = rxr.OptimisticState(1, scheduler=scheduler)
    errors: list[Exception] = []
    state.errors.subscribe(errors.append)
    result = outcome(state.update(raises_on_second_call(lambda n: n + 1), rx.of))
    assert (result, state.value) == ([], 2)
    scheduler.advance_to(1)
    assert result == [True]
    assert [type(e) for e in errors] == [rxr.OptimisticApplyError]
    assert (state.value, state.confirmed) == (1, 1)


def test_a_layer_the_new_base_breaks_leaves_the_display_and_is_reported_once() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState(1)
    shown = watch(state, scheduler)
    errors: list[Exception] = []
    state.errors.subscribe(errors.append)
    state.update(
        lambda n: n + 1, server(scheduler, 2, answer=0), confirm_with_result=True
    )
    divide = outcome(state.update(lambda n: 10 // n, server(scheduler, 6)))
    state.update(lambda n: n * 3, server(scheduler, 4))
    assert [v for _, v in shown] == [1, 2, 5, 15]
    scheduler.advance_to(2)  # the server's answer, 0, is a base 10 // n cannot take
    assert [type(e) for e in errors] == [ZeroDivisionError]
    assert state.value == 0  # 0 * 3: the failing layer is left out, the rest shown
    scheduler.advance_to(4)
    assert [type(e) for e in errors] == [ZeroDivisionError]  # not reported again
    scheduler.advance_to(6)
    assert divide == [True]
    assert [type(e) for e in errors] == [ZeroDivisionError, rxr.OptimisticApplyError]
    assert (state.value, state.confirmed) == (0, 0)
    assert [v for _, v in shown] == [1, 2, 5, 15, 0]


def test_set_confirmed_keeps_a_layer_the_new_base_breaks_and_reports_it() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState(2)
    errors: list[Exception] = []
    state.errors.subscribe(errors.append)
    state.update(lambda n: 10 // n, server(scheduler, 5))
    state.update(lambda n: n + 1, server(scheduler, 5))
    state.set_confirmed(0)  # does not raise
    assert (state.value, state.confirmed) == (1, 0)
    assert [type(e) for e in errors] == [ZeroDivisionError]
    state.set_confirmed(5)  # the layer was kept: it applies again
    assert state.value == 3


def test_a_refresh_answering_while_a_commit_is_in_flight_changes_nothing() -> None:
    """SWR's rule: the read may or may not hold the pending change; the
    commit's answer says which."""
    state = rxr.OptimisticState(2)
    state.update(lambda n: 10 // n, lambda _: rx.never())
    applied = outcome(state.refresh(lambda: rx.of(0)))
    assert applied == [False]
    assert (state.value, state.confirmed) == (5, 2)


# --- a misbehaving subscriber: its exception is its own, never the commit's --------


class SubscriberBug(Exception):
    pass


def raising(value: Any) -> None:
    raise SubscriberBug(f"cannot handle {value!r}")


def test_a_subscriber_raising_on_the_operators_result_gets_its_own_error_synchronously() -> (
    None
):
    state = rxr.OptimisticState(0)
    errors: list[Exception] = []
    state.errors.subscribe(errors.append)
    received: list[Exception] = []
    rx.of(lambda n: n + 1).pipe(rxr.optimistic(state, commit=rx.of)).subscribe(
        raising, received.append
    )
    assert [type(e) for e in received] == [SubscriberBug]
    assert errors == []  # not a commit failure
    assert (state.value, state.confirmed) == (1, 1)  # the accepted update stands
    assert outcome(state.update(lambda n: n + 1, rx.of)) == [True]


def test_a_subscriber_raising_on_an_updates_result_never_reaches_the_commit() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState(0)
    errors: list[Exception] = []
    state.errors.subscribe(errors.append)
    flags: list[bool] = []
    state.is_updating.subscribe(flags.append)
    result = state.update(lambda n: n + 1, server(scheduler, 5))
    raiser: list[Any] = []
    result.subscribe(raising, raiser.append, lambda: raiser.append("done"))
    other: list[Any] = []
    result.subscribe(other.append, other.append, lambda: other.append("done"))
    scheduler.advance_to(5)  # does not raise: the bug never reaches the timer
    assert [type(e) for e in raiser] == [SubscriberBug]
    assert other == [True, "done"]  # settled once, for everyone else
    assert errors == []
    assert (state.value, state.confirmed) == (1, 1)
    assert flags == [False, True, False]


def test_a_subscriber_raising_inside_a_synchronous_commit_gets_its_own_error() -> None:
    state = rxr.OptimisticState(0)
    errors: list[Exception] = []
    state.errors.subscribe(errors.append)
    raiser: list[Any] = []
    other: list[Any] = []

    def start(_: Any) -> None:
        # On this thread's trampoline rx.of runs after ``start`` returns, so both
        # subscribers are there when the commit completes.
        result = state.update(lambda n: n + 1, rx.of)
        result.subscribe(raising, raiser.append)
        result.subscribe(other.append, other.append, lambda: other.append("done"))

    rx.of(None).subscribe(start)
    assert [type(e) for e in raiser] == [SubscriberBug]
    assert other == [True, "done"]
    assert errors == []
    assert (state.value, state.confirmed) == (1, 1)


def test_a_late_subscriber_raising_on_a_settled_result_gets_its_own_error() -> None:
    state = rxr.OptimisticState(0)
    errors: list[Exception] = []
    state.errors.subscribe(errors.append)
    result = state.update(lambda n: n + 1, rx.of)
    raiser: list[Any] = []
    result.subscribe(raising, raiser.append)
    assert [type(e) for e in raiser] == [SubscriberBug]
    assert outcome(result) == [True]
    assert errors == []
    assert state.confirmed == 1


def test_a_subscriber_raising_on_a_refreshs_result_never_reaches_the_fetch() -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState(0)
    errors: list[Exception] = []
    state.errors.subscribe(errors.append)
    result = state.refresh(
        lambda: rx.timer(3, scheduler=scheduler).pipe(ops.map(lambda _: 42))
    )
    raiser: list[Any] = []
    result.subscribe(raising, raiser.append)
    other = outcome(result)
    scheduler.advance_to(3)
    assert [type(e) for e in raiser] == [SubscriberBug]
    assert other == [True]
    assert errors == []
    assert state.value == 42


@pytest.mark.parametrize("stream", ["display", "is_updating", "errors"])
def test_a_subscriber_raising_on_a_state_stream_is_detached_alone(stream: str) -> None:
    scheduler = TestScheduler()
    state = rxr.OptimisticState(0)
    source: rx.Observable[Any] = {
        "display": state,
        "is_updating": state.is_updating,
        "errors": state.errors,
    }[stream]
    raiser: list[Any] = []
    calls = [0]

    def bad(value: Any) -> None:
        calls[0] += 1
        if calls[0] > 1 or stream == "errors":  # after the replay, if any
            raise SubscriberBug(value)

    source.subscribe(bad, raiser.append)
    others: list[Any] = []
    source.subscribe(others.append)
    errors: list[Exception] = []
    state.errors.subscribe(errors.append)
    a = outcome(state.update(lambda n: n + 1, server(scheduler, 2, fail=True)))
    b = outcome(state.update(lambda n: n + 10, server(scheduler, 4)))
    scheduler.advance_to(4)
    assert [type(e) for e in raiser] == [SubscriberBug]
    assert (a, b) == ([False], [True])
    assert (state.value, state.confirmed) == (10, 10)
    assert [type(e) for e in errors] == [Boom]  # only the commit that failed
    assert [o if isinstance(o, bool | int) else type(o) for o in others] == {
        "display": [0, 1, 11, 10],
        "is_updating": [False, True, False],
        "errors": [Boom],
    }[stream]  # the other subscriber saw every change


# --- what ``commit`` receives when updates overlap ---------------------------------


def test_overlapping_updates_commit_the_display_with_every_pending_layer() -> None:
    cart = rxr.OptimisticState(["apple"])
    sent: list[list[str]] = []

    def save(shown: list[str]) -> rx.Observable[Any]:
        sent.append(shown)
        return rx.never()  # still pending

    cart.update(lambda c: [*c, "pear"], commit=save)
    cart.update(lambda c: [*c, "fig"], commit=save)
    assert sent == [["apple", "pear"], ["apple", "pear", "fig"]]


def test_a_delta_commit_confirmed_with_the_servers_answer_follows_the_server() -> None:
    scheduler = TestScheduler()
    cart = rxr.OptimisticState(["apple"])
    on_server = ["apple"]

    def add_item(item: str) -> rx.Observable[list[str]]:
        def accept(_: Any) -> list[str]:
            on_server.append(item)
            return list(on_server)

        return rx.timer(2, scheduler=scheduler).pipe(ops.map(accept))

    cart.update(
        lambda c: [*c, "pear"],
        commit=lambda _shown: add_item("pear"),
        confirm_with_result=True,
    )
    scheduler.advance_to(1)
    cart.update(
        lambda c: [*c, "fig"],
        commit=lambda _shown: add_item("fig"),
        confirm_with_result=True,
    )
    assert cart.value == ["apple", "pear", "fig"]
    scheduler.advance_to(3)
    assert cart.value == on_server == ["apple", "pear", "fig"]
    assert cart.confirmed == on_server


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


# --- refresh: SWR's rule, whole ------------------------------------------------------


def test_a_read_answering_while_an_update_is_in_flight_is_discarded() -> None:
    """The server applied the update, the read saw it, the ack comes after:
    applied, the read would count the update twice."""
    server = {"n": 0}
    state = rxr.OptimisticState(0)
    ack: Subject[None] = Subject()

    def commit(_: int) -> rx.Observable[None]:
        server["n"] += 1
        return ack

    state.update(lambda n: n + 1, commit=commit)
    read: Subject[int] = Subject()
    applied: list[bool] = []
    state.refresh(lambda: read).subscribe(applied.append)
    read.on_next(server["n"])
    read.on_completed()
    ack.on_next(None)
    ack.on_completed()
    assert applied == [False]
    assert state.confirmed == state.value == server["n"] == 1


def test_an_older_read_answering_last_never_overwrites_a_newer_one() -> None:
    state = rxr.OptimisticState("v0")
    older: Subject[str] = Subject()
    newer: Subject[str] = Subject()
    applied: dict[str, list[bool]] = {"older": [], "newer": []}
    state.refresh(lambda: older).subscribe(applied["older"].append)
    state.refresh(lambda: newer).subscribe(applied["newer"].append)
    newer.on_next("v2")
    newer.on_completed()
    older.on_next("v1")
    older.on_completed()
    assert applied == {"older": [False], "newer": [True]}
    assert state.value == "v2"


def test_a_read_that_began_before_a_pushed_value_is_discarded() -> None:
    state = rxr.OptimisticState("v0")
    read: Subject[str] = Subject()
    applied: list[bool] = []
    state.refresh(lambda: read).subscribe(applied.append)
    state.set_confirmed("v2")  # a server push, newer than the read
    read.on_next("v1")
    read.on_completed()
    assert applied == [False]
    assert state.value == "v2"


def test_an_empty_read_is_reported_like_an_empty_confirmed_commit() -> None:
    state = rxr.OptimisticState(0)
    errors: list[Exception] = []
    state.errors.subscribe(errors.append)
    applied: list[bool] = []
    state.refresh(rx.empty).subscribe(applied.append)
    assert applied == [False]
    assert [type(error) for error in errors] == [ValueError]


def test_every_subscriber_sees_the_changes_in_one_order() -> None:
    """A subscriber that reacts to the display by changing the state (a
    clamp): the others see that change after the one it reacted to, never
    before it (they would end on a value the state no longer shows)."""
    state = rxr.OptimisticState(0)

    def clamp(value: int) -> None:
        if value > 5:
            state.update(5, commit=lambda _: rx.never())

    first: list[int] = []
    second: list[int] = []
    state.subscribe(lambda value: (first.append(value), clamp(value)))
    state.subscribe(second.append)
    state.update(10, commit=lambda _: rx.never())
    assert first == second == [0, 10, 5]
    assert state.value == 5


def test_arguments_that_cannot_work_are_refused_naming_them() -> None:
    async def save(_: int) -> None:
        return None

    state = rxr.OptimisticState(0)
    with pytest.raises(TypeError, match="confirm_with_result"):
        state.update(1, lambda _: rx.of(1), confirm_with_result="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="confirm_with_result"):
        rxr.optimistic(state, commit=lambda _: rx.of(1), confirm_with_result=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="commit must return an Observable"):
        state.update(1, save)
    with pytest.raises(TypeError, match="commit must return an Observable"):
        rxr.optimistic(state, commit=save)
    errors: list[Exception] = []
    state.errors.subscribe(errors.append)
    state.refresh(lambda: 42).subscribe()
    assert "fetch must return" in str(errors[-1])
