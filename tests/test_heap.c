/* test_heap.c - unit tests for gc/heap.c: the page heap and the address -> span map.
 *
 * Spans are taken straight from heap_alloc_span and given back with heap_free_span,
 * with automatic collection off, so nothing but the test touches them (a collection
 * would sweep a raw span as a dead large object).  After every step that changes the
 * page heap, check_heap() walks the free-run bins and the span map and checks that
 * they agree with each other and with the counters.  Each test runs in its own
 * process (Check forks) on a fresh heap; the tests that need adjacent spans rely on a
 * fresh arena being cut front to back, and say so when it is not.
 */
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define PAGES(s) ((uintptr_t)(s)->npages * PAGE_SIZE)
#define END(s) ((s)->base + PAGES(s))

static void setup(void)
{
    gc_init();
    gc_disable();   /* no cycle may sweep the raw spans these tests hold */
}

/* ---- the whole-heap consistency check -------------------------------------------- */

struct walk { uint64_t spans, pages; };

/* The released bits of a run's pages, counted one page at a time. */
static uint32_t page_bits(const struct span *s)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->npages; i++) {
        uintptr_t p = s->base + (uintptr_t)i * PAGE_SIZE;
        struct arena *a = heap.arenas[p >> ARENA_SHIFT];
        size_t pg = (p >> PAGE_SHIFT) & (ARENA_PAGES - 1);
        n += (a->released[pg / 64] >> (pg % 64)) & 1;
    }
    return n;
}

static bool all_released(const struct span *s) { return s->nreleased == s->npages; }

static void count_inuse(struct span *s, void *arg)
{
    struct walk *w = arg;
    ck_assert_msg(s->state == SPAN_SMALL || s->state == SPAN_LARGE, "span %p state %u",
                  (void *)s->base, s->state);
    for (uint32_t i = 0; i < s->npages; i++)
        ck_assert_msg(heap_span_of(s->base + i * PAGE_SIZE) == s,
                      "page %u of in-use span %p does not map to it", i, (void *)s->base);
    ck_assert_msg(page_bits(s) == 0, "in-use span %p has released bits", (void *)s->base);
    w->spans++;
    w->pages += s->npages;
}

/* Free runs sit in the right bin, map their first and last pages, have no free
 * neighbour (coalescing is complete) unless one of the two is all released (the
 * scavenger's split), count their released pages exactly (the arena's bits), and add
 * up to the counters; in-use spans map every page, have no released bit set, and add
 * up to pages_inuse and spans_inuse. */
static void check_heap_at(int line)
{
    heap_lock();
    uint64_t free_pages = 0, released = 0, runs = 0;
    for (unsigned b = 0; b < 128; b++) {
        bool bit = (heap.bin_mask[b >> 6] >> (b & 63)) & 1;
        ck_assert_msg(bit == (heap.bins[b] != NULL), "line %d: bin %u mask bit %d", line, b,
                      bit);
        struct span *prev = NULL;
        for (struct span *s = heap.bins[b]; s; prev = s, s = s->next) {
            ck_assert_msg(++runs < 1000000, "line %d: bin %u does not end", line, b);
            ck_assert_msg(s->prev == prev, "line %d: bin %u: broken prev link", line, b);
            ck_assert_msg(s->state == SPAN_FREE, "line %d: span %p in bin %u has state %u",
                          line, (void *)s->base, b, s->state);
            ck_assert_msg(b == (s->npages < 128 ? s->npages : 0),
                          "line %d: run of %u pages in bin %u", line, s->npages, b);
            ck_assert_msg(s->base % PAGE_SIZE == 0, "line %d: unaligned run", line);
            ck_assert_msg(heap_span_of(s->base) == s, "line %d: first page of run %p", line,
                          (void *)s->base);
            ck_assert_msg(heap_span_of(END(s) - 1) == s, "line %d: last page of run %p", line,
                          (void *)s->base);
            /* Only the scavenger leaves free runs side by side: a head and the tail it
             * split off and released. */
            struct span *l = heap_span_of(s->base - 1), *r = heap_span_of(END(s));
            ck_assert_msg(!l || l->state != SPAN_FREE || all_released(l) || all_released(s),
                          "line %d: free runs %p+%u and %p+%u are adjacent, not merged", line,
                          (void *)l->base, l->npages, (void *)s->base, s->npages);
            ck_assert_msg(!r || r->state != SPAN_FREE || all_released(r) || all_released(s),
                          "line %d: free runs %p+%u and %p+%u are adjacent, not merged", line,
                          (void *)s->base, s->npages, (void *)r->base, r->npages);
            uint32_t bits = page_bits(s);
            ck_assert_msg(bits == s->nreleased, "line %d: run %p+%u counts %u released "
                          "pages, its bits %u", line, (void *)s->base, s->npages,
                          s->nreleased, bits);
            free_pages += s->npages;
            released += s->nreleased;
        }
    }
    struct walk w = {0, 0};
    heap_for_each_span(count_inuse, &w);
    ck_assert_msg(w.pages == heap.pages_inuse, "line %d: in-use spans hold %" PRIu64
                  " pages, pages_inuse says %" PRIu64, line, w.pages, heap.pages_inuse);
    ck_assert_msg(w.spans == heap.spans_inuse, "line %d: %" PRIu64 " in-use spans, "
                  "spans_inuse says %" PRIu64, line, w.spans, heap.spans_inuse);
    ck_assert_msg(free_pages + heap.pages_inuse == heap.pages_mapped,
                  "line %d: %" PRIu64 " free + %" PRIu64 " in use != %" PRIu64 " mapped", line,
                  free_pages, heap.pages_inuse, heap.pages_mapped);
    ck_assert_msg(released == heap.pages_released, "line %d: released runs hold %" PRIu64
                  " pages, pages_released says %" PRIu64, line, released, heap.pages_released);
    heap_unlock();
}
#define check_heap() check_heap_at(__LINE__)

