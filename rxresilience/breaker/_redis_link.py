"""``RedisBreakerStorage``'s link to the fleet: following it, and deciding alone.

A :class:`FleetLink` runs the storage's scripts, publishes the transitions
each reply reports that this process has not, and, when Redis cannot be
reached, falls back to a local :class:`~._machine.CircuitMachine` (the
fleet's last known state, fresh counters) until an attempt, at most every
``reconnect_after`` seconds, succeeds again.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from ._machine import BreakerConfig, ChangeSink, CircuitMachine, CircuitState
from ._redis_codec import parse_change, split_reply
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
        self._seen = -1  # the last generation this process published
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

    def run(self, script: Any, now: float, *args: Any) -> list[str] | None:
        """Run ``script``: the fields of its reply, or None when Redis is unreachable.

        The fields are the generation, the state, then the script's own.
        """
        if self.fallen_back:
            with self.lock:
                if self.fallen_back:
                    if now < self._reconnect_at:
                        return None
                    self._reconnect_at = now + self._reconnect_after  # we probe
        try:
            reply: str = script(keys=self._keys, args=[repr(now), self._seen, *args])
        except self._unreachable as error:
            self._fall_back(error, now)
            return None
        fields, changes = split_reply(reply)
        self._observe(fields, changes, now)
        return fields

    def _observe(self, fields: list[str], changes: list[str], now: float) -> None:
        """Publish the transitions the reply reports that this process has not."""
        generation, state = int(fields[0]), CircuitState(fields[1])
        with self.lock:
            if self.fallen_back:
                self.fallen_back = False
                local = self.machine().state
                self._seen, self._state = generation, state
                self._sink(
                    StateChange(
                        local, state, now, "Redis reachable again: following the fleet"
                    )
                )
                return
            first = self._seen < 0
            for line in reversed(changes):
                entry, change = parse_change(line)
                if entry <= self._seen:
                    continue
                self._seen = entry
                if change.current is CircuitState.OPEN:
                    self._opened_at = change.at
                if first and change.current is CircuitState.CLOSED:
                    continue  # a closed fleet is what a new breaker assumes
                self._sink(change)
            if generation >= self._seen:
                self._seen, self._state = generation, state

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
