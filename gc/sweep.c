/* sweep.c - turning mark bits into allocation bits.
 *
 * After mark termination an object is live exactly when its mark bit is set, so a
 * span's new allocation bitmap is its mark bitmap, and the objects that were allocated
 * but not marked are freed.  No free memory is touched: freed slots simply become
 * zero bits (they are zeroed when handed out again).  A span with no live object goes
 * back to the page heap; one with some free slots goes on its class's central list.
 *
 * Stop-the-world cycles sweep every span inside the second pause (sweep_all).
 * Concurrent cycles only open a new sweep generation in the pause (sweep_begin); the
 * collector thread then sweeps while the program runs (sweep_background), before it
 * takes the next cycle.  A span is unswept while its sweepgen is two behind
 * sweep_gen; the sweeper claims it with a compare-and-swap; new spans are born swept.
 * Unswept spans sit on no list and in no cache, so no thread allocates from them;
 * gc_free may still clear an allocation bit in one, so the sweeper updates each
 * bitmap word with a compare-and-swap too.
 */
#include "internal.h"

atomic_word sweep_nfree[NUM_CLASSES + 1];
atomic_word sweep_large_free_bytes;
atomic_word sweep_gen = 2;
volatile int sweep_active;

/* Sweep s if it is unswept; with concurrent set, claim it first. */
static void sweep_span(struct span *s, struct sweep_result *r, bool concurrent)
{
    AO_t gen = AO_load(&sweep_gen);
    if (concurrent && !AO_compare_and_swap_full(&s->sweepgen, gen - 2, gen - 1))
        return;   /* born in this generation, or already swept */
    GC_ASSERT(!s->cached && !s->in_partial);
    if (s->state == SPAN_LARGE) {
        size_t bytes = (size_t)s->npages * PAGE_SIZE;
        AO_t alloc = AO_load(&s->alloc_bits[0]) & 1, mark = AO_load(&s->mark_bits[0]) & 1;
        AO_store(&s->mark_bits[0], 0);
        if (alloc && mark) {
            r->live_bytes += bytes;
            AO_store_release(&s->sweepgen, gen);
            return;
        }
        if (alloc) {   /* not freed by gc_free during the mark (which counted it) */
            counter_add(&sweep_nfree[0], 1);
            counter_add(&sweep_large_free_bytes, bytes);
            atomic_add(&alloc_heap_live, -(AO_t)bytes);
            r->objects_freed++;
            r->bytes_freed += bytes;
        }
        r->spans_freed++;
        heap_free_span(s);
        return;
    }
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
        counter_add(&sweep_nfree[s->cls], freed);
        atomic_add(&alloc_heap_live, -(AO_t)((uint64_t)freed * s->size));
        r->objects_freed += freed;
        r->bytes_freed += (uint64_t)freed * s->size;
    }
    r->live_bytes += (uint64_t)live * s->size;
    AO_store_release(&s->sweepgen, gen);
    if (live == 0) {
        r->spans_freed++;
        heap_free_span(s);
    } else if (live < s->nelems) {
        alloc_release_span(s);
    }
}

static void sweep_stw(struct span *s, void *arg)
{
    sweep_span(s, arg, false);
}

static void sweep_concurrent(struct span *s, void *arg)
{
    sweep_span(s, arg, true);
}

/* Empty the central lists: they are rebuilt as spans are swept. */
static void clear_partial_lists(void)
{
    for (int k = 0; k < NUM_KINDS; k++)
        for (int c = 1; c <= NUM_CLASSES; c++) {
            struct central *cl = &alloc_central[k][c];
            for (struct span *s = cl->partial; s;) {
                struct span *n = s->next;
                s->in_partial = 0;
                s->next = s->prev = NULL;
                s = n;
            }
            cl->partial = NULL;
        }
}

void sweep_all(struct sweep_result *r)
{
    clear_partial_lists();
    heap_for_each_span(sweep_stw, r);
}

void sweep_begin(void)
{
    clear_partial_lists();
    AO_store(&sweep_gen, AO_load(&sweep_gen) + 2);
    sweep_active = 1;
}

void sweep_background(struct sweep_result *r)
{
    heap_for_each_span(sweep_concurrent, r);
    sweep_active = 0;
}
