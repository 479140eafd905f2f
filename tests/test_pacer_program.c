/* test_pacer_program.c - the pacer, measured on whole programs (issue #4).
 *
 * Whole-program test against the public library.  Each case re-executes this program
 * (fork + exec of /proc/self/exe with "--child WORKLOAD ...") so that GCPERCENT and
 * GCMEMLIMIT are in the environment before gc_init; GCDEBUG (and GCPROCS) are passed
 * through unchanged, so the CI's GCDEBUG=gcstoptheworld=1 pass runs the same cases in
 * that mode.  The child runs the workload, prints its measurements as "key value"
 * lines on stdout, and the parent asserts on them and prints them on one line.
 *
 * The steady workload: a live set of L bytes of 32-byte linked nodes, in lists held by
 * a ring that is continually replaced, one list at a time (every node lives for L bytes
 * of allocation), with churn of several times L.  A cycle hook records each cycle's
 * gc_cycle_info; gc_read_memstats is sampled every 256 KiB allocated.
 *
 * percent     GCPERCENT 50, 100, 200: every cycle's heap at mark termination
 *             (heap_end) and the sampled heap_alloc stay within 10% of the goal; each
 *             goal is live + (live + roots) * GCPERCENT / 100 of the cycle before;
 *             a smaller GCPERCENT gives more cycles and a smaller peak heap.
 * memlimit    GCPERCENT=off GCMEMLIMIT=3L: cycles still run, and what the limit counts
 *             (doc/tuning.md: all mapped, less released = memstats sys - heap_released)
 *             stays under the limit + 5%.
 * overlimit   GCMEMLIMIT=L/2: the program completes within a deadline (no livelock),
 *             and memstats gc_cpu_fraction stays at or below 0.65.
 * scavenger   a burst of 256 MiB live is dropped and collected: RSS (/proc/self/statm)
 *             falls below 40% of its peak within 2 s and heap_released grows; then
 *             gc_free_os_memory leaves heap_released >= 90% of heap_idle.
 * setters     gc_set_percent and gc_set_memory_limit change memstats next_gc at once,
 *             from the calling thread and from another thread, and the next cycle
 *             aims at the new goal.
 *
 * TRICOLOR_PACER_VERBOSE=1 makes the steady workload list every cycle on stderr.
 *
 * A check the current collector is known to miss is an expected failure (XFAIL): the
 * assertion stays, its figures are printed with "XFAIL", and it fails the test only
 * when TRICOLOR_PACER_STRICT=1; when it holds, "XPASS" is printed (the mark can go once
 * it holds in every run).
 */
#define _GNU_SOURCE
#include "config.h"

#include <tricolor.h>

#include <check.h>
#define TESTUTIL_OWN_RNG
#include "testutil.h"
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KiB ((uint64_t)1 << 10)
#define MiB ((uint64_t)1 << 20)

/* The live set of the steady workload.  A debug build runs the heap verifier in every
 * cycle (and the CI runs it under ASan too): half the size keeps it quick. */
#if GC_DEBUG_BUILD
#define LIVE_BYTES (16 * MiB)
#else
#define LIVE_BYTES (32 * MiB)
#endif
#define CHURN_TIMES 16           /* churn = CHURN_TIMES * live, per percent run */
#define SAMPLE_EVERY (256 * KiB) /* memstats sampled this often (bytes allocated) */
#define OVERLIMIT_SECS 8.0       /* churn time with the live set over the limit */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ======================================================================================
 * The child: workloads.  Failures here exit 1 with a line on stderr.
 * ==================================================================================== */

