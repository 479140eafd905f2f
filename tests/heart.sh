#!/bin/sh
# heart.sh - the heart demo (demos/heart) in plain mode, as outside tools see it.
#
#   - `--plain --frames 40`: every frame passes tests/heart-check.awk (status line
#     format, a left-right symmetric heart, only heart/spark glyphs) and the heart
#     beats (filled cells vary by more than 1.1x); no escape codes; nothing on stderr;
#   - stdout not a terminal, no --plain: the same text, 60 frames by default;
#   - 400 frames: HeapAlloc stays bounded; with --leak it climbs steadily;
#   - --threads 4 draws exactly the frames one thread draws, with and without --leak;
#   - GCDEBUG=gctrace=1: gctrace lines on stderr, frames on stdout;
#   - bad options: exit 2, one error line then the usage; --pool and --local:
#     exit 2 and one line; --help: the usage on stdout, exit 0.
#
# Environment (tests/scripts.am's SH_LOG_COMPILER sets it): abs_top_builddir and
# srcdir; the defaults suit a run by hand from the top build directory.

LC_ALL=C
export LC_ALL
unset GCPERCENT GCMEMLIMIT GCPROCS GCDEBUG NO_COLOR
# A fixed art area for the frames: 80x24 less the status line.
COLUMNS=80 LINES=24
export COLUMNS LINES
rows=23 cols=80

builddir=${abs_top_builddir:-$(pwd)}
srcdir=${srcdir:-.}
heart=$builddir/demos/heart
check_awk=$srcdir/tests/heart-check.awk
if [ ! -x "$heart" ]; then
    echo "heart.sh: $heart is not built" >&2
    exit 99
fi
if [ ! -f "$check_awk" ]; then
    echo "heart.sh: $check_awk not found (srcdir=$srcdir)" >&2
    exit 99
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tricolor-heart.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

esc=$(printf '\033')

# run NAME ARGS...: runs the demo with stdout and stderr in $tmp/NAME.out and
# $tmp/NAME.err; sets $rc.
run() {
    name=$1
    shift
    "$heart" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null
    rc=$?
}

# frames NAME N [RATIO]: the run exited 0, printed nothing on stderr and N frames
# that pass heart-check.awk; leaves one line a frame in $tmp/NAME.series:
# "frame heap_alloc_MB num_gc filled_cells".
frames() {
    if [ "$rc" -ne 0 ]; then
        fail "$1: exit status $rc, expected 0"
        sed 's/^/    /' "$tmp/$1.err"
    fi
    if [ -s "$tmp/$1.err" ]; then
        fail "$1: unexpected output on stderr:"
        sed 's/^/    /' "$tmp/$1.err" | head -n 5
    fi
    if grep -q "$esc" "$tmp/$1.out"; then
        fail "$1: escape codes in plain output"
    fi
    if ! awk -v frames="$2" -v rows=$rows -v cols=$cols -v ratio="${3:-0}" -f "$check_awk" \
        "$tmp/$1.out" >"$tmp/$1.series" 2>"$tmp/$1.check"; then
        fail "$1: the frames do not pass heart-check.awk:"
        head -n 10 "$tmp/$1.check" | sed 's/^/    /'
    fi
}

# art NAME: the frames without their status lines (which report the real heap).
art() {
    grep -v '^gc ' "$tmp/$1.out"
}

# ---- the frames ---------------------------------------------------------------------------
echo "--- --plain --frames 40"
run plain --plain --frames 40
frames plain 40 1.1
sed -n '1,24p' "$tmp/plain.out"

echo "--- stdout not a terminal, no options: plain text, 60 frames"
run pipe
frames pipe 60 1.1
art pipe | head -n $((40 * (rows + 1))) >"$tmp/pipe.art"
art plain >"$tmp/plain.art"
cmp -s "$tmp/pipe.art" "$tmp/plain.art" || fail "the output to a pipe differs from --plain"

echo "--- --no-color --plain --frames 5: the same text"
run nocolor --no-color --plain --frames 5
frames nocolor 5
art nocolor >"$tmp/nocolor.art"
head -n $((5 * (rows + 1))) "$tmp/plain.art" | cmp -s - "$tmp/nocolor.art" ||
    fail "--no-color changes the plain text"

