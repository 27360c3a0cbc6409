"""End to end: signed Vonage SMS webhooks (inbound, concatenated, DLRs) through harkd into
the Redis contract v1, plus one customer meeting over Vonage SMS and WhatsApp Cloud."""
import time
import urllib.parse

import pytest

from conftest import base_config, free_port
from signers import (fast_fixture, module_stack, assert_one_event_per_message, derive_id, event_data, events,
                     inject_outbound, load, load_json, meta_post, request, selfcheck_vectors,
                     stored, vonage_post, vonage_sig, vonage_sign)

SECRET = "it-vonage-signature-secret"
META_SECRET = "it-meta-secret-for-vonage"
PATH = "/hooks/sms-vonage"
METHODS = ["md5hash", "md5", "sha1", "sha256", "sha512"]


def vonage_config(rport):
    extra = "[channel.sms-vonage]\ntype = vonage\nsignature_secret = ${VONAGE_SECRET}\n\n"
    for m in METHODS:
        extra += (f"[channel.vonage-{m}]\ntype = vonage\nsignature_secret = ${{VONAGE_SECRET}}\n"
                  f"signature_method = {m}\n\n")
    extra += ("[channel.meta-main]\ntype = meta\napp_secret = ${META_SECRET}\n"
              "verify_token = ${META_SECRET}\n")
    return base_config(free_port(), rport, extra)


VONAGE_ENV = {"VONAGE_SECRET": SECRET, "META_SECRET": META_SECRET}


@pytest.fixture
def harkd(redis_server, start_harkd):
    return start_harkd(vonage_config(redis_server.port), env=VONAGE_ENV)


stack = module_stack(vonage_config, VONAGE_ENV)
fast = fast_fixture()


def form(name):
    return dict(urllib.parse.parse_qsl(load("vonage", name).decode(), keep_blank_values=True))


def send(harkd, params, method="md5hash", path=PATH, as_json=False, http="POST", **kw):
    return vonage_post(harkd, path, vonage_sign(params, SECRET, method, **kw), as_json=as_json,
                       method=http)


def sms(message_id, text="Hello world", msisdn="447700900001", **extra):
    p = {"msisdn": msisdn, "to": "447700900000", "messageId": message_id, "text": text,
         "type": "text", "keyword": text.split()[0].upper() if text else "",
         "message-timestamp": "2020-01-01 12:00:00"}
    p.update(extra)
    return p


def test_signer_matches_shared_vectors():
    assert selfcheck_vectors("vonage") >= 5


def test_inbound_sms_fills_the_whole_contract(harkd, redis_server):
    r = redis_server.client()
    status, body, _ = send(harkd, form("inbound-sms.form"))
    assert (status, body) == (200, "")
    [(etype, fields, data)] = event_data(r)
    assert etype == "message.received" and fields["v"] == "1" and fields["conversation"] == "opened"
    assert data["id"] == fields["message_id"] == derive_id("sms", "sms-vonage", "0A0000000123ABCD1")
    assert (data["v"], data["channel"], data["provider"], data["account"], data["direction"]) == \
        (1, "sms", "vonage", "sms-vonage", "inbound")
    assert data["from"]["id"] == "+447700900001" and data["to"]["id"] == "+447700900000"
    assert data["text"] == data["reply_text"] == "Hello world"
    assert data["provider_message_id"] == "0A0000000123ABCD1"
    assert data["sent_at"] == 1577880000000
    assert data["extra"]["keyword"] == "HELLO" and data["extra"]["type"] == "text"
    assert data["status"] == "received" and data["error"] is None and data["attachments"] == []
    assert list(data)[-4:] == ["status", "error", "conversation_id", "contact_id"]
    assert stored(r, data["id"]) == data
    conv = r.hgetall(f"hark:{{0}}:conv:{data['conversation_id']}")
    assert (conv["channel"], conv["account"], conv["status"]) == ("sms", "sms-vonage", "open")
    assert conv["thread_key"] == "+447700900001|+447700900000"
    assert conv["contact_id"] == data["contact_id"] and conv["message_count"] == "1"
    assert r.lrange(f"hark:{{0}}:conv:{data['conversation_id']}:messages", 0, -1) == [data["id"]]
    assert r.hget(f"hark:{{0}}:contact:{data['contact_id']}", "phone") == "+447700900001"
    assert r.get("hark:{0}:ident:phone:+447700900001") == data["contact_id"]
    assert r.lrange(f"hark:{{0}}:contact:{data['contact_id']}:conversations", 0, -1) == \
        [data["conversation_id"]]


