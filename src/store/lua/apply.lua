-- apply.lua (after lua/members.lua, which the store puts in front): applies one event's plan at once, if the state it was decided on
-- still holds, and records the event with its outputs.
--
-- KEYS[1]   the event's record
-- KEYS[2..] every key the plan guards or writes
-- ARGV[1]   the plan, JSON:
--   {"ttl": seconds the record is kept,
--    "record": the record to store (the outputs to publish, queues to declare),
--    "guards": [{"k": key index, "f": hash field or absent, "e": expected value or absent,
--                "o": key index of the value's older-layout key, read while the field is missing}],
--    "ops": [["set", k, value] | ["del", k] | ["hset", k, field, value] | ["hsetnx", k, field, value]
--           | ["hdel", k, field] | ["sadd", k, member] | ["srem", k, member] | ["incr", k]
--           | ["hsadd" | "hsrem", k, field, member, k of the older set]],
--    "turn": absent, or a round-robin turn taken here (then "record" is absent):
--      {"pool": k of the channel's pool (hash manager -> last turn, 0 for never),
--       "turn": k of its turn counter,
--       "ops": pieces of the chosen variant's ops (JSON text), "record": pieces of its record,
--       "variants": [{"m": manager, "s": [slot text, ...]}, ...]}}
--   where a key index counts in KEYS from 1, and pieces are a list of shared
--   texts and slot numbers (from 1) that a variant's slot texts fill in (one
--   list of slots for both: typically the manager's id and his notification's).
--
-- A turn goes to the variant whose manager's last turn is oldest (the first
-- listed among equals: the variants come sorted by manager id); the counter
-- goes up by one and that manager's entry takes its value. Then the plan's
-- ops run, then the variant's.
--
-- Returns {'applied', record} if the event was already applied (nothing is
-- written: a redelivery must publish the stored outputs, not new ones),
-- {'conflict', n} if guard n (from 1) no longer holds (nothing is written:
-- the caller decides again on a fresh snapshot), else {'ok'}, or
-- {'ok', manager} with the manager who took the turn.
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
    if not current and guard.o then
      current = redis.call('GET', KEYS[guard.o])
    end
  else
    current = redis.call('GET', KEYS[guard.k])
  end
  local expected = guard.e or false
  if current ~= expected then
    return {'conflict', n}
  end
end

-- A variant's text: the shared pieces with its slots filled in.
local function fill(pieces, slots)
  local out = {}
  for i, piece in ipairs(pieces) do
    if type(piece) == 'number' then
      out[i] = slots[piece]
    else
      out[i] = piece
    end
  end
  return table.concat(out)
end

local ops, record, manager = plan.ops, plan.record, nil
if plan.turn then
  local turn = plan.turn
  local managers = {}
  for i, variant in ipairs(turn.variants) do
    managers[i] = variant.m
  end
  local lasts = redis.call('HMGET', KEYS[turn.pool], unpack(managers))
  local chosen, oldest = nil, nil
  for i = 1, #managers do
    local last = tonumber(lasts[i]) or 0
    if chosen == nil or last < oldest then
      chosen, oldest = turn.variants[i], last
    end
  end
  local now = redis.call('INCR', KEYS[turn.turn])
  redis.call('HSET', KEYS[turn.pool], chosen.m, now)
  for _, op in ipairs(cjson.decode(fill(turn.ops, chosen.s))) do
    table.insert(ops, op)
  end
  record, manager = fill(turn.record, chosen.s), chosen.m
end

for _, op in ipairs(ops) do
  local name, key = op[1], KEYS[op[2]]
  if name == 'set' then
    redis.call('SET', key, op[3])
  elseif name == 'del' then
    redis.call('DEL', key)
  elseif name == 'hset' then
    redis.call('HSET', key, op[3], op[4])
  elseif name == 'hsetnx' then
    redis.call('HSETNX', key, op[3], op[4])
  elseif name == 'hdel' then
    redis.call('HDEL', key, op[3])
  elseif name == 'sadd' then
    redis.call('SADD', key, op[3])
  elseif name == 'srem' then
    redis.call('SREM', key, op[3])
  elseif name == 'hsadd' or name == 'hsrem' then
    change_members(key, op[3], op[4], KEYS[op[5]], name == 'hsadd')
  elseif name == 'incr' then
    redis.call('INCR', key)
  else
    -- A plan this script cannot read is a bug, not corrupt data: a plain ERR
    -- (retried a bounded number of times), never the CORRUPT tag.
    return redis.error_reply('ERR apply.lua: unknown op ' .. tostring(name))
  end
end

redis.call('SET', KEYS[1], record, 'EX', plan.ttl)
if manager then
  return {'ok', manager}
end
return {'ok'}
