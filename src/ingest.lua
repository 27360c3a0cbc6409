-- hark ingest script (Redis contract v1): files a batch of records atomically.
--
-- KEYS[1]  <prefix>:{P}:events   (every key below shares the {P} hash tag)
-- ARGV[1]  key base "<prefix>:{P}:"
-- ARGV[2]  events MAXLEN (approximate trimming)
-- ARGV[3]  now, epoch ms
-- ARGV[4]  number of records N, then N records of 18 fields each:
--   op        m (message), s (status), e (edit), r (remove)
--   id        our message id (m) or the target's derived id (s, e, r)
--   json      m: message JSON without conversation_id/contact_id;
--             s, e, r: the update as JSON (status, error, text, at)
--   conv      conversation id derived from the thread key (s: also, for watermarks)
--   thread    m: thread key; e, r: dedupe key of the provider event ("" none)
--   channel, account, direction
--   idents    "kind\31value\30kind\31value..." (first: routing identity)
--   contact   contact id derived from the routing identity
--   name      the customer's display name ("" unknown)
--   refs      hashed references that may name a known conversation, "\30"-separated
--   ownref    hashed reference of this message ("" none)
--   customer  the customer's provider id; ours: our provider id
--   pmid      provider message id
--   ts        message time, epoch ms
--   subject   email subject ("" none)
--   concat    p: "part/total/ttl_ms" of a concatenated SMS part ("" otherwise)
--   ownraw    this message's own reference as given (email Message-ID), "" none
-- Returns one word per record: new, dup, ok, unknown, part.
--
-- ARGV[4] = "sweep" instead runs the periodic sweep (worker 0): ARGV[5] is
-- the cutoff before which an unanswered conversation is reported, ARGV[6]
-- the most items handled per call. Concatenated SMS whose deadline passed
-- are filed with the parts that arrived, flagged incomplete.
--
-- The C side validated every field before the call, so no write below can
-- fail halfway: a Redis script that errors would leave earlier writes.

local events, base, maxlen, now = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local F = 20
local results = {}

