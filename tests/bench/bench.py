#!/usr/bin/python3
"""make bench: figures for harkd, with the machine's reference measured in the same run.

Prints, for signed Twilio webhooks driven by wrk from pre-signed requests:
messages/s, p50/p99 latency, harkd's peak RSS, and checks that the number of
events in Redis equals the number of 2xx answers. In the same run it measures
the Redis ceiling (redis-benchmark running harkd's own ingest script, one
message per call, on the same message mix) and nginx serving a static body
(wrk -t2 -c64), the reference the issue targets are stated against
(340,000 req/s). Targets are printed next to the figures, scaled to this
machine; nothing here fails on speed.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import redis  # noqa: E402
from conftest import free_port, wait_for  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

REFERENCE_NGINX_RPS = 340000
TOKEN = "bench-token"
PUBLIC = "https://hooks.bench.test"


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def nginx_reference(tmp):
    """Requests/s of nginx answering a static body, wrk -t2 -c64."""
    if not shutil.which("nginx"):
        return None
    port = free_port()
    root = os.path.join(tmp, "nginx")
    os.makedirs(os.path.join(root, "logs"), exist_ok=True)
    # nginx started as root serves files as an unprivileged user: let it read them.
    os.chmod(tmp, 0o755)
    os.chmod(root, 0o755)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("ok\n")
    conf = os.path.join(root, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 2; daemon off; pid {root}/nginx.pid; error_log {root}/logs/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; keepalive_requests 1000000;
  client_body_temp_path {root}/tmp; proxy_temp_path {root}/tmp; fastcgi_temp_path {root}/tmp;
  uwsgi_temp_path {root}/tmp; scgi_temp_path {root}/tmp;
  server {{ listen 127.0.0.1:{port}; location / {{ root {root}; }} }} }}
""")
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", root], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _http_ok(f"http://127.0.0.1:{port}/index.html"), what="nginx")
        out = sh(["wrk", "-t2", "-c64", "-d5s", f"http://127.0.0.1:{port}/index.html"]).stdout
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        return float(m.group(1)) if m else None
    finally:
        proc.terminate()
        proc.wait(10)


def _http_ok(url):
    try:
        return urllib.request.urlopen(url, timeout=1).status == 200
    except OSError:
        return False


def twilio_params(i):
    return {"MessageSid": f"SM{i:032d}", "AccountSid": "AC" + "0" * 32,
            "From": f"+3461{i % 100000:07d}", "To": "+15557654321",
            "Body": f"Order #{i} has not arrived, can you help?", "NumMedia": "0",
            "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01"}


def write_requests(path, n, url_path):
    """One pre-signed request per line: signature TAB body."""
    validator = RequestValidator(TOKEN)
    with open(path, "w") as f:
        for i in range(n):
            p = twilio_params(i)
            sig = validator.compute_signature(PUBLIC + url_path, p)
            f.write(sig + "\t" + urllib.parse.urlencode(p) + "\n")


WRK_SCRIPT = r"""
-- Each wrk thread sends its own share of the pre-signed requests, once each;
-- then it only asks /healthz (which stores nothing) until bench.py, having
-- seen every message in Redis, stops wrk with SIGINT.
local threads = {}
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  reqs = {}
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == tid then
      local sig, body = line:match("([^\t]+)\t(.*)")
      reqs[#reqs + 1] = wrk.format("POST", wrk.path, {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Twilio-Signature"] = sig }, body)
    end
    i = i + 1
  end
  idle = wrk.format("GET", "/healthz")
  -- wrk calls request() once on thread 0 before the run to check it: that
  -- call gets the idle request, so no pre-signed message is used up.
  idx = (tid == 0) and -1 or 0
  ok2xx = 0
  bad = 0
end
function request()
  idx = idx + 1
  if idx < 1 or idx > #reqs then return idle end
  return reqs[idx]
end
function response(status, headers, body)
  if body == "ok\n" then return end
  if status >= 200 and status < 300 then ok2xx = ok2xx + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local total, failed = 0, 0
  for _, t in ipairs(threads) do
    total = total + t:get("ok2xx")
    failed = failed + t:get("bad")
  end
  io.write(string.format("BENCH ok2xx=%d requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d\n",
    total, total + failed, summary.duration, latency:percentile(50), latency:percentile(99), failed))
end
"""


def peak_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def proc_cpu_seconds(pid):
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_redis(tmp):
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
    r = redis.Redis(port=port, decode_responses=True)
    wait_for(lambda: _ping(r), what="redis")
    return proc, port, r


def _ping(r):
    try:
        return r.ping()
    except redis.exceptions.ConnectionError:
        return False


def redis_ceiling(port, n):
    """Messages/s of redis-benchmark calling the ingest script, one message per call."""
    with open(os.path.join(ROOT, "src", "ingest.lua")) as f:
        body = f.read()
    r = redis.Redis(port=port)
    sha = r.script_load(body)
    msg = {"id": "x", "v": 1, "channel": "sms", "provider": "twilio", "account": "sms",
           "direction": "inbound", "from": {"id": "+34610000000"}, "to": {"id": "+15557654321"},
           "text": "Order #1 has not arrived, can you help?", "reply_text": "Order #1 has not arrived, can you help?",
           "attachments": [], "provider_message_id": "SM1", "thread": {}, "sent_at": None,
           "received_at": 1764400000000, "extra": {"AccountSid": "AC" + "0" * 32, "NumSegments": "1"},
           "status": "received", "error": None}
    data = json.dumps(msg, separators=(",", ":"))
    # __rand_int__ makes every call a new message (and customer), as in the harkd run.
    args = ["EVALSHA", sha, "1", "hark:{0}:events", "hark:{0}:", "100000000", "1764400000000", "1",
            "m", "id__rand_int__", data, "conv__rand_int__", "sms|+34610000000|+15557654321", "sms",
            "sms", "inbound", "phone\x1f+3461__rand_int__", "contact__rand_int__", "", "", "",
            "+34610000000", "+15557654321", "SM__rand_int__", "1764400000000", "", "", ""]
    out = sh(["redis-benchmark", "-p", str(port), "-n", str(n), "-c", "64", "-P", "1", "-r", "1000000000",
              "-q", "--csv"] + args).stdout
    m = re.findall(r'"([\d.]+)"', out)
    return float(m[1]) if len(m) > 1 else None


