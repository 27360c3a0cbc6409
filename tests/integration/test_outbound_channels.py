"""End to end: replies through <prefix>:outbox on every non-Twilio sender channel.

Each test creates the conversation the real way (a signed inbound webhook
through harkd), asks for a reply with XADD hark:outbox, then checks
  - the request the mock provider received: method, path, authentication,
    body fields, as each provider documents its send API
    (docs/adapters/<name>.md);
  - the outcome in Redis (docs/outbox.md step 6): the outbound message JSON
    (status sent, provider id), the conversation (last_outbound_at set,
    unanswered_since cleared), exactly one message.sent, the entry acknowledged;
  - where the provider reports deliveries (Meta, WhatsApp, Vonage DLR, X read
    receipts), the signed callback moves the stored status forward and emits
    message.status.
"""
import base64
import json
import os
import time
import urllib.parse

import pytest

from conftest import HARKD, base_config, free_port, wait_for
from mock_providers import MockProviders
from signers import (derive_id, meta_post, telegram_post, vonage_post, vonage_sign, web_post,
                     x_post)

pytestmark = pytest.mark.skipif(not os.access(HARKD, os.X_OK), reason="harkd not built")

META_SECRET = "it-meta-app-secret-0123456789"
META_VERIFY = "it-verify-token-42"
META_TOKEN = "EAAG-it-page-token-0123456789"
PAGE = "104567890123456"
IG_ACCOUNT = "17841400008460056"
PHONE_ID = "106540352242922"
VONAGE_SIG = "it-vonage-signature-secret"
VONAGE_KEY = "abcd1234"
VONAGE_API_SECRET = "it-vonage-api-secret"
TG_SECRET = "it-telegram-secret_token"
TG_BOT = "123456789:AAH-it_bot_token_0123456789abcdef"
X_SECRET = "it-x-consumer-secret"
X_TOKEN = "it-x-oauth2-user-token"
X_US = "4337869213"
X_CUSTOMER = "3001969357"
WEB_SECRET = "whsec_it_0123456789"

ENV = {"META_SECRET": META_SECRET, "META_VERIFY": META_VERIFY, "META_TOKEN": META_TOKEN,
       "VONAGE_SIG": VONAGE_SIG, "VONAGE_API_SECRET": VONAGE_API_SECRET,
       "TG_SECRET": TG_SECRET, "TG_BOT": TG_BOT, "X_SECRET": X_SECRET, "X_TOKEN": X_TOKEN,
       "WEB_SECRET": WEB_SECRET}


@pytest.fixture
def mock():
    m = MockProviders()
    yield m
    m.close()


def config(redis_server, mock):
    channels = (
        "[channel.sms-vonage]\ntype = vonage\nsignature_secret = ${VONAGE_SIG}\n"
        f"api_key = {VONAGE_KEY}\napi_secret = ${{VONAGE_API_SECRET}}\napi_url = {mock.url}\n\n"
        "[channel.meta-main]\ntype = meta\napp_secret = ${META_SECRET}\n"
        "verify_token = ${META_VERIFY}\naccess_token = ${META_TOKEN}\n"
        f"api_url = {mock.url}/v19.0/\n\n"
        "[channel.tg-support]\ntype = telegram\nsecret_token = ${TG_SECRET}\n"
        f"bot_token = ${{TG_BOT}}\napi_url = {mock.url}\n\n"
        "[channel.x-brand]\ntype = x\nconsumer_secret = ${X_SECRET}\n"
        f"access_token = ${{X_TOKEN}}\napi_url = {mock.url}\nuser_id = {X_US}\n\n"
        "[channel.site]\ntype = web\nsecret = ${WEB_SECRET}\nmax_skew = 5m\n\n"
        "[outbox]\nconsumer = it\nbackoff_base = 100ms\nbackoff_max = 3s\nclaim_idle = 2s\n"
        "timeout = 2s\n")
    return base_config(free_port(), redis_server.port, channels)


@pytest.fixture
def stack(start_harkd, redis_server, mock):
    h = start_harkd(config(redis_server, mock), env=ENV)
    return h, redis_server.client(), mock


