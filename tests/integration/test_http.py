"""The HTTP/1.1 server from the outside, with raw sockets: framing, keep-alive,
pipelining, chunked bodies, 100-continue, limits, timeouts and clients that leave."""
import re
import socket
import time
import urllib.parse

import pytest
from twilio.request_validator import RequestValidator

from conftest import base_config, free_port, wait_for
from twilio_client import PUBLIC_URL, sms

TOKEN = "it-http-token"
PATH = "/hooks/sms"


def config(redis_port, server_extra=""):
    conf = base_config(free_port(), redis_port, f"[channel.sms]\ntype = twilio\nauth_token = {TOKEN}\n")
    return conf.replace("drain_timeout = 10s\n", "drain_timeout = 10s\n" + server_extra)


@pytest.fixture
def harkd(redis_server, start_harkd):
    return start_harkd(config(redis_server.port))


def signed_form(sid, body="Hola", path=PATH):
    params = sms(sid, body=body)
    sig = RequestValidator(TOKEN).compute_signature(PUBLIC_URL + path, params)
    return sig, urllib.parse.urlencode(params).encode()


def post_bytes(sid, body="Hola", extra_headers=b"", path=PATH, target=None):
    sig, form = signed_form(sid, body, path)
    head = (f"POST {target or path} HTTP/1.1\r\nHost: hooks.example.test\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: {sig}\r\n"
            f"Content-Length: {len(form)}\r\n").encode()
    return head + extra_headers + b"\r\n" + form


def connect(harkd):
    s = socket.create_connection(("127.0.0.1", harkd.port), timeout=5)
    return s


def read_responses(sock, count, head_only=False):
    """Read exactly count responses (Content-Length framed); returns [(status, headers, body)].
    head_only: True, or one flag per response, for answers to HEAD (no body)."""
    buf, out = b"", []
    while len(out) < count:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed after {len(out)} responses: {buf!r}")
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        if status == 100:
            out.append((100, headers, b""))
            continue
        no_body = head_only[len(out)] if isinstance(head_only, list) else head_only
        n = 0 if no_body else int(headers["content-length"])
        while len(buf) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError("connection closed inside a body")
            buf += chunk
        out.append((status, headers, buf[:n]))
        buf = buf[n:]
    assert buf == b"", f"unexpected bytes after {count} responses: {buf!r}"
    return out


