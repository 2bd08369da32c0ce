"""The Lua scripts of ``RedisSagaJournal``: every write is one atomic script.

KEYS, unless said otherwise: the saga's meta hash, the running index, the
saga's entries list. The fenced scripts compare the owner token.
"""

__all__ = [
    "APPEND",
    "APPEND_OWNED",
    "BEGIN",
    "BEGIN_OWNED",
    "CLAIM_STALE",
    "FINISH",
    "FINISH_OWNED",
    "RENEW",
    "TAKE",
    "WRITE",
]

BEGIN = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'status', 'running', 'touched', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""

APPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('HSET', KEYS[1], 'touched', ARGV[3])
if redis.call('HGET', KEYS[1], 'status') == 'running' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
return 1
"""

FINISH = """
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'touched', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

BEGIN_OWNED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'status', 'running', 'touched', ARGV[3],
           'owner', ARGV[4], 'lease_until', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""

APPEND_OWNED = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[4] then return 0 end
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('HSET', KEYS[1], 'touched', ARGV[3])
if redis.call('HGET', KEYS[1], 'status') == 'running' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
return 1
"""

FINISH_OWNED = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'touched', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

CLAIM_STALE = """
local found = redis.call('HMGET', KEYS[1], 'status', 'touched')
if found[1] ~= 'running' or tonumber(found[2]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'touched', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""

# ARGV[6]: the owner known to be gone, or '' for none.
TAKE = """
local found = redis.call('HMGET', KEYS[1], 'status', 'touched', 'lease_until', 'owner')
if found[1] ~= 'running' then return 0 end
local mark = found[3] or found[2]
if tonumber(mark) >= tonumber(ARGV[3]) and (ARGV[6] == '' or found[4] ~= ARGV[6]) then
  return 0
end
redis.call('HSET', KEYS[1], 'owner', ARGV[4], 'lease_until', ARGV[5], 'touched', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""

RENEW = """
local found = redis.call('HMGET', KEYS[1], 'status', 'owner')
if found[1] ~= 'running' or found[2] ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'lease_until', ARGV[4], 'touched', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""

#: One batch of writes (``write_owned``), atomically. KEYS[1]: the running
#: index; then per write its meta and entries keys. ARGV[1]: a JSON array of
#: writes {id, owner, now, name, lease, status, entries}; numbers travel as
#: Python's repr strings (cjson would round them to 14 digits).
WRITE = """
local writes = cjson.decode(ARGV[1])
local done = {}
for i, w in ipairs(writes) do
  local meta, entries = KEYS[2 * i], KEYS[2 * i + 1]
  local ok = 1
  if w.name ~= '' then
    if redis.call('EXISTS', meta) == 1 then
      ok = 0
    else
      redis.call('HSET', meta, 'name', w.name, 'status', 'running', 'touched', w.now,
                 'owner', w.owner, 'lease_until', w.lease)
    end
  elseif redis.call('HGET', meta, 'owner') ~= w.owner then
    ok = 0
  else
    redis.call('HSET', meta, 'touched', w.now)
  end
  if ok == 1 then
    for _, entry in ipairs(w.entries) do redis.call('RPUSH', entries, entry) end
    if w.status ~= '' then
      redis.call('HSET', meta, 'status', w.status)
      redis.call('ZREM', KEYS[1], w.id)
    elseif redis.call('HGET', meta, 'status') == 'running' then
      redis.call('ZADD', KEYS[1], w.now, w.id)
    end
  end
  done[i] = ok
end
return done
"""
