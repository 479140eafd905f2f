#!/bin/sh
# env.sh - GCPERCENT, GCMEMLIMIT, GCPROCS and GCDEBUG as the contract states them.
#
# A malformed value prints exactly one line on stderr, naming the variable and the
# value, and the program runs on normally with the default (same exit status, same
# output); a valid value prints nothing.  tests/envprobe (about 64 MB of garbage
# over a 1 MB live set) shows the settings' effect: GCPERCENT=off runs no cycle,
# GCPERCENT=50 runs more cycles than the default and 200 fewer, and a malformed
# GCPERCENT behaves as the default.  Run from the top build directory.

LC_ALL=C
export LC_ALL
unset GCPERCENT GCMEMLIMIT GCPROCS GCDEBUG

demo=./demos/gcdemo
probe=./tests/envprobe
for p in "$demo" "$probe"; do
    if [ ! -x "$p" ]; then
        echo "env.sh: $p is not built (run from the top build directory)" >&2
        exit 99
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/env.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
[ "$ncpu" -ge 1 ] 2>/dev/null || ncpu=1
[ "$ncpu" -le 1024 ] || ncpu=1024

# The demo's result line up to the colon ("rounds 100, checksum 91000:") does not
# depend on the collector's settings; the rest (cycles, heap sizes) does.
ROUNDS=100
"$demo" $ROUNDS >"$tmp/base.out" 2>"$tmp/base.err" || fail "gcdemo without settings failed"
[ -s "$tmp/base.err" ] && fail "gcdemo without settings printed on stderr: $(cat "$tmp/base.err")"
base=$(sed -n 's/:.*//p' "$tmp/base.out")
[ -n "$base" ] || fail "gcdemo printed no result line"
echo "baseline: $(cat "$tmp/base.out")"

# run_demo VAR=VALUE: the demo with that one variable set; exit status in rc, output
# in $tmp/run.out and $tmp/run.err.  Checks the status and the result line.
run_demo() {
    env "$1" "$demo" $ROUNDS >"$tmp/run.out" 2>"$tmp/run.err"
    rc=$?
    [ "$rc" -eq 0 ] || fail "$1: gcdemo exited with $rc"
    got=$(sed -n 's/:.*//p' "$tmp/run.out")
    [ "$got" = "$base" ] || fail "$1: gcdemo printed \"$got\", expected \"$base\""
}

# quoted_in LINE VALUE: LINE shows VALUE quoted ("v", 'v', `v`) or as =v standing alone.
quoted_in() {
    printf '%s\n' "$1" | grep -qF -e "\"$2\"" -e "'$2'" -e "\`$2\`" && return 0
    [ -n "$2" ] && printf '%s\n' "$1" | grep -qE "=$2([^A-Za-z0-9_.=]|\$)"
}

# bad VAR=VALUE SHOWN [KEY]: a malformed setting.  Exactly one line on stderr; it
# names VAR (and KEY, a GCDEBUG key, when given) and shows SHOWN, the bad value.
bad() {
    setting=$1 shown=$2 key=${3:-}
    var=${setting%%=*}
    run_demo "$setting"
    n=$(wc -l <"$tmp/run.err")
    echo "$setting -> $n line(s): $(cat "$tmp/run.err")"
    if [ "$n" -ne 1 ]; then
        fail "$setting: $n lines on stderr, expected exactly 1"
        cat "$tmp/run.err"
        return
    fi
    line=$(cat "$tmp/run.err")
    case $line in
    *"$var"*) ;;
    *) fail "$setting: the message does not name $var: $line" ;;
    esac
    if [ -n "$key" ]; then
        case $line in
        *"$key"*) ;;
        *) fail "$setting: the message does not name the key $key: $line" ;;
        esac
    fi
    [ "$shown" = "$ANY" ] && return
    quoted_in "$line" "$shown" || fail "$setting: the message does not show the value \"$shown\": $line"
}
ANY='(any)'   # for bad: a value the message may show in its own way (escaped, cut)

# good VAR=VALUE: a valid setting prints nothing.
good() {
    run_demo "$1"
    if [ -s "$tmp/run.err" ]; then
        fail "$1 is valid, but stderr has: $(cat "$tmp/run.err")"
    else
        echo "$1 -> silent"
    fi
}

# ---- malformed values -----------------------------------------------------------------
bad GCPERCENT=abc abc
bad GCPERCENT= ''
bad GCMEMLIMIT=12XB 12XB
bad GCPROCS=0 0
bad GCDEBUG=gctrace=x x gctrace
bad GCDEBUG=bogus=1 bogus
bad GCDEBUG=gctrace gctrace
bad GCDEBUG=gctrace=1x 1x gctrace
bad GCPROCS=1025 1025
bad GCMEMLIMIT=9999999999TiB 9999999999TiB
# Still one line when the value holds a newline or is very long.
bad "GCPERCENT=$(printf '1\n2')" "$ANY"
bad "GCMEMLIMIT=$(printf '%0300d' 7)X" "$ANY"

# ---- valid values -----------------------------------------------------------------------
good GCPERCENT=off
good GCPERCENT=OFF
good GCPERCENT=50
good GCMEMLIMIT=512MiB
good GCMEMLIMIT=off
good GCPROCS=1
good GCDEBUG=gctrace=0

