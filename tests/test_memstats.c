/* test_memstats.c - every gc_read_memstats invariant of doc/api.md, on many snapshots.
 *
 * Whole-program test against the public library.  Each snapshot is checked for:
 * alloc == heap_alloc; heap_sys == heap_idle + heap_inuse; heap_released <= heap_idle;
 * heap_objects == mallocs - frees; sys == the sum of every *_sys field; heap_alloc <=
 * heap_inuse; pause_total_ns == the sum of pause_ns while num_gc <= 256; the latest
 * pause (pause_ns[(num_gc + 255) % 256]) nonzero once a cycle ran; by_size sizes
 * increasing and the by_size counts within the totals; lookups == 0; *_inuse <= *_sys;
 * and, against the previous snapshot of the same reader, mallocs, frees, total_alloc,
 * num_gc, num_forced_gc, pause_total_ns and last_gc never going down.
 * Snapshots come from a single-threaded churn and from a sampler thread that reads in
 * a loop while two other threads allocate and free.  Also: num_forced_gc counts
 * gc_collect and gc_free_os_memory; next_gc >= 4 MB at GCPERCENT 100; last_gc close to
 * the wall clock; gc_free_os_memory raises heap_released; enable_gc follows
 * gc_disable and GCPERCENT=off; and the median cost of gc_read_memstats.
 */
#define _GNU_SOURCE
#include <tricolor.h>

#include <check.h>
#define TESTUTIL_OWN_RNG
#include "testutil.h"
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#define MiB ((uint64_t)1 << 20)

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdu;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53u;
    x ^= x >> 33;
    return x;
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1du;
}

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the invariants ----------------------------------------------------------------- */

struct violation {
    long count;
    char first[512];
};

static void violate(struct violation *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void violate(struct violation *v, const char *fmt, ...)
{
    if (v->count++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->first, sizeof v->first, fmt, ap);
        va_end(ap);
    }
}

#define CHECK(v, cond, ...)                                                               \
    do {                                                                                  \
        if (!(cond))                                                                      \
            violate((v), __VA_ARGS__);                                                    \
    } while (0)

#define U(x) ((unsigned long long)(x))

