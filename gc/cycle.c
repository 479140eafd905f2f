/* cycle.c - the phase machine: the only place that changes the collector's phase.
 *
 *   OFF -> SWEEP_TERM (stop the world, take back thread caches, scan the roots)
 *       -> MARK       (drain grey work)
 *       -> MARK_TERM  (marking done: finish the grey work)
 *       -> SWEEP      (a new sweep generation; lazy sweeping; the next goal)
 *       -> OFF        (report the cycle)
 *
 * By default a collector thread runs each cycle: the world is stopped only in
 * SWEEP_TERM and MARK_TERM, and MARK and SWEEP run beside the program; allocating
 * threads and gc_collect only request cycles.  With GCDEBUG=gcstoptheworld=1 (or
 * gcconcurrent=0) the calling thread runs the cycle, with one pause from the root scan
 * to the end of the mark.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <string.h>

struct cycle_state cycle = {.lock = PTHREAD_MUTEX_INITIALIZER};
static struct mark_state marker;
static void set_goal(uint64_t live, uint64_t roots);
static void atfork_child(void);
static void mark_over(uint32_t num);

void cycle_init(void)
{
    cycle.percent = opt.percent;
    cycle.memory_limit = opt.memory_limit;
    pacer_state_init(&cycle.pacer);
    pacer_limiter_init(&cycle.limiter, opt.procs);
    cycle.limiter_ns = os_now_ns();
    set_goal(0, 0);
    pthread_atfork(NULL, NULL, atfork_child);
    mark_init(&marker, (size_t)64 << 20);   /* at most 1 GiB of grey work */
}

static void set_phase(enum gc_phase p)
{
    cycle.phase = (int)p;
}

/* GCPERCENT=off with a memory limit still collects: the trigger says when. */
static bool auto_enabled(void)
{
    return AO_load(&cycle.disabled) == 0;
}

void cycle_maybe_start(void)
{
    if (auto_enabled())
        cycle_run(WHY_PACER);
}

/* Collector CPU as Go accounts it: every stop-the-world nanosecond costs all procs. */
static unsigned cpu_percent(uint64_t unrecorded_ns)
{
    uint64_t elapsed = os_now_ns() - cycle.init_ns;
    if (!elapsed)
        return 0;
    double f = (double)(stats_gc.gc_cpu_ns + unrecorded_ns) / ((double)elapsed * opt.procs);
    return f >= 1.0 ? 100 : (unsigned)(f * 100);
}

/* What the memory limit counts: everything mapped and not released to the OS. */
void cycle_memory_now(struct pacer_memory *mem)
{
    uint64_t mapped = AO_load((AO_t *)&heap.pages_mapped), inuse = AO_load((AO_t *)&heap.pages_inuse);
    uint64_t released = AO_load((AO_t *)&heap.pages_released);
    uint64_t meta = 0;
    for (int k = 0; k < SYS_KINDS; k++)
        if (k != SYS_HEAP)
            meta += AO_load(&os_sys_bytes[k]);
    mem->mapped_bytes = (mapped - released) * PAGE_SIZE + meta;
    mem->free_bytes = mapped > inuse + released ? (mapped - inuse - released) * PAGE_SIZE : 0;
    mem->object_bytes = AO_load(&alloc_heap_live);
}

/* The heap goal (GCPERCENT's, capped by the memory limit) and, for concurrent cycles,
 * the trigger, from the rates the last cycles measured (pacer.c).  cycle.lock held. */
static void set_goal(uint64_t live, uint64_t roots)
{
    struct pacer_memory mem;
    cycle_memory_now(&mem);
    uint64_t goal = pacer_goal(live, roots, cycle.percent, cycle.memory_limit, &mem,
                               &cycle.goal_source);
    uint64_t trigger = goal;
    if (opt.gcconcurrent && !opt.gcstoptheworld && goal != UINT64_MAX)
        trigger = pacer_trigger(&cycle.pacer, live, live + roots, goal);
    AO_store(&cycle.next_gc, goal);
    AO_store(&cycle.trigger, trigger);
}

/* After a cycle (cycle.lock held): feed the limiter the collector's CPU since its last
 * update, and the pacer the rates this cycle's mark ran at. */
