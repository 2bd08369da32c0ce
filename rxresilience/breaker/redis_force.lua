-- Manual control. ARGV of its own: the target state, the reason.
local target, reason = ARGV[5], ARGV[6]
if target == 'closed' then
  redis.call('HSET', K_STATE, 'successes', 0, 'failures', 0, 'slow', 0,
             'ignored', 0, 'rejected', 0, 'consecutive', 0)
  redis.call('DEL', K_WINDOW)
end
if state ~= target then
  move(target, reason)
elseif target == 'closed' then
  -- A reset while closed fences the calls admitted before it, as a move
  -- would, but logs nothing (a reader skips the log entries it has seen).
  gen = gen + 1
  redis.call('HSET', K_STATE, 'gen', gen)
end
return reply()