/* Everything that must hold in one snapshot. */
static void check_snapshot(const struct gc_memstats *m, struct violation *v)
{
    CHECK(v, m->alloc == m->heap_alloc, "alloc %llu != heap_alloc %llu", U(m->alloc),
          U(m->heap_alloc));
    CHECK(v, m->heap_sys == m->heap_idle + m->heap_inuse,
          "heap_sys %llu != heap_idle %llu + heap_inuse %llu", U(m->heap_sys), U(m->heap_idle),
          U(m->heap_inuse));
    CHECK(v, m->heap_released <= m->heap_idle, "heap_released %llu > heap_idle %llu",
          U(m->heap_released), U(m->heap_idle));
    CHECK(v, m->heap_objects == m->mallocs - m->frees,
          "heap_objects %llu != mallocs %llu - frees %llu", U(m->heap_objects), U(m->mallocs),
          U(m->frees));
    CHECK(v, m->frees <= m->mallocs, "frees %llu > mallocs %llu", U(m->frees), U(m->mallocs));
    uint64_t sum = m->heap_sys + m->stack_sys + m->mspan_sys + m->mcache_sys +
                   m->buck_hash_sys + m->gc_sys + m->other_sys;
    CHECK(v, m->sys == sum, "sys %llu != sum of *_sys %llu", U(m->sys), U(sum));
    CHECK(v, m->heap_alloc <= m->heap_inuse, "heap_alloc %llu > heap_inuse %llu",
          U(m->heap_alloc), U(m->heap_inuse));
    CHECK(v, m->heap_alloc <= m->total_alloc, "heap_alloc %llu > total_alloc %llu",
          U(m->heap_alloc), U(m->total_alloc));
    CHECK(v, m->stack_inuse <= m->stack_sys, "stack_inuse > stack_sys");
    CHECK(v, m->mspan_inuse <= m->mspan_sys, "mspan_inuse %llu > mspan_sys %llu",
          U(m->mspan_inuse), U(m->mspan_sys));
    CHECK(v, m->mcache_inuse <= m->mcache_sys, "mcache_inuse %llu > mcache_sys %llu",
          U(m->mcache_inuse), U(m->mcache_sys));
    CHECK(v, m->lookups == 0, "lookups %llu", U(m->lookups));
    CHECK(v, m->num_forced_gc <= m->num_gc, "num_forced_gc %u > num_gc %u", m->num_forced_gc,
          m->num_gc);
    CHECK(v, m->gc_cpu_fraction >= 0.0 && m->gc_cpu_fraction <= 1.0, "gc_cpu_fraction %g",
          m->gc_cpu_fraction);
    if (m->num_gc <= 256) {
        uint64_t psum = 0;
        for (int i = 0; i < 256; i++)
            psum += m->pause_ns[i];
        CHECK(v, m->pause_total_ns == psum, "pause_total_ns %llu != sum of pause_ns %llu (num_gc %u)",
              U(m->pause_total_ns), U(psum), m->num_gc);
        for (uint32_t i = m->num_gc; i < 256; i++)
            CHECK(v, m->pause_ns[i] == 0 && m->pause_end[i] == 0,
                  "pause slot %u filled with only %u cycles", i, m->num_gc);
    } else {
        uint64_t psum = 0;
        for (int i = 0; i < 256; i++)
            psum += m->pause_ns[i];
        CHECK(v, m->pause_total_ns >= psum, "pause_total_ns %llu < the last 256 pauses %llu",
              U(m->pause_total_ns), U(psum));
    }
    if (m->num_gc > 0) {
        uint32_t latest = (m->num_gc + 255) % 256;
        CHECK(v, m->pause_ns[latest] > 0, "latest pause_ns[%u] is 0 (num_gc %u)", latest,
              m->num_gc);
        CHECK(v, m->pause_end[latest] > 0, "latest pause_end[%u] is 0", latest);
        CHECK(v, m->last_gc > 0, "last_gc 0 after %u cycles", m->num_gc);
        uint64_t d = m->last_gc > m->pause_end[latest] ? m->last_gc - m->pause_end[latest]
                                                       : m->pause_end[latest] - m->last_gc;
        CHECK(v, d < 1000000000u, "last_gc %llu and the latest pause_end %llu differ by %llu ns",
              U(m->last_gc), U(m->pause_end[latest]), U(d));
        CHECK(v, m->next_gc > 0 || !m->enable_gc, "next_gc 0 with collection enabled");
    } else {
        CHECK(v, m->pause_total_ns == 0 && m->last_gc == 0, "pauses before any cycle");
    }
    uint64_t bm = 0, bf = 0;
    for (int c = 1; c < GC_NUM_SIZE_CLASSES; c++) {
        CHECK(v, m->by_size[c].size > m->by_size[c - 1].size,
              "by_size[%d].size %u not above by_size[%d].size %u", c, m->by_size[c].size, c - 1,
              m->by_size[c - 1].size);
        CHECK(v, m->by_size[c].frees <= m->by_size[c].mallocs,
              "by_size[%d]: frees %llu > mallocs %llu", c, U(m->by_size[c].frees),
              U(m->by_size[c].mallocs));
        bm += m->by_size[c].mallocs;
        bf += m->by_size[c].frees;
    }
    CHECK(v, m->by_size[1].size >= 8 && m->by_size[GC_NUM_SIZE_CLASSES - 1].size == 32768,
          "by_size sizes run from %u to %u", m->by_size[1].size,
          m->by_size[GC_NUM_SIZE_CLASSES - 1].size);
    CHECK(v, bm <= m->mallocs, "sum of by_size mallocs %llu > mallocs %llu", U(bm),
          U(m->mallocs));
    CHECK(v, bf <= m->frees, "sum of by_size frees %llu > frees %llu", U(bf), U(m->frees));
}

/* What may only grow from one snapshot to the next (same reader). */
static void check_monotonic(const struct gc_memstats *a, const struct gc_memstats *b,
                            struct violation *v)
{
    CHECK(v, b->mallocs >= a->mallocs, "mallocs went down %llu -> %llu", U(a->mallocs),
          U(b->mallocs));
    CHECK(v, b->frees >= a->frees, "frees went down %llu -> %llu", U(a->frees), U(b->frees));
    CHECK(v, b->total_alloc >= a->total_alloc, "total_alloc went down %llu -> %llu",
          U(a->total_alloc), U(b->total_alloc));
    CHECK(v, b->num_gc >= a->num_gc, "num_gc went down %u -> %u", a->num_gc, b->num_gc);
    CHECK(v, b->num_forced_gc >= a->num_forced_gc, "num_forced_gc went down");
    CHECK(v, b->pause_total_ns >= a->pause_total_ns, "pause_total_ns went down");
    CHECK(v, b->last_gc >= a->last_gc, "last_gc went down");
    CHECK(v, b->num_gc > a->num_gc || b->pause_total_ns == a->pause_total_ns,
          "pause_total_ns changed without a cycle");
    for (int c = 1; c < GC_NUM_SIZE_CLASSES; c++)
        CHECK(v, b->by_size[c].mallocs >= a->by_size[c].mallocs &&
                     b->by_size[c].frees >= a->by_size[c].frees,
              "by_size[%d] counts went down", c);
}

