"""Start a private Dovecot IMAP server for tests (loopback only).

Usage as a library:

    from dovecot import Dovecot
    with Dovecot() as dc:
        dc.append("INBOX", raw_bytes)
        dc.port, dc.ssl_port, dc.user, dc.password, dc.ca_file

or as pytest fixtures (import them into a conftest.py or a test module):
`dovecot` (one server per test) and `dovecot_factory` (start more, e.g.
with xoauth2 tokens).

The server runs in the foreground (`dovecot -F`) with a generated config
under a temp dir: maildir mail store, a passwd-file with plaintext
passwords (the XOAUTH2 mechanism checks the bearer token against the same
password, so a token is tested as a password), a self-signed certificate
for localhost and 127.0.0.1 (also the CA file for clients), IMAP on a
plain port (STARTTLS available) and an implicit-TLS port, a short
imap_idle_notify_interval. As root, login and mail processes run as the
Debian users dovenull/dovecot; otherwise everything runs as the current
user.
"""
import imaplib
import os
import pwd
import grp
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

DOVECOT = os.environ.get("DOVECOT", "/usr/sbin/dovecot")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _wait_port(port, deadline, proc, log_path):
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("dovecot exited: " + _tail(log_path))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("dovecot did not listen on %d: %s" % (port, _tail(log_path)))


def _tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


class Dovecot:
    def __init__(self, user="alice", password="s3cret pass", extra_conf="", idle_notify=2):
        self.user = user
        self.password = password
        self.extra_conf = extra_conf
        self.idle_notify = idle_notify
        self.proc = None
        self.dir = None

    # -- lifecycle ---------------------------------------------------------
    def start(self):
        self.dir = tempfile.mkdtemp(prefix="hark-dovecot-")
        os.chmod(self.dir, 0o755)
        d = self.dir
        for sub in ("run", "state", "mail", "home"):
            os.makedirs(os.path.join(d, sub))
        if os.geteuid() == 0:
            login_user, internal_user = "dovenull", "dovecot"
            mail_user = "dovecot"
        else:
            me = pwd.getpwuid(os.geteuid()).pw_name
            login_user = internal_user = mail_user = me
        uid = pwd.getpwnam(mail_user).pw_uid
        gid = pwd.getpwnam(mail_user).pw_gid
        for sub in ("mail", "home"):
            os.chown(os.path.join(d, sub), uid, gid)
        self.cert = os.path.join(d, "cert.pem")
        self.key = os.path.join(d, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-keyout", self.key, "-out", self.cert,
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-addext", "basicConstraints=critical,CA:TRUE"],
            check=True, capture_output=True)
        os.chmod(self.key, 0o644)
        self.ca_file = self.cert
        users = os.path.join(d, "users")
        with open(users, "w") as f:
            f.write("%s:{PLAIN}%s::::::\n" % (self.user, self.password))
        self.port = free_port()
        self.ssl_port = free_port()
        self.log_path = os.path.join(d, "dovecot.log")
        self.conf = os.path.join(d, "dovecot.conf")
        grp_name = grp.getgrgid(gid).gr_name
        with open(self.conf, "w") as f:
            f.write(f"""
base_dir = {d}/run
state_dir = {d}/state
log_path = {self.log_path}
info_log_path = {self.log_path}
protocols = imap
listen = 127.0.0.1
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {grp_name}
first_valid_uid = 0
first_valid_gid = 0
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:{d}/mail/%u
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
imap_idle_notify_interval = {self.idle_notify} secs
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = {self.ssl_port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
{self.extra_conf}
""")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=open(
                                         os.path.join(d, "stderr.log"), "w"))
        deadline = time.time() + 15
        _wait_port(self.port, deadline, self.proc, self.log_path)
        _wait_port(self.ssl_port, deadline, self.proc, self.log_path)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self):
        """Stop and start the same server (same ports, mail, certificate)."""
        self.stop()
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 15
        _wait_port(self.port, deadline, self.proc, self.log_path)

    def cleanup(self):
        self.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- helpers -------------------------------------------------------------
    def url(self, mailbox="INBOX", tls=True):
        if tls:
            return "imaps://127.0.0.1:%d/%s" % (self.ssl_port, mailbox)
        return "imap://127.0.0.1:%d/%s" % (self.port, mailbox)

    def client(self):
        """A logged-in imaplib client over TLS (trusting our certificate)."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        c = imaplib.IMAP4_SSL("127.0.0.1", self.ssl_port, ssl_context=ctx)
        c.login(self.user, self.password)
        return c

    def append(self, raw, mailbox="INBOX", flags=""):
        """APPEND one message (bytes or str); returns nothing."""
        if isinstance(raw, str):
            raw = raw.encode()
        c = self.client()
        try:
            if mailbox != "INBOX":
                c.create(mailbox)
            typ, data = c.append(mailbox, flags or None, None, raw)
            assert typ == "OK", data
        finally:
            c.logout()

    def create(self, mailbox):
        c = self.client()
        try:
            c.create(mailbox)
        finally:
            c.logout()

    def uids(self, mailbox="INBOX", criteria="ALL"):
        c = self.client()
        try:
            c.select(mailbox)
            typ, data = c.uid("SEARCH", None, criteria)
            return [int(x) for x in data[0].split()]
        finally:
            c.logout()

    def flags(self, uid, mailbox="INBOX"):
        c = self.client()
        try:
            c.select(mailbox)
            typ, data = c.uid("FETCH", str(uid), "(FLAGS)")
            return data[0].decode() if data and data[0] else ""
        finally:
            c.logout()

    def reset_uidvalidity(self, mailbox="INBOX"):
        """Recreate the mailbox store so that the server picks a new UIDVALIDITY,
        keeping the messages (as a restore from backup would)."""
        c = self.client()
        try:
            c.select(mailbox)
            typ, data = c.fetch("1:*", "(RFC822)")
            msgs = [d[1] for d in data if isinstance(d, tuple)]
        finally:
            c.logout()
        self.stop()
        box = os.path.join(self.dir, "mail", self.user)
        shutil.rmtree(box)
        self.restart()
        time.sleep(1.1)  # UIDVALIDITY is derived from the clock
        for m in msgs:
            self.append(m, mailbox)


def message(n, subject=None, frm="customer@example.org", extra_headers=""):
    """A small RFC 5322 message numbered n."""
    subject = subject or "Question %d" % n
    return ("From: Customer <%s>\r\nTo: support@example.com\r\nSubject: %s\r\n"
            "Message-ID: <msg-%d@example.org>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
            "%sMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            "Hello, this is message %d.\r\n" % (frm, subject, n, extra_headers, n))


try:
    import pytest

    @pytest.fixture
    def dovecot():
        with Dovecot() as dc:
            yield dc

    @pytest.fixture
    def dovecot_factory():
        started = []

        def make(**kw):
            dc = Dovecot(**kw).start()
            started.append(dc)
            return dc
        yield make
        for dc in started:
            dc.cleanup()
except ImportError:  # usable without pytest
    pass
