"""RedisRateLimiterStorage: the Lua GCRA against the Python one, and the fleet's rules."""

from __future__ import annotations

import os
import pathlib
import signal
import time
import uuid
from typing import Any

import pytest
import reactivex as rx
from hypothesis import given
from hypothesis import strategies as st
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.rate_limit._gcra import Gcra
from rxresilience.rate_limit._redis import IDLE_MARGIN, script
from rxresilience.testing import run
from rxresilience.testing._rate_limit_laws import (
    admissions_fit_the_rate,
    rate_limiter_configs,
)

from .._redis_server import RedisServer
from .._support import POSITIVE_DURATIONS_OUT_OF_RANGE


def fresh_name() -> str:
    return uuid.uuid4().hex


def redis_limiter(
    server: RedisServer, rate: float, per: float = 1.0, burst: int = 1, **options: Any
) -> tuple[rxr.RateLimiter, TestScheduler]:
    clock = TestScheduler()
    storage = rxr.RedisRateLimiterStorage(
        server.client(), name=options.pop("name", fresh_name()), **options
    )
    return rxr.RateLimiter(rate, per, burst, storage=storage, scheduler=clock), clock


STEPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("advance"), st.sampled_from([0.0, 0.1, 0.3, 0.5, 1.0, 2.5, 1e-7])
        ),
        st.tuples(st.just("reserve"), st.sampled_from([0.0, 0.2, 1.0, 3.0, 1e9])),
        st.tuples(st.just("cancel"), st.integers(0, 10)),
        st.tuples(st.just("peek"), st.just(0.0)),
    ),
    max_size=40,
)


@given(
    config=rate_limiter_configs(),
    start=st.sampled_from([0.0, 1.7e9 + 0.123, -50.0]),
    steps=STEPS,
)
def test_the_lua_gcra_matches_the_python_gcra_to_the_last_bit(
    redis_server: RedisServer,
    config: rxr.RateLimiterConfig,
    start: float,
    steps: list[tuple[str, float]],
) -> None:
    storage = rxr.RedisRateLimiterStorage(redis_server.client(), name=fresh_name())
    storage.bind(config)
    python = Gcra(config.interval, config.tolerance)
    now = start
    held: list[rxr.RateLimiterReservation] = []
    for kind, value in steps:
        if kind == "advance":
            now += value
        elif kind == "reserve":
            theirs = storage.reserve(now, value)
            assert theirs == python.reserve(now, value)
            if isinstance(theirs, rxr.RateLimiterReservation):
                held.append(theirs)
        elif kind == "cancel" and held:
            reservation = held[int(value) % len(held)]
            assert storage.cancel(reservation, now) == python.cancel(reservation)
        else:
            assert storage.time_to_permit(now) == python.time_to_permit(now)
    assert storage.time_to_permit(now) == python.time_to_permit(now)


def test_a_permit_costs_one_round_trip(redis_server: RedisServer) -> None:
    limiter, _ = redis_limiter(redis_server, 2, 1.0, 3)
    storage = limiter.storage
    assert isinstance(storage, rxr.RedisRateLimiterStorage)
    sent: list[Any] = []
    client = storage._client
    original = client.execute_command

    def counting(*args: Any, **options: Any) -> Any:
        sent.append(args[0])
        return original(*args, **options)

    limiter.time_to_permit()  # the script is loaded on first use
    client.execute_command = counting
    try:
        for _ in range(10):  # three permits, then refusals: one round trip each
            limiter.try_acquire()
        reservation = limiter.try_reserve()
        assert isinstance(reservation, rxr.RateLimiterReservation)
        assert limiter.cancel(reservation)
        limiter.time_to_permit()
    finally:
        del client.execute_command
    assert sent == ["EVALSHA"] * 13


def test_round_trips_counted_by_the_server_are_one_per_try(
    redis_server: RedisServer,
) -> None:
    limiter, _ = redis_limiter(redis_server, 5, 1.0, 2)
    limiter.time_to_permit()
    client = redis_server.client()

    def evalsha_calls() -> int:
        stats = client.info("commandstats")
        return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))

    before = evalsha_calls()
    taken = sum(limiter.try_acquire() for _ in range(50))
    assert taken == 2
    assert evalsha_calls() - before == 50