# --- helpers -----------------------------------------------------------------

def events_of(r, etype):
    return [f for _, f in r.xrange("hark:{0}:events") if f["type"] == etype]


def pending(r):
    try:
        return r.xpending("hark:outbox", "harkd")["pending"]
    except Exception:
        return -1


def received_conversation(r, n=1):
    got = wait_for(lambda: len(events_of(r, "message.received")) >= n and events_of(r, "message.received"),
                   what="message.received")
    return got[n - 1]["conversation_id"], json.loads(got[n - 1]["data"])


def reply(r, conv, text, key, attachments=None):
    fields = {"conversation_id": conv, "text": text, "idempotency_key": key}
    if attachments is not None:
        fields["attachments"] = json.dumps(attachments)
    return r.xadd("hark:outbox", fields)


def stored(r, msg_id):
    raw = r.get(f"hark:{{0}}:msg:{msg_id}")
    return json.loads(raw) if raw is not None else None


def assert_sent(r, conv, key, account, channel, pmid, to, frm, text):
    """The Redis outcome of a reply the provider accepted (docs/outbox.md step 6)."""
    ev = wait_for(lambda: events_of(r, "message.sent"), what="message.sent")[0]
    wait_for(lambda: pending(r) == 0, what="outbox entry acknowledged")
    msg = json.loads(ev["data"])
    our_id = derive_id("outbound", account, key)
    assert ev["message_id"] == our_id == msg["id"] and ev["conversation_id"] == conv
    assert (msg["direction"], msg["status"], msg["channel"], msg["account"]) == \
        ("outbound", "sent", channel, account)
    assert msg["provider_message_id"] == pmid
    assert msg["to"]["id"] == to and msg["from"]["id"] == frm
    assert msg["text"] == text and msg["conversation_id"] == conv
    assert msg.get("error") is None     # the field itself: test_sent_message_json_layout
    assert isinstance(msg["sent_at"], int) and msg["sent_at"] > 0
    assert stored(r, our_id) == msg
    assert r.lrange(f"hark:{{0}}:conv:{conv}:messages", 0, -1)[-1] == our_id
    c = r.hgetall(f"hark:{{0}}:conv:{conv}")
    assert "unanswered_since" not in c
    assert int(c["last_outbound_at"]) >= int(c["last_inbound_at"])
    assert c["message_count"] == "2"
    assert r.get(f"hark:{{0}}:pmid:{derive_id(channel, account, pmid)}") == our_id
    assert r.xlen("hark:outbox:dead") == 0
    assert len(events_of(r, "message.sent")) == 1
    assert events_of(r, "message.failed") == []
    return msg


def assert_status(r, msg, status, n_events):
    """A provider callback moved the stored reply to `status` with one message.status each."""
    wait_for(lambda: stored(r, msg["id"])["status"] == status, what=f"status {status}")
    evs = wait_for(lambda: len(events_of(r, "message.status")) >= n_events and events_of(r, "message.status"),
                   what="message.status")
    assert len(evs) == n_events
    last = evs[-1]
    data = json.loads(last["data"])
    assert last["message_id"] == msg["id"] and last["conversation_id"] == msg["conversation_id"]
    assert data["status"] == status and data["provider_message_id"] == msg["provider_message_id"]


def bearer(req, token):
    assert req.headers.get("authorization") == "Bearer " + token, req.headers


def json_body(req):
    assert req.headers.get("content-type", "").startswith("application/json"), req.headers
    return req.json()


# --- Vonage SMS ----------------------------------------------------------------

