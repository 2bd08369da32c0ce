"""RedisBreakerStorage: the Lua state machine against the in-memory one, and its rules."""

from __future__ import annotations

import pathlib
import re
import string
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.breaker import _reasons as reasons
from rxresilience.breaker._machine import Outcome
from rxresilience.breaker._permit import Permit

from .._redis_server import RedisServer
from .._support import POSITIVE_DURATIONS_OUT_OF_RANGE
from . import test_breaker_stateful as stateful


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


def answer(result: Permit | rxr.CircuitOpenError) -> tuple[Any, ...]:
    if isinstance(result, Permit):
        return ("ticket", result.trial)
    return ("refused", result.state, result.retry_after)


def settle(permit: Permit, outcome: Outcome) -> None:
    """End a call as ``outcome`` through its permit (a timeout as its timer would)."""
    if outcome is Outcome.SUCCESS:
        permit.success()
    elif outcome is Outcome.FAILURE:
        permit.failure(RuntimeError("down"))
    elif outcome is Outcome.NEITHER:
        permit.release()
    else:
        permit._gate.settle(permit, outcome)  # type: ignore[union-attr]


def _reason_pattern(text: str) -> str:
    """A Python-defined reason as a regular expression: each field any text."""
    return "".join(
        re.escape(literal) + ("" if field is None else ".+")
        for literal, field, _, _ in string.Formatter().parse(text)
    )


#: Every reason a breaker's transition may give (the machine's, manual control's).
DEFINED_REASONS = re.compile(
    "|".join(
        _reason_pattern(text)
        for text in [
            *reasons.MACHINE_REASONS.values(),
            reasons.FORCED_OPEN,
            reasons.DISABLED,
            reasons.RESET,
        ]
    )
)


def comparable(changes: list[rxr.StateChange]) -> list[tuple[Any, ...]]:
    return [(c.previous, c.current, c.at, c.reason, c.local) for c in changes]


@given(settings=SETTINGS, steps=STEPS)
def test_the_lua_machine_matches_the_in_memory_machine(
    redis_server: RedisServer, settings: dict[str, Any], steps: list[tuple[Any, ...]]
) -> None:
    pair = make_pair(redis_server, settings)
    calls: list[tuple[Permit, Permit]] = []
    for step in steps:
        if step[0] in ("start", "quick"):
            mine, theirs = pair.memory.try_admit(), pair.redis.try_admit()
            assert answer(theirs) == answer(mine)
            if isinstance(mine, Permit) and isinstance(theirs, Permit):
                if step[0] == "start":
                    calls.append((mine, theirs))
                else:
                    settle(mine, step[1])
                    settle(theirs, step[1])
        elif step[0] == "end" and calls:
            mine, theirs = calls.pop(step[1] % len(calls))
            settle(mine, step[2])
            settle(theirs, step[2])
        elif step[0] == "advance":
            pair.memory_clock.advance_by(step[1])
            pair.redis_clock.advance_by(step[1])
        elif step[0] == "control" and step[1] != "none":
            getattr(pair.memory, step[1])()
            getattr(pair.redis, step[1])()
        assert comparable(pair.redis_changes) == comparable(pair.memory_changes)
        for change in pair.redis_changes:
            assert DEFINED_REASONS.fullmatch(change.reason), change.reason
        assert pair.redis.metrics() == pair.memory.metrics()
        assert pair.redis.state == pair.memory.state
    assert pair.redis.retry_after() == pair.memory.retry_after()


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
        ({"name": 3}, TypeError, "name"),
        # a lone surrogate (os.fsdecode's) cannot reach Redis: refused now,
        # not as a UnicodeEncodeError out of the first call
        ({"name": "a\udcff"}, ValueError, "name"),
        ({"prefix": 3}, TypeError, "prefix"),
        ({"prefix": "p\udcff:"}, ValueError, "prefix"),
        ({"socket_timeout": 0}, ValueError, "socket_timeout"),
        ({"reconnect_after": -1.0}, ValueError, "reconnect_after"),
        ({"when_unreachable": "hang"}, ValueError, "when_unreachable"),
        # keys with an empty hash tag ('{}'): on Redis Cluster each key went
        # to its own slot, every script failed CROSSSLOT, read as unreachable
        ({"name": "}payments"}, ValueError, "name"),
        ({"prefix": "breaker{}:"}, ValueError, "prefix"),
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


