"""Broadcast: one order for every subscriber, each thread delivering its own."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import reactivex as rx

import rxresilience as rxr
from rxresilience._broadcast import Broadcast


def test_a_value_emitted_from_inside_a_delivery_goes_out_after_it_to_everyone() -> None:
    broadcast: Broadcast[int] = Broadcast()
    seen: dict[str, list[Any]] = {"first": [], "second": []}

    def first(value: int) -> None:
        seen["first"].append(value)
        if value == 1:
            broadcast.emit(2)
            broadcast.complete()  # after 2, for both

    broadcast.subscribe(first, on_completed=lambda: seen["first"].append("done"))
    broadcast.subscribe(
        seen["second"].append, on_completed=lambda: seen["second"].append("done")
    )
    broadcast.emit(1)
    assert seen["first"] == seen["second"] == [1, 2, "done"]


def test_a_subscriber_gets_no_value_emitted_before_it_subscribed() -> None:
    broadcast: Broadcast[int] = Broadcast()
    late: list[int] = []

    def first(value: int) -> None:
        if value == 1:
            broadcast.emit(2)  # goes out after 1, to those present now
            broadcast.subscribe(late.append)

    broadcast.subscribe(first)
    broadcast.emit(1)
    broadcast.emit(3)
    assert late == [3]


def test_each_thread_delivers_what_it_emits_itself() -> None:
    """A subscriber waiting, inside a delivery, for a value another thread
    emits: that thread delivers it at once (queued behind the waiting
    delivery, it would never come)."""
    broadcast: Broadcast[str] = Broadcast()
    arrived = threading.Event()

    def on_next(value: str) -> None:
        if value == "wait":
            other = threading.Thread(target=broadcast.emit, args=("from B",))
            other.start()
            assert arrived.wait(10)
            other.join(10)
        elif value == "from B":
            arrived.set()

    broadcast.subscribe(on_next)
    broadcast.emit("wait")
    assert arrived.is_set()


def test_a_late_subscriber_of_an_optimistic_state_never_sees_it_go_back() -> None:
    state = rxr.OptimisticState(0)
    late: list[int] = []

    def on_next(value: int) -> None:
        if value == 1:
            state.set_confirmed(2)
            state.set_confirmed(3)
            state.subscribe(late.append)  # replays 3: nothing older after it

    state.subscribe(on_next)
    state.set_confirmed(1)
    assert late == [3]


def test_a_commit_interrupted_by_a_base_exception_is_rolled_back() -> None:
    class Abort(BaseException):
        pass

    def commit(_: int) -> rx.Observable[int]:
        raise Abort

    state = rxr.OptimisticState(0)
    with pytest.raises(Abort):
        state.update(5, commit)
    assert state.value == 0
    applied: list[bool] = []
    state.refresh(lambda: rx.of(42)).subscribe(applied.append)
    assert applied == [True]  # nothing left in flight to block it
    assert state.value == 42


def test_a_change_made_from_inside_a_replay_reaches_that_subscriber_after_it() -> None:
    state = rxr.OptimisticState(1)
    seen: list[int] = []

    def on_next(value: int) -> None:
        seen.append(value)
        if value == 1:
            state.set_confirmed(2)  # from inside its replay

    state.subscribe(on_next)
    assert seen == [1, 2]
    assert state.value == 2
