"""End to end: X Account Activity API webhooks (CRC, DMs, mentions) through harkd into
the Redis contract v1."""
import json
import os

import pytest

from conftest import VECTORS, base_config, free_port
from signers import (fast_fixture, module_stack, assert_one_event_per_message, deep, derive_id, dumps, event_data, events,
                     inject_outbound, load, request, selfcheck_vectors, stored,
                     x_hmac_b64, x_post)

SECRET = "it-x-consumer-secret-abcdefghijklmnopqrstuvwxyz"
PATH = "/hooks/x-brand"
US = "4337869213"
CUSTOMER = "3001969357"


def vector(name):
    with open(os.path.join(VECTORS, "signatures.json")) as f:
        return next(v for v in json.load(f) if v["provider"] == "x" and v["name"] == name)


def x_config(rport):
    return base_config(free_port(), rport,
                       f"[channel.x-brand]\ntype = x\nconsumer_secret = ${{X_SECRET}}\nuser_id = {US}\n\n"
                       "[channel.x-any]\ntype = x\nconsumer_secret = ${X_VECTOR_SECRET}\n")


X_ENV = {"X_SECRET": SECRET, "X_VECTOR_SECRET": vector("CRC response_token")["secret"]}


@pytest.fixture
def harkd(redis_server, start_harkd):
    return start_harkd(x_config(redis_server.port), env=X_ENV)


stack = module_stack(x_config, X_ENV)
fast = fast_fixture()


def post(harkd, body, **kw):
    return x_post(harkd, PATH, body, SECRET, **kw)


def test_signer_matches_shared_vectors():
    assert selfcheck_vectors("x") >= 2


# --- CRC ---------------------------------------------------------------------

def test_crc_answers_the_response_token(fast):
    harkd, redis_server = fast
    status, body, headers = request(harkd, PATH, method="GET", query={"crc_token": "challenge-123"})
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"response_token": x_hmac_b64(SECRET, b"challenge-123")}
    assert redis_server.stored() == 0


def test_crc_matches_the_shared_vector(fast):
    harkd, _ = fast
    v = vector("CRC response_token")
    status, body, _ = request(harkd, "/hooks/x-any", method="GET", query={"crc_token": v["signed_input"]})
    assert status == 200
    assert json.loads(body)["response_token"] == v["expected_header_value"]


def test_crc_token_is_percent_decoded_before_hashing(fast):
    harkd, _ = fast
    token = "a+b/c=d&e f"
    status, body, _ = request(harkd, PATH, method="GET", query={"crc_token": token})
    assert status == 200
    assert json.loads(body)["response_token"] == x_hmac_b64(SECRET, token.encode())


@pytest.mark.parametrize("query", ["", "crc_token=", "other=1", "crc_token=" + "a" * 257])
def test_crc_without_usable_token_is_400(fast, query):
    harkd, redis_server = fast
    status, body, _ = request(harkd, PATH, method="GET", query=query)
    assert status == 400
    assert "response_token" not in body
    assert redis_server.stored() == 0


def test_body_signature_vector_is_accepted(harkd, redis_server):
    v = vector("POST body signature")
    status, _, _ = x_post(harkd, "/hooks/x-any", v["signed_input"].encode(), v["secret"],
                          signature=v["expected_header_value"])
    assert status == 200
    assert redis_server.stored() == 0   # an empty event array


# --- the whole contract --------------------------------------------------------

def test_dm_fills_the_whole_contract(harkd, redis_server):
    r = redis_server.client()
    status, body, _ = post(harkd, load("x", "dm-inbound.json"))
    assert (status, body) == (200, "")
    [(etype, fields, data)] = event_data(r)
    assert etype == "message.received" and fields["v"] == "1" and fields["conversation"] == "opened"
    assert data["id"] == fields["message_id"] == derive_id("x_dm", "x-brand", "1100000000000000001")
    assert (data["v"], data["channel"], data["provider"], data["account"], data["direction"]) == \
        (1, "x_dm", "x", "x-brand", "inbound")
    assert data["from"] == {"id": CUSTOMER, "name": "Jordan Brinks", "handle": "furiouscamper"}
    assert data["to"]["id"] == US
    assert data["text"] == data["reply_text"] == "My order #123 is late ¿dónde está?"
    assert data["sent_at"] == 1700000000123
    assert data["status"] == "received" and data["error"] is None and data["attachments"] == []
    assert list(data)[-4:] == ["status", "error", "conversation_id", "contact_id"]
    assert stored(r, data["id"]) == data
    conv = r.hgetall(f"hark:{{0}}:conv:{data['conversation_id']}")
    assert (conv["channel"], conv["account"], conv["thread_key"]) == ("x_dm", "x-brand", CUSTOMER)
    assert conv["contact_id"] == data["contact_id"] and conv["message_count"] == "1"
    assert r.lrange(f"hark:{{0}}:conv:{data['conversation_id']}:messages", 0, -1) == [data["id"]]
    contact = r.hgetall(f"hark:{{0}}:contact:{data['contact_id']}")
    assert contact["x"] == CUSTOMER and contact["name"] == "Jordan Brinks"
    assert r.get(f"hark:{{0}}:ident:x:{CUSTOMER}") == data["contact_id"]


