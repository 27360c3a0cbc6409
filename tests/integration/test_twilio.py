"""End to end: signed Twilio webhooks through harkd into the Redis contract v1."""
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import HARKD, base_config, free_port, wait_for
from twilio_client import post, sms

TOKEN = "it-token-0123456789"


@pytest.fixture
def harkd(redis_server, start_harkd):
    conf = base_config(free_port(), redis_server.port,
                       "[channel.sms-main]\ntype = twilio\nauth_token = ${TWILIO_TOKEN}\n")
    return start_harkd(conf, env={"TWILIO_TOKEN": TOKEN})


def events(r):
    return r.xrange("hark:{0}:events")


def test_sms_fills_the_whole_contract(harkd, redis_server):
    r = redis_server.client()
    status, body, headers = post(harkd, "/hooks/sms-main", sms("SM" + "a" * 32, body="¿Dónde está mi pedido?"), TOKEN)
    assert status == 200
    assert headers["Content-Type"].startswith("text/xml")
    assert "<Response/>" in body

    entries = events(r)
    assert len(entries) == 1
    fields = entries[0][1]
    assert fields["type"] == "message.received" and fields["v"] == "1"
    assert fields["conversation"] == "opened"
    data = json.loads(fields["data"])
    assert data["id"] == fields["message_id"] and len(data["id"]) == 32
    assert data["conversation_id"] == fields["conversation_id"]
    assert (data["v"], data["channel"], data["provider"], data["account"], data["direction"]) == \
        (1, "sms", "twilio", "sms-main", "inbound")
    assert data["from"]["id"] == "+34612345678" and data["to"]["id"] == "+15557654321"
    assert data["text"] == data["reply_text"] == "¿Dónde está mi pedido?"
    assert data["provider_message_id"] == "SM" + "a" * 32
    assert data["status"] == "received" and data["attachments"] == []
    assert isinstance(data["received_at"], int) and data["received_at"] > 1.7e12

    stored = json.loads(r.get(f"hark:{{0}}:msg:{data['id']}"))
    assert stored == data

    conv = r.hgetall(f"hark:{{0}}:conv:{data['conversation_id']}")
    assert conv["id"] == data["conversation_id"] and conv["contact_id"] == data["contact_id"]
    assert (conv["channel"], conv["account"], conv["status"]) == ("sms", "sms-main", "open")
    assert conv["thread_key"] == "sms|+34612345678|+15557654321"
    assert conv["message_count"] == "1"
    assert int(conv["last_inbound_at"]) == data["received_at"] == int(conv["last_message_at"])
    assert conv["unanswered_since"] == conv["last_inbound_at"]
    for field in ("created_at",):
        assert int(conv[field]) > 0
    assert r.lrange(f"hark:{{0}}:conv:{data['conversation_id']}:messages", 0, -1) == [data["id"]]

    contact = r.hgetall(f"hark:{{0}}:contact:{data['contact_id']}")
    assert contact["id"] == data["contact_id"] and contact["phone"] == "+34612345678"
    assert r.lrange(f"hark:{{0}}:contact:{data['contact_id']}:conversations", 0, -1) == [data["conversation_id"]]
    assert r.get("hark:{0}:ident:phone:+34612345678") == data["contact_id"]


def test_whatsapp_and_sms_are_one_contact_two_conversations(harkd, redis_server):
    r = redis_server.client()
    assert post(harkd, "/hooks/sms-main", sms("SM" + "b" * 32), TOKEN)[0] == 200
    wa = sms("SM" + "c" * 32, frm="whatsapp:+34612345678", to="whatsapp:+15557654321",
             ProfileName="Ana García", WaId="34612345678")
    assert post(harkd, "/hooks/sms-main", wa, TOKEN)[0] == 200
    first, second = [json.loads(f["data"]) for _, f in events(r)]
    assert second["channel"] == "whatsapp" and second["from"]["name"] == "Ana García"
    assert first["contact_id"] == second["contact_id"]
    assert first["conversation_id"] != second["conversation_id"]
    assert r.llen(f"hark:{{0}}:contact:{first['contact_id']}:conversations") == 2
    assert r.hget(f"hark:{{0}}:contact:{first['contact_id']}", "name") == "Ana García"


def test_mms_media_become_attachments(harkd, redis_server):
    params = sms("MM" + "d" * 32, body="", NumMedia="2",
                 MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
                 MediaContentType0="image/jpeg",
                 MediaUrl1="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2",
                 MediaContentType1="application/pdf")
    assert post(harkd, "/hooks/sms-main", params, TOKEN)[0] == 200
    data = json.loads(events(redis_server.client())[0][1]["data"])
    assert data["channel"] == "mms"
    assert [a["content_type"] for a in data["attachments"]] == ["image/jpeg", "application/pdf"]
    assert data["attachments"][1]["url"].endswith("/ME2")


@pytest.mark.parametrize("signature", ["", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "not base64 at all"])
def test_bad_or_missing_signature_stores_nothing(harkd, redis_server, signature):
    status, body, _ = post(harkd, "/hooks/sms-main", sms("SM" + "e" * 32), TOKEN, signature=signature)
    assert status == 403
    assert "X-Twilio-Signature" in body
    assert redis_server.stored() == 0


