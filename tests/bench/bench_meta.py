#!/usr/bin/python3
"""Benchmark of signed WhatsApp Cloud webhooks (type = meta) through harkd into Redis.

Every request is one `whatsapp_business_account` envelope shaped as Meta documents it,
carrying a batch: ENTRIES entries, each with one `messages` change holding PER_ENTRY text
messages from distinct wa_ids (one `contacts[]` profile each). Requests are pre-signed
(X-Hub-Signature-256 = "sha256=" + hex HMAC-SHA256(app_secret, raw body)) and driven by
wrk as in bench.py: each request is sent once; wrk is stopped once Redis holds every
message. Prints requests/s, messages/s, p50/p99 request latency, and checks that the
events stream holds exactly 2xx answers x messages per request.

    bench_meta.py [--requests 2000] [--entries 10] [--per-entry 5] [--scale 1.0]

As a library: run(scale) -> dict (also prints its lines).
"""
import argparse
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import redis  # noqa: E402
from bench import WRK_SCRIPT, _http_ok, peak_rss_kb, start_redis  # noqa: E402
from conftest import free_port, wait_for  # noqa: E402

SECRET = "bench-meta-app-secret-0123456789"
VERIFY = "bench-verify-token"
PATH = "/hooks/wa"
PHONE_ID = "106540352242922"
DISPLAY = "15550783881"
WABA_ID = "102290129340398"
# The per-message target of the Twilio benchmark, used as the yardstick for batches too.
TARGET_MSGS = 30000

TEXTS = ["Hi, my order has not arrived yet, can you check?",
         "Does it come in another color?",
         "¿Podéis cambiar la dirección de entrega? Gracias 🙏",
         "I was charged twice for order #{n}",
         "ok thanks"]


def envelope(req, entries, per_entry, ts):
    """One WhatsApp Cloud webhook body (dict) for request number req: entries x per_entry
    text messages, every message from its own wa_id with its own wamid."""
    entry_list = []
    for e in range(entries):
        contacts, messages = [], []
        for m in range(per_entry):
            n = (req * entries + e) * per_entry + m
            wa_id = "346%08d" % n
            contacts.append({"profile": {"name": "Customer %d" % n}, "wa_id": wa_id})
            messages.append({"from": wa_id, "id": "wamid.BENCH%020d" % n, "timestamp": str(ts),
                             "type": "text", "text": {"body": TEXTS[n % len(TEXTS)].format(n=n)}})
        entry_list.append({"id": WABA_ID, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PHONE_ID},
            "contacts": contacts, "messages": messages}}]})
    return {"object": "whatsapp_business_account", "entry": entry_list}


def signature(body):
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def write_requests(path, n, entries, per_entry):
    """One pre-signed request per line: signature TAB body (compact JSON, non-ASCII
    escaped as Meta sends it, so no tab or newline inside). Returns the mean body size."""
    ts = int(time.time()) - 60
    size = 0
    with open(path, "w") as f:
        for req in range(n):
            body = json.dumps(envelope(req, entries, per_entry, ts), separators=(",", ":")).encode()
            size += len(body)
            f.write(signature(body) + "\t" + body.decode() + "\n")
    return size / max(n, 1)


