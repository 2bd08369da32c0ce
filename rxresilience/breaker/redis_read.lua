-- Read the state, opened_at and the totals (the window's too when asked). ARGV
-- of its own: '1' to read the window's totals, '0' not to.
local t = redis.call('HMGET', K_STATE, 'successes', 'failures', 'slow', 'ignored',
                     'rejected', 'consecutive')
local calls, fail, slow = 0, 0, 0
if ARGV[5] == '1' then calls, fail, slow = window_totals() end
return reply(head[3] or '0', num(t[1]), num(t[2]), num(t[3]), num(t[4]), num(t[5]),
             num(t[6]), calls, fail, slow)