def test_the_issue_examples_run_on_redis_in_virtual_time(
    redis_server: RedisServer,
) -> None:
    for burst, expected in ((1, [0.0, 0.5, 1.0, 1.5, 2.0]), (3, [0, 0, 0, 0.5, 1.0])):
        limiter, clock = redis_limiter(redis_server, 2, 1.0, burst)
        reached: list[float] = []

        def call(
            _: Any, clock: TestScheduler = clock, reached: list[float] = reached
        ) -> rx.Observable[int]:
            reached.append(float(clock.clock))
            return rx.of(1)

        for _ in range(5):
            run(
                lambda limiter=limiter: rx.defer(call).pipe(rxr.rate_limit(limiter)),
                scheduler=clock,
                until=0.0,
            )
        clock.advance_to(5.0)
        assert reached == expected
    limiter, clock = redis_limiter(redis_server, 2, 1.0)
    trace = run(lambda: rx.of(1, 2, 3, 4).pipe(rxr.pace(limiter)), scheduler=clock)
    assert [e.time for e in trace.events] == [0.0, 0.5, 1.0, 1.5, 1.5]


def test_disposing_a_waiting_call_gives_back_in_redis_only_the_latest(
    redis_server: RedisServer,
) -> None:
    limiter, clock = redis_limiter(redis_server, 1)
    operator = rxr.rate_limit(limiter)
    run(lambda: rx.never().pipe(operator), scheduler=clock, until=0.0)
    run(lambda: rx.never().pipe(operator), scheduler=clock, dispose_at=0.2, until=0.0)
    run(lambda: rx.never().pipe(operator), scheduler=clock, dispose_at=0.5, until=0.0)
    clock.advance_to(0.3)  # the middle one: a later one stands behind it
    assert limiter.time_to_permit() == pytest.approx(2.7)
    clock.advance_to(0.6)  # the latest: given back in the script
    assert limiter.time_to_permit() == pytest.approx(1.4)


