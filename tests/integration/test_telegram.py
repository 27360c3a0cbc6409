"""End to end: Telegram Bot API webhook updates through harkd into the Redis contract v1."""
import json

import pytest

from conftest import base_config, free_port
from signers import (fast_fixture, module_stack, assert_one_event_per_message, deep, derive_id, dumps, event_data, events,
                     load, load_json, request, stored, telegram_post)

SECRET = "it_tg-Secret_0123456789"
PATH = "/hooks/tg-support"
USER = "111222333"


def tg_config(rport):
    return base_config(free_port(), rport,
                       "[channel.tg-support]\ntype = telegram\nsecret_token = ${TG_SECRET}\n")


@pytest.fixture
def harkd(redis_server, start_harkd):
    return start_harkd(tg_config(redis_server.port), env={"TG_SECRET": SECRET})


stack = module_stack(tg_config, {"TG_SECRET": SECRET})
fast = fast_fixture()


def post(harkd, body, secret=SECRET):
    return telegram_post(harkd, PATH, body, secret)


def update(update_id, text="Hola", message_id=42, user=111222333, chat=None, **fields):
    msg = {"message_id": message_id,
           "from": {"id": user, "is_bot": False, "first_name": "Ana", "last_name": "García",
                    "username": "anag"},
           "chat": chat or {"id": user, "first_name": "Ana", "type": "private"},
           "date": 1700000000}
    if text is not None:
        msg["text"] = text
    msg.update(fields)
    return {"update_id": update_id, "message": msg}


def test_text_message_fills_the_whole_contract(harkd, redis_server):
    r = redis_server.client()
    status, body, _ = post(harkd, load("telegram", "message-text.json"))
    assert (status, body) == (200, "")

    [(etype, fields, data)] = event_data(r)
    assert etype == "message.received" and fields["v"] == "1" and fields["conversation"] == "opened"
    assert data["id"] == fields["message_id"] == derive_id("telegram", "tg-support", f"{USER}:42")
    assert (data["v"], data["channel"], data["provider"], data["account"], data["direction"]) == \
        (1, "telegram", "telegram", "tg-support", "inbound")
    assert data["from"] == {"id": USER, "name": "Ana García", "handle": "anag"}
    assert data["text"] == data["reply_text"] == "Hola, mi pedido no llegó 📦"
    assert data["provider_message_id"] == f"{USER}:42"
    assert data["sent_at"] == 1700000000000
    assert data["extra"]["event_id"] == "900001" and data["extra"]["chat_type"] == "private"
    assert data["thread"]["chat_id"] == USER or str(data["thread"]["chat_id"]) == USER
    assert data["status"] == "received" and data["error"] is None and data["attachments"] == []
    assert list(data)[-4:] == ["status", "error", "conversation_id", "contact_id"]
    assert stored(r, data["id"]) == data

    conv = r.hgetall(f"hark:{{0}}:conv:{data['conversation_id']}")
    assert (conv["channel"], conv["account"], conv["status"]) == ("telegram", "tg-support", "open")
    assert conv["thread_key"] == USER and conv["contact_id"] == data["contact_id"]
    assert conv["message_count"] == "1" and conv["last_inbound_pmid"] == f"{USER}:42"
    assert r.lrange(f"hark:{{0}}:conv:{data['conversation_id']}:messages", 0, -1) == [data["id"]]
    contact = r.hgetall(f"hark:{{0}}:contact:{data['contact_id']}")
    assert contact["telegram"] == USER and contact["name"] == "Ana García"
    assert r.get(f"hark:{{0}}:ident:telegram:{USER}") == data["contact_id"]
    assert r.lrange(f"hark:{{0}}:contact:{data['contact_id']}:conversations", 0, -1) == \
        [data["conversation_id"]]


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET[:-1], SECRET + "x", SECRET.upper()])
def test_bad_or_missing_secret_token_stores_nothing(fast, secret):
    harkd, redis_server = fast
    status, _, _ = post(harkd, load("telegram", "message-text.json"), secret=secret)
    assert status == 403
    assert redis_server.stored() == 0


