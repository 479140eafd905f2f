/* test_units_concurrent.c - unit tests for the machinery of concurrent collection:
 * parallel marking with work stealing (gc/workers.c), lazy sweeping (gc/sweep.c), the
 * write barrier's per-thread buffer (gc/barrier.c) and black allocation (gc/alloc.c).
 *
 * Each test drives a cycle by hand, as tests/test_verify.c's manual_cycle does:
 * gc_disable and gc_collect (no cycle of the collector's own is under way or can
 * start), cycle.lock, roots_prepare, stop the world, flush every thread's cache, then
 * the internal calls under test in the order run_cycle makes them.  Checks made while
 * the world is stopped are only recorded (note()) and asserted once it runs again, so
 * a failure never leaves the world stopped or cycle.lock held.
 *
 *  parallel   GCPROCS=4 (set before gc_init): a 150,000-node tree of fan-out 8 with
 *             four 12,500-node lists hanging off its leaves and a cross edge from
 *             every node to another (most nodes are reached by two paths, often held
 *             by two workers), plus 20,000 unreachable nodes pointing into it, marked
 *             from one root word by mark_parallel 50 times: every reachable node
 *             marked, no unreachable one, objects_marked and bytes_marked exact (each
 *             object pushed once however the workers race), mark bits in the heap ==
 *             objects_marked, cpu.workers == 4.  Also an empty grey stack (ends at
 *             once), a single 100,000-node list (nothing to steal), a 64-entry mark
 *             stack that overflows (mark_drain's parallel mark plus rescan) and
 *             GCPROCS above MARK_WORKERS_MAX (64 workers, then 4 again).
 *  lazy       after sweep_begin every span is two generations behind and every small
 *             one on its class's unswept lists; an allocation of class A sweeps only
 *             A's spans, sweep_for_class hands back a swept, cached span with a free
 *             slot, a span filed back is reused before any more sweeping, gc_free in
 *             an unswept span leaves it to its sweeper; large spans and other classes
 *             stay unswept until sweep_finish; memstats invariants hold half-way; then
 *             no unswept list or span is left and heap_alloc == the live bytes
 *             sweep_finish found + what was allocated meanwhile == the bytes the
 *             allocation bitmaps hold.
 *  barrier    with gc_barrier_active_ set, GC_WRITE puts a slot's old and new values
 *             in the thread's buffer (only heap addresses; gc_write_range the old
 *             contents), the buffer is shaded into the shared grey list when its 256
 *             entries fill and at barrier_flush, each thread has its own buffer and an
 *             exiting thread flushes it; with the flag clear nothing is recorded, by
 *             GC_WRITE or the slow path.
 *  black      while alloc_black is set every new object (small, noscan, tiny, large)
 *             is marked, and so is each slot its thread's cache reserved; flushing the
 *             caches unmarks the slots never handed out; the objects survive the
 *             cycle's sweep unreachable (and die in the next cycle), while unreachable
 *             objects allocated before the mark die at once; with alloc_black clear
 *             new objects are white.
 *
 * The tests run plainly and with GCDEBUG=gcconcurrent=1 (the collector thread then
 * runs gc_collect's cycles; it sits idle during the manual ones).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <check.h>
#include "testutil.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define KiB ((size_t)1 << 10)
#define NPROCS 4

#define KEY ((uintptr_t)0x5A5A5A5A5A5A5A5Au)
#define HIDE(p) ((uintptr_t)(p) ^ KEY)
#define SHOW(h) ((void *)((h) ^ KEY))

/* ---- recording failures while the world is stopped ------------------------------------ */

static char fail_msg[512];
static long fail_count;

#define note(c, ...)                                                                      \
    do {                                                                                  \
        if (!(c) && fail_count++ == 0)                                                    \
            snprintf(fail_msg, sizeof fail_msg, __VA_ARGS__);                             \
    } while (0)

static void reset_notes(void)
{
    fail_count = 0;
    fail_msg[0] = 0;
}

static void assert_notes(const char *where)
{
    must_msg(fail_count == 0, "%s: %ld check(s) failed; the first: %s", where, fail_count,
             fail_msg);
}

/* ---- a manual cycle ------------------------------------------------------------------------ */

/* No cycle of the collector's own is under way (gc_collect waits for its sweep too)
 * and none can start (gc_disable) until end_manual. */
static void begin_manual(void)
{
    gc_disable();
    gc_collect();
}

static void stop_and_flush(void)
{
    stw_stop_world();
    for (struct mutator *m = stw_threads; m; m = m->next)
        alloc_flush_cache(m);
}

/* cycle.lock, the roots' segments, the world stopped, the caches flushed. */
static void enter_pause(void)
{
    pthread_mutex_lock(&cycle.lock);
    roots_prepare();
    stop_and_flush();
}

static void leave_pause(void)
{
    stw_start_world();
    pthread_mutex_unlock(&cycle.lock);
}

static void end_manual(void)
{
    gc_enable();
}

static void clear_span_marks(struct span *s, void *arg)
{
    (void)arg;
    for (int w = 0; w < BITMAP_WORDS; w++)
        AO_store(&s->mark_bits[w], 0);
}

static void count_span_marks(struct span *s, void *arg)
{
    uint64_t *n = arg;
    for (int w = 0; w < BITMAP_WORDS; w++)
        *n += (uint64_t)__builtin_popcountll(AO_load(&s->mark_bits[w]));
}

static uint64_t marks_in_heap(void)   /* world stopped */
{
    uint64_t n = 0;
    heap_for_each_span(count_span_marks, &n);
    return n;
}

static void clear_all_marks(void)     /* world running: stops it */
{
    stw_stop_world();
    heap_for_each_span(clear_span_marks, NULL);
    stw_start_world();
}

static void reset_state(struct mark_state *ms, size_t max)
{
    if (!ms->max_cap)
        mark_init(ms, max);
    ms->top = 0;
    ms->overflowed = false;
    ms->bytes_scanned = ms->bytes_marked = ms->objects_marked = 0;
}

/* Take (and drop) whatever grey work the shared list holds; returns the entries. */
static size_t drain_shared(struct mark_range *got, size_t max)
{
    static struct mark_state tmp;
    reset_state(&tmp, (size_t)1 << 20);
    while (mark_take_shared(&tmp, 4096))
        ;
    size_t n = tmp.top;
    if (got)
        memcpy(got, tmp.stack, (n < max ? n : max) * sizeof *got);
    tmp.top = 0;
    tmp.overflowed = false;
    return n;
}

/* ==== parallel marking: work stealing and termination ================================== */

enum { FANOUT = 8, TREE_N = 150000, NLISTS = 4, LIST_LEN = 12500, JUNK_N = 20000,
       REACH_N = TREE_N + NLISTS * LIST_LEN, LONG_N = 100000, ROUNDS = 50 };

struct tnode {
    struct tnode *kid[FANOUT];
    struct tnode *cross;        /* another reachable node: several paths race to it */
    uintptr_t id;               /* small integers: never a heap address */
};

static struct tnode *volatile graph_root;   /* data segment: a root */
static struct tnode **reach;                /* libc heap (no root): every reachable node */
static size_t nreach;
static uintptr_t *junk;                     /* unreachable nodes, hidden */

static struct tnode *new_node(uintptr_t id)
{
    struct tnode *n = gc_malloc(sizeof *n);
    ck_assert_ptr_nonnull(n);
    n->id = id;
    return n;
}

/* The tree in breadth-first order, the lists hanging off its last leaves, and the
 * unreachable nodes (a tree of their own, each also pointing into the reachable one). */
