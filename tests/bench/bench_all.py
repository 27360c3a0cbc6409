#!/usr/bin/python3
"""make bench: every figure of harkd in one run, each next to its target scaled to this machine.

Stages, in one process: the nginx reference (wrk -t2 -c64 on a static body; scale = nginx
req/s / 340,000), the Twilio webhook benchmark and the Redis ceiling (bench.py's functions),
WhatsApp Cloud batches (bench_meta.run), IMAP ingest and IDLE latency (bench_imap.run), the
outbound path (bench_outbound.py, a subprocess) and the reply-extraction corpus rate
(build/tests/test_reply_corpus). Ends with a summary table.

Throughput targets are multiplied by the scale, latency targets divided by it; memory and
ratios are not scaled. Nothing fails on speed: the exit status is 1 only when a consistency
check fails (events in Redis vs 2xx answers, IMAP events vs messages in the mailbox) or a
stage could not run.

    bench_all.py [--twilio-messages 50000] [--twilio-rounds 5] [--meta-requests 2000] [--imap-messages 10000]
                 [--idle 200] [--outbound 5000] [--skip STAGE ...]
"""
import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import bench  # noqa: E402
import bench_imap  # noqa: E402
import bench_meta  # noqa: E402

STAGES = ("twilio", "meta", "imap", "outbound", "corpus")


def stage_twilio(tmp, scale, n, rounds):
    """bench.py's measurement: harkd runs of n messages, each between two ceiling runs, with
    harkd, wrk and redis-benchmark at a lower priority than Redis (bench.CLIENT_NICE); then
    one pair at equal priority, printed for comparison."""
    workers = os.cpu_count() or 1
    rproc, rport, r = bench.start_redis(tmp)
    try:
        runs = bench.interleaved(tmp, rport, r, n, workers, rounds, rpid=rproc.pid)
        equal = bench.interleaved(tmp, rport, r, n, workers, 1, lower=False)
    finally:
        rproc.terminate()
        rproc.wait(10)
    print(f"twilio webhooks: {rounds} runs of {n:,} distinct pre-signed messages, harkd workers = {workers}; "
          f"harkd, wrk and redis-benchmark at nice {bench.CLIENT_NICE} (Redis at 0), each run between "
          f"two ceiling runs")
    for i, res in enumerate(runs, 1):
        print(f"  run {i}: {res['rate']:,.0f} messages/s, p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms, "
              f"RSS {res['rss_mb']:.1f} MB; ceiling {res['ceiling']:,.0f}/s -> {100 * res['ratio']:.0f}%; "
              f"redis CPU/message {res['ceiling_cpu_us']:.0f} us at the ceiling, {res['redis_cpu_us']:.0f} us "
              f"through harkd")
    med = bench.median_run(runs)
    print(f"twilio (median run): {med['rate']:,.0f} messages/s (target 30,000 x {scale:.2f} = "
          f"{30000 * scale:,.0f}); p99 {med['p99_ms']:.2f} ms (target 10 ms, scaled {10 / scale:.1f} ms); "
          f"{100 * med['ratio']:.0f}% of the Redis ceiling {med['ceiling']:,.0f}/s (target >= 90%)")
    e = equal[0]
    print(f"  at equal priority (everything shares the cores as the scheduler likes): {e['rate']:,.0f} "
          f"messages/s = {100 * e['ratio']:.0f}% of the ceiling {e['ceiling']:,.0f}/s")
    consistent = all(x["events"] == x["ok2xx"] for x in runs + equal)
    print(f"twilio events in redis == 2xx answers in all {len(runs) + 1} runs: "
          f"{'consistent' if consistent else 'MISMATCH'}")
    return dict(med, rss_mb=max(x["rss_mb"] for x in runs), consistent=consistent,
                events=sum(x["events"] for x in runs), ok2xx=sum(x["ok2xx"] for x in runs),
                equal_ratio=e["ratio"], ratios=[x["ratio"] for x in runs])


