#!/bin/sh
# `make run`: start a private redis-server (unless one answers on the
# configured port), then harkd on conf/dev.conf in the foreground, and
# print a curl command that sends a validly signed test SMS.
set -eu
cd "$(dirname "$0")/.."
RUN_DIR=${RUN_DIR:-$PWD/run}
REDIS_PORT=6390
mkdir -p "$RUN_DIR"
export HARK_DEV_TWILIO_TOKEN=${HARK_DEV_TWILIO_TOKEN:-dev-twilio-token}
export HARK_DEV_VONAGE_SECRET=${HARK_DEV_VONAGE_SECRET:-dev-vonage-secret}
export HARK_DEV_WEB_SECRET=${HARK_DEV_WEB_SECRET:-dev-web-secret}

redis_pid=""
if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN_DIR" --save "" \
        --appendonly yes --daemonize no >"$RUN_DIR/redis.log" 2>&1 &
    redis_pid=$!
    i=0
    until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -lt 100 ] || { echo "run: redis-server did not start (see $RUN_DIR/redis.log)" >&2; exit 1; }
        sleep 0.1
    done
    echo "run: private redis-server on 127.0.0.1:$REDIS_PORT (data in $RUN_DIR)"
fi
cleanup() {
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

/usr/bin/python3 scripts/signed-sms-curl.py "http://127.0.0.1:8080" "/hooks/sms" "$HARK_DEV_TWILIO_TOKEN"
echo "run: events: redis-cli -p $REDIS_PORT XRANGE 'hark:{0}:events' - +"
echo "run: starting harkd (Ctrl-C stops it)"
build/harkd -c conf/dev.conf