def vonage_inbound(h, msisdn="447700900001", to="447700900000", mid="0A0000000123ABCD1", text="Hola"):
    params = vonage_sign({"msisdn": msisdn, "to": to, "messageId": mid, "text": text, "type": "text",
                          "keyword": "HOLA", "api-key": VONAGE_KEY,
                          "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())},
                         VONAGE_SIG)
    status, body, _ = vonage_post(h, "/hooks/sms-vonage", params)
    assert status == 200, body


def test_vonage_sms_reply_and_delivery_receipt(stack):
    h, r, mock = stack
    vonage_inbound(h)
    conv, _ = received_conversation(r)
    reply(r, conv, "Olá, já enviámos", "v-1", ["https://cdn.example.com/fatura.pdf"])
    req = mock.wait_requests(1)[0]
    assert (req.method, req.path) == ("POST", "/sms/json")
    body = json_body(req)
    our_id = derive_id("outbound", "sms-vonage", "v-1")
    # The SMS API authenticates with api_key/api_secret in the body; SMS carries no files.
    assert body == {"api_key": VONAGE_KEY, "api_secret": VONAGE_API_SECRET, "from": "447700900000",
                    "to": "447700900001", "text": "Olá, já enviámos\nhttps://cdn.example.com/fatura.pdf",
                    "type": "unicode", "client-ref": our_id}
    pmid = "%016X" % 1
    msg = assert_sent(r, conv, "v-1", "sms-vonage", "sms", pmid, "+447700900001", "+447700900000",
                      "Olá, já enviámos")
    assert msg["attachments"][0]["url"] == "https://cdn.example.com/fatura.pdf"

    # The delivery receipt for that message id (signed like every Vonage webhook).
    dlr = vonage_sign({"msisdn": "447700900001", "to": "447700900000", "network-code": "21403",
                       "messageId": pmid, "price": "0.03330000", "status": "delivered",
                       "scts": "2001011400", "err-code": "0", "api-key": VONAGE_KEY,
                       "client-ref": our_id,
                       "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())},
                      VONAGE_SIG)
    status, body, _ = vonage_post(h, "/hooks/sms-vonage", dlr, as_json=True)
    assert status == 200, body
    assert_status(r, msg, "delivered", 1)
    # The same receipt again writes nothing and emits nothing.
    assert vonage_post(h, "/hooks/sms-vonage", dlr, as_json=True)[0] == 200
    time.sleep(0.2)
    assert len(events_of(r, "message.status")) == 1


# --- Meta: Messenger, Instagram, Page comments, WhatsApp --------------------------

def meta(h, body):
    status, text, _ = meta_post(h, "/hooks/meta-main", body, META_SECRET)
    assert status == 200, text


def messaging(obj, our, sender, event, ts=None):
    ts = ts or int(time.time() * 1000)
    return {"object": obj, "entry": [{"id": our, "time": ts, "messaging": [
        dict({"sender": {"id": sender}, "recipient": {"id": our}, "timestamp": ts}, **event)]}]}


LONG_MID = "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"


def test_messenger_reply_then_delivered(stack):
    h, r, mock = stack
    psid = "6543210987654321"
    meta(h, messaging("page", PAGE, psid, {"message": {"mid": "mid.in.1", "text": "hello"}}))
    conv, _ = received_conversation(r)
    mock.script((200, {}, {"recipient_id": psid, "message_id": LONG_MID}))
    reply(r, conv, "Hi! It ships today.", "m-1")
    req = mock.wait_requests(1)[0]
    assert (req.method, req.path) == ("POST", f"/v19.0/{PAGE}/messages")
    bearer(req, META_TOKEN)
    assert "access_token" not in req.path
    assert json_body(req) == {"recipient": {"id": psid}, "messaging_type": "RESPONSE",
                              "message": {"text": "Hi! It ships today."}}
    msg = assert_sent(r, conv, "m-1", "meta-main", "messenger", LONG_MID, psid, PAGE,
                      "Hi! It ships today.")
    meta(h, messaging("page", PAGE, psid, {"delivery": {"mids": [LONG_MID],
                                                         "watermark": int(time.time() * 1000)}}))
    assert_status(r, msg, "delivered", 1)


def test_instagram_dm_reply_then_read(stack):
    h, r, mock = stack
    igsid = "1234567890123456"
    meta(h, messaging("instagram", IG_ACCOUNT, igsid,
                      {"message": {"mid": "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1",
                                   "text": "Is the blue one in stock?"}}))
    conv, _ = received_conversation(r)
    mock.script((200, {}, {"recipient_id": igsid, "message_id": "aWdfZAG1faXRlbToxOklHTWVzc2FnZAOUT1"}))
    reply(r, conv, "Yes, in every size.", "ig-1")
    req = mock.wait_requests(1)[0]
    # docs/adapters/meta.md: an Instagram DM goes through the Send API, without messaging_type.
    assert (req.method, req.path) == ("POST", f"/v19.0/{IG_ACCOUNT}/messages"), req.path
    bearer(req, META_TOKEN)
    assert json_body(req) == {"recipient": {"id": igsid}, "message": {"text": "Yes, in every size."}}
    msg = assert_sent(r, conv, "ig-1", "meta-main", "instagram", "aWdfZAG1faXRlbToxOklHTWVzc2FnZAOUT1",
                      igsid, IG_ACCOUNT, "Yes, in every size.")
    meta(h, messaging("instagram", IG_ACCOUNT, igsid, {"read": {"mid": msg["provider_message_id"]}}))
    assert_status(r, msg, "read", 1)


def test_facebook_comment_reply(stack):
    h, r, mock = stack
    now = int(time.time())
    meta(h, {"object": "page", "entry": [{"id": PAGE, "time": now, "changes": [{"field": "feed", "value": {
        "from": {"id": "5566778899", "name": "Cinderella Hoover"}, "item": "comment", "verb": "add",
        "post_id": f"{PAGE}_200", "comment_id": "200_300", "parent_id": f"{PAGE}_200",
        "created_time": now, "message": "Does this come in blue?"}}]}]})
    conv, inbound = received_conversation(r)
    assert inbound["channel"] == "facebook_comment"
    mock.script((200, {}, {"id": "200_301"}))
    reply(r, conv, "Yes, and in green too.", "fc-1")
    req = mock.wait_requests(1)[0]
    assert (req.method, req.path) == ("POST", "/v19.0/200_300/comments")
    bearer(req, META_TOKEN)
    assert json_body(req) == {"message": "Yes, and in green too."}
    assert_sent(r, conv, "fc-1", "meta-main", "facebook_comment", "200_301", "5566778899", PAGE,
                "Yes, and in green too.")


WAMID_OUT = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"


def wa(messages=None, statuses=None, contacts=None):
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID}}
    for k, v in (("contacts", contacts), ("messages", messages), ("statuses", statuses)):
        if v is not None:
            value[k] = v
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}


