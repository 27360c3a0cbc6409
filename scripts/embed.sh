#!/bin/sh
# Turn a file into a C array so the binary carries it: embed.sh SYMBOL FILE
set -eu
sym=$1
file=$2
echo "/* Generated from $file by scripts/embed.sh: do not edit. */"
echo "#include <stddef.h>"
echo "const char ${sym}[] = {"
od -An -v -tx1 "$file" | sed 's/[0-9a-f][0-9a-f]/0x&,/g'
echo "0x00 };"
echo "const size_t ${sym}_len = sizeof(${sym}) - 1;"
