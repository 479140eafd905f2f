#!/bin/sh
# concurrent-checkmark.sh - the concurrent stress test again, with GCDEBUG=gccheckmark=1:
# every cycle's mark is checked for objects the write barrier missed, and any such
# object aborts the run.  Half the operations of the plain run keep it short.
set -u
TRICOLOR_STRESS_SCALE=${TRICOLOR_STRESS_SCALE:-0.5} GCDEBUG=gccheckmark=1 \
    tests/test_concurrent
