-- Admit a call (a permit) or refuse it. No ARGV of its own (see the prelude).
if state == 'closed' or state == 'disabled' then return reply('permit', gen, '') end
if state == 'forced-open' then return refuse('', state) end
if state == 'open' then
  local wait = opened_at + RESET - now
  if wait > RESOLUTION then return refuse(string.format('%.17g', wait), state) end
  move('half-open', REASON_RESET_TIMEOUT_ELAPSED)
elseif redis.call('ZCOUNT', K_PERMITS, '-inf', now + RESOLUTION) > 0 then
  -- Without max_half_open_wait a trial is held until reset_timeout: past it,
  -- its process may be gone, and the fleet must not wait for it forever.
  if TRIAL_LIMIT > 0 then
    move('open', REASON_TRIAL_OUTLASTED)
  else
    move('open', REASON_TRIAL_ABANDONED)
  end
  return refuse(string.format('%.17g', RESET), state)
end
if num(redis.call('HGET', K_STATE, 'trials')) >= TRIALS then
  -- Come back when the earliest trial's max_half_open_wait ends, or after
  -- TRIAL_WAIT_CAP, whichever is sooner (as the Python machine).
  local wait = TRIAL_WAIT_CAP
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
