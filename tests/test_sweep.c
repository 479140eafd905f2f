/* test_sweep.c - unit tests for gc/sweep.c: what a collection does with the dead.
 *
 * After gc_collect, unreachable small objects' allocation bits are clear and their
 * slots are handed out again; a span whose objects all died goes back to the page
 * heap (heap.pages_inuse drops, its pages map to a free run); an unmarked large
 * object's span is freed; sweep_nfree / sweep_large_free_bytes count them; live
 * objects are never handed out again; and memory handed out after a sweep is zeroed
 * however dirty it was.
 *
 * Dead objects are made in noinline helpers and remembered only as addresses XOR-ed
 * with a key, so the test does not retain them; "most" rather than "all" where a
 * stray stack word could retain one.
 */
#include "internal.h"

#include <check.h>
#include "testutil.h"
#include <stdlib.h>
#include <string.h>

#define KEY ((uintptr_t)0x5A5A5A5A5A5A5A5Au)
#define HIDE(p) ((uintptr_t)(p) ^ KEY)
#define SHOW(h) ((void *)((h) ^ KEY))


static void collect(void)
{
    clobber_stack();
    gc_collect();
}

static uint64_t pages_inuse(void)
{
    heap_lock();
    uint64_t n = heap.pages_inuse;
    heap_unlock();
    return n;
}

static bool alloc_bit(uintptr_t p)
{
    struct span *s = heap_span_of(p);
    if (!s || s->state != SPAN_SMALL)
        return false;
    uint32_t i = span_index(s, p);
    return AO_load(&s->alloc_bits[i >> 6]) & ((AO_t)1 << (i & 63));
}

static int count_alive(const uintptr_t *hidden, int n)
{
    int alive = 0;
    for (int i = 0; i < n; i++) {
        void *p = SHOW(hidden[i]);
        if (gc_base(p) == p)
            alive++;
    }
    return alive;
}

/* n dead objects of `size`, remembered in hidden[] (malloc'd: not a root). */
static __attribute__((noinline)) void make_dead(size_t size, bool atomic, int n,
                                                uintptr_t *hidden)
{
    for (int i = 0; i < n; i++) {
        void *p = atomic ? gc_malloc_atomic(size) : gc_malloc(size);
        ck_assert_ptr_nonnull(p);
        memset(p, 0xAA, size);
        hidden[i] = HIDE(p);
    }
}

static int cmp_uintptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- small objects: bits cleared, slots reused ---------------------------------------- */

START_TEST(dead_small_slots_cleared_and_reused)
{
    enum { N = 1000 };
    uintptr_t *hidden = malloc(N * sizeof *hidden);
    uintptr_t *old = malloc(N * sizeof *old);
    make_dead(48, false, N, hidden);
    for (int i = 0; i < N; i++)
        ck_assert(alloc_bit((uintptr_t)SHOW(hidden[i])));
    collect();
    int still = 0;
    for (int i = 0; i < N; i++)
        still += alloc_bit((uintptr_t)SHOW(hidden[i]));
    ck_assert_msg(still <= N / 20, "%d of %d dead objects still have their allocation bit",
                  still, N);
    ck_assert_int_le(count_alive(hidden, N), N / 20);

    /* The same size again: the freed slots come back. */
    for (int i = 0; i < N; i++)
        old[i] = (uintptr_t)SHOW(hidden[i]);
    qsort(old, N, sizeof *old, cmp_uintptr);
    int reused = 0;
    for (int i = 0; i < N; i++) {
        void *p = gc_malloc(48);
        uintptr_t a = (uintptr_t)p;
        if (bsearch(&a, old, N, sizeof *old, cmp_uintptr))
            reused++;
        hidden[i] = HIDE(p);
    }
    ck_assert_msg(reused >= N * 9 / 10, "only %d of %d slots reused", reused, N);
    free(hidden);
    free(old);
}
END_TEST

/* Half of the objects live (every other one): the dead half's slots are reused, the
 * live ones are never handed out again, and keep their contents. */
