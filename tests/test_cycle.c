/* test_cycle.c - unit tests for gc/cycle.c: the phase machine and the control calls.
 *
 * The phase is PHASE_OFF outside cycle_run, including inside the cycle hook (unless
 * another thread's cycle is sweeping, which the world runs beside); the hook
 * runs once per cycle, on the collecting thread, after the world resumed and every
 * collector lock was let go (it may stop the world itself, or allocate); info.num
 * equals num_gc and grows by one per cycle; info.forced is true for gc_collect and
 * gc_free_os_memory and false for pacer and out-of-memory cycles.  gc_cycle_info
 * agrees with memstats (pause = the three phases, heap_goal = the goal before the
 * cycle) and the new goal is pacer_heap_goal of what the cycle measured.  The
 * control calls: gc_set_percent (returns the old value, recomputes the goal at once,
 * -1 turns automatic cycles off), gc_disable / gc_enable (nesting, no underflow,
 * gc_collect still runs), concurrent gc_collect (never skipped).
 *
 * Check forks every test, so each starts from the heap main() left, with no hook.
 * main() clears GCPERCENT and GCPROCS so the defaults apply.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <check.h>
#include "testutil.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)


static void read_stats(struct gc_memstats *ms)   /* ms is malloc'd: it is big */
{
    gc_read_memstats(ms);
}

static uint32_t num_gc(void)
{
    struct gc_memstats *ms = malloc(sizeof *ms);
    ck_assert_ptr_nonnull(ms);
    read_stats(ms);
    uint32_t n = ms->num_gc;
    free(ms);
    return n;
}

/* As nrecs_above, for memstats' count of finished cycles. */
static uint32_t num_gc_above(uint32_t n)
{
    for (int i = 0; i < 10000 && num_gc() <= n; i++)
        usleep(1000);
    return num_gc();
}

/* bytes of garbage: small objects of 1 KiB and large ones of 256 KiB, half each.
 * Nothing is kept. */
static __attribute__((noinline)) void make_garbage(size_t bytes)
{
    for (size_t done = 0; done < bytes / 2; done += KiB) {
        void *p = gc_malloc(KiB);
        ck_assert_ptr_nonnull(p);
    }
    for (size_t done = 0; done < bytes / 2; done += 256 * KiB) {
        void *p = gc_malloc(256 * KiB);
        ck_assert_ptr_nonnull(p);
    }
}

/* ---- a hook that records every cycle ---------------------------------------------------- */

#define MAX_REC 512
struct rec {
    struct gc_cycle_info info;
    pthread_t thread;
    int phase;
    AO_t num_gc_seen;          /* cycle.num_gc when the hook ran */
    int registry_free;         /* stw_registry_lock could be taken */
    int cycle_lock_free;       /* cycle.lock could be taken */
    void *arg;                 /* the hook's argument */
};
static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rec recs[MAX_REC];
static int nrec;

static void record(const struct gc_cycle_info *ci, void *arg)
{
    pthread_mutex_lock(&rec_lock);
    if (nrec < MAX_REC) {
        struct rec *r = &recs[nrec];
        r->info = *ci;
        r->thread = pthread_self();
        r->arg = arg;
        r->phase = cycle.phase;
        r->num_gc_seen = AO_load(&cycle.num_gc);
        r->registry_free = pthread_mutex_trylock(&stw_registry_lock) == 0;
        if (r->registry_free)
            pthread_mutex_unlock(&stw_registry_lock);
        r->cycle_lock_free = pthread_mutex_trylock(&cycle.lock) == 0;
        if (r->cycle_lock_free)
            pthread_mutex_unlock(&cycle.lock);
    }
    nrec++;
    pthread_mutex_unlock(&rec_lock);
}

static void hook_record(const struct gc_cycle_info *ci, void *arg)
{
    record(ci, arg);
}

/* Cycles run on the calling thread by default, on the collector thread in concurrent
 * mode (GCDEBUG=gcconcurrent=1): the expectations follow the mode. */
