-- members.lua: a set kept in a hash field as a JSON array of its members (a
-- contact's deal ids), cheaper than a set key of its own. The store puts it in
-- front of apply.lua; bulk loads run it alone.
--
-- A field not yet written starts from the members of the older layout's set
-- key `old` (one set per contact), which is deleted: the move happens at the
-- first change. `old` is nil where no such set can exist (a contact this
-- event creates). An empty set is no field at all.
local function change_members(key, field, member, old, add)
  local raw = redis.call('HGET', key, field)
  local members
  if raw then
    members = cjson.decode(raw)
  elseif old then
    members = redis.call('SMEMBERS', old)
    redis.call('DEL', old)
  else
    members = {}
  end
  local kept = {}
  for _, m in ipairs(members) do
    if m ~= member then
      table.insert(kept, m)
    end
  end
  if add then
    table.insert(kept, member)
  end
  if #kept == 0 then
    redis.call('HDEL', key, field)
  else
    redis.call('HSET', key, field, cjson.encode(kept))
  end
end