START_TEST(live_slots_never_reused)
{
    enum { N = 2048 };
    void **keep = gc_malloc(N / 2 * sizeof *keep);   /* referenced from this frame */
    uintptr_t *dead = malloc(N / 2 * sizeof *dead);
    int nk = 0, nd = 0;
    for (int i = 0; i < N; i++) {
        unsigned char *p = gc_malloc(64);
        memset(p, i & 1 ? 0x11 : 0x22, 64);
        if (i & 1)
            keep[nk++] = p;
        else
            dead[nd++] = HIDE(p);
        p = NULL;
    }
    collect();
    ck_assert_int_le(count_alive(dead, nd), nd / 20);
    for (int i = 0; i < nk; i++)
        ck_assert_ptr_eq(gc_base(keep[i]), keep[i]);
    /* Allocate well past the freed count: no new object may be a live one. */
    uintptr_t *live = malloc(nk * sizeof *live);
    for (int i = 0; i < nk; i++)
        live[i] = (uintptr_t)keep[i];
    qsort(live, nk, sizeof *live, cmp_uintptr);
    int clashes = 0;
    for (int i = 0; i < 2 * N; i++) {
        unsigned char *p = gc_malloc(64);
        uintptr_t a = (uintptr_t)p;
        if (bsearch(&a, live, nk, sizeof *live, cmp_uintptr))
            clashes++;
        memset(p, 0x33, 64);
    }
    ck_assert_int_eq(clashes, 0);
    for (int i = 0; i < nk; i++) {
        const unsigned char *p = keep[i];
        for (int k = 0; k < 64; k++)
            ck_assert_int_eq(p[k], 0x11);
    }
    free(dead);
    free(live);
}
END_TEST

/* ---- empty spans back to the page heap ------------------------------------------------- */

START_TEST(empty_spans_return_to_page_heap)
{
    unsigned cls = sc_of(2048);
    const struct size_class *k = &sc_table[cls];
    int spans = 8, n = (int)k->nelems * spans;
    uintptr_t *hidden = malloc((size_t)n * sizeof *hidden);
    collect();
    uint64_t p0 = pages_inuse();
    make_dead(2048, false, n, hidden);
    uint64_t p1 = pages_inuse();
    ck_assert_uint_ge(p1, p0 + (uint64_t)(spans - 1) * k->npages);
    collect();
    uint64_t p2 = pages_inuse();
    ck_assert_msg(p2 <= p0 + k->npages, "pages in use %lu -> %lu -> %lu: dead spans kept",
                  (unsigned long)p0, (unsigned long)p1, (unsigned long)p2);
    /* Each dead object's page maps to a free run (or to nothing: inside a free run). */
    int in_use = 0;
    for (int i = 0; i < n; i++) {
        struct span *s = heap_span_of((uintptr_t)SHOW(hidden[i]));
        if (s && s->state != SPAN_FREE)
            in_use++;
    }
    ck_assert_msg(in_use <= (int)k->nelems, "%d of %d dead objects still in in-use spans",
                  in_use, n);
    free(hidden);
}
END_TEST

/* A span with one survivor stays; the others go. */
START_TEST(span_with_a_survivor_stays)
{
    unsigned cls = sc_of(1024);
    const struct size_class *k = &sc_table[cls];
    int n = (int)k->nelems * 4;
    uintptr_t *hidden = malloc((size_t)n * sizeof *hidden);
    collect();
    uint64_t p0 = pages_inuse();
    make_dead(1024, false, n, hidden);
    void *volatile survivor = SHOW(hidden[n / 2]);   /* in the third span */
    collect();
    uint64_t p1 = pages_inuse();
    ck_assert_ptr_eq(gc_base(survivor), survivor);
    struct span *s = heap_span_of((uintptr_t)survivor);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(s->state, SPAN_SMALL);
    ck_assert_uint_ge(p1, p0 + k->npages);
    ck_assert_uint_le(p1, p0 + 2 * k->npages);
    /* Its span is on the central list, with exactly one allocated slot. */
    ck_assert_uint_eq(s->list, LIST_PARTIAL);
    int bits = 0;
    for (int w = 0; w < BITMAP_WORDS; w++)
        bits += __builtin_popcountll(AO_load(&s->alloc_bits[w]));
    ck_assert_int_eq(bits, 1);
    survivor = NULL;
    free(hidden);
}
END_TEST