def test_json_body_and_get_query_are_accepted(harkd, redis_server):
    r = redis_server.client()
    assert send(harkd, load_json("vonage", "inbound-unicode.json"), as_json=True)[0] == 200
    assert send(harkd, sms("0A00000000000GET1", "Via GET"), http="GET")[0] == 200
    evs = event_data(r)
    assert len(evs) == 2
    assert evs[1][2]["text"] == "Via GET"
    uni = load_json("vonage", "inbound-unicode.json")
    assert evs[0][2]["text"] == uni["text"] and evs[0][2]["provider_message_id"] == uni["messageId"]


@pytest.mark.parametrize("method", METHODS)
def test_every_signature_method(fast, method):
    harkd, redis_server = fast
    path = f"/hooks/vonage-{method}"
    params = sms("0A000000000" + method.upper()[:6].ljust(6, "0"), f"signed {method}")
    assert send(harkd, params, method, path=path)[0] == 200
    # Uppercase hex (the Ruby SDK) is accepted for the HMAC methods too.
    signed = vonage_sign(sms("0B000000000" + method.upper()[:6].ljust(6, "0")), SECRET, method)
    signed["sig"] = signed["sig"].upper()
    assert vonage_post(harkd, path, signed)[0] == 200
    # Signed with another method than configured: refused.
    other = METHODS[(METHODS.index(method) + 1) % len(METHODS)]
    assert send(harkd, sms("0C0000000000001"), other, path=path)[0] == 403
    evs = event_data(redis_server.client())
    assert [d["account"] for _, _, d in evs] == [f"vonage-{method}"] * 2


def _resigned(params, **change):
    signed = vonage_sign(params, SECRET)
    for k, v in change.items():
        signed[k.replace("_", "-")] = v
    return signed


@pytest.mark.parametrize("mutate", [
    lambda p: {k: v for k, v in vonage_sign(p, SECRET).items() if k != "sig"},
    lambda p: dict(vonage_sign(p, SECRET), sig=""),
    lambda p: vonage_sign(p, "wrong-secret"),
    lambda p: dict(vonage_sign(p, SECRET), text="Hello w0rld"),
    lambda p: dict(vonage_sign(p, SECRET), extra="added"),
    lambda p: vonage_sign(p, SECRET, ts=int(time.time()) - 600),
    lambda p: vonage_sign(p, SECRET, ts=int(time.time()) + 600),
    lambda p: vonage_sign(p, SECRET, ts="soon"),
    lambda p: (lambda s: dict(s, sig=s["sig"][:-1]))(vonage_sign(p, SECRET)),
    lambda p: (lambda q: dict(q, sig=vonage_sig(q, SECRET)))({k: v for k, v in p.items()}),
], ids=["no-sig", "empty-sig", "wrong-secret", "tampered", "unsigned-param", "stale",
        "future", "timestamp-not-numeric", "short-sig", "no-timestamp"])
def test_bad_signatures_store_nothing(fast, mutate):
    harkd, redis_server = fast
    status, _, _ = vonage_post(harkd, PATH, mutate(form("inbound-sms.form")))
    assert status == 403
    assert redis_server.stored() == 0


def test_other_methods_get_405(fast):
    harkd, redis_server = fast
    assert request(harkd, PATH, b"", method="PUT")[0] == 405
    assert redis_server.stored() == 0


def test_redelivery_is_deduplicated(harkd, redis_server):
    for _ in range(3):
        # Vonage retries with a new timestamp (and so a new sig): still one message.
        assert send(harkd, form("inbound-sms.form"))[0] == 200
    assert len(events(redis_server.client())) == 1


