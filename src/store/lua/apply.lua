-- apply.lua: applies one event's plan at once, if the state it was decided on
-- still holds, and records the event with its outputs.
--
-- KEYS[1]   the event's record
-- KEYS[2..] every key the plan guards or writes
-- ARGV[1]   the plan, JSON:
--   {"ttl": seconds the record is kept,
--    "record": the record to store (the outputs to publish, queues to declare),
--    "guards": [{"k": key index, "f": hash field or absent, "e": expected value or absent}],
--    "ops": [["set", k, value] | ["del", k] | ["hset", k, field, value] | ["hdel", k, field]
--           | ["sadd", k, member] | ["srem", k, member] | ["incr", k]]}
--   where a key index counts in KEYS from 1.
--
-- Returns {'applied', record} if the event was already applied (nothing is
-- written: a redelivery must publish the stored outputs, not new ones),
-- {'conflict', n} if guard n (from 1) no longer holds (nothing is written:
-- the caller decides again on a fresh snapshot), else {'ok'}.
--
-- Errors: Redis's own when a write is refused (OOM at maxmemory, READONLY on a
-- replica): the event is retried. Nothing here is tagged CORRUPT, since the
-- script reads no stored value it has to decode.

local applied = redis.call('GET', KEYS[1])
if applied then
  return {'applied', applied}
end

local plan = cjson.decode(ARGV[1])

for n, guard in ipairs(plan.guards) do
  local current
  if guard.f then
    current = redis.call('HGET', KEYS[guard.k], guard.f)
  else
    current = redis.call('GET', KEYS[guard.k])
  end
  local expected = guard.e or false
  if current ~= expected then
    return {'conflict', n}
  end
end

for _, op in ipairs(plan.ops) do
  local name, key = op[1], KEYS[op[2]]
  if name == 'set' then
    redis.call('SET', key, op[3])
  elseif name == 'del' then
    redis.call('DEL', key)
  elseif name == 'hset' then
    redis.call('HSET', key, op[3], op[4])
  elseif name == 'hdel' then
    redis.call('HDEL', key, op[3])
  elseif name == 'sadd' then
    redis.call('SADD', key, op[3])
  elseif name == 'srem' then
    redis.call('SREM', key, op[3])
  elseif name == 'incr' then
    redis.call('INCR', key)
  else
    -- A plan this script cannot read is a bug, not corrupt data: a plain ERR
    -- (retried a bounded number of times), never the CORRUPT tag.
    return redis.error_reply('ERR apply.lua: unknown op ' .. tostring(name))
  end
end

redis.call('SET', KEYS[1], plan.record, 'EX', plan.ttl)
return {'ok'}
