"""``RedisBreakerStorage``: one circuit breaker state for a fleet of processes.

The state machine of :mod:`rxresilience.breaker._machine` runs as Lua
scripts inside Redis, one script per operation, so deciding a transition is
atomic and costs one round trip: one to admit a call, one to record its
outcome. The keys of one breaker share a hash tag (``breaker:{payments}``),
so they live on one Redis Cluster slot:

- ``breaker:{name}``: a hash of the state, generation, ``opened_at``,
  consecutive failures, half-open trial counts and the lifetime totals;
- ``breaker:{name}:permits``: a sorted set of the half-open permits held now,
  scored by when each expires;
- ``breaker:{name}:log``: the last 32 transitions, newest first, which every
  script hands back from the generation its caller last saw, so each process
  publishes the fleet's transitions on its own ``state_changes`` when it next
  talks to Redis (no subscriber thread);
- ``breaker:{name}:window:...``: the sliding window, named by its shape, so
  processes rolled out with a different window never share buckets.

Time is the callers' (the breaker's clock), compared inside the scripts.
When Redis cannot be reached the breaker follows ``when_unreachable``.

``redis`` (redis-py) is an optional dependency: ``pip install
rxresilience[redis]``.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Literal

from .._arguments import require_choice, require_duration
from .._clock import RESOLUTION
from .._redis_client import import_redis, own_client, require_client
from ._machine import (
    BreakerConfig,
    BreakerMetrics,
    ChangeSink,
    CircuitMachine,
    CircuitState,
    Outcome,
    Refusal,
    StateChange,
)
from ._permit import Permit
from ._storage import BreakerStorage
from ._window import CountWindow, TimeWindow

__all__ = ["RedisBreakerStorage"]

#: Transitions kept in Redis for processes catching up; one that has missed
#: more sees only the last ones.
LOG_SIZE = 32

_PRELUDE = """
local K_STATE, K_PERMITS, K_LOG, K_WINDOW = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local THRESHOLD, RESET, TRIALS = %(threshold)s, %(reset)s, %(trials)s
local WINDOW, SIZE, WIDTH = '%(window)s', %(size)s, %(width)s
local FAIL_RATE, FAIL_RATE_TEXT = %(fail_rate)s, '%(fail_rate_text)s'
local SLOW_RATE, SLOW_RATE_TEXT = %(slow_rate)s, '%(slow_rate_text)s'
local MINIMUM, PERMIT_WAIT, TRIAL_LIMIT = %(minimum)s, %(permit_wait)s, %(trial_limit)s
local RESOLUTION, LOG_SIZE = %(resolution)s, %(log_size)s

local now_text = ARGV[1]
local now = tonumber(now_text)
local known = tonumber(ARGV[2])
local head = redis.call('HMGET', K_STATE, 'state', 'gen', 'opened_at')
local state = head[1] or 'closed'
local gen = tonumber(head[2] or '0')
local opened_at = tonumber(head[3] or '0')

local function num(value) return tonumber(value or '0') end

local function window_advance()
  local w = redis.call('HMGET', K_WINDOW, 'latest', 'calls', 'fail', 'slow')
  local latest = tonumber(w[1] or '-1')
  local calls, fail, slow = num(w[2]), num(w[3]), num(w[4])
  local epoch = math.floor(now / WIDTH)
  if epoch > latest then
    for stale = math.max(latest + 1, epoch - SIZE + 1), epoch do
      local slot = stale %% SIZE
      local b = redis.call('HMGET', K_WINDOW, 'e' .. slot, 'c' .. slot,
                           'f' .. slot, 's' .. slot)
      if tonumber(b[1] or '-1') ~= stale then
        calls = calls - num(b[2])
        fail = fail - num(b[3])
        slow = slow - num(b[4])
        redis.call('HSET', K_WINDOW, 'e' .. slot, stale, 'c' .. slot, 0,
                   'f' .. slot, 0, 's' .. slot, 0)
      end
    end
    latest = epoch
    redis.call('HSET', K_WINDOW, 'latest', latest, 'calls', calls, 'fail', fail,
               'slow', slow)
  end
  return epoch, latest, calls, fail, slow
end