def wa_inbound(h, ts, wamid="wamid.IN1"):
    meta(h, wa(messages=[{"from": "16505551234", "id": wamid, "timestamp": str(ts), "type": "text",
                          "text": {"body": "Does it come in another color?"}}],
               contacts=[{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}]))


def wa_status(wamid, status, ts):
    return {"id": wamid, "status": status, "timestamp": str(ts), "recipient_id": "16505551234"}


def test_whatsapp_inside_window_reply_and_statuses(stack):
    h, r, mock = stack
    now = int(time.time())
    wa_inbound(h, now - 60)
    conv, _ = received_conversation(r)
    mock.script((200, {}, {"messaging_product": "whatsapp",
                           "contacts": [{"input": "16505551234", "wa_id": "16505551234"}],
                           "messages": [{"id": WAMID_OUT}]}))
    reply(r, conv, "Yes: red and blue.", "wa-1")
    req = mock.wait_requests(1)[0]
    assert (req.method, req.path) == ("POST", f"/v19.0/{PHONE_ID}/messages")
    bearer(req, META_TOKEN)
    assert json_body(req) == {"messaging_product": "whatsapp", "recipient_type": "individual",
                              "to": "16505551234", "type": "text",
                              "text": {"preview_url": False, "body": "Yes: red and blue."},
                              "context": {"message_id": "wamid.IN1"}}
    msg = assert_sent(r, conv, "wa-1", "meta-main", "whatsapp", WAMID_OUT, "+16505551234", PHONE_ID,
                      "Yes: red and blue.")
    # "sent" repeats what we know already: nothing; then delivered, then read.
    meta(h, wa(statuses=[wa_status(WAMID_OUT, "sent", now)]))
    meta(h, wa(statuses=[wa_status(WAMID_OUT, "delivered", now + 1)]))
    assert_status(r, msg, "delivered", 1)
    meta(h, wa(statuses=[wa_status(WAMID_OUT, "read", now + 2)]))
    assert_status(r, msg, "read", 2)
    # An older status after read writes nothing.
    meta(h, wa(statuses=[wa_status(WAMID_OUT, "delivered", now + 1)]))
    time.sleep(0.2)
    assert stored(r, msg["id"])["status"] == "read" and len(events_of(r, "message.status")) == 2


