/* sweep.c - turning mark bits into allocation bits.
 *
 * After mark termination an object is live exactly when its mark bit is set, so a
 * span's new allocation bitmap is its mark bitmap, and the objects that were allocated
 * but not marked are freed.  No free memory is touched: freed slots simply become
 * zero bits (they are zeroed when handed out again).  A span with no live object goes
 * back to the page heap; the others go on their class's central lists.
 *
 * Sweeping is lazy.  The mark-termination pause only opens a new sweep generation
 * (sweep_begin): sweep_gen moves on by two, so every span whose sweepgen is now two
 * behind is unswept, and each class's central lists of swept spans (partial and full)
 * become its unswept lists in O(1), with no walk over the heap.  Then, while the
 * program runs:
 *   - an allocating thread that needs a span of a class sweeps that class's unswept
 *     spans first, and takes the first one with a free slot (sweep_for_class);
 *   - the thread that ran the cycle (the collector thread, or in stop-the-world mode
 *     the thread that collected) sweeps whatever is left, class by class, then the
 *     large spans, right after the world resumes (sweep_finish);
 *   - so the next cycle never begins before every span is swept: its marking reuses
 *     the mark bits.
 * A sweeper claims a span by taking it off its unswept list under the class lock and
 * setting sweepgen one behind ("being swept"); large spans, on no list, are claimed
 * with a compare-and-swap on sweepgen.  gc_free may still clear allocation bits of a
 * span being swept, so each bitmap word is updated with a compare-and-swap.  New spans
 * are born swept.  GCDEBUG=gcstoptheworld=2 sweeps everything inside the pause.
 *
 * Sweeping by several threads at once adds up in global counters, so memstats stay
 * exact at every moment: an object is counted freed when its bit is cleared.
 */
#include "internal.h"

#include <sched.h>

atomic_word sweep_nfree[NUM_CLASSES + 1];
atomic_word sweep_large_free_bytes;
atomic_word sweep_gen = 2;
int sweep_active;   /* stored with release, read with sweep_is_active() */
static atomic_word live_bytes;    /* this sweep generation: bytes found live */
static atomic_word inflight;      /* spans claimed and being swept right now */

/* Sweep the bits of small span s, claimed by the caller.  Returns its live objects. */
static uint32_t sweep_small_bits(struct span *s)
{
    uint32_t live = 0, freed = 0;
    for (uint32_t w = 0; w < (s->nelems + 63) / 64; w++) {
        AO_t mark = AO_load(&s->mark_bits[w]), alloc;
        /* Only allocated and marked slots survive (a slot freed by gc_free during a
         * concurrent mark may still be marked).  gc_free may clear bits meanwhile. */
        for (;;) {
            alloc = AO_load(&s->alloc_bits[w]);
            if (AO_compare_and_swap_full(&s->alloc_bits[w], alloc, alloc & mark))
                break;
        }
        AO_t dead = alloc & ~mark;
        freed += (uint32_t)__builtin_popcountll(dead);
        live += (uint32_t)__builtin_popcountll(alloc & mark);
        if (s->tiny_bounds)   /* a freed block's tiny objects are gone */
            for (AO_t f = dead; f; f &= f - 1)
                AO_store(&s->tiny_bounds[w * 64 + (unsigned)__builtin_ctzll(f)], 0);
        AO_store(&s->mark_bits[w], 0);
    }
    if (freed) {
        s->needzero = 1;
        atomic_add(&sweep_nfree[s->cls], freed);   /* several sweepers */
        atomic_add(&alloc_heap_live, -(AO_t)((uint64_t)freed * s->size));
    }
    atomic_add(&live_bytes, (uint64_t)live * s->size);
    return live;
}

/* Sweep one unswept span of (kind, cls) and file it.  With want set, a span that ends
 * up with free slots is returned to the caller, cached, instead of filed.  Returns
 * NULL when the span was filed or freed; *none is set when no unswept span was left. */
static struct span *sweep_one_locked(unsigned kind, unsigned cls, bool want, bool *none);

/* Collector locks are only taken inside a critical section (critical_enter_self). */
static struct span *sweep_one(unsigned kind, unsigned cls, bool want, bool *none)
{
    struct mutator *m = critical_enter_self();
    struct span *s = sweep_one_locked(kind, cls, want, none);
    critical_leave_self(m);
    return s;
}

static struct span *sweep_one_locked(unsigned kind, unsigned cls, bool want, bool *none)
{
    struct central *c = &alloc_central[kind][cls];
    AO_t gen = AO_load(&sweep_gen);
    pthread_mutex_lock(&c->lock);
    struct span *s = alloc_unswept_pop(c);
    if (s) {
        AO_store(&s->sweepgen, gen - 1);
        atomic_add(&inflight, 1);
    }
    pthread_mutex_unlock(&c->lock);
    *none = !s;
    if (!s)
        return NULL;
    uint32_t live = sweep_small_bits(s);
    struct span *mine = NULL;
    if (live == 0) {
        AO_store_release(&s->sweepgen, gen);
        heap_free_span(s);
    } else {
        pthread_mutex_lock(&c->lock);
        AO_store_release(&s->sweepgen, gen);
        if (want && live < s->nelems) {
            s->cached = 1;
            mine = s;
        } else {
            alloc_file_span(c, s);
        }
        pthread_mutex_unlock(&c->lock);
    }
    atomic_add(&inflight, (AO_t)-1);
    return mine;
}