def test_the_key_is_literal_and_expires_after_its_tat(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    tag = fresh_name()
    names = [f"{tag}*", f"{tag}?", f"{tag}[ab]", f"{tag}\\", f"{tag}{{x}}", f"{tag}"]
    names += [f"{tag} '\"%_", f"{tag}é"]
    limiters = [redis_limiter(redis_server, 1, name=name)[0] for name in names]
    for limiter in limiters:
        assert limiter.try_acquire()  # each its own key: none is taken already
        assert not limiter.try_acquire()
    for name in names:
        key = f"ratelimit:{{{name}}}".encode()
        assert client.get(key) == b"1"
        assert 0 < client.pttl(key) <= (1.0 + IDLE_MARGIN) * 1000
    storage = limiters[0].storage
    assert isinstance(storage, rxr.RedisRateLimiterStorage)
    storage.delete()
    assert client.exists(f"ratelimit:{{{names[0]}}}") == 0
    assert client.exists(f"ratelimit:{{{names[5]}}}") == 1
    assert limiters[0].try_acquire()


def test_a_key_is_kept_while_a_far_tat_is_pending(redis_server: RedisServer) -> None:
    limiter, _ = redis_limiter(redis_server, 1, per=3600.0, burst=2)
    limiter.try_acquire()
    storage = limiter.storage
    assert isinstance(storage, rxr.RedisRateLimiterStorage)
    ttl = redis_server.client().pttl(storage.key)
    assert 3600_000 < ttl <= (3600 + IDLE_MARGIN) * 1000


def test_the_script_shares_its_numbers_with_python() -> None:
    text = script()
    assert "$" not in text
    assert "RESOLUTION, MARGIN = 1e-06, 60.0" in text


@pytest.mark.parametrize("skew", [1.0])
def test_a_process_ahead_borrows_at_most_skew_times_rate(
    redis_server: RedisServer, skew: float
) -> None:
    """b's clock reads ``skew`` seconds ahead of a's; both take every permit
    they can, every 50 ms of real time, for 5 s."""
    name = fresh_name()
    rate, per, burst = 4.0, 1.0, 2
    a, a_clock = redis_limiter(redis_server, rate, per, burst, name=name)
    b, b_clock = redis_limiter(redis_server, rate, per, burst, name=name)
    a_clock.advance_to(100.0)
    b_clock.advance_to(100.0 + skew)
    taken: list[float] = []  # in a's time: the fleet's "real" time
    for step in range(101):
        now = 100.0 + 0.05 * step
        a_clock.advance_to(now)
        b_clock.advance_to(now + skew)
        while a.try_acquire():
            taken.append(now)
        while b.try_acquire():
            taken.append(now)
    config = a.config
    admissions_fit_the_rate(taken, config, skew=skew)
    # ... and the loan is real: without the skew the bound does not hold.
    with pytest.raises(AssertionError):
        admissions_fit_the_rate(taken, config)
    assert len(taken) <= burst + (5.0 + skew) * rate / per


# --- Redis out of reach ------------------------------------------------------------


def test_cut_off_a_process_decides_alone_from_the_fleets_last_tat(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(tmp_path / "cut")
    server.start()
    try:
        limiter, clock = redis_limiter(server, 1, 1.0, 1, reconnect_after=5.0)
        assert limiter.try_acquire()  # the fleet's TAT: 1.0
        server.stop()
        assert not limiter.try_acquire()  # alone, on the last TAT seen
        assert "Redis unreachable (ConnectionError" in caplog.text
        assert limiter.time_to_permit() == 1.0
        clock.advance_to(1.0)
        assert limiter.try_acquire()
        assert not limiter.try_acquire()
        server.start()  # an empty Redis (no persistence): an idle fleet
        clock.advance_to(4.0)
        assert limiter.try_acquire()  # not time to try Redis yet: alone still
        assert not limiter.try_acquire()
        clock.advance_to(6.0)
        assert limiter.try_acquire()  # Redis again
        assert "Redis reachable again" in caplog.text
        assert server.client().get(limiter.storage.key) == b"7"  # type: ignore[attr-defined]
    finally:
        server.stop()


def test_refuse_fails_closed_until_redis_answers(tmp_path: pathlib.Path) -> None:
    server = RedisServer(tmp_path / "refuse")
    server.start()
    try:
        limiter, clock = redis_limiter(
            server, 100, when_unreachable="refuse", reconnect_after=2.0
        )
        assert limiter.try_acquire()
        server.stop()
        refusal = limiter.try_reserve()
        assert isinstance(refusal, rxr.RateLimitedError)
        assert refusal.retry_after == 2.0  # when Redis will be tried again
        clock.advance_to(0.5)
        trace = run(
            lambda: rx.of(1).pipe(rxr.rate_limit(limiter)), scheduler=clock, until=0.5
        )
        trace.assert_error(rxr.RateLimitedError)
        assert limiter.time_to_permit() == 1.5
        reservation = rxr.RateLimiterReservation(0.0, 0.0, 0.01)
        assert limiter.cancel(reservation) is False
        server.start()
        clock.advance_to(2.0)
        assert limiter.try_acquire()
    finally:
        server.stop()


def test_pace_keeps_the_waiting_items_while_redis_refuses(
    tmp_path: pathlib.Path,
) -> None:
    server = RedisServer(tmp_path / "pace-refuse")
    server.start()
    try:
        limiter, clock = redis_limiter(
            server, 1, when_unreachable="refuse", reconnect_after=0.5
        )
        source: rx.subject.Subject[int] = rx.subject.Subject()
        seen: list[tuple[float, Any]] = []
        source.pipe(rxr.pace(limiter)).subscribe(
            lambda v: seen.append((float(clock.clock), v)),
            lambda e: seen.append((float(clock.clock), e)),
            lambda: seen.append((float(clock.clock), "done")),
            scheduler=clock,
        )
        for value in range(3):
            source.on_next(value)  # 0 at once; 1 reserved for t=1; 2 behind it
        source.on_completed()
        server.stop()  # unreachable: 2 is refused at t=1, asked again every 0.5 s
        clock.advance_to(2.0)
        assert seen == [(0.0, 0), (1.0, 1)]
        server.start()
        clock.advance_to(10.0)
        assert seen == [(0.0, 0), (1.0, 1), (2.5, 2), (2.5, "done")]
    finally:
        server.stop()


def test_a_hung_redis_costs_a_permit_at_most_the_socket_timeout(
    tmp_path: pathlib.Path,
) -> None:
    """A stopped (SIGSTOP) server accepts connections and never answers."""
    server = RedisServer(tmp_path / "hung")
    server.start()
    assert server.process is not None
    try:
        limiter, clock = redis_limiter(server, 100, socket_timeout=0.2)
        assert limiter.try_acquire()
        clock.advance_to(0.01)  # the next permit is due
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            assert limiter.try_acquire()  # alone after 0.2 s
            assert time.monotonic() - started < 5.0
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
    finally:
        server.stop()


# --- arguments --------------------------------------------------------------------


@pytest.mark.parametrize("argument", ["socket_timeout", "reconnect_after"])
@pytest.mark.parametrize(("value", "error"), POSITIVE_DURATIONS_OUT_OF_RANGE)
def test_a_duration_out_of_range_is_refused(
    redis_server: RedisServer, argument: str, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match=argument):
        rxr.RedisRateLimiterStorage(
            redis_server.client(), name="x", **{argument: value}
        )


@pytest.mark.parametrize(
    ("options", "error", "named"),
    [
        ({"name": ""}, ValueError, "name"),
        ({"name": "\udcff"}, ValueError, "name"),
        ({"name": "x", "prefix": 3}, TypeError, "prefix"),
        ({"name": "x", "when_unreachable": "open"}, ValueError, "when_unreachable"),
    ],
)
def test_bad_options_are_refused(
    redis_server: RedisServer,
    options: dict[str, Any],
    error: type[Exception],
    named: str,
) -> None:
    with pytest.raises(error, match=named):
        rxr.RedisRateLimiterStorage(redis_server.client(), **options)
    with pytest.raises(TypeError, match="client"):
        rxr.RedisRateLimiterStorage(object(), name="x")


def test_an_unbound_storage_says_so(redis_server: RedisServer) -> None:
    storage = rxr.RedisRateLimiterStorage(redis_server.client(), name="x")
    with pytest.raises(RuntimeError, match="not bound"):
        storage.time_to_permit(0.0)
    assert repr(storage) == "RedisRateLimiterStorage(name='x', prefix='ratelimit:')"


# --- processes ----------------------------------------------------------------------


def test_four_processes_never_exceed_the_limit_together(
    tmp_path: pathlib.Path,
) -> None:

    # A server of its own: the round trips counted are this test's alone
    # (the session's server may hear a lingering renewal of another test).
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        _four_processes(server)
    finally:
        server.stop()


def _four_processes(redis_server: RedisServer) -> None:
    import multiprocessing

    from . import _worker

    settings = (50.0, 1.0, 5)
    name = fresh_name()
    warm = rxr.RedisRateLimiterStorage(redis_server.client(), name=fresh_name())
    warm.bind(rxr.RateLimiterConfig(1))
    warm.time_to_permit(0.0)  # the script is in the server's cache
    client = redis_server.client()
    before = int(client.info("commandstats")["cmdstat_evalsha"]["calls"])
    context = multiprocessing.get_context("spawn")
    # The start is set once every worker is up (spawning is slow on a loaded
    # machine): ready (all five), the parent sets it, go (all five).
    barrier = context.Barrier(5)
    start = context.Value("d", 0.0)
    results = context.Queue()
    seconds = 1.5
    workers = [
        context.Process(
            target=_worker.take_permits,
            args=(redis_server.url, name, settings, start, seconds, barrier, results),
        )
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=120)
    start.value = time.time() + 0.2
    barrier.wait(timeout=120)
    answers = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    taken = sorted(at for times, _ in answers for at in times)
    tries = sum(count for _, count in answers)
    config = rxr.RateLimiterConfig(*settings)
    admissions_fit_the_rate(taken, config)
    assert len(taken) <= 5 + seconds * 50
    after = int(client.info("commandstats")["cmdstat_evalsha"]["calls"])
    assert after - before == tries  # one round trip per try, fleet-wide
    assert len(taken) > 5 + 10  # the fleet's permits came back as time passed