static struct span *must_alloc(size_t npages)
{
    errno = 0;
    struct span *s = heap_alloc_span(npages);
    ck_assert_msg(s != NULL, "heap_alloc_span(%zu) failed: errno %d", npages, errno);
    ck_assert_uint_eq(s->npages, npages);
    ck_assert_uint_eq(s->base % PAGE_SIZE, 0);
    ck_assert_msg(s->state == SPAN_INIT, "a new span has state %u", s->state);
    span_publish(s, SPAN_LARGE);   /* as a caller does once it has filled the span in */
    return s;
}

/* Consecutive allocations on a fresh arena come out back to back. */
static void require_adjacent(struct span **v, size_t n)
{
    for (size_t i = 1; i < n; i++)
        ck_assert_msg(v[i]->base == END(v[i - 1]),
                      "precondition: spans %zu and %zu are not adjacent (%p+%u, %p): "
                      "a fresh arena should be cut front to back", i - 1, i,
                      (void *)v[i - 1]->base, v[i - 1]->npages, (void *)v[i]->base);
}

/* The free run starting at p, which must exist and be n pages long. */
static struct span *free_run_at(uintptr_t p, uint32_t n)
{
    struct span *s = heap_span_of(p);
    ck_assert_msg(s != NULL, "no span maps %p", (void *)p);
    ck_assert_msg(s->state == SPAN_FREE, "span at %p has state %u, not free", (void *)p,
                  s->state);
    ck_assert_msg(s->base == p, "free run at %p starts at %p", (void *)p, (void *)s->base);
    ck_assert_msg(s->npages == n, "free run at %p has %u pages, expected %u", (void *)p,
                  s->npages, n);
    ck_assert_ptr_eq(heap_span_of(p + (uintptr_t)n * PAGE_SIZE - 1), s);
    return s;
}

/* ---- allocation: disjoint, mapped, counted -------------------------------------------- */

static const size_t mixed_sizes[] = {1, 2, 3, 4, 7, 8, 15, 16, 31, 63, 64, 65, 127, 128,
                                     129, 200, 1000, 1, 5, 300};
#define NMIXED (sizeof mixed_sizes / sizeof mixed_sizes[0])

START_TEST(test_spans_disjoint_and_mapped)
{
    uint64_t inuse0 = heap.pages_inuse, spans0 = heap.spans_inuse, sum = 0;
    struct span *v[NMIXED];
    for (size_t i = 0; i < NMIXED; i++) {
        v[i] = must_alloc(mixed_sizes[i]);
        sum += mixed_sizes[i];
    }
    check_heap();
    ck_assert_uint_eq(heap.pages_inuse, inuse0 + sum);
    ck_assert_uint_eq(heap.spans_inuse, spans0 + NMIXED);

    for (size_t i = 0; i < NMIXED; i++) {
        ck_assert_uint_ge(v[i]->base, AO_load(&heap.lo));
        ck_assert_uint_le(END(v[i]), AO_load(&heap.hi));
        for (size_t j = i + 1; j < NMIXED; j++)
            ck_assert_msg(END(v[i]) <= v[j]->base || END(v[j]) <= v[i]->base,
                          "spans %zu [%p+%u) and %zu [%p+%u) overlap", i, (void *)v[i]->base,
                          v[i]->npages, j, (void *)v[j]->base, v[j]->npages);
        /* Every byte of every page maps to the span: sample each page's ends. */
        for (uintptr_t p = v[i]->base; p < END(v[i]); p += PAGE_SIZE) {
            ck_assert_ptr_eq(heap_span_of(p), v[i]);
            ck_assert_ptr_eq(heap_span_of(p + PAGE_SIZE - 1), v[i]);
        }
        ck_assert_ptr_ne(heap_span_of(v[i]->base - 1), v[i]);
        ck_assert_ptr_ne(heap_span_of(END(v[i])), v[i]);
        /* The memory is usable. */
        memset((void *)v[i]->base, 0x5a, PAGES(v[i]));
    }

    /* Free in a scrambled order; after each, the map holds no in-use entry for it. */
    for (size_t k = 0; k < NMIXED; k++) {
        size_t i = (k * 7 + 3) % NMIXED;   /* 7 is prime to 20: a permutation */
        uintptr_t base = v[i]->base, end = END(v[i]);
        heap_free_span(v[i]);
        for (uintptr_t p = base; p < end; p += PAGE_SIZE) {
            struct span *t = heap_span_of(p);
            ck_assert_msg(!t || t->state == SPAN_FREE,
                          "page %p of a freed span maps to a span in state %u", (void *)p,
                          t->state);
        }
        check_heap();
    }
    ck_assert_uint_eq(heap.pages_inuse, inuse0);
    ck_assert_uint_eq(heap.spans_inuse, spans0);
}
END_TEST

