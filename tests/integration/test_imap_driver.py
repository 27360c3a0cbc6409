"""The IMAP client end to end against a real Dovecot, through build/imap_driver
(the adapter on its own loop with a fake core that prints JSON lines).

Build the driver first: sh tests/imap_driver/build.sh build-san (or build);
the tests skip with a message when it is missing.
"""
import json
import os
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from dovecot import Dovecot, dovecot, dovecot_factory, message  # noqa: E402,F401

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def driver_path():
    for b in ("build-san", "build"):
        p = os.path.join(ROOT, b, "imap_driver")
        if os.path.exists(p):
            return p
    return None


pytestmark = pytest.mark.skipif(
    driver_path() is None or not os.path.exists("/usr/sbin/dovecot"),
    reason="needs build-san/imap_driver (sh tests/imap_driver/build.sh build-san) and dovecot")


class Driver:
    def __init__(self, tmp_path, conf, env=None):
        self.conf_path = str(tmp_path / "imap.conf")
        self.state_path = str(tmp_path / "state.json")
        with open(self.conf_path, "w") as f:
            f.write(conf)
        self.env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", **(env or {}))
        self.events = []
        self.lock = threading.Lock()
        self.proc = None
        self.stderr_path = str(tmp_path / "driver.log")

    def start(self):
        self.proc = subprocess.Popen([driver_path(), self.conf_path, self.state_path],
                                     stdout=subprocess.PIPE,
                                     stderr=open(self.stderr_path, "a"), env=self.env)
        t = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        t.start()
        return self

    def _read(self, proc):
        for line in proc.stdout:
            with self.lock:
                self.events.append(json.loads(line))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            rc = self.proc.wait(10)
            assert rc == 0, self.log()
        self.proc = None

    def kill(self):
        self.proc.kill()
        self.proc.wait(5)
        self.proc = None

    def log(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()[-3000:]

    def of(self, kind):
        with self.lock:
            return [e for e in self.events if e["event"] == kind]

    def wait(self, pred, timeout=15, what="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return
            time.sleep(0.05)
        raise AssertionError("timed out waiting for %s; events=%s\nlog=%s"
                             % (what, self.events[-10:], self.log()))

    def wait_ingested(self, n, timeout=15):
        self.wait(lambda: len(self.of("ingest")) >= n, timeout, "%d ingests" % n)

    def state(self):
        with open(self.state_path) as f:
            return json.load(f)


def conf_for(dc, tls=True, **extra):
    lines = ["url = %s" % dc.url(tls=tls), "username = %s" % dc.user,
             "password = %s" % dc.password, "ca_file = %s" % dc.ca_file]
    for k, v in extra.items():
        lines.append("%s = %s" % (k, v))
    return "\n".join(lines) + "\n"


@pytest.fixture
def run(tmp_path):
    started = []

    def make(conf, env=None):
        d = Driver(tmp_path, conf, env).start()
        started.append(d)
        return d
    yield make
    for d in started:
        if d.proc is not None:
            d.stop()


def test_first_sync_then_idle_arrival(dovecot, run):
    for i in range(1, 4):
        dovecot.append(message(i))
    d = run(conf_for(dovecot))
    d.wait_ingested(3)
    assert [e["uid"] for e in d.of("ingest")] == [1, 2, 3]
    assert d.of("ingest")[0]["message_id"] == "<msg-1@example.org>"
    assert d.of("ingest")[0]["msg"]["extra"]["mailbox"] == "INBOX"
    assert d.of("ingest")[0]["account"] == "mail"
    # IDLE: a new message arrives without polling (poll_interval is 60 s).
    time.sleep(0.5)
    dovecot.append(message(4))
    d.wait_ingested(4, timeout=10)
    d.wait(lambda: d.state()["last_uid:INBOX"] == "4", what="checkpoint 4")
    # keep: nothing is flagged.
    assert "\\Seen" not in dovecot.flags(1)


def test_starttls_and_many_messages_in_slices(dovecot, run):
    for i in range(1, 121):
        dovecot.append(message(i))
    d = run(conf_for(dovecot, tls=False))
    d.wait_ingested(120, timeout=30)
    uids = [e["uid"] for e in d.of("ingest")]
    assert uids == list(range(1, 121))


def test_restart_resumes_from_checkpoint(dovecot, run):
    dovecot.append(message(1))
    dovecot.append(message(2))
    d = run(conf_for(dovecot))
    d.wait_ingested(2)
    # The checkpoint follows the store's acknowledgement; stop once it landed
    # (a stop before that re-fetches UID 2, which the real store dedupes).
    d.wait(lambda: d.state().get("last_uid:INBOX") == "2", what="checkpoint 2")
    d.stop()
    dovecot.append(message(3))
    d.events.clear()
    d.start()
    d.wait_ingested(1)
    time.sleep(0.5)
    assert [e["uid"] for e in d.of("ingest")] == [3]


def test_server_restart_reconnects_and_loses_nothing(dovecot, run):
    dovecot.append(message(1))
    d = run(conf_for(dovecot))
    d.wait_ingested(1)
    dovecot.restart()
    dovecot.append(message(2))
    d.wait_ingested(2, timeout=20)
    assert [e["uid"] for e in d.of("ingest")] == [1, 2]


def test_uidvalidity_change_rescans(dovecot, run):
    dovecot.append(message(1))
    dovecot.append(message(2))
    d = run(conf_for(dovecot))
    d.wait_ingested(2)
    old = d.state()["uidvalidity:INBOX"]
    d.stop()
    dovecot.reset_uidvalidity()
    d.events.clear()
    d.start()
    d.wait_ingested(2)
    assert d.state()["uidvalidity:INBOX"] != old
    # Rescanned from UID 1: the same Message-IDs again (the store dedupes them).
    assert sorted(e["message_id"] for e in d.of("ingest")) == [
        "<msg-1@example.org>", "<msg-2@example.org>"]


def test_after_ingest_seen(dovecot, run):
    dovecot.append(message(1))
    d = run(conf_for(dovecot, after_ingest="seen"))
    d.wait_ingested(1)
    d.wait(lambda: "\\Seen" in dovecot.flags(1), what="\\Seen flag")


def test_after_ingest_move(dovecot, run):
    dovecot.create("Done")
    dovecot.append(message(1))
    dovecot.append(message(2))
    d = run(conf_for(dovecot, after_ingest="move:Done"))
    d.wait_ingested(2)
    d.wait(lambda: dovecot.uids("INBOX") == [] and len(dovecot.uids("Done")) == 2,
           what="messages moved")


def test_too_large_and_auto_generated_are_quarantined(dovecot, run):
    big = message(1, subject="big") + "x" * 5000 + "\r\n"
    dovecot.append(big)
    dovecot.append(message(2, extra_headers="Auto-Submitted: auto-replied\r\n"))
    dovecot.append(message(3))
    dovecot.append("Subject: no sender\r\n\r\nbody\r\n")
    d = run(conf_for(dovecot, max_message_size="2k"))
    d.wait(lambda: len(d.of("quarantine")) == 3 and len(d.of("ingest")) == 1,
           what="3 quarantined + 1 ingested")
    q = {e["record"]["uid"]: e for e in d.of("quarantine")}
    assert q[1]["reason"] == "too large"
    assert "Subject: big" in q[1]["record"]["headers"]
    assert q[1]["record"]["size"] > 2048
    assert q[2]["reason"] == "auto-generated"
    assert q[4]["reason"] == "unparseable"
    assert d.of("ingest")[0]["uid"] == 3
    d.wait(lambda: d.state().get("last_uid:INBOX") == "4", what="checkpoint 4")


def test_ingest_auto_yes_stores_autoreplies(dovecot, run):
    dovecot.append(message(1, extra_headers="Auto-Submitted: auto-replied\r\n"))
    d = run(conf_for(dovecot, ingest_auto="yes"))
    d.wait_ingested(1)
    assert d.of("quarantine") == []


def test_store_retry_keeps_checkpoint(dovecot, run):
    dovecot.append(message(1))
    dovecot.append(message(2))
    d = run(conf_for(dovecot), env={"DRIVER_RETRY": "2"})
    d.wait_ingested(2, timeout=20)
    assert len(d.of("retry")) == 2
    assert [e["uid"] for e in d.of("ingest")] == [1, 2]


def test_xoauth2(dovecot_factory, run):
    dc = dovecot_factory(password="ya29.token-value")
    dc.append(message(1))
    conf = ("url = %s\nusername = %s\noauth_token = ya29.token-value\nca_file = %s\n"
            % (dc.url(), dc.user, dc.ca_file))
    d = run(conf)
    d.wait_ingested(1)


def test_wrong_password_and_untrusted_cert_ingest_nothing(dovecot, run):
    dovecot.append(message(1))
    d = run("url = %s\nusername = alice\npassword = wrong\nca_file = %s\n"
            % (dovecot.url(), dovecot.ca_file))
    d.wait(lambda: "authentication failed" in d.log(), what="auth failure logged")
    d.stop()
    d2 = run("url = %s\nusername = alice\npassword = %s\n" % (dovecot.url(), dovecot.password))
    d2.wait(lambda: "TLS" in d2.log() and "reconnect_in_ms" in d2.log(), what="TLS failure")
    assert d.of("ingest") == [] and d2.of("ingest") == []
