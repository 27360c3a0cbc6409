"""The systemd unit passes `systemd-analyze verify`; `make install` lays out every file."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_verifies(workdir):
    with open(os.path.join(ROOT, "systemd", "harkd.service.in")) as f:
        text = f.read()
    unit = os.path.join(workdir, "harkd.service")
    with open(unit, "w") as f:
        f.write(text.replace("@SBINDIR@", os.path.join(ROOT, "build")).replace("@SYSCONFDIR@", "/etc"))
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", unit], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for needed in ("Type=notify", "WatchdogSec=", "NoNewPrivileges=yes", "ProtectSystem=strict",
                   "PrivateTmp=yes", "RestrictAddressFamilies=", "User=hark"):
        assert needed in text


def test_make_install_honours_prefix_and_destdir(workdir):
    dest = os.path.join(workdir, "dest")
    subprocess.run(["make", "-s", "install", f"DESTDIR={dest}", "PREFIX=/opt/hark"], cwd=ROOT,
                   check=True, capture_output=True)
    for path in ("opt/hark/sbin/harkd", "etc/hark/harkd.conf", "etc/hark/harkd.conf.example",
                 "opt/hark/lib/systemd/system/harkd.service", "opt/hark/lib/sysusers.d/harkd.conf",
                 "opt/hark/lib/tmpfiles.d/harkd.conf", "opt/hark/share/man/man8/harkd.8"):
        assert os.path.exists(os.path.join(dest, path)), path
    with open(os.path.join(dest, "opt/hark/lib/systemd/system/harkd.service")) as f:
        assert "ExecStart=/opt/hark/sbin/harkd -c /etc/hark/harkd.conf" in f.read()
