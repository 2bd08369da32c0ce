"""``RedisBreakerStorage``'s link to the fleet: following it, and deciding alone.

A :class:`FleetLink` runs the storage's scripts, publishes the transitions
each reply reports that this process has not, and, when Redis cannot be
reached, falls back to a local :class:`~._machine.CircuitMachine` (the
fleet's last known state, fresh counters) until an attempt, at most every
``reconnect_after`` seconds, succeeds again.

What a process remembers of the fleet (the last generation it published,
the state, when it opened) belongs to one *epoch*, one life of the state in
Redis. When the state is lost (deleted, flushed, a restart or failover
without persistence) the generation starts at 0 again: a reply naming
another epoch makes the process forget what it remembered and publish the
move to the new life's state, and permits carry their epoch, so that one
admitted in the old life is never settled against the new one.
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets
import threading
from typing import Any

from . import _reasons as reasons
from ._machine import BreakerConfig, ChangeSink, CircuitMachine, CircuitState
from ._redis_codec import Reply, parse_change, parse_reply
from ._types import StateChange

__all__ = ["FleetLink"]


class FleetLink:
    """What one process knows of the fleet's breaker, and its fallback."""

    def __init__(
        self,
        when_unreachable: str,
        reconnect_after: float,
        unreachable: type[Exception],
    ) -> None:
        self.when_unreachable = when_unreachable
        self._reconnect_after = reconnect_after
        self._unreachable = unreachable
        self.lock = threading.Lock()
        self._keys: list[str] = []
        self._sink: ChangeSink = _unbound_sink
        self._local: CircuitMachine | None = None
        # The epoch this process knows, and the last generation it published
        # in it; one tuple, so a thread reads both of one moment.
        self._known: tuple[str, int] = ("", -1)
        # Fresh epochs offered to Redis: unique per call across the fleet, so
        # no two lives of the state ever share one.
        self._token = secrets.token_hex(8)
        self._offers = itertools.count()
        self._state = CircuitState.CLOSED  # the fleet's state as last seen
        self._opened_at = 0.0
        self.fallen_back = False
        self._reconnect_at = 0.0

    def bind(self, config: BreakerConfig, sink: ChangeSink, keys: list[str]) -> None:
        """Publish on ``sink``; run scripts on ``keys`` (called under ``lock``)."""
        self._sink = sink
        self._local = CircuitMachine(config, self._local_sink)
        self._keys = keys

    def _local_sink(self, change: StateChange) -> None:
        self._sink(dataclasses.replace(change, local=True))

    @property
    def state(self) -> CircuitState:
        """The state as last known: the fleet's, or this process's while alone."""
        if self.fallen_back:
            return self.machine().state
        return self._state

    def machine(self) -> CircuitMachine:
        """The local machine, which decides while Redis cannot be reached."""
        if self._local is None:
            raise RuntimeError("storage is not bound to a circuit breaker")
        return self._local

    def run(self, script: Any, now: float, *args: Any) -> Reply | None:
        """Run ``script``: its reply, or None when Redis is unreachable."""
        if self.fallen_back:
            with self.lock:
                if self.fallen_back:
                    if now < self._reconnect_at:
                        return None
                    self._reconnect_at = now + self._reconnect_after  # we probe
        epoch, seen = self._known
        offer = f"{self._token}.{next(self._offers)}"
        try:
            text: str = script(
                keys=self._keys, args=[repr(now), seen, epoch, offer, *args]
            )
        except self._unreachable as error:
            self._fall_back(error, now)
            return None
        reply = parse_reply(text, epoch)
        self._observe(reply, epoch, now)
        return reply

    def _observe(self, reply: Reply, sent_epoch: str, now: float) -> None:
        """Publish the transitions the reply reports that this process has not."""
        state = reply.state
        with self.lock:
            epoch, seen = self._known
            if self.fallen_back:
                self.fallen_back = False
                local = self.machine().state
                self._follow(reply)
                self._sink(
                    StateChange(
                        local, state, now, "Redis reachable again: following the fleet"
                    )
                )
                return
            if reply.epoch != epoch:
                if sent_epoch != epoch:
                    # Sent before another thread's reply showed a newer life:
                    # this one may be of the life before it, and is not news.
                    return
                if epoch:  # not the first reply: the state this process knew is lost
                    previous = self._state
                    self._follow(reply)
                    self._sink(StateChange(previous, state, now, reasons.STATE_LOST))
                    return
                epoch = reply.epoch
            first = seen < 0
            for line in reversed(reply.changes):
                entry, change = parse_change(line)
                if entry <= seen:
                    continue
                seen = entry
                if change.current is CircuitState.OPEN:
                    self._opened_at = change.at
                if first and change.current is CircuitState.CLOSED:
                    continue  # a closed fleet is what a new breaker assumes
                self._sink(change)
            if reply.generation >= seen:
                seen, self._state = reply.generation, state
            self._known = (epoch, seen)

    def _follow(self, reply: Reply) -> None:
        """Know the fleet as ``reply`` tells it, forgetting what came before."""
        self._known = (reply.epoch, reply.generation)
        self._state = reply.state
        for line in reply.changes:  # newest first: its latest opening
            _, change = parse_change(line)
            if change.current is CircuitState.OPEN:
                self._opened_at = change.at
                break

    def _fall_back(self, error: Exception, now: float) -> None:
        with self.lock:
            self._reconnect_at = now + self._reconnect_after
            if self.fallen_back:
                return
            self.fallen_back = True
            known = self._state
            if self.when_unreachable == "local":
                target = known
                how = "this process decides alone"
            else:
                target = CircuitState.FORCED_OPEN
                how = "refusing every call"
            self.machine().adopt(target, self._opened_at)
            self._sink(
                StateChange(
                    known,
                    target,
                    now,
                    f"Redis unreachable ({type(error).__name__}: {error}); {how}",
                    local=True,
                )
            )


def _unbound_sink(change: StateChange) -> None:
    raise RuntimeError("storage is not bound to a circuit breaker")
