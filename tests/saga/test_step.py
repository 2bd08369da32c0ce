"""A step, a saga and recovery refuse bad input where it is given."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex as rx

import rxresilience as rxr

from .._support import DURATIONS_OUT_OF_RANGE


@pytest.mark.parametrize(
    ("value", "error"), [*DURATIONS_OUT_OF_RANGE, pytest.param(0, ValueError, id="0")]
)
def test_a_compensation_timeout_out_of_range_is_refused_where_it_is_given(
    value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"^compensation_timeout "):
        rxr.SagaStep("a", execute=rx.of, compensation_timeout=value)  # type: ignore[arg-type]
    with pytest.raises(error, match=r"^compensation_timeout "):
        rxr.Saga("s", compensation_timeout=value)  # type: ignore[arg-type]
    with pytest.raises(error, match=r"^compensation_timeout "):
        rxr.recover(rxr.InMemorySagaJournal(), {}, compensation_timeout=value)  # type: ignore[arg-type]


def test_a_codec_or_scheduler_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match=r"^codec "):
        rxr.Saga("s", codec="json")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^scheduler "):
        rxr.Saga("s", scheduler="now")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^scheduler "):
        rxr.recover(rxr.InMemorySagaJournal(), {}, scheduler=1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "function",
    [
        pytest.param(lambda: rx.of(1), id="none"),
        pytest.param(lambda ctx, key, extra: rx.of(1), id="three"),
        pytest.param(lambda ctx, *, key: rx.of(1), id="keyword-only"),
    ],
)
def test_a_function_with_the_wrong_parameters_is_refused_by_step(
    function: Any,
) -> None:
    with pytest.raises(TypeError, match=r"^execute must take the context"):
        rxr.Saga("s").step("a", execute=function)
    with pytest.raises(TypeError, match=r"^compensate must take the context"):
        rxr.Saga("s").step("a", execute=rx.of, compensate=function)


def test_functions_taking_the_context_or_the_key_are_accepted() -> None:
    def keyed(ctx: Any, key: str, extra: int = 0) -> rx.Observable[Any]:
        return rx.of(ctx)

    for function in (rx.of, keyed, lambda ctx, i=1: rx.of(ctx), lambda *a: rx.of(1)):
        rxr.Saga("s").step("a", execute=function, compensate=function)
