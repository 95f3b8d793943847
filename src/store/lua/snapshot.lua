-- snapshot.lua: everything a chat event is decided on, read at one instant.
--
-- KEYS[1] the event's record          KEYS[5] the channel's seats (hash)
-- KEYS[2] the account's config count  KEYS[6] the channel's round-robin pool
-- KEYS[3] the account's settings      KEYS[7] the chat
-- KEYS[4] channels (hash)             KEYS[8] users (hash)
-- ARGV[1] channel id, '' for none     ARGV[3] the account's key base ("P:{account}:")
-- ARGV[2] user id, '' for none        ARGV[4] '1' to load the contact's deals
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
-- was already applied, else {"config", "settings", "channel", "seats": {userId:
-- seat}, "pool", "chat", "contact", "user", "deals": [deal, ...]}, each absent
-- where Redis has nothing.

local function esc(s)
  return (string.gsub(s, '[^%w_%-]', function(c) return string.format('%%%02X', string.byte(c)) end))
end

local applied = redis.call('GET', KEYS[1])
if applied then
  return cjson.encode({applied = applied})
end

local reply = {}
if ARGV[1] ~= '' then
  reply.channel = redis.call('HGET', KEYS[4], ARGV[1]) or nil
  local seats = {}
  local flat = redis.call('HGETALL', KEYS[5])
  for i = 1, #flat, 2 do
    seats[flat[i]] = flat[i + 1]
  end
  reply.seats = seats
  reply.pool = redis.call('GET', KEYS[6]) or nil
end

if ARGV[2] ~= '' then
  reply.user = redis.call('HGET', KEYS[8], ARGV[2]) or nil
end

local chat = redis.call('GET', KEYS[7])
local deals = {}
if chat then
  reply.chat = chat
  local ok, decoded = pcall(cjson.decode, chat)
  if not ok or type(decoded) ~= 'table' then
    return redis.error_reply('CORRUPT the chat at ' .. KEYS[7] .. ' is not a JSON object')
  end
  local contact_id = decoded['contactId']
  if type(contact_id) == 'string' then
    reply.contact = redis.call('GET', ARGV[3] .. 'contact:' .. esc(contact_id)) or nil
    if ARGV[4] == '1' then
      for _, deal_id in ipairs(redis.call('SMEMBERS', ARGV[3] .. 'contact-deals:' .. esc(contact_id))) do
        local deal = redis.call('GET', ARGV[3] .. 'deal:' .. esc(deal_id))
        if deal then
          table.insert(deals, deal)
        end
      end
    end
  end
end

reply.config = redis.call('GET', KEYS[2]) or nil
reply.settings = redis.call('GET', KEYS[3]) or nil
if #deals > 0 then
  reply.deals = deals
end
return cjson.encode(reply)
