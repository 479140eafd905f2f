#!/bin/sh
# install.sh - an installed Tricolor is usable from outside, through pkg-config.
#
# Installs the build into a scratch DESTDIR ("make install DESTDIR=$tmp", run in the
# top build directory), checks the files the contract's install layout promises
# (include/tricolor.h, libtricolor.so and .a, pkgconfig/tricolor.pc), then builds a
# small outside program that includes only <tricolor.h>:
#   - shared: cc prog.c $(pkg-config --cflags --libs tricolor), run with
#     LD_LIBRARY_PATH at the installed lib directory;
#   - static: libtricolor.a named explicitly, plus pkg-config --static's
#     Libs.private (no -static: libc stays shared), and checked not to need
#     libtricolor.so;
# with pkg-config reading the installed tricolor.pc, its prefix moved under DESTDIR
# with --define-variable.  Each program allocates, collects and must print exactly
# the expected lines.
#
# Environment (tests/scripts.am's SH_LOG_COMPILER sets it): MAKE, abs_top_builddir,
# CC, PKG_CONFIG, SAN_CFLAGS; the defaults suit a run by hand from the build dir.

LC_ALL=C
export LC_ALL
unset GCPERCENT GCMEMLIMIT GCPROCS GCDEBUG

make_cmd=${MAKE:-make}
builddir=${abs_top_builddir:-$(pwd)}
cc=${CC:-cc}
pkg_config=${PKG_CONFIG:-pkg-config}

if [ ! -f "$builddir/Makefile" ]; then
    echo "install.sh: no Makefile in $builddir" >&2
    exit 99
fi
if ! command -v "$pkg_config" >/dev/null 2>&1; then
    echo "install.sh: $pkg_config not found; skipped" >&2
    exit 77
fi

prefix=$(sed -n 's/^prefix = //p' "$builddir/Makefile")
case $prefix in
/*) ;;
*)
    echo "install.sh: cannot read an absolute prefix from $builddir/Makefile: \"$prefix\"" >&2
    exit 99
    ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tricolor-install.XXXXXX") || exit 99
# Installed files can be read-only; make everything writable before removing it.
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
dest=$tmp/dest
mkdir "$dest" "$tmp/work" || exit 99

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# ---- make install DESTDIR=... ------------------------------------------------------------
echo "--- $make_cmd -C $builddir install DESTDIR=$dest (prefix $prefix)"
# $make_cmd unquoted on purpose: MAKE may carry options.
# shellcheck disable=SC2086
$make_cmd -C "$builddir" install DESTDIR="$dest" >"$tmp/install.log" 2>&1
rc=$?
cat "$tmp/install.log"
if [ "$rc" -ne 0 ]; then
    echo "FAIL: make install DESTDIR=$dest failed with $rc"
    exit 1
fi

pc=$(find "$dest" -name tricolor.pc -type f | head -n 1)
if [ -z "$pc" ]; then
    echo "FAIL: make install put no tricolor.pc under $dest$prefix"
    find "$dest" -print
    exit 1
fi
pcdir=$(dirname "$pc")
echo "installed: $pc"

# pkg-config over the installed .pc only (not the system's, not the build tree's).
# def_prefix, def_libdir, def_includedir: --define-variable options, or empty.
pkgconf() {
    PKG_CONFIG_PATH=$pcdir PKG_CONFIG_LIBDIR=$pcdir PKG_CONFIG_SYSROOT_DIR='' \
        "$pkg_config" ${def_prefix:+"$def_prefix"} ${def_libdir:+"$def_libdir"} \
        ${def_includedir:+"$def_includedir"} "$@" tricolor
}

# Relocate through ${prefix} (the .pc file should be relocatable); if its libdir or includedir
# does not follow the prefix (configured with an absolute --libdir, say), move
# those too.
def_prefix='' def_libdir='' def_includedir=''
raw_libdir=$(pkgconf --variable=libdir)
raw_includedir=$(pkgconf --variable=includedir)
def_prefix="--define-variable=prefix=$dest$prefix"
libdir=$(pkgconf --variable=libdir)
includedir=$(pkgconf --variable=includedir)
case $libdir in "$dest"/*) ;; *) libdir= ;; esac
case $includedir in "$dest"/*) ;; *) includedir= ;; esac
if [ -z "$libdir" ] || [ -z "$includedir" ]; then
    def_libdir="--define-variable=libdir=$dest$raw_libdir"
    def_includedir="--define-variable=includedir=$dest$raw_includedir"
    libdir=$(pkgconf --variable=libdir)
    includedir=$(pkgconf --variable=includedir)
    echo "note: tricolor.pc's libdir/includedir do not follow \${prefix}; relocated them one by one"
fi
echo "libdir $libdir, includedir $includedir"

# ---- the installed files -----------------------------------------------------------------
# Both kinds, unless this build was configured without one (--disable-shared or
# --disable-static); that variant is then left out below.
have_shared=no have_static=no
[ -f "$builddir/.libs/libtricolor.so" ] && have_shared=yes
[ -f "$builddir/.libs/libtricolor.a" ] && have_static=yes
echo "this build has: shared $have_shared, static $have_static"
[ "$have_shared" = yes ] || [ "$have_static" = yes ] ||
    fail "$builddir/.libs has neither libtricolor.so nor libtricolor.a"
for f in "$includedir/tricolor.h" "$pc"; do
    [ -f "$f" ] || fail "not installed: $f"
done
[ "$have_shared" = no ] || [ -f "$libdir/libtricolor.so" ] || fail "not installed: $libdir/libtricolor.so"
[ "$have_static" = no ] || [ -f "$libdir/libtricolor.a" ] || fail "not installed: $libdir/libtricolor.a"
[ "$pcdir" = "$libdir/pkgconfig" ] || fail "tricolor.pc is in $pcdir, expected $libdir/pkgconfig"
for f in internal.h options.h; do
    [ -e "$includedir/$f" ] && fail "a private header was installed: $includedir/$f"
done
pkgconf --exists || fail "pkg-config does not accept the installed tricolor.pc"
version=$(pkgconf --modversion)
echo "pkg-config tricolor: version $version"

# ---- the outside program -------------------------------------------------------------------
cat >"$tmp/work/outside.c" <<'PROG'
/* An outside program: only the public header. */
#include <stdio.h>
#include <string.h>
#include <tricolor.h>