def test_signature_with_other_token_or_url_is_rejected(harkd, redis_server):
    assert post(harkd, "/hooks/sms-main", sms("SM" + "f" * 32), "wrong-token")[0] == 403
    assert post(harkd, "/hooks/sms-main", sms("SM" + "f" * 32), TOKEN,
                sign_url="https://evil.example.test")[0] == 403
    assert redis_server.stored() == 0


def test_url_signed_with_default_port_is_accepted(harkd, redis_server):
    status, _, _ = post(harkd, "/hooks/sms-main", sms("SM" + "1" * 32), TOKEN,
                        sign_url="https://hooks.example.test:443")
    assert status == 200
    assert len(events(redis_server.client())) == 1


def test_redelivery_is_deduplicated(harkd, redis_server):
    params = sms("SM" + "2" * 32)
    for _ in range(3):
        assert post(harkd, "/hooks/sms-main", params, TOKEN)[0] == 200
    r = redis_server.client()
    assert len(events(r)) == 1
    data = json.loads(events(r)[0][1]["data"])
    assert r.hget(f"hark:{{0}}:conv:{data['conversation_id']}", "message_count") == "1"


@pytest.mark.parametrize("params,reason", [
    ({"From": "+34612345678", "To": "+15557654321", "Body": "x"}, "MessageSid"),
    ({"MessageSid": "SM9", "To": "+15557654321", "Body": "x"}, "From"),
    ({"MessageSid": "SM9", "From": "+34612345678", "To": "+1555", "NumMedia": "3"}, "MediaUrl0"),
    ({"MessageSid": "SM9", "From": "+34612345678", "To": "+1555", "NumMedia": "-1"}, "NumMedia"),
    ({"MessageSid": "SM9", "From": "+34612345678", "To": "+1555", "NumMedia": "999"}, "NumMedia"),
])
def test_malformed_requests_get_400_and_store_nothing(harkd, redis_server, params, reason):
    status, body, _ = post(harkd, "/hooks/sms-main", params, TOKEN)
    assert status == 400 and reason in body
    assert redis_server.stored() == 0


def test_invalid_utf8_body_is_refused(harkd, redis_server):
    import urllib.parse
    from twilio.request_validator import RequestValidator
    raw = b"MessageSid=SM7&From=%2B34612345678&To=%2B15557654321&Body=%FF%FE"
    params = {"MessageSid": "SM7", "From": "+34612345678", "To": "+15557654321",
              "Body": b"\xff\xfe".decode("latin-1")}
    # Twilio never sends invalid UTF-8; a forged request signed over the same bytes must not crash us.
    sig = RequestValidator(TOKEN).compute_signature("https://hooks.example.test/hooks/sms-main", params)
    req = urllib.request.Request(harkd.url + "/hooks/sms-main", data=raw, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded",
                                          "X-Twilio-Signature": sig})
    try:
        status = urllib.request.urlopen(req, timeout=5).status
    except urllib.error.HTTPError as e:
        status = e.code
    assert status in (400, 403)
    assert redis_server.stored() == 0


def test_oversized_body_gets_413(harkd, redis_server):
    params = sms("SM" + "3" * 32, body="x" * 70000)
    status, _, _ = post(harkd, "/hooks/sms-main", params, TOKEN)
    assert status == 413
    assert redis_server.stored() == 0


def test_health_unknown_path_and_methods(harkd):
    assert urllib.request.urlopen(harkd.url + "/healthz").status == 200
    assert urllib.request.urlopen(harkd.url + "/readyz").status == 200
    for path, method, want in [("/nope", "GET", 404), ("/healthz", "POST", 405),
                               ("/hooks/sms-main", "PUT", 405)]:
        req = urllib.request.Request(harkd.url + path, method=method, data=b"" if method != "GET" else None)
        try:
            status = urllib.request.urlopen(req, timeout=5).status
        except urllib.error.HTTPError as e:
            status = e.code
        assert status == want, (path, method)


def test_redis_down_answers_503_then_resumes(harkd, redis_server):
    assert post(harkd, "/hooks/sms-main", sms("SM" + "4" * 32), TOKEN)[0] == 200
    redis_server.stop()
    status, _, headers = post(harkd, "/hooks/sms-main", sms("SM" + "5" * 32), TOKEN)
    assert status == 503 and headers.get("Retry-After")

    def not_ready():
        try:
            urllib.request.urlopen(harkd.url + "/readyz", timeout=1)
            return False
        except urllib.error.HTTPError as e:
            return e.code == 503
    wait_for(not_ready, what="/readyz to report 503")
    assert harkd.proc.poll() is None
    redis_server.start()
    wait_for(harkd.ready, timeout=15, what="reconnect")
    # Twilio's retry of the refused message now lands, exactly once.
    assert post(harkd, "/hooks/sms-main", sms("SM" + "5" * 32), TOKEN)[0] == 200
    data = [json.loads(f["data"]) for _, f in events(redis_server.client())]
    assert [d["provider_message_id"] for d in data] == ["SM" + "5" * 32]


