-- snapshot.lua: everything a chat event is decided on, read at one instant
-- (after lua/layout.lua, which the store puts in front).
--
-- KEYS[1] the event's record          KEYS[6] the channel's observers (hash)
-- KEYS[2] the account's config count  KEYS[7] the channel's pool (hash)
-- KEYS[3] the account's settings      KEYS[8] the chat
-- KEYS[4] channels (hash)             KEYS[9] users (hash)
-- KEYS[5] the channel's seats (hash)  KEYS[10] the chat's older-layout key
--                                      (KEYS[8] is the chat's bucket)
-- ARGV[1] channel id, '' for none     ARGV[3] the account's key base ("P:{account}:")
-- ARGV[2] user id, '' for none        ARGV[4] '1' to load the contact's deals
-- ARGV[5] the chat's field in its bucket (`<type>:<chatId>`)
--
-- Only the seats the decision may need are read, so the work does not grow
-- with users who are not told: the channel's observers (quality control and
-- supervisors), the seats of the contact's responsible and of the event's
-- user, and the eligible managers (the pool's fields) only when the chat is
-- not settled on a responsible who still has a seat.
--
-- The contact and its deals are found through the chat, so their keys are
-- built here from ARGV[3]; they carry the account's hash tag like every other
-- key, so the script touches one Redis Cluster slot.
--
-- Errors: 'CORRUPT ...' when the chat's value is not the JSON object the worker
-- wrote, or its contact's deal list holds something other than ids (the only
-- errors that send the event to P.dead; any other error of this script, such
-- as OOM or BUSY, passes and the event is retried).
--
-- Returns one string of fields, each a tag byte and then the value as stored,
-- neither escaped nor decoded (store/read.rs, `Fields`). A tag is a control
-- character that is not JSON's whitespace, which no stored value holds (JSON
-- escapes them in strings, ids refuse them):
--   \1 the record, alone and to the end, when the event was already applied;
--   else any of
--   \2 config  \3 settings  \4 the channel  \5 the event's user  \6 the chat
--   \7 the contact  \8 an eligible manager's id (only when needed)
--   \14 an observer's id, \15 a named user's id, \16 a deal's id: each
--     followed by \17 and its seat or its deal
-- each absent where Redis has nothing.

-- The plain values at once: the record, the layout marker, config, settings.
local plain = redis.call('MGET', KEYS[1], ARGV[3] .. 'layout', KEYS[2], KEYS[3])
if plain[1] then
  return '\1' .. plain[1]
end
ensure_layout(ARGV[3], plain[2] or false)

-- Room for the usual reply made at once: growing a table costs more here
-- than the rest of building the reply.
local out, n = {false, false, false, false, false, false, false, false, false, false, false,
  false, false, false, false, false, false, false, false, false, false, false, false, false}, 0
local function put(tag, value)
  if value then
    out[n + 1], out[n + 2] = tag, value
    n = n + 2
  end
end

put('\2', plain[3])
put('\3', plain[4])
if ARGV[1] ~= '' then
  put('\4', redis.call('HGET', KEYS[4], ARGV[1]))
  local observers = redis.call('HGETALL', KEYS[6])
  for i = 1, #observers, 2 do
    put('\14', observers[i])
    put('\17', observers[i + 1])
  end
end

if ARGV[2] ~= '' then
  put('\5', redis.call('HGET', KEYS[9], ARGV[2]))
end

local chat = redis.call('HGET', KEYS[8], ARGV[5]) or redis.call('GET', KEYS[10])
local settled, responsible = false, nil
if chat then
  put('\6', chat)
  local ok, decoded = pcall(cjson.decode, chat)
  if not ok or type(decoded) ~= 'table' then
    return redis.error_reply('CORRUPT the chat at ' .. KEYS[8] .. ' is not a JSON object')
  end
  local contact_id = decoded['contactId']
  if type(contact_id) == 'string' then
    local contact = stored_contact(ARGV[3], contact_id)
    if contact then
      put('\7', contact)
      responsible = responsible_of(contact)
      settled = responsible ~= nil and decoded['pending'] == nil
    end
    if ARGV[4] == '1' then
      for _, deal_id in ipairs(deal_ids(ARGV[3], contact_id)) do
        if type(deal_id) ~= 'string' then
          return redis.error_reply('CORRUPT the deals of contact ' .. contact_id .. ' are not a list of ids')
        end
        local deal = stored_deal(ARGV[3], deal_id)
        if deal then
          put('\16', deal_id)
          put('\17', deal)
        end
      end
    end
  end
end

if ARGV[1] ~= '' then
  local named = {}
  if responsible then
    table.insert(named, responsible)
  end
  if ARGV[2] ~= '' then
    table.insert(named, ARGV[2])
  end
  local responsible_seated = false
  if #named > 0 then
    local found = redis.call('HMGET', KEYS[5], unpack(named))
    for i, user in ipairs(named) do
      if found[i] then
        put('\15', user)
        put('\17', found[i])
        if user == responsible then
          responsible_seated = true
        end
      end
    end
  end
  if not (settled and responsible_seated) then
    for _, manager in ipairs(redis.call('HKEYS', KEYS[7])) do
      put('\8', manager)
    end
  end
end

return table.concat(out, '', 1, n)