static void assert_clean(const struct violation *v, const char *where, long snapshots)
{
    must_msg(v->count == 0, "%s: %ld of %ld snapshots broke an invariant; first: %s",
                  where, v->count, snapshots, v->first);
}

/* ---- single-threaded churn ------------------------------------------------------------- */

struct cell {
    struct cell *next;
    uint64_t id, check;
};

static struct cell *live;          /* a root */
static struct gc_memstats snap_a, snap_b;

START_TEST(test_invariants_churn)
{
    gc_init();
    struct violation v = {0};
    struct gc_memstats *prev = &snap_a, *cur = &snap_b;
    gc_read_memstats(prev);
    check_snapshot(prev, &v);
    must(prev->enable_gc);
    uint64_t seed = 7;
    long snapshots = 1;
    uint32_t collects = 0, start_forced = prev->num_forced_gc;
    for (int round = 0; round < 400; round++) {
        for (int i = 0; i < 500; i++) {
            uint64_t r = rnd(&seed);
            size_t n = r % 16 == 0 ? 32769 + r % 70000 : 1 + r % 2048;
            char *p = (r >> 20) & 1 ? gc_malloc(n) : gc_malloc_atomic(n);
            must(p != NULL);
            p[0] = 1;
            if (r % 5 == 0)
                gc_free(p);
            if (r % 11 == 0) {
                struct cell *c = gc_malloc(sizeof *c);
                must(c != NULL);
                c->id = r;
                c->check = mix(r);
                c->next = live;
                live = c;
            }
        }
        if (round % 50 == 0)
            live = NULL;   /* the list becomes garbage */
        if (round % 10 == 0) {
            gc_collect();
            collects++;
            gc_read_memstats(cur);
            uint64_t now = wall_ns();
            CHECK(&v, cur->last_gc <= now && now - cur->last_gc < 1000000000u,
                  "last_gc %llu is not just before now %llu", U(cur->last_gc), U(now));
            CHECK(&v, cur->pause_ns[(cur->num_gc + 255) % 256] > 0,
                  "no pause recorded for the cycle just forced");
            CHECK(&v, cur->num_forced_gc - start_forced == collects,
                  "num_forced_gc counted %u forced cycles for %u gc_collect calls",
                  cur->num_forced_gc - start_forced, collects);
        } else {
            gc_read_memstats(cur);
        }
        snapshots++;
        check_snapshot(cur, &v);
        check_monotonic(prev, cur, &v);
        struct gc_memstats *t = prev;
        prev = cur;
        cur = t;
    }
    for (struct cell *c = live; c; c = c->next)
        ck_assert_uint_eq(c->check, mix(c->id));
    assert_clean(&v, "single-threaded churn", snapshots);
    ck_assert_uint_gt(prev->num_gc, collects);   /* automatic cycles ran too */
}
END_TEST

/* ---- a sampler thread while two others allocate -------------------------------------------- */

#define NALLOCATORS 2
static volatile int allocators_done;
static struct violation sampler_v;
static long sampler_snapshots;
static uint32_t sampler_max_gc;

static void *sampler_main(void *arg)
{
    (void)arg;
    /* Never allocates: a thread unknown to the collector may read the stats. */
    static struct gc_memstats bufs[2];
    struct gc_memstats *prev = &bufs[0], *cur = &bufs[1];
    gc_read_memstats(prev);
    check_snapshot(prev, &sampler_v);
    sampler_snapshots = 1;
    while (!allocators_done) {
        gc_read_memstats(cur);
        sampler_snapshots++;
        check_snapshot(cur, &sampler_v);
        check_monotonic(prev, cur, &sampler_v);
        struct gc_memstats *t = prev;
        prev = cur;
        cur = t;
    }
    sampler_max_gc = prev->num_gc;
    return NULL;
}

struct alloc_arg {
    int index;
    long errors, lost;
    struct cell *keep;   /* the thread's live list, published for the end check */
};
static struct alloc_arg alloc_args[NALLOCATORS];

