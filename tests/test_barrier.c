/* test_barrier.c - unit tests for the write barrier: GC_WRITE (include/tricolor.h)
 * and gc/barrier.c's gc_write_range, gc_memcpy, gc_memmove and gc_memset.
 *
 * GC_WRITE must store exactly like a plain assignment, for every pointer type and
 * lvalue shape, evaluating its lvalue and its value once each, whether or not the
 * barrier is active.  The bulk calls must behave byte for byte like their libc
 * counterparts (return value included) on heap and non-heap memory, with and without
 * the barrier.  The barrier flag is clear whenever no cycle is running.
 *
 * Some tests set gc_barrier_active_ by hand to run the slow path as a concurrent
 * mark would; in this build its shading is a no-op, so only the stores are observable.
 */
#include "internal.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *next;
    int value;
    char *name;
    void *any;
    struct node *kids[4];
};

static int side_effects;
static int *bump_and_return(int *p)
{
    side_effects++;
    return p;
}

static void set_barrier(int on)
{
    gc_barrier_active_ = on;
}

/* ---- GC_WRITE ------------------------------------------------------------------- */

static void write_various_types(void)
{
    struct node *a = gc_malloc(sizeof *a), *b = gc_malloc(sizeof *b);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    char *s = gc_strdup("hello");
    int x = 0;
    int *ip = NULL;
    char **cpp = gc_malloc(4 * sizeof *cpp);
    void (*fp)(void) = NULL;

    GC_WRITE(a->next, b);
    ck_assert_ptr_eq(a->next, b);
    GC_WRITE(a->name, s);
    ck_assert_ptr_eq(a->name, s);
    ck_assert_str_eq(a->name, "hello");
    GC_WRITE(a->any, (void *)&x);
    ck_assert_ptr_eq(a->any, &x);
    GC_WRITE(ip, &x);
    ck_assert_ptr_eq(ip, &x);
    GC_WRITE(cpp[2], s);
    ck_assert_ptr_eq(cpp[2], s);
    ck_assert_ptr_null(cpp[1]);
    ck_assert_ptr_null(cpp[3]);
    GC_WRITE(fp, (void (*)(void))abort);   /* a function pointer */
    ck_assert(fp == (void (*)(void))abort);
    GC_WRITE(a->next->next, a);            /* through a chain: b->next = a */
    ck_assert_ptr_eq(b->next, a);
    GC_WRITE(a->next, NULL);
    ck_assert_ptr_null(a->next);
    GC_WRITE(a->kids[3], b);
    ck_assert_ptr_eq(a->kids[3], b);
    /* Non-heap destinations are fine too. */
    static struct node global;
    GC_WRITE(global.next, a);
    ck_assert_ptr_eq(global.next, a);
    GC_WRITE(global.next, NULL);
    ck_assert_ptr_null(global.next);
    /* Writing an integer-typed uintptr_t lvalue with a pointer-sized value. */
    uintptr_t u = 0;
    GC_WRITE(u, (uintptr_t)a);
    ck_assert_uint_eq(u, (uintptr_t)a);
}

START_TEST(write_stores_inactive)
{
    ck_assert_int_eq(gc_barrier_active_, 0);
    write_various_types();
}
END_TEST

START_TEST(write_stores_active)
{
    set_barrier(1);
    write_various_types();
    set_barrier(0);
}
END_TEST

/* The lvalue and the value are evaluated once each. */
static void write_once(void)
{
    void **a = gc_malloc(8 * sizeof *a);
    void *v[8];
    for (int k = 0; k < 8; k++)
        v[k] = gc_malloc(16);
    int i = 0, j = 0;
    GC_WRITE(a[i++], v[j++]);
    ck_assert_int_eq(i, 1);
    ck_assert_int_eq(j, 1);
    ck_assert_ptr_eq(a[0], v[0]);
    ck_assert_ptr_null(a[1]);
    GC_WRITE(a[i++], v[j++]);
    GC_WRITE(a[i++], v[j++]);
    ck_assert_int_eq(i, 3);
    ck_assert_int_eq(j, 3);
    ck_assert_ptr_eq(a[1], v[1]);
    ck_assert_ptr_eq(a[2], v[2]);
    ck_assert_ptr_null(a[3]);

    /* Through a pointer-returning call in the lvalue. */
    int **cell = gc_malloc(sizeof *cell);
    int target = 5;
    side_effects = 0;
    int *holder[1] = {NULL};
    GC_WRITE(*(int **)bump_and_return((int *)(void *)&holder[0]), &target);
    ck_assert_int_eq(side_effects, 1);
    ck_assert_ptr_eq(holder[0], &target);
    side_effects = 0;
    GC_WRITE(*cell, bump_and_return(&target));
    ck_assert_int_eq(side_effects, 1);
    ck_assert_ptr_eq(*cell, &target);

    /* Pre-increment of a pointer in the lvalue. */
    void **cursor = a + 3;
    GC_WRITE(*cursor++, v[5]);
    ck_assert_ptr_eq(cursor, a + 4);
    ck_assert_ptr_eq(a[3], v[5]);
    ck_assert_ptr_null(a[4]);
}

