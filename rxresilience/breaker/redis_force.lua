-- Manual control. ARGV: now, known generation, the target state, the reason.
local target = ARGV[3]
if target == 'closed' then
  redis.call('HSET', K_STATE, 'successes', 0, 'failures', 0, 'slow', 0,
             'ignored', 0, 'rejected', 0, 'consecutive', 0)
  redis.call('DEL', K_WINDOW)
end
if state ~= target then move(target, ARGV[4]) end
return reply()