def run_harkd(tmp, rport, n, workers, batch, pipeline):
    hport = free_port()
    conf = os.path.join(tmp, "bench.conf")
    with open(conf, "w") as f:
        f.write(f"[server]\nlisten = 127.0.0.1:{hport}\npublic_url = {PUBLIC}\nworkers = {workers}\n\n"
                f"[redis]\nurl = redis://127.0.0.1:{rport}/0\nevents_maxlen = 100000000\nbatch = {batch}\npipeline = {pipeline}\n\n"
                f"[log]\nlevel = warn\n\n[channel.sms]\ntype = twilio\nauth_token = {TOKEN}\n")
    reqs = os.path.join(tmp, "requests.tsv")
    write_requests(reqs, n, "/hooks/sms")
    script = os.path.join(tmp, "bench.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT)
    harkd = subprocess.Popen([os.path.join(ROOT, "build", "harkd"), "-c", conf],
                             stderr=open(os.path.join(tmp, "harkd.log"), "w"))
    r = redis.Redis(port=rport, decode_responses=True)
    try:
        wait_for(lambda: _http_ok(f"http://127.0.0.1:{hport}/readyz"), what="harkd")
        wrk = subprocess.Popen(["wrk", "-t2", "-c64", "-d600s", "--timeout", "10s", "-s", script,
                                f"http://127.0.0.1:{hport}/hooks/sms", "--", reqs, "2"],
                               stdout=subprocess.PIPE, text=True)
        # Wait until every message is stored (or the count stops growing), then
        # let the last answers arrive before stopping wrk.
        last, still = -1, 0
        while still < 40:
            time.sleep(0.05)
            count = r.xlen("hark:{0}:events")
            still = still + 1 if count == last else 0
            last = count
            if count >= n:
                time.sleep(0.5)
                break
        wrk.send_signal(signal.SIGINT)
        out = wrk.communicate(timeout=60)[0]
        rss = peak_rss_kb(harkd.pid)
        ids = r.xrange("hark:{0}:events", count=1), r.xrevrange("hark:{0}:events", count=1)
    finally:
        harkd.send_signal(signal.SIGTERM)
        harkd.wait(30)
    # Stream ids are the server's clock in ms: the span of the run as Redis saw it.
    span_ms = int(ids[1][0][0].split("-")[0]) - int(ids[0][0][0].split("-")[0]) if ids[0] else 0
    m = re.search(r"BENCH ok2xx=(\d+) requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) errors=(\d+)", out)
    if not m:
        raise SystemExit("wrk gave no figures:\n" + out)
    if os.environ.get("BENCH_VERBOSE"):
        print(out)
    ok, total, dur, p50, p99, errors = map(int, m.groups())
    return {"ok2xx": ok, "requests": total, "seconds": max(span_ms, 1) / 1000, "p50_ms": p50 / 1000,
            "p99_ms": p99 / 1000, "errors": errors, "rss_mb": rss / 1024}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--harkd", default="build/harkd")
    ap.add_argument("--messages", type=int, default=200000)
    ap.add_argument("--workers", type=int, default=0, help="0: one per CPU")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--pipeline", type=int, default=4)
    ap.add_argument("--skip-reference", action="store_true", help="skip nginx and the redis ceiling")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="hark-bench-")
    try:
        nginx = None if args.skip_reference else nginx_reference(tmp)
        scale = (nginx / REFERENCE_NGINX_RPS) if nginx else 1.0
        print(f"reference: nginx static body, wrk -t2 -c64: "
              f"{nginx:,.0f} req/s (reference machine {REFERENCE_NGINX_RPS:,}; this machine = {scale:.2f}x)"
              if nginx else "reference: nginx not available; targets unscaled")

        rproc, rport, r = start_redis(tmp)
        try:
            ceiling = None if args.skip_reference else redis_ceiling(rport, 100000)
            r.flushall()
            res = run_harkd(tmp, rport, args.messages, args.workers or os.cpu_count() or 1,
                            args.batch, args.pipeline)
            events = r.xlen("hark:{0}:events")
        finally:
            rproc.terminate()
            rproc.wait(10)
        rate = res["ok2xx"] / res["seconds"] if res["seconds"] else 0
        print(f"twilio webhooks: {res['ok2xx']:,} stored of {res['requests']:,} sent in {res['seconds']:.1f}s "
              f"= {rate:,.0f} messages/s (target 30,000 x {scale:.2f} = {30000 * scale:,.0f})")
        print(f"latency: p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms (target p99 < 10 ms)")
        print(f"harkd peak RSS: {res['rss_mb']:.1f} MB (target < 64 MB)")
        if ceiling:
            print(f"redis ceiling (ingest script, one message per call, redis-benchmark -c64): "
                  f"{ceiling:,.0f} messages/s; harkd reaches {100 * rate / ceiling:.0f}% (target >= 90%)")
        consistent = events == res["ok2xx"]
        print(f"events in redis: {events:,}; 2xx answers: {res['ok2xx']:,} -> "
              f"{'consistent' if consistent else 'MISMATCH'}")
        if not consistent:
            return 1
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