static void pacer_after(const struct gc_cycle_info *ci, bool concurrent, uint64_t scan_bytes)
{
    uint64_t now = os_now_ns();
    uint64_t gc_cpu = ci->stw1_cpu_ns + ci->assist_cpu_ns + ci->background_cpu_ns +
                      ci->idle_cpu_ns + ci->stw2_cpu_ns;
    pacer_limiter_update(&cycle.limiter, gc_cpu, (now - cycle.limiter_ns) * (uint64_t)opt.procs);
    cycle.limiter_ns = now;
    /* The limiter acts only under a memory limit: without one, GCPERCENT alone sets
     * what the collector may cost. */
    cycle.limiting = cycle.memory_limit != INT64_MAX && pacer_limiter_limiting(&cycle.limiter);
    if (concurrent) {
        struct pacer_sample x = {
            .alloc_bytes = ci->heap_end > ci->heap_start ? ci->heap_end - ci->heap_start : 0,
            .scan_bytes = scan_bytes,
            .mark_wall_ns = ci->mark_ns,
            .mark_cpu_ns = ci->assist_cpu_ns + ci->background_cpu_ns + ci->idle_cpu_ns,
            .procs = opt.procs,
        };
        pacer_observe(&cycle.pacer, &x);
    }
}

static void pacer_trace(const struct gc_cycle_info *ci)
{
    struct pacer_trace t;
    stw_lock_blocking(&cycle.lock);
    pacer_trace_fill(&t, &cycle.pacer, &cycle.limiter);
    t.live_bytes = cycle.last_live;   /* what the goal and trigger grew from */
    t.goal_bytes = AO_load(&cycle.next_gc);
    t.goal_source = cycle.goal_source;
    t.trigger_bytes = AO_load(&cycle.trigger);
    pthread_mutex_unlock(&cycle.lock);
    t.cycle = ci->num;
    t.assist_ratio = AO_load(&cycle.assist_ratio);
    t.workers = pacer_worker_split(opt.procs);
    char line[512];
    size_t n = pacer_format_trace(line, sizeof line, &t);
    trace_write(line, n < sizeof line ? n : sizeof line - 1);
}

/* During a concurrent mark (called by the collector thread now and then): the
 * assist ratio from the scan work left and the runway left. */
void cycle_revise_assist_ratio(void)
{
    struct pacer_assist_in in = cycle.assist_in;
    in.scan_done_bytes += AO_load(&mark_bg_scanned) + AO_load(&alloc_assist_scan_bytes);
    in.heap_live_bytes = AO_load(&alloc_heap_live);
    AO_store(&cycle.assist_ratio, pacer_assist_ratio(&in));
}

/* One cycle, from the first pause to the end of the second.  Concurrent: the world
 * runs between the pauses while this thread marks and allocating threads assist.
 * Returns the time the world was stopped. */