START_TEST(test_bad_sizes)
{
    uint64_t inuse0 = heap.pages_inuse;
    errno = 0;
    ck_assert_ptr_null(heap_alloc_span(0));
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(heap_alloc_span(SIZE_MAX));
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(heap_alloc_span((size_t)UINT32_MAX));
    ck_assert_int_eq(errno, ENOMEM);
    ck_assert_uint_eq(heap.pages_inuse, inuse0);
    check_heap();
}
END_TEST

/* ---- coalescing ------------------------------------------------------------------------ */

/* Guard G, then A(3) B(5) C(7), then guard D: free A, B and C in order _i (all six
 * permutations); every intermediate state is fully merged, and the end is one run of
 * 15 pages at A's base, which a 15-page request gets back. */
static const int orders[6][3] = {{0, 2, 1}, {0, 1, 2}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1},
                                 {2, 1, 0}};

START_TEST(test_coalesce)
{
    uint64_t inuse0 = heap.pages_inuse;
    const uint32_t np[3] = {3, 5, 7};
    struct span *v[5];
    v[0] = must_alloc(1);
    for (int i = 0; i < 3; i++)
        v[i + 1] = must_alloc(np[i]);
    v[4] = must_alloc(2);
    require_adjacent(v, 5);
    uintptr_t base[3] = {v[1]->base, v[2]->base, v[3]->base};
    bool freed[3] = {false, false, false};
    check_heap();

    for (int k = 0; k < 3; k++) {
        int i = orders[_i][k];
        heap_free_span(v[i + 1]);
        freed[i] = true;
        check_heap();
        /* The run holding i spans exactly its freed neighbours. */
        int lo = i, hi = i;
        while (lo > 0 && freed[lo - 1])
            lo--;
        while (hi < 2 && freed[hi + 1])
            hi++;
        uint32_t n = 0;
        for (int j = lo; j <= hi; j++)
            n += np[j];
        free_run_at(base[lo], n);
        /* Interior page boundaries of a merged run map to nothing (only its ends do). */
        for (int j = lo + 1; j <= hi; j++)
            ck_assert_ptr_null(heap_span_of(base[j]));
    }
    ck_assert_uint_eq(heap.pages_inuse, inuse0 + 3);

    struct span *all = must_alloc(15);
    ck_assert_msg(all->base == base[0], "15 pages came from %p, not the merged run at %p",
                  (void *)all->base, (void *)base[0]);
    check_heap();
    heap_free_span(all);
    heap_free_span(v[0]);
    heap_free_span(v[4]);
    check_heap();
    ck_assert_uint_eq(heap.pages_inuse, inuse0);
}
END_TEST

/* Two neighbours of one freed span that were freed earlier merge into it from both
 * sides, and the merged run is then split again from its front. */
START_TEST(test_split_after_merge)
{
    struct span *v[5];
    v[0] = must_alloc(1);
    v[1] = must_alloc(4);
    v[2] = must_alloc(4);
    v[3] = must_alloc(4);
    v[4] = must_alloc(1);
    require_adjacent(v, 5);
    uintptr_t a = v[1]->base;
    heap_free_span(v[1]);
    heap_free_span(v[3]);
    heap_free_span(v[2]);
    free_run_at(a, 12);
    struct span *x = must_alloc(5);
    ck_assert_uint_eq(x->base, a);
    free_run_at(a + 5 * PAGE_SIZE, 7);
    check_heap();
    struct span *y = must_alloc(7);
    ck_assert_uint_eq(y->base, a + 5 * PAGE_SIZE);
    check_heap();
    heap_free_span(x);
    heap_free_span(y);
    free_run_at(a, 12);
    heap_free_span(v[0]);
    heap_free_span(v[4]);
    check_heap();
}
END_TEST

