/* test_footprint.c - a small live heap under a lot of churn keeps a small footprint.
 *
 * Whole-program test against the public library, default GCPERCENT.  About 1 MB stays
 * live (64 slots of 8..24 KiB, each replaced now and then, contents checked at the end)
 * while 2 GiB of short-lived objects of mixed sizes go through the heap: sizes are
 * log-uniform from 16 B to 64 KiB, so there are many small objects and a steady stream
 * of large (> 32 KiB) ones, and a ring of the 32 most recent objects stays reachable a
 * little longer so that not everything dies at once.  gc_read_memstats is sampled every
 * 4 MiB allocated: the largest heap_sys seen must stay below 64 MiB and total_alloc must
 * reach 2 GiB.
 */
#define _GNU_SOURCE
#include <tricolor.h>

#include <check.h>
#define TESTUTIL_OWN_RNG
#include "testutil.h"
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#define MiB ((uint64_t)1 << 20)
#define GiB ((uint64_t)1 << 30)
#define NSLOTS 64
#define RING 32

static uint64_t rng_state = 0x13198a2e03707344u;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1du;
}

/* About log-uniform in [16, 65536]: a power of two 2^e, e in [4, 16), times [1, 2). */
static size_t churn_size(void)
{
    uint64_t r = rnd();
    unsigned e = 4 + (unsigned)(r % 12);
    size_t base = (size_t)1 << e;
    return base + (size_t)((r >> 8) % (base + 1));
}

struct slot_obj {
    uint64_t id, len;
    uint64_t words[];   /* words[i] = id * 1000003 + i */
};

static struct slot_obj **slots;    /* gc_malloc'd array, rooted here */
static void *ring[RING];           /* global roots */

static struct slot_obj *slot_new(uint64_t id)
{
    size_t len = (8192 + rnd() % 16384) / 8;
    struct slot_obj *o = gc_malloc(sizeof *o + len * 8);
    must(o != NULL);
    o->id = id;
    o->len = len;
    for (size_t i = 0; i < len; i++)
        o->words[i] = id * 1000003 + i;
    return o;
}

static int slot_ok(const struct slot_obj *o)
{
    if (!o || gc_base(o) != (const void *)o)
        return 0;
    for (size_t i = 0; i < o->len; i++)
        if (o->words[i] != o->id * 1000003 + i)
            return 0;
    return 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

START_TEST(test_footprint)
{
    gc_init();
    if (getenv("GCPERCENT") || getenv("GCMEMLIMIT"))
        printf("footprint: note: GCPERCENT/GCMEMLIMIT set in the environment\n");
    slots = gc_malloc(NSLOTS * sizeof *slots);
    must(slots != NULL);
    uint64_t next_id = 1;
    for (int i = 0; i < NSLOTS; i++)
        slots[i] = slot_new(next_id++);

    struct gc_memstats *m = malloc(sizeof *m);
    must(m != NULL);
    gc_read_memstats(m);
    uint64_t start_total = m->total_alloc, start_gc = m->num_gc;
    uint64_t max_sys = 0, max_inuse = 0, max_alloc = 0, max_total_sys = 0, samples = 0;
    uint64_t requested = 0, next_sample = 0, nlarge = 0, nobjs = 0;
    double t0 = now_s();
    while (requested < 2 * GiB + 64 * MiB) {
        size_t n = churn_size();
        char *p = (rnd() & 3) ? gc_malloc(n) : gc_malloc_atomic(n);
        must(p != NULL);
        p[0] = (char)n;
        p[n - 1] = (char)n;
        requested += n;
        nobjs++;
        nlarge += n > 32768;
        ring[nobjs % RING] = p;
        if (rnd() % 512 == 0) {
            int i = (int)(rnd() % NSLOTS);
            GC_WRITE(slots[i], slot_new(next_id++));
        }
        if (requested >= next_sample) {
            next_sample = requested + 4 * MiB;
            gc_read_memstats(m);
            samples++;
            if (m->heap_sys > max_sys)
                max_sys = m->heap_sys;
            if (m->heap_inuse > max_inuse)
                max_inuse = m->heap_inuse;
            if (m->heap_alloc > max_alloc)
                max_alloc = m->heap_alloc;
            if (m->sys > max_total_sys)
                max_total_sys = m->sys;
        }
    }
    double secs = now_s() - t0;
    memset(ring, 0, sizeof ring);
    gc_collect();
    for (int i = 0; i < NSLOTS; i++)
        must_msg(slot_ok(slots[i]), "live slot %d corrupt after the churn", i);
    gc_read_memstats(m);
    if (m->heap_sys > max_sys)
        max_sys = m->heap_sys;
    printf("footprint: %.2f s, %" PRIu64 " objects (%" PRIu64 " large), total_alloc %" PRIu64
           " MiB, %" PRIu64 " cycles, %" PRIu64 " samples; max heap_sys %" PRIu64
           " MiB, max heap_inuse %" PRIu64 " MiB, max heap_alloc %" PRIu64 " MiB, max sys %" PRIu64
           " MiB\n",
           secs, nobjs, nlarge, (m->total_alloc - start_total) / MiB, m->num_gc - start_gc,
           samples, max_sys / MiB, max_inuse / MiB, max_alloc / MiB, max_total_sys / MiB);
    fflush(stdout);
    ck_assert_uint_ge(m->total_alloc, 2 * GiB);
    ck_assert_uint_gt(m->num_gc - start_gc, 100);
    ck_assert_uint_gt(nlarge, 1000);
    must_msg(max_inuse < 32 * MiB, "heap_inuse reached %" PRIu64 " MiB", max_inuse / MiB);
    must_msg(max_sys < 64 * MiB, "heap_sys reached %" PRIu64 " MiB (%" PRIu64 " bytes)",
                  max_sys / MiB, max_sys);
    free(m);
}
END_TEST

static Suite *footprint_suite(void)
{
    Suite *s = suite_create("footprint");
    TCase *tc = tcase_create("churn");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_footprint);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(footprint_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