static uint64_t run_cycle(struct gc_cycle_info *ci, bool concurrent)
{
    /* Marking reuses the mark bits: the last cycle's sweep must be over (it is, unless
     * its thread was interrupted by a fork). */
    sweep_finish();
    roots_prepare();

    /* ---- STW1: sweep termination ---- */
    uint64_t t0 = os_now_ns();   /* the pause is timed from the stop request: below */
    ci->start_ns = t0 - cycle.init_ns;
    stw_stop_world();
    struct stw_stop_report stop1 = stw_last_stop, stop2;
    t0 = stop1.request_ns;
    set_phase(PHASE_SWEEP_TERM);
    for (struct mutator *m = stw_threads; m; m = m->next)
        alloc_flush_cache(m);
    /* After the flush: bytes handed out, without the slots caches had reserved. */
    ci->heap_start = AO_load(&alloc_heap_live);
    marker.top = 0;
    marker.overflowed = false;
    marker.bytes_scanned = marker.bytes_marked = marker.objects_marked = 0;
    mark_set_atomic(concurrent || mark_workers_max() > 1);
    ci->stacks_scanned = roots_scan_stacks(&marker);
    ci->globals_scanned = roots_scan_globals(&marker);

    /* ---- mark ---- */
    uint64_t t1, t2, background_cpu = 0;
    if (concurrent) {
        /* Scan work owed per byte allocated: what is left to mark over the runway left
         * to the goal (1/1024 units). */
        uint64_t roots = ci->stacks_scanned + ci->globals_scanned;
        struct pacer_assist_in in = {
            .scan_expected_bytes = cycle.last_live + roots,
            .scan_max_bytes = ci->heap_start + roots,
            .scan_done_bytes = roots,
            .heap_live_bytes = ci->heap_start,
            .goal_bytes = ci->heap_goal,
        };
        cycle.assist_in = in;
        AO_store(&cycle.assist_ratio, pacer_assist_ratio(&in));
        AO_store(&alloc_assist_cpu_ns, 0);
        AO_store(&alloc_assist_scan_bytes, 0);
        alloc_black = 1;
        gc_barrier_active_ = 1;
        set_phase(PHASE_MARK);
        t1 = stw_start_world();
        struct mark_cpu mc;
        /* A forced cycle has a thread waiting for it: mark flat out, not at 25%. */
        mark_parallel(&marker, ci->forced ? MARK_URGENT : MARK_BACKGROUND, &mc);
        background_cpu = mc.cpu_ns - mc.idle_cpu_ns;
        ci->idle_cpu_ns = mc.idle_cpu_ns;
        /* ---- STW2: mark termination ---- */
        stw_stop_world();
        stop2 = stw_last_stop;
        t2 = stop2.request_ns;
        set_phase(PHASE_MARK_TERM);
        for (struct mutator *m = stw_threads; m; m = m->next)
            barrier_flush(m);
        mark_finish(&marker);
        gc_barrier_active_ = 0;
        /* Give back reserved slots (and their black marks) before alloc_black ends;
         * assist debt still owed belongs to this mark, not the next. */
        for (struct mutator *m = stw_threads; m; m = m->next) {
            alloc_flush_cache(m);
            m->assist_debt = 0;
        }
        alloc_black = 0;
        if (opt.gccheckmark) {
            uint64_t missed = mark_check(&marker);
            if (missed)
                gc_fatal_("gccheckmark: %llu reachable object%s not marked by the "
                          "concurrent mark (cycle %u)", (unsigned long long)missed,
                          missed == 1 ? " was" : "s were", ci->num);
        }
        ci->assist_cpu_ns = AO_load(&alloc_assist_cpu_ns);
    } else {
        t1 = os_now_ns();
        set_phase(PHASE_MARK);
        mark_drain(&marker);
        t2 = os_now_ns();
        set_phase(PHASE_MARK_TERM);
    }
    mark_set_atomic(false);
    if (GC_DEBUG_BUILD)
        verify_no_black_to_white();
    ci->heap_end = AO_load(&alloc_heap_live);

    /* ---- sweep ---- */
    uint64_t live, t3, sweep_cpu = 0;
    set_phase(PHASE_SWEEP);
    if (!concurrent && opt.gcstoptheworld >= 2) {
        live = sweep_all();   /* eagerly, inside the pause */
        if (GC_DEBUG_BUILD)
            verify_heap();
        t3 = stw_start_world();
    } else {
        /* Lazily: allocating threads sweep the classes they need, this thread the
         * rest, while the program runs. */
        sweep_begin();
        t3 = stw_start_world();
        if (concurrent)
            mark_over(ci->num);   /* threads waiting past the hard goal go on */
        uint64_t c0 = os_thread_cpu_ns();
        live = sweep_finish();
        sweep_cpu = os_thread_cpu_ns() - c0;
        if (GC_DEBUG_BUILD) {   /* the verifier needs the world stopped */
            stw_stop_world();
            for (struct mutator *m = stw_threads; m; m = m->next)
                alloc_flush_cache(m);
            verify_heap();
            stw_start_world();
        }
    }
    ci->heap_live = live;
    ci->sweep_term_ns = t1 - t0;
    ci->mark_ns = t2 - t1;
    ci->mark_term_ns = t3 - t2;
    /* Stop-the-world time costs every proc, as in Go. */
    ci->stw1_cpu_ns = ci->sweep_term_ns * ci->procs;
    ci->stw2_cpu_ns = ci->mark_term_ns * ci->procs;
    ci->background_cpu_ns = concurrent ? background_cpu + sweep_cpu
                                       : ci->mark_ns * ci->procs + sweep_cpu;

    if (concurrent)   /* stop-the-world cycles hold cycle.lock throughout */
        stw_lock_blocking(&cycle.lock);
    /* The goal grows from what was reachable when marking began.  Objects allocated
     * during a concurrent mark survive its sweep (black), reachable or not: counting
     * them as live would let each cycle's floating garbage raise the next goal. */
    uint64_t black = concurrent && ci->heap_end > ci->heap_start ? ci->heap_end - ci->heap_start : 0;
    uint64_t snapshot = live > black ? live - black : 0;
    if (snapshot < live / 2)
        snapshot = live / 2;
    cycle.last_live = snapshot;
    cycle.last_roots = ci->stacks_scanned + ci->globals_scanned;
    uint64_t heap_scan = marker.bytes_scanned > cycle.last_roots
                             ? marker.bytes_scanned - cycle.last_roots : 0;
    pacer_after(ci, concurrent, heap_scan + AO_load(&alloc_assist_scan_bytes));
    set_goal(snapshot, cycle.last_roots);
    if (concurrent)
        pthread_mutex_unlock(&cycle.lock);
    set_phase(PHASE_OFF);

    if (opt.stwtrace) {
        if (concurrent) {
            stw_trace("sweep termination", ci->num, ci->sweep_term_ns, &stop1);
            stw_trace("mark termination", ci->num, ci->mark_term_ns, &stop2);
        } else {
            stw_trace("whole cycle", ci->num, t3 - t0, &stop1);
        }
    }
    return concurrent ? ci->sweep_term_ns + ci->mark_term_ns : t3 - t0;
}