# ---- the heap -------------------------------------------------------------------------------
# HeapAlloc sawtooths between the live heap (just after a cycle) and the goal, so
# windows of frames are compared, never two single frames on their own.
echo "--- --plain --frames 400: HeapAlloc stays flat"
run flat --plain --frames 400
frames flat 400
awk '
    $1 <= 100 && $2 > first { first = $2 }
    $1 > 300 && $2 > last { last = $2 }
    $2 > top { top = $2 }
    END {
        printf "    HeapAlloc: max %.1f MB in frames 1-100, %.1f MB in 301-400, %d cycles\n", first, last, $3
        if (!(last < 2 * first)) { print "FAIL: HeapAlloc grows without --leak"; bad = 1 }
        if (top > 32) { print "FAIL: HeapAlloc reached " top " MB without --leak"; bad = 1 }
        if ($3 < 3) { print "FAIL: only " $3 " collections in 400 frames"; bad = 1 }
        exit bad
    }' "$tmp/flat.series" || failures=$((failures + 1))

echo "--- --plain --frames 400 --leak: HeapAlloc climbs"
run leak --plain --frames 400 --leak
frames leak 400
# Under AddressSanitizer stale stack words retain more garbage (conservative roots),
# so the early peaks are higher: there only the steady climb is required.
case "${SAN_CFLAGS:-}" in *address*) asan=1 ;; *) asan=0 ;; esac
awk -v asan="$asan" '
    { w = int(($1 - 1) / 100) + 1 }
    !(w in lo) || $2 < lo[w] { lo[w] = $2 }
    $2 > hi[w] { hi[w] = $2 }
    $1 == 100 { at100 = $2 }
    $1 == 400 { at400 = $2 }
    END {
        printf "    HeapAlloc: %.1f MB at frame 100, %.1f MB at 400; lowest by 100 frames:", at100, at400
        for (w = 1; w <= 4; w++) printf " %.1f", lo[w]
        printf " MB\n"
        # Point samples ride the sawtooth of the cycles (frame 100 may be a peak, frame
        # 400 just after a cycle): what a leak raises is the low of each window.
        if (!(lo[4] > 1.5 * lo[1] && lo[4] > lo[1] + 3)) {
            print "FAIL: the lowest HeapAlloc of frames 301-400 is not clearly above that of frames 1-100"; bad = 1
        }
        if (!asan && !(lo[4] > hi[1])) {
            print "FAIL: frames 301-400 dip to " lo[4] " MB, frames 1-100 reach " hi[1] " MB"; bad = 1
        }
        for (w = 2; w <= 4; w++)
            if (!(lo[w] > lo[w - 1])) { print "FAIL: the live heap did not grow in window " w; bad = 1 }
        exit bad
    }' "$tmp/leak.series" || failures=$((failures + 1))

# ---- threads --------------------------------------------------------------------------------
echo "--- --threads 4: the same frames as one thread"
run threads --plain --frames 120 --threads 4
frames threads 120 1.1
run one --plain --frames 120
art threads >"$tmp/threads.art"
art one >"$tmp/one.art"
cmp -s "$tmp/threads.art" "$tmp/one.art" || fail "--threads 4 draws different frames"

echo "--- --threads 4 --leak --frames 400"
run threadleak --plain --frames 400 --threads 4 --leak
frames threadleak 400
art threadleak >"$tmp/threadleak.art"
art leak >"$tmp/leak.art"
cmp -s "$tmp/threadleak.art" "$tmp/leak.art" || fail "--threads 4 --leak draws different frames"

echo "--- --threads 4 with concurrent marking, checked by gccheckmark"
GCDEBUG=gcconcurrent=1,gccheckmark=1 "$heart" --plain --frames 200 --threads 4 --leak \
    >"$tmp/conc.out" 2>"$tmp/conc.err" </dev/null
rc=$?
[ "$rc" -eq 0 ] || fail "concurrent marking with gccheckmark: exit status $rc: $(head -n 2 "$tmp/conc.err")"
[ -s "$tmp/conc.err" ] && fail "concurrent marking with gccheckmark wrote on stderr: $(head -n 2 "$tmp/conc.err")"
frames conc 200

