#!/bin/sh
# Run each libFuzzer target for a few seconds from its seed corpus.
# run-fuzz.sh SECONDS BINARY...
set -u
secs=$1
shift
failed=0
for f in "$@"; do
    name=$(basename "$f")
    seeds=tests/fuzz/corpus/${name#fuzz_}
    work=build-fuzz/corpus-$name
    mkdir -p "$work"
    if [ -d "$seeds" ]; then
        set -- "$work" "$seeds"
    else
        set -- "$work"
    fi
    if ! "$f" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=1024 \
        -print_final_stats=0 "$@" > "build-fuzz/$name.log" 2>&1; then
        echo "fuzz: $name FAILED (see build-fuzz/$name.log)" >&2
        tail -n 30 "build-fuzz/$name.log" >&2
        failed=$((failed + 1))
    else
        echo "fuzz: $name ok ($(grep -c '^#' "build-fuzz/$name.log") status lines)"
    fi
done
[ "$failed" -eq 0 ]
