#!/bin/sh
# Banned functions (curl's checksrc idea): unbounded or error-blind calls.
set -u
pattern='\b(sprintf|vsprintf|strcpy|strcat|atoi|atol|strtok|gets)[[:space:]]*\('
# Lines that are comments (" * ..." or "/* ...") do not count.
if grep -nE "$pattern" src/*.c adapters/*/*.c include/hark/*.h 2>/dev/null |
    grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/\*|\*)'; then
    echo "checksrc: banned function used (use snprintf, memcpy with bounds, strtol...)" >&2
    exit 1
fi
echo "checksrc: ok"
