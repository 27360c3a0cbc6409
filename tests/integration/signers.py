"""Sign and send provider webhooks the way each provider documents it.

Every signature is computed here with hmac/hashlib from the provider's
documented algorithm (docs/adapters/<name>.md, shared/vectors/check.py), never
by asking harkd. `selfcheck_vectors()` recomputes the shared vectors with these
same functions so a wrong signer fails loudly instead of making every test 403.
"""
import base64
import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

from conftest import VECTORS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")


# --- generic HTTP ---------------------------------------------------------

def request(harkd, path, body=b"", method="POST", headers=None, query=None, timeout=10):
    """Send one request to harkd; returns (status, body text, headers dict)."""
    url = harkd.url + path
    if query is not None:
        url += "?" + (query if isinstance(query, str) else urllib.parse.urlencode(query))
    data = body if method not in ("GET", "HEAD") else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace"), dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace"), dict(e.headers)


def load(adapter, name):
    """Raw bytes of tests/data/<adapter>/<name>."""
    with open(os.path.join(DATA, adapter, name), "rb") as f:
        return f.read()


def load_json(adapter, name):
    return json.loads(load(adapter, name))


def dumps(obj):
    """Serialize like the providers do: compact, non-ASCII escaped as \\uXXXX."""
    return json.dumps(obj, separators=(",", ":")).encode()


# --- Meta: X-Hub-Signature-256 = "sha256=" + hex HMAC-SHA256(app_secret, raw body)

def meta_signature(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def meta_post(harkd, path, body, secret, signature=None):
    body = body if isinstance(body, bytes) else dumps(body)
    headers = {"Content-Type": "application/json"}
    sig = meta_signature(secret, body) if signature is None else signature
    if sig:
        headers["X-Hub-Signature-256"] = sig
    return request(harkd, path, body, headers=headers)


# --- X: CRC and x-twitter-webhooks-signature = "sha256=" + base64 HMAC-SHA256

def x_hmac_b64(secret, data):
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha256).digest()).decode()


def x_post(harkd, path, body, secret, signature=None):
    body = body if isinstance(body, bytes) else dumps(body)
    headers = {"Content-Type": "application/json"}
    sig = x_hmac_b64(secret, body) if signature is None else signature
    if sig:
        headers["x-twitter-webhooks-signature"] = sig
    return request(harkd, path, body, headers=headers)


# --- Telegram: the secret_token given to setWebhook, echoed in a header

def telegram_post(harkd, path, body, secret):
    body = body if isinstance(body, bytes) else dumps(body)
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return request(harkd, path, body, headers=headers)


# --- Vonage: sig over "&name=value" sorted, "&"/"=" in values as "_"

def vonage_signed_input(params):
    parts = []
    for name in sorted(params, key=lambda k: k.encode()):
        if name == "sig":
            continue
        value = str(params[name]).replace("&", "_").replace("=", "_")
        parts.append(f"&{name}={value}")
    return "".join(parts)


def vonage_sig(params, secret, method="md5hash"):
    msg = vonage_signed_input(params).encode()
    if method == "md5hash":
        return hashlib.md5(msg + secret.encode()).hexdigest()
    digest = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256,
              "sha512": hashlib.sha512}[method]
    return hmac.new(secret.encode(), msg, digest).hexdigest()


def vonage_sign(params, secret, method="md5hash", ts=None):
    """Copy of params with a fresh `timestamp` and the `sig` added."""
    out = dict(params)
    out["timestamp"] = str(int(time.time()) if ts is None else ts)
    out.pop("sig", None)
    out["sig"] = vonage_sig(out, secret, method)
    return out


def vonage_post(harkd, path, params, as_json=False, method="POST"):
    """Send already signed params as a form (or JSON) body, or as a GET query."""
    if method == "GET":
        return request(harkd, path, method="GET", query=params)
    if as_json:
        return request(harkd, path, dumps(params), headers={"Content-Type": "application/json"})
    return request(harkd, path, urllib.parse.urlencode(params).encode(),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})


# --- web: X-Hark-Signature = "sha256=" + hex HMAC-SHA256(secret, ts + "." + body)

def web_signature(secret, ts, body):
    return "sha256=" + hmac.new(secret.encode(), str(ts).encode() + b"." + body,
                                hashlib.sha256).hexdigest()


def web_post(harkd, path, body, secret, ts=None, signature=None, timestamp_header=None):
    body = body if isinstance(body, bytes) else dumps(body)
    ts = int(time.time()) if ts is None else ts
    headers = {"Content-Type": "application/json"}
    headers["X-Hark-Timestamp"] = str(ts) if timestamp_header is None else timestamp_header
    sig = web_signature(secret, ts, body) if signature is None else signature
    if sig:
        headers["X-Hark-Signature"] = sig
    if timestamp_header == "":
        del headers["X-Hark-Timestamp"]
    return request(harkd, path, body, headers=headers)


