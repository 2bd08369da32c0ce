-- Record a call's outcome. ARGV of its own: the permit's epoch and
-- generation, its id ('' unless a trial), the outcome code, '1' if slow.
local permit_epoch, permit_gen = ARGV[5], tonumber(ARGV[6])
local permit, outcome, slow = ARGV[7], ARGV[8], ARGV[9] == '1'
if outcome == 'n' then
  redis.call('HINCRBY', K_STATE, 'ignored', 1)
else
  redis.call('HINCRBY', K_STATE, outcome == 's' and 'successes' or 'failures', 1)
  if slow then redis.call('HINCRBY', K_STATE, 'slow', 1) end
end
-- Admitted in another generation, or another life of the state (whose
-- generations may coincide with this one's): it counts in the totals only.
if permit_gen ~= gen or permit_epoch ~= epoch then return reply() end
if permit ~= '' then
  if redis.call('ZREM', K_PERMITS, permit) == 0 then return reply() end
  if outcome == 'n' then
    redis.call('HINCRBY', K_STATE, 'trials', -1)
  elseif outcome == 't' then
    move('open', REASON_TRIAL_OUTLASTED)
  elseif outcome == 'f' then
    move('open', REASON_TRIAL_FAILED)
  elseif slow then
    move('open', REASON_TRIAL_SLOW)
  else
    local ok = redis.call('HINCRBY', K_STATE, 'trial_ok', 1)
    if ok >= TRIALS then
      move('closed', REASON_TRIALS_SUCCEEDED({successes = ok}))
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
  move('open', REASON_CONSECUTIVE_FAILURES({failures = consecutive}))
elseif WINDOW ~= '' and calls >= MINIMUM then
  if FAIL_RATE > 0 and fail / calls >= FAIL_RATE then
    move('open', REASON_FAILURE_RATE({failures = fail, calls = calls,
                                      threshold = FAIL_RATE_TEXT}))
  elseif SLOW_RATE > 0 and slow_calls / calls >= SLOW_RATE then
    move('open', REASON_SLOW_CALL_RATE({slow_calls = slow_calls, calls = calls,
                                        threshold = SLOW_RATE_TEXT}))
  end
end
return reply()