static bool concurrent_mode(void)
{
    return opt.gcconcurrent && !opt.gcstoptheworld;
}

static bool ran_on_cycle_thread(pthread_t ran, pthread_t caller)
{
    if (!concurrent_mode())
        return pthread_equal(ran, caller);
    char name[32] = "";
    pthread_getname_np(ran, name, sizeof name);
    return strcmp(name, "tricolor-gc") == 0;
}

static int nrecs(void)
{
    pthread_mutex_lock(&rec_lock);
    int n = nrec;
    pthread_mutex_unlock(&rec_lock);
    return n;
}

/* Automatic cycles run on the collector thread and may still be marking when the
 * allocation that started them returns: wait (up to 10 s) for the hook to have seen
 * more than n cycles.  Returns the count. */
static int nrecs_above(int n)
{
    for (int i = 0; i < 10000 && nrecs() <= n; i++)
        usleep(1000);
    return nrecs();
}

/* ---- the phase and the hook ---------------------------------------------------------------- */

START_TEST(phase_off_outside_cycle)
{
    ck_assert_int_eq(cycle.phase, PHASE_OFF);
    gc_set_cycle_hook(hook_record, &recs);
    gc_collect();
    ck_assert_int_eq(cycle.phase, PHASE_OFF);
    ck_assert_int_eq(nrecs(), 1);
    ck_assert_int_eq(recs[0].phase, PHASE_OFF);
    ck_assert_ptr_eq(recs[0].arg, &recs);
    gc_collect();
    ck_assert_int_eq(cycle.phase, PHASE_OFF);
    ck_assert_int_eq(nrecs(), 2);
    ck_assert_int_eq(recs[1].phase, PHASE_OFF);
}
END_TEST

/* The hook stops and restarts the world and allocates, small and large: possible only
 * if the cycle let go of the registry lock and the heap before calling it. */
static volatile int active_calls;
static volatile int active_ok;
static void *volatile active_small, *volatile active_large;
static pthread_t active_thread;

static void hook_active(const struct gc_cycle_info *ci, void *arg)
{
    record(ci, arg);
    active_calls++;
    active_thread = pthread_self();
    stw_stop_world();
    for (struct mutator *m = stw_threads; m; m = m->next)
        alloc_flush_cache(m);
    stw_start_world();
    active_small = gc_malloc(100);
    active_large = gc_malloc(100 * KiB);
    if (active_small && active_large) {
        memset(active_small, 1, 100);
        memset(active_large, 2, 100 * KiB);
        active_ok = 1;
    }
}

START_TEST(hook_runs_after_resume_on_collecting_thread)
{
    gc_set_cycle_hook(hook_active, NULL);
    uint32_t before = num_gc();
    gc_collect();
    ck_assert_int_eq(active_calls, 1);
    ck_assert_int_eq(active_ok, 1);
    ck_assert(ran_on_cycle_thread(active_thread, pthread_self()));
    ck_assert(recs[0].registry_free);
    ck_assert(recs[0].cycle_lock_free);
    ck_assert_int_eq(recs[0].phase, PHASE_OFF);
    /* The hook's own allocations and stop did not count as a cycle. */
    ck_assert_uint_eq(num_gc(), before + 1);
    ck_assert_uint_eq(recs[0].info.num, before + 1);
    ck_assert_uint_eq(gc_size(active_small), 112);
    ck_assert_uint_ge(gc_size(active_large), 100 * KiB);
    gc_collect();   /* what the hook allocated is live and intact */
    ck_assert_int_eq(active_calls, 2);
    ck_assert(gc_base(active_small) == active_small);
}
END_TEST

/* From another thread: the hook runs on that thread, not on main. */
static pthread_t collector_thread;
static void *collect_once(void *arg)
{
    (void)arg;
    collector_thread = pthread_self();
    gc_collect();
    return NULL;
}

