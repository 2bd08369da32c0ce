"""The Lua scripts of ``RedisIdempotencyStore``, and what they share with Python.

Keys. A record is a hash at ``prefix + key``: ``status`` (``in_progress`` or
``completed``), ``fingerprint`` (``-`` for none), ``owner`` (while in
progress), ``expires`` (the lease's end, then the record's), ``claimed``
(when it was claimed) and ``record``: 0.1's layout, so 0.1's keys read as
they are. The store's index is a sorted set at ``prefix`` itself (no record
has that name: keys are non-empty), its members the keys (without the
prefix) scored by ``expires``. Every script that writes a record updates the
index in the same script, so the index holds exactly the keys the store
wrote, and purging never looks at any other key.

Numbers. Times arrive as text written by Python (``repr`` of a float within
``LATEST_TIME``); each script checks every one before its first write, and
stores the text itself (never a Lua number, which Redis would format as
``1e+17``). Redis's own expiry of a record, a cleanup only, is computed in
Lua as integer milliseconds and formatted with ``%d``.

Every key a script touches is in its ``KEYS``. On Redis Cluster they must
share a slot: give the prefix a hash tag (``prefix="{idem}:"``).
"""

from __future__ import annotations

from ._base import LATEST_TIME

__all__ = [
    "ADOPT",
    "CLAIM",
    "CLEANUP_SLACK",
    "COMPLETE",
    "NONE",
    "PURGE",
    "RELEASE",
    "RENEW",
]

#: The fingerprint stored for "no payload" (a real one is hex).
NONE = "-"

#: Seconds Redis keeps a record after it expired by the callers' times.
CLEANUP_SLACK = 60.0

#: The longest Redis keeps a record, in ms: the widest span of two times, plus slack.
_MAX_TTL_MS = int(2 * LATEST_TIME * 1000 + CLEANUP_SLACK * 1000)

_PRELUDE = (
    f"""
local LATEST = {LATEST_TIME!r}
local MAX_TTL = '{_MAX_TTL_MS:d}'
local SLACK_MS = {int(CLEANUP_SLACK * 1000):d}
"""
    + """
-- A time argument as a number; an error, before any write, if it is not one.
local function time_arg(text, name)
  local n = tonumber(text)
  if n == nil or n ~= n or n < -LATEST or n > LATEST then
    error('rxr: ' .. name .. ' must be a finite time, got ' .. tostring(text))
  end
  return n
end

-- How long Redis keeps a record that lives `seconds` more: integer ms, as text.
local function ttl_ms(seconds)
  if seconds == nil or seconds ~= seconds then return MAX_TTL end
  local ms = math.floor(seconds * 1000) + SLACK_MS
  if ms > tonumber(MAX_TTL) then return MAX_TTL end
  if ms < 1000 then ms = 1000 end
  return string.format('%d', ms)
end

-- The index must be ours (a sorted set) or absent, before any write.
local function check_index(index)
  local kind = redis.call('TYPE', index).ok
  if kind ~= 'zset' and kind ~= 'none' then
    error('rxr: the index key of the store holds a ' .. kind)
  end
end

-- The record's `expires` if the key is a record written by this library.
local function expiry_of_ours(key)
  if redis.call('TYPE', key).ok ~= 'hash' then return nil end
  local f = redis.call('HMGET', key, 'status', 'fingerprint', 'owner', 'expires',
                       'claimed', 'record')
  local status = f[1]
  if not f[2] or not tonumber(f[4]) or not tonumber(f[5]) then return nil end
  if status == 'in_progress' and f[3] then return f[4] end
  if status == 'completed' and f[6] then return f[4] end
  return nil
end

-- A score for the index: the expiry itself, or -inf for garbage (purged first).
local function score_of(expires)
  local n = tonumber(expires)
  if n == nil or n ~= n then return '-inf' end
  return expires
end
"""
)

