"""``RedisBreakerStorage``: one circuit breaker state for a fleet of processes.

The state machine of :mod:`rxresilience.breaker._machine` runs as Lua
scripts inside Redis, one script per operation, so deciding a transition is
atomic and costs one round trip: one to admit a call, one to record its
outcome. The keys of one breaker share a hash tag (``breaker:{payments}``),
so they live on one Redis Cluster slot:

- ``breaker:{name}``: a hash of the state, generation, epoch, ``opened_at``,
  consecutive failures, half-open trial counts and the lifetime totals;
- ``breaker:{name}:permits``: a sorted set of the half-open permits held now,
  scored by when each expires;
- ``breaker:{name}:log``: the last 32 transitions, newest first, which every
  script hands back from the generation its caller last saw, so each process
  publishes the fleet's transitions on its own ``state_changes`` when it next
  talks to Redis (no subscriber thread);
- ``breaker:{name}:window:...``: the sliding window, named by its shape, so
  processes rolled out with a different window never share buckets.

The *epoch* names one life of the hash: when it is lost (deleted, flushed,
a failover or restart without persistence) the generation starts at 0 again,
and the first script to find no epoch stamps a fresh one (see
``redis_prelude.lua`` and :mod:`._redis_link`).

Time is the callers' (the breaker's clock), compared inside the scripts, so
skew between machines shifts the timing rules by the skew: ``opened_at`` is
the opener's clock, so a process whose clock is ``s`` seconds ahead admits
the first trial ``s`` seconds early (and moves the whole fleet to
HALF_OPEN), while one behind reports a ``retry_after`` up to ``s`` too long;
a half-open permit likewise expires ``s`` early for a process ahead of its
holder. A time window puts each outcome in the bucket of its recorder's
clock: a process ahead evicts buckets early for everyone, and outcomes from a
process more than the window behind are dropped. Slow calls are timed on one
process's clock and are unaffected.

When Redis cannot be reached the breaker follows ``when_unreachable``.

``redis`` (redis-py) is an optional dependency: ``pip install
rxresilience[redis]``.
"""

from __future__ import annotations

from typing import Any, Literal

from .._arguments import (
    require_choice,
    require_duration,
    require_instance,
    require_name,
)
from .._redis_client import glob_escape, import_redis, own_client, require_client
from ._permit import Permit
from ._redis_codec import (
    RedisPermit,
    is_window_key,
    keys,
    metrics_of,
    permit_or_refusal,
    record_args,
)
from ._redis_link import FleetLink
from ._redis_scripts import LOG_SIZE, render
from ._storage import BreakerStorage
from ._types import (
    BreakerConfig,
    BreakerMetrics,
    ChangeSink,
    CircuitState,
    Outcome,
    Refusal,
)

__all__ = ["LOG_SIZE", "RedisBreakerStorage"]


