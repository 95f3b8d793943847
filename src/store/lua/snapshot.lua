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
-- Returns {'applied', record} when the event was already applied, else
-- {'fresh', config, settings, channel, seats (flat field/value list),
--  round robin, chat, contact, user, deals (list)}, nil where absent.

local function esc(s)
  return (string.gsub(s, '[^%w_%-]', function(c) return string.format('%%%02X', string.byte(c)) end))
end

local applied = redis.call('GET', KEYS[1])
if applied then
  return {'applied', applied}
end

local channel, seats, pool = false, {}, false
if ARGV[1] ~= '' then
  channel = redis.call('HGET', KEYS[4], ARGV[1])
  seats = redis.call('HGETALL', KEYS[5])
  pool = redis.call('GET', KEYS[6])
end

local user = false
if ARGV[2] ~= '' then
  user = redis.call('HGET', KEYS[8], ARGV[2])
end

local chat = redis.call('GET', KEYS[7])
local contact, deals = false, {}
if chat then
  local ok, decoded = pcall(cjson.decode, chat)
  if not ok or type(decoded) ~= 'table' then
    return redis.error_reply('CORRUPT the chat at ' .. KEYS[7] .. ' is not a JSON object')
  end
  local contact_id = decoded['contactId']
  if type(contact_id) == 'string' then
    contact = redis.call('GET', ARGV[3] .. 'contact:' .. esc(contact_id))
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

return {'fresh', redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]), channel, seats, pool, chat, contact, user, deals}
