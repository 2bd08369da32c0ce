-- The prelude of every script of RedisBreakerStorage: the breaker's settings
-- and reasons (rendered in by rxresilience/breaker/_redis_scripts.py when the
-- storage is bound), the state read at the start, and the shared functions.
local K_STATE, K_PERMITS, K_LOG, K_WINDOW = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local THRESHOLD, RESET, TRIALS = ${threshold}, ${reset}, ${trials}
local WINDOW, SIZE, WIDTH = ${window}, ${size}, ${width}
local FAIL_RATE, FAIL_RATE_TEXT = ${fail_rate}, ${fail_rate_text}
local SLOW_RATE, SLOW_RATE_TEXT = ${slow_rate}, ${slow_rate_text}
local MINIMUM, PERMIT_WAIT, TRIAL_LIMIT = ${minimum}, ${permit_wait}, ${trial_limit}
local TRIAL_WAIT_CAP = ${trial_wait_cap}
local RESOLUTION, LOG_SIZE = ${resolution}, ${log_size}

-- Why the state changed: each a text, or a function of the fields it shows.
${reasons}

-- ARGV of every script: now, the last generation the caller saw, the epoch it
-- saw it in, a fresh epoch to stamp if there is none; the script's own follow.
local now_text = ARGV[1]
local now = tonumber(now_text)
local known = tonumber(ARGV[2])
local head = redis.call('HMGET', K_STATE, 'state', 'gen', 'opened_at', 'epoch')
local state = head[1] or 'closed'
local gen = tonumber(head[2] or '0')
local opened_at = tonumber(head[3] or '0')

-- The epoch names one life of the state hash. When the hash is lost (DEL,
-- FLUSHALL, a failover or restart without persistence) the generation starts
-- at 0 again, so generations alone cannot tell the new life from the old: the
-- first script to find no epoch stamps the caller's fresh one (unique per
-- call), and a caller, or a permit, from another epoch is a stranger. A hash
-- without an epoch but with fields is one written before epochs existed: the
-- same life, stamped in place. A new life drops what the old one left beside
-- the hash (keys can outlive it when evicted one by one).
local epoch = head[4]
if not epoch then
  if redis.call('EXISTS', K_STATE) == 0 then
    redis.call('DEL', K_PERMITS, K_LOG, K_WINDOW)
  end
  epoch = ARGV[4]
  redis.call('HSET', K_STATE, 'epoch', epoch)
end
-- A caller that knew another life has seen nothing of this one.
if ARGV[3] ~= epoch then known = -1 end

local function num(value) return tonumber(value or '0') end

-- The sliding windows, in the hash K_WINDOW (as _window.py's accumulators).
--
-- Both keep running totals in 'calls', 'fail' and 'slow', so reading them is
-- O(1); adding an outcome updates one entry and the totals.
--
-- Count window: a ring of SIZE entries 'r0'..'r<SIZE-1>', 'next' the entry
-- the next outcome overwrites. An entry is the outcome's two flags in one
-- number, failed + 2 * slow (0 to 3: failed is bit 0, slow bit 1), so
-- evicting the oldest takes one HGET: old % 2 is whether it failed,
-- floor(old / 2) whether it was slow. 'calls' grows to SIZE and stays there;
-- from then on each outcome evicts the one SIZE outcomes older.
--
-- Time window: time is cut in buckets WIDTH seconds wide, numbered
-- floor(now / WIDTH) since the clock's 0; bucket b lives in slot b % SIZE,
-- as 'e<slot>' (the number of the bucket the slot holds now) and its counts
-- 'c<slot>', 'f<slot>', 's<slot>'. 'latest' is the newest bucket numbered so
-- far. Moving to a newer bucket empties every slot the window has moved past
-- (at most SIZE of them, however long it was idle), taking their counts off
-- the totals; a slot whose 'e' already names the bucket is left alone.
local function window_advance()
  local w = redis.call('HMGET', K_WINDOW, 'latest', 'calls', 'fail', 'slow')
  local latest = tonumber(w[1] or '-1')
  local calls, fail, slow = num(w[2]), num(w[3]), num(w[4])
  local bucket = math.floor(now / WIDTH)
  if bucket > latest then
    for stale = math.max(latest + 1, bucket - SIZE + 1), bucket do
      local slot = stale % SIZE
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
    latest = bucket
    redis.call('HSET', K_WINDOW, 'latest', latest, 'calls', calls, 'fail', fail,
               'slow', slow)
  end
  return bucket, latest, calls, fail, slow
end

local function window_add(failed, slow_call)
  local f, s = failed and 1 or 0, slow_call and 1 or 0
  if WINDOW == 'count' then
    local w = redis.call('HMGET', K_WINDOW, 'next', 'calls', 'fail', 'slow')
    local at, calls, fail, slow = num(w[1]), num(w[2]), num(w[3]), num(w[4])
    if calls == SIZE then  -- full: the entry at 'next' is the oldest, evicted
      local old = num(redis.call('HGET', K_WINDOW, 'r' .. at))
      fail = fail - old % 2
      slow = slow - math.floor(old / 2)
    else
      calls = calls + 1
    end
    redis.call('HSET', K_WINDOW, 'r' .. at, f + 2 * s, 'next', (at + 1) % SIZE,
               'calls', calls, 'fail', fail + f, 'slow', slow + s)
    return calls, fail + f, slow + s
  end
  local bucket, latest, calls, fail, slow = window_advance()
  -- An outcome older than the whole window (its recorder's clock is behind
  -- the newest bucket's by more than the window) counts nowhere.
  if bucket < latest - SIZE + 1 then return calls, fail, slow end
  local slot = bucket % SIZE
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

-- Every transition goes through here; reason is a REASON_ above, or the
-- caller's own for manual control.
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
  redis.call('LPUSH', K_LOG, table.concat({gen, state, target, now_text, reason}, '\t'))
  redis.call('LTRIM', K_LOG, 0, LOG_SIZE - 1)
  state = target
end

local function changes()
  if known < 0 then return redis.call('LRANGE', K_LOG, 0, 0) end
  if gen <= known then return {} end
  return redis.call('LRANGE', K_LOG, 0, math.min(gen - known, LOG_SIZE) - 1)
end

-- One bulk string: "epoch<TAB>gen<TAB>state<TAB>fields..." then one line per
-- transition the caller has not seen, newest first (cheaper to parse than
-- nested arrays). The epoch is '' when it is the one the caller sent.
local function reply(...)
  local told = epoch
  if ARGV[3] == epoch then told = '' end
  local text = table.concat({told, gen, state, ...}, '\t')
  local log = changes()
  if #log > 0 then text = text .. '\n' .. table.concat(log, '\n') end
  return text
end

local function refuse(wait, as_state)
  redis.call('HINCRBY', K_STATE, 'rejected', 1)
  return reply('refused', wait, as_state)
end