# --- store helpers --------------------------------------------------------

def derive_id(ns, account, key):
    """hark_derive_id (src/msg.c): SHA-256(ns NUL account NUL key), first 16 bytes hex."""
    return hashlib.sha256(ns.encode() + b"\0" + account.encode() + b"\0" + key.encode()).hexdigest()[:32]


def inject_outbound(r, channel, provider, account, pmid, to_id, conv_id, contact_id,
                    status="sent", text="Your order ships today", our_id=None):
    """Write an outbound message the way the outbox does after a send.

    Keys: hark:{0}:msg:<id> with "status","error","conversation_id","contact_id"
    last (docs/events.md), and hark:{0}:pmid:<derive_id(channel, account, pmid)>
    → id. Returns our message id.
    """
    our = derive_id("out", account, pmid)
    msg = {"id": our, "v": 1, "channel": channel, "provider": provider, "account": account,
           "direction": "outbound", "from": {"id": our_id}, "to": {"id": to_id},
           "text": text, "reply_text": text, "attachments": [], "provider_message_id": pmid,
           "thread": {}, "sent_at": 1750030000000, "received_at": 1750030000000,
           "extra": {}, "status": status, "error": None,
           "conversation_id": conv_id, "contact_id": contact_id}
    r.set(f"hark:{{0}}:msg:{our}", json.dumps(msg, separators=(",", ":")))
    r.set(f"hark:{{0}}:pmid:{derive_id(channel, account, pmid)}", our)
    return our


def events(r):
    return r.xrange("hark:{0}:events")


def event_data(r):
    """[(type, fields, data dict)] of every event entry."""
    return [(f["type"], f, json.loads(f["data"])) for _, f in events(r)]


def stored(r, msg_id):
    raw = r.get(f"hark:{{0}}:msg:{msg_id}")
    return json.loads(raw) if raw is not None else None


def assert_one_event_per_message(r):
    """Every stored message has exactly one message.received/message.sent entry."""
    keys = sorted(k.rsplit(":", 1)[1] for k in r.scan_iter("hark:{0}:msg:*"))
    created = sorted(f["message_id"] for _, f in events(r)
                     if f["type"] in ("message.received", "message.sent"))
    assert keys == created, (keys, created)


def deep(n, leaf=1):
    """A JSON value nested n arrays deep."""
    return ("[" * n + json.dumps(leaf) + "]" * n).encode()


# --- self-check against the shared vectors ---------------------------------

def selfcheck_vectors(provider):
    """Recompute every vector of `provider` with the signers above."""
    with open(os.path.join(VECTORS, "signatures.json")) as f:
        vectors = [v for v in json.load(f) if v["provider"] == provider]
    assert vectors, f"no {provider} vectors in {VECTORS}"
    for v in vectors:
        want, data = v["expected_header_value"], v["signed_input"].encode()
        if provider == "meta":
            got = meta_signature(v["secret"], data)
        elif provider == "x":
            got = x_hmac_b64(v["secret"], data)
        elif provider == "vonage":
            method = {"md5-concat-hex": "md5hash", "hmac-md5-hex": "md5", "hmac-sha1-hex": "sha1",
                      "hmac-sha256-hex": "sha256", "hmac-sha512-hex": "sha512"}[v["algorithm"]]
            params = v.get("params")
            if isinstance(params, dict):
                assert vonage_signed_input(params) == v["signed_input"], v["name"]
            got = vonage_sig(params if isinstance(params, dict) else {}, v["secret"], method) \
                if isinstance(params, dict) else None
            if got is None:
                continue
            got, want = got.lower(), want.lower()
        else:
            raise ValueError(provider)
        assert got == want, (provider, v["name"], got, want)
    return len(vectors)


# --- one harkd per module for the many 4xx cases ------------------------------

def module_stack(config_for, env=None):
    """A module-scoped fixture: (harkd, redis server) started once for a test file.

    The parametrized rejection tests (bad signatures, hostile bodies) each
    need a clean database, not a fresh daemon; `fast_fixture` flushes the
    database before every test. The daemon is stopped (and its log checked
    for sanitizer reports) when the module ends.
    """
    import shutil
    import tempfile

    import pytest

    from conftest import Harkd, RedisServer

    @pytest.fixture(scope="module")
    def stack():
        d = tempfile.mkdtemp(prefix="hark-it-")
        server = RedisServer(d)
        try:
            h = Harkd(config_for(server.port), d, env=env)
            try:
                yield h, server
            finally:
                h.stop()
        finally:
            server.stop()
            shutil.rmtree(d, ignore_errors=True)

    return stack


def fast_fixture():
    import pytest

    @pytest.fixture
    def fast(stack):
        h, server = stack
        assert h.proc.poll() is None, "shared harkd died: " + h.log()[-3000:]
        server.client().flushdb()
        return h, server

    return fast
