/* workers.c - parallel marking: marker threads, work stealing, termination.
 *
 * A mark job runs on up to GCPROCS markers: the thread that runs the cycle (worker 0,
 * which starts with all the grey work the root scan found) and helper threads
 * ("tricolor-mark"), started on first use and parked between jobs.  Helpers are not
 * registered with the collector: stopping the world does not stop them, and they are
 * never in a mark job when the world is stopped by anyone but the job's owner.
 *
 * Each worker drains its own grey stack without any lock.  Work moves between workers
 * through a small public queue per worker: when some worker is idle and the owner's
 * public queue is empty, the owner moves the oldest half of its stack there (the
 * objects nearest the roots: the biggest subgraphs).  A worker whose stack runs dry
 * takes back its own public queue, then the shared grey list (barrier flushes), then
 * steals half of another worker's public queue.  Mark bits are set with a
 * compare-and-swap, so two workers reaching one object push it once.
 *
 * Termination: a worker that finds no work anywhere counts itself idle.  Only a
 * worker that is not idle publishes work, and an idle worker leaves the count before
 * it takes any, so when every worker of the job is idle no public queue holds work
 * and none can gain any: the job is over.  (In a concurrent mark the barrier can add
 * shared work later; mark termination takes it with the world stopped.)
 *
 * Background utilization (concurrent marks): as Go, marking beside the program aims
 * at 25% of GCPROCS CPUs (pacer_worker_split): dedicated workers run flat out; with
 * none, worker 0 is a fractional worker that stays within its share of CPU time.  A
 * fractional worker past its share keeps going only while a CPU is idle (fewer
 * program threads than GCPROCS) and the CPU limiter is off -- that time is counted as
 * idle marking -- and otherwise hands its work to the assists and sleeps for a slice.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <sched.h>
#include <string.h>
#include <time.h>

#define PUB_CAP 2048            /* public queue entries per worker */
#define SHARE_MIN 64            /* publish only when the stack holds more than this */
#define FRACTION_SLICE_NS 1000000

struct worker {
    struct mark_state *ms;          /* worker 0: the cycle's; helpers: own */
    struct mark_state own;
    pthread_mutex_t lock;           /* guards pub */
    struct mark_range *pub;
    atomic_word pub_n;
    uint64_t cpu_ns;                /* this job */
    uint64_t idle_cpu_ns;           /* of which: on a CPU nobody else wanted */
    unsigned id;
    pthread_t thread;
} __attribute__((aligned(64)));

static struct worker *workers;      /* MARK_WORKERS_MAX, mapped on first use */
static unsigned nhelpers;           /* helper threads started (workers 1..nhelpers) */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;   /* a job, or its end */
static uint64_t job_gen;            /* bumped for each job */
static unsigned job_n;              /* workers in the current job, worker 0 included */
static unsigned job_running;        /* helpers still in the current job */
static bool job_concurrent;
static atomic_word idle;            /* workers of the job with nothing to do */
static bool job_roots;              /* a root job: share out thread stacks, no draining */
static struct mutator **root_list;  /* the threads of a root job */
static size_t root_n;
static atomic_word root_next, root_bytes;
static double fraction_cpus;        /* worker 0's CPU share when fractional (0: none) */

unsigned mark_workers_max(void)
{
    unsigned n = (unsigned)opt.procs;
    return n > MARK_WORKERS_MAX ? MARK_WORKERS_MAX : n;
}

/* ---- finding work ---------------------------------------------------------------- */

static void publish(struct worker *w)
{
    struct mark_state *ms = w->ms;
    pthread_mutex_lock(&w->lock);
    size_t n = AO_load(&w->pub_n);
    if (n == 0) {
        n = ms->top / 2;
        if (n > PUB_CAP)
            n = PUB_CAP;
        mark_move_oldest(w->pub, ms, n);
        AO_store_release(&w->pub_n, n);
    }
    pthread_mutex_unlock(&w->lock);
}

/* Take up to half (all, from one's own) of v's public queue into w's stack. */
static bool take_from(struct worker *w, struct worker *v)
{
    if (AO_load(&v->pub_n) == 0)
        return false;
    pthread_mutex_lock(&v->lock);
    size_t n = AO_load(&v->pub_n), k = v == w ? n : (n + 1) / 2;
    if (k) {   /* the oldest entries: the front of the queue */
        mark_push_all(w->ms, v->pub, k);
        memmove(v->pub, v->pub + k, (n - k) * sizeof *v->pub);
        AO_store_release(&v->pub_n, n - k);
    }
    pthread_mutex_unlock(&v->lock);
    return k > 0;
}