# ---- gctrace --------------------------------------------------------------------------------
echo "--- GCDEBUG=gctrace=1: gctrace on stderr, the heart on stdout"
GCDEBUG=gctrace=1 "$heart" --plain --frames 200 >"$tmp/trace.out" 2>"$tmp/trace.err" </dev/null
rc=$?
[ "$rc" -eq 0 ] || fail "gctrace run: exit status $rc"
go_re='^gc ([0-9]+) @([0-9]+\.[0-9]{3})s ([0-9]+)%: ([0-9.]+)\+([0-9.]+)\+([0-9.]+) ms clock, ([0-9.]+)\+([0-9.]+)/([0-9.]+)/([0-9.]+)\+([0-9.]+) ms cpu, ([0-9]+)->([0-9]+)->([0-9]+) MB, ([0-9]+) MB goal, ([0-9]+) MB stacks, ([0-9]+) MB globals, ([0-9]+) P( \(forced\))?$'
ntrace=$(grep -c . "$tmp/trace.err")
nmatch=$(grep -Ec "$go_re" "$tmp/trace.err")
echo "    $ntrace lines on stderr, $nmatch gctrace lines"
[ "$ntrace" -gt 0 ] || fail "no gctrace lines on stderr"
[ "$ntrace" -eq "$nmatch" ] || fail "stderr has lines that are not gctrace lines"
grep -E "$go_re" "$tmp/trace.out" >/dev/null && fail "gctrace lines on stdout"
awk -v frames=200 -v rows=$rows -v cols=$cols -f "$check_awk" "$tmp/trace.out" >/dev/null ||
    fail "the frames under gctrace do not pass heart-check.awk"
# The status line's cycle count agrees with gctrace's last cycle.
last_gc=$(grep -E "$go_re" "$tmp/trace.err" | tail -n 1 | cut -d' ' -f2)
status_gc=$(grep '^gc ' "$tmp/trace.out" | tail -n 1 | cut -d' ' -f2)
[ "$last_gc" = "$status_gc" ] ||
    fail "the last status line says gc $status_gc, the last gctrace line gc $last_gc"

# ---- options --------------------------------------------------------------------------------
echo "--- --help"
run help --help
[ "$rc" -eq 0 ] || fail "--help: exit status $rc"
[ -s "$tmp/help.err" ] && fail "--help: output on stderr"
head -n 1 "$tmp/help.out" | grep -q '^usage: heart ' || fail "--help: no usage line"
for o in --frames --fps --threads --plain --no-color --leak --pool --local --help; do
    grep -q -e "$o" "$tmp/help.out" || fail "--help does not mention $o"
done
usage_lines=$(wc -l <"$tmp/help.out")

echo "--- bad options: exit 2, one error line, then the usage"
i=0
for args in "--bogus" "-x" "stray" "--frames" "--frames abc" "--frames -1" "--frames=" \
    "--fps 0" "--fps 1001" "--threads 65" "--threads 2x" "--plain --frames 3 --nope"; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    run bad$i $args
    err=$tmp/bad$i.err
    if [ "$rc" -ne 2 ]; then
        fail "'$args': exit status $rc, expected 2"
    elif [ -s "$tmp/bad$i.out" ]; then
        fail "'$args': output on stdout"
    elif ! head -n 1 "$err" | grep -q '^heart: '; then
        fail "'$args': the first line is not an error: $(head -n 1 "$err")"
    elif ! sed -n 2p "$err" | grep -q '^usage: heart '; then
        fail "'$args': no usage after the error line"
    elif [ "$(wc -l <"$err")" -ne $((usage_lines + 1)) ]; then
        fail "'$args': $(wc -l <"$err") lines on stderr, expected 1 + $usage_lines"
    else
        echo "    '$args': $(head -n 1 "$err")"
    fi
done

echo "--- --pool and --local: not in this build yet"
for args in "--pool" "--local" "--plain --frames 5 --pool" "--local --threads 2"; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    run bad$i $args
    err=$tmp/bad$i.err
    if [ "$rc" -ne 2 ]; then
        fail "'$args': exit status $rc, expected 2"
    elif [ -s "$tmp/bad$i.out" ]; then
        fail "'$args': output on stdout"
    elif [ "$(wc -l <"$err")" -ne 1 ]; then
        fail "'$args': $(wc -l <"$err") lines on stderr, expected 1"
    else
        echo "    '$args': $(cat "$err")"
    fi
done
run pool --pool
[ "$(cat "$tmp/pool.err")" = 'heart: --pool needs gc_pool, which this build of Tricolor does not have yet' ] ||
    fail "--pool: not the expected message: $(cat "$tmp/pool.err")"
run local --local
grep -q '^heart: --local needs gc_malloc_local' "$tmp/local.err" ||
    fail "--local: not the expected message: $(cat "$tmp/local.err")"

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all heart checks passed"
exit 0