START_TEST(hook_runs_on_the_thread_that_collected)
{
    gc_set_cycle_hook(hook_record, &recs);
    pthread_t t;
    ck_assert_int_eq(gc_thread_create(&t, NULL, collect_once, NULL), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(nrecs(), 1);
    ck_assert(ran_on_cycle_thread(recs[0].thread, collector_thread));
    ck_assert(!pthread_equal(recs[0].thread, pthread_self()));
    ck_assert(recs[0].info.forced);
}
END_TEST

START_TEST(num_increases_by_one_and_forced)
{
    gc_set_cycle_hook(hook_record, &recs);
    struct gc_memstats *ms = malloc(sizeof *ms);
    ck_assert_ptr_nonnull(ms);
    read_stats(ms);
    uint32_t n0 = ms->num_gc, f0 = ms->num_forced_gc;
    for (int i = 1; i <= 5; i++) {
        gc_collect();
        read_stats(ms);
        ck_assert_int_eq(nrecs(), i);
        const struct rec *r = &recs[i - 1];
        ck_assert_uint_eq(r->info.num, n0 + (uint32_t)i);
        ck_assert_uint_eq(r->info.num, ms->num_gc);
        ck_assert_uint_eq(r->num_gc_seen, ms->num_gc);   /* already published in the hook */
        ck_assert(r->info.forced);
        ck_assert_uint_eq(ms->num_forced_gc, f0 + (uint32_t)i);
        ck_assert(ran_on_cycle_thread(r->thread, pthread_self()));
    }
    gc_free_os_memory();
    read_stats(ms);
    ck_assert_int_eq(nrecs(), 6);
    ck_assert(recs[5].info.forced);
    ck_assert_uint_eq(recs[5].info.num, n0 + 6);
    ck_assert_uint_eq(ms->num_gc, n0 + 6);
    ck_assert_uint_eq(ms->num_forced_gc, f0 + 6);
    free(ms);
}
END_TEST

START_TEST(pacer_cycles_not_forced)
{
    gc_set_cycle_hook(hook_record, &recs);
    struct gc_memstats *ms = malloc(sizeof *ms);
    ck_assert_ptr_nonnull(ms);
    read_stats(ms);
    uint32_t n0 = ms->num_gc, f0 = ms->num_forced_gc;
    ck_assert_int_eq(gc_set_percent(10), 100);
    /* The goal is at least 400 KiB at 10%: 32 MiB of garbage makes many cycles. */
    for (int round = 0; round < 64 && nrecs() < 5; round++)
        make_garbage(512 * KiB);
    int n = nrecs();
    ck_assert_int_ge(n, 3);
    read_stats(ms);
    ck_assert_uint_eq(ms->num_gc, n0 + (uint32_t)n);      /* the hook ran once per cycle */
    ck_assert_uint_eq(ms->num_forced_gc, f0);
    for (int i = 0; i < n && i < MAX_REC; i++) {
        ck_assert_msg(!recs[i].info.forced, "pacer cycle %d reported forced", i);
        ck_assert_uint_eq(recs[i].info.num, n0 + (uint32_t)i + 1);
        ck_assert_int_eq(recs[i].phase, PHASE_OFF);
    }
    ck_assert_int_eq(gc_set_percent(100), 10);
    free(ms);
}
END_TEST

/* Two dead 8 MiB objects (two, so one stray stack word cannot keep the run busy). */
static __attribute__((noinline)) void make_big_garbage(void)
{
    for (int i = 0; i < 2; i++) {
        char *p = gc_malloc(8 * MiB);
        ck_assert_ptr_nonnull(p);
        p[0] = 1;
    }
}

START_TEST(oom_cycle_not_forced)
{
    /* A high goal, so the only cycle is the one the failed grow causes. */
    ck_assert_int_eq(gc_set_percent(1000), 100);
    make_big_garbage();
    clobber_stack();
    gc_set_cycle_hook(hook_record, &recs);
    struct gc_memstats *ms = malloc(sizeof *ms);
    ck_assert_ptr_nonnull(ms);
    read_stats(ms);
    uint32_t n0 = ms->num_gc, f0 = ms->num_forced_gc;
    ck_assert_int_eq(nrecs(), 0);

    heap.grow_fail_for_test = 1;
    errno = 0;
    void *p = gc_malloc(8 * MiB);   /* no free run is big enough, the heap cannot grow */
    int e = errno;
    heap.grow_fail_for_test = 0;

    read_stats(ms);
    ck_assert_int_eq(nrecs(), 1);
    ck_assert(!recs[0].info.forced);
    ck_assert_uint_eq(recs[0].info.num, n0 + 1);
    ck_assert_uint_eq(ms->num_gc, n0 + 1);
    ck_assert_uint_eq(ms->num_forced_gc, f0);
    /* The collection freed the dead objects: the retry succeeded, errno untouched. */
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(e, 0);
    ck_assert_uint_ge(gc_size(p), 8 * MiB);
    free(ms);
}
END_TEST

START_TEST(oom_while_disabled_does_not_collect)
{
    ck_assert_int_eq(gc_set_percent(1000), 100);
    make_big_garbage();
    clobber_stack();
    gc_set_cycle_hook(hook_record, &recs);
    uint32_t n0 = num_gc();
    gc_disable();
    heap.grow_fail_for_test = 1;
    errno = 0;
    void *p = gc_malloc(32 * MiB);
    int e = errno;
    heap.grow_fail_for_test = 0;
    ck_assert_ptr_null(p);
    ck_assert_int_eq(e, ENOMEM);
    ck_assert_int_eq(nrecs(), 0);
    ck_assert_uint_eq(num_gc(), n0);
    gc_enable();
}
END_TEST

/* ---- gc_cycle_info against memstats ---------------------------------------------------------- */

static void *volatile live_keep[16];

START_TEST(cycle_info_consistent)
{
    for (int i = 0; i < 8; i++)
        live_keep[i] = gc_malloc(MiB);
    live_keep[8] = gc_malloc(1000);
    gc_collect();   /* a cycle those allocations started (concurrent mode) is over */
    gc_set_cycle_hook(hook_record, &recs);
    struct gc_memstats *before = malloc(sizeof *before), *after = malloc(sizeof *after);
    ck_assert_ptr_nonnull(before);
    ck_assert_ptr_nonnull(after);

    uint64_t prev_start = 0, prev_pause = 0;
    for (int i = 0; i < 3; i++) {
        read_stats(before);
        uint64_t t_before = os_now_ns() - cycle.init_ns;
        gc_collect();
        uint64_t t_after = os_now_ns() - cycle.init_ns;
        read_stats(after);
        ck_assert_int_eq(nrecs(), i + 1);
        const struct gc_cycle_info *ci = &recs[i].info;

        ck_assert_uint_eq(ci->num, after->num_gc);
        uint64_t pause = after->pause_ns[(after->num_gc + 255) % 256];
        /* One pause covering every phase; in concurrent mode, the two pauses. */
        uint64_t phases = ci->sweep_term_ns + (concurrent_mode() ? 0 : ci->mark_ns) +
                          ci->mark_term_ns;
        /* Measured from the same clock readings: equal. */
        ck_assert_uint_eq(phases, pause);
        ck_assert_uint_gt(pause, 0);
        ck_assert_uint_eq(after->pause_total_ns, before->pause_total_ns + pause);
        ck_assert_uint_eq(after->pause_end[(after->num_gc + 255) % 256], after->last_gc);

        ck_assert_uint_le(ci->heap_live, ci->heap_end);
        ck_assert_uint_ge(ci->heap_live, 8 * MiB);   /* what live_keep holds */
        /* In this version the whole cycle runs stopped: nothing allocates in between. */
        ck_assert_uint_eq(ci->heap_start, ci->heap_end);
        ck_assert_uint_eq(ci->heap_goal, before->next_gc);
        ck_assert_uint_eq(ci->procs, (uint32_t)os_ncpu());
        ck_assert_uint_eq(ci->procs, (uint32_t)opt.procs);
        ck_assert_uint_gt(ci->stacks_scanned, 0);
        ck_assert_uint_gt(ci->globals_scanned, 0);
        ck_assert_uint_eq(ci->stw1_cpu_ns, ci->sweep_term_ns * ci->procs);
        ck_assert_uint_eq(ci->stw2_cpu_ns, ci->mark_term_ns * ci->procs);

        ck_assert_uint_ge(ci->start_ns, t_before);
        ck_assert_uint_le(ci->start_ns + pause, t_after);
        if (i > 0) {
            ck_assert_uint_gt(ci->start_ns, prev_start);
            ck_assert_uint_ge(ci->start_ns, prev_start + prev_pause);
        }
        prev_start = ci->start_ns;
        prev_pause = pause;
    }
    free(before);
    free(after);
}
END_TEST

/* ---- the goal ------------------------------------------------------------------------------- */

static uint64_t next_gc_now(void)
{
    struct gc_memstats *ms = malloc(sizeof *ms);
    ck_assert_ptr_nonnull(ms);
    read_stats(ms);
    uint64_t g = ms->next_gc;
    free(ms);
    return g;
}

static uint64_t roots_of(const struct gc_cycle_info *ci)
{
    return ci->stacks_scanned + ci->globals_scanned;
}

START_TEST(next_gc_from_pacer)
{
    /* A live heap above the floor, so the formula, not the floor, decides. */
    for (int i = 0; i < 12; i++)
        live_keep[i] = gc_malloc(MiB);
    gc_set_cycle_hook(hook_record, &recs);

    gc_collect();
    /* Concurrent mode may have run a pacer cycle while the 12 MiB were allocated. */
    ck_assert_int_ge(nrecs(), 1);
    const struct gc_cycle_info *a = &recs[nrecs() - 1].info;
    ck_assert_uint_ge(a->heap_live, 12 * MiB);
    uint64_t want = pacer_heap_goal(a->heap_live, roots_of(a), 100);
    ck_assert_uint_gt(want, pacer_heap_goal(0, 0, 100));
    ck_assert_uint_eq(next_gc_now(), want);

    /* The new percent applies at once, to what the last cycle measured. */
    ck_assert_int_eq(gc_set_percent(50), 100);
    ck_assert_uint_eq(next_gc_now(), pacer_heap_goal(a->heap_live, roots_of(a), 50));
    ck_assert_uint_lt(next_gc_now(), want);

    int n_a = nrecs();
    gc_collect();
    ck_assert_int_eq(nrecs(), n_a + 1);
    const struct gc_cycle_info *b = &recs[n_a].info;
    ck_assert_uint_eq(b->heap_goal, pacer_heap_goal(a->heap_live, roots_of(a), 50));
    ck_assert_uint_eq(next_gc_now(), pacer_heap_goal(b->heap_live, roots_of(b), 50));

    ck_assert_int_eq(gc_set_percent(200), 50);
    ck_assert_uint_eq(next_gc_now(), pacer_heap_goal(b->heap_live, roots_of(b), 200));
    ck_assert_int_eq(gc_set_percent(100), 200);
    ck_assert_uint_eq(next_gc_now(), pacer_heap_goal(b->heap_live, roots_of(b), 100));
}
END_TEST

START_TEST(percent_off_stops_automatic_cycles)
{
    gc_set_cycle_hook(hook_record, &recs);
    gc_collect();
    struct gc_memstats *ms = malloc(sizeof *ms);
    ck_assert_ptr_nonnull(ms);

    ck_assert_int_eq(gc_set_percent(-1), 100);
    read_stats(ms);
    ck_assert_uint_eq(ms->next_gc, 0);
    ck_assert(!ms->enable_gc);
    uint32_t n0 = ms->num_gc;
    make_garbage(64 * MiB);
    read_stats(ms);
    ck_assert_uint_eq(ms->num_gc, n0);
    ck_assert_int_eq(nrecs(), 1);
    ck_assert_uint_ge(ms->total_alloc, 64 * MiB);

    /* Any negative value means off, and reads back as -1. */
    ck_assert_int_eq(gc_set_percent(-7), -1);
    read_stats(ms);
    ck_assert(!ms->enable_gc);
    ck_assert_uint_eq(ms->next_gc, 0);
    /* A forced cycle still runs. */
    gc_collect();
    ck_assert_int_eq(nrecs(), 2);
    read_stats(ms);
    ck_assert_uint_eq(ms->num_gc, n0 + 1);
    ck_assert_uint_eq(ms->next_gc, 0);

    ck_assert_int_eq(gc_set_percent(100), -1);
    read_stats(ms);
    ck_assert(ms->enable_gc);
    const struct gc_cycle_info *b = &recs[1].info;
    ck_assert_uint_eq(ms->next_gc, pacer_heap_goal(b->heap_live, roots_of(b), 100));
    /* Automatic cycles are back. */
    make_garbage(16 * MiB);
    ck_assert_int_gt(nrecs_above(2), 2);
    for (int i = 2; i < nrecs() && i < MAX_REC; i++)
        ck_assert(!recs[i].info.forced);
    free(ms);
}
END_TEST

/* ---- gc_disable / gc_enable ------------------------------------------------------------------ */

static bool enabled_now(void)
{
    struct gc_memstats *ms = malloc(sizeof *ms);
    ck_assert_ptr_nonnull(ms);
    read_stats(ms);
    bool e = ms->enable_gc;
    free(ms);
    return e;
}

START_TEST(disable_nests)
{
    gc_set_cycle_hook(hook_record, &recs);
    ck_assert(enabled_now());
    uint32_t n0 = num_gc();
    gc_disable();
    gc_disable();
    ck_assert(!enabled_now());
    make_garbage(64 * MiB);
    ck_assert_uint_eq(num_gc(), n0);
    ck_assert_int_eq(nrecs(), 0);

    gc_enable();   /* one of two: still disabled */
    ck_assert(!enabled_now());
    make_garbage(16 * MiB);
    ck_assert_uint_eq(num_gc(), n0);

    /* gc_collect runs while disabled, and counts as forced. */
    gc_collect();
    ck_assert_uint_eq(num_gc(), n0 + 1);
    ck_assert_int_eq(nrecs(), 1);
    ck_assert(recs[0].info.forced);
    ck_assert(!enabled_now());
    make_garbage(16 * MiB);
    ck_assert_uint_eq(num_gc(), n0 + 1);

    gc_enable();
    ck_assert(enabled_now());
    make_garbage(16 * MiB);
    ck_assert_uint_gt(num_gc_above(n0 + 1), n0 + 1);
    ck_assert_int_ge(nrecs_above(1), 2);
    ck_assert(!recs[1].info.forced);
}
END_TEST

/* Runs fn with fd 2 redirected to a pipe; returns what was written (malloc'd). */
static char *capture_stderr(void (*fn)(void))
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(stderr);
    int saved = dup(2);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(fds[1], 2), 2);
    close(fds[1]);
    fn();
    fflush(stderr);
    ck_assert_int_eq(dup2(saved, 2), 2);
    close(saved);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    for (;;) {
        ssize_t r = read(fds[0], buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == cap - 1) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
    }
    buf[len] = 0;
    close(fds[0]);
    return buf;
}

