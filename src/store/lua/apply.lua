-- apply.lua (after lua/members.lua, which the store puts in front): applies one event's plan at once, if the state it was decided on
-- still holds, and records the event with its outputs.
--
-- KEYS[1]   the event's record
-- KEYS[2..] every key the plan guards or writes
-- ARGV      the plan as plain tokens, read in order (no JSON to decode: each
--           token is a Redis string as it is, so nothing is escaped or parsed
--           but the counts and key indexes):
--   ttl                     seconds the record is kept
--   G, then G guards of 5 tokens each (the plain keys among them are read
--   with the record in one MGET):
--     k  key index
--     f  hash field, '' for a plain key
--     o  key index of the value's older-layout key, read while the field is
--        missing; '0' for none (also when the guard expects nothing: an
--        older-layout key is never written again, so one that was absent
--        stays absent)
--     e? '1' if a value is expected, '0' if the item must be absent
--     e  the expected value ('' when absent)
--   N, then N tokens of ops, each op its name then its tokens:
--     set k value | del k | hset k field value | hsetnx k field value
--     | hdel k field | incr k | hsadd k field member k_old | hsrem k field member k_old
--   'r' then the record to store (the outputs to publish, queues to declare), or
--   't' then a round-robin turn taken here:
--     pool  k of the channel's pool (hash manager -> last turn, 0 for never)
--     turn  k of its turn counter
--     T, then T op tokens shared by every variant, slots marked in them
--     the record, slots marked in it
--     V, then the V managers (one variant each, in order)
--     W, then each manager's slot texts after his id (slot 1): W of them each
--        when W > 0; when W is 0, for each manager S, his S texts, then U and U
--        op tokens of his own (run after the shared ones)
--   where a key index counts in KEYS from 1, and a slot is marked in a text as
--   "\1" .. n .. "\2" (n from 1), filled with the chosen variant's n-th slot
--   text (no stored text holds a control character: JSON escapes them and an
--   id has none).
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

-- The record and every plain key a guard reads, in one MGET.
local n_guards = tonumber(ARGV[2])
local plain = {KEYS[1]}
for n = 1, n_guards do
  local g = 5 * n - 3
  if ARGV[g + 2] == '' then
    plain[#plain + 1] = KEYS[tonumber(ARGV[g + 1])]
  end
end
local values = redis.call('MGET', unpack(plain))
if values[1] then
  return {'applied', values[1]}
end

local at, next_plain = 2, 1
for n = 1, n_guards do
  local k, f, o, has, e = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4], ARGV[at + 5]
  at = at + 5
  local current
  if f ~= '' then
    current = redis.call('HGET', KEYS[tonumber(k)], f)
    if not current and o ~= '0' then
      current = redis.call('GET', KEYS[tonumber(o)])
    end
  else
    next_plain = next_plain + 1
    current = values[next_plain]
  end
  if has == '1' then
    if current ~= e then
      return {'conflict', n}
    end
  elseif current then
    return {'conflict', n}
  end
end

-- Runs the ops in tokens t[first..last].
local function run(t, first, last)
  local i = first
  while i <= last do
    local name, key = t[i], KEYS[tonumber(t[i + 1])]
    if name == 'hset' then
      redis.call('HSET', key, t[i + 2], t[i + 3])
      i = i + 4
    elseif name == 'del' then
      redis.call('DEL', key)
      i = i + 2
    elseif name == 'set' then
      redis.call('SET', key, t[i + 2])
      i = i + 3
    elseif name == 'hsetnx' then
      redis.call('HSETNX', key, t[i + 2], t[i + 3])
      i = i + 4
    elseif name == 'hdel' then
      redis.call('HDEL', key, t[i + 2])
      i = i + 3
    elseif name == 'hsadd' or name == 'hsrem' then
      change_members(key, t[i + 2], t[i + 3], KEYS[tonumber(t[i + 4])], name == 'hsadd')
      i = i + 5
    elseif name == 'incr' then
      redis.call('INCR', key)
      i = i + 2
    else
      -- A plan this script cannot read is a bug, not corrupt data: a plain ERR
      -- (retried a bounded number of times), never the CORRUPT tag.
      return redis.error_reply('ERR apply.lua: unknown op ' .. tostring(name))
    end
  end
end

-- A text with its slots ("\1" .. n .. "\2") filled from `slots`.
local function fill(text, slots)
  local s = string.find(text, '\1', 1, true)
  if not s then
    return text
  end
  local out, from = {}, 1
  while s do
    local e = string.find(text, '\2', s + 1, true)
    out[#out + 1] = string.sub(text, from, s - 1)
    out[#out + 1] = slots[tonumber(string.sub(text, s + 1, e - 1))]
    from = e + 1
    s = string.find(text, '\1', from, true)
  end
  out[#out + 1] = string.sub(text, from)
  return table.concat(out)
end

local n_ops = tonumber(ARGV[at + 1])
local ops_first = at + 2
at = ops_first + n_ops
local record, manager
local turn_ops, own_first, own_last
if ARGV[at] == 'r' then
  record = ARGV[at + 1]
else
  local pool, counter = KEYS[tonumber(ARGV[at + 1])], KEYS[tonumber(ARGV[at + 2])]
  local n_shared = tonumber(ARGV[at + 3])
  local shared_first = at + 4
  at = shared_first + n_shared
  local template = ARGV[at]
  local n_managers = tonumber(ARGV[at + 1])
  local first = at + 2
  local lasts = redis.call('HMGET', pool, unpack(ARGV, first, first + n_managers - 1))
  local chosen, oldest = nil, nil
  for i = 1, n_managers do
    local last = tonumber(lasts[i]) or 0
    if chosen == nil or last < oldest then
      chosen, oldest = i, last
    end
  end
  manager = ARGV[first + chosen - 1]
  local now = redis.call('INCR', counter)
  redis.call('HSET', pool, manager, now)
  -- The chosen manager's slots and own ops.
  local slots = {manager}
  local width = tonumber(ARGV[first + n_managers])
  local v = first + n_managers + 1
  if width > 0 then
    v = v + (chosen - 1) * width
    for i = 1, width do
      slots[i + 1] = ARGV[v + i - 1]
    end
    own_first, own_last = 1, 0
  else
    for _ = 2, chosen do
      v = v + 1 + tonumber(ARGV[v])
      v = v + 1 + tonumber(ARGV[v])
    end
    local n_slots = tonumber(ARGV[v])
    for i = 1, n_slots do
      slots[i + 1] = ARGV[v + i]
    end
    v = v + 1 + n_slots
    own_first, own_last = v + 1, v + tonumber(ARGV[v])
  end
  turn_ops = {}
  for i = 1, n_shared do
    turn_ops[i] = fill(ARGV[shared_first + i - 1], slots)
  end
  record = fill(template, slots)
end

local failed = run(ARGV, ops_first, ops_first + n_ops - 1)
if failed then
  return failed
end
if turn_ops then
  failed = run(turn_ops, 1, #turn_ops) or run(ARGV, own_first, own_last)
  if failed then
    return failed
  end
end

redis.call('SET', KEYS[1], record, 'EX', ARGV[1])
if manager then
  return {'ok', manager}
end
return {'ok'}