class RedisBreakerStorage(BreakerStorage):
    """A circuit breaker's state in Redis, shared by every process using ``name``.

    Give it to a :class:`~rxresilience.CircuitBreaker`; every breaker in the
    fleet built with the same ``name`` (and the same settings) sees one
    state. Admitting a call and recording its outcome are one Lua script
    each: atomic, one round trip each. Half-open trials are counted
    fleet-wide, so the fleet never runs more than ``half_open_max_calls`` of
    them; a permit expires after the breaker's ``max_half_open_wait`` (or,
    when that is not set, its ``reset_timeout``), after which the next caller
    counts it as a trial that timed out and reopens the breaker, so a
    process killed during a trial cannot wedge the fleet.

    Each process learns of transitions made elsewhere when it next talks to
    Redis (its next call, or reading ``breaker.state`` or ``metrics()``) and
    publishes them, in order, on its own ``state_changes``, with ``at`` and
    ``reason`` as the process that made them recorded them. If Redis loses
    the state (:meth:`delete`, ``FLUSHALL``, a restart without persistence),
    each process publishes the move to the fresh state, and calls admitted
    before the loss count in the totals only.

    **Clocks.** Time is the callers' (each breaker's scheduler), so virtual
    time works; skew between machines shifts the timing rules by the skew
    (see the module's notes): keep the fleet's clocks synchronised (NTP) well
    within ``reset_timeout``.

    **When Redis cannot be reached** (no answer within ``socket_timeout``;
    the storage's own connection pool never retries), with
    ``when_unreachable="local"`` (the default) the process decides alone: it
    keeps the last state it knew (OPEN stays OPEN until its reset timeout
    elapses) with fresh counters, and says so on ``state_changes`` with a
    change whose ``local`` is True, as are the transitions it makes alone.
    With ``"refuse"`` (fail closed) it refuses every call, as FORCED_OPEN.
    It tries Redis again at most every ``reconnect_after`` seconds (on the
    breaker's clock) and, once it answers, announces the fleet's state and
    follows it again. Outcomes that could not reach Redis count in the local
    totals only; manual control while unreachable applies to this process.

    Examples:
        >>> import redis  # doctest: +SKIP
        >>> client = redis.Redis.from_url("redis://localhost:6379/0")  # doctest: +SKIP
        >>> breaker = CircuitBreaker(  # doctest: +SKIP
        ...     failure_threshold=5,
        ...     reset_timeout=30.0,
        ...     storage=RedisBreakerStorage(client, name="payments"),
        ... )

    Args:
        client: a ``redis.Redis`` client; its address, credentials and TLS
            settings are used for the storage's own connection pool.
        name: the breaker's name in Redis; processes sharing it share state.
        prefix: prepended to every key.
        socket_timeout: seconds to wait for a connection or a reply before
            Redis counts as unreachable.
        when_unreachable: ``"local"`` (decide alone) or ``"refuse"`` (fail
            closed).
        reconnect_after: seconds between attempts to reach Redis again.

    Raises:
        TypeError: ``client`` is not a ``redis.Redis`` client, or an argument
            has the wrong type.
        ValueError: an empty name; a name or prefix that is not UTF-8 text
            (a lone surrogate); a ``socket_timeout`` or ``reconnect_after``
            not above 0, not finite, or above ``LONGEST_WAIT`` (about 292
            years); an unknown ``when_unreachable``; a name beginning with
            ``}`` or a prefix holding ``{}`` (the keys' Redis Cluster hash
            tag would be empty).
    """

    def __init__(
        self,
        client: Any,
        *,
        name: str,
        prefix: str = "breaker:",
        socket_timeout: float = 0.5,
        when_unreachable: Literal["local", "refuse"] = "local",
        reconnect_after: float = 1.0,
    ) -> None:
        require_client(client)
        require_name("name", name)  # text Redis can take (no lone surrogate)
        require_instance("prefix", prefix, str, "a string")
        if prefix:
            require_name("prefix", prefix)
        require_duration("socket_timeout", socket_timeout, positive=True)
        require_duration("reconnect_after", reconnect_after, positive=True)
        require_choice("when_unreachable", when_unreachable, ("local", "refuse"))
        redis = import_redis()
        self.name = name
        self.prefix = prefix
        self.when_unreachable = when_unreachable
        self._client = own_client(
            client, socket_timeout=float(socket_timeout), decode_responses=True
        )
        self._base = f"{prefix}{{{name}}}"
        if not _hash_tag(self._base):
            raise ValueError(
                f"name {name!r} with prefix {prefix!r} gives the breaker's keys an "
                "empty Redis Cluster hash tag ('{}'): its keys would fall in "
                "different slots; use a name that does not begin with '}' and a "
                "prefix without '{}'"
            )
        self._config: BreakerConfig | None = None
        self._link = FleetLink(
            when_unreachable, float(reconnect_after), redis.exceptions.RedisError
        )

    def bind(self, config: BreakerConfig, sink: ChangeSink) -> None:
        with self._link.lock:
            if self._config is not None:
                raise ValueError("storage is already bound to a circuit breaker")
            self._config = config
            self._link.bind(config, sink, keys(self._base, config))
            scripts = render(config)
            register = self._client.register_script
            self._acquire = register(scripts.acquire)
            self._record = register(scripts.record)
            self._half_open = register(scripts.half_open_if_due)
            self._force = register(scripts.force)
            self._read = register(scripts.read)

    # -- the storage interface -------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        return self._link.state

    def observe(self, now: float) -> CircuitState:
        reply = self._link.run(self._read, now, "0")
        if reply is None:
            return self._link.machine().state
        return reply.state

    def acquire(self, now: float) -> Permit | Refusal:
        link = self._link
        reply = link.run(self._acquire, now)
        if reply is None:
            with link.lock:
                return link.machine().acquire(now)
        return permit_or_refusal(reply, now)

    def record(self, permit: Permit, outcome: Outcome, now: float) -> None:
        link = self._link
        if link.fallen_back and not isinstance(permit, RedisPermit):
            with link.lock:  # handed out while unreachable, settled the same way
                link.machine().record(permit, outcome, now)
            return
        with link.lock:
            if permit.settled:
                return
            permit.settled = True
        if not isinstance(permit, RedisPermit):  # back in Redis: the totals only
            permit = RedisPermit("", -1, "", permit.started_at)
        args = record_args(permit, outcome, now, self._config)
        if link.run(self._record, now, *args) is None:  # counted here, totals only
            with link.lock:
                link.machine().record(
                    Permit(-1, False, permit.started_at), outcome, now
                )

    def half_open_if_due(self, now: float) -> None:
        if self._link.run(self._half_open, now) is None:
            with self._link.lock:
                self._link.machine().half_open_if_due(now)

    def force(self, target: CircuitState, now: float, reason: str) -> None:
        if self._link.run(self._force, now, target.value, reason) is None:
            with self._link.lock:
                self._link.machine().force(target, now, reason)

    def retry_after(self, now: float) -> float | None:
        link = self._link
        reply = link.run(self._read, now, "0")
        if reply is None:
            with link.lock:
                return link.machine().retry_after(now)
        if reply.state is not CircuitState.OPEN:
            return None
        opened_at = float(reply.fields[0])
        return max(0.0, opened_at + link.machine().reset_timeout - now)

    def metrics(self, now: float) -> BreakerMetrics:
        reply = self._link.run(self._read, now, "1")
        if reply is None:
            with self._link.lock:
                return self._link.machine().metrics(now)
        return metrics_of(reply, self._config)

    def delete(self) -> None:
        """Remove this breaker's keys from Redis (every process starts over,
        and says so on its ``state_changes`` when it next talks to Redis).

        Its windows of every shape go too (processes may have run with
        another window); the name and prefix are literal in the scan, so no
        other breaker's key is touched, whatever characters they hold.
        """
        base = self._base
        self._client.delete(base, f"{base}:permits", f"{base}:log")
        windows = f"{base}:window:"
        # a window's name ends in its shape: another breaker whose name starts
        # with "{name}}:window:" has keys under the same literal prefix
        for key in self._client.scan_iter(match=glob_escape(windows) + "*"):
            if is_window_key(key[len(windows) :]):
                self._client.delete(key)

    def __repr__(self) -> str:
        return f"RedisBreakerStorage(name={self.name!r}, prefix={self.prefix!r})"


def _hash_tag(key: str) -> str:
    """What Redis Cluster hashes of ``key``: the text between its first ``{``
    and the first ``}`` after it ("" when that is empty or there is none)."""
    opening = key.find("{")
    closing = key.find("}", opening + 1)
    return key[opening + 1 : closing] if opening >= 0 and closing > 0 else ""