#define WARNING "tricolor: gc_enable without a matching gc_disable"
static void one_extra_enable(void)
{
    gc_enable();
}

START_TEST(extra_enable_warns_and_does_not_underflow)
{
    gc_set_cycle_hook(hook_record, &recs);
    char *out = capture_stderr(one_extra_enable);
    ck_assert_msg(strncmp(out, WARNING, strlen(WARNING)) == 0,
                  "stderr was \"%s\"", out);
    int lines = 0;
    for (const char *c = out; *c; c++)
        lines += *c == '\n';
    ck_assert_int_eq(lines, 1);
    ck_assert(out[strlen(out) - 1] == '\n');
    free(out);

    ck_assert_uint_eq(AO_load(&cycle.disabled), 0);
    ck_assert(enabled_now());
    /* One disable is still enough to disable, one enable to enable. */
    gc_disable();
    ck_assert(!enabled_now());
    uint32_t n0 = num_gc();
    make_garbage(32 * MiB);
    ck_assert_uint_eq(num_gc(), n0);
    out = capture_stderr(one_extra_enable);   /* matched: silent */
    ck_assert_str_eq(out, "");
    free(out);
    ck_assert(enabled_now());
    make_garbage(16 * MiB);
    ck_assert_uint_gt(num_gc_above(n0), n0);

    /* Twice unmatched: one line each. */
    out = capture_stderr(one_extra_enable);
    char *out2 = capture_stderr(one_extra_enable);
    ck_assert_str_eq(out, out2);
    ck_assert_ptr_nonnull(strstr(out, "gc_enable without a matching gc_disable"));
    free(out);
    free(out2);
    ck_assert_uint_eq(AO_load(&cycle.disabled), 0);
}
END_TEST