def test_binary_sms_keeps_data_and_udh(harkd, redis_server):
    assert send(harkd, form("inbound-binary.form"))[0] == 200
    [(_, _, data)] = event_data(redis_server.client())
    assert data["extra"]["type"] == "binary" and data["extra"]["data"] == "0102AABBCC"
    assert data["extra"]["udh"] == "050003CC0201"


def _raw(harkd, body, ctype="application/x-www-form-urlencoded"):
    return request(harkd, PATH, body, headers={"Content-Type": ctype})


def _signed_form_bytes(params, replace=None):
    signed = vonage_sign(params, SECRET)
    body = urllib.parse.urlencode(signed).encode()
    if replace:
        body = body.replace(*replace)
    return body


@pytest.mark.parametrize("params", [
    sms("0A01", msisdn="not-a-phone"),
    sms("0A02", msisdn="00"),
    {k: v for k, v in sms("0A03").items() if k != "text"},
    {k: v for k, v in sms("0A04").items() if k != "msisdn"},
    sms("0A05", **{"message-timestamp": "2020-13-45 99:00:00"}),
    sms("0A06", concat="true", **{"concat-ref": "7", "concat-total": "2", "concat-part": "3"}),
    sms("0A07", concat="true", **{"concat-ref": "7", "concat-total": "300", "concat-part": "1"}),
    sms("0A08", concat="true", **{"concat-ref": "7", "concat-total": "2", "concat-part": "x"}),
    dict({k: v for k, v in sms("0A09").items() if k != "text"}, type="binary", data="zz"),
    {"msisdn": "447700900000", "to": "447700900001", "messageId": "0B01", "status": "exploded",
     "message-timestamp": "2020-01-01 12:00:00"},
    dict(sms("0A10"), text="x" * 9000),
    dict(sms("0A11"), **{f"p{i}": "v" for i in range(64)}),
], ids=["msisdn-text", "msisdn-00", "no-text", "no-msisdn", "bad-message-timestamp",
        "part-gt-total", "total-300", "part-not-number", "binary-not-hex", "dlr-unknown-status",
        "value-9k", "65-params"])
def test_malformed_requests_get_400_and_store_nothing(fast, params):
    harkd, redis_server = fast
    status, _, _ = send(harkd, params)
    assert status == 400
    assert redis_server.stored() == 0


@pytest.mark.parametrize("body,ctype,want", [
    (None, "text/plain", 415),
    ("dup", "application/x-www-form-urlencoded", 400),
    ("utf8", "application/x-www-form-urlencoded", 400),
    ("pct", "application/x-www-form-urlencoded", 400),
    (b'{"msisdn":{"a":1}}', "application/json", 400),
    (b'["msisdn"]', "application/json", 400),
    (b'{"msisdn":"447700900001",', "application/json", 400),
])
def test_hostile_encodings_store_nothing(fast, body, ctype, want):
    harkd, redis_server = fast
    if body is None:
        body = _signed_form_bytes(sms("0A20"))
    elif body == "dup":
        body = _signed_form_bytes(sms("0A21")) + b"&text=again"
    elif body == "utf8":
        body = _signed_form_bytes(sms("0A22", "caf\u00e9"), replace=(b"caf%C3%A9", b"caf%C3%28"))
    elif body == "pct":
        body = _signed_form_bytes(sms("0A23")) + b"&x=%G1"
    status, _, _ = _raw(harkd, body, ctype)
    assert status == want
    assert redis_server.stored() == 0


# --- delivery receipts ------------------------------------------------------------

def test_dlr_for_unknown_message_stores_nothing(harkd, redis_server):
    for name in ("dlr-buffered.form", "dlr-failed.form"):
        assert send(harkd, form(name))[:2] == (200, ""), name
    assert send(harkd, load_json("vonage", "dlr-delivered.json"), as_json=True)[0] == 200
    assert redis_server.stored() == 0


