"""Email end to end: a customer's mail arrives over IMAP (a private Dovecot), the
CRM answers through hark:outbox, harkd submits the reply over SMTP (a real
aiosmtpd receiver on loopback) threaded under the customer's mail, and the
customer's answer to our reply joins the same conversation by reference
(docs/outbox.md "Email", docs/adapters/imap.md)."""
import email
import email.policy
import json
import os
import ssl
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import HARKD, base_config, free_port, wait_for  # noqa: E402
from dovecot import dovecot  # noqa: E402,F401
from signers import derive_id  # noqa: E402

pytestmark = pytest.mark.skipif(not os.access(HARKD, os.X_OK), reason="harkd not built")

MAILBOX = "support@example.com"
CUSTOMER = "ana@example.org"


class Receiver:
    """aiosmtpd handler keeping every delivered envelope and every login."""

    def __init__(self):
        self.envelopes = []
        self.logins = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult
        with self.lock:
            self.logins.append((mechanism, auth_data.login.decode(), auth_data.password.decode()))
        ok = (auth_data.login.decode(), auth_data.password.decode()) == self.expect
        return AuthResult(success=ok, handled=False)

    def messages(self):
        with self.lock:
            return list(self.envelopes)


@pytest.fixture
def smtp(dovecot):
    """A submission server as the mailbox provider runs it: STARTTLS required (with the
    same private-CA certificate as the IMAP server, which the channel trusts through
    ca_file) and AUTH with the mailbox's credentials."""
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    receiver = Receiver()
    receiver.expect = (dovecot.user, dovecot.password)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(dovecot.cert, dovecot.key)
    port = free_port()
    controller = controller_mod.Controller(receiver, hostname="127.0.0.1", port=port,
                                           tls_context=tls, require_starttls=True,
                                           authenticator=receiver.authenticate,
                                           auth_require_tls=True)
    controller.start()
    receiver.port = port
    yield receiver
    controller.stop()


def config(redis_port, dc, smtp_port):
    lines = ["[channel.support]", "type = imap", "url = %s" % dc.url(),
             "username = %s" % dc.user, "password = %s" % dc.password,
             "ca_file = %s" % dc.ca_file, "idle_restart = 5s",
             "smtp_url = smtp://127.0.0.1:%d" % smtp_port, "from = %s" % MAILBOX, "",
             "[outbox]", "consumer = it", "backoff_base = 100ms", "backoff_max = 2s",
             "timeout = 5s"]
    return base_config(free_port(), redis_port, extra="\n".join(lines) + "\n")


def customer_mail(msgid, subject, body, in_reply_to=None, references=None):
    extra = ""
    if in_reply_to:
        extra += "In-Reply-To: %s\r\n" % in_reply_to
    if references:
        extra += "References: %s\r\n" % references
    return ("From: Ana Customer <%s>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: %s\r\n"
            "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n%sMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n"
            % (CUSTOMER, MAILBOX, subject, msgid, extra, body))


def events_of(r, etype):
    return [f for _, f in r.xrange("hark:{0}:events") if f["type"] == etype]


def pending(r):
    try:
        return r.xpending("hark:outbox", "harkd")["pending"]
    except Exception:
        return -1


def received(r, n):
    evs = wait_for(lambda: len(events_of(r, "message.received")) >= n and events_of(r, "message.received"),
                   timeout=20, what="%d message.received" % n)
    assert len(evs) == n
    return evs[n - 1]["conversation_id"], json.loads(evs[n - 1]["data"])


def send_reply(h, r, smtp, conv, text, key, n):
    """XADD a reply; return (parsed mail, raw envelope, message.sent data) of the n-th SMTP delivery."""
    r.xadd("hark:outbox", {"conversation_id": conv, "text": text, "idempotency_key": key})
    try:
        env = wait_for(lambda: len(smtp.messages()) >= n and smtp.messages()[n - 1], timeout=15,
                       what="SMTP delivery %d" % n)
    except AssertionError as e:
        raise AssertionError("%s; failed: %s; harkd log:\n%s" % (
            e, events_of(r, "message.failed"), h.log()[-3000:])) from None
    sent = wait_for(lambda: len(events_of(r, "message.sent")) >= n and events_of(r, "message.sent"),
                    what="message.sent %d" % n)[n - 1]
    wait_for(lambda: pending(r) == 0, what="outbox entry acknowledged")
    mail = email.message_from_bytes(env.content if isinstance(env.content, bytes) else env.content.encode(),
                                    policy=email.policy.default)
    return mail, env, json.loads(sent["data"])


def msgids(header_value):
    return [t for t in (header_value or "").split() if t]