static __attribute__((noinline)) void build_graph(void)
{
    reach = malloc(REACH_N * sizeof *reach);
    junk = malloc(JUNK_N * sizeof *junk);
    ck_assert_ptr_nonnull(reach);
    ck_assert_ptr_nonnull(junk);
    nreach = 0;
    for (size_t i = 0; i < TREE_N; i++) {
        struct tnode *n = new_node(i + 1);
        reach[nreach++] = n;
        if (i > 0)
            reach[(i - 1) / FANOUT]->kid[(i - 1) % FANOUT] = n;
    }
    for (size_t l = 0; l < NLISTS; l++) {
        struct tnode *prev = reach[TREE_N - 1 - l];   /* a leaf */
        ck_assert_ptr_null(prev->kid[0]);
        for (size_t j = 0; j < LIST_LEN; j++) {
            struct tnode *n = new_node(nreach + 1);
            reach[nreach++] = n;
            prev->kid[0] = n;
            prev = n;
        }
    }
    ck_assert_uint_eq(nreach, REACH_N);
    /* Cross edges make it a DAG: most nodes have two parents, often in different
     * workers' hands, and only one of them may push the node. */
    for (size_t i = 0; i < REACH_N; i++)
        reach[i]->cross = reach[(i * 7919 + 13) % REACH_N];
    struct tnode **tmp = malloc(JUNK_N * sizeof *tmp);
    ck_assert_ptr_nonnull(tmp);
    for (size_t i = 0; i < JUNK_N; i++) {
        tmp[i] = new_node(1000000 + i);
        if (i > 0)
            tmp[(i - 1) / FANOUT]->kid[(i - 1) % FANOUT] = tmp[i];
        tmp[i]->cross = reach[(i * 7919) % REACH_N];   /* garbage -> live */
        junk[i] = HIDE(tmp[i]);
    }
    memset(tmp, 0, JUNK_N * sizeof *tmp);
    free(tmp);
    graph_root = reach[0];
}

static void drop_graph(void)
{
    graph_root = NULL;
    free(reach);
    free(junk);
    reach = NULL;
    junk = NULL;
}

struct round {
    uint64_t objects, bytes, in_heap;
    unsigned workers;
    size_t top;
    bool overflowed;
};

/* One parallel mark from the words seed[0..n), the world stopped, as run_cycle's
 * stop-the-world mark with several markers: mark_set_atomic(true), then mark_parallel
 * (or mark_drain, which adds the overflow rescan).  Starts from a heap with no mark. */
static void mark_round(struct mark_state *ms, const uintptr_t *seed, size_t n, bool drain,
                       struct round *r)
{
    heap_for_each_span(clear_span_marks, NULL);
    ms->top = 0;
    ms->overflowed = false;
    ms->bytes_scanned = ms->bytes_marked = ms->objects_marked = 0;
    mark_set_atomic(true);
    mark_scan_range(ms, (uintptr_t)seed, (uintptr_t)(seed + n));
    struct mark_cpu cpu = {0, 0, 0};
    if (drain)
        mark_drain(ms);
    else
        mark_parallel(ms, false, &cpu);
    mark_set_atomic(false);
    r->objects = ms->objects_marked;
    r->bytes = ms->bytes_marked;
    r->workers = cpu.workers;
    r->top = ms->top;
    r->overflowed = ms->overflowed;
    r->in_heap = marks_in_heap();
}

/* Every reachable node marked, no unreachable one; counts exact. */
static void check_graph_round(int round, const struct round *r, size_t node_size,
                              unsigned want_workers)
{
    note(r->objects == REACH_N, "round %d: objects_marked %" PRIu64 ", want %d", round,
         r->objects, REACH_N);
    note(r->bytes == (uint64_t)REACH_N * node_size, "round %d: bytes_marked %" PRIu64
         ", want %" PRIu64, round, r->bytes, (uint64_t)REACH_N * node_size);
    note(r->in_heap == REACH_N, "round %d: %" PRIu64 " mark bits in the heap, want %d",
         round, r->in_heap, REACH_N);
    if (want_workers)
        note(r->workers == want_workers, "round %d: %u workers, want %u", round, r->workers,
             want_workers);
    note(r->top == 0 && !r->overflowed, "round %d: grey work left (top %zu, overflowed %d)",
         round, r->top, (int)r->overflowed);
    size_t unmarked = 0, first = 0;
    for (size_t i = 0; i < REACH_N; i++)
        if (!mark_is_marked((uintptr_t)reach[i]) && unmarked++ == 0)
            first = i;
    note(unmarked == 0, "round %d: %zu reachable nodes unmarked (first: #%zu of %d)", round,
         unmarked, first, REACH_N);
    size_t marked = 0;
    for (size_t i = 0; i < JUNK_N; i++)
        marked += mark_is_marked((uintptr_t)SHOW(junk[i]));
    note(marked == 0, "round %d: %zu unreachable nodes marked", round, marked);
}

/* ---- the STW1 root scan shared out over the markers ----------------------------------- */

#define NROOT_THREADS (ROOTS_PARALLEL_THREADS + 8)

struct root_thread {
    pthread_t t;
    uintptr_t hidden;          /* the object, hidden from the scan */
    volatile int ready, quit;
};

/* Each thread holds one new object in a stack slot only, then waits. */
static __attribute__((noinline)) void *root_thread_main(void *arg)
{
    struct root_thread *r = arg;
    gc_register_thread();
    void *volatile mine = gc_malloc(48);
    r->hidden = HIDE(mine);
    __atomic_store_n(&r->ready, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&r->quit, __ATOMIC_ACQUIRE)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    ck_assert_ptr_nonnull(mine);   /* keeps the slot live to here */
    gc_unregister_thread();
    return NULL;
}

START_TEST(parallel_root_scan_finds_every_stack)
{
    static struct root_thread rt[NROOT_THREADS];
    begin_manual();
    for (int i = 0; i < NROOT_THREADS; i++) {
        memset(&rt[i], 0, sizeof rt[i]);
        ck_assert_int_eq(pthread_create(&rt[i].t, NULL, root_thread_main, &rt[i]), 0);
    }
    for (int i = 0; i < NROOT_THREADS; i++)
        while (!__atomic_load_n(&rt[i].ready, __ATOMIC_ACQUIRE))
            sched_yield();
    static struct mark_state ms;
    void *volatile own = gc_malloc(48);   /* held by this thread's stack only */
    uintptr_t own_hidden = HIDE(own);
    reset_notes();
    for (int round = 0; round < 20; round++) {
        clear_all_marks();
        reset_state(&ms, (size_t)1 << 20);
        enter_pause();
        int threads = stw_nthreads;
        mark_set_atomic(true);
        uint64_t bytes = roots_scan_stacks(&ms);
        size_t grey = ms.top;
        int found = 0;
        for (int i = 0; i < NROOT_THREADS; i++)
            found += mark_is_marked((uintptr_t)SHOW(rt[i].hidden));
        bool own_found = mark_is_marked((uintptr_t)SHOW(own_hidden));
        mark_drain(&ms);
        mark_set_atomic(false);
        leave_pause();
        note(threads >= ROOTS_PARALLEL_THREADS, "only %d threads registered", threads);
        note(found == NROOT_THREADS, "round %d: %d of %d stack-held objects marked", round,
             found, NROOT_THREADS);
        note(grey >= (size_t)NROOT_THREADS, "round %d: %zu grey objects after the scan", round,
             grey);
        note(bytes > 0, "round %d: no stack bytes scanned", round);
        note(own_found, "round %d: the scanning thread's own stack-held object was missed",
             round);
    }
    ck_assert_ptr_nonnull(own);
    for (int i = 0; i < NROOT_THREADS; i++) {
        __atomic_store_n(&rt[i].quit, 1, __ATOMIC_RELEASE);
        pthread_join(rt[i].t, NULL);
    }
    clear_all_marks();
    end_manual();
    assert_notes("parallel root scan");
}
END_TEST

static struct mark_state pms;

START_TEST(parallel_mark_exact_over_many_rounds)
{
    ck_assert_int_eq(opt.procs, NPROCS);
    ck_assert_uint_eq(mark_workers_max(), NPROCS);
    begin_manual();
    build_graph();
    size_t node_size = gc_size(reach[0]);
    ck_assert_uint_ge(node_size, sizeof(struct tnode));
    reset_notes();
    reset_state(&pms, (size_t)1 << 20);
    enter_pause();
    uintptr_t seed[1] = {(uintptr_t)graph_root};
    for (int round = 0; round < ROUNDS; round++) {
        struct round r;
        mark_round(&pms, seed, 1, false, &r);
        check_graph_round(round, &r, node_size, NPROCS);
    }
    heap_for_each_span(clear_span_marks, NULL);
    leave_pause();
    end_manual();
    drop_graph();
    assert_notes("parallel mark");
}
END_TEST

