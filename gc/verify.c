/* verify.c - the heap verifier, run with the world stopped in debug builds.
 *
 * After marking it checks the tri-color invariant (no marked object points to an
 * allocated, unmarked one); after sweeping it checks the heap's bookkeeping: every page
 * is in exactly one span, the address map agrees with the spans, free runs are in the
 * right bins, mark bits are clear and only allocated slots have allocation bits, and
 * the allocation bitmaps agree with the counters that memstats reports.  Any failure is
 * fatal with a message naming the object or span.  Release builds do not call it.
 */
#include "internal.h"

static inline bool bit(const atomic_word *bits, uint32_t i)
{
    return AO_load(&bits[i >> 6]) & ((AO_t)1 << (i & 63));
}

NO_SANITIZE static void check_black(struct span *s, void *arg)
{
    (void)arg;
    if (s->noscan)
        return;
    for (uint32_t i = 0; i < s->nelems; i++) {
        if (!bit(s->mark_bits, i))
            continue;
        uintptr_t base = s->base + (uintptr_t)i * s->size;
        for (uintptr_t p = base; p + sizeof(uintptr_t) <= base + span_object_size(s);
             p += sizeof(uintptr_t)) {
            struct span *t;
            uintptr_t w = *(const uintptr_t *)p;
            uintptr_t obj = heap_find_object(w, &t);
            if (obj && !bit(t->mark_bits, span_index(t, obj)))
                gc_fatal_("verify: black object %p (%zu B) points to white object %p",
                          (void *)base, span_object_size(s), (void *)obj);
        }
    }
}

void verify_no_black_to_white(void)
{
    heap_for_each_span(check_black, NULL);
}

struct totals {
    uint64_t objects, bytes, pages, small_spans;
};

static void check_span(struct span *s, void *arg)
{
    struct totals *t = arg;
    t->pages += s->npages;
    for (uint32_t p = 0; p < s->npages; p++)
        if (heap_span_of(s->base + p * PAGE_SIZE) != s)
            gc_fatal_("verify: page %u of span %p does not map to it", p, (void *)s->base);
    if (span_state(s) == SPAN_SMALL) {
        const struct size_class *k = &sc_table[s->cls];
        if (s->cls < 1 || s->cls > NUM_CLASSES || s->size != k->size ||
            s->nelems != k->nelems || s->npages != k->npages)
            gc_fatal_("verify: span %p has a bad class %u", (void *)s->base, s->cls);
    }
    for (uint32_t i = 0; i < BITMAP_WORDS * 64; i++) {
        if (bit(s->mark_bits, i))
            gc_fatal_("verify: span %p slot %u still marked after sweep", (void *)s->base, i);
        if (bit(s->alloc_bits, i)) {
            if (i >= s->nelems)
                gc_fatal_("verify: span %p slot %u allocated past its end", (void *)s->base, i);
            t->objects++;
            t->bytes += span_object_size(s);
        }
    }
    if (s->cached)
        gc_fatal_("verify: span %p still cached after the flush", (void *)s->base);
    if (span_state(s) == SPAN_SMALL)
        t->small_spans++;
}

void verify_heap(void)
{
    struct totals t = {0, 0, 0, 0};
    /* The world is stopped, but not the scavenger, which splits and moves free runs
     * under the heap lock: the page heap is read under it too. */
    heap_lock();
    heap_for_each_span(check_span, &t);

    uint64_t free_pages = 0;
    for (unsigned b = 0; b < 128; b++) {
        bool nonempty = heap.bin_mask[b >> 6] & ((uint64_t)1 << (b & 63));
        if (nonempty != (heap.bins[b] != NULL))
            gc_fatal_("verify: bin %u and its mask bit disagree", b);
        for (struct span *s = heap.bins[b]; s; s = s->next) {
            if (span_state(s) != SPAN_FREE || (b ? s->npages != b : s->npages < 128))
                gc_fatal_("verify: free run %p (%u pages) in bin %u", (void *)s->base,
                          s->npages, b);
            if (heap_span_of(s->base) != s ||
                heap_span_of(s->base + (s->npages - 1) * PAGE_SIZE) != s)
                gc_fatal_("verify: free run %p is not mapped at its ends", (void *)s->base);
            free_pages += s->npages;
        }
    }
    if (t.pages != heap.pages_inuse || t.pages + free_pages != heap.pages_mapped)
        gc_fatal_("verify: pages in use %llu (counted %llu), free %llu, mapped %llu",
                  (unsigned long long)heap.pages_inuse, (unsigned long long)t.pages,
                  (unsigned long long)free_pages, (unsigned long long)heap.pages_mapped);
    heap_unlock();

    /* Every small span is cached or on its class's partial or full list, swept. */
    uint64_t listed = 0;
    for (int k = 0; k < NUM_KINDS; k++)
        for (int c = 1; c <= NUM_CLASSES; c++) {
            struct central *cl = &alloc_central[k][c];
            if (cl->unswept[0] || cl->unswept[1])
                gc_fatal_("verify: class %d kind %d still has unswept spans", c, k);
            for (int l = LIST_PARTIAL; l <= LIST_FULL; l++)
                for (struct span *s = l == LIST_PARTIAL ? cl->partial : cl->full; s; s = s->next) {
                    if (s->list != l || span_state(s) != SPAN_SMALL || s->cls != c || s->kind != k)
                        gc_fatal_("verify: span %p on the wrong central list", (void *)s->base);
                    listed++;
                }
        }
    if (listed != t.small_spans)
        gc_fatal_("verify: %llu small spans, %llu on central lists",
                  (unsigned long long)t.small_spans, (unsigned long long)listed);

    struct stats_sum sum;
    stats_sum(&sum);
    if (sum.mallocs - sum.frees != t.objects || sum.alloc_bytes - sum.freed_bytes != t.bytes)
        gc_fatal_("verify: counters say %llu objects / %llu bytes, bitmaps %llu / %llu",
                  (unsigned long long)(sum.mallocs - sum.frees),
                  (unsigned long long)(sum.alloc_bytes - sum.freed_bytes),
                  (unsigned long long)t.objects, (unsigned long long)t.bytes);
}