# ---- a bad item does not stop GCDEBUG's other items ------------------------------------
GCDEBUG=bogus=1,gctrace=1 "$demo" $ROUNDS >"$tmp/run.out" 2>"$tmp/run.err" ||
    fail "GCDEBUG=bogus=1,gctrace=1: gcdemo failed"
other=$(grep -vc '^gc ' "$tmp/run.err")
traced=$(grep -c '^gc ' "$tmp/run.err")
[ "$other" -eq 1 ] || fail "GCDEBUG=bogus=1,gctrace=1: $other lines other than gctrace's, expected 1"
[ "$traced" -ge 1 ] || fail "GCDEBUG=bogus=1,gctrace=1: gctrace=1 after the bad item was not applied"

# ---- a malformed GCPROCS leaves the default: CPUs online -------------------------------
GCPROCS=0 GCDEBUG=gctrace=1 "$demo" $ROUNDS >"$tmp/run.out" 2>"$tmp/run.err" ||
    fail "GCPROCS=0 GCDEBUG=gctrace=1: gcdemo failed"
procs=$(sed -nE 's/^gc .* ([0-9]+) P( \(forced\))?$/\1/p' "$tmp/run.err" | sort -u)
[ "$procs" = "$ncpu" ] ||
    fail "GCPROCS=0: gctrace shows \"$(echo "$procs" | tr '\n' ' ')\" P, expected the default $ncpu"

# ---- the settings' effect ------------------------------------------------------------------
# probe VAR=VALUE...: runs envprobe with those settings; sets num_gc, next_gc, enable_gc,
# debug_gc from its line.
probe() {
    env "$@" "$probe" >"$tmp/probe.out" 2>"$tmp/probe.err"
    rc=$?
    line=$(cat "$tmp/probe.out")
    echo "envprobe $*: $line"
    [ "$rc" -eq 0 ] || fail "envprobe $*: exited with $rc"
    case $line in
    *" live OK") ;;
    *) fail "envprobe $*: the live set did not survive: $line" ;;
    esac
    num_gc=$(printf '%s\n' "$line" | sed -n 's/.* num_gc \([0-9]*\) .*/\1/p')
    next_gc=$(printf '%s\n' "$line" | sed -n 's/.* next_gc \([0-9]*\) .*/\1/p')
    enable_gc=$(printf '%s\n' "$line" | sed -n 's/.* enable_gc \([0-9]*\) .*/\1/p')
    debug_gc=$(printf '%s\n' "$line" | sed -n 's/.* debug_gc \([0-9]*\) .*/\1/p')
    if [ -z "$num_gc" ] || [ -z "$next_gc" ] || [ -z "$enable_gc" ] || [ -z "$debug_gc" ]; then
        fail "envprobe $*: cannot parse: $line"
        num_gc=0 next_gc=0 enable_gc=0 debug_gc=0
    fi
}

probe GCPERCENT=100
[ -s "$tmp/probe.err" ] && fail "envprobe GCPERCENT=100 printed on stderr: $(cat "$tmp/probe.err")"
n_default=$num_gc goal_default=$next_gc
[ "$enable_gc" = 1 ] || fail "GCPERCENT=100: enable_gc is $enable_gc, expected 1"
[ "$debug_gc" = 0 ] || fail "without GCDEBUG: debug_gc is $debug_gc, expected 0"
[ "$n_default" -ge 3 ] || fail "GCPERCENT=100: $n_default cycles for 64 MB of garbage, expected several"

probe GCPERCENT=off
[ "$num_gc" = 0 ] || fail "GCPERCENT=off: $num_gc cycles, expected 0"
[ "$enable_gc" = 0 ] || fail "GCPERCENT=off: enable_gc is $enable_gc, expected 0"

probe GCPERCENT=50
n_50=$num_gc goal_50=$next_gc
probe GCPERCENT=200
n_200=$num_gc goal_200=$next_gc
[ "$n_50" -gt "$n_default" ] || fail "GCPERCENT=50 ran $n_50 cycles, not more than the default's $n_default"
[ "$n_200" -lt "$n_default" ] || fail "GCPERCENT=200 ran $n_200 cycles, not fewer than the default's $n_default"
if ! { [ "$goal_50" -lt "$goal_default" ] && [ "$goal_default" -lt "$goal_200" ]; }; then
    fail "next_gc does not grow with GCPERCENT: 50 -> $goal_50, 100 -> $goal_default, 200 -> $goal_200"
fi

# A malformed GCPERCENT is the default, not 0 and not off.
probe GCPERCENT=abc
if ! { [ "$num_gc" -gt "$n_200" ] && [ "$num_gc" -lt "$n_50" ] && [ "$enable_gc" = 1 ]; }; then
    fail "GCPERCENT=abc ran $num_gc cycles (enable_gc $enable_gc): not the default's $n_default"
fi
probe GCPERCENT=
if ! { [ "$num_gc" -gt "$n_200" ] && [ "$num_gc" -lt "$n_50" ] && [ "$enable_gc" = 1 ]; }; then
    fail "GCPERCENT= ran $num_gc cycles (enable_gc $enable_gc): not the default's $n_default"
fi

probe GCDEBUG=gctrace=0
[ "$debug_gc" = 1 ] || fail "GCDEBUG=gctrace=0: debug_gc is $debug_gc, expected 1 (GCDEBUG is set)"

if [ "$failures" -ne 0 ]; then
    echo "env.sh: $failures failure(s)"
    exit 1
fi
echo "env.sh: all checks passed"
exit 0
