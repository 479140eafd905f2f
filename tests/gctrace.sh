#!/bin/sh
# gctrace.sh - GCDEBUG=gctrace=1 prints one line per cycle on stderr in Go's format.
#
# Runs the built demo (demos/gcdemo) and tests/forced from the top build directory,
# as automake's test driver does, and checks every line against the regex that
# parses Go's gctrace lines (doc: the API contract), plus what the regex cannot
# say: cycle numbers run 1, 2, 3, ... and end at num_gc; start times never go back;
# every duration is in Go's format (whole ms from 10 ms, else two significant
# digits); "P" is the number of marker threads (GCPROCS, else CPUs online); the
# cycles of gc_collect and gc_free_os_memory (tests/forced: 3 + 1) end with
# " (forced)" and the demo's never do; and without GCDEBUG (or with gctrace=0)
# nothing at all is printed on stderr.

LC_ALL=C
export LC_ALL
unset GCPERCENT GCMEMLIMIT GCPROCS GCDEBUG

demo=./demos/gcdemo
forced=./tests/forced
for p in "$demo" "$forced"; do
    if [ ! -x "$p" ]; then
        echo "gctrace.sh: $p is not built (run from the top build directory)"
        exit 99
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gctrace.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# Go's regex, as given in the contract, anchored at both ends.
re='^gc ([0-9]+) @([0-9]+\.[0-9]{3})s ([0-9]+)%: ([0-9.]+)\+([0-9.]+)\+([0-9.]+) ms clock, ([0-9.]+)\+([0-9.]+)/([0-9.]+)/([0-9.]+)\+([0-9.]+) ms cpu, ([0-9]+)->([0-9]+)->([0-9]+) MB, ([0-9]+) MB goal, ([0-9]+) MB stacks, ([0-9]+) MB globals, ([0-9]+) P( \(forced\))?$'

# One duration as Go's fmtNSAsMS prints it.
dur_re='^(0|0\.00[1-9]|0\.0[1-9][0-9]|0\.[1-9][0-9]|[1-9]\.[0-9]|[1-9][0-9]+)$'

ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
[ "$ncpu" -ge 1 ] 2>/dev/null || ncpu=1
[ "$ncpu" -le 1024 ] || ncpu=1024

# check_trace FILE WHAT PROCS: every line of FILE is a well-formed gctrace line, the
# cycles are numbered 1..N in order with non-decreasing start times, and each says
# PROCS P.  Sets n to N; reports problems through fail.
check_trace() {
    file=$1 what=$2 procs=$3
    n=0 last_ms=0
    while IFS= read -r line; do
        case $line in
        "gc "*) ;;
        *)
            fail "$what: stderr has a line that is not a gctrace line: $line"
            continue
            ;;
        esac
        if ! printf '%s\n' "$line" | grep -Eq "$re"; then
            fail "$what: line does not match Go's gctrace regex: $line"
            continue
        fi
        n=$((n + 1))
        # Fields split on the separators: num secs pct clk*3 cpu*5 ...
        # shellcheck disable=SC2046
        set -- $(printf '%s\n' "$line" | sed -E "s|$re|\\1 \\2 \\3 \\4 \\5 \\6 \\7 \\8 \\9|")
        num=$1 secs=$2 pct=$3
        shift 3
        durs="$*"
        rest=$(printf '%s\n' "$line" | sed -E 's/.* ms cpu, //')
        cpu=$(printf '%s\n' "$line" | sed -E 's/.* ms clock, ([^ ]*) ms cpu.*/\1/')
        [ "$num" = "$n" ] || fail "$what: cycle $n is numbered $num: $line"
        ms=$(printf '%s\n' "$secs" | tr -d .)
        ms=$(printf '%s\n' "$ms" | sed -E 's/^0+([0-9])/\1/')
        [ "$ms" -ge "$last_ms" ] || fail "$what: cycle $num starts before the previous one: $line"
        last_ms=$ms
        [ "$pct" -le 100 ] || fail "$what: GC CPU percent $pct is over 100: $line"
        # The three clock times (from the regex) and the five cpu times.
        for d in $durs $(printf '%s\n' "$cpu" | tr '+/' '  '); do
            printf '%s\n' "$d" | grep -Eq "$dur_re" ||
                fail "$what: duration \"$d\" is not in Go's format: $line"
        done
        p=$(printf '%s\n' "$rest" | sed -E 's/.* MB globals, ([0-9]+) P.*/\1/')
        [ "$p" = "$procs" ] || fail "$what: $p P, expected $procs: $line"
    done <"$file"
}

