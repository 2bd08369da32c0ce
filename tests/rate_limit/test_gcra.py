"""GCRA's arithmetic: spacing, burst, refusals that take nothing, compare-and-set."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

import rxresilience as rxr
from rxresilience.rate_limit._gcra import Gcra, wait_at
from rxresilience.testing._rate_limit_laws import (
    admissions_fit_the_rate,
    rate_limiter_configs,
)


def gcra(rate: float, per: float = 1.0, burst: int = 1) -> Gcra:
    config = rxr.RateLimiterConfig(rate, per, burst)
    return Gcra(config.interval, config.tolerance)


def waits(state: Gcra, now: float, count: int) -> list[float]:
    taken = [state.reserve(now, math.inf) for _ in range(count)]
    return [r.wait for r in taken if isinstance(r, rxr.RateLimiterReservation)]


def test_permits_are_spaced_per_over_rate() -> None:
    assert waits(gcra(2), 0.0, 5) == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_burst_permits_are_free_at_once_from_idle() -> None:
    assert waits(gcra(2, burst=3), 0.0, 5) == [0.0, 0.0, 0.0, 0.5, 1.0]


def test_an_idle_limiter_banks_no_more_than_its_burst() -> None:
    state = gcra(2, burst=3)
    waits(state, 0.0, 1)
    assert waits(state, 1000.0, 4) == [0.0, 0.0, 0.0, 0.5]


def test_a_refusal_takes_nothing_and_says_how_long_to_wait() -> None:
    state = gcra(1)
    first = state.reserve(10.0, 0.0)
    assert isinstance(first, rxr.RateLimiterReservation)
    assert state.reserve(10.0, 0.5) == 1.0
    assert state.reserve(10.25, 0.0) == 0.75
    assert state.tat == 11.0
    assert isinstance(state.reserve(11.0, 0.0), rxr.RateLimiterReservation)


def test_a_permit_due_within_a_microsecond_is_free_now() -> None:
    state = gcra(10)
    state.reserve(0.0, 0.0)
    answer = state.reserve(0.1 - 5e-7, 0.0)
    assert isinstance(answer, rxr.RateLimiterReservation)
    assert answer.wait == 0.0
    assert wait_at(1.0, 1.0 - 5e-7, 0.0) == 0.0
    assert wait_at(1.0, 1.0 - 2e-6, 0.0) > 1e-6


def test_the_latest_reservation_is_given_back_and_an_earlier_one_is_spent() -> None:
    state = gcra(2)
    first = state.reserve(0.0, math.inf)
    second = state.reserve(0.0, math.inf)
    assert isinstance(first, rxr.RateLimiterReservation)
    assert isinstance(second, rxr.RateLimiterReservation)
    assert not state.cancel(first)  # a later one was taken: stays spent
    assert state.cancel(second)
    assert state.tat == first.tat
    assert not state.cancel(second)  # once only
    assert state.cancel(first)  # now it is the latest again
    assert state.time_to_permit(0.0) == 0.0


def test_time_to_permit_takes_nothing() -> None:
    state = gcra(2)
    state.reserve(0.0, 0.0)
    assert state.time_to_permit(0.0) == 0.5
    assert state.time_to_permit(0.0) == 0.5
    assert state.time_to_permit(0.4) == 0.09999999999999998
    assert state.time_to_permit(3.0) == 0.0


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0, 3.0])),
        st.tuples(st.just("reserve"), st.sampled_from([0.0, 0.5, 2.0, math.inf])),
        st.tuples(st.just("cancel"), st.integers(0, 20)),
    ),
    max_size=60,
)


@given(config=rate_limiter_configs(), steps=STEPS)
def test_over_any_window_the_permits_fit_the_rate(
    config: rxr.RateLimiterConfig, steps: list[tuple[str, float]]
) -> None:
    """Permits are counted at the instant each is free (request + wait);
    permits given back do not count. Only the latest can be given back, and
    the one just taken always can."""
    state = Gcra(config.interval, config.tolerance)
    now = 0.0
    held: list[tuple[float, rxr.RateLimiterReservation]] = []
    just_taken: rxr.RateLimiterReservation | None = None
    for kind, value in steps:
        if kind == "advance":
            now += value
        elif kind == "reserve":
            answer = state.reserve(now, value)
            if isinstance(answer, rxr.RateLimiterReservation):
                assert answer.wait <= value
                held.append((now + answer.wait, answer))
                just_taken = answer
            else:
                assert answer > value
                assert wait_at(state.tat, now, state.tolerance) == answer
        elif held:
            index = int(value) % len(held)
            reservation = held[index][1]
            given_back = state.cancel(reservation)
            if reservation is just_taken:
                assert given_back
            if given_back:
                assert index == len(held) - 1
                held.pop()
                just_taken = None
    admissions_fit_the_rate([at for at, _ in held], config)
