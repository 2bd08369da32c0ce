"""RateLimiterConfig: bad settings are refused when built, naming the argument."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.testing._rate_limit_laws import rate_limiter_configs


@pytest.mark.parametrize(
    ("settings", "error", "named"),
    [
        ({"rate": 0}, ValueError, "rate"),
        ({"rate": -1}, ValueError, "rate"),
        ({"rate": math.nan}, ValueError, "rate"),
        ({"rate": math.inf}, ValueError, "rate"),
        ({"rate": True}, TypeError, "rate"),
        ({"rate": "5"}, TypeError, "rate"),
        ({"rate": 10**400}, ValueError, "rate"),
        ({"rate": 1, "per": 0}, ValueError, "per"),
        ({"rate": 1, "per": -1.0}, ValueError, "per"),
        ({"rate": 1, "per": math.nan}, ValueError, "per"),
        ({"rate": 1, "per": math.inf}, ValueError, "per"),
        ({"rate": 1, "per": 1e10}, ValueError, "per"),
        ({"rate": 1, "per": False}, TypeError, "per"),
        ({"rate": 1, "burst": 0}, ValueError, "burst"),
        ({"rate": 1, "burst": -3}, ValueError, "burst"),
        ({"rate": 1, "burst": 2.0}, TypeError, "burst"),
        ({"rate": 1, "burst": 2.5}, TypeError, "burst"),
        ({"rate": 1, "burst": True}, TypeError, "burst"),
        ({"rate": 1, "burst": None}, TypeError, "burst"),
        ({"rate": 1, "burst": 10**400}, ValueError, "burst"),
        ({"rate": 1, "burst": 10**10}, ValueError, "burst"),  # 317 years lent
        ({"rate": 1e-300, "per": 1.0}, ValueError, "rate"),  # a permit per 1e300 s
        ({"rate": 1e300, "per": 1e-300}, ValueError, "rate"),  # spacing of 0
        ({"rate": 1e300, "per": 1.0}, ValueError, "per / rate"),  # 1e-300 s
        ({"rate": 1e7, "per": 1.0}, ValueError, "per / rate"),  # below 1 us
        ({"rate": 1e6, "per": 1.0}, ValueError, "per / rate"),  # 1 us exactly
        ({"rate": 1, "per": 1e-6}, ValueError, "per / rate"),
        # 1.2 us: one step of an epoch clock (2**32 s reads in steps of 0.95 us)
        ({"rate": 1 / 1.2e-6, "per": 1.0}, ValueError, "per / rate"),
    ],
)
def test_bad_settings_are_refused_naming_the_argument(
    settings: dict[str, Any], error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=named):
        rxr.RateLimiterConfig(**settings)
    with pytest.raises(error, match=named):
        rxr.RateLimiter(**settings)


@pytest.mark.parametrize("rate", [5e5, 1e5, 1e3])
def test_the_finest_spacings_hold_the_bound_on_an_epoch_clock(rate: float) -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(2.0**32 - 1.0)  # the real clock's magnitude, to 2106
    limiter = rxr.RateLimiter(rate=rate, per=1.0, scheduler=scheduler)
    assert sum(limiter.try_acquire() for _ in range(1000)) == 1
    assert limiter.time_to_permit() > 0.0


def test_the_spacing_and_the_tolerance_follow_from_the_settings() -> None:
    config = rxr.RateLimiterConfig(rate=2, per=1.0, burst=3)
    assert (config.interval, config.tolerance) == (0.5, 1.0)
    assert rxr.RateLimiterConfig(rate=1).tolerance == 0.0
    assert rxr.RateLimiterConfig(0.5, per=10.0).interval == 20.0


def test_configs_compare_by_their_settings_and_are_frozen() -> None:
    assert rxr.RateLimiterConfig(2, 1, 3) == rxr.RateLimiterConfig(2.0, 1.0, 3)
    config = rxr.RateLimiterConfig(2)
    with pytest.raises(AttributeError):
        config.rate = 3  # type: ignore[misc]


@given(config=rate_limiter_configs())
def test_the_strategy_builds_valid_configs(config: rxr.RateLimiterConfig) -> None:
    assert config.interval == config.per / config.rate
    assert config.tolerance == (config.burst - 1) * config.interval


@pytest.mark.parametrize(
    ("settings", "error", "named"),
    [
        ({"name": ""}, ValueError, "name"),
        ({"name": 5}, TypeError, "name"),
        ({"scheduler": "now"}, TypeError, "scheduler"),
        ({"storage": object()}, TypeError, "storage"),
    ],
)
def test_a_limiter_refuses_a_bad_name_scheduler_or_storage(
    settings: dict[str, Any], error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=named):
        rxr.RateLimiter(1, **settings)


def test_a_storage_serves_one_limiter() -> None:
    storage = rxr.InMemoryRateLimiterStorage()
    rxr.RateLimiter(1, storage=storage)
    with pytest.raises(ValueError, match="already bound"):
        rxr.RateLimiter(1, storage=storage)
    with pytest.raises(RuntimeError, match="not bound"):
        rxr.InMemoryRateLimiterStorage().reserve(0.0, 0.0)