def test_dlr_updates_our_sent_message(harkd, redis_server):
    r = redis_server.client()
    assert send(harkd, sms("0A0000000099AAAA", msisdn="447700900000"))[0] == 200
    [(_, _, inbound)] = event_data(r)
    out = inject_outbound(r, "sms", "vonage", "sms-vonage", "0A0000001234567B", "+447700900000",
                          inbound["conversation_id"], inbound["contact_id"], our_id="AcmeInc")
    assert send(harkd, load_json("vonage", "dlr-delivered.json"), as_json=True)[0] == 200
    msg = stored(r, out)
    assert msg["status"] == "delivered" and msg["error"] is None
    [(t, f, d)] = event_data(r)[1:]
    assert t == "message.status" and f["message_id"] == out and d["status"] == "delivered"
    assert f["conversation_id"] == d["conversation_id"] == inbound["conversation_id"]
    assert (d["provider_message_id"], d["channel"], d["account"]) == \
        ("0A0000001234567B", "sms", "sms-vonage")
    # A later "buffered" (mapped to sent) is not a step forward; a redelivery neither.
    late = dict(form("dlr-buffered.form"), messageId="0A0000001234567B")
    assert send(harkd, late)[0] == 200
    assert send(harkd, load_json("vonage", "dlr-delivered.json"), as_json=True)[0] == 200
    assert len(events(r)) == 2


def test_failed_dlr_records_the_reason(harkd, redis_server):
    r = redis_server.client()
    out = inject_outbound(r, "sms", "vonage", "sms-vonage", "0B00000127FDBC63", "+447700900000",
                          "a" * 32, "b" * 32, our_id="Nexmo CLI")
    assert send(harkd, form("dlr-failed.form"))[0] == 200
    msg = stored(r, out)
    assert msg["status"] == "failed" and "err-code 6" in msg["error"]
    [(t, f, d)] = event_data(r)
    assert t == "message.status" and d["status"] == "failed" and d["error"] == msg["error"]
    assert f["conversation_id"] == "a" * 32


# --- one customer, one contact -----------------------------------------------------

def test_vonage_sms_and_whatsapp_cloud_are_one_contact_two_conversations(harkd, redis_server):
    r = redis_server.client()
    assert send(harkd, sms("0A0000000777AAAA", "Hola por SMS", msisdn="16505551234"))[0] == 200
    assert meta_post(harkd, "/hooks/meta-main", load("meta", "whatsapp-text.json"), META_SECRET)[0] == 200
    [(_, _, by_sms), (_, _, by_wa)] = event_data(r)
    assert (by_sms["channel"], by_wa["channel"]) == ("sms", "whatsapp")
    assert by_sms["contact_id"] == by_wa["contact_id"]
    assert by_sms["conversation_id"] != by_wa["conversation_id"]
    contact = by_sms["contact_id"]
    assert r.get("hark:{0}:ident:phone:+16505551234") == contact
    assert r.lrange(f"hark:{{0}}:contact:{contact}:conversations", 0, -1) == \
        [by_sms["conversation_id"], by_wa["conversation_id"]]
    assert r.hget(f"hark:{{0}}:contact:{contact}", "name") == "Sheena Nelson"
    assert len(list(r.scan_iter("hark:{0}:contact:*"))) == 2   # the hash and its list


# --- concatenated SMS ----------------------------------------------------------------

def test_concatenated_sms_is_reassembled_in_order(harkd, redis_server):
    r = redis_server.client()
    parts = {1: "The parcel arrived ", 2: "but the box was ", 3: "crushed."}
    for n in (3, 1, 2):
        params = sms(f"0A00000000CC000{n}", parts[n], concat="true",
                     **{"concat-ref": "42", "concat-total": "3", "concat-part": str(n)})
        assert send(harkd, params)[0] == 200
    received = [d for t, _, d in event_data(r) if t == "message.received"]
    assert len(received) == 1, [d["text"] for d in received]
    [msg] = received
    assert msg["text"] == "The parcel arrived but the box was crushed."
    assert msg["provider_message_id"] == "concat:447700900001:42"
    assert len(events(r)) == 1
    # A redelivered part changes nothing.
    again = sms("0A00000000CC0002", parts[2], concat="true",
                **{"concat-ref": "42", "concat-total": "3", "concat-part": "2"})
    assert send(harkd, again)[0] == 200
    assert len(events(r)) == 1
    assert_one_event_per_message(r)
