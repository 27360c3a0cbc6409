--[[
hark outbound: record replies in the conversation model (one atomic step per call).

Every key of one call carries the same hash tag {P}. ARGV[1] names the step:

prepare  KEYS conv, msg, conv:messages
         ARGV step, msg_id, message_json, replay ("1": the idempotency key was taken by
         another outbox entry), now_ms
         Files the reply as a queued outbound message unless it exists. Returns
         {state, message_json}: state "noconv" (conversation gone), "send" (go and send),
         or the existing message's status ("queued", "sent", "delivered", "read",
         "failed"); a failed message asked again by another entry (replay) answers "send".

sent     KEYS conv, msg, events, pmid [, ref]
         ARGV step, msg_id, message_json (status sent), now_ms, maxlen, conversation_id
         Stores the message, indexes its provider id (pmid key -> msg id) and, for email,
         its Message-ID (ref key -> conversation id), updates the conversation and emits
         message.sent.

failed   KEYS conv, msg, events
         ARGV step, msg_id, message_json (status failed, error), now_ms, maxlen,
         conversation_id
         Stores the failed message (not appended to the conversation when it never was)
         and emits message.failed.

status   KEYS msg, events
         ARGV step, msg_id, message_json, now_ms, maxlen, conversation_id
         Stores a later status of an outbound message and emits message.status.

reject   KEYS events
         ARGV step, msg_id, data_json, now_ms, maxlen, conversation_id
         A request that names no known conversation: only message.failed.
]]

local step = ARGV[1]

local function emit(events_key, etype, maxlen, conv_id, msg_id, data)
    redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, '*',
        'type', etype, 'v', '1', 'conversation_id', conv_id,
        'message_id', msg_id, 'data', data)
end

local function status_of(json)
    local ok, m = pcall(cjson.decode, json)
    if ok and type(m) == 'table' and type(m.status) == 'string' then
        return m.status
    end
    return 'queued'
end

if step == 'prepare' then
    local conv, msg, list = KEYS[1], KEYS[2], KEYS[3]
    local msg_id, json, replay = ARGV[2], ARGV[3], ARGV[4]
    if redis.call('EXISTS', conv) == 0 then
        return {'noconv', ''}
    end
    local existing = redis.call('GET', msg)
    if existing then
        local st = status_of(existing)
        if st == 'failed' and replay == '1' then
            return {'send', existing}
        end
        return {st, existing}
    end
    redis.call('SET', msg, json)
    redis.call('RPUSH', list, msg_id)
    redis.call('HINCRBY', conv, 'message_count', 1)
    return {'send', json}
end

if step == 'sent' then
    local conv, msg, events, pmid, ref = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
    local msg_id, json, now, maxlen, conv_id = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
    redis.call('SET', msg, json)
    if pmid then
        redis.call('SET', pmid, msg_id)
    end
    if ref then
        redis.call('SET', ref, conv_id)
    end
    if redis.call('EXISTS', conv) == 1 then
        redis.call('HSET', conv, 'last_outbound_at', now, 'last_message_at', now)
        redis.call('HDEL', conv, 'unanswered_since')
        -- The sweep's index of unanswered conversations shares the key base.
        local base = string.match(conv, '^(.*:)conv:[^:]*$')
        if base then redis.call('ZREM', base .. 'unanswered', conv_id) end
        if ref then
            -- Our Message-ID joins the thread's references (newest ~4 KB kept).
            local mid = cjson.decode(json).provider_message_id
            if type(mid) == 'string' and mid ~= '' then
                local refs = redis.call('HGET', conv, 'references')
                refs = refs and (refs .. ' ' .. mid) or mid
                if #refs > 4096 then
                    refs = string.sub(refs, (string.find(refs, ' ', #refs - 4096, true) or #refs - 4096) + 1)
                end
                redis.call('HSET', conv, 'references', refs)
            end
        end
    end
    emit(events, 'message.sent', maxlen, conv_id, msg_id, json)
    return 'OK'
end

if step == 'failed' then
    local msg, events = KEYS[2], KEYS[3]
    local msg_id, json, maxlen, conv_id = ARGV[2], ARGV[3], ARGV[5], ARGV[6]
    redis.call('SET', msg, json)
    emit(events, 'message.failed', maxlen, conv_id, msg_id, json)
    return 'OK'
end

if step == 'status' then
    local msg, events = KEYS[1], KEYS[2]
    local msg_id, json, maxlen, conv_id = ARGV[2], ARGV[3], ARGV[5], ARGV[6]
    redis.call('SET', msg, json)
    emit(events, 'message.status', maxlen, conv_id, msg_id, json)
    return 'OK'
end

if step == 'reject' then
    local events = KEYS[1]
    local msg_id, data, maxlen, conv_id = ARGV[2], ARGV[3], ARGV[5], ARGV[6]
    emit(events, 'message.failed', maxlen, conv_id, msg_id, data)
    return 'OK'
end

return redis.error_reply('outbound: unknown step')
