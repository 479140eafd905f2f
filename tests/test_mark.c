/* test_mark.c - unit tests for gc/mark.c: conservative scanning and grey work.
 *
 * The tests drive a private struct mark_state by hand, outside any cycle: the calling
 * thread is the only thread of the process (Check forks each test), so the heap holds
 * still while it is scanned.  They seed it with mark_scan_range over a local array,
 * drain it, and read the mark bits back.  Marks left behind would make the next real
 * cycle treat those objects as already black, so every test clears them (or lets a
 * sweep do it) before it calls gc_collect.
 */
#include "internal.h"

#include <check.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *next;
    uintptr_t value;            /* never looks like a heap address */
};

static struct node *volatile list_head;   /* a root: the data segment is scanned */

static void setup(void)
{
    gc_init();
    gc_disable();   /* only the cycles a test asks for */
}

/* The mark bit of the slot holding p, read straight from its span (whether or not the
 * slot is allocated; mark_is_marked answers false for free slots without looking). */
static bool slot_mark_bit(const void *p)
{
    struct span *s = heap_span_of((uintptr_t)p);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_ge(s->state, SPAN_SMALL);
    uint32_t i = span_index(s, (uintptr_t)p);
    ck_assert_uint_lt(i, s->nelems);
    return (AO_load(&s->mark_bits[i >> 6]) >> (i & 63)) & 1;
}

static void clear_span_marks(struct span *s, void *arg)
{
    (void)arg;
    for (int w = 0; w < BITMAP_WORDS; w++)
        AO_store(&s->mark_bits[w], 0);
}

/* What mark_clear_all would do (internal.h declares it; nothing defines it yet). */
static void clear_marks(void)
{
    heap_for_each_span(clear_span_marks, NULL);
}

static void count_span_marks(struct span *s, void *arg)
{
    uint64_t *n = arg;
    for (int w = 0; w < BITMAP_WORDS; w++)
        *n += (uint64_t)__builtin_popcountll(AO_load(&s->mark_bits[w]));
}

static uint64_t marks_in_heap(void)
{
    uint64_t n = 0;
    heap_for_each_span(count_span_marks, &n);
    return n;
}

/* Mark from the words of roots[0..n) with a mark stack of at most max entries. */
static void mark_from(struct mark_state *ms, size_t max, const uintptr_t *roots, size_t n)
{
    mark_init(ms, max);
    mark_scan_range(ms, (uintptr_t)roots, (uintptr_t)(roots + n));
    mark_drain(ms);
    ck_assert_msg(!ms->overflowed, "overflow flag still set after mark_drain");
    ck_assert_uint_eq(ms->top, 0);
}

/* Overwrite the dead part of the stack below the caller, so stale copies of pointers
 * from earlier frames do not keep garbage alive. */
