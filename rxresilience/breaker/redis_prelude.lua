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
      fail = fail - old % 2
      slow = slow - math.floor(old / 2)
    else
      calls = calls + 1
    end
    redis.call('HSET', K_WINDOW, 'r' .. at, f + 2 * s, 'next', (at + 1) % SIZE,
               'calls', calls, 'fail', fail + f, 'slow', slow + s)
    return calls, fail + f, slow + s
  end
  local epoch, latest, calls, fail, slow = window_advance()
  if epoch < latest - SIZE + 1 then return calls, fail, slow end
  local slot = epoch % SIZE
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

-- One bulk string: "gen<TAB>state<TAB>fields..." then one line per transition
-- the caller has not seen, newest first (cheaper to parse than nested arrays).
local function reply(...)
  local text = table.concat({gen, state, ...}, '\t')
  local log = changes()
  if #log > 0 then text = text .. '\n' .. table.concat(log, '\n') end
  return text
end

local function refuse(wait, as_state)
  redis.call('HINCRBY', K_STATE, 'rejected', 1)
  return reply('refused', wait, as_state)
end
