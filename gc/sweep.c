/* sweep.c - turning mark bits into allocation bits.
 *
 * After mark termination an object is live exactly when its mark bit is set, so a
 * span's new allocation bitmap is its mark bitmap, and the objects that were allocated
 * but not marked are freed.  No free memory is touched: freed slots simply become
 * zero bits (they are zeroed when handed out again).  A span with no live object goes
 * back to the page heap; one with some free slots goes on its class's central list.
 * Sweeping runs with the world stopped, right after marking; per-span sweeping is the
 * unit a lazy, concurrent sweeper will call.
 */
#include "internal.h"

atomic_word sweep_nfree[NUM_CLASSES + 1];
atomic_word sweep_large_free_bytes;

static void sweep_span(struct span *s, void *arg)
{
    struct sweep_result *r = arg;
    GC_ASSERT(!s->cached && !s->in_partial);
    if (s->state == SPAN_LARGE) {
        size_t bytes = (size_t)s->npages * PAGE_SIZE;
        AO_t alloc = AO_load(&s->alloc_bits[0]) & 1, mark = AO_load(&s->mark_bits[0]) & 1;
        AO_store(&s->mark_bits[0], 0);
        if (alloc && mark) {
            r->live_bytes += bytes;
            return;
        }
        if (alloc) {   /* not freed by gc_free during the mark (which counted it) */
            counter_add(&sweep_nfree[0], 1);
            counter_add(&sweep_large_free_bytes, bytes);
            r->objects_freed++;
            r->bytes_freed += bytes;
        }
        r->spans_freed++;
        heap_free_span(s);
        return;
    }
    uint32_t live = 0, freed = 0;
    for (uint32_t w = 0; w < (s->nelems + 63) / 64; w++) {
        /* A slot freed by gc_free during a concurrent mark may still be marked:
         * only allocated and marked slots survive. */
        AO_t alloc = AO_load(&s->alloc_bits[w]), mark = AO_load(&s->mark_bits[w]) & alloc;
        freed += (uint32_t)__builtin_popcountll(alloc & ~mark);
        if (s->tiny_bounds)   /* a freed block's tiny objects are gone */
            for (AO_t f = alloc & ~mark; f; f &= f - 1)
                AO_store(&s->tiny_bounds[w * 64 + (unsigned)__builtin_ctzll(f)], 0);
        live += (uint32_t)__builtin_popcountll(mark);
        AO_store(&s->alloc_bits[w], mark);
        AO_store(&s->mark_bits[w], 0);
    }
    if (freed) {
        s->needzero = 1;
        counter_add(&sweep_nfree[s->cls], freed);
        r->objects_freed += freed;
        r->bytes_freed += (uint64_t)freed * s->size;
    }
    r->live_bytes += (uint64_t)live * s->size;
    if (live == 0) {
        r->spans_freed++;
        heap_free_span(s);
    } else if (live < s->nelems) {
        alloc_release_span(s);
    }
}

void sweep_all(struct sweep_result *r)
{
    for (int k = 0; k < NUM_KINDS; k++)
        for (int c = 1; c <= NUM_CLASSES; c++) {
            /* Rebuilt from scratch below. */
            struct central *cl = &alloc_central[k][c];
            for (struct span *s = cl->partial; s;) {
                struct span *n = s->next;
                s->in_partial = 0;
                s->next = s->prev = NULL;
                s = n;
            }
            cl->partial = NULL;
        }
    heap_for_each_span(sweep_span, r);
}
