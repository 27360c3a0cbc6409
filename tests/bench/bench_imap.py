#!/usr/bin/python3
"""Benchmark of the IMAP pull adapter: harkd against a private Dovecot and Redis.

1. Ingest: a maildir mailbox is filled directly (files in cur/, written before Dovecot
   first opens the mailbox) with N messages of mixed shapes: plain text, HTML only,
   multipart/alternative, multipart/mixed with a small attachment, quoted replies
   (In-Reply-To/References, "> " history) and ISO-8859-1 quoted-printable with an encoded
   subject. harkd is started with an `imap` channel (imaps://, private CA) and timed from
   its start until the events stream holds N entries: messages/s (target >= 2,000/s on the
   2-core reference machine, scaled).
2. IDLE latency: with harkd idling on the mailbox, APPEND messages one at a time over one
   imaplib connection, each with a unique Message-ID; for each, the time from the APPEND's
   tagged OK to its message.received entry being readable in the stream (XREAD BLOCK).
   p50/p99 (target p99 < 1 s).

    bench_imap.py [-n 10000] [--idle 200] [--scale 1.0]

As a library: run(scale) -> dict (also prints its lines).
"""
import argparse
import base64
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from bench import _http_ok, peak_rss_kb, start_redis  # noqa: E402
from conftest import free_port, wait_for  # noqa: E402
from dovecot import Dovecot  # noqa: E402

EVENTS = "hark:{0}:events"
TARGET_RATE = 2000
TARGET_P99_MS = 1000
SHAPES = ("plain", "html", "alternative", "attachment", "reply", "latin1")


def _headers(n, frm, subject, extra=""):
    return (f"From: Customer {n % 500} <{frm}>\r\nTo: Support <support@example.com>\r\n"
            f"Subject: {subject}\r\nMessage-ID: <bench-{n}@example.org>\r\n"
            f"Date: Mon, 1 Jan 2024 10:{(n // 60) % 60:02d}:{n % 60:02d} +0000\r\n"
            f"{extra}MIME-Version: 1.0\r\n")


def mail(n, tag="bench"):
    """Message n as RFC 5322 bytes (CRLF); its shape cycles through SHAPES."""
    shape = SHAPES[n % len(SHAPES)]
    frm = f"customer{n % 500}@example.org"
    body = (f"Hello,\r\n\r\nmy order #{n} has not arrived yet. It was due last week and the "
            f"tracking page has not changed since.\r\nCould you check what happened?\r\n\r\n"
            f"Thanks,\r\nCustomer {n % 500}\r\n")
    if shape == "plain":
        text = _headers(n, frm, f"Order #{n}") + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
    elif shape == "html":
        text = (_headers(n, frm, f"Order #{n} (html)") + "Content-Type: text/html; charset=utf-8\r\n\r\n"
                f"<html><body><p>Hello,</p><p>my order <b>#{n}</b> has not arrived yet.</p>"
                f"<div>Could you check &amp; tell me?</div><p>Thanks</p></body></html>\r\n")
    elif shape == "alternative":
        b = f"alt-{n}"
        text = (_headers(n, frm, f"Order #{n} (alt)") +
                f"Content-Type: multipart/alternative; boundary=\"{b}\"\r\n\r\n"
                f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
                f"--{b}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
                f"<p>Hello,</p><p>my order #{n} has not arrived yet.</p>\r\n--{b}--\r\n")
    elif shape == "attachment":
        b = f"mix-{n}"
        data = base64.encodebytes(bytes(range(256)) * 6).decode().replace("\n", "\r\n")
        text = (_headers(n, frm, f"Order #{n} receipt") +
                f"Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n"
                f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
                f"--{b}\r\nContent-Type: application/pdf; name=\"receipt-{n}.pdf\"\r\n"
                f"Content-Disposition: attachment; filename=\"receipt-{n}.pdf\"\r\n"
                f"Content-Transfer-Encoding: base64\r\n\r\n{data}--{b}--\r\n")
    elif shape == "reply":
        prev = max(n - len(SHAPES), 1)
        refs = f"<support-{prev}@example.com>"
        text = (_headers(n, frm, f"Re: Order #{prev}",
                         f"In-Reply-To: {refs}\r\nReferences: <bench-{prev}@example.org> {refs}\r\n") +
                "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                f"Still nothing, any news?\r\n\r\nOn Mon, 1 Jan 2024 at 09:00, Support "
                f"<support@example.com> wrote:\r\n> Hello, we are looking into order #{prev}.\r\n"
                f"> We will come back to you shortly.\r\n>\r\n> Support\r\n")
    else:
        text = (_headers(n, frm, "=?ISO-8859-1?Q?Pedido_n=BA_" + str(n) + "_no_lleg=F3?=") +
                "Content-Type: text/plain; charset=ISO-8859-1\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                f"Hola,\r\n\r\nmi pedido n=BA {n} no ha llegado todav=EDa. =BFPodr=EDan revisarlo?\r\n"
                "\r\nGracias, Jos=E9\r\n")
    if tag != "bench":
        text = text.replace(f"<bench-{n}@example.org>", f"<{tag}-{n}@example.org>", 1)
    return text.encode("latin-1" if shape == "latin1" else "utf-8")