/* ---- large objects ------------------------------------------------------------------- */

START_TEST(dead_large_spans_freed)
{
    enum { N = 16 };
    size_t size = 100 << 10;
    uint64_t npages = (size + PAGE_SIZE - 1) / PAGE_SIZE;
    uintptr_t hidden[N];
    collect();
    uint64_t p0 = pages_inuse();
    AO_t bytes0 = AO_load(&sweep_large_free_bytes), n0 = AO_load(&sweep_nfree[0]);
    make_dead(size, false, N, hidden);
    uint64_t p1 = pages_inuse();
    ck_assert_uint_ge(p1, p0 + N * npages);
    collect();
    uint64_t p2 = pages_inuse();
    int alive = count_alive(hidden, N);
    ck_assert_int_le(alive, 2);
    ck_assert_uint_le(p2, p0 + (uint64_t)alive * npages + 4);
    ck_assert_uint_ge(AO_load(&sweep_nfree[0]) - n0, (AO_t)(N - alive));
    ck_assert_uint_ge(AO_load(&sweep_large_free_bytes) - bytes0,
                      (AO_t)(N - alive) * npages * PAGE_SIZE);
    for (int i = 0; i < N; i++) {
        void *p = SHOW(hidden[i]);
        if (gc_base(p) == p)
            continue;
        struct span *s = heap_span_of((uintptr_t)p);
        ck_assert(s == NULL || s->state == SPAN_FREE);
        /* Interior pages of a freed large object are unmapped too. */
        struct span *mid = heap_span_of((uintptr_t)p + 6 * PAGE_SIZE);
        ck_assert(mid == NULL || mid->state == SPAN_FREE);
        ck_assert_ptr_null(gc_base((char *)p + 50000));
    }
}
END_TEST

START_TEST(live_large_object_kept)
{
    size_t size = 300 << 10;
    unsigned char *p = gc_malloc(size);
    memset(p, 0x5C, size);
    collect();
    collect();
    ck_assert_ptr_eq(gc_base(p), p);
    ck_assert_ptr_eq(gc_base(p + size - 1), p);
    struct span *s = heap_span_of((uintptr_t)p);
    ck_assert_int_eq(s->state, SPAN_LARGE);
    ck_assert_uint_eq(AO_load(&s->mark_bits[0]), 0);   /* cleared for the next cycle */
    for (size_t i = 0; i < size; i += 4093)
        ck_assert_int_eq(p[i], 0x5C);
}
END_TEST

/* An allocation that crosses the heap goal runs a collection before gc_malloc returns:
 * that collection must not sweep the object being returned.  With GCPERCENT=1 the
 * goal is about 41 KiB, so nearly every large allocation collects. */
START_TEST(fresh_large_object_survives_its_own_collection)
{
    enum { N = 200 };
    int old = gc_set_percent(1);
    uint32_t gc0 = (uint32_t)AO_load(&cycle.num_gc);
    int lost = 0, first_lost = -1;
    for (int i = 0; i < N; i++) {
        unsigned char *p = gc_malloc(100 << 10);
        ck_assert_ptr_nonnull(p);
        struct span *s = heap_span_of((uintptr_t)p);
        if (gc_base(p) != p || !s || s->state != SPAN_LARGE) {
            if (lost++ == 0)
                first_lost = i;
        }
        p = NULL;
    }
    uint32_t cycles = (uint32_t)AO_load(&cycle.num_gc) - gc0;
    gc_set_percent(old);
    /* The allocations did collect (concurrent cycles run while allocation goes on,
     * so several allocations share one: an allocation waits for a mark, not for the
     * sweep after it). */
    ck_assert_uint_ge(cycles, N / 20);
    ck_assert_msg(lost == 0, "%d of %d large objects were already free when gc_malloc "
                  "returned them (first: allocation %d; %u collections ran)", lost, N,
                  first_lost, cycles);
}
END_TEST