def test_mention_and_reply_thread_into_one_conversation(harkd, redis_server):
    r = redis_server.client()
    assert post(harkd, load("x", "tweet-mention.json"))[0] == 200
    assert post(harkd, load("x", "tweet-reply-to-us.json"))[0] == 200
    evs = event_data(r)
    by = {d["provider_message_id"]: d for _, _, d in evs}
    mention = by["1200000000000000001"]
    assert (mention["channel"], mention["direction"]) == ("x_mention", "inbound")
    assert mention["text"] == "@Harris_0ff my package never arrived"
    assert mention["sent_at"] == 1700000000000
    conv = r.hgetall(f"hark:{{0}}:conv:{mention['conversation_id']}")
    assert conv["thread_key"] == f"tweet:1200000000000000001|{CUSTOMER}"
    reply = by["1200000000000000003"]
    assert reply["thread"]["in_reply_to_status_id"] == "1200000000000000002"
    # The DM and mention channels of one user are one contact.
    assert reply["contact_id"] == mention["contact_id"]
    assert_one_event_per_message(r)


def test_dm_and_mention_batch_in_one_request(harkd, redis_server):
    r = redis_server.client()
    assert post(harkd, load("x", "multi.json"))[0] == 200
    evs = event_data(r)
    assert sorted((d["channel"], d["text"]) for _, _, d in evs) == \
        [("x_dm", "one"), ("x_dm", "two"), ("x_mention", "@Harris_0ff hello?")]
    assert len({d["contact_id"] for _, _, d in evs}) == 1
    assert len({d["conversation_id"] for _, _, d in evs}) == 2


def test_dm_media_becomes_an_attachment(harkd, redis_server):
    assert post(harkd, load("x", "dm-media.json"))[0] == 200
    [(_, _, data)] = event_data(redis_server.client())
    assert data["text"] == "See the damage"
    [att] = data["attachments"]
    assert att["file_id"] == "1100000000000000900" and att["url"].startswith("https://ton.twitter.com/")


@pytest.mark.parametrize("name", ["favorite.json", "follow.json", "dm-typing.json", "tweet-unrelated.json",
                                  "tweet-retweet.json", "dm-mark-read-by-us.json", "other-account.json"])
def test_skipped_events_answer_200_and_store_nothing(fast, name):
    harkd, redis_server = fast
    assert post(harkd, load("x", name))[:2] == (200, "")
    assert redis_server.stored() == 0


def test_redelivery_is_deduplicated(harkd, redis_server):
    for _ in range(3):
        assert post(harkd, load("x", "dm-inbound.json"))[0] == 200
    assert len(events(redis_server.client())) == 1


def test_outbound_dm_echo_lands_in_the_customers_conversation(harkd, redis_server):
    r = redis_server.client()
    assert post(harkd, load("x", "dm-inbound.json"))[0] == 200
    assert post(harkd, load("x", "dm-outbound.json"))[0] == 200
    [(t1, _, inbound), (t2, _, out)] = event_data(r)
    assert (t1, t2) == ("message.received", "message.sent")
    assert out["direction"] == "outbound" and out["to"]["id"] == CUSTOMER
    assert out["conversation_id"] == inbound["conversation_id"]


# --- statuses and removals -------------------------------------------------------

def _read_by_customer(last_read):
    return {"for_user_id": US, "direct_message_mark_read_events": [{
        "created_timestamp": "1700000500000", "sender_id": CUSTOMER,
        "target": {"recipient_id": US}, "last_read_event_id": last_read}]}


def test_read_receipt_for_unknown_message_stores_nothing(harkd, redis_server):
    assert post(harkd, _read_by_customer("1100000000000000777"))[:2] == (200, "")
    assert redis_server.stored() == 0


def test_read_receipt_marks_our_dm_read(harkd, redis_server):
    r = redis_server.client()
    assert post(harkd, load("x", "dm-inbound.json"))[0] == 200
    [(_, _, inbound)] = event_data(r)
    out = inject_outbound(r, "x_dm", "x", "x-brand", "1100000000000000999", CUSTOMER,
                          inbound["conversation_id"], inbound["contact_id"], our_id=US)
    assert post(harkd, _read_by_customer("1100000000000000999"))[0] == 200
    assert stored(r, out)["status"] == "read"
    [(t, f, d)] = event_data(r)[1:]
    assert t == "message.status" and f["message_id"] == out and d["status"] == "read"
    assert f["conversation_id"] == inbound["conversation_id"]
    assert d["provider_message_id"] == "1100000000000000999"
    assert post(harkd, _read_by_customer("1100000000000000999"))[0] == 200
    assert len(events(r)) == 2


