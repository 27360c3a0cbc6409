#!/bin/sh
# Static analysis: cppcheck and clang-tidy over the daemon's sources.
set -eu
cd "$(dirname "$0")/.."
CFLAGS_PKG=$(pkg-config --cflags libevent hiredis jansson libcurl openssl libsystemd gmime-3.0 libxml-2.0)
files=$(ls src/*.c adapters/*/*.c)
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
    --inline-suppr --suppress=missingIncludeSystem -D_GNU_SOURCE -Iinclude -Isrc $files
# Left out, with reasons: sizeof-expression flags the sizeof(*ptr_to_ptr)
# idiom of every realloc; not-null-terminated-result flags length-counted
# memcpy into buffers that are terminated later; valist.Uninitialized is a
# false positive of clang 14 on glibc's va_start; misplaced-widening-cast
# flags (size_t)(1 + small_int) that cannot overflow.
# shellcheck disable=SC2086
# clang-tidy reports on stdout; its stderr only counts suppressed warnings of
# system headers ("N warnings generated"), kept out of the log unless it fails.
notes=$(mktemp)
trap 'rm -f "$notes"' EXIT
if ! clang-tidy --quiet --warnings-as-errors='*' \
    --checks='-*,clang-analyzer-*,-clang-analyzer-security.insecureAPI.*,bugprone-*,-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier,-bugprone-narrowing-conversions,-bugprone-assignment-in-if-condition,-bugprone-branch-clone,-bugprone-implicit-widening-of-multiplication-result,-bugprone-suspicious-string-compare,-bugprone-sizeof-expression,-bugprone-not-null-terminated-result,-clang-analyzer-valist.Uninitialized,-bugprone-misplaced-widening-cast' \
    $files -- -std=gnu11 -D_GNU_SOURCE -DHARK_VERSION='"lint"' -Iinclude -Isrc $CFLAGS_PKG 2>"$notes"; then
    grep -v "warnings generated" "$notes" >&2 || true
    exit 1
fi
echo "lint: ok"