/* The same for small objects, whose slow path can collect too. */
START_TEST(fresh_small_object_survives_its_own_collection)
{
    enum { N = 20000 };
    int old = gc_set_percent(1);
    uint32_t gc0 = (uint32_t)AO_load(&cycle.num_gc);
    int lost = 0;
    for (int i = 0; i < N; i++) {
        void *p = i & 1 ? gc_malloc(1000) : gc_malloc_atomic(3000);
        ck_assert_ptr_nonnull(p);
        if (gc_base(p) != p)
            lost++;
    }
    uint32_t cycles = (uint32_t)AO_load(&cycle.num_gc) - gc0;
    gc_set_percent(old);
    ck_assert_uint_ge(cycles, 10);
    ck_assert_msg(lost == 0, "%d of %d small objects were already free when returned", lost, N);
}
END_TEST

/* ---- counters ---------------------------------------------------------------------- */

/* D dead objects whose pointers never sit anywhere but in one volatile slot. */
static __attribute__((noinline)) void make_dead_quietly(size_t size, int d)
{
    void *volatile sink;
    for (int i = 0; i < d; i++) {
        sink = gc_malloc(size);
        *(volatile char *)sink = 1;
    }
    sink = NULL;
    (void)sink;
}

START_TEST(sweep_nfree_counts_dead)
{
    enum { D = 3000 };
    unsigned cls = sc_of(80);
    collect();
    AO_t before = AO_load(&sweep_nfree[cls]);
    struct gc_memstats m0, m1;
    gc_read_memstats(&m0);
    make_dead_quietly(80, D);
    collect();
    AO_t freed = AO_load(&sweep_nfree[cls]) - before;
    gc_read_memstats(&m1);
    /* A register could conservatively keep the last one. */
    ck_assert_msg(freed >= D - 1, "sweep_nfree[%u] grew by %lu, want >= %d", cls,
                  (unsigned long)freed, D - 1);
    ck_assert_uint_ge(m1.by_size[cls].frees - m0.by_size[cls].frees, D - 1);
    ck_assert_uint_ge(m1.frees - m0.frees, D - 1);
    ck_assert_uint_le(m1.heap_objects, m0.heap_objects + 1);
    /* Nothing else in this class: no more freed than made. */
    ck_assert_uint_le(freed, D);
}
END_TEST

START_TEST(sweep_nfree_per_class)
{
    static const size_t sizes[] = {16, 32, 112, 144, 640, 1152, 4096, 9472, 32768};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        unsigned cls = sc_of(sizes[i]);
        collect();
        AO_t before = AO_load(&sweep_nfree[cls]);
        make_dead_quietly(sizes[i], 200);
        collect();
        AO_t freed = AO_load(&sweep_nfree[cls]) - before;
        ck_assert_msg(freed >= 199 && freed <= 200, "size %zu: sweep_nfree grew by %lu",
                      sizes[i], (unsigned long)freed);
    }
}
END_TEST

/* ---- zeroing ------------------------------------------------------------------------ */

/* Dirty n objects of size with 0xAA over their whole slot, let them die, collect,
 * then allocate 3n of the same kind: every byte of every object must read zero. */
static __attribute__((noinline)) void dirty(size_t size, bool atomic, int n)
{
    for (int i = 0; i < n; i++) {
        unsigned char *p = atomic ? gc_malloc_atomic(size) : gc_malloc(size);
        ck_assert_ptr_nonnull(p);
        memset(p, 0xAA, gc_size(p));
    }
}

static void check_zeroed_after_sweep(size_t size, bool atomic, int n)
{
    dirty(size, atomic, n);
    collect();
    for (int i = 0; i < 3 * n; i++) {
        unsigned char *p = atomic ? gc_malloc_atomic(size) : gc_malloc(size);
        ck_assert_ptr_nonnull(p);
        size_t len = size < TINY_SIZE && atomic ? size : gc_size(p);
        for (size_t k = 0; k < len; k++)
            if (p[k])
                ck_abort_msg("size %zu%s: object %d at %p has byte %zu = %#x after a sweep",
                             size, atomic ? " (atomic)" : "", i, (void *)p, k, p[k]);
        memset(p, 0x55, len);   /* dirty again for the next size */
    }
}

START_TEST(reused_memory_is_zeroed_small)
{
    static const size_t sizes[] = {16, 48, 256, 1000, 2048, 7000, 32768};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        check_zeroed_after_sweep(sizes[i], false, 600);
        check_zeroed_after_sweep(sizes[i], true, 600);
    }
}
END_TEST

