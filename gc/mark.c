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
 * Concurrent marking (GCDEBUG=gcconcurrent=1) keeps the invariant differently: the
 * roots are all scanned in the first pause, and from then on the write barrier shades
 * the old value of every heap slot it overwrites (and the new one), so every object
 * reachable when marking began is either reached by the marker or shaded by the
 * barrier before the last path to it is cut: a snapshot at the beginning.  Objects
 * allocated during marking are black from birth.  Stacks and globals are not rescanned,
 * so stores into them need no barrier.  The marker reads each word of an object once;
 * a word being overwritten concurrently yields either the old value (shaded by the
 * barrier anyway) or the new one (shaded by the barrier too), so the race is benign.
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
#define MARK_STEP_OBJECTS 128   /* a marker's unit of work, a few microseconds */

/* Set while mutators may mark too (barrier flushes, assists): mark bits are then set
 * with a locked fetch-or (lock bts) so that exactly one marker pushes each object. */
static volatile int mark_atomic;

/* The shared grey list: work handed to the marker by barrier flushes, and work the
 * marker hands to assisting mutators.  grey_lock; taken inside critical sections. */
static pthread_mutex_t grey_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mark_state shared;
static atomic_word assists_active;   /* mutators holding grey work privately */
static atomic_word assists_hungry;   /* an assist found no shared work */

/* Concurrent marking: scan work the background markers did, in total and not yet
 * claimed by an assist (assists spend this credit before scanning themselves). */
atomic_word mark_bg_scanned, mark_bg_credit;

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

/* Shade the object w points into, if any: set its mark bit and make it grey.  The
 * caller has checked w against the heap's bounds. */
#define ALWAYS_INLINE __attribute__((always_inline))
NO_SANITIZE static inline ALWAYS_INLINE void shade(struct mark_state *ms,
                                                   struct arena *const *arenas, uintptr_t w)
{
    struct arena *a = MAP_LOAD(&arenas[w >> ARENA_SHIFT]);
    if (!a)
        return;
    struct span *s = MAP_LOAD(&a->spans[(w >> PAGE_SHIFT) & (ARENA_PAGES - 1)]);
    if (!s || span_state(s) < SPAN_SMALL || w - s->base >= (uintptr_t)s->npages << PAGE_SHIFT)
        return;   /* not in use, or a stale map entry read while the heap changed */
    uint32_t i = span_index(s, w);
    if (i >= s->nelems)
        return;
    AO_t bit = (AO_t)1 << (i & 63);
    if (!(AO_load(&s->alloc_bits[i >> 6]) & bit))
        return;   /* a free slot: never resurrect it */
    atomic_word *word = &s->mark_bits[i >> 6];
    AO_t old = AO_load(word);
    if (old & bit)
        return;   /* already grey or black */
    if (!mark_atomic)   /* the only marker, the world stopped */
        AO_store(word, old | bit);
    else if (__atomic_fetch_or(word, bit, __ATOMIC_RELAXED) & bit)
        return;   /* another marker got there first (one locked instruction: bts) */

    size_t size = span_object_size(s);
    ms->objects_marked++;
    ms->bytes_marked += size;
    if (!s->noscan) {
        uintptr_t base = s->base + (uintptr_t)i * s->size;
        push(ms, base, base + size);
    }
}

/* Read every word of [lo, hi) (aligned) once and shade what it points to, given the
 * heap's bounds.  The memory may belong to anyone (a stack, a data segment, an object
 * being written), so the sanitizers are told to look away. */
NO_SANITIZE static inline ALWAYS_INLINE void scan_words(struct mark_state *ms,
                                                        struct arena *const *arenas,
                                                        uintptr_t hlo, uintptr_t hspan,
                                                        uintptr_t lo, uintptr_t hi)
{
    for (uintptr_t p = lo; p < hi; p += sizeof(uintptr_t)) {
        uintptr_t w = *(volatile const uintptr_t *)p;
        if (w - hlo < hspan)
            shade(ms, arenas, w);
    }
    ms->bytes_scanned += hi > lo ? hi - lo : 0;
}