static void *allocator_main(void *arg)
{
    struct alloc_arg *a = arg;
    uint64_t seed = mix((uint64_t)a->index + 3);
    uint64_t t_end = mono_ns() + 2500000000u;   /* 2.5 s */
    long iter = 0;
    while (mono_ns() < t_end || iter < 100000) {
        for (int i = 0; i < 1000; i++, iter++) {
            uint64_t r = rnd(&seed);
            size_t n = r % 64 == 0 ? 32769 + r % 100000 : 1 + r % 1024;
            int atomic = !((r >> 20) & 1);
            char *p = atomic ? gc_malloc_atomic(n) : gc_malloc(n);
            if (!p) {
                a->errors++;
                continue;
            }
            p[n - 1] = 1;
            /* p is held by this thread: it must still be a heap object, whatever cycles
             * the other threads ran since it was allocated.  (Noscan objects under 16
             * bytes may share a block: test_api checks gc_base/gc_size for those.) */
            if (!gc_base(p) || gc_size(p) < n || ((n >= 16 || !atomic) && gc_base(p) != p))
                a->lost++;
            if (r % 7 == 0)
                gc_free(p);
            if (r % 13 == 0) {
                struct cell *c = gc_malloc(sizeof *c);
                if (!c) {
                    a->errors++;
                    continue;
                }
                c->id = r;
                c->check = mix(r);
                c->next = a->keep;
                GC_WRITE(a->keep, c);   /* a->keep lives in a global */
            }
            if (r % 4096 == 0)
                a->keep = NULL;
        }
        if (iter > 3000000)
            break;
    }
    return NULL;
}

