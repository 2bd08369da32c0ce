"""``RedisRateLimiterStorage``: one rate limit for a fleet of processes.

The limiter's one number, its theoretical arrival time (TAT), lives in one
Redis key, ``ratelimit:{name}``, read and moved by one Lua script
(``redis_gcra.lua``): taking a permit is atomic and costs one round trip.
Time is the callers' (each limiter's clock), sent with every request. When
Redis cannot be reached the storage follows ``when_unreachable``.

``redis`` (redis-py) is an optional dependency: ``pip install
rxresilience[redis]``.
"""

from __future__ import annotations

import functools
import logging
import string
import threading
from importlib import resources
from typing import Any, Literal

from .._arguments import require_choice, require_duration, require_name
from .._clock import RESOLUTION
from .._redis_client import import_redis, own_client, require_client
from ._config import RateLimiterConfig
from ._gcra import Gcra, RateLimiterReservation
from ._storage import RateLimiterStorage

__all__ = ["IDLE_MARGIN", "RedisRateLimiterStorage", "script"]

_log = logging.getLogger("rxresilience")

#: Seconds (of Redis's own clock) a limiter's key outlives its TAT: past it,
#: the key says no more than an absent one, so idle limiters cost no memory.
#: The margin covers callers whose clocks run behind, or slower than Redis's.
IDLE_MARGIN = 60.0


@functools.cache
def script() -> str:
    """``redis_gcra.lua``, with the numbers it shares with Python filled in."""
    source = resources.files(__package__).joinpath("redis_gcra.lua")
    template = string.Template(source.read_text(encoding="utf-8"))
    # repr of a float is the shortest text that reads back as it, in Lua too.
    return template.substitute(resolution=repr(RESOLUTION), margin=repr(IDLE_MARGIN))