def _client_of_no_server() -> Any:
    """A client of a port nobody listens on: a storage built from it must not connect."""
    import redis

    from .._redis_server import _free_port

    return redis.Redis.from_url(f"redis://127.0.0.1:{_free_port()}/0")


@pytest.mark.parametrize("argument", ["socket_timeout", "reconnect_after"])
@pytest.mark.parametrize(
    ("value", "error"),
    POSITIVE_DURATIONS_OUT_OF_RANGE,
)
def test_a_duration_out_of_range_is_refused_before_connecting(
    argument: str, value: object, error: type[Exception]
) -> None:
    options: dict[str, Any] = {argument: value}
    with pytest.raises(error, match=rf"^{argument} "):
        rxr.RedisBreakerStorage(_client_of_no_server(), name="x", **options)


@pytest.mark.parametrize("argument", ["socket_timeout", "reconnect_after"])
def test_a_duration_in_range_is_accepted(argument: str) -> None:
    from rxresilience._clock import LONGEST_WAIT

    for value in (5, 0.5, LONGEST_WAIT):
        options: dict[str, Any] = {argument: value}
        storage = rxr.RedisBreakerStorage(_client_of_no_server(), name="x", **options)
        assert storage.name == "x"


def test_a_storage_binds_to_one_breaker(redis_server: RedisServer) -> None:
    storage = rxr.RedisBreakerStorage(redis_server.client(), name=fresh_name())
    rxr.CircuitBreaker(storage=storage)
    with pytest.raises(ValueError, match="already bound"):
        rxr.CircuitBreaker(storage=storage)


# --- one state for many breakers --------------------------------------------------------


@dataclass
class Member:
    """One breaker of a fleet, on its own virtual clock (one per 'process')."""

    breaker: rxr.CircuitBreaker
    clock: TestScheduler
    changes: list[rxr.StateChange]

    def fail(self) -> None:
        with pytest.raises(ZeroDivisionError):
            self.breaker.call(lambda: 1 / 0)

    def succeed(self) -> None:
        assert self.breaker.call(lambda: "ok") == "ok"

    def refused(self) -> rxr.CircuitOpenError:
        with pytest.raises(rxr.CircuitOpenError) as refusal:
            self.breaker.call(lambda: "never")
        return refusal.value

    def seen(self) -> list[tuple[str, str, float, str]]:
        return [
            (c.previous.value, c.current.value, c.at, c.reason) for c in self.changes
        ]


def fleet(
    server: RedisServer,
    size: int,
    *,
    name: str | None = None,
    starts: tuple[float, ...] = (),
    **settings: Any,
) -> list[Member]:
    name = name or fresh_name()
    members = []
    for index in range(size):
        clock = TestScheduler()
        clock.advance_by(starts[index] if starts else 0.0)
        storage = rxr.RedisBreakerStorage(server.client(), name=name)
        breaker = rxr.CircuitBreaker(scheduler=clock, storage=storage, **settings)
        member = Member(breaker, clock, [])
        breaker.state_changes.subscribe(member.changes.append)
        members.append(member)
    return members


def advance(members: list[Member], seconds: float) -> None:
    for member in members:
        member.clock.advance_by(seconds)


def test_failures_from_every_member_count_toward_one_threshold(
    redis_server: RedisServer,
) -> None:
    a, b, c = fleet(redis_server, 3, failure_threshold=3, reset_timeout=10.0)
    a.fail()
    b.fail()
    assert c.breaker.state is rxr.CircuitState.CLOSED
    c.fail()
    for member in (a, b, c):
        refusal = member.refused()
        assert (refusal.state, refusal.retry_after) == ("open", 10.0)
    assert a.breaker.metrics().failures == 3
    assert a.breaker.metrics().rejected == 3