def closed_by_server(sock, timeout=5.0):
    """True when the server closes the connection (EOF or reset) within timeout."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def stored_texts(r):
    import json
    return [json.loads(f["data"])["text"] for _, f in r.xrange("hark:{0}:events")]


def test_keep_alive_serves_many_requests_on_one_connection(harkd):
    s = connect(harkd)
    for _ in range(3):
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        (status, headers, body), = read_responses(s, 1)
        assert (status, body) == (200, b"ok\n")
        assert headers["connection"] == "keep-alive"
        assert re.fullmatch(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT",
                            headers["date"])
    s.close()


def test_pipelined_requests_are_answered_in_order(harkd, redis_server):
    s = connect(harkd)
    s.sendall(post_bytes("SM" + "1" * 32, "first") + b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n" +
              post_bytes("SM" + "2" * 32, "second") + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    got = read_responses(s, 4)
    assert [g[0] for g in got] == [200, 404, 200, 200]
    assert b"<Response/>" in got[0][2] and got[3][2] == b"ok\n"
    assert stored_texts(redis_server.client()) == ["first", "second"]


def test_chunked_body_with_extensions_and_trailers(harkd, redis_server):
    sig, form = signed_form("SM" + "3" * 32, "troceado en partes")
    parts = [form[:7], form[7:40], form[40:]]
    body = b"".join(b"%x;note=x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\nX-Trailer: 1\r\n\r\n"
    s = connect(harkd)
    s.sendall(b"POST /hooks/sms HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              b"Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: " +
              sig.encode() + b"\r\n\r\n")
    for i in range(0, len(body), 11):       # the body arrives in small pieces
        s.sendall(body[i:i + 11])
        time.sleep(0.002)
    (status, _, _), = read_responses(s, 1)
    assert status == 200
    assert stored_texts(redis_server.client()) == ["troceado en partes"]


def test_expect_100_continue(harkd, redis_server):
    data = post_bytes("SM" + "4" * 32, "con permiso", b"Expect: 100-continue\r\n")
    head, form = data.split(b"\r\n\r\n", 1)
    s = connect(harkd)
    s.sendall(head + b"\r\n\r\n")
    (status, _, _), = read_responses(s, 1)
    assert status == 100
    s.sendall(form)
    (status, _, _), = read_responses(s, 1)
    assert status == 200
    assert stored_texts(redis_server.client()) == ["con permiso"]


def test_oversized_length_is_refused_before_the_body(harkd, redis_server):
    s = connect(harkd)
    s.sendall(b"POST /hooks/sms HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n")
    (status, headers, _), = read_responses(s, 1)
    assert status == 413 and headers["connection"] == "close"
    assert closed_by_server(s)
    assert redis_server.stored() == 0


def test_oversized_chunked_body_gets_413(harkd, redis_server):
    s = connect(harkd)
    s.sendall(b"POST /hooks/sms HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"4000\r\n" + b"a" * 0x4000 + b"\r\n"
    status = None
    try:
        for _ in range(5):      # 80 KiB of data against max_body = 64k
            s.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    (status, _, _), = read_responses(s, 1)
    assert status == 413
    assert redis_server.stored() == 0


@pytest.mark.parametrize("request_bytes,want", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    (b"POST /hooks/sms HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"POST /hooks/sms HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
    (b"POST /hooks/sms HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
    (b"POST /hooks/sms HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", 417),
    (b"GET /healthz HTTP/1.1\r\nX: a\x01b\r\n\r\n", 400),
    (b"POST /hooks/sms HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
])
def test_malformed_requests_get_an_error_and_close(harkd, redis_server, request_bytes, want):
    s = connect(harkd)
    s.sendall(request_bytes)
    (status, headers, _), = read_responses(s, 1)
    assert status == want and headers["connection"] == "close"
    assert closed_by_server(s)
    assert redis_server.stored() == 0
    assert harkd.proc.poll() is None


def test_too_large_header_block_gets_431(harkd):
    s = connect(harkd)
    s.sendall(b"GET /healthz HTTP/1.1\r\n" + b"X-Pad: " + b"p" * 20000 + b"\r\n\r\n")
    (status, _, _), = read_responses(s, 1)
    assert status == 431
    assert closed_by_server(s)


def test_too_many_header_fields_get_431(harkd):
    s = connect(harkd)
    s.sendall(b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(80)) + b"\r\n")
    (status, _, _), = read_responses(s, 1)
    assert status == 431


def test_http10_closes_unless_kept_alive(harkd):
    s = connect(harkd)
    s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
    (status, headers, _), = read_responses(s, 1)
    assert status == 200 and headers["connection"] == "close"
    assert closed_by_server(s)
    s = connect(harkd)
    for _ in range(2):
        s.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        (status, headers, _), = read_responses(s, 1)
        assert status == 200 and headers["connection"] == "keep-alive"


def test_connection_close_from_the_client(harkd):
    s = connect(harkd)
    s.sendall(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
    (status, headers, _), = read_responses(s, 1)
    assert status == 200 and headers["connection"] == "close"
    assert closed_by_server(s)


def test_head_has_length_but_no_body(harkd):
    s = connect(harkd)
    s.sendall(b"HEAD /healthz HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n")
    (status, headers, body), (status2, _, body2) = read_responses(s, 2, head_only=[True, False])
    assert status == 200 and headers["content-length"] == "3" and body == b""
    # The next answer starts right after the HEAD answer's head: no stray body bytes.
    assert (status2, body2) == (200, b"ok\n")


def test_absolute_form_target_is_routed_and_verified(harkd, redis_server):
    s = connect(harkd)
    s.sendall(post_bytes("SM" + "5" * 32, "absoluta", target="http://hooks.example.test" + PATH))
    (status, _, _), = read_responses(s, 1)
    assert status == 200
    assert stored_texts(redis_server.client()) == ["absoluta"]


def test_client_leaving_before_the_answer_loses_nothing(harkd, redis_server):
    r = redis_server.client()
    for i in range(20):
        s = connect(harkd)
        s.sendall(post_bytes("SM%032d" % i, f"adiós {i}"))
        s.close()
    wait_for(lambda: r.xlen("hark:{0}:events") == 20, what="the 20 messages of departed clients")
    assert harkd.proc.poll() is None
    assert urllib_ok(harkd)


def urllib_ok(harkd):
    s = connect(harkd)
    s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
    return read_responses(s, 1)[0][0] == 200


def test_idle_and_slow_connections_time_out(redis_server, start_harkd):
    h = start_harkd(config(redis_server.port, "request_timeout = 1s\n"))
    idle = connect(h)
    slow = connect(h)
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")     # never finished
    t0 = time.monotonic()
    assert closed_by_server(idle, 5) and closed_by_server(slow, 5)
    assert time.monotonic() - t0 < 4
    # A connection that keeps asking stays open past the timeout.
    busy = connect(h)
    for _ in range(4):
        busy.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
        assert read_responses(busy, 1)[0][0] == 200
        time.sleep(0.4)


def test_many_concurrent_connections(harkd, redis_server):
    socks = [connect(harkd) for _ in range(200)]
    for i, s in enumerate(socks):
        s.sendall(post_bytes("SM%032d" % (1000 + i), f"m{i}"))
    for s in socks:
        assert read_responses(s, 1)[0][0] == 200
    assert redis_server.client().xlen("hark:{0}:events") == 200


def test_idle_keep_alive_connections_do_not_delay_shutdown(harkd):
    s = connect(harkd)
    s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
    assert read_responses(s, 1)[0][0] == 200
    t0 = time.monotonic()
    assert harkd.stop() == 0
    assert time.monotonic() - t0 < 5        # drain_timeout is 10 s: nothing waited for it
    assert closed_by_server(s, 1)
