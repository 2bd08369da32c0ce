"""``FleetLink``: what one process remembers of the fleet, and when it forgets it.

Run against a real Redis with the storage's own scripts; the replies of two
threads are put out of order on purpose, with events, never with sleeps.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
import redis

import rxresilience as rxr
from rxresilience.breaker import _reasons
from rxresilience.breaker._redis_codec import keys
from rxresilience.breaker._redis_link import FleetLink
from rxresilience.breaker._redis_scripts import render

from .._redis_server import RedisServer

CONFIG = rxr.BreakerConfig(1, 10.0, 1, None, None, None, None, 1)


class Fleet:
    """One link bound to a fresh breaker name, with its scripts registered."""

    def __init__(self, server: RedisServer) -> None:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        self.client = client
        self.changes: list[rxr.StateChange] = []
        self.link = FleetLink("local", 1.0, redis.exceptions.RedisError)
        self.keys = keys(f"breaker:{{{uuid.uuid4().hex}}}", CONFIG)
        self.link.bind(CONFIG, self.changes.append, self.keys)
        scripts = render(CONFIG)
        self.acquire = client.register_script(scripts.acquire)
        self.record = client.register_script(scripts.record)

    def fail(self, now: float) -> None:
        """Admit a call and record it failed, as the storage would."""
        reply = self.link.run(self.acquire, now)
        assert reply is not None
        kind, generation, _ = reply.fields
        assert kind == "permit"
        self.link.run(self.record, now, reply.epoch, generation, "", "f", "0")

    def lose_state(self) -> None:
        self.client.delete(*self.keys)


@pytest.fixture
def fleet(redis_server: RedisServer) -> Fleet:
    return Fleet(redis_server)


def test_the_first_reply_names_the_epoch_and_later_ones_leave_it_out(
    fleet: Fleet,
) -> None:
    sent: list[list[Any]] = []
    raw: list[str] = []

    def watched(keys: list[str], args: list[Any]) -> str:
        sent.append(args)
        text: str = fleet.acquire(keys=keys, args=args)
        raw.append(text)
        return text

    first = fleet.link.run(watched, 0.0)
    second = fleet.link.run(watched, 0.0)
    assert first is not None
    assert second is not None
    assert first.epoch == second.epoch != ""
    assert sent[0][2] == ""  # knew no epoch
    assert sent[1][2] == first.epoch
    assert raw[0].startswith(first.epoch + "\t")
    assert raw[1].startswith("\t")  # the epoch the caller sent: not repeated
    assert sent[0][3] != sent[1][3]  # a fresh offer per call


def test_a_process_that_finds_a_new_epoch_forgets_the_old_one(fleet: Fleet) -> None:
    fleet.fail(0.0)
    assert fleet.link.state is rxr.CircuitState.OPEN
    fleet.lose_state()
    reply = fleet.link.run(fleet.acquire, 1.0)
    assert reply is not None
    assert reply.fields[0] == "permit"
    assert fleet.link.state is rxr.CircuitState.CLOSED
    assert [(c.previous, c.current, c.reason) for c in fleet.changes] == [
        (rxr.CircuitState.CLOSED, rxr.CircuitState.OPEN, "1 consecutive failures"),
        (rxr.CircuitState.OPEN, rxr.CircuitState.CLOSED, _reasons.STATE_LOST),
    ]
    fleet.fail(2.0)  # generation 1 again, in the new life: published
    assert fleet.changes[-1].current is rxr.CircuitState.OPEN
    assert fleet.changes[-1].at == 2.0


def test_a_reply_from_the_old_life_overtaken_by_a_new_one_is_not_news(
    fleet: Fleet,
) -> None:
    """Thread A's reply (old life, OPEN) arrives after thread B's (new life, CLOSED)."""
    fleet.fail(0.0)
    answered = threading.Event()
    go_on = threading.Event()

    def held(keys: list[str], args: list[Any]) -> str:
        text: str = fleet.acquire(keys=keys, args=args)
        answered.set()
        assert go_on.wait(30)
        return text

    late: list[Any] = []
    thread = threading.Thread(target=lambda: late.append(fleet.link.run(held, 1.0)))
    thread.start()
    assert answered.wait(30)  # A's script has run: the old life refused it
    fleet.lose_state()
    fleet.link.run(fleet.acquire, 1.0)  # B: the new life, closed
    go_on.set()
    thread.join(30)
    [reply] = late
    assert reply.state is rxr.CircuitState.OPEN  # A's own answer stands ...
    assert fleet.link.state is rxr.CircuitState.CLOSED  # ... but is not news
    assert [c.current for c in fleet.changes] == [
        rxr.CircuitState.OPEN,
        rxr.CircuitState.CLOSED,
    ]
    fleet.fail(2.0)
    assert [c.current for c in fleet.changes][-1] is rxr.CircuitState.OPEN


def test_an_opening_in_the_new_life_is_what_the_fallback_remembers(
    fleet: Fleet,
) -> None:
    """The opening time kept for deciding alone is the new life's, not the old's."""
    fleet.fail(0.0)
    fleet.lose_state()
    other = FleetLink("local", 1.0, redis.exceptions.RedisError)
    other.bind(CONFIG, lambda _: None, fleet.keys)
    reply = other.run(fleet.acquire, 5.0)
    assert reply is not None
    other.run(fleet.record, 5.0, reply.epoch, reply.fields[1], "", "f", "0")
    fleet.link.run(fleet.acquire, 6.0)  # refused: the new life opened at 5.0
    assert fleet.changes[-1].reason == _reasons.STATE_LOST
    assert fleet.changes[-1].current is rxr.CircuitState.OPEN
    fleet.link._fall_back(ConnectionError("gone"), 6.0)
    assert fleet.link.machine().retry_after(6.0) == 9.0  # 5.0 + 10.0 - 6.0
