#!/bin/sh
# heart-tty.sh - the heart demo on a real terminal: a detached tmux session.
#
#   1. In a 100x40 pane running sh, start demos/heart: the pane switches to the
#      alternate screen and hides the cursor; the heart (in red) and the status line
#      show up, the status line on the last row.  Ctrl-C: the demo dies of SIGINT
#      ($? is 130), the pane is back on the normal screen with the cursor shown, echo
#      works again, and no trace of the heart is left on the screen.
#   2. --no-color: no colours.  Resizing the window to 60x20 (SIGWINCH) moves the
#      status line to the new last row.  Ctrl-C restores the terminal again.
#   3. In a window of its own, the demo gets SIGTERM: it dies of SIGTERM (status
#      143), and the terminal is off the alternate screen with the cursor shown.
#
# Every wait polls with a timeout; the whole test takes a few seconds.  Skipped
# (exit 77) without tmux.  Environment: abs_top_builddir (default: the current
# directory, the top build directory).

LC_ALL=C
export LC_ALL
unset GCPERCENT GCMEMLIMIT GCPROCS GCDEBUG NO_COLOR TMUX TMUX_PANE
# tmux runs commands with $SHELL -c: make that a POSIX shell whatever the user's is.
SHELL=/bin/sh
export SHELL

if ! command -v tmux >/dev/null 2>&1; then
    echo "heart-tty.sh: tmux not found; skipped"
    exit 77
fi
builddir=${abs_top_builddir:-$(pwd)}
heart=$builddir/demos/heart
if [ ! -x "$heart" ]; then
    echo "heart-tty.sh: $heart is not built" >&2
    exit 99
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tricolor-heart-tty.XXXXXX") || exit 99
sock=tricolor-heart-$$
# A private server (-L) with no configuration (-f /dev/null): nothing of the
# user's tmux is touched, and the server goes away with the test.
t() {
    tmux -L "$sock" -f /dev/null "$@"
}
trap 't kill-server >/dev/null 2>&1; rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# wait_for SECONDS COMMAND...: run COMMAND every tenth of a second until it succeeds.
wait_for() {
    tries=$(($1 * 10))
    shift
    while [ "$tries" -gt 0 ]; do
        "$@" && return 0
        sleep 0.1 2>/dev/null || sleep 1
        tries=$((tries - 1))
    done
    return 1
}

pane=heart:0
fmt() {             # fmt FORMAT: a tmux format of $pane, e.g. #{alternate_on}
    t display-message -p -t "$pane" "$1"
}
is() {              # is FORMAT VALUE
    [ "$(fmt "$1")" = "$2" ]
}
screen() {          # the visible screen of $pane (the alternate one while it is on)
    t capture-pane -p -t "$pane"
}
status_re='^gc [0-9]+ \| HeapAlloc [0-9]+\.[0-9] MB \| NextGC [0-9]+ MB \| last pause'
drawn() {           # the heart (rows of dense glyphs) and the status line on row $1
    screen >"$tmp/screen"
    [ "$(grep -c '[x#%@]\{4,\}' "$tmp/screen")" -ge 4 ] &&
        sed -n "$1p" "$tmp/screen" | grep -Eq "$status_re"
}
running() {         # running ROWS: alternate screen on and the frame drawn
    is '#{alternate_on}' 1 && drawn "$1"
}
shows() {           # shows REGEX: a line of the screen matches
    screen | grep -Eq "$1"
}
type_line() {       # type a command line into the shell of $pane
    t send-keys -t "$pane" -l "$1" && t send-keys -t "$pane" Enter
}
dump() {
    echo "--- the screen:"
    screen | sed 's/^/    |/'
    echo "--- alternate_on=$(fmt '#{alternate_on}') cursor_flag=$(fmt '#{cursor_flag}')"
}

