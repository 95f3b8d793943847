-- heartbeat.lua: a worker says it is alive and learns who else is.
--
-- KEYS[1] the registry of live workers (sorted set: worker id -> expiry, ms)
-- ARGV[1] this worker's id
-- ARGV[2] how long the entry lives without a new heartbeat, in milliseconds
-- ARGV[3] '1' to leave the registry instead (graceful shutdown)
--
-- Uses the server's clock, so workers on hosts with skewed clocks agree.
-- Returns the ids of the live workers, this one included unless it left.

local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