static void child_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void child_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("test_pacer_program child: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void put(const char *key, double v)
{
    printf("%s %.17g\n", key, v);
}

/* ---- the cycle hook: every cycle's gc_cycle_info, and whether the churn was on --- */

#define MAX_CYCLES 8192
struct rec {
    struct gc_cycle_info ci;
    bool during;   /* the steady churn was running when the cycle ended */
};
static struct rec *recs;   /* malloc'd (MAX_CYCLES): not a root the collector scans */
static atomic_uint nrecs;
static atomic_bool measuring;

/* Runs on the collector thread (or the allocating one in stop-the-world mode), one
 * cycle after another: a plain store then a release of the count is enough. */
static void hook(const struct gc_cycle_info *ci, void *arg)
{
    (void)arg;
    unsigned n = atomic_load_explicit(&nrecs, memory_order_relaxed);
    if (!recs)
        return;
    if (n >= MAX_CYCLES)
        return;
    recs[n].ci = *ci;
    recs[n].during = atomic_load(&measuring);
    atomic_store_explicit(&nrecs, n + 1, memory_order_release);
}

static void hook_install(void)
{
    recs = calloc(MAX_CYCLES, sizeof *recs);
    if (!recs)
        child_fail("cannot allocate the cycle records");
    gc_set_cycle_hook(hook, NULL);
}

static unsigned recs_now(void)
{
    return atomic_load_explicit(&nrecs, memory_order_acquire);
}

/* ---- memstats sampling ------------------------------------------------------------- */

static struct gc_memstats ms;   /* 6 KiB: not on the stack */
static struct {
    uint64_t samples;
    uint64_t max_heap_alloc;
    double max_alloc_goal;      /* heap_alloc / next_gc, next_gc > 0 */
    uint64_t max_total;         /* sys - heap_released: what GCMEMLIMIT counts */
    uint64_t max_heap_sys;
} smp;
static uint64_t since_sample;

static void sample(void)
{
    gc_read_memstats(&ms);
    smp.samples++;
    if (ms.heap_alloc > smp.max_heap_alloc)
        smp.max_heap_alloc = ms.heap_alloc;
    if (ms.next_gc && (double)ms.heap_alloc / (double)ms.next_gc > smp.max_alloc_goal)
        smp.max_alloc_goal = (double)ms.heap_alloc / (double)ms.next_gc;
    uint64_t total = ms.sys - ms.heap_released;
    if (total > smp.max_total)
        smp.max_total = total;
    if (ms.heap_sys > smp.max_heap_sys)
        smp.max_heap_sys = ms.heap_sys;
}

/* ---- the steady live set: a ring of lists of 32-byte nodes ------------------------- */

struct node {
    struct node *next;
    uint64_t key;       /* list seed * 1000003 + position */
    uint64_t pad[2];
};

#define PER_LIST 1024
static struct node **ring;   /* gc_malloc'd, nlists slots; rooted here */
static size_t nlists;
static uint64_t *gens;       /* malloc'd: the generation of each list (no pointers) */
static uint64_t allocated;   /* bytes of nodes allocated so far */

static uint64_t list_seed(size_t i, uint64_t gen)
{
    return (uint64_t)i * 65537 + gen * 7919 + 1;
}

static struct node *build_list(uint64_t seed, bool sampling)
{
    struct node *head = NULL;
    for (uint64_t k = 0; k < PER_LIST; k++) {
        struct node *n = gc_malloc(sizeof *n);
        if (!n)
            child_fail("gc_malloc failed after %" PRIu64 " bytes", allocated);
        n->key = seed * 1000003 + k;
        n->next = head;   /* an initializing store into a fresh (zero) field */
        head = n;
        allocated += sizeof *n;
        since_sample += sizeof *n;
        if (sampling && since_sample >= SAMPLE_EVERY) {
            since_sample = 0;
            sample();
        }
    }
    return head;
}

static void check_lists(void)
{
    for (size_t i = 0; i < nlists; i++) {
        uint64_t seed = list_seed(i, gens[i]), k = PER_LIST;
        size_t count = 0;
        for (struct node *n = ring[i]; n; n = n->next) {
            k--;
            if (n->key != seed * 1000003 + k)
                child_fail("list %zu corrupt at node %zu", i, count);
            count++;
        }
        if (count != PER_LIST)
            child_fail("list %zu has %zu nodes, not %d", i, count, PER_LIST);
    }
}

static void ring_build(uint64_t live_bytes)
{
    nlists = live_bytes / (PER_LIST * sizeof(struct node));
    ring = gc_malloc(nlists * sizeof *ring);
    gens = calloc(nlists, sizeof *gens);
    if (!ring || !gens)
        child_fail("cannot allocate the ring");
    for (size_t i = 0; i < nlists; i++)
        GC_WRITE(ring[i], build_list(list_seed(i, 0), false));
}

/* Replace lists in ring order until churn_bytes more have been allocated, or for
 * max_secs seconds if that is not 0. */
static void ring_churn(uint64_t churn_bytes, double max_secs)
{
    uint64_t end = allocated + churn_bytes;
    double t_end = now_s() + max_secs;
    for (size_t i = 0; allocated < end; i = (i + 1) % nlists) {
        if (max_secs > 0 && now_s() >= t_end)
            break;
        gens[i]++;
        GC_WRITE(ring[i], build_list(list_seed(i, gens[i]), true));
    }
}

/* GCPERCENT's goal after cycle c, taking live bytes as its live heap. */
static uint64_t percent_goal(const struct gc_cycle_info *c, uint64_t live, int p)
{
    uint64_t roots = c->stacks_scanned + c->globals_scanned;
    uint64_t g = live + (live + roots) * (uint64_t)p / 100;
    uint64_t least = 4 * MiB * (uint64_t)p / 100;
    return g < least ? least : g;
}

/* The steady workload (cases percent, memlimit and overlimit): build, one forced cycle
 * so the goal starts from the real live set, churn (for churn_bytes, or max_secs when
 * that is not 0), report. */
static int child_steady(uint64_t live_bytes, uint64_t churn_bytes, double max_secs)
{
    double t0 = now_s();
    gc_init();
    hook_install();
    ring_build(live_bytes);
    gc_collect();
    gc_read_memstats(&ms);
    uint32_t gc0 = ms.num_gc;
    uint64_t total0 = ms.total_alloc;
    double t1 = now_s();
    since_sample = 0;
    atomic_store(&measuring, true);
    ring_churn(churn_bytes, max_secs);
    atomic_store(&measuring, false);
    double t2 = now_s();
    gc_read_memstats(&ms);
    sample();
    check_lists();

    /* The cycles that ran during the churn (none forced). */
    unsigned n = recs_now();
    uint64_t cycles = 0, peak_end = 0, max_goal = 0, min_goal = UINT64_MAX, sum_live = 0;
    uint64_t goal_checked = 0, goal_wrong = 0, goal_from_snapshot = 0, cpu_ns = 0, procs = 1;
    double max_ratio = 0, min_ratio = 1e9, worst_goal_dev = 0;
    bool verbose = getenv("TRICOLOR_PACER_VERBOSE") != NULL;
    for (unsigned i = 0; i < n; i++) {
        const struct gc_cycle_info *ci = &recs[i].ci;
        if (verbose)
            fprintf(stderr, "cycle %u%s%s: heap_start %" PRIu64 " heap_end %" PRIu64
                    " live %" PRIu64 " goal %" PRIu64 " (end/goal %.3f), mark %.2f ms\n",
                    ci->num, ci->forced ? " forced" : "", recs[i].during ? "" : " (not churn)",
                    ci->heap_start, ci->heap_end, ci->heap_live, ci->heap_goal,
                    ci->heap_goal ? (double)ci->heap_end / (double)ci->heap_goal : 0,
                    (double)ci->mark_ns / 1e6);
        if (!recs[i].during || ci->forced)
            continue;
        cycles++;
        procs = ci->procs;
        cpu_ns += ci->stw1_cpu_ns + ci->assist_cpu_ns + ci->background_cpu_ns +
                  ci->idle_cpu_ns + ci->stw2_cpu_ns;
        if (ci->heap_end > peak_end)
            peak_end = ci->heap_end;
        if (ci->heap_goal > max_goal)
            max_goal = ci->heap_goal;
        if (ci->heap_goal < min_goal)
            min_goal = ci->heap_goal;
        sum_live += ci->heap_live;
        double r = ci->heap_goal ? (double)ci->heap_end / (double)ci->heap_goal : 1e9;
        if (r > max_ratio)
            max_ratio = r;
        if (r < min_ratio)
            min_ratio = r;
        /* The goal from the cycle before, by GCPERCENT's formula (no memory limit).
         * "live" there is what that cycle marked, or, in a concurrent cycle, what was
         * reachable when its mark began: the objects allocated during the mark are
         * black (they survive that cycle) and the collector may leave them out, down
         * to half the marked bytes.  Either is accepted; in stop-the-world cycles the
         * two are the same and the goal must match exactly. */
        const char *pct = getenv("GCPERCENT");
        if (i > 0 && recs[i - 1].ci.num + 1 == ci->num && pct && !getenv("GCMEMLIMIT")) {
            int p = atoi(pct);
            const struct gc_cycle_info *pv = &recs[i - 1].ci;
            uint64_t black = pv->heap_end > pv->heap_start ? pv->heap_end - pv->heap_start : 0;
            uint64_t snap = pv->heap_live > black ? pv->heap_live - black : 0;
            if (snap < pv->heap_live / 2)
                snap = pv->heap_live / 2;
            uint64_t hi = percent_goal(pv, pv->heap_live, p), lo = percent_goal(pv, snap, p);
            goal_checked++;
            double dev = 0;
            if (ci->heap_goal > hi)
                dev = ((double)ci->heap_goal - (double)hi) / (double)hi;
            else if (ci->heap_goal < lo)
                dev = ((double)lo - (double)ci->heap_goal) / (double)lo;
            if (dev > worst_goal_dev)
                worst_goal_dev = dev;
            if (ci->heap_goal > hi || ci->heap_goal < lo)
                goal_wrong++;
            if (ci->heap_goal != hi)
                goal_from_snapshot++;
        }
    }
    put("secs_build", t1 - t0);
    put("secs_churn", t2 - t1);
    put("churn_bytes", (double)(ms.total_alloc - total0));
    put("num_gc_churn", (double)(ms.num_gc - gc0));
    put("cycles", (double)cycles);
    put("peak_end", (double)peak_end);
    put("max_goal", (double)max_goal);
    put("min_goal", (double)min_goal);
    put("mean_live", cycles ? (double)sum_live / (double)cycles : 0);
    put("max_end_goal", max_ratio);
    put("min_end_goal", cycles ? min_ratio : 0);
    put("goal_checked", (double)goal_checked);
    put("goal_wrong", (double)goal_wrong);
    put("worst_goal_dev", worst_goal_dev);
    put("goal_from_snapshot", (double)goal_from_snapshot);
    put("max_heap_alloc", (double)smp.max_heap_alloc);
    put("max_alloc_goal", smp.max_alloc_goal);
    put("max_total", (double)smp.max_total);
    put("max_heap_sys", (double)smp.max_heap_sys);
    put("samples", (double)smp.samples);
    put("gc_cpu_fraction", ms.gc_cpu_fraction);
    put("churn_gc_cpu", (t2 > t1 && procs) ? (double)cpu_ns / ((t2 - t1) * 1e9 * (double)procs) : 0);
    put("procs", (double)procs);
    put("next_gc", (double)ms.next_gc);
    return 0;
}

/* ---- the scavenger: a burst, dropped ------------------------------------------------ */

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (!f)
        child_fail("cannot open /proc/self/statm");
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        child_fail("cannot read /proc/self/statm");
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

#define BURST_LARGE_BYTES (64 * KiB)
static void **burst;   /* gc_malloc'd: the burst's large objects and list heads */

/* Half large objects, half lists of 256-byte nodes; every page written. */
static __attribute__((noinline)) void burst_fill(uint64_t bytes)
{
    size_t nlarge = (size_t)(bytes / 2 / BURST_LARGE_BYTES);
    size_t nsmall_lists = (size_t)(bytes / 2 / (256 * PER_LIST));
    burst = gc_malloc((nlarge + nsmall_lists) * sizeof *burst);
    if (!burst)
        child_fail("cannot allocate the burst table");
    for (size_t i = 0; i < nlarge; i++) {
        char *p = gc_malloc_atomic(BURST_LARGE_BYTES);
        if (!p)
            child_fail("burst: gc_malloc_atomic failed at %zu", i);
        memset(p, (int)(i & 0xff) | 1, BURST_LARGE_BYTES);
        GC_WRITE(burst[i], p);
    }
    for (size_t j = 0; j < nsmall_lists; j++) {
        void **head = NULL;
        for (int k = 0; k < PER_LIST; k++) {
            void **n = gc_malloc(256);
            if (!n)
                child_fail("burst: gc_malloc failed");
            n[0] = head;
            memset(n + 1, 0x5a, 256 - sizeof *n);
            head = n;
        }
        GC_WRITE(burst[nlarge + j], head);
    }
}

static int child_scavenger(uint64_t burst_bytes)
{
    gc_init();
    gc_read_memstats(&ms);
    uint64_t rss0 = rss_bytes();
    burst_fill(burst_bytes);
    uint64_t rss_peak = rss_bytes();
    gc_read_memstats(&ms);
    uint64_t heap_alloc_peak = ms.heap_alloc, released0 = ms.heap_released;
    burst = NULL;   /* drop it all */
    clobber_stack();
    gc_collect();
    gc_collect();
    double t0 = now_s(), waited = 0;
    uint64_t rss = rss_bytes();
    for (;;) {
        gc_read_memstats(&ms);
        rss = rss_bytes();
        waited = now_s() - t0;
        if ((rss < rss_peak * 4 / 10 && ms.heap_released > released0) || waited > 2.0)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    uint64_t released1 = ms.heap_released, idle1 = ms.heap_idle, heap_sys1 = ms.heap_sys;
    /* Then until the scavenger is done (heap_released steady for 50 ms), for the
     * record: where RSS settles before gc_free_os_memory. */
    for (int steady = 0; steady < 5 && now_s() - t0 < 2.0;) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        uint64_t before = ms.heap_released;
        gc_read_memstats(&ms);
        steady = ms.heap_released == before ? steady + 1 : 0;
    }
    uint64_t rss_settled = rss_bytes(), released_settled = ms.heap_released;
    uint64_t next_gc1 = ms.next_gc;
    gc_free_os_memory();
    gc_read_memstats(&ms);
    put("rss_start", (double)rss0);
    put("rss_peak", (double)rss_peak);
    put("heap_alloc_peak", (double)heap_alloc_peak);
    put("rss_after", (double)rss);
    put("wait_secs", waited);
    put("released_before", (double)released0);
    put("released_after", (double)released1);
    put("idle_after", (double)idle1);
    put("heap_sys_after", (double)heap_sys1);
    put("next_gc_after", (double)next_gc1);
    put("rss_settled", (double)rss_settled);
    put("released_settled", (double)released_settled);
    put("released_final", (double)ms.heap_released);
    put("idle_final", (double)ms.heap_idle);
    put("heap_sys_final", (double)ms.heap_sys);
    put("rss_final", (double)rss_bytes());
    return 0;
}

/* ---- the setters: at once, from any thread ------------------------------------------ */

struct setter_job {
    int percent;            /* gc_set_percent argument, or INT32_MIN for none */
    int64_t limit;          /* gc_set_memory_limit argument, or -2 for none */
    int old_percent;        /* what the call returned */
    int64_t old_limit;
    uint64_t next_gc;       /* memstats next_gc right after the call, on that thread */
};

static void *setter_main(void *arg)
{
    struct setter_job *j = arg;
    struct gc_memstats *m = malloc(sizeof *m);
    if (!m)
        child_fail("malloc");
    if (j->percent != INT32_MIN)
        j->old_percent = gc_set_percent(j->percent);
    if (j->limit != -2)
        j->old_limit = gc_set_memory_limit(j->limit);
    gc_read_memstats(m);
    j->next_gc = m->next_gc;
    free(m);
    return NULL;
}

static void set_from_thread(struct setter_job *j)
{
    pthread_t t;
    if (pthread_create(&t, NULL, setter_main, j) != 0)
        child_fail("pthread_create");
    pthread_join(t, NULL);
}

static uint64_t next_gc_now(void)
{
    gc_read_memstats(&ms);
    return ms.next_gc;
}

/* Allocate garbage until a cycle that is not forced has been reported; its goal. */
static uint64_t next_cycle_goal(void)
{
    unsigned n0 = recs_now();
    for (uint64_t i = 0; i < ((uint64_t)1 << 32); i++) {
        void *p = gc_malloc_atomic(4096);
        if (!p)
            child_fail("gc_malloc_atomic");
        unsigned n = recs_now();
        for (unsigned k = n0; k < n; k++)
            if (!recs[k].ci.forced)
                return recs[k].ci.heap_goal;
    }
    child_fail("no cycle ran");
}

static int child_setters(uint64_t live_bytes)
{
    gc_init();
    hook_install();
    ring_build(live_bytes);
    gc_collect();
    struct gc_cycle_info last = recs[recs_now() - 1].ci;   /* the forced cycle's */
    put("live", (double)last.heap_live);
    put("roots", (double)(last.stacks_scanned + last.globals_scanned));

    /* GCPERCENT 100 (the environment) -> 50, on this thread. */
    put("goal_100", (double)next_gc_now());
    put("want_100", (double)percent_goal(&last, last.heap_live, 100));
    put("ret_set_50", gc_set_percent(50));
    put("goal_50", (double)next_gc_now());
    put("want_50", (double)percent_goal(&last, last.heap_live, 50));

    /* -> 200, from another thread. */
    struct setter_job j = {.percent = 200, .limit = -2};
    set_from_thread(&j);
    put("ret_set_200", j.old_percent);
    put("goal_200_thread", (double)j.next_gc);
    put("goal_200", (double)next_gc_now());
    put("want_200", (double)percent_goal(&last, last.heap_live, 200));

    /* A memory limit below the GCPERCENT goal, from another thread: the goal falls to
     * the limit's at once.  Then a query (negative) changes nothing. */
    uint64_t limit = last.heap_live + last.heap_live / 2;
    struct setter_job k = {.percent = INT32_MIN, .limit = (int64_t)limit};
    set_from_thread(&k);
    put("limit", (double)limit);
    put("ret_set_limit", (double)k.old_limit);
    put("goal_limit_thread", (double)k.next_gc);
    put("goal_limit", (double)next_gc_now());
    put("ret_query_limit", (double)gc_set_memory_limit(-1));
    put("goal_after_query", (double)next_gc_now());
    put("floor", (double)(last.heap_live + (last.heap_live / 32 > MiB ? last.heap_live / 32 : MiB)));

    /* The next cycle aims at the goal in force: with the limit... */
    uint64_t before = next_gc_now();
    put("goal_before_cycle", (double)before);
    put("cycle_goal_limit", (double)next_cycle_goal());

    /* ...and with it removed again (on this thread), back to GCPERCENT 200's, from
     * a forced cycle's live heap (nothing allocated while it marked). */
    gc_collect();
    struct gc_cycle_info cur = recs[recs_now() - 1].ci;
    put("ret_unset_limit", (double)gc_set_memory_limit(INT64_MAX));
    put("goal_unlimited", (double)next_gc_now());
    put("want_unlimited", (double)percent_goal(&cur, cur.heap_live, 200));
    put("cycle_goal_unlimited", (double)next_cycle_goal());
    check_lists();
    return 0;
}

static int child_main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *w = argv[2];
    uint64_t a = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
    uint64_t b = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
    double c = argc > 5 ? strtod(argv[5], NULL) : 0;
    if (!strcmp(w, "steady"))
        return child_steady(a, b, c);
    if (!strcmp(w, "scavenger"))
        return child_scavenger(a);
    if (!strcmp(w, "setters"))
        return child_setters(a);
    child_fail("unknown workload %s", w);
}