static __attribute__((noinline)) void scrub_stack(void)
{
    volatile char buf[16384];
    memset((char *)buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

/* ---- a long list: deep, but the mark stack never holds more than one entry --------- */

enum { LIST_N = 200000 };

static __attribute__((noinline)) void build_list(size_t n)
{
    struct node *head = NULL;
    for (size_t i = n; i-- > 0;) {
        struct node *x = gc_malloc(sizeof *x);
        ck_assert_ptr_nonnull(x);
        x->next = head;
        x->value = i;
        head = x;
    }
    list_head = head;
}

static void check_list(size_t n, bool want_marked)
{
    size_t i = 0;
    for (struct node *x = list_head; x; x = x->next, i++) {
        if (x->value != i)
            ck_abort_msg("node %zu holds %" PRIuPTR, i, x->value);
        if (gc_base(x) != x)
            ck_abort_msg("node %zu at %p is no longer an allocated object", i, (void *)x);
        if (mark_is_marked((uintptr_t)x) != want_marked)
            ck_abort_msg("node %zu: mark bit %d, expected %d", i, !want_marked, want_marked);
    }
    ck_assert_uint_eq(i, n);
}

START_TEST(test_long_list)
{
    build_list(LIST_N);
    ck_assert_uint_eq(marks_in_heap(), 0);

    struct mark_state ms;
    uintptr_t roots[1] = {(uintptr_t)list_head};
    mark_from(&ms, 16, roots, 1);
    ck_assert_uint_eq(ms.objects_marked, LIST_N);
    ck_assert_uint_eq(ms.bytes_marked, (uint64_t)LIST_N * sizeof(struct node));
    /* The root word, then each node once: no rescans were needed. */
    ck_assert_uint_eq(ms.bytes_scanned, sizeof roots + (uint64_t)LIST_N * sizeof(struct node));
    ck_assert_uint_le(ms.cap, 16);
    check_list(LIST_N, true);
    ck_assert_uint_eq(marks_in_heap(), LIST_N);
    mark_destroy(&ms);

    /* A real cycle: the list is reachable from a global, survives whole, and the sweep
     * leaves no mark bit behind; so does a second cycle that marks it from scratch. */
    gc_collect();
    check_list(LIST_N, false);
    ck_assert_uint_eq(marks_in_heap(), 0);
    gc_collect();
    check_list(LIST_N, false);
    ck_assert_uint_eq(marks_in_heap(), 0);
}
END_TEST

/* A marker's step (mark_step) scans at most 128 objects through its prefetch FIFO and
 * puts back on the stack what it had prefetched but not scanned: over many steps every
 * object is scanned exactly once (bytes_scanned would show a rescan or a loss). */
enum { PAIRS = 1000 };

START_TEST(test_steps_scan_each_once)
{
    uintptr_t roots[PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        struct node *a = gc_malloc(sizeof *a), *b = gc_malloc(sizeof *b);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        a->next = b;
        a->value = b->value = (uintptr_t)i;
        roots[i] = (uintptr_t)a;
    }
    struct mark_state ms;
    mark_init(&ms, (size_t)1 << 16);
    mark_scan_range(&ms, (uintptr_t)roots, (uintptr_t)(roots + PAIRS));
    ck_assert_uint_eq(ms.top, PAIRS);
    size_t total = 0, full_steps = 0;
    for (;;) {
        size_t before = ms.top;
        size_t n = mark_step(&ms);
        if (n == 0) {
            ck_assert_uint_eq(before, 0);
            break;
        }
        ck_assert_uint_le(n, 128);
        full_steps += n == 128;
        total += n;
    }
    ck_assert_uint_eq(total, 2 * PAIRS);
    ck_assert_uint_ge(full_steps, 2 * PAIRS / 128 - 1);   /* the limit held, not less */
    ck_assert_uint_eq(ms.objects_marked, 2 * PAIRS);
    ck_assert_uint_eq(ms.bytes_scanned, sizeof roots + 2 * PAIRS * sizeof(struct node));
    for (int i = 0; i < PAIRS; i++) {
        struct node *a = (struct node *)roots[i];
        ck_assert(slot_mark_bit(a) && slot_mark_bit(a->next));
    }
    ck_assert_uint_eq(marks_in_heap(), 2 * PAIRS);
    mark_destroy(&ms);
    clear_marks();
}
END_TEST

/* Unreachable lists: a cycle frees (nearly) all of them.  Many short chains rather than
 * one long one, so that a stale copy of one pointer somewhere (conservative scanning
 * cannot tell) keeps at most one chain alive. */
enum { CHAINS = 500, CHAIN_LEN = 100 };

static __attribute__((noinline)) void drop_chain(uintptr_t *disguised)
{
    struct node *head = NULL;
    for (int i = 0; i < CHAIN_LEN; i++) {
        struct node *x = gc_malloc(sizeof *x);
        ck_assert_ptr_nonnull(x);
        x->next = head;
        x->value = (uintptr_t)i;
        head = x;
        disguised[i] = ~(uintptr_t)x;
    }
}

START_TEST(test_unreachable_lists_freed)
{
    const size_t n = (size_t)CHAINS * CHAIN_LEN;
    uintptr_t *disguised = malloc(n * sizeof *disguised);   /* libc heap: not a root */
    ck_assert_ptr_nonnull(disguised);
    for (int c = 0; c < CHAINS; c++)
        drop_chain(disguised + (size_t)c * CHAIN_LEN);
    scrub_stack();
    gc_collect();
    size_t alive = 0;
    for (size_t i = 0; i < n; i++)
        if (heap_find_object(~disguised[i], NULL))
            alive++;
    ck_assert_msg(alive < n / 10, "%zu of %zu unreachable nodes survived a cycle", alive, n);
    ck_assert_uint_eq(marks_in_heap(), 0);
    free(disguised);
}
END_TEST

/* ---- a wide object: the tiny mark stack overflows and marking recovers ------------- */

enum { FAN = 5000 };

struct pair {
    void *left, *right;
    uintptr_t pad[2];
};

static __attribute__((noinline)) void **build_fan(void)
{
    void **v = gc_malloc(FAN * sizeof *v);
    ck_assert_ptr_nonnull(v);
    for (int i = 0; i < FAN; i++) {
        struct pair *p = gc_malloc(sizeof *p);
        ck_assert_ptr_nonnull(p);
        p->left = gc_malloc(16);
        p->right = gc_malloc(16);
        ck_assert_ptr_nonnull(p->left);
        ck_assert_ptr_nonnull(p->right);
        v[i] = p;
    }
    return v;
}

static void check_fan(void **v, bool want)
{
    for (int i = 0; i < FAN; i++) {
        struct pair *p = v[i];
        if (mark_is_marked((uintptr_t)p) != want ||
            mark_is_marked((uintptr_t)p->left) != want ||
            mark_is_marked((uintptr_t)p->right) != want)
            ck_abort_msg("fan-out %d: pair/left/right marked %d/%d/%d, expected %d", i,
                         mark_is_marked((uintptr_t)p), mark_is_marked((uintptr_t)p->left),
                         mark_is_marked((uintptr_t)p->right), want);
    }
}

START_TEST(test_overflow_recovers)
{
    void **v = build_fan();
    alloc_flush_cache(alloc_self);   /* as a cycle does: no reserved-but-unused slots */

    /* Scanning the array itself shades FAN objects into a 16-entry stack. */
    struct mark_state ms;
    mark_init(&ms, 16);
    mark_scan_range(&ms, (uintptr_t)v, (uintptr_t)(v + FAN));
    ck_assert_msg(ms.overflowed, "%d pushes into a 16-entry stack did not overflow", FAN);
    ck_assert_uint_eq(ms.top, 16);
    ck_assert_uint_eq(ms.objects_marked, FAN);
    mark_drain(&ms);
    ck_assert(!ms.overflowed);
    ck_assert_uint_eq(ms.top, 0);
    ck_assert_uint_eq(ms.objects_marked, 3 * FAN);   /* each object counted once */
    check_fan(v, true);
    ck_assert_uint_eq(marks_in_heap(), 3 * FAN);
    ck_assert(!mark_is_marked((uintptr_t)v));   /* scanned as a root, not shaded */
    mark_destroy(&ms);

    /* Same answer with room to spare, from a root word pointing at the array. */
    clear_marks();
    check_fan(v, false);
    uintptr_t roots[1] = {(uintptr_t)v};
    mark_from(&ms, (size_t)1 << 20, roots, 1);
    ck_assert_uint_eq(ms.objects_marked, 3 * FAN + 1);
    /* A large object is scanned whole: all its pages. */
    ck_assert_uint_eq(ms.bytes_scanned, sizeof roots + gc_size(v) +
                                            FAN * (sizeof(struct pair) + 16 + 16));
    check_fan(v, true);
    mark_destroy(&ms);

    /* And with a one-entry stack, through the root word. */
    clear_marks();
    mark_from(&ms, 1, roots, 1);
    ck_assert_uint_eq(ms.objects_marked, 3 * FAN + 1);
    check_fan(v, true);
    mark_destroy(&ms);

    clear_marks();
    gc_add_roots(&v, &v + 1);   /* v lives on; keep it so for the cycle */
    gc_collect();
    ck_assert_uint_eq(marks_in_heap(), 0);
    for (int i = 0; i < FAN; i++)
        ck_assert_ptr_eq(gc_base(v[i]), v[i]);
    gc_remove_roots(&v, &v + 1);
}
END_TEST

/* ---- what counts as a pointer ------------------------------------------------------------- */

START_TEST(test_free_slot_not_marked)
{
    char *a = gc_malloc(64), *b = gc_malloc(64), *c = gc_malloc(64);
    ck_assert_ptr_eq(heap_span_of((uintptr_t)a), heap_span_of((uintptr_t)c));
    gc_free(b);
    alloc_flush_cache(alloc_self);
    struct span *s = heap_span_of((uintptr_t)c);
    char *never = c + 64;   /* handed out to nobody, reservation given back */
    bool have_never = span_index(s, (uintptr_t)never) < s->nelems &&
                      !heap_find_object((uintptr_t)never, NULL);

    struct mark_state ms;
    uintptr_t roots[] = {(uintptr_t)b, (uintptr_t)(b + 8), (uintptr_t)(b + 63),
                         have_never ? (uintptr_t)never : 0,
                         have_never ? (uintptr_t)(never + 17) : 0};
    mark_from(&ms, 1024, roots, sizeof roots / sizeof roots[0]);
    ck_assert_uint_eq(ms.objects_marked, 0);
    ck_assert_uint_eq(ms.bytes_marked, 0);
    ck_assert(!slot_mark_bit(b));
    if (have_never)
        ck_assert(!slot_mark_bit(never));
    ck_assert(!mark_is_marked((uintptr_t)a));
    ck_assert(!mark_is_marked((uintptr_t)c));
    ck_assert_uint_eq(marks_in_heap(), 0);
    mark_destroy(&ms);
}
END_TEST

START_TEST(test_interior_pointers)
{
    char *small = gc_malloc(100);          /* 112-byte class */
    char *big = gc_malloc(50000);          /* a large object of 7 pages */
    char *other = gc_malloc(100);
    struct mark_state ms;
    uintptr_t roots[] = {(uintptr_t)(small + 57), (uintptr_t)(big + 40001)};
    mark_from(&ms, 1024, roots, 2);
    ck_assert_uint_eq(ms.objects_marked, 2);
    ck_assert(mark_is_marked((uintptr_t)small));
    ck_assert(mark_is_marked((uintptr_t)big));
    ck_assert(!mark_is_marked((uintptr_t)other));
    ck_assert_uint_eq(ms.bytes_marked, gc_size(small) + gc_size(big));
    mark_destroy(&ms);

    /* The last byte of each marks it too; nothing is counted twice. */
    clear_marks();
    uintptr_t last[] = {(uintptr_t)(small + gc_size(small) - 1),
                        (uintptr_t)(big + gc_size(big) - 1), (uintptr_t)small,
                        (uintptr_t)big};
    mark_from(&ms, 1024, last, 4);
    ck_assert_uint_eq(ms.objects_marked, 2);
    mark_destroy(&ms);
    clear_marks();
}
END_TEST

/* [lo, hi) means what it says: the word at hi is not read; words outside the heap and
 * pointers into the heap's gaps are ignored. */
START_TEST(test_range_bounds_and_junk)
{
    char *x = gc_malloc(32), *y = gc_malloc(32);
    int local;
    uintptr_t roots[] = {(uintptr_t)x, (uintptr_t)y};
    struct mark_state ms;
    mark_from(&ms, 1024, roots, 1);
    ck_assert(mark_is_marked((uintptr_t)x));
    ck_assert(!mark_is_marked((uintptr_t)y));
    ck_assert_uint_eq(ms.bytes_scanned, sizeof(uintptr_t) + gc_size(x));   /* x scanned too */
    mark_destroy(&ms);
    clear_marks();

    uintptr_t junk[] = {0, 1, (uintptr_t)&local, (uintptr_t)&list_head,
                        AO_load(&heap.lo) - 8, AO_load(&heap.hi), UINTPTR_MAX,
                        (uintptr_t)-4096};
    mark_from(&ms, 1024, junk, sizeof junk / sizeof junk[0]);
    ck_assert_uint_eq(ms.objects_marked, 0);
    ck_assert_uint_eq(marks_in_heap(), 0);
    mark_destroy(&ms);

    ck_assert(!mark_is_marked(0));
    ck_assert(!mark_is_marked((uintptr_t)&local));
}
END_TEST

/* Before the first arena is mapped the heap's bounds are empty (lo = UINTPTR_MAX,
 * hi = 0): no word is a heap pointer, all-ones included, and a cycle has nothing to
 * do.  (Stacks and data segments hold -1 often enough.) */
START_TEST(test_scan_empty_heap)
{
    ck_assert_msg(heap.arenas_mapped == 0, "precondition: no arena mapped yet");
    int local;
    uintptr_t junk[] = {UINTPTR_MAX, UINTPTR_MAX - 7, UINTPTR_MAX - 4095, 0, 1,
                        (uintptr_t)&local, (uintptr_t)&list_head, (uintptr_t)1 << 46};
    struct mark_state ms;
    mark_from(&ms, 1024, junk, sizeof junk / sizeof junk[0]);
    ck_assert_uint_eq(ms.objects_marked, 0);
    mark_destroy(&ms);

    uint64_t n = AO_load(&cycle.num_gc);
    gc_collect();
    ck_assert_uint_eq(AO_load(&cycle.num_gc), n + 1);
    ck_assert_uint_eq(heap.pages_inuse, 0);
}
END_TEST

/* ---- noscan objects are marked, never scanned -------------------------------------------- */

START_TEST(test_atomic_not_scanned)
{
    void **atom = gc_malloc_atomic(64);
    void **scan = gc_malloc(64);
    void **big_atom = gc_malloc_atomic(40000);
    void *x = gc_malloc(32), *y = gc_malloc(32), *z = gc_malloc(32);
    atom[0] = x;            /* only reference to x: inside a noscan object */
    scan[0] = y;            /* only reference to y: inside a scanned object */
    big_atom[4000] = z;     /* only reference to z: inside a large noscan object */
    ck_assert_uint_eq(heap_span_of((uintptr_t)atom)->noscan, 1);
    ck_assert_uint_eq(heap_span_of((uintptr_t)big_atom)->noscan, 1);

    struct mark_state ms;
    uintptr_t roots[] = {(uintptr_t)atom, (uintptr_t)scan, (uintptr_t)big_atom};
    mark_from(&ms, 1024, roots, 3);
    ck_assert(mark_is_marked((uintptr_t)atom));
    ck_assert(mark_is_marked((uintptr_t)scan));
    ck_assert(mark_is_marked((uintptr_t)big_atom));
    ck_assert(mark_is_marked((uintptr_t)y));
    ck_assert_msg(!mark_is_marked((uintptr_t)x), "object reachable only from inside a "
                  "gc_malloc_atomic object was marked: it was scanned");
    ck_assert_msg(!mark_is_marked((uintptr_t)z), "object reachable only from inside a large "
                  "gc_malloc_atomic object was marked: it was scanned");
    ck_assert_uint_eq(ms.objects_marked, 4);
    /* Only the roots and the scanned objects (scan, y) were read. */
    ck_assert_uint_eq(ms.bytes_scanned, sizeof roots + gc_size(scan) + gc_size(y));
    mark_destroy(&ms);

    /* The same through the overflow rescan, which must skip noscan spans too. */
    clear_marks();
    void **v = gc_malloc(64 * sizeof *v);
    for (int i = 0; i < 64; i++)
        v[i] = gc_malloc(16);
    v[0] = atom;
    v[1] = big_atom;
    uintptr_t root[1] = {(uintptr_t)v};
    mark_from(&ms, 2, root, 1);
    ck_assert(mark_is_marked((uintptr_t)atom));
    ck_assert(mark_is_marked((uintptr_t)big_atom));
    ck_assert(!mark_is_marked((uintptr_t)x));
    ck_assert(!mark_is_marked((uintptr_t)z));
    ck_assert_uint_eq(ms.objects_marked, 65);
    mark_destroy(&ms);
    clear_marks();
}
END_TEST

/* Tiny noscan objects share 16-byte blocks: a pointer to any of them marks the block. */
START_TEST(test_tiny_block_marked)
{
    alloc_flush_cache(alloc_self);   /* start a fresh tiny block */
    char *t1 = gc_malloc_atomic(4), *t2 = gc_malloc_atomic(4);
    ck_assert_ptr_eq(t2, t1 + 4);
    struct mark_state ms;
    uintptr_t roots[1] = {(uintptr_t)t2};
    mark_from(&ms, 64, roots, 1);
    ck_assert_uint_eq(ms.objects_marked, 1);
    ck_assert(mark_is_marked((uintptr_t)t1));   /* same block */
    mark_destroy(&ms);
    clear_marks();
}
END_TEST

static Suite *mark_suite(void)
{
    Suite *s = suite_create("mark");
    TCase *tc;

    tc = tcase_create("depth");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_long_list);
    tcase_add_test(tc, test_steps_scan_each_once);
    tcase_add_test(tc, test_unreachable_lists_freed);
    suite_add_tcase(s, tc);

    tc = tcase_create("overflow");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_overflow_recovers);
    suite_add_tcase(s, tc);

    tc = tcase_create("empty");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_scan_empty_heap);
    suite_add_tcase(s, tc);

    tc = tcase_create("pointers");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_free_slot_not_marked);
    tcase_add_test(tc, test_interior_pointers);
    tcase_add_test(tc, test_range_bounds_and_junk);
    tcase_add_test(tc, test_atomic_not_scanned);
    tcase_add_test(tc, test_tiny_block_marked);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(mark_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
