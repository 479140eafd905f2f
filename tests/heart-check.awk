# heart-check.awk - checks the frames of `heart --plain` (tests/heart.sh runs it).
#
# Input: frames of art rows, each frame ended by its status line and a blank line.
# Variables (-v): frames (how many frames to expect), rows and cols (the art area),
# ratio (the smallest max/min of the heart's filled cells across frames; 0 skips).
#
# For every frame it checks: exactly `rows` art rows no wider than `cols`, only
# heart glyphs, spark glyphs and blanks; a status line in the fixed format; a heart
# whose filled/empty mask is left-right symmetric around the heart's own centre
# column, and centred at the same column in every frame.  Across frames, the filled
# cell count must vary by `ratio` (the beat).  Failures go to stderr, one line each,
# and make the exit status 1.  On stdout, one line a frame: "N heap_alloc num_gc filled".

function fail(msg) {
    print "heart-check: frame " nframe ": " msg > "/dev/stderr"
    bad = 1
}

function check_frame(    y, x, line, ch, n, lo, hi, mirror) {
    if (nart != rows)
        fail("has " nart " art rows, expected " rows)
    # The heart's centre: halfway between its leftmost and rightmost filled cell.
    lo = 0; hi = 0; n = 0
    for (y = 1; y <= nart; y++) {
        line = art[y]
        if (length(line) > cols)
            fail("row " y " is " length(line) " columns wide, more than " cols)
        for (x = 1; x <= length(line); x++) {
            ch = substr(line, x, 1)
            if (index(HEART, ch)) {
                n++
                if (!lo || x < lo) lo = x
                if (x > hi) hi = x
            } else if (!index(OTHER, ch)) {
                fail("row " y " has an unexpected character '" ch "'")
            }
        }
    }
    if (n == 0) {
        fail("has no heart")
        return
    }
    if (nframe == 1)
        centre = lo + hi
    else if (lo + hi != centre)
        fail("heart centred at column " (lo + hi) / 2 ", frame 1 at " centre / 2)
    # Symmetry of the mask (shading may differ): cell x is heart iff its mirror is.
    for (y = 1; y <= nart; y++) {
        line = art[y]
        for (x = 1; x <= length(line); x++) {
            if (!index(HEART, substr(line, x, 1)))
                continue
            mirror = lo + hi - x
            ch = substr(line, mirror, 1)    # "" past the end of the row: index("", ...) varies
            if (ch == "" || !index(HEART, ch)) {
                fail("row " y ": column " x " is heart but its mirror column " mirror " is not")
                break
            }
        }
    }
    filled[nframe] = n
    print nframe, heap, gcs, n
}

BEGIN {
    HEART = ":-=+x#%@"      # the heart's glyphs, dim to bright
    OTHER = " *'."          # blanks, sparks and their trails
    STATUS = "^gc [0-9]+ \\| HeapAlloc [0-9]+\\.[0-9] MB \\| NextGC [0-9]+ MB \\| last pause [0-9]+\\.[0-9]+ ms \\| GC CPU [0-9]+\\.[0-9]%$"
    nart = 0; nframe = 0; bad = 0; after_status = 0
}

after_status {
    after_status = 0
    if ($0 != "")
        fail("status line not followed by a blank line")
    next
}

/^gc / {
    nframe++
    if ($0 !~ STATUS)
        fail("malformed status line: " $0)
    gcs = $2; heap = $5
    check_frame()
    nart = 0
    after_status = 1
    next
}

{
    art[++nart] = $0
}

END {
    if (nart > 0) {
        nframe++
        fail("output ends with " nart " rows and no status line")
    }
    if (nframe != frames) {
        print "heart-check: " nframe " frames, expected " frames > "/dev/stderr"
        bad = 1
    }
    if (ratio > 0 && nframe > 0) {
        lo = hi = filled[1]
        for (i = 2; i <= nframe; i++) {
            if (filled[i] < lo) lo = filled[i]
            if (filled[i] > hi) hi = filled[i]
        }
        if (hi < ratio * lo) {
            print "heart-check: the heart does not beat: filled cells from " lo " to " hi \
                ", less than " ratio "x" > "/dev/stderr"
            bad = 1
        }
    }
    exit bad
}
