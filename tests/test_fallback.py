"""``rxr.fallback``: values, observables and functions of the error."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex as rx
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

import rxresilience as rxr

from ._support import record

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed


class Boom(Exception):
    pass


def run(source: rx.Observable[Any], operator: Any) -> list[Any]:
    return record(TestScheduler(), lambda: source.pipe(operator))


def test_a_value_is_emitted_then_completes() -> None:
    assert run(rx.throw(Boom()), rxr.fallback("cached")) == [
        (200.0, "next", "cached"),
        (200.0, "completed", None),
    ]


def test_an_observable_is_switched_to_at_the_error() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(1, "a"), on_error(2, Boom()))
    other = scheduler.create_cold_observable(on_next(3, "b"), on_completed(4))
    events = record(scheduler, lambda: source.pipe(rxr.fallback(other)))
    assert events == [
        (201.0, "next", "a"),
        (205.0, "next", "b"),
        (206.0, "completed", None),
    ]
    assert source.subscriptions == [Subscription(200, 202)]
    assert other.subscriptions == [Subscription(202, 206)]


def test_a_function_receives_the_error() -> None:
    seen: list[Exception] = []
    boom = Boom("down")

    def replace(error: Exception) -> rx.Observable[str]:
        seen.append(error)
        return rx.of("from function")

    events = run(rx.throw(boom), rxr.fallback(replace))
    assert events[0] == (200.0, "next", "from function")
    assert seen == [boom]


def test_when_limits_which_errors_are_replaced() -> None:
    key_error = KeyError("k")
    assert run(rx.throw(key_error), rxr.fallback(0, when=Boom)) == [
        (200.0, "error", key_error)
    ]
    assert run(rx.throw(Boom()), rxr.fallback(0, when=lambda e: isinstance(e, Boom)))[
        0
    ] == (200.0, "next", 0)


def test_success_passes_through_untouched() -> None:
    assert run(rx.of(1, 2), rxr.fallback(0)) == [
        (200.0, "next", 1),
        (200.0, "next", 2),
        (200.0, "completed", None),
    ]


def test_a_raising_function_fails_the_stream_with_its_error() -> None:
    broken = RuntimeError("fallback broke")

    def replace(_: Exception) -> rx.Observable[int]:
        raise broken

    assert run(rx.throw(Boom()), rxr.fallback(replace)) == [(200.0, "error", broken)]


def test_a_function_returning_no_observable_fails_the_stream() -> None:
    [(_, kind, error)] = run(rx.throw(Boom()), rxr.fallback(lambda _: 42))
    assert kind == "error"
    assert isinstance(error, TypeError)
    assert "Observable" in str(error)


def test_a_raising_when_predicate_fails_the_stream_with_its_error() -> None:
    broken = RuntimeError("when broke")

    def when(_: Exception) -> bool:
        raise broken

    assert run(rx.throw(Boom()), rxr.fallback(0, when=when)) == [
        (200.0, "error", broken)
    ]


def test_disposal_reaches_the_replacement() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(1, Boom()))
    other = scheduler.create_cold_observable(on_next(50, "late"))
    record(
        scheduler, lambda: source.pipe(rxr.fallback(other)), dispose_at=210, until=300
    )
    assert other.subscriptions == [Subscription(201, 210)]


async def _coroutine(_: Exception) -> int:
    return 1


@pytest.mark.parametrize(
    ("value", "argument"),
    [
        (None, "fallback"),
        (Boom(), "fallback"),
        (Boom, "fallback"),
        (_coroutine, "fallback"),
    ],
)
def test_wrong_fallbacks_raise_at_construction(value: Any, argument: str) -> None:
    with pytest.raises(TypeError, match=argument):
        rxr.fallback(value)


def test_a_bad_when_raises_at_construction() -> None:
    with pytest.raises(TypeError, match="when"):
        rxr.fallback(0, when="Boom")
