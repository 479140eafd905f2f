/* mark.c - grey work and conservative scanning.
 *
 * The tri-color abstraction: white objects have no mark bit, grey objects have their
 * mark bit and sit on the mark stack waiting to be scanned, black objects have their
 * mark bit and have been scanned.  Marking ends when no grey object is left; then every
 * object reachable from the roots is black and every white object is garbage.  The
 * invariant that makes this sound while nothing else runs: a black object never points
 * to a white one, because scanning an object shades (marks and pushes) all it points
 * to before the object counts as black.
 *
 * The mark stack is an explicit array, never recursion, and its memory is bounded
 * (max_cap entries).  When it is full the object is marked but not pushed and the state
 * records an overflow; mark_drain then rescans every marked object in the heap, which
 * re-discovers the unscanned ones' white children, until a pass ends with no overflow.
 */
#include "internal.h"

#include <string.h>

/* Grey objects pass through a small FIFO between the mark stack and the scanner: an
 * object is prefetched when it enters and scanned PREFETCH_DEPTH objects later, so its
 * cache miss overlaps the scanning of the others. */
#ifndef PREFETCH_DEPTH
#define PREFETCH_DEPTH 16
#endif

void mark_init(struct mark_state *ms, size_t max_entries)
{
    memset(ms, 0, sizeof *ms);
    ms->max_cap = max_entries;
}

void mark_destroy(struct mark_state *ms)
{
    if (ms->stack)
        os_unmap(ms->stack, ms->cap * sizeof *ms->stack, SYS_GC);
    ms->stack = NULL;
    ms->cap = ms->top = 0;
}

static bool grow(struct mark_state *ms)
{
    size_t cap = ms->cap ? ms->cap * 2 : 4096;
    if (cap > ms->max_cap)
        cap = ms->max_cap;
    if (cap <= ms->cap)
        return false;
    struct mark_range *v = os_map(cap * sizeof *v, SYS_GC);
    if (!v)
        return false;
    if (ms->stack) {
        memcpy(v, ms->stack, ms->top * sizeof *v);
        os_unmap(ms->stack, ms->cap * sizeof *v, SYS_GC);
    }
    ms->stack = v;
    ms->cap = cap;
    return true;
}

static inline void push(struct mark_state *ms, uintptr_t lo, uintptr_t hi)
{
    if (unlikely(ms->top == ms->cap) && !grow(ms)) {
        ms->overflowed = true;
        return;
    }
    ms->stack[ms->top].lo = lo;
    ms->stack[ms->top].hi = hi;
    ms->top++;
}

static inline size_t obj_size(const struct span *s)
{
    return s->cls ? s->size : (size_t)s->npages * PAGE_SIZE;
}

/* Shade the object w points into, if any: set its mark bit and make it grey.  The
 * caller has checked w against the heap's bounds. */
static inline void shade(struct mark_state *ms, struct arena *const *arenas, uintptr_t w)
{
    struct arena *a = arenas[w >> ARENA_SHIFT];
    if (!a)
        return;
    struct span *s = a->spans[(w >> PAGE_SHIFT) & (ARENA_PAGES - 1)];
    if (!s || span_state(s) < SPAN_SMALL || w - s->base >= (uintptr_t)s->npages << PAGE_SHIFT)
        return;   /* not in use, or a stale map entry read while the heap changed */
    uint32_t i = span_index(s, w);
    if (i >= s->nelems)
        return;
    AO_t bit = (AO_t)1 << (i & 63);
    if (!(AO_load(&s->alloc_bits[i >> 6]) & bit))
        return;   /* a free slot: never resurrect it */
    AO_t old = AO_load(&s->mark_bits[i >> 6]);
    if (old & bit)
        return;   /* already grey or black */
    /* One marker runs while the world is stopped: a plain store suffices.  Parallel
     * markers will need an atomic OR here. */
    AO_store(&s->mark_bits[i >> 6], old | bit);
    size_t size = obj_size(s);
    ms->objects_marked++;
    ms->bytes_marked += size;
    if (!s->noscan) {
        uintptr_t base = s->base + (uintptr_t)i * s->size;
        push(ms, base, base + size);
    }
}

/* Read every aligned word of [lo, hi) once and shade what it points to.  The memory
 * may belong to anyone (a stack, a data segment, an object being written), so the
 * sanitizers are told to look away. */
NO_SANITIZE void mark_scan_range(struct mark_state *ms, uintptr_t lo, uintptr_t hi)
{
    uintptr_t hlo = AO_load(&heap.lo), hhi = AO_load(&heap.hi);
    uintptr_t hspan = hhi > hlo ? hhi - hlo : 0;   /* no arena yet: nothing can match */
    struct arena *const *arenas = heap.arenas;
    lo = (lo + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    hi &= ~(uintptr_t)(sizeof(uintptr_t) - 1);
    for (uintptr_t p = lo; p < hi; p += sizeof(uintptr_t)) {
        uintptr_t w = *(volatile const uintptr_t *)p;
        if (w - hlo < hspan)
            shade(ms, arenas, w);
    }
    ms->bytes_scanned += hi > lo ? hi - lo : 0;
}

static void rescan_span(struct span *s, void *arg)
{
    struct mark_state *ms = arg;
    if (s->noscan)
        return;
    for (uint32_t i = 0; i < s->nelems; i++)
        if (AO_load(&s->mark_bits[i >> 6]) & ((AO_t)1 << (i & 63))) {
            uintptr_t base = s->base + (uintptr_t)i * s->size;
            mark_scan_range(ms, base, base + obj_size(s));
            while (ms->top > 0) {
                struct mark_range r = ms->stack[--ms->top];
                mark_scan_range(ms, r.lo, r.hi);
            }
        }
}

static void drain_stack(struct mark_state *ms)
{
    struct mark_range fifo[PREFETCH_DEPTH];
    unsigned head = 0, n = 0;
    for (;;) {
        if (ms->top > 0 && n < PREFETCH_DEPTH) {
            struct mark_range r = ms->stack[--ms->top];
            __builtin_prefetch((const void *)r.lo);
            fifo[(head + n++) % PREFETCH_DEPTH] = r;
            continue;
        }
        if (n == 0)
            return;
        struct mark_range r = fifo[head];
        head = (head + 1) % PREFETCH_DEPTH;
        n--;
        mark_scan_range(ms, r.lo, r.hi);
    }
}

void mark_drain(struct mark_state *ms)
{
    for (;;) {
        drain_stack(ms);
        if (!ms->overflowed)
            return;
        /* Some marked objects were never scanned: rescan all marked objects. */
        ms->overflowed = false;
        heap_for_each_span(rescan_span, ms);
    }
}

bool mark_is_marked(uintptr_t obj)
{
    struct span *s;
    uintptr_t base = heap_find_object(obj, &s);
    if (!base)
        return false;
    uint32_t i = span_index(s, base);
    return AO_load(&s->mark_bits[i >> 6]) & ((AO_t)1 << (i & 63));
}