/* ---- best fit ----------------------------------------------------------------------------- */

/* Free runs of 10, 4 and 6 pages between guards: each request gets the smallest run
 * that holds it, the rest of that run stays free. */
START_TEST(test_best_fit_small)
{
    struct span *v[7];
    const uint32_t np[7] = {1, 10, 1, 4, 1, 6, 1};
    for (int i = 0; i < 7; i++)
        v[i] = must_alloc(np[i]);
    require_adjacent(v, 7);
    uintptr_t r10 = v[1]->base, r4 = v[3]->base, r6 = v[5]->base;
    heap_free_span(v[1]);
    heap_free_span(v[3]);
    heap_free_span(v[5]);
    check_heap();

    struct span *a = must_alloc(4);
    ck_assert_msg(a->base == r4, "4 pages from %p, expected the 4-page run %p",
                  (void *)a->base, (void *)r4);
    struct span *b = must_alloc(5);
    ck_assert_msg(b->base == r6, "5 pages from %p, expected the 6-page run %p",
                  (void *)b->base, (void *)r6);
    free_run_at(r6 + 5 * PAGE_SIZE, 1);
    struct span *c = must_alloc(1);
    ck_assert_msg(c->base == r6 + 5 * PAGE_SIZE, "1 page from %p, expected the leftover %p",
                  (void *)c->base, (void *)(r6 + 5 * PAGE_SIZE));
    struct span *d = must_alloc(7);
    ck_assert_msg(d->base == r10, "7 pages from %p, expected the 10-page run %p",
                  (void *)d->base, (void *)r10);
    free_run_at(r10 + 7 * PAGE_SIZE, 3);
    check_heap();

    heap_free_span(a);
    heap_free_span(b);
    heap_free_span(c);
    heap_free_span(d);
    for (int i = 0; i < 7; i += 2)
        heap_free_span(v[i]);
    check_heap();
}
END_TEST

/* Runs of 128 pages and more share one list; it is searched for the smallest fit too. */
START_TEST(test_best_fit_big)
{
    struct span *v[5];
    const uint32_t np[5] = {1, 300, 1, 200, 1};
    for (int i = 0; i < 5; i++)
        v[i] = must_alloc(np[i]);
    require_adjacent(v, 5);
    uintptr_t r300 = v[1]->base, r200 = v[3]->base;
    heap_free_span(v[1]);
    heap_free_span(v[3]);
    check_heap();

    struct span *a = must_alloc(150);
    ck_assert_msg(a->base == r200, "150 pages from %p, expected the 200-page run %p",
                  (void *)a->base, (void *)r200);
    struct span *b = must_alloc(250);
    ck_assert_msg(b->base == r300, "250 pages from %p, expected the 300-page run %p",
                  (void *)b->base, (void *)r300);
    /* Leftovers of 50 pages each: below 128, into exact bins. */
    free_run_at(r200 + 150 * PAGE_SIZE, 50);
    free_run_at(r300 + 250 * PAGE_SIZE, 50);
    check_heap();
    heap_free_span(a);
    heap_free_span(b);
    for (int i = 0; i < 5; i += 2)
        heap_free_span(v[i]);
    check_heap();
}
END_TEST

/* ---- huge spans: several arenas ------------------------------------------------------------ */