/* ======================================================================================
 * The parent: run a child, collect its figures, assert.
 * ==================================================================================== */

#define MAX_KV 64
struct result {
    int n;
    char key[MAX_KV][32];
    double val[MAX_KV];
    double secs;            /* wall time of the child */
};

static double get(const struct result *r, const char *key)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->key[i], key))
            return r->val[i];
    ck_abort_msg("the child reported no \"%s\"", key);
    return 0;
}

static void parse(struct result *r, char *text)
{
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char key[32];
        double v;
        if (r->n < MAX_KV && sscanf(line, "%31s %lf", key, &v) == 2) {
            strcpy(r->key[r->n], key);
            r->val[r->n++] = v;
        }
    }
}

/* Run "--child args..." with GCPERCENT and GCMEMLIMIT as given (NULL: unset); the
 * child must exit 0 within deadline_s seconds. */
static void run_child(struct result *r, const char *percent, const char *limit,
                      double deadline_s, const char *const *args)
{
    memset(r, 0, sizeof *r);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    double t0 = now_s();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (percent)
            setenv("GCPERCENT", percent, 1);
        else
            unsetenv("GCPERCENT");
        if (limit)
            setenv("GCMEMLIMIT", limit, 1);
        else
            unsetenv("GCMEMLIMIT");
        char *argv[8];
        int n = 0;
        argv[n++] = (char *)"test_pacer_program";
        argv[n++] = (char *)"--child";
        for (int i = 0; args[i] && n < 7; i++)
            argv[n++] = (char *)args[i];
        argv[n] = NULL;
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(fds[1]);
    static char out[8192];
    size_t len = 0;
    bool timed_out = false;
    for (;;) {
        double left = deadline_s - (now_s() - t0);
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            continue;
        ssize_t got = read(fds[0], out + len, sizeof out - 1 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
        if (len == sizeof out - 1)
            break;
    }
    out[len] = '\0';
    close(fds[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    r->secs = now_s() - t0;
    ck_assert_msg(!timed_out, "%s (GCPERCENT=%s GCMEMLIMIT=%s) did not finish within %.0f s",
                  args[0], percent ? percent : "-", limit ? limit : "-", deadline_s);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "%s (GCPERCENT=%s GCMEMLIMIT=%s): %s %d", args[0], percent ? percent : "-",
                  limit ? limit : "-", WIFSIGNALED(status) ? "signal" : "exit status",
                  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    parse(r, out);
}

static bool stop_the_world_mode(void)
{
    const char *d = getenv("GCDEBUG");
    if (!d)
        return false;
    return strstr(d, "gcstoptheworld=1") || strstr(d, "gcstoptheworld=2") ||
           strstr(d, "gcconcurrent=0");
}

/* An expected failure: a check the current collector is known to miss (see the report
 * in the case).  It fails the test only with TRICOLOR_PACER_STRICT=1. */
static bool strict(void)
{
    const char *s = getenv("TRICOLOR_PACER_STRICT");
    return s && *s && strcmp(s, "0") != 0;
}

#define xfail_check(known, cond, ...)                                                     \
    do {                                                                                  \
        bool ok_ = (cond);                                                                \
        if (!(known) || strict()) {                                                       \
            ck_assert_msg(ok_, __VA_ARGS__);                                              \
        } else if (!ok_) {                                                                \
            printf("pacer: XFAIL (known collector gap, not failing the test): ");         \
            printf(__VA_ARGS__);                                                          \
            printf("\n");                                                                 \
        } else {                                                                          \
            printf("pacer: XPASS (held in this run; drop the XFAIL mark once it holds "   \
                   "in every run): ");                                                    \
            printf(__VA_ARGS__);                                                          \
            printf("\n");                                                                 \
        }                                                                                 \
    } while (0)

static char live_arg[32], churn_arg[32], secs_arg[32];

/* The steady workload's arguments: live set, churn bytes, and a churn time in seconds
 * (0: churn_bytes decides). */
static const char *const *steady_args(uint64_t live, uint64_t churn, double secs)
{
    static const char *args[5];
    snprintf(live_arg, sizeof live_arg, "%" PRIu64, live);
    snprintf(churn_arg, sizeof churn_arg, "%" PRIu64, churn);
    snprintf(secs_arg, sizeof secs_arg, "%g", secs);
    args[0] = "steady";
    args[1] = live_arg;
    args[2] = churn_arg;
    args[3] = secs_arg;
    args[4] = NULL;
    return args;
}

/* ---- 1. GCPERCENT 50 / 100 / 200 ------------------------------------------------------ */

START_TEST(percent_goal_held)
{
    static const int pcts[3] = {50, 100, 200};
    struct result r[3];
    for (int i = 0; i < 3; i++) {
        char p[16];
        snprintf(p, sizeof p, "%d", pcts[i]);
        run_child(&r[i], p, NULL, 60, steady_args(LIVE_BYTES, CHURN_TIMES * LIVE_BYTES, 0));
        printf("pacer: GCPERCENT=%d%s: live %.1f MiB, %g cycles in %.2f s churn; "
               "heap_end/goal max %.3f min %.3f; peak heap_end %.1f MiB, goal %.1f..%.1f MiB; "
               "heap_alloc peak %.1f MiB (max %.3f of next_gc); goal by the formula %g/%g "
               "(%g from the mark's snapshot; worst miss %.2g); sys-released peak %.1f MiB; GC CPU %.1f%% (churn %.1f%%)\n",
               pcts[i], stop_the_world_mode() ? " (stop-the-world)" : "",
               get(&r[i], "mean_live") / MiB, get(&r[i], "cycles"), get(&r[i], "secs_churn"),
               get(&r[i], "max_end_goal"), get(&r[i], "min_end_goal"),
               get(&r[i], "peak_end") / MiB, get(&r[i], "min_goal") / MiB,
               get(&r[i], "max_goal") / MiB, get(&r[i], "max_heap_alloc") / MiB,
               get(&r[i], "max_alloc_goal"),
               get(&r[i], "goal_checked") - get(&r[i], "goal_wrong"), get(&r[i], "goal_checked"),
               get(&r[i], "goal_from_snapshot"), get(&r[i], "worst_goal_dev"), get(&r[i], "max_total") / MiB,
               100 * get(&r[i], "gc_cpu_fraction"), 100 * get(&r[i], "churn_gc_cpu"));
        fflush(stdout);
    }
    bool stw = stop_the_world_mode();
    for (int i = 0; i < 3; i++) {
        double cycles = get(&r[i], "cycles");
        ck_assert_msg(cycles >= 3, "GCPERCENT=%d: only %g cycles during the churn", pcts[i],
                      cycles);
        /* The live heap holds the ring at least (a concurrent cycle's also holds what
         * was allocated while it marked). */
        double live = get(&r[i], "mean_live");
        ck_assert_msg(live >= 0.95 * LIVE_BYTES, "GCPERCENT=%d: mean live %.1f MiB for a "
                      "%.1f MiB live set", pcts[i], live / MiB, (double)LIVE_BYTES / MiB);
        /* Each goal is live + (live + roots) * GCPERCENT / 100 of the cycle before. */
        ck_assert_msg(get(&r[i], "goal_wrong") == 0 && get(&r[i], "goal_checked") >= 2,
                      "GCPERCENT=%d: %g of %g goals differ from the formula (worst by %.3g)",
                      pcts[i], get(&r[i], "goal_wrong"), get(&r[i], "goal_checked"),
                      get(&r[i], "worst_goal_dev"));
        if (stw)
            ck_assert_msg(get(&r[i], "goal_from_snapshot") == 0,
                          "GCPERCENT=%d: %g stop-the-world goals not from the marked heap",
                          pcts[i], get(&r[i], "goal_from_snapshot"));
        /* The peak heap stays within 10% of the goal: at mark termination in every
         * cycle, and in heap_alloc sampled against next_gc (in concurrent mode a
         * thread past goal + 1/16 waits for the mark under way). */
        xfail_check(false, get(&r[i], "max_end_goal") <= 1.10,
                    "GCPERCENT=%d: heap_end reached %.3f x the goal (at most 1.10)", pcts[i],
                    get(&r[i], "max_end_goal"));
        xfail_check(false, get(&r[i], "max_alloc_goal") <= 1.10,
                    "GCPERCENT=%d: sampled heap_alloc reached %.3f x next_gc (at most 1.10)",
                    pcts[i], get(&r[i], "max_alloc_goal"));
    }
    /* Smaller GCPERCENT: more cycles for the same churn, a smaller peak heap. */
    for (int i = 0; i + 1 < 3; i++) {
        ck_assert_msg(get(&r[i], "cycles") > get(&r[i + 1], "cycles"),
                      "cycles: GCPERCENT=%d ran %g, GCPERCENT=%d ran %g", pcts[i],
                      get(&r[i], "cycles"), pcts[i + 1], get(&r[i + 1], "cycles"));
        ck_assert_msg(get(&r[i], "peak_end") < get(&r[i + 1], "peak_end"),
                      "peak heap_end: GCPERCENT=%d %.1f MiB, GCPERCENT=%d %.1f MiB", pcts[i],
                      get(&r[i], "peak_end") / MiB, pcts[i + 1], get(&r[i + 1], "peak_end") / MiB);
        ck_assert_msg(get(&r[i], "max_heap_alloc") < get(&r[i + 1], "max_heap_alloc"),
                      "peak heap_alloc: GCPERCENT=%d %.1f MiB, GCPERCENT=%d %.1f MiB", pcts[i],
                      get(&r[i], "max_heap_alloc") / MiB, pcts[i + 1],
                      get(&r[i + 1], "max_heap_alloc") / MiB);
    }
}
END_TEST

/* ---- 2. GCPERCENT=off GCMEMLIMIT=3L ---------------------------------------------------- */

START_TEST(memlimit_alone)
{
    uint64_t limit = 3 * LIVE_BYTES;
    char lim[32];
    snprintf(lim, sizeof lim, "%" PRIu64 "MiB", limit / MiB);
    struct result r;
    run_child(&r, "off", lim, 60, steady_args(LIVE_BYTES, CHURN_TIMES * LIVE_BYTES, 0));
    double total = get(&r, "max_total");
    printf("pacer: GCPERCENT=off GCMEMLIMIT=%s%s: %g cycles in %.2f s churn; peak sys-released "
           "%.1f MiB = %.3f of the limit; peak heap_sys %.1f MiB, heap_alloc %.1f MiB, "
           "heap_end %.1f MiB; goal %.1f..%.1f MiB; GC CPU %.1f%%\n",
           lim, stop_the_world_mode() ? " (stop-the-world)" : "", get(&r, "cycles"),
           get(&r, "secs_churn"), total / MiB, total / (double)limit,
           get(&r, "max_heap_sys") / MiB, get(&r, "max_heap_alloc") / MiB,
           get(&r, "peak_end") / MiB, get(&r, "min_goal") / MiB, get(&r, "max_goal") / MiB,
           100 * get(&r, "gc_cpu_fraction"));
    fflush(stdout);
    ck_assert_msg(get(&r, "num_gc_churn") >= 3 && get(&r, "cycles") >= 3,
                  "GCPERCENT=off with a limit: only %g cycles during %.0f MiB of churn",
                  get(&r, "num_gc_churn"), get(&r, "churn_bytes") / MiB);
    ck_assert_msg(get(&r, "next_gc") > 0, "no goal (next_gc 0) with a memory limit");
    xfail_check(false, total <= 1.05 * (double)limit,
                "sys - heap_released reached %.1f MiB, %.3f of the %.0f MiB limit (at most "
                "1.05)", total / MiB, total / (double)limit, (double)limit / MiB);
}
END_TEST

/* ---- 3. the live set above the limit ---------------------------------------------------- */

START_TEST(live_above_limit)
{
    uint64_t limit = LIVE_BYTES / 2;
    char lim[32];
    snprintf(lim, sizeof lim, "%" PRIu64 "MiB", limit / MiB);
    struct result r;
    /* The churn runs for OVERLIMIT_SECS.  The CPU limiter's bucket (1 CPU-second per
     * proc, as Go's) lets the collector take most of the CPU for its first seconds,
     * and gc_cpu_fraction counts from gc_init: with the bucket held full, the GC's
     * share of T seconds is at most 1/2 + (1 s)/(2 T), 0.5625 for T = 8 s, plus what
     * the limiter cannot cut (pauses, background marking).  The child must then finish
     * (the final check of every list included) within the deadline, having done real
     * work. */
    run_child(&r, "100", lim, 30, steady_args(LIVE_BYTES, UINT64_MAX / 2, OVERLIMIT_SECS));
    double cpu = get(&r, "gc_cpu_fraction");
    printf("pacer: live %.0f MiB over GCMEMLIMIT=%s%s: finished in %.2f s (churn %.2f s, "
           "%.0f MiB, %g cycles); gc_cpu_fraction %.3f (churn only %.3f); peak heap_end %.1f MiB, "
           "goal %.1f..%.1f MiB; peak sys-released %.1f MiB\n",
           (double)LIVE_BYTES / MiB, lim, stop_the_world_mode() ? " (stop-the-world)" : "",
           r.secs, get(&r, "secs_churn"), get(&r, "churn_bytes") / MiB, get(&r, "cycles"), cpu, get(&r, "churn_gc_cpu"),
           get(&r, "peak_end") / MiB, get(&r, "min_goal") / MiB, get(&r, "max_goal") / MiB,
           get(&r, "max_total") / MiB);
    fflush(stdout);
    ck_assert_msg(get(&r, "cycles") >= 3, "only %g cycles", get(&r, "cycles"));
    /* Progress: the program churned through at least its live set twice over. */
    ck_assert_msg(get(&r, "churn_bytes") >= 2.0 * LIVE_BYTES, "only %.1f MiB allocated in "
                  "%.1f s over the limit", get(&r, "churn_bytes") / MiB, get(&r, "secs_churn"));
    /* In stop-the-world mode the limiter lets the heap grow half a goal further
     * before the next pause (cycle_run).  A debug build walks the whole heap in every
     * pause (the verifier), collector time the limiter cannot shed: there the check
     * is reported, not enforced (0.71 measured with gcstoptheworld=2). */
    xfail_check(GC_DEBUG_BUILD && stop_the_world_mode(), cpu <= 0.65,
                "gc_cpu_fraction %.3f with the live heap above the limit (at most 0.65)", cpu);
}
END_TEST

/* ---- 4. the scavenger -------------------------------------------------------------------- */

START_TEST(scavenger_returns_memory)
{
    static const char *args[] = {"scavenger", "268435456", NULL};
    struct result r;
    run_child(&r, "100", NULL, 60, args);
    double peak = get(&r, "rss_peak"), after = get(&r, "rss_after");
    double rel0 = get(&r, "released_before"), rel1 = get(&r, "released_after");
    double relf = get(&r, "released_final"), idlef = get(&r, "idle_final");
    printf("pacer: scavenger%s: RSS %.1f -> peak %.1f -> %.1f MiB (%.1f%% of peak) after "
           "%.2f s, settling at %.1f MiB; heap_released %.1f -> %.1f -> %.1f MiB (heap_idle %.1f, "
           "heap_sys %.1f, next_gc %.1f MiB); after gc_free_os_memory heap_released %.1f of heap_idle %.1f MiB, "
           "RSS %.1f MiB\n",
           stop_the_world_mode() ? " (stop-the-world)" : "", get(&r, "rss_start") / MiB,
           peak / MiB, after / MiB, 100 * after / peak, get(&r, "wait_secs"),
           get(&r, "rss_settled") / MiB, rel0 / MiB, rel1 / MiB, get(&r, "released_settled") / MiB, get(&r, "idle_after") / MiB, get(&r, "heap_sys_after") / MiB,
           get(&r, "next_gc_after") / MiB, relf / MiB, idlef / MiB, get(&r, "rss_final") / MiB);
    fflush(stdout);
    ck_assert_msg(peak >= 200.0 * MiB, "the burst only reached %.1f MiB of RSS", peak / MiB);
    ck_assert_msg(after < 0.40 * peak, "RSS still %.1f MiB (%.1f%% of the %.1f MiB peak) "
                  "2 s after the burst was collected", after / MiB, 100 * after / peak,
                  peak / MiB);
    ck_assert_msg(rel1 > rel0, "heap_released did not grow (%.1f -> %.1f MiB)", rel0 / MiB,
                  rel1 / MiB);
    ck_assert_msg(relf >= 0.90 * idlef, "after gc_free_os_memory heap_released is %.1f MiB "
                  "of %.1f MiB idle", relf / MiB, idlef / MiB);
}
END_TEST

/* ---- 5. the setters ------------------------------------------------------------------------ */

START_TEST(setters_at_once)
{
    static char live[32];
    snprintf(live, sizeof live, "%" PRIu64, (uint64_t)LIVE_BYTES / 2);
    const char *args[] = {"setters", live, NULL};
    struct result r;
    run_child(&r, "100", NULL, 60, args);
    printf("pacer: setters%s: live %.2f MiB, roots %.0f KiB; next_gc 100%% %.2f, 50%% %.2f, "
           "200%% %.2f (other thread) MiB; limit %.2f MiB -> next_gc %.2f (other thread) "
           "-> next cycle's goal %.2f; unlimited %.2f -> next cycle's goal %.2f MiB\n",
           stop_the_world_mode() ? " (stop-the-world)" : "", get(&r, "live") / MiB,
           get(&r, "roots") / KiB, get(&r, "goal_100") / MiB, get(&r, "goal_50") / MiB,
           get(&r, "goal_200") / MiB, get(&r, "limit") / MiB, get(&r, "goal_limit") / MiB,
           get(&r, "cycle_goal_limit") / MiB, get(&r, "goal_unlimited") / MiB,
           get(&r, "cycle_goal_unlimited") / MiB);
    fflush(stdout);
    ck_assert_double_eq(get(&r, "goal_100"), get(&r, "want_100"));
    ck_assert_double_eq(get(&r, "ret_set_50"), 100);
    ck_assert_double_eq(get(&r, "goal_50"), get(&r, "want_50"));
    ck_assert_double_eq(get(&r, "ret_set_200"), 50);
    ck_assert_double_eq(get(&r, "goal_200_thread"), get(&r, "want_200"));
    ck_assert_double_eq(get(&r, "goal_200"), get(&r, "want_200"));
    /* The limit: the goal drops under it at once (no lower than the floor). */
    double limit = get(&r, "limit"), gl = get(&r, "goal_limit");
    ck_assert_double_eq(get(&r, "ret_set_limit"), (double)INT64_MAX);
    ck_assert_double_eq(get(&r, "goal_limit_thread"), gl);
    ck_assert_msg(gl < limit && gl >= get(&r, "floor"),
                  "with a %.2f MiB limit next_gc is %.2f MiB (floor %.2f MiB)", limit / MiB,
                  gl / MiB, get(&r, "floor") / MiB);
    ck_assert_double_eq(get(&r, "ret_query_limit"), limit);
    ck_assert_double_eq(get(&r, "goal_after_query"), gl);
    /* The next cycle aims at the goal in force (the limit goal moves a little with the
     * heap's overhead: within 2%). */
    double cg = get(&r, "cycle_goal_limit"), before = get(&r, "goal_before_cycle");
    ck_assert_msg(cg <= limit && cg >= 0.98 * before && cg <= 1.02 * before,
                  "the cycle after the limit aimed at %.2f MiB; next_gc was %.2f MiB",
                  cg / MiB, before / MiB);
    ck_assert_double_eq(get(&r, "ret_unset_limit"), limit);
    ck_assert_double_eq(get(&r, "goal_unlimited"), get(&r, "want_unlimited"));
    ck_assert_double_eq(get(&r, "cycle_goal_unlimited"), get(&r, "goal_unlimited"));
}
END_TEST

static Suite *pacer_suite(void)
{
    Suite *s = suite_create("pacer_program");
    TCase *tc = tcase_create("pacer");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, percent_goal_held);
    tcase_add_test(tc, memlimit_alone);
    tcase_add_test(tc, live_above_limit);
    tcase_add_test(tc, scavenger_returns_memory);
    tcase_add_test(tc, setters_at_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], "--child"))
        return child_main(argc, argv);
    SRunner *sr = srunner_create(pacer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