def test_transitions_made_elsewhere_appear_in_order_when_observed(
    redis_server: RedisServer,
) -> None:
    a, b = fleet(redis_server, 2, failure_threshold=1, reset_timeout=5.0)
    b.succeed()  # b has talked to Redis once
    a.fail()
    advance([a, b], 5.0)
    a.succeed()  # a trial: half-open, then closed
    a.fail()  # open again
    assert b.changes == []  # b has not looked yet
    expected = [
        ("closed", "open", 0.0, "1 consecutive failures"),
        ("open", "half-open", 5.0, "reset timeout elapsed"),
        ("half-open", "closed", 5.0, "1 of 1 trial calls succeeded"),
        ("closed", "open", 5.0, "1 consecutive failures"),
    ]
    assert a.seen() == expected
    assert b.breaker.state is rxr.CircuitState.OPEN  # one round trip, and ...
    assert b.seen() == expected  # ... every transition b missed, in order


def test_a_member_that_missed_many_transitions_sees_the_latest_ones(
    redis_server: RedisServer,
) -> None:
    from rxresilience.breaker._redis_scripts import LOG_SIZE

    a, b = fleet(redis_server, 2, failure_threshold=1)
    b.succeed()
    for _ in range(LOG_SIZE):
        a.breaker.force_open()
        a.breaker.reset()
    a.fail()
    b.refused()
    assert len(b.changes) == LOG_SIZE
    assert b.seen()[-1] == ("closed", "open", 0.0, "1 consecutive failures")
    assert b.seen() == a.seen()[-LOG_SIZE:]


def test_a_new_member_joining_an_open_fleet_hears_why_it_is_open(
    redis_server: RedisServer,
) -> None:
    name = fresh_name()
    [a] = fleet(redis_server, 1, name=name, failure_threshold=1)
    a.fail()
    [late] = fleet(redis_server, 1, name=name, failure_threshold=1)
    late.refused()
    assert late.seen() == [("closed", "open", 0.0, "1 consecutive failures")]
    [later] = fleet(redis_server, 1, name=name, failure_threshold=1)
    a.breaker.reset()
    later.succeed()  # a closed fleet is what a new breaker assumes: nothing to say
    assert later.changes == []


def test_half_open_trials_are_counted_across_the_fleet(
    redis_server: RedisServer,
) -> None:
    members = fleet(
        redis_server, 4, failure_threshold=1, reset_timeout=10.0, half_open_max_calls=2
    )
    members[0].fail()
    advance(members, 10.0)
    answers = [member.breaker.try_admit() for member in members for _ in range(3)]
    tickets = [answer for answer in answers if isinstance(answer, Permit)]
    assert len(tickets) == 2
    assert all(ticket.trial for ticket in tickets)
    refusals = [a for a in answers if isinstance(a, rxr.CircuitOpenError)]
    assert {(r.state, r.retry_after) for r in refusals} == {("half-open", 1.0)}
    assert members[0].breaker.metrics().rejected == 10


def test_a_permit_whose_holder_vanished_expires_after_max_half_open_wait(
    redis_server: RedisServer,
) -> None:
    """The holder's clock never moves again, as if its process were killed."""
    holder, other = fleet(
        redis_server, 2, failure_threshold=1, reset_timeout=10.0, max_half_open_wait=3.0
    )
    holder.fail()
    advance([holder, other], 10.0)
    ticket = holder.breaker.try_admit()
    assert isinstance(ticket, Permit)
    assert ticket.trial
    other.clock.advance_by(3.0 - 1e-3)
    assert other.refused().state == "half-open"
    other.clock.advance_by(1e-3)
    refusal = other.refused()
    assert (refusal.state, refusal.retry_after) == ("open", 10.0)
    assert other.seen()[-1] == (
        "half-open",
        "open",
        13.0,
        "trial call outlasted max_half_open_wait",
    )
    other.clock.advance_by(10.0)
    other.succeed()  # a fresh trial, which closes the breaker
    ticket.failure(RuntimeError("down"))  # too late to change anything
    assert other.breaker.state is rxr.CircuitState.CLOSED


