"""harkd with an imap channel against a private Dovecot and Redis.

Uses the core's conftest fixtures (redis_server, start_harkd); skips until
they exist. The lead wires these into `make integration`.
"""
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from dovecot import dovecot, message  # noqa: E402,F401

HARKD = os.environ.get("HARKD", "build-san/harkd")


@pytest.fixture
def need_core(request):
    for name in ("redis_server", "start_harkd"):
        try:
            request.getfixturevalue(name)
        except pytest.FixtureLookupError:
            pytest.skip("needs the core's conftest fixture %s (merge main)" % name)
    if not os.path.exists(HARKD):
        pytest.skip("needs %s (make SANITIZE=1 all)" % HARKD)
    return request.getfixturevalue("redis_server"), request.getfixturevalue("start_harkd")


def config(redis_port, dc, **extra):
    from conftest import base_config, free_port
    lines = ["[channel.support]", "type = imap", "url = %s" % dc.url(),
             "username = %s" % dc.user, "password = %s" % dc.password,
             "ca_file = %s" % dc.ca_file, "idle_restart = 5s"]
    lines += ["%s = %s" % kv for kv in extra.items()]
    return base_config(free_port(), redis_port, extra="\n".join(lines) + "\n")


def wait(pred, timeout=20, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def emails(r):
    out = []
    for key in r.scan_iter("hark:*:msg:*"):
        out.append(key)
    return out


def state(r):
    return {k.decode() if isinstance(k, bytes) else k: v
            for k, v in r.hgetall("hark:state:support").items()}


def test_first_sync_idle_and_restart(need_core, dovecot):
    redis_server, start_harkd = need_core
    r = redis_server.client()
    dovecot.append(message(1))
    dovecot.append(message(2))
    h = start_harkd(config(redis_server.port, dovecot))
    wait(lambda: len(emails(r)) == 2, what="2 messages stored")
    dovecot.append(message(3))
    wait(lambda: len(emails(r)) == 3, what="IDLE arrival")
    h.stop()
    dovecot.append(message(4))
    h = start_harkd(config(redis_server.port, dovecot))
    wait(lambda: len(emails(r)) == 4, what="resume after restart")
    h.stop()


def test_uidvalidity_change_no_duplicates(need_core, dovecot):
    redis_server, start_harkd = need_core
    r = redis_server.client()
    dovecot.append(message(1))
    h = start_harkd(config(redis_server.port, dovecot))
    wait(lambda: len(emails(r)) == 1)
    dovecot.reset_uidvalidity()
    dovecot.append(message(2))
    wait(lambda: len(emails(r)) == 2, what="rescan after UIDVALIDITY change")
    time.sleep(1)
    assert len(emails(r)) == 2
    h.stop()


def test_server_killed_mid_fetch(need_core, dovecot):
    redis_server, start_harkd = need_core
    r = redis_server.client()
    for i in range(1, 200):
        dovecot.append(message(i))
    h = start_harkd(config(redis_server.port, dovecot))
    wait(lambda: len(emails(r)) > 0)
    dovecot.restart()
    wait(lambda: len(emails(r)) == 199, timeout=60, what="all after a server restart")
    h.stop()


@pytest.mark.parametrize("action", ["seen", "move:Done"])
def test_after_ingest(need_core, dovecot, action):
    redis_server, start_harkd = need_core
    r = redis_server.client()
    dovecot.create("Done")
    dovecot.append(message(1))
    h = start_harkd(config(redis_server.port, dovecot, after_ingest=action))
    wait(lambda: len(emails(r)) == 1)
    if action == "seen":
        wait(lambda: "\\Seen" in dovecot.flags(1), what="seen flag")
    else:
        wait(lambda: dovecot.uids("INBOX") == [] and len(dovecot.uids("Done")) == 1,
             what="moved")
    h.stop()


def test_autoresponder_is_quarantined(need_core, dovecot):
    redis_server, start_harkd = need_core
    r = redis_server.client()
    dovecot.append(message(1, extra_headers="Auto-Submitted: auto-replied\r\n"))
    dovecot.append(message(2))
    h = start_harkd(config(redis_server.port, dovecot))
    wait(lambda: len(emails(r)) == 1)
    wait(lambda: r.xlen("hark:quarantine") >= 1, what="quarantine entry")
    h.stop()


def test_attachments_are_saved_content_addressed(need_core, dovecot, tmp_path):
    """Attachment files are written (off the loop) before the message is filed."""
    import hashlib
    import json as jsonlib
    redis_server, start_harkd = need_core
    r = redis_server.client()
    pdf = b"%PDF-1.4 invoice 4711\n" * 40
    import base64
    raw = ("From: Ana <ana@example.org>\r\nTo: support@example.com\r\nSubject: invoice\r\n"
           "Message-ID: <att-1@example.org>\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
           "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe invoice is wrong.\r\n"
           "--b1\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\n"
           "Content-Disposition: attachment; filename=\"invoice.pdf\"\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(pdf).decode() +
           "\r\n--b1--\r\n").encode()
    dovecot.append(raw)
    files = tmp_path / "files"
    files.mkdir()
    start_harkd(config(redis_server.port, dovecot, attachment_dir=str(files),
                       attachment_url="https://files.example.com/a"))
    wait(lambda: r.xlen("hark:{0}:events") == 1, what="the message")
    data = jsonlib.loads(r.xrange("hark:{0}:events")[0][1]["data"])
    [att] = data["attachments"]
    assert att["filename"] == "invoice.pdf" and att["content_type"] == "application/pdf"
    assert att["size"] == len(pdf)
    name = att["url"].rsplit("/", 1)[1]
    assert att["url"].startswith("https://files.example.com/a/")
    assert name.startswith(hashlib.sha256(pdf).hexdigest())
    assert (files / name).read_bytes() == pdf
