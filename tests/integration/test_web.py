"""End to end: signed web form / chat widget submissions through harkd into the Redis
contract v1 (docs/adapters/web.md)."""
import json
import time

import pytest

from conftest import base_config, free_port
from signers import (fast_fixture, module_stack, assert_one_event_per_message, deep, derive_id, dumps, event_data, events,
                     load, request, stored, web_post, web_signature)

SECRET = "whsec_it_0123456789"
PATH = "/hooks/site"


def web_config(rport):
    return base_config(free_port(), rport,
                       "[channel.site]\ntype = web\nsecret = ${WEB_SECRET}\nmax_skew = 5m\n")


@pytest.fixture
def harkd(redis_server, start_harkd):
    return start_harkd(web_config(redis_server.port), env={"WEB_SECRET": SECRET})


stack = module_stack(web_config, {"WEB_SECRET": SECRET})
fast = fast_fixture()


def post(harkd, body, **kw):
    return web_post(harkd, PATH, body, SECRET, **kw)


def test_signer_matches_the_documented_example():
    # docs/adapters/web.md: secret whsec_test_123, ts 1700000000, doc-example.json.
    body = load("web", "doc-example.json").rstrip(b"\n")
    assert web_signature("whsec_test_123", 1700000000, body) == \
        "sha256=543f8cc0e6b1c0a09dfdd5247745ca8243063bdd2a6d496c2d88c47e265a3191"


def test_submission_fills_the_whole_contract(harkd, redis_server):
    r = redis_server.client()
    ts = int(time.time())
    status, body, headers = post(harkd, load("web", "submission.json"), ts=ts)
    assert status == 200 and json.loads(body) == {"ok": True}
    assert headers["Content-Type"].startswith("application/json")

    [(etype, fields, data)] = event_data(r)
    assert etype == "message.received" and fields["v"] == "1" and fields["conversation"] == "opened"
    pmid = "f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    assert data["id"] == fields["message_id"] == derive_id("web", "site", pmid)
    assert (data["v"], data["channel"], data["provider"], data["account"], data["direction"]) == \
        (1, "web", "generic", "site", "inbound")
    assert data["from"]["id"] == "ana.garcia@example.com" and data["from"]["name"] == "Ana García"
    assert data["subject"] == "Order #1234 has not arrived"
    assert data["text"].startswith("Hello, my order #1234")
    assert data["provider_message_id"] == pmid
    assert data["sent_at"] == ts * 1000
    assert data["thread"]["conversation"] == "widget-7f3a9c"
    assert data["extra"]["page_url"] == "https://shop.example.com/orders/1234"
    assert data["attachments"] == [
        {"url": "https://uploads.example.com/u/9f8e7d/receipt.pdf", "content_type": "application/pdf",
         "filename": "receipt.pdf", "size": 48213},
        {"url": "https://uploads.example.com/u/9f8e7d/photo.jpg", "size": None}]
    assert data["status"] == "received" and data["error"] is None
    assert list(data)[-4:] == ["status", "error", "conversation_id", "contact_id"]
    assert stored(r, data["id"]) == data

    conv = r.hgetall(f"hark:{{0}}:conv:{data['conversation_id']}")
    assert (conv["channel"], conv["account"], conv["thread_key"]) == ("web", "site", "widget-7f3a9c")
    assert conv["contact_id"] == data["contact_id"] and conv["message_count"] == "1"
    assert conv["subject"] == "Order #1234 has not arrived"
    contact = r.hgetall(f"hark:{{0}}:contact:{data['contact_id']}")
    assert contact["email"] == "ana.garcia@example.com" and contact["phone"] == "+34612345678"
    assert contact["name"] == "Ana García"
    assert r.get("hark:{0}:ident:email:ana.garcia@example.com") == data["contact_id"]
    assert r.get("hark:{0}:ident:phone:+34612345678") == data["contact_id"]
    assert r.lrange(f"hark:{{0}}:contact:{data['contact_id']}:conversations", 0, -1) == \
        [data["conversation_id"]]


def test_phone_only_joins_the_same_contact_in_another_conversation(harkd, redis_server):
    r = redis_server.client()
    assert post(harkd, load("web", "submission.json"))[0] == 200
    assert post(harkd, load("web", "phone-only.json"))[0] == 200
    [(_, _, first), (_, _, second)] = event_data(r)
    assert second["from"]["id"] == "+34612345678"
    assert second["contact_id"] == first["contact_id"]
    assert second["conversation_id"] != first["conversation_id"]
    assert r.hget(f"hark:{{0}}:conv:{second['conversation_id']}", "thread_key") == "+34612345678"


def test_messages_without_conversation_group_by_customer(harkd, redis_server):
    r = redis_server.client()
    for i in range(3):
        body = {"id": f"m{i}", "email": "Bob@Example.org", "text": f"message {i}"}
        assert post(harkd, body)[0] == 200
    evs = event_data(r)
    assert len({d["conversation_id"] for _, _, d in evs}) == 1
    conv = r.hgetall(f"hark:{{0}}:conv:{evs[0][2]['conversation_id']}")
    assert conv["thread_key"] == "bob@example.org" and conv["message_count"] == "3"
    assert [f.get("conversation") for _, f, _ in evs] == ["opened", None, None]