START_TEST(test_huge_span)
{
    uint64_t arenas0 = heap.arenas_mapped, inuse0 = heap.pages_inuse;
    size_t n = ARENA_PAGES + ARENA_PAGES / 2 + 3;    /* ~96 MiB: two arenas */
    struct span *s = must_alloc(n);
    ck_assert_uint_ge(heap.arenas_mapped, arenas0 + 2);
    ck_assert_uint_eq(heap.pages_inuse, inuse0 + n);
    for (uintptr_t p = s->base; p < END(s); p += PAGE_SIZE)
        if (heap_span_of(p) != s)
            ck_abort_msg("page %zu of a %zu-page span does not map to it",
                         (size_t)((p - s->base) / PAGE_SIZE), n);
    /* Across the arena boundary and at the very end. */
    uintptr_t boundary = (s->base + ARENA_SIZE) & ~(ARENA_SIZE - 1);
    ck_assert_ptr_eq(heap_span_of(boundary - 1), s);
    ck_assert_ptr_eq(heap_span_of(boundary), s);
    ck_assert_ptr_eq(heap_span_of(END(s) - 1), s);
    ck_assert_ptr_ne(heap_span_of(END(s)), s);
    *(volatile char *)s->base = 1;
    *(volatile char *)(boundary + 12345) = 2;
    *(volatile char *)(END(s) - 1) = 3;

    /* As a large object, interior pointers anywhere find its base. */
    s->nelems = 1;
    s->size = 0;   /* too big for 32 bits: object sizes come from npages */
    AO_store(&s->alloc_bits[0], 1);
    struct span *out = NULL;
    ck_assert_uint_eq(heap_find_object(boundary + 4096, &out), s->base);
    ck_assert_ptr_eq(out, s);
    ck_assert_uint_eq(heap_find_object(END(s) - 1, NULL), s->base);
    check_heap();

    uintptr_t base = s->base;
    heap_free_span(s);
    check_heap();
    ck_assert_uint_eq(heap.pages_inuse, inuse0);
    ck_assert_uint_eq(heap_find_object(boundary + 4096, NULL), 0);

    /* Freed, it is reused: no new arena for the same request. */
    uint64_t arenas1 = heap.arenas_mapped;
    struct span *t = must_alloc(n);
    ck_assert_uint_eq(heap.arenas_mapped, arenas1);
    ck_assert_uint_eq(t->base, base);
    heap_free_span(t);
    check_heap();
}
END_TEST

/* ---- heap_find_object ------------------------------------------------------------------------- */

static bool slot_set(uint32_t i, uint32_t nelems)
{
    return i % 3 == 0 || i == nelems - 1 || i == 1;
}

/* A span of class _i set up as alloc.c does, with some slots allocated: every byte
 * offset of the span finds its slot's start if that slot is allocated, else nothing. */
START_TEST(test_find_object_small)
{
    unsigned cls = (unsigned)_i;
    const struct size_class *k = &sc_table[cls];
    struct span *g1 = must_alloc(1);
    struct span *s = must_alloc(k->npages);
    struct span *g2 = must_alloc(1);
    s->cls = (uint8_t)cls;
    s->size = k->size;
    s->nelems = k->nelems;
    s->div_mul = k->div_mul;
    for (uint32_t i = 0; i < k->nelems; i++)
        if (slot_set(i, k->nelems))
            AO_store(&s->alloc_bits[i >> 6], AO_load(&s->alloc_bits[i >> 6]) | (AO_t)1 << (i & 63));
    s->state = SPAN_SMALL;
    /* g1 and g2 stand for non-objects: a LARGE span with no slot allocated. */

    for (uintptr_t off = 0; off < PAGES(s); off++) {
        uint32_t i = (uint32_t)(off / k->size);
        uintptr_t expect = i < k->nelems && slot_set(i, k->nelems) ? s->base + i * k->size : 0;
        struct span *out = NULL;
        uintptr_t got = heap_find_object(s->base + off, &out);
        if (got != expect)
            ck_abort_msg("class %u (%u B): offset %zu found %p, expected %p", cls, k->size,
                         (size_t)off, (void *)got, (void *)expect);
        if (got)
            ck_assert_ptr_eq(out, s);
    }
    ck_assert_uint_eq(heap_find_object(s->base - 1, NULL), 0);
    ck_assert_uint_eq(heap_find_object(END(s), NULL), 0);   /* one past the end */

    heap_free_span(s);
    ck_assert_uint_eq(heap_find_object(g1->base + PAGE_SIZE, NULL), 0);
    heap_free_span(g1);
    heap_free_span(g2);
    check_heap();
}
END_TEST

static int a_global;

/* Through the allocator: interior pointers, freed slots, slots never reserved, the
 * tail of a span, one past the end of a large object, and addresses outside the heap. */
