"""Core features beyond one adapter: the sweep (unanswered conversations, overdue
concatenated SMS) and the per-address rate limit."""
import json
import urllib.error
import urllib.request

from conftest import base_config, free_port, wait_for
from signers import vonage_post, vonage_sign
from twilio_client import post, sms

TOKEN = "core-token"
VONAGE_SECRET = "core-vonage-secret"


def channels():
    return ("[channel.sms]\ntype = twilio\nauth_token = ${CORE_TOKEN}\n\n"
            "[channel.vsms]\ntype = vonage\nsignature_secret = ${CORE_VONAGE}\n")


ENV = {"CORE_TOKEN": TOKEN, "CORE_VONAGE": VONAGE_SECRET}


def fast_sweep_config(rport, extra_server=""):
    conf = base_config(free_port(), rport, channels())
    return conf.replace("drain_timeout = 10s\n", "drain_timeout = 10s\nsweep_interval = 200ms\n"
                        "unanswered_after = 1s\n" + extra_server).replace(
        "prefix = hark\n", "prefix = hark\nconcat_ttl = 1s\n")


def entries(r, etype=None):
    return [(f["type"], f, json.loads(f["data"])) for _, f in r.xrange("hark:{0}:events")
            if etype is None or f["type"] == etype]


def test_unanswered_conversation_is_reported_once(redis_server, start_harkd):
    h = start_harkd(fast_sweep_config(redis_server.port), env=ENV)
    r = redis_server.client()
    assert post(h, "/hooks/sms", sms("SM" + "d" * 32, body="anyone there?"), TOKEN)[0] == 200
    [(_, first, msg)] = entries(r)
    found = wait_for(lambda: entries(r, "conversation.unanswered"), timeout=10,
                     what="conversation.unanswered")
    [(_, fields, data)] = found
    assert fields["conversation_id"] == msg["conversation_id"] == data["id"]
    assert fields["message_id"] == msg["id"]
    assert data["unanswered_since"] == str(msg["received_at"])
    # Several more sweeps run: the same waiting period is reported once only.
    wait_for(lambda: int(r.zcard("hark:{0}:unanswered")) == 0, what="index emptied")
    before = len(entries(r))
    assert post(h, "/hooks/sms", sms("SM" + "e" * 32, body="hello?"), TOKEN)[0] == 200
    wait_for(lambda: len(entries(r)) == before + 1, what="the second message")
    assert len(entries(r, "conversation.unanswered")) == 1


def test_concatenated_sms_missing_a_part_is_filed_flagged(redis_server, start_harkd):
    h = start_harkd(fast_sweep_config(redis_server.port), env=ENV)
    r = redis_server.client()
    for n, text in ((1, "My router "), (3, "since Monday.")):
        params = {"msisdn": "447700900002", "to": "447700900000", "messageId": f"0B0000000000000{n}",
                  "text": text, "type": "text", "message-timestamp": "2020-01-01 12:00:00",
                  "concat": "true", "concat-ref": "9", "concat-total": "3", "concat-part": str(n)}
        status = vonage_post(h, "/hooks/vsms", vonage_sign(params, VONAGE_SECRET))[0]
        assert status == 200
    assert entries(r) == []     # parts wait in Redis, nothing is announced yet
    assert r.exists("hark:{0}:concat:" + r.zrange("hark:{0}:concat:pending", 0, -1)[0])
    [(_, _, msg)] = wait_for(lambda: entries(r, "message.received"), timeout=10,
                             what="the incomplete message")
    assert msg["text"] == "My router since Monday."
    assert msg["concat"] == {"parts": 3, "incomplete": True, "missing": [2]}
    assert msg["provider_message_id"] == "concat:447700900002:9"
    assert r.zcard("hark:{0}:concat:pending") == 0
    # The late part is a duplicate of a message already filed.
    late = {"msisdn": "447700900002", "to": "447700900000", "messageId": "0B00000000000002",
            "text": "has been down ", "type": "text", "message-timestamp": "2020-01-01 12:00:00",
            "concat": "true", "concat-ref": "9", "concat-total": "3", "concat-part": "2"}
    assert vonage_post(h, "/hooks/vsms", vonage_sign(late, VONAGE_SECRET))[0] == 200
    assert len(entries(r, "message.received")) == 1


def test_rate_limit_per_address_answers_429(redis_server, start_harkd):
    conf = base_config(free_port(), redis_server.port, channels()).replace(
        "drain_timeout = 10s\n", "drain_timeout = 10s\nrate_limit = 1\nrate_burst = 3\n").replace(
        "workers = 2", "workers = 1")
    h = start_harkd(conf, env=ENV)
    statuses = [post(h, "/hooks/sms", sms(f"SM{i:032d}"), TOKEN)[0] for i in range(5)]
    assert statuses[:3] == [200, 200, 200]
    assert 429 in statuses[3:]
    stored = redis_server.client().xlen("hark:{0}:events")
    assert stored == statuses.count(200)
    # Health checks are never limited.
    assert urllib.request.urlopen(h.url + "/healthz").status == 200
    try:
        urllib.request.urlopen(h.url + "/nope")
        raise AssertionError("expected an error")
    except urllib.error.HTTPError as e:
        assert e.code in (404, 429)