# The terminal is back to normal: off the alternate screen, cursor shown, the shell
# reports how the demo ended, and nothing of the heart is left on the screen.
restored() {
    name=$1 code=$2
    if ! wait_for 5 is '#{alternate_on}' 0; then
        fail "$name: still on the alternate screen after the demo ended"
        dump
        return
    fi
    type_line 'echo heart-exit=$?'
    if ! wait_for 5 shows '^heart-exit=[0-9]+$'; then
        fail "$name: the shell did not come back"
        dump
        return
    fi
    got=$(screen | sed -n 's/^heart-exit=//p' | tail -n 1)
    [ "$got" = "$code" ] || fail "$name: the demo exited with status $got, expected $code"
    is '#{cursor_flag}' 1 || fail "$name: the cursor is still hidden"
    # dash has no line editor: the command line shows only if the terminal echoes.
    shows 'echo heart-exit=' || fail "$name: typed text is not echoed (echo left off)"
    if shows "$status_re" || shows '[#%@]{4,}'; then
        fail "$name: the heart or its status line is still on the normal screen"
        dump
    fi
    echo "    $name: exit status $got"
    type_line clear
    wait_for 5 cleared
}
cleared() {
    ! shows '^heart-exit='
}

# ---- 1. a 100x40 terminal, Ctrl-C -----------------------------------------------------------
echo "--- tmux $(tmux -V | cut -d' ' -f2-), a 100x40 pane running sh"
t new-session -d -s heart -x 100 -y 40 "env PS1='heart-test> ' ENV= sh" || exit 99
if ! wait_for 5 shows '^heart-test>'; then
    echo "heart-tty.sh: no shell prompt in the tmux pane" >&2
    dump
    exit 99
fi
is '#{alternate_on}' 0 || fail "the pane starts on the alternate screen"

type_line "'$heart' --fps 30"
if wait_for 5 running 40; then
    echo "    running: heart and status line on row 40"
    is '#{cursor_flag}' 0 || fail "the cursor is not hidden while the demo runs"
    t capture-pane -e -p -t "$pane" >"$tmp/colour"
    grep -Eq '(38;5;(52|88|124|160|196|203|217)|\[(0;)?(1;)?31)m' "$tmp/colour" ||
        fail "no red in the heart"
else
    fail "the demo did not draw the heart and its status line on a 100x40 terminal"
    dump
fi
t send-keys -t "$pane" C-c
restored Ctrl-C 130

# ---- 2. --no-color, then a resize to 60x20 --------------------------------------------------
echo "--- --no-color, then resize to 60x20"
type_line "'$heart' --fps 30 --no-color"
if wait_for 5 running 40; then
    t capture-pane -e -p -t "$pane" >"$tmp/nocolour"
    grep -Eq '(38;5;[0-9]+|\[[0-9;]*3[0-7])m' "$tmp/nocolour" && fail "--no-color: colours on the screen"
    t resize-window -t heart -x 60 -y 20
    if wait_for 5 running 20; then
        echo "    resized: status line on row 20"
    else
        fail "after the resize to 60x20 the status line is not on row 20"
        dump
    fi
else
    fail "--no-color: the demo did not draw"
    dump
fi
t send-keys -t "$pane" C-c
restored "--no-color Ctrl-C" 130

# ---- 3. SIGTERM, in a window of its own ------------------------------------------------------
# A non-interactive shell runs the demo in the background (so $! is its pid; it still
# owns the screen), waits for it and reports how it ended.
echo "--- SIGTERM"
t new-window -d -t heart:1 \
    "'$heart' --fps 30 & echo \$! >'$tmp/pid'; wait \$!; echo heart-exit=\$?; exec sleep 60"
pane=heart:1
if wait_for 5 running "$(fmt '#{pane_height}')" && [ -s "$tmp/pid" ]; then
    kill -TERM "$(cat "$tmp/pid")"
    if wait_for 5 shows '^heart-exit=[0-9]+$'; then
        got=$(screen | sed -n 's/^heart-exit=//p')
        [ "$got" = 143 ] || fail "SIGTERM: the demo exited with status $got, expected 143"
        is '#{alternate_on}' 0 || fail "SIGTERM: still on the alternate screen"
        is '#{cursor_flag}' 1 || fail "SIGTERM: the cursor is still hidden"
        if shows "$status_re" || shows '[#%@]{4,}'; then
            fail "SIGTERM: the heart or its status line is still on the normal screen"
            dump
        fi
        echo "    SIGTERM: exit status $got"
    else
        fail "SIGTERM: the demo did not exit"
        dump
    fi
else
    fail "SIGTERM: the demo did not start in its own window"
    dump
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all terminal checks passed"
exit 0