NO_SANITIZE void mark_scan_range(struct mark_state *ms, uintptr_t lo, uintptr_t hi)
{
    uintptr_t hlo = AO_load(&heap.lo), hhi = AO_load(&heap.hi);
    uintptr_t hspan = hhi > hlo ? hhi - hlo : 0;   /* no arena yet: nothing can match */
    lo = (lo + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    hi &= ~(uintptr_t)(sizeof(uintptr_t) - 1);
    scan_words(ms, heap.arenas, hlo, hspan, lo, hi);
}

static void rescan_span(struct span *s, void *arg)
{
    struct mark_state *ms = arg;
    if (s->noscan)
        return;
    for (uint32_t i = 0; i < s->nelems; i++)
        if (AO_load(&s->mark_bits[i >> 6]) & ((AO_t)1 << (i & 63))) {
            uintptr_t base = s->base + (uintptr_t)i * s->size;
            mark_scan_range(ms, base, base + span_object_size(s));
            while (ms->top > 0) {
                struct mark_range r = ms->stack[--ms->top];
                mark_scan_range(ms, r.lo, r.hi);
            }
        }
}

/* Scan grey objects off ms's stack until max objects are scanned, ms has scanned
 * until_bytes in all, or the stack runs dry.  Each object passes through a FIFO of
 * PREFETCH_DEPTH: prefetched when it is popped, scanned PREFETCH_DEPTH pops later, so
 * its cache miss overlaps the scanning of the others.  Objects still in the FIFO at
 * the end go back on the stack, in their order (in cache when popped again).
 * Returns the objects scanned. */
NO_SANITIZE static size_t scan_some(struct mark_state *ms, size_t max, uint64_t until_bytes)
{
    /* The bounds are read once a step: an arena mapped meanwhile holds only objects
     * allocated during this mark, black already.  Grey objects are aligned. */
    uintptr_t hlo = AO_load(&heap.lo), hhi = AO_load(&heap.hi);
    uintptr_t hspan = hhi > hlo ? hhi - hlo : 0;
    struct arena *const *arenas = heap.arenas;
    /* Two arrays, and the entries read a field at a time: an entry popped is often
     * one pushed a moment ago with two 8-byte stores, and a 16-byte load of it could
     * not be forwarded from them (it waited for the stores to reach the cache). */
    uintptr_t fifo_lo[PREFETCH_DEPTH], fifo_hi[PREFETCH_DEPTH];
    unsigned head = 0, n = 0;
    size_t done = 0;
    while (done < max && ms->bytes_scanned < until_bytes) {
        if (ms->top > 0 && n < PREFETCH_DEPTH) {
            const struct mark_range *r = &ms->stack[--ms->top];
            unsigned k = (head + n++) % PREFETCH_DEPTH;
            fifo_lo[k] = r->lo;
            fifo_hi[k] = r->hi;
            __builtin_prefetch((const void *)fifo_lo[k]);
            continue;
        }
        if (n == 0)
            break;
        uintptr_t lo = fifo_lo[head], hi = fifo_hi[head];
        head = (head + 1) % PREFETCH_DEPTH;
        n--;
        scan_words(ms, arenas, hlo, hspan, lo, hi);
        done++;
    }
    while (n > 0) {   /* newest first, so the oldest is on top again */
        n--;
        unsigned k = (head + n) % PREFETCH_DEPTH;
        push(ms, fifo_lo[k], fifo_hi[k]);
    }
    return done;
}

static void drain_stack(struct mark_state *ms)
{
    scan_some(ms, SIZE_MAX, UINT64_MAX);
}

void mark_drain(struct mark_state *ms)
{
    for (;;) {
        if (mark_atomic && mark_workers_max() > 1) {
            /* Waking the other markers costs tens of microseconds (more on a busy
             * machine): a little grey work, as at most mark terminations, is done
             * here, and only what is left after 1024 objects is shared. */
            for (size_t done = 0; ms->top > 0 && done < 1024;)
                done += mark_step(ms);
            if (ms->top > 0)
                mark_parallel(ms, MARK_STW, NULL);
        } else {
            drain_stack(ms);
        }
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

/* ---- marking beside the mutators --------------------------------------------------- */

bool mark_is_atomic(void)
{
    return mark_atomic;
}

/* Take up to want bytes of background credit; returns what was taken. */
uint64_t mark_take_credit(uint64_t want)
{
    for (;;) {
        AO_t have = AO_load(&mark_bg_credit);
        AO_t take = have < want ? have : want;
        if (take == 0 || AO_compare_and_swap_full(&mark_bg_credit, have, have - take))
            return take;
    }
}

void mark_set_atomic(bool on)
{
    AO_store(&mark_bg_scanned, 0);
    AO_store(&mark_bg_credit, 0);
    AO_store(&assists_hungry, 0);
    mark_atomic = on;
    if (!shared.max_cap)
        mark_init(&shared, (size_t)16 << 20);
}

/* Shade one value that may point into the heap (a barrier's old or new value). */
NO_SANITIZE void mark_shade_value(struct mark_state *ms, uintptr_t w)
{
    uintptr_t hlo = AO_load(&heap.lo), hhi = AO_load(&heap.hi);
    if (w >= hlo && w < hhi)
        shade(ms, heap.arenas, w);
}

/* A mutator's barrier buffer: shade each value into the shared grey list. */
void mark_shade_shared(const uintptr_t *v, size_t n)
{
    pthread_mutex_lock(&grey_lock);
    for (size_t i = 0; i < n; i++)
        mark_shade_value(&shared, v[i]);
    pthread_mutex_unlock(&grey_lock);
}

/* Move up to max entries from src to dst (both stacks). */
static size_t move_work(struct mark_state *dst, struct mark_state *src, size_t max)
{
    size_t n = 0;
    while (src->top > 0 && n < max) {
        struct mark_range r = src->stack[--src->top];
        push(dst, r.lo, r.hi);
        n++;
    }
    return n;
}

/* Take work from the shared list into ms; false if there was none. */
bool mark_take_shared(struct mark_state *ms, size_t max)
{
    pthread_mutex_lock(&grey_lock);
    size_t n = move_work(ms, &shared, max);
    bool overflowed = shared.overflowed;
    shared.overflowed = false;
    pthread_mutex_unlock(&grey_lock);
    if (overflowed)
        ms->overflowed = true;   /* rescanned at mark termination */
    return n > 0;
}

/* One step of a marker: scan up to MARK_STEP_OBJECTS grey objects.  Returns how
 * many were scanned (0: ms is empty). */
size_t mark_step(struct mark_state *ms)
{
    return scan_some(ms, MARK_STEP_OBJECTS, UINT64_MAX);
}

/* Move the n oldest entries of src (the bottom of its stack: the objects nearest the
 * roots, the biggest pieces of work) to dst's array, which has room for them. */
void mark_move_oldest(struct mark_range *dst, struct mark_state *src, size_t n)
{
    if (n > src->top)
        n = src->top;
    memcpy(dst, src->stack, n * sizeof *dst);
    memmove(src->stack, src->stack + n, (src->top - n) * sizeof *dst);
    src->top -= n;
}

/* Push n entries onto ms (an overflow is recorded as for any push). */
void mark_push_all(struct mark_state *ms, const struct mark_range *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        push(ms, v[i].lo, v[i].hi);
}

/* Concurrent marking: offer half of ms to assisting mutators when the shared list has
 * run dry. */
NO_SANITIZE static bool shared_nonempty(void)
{
    /* A hint, read without grey_lock (its writers hold it): a stale answer costs a
     * marker one more look under the lock. */
    return *(volatile size_t *)&shared.top != 0;
}

void mark_offer_shared(struct mark_state *ms)
{
    if (ms->top > 64 && AO_load(&assists_hungry) && !shared_nonempty()) {
        AO_store(&assists_hungry, 0);
        pthread_mutex_lock(&grey_lock);
        move_work(&shared, ms, ms->top - ms->top / 2);
        pthread_mutex_unlock(&grey_lock);
    }
}

/* Give all of ms to the shared list (a marker about to pause hands its work to the
 * assists). */
void mark_give_shared(struct mark_state *ms)
{
    pthread_mutex_lock(&grey_lock);
    move_work(&shared, ms, ms->top);
    if (ms->overflowed)
        shared.overflowed = true;
    ms->overflowed = false;
    pthread_mutex_unlock(&grey_lock);
}

/* Grey work outside the markers' stacks: on the shared list, or held by an assist that
 * will hand back what it does not finish. */
bool mark_shared_pending(void)
{
    return shared_nonempty() || AO_load_acquire(&assists_active) != 0;
}

/* An assist: a mutator scans up to budget bytes of shared grey work.  Returns the
 * bytes scanned (0 when there was no work).  The caller is in a critical section. */
uint64_t mark_assist(struct mark_state *ms, uint64_t budget)
{
    if (!ms->max_cap)
        mark_init(ms, (size_t)1 << 20);
    atomic_add(&assists_active, 1);
    uint64_t start = ms->bytes_scanned;
    while (ms->bytes_scanned - start < budget) {
        if (ms->top == 0 && !mark_take_shared(ms, 64)) {
            AO_store(&assists_hungry, 1);   /* the markers will offer some */
            break;
        }
        scan_some(ms, SIZE_MAX, start + budget);
    }
    if (ms->top > 0 || ms->overflowed)   /* hand back what is left */
        mark_give_shared(ms);
    atomic_add(&assists_active, (AO_t)-1);
    return ms->bytes_scanned - start;
}

/* Mark termination, world stopped: take everything shared, then drain for good
 * (with the overflow rescan). */
void mark_finish(struct mark_state *ms)
{
    while (mark_take_shared(ms, SIZE_MAX))
        ;
    mark_drain(ms);
}

/* ---- gccheckmark ------------------------------------------------------------------------ */

static void clear_check_bits(struct span *s, void *arg)
{
    (void)arg;
    for (int w = 0; w < BITMAP_WORDS; w++)
        AO_store(&s->check_bits[w], 0);
}

/* Report w if it points to an allocated object the mark missed (once per object). */
static void check_word(struct mark_state *ms, uintptr_t w, uintptr_t from, bool from_heap)
{
    struct span *t;
    uintptr_t obj = heap_find_object(w, &t);
    if (!obj)
        return;
    uint32_t i = span_index(t, obj);
    AO_t bit = (AO_t)1 << (i & 63);
    if (AO_load(&t->mark_bits[i >> 6]) & bit || AO_load(&t->check_bits[i >> 6]) & bit)
        return;
    AO_store(&t->check_bits[i >> 6], AO_load(&t->check_bits[i >> 6]) | bit);
    if (ms->check_errors++ < 20) {
        size_t size = span_object_size(t);
        if (from_heap)
            gc_warn_("gccheckmark: %p (%zu B) reachable from %p was not marked: a pointer "
                     "store without GC_WRITE?", (void *)obj, size, (void *)from);
        else
            gc_warn_("gccheckmark: %p (%zu B) reachable from the global at %p was not "
                     "marked: a pointer store without GC_WRITE?", (void *)obj, size,
                     (void *)from);
    }
}

NO_SANITIZE static void check_span(struct span *s, void *arg)
{
    struct mark_state *ms = arg;
    if (s->noscan)
        return;
    size_t size = span_object_size(s);
    for (uint32_t i = 0; i < s->nelems; i++) {
        AO_t bit = (AO_t)1 << (i & 63);
        if (!(AO_load(&s->mark_bits[i >> 6]) & bit & AO_load(&s->alloc_bits[i >> 6])))
            continue;
        uintptr_t base = s->base + (uintptr_t)i * s->size;
        for (uintptr_t p = base; p + sizeof(uintptr_t) <= base + size; p += sizeof(uintptr_t))
            check_word(ms, *(const uintptr_t *)p, base, true);
    }
}

NO_SANITIZE static void check_range(struct mark_state *ms, uintptr_t lo, uintptr_t hi)
{
    for (uintptr_t p = (lo + 7) & ~(uintptr_t)7; p + sizeof(uintptr_t) <= hi; p += sizeof(uintptr_t))
        check_word(ms, *(const uintptr_t *)p, p, false);
}

/* With the world stopped at mark termination, after the caches were flushed: every
 * object that a marked object or a global points to must be marked.  Everything
 * reachable was either reachable when marking began (and the snapshot barrier kept
 * it) or allocated since (black), so an unmarked target means a pointer store that
 * bypassed the barrier.  Thread stacks are left out: conservatively scanned, their
 * dead slots hold stale words that point at garbage.  Returns the objects missed. */
uint64_t mark_check(struct mark_state *ms)
{
    heap_for_each_span(clear_check_bits, NULL);
    ms->check_errors = 0;
    heap_for_each_span(check_span, ms);
    roots_for_each_global(ms, check_range);
    if (ms->check_errors > 20)
        gc_warn_("gccheckmark: ... and %llu more", (unsigned long long)(ms->check_errors - 20));
    return ms->check_errors;
}

/* fork() in the middle of a concurrent mark: the child has no collector thread to
 * finish it.  Forget the mark (grey work and every mark bit); the child's next cycle
 * starts afresh.  Only one thread exists. */
static void clear_mark_bits(struct span *s, void *arg)
{
    (void)arg;
    for (int w = 0; w < BITMAP_WORDS; w++)
        AO_store(&s->mark_bits[w], 0);
}

/* fork() child: grey_lock may have been held by a thread that did not come along (the
 * collector thread is stopped anywhere in its mark, a helper is not stopped at all). */
void mark_fork_child(void)
{
    pthread_mutex_init(&grey_lock, NULL);
}

void mark_abandon(struct mark_state *ms)
{
    heap_for_each_span(clear_mark_bits, NULL);
    ms->top = 0;
    ms->overflowed = false;
    shared.top = 0;
    shared.overflowed = false;
    AO_store(&assists_active, 0);
    mark_atomic = 0;
}