def fill_maildir(dc, n):
    """Write n messages straight into the user's maildir (cur/, no flags) before Dovecot
    opens it: Dovecot assigns the UIDs on the first SELECT. Returns the bytes written."""
    box = os.path.join(dc.dir, "mail", dc.user)
    owner = pwd.getpwnam("dovecot" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name)
    for sub in ("", "cur", "new", "tmp"):
        os.makedirs(os.path.join(box, sub), exist_ok=True)
    now = int(time.time())
    host = socket.gethostname().replace("/", "_").replace(":", "_")
    total = 0
    for i in range(1, n + 1):
        raw = mail(i)
        name = f"{now}.M{i}P{os.getpid()}.{host},S={len(raw)}:2,"
        path = os.path.join(box, "cur", name)
        with open(path, "wb") as f:
            f.write(raw)
        os.utime(path, (now - n + i, now - n + i))
        total += len(raw)
    for root, dirs, files in os.walk(box):
        os.chown(root, owner.pw_uid, owner.pw_gid)
        for name in files:
            os.chown(os.path.join(root, name), owner.pw_uid, owner.pw_gid)
    return total


def harkd_config(tmp, hport, rport, dc):
    att = os.path.join(tmp, "attachments")
    os.makedirs(att, exist_ok=True)
    conf = os.path.join(tmp, "imap.conf")
    with open(conf, "w") as f:
        f.write(f"[server]\nlisten = 127.0.0.1:{hport}\npublic_url = https://hooks.bench.test\n"
                f"workers = 2\n\n[redis]\nurl = redis://127.0.0.1:{rport}/0\nevents_maxlen = 100000000\n\n"
                f"[log]\nlevel = warn\n\n[channel.support]\ntype = imap\nurl = {dc.url()}\n"
                f"username = {dc.user}\npassword = ${{BENCH_IMAP_PASSWORD}}\nca_file = {dc.ca_file}\n"
                f"from = support@example.com\nattachment_dir = {att}\n"
                f"attachment_url = https://files.bench.test/att\n")
    return conf