static bool steal(struct worker *w)
{
    unsigned n = job_n;
    for (unsigned i = 1; i < n; i++)
        if (take_from(w, &workers[(w->id + i) % n]))
            return true;
    return false;
}

static bool work_visible(void)
{
    for (unsigned i = 0; i < job_n; i++)
        if (AO_load(&workers[i].pub_n))
            return true;
    return job_concurrent && mark_shared_pending();
}

static bool find_work(struct worker *w)
{
    return take_from(w, w) || mark_take_shared(w->ms, 4096) || steal(w);
}

static void nap(unsigned spins)
{
    if (spins < 64) {
        sched_yield();
        return;
    }
    /* Idle in a concurrent mark: do not take the CPU from the program. */
    struct timespec ts = {0, spins < 1024 ? 20000 : 200000};
    nanosleep(&ts, NULL);
}

/* ---- fractional worker ---------------------------------------------------------------- */

struct fraction {
    uint64_t wall0, cpu0;           /* job start */
    uint64_t last_cpu;
    bool idle_mode;
};

/* A CPU nobody else wants: fewer program threads than GCPROCS (the collector thread
 * is registered too, the helpers are not).  Thread counts, not CPU clocks: the kernel
 * folds other threads' run time into the process clock only at ticks, too coarse for
 * marks of a few milliseconds.  A thread blocked in a system call counts as busy. */
static bool cpu_idle(void)
{
    int mutators = __atomic_load_n(&stw_nthreads, __ATOMIC_RELAXED) - 1;
    return mutators < opt.procs && !cycle.limiting;
}

/* Worker 0 as a fractional worker: returns when it may go on marking.  Past its CPU
 * share it goes on while a CPU is idle (counted as idle marking); otherwise it gives
 * its work to the assists and sleeps for a slice. */
static void fraction_check(struct worker *w, struct fraction *f)
{
    for (;;) {
        uint64_t now = os_now_ns(), cpu = os_thread_cpu_ns();
        if (f->idle_mode)
            w->idle_cpu_ns += cpu - f->last_cpu;
        f->last_cpu = cpu;
        double share = fraction_cpus * (double)(now - f->wall0);
        f->idle_mode = false;
        if ((double)(cpu - f->cpu0) - (double)w->idle_cpu_ns <= share)
            return;
        if (cpu_idle()) {
            f->idle_mode = true;
            return;
        }
        if (w->ms->top > 0 || w->ms->overflowed)
            mark_give_shared(w->ms);
        struct timespec ts = {0, FRACTION_SLICE_NS};
        nanosleep(&ts, NULL);
        f->last_cpu = os_thread_cpu_ns();
        if (!mark_shared_pending())
            return;   /* the assists finished it: the job is about to end */
        mark_take_shared(w->ms, 4096);
    }
}

/* ---- the job --------------------------------------------------------------------------- */

static void work(struct worker *w)
{
    struct mark_state *ms = w->ms;
    struct fraction f;
    bool fractional = w->id == 0 && job_concurrent && fraction_cpus > 0;
    unsigned countdown = 16;
    uint64_t c0 = os_thread_cpu_ns();
    if (fractional) {
        memset(&f, 0, sizeof f);
        f.wall0 = os_now_ns();
        f.cpu0 = f.last_cpu = c0;
    }
    for (;;) {
        while (ms->top > 0) {
            if (ms->top > SHARE_MIN && AO_load(&idle) && AO_load(&w->pub_n) == 0)
                publish(w);
            if (job_concurrent) {
                mark_offer_shared(ms);
                uint64_t before = ms->bytes_scanned;
                mark_step(ms);
                /* Credit for the assists: they spend it before scanning themselves. */
                atomic_add(&mark_bg_scanned, ms->bytes_scanned - before);
                atomic_add(&mark_bg_credit, ms->bytes_scanned - before);
                if (w->id == 0 && --countdown == 0) {
                    countdown = 16;
                    cycle_revise_assist_ratio();
                    if (fractional)
                        fraction_check(w, &f);
                }
            } else {
                mark_step(ms);
            }
        }
        if (find_work(w))
            continue;
        atomic_add(&idle, 1);
        for (unsigned spins = 0;; spins++) {
            if (work_visible()) {
                atomic_add(&idle, (AO_t)-1);
                if (find_work(w))
                    break;
                atomic_add(&idle, 1);
            }
            if (AO_load(&idle) == job_n && !(job_concurrent && mark_shared_pending())) {
                w->cpu_ns = os_thread_cpu_ns() - c0;
                return;   /* the idle count stays: see the termination note above */
            }
            nap(job_concurrent ? spins : spins % 64);
        }
    }
}