/* What a cycle knows when it begins. */
static void cycle_info_start(struct gc_cycle_info *ci, enum cycle_why why)
{
    memset(ci, 0, sizeof *ci);
    ci->num = (uint32_t)AO_load(&cycle.num_gc) + 1;
    ci->forced = why == WHY_FORCED;
    ci->procs = (uint32_t)opt.procs;
    ci->heap_goal = AO_load(&cycle.next_gc);
}

/* The gctrace and gcpacertrace lines.  A concurrent cycle prints them before it is
 * counted in num_gc, so a program that sees cycle N finished has its line N. */
static void trace_lines(const struct gc_cycle_info *ci, bool recorded)
{
    if (opt.gctrace) {
        uint64_t cpu = ci->stw1_cpu_ns + ci->assist_cpu_ns + ci->background_cpu_ns +
                       ci->idle_cpu_ns + ci->stw2_cpu_ns;
        trace_cycle(ci, cpu_percent(recorded ? 0 : cpu));
    }
    if (opt.gcpacertrace)
        pacer_trace(ci);
}

static void report(const struct gc_cycle_info *ci)
{
    scav_wake();   /* a new goal: the scavenger may have pages to give back */
    stw_lock_blocking(&cycle.lock);
    void (*hook)(const struct gc_cycle_info *, void *) = cycle.hook;
    void *hook_arg = cycle.hook_arg;
    pthread_mutex_unlock(&cycle.lock);
    if (hook)
        hook(ci, hook_arg);
}

/* ---- concurrent mode: the collector thread ------------------------------------------ */

static pthread_cond_t cycle_cv = PTHREAD_COND_INITIALIZER;  /* with cycle.lock */
static uint32_t requested;        /* num_gc must reach this */
static uint32_t reported;         /* cycles whose hooks have run: what waiters wait for */
static uint32_t marked;           /* cycles whose mark is over (STW2 done) */

static void mark_over(uint32_t num)
{
    stw_lock_blocking(&cycle.lock);
    marked = num;
    pthread_cond_broadcast(&cycle_cv);
    pthread_mutex_unlock(&cycle.lock);
}
static uint32_t forced_pending;   /* of the requested cycles, how many are forced */
static bool worker_started;
static struct mutator *worker;    /* the collector thread's registration */
static struct gc_cycle_info last_info;

static void worker_cycle(enum cycle_why why)
{
    struct gc_cycle_info ci;
    cycle_info_start(&ci, why);
    uint64_t pause = run_cycle(&ci, true);
    trace_lines(&ci, false);
    stats_record_cycle(&ci, pause, os_wall_ns());
    last_info = ci;
}

static void *worker_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "tricolor-gc");
    struct mutator *self = stw_register_self(STW_REG_COLLECTOR);
    if (!self)
        gc_fatal_("the collector thread cannot register");
    stw_lock_blocking(&cycle.lock);
    worker = self;   /* read under cycle.lock */
    for (;;) {
        while (requested <= (uint32_t)AO_load(&cycle.num_gc))
            pthread_cond_wait(&cycle_cv, &cycle.lock);
        enum cycle_why why = forced_pending ? WHY_FORCED : WHY_PACER;
        if (forced_pending)
            forced_pending--;
        pthread_mutex_unlock(&cycle.lock);
        worker_cycle(why);
        struct gc_cycle_info ci = last_info;
        report(&ci);   /* after the world resumed, on the thread that ran the cycle */
        stw_lock_blocking(&cycle.lock);
        reported = ci.num;
        pthread_cond_broadcast(&cycle_cv);
    }
    return NULL;
}