struct node {
    struct node *next;
    char *name;
    long value;
};

static struct node *list;   /* a global: a root */

/* Names the collector uses inside: a static link must not clash with them. */
int heap = 1;
long cycle = 2;
double opt = 3.0;
int sweep_all(void);
int sweep_all(void) { return heap + (int)cycle + (int)opt; }

int main(void)
{
    gc_init();
    for (long i = 0; i < 10000; i++) {
        struct node *x = gc_malloc(sizeof *x);
        if (!x)
            return 1;
        x->value = i;
        x->next = list;
        list = x;
        char *garbage = gc_malloc_atomic(1000);   /* ~10 MB of garbage in all */
        if (!garbage)
            return 1;
        memset(garbage, 0xa5, 1000);
    }
    GC_WRITE(list->name, gc_strdup("head"));
    gc_collect();
    long n = 0, sum = 0;
    for (struct node *x = list; x; x = x->next) {
        n++;
        sum += x->value;
    }
    struct gc_memstats ms;
    gc_read_memstats(&ms);
    printf("outside: %ld nodes, sum %ld, head \"%s\"\n", n, sum, list->name);
    printf("outside: collected %s, forced %u\n", ms.num_gc >= 1 ? "yes" : "no",
           ms.num_forced_gc);
    printf("outside: gc_size(head) %s\n", gc_size(list) >= sizeof *list ? "ok" : "wrong");
    return sweep_all() == 6 ? 0 : 1;
}
PROG
cat >"$tmp/work/expected" <<'OUT'
outside: 10000 nodes, sum 49995000, head "head"
outside: collected yes, forced 1
outside: gc_size(head) ok
OUT

# run_outside NAME [VAR=VALUE...]: runs $tmp/work/NAME with the settings, compares.
run_outside() {
    name=$1
    shift
    env "$@" "$tmp/work/$name" >"$tmp/work/$name.out" 2>"$tmp/work/$name.err"
    rc=$?
    echo "--- $name: exit $rc"
    cat "$tmp/work/$name.out" "$tmp/work/$name.err"
    [ "$rc" -eq 0 ] || fail "$name exited with $rc"
    cmp -s "$tmp/work/expected" "$tmp/work/$name.out" || {
        fail "$name printed something else than expected:"
        diff "$tmp/work/expected" "$tmp/work/$name.out"
    }
    [ -s "$tmp/work/$name.err" ] && fail "$name printed on stderr"
}

cflags=$(pkgconf --cflags) || fail "pkg-config --cflags failed"
libs=$(pkgconf --libs) || fail "pkg-config --libs failed"
echo "cflags: $cflags"
echo "libs: $libs"

# Shared.
# shellcheck disable=SC2086
if [ "$have_shared" = no ]; then
    echo "no shared library in this build: shared variant left out"
elif $cc -std=c11 -Wall -Wextra -Werror $SAN_CFLAGS -o "$tmp/work/shared" \
    "$tmp/work/outside.c" $cflags $libs; then
    run_outside shared LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # The program finds the installed library, not some other one.
    if command -v ldd >/dev/null 2>&1; then
        found=$(LD_LIBRARY_PATH="$libdir" ldd "$tmp/work/shared" | sed -n 's/.*libtricolor\.so[^ ]* => \([^ ]*\).*/\1/p')
        case $found in
        "$libdir"/*) ;;
        *) fail "the shared program loads libtricolor from \"$found\", not $libdir" ;;
        esac
    fi
else
    fail "cannot build the outside program against the installed shared library"
fi

# Static: the archive by name, and Libs.private through --static (minus -ltricolor).
static_libs=
for w in $(pkgconf --static --libs); do
    case $w in
    -ltricolor) ;;
    *) static_libs="$static_libs $w" ;;
    esac
done
echo "static: $libdir/libtricolor.a$static_libs"
# shellcheck disable=SC2086
if [ "$have_static" = yes ]; then
    leaked=$(nm -g --defined-only "$libdir/libtricolor.a" 2>/dev/null |
        awk 'NF == 3 && $3 !~ /^gc_/ { print $3 }' | head -5)
    [ -z "$leaked" ] || fail "the installed libtricolor.a defines non-gc_ globals: $leaked"
fi
if [ "$have_static" = no ]; then
    echo "no static library in this build: static variant left out"
elif $cc -std=c11 -Wall -Wextra -Werror $SAN_CFLAGS -o "$tmp/work/static" \
    "$tmp/work/outside.c" $cflags "$libdir/libtricolor.a" $static_libs; then
    if command -v readelf >/dev/null 2>&1 &&
        readelf -d "$tmp/work/static" | grep -q 'NEEDED.*libtricolor'; then
        fail "the static program still needs libtricolor.so"
    fi
    run_outside static
else
    fail "cannot link the outside program against the installed libtricolor.a"
fi

if [ "$failures" -ne 0 ]; then
    echo "install.sh: $failures failure(s)"
    exit 1
fi
echo "install.sh: all checks passed"
exit 0