/* A root job: claim threads one at a time and scan their stacks into this worker's
 * grey stack (the caller folds it back). */
static void work_roots(struct worker *w)
{
    for (;;) {
        AO_t i = AO_fetch_and_add1(&root_next);
        if (i >= root_n)
            return;
        atomic_add(&root_bytes, roots_scan_thread(w->ms, root_list[i]));
    }
}

static void *helper_main(void *arg)
{
    struct worker *w = arg;
    pthread_setname_np(pthread_self(), "tricolor-mark");
    uint64_t seen = 0;
    pthread_mutex_lock(&pool_lock);
    for (;;) {
        while (job_gen == seen)
            pthread_cond_wait(&pool_cv, &pool_lock);
        seen = job_gen;
        if (w->id >= job_n)
            continue;
        pthread_mutex_unlock(&pool_lock);
        if (job_roots)
            work_roots(w);
        else
            work(w);
        pthread_mutex_lock(&pool_lock);
        if (--job_running == 0)
            pthread_cond_broadcast(&pool_cv);
    }
    return NULL;
}

/* The workers and worker 0's queue, mapped on first use (mapped memory: the grey
 * addresses they hold are not roots).  False when memory is short: the caller marks
 * on its own thread. */
static bool pool_ready(void)
{
    if (!workers) {
        struct worker *v = os_map(MARK_WORKERS_MAX * sizeof *workers, SYS_GC);
        if (!v)
            return false;
        for (unsigned i = 0; i < MARK_WORKERS_MAX; i++) {
            v[i].id = i;
            pthread_mutex_init(&v[i].lock, NULL);
        }
        workers = v;
    }
    if (!workers[0].pub)
        workers[0].pub = os_map(PUB_CAP * sizeof *workers[0].pub, SYS_GC);
    return workers[0].pub != NULL;
}

/* Marking alone, when the pool cannot be set up. */
static void mark_alone(struct mark_state *ms, bool concurrent)
{
    for (;;) {
        while (ms->top > 0)
            mark_step(ms);
        if (mark_take_shared(ms, 4096))
            continue;
        if (!concurrent || !mark_shared_pending())
            return;
        sched_yield();   /* an assist still holds work it will hand back */
    }
}

/* Start helpers up to n - 1 (pool_lock held).  Returns the workers available. */
static unsigned start_helpers(unsigned n)
{
    while (nhelpers + 1 < n) {
        struct worker *w = &workers[nhelpers + 1];
        if (!w->pub && !(w->pub = os_map(PUB_CAP * sizeof *w->pub, SYS_GC)))
            break;
        if (!w->own.max_cap)   /* (kept across a fork: the child reuses the stack) */
            mark_init(&w->own, (size_t)16 << 20);
        w->ms = &w->own;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&w->thread, &attr, helper_main, w);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            static bool warned;
            if (!warned) {
                warned = true;
                gc_warn_("cannot start marker thread %u (%s): marking with %u", nhelpers + 1,
                         strerror(rc), nhelpers + 1);
            }
            break;   /* mark with fewer workers */
        }
        nhelpers++;
    }
    return nhelpers + 1;
}

/* Add a helper's figures (and overflow) to ms, and clear them. */
static void fold_figures(struct mark_state *ms, struct mark_state *h)
{
    ms->bytes_scanned += h->bytes_scanned;
    ms->bytes_marked += h->bytes_marked;
    ms->objects_marked += h->objects_marked;
    if (h->overflowed)
        ms->overflowed = true;
    h->bytes_scanned = h->bytes_marked = h->objects_marked = 0;
    h->overflowed = false;
}

/* Workers for a concurrent mark (pacer.c's split), and worker 0's fractional share
 * in CPUs when there is no dedicated worker.  With dedicated workers the fraction is
 * left to the idle time they and the assists leave. */
static unsigned background_workers(unsigned procs, double *fraction)
{
    struct pacer_workers w = pacer_worker_split((int)procs);
    *fraction = 0;
    if (w.dedicated <= 0) {
        *fraction = w.fractional;
        return 1;
    }
    return (unsigned)w.dedicated;
}

