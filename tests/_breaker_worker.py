"""Worker processes sharing one Redis-backed breaker (run with the spawn context)."""

from __future__ import annotations

import contextlib
from typing import Any

import redis
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.breaker._permit import Permit


def member(url: str, name: str, at: float, **settings: Any) -> rxr.CircuitBreaker:
    """A breaker on a virtual clock reading ``at``, so every process agrees on time."""
    clock = TestScheduler()
    clock.advance_by(at)
    storage = rxr.RedisBreakerStorage(redis.Redis.from_url(url), name=name)
    return rxr.CircuitBreaker(scheduler=clock, storage=storage, **settings)


def fail_in_rounds(url: str, name: str, barrier: Any, results: Any) -> None:
    """Two rounds of one failing call each; report what this process saw."""
    breaker = member(url, name, 0.0, failure_threshold=8, reset_timeout=30.0)
    changes: list[rxr.StateChange] = []
    breaker.state_changes.subscribe(changes.append)
    states = []
    for _ in range(2):
        barrier.wait()
        with contextlib.suppress(ZeroDivisionError):
            breaker.call(lambda: 1 / 0)
        barrier.wait()
        states.append(breaker.state.value)
    try:
        breaker.call(lambda: "never")
        refused = ""
    except rxr.CircuitOpenError as error:
        refused = error.state
    results.put(
        (
            states,
            refused,
            [(c.previous.value, c.current.value, c.reason) for c in changes],
        )
    )


def take_trials(url: str, name: str, barrier: Any, results: Any) -> None:
    """Try for five half-open permits at once with the other processes; hold them."""
    breaker = member(
        url, name, 30.0, failure_threshold=1, reset_timeout=30.0, half_open_max_calls=3
    )
    barrier.wait()
    answers = [breaker.try_admit() for _ in range(5)]
    results.put(sum(isinstance(answer, Permit) for answer in answers))
    barrier.wait()  # hold the permits until every process has counted


def take_a_trial_and_hang(url: str, name: str, ready_path: str) -> None:
    """Take a half-open permit, say so, and wait to be killed."""
    import pathlib
    import threading

    breaker = member(
        url, name, 30.0, failure_threshold=1, reset_timeout=30.0, max_half_open_wait=5.0
    )
    ticket = breaker.try_admit()
    assert isinstance(ticket, Permit)
    assert ticket.trial
    pathlib.Path(ready_path).write_text("holding")
    threading.Event().wait(600)