/* With cycle.lock held. */
static void start_worker(void)
{
    if (worker_started)
        return;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    if (pthread_create(&t, &attr, worker_main, NULL) != 0)
        gc_fatal_("cannot start the collector thread");
    pthread_attr_destroy(&attr);
    worker_started = true;
}

static void wait_cancelled(void *arg)
{
    struct mutator *m = arg;
    pthread_mutex_unlock(&cycle.lock);   /* pthread_cond_wait took it back */
    if (m)
        stw_block_leave(m);
}

/* Wait, with cycle.lock held (released on return), until `*count` reaches target --
 * or, with `first` set, until marked does, and if it has already, until reported does
 * (a pacer request past the hard goal; see request).  A program thread waits in a
 * blocking region: the pauses of the cycle it waits for count it as stopped instead of
 * signalling it awake, which costs milliseconds where waking an idle CPU does.  The
 * region needs this frame live throughout, hence noinline; the lock is dropped around
 * entering and leaving it, as either may wait for a stop to end. */
static __attribute__((noinline)) void wait_cycle(const uint32_t *count, uint32_t target,
                                                 bool first)
{
    /* (volatile: pthread_cleanup_push may be a setjmp) */
    const uint32_t *volatile wait_on = first && marked >= target
                                           ? &reported   /* its sweep is bringing the heap
                                                          * down: wait for its goal */
                                           : count;
    struct mutator *m = alloc_self;
    if (!m || m->blocking || m->collector)
        m = NULL;
    __builtin_unwind_init();
    if (m) {
        pthread_mutex_unlock(&cycle.lock);
        stw_block_enter(m);
        pthread_mutex_lock(&cycle.lock);
    }
    pthread_cleanup_push(wait_cancelled, m);
    while (*(volatile const uint32_t *)wait_on < target)
        pthread_cond_wait(&cycle_cv, &cycle.lock);
    pthread_cleanup_pop(0);
    pthread_mutex_unlock(&cycle.lock);
    if (m)
        stw_block_leave(m);
    __asm__ volatile("" ::: "memory");
}

static void request(enum cycle_why why)
{
    stw_lock_blocking(&cycle.lock);
    bool on_worker = alloc_self && alloc_self == worker;
    pthread_mutex_unlock(&cycle.lock);
    if (on_worker && why != WHY_PACER) {
        /* The hook, on the collector thread, asked for a cycle: run it here. */
        worker_cycle(why);
        struct gc_cycle_info ci = last_info;
        report(&ci);
        stw_lock_blocking(&cycle.lock);
        reported = ci.num;
        pthread_mutex_unlock(&cycle.lock);
        return;
    }
    stw_lock_blocking(&cycle.lock);
    start_worker();
    uint32_t done = (uint32_t)AO_load(&cycle.num_gc);
    if (why == WHY_PACER) {
        uint64_t live = AO_load(&alloc_heap_live), goal = AO_load(&cycle.next_gc);
        if (requested <= done && live >= AO_load(&cycle.trigger)) {
            requested = done + 1;
            pthread_cond_broadcast(&cycle_cv);
        }
        /* Past the hard goal (goal + 1/16: the collector is behind and assists
         * found no work to take): wait until the mark under way is over -- its sweep
         * then frees memory as allocation goes on -- so the heap overshoots the goal
         * by little.  While the CPU limiter is on (the collector has had its share)
         * the heap may grow to goal + 1/2 first.  Never on the collector thread
         * itself (a hook that allocates). */
        uint64_t hard = cycle.limiting ? goal + goal / 2   /* the heap may grow instead */
                        : cycle.goal_source >= PACER_GOAL_LIMIT
                            ? goal + goal / 32   /* within the limit goal's headroom */
                            : pacer_hard_goal(goal);
        bool past = goal != UINT64_MAX && live > hard && !on_worker;
        if (past && requested > done) {
            /* Until its mark is over; if it is, until its sweep has brought the heap
             * down and set the goal the sweep ends with. */
            wait_cycle(&marked, requested, true);
            return;
        }
        pthread_mutex_unlock(&cycle.lock);
        return;
    }
    /* A forced or out-of-memory cycle is a whole new one: not one already under way. */
    uint32_t target = (requested > done ? requested : done) + 1;
    requested = target;
    if (why == WHY_FORCED)
        forced_pending++;
    pthread_cond_broadcast(&cycle_cv);
    wait_cycle(&reported, target, false);   /* finished, and its hooks have run */
}