def stage_outbound(n):
    out = subprocess.run([sys.executable, os.path.join(HERE, "bench_outbound.py"), "--harkd",
                          os.path.join(ROOT, "build", "harkd"), "-n", str(n)],
                         capture_output=True, text=True, timeout=600)
    sys.stdout.write(out.stdout)
    if out.returncode != 0:
        raise RuntimeError(f"bench_outbound.py exited {out.returncode}: {out.stderr[-2000:]}")
    m = re.search(r"= ([\d.]+) sends/s", out.stdout)
    if not m:
        raise RuntimeError("bench_outbound.py printed no sends/s:\n" + out.stdout + out.stderr[-2000:])
    return {"sends_per_s": float(m.group(1))}


def stage_corpus():
    build = subprocess.run(["make", "-s", "build/tests/test_reply_corpus"], cwd=ROOT,
                           capture_output=True, text=True)
    if build.returncode != 0:
        raise RuntimeError("building test_reply_corpus failed:\n" + build.stdout + build.stderr)
    out = subprocess.run(["./build/tests/test_reply_corpus"], cwd=ROOT, capture_output=True, text=True)
    m = re.search(r"reply corpus: (\d+)/(\d+) exact \(([\d.]+)%\)", out.stdout + out.stderr)
    if not m:
        raise RuntimeError("test_reply_corpus printed no rate:\n" + out.stdout + out.stderr)
    print(m.group(0))
    return {"exact": int(m.group(1)), "total": int(m.group(2)), "percent": float(m.group(3))}


def fmt(v, unit="", digits=0):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:,.{digits}f}{unit}"


def verdict(value, target, higher_better=True):
    if value is None or target is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    ok = value >= target if higher_better else value < target
    return "meets" if ok else "below"