def test_whatsapp_outside_window_needs_a_template(stack):
    h, r, mock = stack
    wa_inbound(h, int(time.time()) - 25 * 3600)
    conv, _ = received_conversation(r)
    reply(r, conv, "Are you still interested?", "wa-late")
    failed = wait_for(lambda: events_of(r, "message.failed"), what="message.failed")[0]
    data = json.loads(failed["data"])
    assert data["status"] == "failed" and "24-hour" in data["error"] and "template" in data["error"]
    dead = wait_for(lambda: r.xrange("hark:outbox:dead"), what="dead letter")
    assert len(dead) == 1 and "24-hour" in dead[0][1]["reason"]
    assert dead[0][1]["idempotency_key"] == "wa-late"
    wait_for(lambda: pending(r) == 0, what="acknowledged")
    assert mock.requests == []
    assert events_of(r, "message.sent") == []
    assert "unanswered_since" in r.hgetall(f"hark:{{0}}:conv:{conv}")

    # A template for the conversation (src/delivery_job.c reads the conversation's
    # template_name; docs/adapters/meta.md: "name" or "name:language"), then a replay
    # of the same request sends a template message.
    r.hset(f"hark:{{0}}:conv:{conv}", "template_name", "order_followup:es")
    mock.script((200, {}, {"messaging_product": "whatsapp", "messages": [{"id": WAMID_OUT}]}))
    reply(r, conv, "Are you still interested?", "wa-late")
    req = mock.wait_requests(1)[0]
    assert (req.method, req.path) == ("POST", f"/v19.0/{PHONE_ID}/messages")
    bearer(req, META_TOKEN)
    assert json_body(req) == {"messaging_product": "whatsapp", "recipient_type": "individual",
                              "to": "16505551234", "type": "template",
                              "template": {"name": "order_followup", "language": {"code": "es"}}}
    ev = wait_for(lambda: events_of(r, "message.sent"), what="template sent")[0]
    assert json.loads(ev["data"])["provider_message_id"] == WAMID_OUT
    wait_for(lambda: pending(r) == 0, what="acknowledged")


# --- Telegram -------------------------------------------------------------------

def test_telegram_send_message(stack):
    h, r, mock = stack
    update = {"update_id": 900001, "message": {
        "message_id": 42, "from": {"id": 111222333, "is_bot": False, "first_name": "Ana"},
        "chat": {"id": 111222333, "first_name": "Ana", "type": "private"},
        "date": int(time.time()), "text": "Hola, mi pedido no llegó 📦"}}
    status, body, _ = telegram_post(h, "/hooks/tg-support", update, TG_SECRET)
    assert status == 200, body
    conv, _ = received_conversation(r)
    mock.script((200, {}, {"ok": True, "result": {
        "message_id": 43, "from": {"id": 123456789, "is_bot": True, "first_name": "Shop"},
        "chat": {"id": 111222333, "type": "private"}, "date": int(time.time()),
        "text": "Sale hoy 🚚"}}))
    reply(r, conv, "Sale hoy 🚚", "tg-1", ["https://cdn.example.com/tracking.png"])
    req = mock.wait_requests(1)[0]
    # The token is part of the path (Bot API), nothing in headers.
    assert (req.method, req.path) == ("POST", f"/bot{TG_BOT}/sendMessage")
    assert "authorization" not in req.headers
    assert json_body(req) == {"chat_id": 111222333,
                              "text": "Sale hoy 🚚\nhttps://cdn.example.com/tracking.png",
                              "reply_parameters": {"message_id": 42, "allow_sending_without_reply": True}}
    assert_sent(r, conv, "tg-1", "tg-support", "telegram", "111222333:43", "111222333", "",
                "Sale hoy 🚚")


# --- X ------------------------------------------------------------------------------

