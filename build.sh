#!/bin/sh
# build.sh - build Tricolor on a fresh Debian machine and run it.
#
#   ./build.sh demo    install what is missing, build, run the heart demo with gctrace on
#   ./build.sh check   install what is missing, build, run the whole test suite
#                      (unit tests, whole-program tests, the install test) in both
#                      collector modes, then again from the tarball with the heap
#                      verifier, under ASan+UBSan, and the concurrent tests under TSan
#   ./build.sh         just build
set -eu
cd "$(dirname "$0")"

packages="autoconf automake libtool pkg-config make gcc libatomic-ops-dev check"
# check also needs tmux (the demo's real-terminal test) and clang (the sanitizer build)
[ "${1:-}" = check ] && packages="$packages tmux clang"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "build.sh: installing$missing"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
fi

jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
    autoreconf -fi
fi
if [ ! -f Makefile ] || [ configure -nt Makefile ]; then
    ./configure --enable-werror
fi
make -j"$jobs"

case "${1:-}" in
demo)
    # The heart beats on stdout for 10 seconds (Ctrl-C ends it sooner); the gctrace
    # lines go to gctrace.log and are shown after it, so they do not scribble over it.
    GCDEBUG=gctrace=1 demos/heart --frames 150 2>gctrace.log || true
    echo "--- the collector's gctrace lines (GCDEBUG=gctrace=1), from gctrace.log:"
    tail -n 20 gctrace.log
    ;;
check)
    # 1. the release build, in both collector modes (concurrent, the default, and
    # stop-the-world); 2. the tarball, built apart, with assertions and the heap
    # verifier after every cycle, in the third mode (the whole sweep in the pause too);
    # 3. the tarball under AddressSanitizer and UBSan.
    make -j"$jobs" check
    GCDEBUG=gcstoptheworld=1 make -j"$jobs" check
    GCDEBUG=gcstoptheworld=2 make -j"$jobs" distcheck DISTCHECK_CONFIGURE_FLAGS="--enable-werror --enable-debug"
    # Under ASan, stale words in its larger stack frames keep a little more garbage
    # alive, and the tests' "most of it is reclaimed" thresholds can be missed by an
    # object: one more run, and it must pass.
    san="--enable-werror --enable-debug --enable-asan --enable-ubsan CC=clang"
    # Sanitized code runs a few times slower: the Check tests get three times their
    # time limits.
    export CK_TIMEOUT_MULTIPLIER=3
    ASAN_OPTIONS=detect_leaks=0 make -j"$jobs" distcheck DISTCHECK_CONFIGURE_FLAGS="$san" || {
        echo "build.sh: the sanitizer run failed; running it once more"
        ASAN_OPTIONS=detect_leaks=0 make -j"$jobs" distcheck DISTCHECK_CONFIGURE_FLAGS="$san"
    }
    unset CK_TIMEOUT_MULTIPLIER
    # 4. The tarball under ThreadSanitizer: the concurrent stress test (again, shorter,
    # with gccheckmark) and the concurrent units; any report fails them.  The deadlock
    # detector is off: fork (Check runs each test in a child) holds every central lock
    # at once, more than the 64 it can track.
    make -j"$jobs" dist >/dev/null
    tsan_dir=$(mktemp -d)
    tar -xzf tricolor-*.tar.gz -C "$tsan_dir"
    (
        cd "$tsan_dir"/tricolor-*
        ./configure -q --enable-werror --enable-debug --enable-tsan CC=clang
        make -j"$jobs" >/dev/null
        export TSAN_OPTIONS="detect_deadlocks=0" CK_TIMEOUT_MULTIPLIER=5
        make check TESTS="tests/test_concurrent tests/test_units_concurrent" ||
            { cat tests/test_*.log; exit 1; }
        GCDEBUG=gccheckmark=1 TRICOLOR_STRESS_SCALE=0.25 make check TESTS=tests/test_concurrent ||
            { cat tests/test_concurrent.log; exit 1; }
    )
    rm -rf "$tsan_dir"
    ;;
"") ;;
*)
    echo "usage: ./build.sh [demo|check]" >&2
    exit 2
    ;;
esac