def test_redelivery_is_deduplicated(harkd, redis_server):
    r = redis_server.client()
    for _ in range(3):
        status, body, _ = post(harkd, load("web", "doc-example.json"))
        assert status == 200 and json.loads(body) == {"ok": True}
    assert len(events(r)) == 1
    # Same id, other text: still the stored message, unchanged.
    assert post(harkd, {"id": "c1", "email": "ana@example.com", "text": "changed"})[0] == 200
    assert len(events(r)) == 1
    assert stored(r, derive_id("web", "site", "c1"))["text"] == "Hola"


def test_uppercase_hex_signature_is_accepted(harkd, redis_server):
    body = load("web", "doc-example.json")
    ts = int(time.time())
    sig = "sha256=" + web_signature(SECRET, ts, body)[7:].upper()
    assert post(harkd, body, ts=ts, signature=sig)[0] == 200
    assert len(events(redis_server.client())) == 1


def _sig_cases():
    now = int(time.time())
    b = load("web", "doc-example.json")
    return [
        dict(signature=""),
        dict(timestamp_header=""),
        dict(signature=web_signature("wrong", now, b), ts=now),
        dict(signature="sha256=" + web_signature(SECRET, now, b)[7:][:-2], ts=now),
        dict(signature="sha1=" + web_signature(SECRET, now, b)[7:], ts=now),
        dict(signature=web_signature(SECRET, now, b)[7:], ts=now),
        dict(signature=web_signature(SECRET, now, b + b" "), ts=now),
        dict(signature=web_signature(SECRET, now + 1, b), ts=now),
        dict(ts=now - 3600),
        dict(ts=now + 3600),
        dict(ts=now, timestamp_header=f"{now}.5"),
        dict(ts=now, timestamp_header="soon"),
        dict(ts=now, timestamp_header=f"-{now}"),
    ]


@pytest.mark.parametrize("case", range(13), ids=[
    "no-signature", "no-timestamp", "wrong-secret", "short", "sha1-prefix", "no-prefix",
    "other-body", "other-timestamp", "stale", "future", "timestamp-fraction", "timestamp-word",
    "timestamp-negative"])
def test_bad_signatures_store_nothing(fast, case):
    harkd, redis_server = fast
    kw = _sig_cases()[case]
    status, _, _ = post(harkd, load("web", "doc-example.json"), **kw)
    assert status == 403
    assert redis_server.stored() == 0


def test_other_methods_get_405(fast):
    harkd, redis_server = fast
    assert request(harkd, PATH, method="GET")[0] == 405
    assert redis_server.stored() == 0


GOOD = {"id": "x1", "email": "ana@example.com", "text": "hi"}


def _with(**change):
    body = dict(GOOD)
    for k, v in change.items():
        if v is KeyError:
            body.pop(k, None)
        else:
            body[k] = v
    return dumps(body)


@pytest.mark.parametrize("body", [
    b"",
    b"{",
    b"[]",
    b'"text"',
    _with(id=KeyError),
    _with(id=""),
    _with(id="has space"),
    _with(id="x" * 129),
    _with(id=7),
    _with(text=KeyError),
    _with(text=""),
    _with(text=None),
    _with(text=["hi"]),
    _with(text="x" * (64 * 1024 + 1)),
    _with(email=KeyError),
    _with(email="not-an-email"),
    _with(email=KeyError, phone="12"),
    _with(email=KeyError, phone=34612345678),
    _with(name={"first": "Ana"}),
    _with(conversation="has space"),
    _with(attachments=[{"url": f"https://e.test/{i}"} for i in range(17)]),
    _with(attachments=[{"url": "ftp://e.test/a"}]),
    _with(attachments=[{"url": "https://e.test/a", "size": -1}]),
    _with(attachments=[{"content_type": "image/png"}]),
    _with(attachments={"url": "https://e.test/a"}),
    b'{"id":"x1","id":"x2","email":"ana@example.com","text":"hi"}',
    b'{"id":"x1","email":"ana@example.com","text":"h\xffi"}',
    b'{"id":"x1","email":"ana@example.com","text":"h\\u0000i"}',
    b'{"id":"x1","email":"ana@example.com","text":"hi","page_url":' + deep(40, "u") + b"}",
], ids=["empty", "truncated", "array", "string", "no-id", "empty-id", "id-space", "id-129",
        "id-int", "no-text", "empty-text", "null-text", "text-array", "text-64k+1", "no-email-no-phone",
        "bad-email", "bad-phone", "phone-int", "name-object", "conversation-space", "17-attachments",
        "attachment-ftp", "attachment-negative-size", "attachment-no-url", "attachments-object",
        "duplicate-key", "invalid-utf8", "nul", "deep"])
def test_malformed_bodies_get_400_and_store_nothing(fast, body):
    harkd, redis_server = fast
    status, _, _ = post(harkd, body)
    assert status in (400, 413) if len(body) > 60000 else status == 400
    assert redis_server.stored() == 0


def test_null_optional_members_count_as_absent(harkd, redis_server):
    body = dict(GOOD, name=None, subject=None, phone=None, conversation=None, attachments=None)
    assert post(harkd, body)[0] == 200
    [(_, _, data)] = event_data(redis_server.client())
    assert data["from"]["id"] == "ana@example.com" and data["attachments"] == []
    assert_one_event_per_message(redis_server.client())