def drive(tmp, rport, n, entries, per_entry, workers):
    """Start harkd with a meta channel, send n requests with wrk, wait until Redis holds
    every message (or the count stops growing for 2 s), stop wrk; return the figures."""
    hport = free_port()
    conf = os.path.join(tmp, "meta.conf")
    with open(conf, "w") as f:
        f.write(f"[server]\nlisten = 127.0.0.1:{hport}\npublic_url = https://hooks.bench.test\n"
                f"workers = {workers}\nmax_body = 1m\n\n"
                f"[redis]\nurl = redis://127.0.0.1:{rport}/0\nevents_maxlen = 100000000\n\n"
                f"[log]\nlevel = warn\n\n"
                f"[channel.wa]\ntype = meta\npath = {PATH}\napp_secret = ${{BENCH_META_SECRET}}\n"
                f"verify_token = ${{BENCH_META_VERIFY}}\n")
    reqs = os.path.join(tmp, "meta-requests.tsv")
    body_size = write_requests(reqs, n, entries, per_entry)
    script = os.path.join(tmp, "meta.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT)
    env = dict(os.environ, BENCH_META_SECRET=SECRET, BENCH_META_VERIFY=VERIFY)
    log = open(os.path.join(tmp, "harkd-meta.log"), "w")
    harkd = subprocess.Popen([os.path.join(ROOT, "build", "harkd"), "-c", conf], stderr=log, env=env)
    r = redis.Redis(port=rport, decode_responses=True)
    expected = n * entries * per_entry
    try:
        wait_for(lambda: _http_ok(f"http://127.0.0.1:{hport}/readyz"), what="harkd")
        wrk = subprocess.Popen(["wrk", "-t2", "-c64", "-d600s", "--timeout", "10s", "-s", script,
                                f"http://127.0.0.1:{hport}{PATH}", "--", reqs, "2",
                                "application/json", "X-Hub-Signature-256"],
                               stdout=subprocess.PIPE, text=True)
        last, still = -1, 0
        while still < 40:
            time.sleep(0.05)
            count = r.xlen("hark:{0}:events")
            still = still + 1 if count == last else 0
            last = count
            if count >= expected:
                time.sleep(0.5)
                break
        wrk.send_signal(signal.SIGINT)
        out = wrk.communicate(timeout=60)[0]
        rss = peak_rss_kb(harkd.pid)
        first = r.xrange("hark:{0}:events", count=1)
        last_id = r.xrevrange("hark:{0}:events", count=1)
    finally:
        harkd.send_signal(signal.SIGTERM)
        harkd.wait(30)
        log.close()
    span_ms = (int(last_id[0][0].split("-")[0]) - int(first[0][0].split("-")[0])) if first else 0
    m = re.search(r"BENCH ok2xx=(\d+) requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) "
                  r"errors=(\d+)", out)
    if not m:
        raise RuntimeError("wrk gave no figures:\n" + out)
    ok, total, _dur, p50, p99, errors = map(int, m.groups())
    return {"ok2xx": ok, "requests": total, "errors": errors, "seconds": max(span_ms, 1) / 1000,
            "p50_ms": p50 / 1000, "p99_ms": p99 / 1000, "rss_mb": rss / 1024, "body_bytes": body_size}


def run(scale=1.0, requests=2000, entries=10, per_entry=5, workers=0):
    """Run the WhatsApp Cloud benchmark; print its lines; return a dict of figures
    (requests_per_s, messages_per_s, p50_ms, p99_ms, events, expected_events, consistent)."""
    tmp = tempfile.mkdtemp(prefix="hark-bench-meta-")
    per_req = entries * per_entry
    try:
        rproc, rport, r = start_redis(tmp)
        try:
            res = drive(tmp, rport, requests, entries, per_entry, workers or os.cpu_count() or 1)
            events = r.xlen("hark:{0}:events")
            msgs = sum(1 for _ in r.scan_iter("hark:{0}:msg:*", count=10000))
        finally:
            rproc.terminate()
            rproc.wait(10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    secs = res["seconds"]
    rps = res["ok2xx"] / secs
    mps = events / secs
    expected = res["ok2xx"] * per_req
    consistent = events == expected and msgs == expected
    print(f"meta/whatsapp webhooks: {res['ok2xx']:,} of {res['requests']:,} requests answered 2xx "
          f"({per_req} messages each = {entries} entries x {per_entry}, {res['body_bytes'] / 1024:.1f} KB) "
          f"in {secs:.1f}s = {rps:,.0f} requests/s, {mps:,.0f} messages/s "
          f"(Twilio per-message target {TARGET_MSGS:,} x {scale:.2f} = {TARGET_MSGS * scale:,.0f})")
    print(f"meta latency per request: p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms; "
          f"harkd peak RSS {res['rss_mb']:.1f} MB")
    print(f"meta events in redis: {events:,}, messages stored: {msgs:,}; 2xx x {per_req} = {expected:,} -> "
          f"{'consistent' if consistent else 'MISMATCH'}")
    return {"requests": res["requests"], "ok2xx": res["ok2xx"], "errors": res["errors"],
            "seconds": secs, "requests_per_s": rps, "messages_per_s": mps, "p50_ms": res["p50_ms"],
            "p99_ms": res["p99_ms"], "rss_mb": res["rss_mb"], "events": events, "messages": msgs,
            "expected_events": expected, "consistent": consistent,
            "target_messages_per_s": TARGET_MSGS * scale}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--entries", type=int, default=10)
    ap.add_argument("--per-entry", type=int, default=5)
    ap.add_argument("--workers", type=int, default=0, help="0: one per CPU")
    ap.add_argument("--scale", type=float, default=1.0, help="this machine / reference machine")
    args = ap.parse_args()
    res = run(args.scale, args.requests, args.entries, args.per_entry, args.workers)
    return 0 if res["consistent"] else 1


if __name__ == "__main__":
    sys.exit(main())