class RedisRateLimiterStorage(RateLimiterStorage):
    """A rate limiter's state in Redis, shared by every process using ``name``.

    Give it to a :class:`~rxresilience.RateLimiter`; every limiter in the
    fleet built with the same ``name`` (and the same settings) shares one
    limit: together they take at most ``burst + rate * elapsed / per``
    permits. Each permit is one Lua script (GCRA), atomic, one round trip;
    giving a waiting permit back is one more, checked in the script (the
    key's TAT must still be the one the permit set). The key expires
    ``IDLE_MARGIN`` seconds (60, on Redis's clock) after its TAT passes, so
    limiters per user or per key cost nothing once idle.

    **Clocks.** Times are each caller's (its limiter's scheduler), so
    virtual time works, and a fleet's clocks must agree: a process whose
    clock is ``s`` seconds ahead of the others sees the fleet's TAT ``s``
    seconds sooner, so it can take up to ``s * rate / per`` permits more
    than the limit (and, once it has, the others wait up to ``s`` longer:
    it is a loan, not a leak). A process behind only waits longer. Keep the
    fleet's clocks synchronised (NTP) well within ``per / rate``.

    **When Redis cannot be reached.** Every operation waits at most
    ``socket_timeout`` (the storage talks to Redis through its own
    connection pool, made from ``client``'s settings with that timeout for
    connecting and for each reply, and no retries). Then, with
    ``when_unreachable="local"`` (the default), the process decides alone,
    on the limiter's settings, from the fleet's TAT as it last saw it: each
    process then keeps the limit by itself, so a fleet of ``n`` can take up
    to ``n`` times the limit until Redis is back. With
    ``when_unreachable="refuse"`` (fail closed) every permit is refused, its
    ``retry_after`` the time until the storage tries Redis again. Either way
    it tries Redis again at most every ``reconnect_after`` seconds (on the
    limiter's clock), and follows the fleet's TAT again once it answers
    (permits taken alone are not added to it). Both moves are logged on the
    ``rxresilience`` logger.

    Examples:
        >>> import redis  # doctest: +SKIP
        >>> client = redis.Redis.from_url("redis://localhost:6379/0")  # doctest: +SKIP
        >>> limiter = RateLimiter(  # doctest: +SKIP
        ...     rate=100,
        ...     per=1.0,
        ...     burst=10,
        ...     storage=RedisRateLimiterStorage(client, name="payments-api"),
        ... )

    Args:
        client: a ``redis.Redis`` client; its address, credentials and TLS
            settings are used for the storage's own connection pool.
        name: the limiter's name in Redis; processes sharing it share the
            limit. Any text: it is part of one key, never a pattern.
        prefix: prepended to the key.
        socket_timeout: seconds to wait for a connection or a reply before
            Redis counts as unreachable.
        when_unreachable: ``"local"`` (decide alone) or ``"refuse"`` (fail
            closed).
        reconnect_after: seconds between attempts to reach Redis again.

    Raises:
        TypeError: ``client`` is not a ``redis.Redis`` client, or an argument
            has the wrong type.
        ValueError: an empty name; a ``socket_timeout`` or ``reconnect_after``
            not above 0, not finite, or above ``LONGEST_WAIT``; an unknown
            ``when_unreachable``.
    """

    def __init__(
        self,
        client: Any,
        *,
        name: str,
        prefix: str = "ratelimit:",
        socket_timeout: float = 0.5,
        when_unreachable: Literal["local", "refuse"] = "local",
        reconnect_after: float = 1.0,
    ) -> None:
        require_client(client)
        require_name("name", name)
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a string, got {type(prefix).__name__}")
        timeout = require_duration("socket_timeout", socket_timeout, positive=True)
        self._reconnect_after = require_duration(
            "reconnect_after", reconnect_after, positive=True
        )
        require_choice("when_unreachable", when_unreachable, ("local", "refuse"))
        self.name = name
        self.prefix = prefix
        self.when_unreachable = when_unreachable
        self.key = f"{prefix}{{{name}}}"
        self._unreachable: type[Exception] = import_redis().exceptions.RedisError
        self._client = own_client(client, socket_timeout=timeout, decode_responses=True)
        self._lock = threading.Lock()
        self._config: RateLimiterConfig | None = None
        self._settings = ("", "")  # interval and tolerance, as the script reads them
        self._gcra: Any = None  # the script, once bound
        # Decides while Redis is unreachable; None when failing closed instead.
        self._local: Gcra | None = None
        self._fleet_tat = float("-inf")  # the fleet's TAT as last seen
        self._fallen_back = False
        self._reconnect_at = 0.0

    def bind(self, config: RateLimiterConfig) -> None:
        with self._lock:
            if self._config is not None:
                raise ValueError("storage is already bound to a rate limiter")
            self._config = config
            self._settings = (repr(config.interval), repr(config.tolerance))
            if self.when_unreachable == "local":
                self._local = Gcra(config.interval, config.tolerance)
            self._gcra = self._client.register_script(script())

    # -- the storage interface ---------------------------------------------------------

    def reserve(self, now: float, max_wait: float) -> RateLimiterReservation | float:
        fields = self._run(now, "reserve", repr(max_wait))
        if fields is None:
            with self._lock:
                if self._local is not None:
                    return self._local.reserve(now, max_wait)
                return self._refusal(now)
        if fields[0] == "1":
            wait, previous, tat = float(fields[1]), float(fields[2]), float(fields[3])
            self._fleet_tat = tat
            return RateLimiterReservation(wait, previous, tat)
        self._fleet_tat = float(fields[2])
        return float(fields[1])

    def cancel(self, reservation: RateLimiterReservation, now: float) -> bool:
        fields = self._run(
            now, "cancel", repr(reservation.tat), repr(reservation.previous)
        )
        if fields is None:
            with self._lock:
                return self._local is not None and self._local.cancel(reservation)
        self._fleet_tat = float(fields[1])
        return fields[0] == "1"

    def time_to_permit(self, now: float) -> float:
        fields = self._run(now, "peek")
        if fields is None:
            with self._lock:
                if self._local is not None:
                    return self._local.time_to_permit(now)
                return self._refusal(now)
        self._fleet_tat = float(fields[1])
        return float(fields[0])

    def delete(self) -> None:
        """Remove this limiter's key from Redis: the fleet starts idle."""
        self._client.delete(self.key)

    # -- the link to Redis ---------------------------------------------------------------

    def _run(self, now: float, *args: str) -> list[str] | None:
        """The script's reply, split; None while Redis is unreachable."""
        if self._gcra is None:
            raise RuntimeError("storage is not bound to a rate limiter")
        if self._fallen_back:
            with self._lock:
                if self._fallen_back:
                    if now < self._reconnect_at:
                        return None
                    self._reconnect_at = now + self._reconnect_after  # we probe
        operation, rest = args[0], args[1:]
        try:
            reply: str = self._gcra(
                keys=[self.key], args=[operation, repr(now), *self._settings, *rest]
            )
        except self._unreachable as error:
            self._fall_back(error, now)
            return None
        if self._fallen_back:
            with self._lock:
                if self._fallen_back:
                    self._fallen_back = False
                    _log.warning(
                        "rate limiter %r: Redis reachable again, following the fleet",
                        self.name,
                    )
        return reply.split(" ")

    def _fall_back(self, error: Exception, now: float) -> None:
        with self._lock:
            self._reconnect_at = now + self._reconnect_after
            if self._fallen_back:
                return
            self._fallen_back = True
            if self._local is not None:
                self._local.tat = self._fleet_tat
        how = (
            "this process decides alone"
            if self.when_unreachable == "local"
            else "refusing every permit"
        )
        _log.warning(
            "rate limiter %r: Redis unreachable (%s: %s); %s",
            self.name,
            type(error).__name__,
            error,
            how,
        )

    def _refusal(self, now: float) -> float:
        """Failing closed: the seconds until Redis is tried again (under the lock)."""
        return max(self._reconnect_at - now, RESOLUTION)

    def __repr__(self) -> str:
        return f"RedisRateLimiterStorage(name={self.name!r}, prefix={self.prefix!r})"