def test_without_max_half_open_wait_a_permit_expires_after_reset_timeout(
    redis_server: RedisServer,
) -> None:
    holder, other = fleet(redis_server, 2, failure_threshold=1, reset_timeout=10.0)
    holder.fail()
    advance([holder, other], 10.0)
    assert isinstance(holder.breaker.try_admit(), Permit)
    other.clock.advance_by(10.0 - 1e-3)
    assert other.refused().state == "half-open"
    other.clock.advance_by(1e-3)
    assert other.refused().state == "open"


@pytest.mark.parametrize("skew", [3.0, -3.0])
def test_clock_skew_shifts_the_reset_timeout_by_the_skew(
    redis_server: RedisServer, skew: float
) -> None:
    """b's clock reads ``skew`` seconds ahead of a's (behind when negative)."""
    a, b = fleet(
        redis_server,
        2,
        starts=(100.0, 100.0 + skew),
        failure_threshold=1,
        reset_timeout=30.0,
    )
    a.fail()  # opened_at = 100 on a's clock
    advance([a, b], 30.0 - skew - 1e-3)  # just before b's clock reads 130
    refusal = b.refused()
    assert refusal.retry_after == pytest.approx(1e-3, abs=1e-6)
    advance([a, b], 1e-3)
    if skew > 0:
        # b is ahead: 27 seconds after the opening (on a's clock), b sees the
        # reset timeout over and moves the whole fleet to half-open.
        b.succeed()
        assert a.breaker.state is rxr.CircuitState.CLOSED
        assert a.seen()[1] == ("open", "half-open", 130.0, "reset timeout elapsed")
        assert a.clock.clock == 127.0
    else:
        # b is behind: a's clock says the timeout is over, so a's caller goes
        # first; b alone would have refused until 3 seconds later.
        assert a.clock.clock == 133.0
        a.succeed()
        assert b.breaker.state is rxr.CircuitState.CLOSED
        assert b.seen()[1] == ("open", "half-open", 133.0, "reset timeout elapsed")


def test_time_window_outcomes_land_in_their_recorders_buckets(
    redis_server: RedisServer,
) -> None:
    """A member more than the window behind records outcomes that are dropped."""
    ahead, behind = fleet(
        redis_server,
        2,
        starts=(100.0, 88.0),
        failure_threshold=None,
        window=rxr.TimeWindow(10.0),
        failure_rate_threshold=0.5,
        minimum_calls=2,
    )
    ahead.succeed()
    behind.fail()  # 12 seconds behind: older than the whole window
    assert ahead.breaker.metrics().window_calls == 1
    ahead.fail()
    refusal = behind.refused()
    assert refusal.state == "open"