def summary(scale, nginx, res, errors):
    rows = [("nginx reference (wrk -t2 -c64)", fmt(nginx, " req/s"), "340,000 req/s",
             f"scale {scale:.2f}x")]
    t = res.get("twilio")
    if t:
        rows += [("twilio messages/s", fmt(t["rate"]), f"{fmt(30000 * scale)} (30,000 x {scale:.2f})",
                  verdict(t["rate"], 30000 * scale)),
                 ("twilio p99 latency", fmt(t["p99_ms"], " ms", 2), f"< {10 / scale:.1f} ms (10 ms / {scale:.2f})",
                  verdict(t["p99_ms"], 10 / scale, False)),
                 ("twilio harkd peak RSS", fmt(t["rss_mb"], " MB", 1), "< 64 MB", verdict(t["rss_mb"], 64, False))]
        if t["ceiling"]:
            pct = 100 * t["ratio"]
            rows.append(("twilio / redis ceiling (median)", f"{pct:.0f}% of {fmt(t['ceiling'])}", ">= 90%",
                         verdict(pct, 90)))
            rows.append(("  every run", " ".join(f"{100 * x:.0f}%" for x in t["ratios"]), "", ""))
            rows.append(("  at equal priority", f"{100 * t['equal_ratio']:.0f}%", "", "for comparison"))
        rows.append(("twilio events == 2xx", f"{t['events']:,} / {t['ok2xx']:,}", "equal",
                     "consistent" if t["consistent"] else "MISMATCH"))
    m = res.get("meta")
    if m:
        rows += [("meta (50 msgs/request) messages/s", fmt(m["messages_per_s"]),
                  f"{fmt(30000 * scale)} (Twilio's 30,000 x {scale:.2f})", verdict(m["messages_per_s"], 30000 * scale)),
                 ("meta requests/s", fmt(m["requests_per_s"]), "-", ""),
                 ("meta p50 / p99 latency", f"{m['p50_ms']:.2f} / {m['p99_ms']:.2f} ms", "-", ""),
                 ("meta events == 2xx x 50", f"{m['events']:,} / {m['expected_events']:,}", "equal",
                  "consistent" if m["consistent"] else "MISMATCH")]
    i = res.get("imap")
    if i:
        rows += [("imap ingest messages/s", fmt(i["messages_per_s"]), f"{fmt(2000 * scale)} (2,000 x {scale:.2f})",
                  verdict(i["messages_per_s"], 2000 * scale)),
                 ("imap IDLE arrival->event p99", fmt(i["idle_p99_ms"], " ms"),
                  f"< {1000 / scale:,.0f} ms (1 s / {scale:.2f})", verdict(i["idle_p99_ms"], 1000 / scale, False)),
                 ("  (Dovecot's own notify p99)", fmt(i["dovecot_p99_ms"], " ms"), "-", ""),
                 ("imap events == messages", f"{i['events']:,} / {i['messages']:,}", "equal",
                  "consistent" if i["events"] == i["messages"] else "MISMATCH")]
    o = res.get("outbound")
    if o:
        rows.append(("outbound replies/s (mock Twilio)", fmt(o["sends_per_s"]), "-", ""))
    c = res.get("corpus")
    if c:
        rows.append(("reply corpus exact", f"{c['exact']}/{c['total']} ({c['percent']:.1f}%)", "100%",
                     verdict(c["percent"], 100)))
    for name, err in errors.items():
        rows.append((f"{name} stage", "ERROR", "", err.splitlines()[-1][:60] if err else ""))
    widths = [max(len(r[k]) for r in rows + [("figure", "value", "target", "")]) for k in range(4)]
    print("\n== summary (targets scaled to this machine; nothing here fails on speed) ==")
    head = ("figure", "value", "target", "")
    for r in [head] + rows:
        print("  ".join(r[k].ljust(widths[k]) if k != 1 else r[k].rjust(widths[k]) for k in range(4)).rstrip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--twilio-messages", type=int, default=50000, help="per run")
    ap.add_argument("--twilio-rounds", type=int, default=5)
    ap.add_argument("--meta-requests", type=int, default=2000)
    ap.add_argument("--imap-messages", type=int, default=10000)
    ap.add_argument("--idle", type=int, default=200)
    ap.add_argument("--outbound", type=int, default=5000)
    ap.add_argument("--skip", nargs="*", default=[], choices=STAGES)
    args = ap.parse_args()
    if not os.access(os.path.join(ROOT, "build", "harkd"), os.X_OK):
        print("bench_all: build/harkd is missing: run make first", file=sys.stderr)
        return 2
    start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="hark-bench-all-")
    res, errors, times = {}, {}, {}
    try:
        t = time.monotonic()
        nginx = bench.nginx_reference(tmp)
        scale = nginx / bench.REFERENCE_NGINX_RPS if nginx else 1.0
        print(f"reference: nginx static body, wrk -t2 -c64: {nginx:,.0f} req/s (reference machine "
              f"{bench.REFERENCE_NGINX_RPS:,}; this machine = {scale:.2f}x)" if nginx
              else "reference: nginx not available; targets unscaled", flush=True)
        times["nginx"] = time.monotonic() - t
        runners = {
            "twilio": lambda: stage_twilio(tmp, scale, args.twilio_messages, args.twilio_rounds),
            "meta": lambda: bench_meta.run(scale, requests=args.meta_requests),
            "imap": lambda: bench_imap.run(scale, n=args.imap_messages, idle=args.idle),
            "outbound": lambda: stage_outbound(args.outbound),
            "corpus": stage_corpus,
        }
        for name in STAGES:
            if name in args.skip:
                continue
            print(f"\n-- {name} --", flush=True)
            t = time.monotonic()
            try:
                res[name] = runners[name]()
            except Exception:  # noqa: BLE001 - report the stage and go on with the others
                errors[name] = traceback.format_exc()
                print(f"{name}: ERROR\n{errors[name]}", flush=True)
            times[name] = time.monotonic() - t
            sys.stdout.flush()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary(scale, nginx, res, errors)
    print("stage seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()) +
          f"; total {time.monotonic() - start:.0f}s")
    bad = []
    if "twilio" in res and not res["twilio"]["consistent"]:
        bad.append("twilio events != 2xx")
    if "meta" in res and not res["meta"]["consistent"]:
        bad.append("meta events != 2xx x messages per request")
    if "imap" in res and res["imap"]["events"] != res["imap"]["messages"]:
        bad.append("imap events != messages in the mailbox")
    bad += [f"{k} stage failed to run" for k in errors]
    if bad:
        print("bench_all: FAILED: " + "; ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