START_TEST(test_find_object_real)
{
    enum { N = 10, SZ = 48 };
    char *p[N];
    for (int i = 0; i < N; i++)
        p[i] = gc_malloc(SZ);
    struct span *s = heap_span_of((uintptr_t)p[0]);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->state, SPAN_SMALL);
    ck_assert_uint_eq(s->size, SZ);
    for (int i = 0; i < N; i++)
        for (int b = 0; b < SZ; b++) {
            struct span *out = NULL;
            ck_assert_uint_eq(heap_find_object((uintptr_t)p[i] + b, &out), (uintptr_t)p[i]);
            ck_assert_ptr_eq(out, heap_span_of((uintptr_t)p[i]));
        }
    gc_free(p[3]);
    ck_assert_uint_eq(heap_find_object((uintptr_t)p[3], NULL), 0);
    ck_assert_uint_eq(heap_find_object((uintptr_t)p[3] + SZ - 1, NULL), 0);
    ck_assert_uint_eq(heap_find_object((uintptr_t)p[4], NULL), (uintptr_t)p[4]);
    /* The thread cache reserves one 64-slot word at a time: slots past it are free. */
    if (s->nelems > 64) {
        uintptr_t beyond = s->base + (uintptr_t)(s->nelems - 1) * s->size;
        ck_assert_uint_eq(heap_find_object(beyond, NULL), 0);
    }
    uintptr_t tail = s->base + (uintptr_t)s->nelems * s->size;
    if (tail < END(s))
        ck_assert_uint_eq(heap_find_object(tail, NULL), 0);

    char *big = gc_malloc(100000);
    struct span *bs = heap_span_of((uintptr_t)big);
    ck_assert_uint_eq(bs->state, SPAN_LARGE);
    ck_assert_uint_eq(heap_find_object((uintptr_t)big + 99999, NULL), (uintptr_t)big);
    ck_assert_uint_eq(heap_find_object(END(bs) - 1, NULL), (uintptr_t)big);
    ck_assert_uint_ne(heap_find_object(END(bs), NULL), (uintptr_t)big);

    int local = 0;
    ck_assert_uint_eq(heap_find_object(0, NULL), 0);
    ck_assert_uint_eq(heap_find_object((uintptr_t)&local, NULL), 0);
    ck_assert_uint_eq(heap_find_object((uintptr_t)&a_global, NULL), 0);
    ck_assert_uint_eq(heap_find_object(AO_load(&heap.lo) - 1, NULL), 0);
    ck_assert_uint_eq(heap_find_object(AO_load(&heap.hi), NULL), 0);
    ck_assert_uint_eq(heap_find_object(UINTPTR_MAX, NULL), 0);
    check_heap();
}
END_TEST

/* ---- accounting under a random workload ----------------------------------------------------- */

START_TEST(test_random_workload_accounting)
{
    enum { SLOTS = 64, OPS = 1500 };
    uint64_t inuse0 = heap.pages_inuse, spans0 = heap.spans_inuse;
    struct span *v[SLOTS] = {0};
    unsigned seed = 12345;
    uint64_t held = 0;
    for (int op = 0; op < OPS; op++) {
        unsigned r = (unsigned)rand_r(&seed);
        int i = (int)(r % SLOTS);
        if (v[i]) {
            held -= v[i]->npages;
            heap_free_span(v[i]);
            v[i] = NULL;
        } else {
            size_t n = (r >> 8) % 8 == 0 ? 128 + (r >> 12) % 400 : 1 + (r >> 12) % 40;
            v[i] = must_alloc(n);
            held += n;
        }
        ck_assert_uint_eq(heap.pages_inuse, inuse0 + held);
        if (op % 50 == 0)
            check_heap();
    }
    for (int i = 0; i < SLOTS; i++)
        if (v[i])
            heap_free_span(v[i]);
    check_heap();
    ck_assert_uint_eq(heap.pages_inuse, inuse0);
    ck_assert_uint_eq(heap.spans_inuse, spans0);
}
END_TEST

/* ---- returning pages to the OS ---------------------------------------------------------------- */

START_TEST(test_release)
{
    struct span *v[3];
    v[0] = must_alloc(1);
    v[1] = must_alloc(20);
    v[2] = must_alloc(1);
    require_adjacent(v, 3);
    uintptr_t x = v[1]->base;
    memset((void *)x, 0xab, 20 * PAGE_SIZE);
    heap_free_span(v[1]);
    check_heap();

    uint64_t before = heap.pages_released;
    uint64_t free_pages = heap.pages_mapped - heap.pages_inuse;
    ck_assert_uint_gt(free_pages, before);
    uint64_t bytes = heap_release_free();
    ck_assert_uint_eq(heap.pages_released, free_pages);    /* every free page */
    ck_assert_uint_eq(bytes, (free_pages - before) * PAGE_SIZE);
    ck_assert_uint_eq(free_run_at(x, 20)->nreleased, 20);
    check_heap();
    ck_assert_uint_eq(heap_release_free(), 0);   /* nothing left to release */
    ck_assert_uint_eq(heap.pages_released, free_pages);

    /* Taking a released run back reduces the count by exactly its pages, and the
     * pages read as zero, so the span needs no zeroing. */
    struct span *y = must_alloc(20);
    ck_assert_uint_eq(y->base, x);
    ck_assert_uint_eq(heap.pages_released, free_pages - 20);
    ck_assert_uint_eq(y->nreleased, 0);
    ck_assert_uint_eq(y->needzero, 0);
    for (size_t i = 0; i < 20 * PAGE_SIZE; i += 512)
        ck_assert_msg(((volatile unsigned char *)x)[i] == 0, "byte %zu of a released page "
                      "reads %#x", i, ((volatile unsigned char *)x)[i]);
    check_heap();

    /* A piece split from a released run: the piece comes off the count, the rest of
     * the run stays released. */
    struct span *z = must_alloc(5);
    ck_assert_uint_eq(heap.pages_released, free_pages - 25);
    ck_assert_uint_eq(z->nreleased, 0);
    check_heap();

    /* Freeing next to a released run merges them; the merged run keeps its released
     * pages counted, page for page (check_heap compares the bits), so the count does
     * not move, and releasing everything gives back exactly the resident pages. */
    uintptr_t zbase = z->base;
    heap_free_span(z);
    check_heap();
    ck_assert_uint_eq(heap.pages_released, free_pages - 25);
    struct span *merged = heap_span_of(zbase);
    ck_assert_uint_eq(merged->state, SPAN_FREE);
    ck_assert_uint_gt(merged->npages, 5);   /* z and the released rest of its run */
    ck_assert_uint_eq(merged->nreleased, merged->npages - 5);
    heap_free_span(y);
    check_heap();
    ck_assert_uint_eq(heap.pages_released, free_pages - 25);
    heap_free_span(v[0]);
    heap_free_span(v[2]);
    check_heap();
    uint64_t released_before = heap.pages_released;
    uint64_t idle = heap.pages_mapped - heap.pages_inuse;
    ck_assert_uint_eq(heap_release_free(), (idle - released_before) * PAGE_SIZE);
    ck_assert_uint_eq(heap.pages_released, idle);
    check_heap();

    /* A run taken from a mixed one: its released pages come off the count and their
     * bits are cleared (check_heap: no in-use span has one). */
    struct span *w = must_alloc(30);
    ck_assert_uint_eq(heap.pages_released, idle - 30);
    check_heap();
    heap_free_span(w);
    check_heap();
}
END_TEST