def test_threads_through_two_breakers_sharing_a_name_leave_exact_counts(
    redis_server: RedisServer,
) -> None:
    import threading

    name = fresh_name()
    breakers = [
        rxr.CircuitBreaker(
            failure_threshold=None,
            window=rxr.CountWindow(100),
            failure_rate_threshold=1.0,
            storage=rxr.RedisBreakerStorage(redis_server.client(), name=name),
        )
        for _ in range(2)
    ]
    start = threading.Barrier(8)

    def work(breaker: rxr.CircuitBreaker) -> None:
        start.wait()
        for _ in range(200):
            breaker.call(lambda: None)
            with pytest.raises(KeyError):
                breaker.call({}.__getitem__, "x")

    threads = [threading.Thread(target=work, args=(breakers[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    metrics = breakers[0].metrics()
    assert (metrics.successes, metrics.failures, metrics.window_calls) == (
        1600,
        1600,
        100,
    )
    assert metrics.state is rxr.CircuitState.CLOSED


# --- when Redis cannot be reached -----------------------------------------------------


def lone_member(server: RedisServer, **options: Any) -> Member:
    clock = TestScheduler()
    storage = rxr.RedisBreakerStorage(
        server.client(), name=fresh_name(), socket_timeout=0.2, **options
    )
    breaker = rxr.CircuitBreaker(3, 10.0, scheduler=clock, storage=storage)
    member = Member(breaker, clock, [])
    breaker.state_changes.subscribe(member.changes.append)
    return member


def test_by_default_a_process_cut_off_from_redis_decides_alone_and_says_so(
    tmp_path: pathlib.Path,
) -> None:
    server = RedisServer(tmp_path / "cut")
    server.start()
    try:
        member = lone_member(server, reconnect_after=5.0)
        member.fail()
        member.fail()  # two of three failures, counted in Redis
        server.stop()
        member.succeed()  # admitted: the last state seen was closed
        [announcement] = member.changes
        assert (announcement.previous, announcement.current) == (
            rxr.CircuitState.CLOSED,
            rxr.CircuitState.CLOSED,
        )
        assert announcement.local
        assert announcement.reason.startswith("Redis unreachable (ConnectionError")
        for _ in range(3):  # fresh local counters: three more failures open it
            member.fail()
        assert member.changes[-1].current is rxr.CircuitState.OPEN
        assert member.changes[-1].local
        assert member.refused().retry_after == 10.0
        server.start()  # an empty Redis again (no persistence): a closed fleet
        member.clock.advance_by(4.0)
        member.refused()  # not time to try Redis again yet: still on its own
        member.clock.advance_by(1.0)
        member.succeed()  # Redis again: the fleet is closed
        back = member.changes[-1]
        assert (back.previous, back.current, back.local) == (
            rxr.CircuitState.OPEN,
            rxr.CircuitState.CLOSED,
            False,
        )
        assert back.reason == "Redis reachable again: following the fleet"
        assert member.breaker.metrics().successes == 1  # counted in Redis again
    finally:
        server.stop()


def test_an_open_breaker_cut_off_from_redis_stays_open_until_its_timeout(
    tmp_path: pathlib.Path,
) -> None:
    server = RedisServer(tmp_path / "open")
    server.start()
    try:
        member = lone_member(server)
        for _ in range(3):
            member.fail()
        member.clock.advance_by(4.0)
        server.stop()
        refusal = member.refused()
        assert (refusal.state, refusal.retry_after) == ("open", 6.0)
        assert member.changes[-1].local
        member.clock.advance_by(6.0)
        member.succeed()  # the local trial, on the fleet's opening time
        assert member.breaker.state is rxr.CircuitState.CLOSED
    finally:
        server.stop()


def test_refuse_fails_closed_while_redis_is_unreachable(
    tmp_path: pathlib.Path,
) -> None:
    server = RedisServer(tmp_path / "refuse")
    server.start()
    try:
        member = lone_member(server, when_unreachable="refuse", reconnect_after=1.0)
        member.succeed()
        server.stop()
        refusal = member.refused()
        assert (refusal.state, refusal.retry_after) == ("forced-open", None)
        [announcement] = member.changes
        assert announcement.current is rxr.CircuitState.FORCED_OPEN
        assert announcement.local
        assert "refusing every call" in announcement.reason
        server.start()
        member.clock.advance_by(1.0)
        member.succeed()
        assert member.changes[-1].current is rxr.CircuitState.CLOSED
        assert not member.changes[-1].local
    finally:
        server.stop()


def test_a_hung_redis_costs_a_call_at_most_the_socket_timeout(
    tmp_path: pathlib.Path,
) -> None:
    """A stopped (SIGSTOP) server accepts connections and never answers."""
    import os
    import signal

    server = RedisServer(tmp_path / "hung")
    server.start()
    assert server.process is not None
    try:
        member = lone_member(server)
        member.succeed()
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            member.succeed()  # falls back after 0.2 s, then runs locally
            assert time.monotonic() - started < 5.0  # bounded, never a hang
            assert "Timeout" in member.changes[-1].reason
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
    finally:
        server.stop()


# --- processes -------------------------------------------------------------------------


def run_workers(target: Any, args: tuple[Any, ...], count: int = 4) -> list[Any]:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(count)
    results = context.Queue()
    workers = [
        context.Process(target=target, args=(*args, barrier, results))
        for _ in range(count)
    ]
    for worker in workers:
        worker.start()
    answers = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    return answers


def test_four_processes_open_the_breaker_together_at_the_threshold(
    redis_server: RedisServer,
) -> None:
    from .. import _breaker_worker

    answers = run_workers(
        _breaker_worker.fail_in_rounds, (redis_server.url, fresh_name())
    )
    # After round one, 4 of 8 failures: closed everywhere; after round two, open
    # everywhere, and every process refuses and heard the one transition.
    assert (
        answers
        == [
            (
                ["closed", "open"],
                "open",
                [("closed", "open", "8 consecutive failures")],
            )
        ]
        * 4
    )


def test_half_open_admits_exactly_n_trials_across_processes(
    redis_server: RedisServer,
) -> None:
    from .. import _breaker_worker

    name = fresh_name()
    [opener] = fleet(
        redis_server, 1, name=name, failure_threshold=1, reset_timeout=30.0
    )
    opener.fail()
    taken = run_workers(_breaker_worker.take_trials, (redis_server.url, name))
    assert sum(taken) == 3
    assert opener.breaker.metrics().rejected == 4 * 5 - 3


def test_a_killed_processs_permit_expires_after_max_half_open_wait(
    redis_server: RedisServer, tmp_path: pathlib.Path
) -> None:
    import multiprocessing
    import os
    import signal

    from .. import _breaker_worker

    name = fresh_name()
    [other] = fleet(
        redis_server,
        1,
        name=name,
        failure_threshold=1,
        reset_timeout=30.0,
        max_half_open_wait=5.0,
    )
    other.fail()
    ready = tmp_path / "ready"
    context = multiprocessing.get_context("spawn")
    child = context.Process(
        target=_breaker_worker.take_a_trial_and_hang,
        args=(redis_server.url, name, str(ready)),
    )
    child.start()
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline:
        child.join(0.01)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    other.clock.advance_by(30.0)
    assert other.refused().state == "half-open"  # the dead process holds the permit
    other.clock.advance_by(5.0)
    assert other.refused().state == "open"
    assert other.seen()[-1][3] == "trial call outlasted max_half_open_wait"
    other.clock.advance_by(30.0)
    other.succeed()
    assert other.breaker.state is rxr.CircuitState.CLOSED


def test_delete_starts_the_fleet_over(redis_server: RedisServer) -> None:
    name = fresh_name()
    a, b = fleet(redis_server, 2, name=name, failure_threshold=1)
    a.fail()
    # any process may delete: a storage bound to no breaker names the same keys
    rxr.RedisBreakerStorage(redis_server.client(), name=name).delete()
    b.succeed()
    assert b.breaker.metrics().failures == 0
    assert b.breaker.state is rxr.CircuitState.CLOSED
    unbound = rxr.RedisBreakerStorage(redis_server.client(), name="never-bound")
    unbound.delete()  # nothing to remove: fine


# --- when Redis loses the breaker's state -----------------------------------------------
# A delete(), a FLUSHALL, a failover or a restart without persistence: the
# generation starts at 0 again, so a process must not trust what it remembers
# of the lost state (the last generation it published, a permit's generation).


def lost_state_member(
    server: RedisServer, **settings: Any
) -> tuple[Member, rxr.RedisBreakerStorage]:
    clock = TestScheduler()
    storage = rxr.RedisBreakerStorage(server.client(), name=fresh_name())
    breaker = rxr.CircuitBreaker(scheduler=clock, storage=storage, **settings)
    member = Member(breaker, clock, [])
    breaker.state_changes.subscribe(member.changes.append)
    return member, storage


LOST = "the breaker's state in Redis was lost (deleted, flushed, or a restart"


@pytest.mark.parametrize("how", ["delete", "flushall", "restart"])
def test_transitions_after_the_state_was_lost_are_still_published(
    tmp_path: pathlib.Path, how: str
) -> None:
    server = RedisServer(tmp_path / "lost")
    server.start()
    try:
        member, storage = lost_state_member(
            server, failure_threshold=1, reset_timeout=10.0
        )
        member.fail()  # generation 1: open
        member.clock.advance_by(10.0)
        member.fail()  # 2: half-open, 3: open again
        if how == "delete":
            storage.delete()
        elif how == "flushall":
            server.client().flushall()
        else:  # no persistence: an empty Redis, and its scripts gone too
            server.stop()
            server.start()
        assert member.breaker.state is rxr.CircuitState.CLOSED
        member.fail()  # generation 1 of the new life: open
        assert member.breaker.state is rxr.CircuitState.OPEN
        seen = member.seen()
        assert seen[:3] == [
            ("closed", "open", 0.0, "1 consecutive failures"),
            ("open", "half-open", 10.0, "reset timeout elapsed"),
            ("half-open", "open", 10.0, "trial call failed"),
        ]
        assert seen[3][:3] == ("open", "closed", 10.0)
        assert seen[3][3].startswith(LOST)
        assert seen[4:] == [("closed", "open", 10.0, "1 consecutive failures")]
        assert member.refused().retry_after == 10.0
    finally:
        server.stop()


def test_a_member_that_did_not_lose_sight_hears_of_the_new_life(
    redis_server: RedisServer,
) -> None:
    name = fresh_name()
    a, b = fleet(redis_server, 2, name=name, failure_threshold=1)
    a.fail()
    b.refused()
    rxr.RedisBreakerStorage(redis_server.client(), name=name).delete()
    a.succeed()  # a learns of the loss, and the new life is closed
    a.fail()  # and opens it again
    assert b.breaker.state is rxr.CircuitState.OPEN
    assert [change[:2] for change in b.seen()] == [
        ("closed", "open"),
        ("open", "open"),  # the state it knew was lost: it follows the new one
    ]
    assert b.seen()[1][3].startswith(LOST)
    assert [change[:2] for change in a.seen()] == [
        ("closed", "open"),
        ("open", "closed"),
        ("closed", "open"),
    ]


def test_a_permit_admitted_before_the_state_was_lost_does_not_count_after(
    redis_server: RedisServer,
) -> None:
    member, storage = lost_state_member(redis_server, failure_threshold=1)
    permit = member.breaker.admit()  # generation 0 of the first life
    storage.delete()
    member.succeed()  # generation 0 of the second life
    permit.failure(RuntimeError("down"))  # would open it, were it of this life
    assert member.breaker.state is rxr.CircuitState.CLOSED
    metrics = member.breaker.metrics()
    assert (metrics.failures, metrics.consecutive_failures) == (1, 0)


def test_a_trial_from_before_the_state_was_lost_cannot_settle_a_new_trial(
    redis_server: RedisServer,
) -> None:
    member, storage = lost_state_member(
        redis_server, failure_threshold=1, reset_timeout=10.0
    )
    member.fail()
    member.clock.advance_by(10.0)
    old_trial = member.breaker.admit()  # generation 2, the first trial
    assert old_trial.trial
    storage.delete()
    member.fail()
    member.clock.advance_by(10.0)
    new_trial = member.breaker.admit()  # generation 2 again, the first trial again
    assert new_trial.trial
    old_trial.success()
    assert member.breaker.state is rxr.CircuitState.HALF_OPEN
    assert member.refused().state == "half-open"  # the new trial still holds its slot
    new_trial.success()
    assert member.breaker.state is rxr.CircuitState.CLOSED


def test_threads_through_repeated_losses_publish_one_unbroken_chain(
    redis_server: RedisServer,
) -> None:
    """8 threads call while the state is deleted again and again: each change
    published starts where the one before ended, and the last is the state."""
    import threading

    member, storage = lost_state_member(
        redis_server, failure_threshold=2, reset_timeout=1000.0
    )
    start = threading.Barrier(9)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        start.wait()
        for step in range(60):
            try:
                if (index + step) % 3:
                    member.breaker.call(lambda: "ok")
                else:
                    member.breaker.call(lambda: 1 / 0)
            except (ZeroDivisionError, rxr.CircuitOpenError):
                pass
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    start.wait()
    for _ in range(20):
        storage.delete()
    for thread in threads:
        thread.join()
    assert errors == []
    state = member.breaker.state
    chain = [rxr.CircuitState.CLOSED]
    for change in member.changes:
        assert change.previous is chain[-1], member.seen()
        chain.append(change.current)
    assert chain[-1] is state


def test_a_state_written_before_epochs_is_kept_and_stamped_in_place(
    redis_server: RedisServer,
) -> None:
    """Keys as the release before epochs left them: the same life, not a lost one."""
    name = fresh_name()
    client = redis_server.client()
    base = f"breaker:{{{name}}}"
    client.hset(
        base,
        mapping={"state": "open", "gen": 1, "opened_at": "0.0", "failures": 1},
    )
    client.lpush(f"{base}:log", "1\tclosed\topen\t0.0\t1 consecutive failures")
    [member] = fleet(
        redis_server, 1, name=name, failure_threshold=1, reset_timeout=10.0
    )
    assert member.refused().retry_after == 10.0
    assert member.seen() == [("closed", "open", 0.0, "1 consecutive failures")]
    assert client.hget(base, "epoch")  # stamped once, then kept
    assert member.breaker.metrics().failures == 1
    member.clock.advance_by(10.0)
    member.succeed()
    assert member.breaker.state is rxr.CircuitState.CLOSED
    assert [change[1] for change in member.seen()] == ["open", "half-open", "closed"]


# --- the reference model of tests/breaker/test_breaker_stateful.py, through Redis --------

_SERVER: list[RedisServer] = []


@pytest.fixture(autouse=True)
def _remember_the_server(redis_server: RedisServer) -> None:
    _SERVER[:] = [redis_server]


class RedisBreakerMachine(stateful.BreakerMachine):
    """The operator-level state machine test, with the state in Redis."""

    def make_breaker(self, **settings: Any) -> rxr.CircuitBreaker:
        storage = rxr.RedisBreakerStorage(_SERVER[0].client(), name=fresh_name())
        # Without max_half_open_wait a fleet's permit expires after the reset
        # timeout (the model's trials never expire); a wait beyond any run's
        # virtual time (40 steps of at most 11 s) keeps the two comparable.
        return rxr.CircuitBreaker(
            storage=storage, max_half_open_wait=1000.0, **settings
        )


RedisBreakerMachine.TestCase.settings = stateful.settings(
    max_examples=100, stateful_step_count=40, deadline=None
)
TestRedisBreakerAgainstModel = RedisBreakerMachine.TestCase


def test_an_idle_member_hears_of_transitions_by_looking_on_a_timer(
    redis_server: RedisServer,
) -> None:
    import reactivex as rx

    a, b = fleet(redis_server, 2, failure_threshold=1)
    b.succeed()
    looking = rx.interval(5.0, scheduler=b.clock).subscribe(lambda _: b.breaker.state)
    a.fail()
    assert b.changes == []
    b.clock.advance_by(5.0)
    assert b.seen() == [("closed", "open", 0.0, "1 consecutive failures")]
    looking.dispose()


def test_threads_racing_for_trials_through_two_processes_get_exactly_n(
    redis_server: RedisServer,
) -> None:
    import threading

    members = fleet(
        redis_server, 2, failure_threshold=1, reset_timeout=10.0, half_open_max_calls=3
    )
    members[0].fail()
    advance(members, 10.0)
    start = threading.Barrier(8)
    tickets: list[Any] = []

    def race(member: Member) -> None:
        start.wait()
        for _ in range(10):
            answer = member.breaker.try_admit()
            if isinstance(answer, Permit):
                tickets.append(answer)

    threads = [threading.Thread(target=race, args=(members[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tickets) == 3
    assert members[0].breaker.metrics().rejected == 80 - 3


def test_auto_half_open_on_one_member_moves_the_fleet(
    redis_server: RedisServer,
) -> None:
    a, b = fleet(
        redis_server, 2, failure_threshold=1, reset_timeout=10.0, auto_half_open=True
    )
    b.succeed()
    a.fail()
    a.clock.advance_by(10.0)  # a's timer, on a's scheduler
    assert a.seen()[-1] == ("open", "half-open", 10.0, "reset timeout elapsed")
    assert b.breaker.state is rxr.CircuitState.HALF_OPEN
    assert [change[1] for change in b.seen()] == ["open", "half-open"]