class IdleWatcher(threading.Thread):
    """A bare IMAP client idling on INBOX (the Dovecot baseline): records when each
    "* N EXISTS" arrives, so the server's own notification delay can be told apart from
    harkd's."""

    def __init__(self, dc):
        super().__init__(daemon=True)
        ctx = ssl.create_default_context(cafile=dc.ca_file)
        raw = socket.create_connection(("127.0.0.1", dc.ssl_port), timeout=30)
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.f = self.sock.makefile("rb")
        self.exists = {}
        self.stop = False
        self.f.readline()
        user = dc.user.replace("\\", "\\\\").replace('"', '\\"')
        pw = dc.password.replace("\\", "\\\\").replace('"', '\\"')
        self._cmd(f'a1 LOGIN "{user}" "{pw}"', "a1")
        for line in self._cmd("a2 SELECT INBOX", "a2"):
            if line.endswith(b"EXISTS"):
                self.initial = int(line.split()[1])
        self._cmd("a3 IDLE", "a3", idle=True)

    def _cmd(self, text, tag, idle=False):
        """Send a command; return its untagged lines at the tagged OK (or, with idle, at
        the "+" continuation of an IDLE, after the tagged OK of the previous IDLE)."""
        self.sock.sendall(text.encode() + b"\r\n")
        lines = []
        while True:
            line = self.f.readline().rstrip()
            if not line:
                raise RuntimeError("IMAP connection closed")
            if idle and line.startswith(b"+"):
                return lines
            parts = line.split()
            if idle and len(parts) == 3 and parts[2] == b"EXISTS":
                self.exists.setdefault(int(parts[1]), time.monotonic())
            if line.startswith(tag.encode() + b" "):
                if not line.split()[1] == b"OK":
                    raise RuntimeError(line.decode(errors="replace"))
                return lines
            lines.append(line)

    def run(self):
        """Read until closed; after each EXISTS end the IDLE and start a new one, as harkd
        does (it fetches between), so both see the server's delay for a fresh IDLE."""
        tag = 4
        try:
            while not self.stop:
                line = self.f.readline()
                if not line:
                    return
                parts = line.split()
                if len(parts) == 3 and parts[2] == b"EXISTS":
                    self.exists.setdefault(int(parts[1]), time.monotonic())
                    self.sock.sendall(b"DONE\r\n")
                    self._cmd(f"a{tag} IDLE", f"a{tag}", idle=True)
                    tag += 1
        except (OSError, RuntimeError):
            return

    def close(self):
        self.stop = True
        try:
            self.sock.sendall(b"DONE\r\na4 LOGOUT\r\n")
            self.sock.close()
        except OSError:
            pass


def idle_latency(dc, r, count, timeout=10.0):
    """APPEND count messages one at a time; for each, seconds from the APPEND's OK to its
    event being readable, and to a bare idling client's EXISTS (the Dovecot baseline).
    Returns (latencies, baseline latencies, missed)."""
    watcher = IdleWatcher(dc)
    watcher.start()
    c = dc.client()
    lat, base, missed, starts = [], [], 0, []
    last = r.xrevrange(EVENTS, count=1)
    last_id = last[0][0] if last else "0-0"
    try:
        for i in range(count):
            token = f"idle{i}-{time.monotonic_ns()}"
            raw = mail(100000 + i, tag=token)
            marker = f"{token}-{100000 + i}@example.org"
            typ, data = c.append("INBOX", None, None, raw)
            t0 = time.monotonic()
            if typ != "OK":
                raise RuntimeError(f"APPEND failed: {data}")
            seen = False
            while not seen and time.monotonic() - t0 < timeout:
                got = r.xread({EVENTS: last_id}, block=100, count=100)
                for _stream, entries in got or ():
                    for eid, fields in entries:
                        last_id = eid
                        if marker in fields.get("data", ""):
                            seen = True
            if seen:
                lat.append(time.monotonic() - t0)
            else:
                missed += 1
            starts.append(t0)
        # The bare client may see an EXISTS after harkd's event: look them up at the end.
        deadline = time.monotonic() + 2
        while len(watcher.exists) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        for i, t0 in enumerate(starts):
            seen_at = watcher.exists.get(watcher.initial + i + 1)
            if seen_at is not None:
                base.append(max(seen_at - t0, 0.0))
    finally:
        watcher.close()
        try:
            c.logout()
        except Exception:  # noqa: BLE001 - best effort at the end of a bench
            pass
    return lat, base, missed


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]


