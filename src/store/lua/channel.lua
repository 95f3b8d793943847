-- channel.lua: one channel's seats, round-robin pool and the chats waiting on
-- it, read at one instant: what offering waiting chats to users who gain
-- access to the channel needs (after lua/layout.lua, which the store puts in
-- front).
--
-- KEYS[1] the channel's seats (hash userId -> seat)
-- KEYS[2] the channel's round-robin pool (hash manager -> last turn)
-- KEYS[3] the pool's turn counter
-- KEYS[4] the channel's waiting index (hash field -> {chatType, chatId, since})
-- ARGV[1] the account's key base ("P:{account}:")
--
-- The chat and contact keys are built from ARGV[1] like the store builds them
-- (every byte outside A-Z a-z 0-9 _ - escaped as %XX; contacts in their
-- bucket, see layout.lua), in the same slot.
--
-- Returns one JSON object, decoded by name:
--   {"seats": {userId: seat, ...}, "pool": {manager: last turn, ...},
--    "turn": the counter or absent,
--    "waiting": [{"entry": raw entry, "chat": raw chat or absent,
--                 "contact": raw contact or absent}, ...] or absent}

ensure_layout(ARGV[1])

local reply = {seats = hash(redis.call('HGETALL', KEYS[1])), pool = hash(redis.call('HGETALL', KEYS[2]))}
reply.turn = redis.call('GET', KEYS[3]) or nil

local waiting = {}
for _, raw in ipairs(redis.call('HVALS', KEYS[4])) do
  local row = {entry = raw}
  local entry = cjson.decode(raw)
  local chat = stored_chat(ARGV[1], entry.chatType, entry.chatId)
  if chat then
    row.chat = chat
    local contact_id = cjson.decode(chat)['contactId']
    if type(contact_id) == 'string' then
      local contact = stored_contact(ARGV[1], contact_id)
      if contact then
        row.contact = contact
      end
    end
  end
  table.insert(waiting, row)
end
if #waiting > 0 then
  reply.waiting = waiting
end
return cjson.encode(reply)
