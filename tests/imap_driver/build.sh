#!/bin/sh
# Build the IMAP test driver: sh tests/imap_driver/build.sh [BUILD_DIR]
# (BUILD_DIR build or build-san; SANITIZE=1 is passed on for build-san).
set -eu
bdir=${1:-build}
san=0
[ "$bdir" = build-san ] && san=1
make -s SANITIZE=$san "$bdir/libhark.a"
flags="-std=gnu11 -g -O1 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -Isrc"
[ "$san" = 1 ] && flags="$flags -fsanitize=address,undefined -fno-omit-frame-pointer"
pk="libevent libevent_openssl hiredis jansson libcurl openssl libsystemd gmime-3.0 libxml-2.0"
# shellcheck disable=SC2046
cc $flags $(pkg-config --cflags $pk) -o "$bdir/imap_driver" tests/imap_driver/imap_driver.c \
    "$bdir/libhark.a" $(pkg-config --libs $pk) -lpthread -lm