/* No grey work at all: every worker finds nothing and the job ends at once. */
START_TEST(parallel_mark_empty_stack_terminates)
{
    begin_manual();
    build_graph();   /* a heap with objects in it, none of them grey */
    reset_notes();
    reset_state(&pms, (size_t)1 << 20);
    enter_pause();
    uint64_t t0 = os_now_ns();
    uintptr_t none[1] = {0};
    for (int round = 0; round < ROUNDS; round++) {
        struct round r;
        mark_round(&pms, none, 0, false, &r);
        note(r.objects == 0 && r.bytes == 0 && r.in_heap == 0,
             "round %d: an empty mark marked %" PRIu64 " objects (%" PRIu64 " bits)", round,
             r.objects, r.in_heap);
        note(r.workers == NPROCS, "round %d: %u workers, want %d", round, r.workers, NPROCS);
        note(r.top == 0 && !r.overflowed, "round %d: grey work appeared", round);
    }
    uint64_t ns = os_now_ns() - t0;
    leave_pause();
    end_manual();
    drop_graph();
    assert_notes("empty mark");
    /* 50 empty jobs are thread wake-ups only: about 5 ms in all on an idle 2-core
     * machine.  The bound leaves room for a loaded one, and still fails a termination
     * that waits on a timer or for a helper to time out. */
    ck_assert_msg(ns < 5000000000u, "%d empty marks took %" PRIu64 " ms", ROUNDS,
                  ns / 1000000);
}
END_TEST

/* One long list: the grey stack never holds more than one entry, so nothing is ever
 * published and the helpers only wait; the job must still end, with all of it. */
static struct tnode *volatile chain_root;

static __attribute__((noinline)) void build_chain(uintptr_t *hidden)
{
    struct tnode *head = NULL;
    for (size_t i = LONG_N; i-- > 0;) {
        struct tnode *n = new_node(i + 1);
        n->kid[0] = head;
        head = n;
        hidden[i] = HIDE(n);
    }
    chain_root = head;
}

START_TEST(parallel_mark_single_long_list)
{
    uintptr_t *hidden = malloc(LONG_N * sizeof *hidden);
    ck_assert_ptr_nonnull(hidden);
    begin_manual();
    build_chain(hidden);
    size_t node_size = gc_size(chain_root);
    reset_notes();
    reset_state(&pms, (size_t)1 << 20);
    enter_pause();
    uintptr_t seed[1] = {(uintptr_t)chain_root};
    for (int round = 0; round < 10; round++) {
        struct round r;
        mark_round(&pms, seed, 1, false, &r);
        note(r.objects == LONG_N && r.in_heap == LONG_N,
             "round %d: objects_marked %" PRIu64 ", %" PRIu64 " bits, want %d", round,
             r.objects, r.in_heap, LONG_N);
        note(r.bytes == (uint64_t)LONG_N * node_size, "round %d: bytes_marked %" PRIu64,
             round, r.bytes);
        note(r.workers == NPROCS, "round %d: %u workers", round, r.workers);
        size_t unmarked = 0;
        for (size_t i = 0; i < LONG_N; i++)
            unmarked += !mark_is_marked((uintptr_t)SHOW(hidden[i]));
        note(unmarked == 0, "round %d: %zu list nodes unmarked", round, unmarked);
    }
    heap_for_each_span(clear_span_marks, NULL);
    leave_pause();
    end_manual();
    chain_root = NULL;
    free(hidden);
    assert_notes("single list");
}
END_TEST

/* Worker 0's stack holds 64 entries: it overflows again and again while the helpers'
 * stacks do not.  mark_drain runs the parallel mark, then rescans marked objects, until
 * no overflow is left; still every object is counted exactly once. */
START_TEST(parallel_mark_overflow_rescan)
{
    begin_manual();
    build_graph();
    size_t node_size = gc_size(reach[0]);
    reset_notes();
    static struct mark_state small;
    mark_init(&small, 64);
    enter_pause();
    uintptr_t seed[1] = {(uintptr_t)graph_root};
    for (int round = 0; round < 5; round++) {
        struct round r;
        mark_round(&small, seed, 1, true, &r);
        r.workers = 0;   /* mark_drain reports none */
        check_graph_round(round, &r, node_size, 0);
        note(small.cap <= 64, "round %d: the stack grew to %zu entries", round, small.cap);
    }
    heap_for_each_span(clear_span_marks, NULL);
    leave_pause();
    end_manual();
    drop_graph();
    mark_destroy(&small);
    assert_notes("overflowing parallel mark");
}
END_TEST

/* GCPROCS above MARK_WORKERS_MAX: the job has MARK_WORKERS_MAX workers, no more. */
START_TEST(parallel_mark_clamped_to_max_workers)
{
    begin_manual();
    build_graph();
    size_t node_size = gc_size(reach[0]);
    reset_notes();
    reset_state(&pms, (size_t)1 << 20);
    enter_pause();
    int saved = opt.procs;
    opt.procs = 1000;   /* as GCPROCS=1000 would */
    unsigned max = mark_workers_max();
    uintptr_t seed[1] = {(uintptr_t)graph_root};
    for (int round = 0; round < 3; round++) {
        struct round r;
        mark_round(&pms, seed, 1, false, &r);
        check_graph_round(round, &r, node_size, MARK_WORKERS_MAX);
    }
    opt.procs = saved;
    /* And back to four: the 60 extra helpers stay parked. */
    struct round r;
    mark_round(&pms, seed, 1, false, &r);
    check_graph_round(99, &r, node_size, NPROCS);
    heap_for_each_span(clear_span_marks, NULL);
    leave_pause();
    end_manual();
    drop_graph();
    ck_assert_uint_eq(max, MARK_WORKERS_MAX);
    assert_notes("64 workers");
}
END_TEST

/* ==== lazy sweeping ======================================================================== */

/* Per (kind, class): spans on the unswept lists.  Each must be two generations behind,
 * of that kind and class, and not cached. */
struct list_census {
    unsigned n[NUM_KINDS][NUM_CLASSES + 1];
    unsigned total;
};

static void take_list_census(struct list_census *lc, const char *where)
{
    AO_t gen = AO_load(&sweep_gen);
    memset(lc, 0, sizeof *lc);
    struct mutator *m = alloc_self;
    critical_enter(m);   /* collector locks are taken only inside one */
    for (unsigned k = 0; k < NUM_KINDS; k++)
        for (unsigned c = 1; c <= NUM_CLASSES; c++) {
            struct central *cl = &alloc_central[k][c];
            pthread_mutex_lock(&cl->lock);
            for (int l = 0; l < 2; l++)
                for (struct span *s = cl->unswept[l]; s; s = s->next) {
                    lc->n[k][c]++;
                    lc->total++;
                    note(AO_load(&s->sweepgen) == gen - 2 && s->kind == k && s->cls == c &&
                             !s->cached && span_state(s) == SPAN_SMALL,
                         "%s: span %p on unswept list [%u][%u] has sweepgen %lu (gen %lu), "
                         "kind %u class %u cached %u state %u",
                         where, (void *)s->base, k, c, (unsigned long)AO_load(&s->sweepgen),
                         (unsigned long)gen, s->kind, s->cls, s->cached, span_state(s));
                }
            pthread_mutex_unlock(&cl->lock);
        }
    critical_leave(m);
}

/* Every span in use, by generation (world stopped). */
struct span_census {
    AO_t gen;
    unsigned small_unswept, small_swept, small_other;
    unsigned large_unswept, large_swept, large_other;
    unsigned swept[NUM_KINDS][NUM_CLASSES + 1];
    uint64_t bitmap_bytes;   /* allocated bytes by the bitmaps */
};