local function window_add(failed, slow_call)
  local f, s = failed and 1 or 0, slow_call and 1 or 0
  if WINDOW == 'count' then
    local w = redis.call('HMGET', K_WINDOW, 'next', 'calls', 'fail', 'slow')
    local at, calls, fail, slow = num(w[1]), num(w[2]), num(w[3]), num(w[4])
    if calls == SIZE then
      local old = num(redis.call('HGET', K_WINDOW, 'r' .. at))
      fail = fail - old %% 2
      slow = slow - math.floor(old / 2)
    else
      calls = calls + 1
    end
    redis.call('HSET', K_WINDOW, 'r' .. at, f + 2 * s, 'next', (at + 1) %% SIZE,
               'calls', calls, 'fail', fail + f, 'slow', slow + s)
    return calls, fail + f, slow + s
  end
  local epoch, latest, calls, fail, slow = window_advance()
  if epoch < latest - SIZE + 1 then return calls, fail, slow end
  local slot = epoch %% SIZE
  redis.call('HINCRBY', K_WINDOW, 'c' .. slot, 1)
  if f == 1 then redis.call('HINCRBY', K_WINDOW, 'f' .. slot, 1) end
  if s == 1 then redis.call('HINCRBY', K_WINDOW, 's' .. slot, 1) end
  redis.call('HSET', K_WINDOW, 'calls', calls + 1, 'fail', fail + f,
             'slow', slow + s)
  return calls + 1, fail + f, slow + s
end

local function window_totals()
  if WINDOW == 'count' then
    local w = redis.call('HMGET', K_WINDOW, 'calls', 'fail', 'slow')
    return num(w[1]), num(w[2]), num(w[3])
  elseif WINDOW == 'time' then
    local _, _, calls, fail, slow = window_advance()
    return calls, fail, slow
  end
  return 0, 0, 0
end

local function move(target, reason)
  gen = gen + 1
  if target == 'open' then
    opened_at = now
    redis.call('HSET', K_STATE, 'opened_at', now_text)
  elseif target == 'half-open' then
    redis.call('HSET', K_STATE, 'trials', 0, 'trial_ok', 0)
  elseif target == 'closed' then
    redis.call('HSET', K_STATE, 'consecutive', 0)
    redis.call('DEL', K_WINDOW)
  end
  redis.call('HSET', K_STATE, 'state', target, 'gen', gen)
  redis.call('DEL', K_PERMITS)
  redis.call('LPUSH', K_LOG, table.concat({gen, state, target, now_text, reason}, '\\t'))
  redis.call('LTRIM', K_LOG, 0, LOG_SIZE - 1)
  state = target
end

local function changes()
  if known < 0 then return redis.call('LRANGE', K_LOG, 0, 0) end
  if gen <= known then return {} end
  return redis.call('LRANGE', K_LOG, 0, math.min(gen - known, LOG_SIZE) - 1)
end

-- One bulk string: "gen<TAB>state<TAB>fields..." then one line per transition
-- the caller has not seen, newest first (cheaper to parse than nested arrays).
local function reply(...)
  local text = table.concat({gen, state, ...}, '\\t')
  local log = changes()
  if #log > 0 then text = text .. '\\n' .. table.concat(log, '\\n') end
  return text
end

local function refuse(wait, as_state)
  redis.call('HINCRBY', K_STATE, 'rejected', 1)
  return reply('refused', wait, as_state)
end
"""

_ACQUIRE = """
if state == 'closed' or state == 'disabled' then return reply('permit', gen, '') end
if state == 'forced-open' then return refuse('', state) end
if state == 'open' then
  local wait = opened_at + RESET - now
  if wait > RESOLUTION then return refuse(string.format('%.17g', wait), state) end
  move('half-open', 'reset timeout elapsed')
elseif redis.call('ZCOUNT', K_PERMITS, '-inf', now + RESOLUTION) > 0 then
  move('open', 'trial call outlasted max_half_open_wait')
  return refuse(string.format('%.17g', RESET), state)
end
if num(redis.call('HGET', K_STATE, 'trials')) >= TRIALS then
  -- Come back when the earliest trial's max_half_open_wait ends, or after a
  -- tenth of the reset timeout, whichever is sooner (as the Python machine).
  local wait = RESET / 10
  if TRIAL_LIMIT > 0 then
    local first = redis.call('ZRANGE', K_PERMITS, 0, 0, 'WITHSCORES')
    if #first > 0 then wait = math.min(wait, tonumber(first[2]) - now) end
  end
  return refuse(string.format('%.17g', math.max(wait, RESOLUTION)), state)