def run(scale=1.0, n=10000, idle=200):
    """Run both phases; print their lines; return a dict of figures."""
    tmp = tempfile.mkdtemp(prefix="hark-bench-imap-")
    os.chmod(tmp, 0o755)
    dc = Dovecot()
    harkd = None
    res = {}
    try:
        dc.start()
        t = time.monotonic()
        size = fill_maildir(dc, n)
        fill_s = time.monotonic() - t
        rproc, rport, r = start_redis(tmp)
        try:
            hport = free_port()
            conf = harkd_config(tmp, hport, rport, dc)
            env = dict(os.environ, BENCH_IMAP_PASSWORD=dc.password)
            log = open(os.path.join(tmp, "harkd-imap.log"), "w")
            t0 = time.monotonic()
            harkd = subprocess.Popen([os.path.join(ROOT, "build", "harkd"), "-c", conf],
                                     stderr=log, env=env)
            wait_for(lambda: _http_ok(f"http://127.0.0.1:{hport}/readyz"), what="harkd")
            last, still_since = -1, time.monotonic()
            while True:
                count = r.xlen(EVENTS)
                now = time.monotonic()
                if count >= n:
                    break
                if count != last:
                    last, still_since = count, now
                elif now - still_since > 15:
                    break
                time.sleep(0.01)
            ingest_s = time.monotonic() - t0
            events = r.xlen(EVENTS)
            quarantined = r.xlen("hark:quarantine") if r.exists("hark:quarantine") else 0
            rate = events / ingest_s
            print(f"imap ingest: {events:,} of {n:,} messages ({size / n / 1024:.1f} KB mean, 6 shapes; "
                  f"maildir filled in {fill_s:.1f}s) stored in {ingest_s:.2f}s from harkd start = "
                  f"{rate:,.0f} messages/s (target {TARGET_RATE:,} x {scale:.2f} = {TARGET_RATE * scale:,.0f})"
                  + (f"; quarantined {quarantined}" if quarantined else ""))
            lat, base, missed = idle_latency(dc, r, idle)
            p50, p99 = pct(lat, 50) * 1000, pct(lat, 99) * 1000
            print(f"imap IDLE arrival -> event: {len(lat)} of {idle} APPENDs seen, p50 {p50:.0f} ms, "
                  f"p99 {p99:.0f} ms, max {max(lat or [0]) * 1000:.0f} ms (target p99 < {TARGET_P99_MS} ms, scaled {TARGET_P99_MS / scale:,.0f} ms)"
                  + (f"; {missed} not seen within 10 s" if missed else ""))
            print(f"  of which Dovecot: a bare client re-IDLEing on the same mailbox saw EXISTS after p50 "
                  f"{pct(base, 50) * 1000:.0f} ms, p99 {pct(base, 99) * 1000:.0f} ms ({len(base)} samples)")
            rss = peak_rss_kb(harkd.pid) / 1024
            print(f"imap harkd peak RSS: {rss:.1f} MB")
            res = {"messages": n, "events": events, "seconds": ingest_s, "messages_per_s": rate,
                   "target_messages_per_s": TARGET_RATE * scale, "idle_p50_ms": p50, "idle_p99_ms": p99,
                   "dovecot_p50_ms": pct(base, 50) * 1000, "dovecot_p99_ms": pct(base, 99) * 1000,
                   "idle_seen": len(lat), "idle_missed": missed, "quarantined": quarantined,
                   "rss_mb": rss, "complete": events == n and missed == 0}
        finally:
            if harkd is not None and harkd.poll() is None:
                harkd.send_signal(signal.SIGTERM)
                try:
                    harkd.wait(30)
                except subprocess.TimeoutExpired:
                    harkd.kill()
                    harkd.wait()
            rproc.terminate()
            rproc.wait(10)
    finally:
        dc.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--idle", type=int, default=200)
    ap.add_argument("--scale", type=float, default=1.0, help="this machine / reference machine")
    args = ap.parse_args()
    res = run(args.scale, args.n, args.idle)
    return 0 if res.get("complete") else 1


if __name__ == "__main__":
    sys.exit(main())