START_TEST(write_evaluates_once_inactive)
{
    ck_assert_int_eq(gc_barrier_active_, 0);
    write_once();
}
END_TEST

/* The same with the barrier on, as during a concurrent mark: the contract is the
 * same, the host's code cannot know which phase it runs in. */
START_TEST(write_evaluates_once_active)
{
    set_barrier(1);
    write_once();
    set_barrier(0);
}
END_TEST

/* ---- bulk copies ---------------------------------------------------------------------- */

static unsigned rng_state = 12345;
static unsigned rnd(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

static void fill_random(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)rnd();
}

enum { BUF = 1024 };

/* Run many random copies on a (heap or not) buffer and a malloc'd twin. */
static void compare_bulk(unsigned char *mem)
{
    unsigned char *twin = malloc(BUF), *src = malloc(BUF);
    ck_assert_ptr_nonnull(twin);
    ck_assert_ptr_nonnull(src);
    fill_random(mem, BUF);
    memcpy(twin, mem, BUF);
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = rnd() % 300, d = rnd() % (BUF - n), s = rnd() % (BUF - n);
        void *r;
        switch (rnd() % 4) {
        case 0:   /* memcpy from an outside buffer */
            fill_random(src, BUF);
            r = gc_memcpy(mem + d, src + s, n);
            ck_assert_ptr_eq(r, mem + d);
            memcpy(twin + d, src + s, n);
            break;
        case 1:   /* memmove inside the buffer, overlapping either way */
            r = gc_memmove(mem + d, mem + s, n);
            ck_assert_ptr_eq(r, mem + d);
            memmove(twin + d, twin + s, n);
            break;
        case 2: {
            int c = (int)(rnd() % 512) - 128;   /* converted to unsigned char, as memset */
            r = gc_memset(mem + d, c, n);
            ck_assert_ptr_eq(r, mem + d);
            memset(twin + d, c, n);
            break;
        }
        default:   /* memcpy inside the buffer, non-overlapping */
            if (d + n <= s || s + n <= d) {
                r = gc_memcpy(mem + d, mem + s, n);
                ck_assert_ptr_eq(r, mem + d);
                memcpy(twin + d, twin + s, n);
            }
            break;
        }
        ck_assert_msg(memcmp(mem, twin, BUF) == 0, "buffers differ after iteration %d", iter);
    }
    /* Overlap by one byte and by all but one, both directions. */
    for (size_t shift = 1; shift < 16; shift++) {
        gc_memmove(mem + shift, mem, 512);
        memmove(twin + shift, twin, 512);
        gc_memmove(mem, mem + shift, 511);
        memmove(twin, twin + shift, 511);
        ck_assert(memcmp(mem, twin, BUF) == 0);
    }
    /* Zero length is a no-op and returns dst. */
    ck_assert_ptr_eq(gc_memcpy(mem + 3, src, 0), mem + 3);
    ck_assert_ptr_eq(gc_memmove(mem + 5, mem, 0), mem + 5);
    ck_assert_ptr_eq(gc_memset(mem + 7, 0xFF, 0), mem + 7);
    ck_assert(memcmp(mem, twin, BUF) == 0);
    free(twin);
    free(src);
}

static void bulk_all_memories(void)
{
    /* Heap: scanned and noscan objects, and a large object. */
    compare_bulk(gc_malloc(BUF));
    compare_bulk(gc_malloc_atomic(BUF));
    unsigned char *large = gc_malloc(100 << 10);
    compare_bulk(large + 4096 + 3);
    /* Not heap: malloc, the stack, a global. */
    unsigned char *m = malloc(BUF + 1);
    compare_bulk(m + 1);
    free(m);
    unsigned char stack_buf[BUF];
    compare_bulk(stack_buf);
    static unsigned char global_buf[BUF];
    compare_bulk(global_buf);
}

START_TEST(bulk_like_libc_inactive)
{
    ck_assert_int_eq(gc_barrier_active_, 0);
    bulk_all_memories();
}
END_TEST

START_TEST(bulk_like_libc_active)
{
    set_barrier(1);
    bulk_all_memories();
    set_barrier(0);
}
END_TEST

/* Heap pointers copied with the bulk calls are real copies: the objects they point
 * to stay reachable through the destination after a collection. */
