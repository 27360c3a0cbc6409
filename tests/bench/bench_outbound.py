#!/usr/bin/python3
"""Benchmark of the outbound path: replies/s from <prefix>:outbox to a mock Twilio API.

Starts a private redis-server, the mock providers and harkd ([outbox]
max_connections = 64), files N conversations directly in Redis, queues one
reply per conversation and prints sends/s once every entry is acknowledged.
Prints figures only; asserts nothing about speed.

    bench_outbound.py --harkd build/harkd [-n 5000]
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import redis  # noqa: E402
from mock_providers import MockProviders  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench_outbound: timed out waiting for {what}")
        time.sleep(0.01)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--harkd", default="build/harkd")
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--provider", choices=["nginx", "mock"], default="nginx",
                    help="nginx: a static Twilio-shaped answer, so the provider is never the "
                         "bottleneck; mock: the Python mock of tests/integration")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="hark-bench-out-")
    rport, hport = free_port(), free_port()
    rs = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", work],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mock = NginxTwilio(work) if args.provider == "nginx" else MockProviders()
    h = None
    try:
        r = redis.Redis(port=rport, decode_responses=True)
        wait(lambda: _ping(r), 10, "redis-server")
        conf = os.path.join(work, "harkd.conf")
        with open(conf, "w") as f:
            f.write(f"[server]\nlisten = 127.0.0.1:{hport}\npublic_url = https://bench.test\nworkers = 1\n\n"
                    f"[redis]\nurl = redis://127.0.0.1:{rport}/0\nprefix = hark\n\n[log]\nlevel = warn\n\n"
                    f"[channel.sms-main]\ntype = twilio\nauth_token = bench-token\n"
                    f"account_sid = AC{'1' * 32}\napi_url = {mock.url}\n\n"
                    f"[outbox]\nmax_connections = {args.connections}\nconcurrency = {args.connections}\n"
                    f"max_inflight = 1024\n")
        pipe = r.pipeline(transaction=False)
        for i in range(args.n):
            pipe.hset(f"hark:{{0}}:conv:bench{i}", mapping={
                "id": f"bench{i}", "contact_id": f"c{i}", "channel": "sms", "account": "sms-main",
                "status": "open", "customer_id": "+3461%07d" % i, "our_id": "+15557654321"})
        pipe.execute()
        h = subprocess.Popen([args.harkd, "-c", conf], stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(work, "harkd.log"), "w"))
        wait(lambda: r.exists("hark:outbox"), 20, "the outbox consumer group")
        start = time.monotonic()
        pipe = r.pipeline(transaction=False)
        for i in range(args.n):
            pipe.xadd("hark:outbox", {"conversation_id": f"bench{i}", "text": f"reply {i}",
                                      "idempotency_key": f"bench-{i}"})
        pipe.execute()
        wait(lambda: r.xpending("hark:outbox", "harkd")["pending"] == 0 and
             r.xlen("hark:{0}:events") >= args.n, 600, "all replies")
        elapsed = time.monotonic() - start
        print(f"outbound: {args.n} replies in {elapsed:.2f}s = {args.n / elapsed:.0f} sends/s "
              f"(max {args.connections} connections, provider: {args.provider})")
    finally:
        if h is not None:
            h.terminate()
            h.wait(20)
        mock.close()
        rs.terminate()
        rs.wait(10)
        shutil.rmtree(work, ignore_errors=True)


class NginxTwilio:
    """nginx answering every request like Twilio's Messages API (201 with a sid)."""

    def __init__(self, work):
        root = os.path.join(work, "nginx")
        os.makedirs(os.path.join(root, "logs"), exist_ok=True)
        os.chmod(work, 0o755)
        port = free_port()
        conf = os.path.join(root, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""worker_processes 1; daemon off; pid {root}/nginx.pid; error_log {root}/logs/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; keepalive_requests 1000000; client_body_buffer_size 64k;
  client_body_temp_path {root}/tmp; proxy_temp_path {root}/tmp; fastcgi_temp_path {root}/tmp;
  uwsgi_temp_path {root}/tmp; scgi_temp_path {root}/tmp;
  server {{ listen 127.0.0.1:{port};
    location / {{ default_type application/json;
      return 201 '{{"sid":"SMbench0000000000000000000000000000","status":"queued"}}'; }} }} }}
""")
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", root], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}"
        self.requests = []
        wait(lambda: _port_open(port), 10, "nginx")

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


def _port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _ping(r):
    try:
        return r.ping()
    except redis.exceptions.ConnectionError:
        return False


if __name__ == "__main__":
    main()