end
redis.call('HINCRBY', K_STATE, 'trials', 1)
local permit = gen .. ':' .. redis.call('HINCRBY', K_STATE, 'permit_seq', 1)
-- Scores as text with every digit: Redis would format a Lua number to 14.
redis.call('ZADD', K_PERMITS, string.format('%.17g', now + PERMIT_WAIT), permit)
return reply('permit', gen, permit)
"""

_RECORD = """
local permit_gen, permit, outcome, slow = tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6] == '1'
if outcome == 'n' then
  redis.call('HINCRBY', K_STATE, 'ignored', 1)
else
  redis.call('HINCRBY', K_STATE, outcome == 's' and 'successes' or 'failures', 1)
  if slow then redis.call('HINCRBY', K_STATE, 'slow', 1) end
end
if permit_gen ~= gen then return reply() end
if permit ~= '' then
  if redis.call('ZREM', K_PERMITS, permit) == 0 then return reply() end
  if outcome == 'n' then
    redis.call('HINCRBY', K_STATE, 'trials', -1)
  elseif outcome == 't' then
    move('open', 'trial call outlasted max_half_open_wait')
  elseif outcome == 'f' then
    move('open', 'trial call failed')
  elseif slow then
    move('open', 'trial call was slow')
  else
    local ok = redis.call('HINCRBY', K_STATE, 'trial_ok', 1)
    if ok >= TRIALS then
      move('closed', ok .. ' of ' .. ok .. ' trial calls succeeded')
    end
  end
  return reply()
end
if state ~= 'closed' or outcome == 'n' then return reply() end
local failed = outcome ~= 's'
local consecutive = 0
if failed then
  consecutive = redis.call('HINCRBY', K_STATE, 'consecutive', 1)
else
  redis.call('HSET', K_STATE, 'consecutive', 0)
end
local calls, fail, slow_calls = 0, 0, 0
if WINDOW ~= '' then calls, fail, slow_calls = window_add(failed, slow) end
if THRESHOLD > 0 and consecutive >= THRESHOLD then
  move('open', consecutive .. ' consecutive failures')
elseif WINDOW ~= '' and calls >= MINIMUM then
  if FAIL_RATE > 0 and fail / calls >= FAIL_RATE then
    move('open', 'failure rate ' .. fail .. '/' .. calls .. ' reached ' .. FAIL_RATE_TEXT)
  elseif SLOW_RATE > 0 and slow_calls / calls >= SLOW_RATE then
    move('open', 'slow call rate ' .. slow_calls .. '/' .. calls .. ' reached '
         .. SLOW_RATE_TEXT)
  end
end
return reply()
"""

_HALF_OPEN_IF_DUE = """
if state == 'open' and now >= opened_at + RESET - RESOLUTION then
  move('half-open', 'reset timeout elapsed')
end
return reply()
"""

_FORCE = """
local target = ARGV[3]
if target == 'closed' then
  redis.call('HSET', K_STATE, 'successes', 0, 'failures', 0, 'slow', 0,
             'ignored', 0, 'rejected', 0, 'consecutive', 0)
  redis.call('DEL', K_WINDOW)
end
if state ~= target then move(target, ARGV[4]) end
return reply()
"""

_READ = """
local t = redis.call('HMGET', K_STATE, 'successes', 'failures', 'slow', 'ignored',
                     'rejected', 'consecutive')
local calls, fail, slow = 0, 0, 0
if ARGV[3] == '1' then calls, fail, slow = window_totals() end
return reply(head[3] or '0', num(t[1]), num(t[2]), num(t[3]), num(t[4]), num(t[5]),
             num(t[6]), calls, fail, slow)