static void census_span(struct span *s, void *arg)
{
    struct span_census *sc = arg;
    AO_t g = AO_load(&s->sweepgen);
    if (s->state == SPAN_SMALL) {
        if (g == sc->gen - 2)
            sc->small_unswept++;
        else if (g == sc->gen) {
            sc->small_swept++;
            sc->swept[s->kind][s->cls]++;
        } else
            sc->small_other++;
        uint64_t n = 0;
        for (int w = 0; w < BITMAP_WORDS; w++)
            n += (uint64_t)__builtin_popcountll(AO_load(&s->alloc_bits[w]));
        sc->bitmap_bytes += n * s->size;
    } else {
        if (g == sc->gen - 2)
            sc->large_unswept++;
        else if (g == sc->gen)
            sc->large_swept++;
        else
            sc->large_other++;
        if (AO_load(&s->alloc_bits[0]) & 1)
            sc->bitmap_bytes += span_object_size(s);
    }
}

static void take_span_census(struct span_census *sc)
{
    memset(sc, 0, sizeof *sc);
    sc->gen = AO_load(&sweep_gen);
    heap_for_each_span(census_span, sc);
}

/* gc_read_memstats' contract (the list of tests/test_memstats.c's check_snapshot). */
static void note_memstats(const struct gc_memstats *m, const char *where)
{
    note(m->alloc == m->heap_alloc, "%s: alloc %" PRIu64 " != heap_alloc %" PRIu64, where,
         m->alloc, m->heap_alloc);
    note(m->heap_sys == m->heap_idle + m->heap_inuse, "%s: heap_sys != idle + inuse", where);
    note(m->heap_released <= m->heap_idle, "%s: heap_released > heap_idle", where);
    note(m->heap_objects == m->mallocs - m->frees, "%s: heap_objects != mallocs - frees",
         where);
    note(m->frees <= m->mallocs, "%s: frees %" PRIu64 " > mallocs %" PRIu64, where, m->frees,
         m->mallocs);
    note(m->sys == m->heap_sys + m->stack_sys + m->mspan_sys + m->mcache_sys +
                       m->buck_hash_sys + m->gc_sys + m->other_sys,
         "%s: sys != the sum of *_sys", where);
    note(m->heap_alloc <= m->heap_inuse, "%s: heap_alloc %" PRIu64 " > heap_inuse %" PRIu64,
         where, m->heap_alloc, m->heap_inuse);
    note(m->heap_alloc <= m->total_alloc, "%s: heap_alloc > total_alloc", where);
    note(m->mspan_inuse <= m->mspan_sys, "%s: mspan_inuse > mspan_sys", where);
    note(m->mcache_inuse <= m->mcache_sys, "%s: mcache_inuse > mcache_sys", where);
    uint64_t bm = 0, bf = 0;
    for (int c = 1; c < GC_NUM_SIZE_CLASSES; c++) {
        note(m->by_size[c].frees <= m->by_size[c].mallocs, "%s: by_size[%d] frees > mallocs",
             where, c);
        bm += m->by_size[c].mallocs;
        bf += m->by_size[c].frees;
    }
    note(bm <= m->mallocs && bf <= m->frees, "%s: by_size sums above the totals", where);
}

/* Three classes of garbage with a quarter kept alive in each: A (scanned, 48 B),
 * B (scanned, 512 B), C (noscan, 256 B); three dead large objects and one kept. */
enum { SW_A = 48, SW_B = 512, SW_C = 256, NA = 1750, NB = 330, NC = 330, NKEEP = 1024 };
static void *volatile sweep_keep[NKEEP];   /* data segment: a root */
static int nsweep_keep;
static uintptr_t sweep_dead[NA + NB + NC + 3];
static int nsweep_dead;
static int keep_c_first, keep_large;   /* indices in sweep_keep */

static __attribute__((noinline)) void fill_classes(void)
{
    static const struct { size_t size, n; bool atomic; } plan[] = {
        {SW_A, NA, false}, {SW_B, NB, false}, {SW_C, NC, true}};
    nsweep_keep = nsweep_dead = 0;
    for (size_t k = 0; k < 3; k++)
        for (size_t i = 0; i < plan[k].n; i++) {
            void *p = plan[k].atomic ? gc_malloc_atomic(plan[k].size) : gc_malloc(plan[k].size);
            ck_assert_ptr_nonnull(p);
            memset(p, 0x11, plan[k].size);   /* no pointers */
            if (i % 4 == 0) {
                if (k == 2 && i == 0)
                    keep_c_first = nsweep_keep;
                sweep_keep[nsweep_keep++] = p;
            }
            else
                sweep_dead[nsweep_dead++] = HIDE(p);
        }
    for (int i = 0; i < 3; i++) {
        void *p = gc_malloc(40 * KiB);
        ck_assert_ptr_nonnull(p);
        sweep_dead[nsweep_dead++] = HIDE(p);
    }
    keep_large = nsweep_keep;
    sweep_keep[nsweep_keep++] = gc_malloc(40 * KiB);
}

static bool span_has_free_slot(const struct span *s)
{
    for (uint32_t i = 0; i < s->nelems; i++)
        if (!(AO_load(&s->alloc_bits[i >> 6]) & ((AO_t)1 << (i & 63))))
            return true;
    return false;
}

static bool on_partial_list(struct central *c, const struct span *want)
{
    bool found = false;
    critical_enter(alloc_self);
    pthread_mutex_lock(&c->lock);
    for (struct span *s = c->partial; s; s = s->next)
        found |= s == want;
    pthread_mutex_unlock(&c->lock);
    critical_leave(alloc_self);
    return found;
}

static struct gc_memstats mem0, mem1, mem2;
static struct list_census lc0, lc1, lc2, lc3;
static struct span_census sc0, sc1, sc2;

