"""The generic argument checks: bad input raises at once, naming the argument."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
import reactivex as rx

import rxresilience as rxr
from rxresilience._arguments import (
    options_given,
    require_bool,
    require_count,
    require_error_or_factory,
    require_finite,
    require_instance,
    require_name,
    require_number,
    require_text,
)

_NOT_NUMBERS = [True, False, "1", None, [1], 1j]


@pytest.mark.parametrize("value", _NOT_NUMBERS)
def test_a_number_that_is_not_one_is_a_type_error_naming_it(value: object) -> None:
    with pytest.raises(TypeError, match=r"^delay must be a number, got "):
        require_number("delay", value)


def test_a_number_comes_back_as_a_float_infinities_and_nan_included() -> None:
    assert require_number("delay", 3) == 3.0
    assert type(require_number("delay", 3)) is float
    assert require_number("delay", math.inf) == math.inf
    assert math.isnan(require_number("delay", math.nan))


def test_an_int_beyond_any_float_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"^delay must be finite"):
        require_number("delay", 10**400)
    with pytest.raises(ValueError, match=r"^delay must be finite"):
        require_finite("delay", 10**400)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_finite_refuses_nan_and_infinities(value: float) -> None:
    with pytest.raises(ValueError, match=r"^delay must be finite"):
        require_finite("delay", value)


def test_finite_with_a_minimum_names_it() -> None:
    with pytest.raises(ValueError, match=r"^factor must be >= 1, got 0.5"):
        require_finite("factor", 0.5, minimum=1.0)
    assert require_finite("factor", 1, minimum=1.0) == 1.0


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (True, TypeError),
        (False, TypeError),
        (1.0, TypeError),
        (math.nan, TypeError),
        (math.inf, TypeError),
        ("3", TypeError),
        (None, TypeError),
        (0, ValueError),
        (-1, ValueError),
        (-(10**400), ValueError),
    ],
)
def test_a_count_is_an_int_not_a_bool_at_least_its_minimum(
    value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"^attempts must be "):
        require_count("attempts", value)


def test_a_count_says_none_is_allowed_and_why_the_bound_is_there() -> None:
    with pytest.raises(TypeError, match=r"^n must be an int or None, got float$"):
        require_count("n", 2.5, or_none=True)
    with pytest.raises(
        ValueError, match=r"^n must be >= 1 \(the first counts\), got 0"
    ):
        require_count("n", 0, why="the first counts")
    assert require_count("n", 10**400) == 10**400  # no float: no overflow
    assert require_count("n", 0, minimum=0) == 0


@pytest.mark.parametrize("value", [1, 0, "yes", None, math.nan])
def test_a_bool_is_a_bool_not_a_truthy_stand_in(value: object) -> None:
    with pytest.raises(TypeError, match=r"^flag must be a bool, got "):
        require_bool("flag", value)


def test_a_bool_or_none_takes_both_and_says_so() -> None:
    require_bool("flag", True)
    require_bool("flag", None, or_none=True)
    with pytest.raises(TypeError, match=r"^flag must be a bool or None, got int$"):
        require_bool("flag", 0, or_none=True)


@pytest.mark.parametrize(
    ("value", "error"),
    [("", ValueError), (None, TypeError), (b"k", TypeError), (42, TypeError)],
)
def test_text_is_a_non_empty_string(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"^key must be a non-empty string, got "):
        require_text("key", value)
    assert require_text("key", "*[?]%_") == "*[?]%_"  # glob characters are text


def test_an_instance_check_names_the_argument_and_the_kind() -> None:
    with pytest.raises(TypeError, match=r"^rng must be a random.Random, got int$"):
        require_instance("rng", 42, random.Random, "a random.Random")
    with pytest.raises(TypeError, match=r"^state must be an OptimisticState, got "):
        require_instance("state", object(), rxr.OptimisticState)
    with pytest.raises(TypeError, match=r"^breaker must be a CircuitBreaker, got bool"):
        require_instance("breaker", True, rxr.CircuitBreaker)
    require_instance("rng", random.Random(1), random.Random)


def test_an_error_or_a_factory_is_required() -> None:
    require_error_or_factory("error", ValueError("x"))
    require_error_or_factory("error", lambda: ValueError("x"))
    for value in ("boom", 3, None):
        with pytest.raises(TypeError, match=r"^error must be an exception or a"):
            require_error_or_factory("error", value)


def test_options_at_their_default_are_not_given_others_are() -> None:
    marker = object()
    defaults: dict[str, Any] = {"ttl": 60.0, "mode": "wait", "fn": None, "obj": marker}
    at_default = {"ttl": 60, "mode": "wa" + "it", "fn": None, "obj": marker}
    assert options_given(at_default, defaults) == []
    changed = {"ttl": 61, "mode": "error", "fn": print, "obj": object()}
    assert options_given(changed, defaults) == ["ttl", "mode", "fn", "obj"]
    # A number never stands for a non-number default, nor a bool for None.
    assert options_given({"fn": 0, "obj": False}, defaults) == ["fn", "obj"]


def test_a_name_is_text_any_store_can_write_and_the_message_says_so_generically() -> (
    None
):
    """Breaker, limiter and journal names share the check: the message names the
    argument and the encoding, never one kind of store."""
    assert require_name("name", "orders:*?[]'") == "orders:*?[]'"
    with pytest.raises(ValueError, match=r"^name must be a non-empty string"):
        require_name("name", "")
    with pytest.raises(
        ValueError, match=r"^name must be text encodable as UTF-8"
    ) as caught:
        require_name("name", "bad\udcff")
    assert "journal" not in str(caught.value)
    with pytest.raises(ValueError, match=r"^name must be text encodable as UTF-8"):
        rxr.Bulkhead(max_concurrent=1, name="bad\udcff")


def test_a_name_with_nul_is_refused_everywhere() -> None:
    """PostgreSQL text holds no NUL: a name or saga id with one is refused where
    it is given, on every backend alike, not at the first write."""
    with pytest.raises(ValueError, match=r"^name must not contain NUL"):
        require_name("name", "a\x00b")
    with pytest.raises(ValueError, match=r"^saga_id must not contain NUL"):
        rxr.Saga[int]("order").step("a", lambda n: rx.of(n)).run(
            0, journal=rxr.InMemorySagaJournal(), saga_id="s\x001"
        )
    with pytest.raises(ValueError, match=r"^name must not contain NUL"):
        rxr.Saga[int]("or\x00der")


@pytest.mark.parametrize(
    "build",
    [
        lambda name: rxr.retry(3, name=name),
        lambda name: rxr.fallback(1, name=name),
        lambda name: rxr.timeout(1, name=name),
        lambda name: rxr.hedge(1.0, 2, name=name),
        lambda name: rxr.idempotent(rxr.InMemoryIdempotencyStore(), key="k", name=name),
        lambda name: rxr.CircuitBreaker(name=name),
        lambda name: rxr.RateLimiter(1, name=name),
        lambda name: rxr.Bulkhead(1, name=name),
    ],
)
def test_a_policy_name_no_exporter_can_write_is_refused(build: Any) -> None:
    """A lone surrogate in one name broke every Prometheus scrape; NUL cannot
    be stored in PostgreSQL text; a number is the wrong type."""
    for bad in ("a\udcff", "a\x00b"):
        with pytest.raises(ValueError, match="name"):
            build(bad)
    with pytest.raises(TypeError, match="name"):
        build(7)
