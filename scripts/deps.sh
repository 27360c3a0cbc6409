#!/bin/sh
# Install the Debian packages hark needs to build, test and run, when missing.
# Non-interactive; uses sudo when not root. Safe to run again.
set -eu
PKGS="build-essential pkg-config clang libclang-rt-14-dev
libevent-dev libhiredis-dev libjansson-dev libcurl4-openssl-dev libssl-dev libsystemd-dev
libgmime-3.0-dev libxml2-dev libcmocka-dev
redis-server redis-tools dovecot-imapd wrk nginx-light cppcheck clang-tidy systemd
python3 python3-pytest python3-redis python3-twilio python3-aiosmtpd"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start services (dovecot, redis, nginx) on this machine.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 0755 "$policy"
    created_policy=1
fi
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
[ "$created_policy" -eq 1 ] && $SUDO rm -f "$policy"
exit 0
