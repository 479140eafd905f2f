#!/bin/sh
# symbols.sh - the shared library exports the public API and nothing else.
#
# .libs/libtricolor.so (libtool's build of libtricolor.la, in the top build
# directory) must export only names starting with gc_ (nm -D --defined-only; the
# version-node entries nm shows with type A are not symbols); every name that
# include/tricolor.h declares GC_API must be among them; every exported name must be
# declared there (an internal gc_* helper that leaks through the version script is an
# export too many); and of the contract's functions (listed below), those this build
# declares must be exported.  Skips (77) when the build has no shared library.

LC_ALL=C
export LC_ALL

lib=.libs/libtricolor.so
header=${srcdir:-.}/include/tricolor.h

if ! command -v nm >/dev/null 2>&1; then
    echo "symbols.sh: nm not found" >&2
    exit 77
fi
if [ ! -f "$lib" ]; then
    echo "symbols.sh: $lib not built (--disable-shared?); skipped" >&2
    exit 77
fi
if [ ! -f "$header" ]; then
    echo "symbols.sh: $header not found" >&2
    exit 99
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/symbols.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# The API functions the contract names (doc/api.md), in its order.
cat >"$tmp/contract" <<'NAMES'
gc_init
gc_malloc
gc_malloc_atomic
gc_calloc
gc_realloc
gc_strdup
gc_free
gc_size
gc_base
gc_add_roots
gc_remove_roots
gc_register_thread
gc_unregister_thread
gc_thread_create
gc_collect
gc_set_percent
gc_set_memory_limit
gc_disable
gc_enable
gc_free_os_memory
gc_read_memstats
gc_write_range
gc_memcpy
gc_memmove
gc_memset
gc_set_cycle_hook
gc_scope_begin
gc_scope_end
gc_malloc_local
gc_pool_new
gc_pool_get
gc_pool_put
gc_pool_read_stats
gc_set_finalizer
gc_weak_new
gc_weak_get
gc_write_heap_profile
gc_trace_start
gc_trace_stop
NAMES
sort -u "$tmp/contract" -o "$tmp/contract"

# Exported: defined dynamic symbols, less nm's type-A version nodes, with any
# @VERSION / @@VERSION suffix cut.
if ! nm -D --defined-only "$lib" >"$tmp/nm"; then
    fail "nm -D --defined-only $lib failed"
    exit 1
fi
awk 'NF >= 3 && $2 != "A" { print $3 } NF == 2 && $1 != "A" { print $2 }' "$tmp/nm" |
    sed 's/@.*//' | sort -u >"$tmp/exported"
echo "exported by $lib:"
sed 's/^/  /' "$tmp/exported"
[ -s "$tmp/exported" ] || fail "$lib exports nothing"

# Declared: every GC_API declaration in the header (functions and variables); the
# name is the identifier just before the first '(' or, for a variable, before ';'.
grep -E '^[[:space:]]*GC_API[[:space:]]' "$header" |
    sed -e 's/(.*//' -e 's/;.*//' -e 's/[[:space:]]*$//' -e 's/.*[^A-Za-z0-9_]//' |
    sort -u >"$tmp/declared"
[ -s "$tmp/declared" ] || fail "found no GC_API declarations in $header"

# 1. Only gc_ names.
grep -v '^gc_' "$tmp/exported" >"$tmp/foreign"
if [ -s "$tmp/foreign" ]; then
    fail "$lib exports names outside gc_: $(tr '\n' ' ' <"$tmp/foreign")"
fi

# 2. Everything the header declares is exported.
comm -23 "$tmp/declared" "$tmp/exported" >"$tmp/missing"
if [ -s "$tmp/missing" ]; then
    fail "declared GC_API in tricolor.h but not exported: $(tr '\n' ' ' <"$tmp/missing")"
fi

# 3. Nothing is exported that the header does not declare.
comm -13 "$tmp/declared" "$tmp/exported" >"$tmp/extra"
if [ -s "$tmp/extra" ]; then
    fail "exported but not declared in tricolor.h (internal names leaking): $(tr '\n' ' ' <"$tmp/extra")"
fi

# 4. The contract's functions this build declares are exported; the others are
#    reported, not failed: they belong to later parts of the build.
comm -12 "$tmp/contract" "$tmp/declared" >"$tmp/contract_declared"
comm -23 "$tmp/contract_declared" "$tmp/exported" >"$tmp/contract_missing"
if [ -s "$tmp/contract_missing" ]; then
    fail "contract functions declared but not exported: $(tr '\n' ' ' <"$tmp/contract_missing")"
fi
echo "contract functions declared and exported: $(wc -l <"$tmp/contract_declared")" \
    "of $(wc -l <"$tmp/contract")"
comm -23 "$tmp/contract" "$tmp/declared" >"$tmp/contract_later"
if [ -s "$tmp/contract_later" ]; then
    echo "contract functions this build does not declare yet: $(tr '\n' ' ' <"$tmp/contract_later")"
fi

if [ "$failures" -ne 0 ]; then
    echo "symbols.sh: $failures failure(s)"
    exit 1
fi
echo "symbols.sh: all checks passed"
exit 0
