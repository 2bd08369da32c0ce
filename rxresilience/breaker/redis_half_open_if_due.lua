-- Move OPEN to HALF_OPEN once the reset timeout is over. No ARGV of its own.
if state == 'open' and now >= opened_at + RESET - RESOLUTION then
  move('half-open', REASON_RESET_TIMEOUT_ELAPSED)
end
return reply()
