"""Fixtures for integration tests: a private redis-server and harkd processes.

Everything listens on loopback ports chosen at run time; every wait polls a
condition with a deadline instead of sleeping a fixed time.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
import redis as redis_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HARKD = os.environ.get("HARKD", os.path.join(ROOT, "build-san", "harkd"))
VECTORS = os.environ.get("HARK_VECTORS", os.path.join(ROOT, "..", "shared", "vectors"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    """Poll predicate until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    def __init__(self, workdir):
        self.port = free_port()
        self.workdir = workdir
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._pings, what="redis-server")

    def _pings(self):
        try:
            return self.client().ping()
        except redis_lib.exceptions.ConnectionError:
            return False

    def client(self):
        return redis_lib.Redis(port=self.port, decode_responses=True)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class Harkd:
    """A running harkd with its config, log and base URL."""

    def __init__(self, config_text, workdir, env=None, expect_ready=True):
        self.workdir = workdir
        self.conf = os.path.join(workdir, f"harkd-{time.monotonic_ns()}.conf")
        with open(self.conf, "w") as f:
            f.write(config_text)
        self.log_path = self.conf + ".log"
        self.log_file = open(self.log_path, "w+")
        full_env = dict(os.environ)
        full_env.update(env or {})
        # Leak checking is on by default under ASan; keep reports in the log.
        full_env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        full_env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        self.proc = subprocess.Popen([HARKD, "-c", self.conf], stdout=self.log_file,
                                     stderr=self.log_file, env=full_env)
        self.port = None
        for line in config_text.splitlines():
            if line.strip().startswith("listen") and "127.0.0.1:" in line:
                self.port = int(line.split("127.0.0.1:")[1].split(",")[0].split()[0])
        self.url = f"http://127.0.0.1:{self.port}"
        if expect_ready:
            wait_for(self.ready, timeout=20, what="harkd /readyz")

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("harkd exited: " + self.log())
        try:
            return urllib.request.urlopen(self.url + "/readyz", timeout=1).status == 200
        except (OSError, urllib.error.URLError):
            return False

    def log(self):
        self.log_file.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stop harkd and return its exit code; sanitizer reports fail the test."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("harkd did not stop in time: " + self.log()[-2000:])
        text = self.log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            assert marker not in text, "sanitizer report in harkd log:\n" + text[-6000:]
        return self.proc.returncode


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="hark-it-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def redis_server(workdir):
    server = RedisServer(workdir)
    yield server
    server.stop()


def base_config(hport, rport, extra="", workers=2, public_url="https://hooks.example.test"):
    return (f"[server]\nlisten = 127.0.0.1:{hport}\npublic_url = {public_url}\nworkers = {workers}\n"
            f"max_body = 64k\ndrain_timeout = 10s\n\n"
            f"[redis]\nurl = redis://127.0.0.1:{rport}/0\nprefix = hark\n\n"
            f"[log]\nlevel = info\n\n{extra}")


@pytest.fixture
def start_harkd(workdir):
    """start_harkd(config_text, env=None) → Harkd; all are stopped at teardown."""
    started = []

    def start(config_text, env=None, expect_ready=True):
        h = Harkd(config_text, workdir, env=env, expect_ready=expect_ready)
        started.append(h)
        return h

    yield start
    for h in started:
        h.stop()