# ---- the demo, with gctrace=1 ---------------------------------------------------------
GCDEBUG=gctrace=1 "$demo" 300 >"$tmp/demo.out" 2>"$tmp/demo.err"
rc=$?
echo "--- gcdemo 300 (GCDEBUG=gctrace=1): exit $rc"
cat "$tmp/demo.out"
cat "$tmp/demo.err"
[ "$rc" -eq 0 ] || fail "gcdemo exited with $rc"
lines=$(wc -l <"$tmp/demo.err")
[ "$lines" -ge 3 ] || fail "gcdemo printed $lines gctrace lines, expected at least 3"
check_trace "$tmp/demo.err" gcdemo "$ncpu"
cycles=$(sed -nE 's/.*: ([0-9]+) cycles,.*/\1/p' "$tmp/demo.out")
# A cycle prints its line before it counts in num_gc; the collector thread may have
# printed one more line (a cycle that ended after gcdemo read num_gc) by exit.
case "$cycles" in
'' | *[!0-9]*) fail "gcdemo: num_gc is ${cycles:-missing}" ;;
*) [ "$n" -ge "$cycles" ] && [ "$n" -le $((cycles + 1)) ] ||
       fail "gcdemo: $n gctrace lines but num_gc is $cycles" ;;
esac
if grep -q ' (forced)$' "$tmp/demo.err"; then
    fail "gcdemo never calls gc_collect, yet a cycle says (forced)"
fi

# ---- GCPROCS shows as P ---------------------------------------------------------------
GCDEBUG=gctrace=1 GCPROCS=1 "$demo" 100 >"$tmp/p1.out" 2>"$tmp/p1.err" ||
    fail "gcdemo with GCPROCS=1 failed"
check_trace "$tmp/p1.err" "gcdemo GCPROCS=1" 1
[ "$n" -ge 1 ] || fail "gcdemo 100 with GCPROCS=1 printed no gctrace line"

# ---- forced cycles ----------------------------------------------------------------------
GCDEBUG=gctrace=1 "$forced" >"$tmp/forced.out" 2>"$tmp/forced.err"
rc=$?
echo "--- tests/forced (GCDEBUG=gctrace=1): exit $rc"
cat "$tmp/forced.out"
cat "$tmp/forced.err"
[ "$rc" -eq 0 ] || fail "tests/forced exited with $rc"
check_trace "$tmp/forced.err" forced "$ncpu"
[ "$n" = 4 ] ||
    fail "tests/forced: $n gctrace lines, expected 4 (3 gc_collect, 1 gc_free_os_memory)"
nforced=$(grep -c ' P (forced)$' "$tmp/forced.err")
[ "$nforced" = 4 ] || fail "tests/forced: $nforced lines end with (forced), expected 4"
grep -q '^forced: num_gc 4 num_forced_gc 4$' "$tmp/forced.out" ||
    fail "tests/forced: expected num_gc 4 num_forced_gc 4"

# ---- silence without GCDEBUG --------------------------------------------------------------
"$demo" 300 >"$tmp/quiet.out" 2>"$tmp/quiet.err" || fail "gcdemo without GCDEBUG failed"
if [ -s "$tmp/quiet.err" ]; then
    fail "gcdemo without GCDEBUG printed on stderr:"
    cat "$tmp/quiet.err"
fi
"$forced" >"$tmp/quiet.out" 2>"$tmp/quiet.err" || fail "tests/forced without GCDEBUG failed"
if [ -s "$tmp/quiet.err" ]; then
    fail "tests/forced without GCDEBUG printed on stderr:"
    cat "$tmp/quiet.err"
fi
GCDEBUG=gctrace=0 "$forced" >"$tmp/quiet.out" 2>"$tmp/quiet.err" ||
    fail "tests/forced with GCDEBUG=gctrace=0 failed"
if [ -s "$tmp/quiet.err" ]; then
    fail "tests/forced with GCDEBUG=gctrace=0 printed on stderr:"
    cat "$tmp/quiet.err"
fi

if [ "$failures" -ne 0 ]; then
    echo "gctrace.sh: $failures failure(s)"
    exit 1
fi
echo "gctrace.sh: all checks passed"
exit 0