/* Mark ms's grey work (and what it leads to) with the job's workers.  Stop-the-world
 * and urgent jobs use every marker flat out; background ones the background share.  Overflow is
 * reported in ms->overflowed for the caller's rescan. */
void mark_parallel(struct mark_state *ms, enum mark_mode mode, struct mark_cpu *cpu)
{
    unsigned want = mark_workers_max();
    double fraction = 0;
    bool concurrent = mode != MARK_STW;
    if (mode == MARK_BACKGROUND)
        want = background_workers(want, &fraction);
    if (!pool_ready()) {
        uint64_t c0 = os_thread_cpu_ns();
        mark_alone(ms, concurrent);
        if (cpu) {
            cpu->workers = 1;
            cpu->cpu_ns = os_thread_cpu_ns() - c0;
            cpu->idle_cpu_ns = 0;
        }
        return;
    }
    pthread_mutex_lock(&pool_lock);
    unsigned n = want > 1 ? start_helpers(want) : 1;
    if (n > want)
        n = want;
    struct worker *w0 = &workers[0];
    w0->ms = ms;
    w0->cpu_ns = w0->idle_cpu_ns = 0;
    for (unsigned i = 1; i < n; i++)
        workers[i].cpu_ns = workers[i].idle_cpu_ns = 0;
    job_n = n;
    job_concurrent = concurrent;
    fraction_cpus = fraction;
    AO_store(&idle, 0);
    job_running = n - 1;
    job_gen++;
    pthread_cond_broadcast(&pool_cv);
    pthread_mutex_unlock(&pool_lock);

    work(w0);

    pthread_mutex_lock(&pool_lock);
    while (job_running > 0)
        pthread_cond_wait(&pool_cv, &pool_lock);
    pthread_mutex_unlock(&pool_lock);

    /* Every helper is parked: fold their figures into ms. */
    if (cpu) {
        cpu->workers = n;
        cpu->cpu_ns = w0->cpu_ns;
        cpu->idle_cpu_ns = w0->idle_cpu_ns;
    }
    for (unsigned i = 1; i < n; i++) {
        fold_figures(ms, workers[i].ms);
        if (cpu) {
            cpu->cpu_ns += workers[i].cpu_ns;
            cpu->idle_cpu_ns += workers[i].idle_cpu_ns;
        }
    }
}

/* The STW1 root scan with many threads: the markers share out the stacks (world
 * stopped, mark bits set with compare-and-swap).  What the helpers found goes back
 * onto ms, so the mark that follows starts from one stack as usual.  Returns the
 * bytes of stack scanned. */
uint64_t mark_parallel_roots(struct mark_state *ms, struct mutator **threads, size_t n)
{
    unsigned want = mark_workers_max();
    if (!pool_ready()) {
        uint64_t bytes = 0;
        for (size_t i = 0; i < n; i++)
            bytes += roots_scan_thread(ms, threads[i]);
        return bytes;
    }
    pthread_mutex_lock(&pool_lock);
    unsigned k = want > 1 ? start_helpers(want) : 1;
    if (k > want)
        k = want;
    workers[0].ms = ms;
    job_n = k;
    job_roots = true;
    job_concurrent = false;
    root_list = threads;
    root_n = n;
    AO_store(&root_next, 0);
    AO_store(&root_bytes, 0);
    job_running = k - 1;
    job_gen++;
    pthread_cond_broadcast(&pool_cv);
    pthread_mutex_unlock(&pool_lock);

    work_roots(&workers[0]);

    pthread_mutex_lock(&pool_lock);
    while (job_running > 0)
        pthread_cond_wait(&pool_cv, &pool_lock);
    job_roots = false;
    pthread_mutex_unlock(&pool_lock);
    for (unsigned i = 1; i < k; i++) {
        struct mark_state *h = workers[i].ms;
        mark_push_all(ms, h->stack, h->top);
        h->top = 0;
        fold_figures(ms, h);
    }
    return AO_load(&root_bytes);
}

/* fork() child: the helper threads did not come along; their state may be mid-job. */
void mark_workers_fork_child(void)
{
    pthread_mutex_init(&pool_lock, NULL);
    pthread_cond_init(&pool_cv, NULL);
    nhelpers = 0;
    job_n = job_running = 0;
    AO_store(&idle, 0);
    if (workers)
        for (unsigned i = 0; i < MARK_WORKERS_MAX; i++) {
            pthread_mutex_init(&workers[i].lock, NULL);
            AO_store(&workers[i].pub_n, 0);
            workers[i].own.top = 0;
            workers[i].own.overflowed = false;
        }
}