def test_x_dm_reply_then_read_receipt(stack):
    h, r, mock = stack
    status, body, _ = x_post(h, "/hooks/x-brand", {"for_user_id": X_US, "direct_message_events": [{
        "type": "message_create", "id": "1100000000000000001",
        "created_timestamp": str(int(time.time() * 1000)),
        "message_create": {"target": {"recipient_id": X_US}, "sender_id": X_CUSTOMER,
                           "message_data": {"text": "My order #123 is late"}}}]}, X_SECRET)
    assert status == 200, body
    conv, _ = received_conversation(r)
    mock.script((201, {}, {"data": {"dm_conversation_id": f"{X_CUSTOMER}-{X_US}",
                                    "dm_event_id": "1582838223890812932"}}))
    reply(r, conv, "Sorry! It left today.", "x-1")
    req = mock.wait_requests(1)[0]
    assert (req.method, req.path) == ("POST", f"/2/dm_conversations/with/{X_CUSTOMER}/messages")
    bearer(req, X_TOKEN)
    assert json_body(req) == {"text": "Sorry! It left today."}
    msg = assert_sent(r, conv, "x-1", "x-brand", "x_dm", "1582838223890812932", X_CUSTOMER, X_US,
                      "Sorry! It left today.")
    status, body, _ = x_post(h, "/hooks/x-brand", {"for_user_id": X_US, "direct_message_mark_read_events": [{
        "created_timestamp": str(int(time.time() * 1000)), "sender_id": X_CUSTOMER,
        "target": {"recipient_id": X_US}, "last_read_event_id": "1582838223890812932"}]}, X_SECRET)
    assert status == 200, body
    assert_status(r, msg, "read", 1)


def test_x_mention_reply(stack):
    h, r, mock = stack
    tweet = {"created_at": time.strftime("%a %b %d %H:%M:%S +0000 %Y", time.gmtime()),
             "id": 1200000000000000001, "id_str": "1200000000000000001",
             "text": "@Harris_0ff my package never arrived",
             "in_reply_to_status_id_str": None, "in_reply_to_user_id_str": None,
             "user": {"id": int(X_CUSTOMER), "id_str": X_CUSTOMER, "name": "Jordan",
                      "screen_name": "furiouscamper"},
             "entities": {"hashtags": [], "urls": [], "symbols": [], "user_mentions": [
                 {"screen_name": "Harris_0ff", "id": int(X_US), "id_str": X_US, "indices": [0, 11]}]},
             "timestamp_ms": str(int(time.time() * 1000))}
    status, body, _ = x_post(h, "/hooks/x-brand", {"for_user_id": X_US, "tweet_create_events": [tweet]},
                             X_SECRET)
    assert status == 200, body
    conv, inbound = received_conversation(r)
    assert inbound["channel"] == "x_mention"
    mock.script((201, {}, {"data": {"id": "1200000000000000099", "text": "@furiouscamper On its way"}}))
    reply(r, conv, "@furiouscamper On its way, sorry!", "xm-1")
    req = mock.wait_requests(1)[0]
    assert (req.method, req.path) == ("POST", "/2/tweets")
    bearer(req, X_TOKEN)
    assert json_body(req) == {"text": "@furiouscamper On its way, sorry!",
                              "reply": {"in_reply_to_tweet_id": "1200000000000000001"}}
    assert_sent(r, conv, "xm-1", "x-brand", "x_mention", "1200000000000000099", X_CUSTOMER, X_US,
                "@furiouscamper On its way, sorry!")


# --- requests that cannot be delivered fail at once ------------------------------------

def assert_failed_at_once(r, mock, conv, reason):
    failed = wait_for(lambda: events_of(r, "message.failed"), what="message.failed")
    assert len(failed) == 1 and failed[0]["conversation_id"] == conv
    data = json.loads(failed[0]["data"])
    text = data.get("error") or data.get("reason") or ""
    assert reason in text, data
    dead = wait_for(lambda: r.xrange("hark:outbox:dead"), what="dead letter")
    assert len(dead) == 1 and reason in dead[0][1]["reason"], dead
    wait_for(lambda: pending(r) == 0, what="acknowledged")
    time.sleep(0.2)
    assert mock.requests == [] and events_of(r, "message.sent") == []