START_TEST(bulk_copied_pointers_keep_objects)
{
    enum { N = 64 };
    void **src = gc_malloc(N * sizeof *src), **dst = gc_malloc(N * sizeof *dst);
    uintptr_t hidden[N];
    for (int i = 0; i < N; i++) {
        src[i] = gc_malloc(48);
        *(int *)src[i] = i;
        hidden[i] = (uintptr_t)src[i] ^ 0xA5A5A5A5A5A5A5A5u;
    }
    gc_memcpy(dst, src, N * sizeof *src);
    gc_memset(src, 0, N * sizeof *src);
    gc_collect();
    for (int i = 0; i < N; i++) {
        void *p = (void *)(hidden[i] ^ 0xA5A5A5A5A5A5A5A5u);
        ck_assert_ptr_eq(dst[i], p);
        ck_assert_ptr_eq(gc_base(p), p);
        ck_assert_int_eq(*(int *)p, i);
    }
    gc_memmove(dst + 1, dst, (N - 1) * sizeof *dst);
    ck_assert_ptr_eq(dst[0], dst[1]);
}
END_TEST

/* ---- gc_write_range -------------------------------------------------------------- */

START_TEST(write_range_harmless)
{
    unsigned char *h = gc_malloc(256), *twin = malloc(256);
    fill_random(h, 256);
    memcpy(twin, h, 256);
    /* Inactive: any range at all, even unmapped or absurd, is ignored. */
    ck_assert_int_eq(gc_barrier_active_, 0);
    gc_write_range(NULL, 0);
    gc_write_range(NULL, 4096);
    gc_write_range((void *)1, 12345);
    gc_write_range((void *)(uintptr_t)0xdeadbeef0000ull, SIZE_MAX);
    gc_write_range(h, 256);
    gc_write_range(h + 3, 5);
    ck_assert(memcmp(h, twin, 256) == 0);

    /* Active: valid memory of any alignment and length is read, never changed. */
    set_barrier(1);
    for (size_t off = 0; off < 16; off++)
        for (size_t len = 0; len < 40; len++)
            gc_write_range(h + off, len);
    gc_write_range(h, 256);
    gc_write_range(h + 255, 1);
    gc_write_range(NULL, 0);
    unsigned char local[64];
    memset(local, 0x77, sizeof local);
    gc_write_range(local + 1, 62);
    static void *gptr[8];
    gc_write_range(gptr, sizeof gptr);
    set_barrier(0);
    ck_assert(memcmp(h, twin, 256) == 0);
    for (size_t i = 0; i < sizeof local; i++)
        ck_assert_int_eq(local[i], 0x77);
    free(twin);
}
END_TEST

/* ---- the flag ---------------------------------------------------------------------- */

static volatile int flag_in_hook = -1;
static void hook(const struct gc_cycle_info *info, void *arg)
{
    (void)info;
    (void)arg;
    flag_in_hook = gc_barrier_active_;
}

START_TEST(flag_clear_outside_cycles)
{
    ck_assert_int_eq(gc_barrier_active_, 0);
    ck_assert_int_eq(cycle.phase, PHASE_OFF);
    gc_set_cycle_hook(hook, NULL);
    for (int i = 0; i < 5; i++) {
        void *volatile p = gc_malloc(1000);
        (void)p;
        gc_collect();
        ck_assert_int_eq(gc_barrier_active_, 0);
        ck_assert_int_eq(flag_in_hook, 0);
        ck_assert_int_eq(cycle.phase, PHASE_OFF);
    }
    /* Automatic cycles too: allocate past a few heap goals.  (In concurrent mode they
     * mark while this thread runs, so the flag is legitimately on at times.) */
    uint32_t before = (uint32_t)AO_load(&cycle.num_gc);
    bool concurrent = opt.gcconcurrent && !opt.gcstoptheworld;
    for (int i = 0; i < 20000; i++) {
        void *volatile p = gc_malloc(1024);
        (void)p;
        if (!concurrent)
            ck_assert_int_eq(gc_barrier_active_, 0);
    }
    ck_assert_uint_gt((uint32_t)AO_load(&cycle.num_gc), before);
    ck_assert_int_eq(flag_in_hook, 0);
    gc_set_cycle_hook(NULL, NULL);
}
END_TEST

static Suite *barrier_suite(void)
{
    Suite *s = suite_create("barrier");
    TCase *tc = tcase_create("gc_write");
    tcase_add_test(tc, write_stores_inactive);
    tcase_add_test(tc, write_stores_active);
    tcase_add_test(tc, write_evaluates_once_inactive);
    tcase_add_test(tc, write_evaluates_once_active);
    suite_add_tcase(s, tc);

    tc = tcase_create("bulk");
    tcase_add_test(tc, bulk_like_libc_inactive);
    tcase_add_test(tc, bulk_like_libc_active);
    tcase_add_test(tc, bulk_copied_pointers_keep_objects);
    tcase_add_test(tc, write_range_harmless);
    suite_add_tcase(s, tc);

    tc = tcase_create("flag");
    tcase_add_test(tc, flag_clear_outside_cycles);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    gc_init();
    SRunner *sr = srunner_create(barrier_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