START_TEST(lazy_sweep_by_class)
{
    const unsigned ca = sc_of(SW_A), cb = sc_of(SW_B), cc = sc_of(SW_C);
    const uint64_t size_a = sc_table[ca].size, size_b = sc_table[cb].size;
    ck_assert_uint_ne(ca, cb);
    begin_manual();
    fill_classes();
    clobber_stack();
    reset_notes();
    static struct mark_state ms;
    reset_state(&ms, (size_t)1 << 20);

    enter_pause();
    roots_scan_stacks(&ms);
    roots_scan_globals(&ms);
    mark_drain(&ms);
    AO_t gen0 = AO_load(&sweep_gen);
    sweep_begin();
    AO_t gen = AO_load(&sweep_gen);
    note(gen == gen0 + 2, "sweep_gen %lu -> %lu", (unsigned long)gen0, (unsigned long)gen);
    note(sweep_is_active(), "sweep_begin left sweep_active clear");
    /* Every span is unswept now, and every small one is on its class's unswept list
     * (the caches were flushed, nothing was swept yet). */
    take_span_census(&sc0);
    take_list_census(&lc0, "after sweep_begin");
    note(sc0.small_swept + sc0.small_other + sc0.large_swept + sc0.large_other == 0,
         "after sweep_begin: swept spans small %u/%u large %u/%u", sc0.small_swept,
         sc0.small_other, sc0.large_swept, sc0.large_other);
    note(sc0.small_unswept == lc0.total, "%u small spans but %u on unswept lists",
         sc0.small_unswept, lc0.total);
    note(sc0.large_unswept >= 4, "only %u large spans", sc0.large_unswept);
    note(lc0.n[KIND_SCAN][ca] >= NA / sc_table[ca].nelems &&
             lc0.n[KIND_SCAN][cb] >= NB / sc_table[cb].nelems &&
             lc0.n[KIND_NOSCAN][cc] >= NC / sc_table[cc].nelems,
         "unswept spans A %u B %u C %u: fewer than allocated", lc0.n[KIND_SCAN][ca],
         lc0.n[KIND_SCAN][cb], lc0.n[KIND_NOSCAN][cc]);
    stw_start_world();

    /* Half-way: the world runs with everything unswept. */
    gc_read_memstats(&mem0);
    note_memstats(&mem0, "sweep begun");

    /* An object of class A: its thread sweeps A's spans until one has room. */
    void *volatile pa = gc_malloc(SW_A);
    struct span *sa = heap_span_of((uintptr_t)pa);
    note(sa && sa->cls == ca && sa->kind == KIND_SCAN && sa->cached &&
             AO_load(&sa->sweepgen) == gen,
         "class A object %p in span cls %u cached %u sweepgen %lu (gen %lu)", (void *)pa,
         sa ? sa->cls : 0, sa ? sa->cached : 0, sa ? (unsigned long)sa->sweepgen : 0,
         (unsigned long)gen);
    take_list_census(&lc1, "after a class A allocation");
    note(lc1.n[KIND_SCAN][ca] < lc0.n[KIND_SCAN][ca], "class A: unswept spans %u -> %u",
         lc0.n[KIND_SCAN][ca], lc1.n[KIND_SCAN][ca]);
    for (unsigned k = 0; k < NUM_KINDS; k++)
        for (unsigned c = 1; c <= NUM_CLASSES; c++)
            if (!(k == KIND_SCAN && c == ca))
                note(lc1.n[k][c] == lc0.n[k][c],
                     "a class A allocation swept [%u][%u]: unswept %u -> %u", k, c,
                     lc0.n[k][c], lc1.n[k][c]);

    /* sweep_for_class itself, for class B: a swept span with room, cached for the
     * caller, taken off B's unswept lists and no other. */
    struct span *sb = sweep_for_class(KIND_SCAN, cb);
    note(sb != NULL, "sweep_for_class(B) found no span");
    if (sb) {
        note(sb->cls == cb && sb->kind == KIND_SCAN && sb->cached &&
                 AO_load(&sb->sweepgen) == gen && span_state(sb) == SPAN_SMALL,
             "sweep_for_class(B): cls %u kind %u cached %u sweepgen %lu state %u", sb->cls,
             sb->kind, sb->cached, (unsigned long)sb->sweepgen, span_state(sb));
        note(span_has_free_slot(sb), "sweep_for_class(B) returned a full span");
    }
    take_list_census(&lc2, "after sweep_for_class(B)");
    note(lc2.n[KIND_SCAN][cb] < lc1.n[KIND_SCAN][cb], "class B: unswept spans %u -> %u",
         lc1.n[KIND_SCAN][cb], lc2.n[KIND_SCAN][cb]);
    for (unsigned k = 0; k < NUM_KINDS; k++)
        for (unsigned c = 1; c <= NUM_CLASSES; c++)
            if (!(k == KIND_SCAN && c == cb))
                note(lc2.n[k][c] == lc1.n[k][c],
                     "sweep_for_class(B) swept [%u][%u]: unswept %u -> %u", k, c,
                     lc1.n[k][c], lc2.n[k][c]);
    /* Filed back, it is a swept partial span: the next B allocation takes it, and
     * sweeps nothing more. */
    void *volatile pb = NULL;
    if (sb) {
        struct central *c = &alloc_central[KIND_SCAN][cb];
        critical_enter(alloc_self);
        pthread_mutex_lock(&c->lock);
        sb->cached = 0;
        alloc_file_span(c, sb);
        pthread_mutex_unlock(&c->lock);
        critical_leave(alloc_self);
        note(sb->list == LIST_PARTIAL && on_partial_list(c, sb),
             "span from sweep_for_class not on B's partial list once filed (list %u)",
             sb->list);
        pb = gc_malloc(SW_B);
        note(heap_span_of((uintptr_t)pb) == sb, "a B allocation took span %p, not the "
             "swept partial %p", (void *)heap_span_of((uintptr_t)pb), (void *)sb);
    }
    take_list_census(&lc3, "after a class B allocation");
    for (unsigned k = 0; k < NUM_KINDS; k++)
        for (unsigned c = 1; c <= NUM_CLASSES; c++)
            note(lc3.n[k][c] == lc2.n[k][c],
                 "an allocation with a swept partial span swept [%u][%u]: %u -> %u", k, c,
                 lc2.n[k][c], lc3.n[k][c]);
    note(lc3.n[KIND_NOSCAN][cc] == lc0.n[KIND_NOSCAN][cc] && lc3.n[KIND_NOSCAN][cc] > 0,
         "class C swept by allocations of A and B");

    /* gc_free of live objects in spans still unswept (a C object, the kept large one):
     * counted freed now, and neither live nor freed again by their sweep. */
    void *fc = sweep_keep[keep_c_first], *fl = sweep_keep[keep_large];
    struct span *sfc = heap_span_of((uintptr_t)fc), *sfl = heap_span_of((uintptr_t)fl);
    note(AO_load(&sfc->sweepgen) == gen - 2 && AO_load(&sfl->sweepgen) == gen - 2,
         "objects to free are in swept spans already");
    gc_free(fc);
    gc_free(fl);
    note(gc_base(fc) == NULL && gc_base(fl) == NULL, "gc_free left objects allocated");
    note(span_state(sfl) == SPAN_LARGE, "a large span unswept was freed at once by gc_free");
    sweep_keep[keep_c_first] = sweep_keep[keep_large] = NULL;
    take_list_census(&lc3, "after gc_free in unswept spans");
    for (unsigned k = 0; k < NUM_KINDS; k++)
        for (unsigned c = 1; c <= NUM_CLASSES; c++)
            note(lc3.n[k][c] == lc2.n[k][c], "gc_free changed unswept list [%u][%u]", k, c);
    gc_read_memstats(&mem1);
    note_memstats(&mem1, "sweep half done");
    note(mem1.heap_alloc <= mem0.heap_alloc + size_a + size_b - sc_table[cc].size - 40 * KiB,
         "heap_alloc grew by more than two objects: %" PRIu64 " -> %" PRIu64,
         mem0.heap_alloc, mem1.heap_alloc);

    /* In a pause half-way: small spans swept are A's and B's only, no large one. */
    stw_stop_world();
    take_span_census(&sc1);
    stw_start_world();
    note(sc1.large_swept == 0 && sc1.large_unswept == sc0.large_unswept,
         "half-way: large spans swept %u, unswept %u (were %u)", sc1.large_swept,
         sc1.large_unswept, sc0.large_unswept);
    note(sc1.small_other == 0, "half-way: %u small spans being swept", sc1.small_other);
    note(sc1.swept[KIND_SCAN][ca] >= 1 && sc1.swept[KIND_SCAN][cb] >= 1,
         "half-way: swept spans A %u B %u", sc1.swept[KIND_SCAN][ca],
         sc1.swept[KIND_SCAN][cb]);
    note(sc1.small_swept == sc1.swept[KIND_SCAN][ca] + sc1.swept[KIND_SCAN][cb],
         "half-way: %u small spans swept, %u of them A or B", sc1.small_swept,
         sc1.swept[KIND_SCAN][ca] + sc1.swept[KIND_SCAN][cb]);

    uint64_t live = sweep_finish();
    note(!sweep_is_active(), "sweep_finish left sweep_active set");
    int left = 0;
    for (unsigned k = 0; k < NUM_KINDS; k++)
        for (unsigned c = 1; c <= NUM_CLASSES; c++)
            left += alloc_central[k][c].unswept[0] != NULL || alloc_central[k][c].unswept[1] != NULL;
    note(left == 0, "after sweep_finish %d classes still have unswept spans", left);
    gc_read_memstats(&mem2);
    note_memstats(&mem2, "sweep finished");
    note(mem2.heap_alloc == live + size_a + size_b,
         "after sweep_finish heap_alloc %" PRIu64 ", live %" PRIu64 " + 2 objects %" PRIu64,
         mem2.heap_alloc, live, size_a + size_b);
    note(mem2.heap_alloc < mem1.heap_alloc, "sweeping the rest freed nothing: %" PRIu64
         " -> %" PRIu64, mem1.heap_alloc, mem2.heap_alloc);

    stop_and_flush();
    take_span_census(&sc2);
    leave_pause();
    end_manual();
    note(sc2.small_unswept + sc2.small_other + sc2.large_unswept + sc2.large_other == 0,
         "after sweep_finish: unswept spans small %u/%u large %u/%u", sc2.small_unswept,
         sc2.small_other, sc2.large_unswept, sc2.large_other);
    note(sc2.bitmap_bytes == mem2.heap_alloc, "bitmaps hold %" PRIu64 " bytes, heap_alloc %"
         PRIu64, sc2.bitmap_bytes, mem2.heap_alloc);
    for (int i = 0; i < nsweep_keep; i++)
        note(!sweep_keep[i] || gc_base(sweep_keep[i]) == sweep_keep[i],
             "kept object %d was freed", i);
    sfl = heap_span_of((uintptr_t)fl);
    note(!sfl || span_state(sfl) != SPAN_LARGE,
         "the large span emptied by gc_free was not freed by its sweep");
    int alive = 0;
    for (int i = 0; i < nsweep_dead; i++)
        alive += gc_base(SHOW(sweep_dead[i])) == SHOW(sweep_dead[i]);
    note(alive <= nsweep_dead / 10, "%d of %d dead objects survived", alive, nsweep_dead);
    for (int i = 0; i < nsweep_keep; i++)
        sweep_keep[i] = NULL;
    assert_notes("lazy sweep");
    /* And the debug verifier agrees (it aborts on any inconsistency). */
    stop_and_flush();
    verify_heap();
    stw_start_world();
}
END_TEST