START_TEST(test_invariants_concurrent)
{
    gc_init();
    gc_set_percent(50);
    pthread_t s, t[NALLOCATORS];
    ck_assert_int_eq(pthread_create(&s, NULL, sampler_main, NULL), 0);
    for (int i = 0; i < NALLOCATORS; i++) {
        alloc_args[i].index = i;
        ck_assert_int_eq(gc_thread_create(&t[i], NULL, allocator_main, &alloc_args[i]), 0);
    }
    /* The main thread reads too, and forces a few cycles. */
    struct violation v = {0};
    struct gc_memstats *m = malloc(sizeof *m);
    must(m != NULL);
    long mine = 0;
    for (int i = 0; i < 20; i++) {
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
        gc_collect();
        gc_read_memstats(m);
        check_snapshot(m, &v);
        mine++;
    }
    for (int i = 0; i < NALLOCATORS; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    allocators_done = 1;
    ck_assert_int_eq(pthread_join(s, NULL), 0);
    for (int i = 0; i < NALLOCATORS; i++) {
        ck_assert_int_eq(alloc_args[i].errors, 0);
        must_msg(alloc_args[i].lost == 0,
                      "allocator %d: %ld objects it still held were no longer heap objects",
                      i, alloc_args[i].lost);
        for (struct cell *c = alloc_args[i].keep; c; c = c->next)
            ck_assert_uint_eq(c->check, mix(c->id));
    }
    gc_read_memstats(m);
    check_snapshot(m, &v);
    printf("memstats: sampler took %ld snapshots over %u cycles\n", sampler_snapshots,
           m->num_gc);
    fflush(stdout);
    assert_clean(&sampler_v, "sampler thread", sampler_snapshots);
    assert_clean(&v, "main thread", mine);
    ck_assert_int_gt(sampler_snapshots, 1000);
    ck_assert_uint_gt(m->num_gc, 20);
    free(m);
}
END_TEST

/* ---- specific figures ----------------------------------------------------------------------- */

START_TEST(test_forced_counts)
{
    gc_init();
    void *p = gc_malloc(100);
    must(p != NULL);
    struct gc_memstats *m = malloc(sizeof *m);
    must(m != NULL);
    gc_read_memstats(m);
    uint32_t gc0 = m->num_gc, f0 = m->num_forced_gc;
    for (int i = 0; i < 7; i++)
        gc_collect();
    gc_free_os_memory();
    gc_read_memstats(m);
    ck_assert_uint_eq(m->num_forced_gc - f0, 8);
    ck_assert_uint_eq(m->num_gc - gc0, 8);   /* nothing allocated: no automatic cycle */
    for (uint32_t k = gc0 + 1; k <= m->num_gc; k++)
        ck_assert_uint_gt(m->pause_ns[(k + 255) % 256], 0);
    struct violation v = {0};
    check_snapshot(m, &v);
    assert_clean(&v, "after forced cycles", 1);
    free(m);
}
END_TEST

START_TEST(test_next_gc_floor)
{
    gc_init();
    void *p = gc_malloc(100);
    must(p != NULL);
    gc_set_percent(100);
    struct gc_memstats *m = malloc(sizeof *m);
    must(m != NULL);
    gc_read_memstats(m);
    ck_assert_uint_ge(m->next_gc, 4 * MiB);   /* before any cycle */
    gc_collect();
    gc_read_memstats(m);
    ck_assert_uint_ge(m->next_gc, 4 * MiB);
    /* It follows the live heap: with ~24 MB live the goal is at least twice that. */
    void **keep = gc_malloc(24 * sizeof(void *));
    must(keep != NULL);
    for (int i = 0; i < 24; i++) {
        keep[i] = gc_malloc_atomic(MiB);
        must(keep[i] != NULL);
    }
    gc_collect();
    gc_read_memstats(m);
    ck_assert_uint_ge(m->heap_alloc, 24 * MiB);
    ck_assert_uint_ge(m->next_gc, 48 * MiB);
    ck_assert_uint_le(m->next_gc, 64 * MiB);
    gc_set_percent(-1);
    gc_read_memstats(m);
    must(!m->enable_gc);
    gc_set_percent(100);
    gc_disable();
    gc_read_memstats(m);
    must(!m->enable_gc);
    gc_enable();
    gc_read_memstats(m);
    must(m->enable_gc);
    must(keep[23] != NULL);
    free(m);
}
END_TEST

START_TEST(test_free_os_memory_releases)
{
    gc_init();
    struct gc_memstats *m = malloc(sizeof *m);
    must(m != NULL);
    /* 48 MB of garbage in a mix of sizes, then a full collection: idle spans. */
    for (int i = 0; i < 48; i++) {
        char *p = gc_malloc(MiB);
        must(p != NULL);
        p[0] = 1;
        for (int k = 0; k < 64; k++) {
            char *q = gc_malloc(4096);
            must(q != NULL);
            q[0] = 1;
        }
    }
    gc_collect();
    gc_read_memstats(m);
    uint64_t released0 = m->heap_released, idle0 = m->heap_idle;
    ck_assert_uint_gt(idle0, 2 * MiB);
    gc_free_os_memory();
    gc_read_memstats(m);
    struct violation v = {0};
    check_snapshot(m, &v);
    assert_clean(&v, "after gc_free_os_memory", 1);
    /* The scavenger may have given some back already (and nothing may be left to
     * release); gc_free_os_memory gives back whatever it left. */
    must_msg(m->heap_released >= released0 && (m->heap_released > released0 ||
                                               released0 >= idle0 / 2),
                  "heap_released %llu -> %llu (heap_idle %llu)", U(released0),
                  U(m->heap_released), U(m->heap_idle));
    ck_assert_uint_ge(m->heap_released, m->heap_idle / 2);
    /* Reusing released memory takes it out of heap_released again. */
    for (int i = 0; i < 16; i++) {
        char *p = gc_malloc(MiB);
        must(p != NULL);
        p[0] = 1;
    }
    gc_read_memstats(m);
    check_snapshot(m, &v);
    assert_clean(&v, "after reuse", 1);
    free(m);
}
END_TEST

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

START_TEST(test_read_cost)
{
    gc_init();
    /* A heap with some history: every size class in use. */
    for (int i = 0; i < 100000; i++) {
        char *p = gc_malloc(1 + (size_t)i % 3000);
        must(p != NULL);
    }
    gc_collect();
    enum { N = 20001 };
    uint64_t *t = malloc(N * sizeof *t);
    struct gc_memstats *m = malloc(sizeof *m);
    must(t && m);
    for (int i = 0; i < N; i++) {
        uint64_t a = mono_ns();
        gc_read_memstats(m);
        t[i] = mono_ns() - a;
    }
    qsort(t, N, sizeof *t, cmp_u64);
    printf("memstats: gc_read_memstats median %.2f us, p99 %.2f us, max %.2f us (target 5 us)\n",
           t[N / 2] / 1000.0, t[N * 99 / 100] / 1000.0, t[N - 1] / 1000.0);
    fflush(stdout);
    must_msg(t[N / 2] < 50000, "median gc_read_memstats %llu ns", U(t[N / 2]));
    free(t);
    free(m);
}
END_TEST

static Suite *memstats_suite(void)
{
    Suite *s = suite_create("memstats");
    TCase *tc = tcase_create("invariants");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_invariants_churn);
    tcase_add_test(tc, test_invariants_concurrent);
    tcase_add_test(tc, test_forced_counts);
    tcase_add_test(tc, test_next_gc_floor);
    tcase_add_test(tc, test_free_os_memory_releases);
    tcase_add_test(tc, test_read_cost);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(memstats_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