def test_tweet_delete_removes_the_stored_mention(harkd, redis_server):
    r = redis_server.client()
    assert post(harkd, load("x", "tweet-mention.json"))[0] == 200
    assert post(harkd, load("x", "tweet-delete.json"))[0] == 200
    types = [f["type"] for _, f in events(r)]
    assert types == ["message.received", "message.removed"]
    msg = stored(r, derive_id("x_mention", "x-brand", "1200000000000000001"))
    assert msg["extra"]["removed_at"] == 1700000900000
    assert events(r)[1][1]["message_id"] == msg["id"]


# --- bad signatures and hostile bodies ---------------------------------------------

@pytest.mark.parametrize("make_sig", [
    lambda b: "",
    lambda b: x_hmac_b64("wrong", b),
    lambda b: x_hmac_b64(SECRET, b)[7:],
    lambda b: x_hmac_b64(SECRET, b + b"\n"),
    lambda b: x_hmac_b64(SECRET, b).replace("sha256=", "sha1="),
    lambda b: x_hmac_b64(SECRET, b)[:-4],
    lambda b: "sha256=" + "A" * 44,
])
def test_bad_or_missing_signature_stores_nothing(fast, make_sig):
    harkd, redis_server = fast
    body = load("x", "dm-inbound.json")
    assert post(harkd, body, signature=make_sig(body))[0] == 403
    assert redis_server.stored() == 0


def test_other_methods_get_405(harkd):
    assert request(harkd, PATH, b"{}", method="PUT")[0] == 405


def _dm(text="hi", sender=CUSTOMER, eid="1100000000000000050"):
    return {"type": "message_create", "id": eid, "created_timestamp": "1700000000000",
            "message_create": {"target": {"recipient_id": US}, "sender_id": sender,
                               "message_data": {"text": text}}}


def _mutated_dm(**change):
    ev = _dm()
    for k, v in change.items():
        if k == "text":
            ev["message_create"]["message_data"]["text"] = v
        elif k == "sender":
            ev["message_create"]["sender_id"] = v
        elif k == "drop":
            del ev[v]
        else:
            ev[k] = v
    return dumps({"for_user_id": US, "direct_message_events": [ev]})


@pytest.mark.parametrize("body", [
    b"",
    b"{",
    b"[]",
    b'{"direct_message_events":[]}',
    b'{"for_user_id":4337869213,"direct_message_events":[]}',
    dumps({"for_user_id": US, "direct_message_events": {}}),
    dumps({"for_user_id": US, "direct_message_events": [_dm(eid=f"11{i:017d}") for i in range(101)]}),
    _mutated_dm(text=5),
    _mutated_dm(sender=3001969357.5),
    _mutated_dm(drop="id"),
    _mutated_dm(drop="message_create"),
    _mutated_dm(id=["1"]),
    dumps({"for_user_id": US, "direct_message_events": [_dm(), "junk"]}),
    dumps({"for_user_id": US, "direct_message_events": [_dm()]}).replace(b'"hi"', b'"h\xffi"'),
    dumps({"for_user_id": US, "direct_message_events": [_dm()]}).replace(b'"hi"', b'"h\\u0000i"'),
    b'{"for_user_id":"4337869213","direct_message_events":' + deep(50) + b"}",
], ids=["empty", "truncated", "array", "no-for-user", "for-user-int", "events-object", "101-events",
        "text-int", "sender-float", "no-id", "no-message-create", "id-array", "junk-event",
        "invalid-utf8", "nul", "deep"])
def test_malformed_payloads_get_400_and_store_nothing(fast, body):
    harkd, redis_server = fast
    status, _, _ = post(harkd, body)
    assert status == 400
    assert redis_server.stored() == 0


def test_shared_vector_dm_payload_is_accepted(harkd, redis_server):
    with open(os.path.join(VECTORS, "payloads", "x-dm-event.corrected.composed.json"), "rb") as f:
        body = f.read()
    payload = json.loads(body)
    status, _, _ = x_post(harkd, "/hooks/x-any", body, vector("CRC response_token")["secret"])
    assert status == 200
    evs = event_data(redis_server.client())
    want = [e["id"] for e in payload.get("direct_message_events", [])
            if e.get("type") == "message_create"]
    assert want and sorted(d["provider_message_id"] for _, _, d in evs) == sorted(want)
