"""The ``BreakerStorage`` contract, run against every shipped storage.

Only the public storage types are used (``BreakerConfig``, ``Permit``,
``Refusal``, ``Outcome``, ``StateChange``), as a third-party storage would.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import rxresilience as rxr
from rxresilience import BreakerConfig, CircuitState, Outcome, Permit, Refusal

from .._redis_server import RedisServer


def config(**overrides: Any) -> BreakerConfig:
    settings: dict[str, Any] = {
        "failure_threshold": 2,
        "reset_timeout": 10.0,
        "half_open_max_calls": 1,
        "window": None,
        "failure_rate_threshold": None,
        "slow_call_duration": None,
        "slow_call_rate_threshold": None,
        "minimum_calls": 1,
    }
    settings.update(overrides)
    return BreakerConfig(**settings)


@pytest.fixture(params=["memory", "redis"])
def make_storage(request: pytest.FixtureRequest) -> Any:
    def make() -> rxr.BreakerStorage:
        if request.param == "redis":
            server: RedisServer = request.getfixturevalue("redis_server")
            return rxr.RedisBreakerStorage(server.client(), name=uuid.uuid4().hex)
        return rxr.InMemoryBreakerStorage()

    return make


def bound(make_storage: Any, **overrides: Any) -> tuple[Any, list[rxr.StateChange]]:
    storage = make_storage()
    changes: list[rxr.StateChange] = []
    storage.bind(config(**overrides), changes.append)
    return storage, changes


def open_it(storage: Any, now: float = 0.0) -> None:
    for _ in range(2):
        permit = storage.acquire(now)
        assert isinstance(permit, Permit)
        storage.record(permit, Outcome.FAILURE, now)


def test_a_fresh_storage_is_closed_and_admits(make_storage: Any) -> None:
    storage, changes = bound(make_storage)
    assert storage.state is CircuitState.CLOSED
    permit = storage.acquire(0.0)
    assert isinstance(permit, Permit)
    assert (permit.trial, permit.settled, permit.started_at) == (False, False, 0.0)
    assert storage.retry_after(0.0) is None
    assert changes == []


def test_a_storage_binds_once(make_storage: Any) -> None:
    storage, _ = bound(make_storage)
    with pytest.raises(ValueError, match="already bound"):
        storage.bind(config(), lambda _: None)


def test_failures_open_it_and_the_sink_hears_of_it(make_storage: Any) -> None:
    storage, changes = bound(make_storage)
    open_it(storage, 1.0)
    assert storage.observe(1.0) is CircuitState.OPEN
    assert [(c.previous, c.current, c.at, c.reason) for c in changes] == [
        (CircuitState.CLOSED, CircuitState.OPEN, 1.0, "2 consecutive failures")
    ]
    refusal = storage.acquire(4.0)
    assert refusal == Refusal(7.0, CircuitState.OPEN)
    assert storage.retry_after(4.0) == 7.0


def test_recording_sets_settled_and_a_second_record_is_ignored(
    make_storage: Any,
) -> None:
    storage, _ = bound(make_storage)
    permit = storage.acquire(0.0)
    storage.record(permit, Outcome.SUCCESS, 1.0)
    assert permit.settled
    storage.record(permit, Outcome.FAILURE, 1.0)
    metrics = storage.metrics(1.0)
    assert (metrics.successes, metrics.failures, metrics.calls) == (1, 0, 1)


def test_after_the_timeout_one_trial_is_admitted_and_its_success_closes(
    make_storage: Any,
) -> None:
    storage, changes = bound(make_storage)
    open_it(storage)
    trial = storage.acquire(10.0)
    assert isinstance(trial, Permit)
    assert trial.trial
    assert storage.state is CircuitState.HALF_OPEN
    refused = storage.acquire(10.0)
    assert isinstance(refused, Refusal)
    assert refused.state is CircuitState.HALF_OPEN
    storage.record(trial, Outcome.SUCCESS, 11.0)
    assert storage.observe(11.0) is CircuitState.CLOSED
    assert [c.current for c in changes] == [
        CircuitState.OPEN,
        CircuitState.HALF_OPEN,
        CircuitState.CLOSED,
    ]


def test_a_released_trial_gives_its_permit_back(make_storage: Any) -> None:
    storage, _ = bound(make_storage)
    open_it(storage)
    trial = storage.acquire(10.0)
    storage.record(trial, Outcome.NEITHER, 10.0)
    assert isinstance(storage.acquire(10.0), Permit)


def test_a_late_outcome_from_an_earlier_generation_changes_nothing(
    make_storage: Any,
) -> None:
    storage, _ = bound(make_storage)
    late = storage.acquire(0.0)
    open_it(storage)
    trial = storage.acquire(10.0)
    storage.record(late, Outcome.FAILURE, 10.0)  # admitted while CLOSED
    assert storage.observe(10.0) is CircuitState.HALF_OPEN
    storage.record(trial, Outcome.SUCCESS, 10.0)
    assert storage.observe(10.0) is CircuitState.CLOSED
    assert storage.metrics(10.0).failures == 3


def test_half_open_if_due_moves_only_once_the_timeout_is_over(
    make_storage: Any,
) -> None:
    storage, _ = bound(make_storage)
    open_it(storage)
    storage.half_open_if_due(9.0)
    assert storage.observe(9.0) is CircuitState.OPEN
    storage.half_open_if_due(10.0)
    assert storage.observe(10.0) is CircuitState.HALF_OPEN


def test_force_and_reset(make_storage: Any) -> None:
    storage, changes = bound(make_storage)
    storage.force(CircuitState.FORCED_OPEN, 1.0, "forced open")
    assert storage.acquire(1.0) == Refusal(None, CircuitState.FORCED_OPEN)
    storage.force(CircuitState.CLOSED, 2.0, "reset")
    metrics = storage.metrics(2.0)
    assert (metrics.state, metrics.rejected) == (CircuitState.CLOSED, 0)
    storage.force(CircuitState.DISABLED, 3.0, "disabled")
    open_it(storage, 3.0)
    assert storage.observe(3.0) is CircuitState.DISABLED
    assert [(c.current, c.reason) for c in changes] == [
        (CircuitState.FORCED_OPEN, "forced open"),
        (CircuitState.CLOSED, "reset"),
        (CircuitState.DISABLED, "disabled"),
    ]


def test_metrics_count_every_kind_of_outcome(make_storage: Any) -> None:
    storage, _ = bound(make_storage, failure_threshold=5)
    for outcome in (Outcome.SUCCESS, Outcome.FAILURE, Outcome.NEITHER):
        storage.record(storage.acquire(0.0), outcome, 0.0)
    metrics = storage.metrics(0.0)
    assert (
        metrics.calls,
        metrics.successes,
        metrics.failures,
        metrics.ignored,
        metrics.consecutive_failures,
    ) == (2, 1, 1, 1, 1)  # "neither" leaves the run of failures alone


def test_a_window_rate_opens_it(make_storage: Any) -> None:
    storage, changes = bound(
        make_storage,
        failure_threshold=None,
        window=rxr.CountWindow(4),
        failure_rate_threshold=0.5,
        minimum_calls=4,
    )
    for outcome in (Outcome.SUCCESS, Outcome.FAILURE, Outcome.SUCCESS):
        storage.record(storage.acquire(0.0), outcome, 0.0)
    assert storage.metrics(0.0).window_calls == 3
    storage.record(storage.acquire(0.0), Outcome.FAILURE, 0.0)
    assert [c.reason for c in changes] == ["failure rate 2/4 reached 50%"]


def test_a_storage_serves_a_breaker_through_the_public_interface(
    make_storage: Any,
) -> None:
    breaker = rxr.CircuitBreaker(failure_threshold=1, storage=make_storage())
    with pytest.raises(RuntimeError):
        breaker.call(lambda: (_ for _ in ()).throw(RuntimeError("down")))
    assert breaker.state is CircuitState.OPEN


# -- a storage that can lose its state ---------------------------------------------------
# The in-memory storage cannot. A shared one can (Redis: a delete, a FLUSHALL,
# a failover or a restart without persistence), and then its generations start
# over. The epoch rule: the state starts a new life; a permit admitted in an
# earlier life counts in the totals only, as one of an earlier generation does,
# even when its generation number comes round again; and the sink hears of the
# move from the state it knew to the new life's (even to the same state: the
# counters were lost), then of every transition after.


@pytest.fixture(params=["redis"])
def losing_storage(request: pytest.FixtureRequest) -> Any:
    """Make a storage that can lose its state, and the function that loses it."""

    def make() -> tuple[rxr.BreakerStorage, Any]:
        server: RedisServer = request.getfixturevalue("redis_server")
        storage = rxr.RedisBreakerStorage(server.client(), name=uuid.uuid4().hex)
        return storage, storage.delete

    return make


def test_a_permit_from_a_lost_life_counts_in_the_totals_only(
    losing_storage: Any,
) -> None:
    storage, lose = losing_storage()
    changes: list[rxr.StateChange] = []
    storage.bind(config(failure_threshold=1), changes.append)
    old = storage.acquire(0.0)
    lose()
    new = storage.acquire(1.0)
    assert old.generation == new.generation  # the numbers coincide ...
    storage.record(old, Outcome.FAILURE, 1.0)  # ... the lives do not
    assert storage.observe(1.0) is CircuitState.CLOSED
    assert storage.metrics(1.0).failures == 1
    storage.record(new, Outcome.FAILURE, 2.0)
    assert storage.observe(2.0) is CircuitState.OPEN
    assert [(c.previous, c.current, c.at) for c in changes] == [
        (CircuitState.CLOSED, CircuitState.CLOSED, 1.0),  # a new life, closed
        (CircuitState.CLOSED, CircuitState.OPEN, 2.0),
    ]


def test_after_a_loss_the_sink_hears_of_the_new_life_and_what_follows(
    losing_storage: Any,
) -> None:
    storage, lose = losing_storage()
    changes: list[rxr.StateChange] = []
    storage.bind(config(failure_threshold=1), changes.append)
    storage.record(storage.acquire(0.0), Outcome.FAILURE, 0.0)
    lose()
    assert storage.observe(1.0) is CircuitState.CLOSED
    storage.record(storage.acquire(2.0), Outcome.FAILURE, 2.0)
    assert [(c.previous, c.current, c.at) for c in changes] == [
        (CircuitState.CLOSED, CircuitState.OPEN, 0.0),
        (CircuitState.OPEN, CircuitState.CLOSED, 1.0),  # the new life
        (CircuitState.CLOSED, CircuitState.OPEN, 2.0),
    ]
    assert storage.retry_after(2.0) == 10.0