/* ==== the barrier buffer =================================================================== */

struct obj {
    void *p[4];
};

static void *obj(void)
{
    void *p = gc_malloc(sizeof(struct obj));
    ck_assert_ptr_nonnull(p);
    return p;
}

static void barrier_on(void)
{
    mark_set_atomic(true);   /* as a concurrent mark: the shared grey list exists */
    ck_assert_uint_eq(drain_shared(NULL, 0), 0);
    ck_assert(!mark_shared_pending());
    gc_barrier_active_ = 1;
}

static void barrier_off(void)
{
    gc_barrier_active_ = 0;
    struct mutator *m = alloc_self;
    m->wbuf_n = 0;
    drain_shared(NULL, 0);
    mark_set_atomic(false);
    clear_all_marks();
}

static bool marked(const void *p)
{
    return mark_is_marked((uintptr_t)p);
}

static int static_target;
static void *volatile static_slot;

START_TEST(barrier_records_old_and_new_values)
{
    begin_manual();
    struct mutator *m = alloc_self;
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->wbuf_n, 0);
    void **h = gc_malloc(8 * sizeof *h);
    ck_assert_ptr_nonnull(h);
    void *a = obj(), *b = obj(), *c = gc_malloc_atomic(48);
    ck_assert_ptr_nonnull(c);
    h[0] = a;

    /* Off: nothing is recorded. */
    GC_WRITE(h[0], b);
    ck_assert_ptr_eq(h[0], b);
    ck_assert_uint_eq(m->wbuf_n, 0);

    barrier_on();
    GC_WRITE(h[0], c);   /* old b, new c */
    ck_assert_ptr_eq(h[0], c);
    ck_assert_uint_eq(m->wbuf_n, 2);
    ck_assert_ptr_eq((void *)m->wbuf[0], b);
    ck_assert_ptr_eq((void *)m->wbuf[1], c);
    /* Buffered, not shaded yet. */
    ck_assert(!marked(b) && !marked(c));
    ck_assert(!mark_shared_pending());

    /* NULL and non-heap values are not recorded, old or new. */
    int local = 0;
    GC_WRITE(h[1], NULL);                 /* NULL over NULL */
    GC_WRITE(h[1], (void *)&local);       /* a stack address over NULL */
    GC_WRITE(h[1], (void *)&static_target); /* a global's address over a stack address */
    GC_WRITE(h[1], (void *)(uintptr_t)1);
    GC_WRITE(h[1], (void *)UINTPTR_MAX);
    ck_assert_uint_eq(m->wbuf_n, 2);
    GC_WRITE(h[1], a);                    /* heap over non-heap: the new value only */
    ck_assert_uint_eq(m->wbuf_n, 3);
    ck_assert_ptr_eq((void *)m->wbuf[2], a);
    GC_WRITE(h[1], NULL);                 /* NULL over heap: the old value only */
    ck_assert_uint_eq(m->wbuf_n, 4);
    ck_assert_ptr_eq((void *)m->wbuf[3], a);
    ck_assert_ptr_null(h[1]);
    /* Interior pointers are recorded as they are; non-heap slots are barriered too. */
    GC_WRITE(h[2], (char *)b + 8);
    ck_assert_uint_eq(m->wbuf_n, 5);
    ck_assert_ptr_eq((void *)m->wbuf[4], (char *)b + 8);
    static_slot = a;
    GC_WRITE(static_slot, NULL);
    ck_assert_uint_eq(m->wbuf_n, 6);
    ck_assert_ptr_eq((void *)m->wbuf[5], a);
    /* gc_write_range: the range's old contents, word by word, heap values only. */
    h[4] = a;
    h[5] = (void *)&local;
    h[6] = c;
    gc_write_range(&h[4], 3 * sizeof *h);
    ck_assert_uint_eq(m->wbuf_n, 8);
    ck_assert_ptr_eq((void *)m->wbuf[6], a);
    ck_assert_ptr_eq((void *)m->wbuf[7], c);
    ck_assert(!marked(a) && !marked(b) && !marked(c));

    /* barrier_flush shades the buffer into the shared grey list: marked, and the two
     * scanned objects (a and b, once each) queued; the noscan one is only marked. */
    critical_enter(m);
    barrier_flush(m);
    critical_leave(m);
    ck_assert_uint_eq(m->wbuf_n, 0);
    ck_assert(marked(a) && marked(b) && marked(c));
    ck_assert(mark_shared_pending());
    struct mark_range got[8];
    ck_assert_uint_eq(drain_shared(got, 8), 2);
    uintptr_t lo0 = got[0].lo < got[1].lo ? got[0].lo : got[1].lo;
    uintptr_t lo1 = got[0].lo < got[1].lo ? got[1].lo : got[0].lo;
    uintptr_t wa = (uintptr_t)a < (uintptr_t)b ? (uintptr_t)a : (uintptr_t)b;
    uintptr_t wb = (uintptr_t)a < (uintptr_t)b ? (uintptr_t)b : (uintptr_t)a;
    ck_assert_uint_eq(lo0, wa);
    ck_assert_uint_eq(lo1, wb);
    ck_assert_uint_eq(got[0].hi - got[0].lo, gc_size(a));
    ck_assert(!mark_shared_pending());
    /* An empty buffer flushes to nothing. */
    critical_enter(m);
    barrier_flush(m);
    critical_leave(m);
    ck_assert(!mark_shared_pending());

    /* Off again: GC_WRITE records nothing, and the slow path itself re-reads the flag
     * (marking may end between GC_WRITE's test and the call) and neither records nor
     * stores. */
    barrier_off();
    ck_assert(!marked(a));
    GC_WRITE(h[3], a);
    GC_WRITE(h[3], b);
    ck_assert_ptr_eq(h[3], b);
    gc_write_barrier_slow_(&h[3], c);
    ck_assert_ptr_eq(h[3], b);
    ck_assert_uint_eq(m->wbuf_n, 0);
    ck_assert(!mark_shared_pending());
    ck_assert(!marked(a) && !marked(b) && !marked(c));
    end_manual();
}
END_TEST

/* GC_WRITE_ATOMIC records exactly what GC_WRITE records, stores with the given order,
 * and evaluates each argument once. */
