"""A local stand-in for the provider APIs harkd sends replies to.

One threaded HTTP server on loopback answers like each documented API:
  Twilio   POST /2010-04-01/Accounts/{sid}/Messages.json          -> 201 Message resource
  Vonage   POST /sms/json                                           -> 200 messages[0].message-id
  Meta     POST /{ver}/me/messages                                  -> 200 recipient_id, message_id
           POST /{ver}/{phone_number_id}/messages (WhatsApp Cloud)  -> 200 messages[0].id
           POST /{ver}/{comment_id}/comments (Page feed reply)      -> 200 id
  Telegram POST /bot{token}/sendMessage                             -> 200 ok, result.message_id
  X        POST /2/dm_conversations/with/{id}/messages              -> 201 data.dm_event_id
           POST /2/tweets                                           -> 201 data.id
Every request is recorded (method, path, headers, body, time). A test can
script the next answers: a status with headers and body, "timeout" (no
answer until the client gives up), "malformed" (a 2xx that is not JSON) or
"close" (the connection is dropped).
"""
import itertools
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorded:
    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.at = time.monotonic()

    def form(self):
        return urllib.parse.parse_qs(self.body.decode(), keep_blank_values=True)

    def json(self):
        return json.loads(self.body)


class MockProviders:
    def __init__(self):
        self.requests = []
        self.script_queue = []
        self.lock = threading.Lock()
        self.counter = itertools.count(1)
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                mock._handle(self)

            do_GET = do_POST
            do_DELETE = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def script(self, *answers):
        """Queue answers for the next requests: (status, headers, body), "timeout",
        "malformed" or "close". Unscripted requests get the provider's normal answer."""
        with self.lock:
            self.script_queue.extend(answers)

    def wait_requests(self, n, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            time.sleep(0.02)
        raise AssertionError(f"expected {n} provider requests, got {len(self.requests)}")

    # -- the providers' normal answers --
    def _normal(self, path, body):
        n = next(self.counter)
        if "/Messages.json" in path and path.startswith("/2010-04-01/Accounts/"):
            sid = "SM%032x" % n
            form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
            return 201, {"sid": sid, "status": "queued", "to": form.get("To", [""])[0],
                         "from": form.get("From", [""])[0], "body": form.get("Body", [""])[0],
                         "num_media": str(len(form.get("MediaUrl", []))), "error_code": None}
        if path == "/sms/json":
            return 200, {"message-count": "1",
                         "messages": [{"status": "0", "message-id": "%016X" % n}]}
        if path.endswith("/me/messages"):
            return 200, {"recipient_id": "PSID", "message_id": "m_%d" % n}
        if path.endswith("/comments"):
            return 200, {"id": "comment_%d" % n}
        if path.endswith("/messages") and path.count("/") == 3 and not path.startswith("/2/"):
            return 200, {"messaging_product": "whatsapp", "contacts": [],
                         "messages": [{"id": "wamid.%d" % n}]}
        if path.startswith("/bot") and path.endswith("/sendMessage"):
            # The result is the sent Message, which names its chat (Bot API).
            try:
                chat = json.loads(body).get("chat_id")
            except (ValueError, AttributeError):
                chat = None
            return 200, {"ok": True, "result": {"message_id": n, "date": int(time.time()),
                                                "chat": {"id": chat, "type": "private"}}}
        if path.startswith("/2/dm_conversations/"):
            return 201, {"data": {"dm_conversation_id": "1-2", "dm_event_id": str(10**18 + n)}}
        if path == "/2/tweets":
            return 201, {"data": {"id": str(10**18 + n), "text": ""}}
        return 404, {"error": "no such mock route", "path": path}

    def _handle(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        rec = Recorded(h.command, h.path, {k.lower(): v for k, v in h.headers.items()}, body)
        with self.lock:
            self.requests.append(rec)
            answer = self.script_queue.pop(0) if self.script_queue else None
        if answer == "timeout":
            time.sleep(30)
            return
        if answer == "close":
            h.close_connection = True
            h.connection.close()
            return
        if answer == "malformed":
            payload, status, headers = b"{not json", 201, {}
        elif answer is not None:
            status, headers, obj = answer
            payload = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        else:
            status, obj = self._normal(h.path.split("?")[0], body)
            headers, payload = {}, json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(payload)


if __name__ == "__main__":
    m = MockProviders()
    print(m.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        m.close()