#: KEYS: record, index. ARGV: now, fingerprint, owner, lease_until, member.
CLAIM = (
    _PRELUDE
    + """
check_index(KEYS[2])
local now = time_arg(ARGV[1], 'now')
local ttl = ttl_ms(time_arg(ARGV[4], 'lease_until') - now)
local found = redis.call('HMGET', KEYS[1], 'status', 'fingerprint', 'expires', 'record')
if found[1] ~= 'in_progress' and found[1] ~= 'completed'
   and redis.call('EXISTS', KEYS[1]) == 1 then
  -- Someone else's hash under our prefix: never overwrite it.
  return redis.error_reply('the key holds data this store did not write')
end
if found[1] and tonumber(found[3]) > now then
  if found[2] ~= ARGV[2] then return {'reused'} end
  if found[1] == 'completed' then return {'completed', found[4]} end
  return {'in_progress'}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'status', 'in_progress', 'fingerprint', ARGV[2],
           'owner', ARGV[3], 'expires', ARGV[4], 'claimed', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
return {'claimed'}
"""
)

#: KEYS: record, index. ARGV: owner, lease_until, member.
RENEW = (
    _PRELUDE
    + """
check_index(KEYS[2])
local lease = time_arg(ARGV[2], 'lease_until')
local found = redis.call('HMGET', KEYS[1], 'status', 'owner', 'claimed')
if found[1] ~= 'in_progress' or found[2] ~= ARGV[1] then return 0 end
local claimed = tonumber(found[3])
local ttl = claimed and ttl_ms(lease - claimed) or MAX_TTL
redis.call('HSET', KEYS[1], 'expires', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""
)

#: KEYS: record, index. ARGV: owner, record, expires_at, member.
COMPLETE = (
    _PRELUDE
    + """
check_index(KEYS[2])
local expires = time_arg(ARGV[3], 'expires_at')
local found = redis.call('HMGET', KEYS[1], 'status', 'owner', 'claimed')
if found[1] ~= 'in_progress' or found[2] ~= ARGV[1] then return 0 end
local claimed = tonumber(found[3])
local ttl = claimed and ttl_ms(expires - claimed) or MAX_TTL
redis.call('HSET', KEYS[1], 'status', 'completed', 'record', ARGV[2],
           'expires', ARGV[3])
redis.call('HDEL', KEYS[1], 'owner')
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
"""
)

#: KEYS: record, index. ARGV: owner, member.
RELEASE = (
    _PRELUDE
    + """
check_index(KEYS[2])
local found = redis.call('HMGET', KEYS[1], 'status', 'owner')
if found[1] ~= 'in_progress' or found[2] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
"""
)

#: KEYS: index, then records found in the index. ARGV: now, then their members.
#: Deletes the expired ones; drops from the index what is gone or not ours;
#: re-scores what an older process extended.
PURGE = (
    _PRELUDE
    + """
check_index(KEYS[1])
local now = time_arg(ARGV[1], 'now')
local removed = 0
for i = 2, #KEYS do
  local expires = expiry_of_ours(KEYS[i])
  local n = tonumber(expires)
  if expires == nil then
    redis.call('ZREM', KEYS[1], ARGV[i])
  elseif n ~= n or n <= now then
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], ARGV[i])
    removed = removed + 1
  else
    redis.call('ZADD', KEYS[1], expires, ARGV[i])
  end
end
return removed
"""
)

#: KEYS: index, then keys found under the prefix. ARGV: "1" if this is the last
#: batch, then their members. Indexes the ones that are records (0.1 wrote
#: them without an index); on the last batch, marks the index as complete
#: with the member "" (no key is empty), scored +inf so no purge sees it.
ADOPT = (
    _PRELUDE
    + """
check_index(KEYS[1])
local adopted = 0
for i = 2, #KEYS do
  local expires = expiry_of_ours(KEYS[i])
  if expires then
    redis.call('ZADD', KEYS[1], score_of(expires), ARGV[i])
    adopted = adopted + 1
  end
end
if ARGV[1] == '1' then redis.call('ZADD', KEYS[1], '+inf', '') end
return adopted
"""
)
