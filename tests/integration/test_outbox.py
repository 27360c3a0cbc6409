"""End to end: replies from <prefix>:outbox through harkd to a mock Twilio API."""
import base64
import json
import os
import time

import pytest

from conftest import HARKD, base_config, free_port, wait_for
from mock_providers import MockProviders

pytestmark = pytest.mark.skipif(not os.access(HARKD, os.X_OK), reason="harkd not built")

TOKEN = "it-token-0123456789"
SID = "AC" + "1" * 32


@pytest.fixture
def mock():
    m = MockProviders()
    yield m
    m.close()


def config(redis_server, mock, outbox=None):
    keys = {"backoff_base": "100ms", "backoff_max": "2s", "claim_idle": "2s", "timeout": "2s",
            "consumer": "it"}
    keys.update(outbox or {})
    section = "".join(f"{k} = {v}\n" for k, v in keys.items())
    return base_config(
        free_port(), redis_server.port,
        f"[channel.sms-main]\ntype = twilio\nauth_token = ${{TWILIO_TOKEN}}\n"
        f"account_sid = {SID}\napi_url = {mock.url}\n\n[outbox]\n{section}")


def inbound(harkd, sid="SM" + "a" * 32, frm="+34612345678"):
    from twilio_client import post, sms
    status, _, _ = post(harkd, "/hooks/sms-main", sms(sid, frm=frm, body="¿Dónde está?"), TOKEN)
    assert status == 200


def conversation(r):
    for _, f in r.xrange("hark:{0}:events"):
        if f["type"] == "message.received":
            return f["conversation_id"]
    raise AssertionError("no inbound message")


def events_of(r, etype):
    return [f for _, f in r.xrange("hark:{0}:events") if f["type"] == etype]


def pending(r):
    try:
        return r.xpending("hark:outbox", "harkd")["pending"]
    except Exception:
        return -1


def start(start_harkd, redis_server, mock, outbox=None):
    return start_harkd(config(redis_server, mock, outbox), env={"TWILIO_TOKEN": TOKEN})