"""

_OUTCOME_CODES = {
    Outcome.SUCCESS: "s",
    Outcome.FAILURE: "f",
    Outcome.NEITHER: "n",
    Outcome.TIMED_OUT: "t",
}

_CLOSED = CircuitState.CLOSED
_OPEN = CircuitState.OPEN


class _RedisPermit(Permit):
    """A permit Redis handed out; a trial's carries the id Redis holds it under."""

    __slots__ = ("key",)

    def __init__(self, generation: int, key: str, started_at: float) -> None:
        super().__init__(generation, bool(key), started_at)
        self.key = key


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
    ``reason`` as the process that made them recorded them.

    **Clocks.** Time is the callers' (each breaker's scheduler), so virtual
    time works, and skew between machines shifts the timing rules by the
    skew: ``opened_at`` is the opener's clock, so a process whose clock is
    ``s`` seconds ahead admits the first trial ``s`` seconds early (and moves
    the whole fleet to HALF_OPEN), while one behind reports a ``retry_after``
    up to ``s`` too long; a half-open permit likewise expires ``s`` early
    for a process ahead of its holder. A time window puts each outcome in the
    bucket of its recorder's clock: a process ahead evicts buckets early for
    everyone, and outcomes from a process more than the window behind are
    dropped. Slow calls are timed on one process's clock and are unaffected.
    Keep the fleet's clocks synchronised (NTP) well within ``reset_timeout``.

    **When Redis cannot be reached.** Every operation waits at most
    ``socket_timeout`` (the storage talks to Redis through its own
    connection pool, made from ``client``'s settings with that timeout for
    connecting and for each reply, and no retries). Then, with
    ``when_unreachable="local"`` (the default), the process decides alone:
    it keeps the last state it knew (OPEN stays OPEN until its reset timeout
    elapses) with fresh counters, and says so on ``state_changes`` with a
    change whose ``local`` is True; transitions it makes alone are flagged
    ``local`` too. With ``when_unreachable="refuse"`` (fail closed) it acts
    FORCED_OPEN: every call is refused. Either way it tries Redis again at
    most every ``reconnect_after`` seconds (on the breaker's clock), and once
    an operation succeeds it announces the fleet's state and follows it
    again. Outcomes of calls that could not be recorded in Redis count in the
    local totals only; manual control (``force_open``, ``disable``,
    ``reset``) while unreachable applies to this process only.

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
        ValueError: an empty name; a ``socket_timeout`` or ``reconnect_after``
            not above 0, not finite, or above ``LONGEST_WAIT`` (about 292
            years); an unknown ``when_unreachable``.
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
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a string, got {type(prefix).__name__}")
        require_duration("socket_timeout", socket_timeout, positive=True)
        require_duration("reconnect_after", reconnect_after, positive=True)
        require_choice("when_unreachable", when_unreachable, ("local", "refuse"))
        redis = import_redis()
        self.name = name
        self.prefix = prefix
        self.when_unreachable = when_unreachable
        self._reconnect_after = float(reconnect_after)
        self._unreachable = redis.exceptions.RedisError
        self._client = own_client(
            client, socket_timeout=float(socket_timeout), decode_responses=True
        )
        self._base = f"{prefix}{{{name}}}"
        self._keys: list[str] = []
        self._lock = threading.Lock()
        self._config: BreakerConfig | None = None
        self._sink: ChangeSink = _unbound_sink
        self._local: CircuitMachine | None = None
        self._seen = -1  # the last generation this process published
        self._state = CircuitState.CLOSED  # the fleet's state as last seen
        self._opened_at = 0.0
        self._fallen_back = False
        self._reconnect_at = 0.0

    # -- binding -------------------------------------------------------------------

    def bind(self, config: BreakerConfig, sink: ChangeSink) -> None:
        with self._lock:
            if self._config is not None:
                raise ValueError("storage is already bound to a circuit breaker")
            self._config = config
            self._sink = sink
            self._local = CircuitMachine(config, self._local_sink)
            self._keys = [
                self._base,
                f"{self._base}:permits",
                f"{self._base}:log",
                f"{self._base}:window:{_window_shape(config.window)}",
            ]
            prelude = _PRELUDE % _constants(config)
            register = self._client.register_script
            self._acquire = register(prelude + _ACQUIRE)
            self._record = register(prelude + _RECORD)
            self._half_open = register(prelude + _HALF_OPEN_IF_DUE)
            self._force = register(prelude + _FORCE)
            self._read = register(prelude + _READ)

    def _local_sink(self, change: StateChange) -> None:
        self._sink(dataclasses.replace(change, local=True))

    # -- talking to Redis -------------------------------------------------------------

    def _run(self, script: Any, now: float, *args: Any) -> list[str] | None:
        """Run ``script``: the fields of its reply, or None when Redis is unreachable.

        The fields are the generation, the state, then the script's own.
        """
        if self._fallen_back:
            with self._lock:
                if self._fallen_back:
                    if now < self._reconnect_at:
                        return None
                    self._reconnect_at = now + self._reconnect_after  # we probe
        try:
            reply: str = script(keys=self._keys, args=[repr(now), self._seen, *args])
        except self._unreachable as error:
            self._fall_back(error, now)
            return None
        head, *changes = reply.split("\n")
        fields = head.split("\t")
        self._observe(fields, changes, now)
        return fields

    def _observe(self, fields: list[str], changes: list[str], now: float) -> None:
        """Publish the transitions the reply reports that this process has not."""
        generation, state = int(fields[0]), CircuitState(fields[1])
        with self._lock:
            if self._fallen_back:
                self._fallen_back = False
                local = self._machine().state
                self._seen, self._state = generation, state
                self._sink(
                    StateChange(
                        local, state, now, "Redis reachable again: following the fleet"
                    )
                )
                return
            first = self._seen < 0
            for line in reversed(changes):
                entry, previous, current, at, reason = line.split("\t", 4)
                if int(entry) <= self._seen:
                    continue
                self._seen = int(entry)
                if current == "open":
                    self._opened_at = float(at)
                if first and current == "closed":
                    continue  # a closed fleet is what a new breaker assumes
                self._sink(
                    StateChange(
                        CircuitState(previous), CircuitState(current), float(at), reason
                    )
                )
            if generation >= self._seen:
                self._seen, self._state = generation, state

    def _fall_back(self, error: Exception, now: float) -> None:
        with self._lock:
            self._reconnect_at = now + self._reconnect_after
            if self._fallen_back:
                return
            self._fallen_back = True
            known = self._state
            if self.when_unreachable == "local":
                target = known
                how = "this process decides alone"
            else:
                target = CircuitState.FORCED_OPEN
                how = "refusing every call"
            self._machine().adopt(target, self._opened_at)
            self._sink(
                StateChange(
                    known,
                    target,
                    now,
                    f"Redis unreachable ({type(error).__name__}: {error}); {how}",
                    local=True,
                )
            )

    def _machine(self) -> CircuitMachine:
        if self._local is None:
            raise RuntimeError("storage is not bound to a circuit breaker")
        return self._local

    # -- the storage interface -------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        if self._fallen_back:
            return self._machine().state
        return self._state

    def observe(self, now: float) -> CircuitState:
        reply = self._run(self._read, now, "0")
        if reply is None:
            return self._machine().state
        return CircuitState(reply[1])

    def acquire(self, now: float) -> Permit | Refusal:
        reply = self._run(self._acquire, now)
        if reply is None:
            with self._lock:
                return self._machine().acquire(now)
        if reply[2] == "permit":
            return _RedisPermit(int(reply[3]), reply[4], now)
        wait = reply[3]
        return Refusal(float(wait) if wait else None, CircuitState(reply[4]))

    def record(self, permit: Permit, outcome: Outcome, now: float) -> None:
        if self._fallen_back and not isinstance(permit, _RedisPermit):
            with self._lock:  # handed out while unreachable, settled the same way
                self._machine().record(permit, outcome, now)
            return
        with self._lock:
            if permit.settled:
                return
            permit.settled = True
        if not isinstance(permit, _RedisPermit):  # back in Redis: the totals only
            permit = _RedisPermit(-1, "", permit.started_at)
        self._record_in_redis(permit, outcome, now)

    def _record_in_redis(
        self, permit: _RedisPermit, outcome: Outcome, now: float
    ) -> None:
        config = self._config
        limit = None if config is None else config.slow_call_duration
        slow = (
            limit is not None
            and outcome is not Outcome.NEITHER
            and now - permit.started_at >= limit
        )
        reply = self._run(
            self._record,
            now,
            permit.generation,
            permit.key,
            _OUTCOME_CODES[outcome],
            "1" if slow else "0",
        )
        if reply is None:  # counted here, in the totals only
            with self._lock:
                self._machine().record(
                    Permit(-1, False, permit.started_at), outcome, now
                )

    def half_open_if_due(self, now: float) -> None:
        if self._run(self._half_open, now) is None:
            with self._lock:
                self._machine().half_open_if_due(now)

    def force(self, target: CircuitState, now: float, reason: str) -> None:
        if self._run(self._force, now, target.value, reason) is None:
            with self._lock:
                self._machine().force(target, now, reason)

    def retry_after(self, now: float) -> float | None:
        reply = self._run(self._read, now, "0")
        if reply is None:
            with self._lock:
                return self._machine().retry_after(now)
        if reply[1] != _OPEN.value:
            return None
        return max(0.0, float(reply[2]) + self._machine().reset_timeout - now)

    def metrics(self, now: float) -> BreakerMetrics:
        reply = self._run(self._read, now, "1")
        if reply is None:
            with self._lock:
                return self._machine().metrics(now)
        successes, failures, slow, ignored, rejected, consecutive = (
            int(value) for value in reply[3:9]
        )
        calls, failed, slow_calls = (int(value) for value in reply[9:12])
        config = self._config
        failure_rate: float | None = None
        slow_rate: float | None = None
        if config is not None and calls and calls >= config.minimum_calls:
            failure_rate = failed / calls
            slow_rate = slow_calls / calls
        return BreakerMetrics(
            state=CircuitState(reply[1]),
            calls=successes + failures,
            successes=successes,
            failures=failures,
            slow_calls=slow,
            ignored=ignored,
            rejected=rejected,
            consecutive_failures=consecutive,
            window_calls=calls,
            failure_rate=failure_rate,
            slow_call_rate=slow_rate,
        )

    def delete(self) -> None:
        """Remove this breaker's keys from Redis (every process starts over).

        Its windows of every shape go too (processes may have run with
        another window); the name and prefix are literal in the scan, so no
        other breaker's key is touched, whatever characters they hold.
        """
        import re

        from .._redis_client import glob_escape

        base = self._base
        self._client.delete(base, f"{base}:permits", f"{base}:log")
        windows = f"{base}:window:"
        # a window's name ends in its shape: another breaker whose name starts
        # with "{name}}:window:" has keys under the same literal prefix
        shape = re.compile(r"count:[0-9]+|time:[^:{}]+:[0-9]+|none")
        for key in self._client.scan_iter(match=glob_escape(windows) + "*"):
            if shape.fullmatch(key[len(windows) :]):
                self._client.delete(key)

    def __repr__(self) -> str:
        return f"RedisBreakerStorage(name={self.name!r}, prefix={self.prefix!r})"


def _window_shape(window: CountWindow | TimeWindow | None) -> str:
    if isinstance(window, CountWindow):
        return f"count:{window.size}"
    if isinstance(window, TimeWindow):
        return f"time:{window.seconds!r}:{window.bucket_count}"
    return "none"


def _constants(config: BreakerConfig) -> dict[str, str]:
    """The breaker's settings as Lua literals, baked into its scripts."""
    window = config.window
    kind, size, width = "", 1, 1.0
    if isinstance(window, CountWindow):
        kind, size = "count", window.size
    elif isinstance(window, TimeWindow):
        kind, size = "time", window.bucket_count
        width = window.seconds / window.bucket_count
    fail_rate = config.failure_rate_threshold
    slow_rate = config.slow_call_rate_threshold
    wait = config.max_half_open_wait
    return {
        "threshold": str(config.failure_threshold or 0),
        "reset": repr(float(config.reset_timeout)),
        "trials": str(config.half_open_max_calls),
        "window": kind,
        "size": str(size),
        "width": repr(float(width)),
        "fail_rate": repr(float(fail_rate or 0.0)),
        "fail_rate_text": "" if fail_rate is None else f"{fail_rate:.0%}",
        "slow_rate": repr(float(slow_rate or 0.0)),
        "slow_rate_text": "" if slow_rate is None else f"{slow_rate:.0%}",
        "minimum": str(config.minimum_calls),
        "permit_wait": repr(float(config.reset_timeout if wait is None else wait)),
        "trial_limit": repr(float(wait or 0.0)),
        "resolution": repr(RESOLUTION),
        "log_size": str(LOG_SIZE),
    }


def _unbound_sink(change: StateChange) -> None:
    raise RuntimeError("storage is not bound to a circuit breaker")
