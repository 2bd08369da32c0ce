-- GCRA for RedisRateLimiterStorage: a limiter's theoretical arrival time
-- (TAT) in one key, read and moved by one script, so a permit costs one round
-- trip. The sums are those of rxresilience/rate_limit/_gcra.py, in the same
-- order, on the same doubles: both give the same answers (a differential test
-- holds them to it). ${resolution} and ${margin} are rendered in from Python.
--
-- KEYS[1]: the TAT, as text with every digit (absent: idle since ever).
-- ARGV: operation, now, interval, tolerance, then the operation's own:
--   reserve: max_wait          -> '1 wait previous tat' or '0 wait tat'
--   cancel: tat, previous      -> '1 tat' (given back) or '0 tat'
--   peek:                      -> 'wait tat'
-- Numbers go back as text with every digit: Redis would cut a Lua number to
-- an integer, and its own formatting keeps only 14 digits.
local RESOLUTION, MARGIN = ${resolution}, ${margin}
local key, op = KEYS[1], ARGV[1]
local now = tonumber(ARGV[2])
local interval, tolerance = tonumber(ARGV[3]), tonumber(ARGV[4])
local stored = redis.call('GET', key)
local tat = -math.huge
if stored then tat = tonumber(stored) end

local function text(value) return string.format('%.17g', value) end

local function store(value)
  -- The key outlives the TAT by MARGIN seconds (of Redis's clock; the TAT is
  -- the callers'): past its TAT a key says no more than an absent one.
  local ttl = math.ceil((math.max(value - now, 0) + MARGIN) * 1000)
  redis.call('SET', key, text(value), 'PX', string.format('%.0f', ttl))
end

local start = now
if tat > now then start = tat end
local wait = start - tolerance - now
if wait <= RESOLUTION then wait = 0 end

if op == 'reserve' then
  if wait > tonumber(ARGV[5]) then
    return '0 ' .. text(wait) .. ' ' .. text(tat)
  end
  local taken = start + interval
  store(taken)
  return '1 ' .. text(wait) .. ' ' .. text(start) .. ' ' .. text(taken)
elseif op == 'cancel' then
  if tat ~= tonumber(ARGV[5]) then return '0 ' .. text(tat) end
  store(tonumber(ARGV[6]))
  return '1 ' .. ARGV[6]
elseif op == 'peek' then
  return text(wait) .. ' ' .. text(tat)
end
return redis.error_reply('unknown operation ' .. tostring(op))