def test_other_methods_get_405(fast):
    harkd, redis_server = fast
    status, _, _ = request(harkd, PATH, method="GET",
                           headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert status == 405
    assert redis_server.stored() == 0


def test_redelivery_is_deduplicated(harkd, redis_server):
    r = redis_server.client()
    for _ in range(3):
        assert post(harkd, load("telegram", "message-text.json"))[0] == 200
    assert len(events(r)) == 1
    # The same message under another update_id (Telegram retries keep it, but be strict)
    again = load_json("telegram", "message-text.json")
    again["update_id"] += 1000
    assert post(harkd, again)[0] == 200
    assert len(events(r)) == 1


def test_edited_message_changes_the_stored_text(harkd, redis_server):
    r = redis_server.client()
    assert post(harkd, load("telegram", "message-text.json"))[0] == 200
    msg_id = derive_id("telegram", "tg-support", f"{USER}:42")
    assert post(harkd, load("telegram", "edited-message.json"))[:2] == (200, "")
    types = [f["type"] for _, f in events(r)]
    assert types == ["message.received", "message.edited"]
    _, fields = events(r)[1]
    assert fields["message_id"] == msg_id
    msg = stored(r, msg_id)
    assert msg["text"] == msg["reply_text"] == "Hola, mi pedido #123 no llegó"
    assert msg["extra"]["edited_at"] == 1700000300000
    assert msg["attachments"] == []
    assert json.loads(fields["data"])["text"] == "Hola, mi pedido #123 no llegó"
    assert fields["conversation_id"] == msg["conversation_id"]
    # Redelivery of the same edit (same update_id): no second event.
    assert post(harkd, load("telegram", "edited-message.json"))[0] == 200
    assert len(events(r)) == 2
    conv = r.hgetall(f"hark:{{0}}:conv:{msg['conversation_id']}")
    assert conv["message_count"] == "1"


def test_edit_of_unknown_message_stores_no_message_and_no_event(harkd, redis_server):
    r = redis_server.client()
    assert post(harkd, load("telegram", "edited-message.json"))[0] == 200
    assert events(r) == []
    assert list(r.scan_iter("hark:{0}:msg:*")) == []
    assert list(r.scan_iter("hark:{0}:conv:*")) == []


def test_representative_message_types(harkd, redis_server):
    r = redis_server.client()
    for name in ("message-photo.json", "message-document.json", "message-voice.json",
                 "message-location.json", "message-contact.json", "message-group-reply.json",
                 "callback-query.json"):
        assert post(harkd, load("telegram", name))[0] == 200, name
    by = {d["provider_message_id"]: d for _, _, d in event_data(r)}

    photo = by[f"{USER}:43"]
    assert photo["text"] == "Broken on arrival"
    [att] = photo["attachments"]
    assert (att["file_id"], att["content_type"], att["size"]) == ("AgAD-large", "image/jpeg", 98000)
    assert att["url"] is None

    doc = by[f"{USER}:44"]["attachments"][0]
    assert (doc["filename"], doc["content_type"], doc["size"]) == ("invoice.pdf", "application/pdf", 51234)
    assert by[f"{USER}:45"]["attachments"][0]["content_type"] == "audio/ogg"

    loc = by[f"{USER}:51"]["attachments"][0]
    assert loc["url"].startswith("geo:40.416775,-3.70379") and loc["content_type"] == "location"
    contact = by[f"{USER}:53"]["attachments"][0]
    assert contact["url"] == "tel:+34612345678" and contact["content_type"] == "contact"

    group = by["-1001234567890:99"]
    assert group["thread"]["reply_to"] == "-1001234567890:40"
    assert r.hget(f"hark:{{0}}:conv:{group['conversation_id']}", "thread_key") == "-1001234567890"
    assert group["contact_id"] == photo["contact_id"]
    assert group["conversation_id"] != photo["conversation_id"]

    cb = by["cb:4382bfdwdsb323b2d9"]
    assert cb["text"] == "helpful:yes" and cb["thread"]["reply_to"] == f"{USER}:60"
    assert cb["extra"]["callback_query_id"] == "4382bfdwdsb323b2d9"
    assert len(by) == 7
    assert_one_event_per_message(r)


@pytest.mark.parametrize("name", ["channel-post.json", "my-chat-member.json", "service-message.json"])
def test_skipped_updates_answer_200_and_store_nothing(fast, name):
    harkd, redis_server = fast
    assert post(harkd, load("telegram", name))[:2] == (200, "")
    assert redis_server.stored() == 0


def _mutate(path, value):
    body = load_json("telegram", "message-text.json")
    node = body
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return dumps(body)


def _photos(n):
    sizes = [{"file_id": f"f{i}", "file_unique_id": f"u{i}", "file_size": i, "width": i, "height": i}
             for i in range(n)]
    return dumps(update(1, text=None, caption="x", photo=sizes))


@pytest.mark.parametrize("body", [
    b"",
    b"{",
    b"[]",
    b'"update"',
    _mutate(["update_id"], "900001"),
    _mutate(["message", "message_id"], "42"),
    _mutate(["message", "message_id"], 4.2),
    _mutate(["message", "from", "id"], "111222333"),
    _mutate(["message", "chat", "id"], None),
    _mutate(["message", "chat"], KeyError),
    _mutate(["message", "text"], 12),
    _mutate(["message"], []),
    dumps(update(2, text=None, location={"latitude": 200.0, "longitude": 0.0})),
    _photos(33),
    _mutate(["message", "entities"], json.loads(deep(40).decode())),
    deep(100),
    load("telegram", "message-text.json").replace("📦".encode(), b"\xf0\x9f\x93"),
    load("telegram", "message-text.json").replace("llegó".encode(), b"lleg\xc0\xb3"),
    load("telegram", "message-text.json").replace(b"mi pedido", b"mi\\u0000pedido"),
], ids=["empty", "truncated", "array", "string", "update-id-string", "message-id-string",
        "message-id-float", "from-id-string", "chat-id-null", "no-chat", "text-int",
        "message-array", "latitude-200", "33-photo-sizes", "deep-entities",
        "deep-100", "truncated-utf8", "overlong-utf8", "nul"])
def test_malformed_updates_get_400_and_store_nothing(fast, body):
    harkd, redis_server = fast
    status, _, _ = post(harkd, body)
    assert status == 400
    assert redis_server.stored() == 0


def test_many_updates_in_a_row_keep_order_in_one_conversation(harkd, redis_server):
    r = redis_server.client()
    for i in range(30):
        assert post(harkd, update(1000 + i, text=f"line {i}", message_id=200 + i))[0] == 200
    evs = event_data(r)
    assert len(evs) == 30
    conv = {d["conversation_id"] for _, _, d in evs}
    assert len(conv) == 1
    ids = r.lrange(f"hark:{{0}}:conv:{conv.pop()}:messages", 0, -1)
    assert [stored(r, i)["text"] for i in ids] == [f"line {i}" for i in range(30)]
    assert [f["conversation"] for _, f, _ in evs[:1]] == ["opened"]
    assert all("conversation" not in f for _, f, _ in evs[1:])


def test_payload_from_shared_vectors_is_accepted(harkd, redis_server):
    import os
    from conftest import VECTORS
    with open(os.path.join(VECTORS, "payloads", "telegram-update.json"), "rb") as f:
        body = f.read()
    m = json.loads(body)["message"]
    assert post(harkd, body)[0] == 200
    [(_, _, data)] = event_data(redis_server.client())
    assert data["provider_message_id"] == f"{m['chat']['id']}:{m['message_id']}"
    assert data["text"] == m["text"] and data["sent_at"] == m["date"] * 1000
    assert data["extra"]["event_id"] == "10000"