START_TEST(barrier_atomic_write_records_like_write)
{
    begin_manual();
    struct mutator *m = alloc_self;
    ck_assert_ptr_nonnull(m);
    void **h = gc_malloc(4 * sizeof *h);
    ck_assert_ptr_nonnull(h);
    void *a = obj(), *b = obj();

    GC_WRITE_ATOMIC(h[0], a, __ATOMIC_RELEASE);   /* off: stored, nothing recorded */
    ck_assert_ptr_eq(__atomic_load_n(&h[0], __ATOMIC_ACQUIRE), a);
    ck_assert_uint_eq(m->wbuf_n, 0);

    barrier_on();
    int i = 0;
    GC_WRITE_ATOMIC(h[i++], b, __ATOMIC_SEQ_CST);   /* old a, new b */
    ck_assert_int_eq(i, 1);
    ck_assert_ptr_eq(h[0], b);
    ck_assert_uint_eq(m->wbuf_n, 2);
    ck_assert_ptr_eq((void *)m->wbuf[0], a);
    ck_assert_ptr_eq((void *)m->wbuf[1], b);
    GC_WRITE_ATOMIC(h[1], NULL, __ATOMIC_RELAXED);   /* NULL over NULL: nothing */
    ck_assert_uint_eq(m->wbuf_n, 2);
    uintptr_t u = 0;   /* an integer slot the size of a pointer */
    GC_WRITE_ATOMIC(u, (uintptr_t)a, __ATOMIC_RELAXED);
    ck_assert_uint_eq(u, (uintptr_t)a);
    ck_assert_uint_eq(m->wbuf_n, 3);
    ck_assert_ptr_eq((void *)m->wbuf[2], a);
    critical_enter(m);
    barrier_flush(m);
    critical_leave(m);
    ck_assert(marked(a) && marked(b));
    barrier_off();
    end_manual();
}
END_TEST

/* 256 values fill the buffer: the store that fills it shades all of them at once. */
enum { WOBJ = 400 };

START_TEST(barrier_buffer_flushes_when_full)
{
    begin_manual();
    struct mutator *m = alloc_self;
    void **olds = gc_malloc(WOBJ * sizeof *olds), **news = gc_malloc(WOBJ * sizeof *news);
    void **slots = gc_malloc(WOBJ * sizeof *slots);
    ck_assert_ptr_nonnull(olds);
    ck_assert_ptr_nonnull(news);
    ck_assert_ptr_nonnull(slots);
    for (int i = 0; i < WOBJ; i++) {
        olds[i] = obj();
        news[i] = obj();
        slots[i] = olds[i];
    }
    const unsigned cap = sizeof m->wbuf / sizeof m->wbuf[0];
    ck_assert_uint_eq(cap, 256);

    /* Even: 127 stores of two values each leave 254; the 128th fills and flushes. */
    barrier_on();
    for (int i = 0; i < 127; i++)
        GC_WRITE(slots[i], news[i]);
    ck_assert_uint_eq(m->wbuf_n, 254);
    ck_assert(!mark_shared_pending());
    for (int i = 0; i < 127; i++)
        must_msg(!marked(olds[i]) && !marked(news[i]), "store %d shaded before a flush", i);
    GC_WRITE(slots[127], news[127]);
    ck_assert_uint_eq(m->wbuf_n, 0);
    ck_assert(mark_shared_pending());
    for (int i = 0; i < 128; i++)
        must_msg(marked(olds[i]) && marked(news[i]), "store %d not shaded by the flush", i);
    ck_assert_uint_eq(drain_shared(NULL, 0), 256);   /* each object queued once */
    GC_WRITE(slots[128], news[128]);
    ck_assert_uint_eq(m->wbuf_n, 2);
    ck_assert(!marked(olds[128]) && !marked(news[128]));
    barrier_off();

    /* Odd: one value first, so the flush falls between a store's old and new value:
     * the old one goes with the full buffer, the new one starts the next. */
    for (int i = 0; i < WOBJ; i++)
        slots[i] = olds[i];
    void **h = gc_malloc(2 * sizeof *h);
    ck_assert_ptr_nonnull(h);
    barrier_on();
    GC_WRITE(h[0], news[WOBJ - 1]);   /* NULL -> heap: one value */
    ck_assert_uint_eq(m->wbuf_n, 1);
    for (int i = 0; i < 127; i++)
        GC_WRITE(slots[i], news[i]);
    ck_assert_uint_eq(m->wbuf_n, 255);
    GC_WRITE(slots[127], news[127]);
    ck_assert_uint_eq(m->wbuf_n, 1);
    ck_assert_ptr_eq((void *)m->wbuf[0], news[127]);
    ck_assert(marked(olds[127]));
    ck_assert(!marked(news[127]));
    ck_assert(marked(news[WOBJ - 1]));
    ck_assert_uint_eq(drain_shared(NULL, 0), 256);
    critical_enter(m);
    barrier_flush(m);
    critical_leave(m);
    ck_assert_uint_eq(m->wbuf_n, 0);
    ck_assert(marked(news[127]));
    ck_assert_uint_eq(drain_shared(NULL, 0), 1);

    /* Many flushes in a row: 3 x 256 values exactly, nothing lost or doubled. */
    barrier_off();
    for (int i = 0; i < WOBJ; i++)
        slots[i] = olds[i];
    barrier_on();
    for (int i = 0; i < 384; i++)
        GC_WRITE(slots[i], news[i]);
    ck_assert_uint_eq(m->wbuf_n, 0);
    ck_assert_uint_eq(drain_shared(NULL, 0), 768);
    for (int i = 0; i < 384; i++)
        must_msg(marked(olds[i]) && marked(news[i]), "store %d of 384 not shaded", i);
    for (int i = 384; i < WOBJ; i++)
        must_msg(!marked(olds[i]) && !marked(news[i]), "object %d shaded unwritten", i);
    barrier_off();
    end_manual();
}
END_TEST

/* Each registered thread has its own buffer; a thread that exits flushes it. */
struct writer {
    void **slots, **news;
    struct mutator *m;
    unsigned n_seen;
    uintptr_t seen[6];
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    w->m = alloc_self;
    for (int i = 0; i < 3; i++)
        GC_WRITE(w->slots[i], w->news[i]);
    w->n_seen = alloc_self->wbuf_n;
    memcpy(w->seen, alloc_self->wbuf, sizeof w->seen);
    return NULL;   /* unregisters on return */
}

START_TEST(barrier_buffer_per_thread_and_flushed_at_exit)
{
    begin_manual();
    struct mutator *m = alloc_self;
    void **slots = gc_malloc(3 * sizeof *slots), **news = gc_malloc(3 * sizeof *news);
    ck_assert_ptr_nonnull(slots);
    ck_assert_ptr_nonnull(news);
    void *olds[3];
    for (int i = 0; i < 3; i++) {
        olds[i] = slots[i] = obj();
        news[i] = obj();
    }
    barrier_on();
    void **mine = gc_malloc(sizeof *mine);
    GC_WRITE(mine[0], olds[0]);   /* this thread: one value */
    ck_assert_uint_eq(m->wbuf_n, 1);
    struct writer w = {slots, news, NULL, 0, {0}};
    pthread_t t;
    ck_assert_int_eq(gc_thread_create(&t, NULL, writer_main, &w), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_ptr_nonnull(w.m);
    ck_assert_ptr_ne(w.m, m);
    ck_assert_uint_eq(w.n_seen, 6);
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_eq((void *)w.seen[2 * i], olds[i]);
        ck_assert_ptr_eq((void *)w.seen[2 * i + 1], news[i]);
    }
    ck_assert_uint_eq(m->wbuf_n, 1);   /* untouched by the other thread */
    ck_assert_ptr_eq((void *)m->wbuf[0], olds[0]);
    /* The exiting thread's buffer went to the shared grey list. */
    for (int i = 0; i < 3; i++)
        ck_assert_msg(marked(olds[i]) && marked(news[i]),
                      "store %d of an exited thread was not shaded", i);
    ck_assert(mark_shared_pending());
    ck_assert_uint_eq(drain_shared(NULL, 0), 6);
    barrier_off();
    end_manual();
}
END_TEST

/* ==== black allocation ========================================================================= */