local function split(s, sep)
  local out = {}
  if s == '' then return out end
  local start = 1
  while true do
    local i = string.find(s, sep, start, true)
    if not i then
      out[#out + 1] = string.sub(s, start)
      return out
    end
    out[#out + 1] = string.sub(s, start, i - 1)
    start = i + 1
  end
end

local function emit(etype, conv, msg, data, lifecycle)
  if lifecycle then
    redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', 'type', etype, 'v', '1',
               'conversation_id', conv, 'message_id', msg, 'data', data,
               'conversation', lifecycle)
  else
    redis.call('XADD', events, 'MAXLEN', '~', maxlen, '*', 'type', etype, 'v', '1',
               'conversation_id', conv, 'message_id', msg, 'data', data)
  end
end

local function conv_json(ckey)
  local flat = redis.call('HGETALL', ckey)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return cjson.encode(t)
end

-- Contact: the first identity already known names it; otherwise a new one.
local function upsert_contact(r)
  local idents = split(r.idents, '\30')
  local contact, known
  for i, pair in ipairs(idents) do
    local kv = split(pair, '\31')
    idents[i] = kv
    local found = redis.call('GET', base .. 'ident:' .. kv[1] .. ':' .. kv[2])
    if found then contact, known = found, i break end
  end
  contact = contact or r.contact
  local ckey = base .. 'contact:' .. contact
  local fields = { 'id', contact, 'updated_at', now }
  if r.name ~= '' and r.direction == 'inbound' then
    fields[#fields + 1] = 'name'
    fields[#fields + 1] = r.name
  end
  for i, kv in ipairs(idents) do
    -- Never steal an identity that already names another contact.
    if i ~= known and redis.call('SETNX', base .. 'ident:' .. kv[1] .. ':' .. kv[2], contact) == 1 then
      fields[#fields + 1] = kv[1]
      fields[#fields + 1] = kv[2]
    end
  end
  redis.call('HSET', ckey, unpack(fields))
  if not known then redis.call('HSETNX', ckey, 'created_at', now) end
  return contact
end

-- Conversation: a known reference first (email threading), else the thread key.
local function find_conversation(r)
  for _, ref in ipairs(split(r.refs, '\30')) do
    local conv = redis.call('GET', base .. 'ref:' .. ref)
    if conv and redis.call('EXISTS', base .. 'conv:' .. conv) == 1 then return conv end
  end
  return r.conv
end

-- Redis work per message is kept to few calls: one HSET carries every
-- conversation field that changes.
local function ingest_message(r)
  local mkey = base .. 'msg:' .. r.id
  if redis.call('EXISTS', mkey) == 1 then return 'dup' end
  local contact = upsert_contact(r)
  local conv = find_conversation(r)
  local ckey = base .. 'conv:' .. conv
  local inbound = r.direction == 'inbound'
  local cur = redis.call('HMGET', ckey, 'id', 'status', 'unanswered_since', 'references')
  local opened, reopened = cur[1] == false, false
  local f = { 'last_message_at', r.ts }
  if opened then
    for _, v in ipairs({ 'id', conv, 'contact_id', contact, 'channel', r.channel,
                         'account', r.account, 'thread_key', r.thread, 'status', 'open',
                         'created_at', now, 'message_count', '1',
                         'customer_id', r.customer, 'our_id', r.ours }) do
      f[#f + 1] = v
    end
    if r.subject ~= '' then f[#f + 1] = 'subject'; f[#f + 1] = r.subject end
    redis.call('RPUSH', base .. 'contact:' .. contact .. ':conversations', conv)
  else
    redis.call('HINCRBY', ckey, 'message_count', 1)
    if inbound and cur[2] == 'resolved' then
      f[#f + 1] = 'status'; f[#f + 1] = 'open'
      f[#f + 1] = 'reopened_at'; f[#f + 1] = now
      reopened = true
    end
  end
  if r.ownref ~= '' then
    redis.call('SETNX', base .. 'ref:' .. r.ownref, conv)
    -- The conversation keeps the Message-IDs themselves: replies need them.
    -- Bounded: the newest ~4 KB, as mail clients also shorten References.
    if r.ownraw ~= '' then
      local refs = cur[4] and (cur[4] .. ' ' .. r.ownraw) or r.ownraw
      if #refs > 4096 then
        refs = string.sub(refs, (string.find(refs, ' ', #refs - 4096, true) or #refs - 4096) + 1)
      end
      f[#f + 1] = 'references'
      f[#f + 1] = refs
    end
  end
  if inbound then
    f[#f + 1] = 'last_inbound_at'; f[#f + 1] = r.ts
    f[#f + 1] = 'last_inbound_pmid'; f[#f + 1] = r.pmid
    if not cur[3] then
      f[#f + 1] = 'unanswered_since'; f[#f + 1] = r.ts
      redis.call('ZADD', base .. 'unanswered', r.ts, conv)
    end
  else
    f[#f + 1] = 'last_outbound_at'; f[#f + 1] = r.ts
    if cur[3] then
      redis.call('HDEL', ckey, 'unanswered_since')
      redis.call('ZREM', base .. 'unanswered', conv)
    end
  end
  redis.call('HSET', ckey, unpack(f))
  local json = string.sub(r.json, 1, -2) .. ',"conversation_id":"' .. conv ..
               '","contact_id":"' .. contact .. '"}'
  redis.call('SET', mkey, json)
  redis.call('RPUSH', ckey .. ':messages', r.id)
  -- One event per message (CRMs count on it): a new conversation is told by
  -- the entry's extra field conversation=opened; a reopening also gets its
  -- own conversation.reopened event, since the CRM must reopen its ticket.
  if reopened then emit('conversation.reopened', conv, r.id, conv_json(ckey)) end
  emit(inbound and 'message.received' or 'message.sent', conv, r.id, json,
       opened and 'opened' or (reopened and 'reopened' or nil))
  return 'new'
end

-- The stored message a status/edit/remove targets: by derived id, then by
-- the provider-id index that the outbound path writes.
local function find_target(r)
  local mkey = base .. 'msg:' .. r.id
  local json = redis.call('GET', mkey)
  if json then return mkey, json, r.id end
  local id = redis.call('GET', base .. 'pmid:' .. r.id)
  if not id then return nil end
  mkey = base .. 'msg:' .. id
  json = redis.call('GET', mkey)
  if not json then return nil end
  return mkey, json, id
end

local rank = { received = 0, queued = 1, sent = 2, delivered = 3, read = 4, failed = 5 }

-- The message JSON ends with "status":...,"error":...,"conversation_id":...:
-- the last ,"status": is the top-level one (nested objects come before it),
-- so a status update is a splice, with no decode/encode of the message.
local function status_of(json)
  local at, last = 1, nil
  while true do
    local i = string.find(json, ',"status":"', at, true)
    if not i then break end
    last, at = i, i + 1
  end
  if not last then return nil end
  local tail = string.find(json, ',"conversation_id":', last, true)
  if not tail then return nil end
  local word = string.match(json, '^,"status":"([a-z]+)"', last)
  return word, last, tail
end

-- Move the stored message at mkey to upd's status: 'ok' (event emitted),
-- 'dup' (not a step forward) or 'unknown' (no status to update).
local function apply_status(mkey, json, id, upd, pmid)
  local current, head, tail = status_of(json)
  if not current then return 'unknown' end
  local old, new = rank[current] or 0, rank[upd.status] or 0
  -- Statuses only move forward; failure only before delivery.
  if new <= old or (upd.status == 'failed' and old >= rank.delivered) then return 'dup' end
  local err = upd.error and cjson.encode(upd.error) or 'null'
  json = string.sub(json, 1, head - 1) .. ',"status":"' .. upd.status .. '","error":' .. err ..
         string.sub(json, tail)
  redis.call('SET', mkey, json)
  -- Search from head: the new status may be shorter than the old one.
  local conv = string.match(json, ',"conversation_id":"([0-9a-f]+)"', head) or ''
  local data = cjson.encode({ message_id = id, conversation_id = conv, status = upd.status,
    error = upd.error, provider_message_id = pmid, channel = upd.channel,
    account = upd.account, at = upd.at })
  emit('message.status', conv, id, data)
  return 'ok'
end

-- How many of a conversation's newest messages a watermark looks at.
local WATERMARK_SCAN = 100

-- Messenger reports reads (and some deliveries) as a watermark: every
-- message the Page sent in the conversation at or before it. The adapter
-- names such a record "<status>:<watermark>"; each of our recent outbound
-- messages sent by then moves forward, with its own event (at: when the
-- provider saw it happen).
local function ingest_watermark(r, upd)
  local at = tonumber(string.match(upd.pmid, ':(%d+)$'))
  if r.conv == '' or not at or at <= 0 then return 'unknown' end
  if at < 100000000000 then at = at * 1000 end    -- seconds, not milliseconds
  local ids = redis.call('LRANGE', base .. 'conv:' .. r.conv .. ':messages', -WATERMARK_SCAN, -1)
  local moved, seen = 0, 0
  for _, id in ipairs(ids) do
    local mkey = base .. 'msg:' .. id
    local json = redis.call('GET', mkey)
    -- sent_at comes before every nested object that could hold the key.
    local sent = json and string.find(json, '"direction":"outbound"', 1, true) and
                 tonumber(string.match(json, '"sent_at":(%d+)'))
    if sent and sent <= at then
      seen = seen + 1
      local pmid = cjson.decode(json).provider_message_id
      if apply_status(mkey, json, id, upd, type(pmid) == 'string' and pmid or upd.pmid) == 'ok' then
        moved = moved + 1
      end
    end
  end
  if moved > 0 then return 'ok' end
  return seen > 0 and 'dup' or 'unknown'
end

local function ingest_status(r)
  local mkey, json, id = find_target(r)
  local upd = cjson.decode(r.json)
  if not mkey then
    if string.match(upd.pmid or '', '^[a-z]+:%d+$') then return ingest_watermark(r, upd) end
    return 'unknown'
  end
  return apply_status(mkey, json, id, upd, upd.pmid)
end

local function ingest_change(r, etype)
  local mkey, json, id = find_target(r)
  if not mkey then return 'unknown' end
  if r.thread ~= '' and redis.call('SET', base .. 'evt:' .. r.thread, '1', 'NX', 'EX', 604800) == false then
    return 'dup'
  end
  local msg = cjson.decode(json)
  local upd = cjson.decode(r.json)
  if type(msg.extra) ~= 'table' then msg.extra = {} end
  if etype == 'message.edited' then
    msg.text = upd.text
    msg.reply_text = upd.text
    msg.extra.edited_at = upd.at
  else
    msg.extra.removed_at = upd.at
  end
  -- cjson turns empty arrays into {}: put the one array of the schema back.
  json = string.gsub(cjson.encode(msg), '"attachments":{}', '"attachments":[]', 1)
  redis.call('SET', mkey, json)
  emit(etype, msg.conversation_id or '', id, json)
  return 'ok'
end

-- Replace the JSON string value of a top-level key that appears before any
-- nested object holding the same key (text, reply_text: after from and to,
-- whose keys are fixed). Raw quotes never occur inside JSON strings, so the
-- first match is the top-level one.
local function splice_string(json, key, encoded)
  local pat = ',"' .. key .. '":"'
  local i = string.find(json, pat, 1, true)
  if not i then return json end
  local j = i + #pat
  while true do
    local c = string.sub(json, j, j)
    if c == '\\' then j = j + 2
    elseif c == '"' or c == '' then break
    else j = j + 1 end
  end
  return string.sub(json, 1, i + #pat - 2) .. encoded .. string.sub(json, j + 1)
end

-- Position of the top-level ,"status": (the last one: nested objects come
-- before it) in a message JSON.
local function status_of_head(json)
  local at, last = 1, nil
  while true do
    local i = string.find(json, ',"status":"', at, true)
    if not i then return nil, last end
    last, at = i, i + 1
  end
end

-- File a concatenated SMS from the parts that arrived, in order.
local function assemble(pkey, r, incomplete)
  local total = tonumber(redis.call('HGET', pkey, 'total'))
  local texts, missing, template = {}, {}, nil
  for i = 1, total do
    local part = redis.call('HGET', pkey, 'p' .. i)
    if part then
      template = template or part
      texts[#texts + 1] = cjson.decode(part).text or ''
    else
      missing[#missing + 1] = i
    end
  end
  local text = cjson.encode(table.concat(texts))
  local json = splice_string(splice_string(template, 'text', text), 'reply_text', text)
  local info = '"concat":{"parts":' .. total
  if incomplete then
    info = info .. ',"incomplete":true,"missing":[' .. table.concat(missing, ',') .. ']'
  end
  local at = select(2, status_of_head(json))
  json = string.sub(json, 1, at - 1) .. ',' .. info .. '}' .. string.sub(json, at)
  r.json = json
  redis.call('DEL', pkey)
  redis.call('ZREM', base .. 'concat:pending', r.id)
  return ingest_message(r)
end

-- A part of a concatenated SMS: kept until every part is there (or the
-- deadline passes, see the sweep), so a restart loses nothing.
local function ingest_part(r)
  if redis.call('EXISTS', base .. 'msg:' .. r.id) == 1 then return 'dup' end
  local part, total, ttl = string.match(r.concat, '^(%d+)/(%d+)/(%d+)$')
  local pkey = base .. 'concat:' .. r.id
  if redis.call('HSETNX', pkey, 'p' .. part, r.json) == 0 then return 'dup' end
  if redis.call('HSETNX', pkey, 'total', total) == 1 then
    redis.call('HSET', pkey, 'args', cjson.encode(r))
    redis.call('ZADD', base .. 'concat:pending', now + tonumber(ttl), r.id)
  end
  -- The parts outlive the deadline so that the sweep always finds them.
  redis.call('PEXPIRE', pkey, 2 * tonumber(ttl) + 60000)
  if redis.call('HLEN', pkey) - 2 >= tonumber(total) then
    return assemble(pkey, r, false)
  end
  return 'part'
end

local function sweep(cutoff, limit)
  local filed, reported = 0, 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', base .. 'concat:pending', '-inf', now,
                                 'LIMIT', 0, limit)) do
    local pkey = base .. 'concat:' .. id
    local args = redis.call('HGET', pkey, 'args')
    if args then
      assemble(pkey, cjson.decode(args), true)
      filed = filed + 1
    else
      redis.call('ZREM', base .. 'concat:pending', id)
    end
  end
  for _, conv in ipairs(redis.call('ZRANGEBYSCORE', base .. 'unanswered', '-inf', cutoff,
                                   'LIMIT', 0, limit)) do
    local ckey = base .. 'conv:' .. conv
    redis.call('ZREM', base .. 'unanswered', conv)
    if redis.call('HEXISTS', ckey, 'unanswered_since') == 1 then
      emit('conversation.unanswered', conv, redis.call('LINDEX', ckey .. ':messages', -1) or '',
           conv_json(ckey))
      reported = reported + 1
    end
  end
  return { filed, reported }
end

if ARGV[4] == 'sweep' then
  return sweep(ARGV[5], tonumber(ARGV[6]))
end

local n = tonumber(ARGV[4])
for i = 0, n - 1 do
  local o = 4 + i * F
  local r = { op = ARGV[o + 1], id = ARGV[o + 2], json = ARGV[o + 3], conv = ARGV[o + 4],
    thread = ARGV[o + 5], channel = ARGV[o + 6], account = ARGV[o + 7],
    direction = ARGV[o + 8], idents = ARGV[o + 9], contact = ARGV[o + 10],
    name = ARGV[o + 11], refs = ARGV[o + 12], ownref = ARGV[o + 13],
    customer = ARGV[o + 14], ours = ARGV[o + 15], pmid = ARGV[o + 16], ts = ARGV[o + 17],
    subject = ARGV[o + 18], concat = ARGV[o + 19], ownraw = ARGV[o + 20] }
  if r.op == 'm' then
    results[#results + 1] = ingest_message(r)
  elseif r.op == 'p' then
    results[#results + 1] = ingest_part(r)
  elseif r.op == 's' then
    results[#results + 1] = ingest_status(r)
  elseif r.op == 'e' then
    results[#results + 1] = ingest_change(r, 'message.edited')
  else
    results[#results + 1] = ingest_change(r, 'message.removed')
  end
end
return results