START_TEST(reused_memory_is_zeroed_tiny)
{
    check_zeroed_after_sweep(8, true, 4000);
    check_zeroed_after_sweep(3, true, 4000);
}
END_TEST

START_TEST(reused_memory_is_zeroed_large)
{
    check_zeroed_after_sweep(40000, false, 40);
    check_zeroed_after_sweep(100 << 10, true, 20);
    check_zeroed_after_sweep(1 << 20, false, 4);
}
END_TEST

/* Partly live spans: freed slots between live ones are zeroed when handed out, and
 * the live ones keep their (dirty) contents. */
START_TEST(reused_memory_is_zeroed_between_live)
{
    enum { N = 3000 };
    void **keep = malloc(N / 3 * sizeof *keep);
    gc_add_roots(keep, keep + N / 3);
    int nk = 0;
    for (int i = 0; i < N; i++) {
        unsigned char *p = gc_malloc(96);
        memset(p, 0xAA, 96);
        if (i % 3 == 0)
            keep[nk++] = p;
    }
    collect();
    for (int i = 0; i < 2 * N; i++) {
        unsigned char *p = gc_malloc(96);
        for (int k = 0; k < 96; k++)
            if (p[k])
                ck_abort_msg("object %d at %p byte %d = %#x", i, (void *)p, k, p[k]);
    }
    for (int i = 0; i < nk; i++)
        for (int k = 0; k < 96; k++)
            ck_assert_int_eq(((unsigned char *)keep[i])[k], 0xAA);
    gc_remove_roots(keep, keep + N / 3);
    free(keep);
}
END_TEST

/* After gc_free_os_memory (free pages released to the OS) reuse reads zero too. */
START_TEST(reused_memory_is_zeroed_after_release)
{
    dirty(4096, false, 500);
    dirty(100 << 10, false, 10);
    clobber_stack();
    gc_free_os_memory();
    for (int i = 0; i < 1500; i++) {
        unsigned char *p = gc_malloc(4096);
        for (int k = 0; k < 4096; k++)
            if (p[k])
                ck_abort_msg("object %d at %p byte %d = %#x", i, (void *)p, k, p[k]);
    }
    for (int i = 0; i < 20; i++) {
        unsigned char *p = gc_malloc(100 << 10);
        for (size_t k = 0; k < gc_size(p); k++)
            if (p[k])
                ck_abort_msg("large %d at %p byte %zu = %#x", i, (void *)p, k, p[k]);
    }
}
END_TEST

static Suite *sweep_suite(void)
{
    Suite *s = suite_create("sweep");
    TCase *tc = tcase_create("small");
    tcase_add_test(tc, dead_small_slots_cleared_and_reused);
    tcase_add_test(tc, live_slots_never_reused);
    tcase_add_test(tc, empty_spans_return_to_page_heap);
    tcase_add_test(tc, span_with_a_survivor_stays);
    suite_add_tcase(s, tc);

    tc = tcase_create("large");
    tcase_add_test(tc, dead_large_spans_freed);
    tcase_add_test(tc, live_large_object_kept);
    tcase_add_test(tc, fresh_large_object_survives_its_own_collection);
    tcase_add_test(tc, fresh_small_object_survives_its_own_collection);
    suite_add_tcase(s, tc);

    tc = tcase_create("counters");
    tcase_add_test(tc, sweep_nfree_counts_dead);
    tcase_add_test(tc, sweep_nfree_per_class);
    suite_add_tcase(s, tc);

    tc = tcase_create("zeroing");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, reused_memory_is_zeroed_small);
    tcase_add_test(tc, reused_memory_is_zeroed_tiny);
    tcase_add_test(tc, reused_memory_is_zeroed_large);
    tcase_add_test(tc, reused_memory_is_zeroed_between_live);
    tcase_add_test(tc, reused_memory_is_zeroed_after_release);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    gc_init();
    /* The lowest object of the heap is retained by the collector's own heap.lo (see
     * test_roots: first_object_is_not_rooted_by_collector_data); let it be this one. */
    void *volatile first = gc_malloc(16);
    (void)first;
    SRunner *sr = srunner_create(sweep_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