/* A span freed next to a released run merges with it into a run partly released.
 * Allocation takes the resident pages of such a run, where they are, before it faults
 * in released ones; the released head stays a free run of its own. */
START_TEST(test_mixed_run_resident_first)
{
    struct span *v[4];
    v[0] = must_alloc(1);
    v[1] = must_alloc(4);
    v[2] = must_alloc(6);
    v[3] = must_alloc(1);
    require_adjacent(v, 4);
    uintptr_t x = v[1]->base;
    memset((void *)v[2]->base, 0xcd, 6 * PAGE_SIZE);
    heap_free_span(v[1]);
    heap_release_free();   /* every free page, v[1]'s four among them */
    ck_assert_uint_eq(free_run_at(x, 4)->nreleased, 4);
    heap_free_span(v[2]);   /* merges: 4 released pages, then 6 resident */
    check_heap();
    struct span *m = free_run_at(x, 10);
    ck_assert_uint_eq(m->nreleased, 4);
    ck_assert_uint_eq(heap.pages_released, heap.pages_mapped - heap.pages_inuse - 6);

    uint64_t released = heap.pages_released;
    struct span *y = must_alloc(3);
    ck_assert_uint_eq(y->base, x + 4 * PAGE_SIZE);   /* the resident pages */
    ck_assert_uint_eq(heap.pages_released, released);   /* nothing faulted in */
    ck_assert_uint_eq(y->needzero, 1);                    /* they were written */
    struct span *h = free_run_at(x, 4);
    ck_assert_uint_eq(h->nreleased, 4);
    ck_assert_uint_eq(h->needzero, 0);
    check_heap();

    /* Once no resident page is left, released ones are taken (and come off the count). */
    struct span *z = must_alloc(3);
    ck_assert_uint_eq(z->base, x + 7 * PAGE_SIZE);
    check_heap();
    struct span *u = must_alloc(4);
    ck_assert_uint_eq(heap.pages_released, released - u->npages);
    ck_assert_uint_eq(u->needzero, 0);
    check_heap();
}
END_TEST

/* Releasing less than a run: only its tail goes back (rounded up to 64 KiB), the head
 * stays resident; and allocation takes resident runs before released ones, even a
 * bigger one over a released exact fit. */