def test_sigterm_under_load_loses_no_acknowledged_message(harkd, redis_server):
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def sender(n):
        i = 0
        while not stop.is_set():
            sid = f"SM{n:02d}{i:030d}"
            try:
                status = post(harkd, "/hooks/sms-main", sms(sid, frm=f"+3461234{n:04d}"), TOKEN, timeout=5)[0]
            except OSError:
                status = 0
            if status == 200:
                with lock:
                    acked.append(sid)
            i += 1

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) > 200, timeout=30, what="some acknowledged messages")
    assert harkd.stop() == 0
    stop.set()
    for t in threads:
        t.join()
    r = redis_server.client()
    stored = {json.loads(f["data"])["provider_message_id"] for _, f in events(r)}
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged messages are not in Redis"
    assert len(stored) == len(events(r))


def test_resolved_conversation_reopens_on_new_inbound(harkd, redis_server):
    r = redis_server.client()
    assert post(harkd, "/hooks/sms-main", sms("SM" + "6" * 32), TOKEN)[0] == 200
    conv_id = events(r)[0][1]["conversation_id"]
    r.hset(f"hark:{{0}}:conv:{conv_id}", "status", "resolved")
    assert post(harkd, "/hooks/sms-main", sms("SM" + "7" * 32, body="still broken"), TOKEN)[0] == 200
    types = [f["type"] for _, f in events(r)]
    assert types == ["message.received", "conversation.reopened", "message.received"]
    assert events(r)[2][1]["conversation"] == "reopened"
    assert r.hget(f"hark:{{0}}:conv:{conv_id}", "status") == "open"
    assert r.hget(f"hark:{{0}}:conv:{conv_id}", "message_count") == "2"


def test_secret_file_is_reread_on_sighup(redis_server, start_harkd, workdir):
    token_file = os.path.join(workdir, "token")
    with open(token_file, "w") as f:
        f.write("first-token\n")
    conf = base_config(free_port(), redis_server.port,
                       f"[channel.sms]\ntype = twilio\nauth_token = file:{token_file}\n")
    h = start_harkd(conf)
    assert post(h, "/hooks/sms", sms("SM" + "8" * 32), "first-token")[0] == 200
    with open(token_file, "w") as f:
        f.write("second-token\n")
    h.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "secrets re-read" in h.log(), what="SIGHUP handling")
    assert post(h, "/hooks/sms", sms("SM" + "9" * 32), "first-token")[0] == 403
    assert post(h, "/hooks/sms", sms("SM" + "9" * 32), "second-token")[0] == 200
    assert "second-token" not in h.log() and "first-token" not in h.log()


def test_config_check_names_file_line_and_key(workdir):
    conf = os.path.join(workdir, "bad.conf")
    with open(conf, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:8080\nworkerz = 2\n\n[redis]\npartitions = many\n\n"
                "[channel.x1]\ntype = twilio\n\n[channel.x2]\ntype = carrier-pigeon\n")
    out = subprocess.run([HARKD, "-t", "-c", conf], capture_output=True, text=True)
    assert out.returncode == 1
    assert f"{conf}:3: [server] unknown key \"workerz\"" in out.stderr
    assert f"{conf}:6: [redis] partitions = \"many\"" in out.stderr
    assert "missing required key \"auth_token\"" in out.stderr
    assert "carrier-pigeon" in out.stderr and "unknown channel type" in out.stderr
    good = os.path.join(workdir, "good.conf")
    with open(good, "w") as f:
        f.write("[channel.sms]\ntype = twilio\nauth_token = ${NOT_LOGGED_TOKEN}\n")
    out = subprocess.run([HARKD, "-t", "-c", good], capture_output=True, text=True,
                         env=dict(os.environ, NOT_LOGGED_TOKEN="s3cr3t"))
    assert out.returncode == 0 and "configuration OK" in out.stdout
    out = subprocess.run([HARKD, "-t", "-c", good], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "NOT_LOGGED_TOKEN"})
    assert out.returncode == 1 and "NOT_LOGGED_TOKEN is not set" in out.stderr


def test_version_and_help():
    out = subprocess.run([HARKD, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("harkd ")
    out = subprocess.run([HARKD, "-h"], capture_output=True, text=True)
    assert out.returncode == 0 and "-c" in out.stdout


def test_script_flushed_from_redis_is_sent_again(harkd, redis_server):
    """NOSCRIPT recovery: after SCRIPT FLUSH the ingest still lands, once."""
    r = redis_server.client()
    assert post(harkd, "/hooks/sms-main", sms("SM" + "a1" * 16), TOKEN)[0] == 200
    r.script_flush()
    for sid in ("SM" + "b2" * 16, "SM" + "c3" * 16):
        assert post(harkd, "/hooks/sms-main", sms(sid), TOKEN)[0] == 200
    assert [json.loads(f["data"])["provider_message_id"] for _, f in events(r)] == \
        ["SM" + "a1" * 16, "SM" + "b2" * 16, "SM" + "c3" * 16]