def first_exchange(r, dc, smtp, start_harkd, redis_server, subject):
    dc.append(customer_mail("<first.123@mail.example.org>", subject,
                            "Hi, my order 123 has not arrived."))
    h = start_harkd(config(redis_server.port, dc, smtp.port))
    conv, inbound = received(r, 1)
    assert inbound["from"]["id"] == CUSTOMER and inbound["channel"] == "email"
    mail, env, sent = send_reply(h, r, smtp, conv, "¡Hola Ana! Sale hoy, lo siento.", "mail-1", 1)
    return h, conv, mail, env, sent


def test_reply_threads_and_the_customer_answer_joins_the_conversation(dovecot, smtp, start_harkd,
                                                                       redis_server):
    r = redis_server.client()
    h, conv, mail, env, sent = first_exchange(r, dovecot, smtp, start_harkd, redis_server,
                                              "Order 123 has not arrived")
    our_id = derive_id("outbound", "support", "mail-1")
    our_msgid = "<hark.%s@example.com>" % our_id

    # The SMTP envelope and the headers.
    assert env.mail_from == MAILBOX and env.rcpt_tos == [CUSTOMER]
    assert smtp.logins and smtp.logins[-1][1:] == (dovecot.user, dovecot.password)
    assert mail["From"].addresses[0].addr_spec == MAILBOX
    assert [a.addr_spec for a in mail["To"].addresses] == [CUSTOMER]
    assert str(mail["Subject"]) == "Re: Order 123 has not arrived"
    assert mail["Message-ID"] == our_msgid
    assert mail["In-Reply-To"] == "<first.123@mail.example.org>"
    refs = msgids(mail["References"])
    assert "<first.123@mail.example.org>" in refs
    assert all(t.startswith("<") and t.endswith(">") and "@" in t for t in refs), refs
    assert mail["Date"] is not None and mail["MIME-Version"] == "1.0"
    assert mail.get_content_type() == "text/plain" and mail.get_content_charset() == "utf-8"
    assert mail.get_content().rstrip("\r\n") == "¡Hola Ana! Sale hoy, lo siento."

    # The reply is recorded.
    assert sent["id"] == our_id and sent["status"] == "sent" and sent["channel"] == "email"
    assert sent["provider_message_id"] == our_msgid
    assert sent["to"]["id"] == CUSTOMER and sent["conversation_id"] == conv
    c = r.hgetall("hark:{0}:conv:%s" % conv)
    assert "unanswered_since" not in c and c["message_count"] == "2"
    assert len(events_of(r, "message.sent")) == 1 and r.xlen("hark:outbox:dead") == 0

    # The customer answers our reply with another subject: threading is by reference.
    dovecot.append(customer_mail("<second.456@mail.example.org>", "Another question",
                                 "Thanks! And can I change the address?", in_reply_to=our_msgid))
    conv2, second = received(r, 2)
    assert conv2 == conv and second["conversation_id"] == conv
    c = r.hgetall("hark:{0}:conv:%s" % conv)
    assert c["message_count"] == "3"
    assert "unanswered_since" in c
    assert r.lrange("hark:{0}:conv:%s:messages" % conv, 0, -1)[1] == our_id
    assert len(r.keys("hark:{0}:conv:*:messages")) == 1


def test_second_reply_references_the_whole_thread(dovecot, smtp, start_harkd, redis_server):
    """docs/outbox.md: References = the conversation's Message-IDs (first and newest),
    then the one answered; In-Reply-To = the customer's last Message-ID."""
    r = redis_server.client()
    h, conv, mail, env, sent = first_exchange(r, dovecot, smtp, start_harkd, redis_server,
                                              "RE: Order 124")
    assert str(mail["Subject"]) == "Re: Order 124"      # one "Re:", whatever its case
    our_msgid = mail["Message-ID"]
    dovecot.append(customer_mail("<second.789@mail.example.org>", "Re: Order 124",
                                 "Still nothing.", in_reply_to=our_msgid,
                                 references="<first.123@mail.example.org> " + our_msgid))
    conv2, _ = received(r, 2)
    assert conv2 == conv
    mail2, _, sent2 = send_reply(h, r, smtp, conv, "Checking with the courier.", "mail-2", 2)
    assert mail2["In-Reply-To"] == "<second.789@mail.example.org>"
    assert mail2["Message-ID"] != our_msgid and sent2["id"] != sent["id"]
    refs = msgids(mail2["References"])
    assert refs[0] == "<first.123@mail.example.org>", refs
    assert our_msgid in refs and refs[-1] == "<second.789@mail.example.org>", refs
    assert str(mail2["Subject"]) == "Re: Order 124"
    assert r.hget("hark:{0}:conv:%s" % conv, "message_count") == "4"
