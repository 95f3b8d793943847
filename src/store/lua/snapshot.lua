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
-- wrote (the only error that sends the event to P.dead; any other error of this
-- script, such as OOM or BUSY, passes and the event is retried).
--
-- Returns one JSON object, decoded by name: {"applied": record} when the event
-- was already applied, else {"config", "settings", "channel", "observers":
-- {userId: seat}, "seats": {userId: seat}, "eligible": [userId, ...], "chat",
-- "contact", "user", "deals": [[dealId, deal], ...]}, each absent where Redis has
-- nothing (or where it is not needed: "eligible").

-- The plain values at once: the record, the layout marker, config, settings.
local plain = redis.call('MGET', KEYS[1], ARGV[3] .. 'layout', KEYS[2], KEYS[3])
if plain[1] then
  return cjson.encode({applied = plain[1]})
end
ensure_layout(ARGV[3], plain[2] or false)

local reply = {}
if ARGV[1] ~= '' then
  reply.channel = redis.call('HGET', KEYS[4], ARGV[1]) or nil
  reply.observers = hash(redis.call('HGETALL', KEYS[6]))
end

if ARGV[2] ~= '' then
  reply.user = redis.call('HGET', KEYS[9], ARGV[2]) or nil
end

local chat = redis.call('HGET', KEYS[8], ARGV[5]) or redis.call('GET', KEYS[10])
local deals = {}
local settled, responsible = false, nil
if chat then
  reply.chat = chat
  local ok, decoded = pcall(cjson.decode, chat)
  if not ok or type(decoded) ~= 'table' then
    return redis.error_reply('CORRUPT the chat at ' .. KEYS[8] .. ' is not a JSON object')
  end
  local contact_id = decoded['contactId']
  if type(contact_id) == 'string' then
    local contact = stored_contact(ARGV[3], contact_id)
    if contact then
      reply.contact = contact
      responsible = responsible_of(contact)
      settled = responsible ~= nil and decoded['pending'] == nil
    end
    if ARGV[4] == '1' then
      for _, deal_id in ipairs(deal_ids(ARGV[3], contact_id)) do
        local deal = stored_deal(ARGV[3], deal_id)
        if deal then
          table.insert(deals, {deal_id, deal})
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
  local seats = {}
  if #named > 0 then
    local found = redis.call('HMGET', KEYS[5], unpack(named))
    for i, user in ipairs(named) do
      if found[i] then
        seats[user] = found[i]
      end
    end
  end
  reply.seats = seats
  if not (settled and seats[responsible]) then
    local eligible = redis.call('HKEYS', KEYS[7])
    -- cjson writes an empty table as {}: an empty list is left out.
    if #eligible > 0 then
      reply.eligible = eligible
    end
  end
end

reply.config = plain[3] or nil
reply.settings = plain[4] or nil
if #deals > 0 then
  reply.deals = deals
end
return cjson.encode(reply)