enum { NBLACK = 800, NWHITE = 800 };
static uintptr_t black_hidden[NBLACK], white_hidden[NWHITE];
static int black_unmarked;

struct reserved {
    struct span *span;
    uint32_t word;
    uint64_t bits;
};
static struct reserved reserved[NUM_KINDS * (NUM_CLASSES + 1)];
static int nreserved;

static size_t black_size(int i)
{
    switch (i % 5) {
    case 0: return 48;
    case 1: return 200;
    case 2: return 5;      /* tiny, noscan */
    case 3: return 1000;
    default: return i % 100 == 4 ? 40 * KiB : 96;   /* some large */
    }
}

static __attribute__((noinline)) void make_white(void)
{
    for (int i = 0; i < NWHITE; i++) {
        void *p = i % 2 ? gc_malloc(black_size(i)) : gc_malloc_atomic(black_size(i));
        ck_assert_ptr_nonnull(p);
        white_hidden[i] = HIDE(p);
    }
}

static __attribute__((noinline)) void make_black(void)
{
    black_unmarked = 0;
    for (int i = 0; i < NBLACK; i++) {
        size_t n = black_size(i);
        void *p = n < TINY_SIZE || i % 3 == 0 ? gc_malloc_atomic(n) : gc_malloc(n);
        ck_assert_ptr_nonnull(p);
        black_unmarked += !mark_is_marked((uintptr_t)p);
        black_hidden[i] = HIDE(p);
    }
}

/* The slots each cache reserved but has not handed out: marked (and allocated) while
 * alloc_black is set. */
static void snapshot_reserved(struct mutator *m)
{
    nreserved = 0;
    for (int k = 0; k < NUM_KINDS; k++)
        for (int c = 1; c <= NUM_CLASSES; c++) {
            struct cache_slot *s = &m->cache[k][c];
            if (s->span && s->free)
                reserved[nreserved++] = (struct reserved){s->span, s->word, s->free};
        }
}

static int count_black(bool want_alive)
{
    int n = 0;
    for (int i = 0; i < NBLACK; i++) {
        void *p = SHOW(black_hidden[i]);
        n += (gc_base(p) == p) == want_alive;
    }
    return n;
}

START_TEST(black_allocation)
{
    begin_manual();
    reset_notes();
    make_white();
    clobber_stack();
    static struct mark_state ms;
    reset_state(&ms, (size_t)1 << 20);

    /* Sweep termination, as a concurrent cycle runs it. */
    enter_pause();
    mark_set_atomic(true);
    roots_scan_stacks(&ms);
    roots_scan_globals(&ms);
    alloc_black = 1;
    stw_start_world();

    /* Marking: what this thread allocates is black, and so is every slot its cache
     * holds in reserve. */
    make_black();
    snapshot_reserved(alloc_self);
    clobber_stack();
    note(black_unmarked == 0, "%d of %d objects allocated black are unmarked", black_unmarked,
         NBLACK);
    note(nreserved > 0, "no cache slot holds reserved slots");
    for (int i = 0; i < nreserved; i++) {
        struct reserved *r = &reserved[i];
        note((AO_load(&r->span->mark_bits[r->word]) & r->bits) == r->bits,
             "span %p word %u: reserved slots %#" PRIx64 " not all marked (%#" PRIx64 ")",
             (void *)r->span->base, r->word, r->bits,
             (uint64_t)AO_load(&r->span->mark_bits[r->word]));
        note((AO_load(&r->span->alloc_bits[r->word]) & r->bits) == r->bits,
             "span %p word %u: reserved slots not allocated", (void *)r->span->base, r->word);
    }

    /* Mark termination: finish the grey work, give back the reserved slots and their
     * black marks, then stop allocating black. */
    stw_stop_world();
    for (struct mutator *m = stw_threads; m; m = m->next)
        barrier_flush(m);
    mark_finish(&ms);
    for (struct mutator *m = stw_threads; m; m = m->next)
        alloc_flush_cache(m);
    for (int i = 0; i < nreserved; i++) {
        struct reserved *r = &reserved[i];
        note((AO_load(&r->span->mark_bits[r->word]) & r->bits) == 0,
             "span %p word %u: unreserved slots still marked (%#" PRIx64 " of %#" PRIx64 ")",
             (void *)r->span->base, r->word,
             (uint64_t)(AO_load(&r->span->mark_bits[r->word]) & r->bits), r->bits);
        note((AO_load(&r->span->alloc_bits[r->word]) & r->bits) == 0,
             "span %p word %u: unreserved slots still allocated", (void *)r->span->base,
             r->word);
    }
    int unmarked = 0;
    for (int i = 0; i < NBLACK; i++)
        unmarked += !mark_is_marked(black_hidden[i] ^ KEY);
    note(unmarked == 0, "%d handed-out black objects lost their mark in the flush", unmarked);
    alloc_black = 0;
    mark_set_atomic(false);
    verify_no_black_to_white();
    uint64_t live = sweep_all();
    verify_heap();
    AO_store(&alloc_heap_live, live);
    leave_pause();

    /* Unreachable, yet alive: allocated during the mark. */
    int alive = count_black(true);
    int white_alive = 0;
    for (int i = 0; i < NWHITE; i++)
        white_alive += gc_base(SHOW(white_hidden[i])) == SHOW(white_hidden[i]);

    /* With alloc_black clear, new objects are white, and so are reserved slots. */
    void *volatile fresh[4] = {gc_malloc(48), gc_malloc_atomic(200), gc_malloc_atomic(5),
                               gc_malloc(40 * KiB)};
    for (int i = 0; i < 4; i++)
        note(!mark_is_marked((uintptr_t)fresh[i]), "object %d allocated white is marked", i);
    snapshot_reserved(alloc_self);
    for (int i = 0; i < nreserved; i++)
        note((AO_load(&reserved[i].span->mark_bits[reserved[i].word]) & reserved[i].bits) == 0,
             "a slot reserved with alloc_black clear is marked");
    for (int i = 0; i < 4; i++)
        fresh[i] = NULL;
    end_manual();
    assert_notes("black allocation");
    ck_assert_msg(alive == NBLACK, "%d of %d objects allocated black died in their cycle",
                  NBLACK - alive, NBLACK);
    ck_assert_msg(white_alive <= NWHITE / 10, "%d of %d unreachable white objects survived",
                  white_alive, NWHITE);

    /* The next cycle, with nothing black, frees them: they were garbage all along. */
    clobber_stack();
    gc_collect();
    int dead = count_black(false);
    ck_assert_msg(dead >= NBLACK * 9 / 10, "only %d of %d unreachable objects freed by the "
                  "next cycle", dead, NBLACK);
}
END_TEST

/* ==== the suite =============================================================================== */

static Suite *concurrent_units_suite(void)
{
    Suite *s = suite_create("concurrent units");
    TCase *tc = tcase_create("parallel");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, parallel_mark_exact_over_many_rounds);
    tcase_add_test(tc, parallel_mark_empty_stack_terminates);
    tcase_add_test(tc, parallel_mark_single_long_list);
    tcase_add_test(tc, parallel_mark_overflow_rescan);
    tcase_add_test(tc, parallel_mark_clamped_to_max_workers);
    tcase_add_test(tc, parallel_root_scan_finds_every_stack);
    suite_add_tcase(s, tc);

    tc = tcase_create("lazy");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, lazy_sweep_by_class);
    suite_add_tcase(s, tc);

    tc = tcase_create("barrier");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, barrier_records_old_and_new_values);
    tcase_add_test(tc, barrier_atomic_write_records_like_write);
    tcase_add_test(tc, barrier_buffer_flushes_when_full);
    tcase_add_test(tc, barrier_buffer_per_thread_and_flushed_at_exit);
    suite_add_tcase(s, tc);

    tc = tcase_create("black");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, black_allocation);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    setenv("GCPROCS", "4", 1);   /* four markers, whatever the machine has */
    gc_init();
    SRunner *sr = srunner_create(concurrent_units_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