def test_attachments_too_long_for_a_telegram_message_fail_at_once(stack):
    h, r, mock = stack
    update = {"update_id": 900002, "message": {
        "message_id": 7, "from": {"id": 111222333, "is_bot": False, "first_name": "Ana"},
        "chat": {"id": 111222333, "type": "private"}, "date": int(time.time()), "text": "hola"}}
    assert telegram_post(h, "/hooks/tg-support", update, TG_SECRET)[0] == 200
    conv, _ = received_conversation(r)
    # Telegram carries attachments only as links in the text, at most 4096 characters.
    urls = ["https://cdn.example.com/" + "p" * 200 + f"/{i}.jpg" for i in range(30)]
    reply(r, conv, "fotos", "tg-big", urls)
    assert_failed_at_once(r, mock, conv, "4096")
    assert stored(r, derive_id("outbound", "tg-support", "tg-big"))["status"] == "failed"


def test_attachment_that_is_not_a_web_url_fails_at_once(stack):
    h, r, mock = stack
    meta(h, messaging("page", PAGE, "6543210987654321", {"message": {"mid": "mid.in.2", "text": "hi"}}))
    conv, _ = received_conversation(r)
    reply(r, conv, "see file", "m-ftp", ["ftp://files.example.com/a.pdf"])
    assert_failed_at_once(r, mock, conv, "not an http(s) URL")


def test_reply_on_a_channel_without_sender_fails_at_once(stack):
    h, r, mock = stack
    status, body, _ = web_post(h, "/hooks/site", {"id": "c1", "email": "ana@example.com",
                                                  "text": "Hola"}, WEB_SECRET)
    assert status in (200, 202), body
    conv, _ = received_conversation(r)
    reply(r, conv, "Hola Ana", "web-1", ["https://cdn.example.com/a.jpg"])
    assert_failed_at_once(r, mock, conv, "cannot send replies")


# --- throttling: 429 with Retry-After, then success ----------------------------------

@pytest.mark.parametrize("provider", ["meta", "vonage"])
def test_429_retry_after_is_honoured(stack, provider):
    h, r, mock = stack
    if provider == "meta":
        meta(h, messaging("page", PAGE, "6543210987654321", {"message": {"mid": "mid.in.3", "text": "?"}}))
        mock.script((429, {"Retry-After": "1"}, {"error": {
            "message": "(#613) Calls to this api have exceeded the rate limit.",
            "type": "OAuthException", "code": 613}}))
    else:
        vonage_inbound(h)
        mock.script((429, {"Retry-After": "1"}, {"type": "https://developer.nexmo.com/api-errors#throttled",
                                                 "title": "Too Many Requests"}))
    conv, _ = received_conversation(r)
    reply(r, conv, "slowly", "t-429")
    reqs = mock.wait_requests(2)
    assert reqs[1].at - reqs[0].at >= 0.9, "Retry-After not honoured"
    assert reqs[0].body == reqs[1].body and reqs[0].path == reqs[1].path
    wait_for(lambda: events_of(r, "message.sent"), what="sent after the 429")
    wait_for(lambda: pending(r) == 0, what="acknowledged")
    assert len(mock.requests) == 2 and r.xlen("hark:outbox:dead") == 0
    assert len(events_of(r, "message.sent")) == 1


# --- the recorded reply follows the message contract ---------------------------------

def test_sent_message_json_layout(stack):
    """docs/events.md: a reply is a normalized message v1 like an inbound one: the same
    fields, "status" and "error" the last two before "conversation_id" and "contact_id"."""
    h, r, mock = stack
    vonage_inbound(h)
    conv, inbound = received_conversation(r)
    reply(r, conv, "ok", "layout-1")
    sent = json.loads(wait_for(lambda: events_of(r, "message.sent"), what="message.sent")[0]["data"])
    assert sorted(sent) == sorted(inbound), (sorted(set(sent) ^ set(inbound)))
    assert list(sent)[-4:] == ["status", "error", "conversation_id", "contact_id"], list(sent)
    assert sent["error"] is None
