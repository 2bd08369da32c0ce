"""The storage contract, run against every shipped storage (memory, Redis).

Run it against a storage of your own: the same answers, to the last bit, for
the same requests.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable

import pytest

import rxresilience as rxr

Make = Callable[..., rxr.RateLimiterStorage]


@pytest.fixture(params=["memory", "redis"])
def storage_on(request: pytest.FixtureRequest) -> Make:
    """Bound storages, in memory or in a real Redis."""

    def make(rate: float, per: float = 1.0, burst: int = 1) -> rxr.RateLimiterStorage:
        storage: rxr.RateLimiterStorage
        if request.param == "redis":
            server = request.getfixturevalue("redis_server")
            storage = rxr.RedisRateLimiterStorage(
                server.client(), name=uuid.uuid4().hex
            )
        else:
            storage = rxr.InMemoryRateLimiterStorage()
        storage.bind(rxr.RateLimiterConfig(rate, per, burst))
        return storage

    return make


def test_permits_are_spaced_and_burst_from_idle(storage_on: Make) -> None:
    storage = storage_on(2, 1.0, 3)
    answers = [storage.reserve(100.0, math.inf) for _ in range(5)]
    assert answers == [
        rxr.RateLimiterReservation(0.0, 100.0, 100.5),
        rxr.RateLimiterReservation(0.0, 100.5, 101.0),
        rxr.RateLimiterReservation(0.0, 101.0, 101.5),
        rxr.RateLimiterReservation(0.5, 101.5, 102.0),
        rxr.RateLimiterReservation(1.0, 102.0, 102.5),
    ]


def test_a_refusal_takes_nothing(storage_on: Make) -> None:
    storage = storage_on(1)
    assert isinstance(storage.reserve(5.0, 0.0), rxr.RateLimiterReservation)
    assert storage.reserve(5.0, 0.0) == 1.0
    assert storage.reserve(5.5, 0.25) == 0.5
    assert storage.time_to_permit(5.5) == 0.5
    assert storage.reserve(6.0, 0.0) == rxr.RateLimiterReservation(0.0, 6.0, 7.0)


def test_cancel_is_a_compare_and_set_on_the_tat(storage_on: Make) -> None:
    storage = storage_on(1)
    first = storage.reserve(0.0, math.inf)
    second = storage.reserve(0.0, math.inf)
    assert isinstance(first, rxr.RateLimiterReservation)
    assert isinstance(second, rxr.RateLimiterReservation)
    assert storage.cancel(first, 0.1) is False
    assert storage.cancel(second, 0.1) is True
    assert storage.cancel(second, 0.1) is False
    assert storage.time_to_permit(0.1) == 0.9
    assert storage.cancel(first, 0.2) is True
    assert storage.time_to_permit(0.2) == 0.0


def test_time_to_permit_of_a_new_limiter_is_zero_at_any_time(storage_on: Make) -> None:
    storage = storage_on(1)
    assert storage.time_to_permit(-1e9) == 0.0
    assert storage.time_to_permit(1.7e9) == 0.0


def test_a_caller_behind_waits_longer(storage_on: Make) -> None:
    storage = storage_on(1)
    storage.reserve(10.0, 0.0)
    assert storage.time_to_permit(9.0) == 2.0
    assert storage.reserve(9.0, 1.0) == 2.0


def test_spacings_that_are_no_exact_float_give_the_same_answers(
    storage_on: Make,
) -> None:
    storage = storage_on(3, 1.0, 2)
    answers = [storage.reserve(0.1 * k, 0.4) for k in range(30)]
    twin = rxr.InMemoryRateLimiterStorage()
    twin.bind(rxr.RateLimiterConfig(3, 1.0, 2))
    assert answers == [twin.reserve(0.1 * k, 0.4) for k in range(30)]


def test_a_storage_is_bound_once(storage_on: Make) -> None:
    storage = storage_on(1)
    with pytest.raises(ValueError, match="already bound"):
        storage.bind(rxr.RateLimiterConfig(1))