/* ---- concurrent gc_collect ---------------------------------------------------------------- */

#define NTHREADS 4
#define PER_THREAD 3
static pthread_barrier_t start_line;
struct collector {
    pthread_t self;
    int index;
};

static void *collect_many(void *arg)
{
    struct collector *c = arg;
    c->self = pthread_self();
    pthread_barrier_wait(&start_line);
    for (int i = 0; i < PER_THREAD; i++)
        gc_collect();
    return NULL;
}

START_TEST(concurrent_collects_all_run)
{
    gc_set_cycle_hook(hook_record, &recs);
    struct gc_memstats *ms = malloc(sizeof *ms);
    ck_assert_ptr_nonnull(ms);
    read_stats(ms);
    uint32_t n0 = ms->num_gc, f0 = ms->num_forced_gc;
    ck_assert_int_eq(pthread_barrier_init(&start_line, NULL, NTHREADS), 0);
    struct collector cs[NTHREADS];
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        cs[i].index = i;
        ck_assert_int_eq(gc_thread_create(&t[i], NULL, collect_many, &cs[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    pthread_barrier_destroy(&start_line);

    read_stats(ms);
    const int total = NTHREADS * PER_THREAD;
    ck_assert_uint_eq(ms->num_gc, n0 + total);
    ck_assert_uint_eq(ms->num_forced_gc, f0 + total);
    ck_assert_int_eq(nrecs(), total);
    /* Each cycle number once; each thread saw its own cycles in its hook. */
    bool seen[NTHREADS * PER_THREAD] = {false};
    int per_thread[NTHREADS] = {0};
    for (int i = 0; i < total; i++) {
        uint32_t k = recs[i].info.num - n0 - 1;
        ck_assert_uint_lt(k, total);
        ck_assert(!seen[k]);
        seen[k] = true;
        ck_assert(recs[i].info.forced);
        /* Another thread's cycle may be sweeping (lazily, with the world running)
         * while this hook runs; it cannot be in any other phase. */
        ck_assert(recs[i].phase == PHASE_OFF || recs[i].phase == PHASE_SWEEP);
        if (concurrent_mode()) {   /* every cycle ran on the collector thread */
            ck_assert(ran_on_cycle_thread(recs[i].thread, recs[i].thread));
            continue;
        }
        int owner = -1;
        for (int j = 0; j < NTHREADS; j++)
            if (pthread_equal(recs[i].thread, cs[j].self))
                owner = j;
        ck_assert_int_ge(owner, 0);
        per_thread[owner]++;
    }
    for (int j = 0; j < NTHREADS && !concurrent_mode(); j++)
        ck_assert_int_eq(per_thread[j], PER_THREAD);
    free(ms);
}
END_TEST

/* ---- the pacer's view after a cycle ------------------------------------------------------------ */

static void *volatile keep_small, *volatile keep_tiny, *volatile keep_large;

START_TEST(alloc_heap_live_equals_heap_live)
{
    keep_small = gc_malloc(200);
    keep_tiny = gc_malloc_atomic(5);
    keep_large = gc_malloc(300 * KiB);
    make_garbage(2 * MiB);
    gc_set_cycle_hook(hook_record, &recs);
    struct gc_memstats *ms = malloc(sizeof *ms);
    ck_assert_ptr_nonnull(ms);
    for (int i = 0; i < 3; i++) {
        /* Thread caches hold reserved slots now: the flush must take them back. */
        void *volatile p = gc_malloc(48);
        (void)p;
        gc_collect();
        uint64_t live_now = AO_load(&alloc_heap_live);
        ck_assert_int_eq(nrecs(), i + 1);
        const struct gc_cycle_info *ci = &recs[i].info;
        ck_assert_uint_eq(live_now, ci->heap_live);
        ck_assert_uint_eq(cycle.last_live, ci->heap_live);
        ck_assert_uint_ge(ci->heap_live, 300 * KiB + 200);
        read_stats(ms);
        /* Every allocated slot is a marked one: memstats agrees to the byte. */
        ck_assert_uint_eq(ms->heap_alloc, ci->heap_live);
    }
    free(ms);
}
END_TEST

/* Each test starts with no hook, no record, the default percent, collection enabled
 * (Check forks each test; this also makes CK_FORK=no work). */
static void reset(void)
{
    gc_set_cycle_hook(NULL, NULL);
    pthread_mutex_lock(&rec_lock);
    nrec = 0;
    memset(recs, 0, sizeof recs);
    pthread_mutex_unlock(&rec_lock);
    gc_set_percent(100);
    heap.grow_fail_for_test = 0;
    while (AO_load(&cycle.disabled))
        gc_enable();
    active_calls = 0;
    active_ok = 0;
}

static Suite *cycle_suite(void)
{
    Suite *s = suite_create("cycle");
    TCase *tc = tcase_create("hook");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, reset, NULL);
    tcase_add_test(tc, phase_off_outside_cycle);
    tcase_add_test(tc, hook_runs_after_resume_on_collecting_thread);
    tcase_add_test(tc, hook_runs_on_the_thread_that_collected);
    tcase_add_test(tc, num_increases_by_one_and_forced);
    tcase_add_test(tc, pacer_cycles_not_forced);
    tcase_add_test(tc, oom_cycle_not_forced);
    tcase_add_test(tc, oom_while_disabled_does_not_collect);
    suite_add_tcase(s, tc);

    tc = tcase_create("info");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, reset, NULL);
    tcase_add_test(tc, cycle_info_consistent);
    tcase_add_test(tc, alloc_heap_live_equals_heap_live);
    suite_add_tcase(s, tc);

    tc = tcase_create("control");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, reset, NULL);
    tcase_add_test(tc, next_gc_from_pacer);
    tcase_add_test(tc, percent_off_stops_automatic_cycles);
    tcase_add_test(tc, disable_nests);
    tcase_add_test(tc, extra_enable_warns_and_does_not_underflow);
    tcase_add_test(tc, concurrent_collects_all_run);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    unsetenv("GCPERCENT");
    unsetenv("GCPROCS");
    gc_init();
    /* The lowest object of the heap is retained by heap.lo (see test_roots). */
    void *volatile first = gc_malloc(16);
    (void)first;
    SRunner *sr = srunner_create(cycle_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
