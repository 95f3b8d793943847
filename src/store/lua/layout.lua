-- layout.lua: the start of snapshot.lua and channel.lua (the store puts it in
-- front of each): key escaping, buckets and the reads of contacts and deals
-- (both layouts, see keys.rs), a hash as a table, and the channel indexes of
-- accounts written before they existed.
--
-- Every channel has, besides its seats (hash userId -> seat), the observers
-- index (hash userId -> seat of its quality control and supervisors), the
-- round-robin pool (hash: every eligible manager -> the turn of his last new
-- client, 0 for never) and the pool's turn counter. apply.lua keeps them with
-- every seat it writes. An account written before them (no `layout` key set
-- to '2') gets them here, built from its seats and its old pools (`rr:` keys,
-- JSON {"turn": n, "last": {userId: n}}), at the first snapshot or channel
-- read of any of its events: once, in the same atomic step as that read.

-- An id as a key part: every byte outside A-Z a-z 0-9 _ - as %XX (Id::key_part).
local function esc(s)
  return (string.gsub(s, '[^%w_%-]', function(c) return string.format('%%%02X', string.byte(c)) end))
end

-- The bucket of an id (keys.rs `bucket`): its SHA-1's first 4 bytes mod 4096.
local function bucket(id)
  return tostring(tonumber(string.sub(redis.sha1hex(id), 1, 8), 16) % 4096)
end

-- A contact's stored value (compact, in its bucket; else at the older
-- layout's key), or nil.
local function stored_contact(base, id)
  return redis.call('HGET', base .. 'contacts:' .. bucket(id), id)
    or redis.call('GET', base .. 'contact:' .. esc(id)) or nil
end

-- A chat's stored value (field `<type>:<chatId>` of its bucket; else the
-- older layout's key), or nil.
local function stored_chat(base, chat_type, chat_id)
  local field = chat_type .. ':' .. chat_id
  return redis.call('HGET', base .. 'chats:' .. bucket(field), field)
    or redis.call('GET', base .. 'chat:' .. chat_type .. ':' .. esc(chat_id)) or nil
end

-- A deal's stored value, found like a contact's.
local function stored_deal(base, id)
  return redis.call('HGET', base .. 'deals:' .. bucket(id), id)
    or redis.call('GET', base .. 'deal:' .. esc(id)) or nil
end

-- The deal ids of a contact (a field of its bucket; else the older set).
local function deal_ids(base, id)
  local raw = redis.call('HGET', base .. 'deal-links:' .. bucket(id), id)
  if raw then
    return cjson.decode(raw)
  end
  return redis.call('SMEMBERS', base .. 'contact-deals:' .. esc(id))
end

-- The responsible user id in a stored contact, compact (`[name,
-- responsible, ...]`) or of the older layout (a JSON object); nil when the
-- value does not read (the decoder reports it).
local function responsible_of(contact)
  local ok, c = pcall(cjson.decode, contact)
  if not ok or type(c) ~= 'table' then
    return nil
  end
  local r
  if string.sub(contact, 1, 1) == '[' then
    r = c[2]
  else
    r = c['responsibleUserId']
  end
  if type(r) == 'string' then
    return r
  end
  return nil
end

-- A hash's HGETALL reply as a table: field -> value.
local function hash(flat)
  local map = {}
  for i = 1, #flat, 2 do
    map[flat[i]] = flat[i + 1]
  end
  return map
end

-- Builds the channel indexes of the account at `base` unless it has them;
-- `marker` is the value of its `layout` key when the caller read it already.
local function ensure_layout(base, marker)
  if marker == nil then
    marker = redis.call('GET', base .. 'layout')
  end
  if marker == '2' then
    return
  end
  for _, channel in ipairs(redis.call('HKEYS', base .. 'channels')) do
    local ch = esc(channel)
    local observers, pool, old = base .. 'observers:' .. ch, base .. 'pool:' .. ch, base .. 'rr:' .. ch
    local last = {}
    local raw = redis.call('GET', old)
    if raw then
      local ok, decoded = pcall(cjson.decode, raw)
      if ok and type(decoded) == 'table' then
        if type(decoded.last) == 'table' then
          last = decoded.last
        end
        if type(decoded.turn) == 'number' then
          redis.call('SET', base .. 'turn:' .. ch, string.format('%d', decoded.turn))
        end
      end
      redis.call('DEL', old)
    end
    redis.call('DEL', observers)
    local flat = redis.call('HGETALL', base .. 'seats:' .. ch)
    for i = 1, #flat, 2 do
      local user, raw_seat = flat[i], flat[i + 1]
      local ok, seat = pcall(cjson.decode, raw_seat)
      if ok and type(seat) == 'table' then
        if seat.role == 'quality_control' or seat.role == 'supervisor' then
          redis.call('HSET', observers, user, raw_seat)
        elseif seat.role == 'manager' and seat.receivesNewClients == true then
          if type(last[user]) == 'number' then
            redis.call('HSET', pool, user, string.format('%d', last[user]))
          else
            redis.call('HSETNX', pool, user, '0')
          end
        end
      end
    end
  end
  redis.call('SET', base .. 'layout', '2')
end