def test_reply_goes_back_by_sms_and_is_recorded(start_harkd, redis_server, mock):
    h = start(start_harkd, redis_server, mock)
    r = redis_server.client()
    inbound(h)
    conv = conversation(r)
    r.xadd("hark:outbox", {"conversation_id": conv, "text": "Ya sale hoy & llega mañana",
                           "attachments": json.dumps(["https://cdn.example.com/a.jpg"]),
                           "idempotency_key": "k-1"})
    req = mock.wait_requests(1)[0]
    assert req.method == "POST" and req.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert req.headers["authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    form = req.form()
    assert form["To"] == ["+34612345678"] and form["From"] == ["+15557654321"]
    assert form["Body"] == ["Ya sale hoy & llega mañana"]
    assert form["MediaUrl"] == ["https://cdn.example.com/a.jpg"]

    sent = wait_for(lambda: events_of(r, "message.sent"), what="message.sent")[0]
    msg = json.loads(sent["data"])
    assert sent["conversation_id"] == conv and msg["id"] == sent["message_id"]
    assert (msg["direction"], msg["status"], msg["channel"], msg["account"]) == \
        ("outbound", "sent", "sms", "sms-main")
    assert msg["provider_message_id"].startswith("SM") and msg["text"] == "Ya sale hoy & llega mañana"
    assert msg["to"]["id"] == "+34612345678" and msg["from"]["id"] == "+15557654321"
    assert msg["conversation_id"] == conv and msg["attachments"][0]["url"] == "https://cdn.example.com/a.jpg"
    assert json.loads(r.get(f"hark:{{0}}:msg:{msg['id']}")) == msg
    assert r.lrange(f"hark:{{0}}:conv:{conv}:messages", 0, -1)[-1] == msg["id"]
    c = r.hgetall(f"hark:{{0}}:conv:{conv}")
    assert "unanswered_since" not in c and int(c["last_outbound_at"]) >= int(c["last_inbound_at"])
    assert c["message_count"] == "2"
    wait_for(lambda: pending(r) == 0, what="entry acknowledged")
    assert r.xlen("hark:outbox:dead") == 0

    # Twilio's status callback for the reply updates it through the webhook route.
    from twilio_client import post
    params = {"MessageSid": msg["provider_message_id"], "MessageStatus": "delivered",
              "AccountSid": SID, "From": "+15557654321", "To": "+34612345678",
              "ApiVersion": "2010-04-01"}
    status, _, _ = post(h, "/hooks/sms-main", params, TOKEN)
    assert status == 200
    wait_for(lambda: json.loads(r.get(f"hark:{{0}}:msg:{msg['id']}"))["status"] == "delivered",
             what="status delivered")


def test_same_idempotency_key_sends_once(start_harkd, redis_server, mock):
    h = start(start_harkd, redis_server, mock)
    r = redis_server.client()
    inbound(h)
    conv = conversation(r)
    for _ in range(3):
        r.xadd("hark:outbox", {"conversation_id": conv, "text": "once", "idempotency_key": "same"})
    wait_for(lambda: r.xlen("hark:outbox") == 3 and pending(r) == 0 and events_of(r, "message.sent"),
             what="all acknowledged")
    time.sleep(0.3)
    assert len(mock.requests) == 1
    assert len(events_of(r, "message.sent")) == 1


def test_429_with_retry_after_then_success(start_harkd, redis_server, mock):
    h = start(start_harkd, redis_server, mock)
    r = redis_server.client()
    inbound(h)
    mock.script((429, {"Retry-After": "1"}, {"code": 20429, "message": "Too Many Requests"}),
                (503, {}, b"<html>busy</html>"), "close")
    r.xadd("hark:outbox", {"conversation_id": conversation(r), "text": "retry me",
                           "idempotency_key": "k-429"})
    reqs = mock.wait_requests(4)
    assert reqs[1].at - reqs[0].at >= 0.9     # Retry-After honoured
    wait_for(lambda: events_of(r, "message.sent"), what="sent after retries")
    assert r.xlen("hark:outbox:dead") == 0


def test_permanent_error_fails_and_goes_to_dead_letter(start_harkd, redis_server, mock):
    h = start(start_harkd, redis_server, mock)
    r = redis_server.client()
    inbound(h)
    mock.script((400, {}, {"code": 21211, "message": "The 'To' number is not valid.", "status": 400}))
    r.xadd("hark:outbox", {"conversation_id": conversation(r), "text": "nope", "idempotency_key": "k-400"})
    failed = wait_for(lambda: events_of(r, "message.failed"), what="message.failed")[0]
    data = json.loads(failed["data"])
    assert data["status"] == "failed" and "21211" in data["error"]
    dead = wait_for(lambda: r.xrange("hark:outbox:dead"), what="dead letter")
    assert dead[0][1]["idempotency_key"] == "k-400" and "21211" in dead[0][1]["reason"]
    assert len(mock.requests) == 1
    wait_for(lambda: pending(r) == 0, what="acknowledged")


def test_retries_exhausted_then_dead_letter_and_replay(start_harkd, redis_server, mock):
    h = start(start_harkd, redis_server, mock, {"max_attempts": "3"})
    r = redis_server.client()
    inbound(h)
    conv = conversation(r)
    mock.script(*[(500, {}, {"message": "oops"})] * 3)
    r.xadd("hark:outbox", {"conversation_id": conv, "text": "x", "idempotency_key": "k-500"})
    dead = wait_for(lambda: r.xrange("hark:outbox:dead"), what="dead letter")
    assert "gave up after 3 attempts" in dead[0][1]["reason"]
    assert len(mock.requests) == 3
    # Replay: the same request again goes through now that the provider is back.
    fields = {k: v for k, v in dead[0][1].items() if k in ("conversation_id", "text", "idempotency_key")}
    r.xadd("hark:outbox", fields)
    wait_for(lambda: events_of(r, "message.sent"), what="replayed and sent")
    assert len(mock.requests) == 4


@pytest.mark.parametrize("fields,reason", [
    ({"conversation_id": "nope", "text": "x"}, "unknown conversation"),
    ({"text": "x"}, "conversation_id"),
    ({"conversation_id": "CONV", "text": ""}, "empty text"),
    ({"conversation_id": "CONV", "text": "x", "attachments": "{"}, "attachments"),
])
def test_bad_requests_fail_at_once(start_harkd, redis_server, mock, fields, reason):
    h = start(start_harkd, redis_server, mock)
    r = redis_server.client()
    inbound(h)
    conv = conversation(r)
    r.xadd("hark:outbox", {k: v.replace("CONV", conv) for k, v in fields.items()})
    dead = wait_for(lambda: r.xrange("hark:outbox:dead"), what="dead letter")
    assert reason in dead[0][1]["reason"]
    wait_for(lambda: events_of(r, "message.failed"), what="message.failed")
    assert mock.requests == []
    wait_for(lambda: pending(r) == 0, what="acknowledged")


def test_entry_left_pending_by_a_crashed_consumer_is_claimed(start_harkd, redis_server, mock):
    r = redis_server.client()
    h = start(start_harkd, redis_server, mock)
    inbound(h)
    conv = conversation(r)
    h.stop()
    # A consumer that read the entry and died without acknowledging it.
    r.xgroup_create("hark:outbox", "harkd", id="$", mkstream=True) if not r.exists("hark:outbox") else None
    r.xadd("hark:outbox", {"conversation_id": conv, "text": "orphan", "idempotency_key": "k-orphan"})
    r.xreadgroup("harkd", "ghost", {"hark:outbox": ">"}, count=10)
    assert pending(r) == 1
    start(start_harkd, redis_server, mock)
    wait_for(lambda: events_of(r, "message.sent"), timeout=20, what="claimed and sent")
    wait_for(lambda: pending(r) == 0, what="acknowledged")
    assert len(mock.requests) == 1


def test_timeout_is_retried(start_harkd, redis_server, mock):
    h = start(start_harkd, redis_server, mock, {"timeout": "500ms"})
    r = redis_server.client()
    inbound(h)
    mock.script("timeout", "malformed")
    r.xadd("hark:outbox", {"conversation_id": conversation(r), "text": "slow", "idempotency_key": "k-t"})
    wait_for(lambda: events_of(r, "message.sent"), what="sent after a timeout")
    # A 2xx without a sid is accepted (sending again would duplicate), with no provider id.
    msg = json.loads(events_of(r, "message.sent")[0]["data"])
    assert msg["provider_message_id"] is None
    assert len(mock.requests) == 2
