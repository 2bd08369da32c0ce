"""RedisBreakerStorage: the Lua state machine against the in-memory one, and its rules."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience._breaker_machine import Outcome, Ticket

from ._redis_server import RedisServer


def fresh_name() -> str:
    return uuid.uuid4().hex


@dataclass
class Pair:
    """The same breaker twice: once in memory, once in Redis, on twin clocks."""

    memory: rxr.CircuitBreaker
    redis: rxr.CircuitBreaker
    memory_clock: TestScheduler
    redis_clock: TestScheduler
    memory_changes: list[rxr.StateChange]
    redis_changes: list[rxr.StateChange]


def make_pair(server: RedisServer, settings: dict[str, Any]) -> Pair:
    memory_clock, redis_clock = TestScheduler(), TestScheduler()
    storage = rxr.RedisBreakerStorage(server.client(), name=fresh_name())
    memory = rxr.CircuitBreaker(scheduler=memory_clock, **settings)
    redis = rxr.CircuitBreaker(scheduler=redis_clock, storage=storage, **settings)
    pair = Pair(memory, redis, memory_clock, redis_clock, [], [])
    memory.state_changes.subscribe(pair.memory_changes.append)
    redis.state_changes.subscribe(pair.redis_changes.append)
    return pair


SETTINGS = st.one_of(
    st.fixed_dictionaries(
        {
            "failure_threshold": st.integers(1, 4),
            "reset_timeout": st.sampled_from([5.0, 10.0]),
            "half_open_max_calls": st.integers(1, 3),
            "max_half_open_wait": st.sampled_from([3.0, 20.0]),
        }
    ),
    st.fixed_dictionaries(
        {
            "failure_threshold": st.sampled_from([None, 5]),
            "reset_timeout": st.just(10.0),
            "half_open_max_calls": st.integers(1, 2),
            "window": st.builds(rxr.CountWindow, st.integers(2, 6)),
            "failure_rate_threshold": st.sampled_from([0.5, 0.75, 1.0]),
            "slow_call_duration": st.just(2.0),
            "slow_call_rate_threshold": st.sampled_from([0.5, 1.0]),
            "max_half_open_wait": st.just(6.0),
        }
    ),
    st.fixed_dictionaries(
        {
            "failure_threshold": st.sampled_from([None, 3]),
            "reset_timeout": st.just(10.0),
            "window": st.builds(
                rxr.TimeWindow, st.sampled_from([4.0, 10.0]), st.sampled_from([2, 4])
            ),
            "failure_rate_threshold": st.sampled_from([0.5, 1.0]),
            "minimum_calls": st.integers(1, 4),
            "slow_call_duration": st.just(1.5),
            "slow_call_rate_threshold": st.just(0.5),
            "max_half_open_wait": st.just(6.0),
        }
    ),
)

STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("start"), st.just(0)),
        st.tuples(
            st.just("quick"), st.sampled_from([Outcome.SUCCESS, Outcome.FAILURE])
        ),
        st.tuples(
            st.just("quick"), st.sampled_from([Outcome.SUCCESS, Outcome.FAILURE])
        ),
        st.tuples(st.just("end"), st.integers(0, 5), st.sampled_from(list(Outcome))),
        st.tuples(st.just("advance"), st.sampled_from([0.5, 1.0, 2.5, 5.0, 10.0])),
        # Manual control now and then: most draws do nothing, to reach depth.
        st.tuples(
            st.just("control"),
            st.sampled_from(["reset", "force_open", "disable"] + ["none"] * 7),
        ),
    ),
    min_size=10,
    max_size=60,
)


def answer(result: Ticket | rxr.CircuitOpenError) -> tuple[Any, ...]:
    if isinstance(result, Ticket):
        return ("ticket", result.trial)
    return ("refused", result.state, result.retry_after)


def comparable(changes: list[rxr.StateChange]) -> list[tuple[Any, ...]]:
    return [(c.previous, c.current, c.at, c.reason, c.local) for c in changes]


@given(settings=SETTINGS, steps=STEPS)
def test_the_lua_machine_matches_the_in_memory_machine(
    redis_server: RedisServer, settings: dict[str, Any], steps: list[tuple[Any, ...]]
) -> None:
    pair = make_pair(redis_server, settings)
    calls: list[tuple[Ticket, Ticket]] = []
    for step in steps:
        if step[0] in ("start", "quick"):
            mine, theirs = pair.memory._admit(), pair.redis._admit()
            assert answer(theirs) == answer(mine)
            if isinstance(mine, Ticket) and isinstance(theirs, Ticket):
                if step[0] == "start":
                    calls.append((mine, theirs))
                else:
                    pair.memory._settle(mine, step[1])
                    pair.redis._settle(theirs, step[1])
        elif step[0] == "end" and calls:
            mine, theirs = calls.pop(step[1] % len(calls))
            pair.memory._settle(mine, step[2])
            pair.redis._settle(theirs, step[2])
        elif step[0] == "advance":
            pair.memory_clock.advance_by(step[1])
            pair.redis_clock.advance_by(step[1])
        elif step[0] == "control" and step[1] != "none":
            getattr(pair.memory, step[1])()
            getattr(pair.redis, step[1])()
        assert comparable(pair.redis_changes) == comparable(pair.memory_changes)
        assert pair.redis.metrics() == pair.memory.metrics()
        assert pair.redis.state == pair.memory.state
    assert pair.redis._storage.retry_after(pair.redis_clock.clock) == (
        pair.memory._storage.retry_after(pair.memory_clock.clock)
    )


def test_the_scripts_cost_one_round_trip_per_admission_and_per_outcome(
    redis_server: RedisServer,
) -> None:
    storage = rxr.RedisBreakerStorage(redis_server.client(), name=fresh_name())
    breaker = rxr.CircuitBreaker(3, 10.0, storage=storage)
    sent: list[Any] = []
    client = storage._client
    original = client.execute_command

    def counting(*args: Any, **options: Any) -> Any:
        sent.append(args[0])
        return original(*args, **options)

    client.execute_command = counting
    breaker.call(lambda: 1)  # the scripts are loaded on first use
    sent.clear()
    for _ in range(10):
        breaker.call(lambda: 1)
    assert sent == ["EVALSHA"] * 20
    sent.clear()
    for _ in range(3):
        with pytest.raises(ZeroDivisionError):
            breaker.call(lambda: 1 / 0)
    with pytest.raises(rxr.CircuitOpenError):
        breaker.call(lambda: 1)
    assert sent == ["EVALSHA"] * 7


def test_the_issue_example_builds(redis_server: RedisServer) -> None:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    breaker = rxr.CircuitBreaker(
        failure_threshold=5,
        reset_timeout=30.0,
        storage=rxr.RedisBreakerStorage(client, name=fresh_name()),
    )
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state is rxr.CircuitState.CLOSED


@pytest.mark.parametrize(
    ("arguments", "error", "named"),
    [
        ({"client": object()}, TypeError, "client"),
        ({"name": ""}, ValueError, "name"),
        ({"prefix": 3}, TypeError, "prefix"),
        ({"socket_timeout": 0}, ValueError, "socket_timeout"),
        ({"reconnect_after": -1.0}, ValueError, "reconnect_after"),
        ({"when_unreachable": "hang"}, ValueError, "when_unreachable"),
    ],
)
def test_bad_arguments_are_refused_when_built(
    redis_server: RedisServer, arguments: dict[str, Any], error: type, named: str
) -> None:
    given_arguments: dict[str, Any] = {
        "client": redis_server.client(),
        "name": "x",
        **arguments,
    }
    client = given_arguments.pop("client")
    with pytest.raises(error, match=named):
        rxr.RedisBreakerStorage(client, **given_arguments)


def test_a_storage_binds_to_one_breaker(redis_server: RedisServer) -> None:
    storage = rxr.RedisBreakerStorage(redis_server.client(), name=fresh_name())
    rxr.CircuitBreaker(storage=storage)
    with pytest.raises(ValueError, match="already bound"):
        rxr.CircuitBreaker(storage=storage)
