#!/bin/sh
# checkmark.sh - GCDEBUG=gccheckmark=1 catches pointer stores that skip GC_WRITE.
#
# tests/checkmark_bad moves pointers between heap objects while concurrent cycles
# run.  With plain stores the concurrent mark misses objects: the program must die
# (SIGABRT) after gccheckmark lines in the documented form.  With --barrier the same
# work is clean: exit 0 and not one gccheckmark line.
set -u
prog=tests/checkmark_bad
[ -x "$prog" ] || { echo "checkmark.sh: $prog not built"; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

echo "--- without barriers: gccheckmark must report and abort"
GCDEBUG=gcconcurrent=1,gccheckmark=1 "$prog" 20 >"$tmp/out" 2>"$tmp/err"
rc=$?
head -n 3 "$tmp/err"
[ "$rc" -ne 0 ] || fail "the program without barriers exited 0: nothing was caught"
grep -Eq '^tricolor: gccheckmark: 0x[0-9a-f]+ \([0-9]+ B\) reachable from 0x[0-9a-f]+ was not marked: a pointer store without GC_WRITE\?$' "$tmp/err" ||
    fail "no gccheckmark line in the documented form"
grep -q '^tricolor: fatal: gccheckmark: ' "$tmp/err" || fail "no final gccheckmark line"

echo "--- with GC_WRITE: clean"
GCDEBUG=gcconcurrent=1,gccheckmark=1 "$prog" --barrier 3 >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/out"
[ "$rc" -eq 0 ] || fail "the program with barriers failed (exit $rc)"
if [ -s "$tmp/err" ]; then
    head -n 5 "$tmp/err"
    fail "stderr is not empty with barriers"
fi
grep -q 'with barriers, [0-9]* moves, [0-9]* cycles, 0 corrupt' "$tmp/out" ||
    fail "unexpected summary line"

[ "$failures" -eq 0 ] || { echo "checkmark.sh: $failures failure(s)"; exit 1; }
echo "checkmark.sh: all checks passed"