START_TEST(test_release_part_of_a_run)
{
    struct span *v[3];
    v[0] = must_alloc(1);
    v[1] = must_alloc(100);
    v[2] = must_alloc(1);
    require_adjacent(v, 3);
    uintptr_t x = v[1]->base, rest = END(v[2]);
    free_run_at(rest, 128 - 102);   /* what is left of the first 1 MiB */
    heap_free_span(v[1]);
    check_heap();

    uint64_t before = heap.pages_released;
    /* Biggest bins first: the 100-page run, of which 10 pages (then 16) are wanted. */
    ck_assert_uint_eq(heap_release_some(10 * PAGE_SIZE), 16 * PAGE_SIZE);
    ck_assert_uint_eq(heap.pages_released, before + 16);
    ck_assert_uint_eq(free_run_at(x, 84)->nreleased, 0);
    ck_assert_uint_eq(free_run_at(x + 84 * PAGE_SIZE, 16)->nreleased, 16);
    check_heap();

    /* 16 pages: the released run fits exactly, but the resident 26-page one wins. */
    struct span *a = must_alloc(16);
    ck_assert_msg(a->base == rest, "16 pages from %p, expected the resident run at %p",
                  (void *)a->base, (void *)rest);
    ck_assert_uint_eq(heap.pages_released, before + 16);
    /* Again: 10 resident pages are left there, too few; the 84-page head is next. */
    struct span *b = must_alloc(16);
    ck_assert_msg(b->base == x, "16 pages from %p, expected the resident head at %p",
                  (void *)b->base, (void *)x);
    ck_assert_uint_eq(heap.pages_released, before + 16);
    check_heap();
    /* Nothing resident is big enough for 80 pages: a new chunk, the released run
     * stays as it is. */
    struct span *c = must_alloc(80);
    ck_assert_uint_eq(heap.pages_released, before + 16);
    ck_assert_uint_eq(free_run_at(x + 84 * PAGE_SIZE, 16)->nreleased, 16);
    check_heap();

    heap_free_span(a);
    heap_free_span(b);
    heap_free_span(c);
    heap_free_span(v[0]);
    heap_free_span(v[2]);
    check_heap();
    heap_release_free();
    ck_assert_uint_eq(heap.pages_released, heap.pages_mapped - heap.pages_inuse);
    check_heap();
}
END_TEST

/* gc_free_os_memory goes through the same path: memstats' heap_released follows. */
START_TEST(test_release_memstats)
{
    struct span *s = must_alloc(64);
    heap_free_span(s);
    gc_free_os_memory();
    struct gc_memstats ms;
    gc_read_memstats(&ms);
    ck_assert_uint_eq(ms.heap_released, heap.pages_released * PAGE_SIZE);
    ck_assert_uint_ge(ms.heap_released, 64 * PAGE_SIZE);
    ck_assert_uint_le(ms.heap_released, ms.heap_idle);
    check_heap();
}
END_TEST

/* ---- the OS refusing memory -------------------------------------------------------------------- */

START_TEST(test_grow_fail)
{
    struct span *warm = must_alloc(1);   /* make sure an arena exists */
    heap_free_span(warm);
    uint64_t inuse0 = heap.pages_inuse, mapped0 = heap.pages_mapped;
    uint64_t arenas0 = heap.arenas_mapped;
    heap.grow_fail_for_test = 1;

    errno = 0;
    ck_assert_ptr_null(heap_alloc_span(2 * ARENA_PAGES));
    ck_assert_int_eq(errno, ENOMEM);
    ck_assert_uint_eq(heap.pages_inuse, inuse0);
    ck_assert_uint_eq(heap.pages_mapped, mapped0);
    ck_assert_uint_eq(heap.arenas_mapped, arenas0);
    check_heap();

    /* What fits in the pages already mapped is still served. */
    struct span *s = must_alloc(10);
    heap_free_span(s);

    /* The public path reports ENOMEM and returns NULL, without aborting. */
    errno = 0;
    void *p = gc_malloc(2 * ARENA_SIZE);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(errno, ENOMEM);
    check_heap();

    heap.grow_fail_for_test = 0;
    s = must_alloc(2 * ARENA_PAGES);
    ck_assert_uint_gt(heap.pages_mapped, mapped0);
    heap_free_span(s);
    check_heap();
}
END_TEST

static Suite *heap_suite(void)
{
    Suite *s = suite_create("heap");
    TCase *tc;

    tc = tcase_create("spans");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_spans_disjoint_and_mapped);
    tcase_add_test(tc, test_bad_sizes);
    tcase_add_test(tc, test_huge_span);
    tcase_add_test(tc, test_random_workload_accounting);
    suite_add_tcase(s, tc);

    tc = tcase_create("coalesce");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_coalesce, 0, 6);
    tcase_add_test(tc, test_split_after_merge);
    suite_add_tcase(s, tc);

    tc = tcase_create("best_fit");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_best_fit_small);
    tcase_add_test(tc, test_best_fit_big);
    suite_add_tcase(s, tc);

    tc = tcase_create("find_object");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_find_object_small, 1, NUM_CLASSES + 1);
    tcase_add_test(tc, test_find_object_real);
    suite_add_tcase(s, tc);

    tc = tcase_create("release");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_release);
    tcase_add_test(tc, test_mixed_run_resident_first);
    tcase_add_test(tc, test_release_part_of_a_run);
    tcase_add_test(tc, test_release_memstats);
    suite_add_tcase(s, tc);

    tc = tcase_create("grow_fail");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_grow_fail);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(heap_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