/* An allocating thread out of swept spans of a class: sweep that class's unswept
 * spans until one has a free slot.  The span comes back cached by the caller.  The
 * caller is in a critical section, which delays any stop of the world: after
 * SWEEP_BUDGET full spans it takes a new span instead (the rest are swept by the
 * collector or the next allocations). */
#define SWEEP_BUDGET 32
struct span *sweep_for_class(unsigned kind, unsigned cls)
{
    if (!sweep_is_active())
        return NULL;
    for (int i = 0; i < SWEEP_BUDGET; i++) {
        bool none;
        struct span *s = sweep_one(kind, cls, true, &none);
        if (s || none)
            return s;
    }
    return NULL;
}

/* Sweep up to n unswept spans of any class (before the page heap grows, so pages
 * that sweeping would free are used first). */
void sweep_some(unsigned n)
{
    static atomic_word cursor;   /* kind * NUM_CLASSES + class - 1, shared loosely */
    if (!sweep_is_active())
        return;
    for (unsigned tries = 0; n > 0 && tries < NUM_KINDS * NUM_CLASSES; tries++) {
        AO_t i = AO_load(&cursor) % (NUM_KINDS * NUM_CLASSES);
        bool none;
        sweep_one((unsigned)(i / NUM_CLASSES), (unsigned)(i % NUM_CLASSES) + 1, false, &none);
        if (none)
            AO_store(&cursor, i + 1);
        else
            n--;
    }
}

/* A large span: claimed with a compare-and-swap, since it is on no list. */
static void sweep_large_locked(struct span *s);
static void sweep_large(struct span *s, void *arg)
{
    (void)arg;
    struct mutator *m = critical_enter_self();
    sweep_large_locked(s);
    critical_leave_self(m);
}

static void sweep_large_locked(struct span *s)
{
    AO_t gen = AO_load(&sweep_gen);
    if (span_state(s) != SPAN_LARGE ||
        !AO_compare_and_swap_full(&s->sweepgen, gen - 2, gen - 1))
        return;   /* born in this generation, already swept, or small */
    size_t bytes = (size_t)s->npages * PAGE_SIZE;
    /* Acquire: a gc_free that cleared the bit (deferred: see gc_free) read the span
     * before it, and the span may be freed below. */
    AO_t alloc = AO_load_acquire(&s->alloc_bits[0]) & 1, mark = AO_load(&s->mark_bits[0]) & 1;
    AO_store(&s->mark_bits[0], 0);
    if (alloc && mark) {
        atomic_add(&live_bytes, bytes);
        AO_store_release(&s->sweepgen, gen);
        return;
    }
    if (alloc) {   /* not freed by gc_free during the mark (which counted it) */
        atomic_add(&sweep_nfree[0], 1);
        atomic_add(&sweep_large_free_bytes, bytes);
        atomic_add(&alloc_heap_live, -(AO_t)bytes);
    }
    AO_store_release(&s->sweepgen, gen);
    heap_free_span(s);
}

/* Open a sweep generation (world stopped, caches flushed, the last sweep finished). */
void sweep_begin(void)
{
    GC_ASSERT(!sweep_is_active() && AO_load(&inflight) == 0);
    alloc_lists_to_unswept();
    AO_store(&live_bytes, 0);
    AO_store(&sweep_gen, AO_load(&sweep_gen) + 2);
    __atomic_store_n(&sweep_active, 1, __ATOMIC_RELEASE);
}

/* Sweep everything still unswept, beside any thread sweeping lazily, and wait for
 * those.  Returns the bytes found live in this generation. */
uint64_t sweep_finish(void)
{
    if (!sweep_is_active())
        return AO_load(&live_bytes);
    for (int k = 0; k < NUM_KINDS; k++)
        for (unsigned c = 1; c <= NUM_CLASSES; c++) {
            bool none = false;
            while (!none)
                sweep_one((unsigned)k, c, false, &none);
        }
    heap_for_each_span(sweep_large, NULL);
    while (AO_load_acquire(&inflight) != 0)
        sched_yield();   /* a lazy sweeper's span: a few microseconds */
    __atomic_store_n(&sweep_active, 0, __ATOMIC_RELEASE);
    return AO_load(&live_bytes);
}

/* The eager sweep (world stopped). */
uint64_t sweep_all(void)
{
    sweep_begin();
    return sweep_finish();
}