static void atfork_child(void)
{
    mark_fork_child();   /* before anything here can take grey_lock */
    /* Forked in the middle of a concurrent cycle: finish or forget its work here,
     * the only thread, since the collector thread did not come along. */
    if (cycle.phase == PHASE_SWEEP_TERM || cycle.phase == PHASE_MARK ||
        cycle.phase == PHASE_MARK_TERM) {
        gc_barrier_active_ = 0;
        if (alloc_self) {
            alloc_self->wbuf_n = 0;
            alloc_flush_cache(alloc_self);
        }
        alloc_black = 0;
        mark_abandon(&marker);
        set_phase(PHASE_OFF);
    } else if (sweep_is_active()) {
        sweep_finish();   /* the marks are complete: sweep the rest */
        set_phase(PHASE_OFF);
    }
    mark_workers_fork_child();   /* nor did the marker threads */
    scav_fork_child();           /* nor the scavenger */
    worker_started = false;   /* the collector thread did not come along */
    pthread_cond_init(&cycle_cv, NULL);   /* it may have been waiting on it */
    worker = NULL;
    requested = reported = marked = (uint32_t)AO_load(&cycle.num_gc);
    forced_pending = 0;
}

/* ---- entry points ------------------------------------------------------------------------- */

void cycle_run(enum cycle_why why)
{
    struct mutator *self = self_or_register();
    if (!self)
        return;
    if (opt.gcconcurrent && !opt.gcstoptheworld) {
        request(why);
        return;
    }
    AO_t seen = AO_load(&cycle.num_gc);
    stw_lock_blocking(&cycle.lock);
    if (why == WHY_PACER) {
        /* Another thread may have collected while this one waited for the lock. */
        uint64_t live = AO_load(&alloc_heap_live), goal = AO_load(&cycle.next_gc);
        if (AO_load(&cycle.num_gc) != seen || live < AO_load(&cycle.trigger)) {
            pthread_mutex_unlock(&cycle.lock);
            return;
        }
        /* The CPU limiter is on (a memory limit below what the program keeps live):
         * let the heap grow half a goal further before stopping the world again, so
         * the program gets its half of the CPU. */
        if (cycle.limiting && live < goal + goal / 2) {
            pthread_mutex_unlock(&cycle.lock);
            return;
        }
    }
    struct gc_cycle_info ci;
    cycle_info_start(&ci, why);
    uint64_t pause = run_cycle(&ci, false);
    stats_record_cycle(&ci, pause, os_wall_ns());
    pthread_mutex_unlock(&cycle.lock);
    trace_lines(&ci, true);
    report(&ci);
}

/* ---- public control calls ------------------------------------------------------------------ */

void gc_collect(void)
{
    init_ensure();
    cycle_run(WHY_FORCED);
}

int gc_set_percent(int percent)
{
    init_ensure();
    if (percent < 0)
        percent = -1;
    stw_lock_blocking(&cycle.lock);
    int old = cycle.percent;
    cycle.percent = percent;
    set_goal(cycle.last_live, cycle.last_roots);
    pthread_mutex_unlock(&cycle.lock);
    return old;
}

int64_t gc_set_memory_limit(int64_t bytes)
{
    init_ensure();
    stw_lock_blocking(&cycle.lock);
    int64_t old = cycle.memory_limit;
    if (bytes >= 0) {
        cycle.memory_limit = bytes;
        set_goal(cycle.last_live, cycle.last_roots);   /* at once */
    }
    pthread_mutex_unlock(&cycle.lock);
    return old;
}

void gc_disable(void)
{
    init_ensure();
    atomic_add(&cycle.disabled, 1);
}

void gc_enable(void)
{
    init_ensure();
    for (;;) {
        AO_t d = AO_load(&cycle.disabled);
        if (d == 0) {
            gc_warn_("gc_enable without a matching gc_disable: ignored");
            return;
        }
        if (AO_compare_and_swap_full(&cycle.disabled, d, d - 1))
            return;
    }
}

void gc_free_os_memory(void)
{
    init_ensure();
    cycle_run(WHY_FORCED);
    heap_release_free();
}

void gc_set_cycle_hook(void (*hook)(const struct gc_cycle_info *info, void *arg), void *arg)
{
    init_ensure();
    stw_lock_blocking(&cycle.lock);
    cycle.hook = hook;
    cycle.hook_arg = arg;
    pthread_mutex_unlock(&cycle.lock);
}
