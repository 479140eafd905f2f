/* cycle.c - the phase machine: the only place that changes the collector's phase.
 *
 *   OFF -> SWEEP_TERM (stop the world, take back thread caches, scan the roots)
 *       -> MARK       (drain grey work)
 *       -> MARK_TERM  (marking done: sweep, compute the live heap and the next goal)
 *       -> OFF        (resume the world, report the cycle)
 *
 * In this build the whole cycle runs with the world stopped, so one pause covers all
 * three phases; the phases are still timed separately, and each is the step that the
 * concurrent collector runs with the world running (MARK) or stopped (the other two).
 */
#include "internal.h"

#include <string.h>

struct cycle_state cycle = {.lock = PTHREAD_MUTEX_INITIALIZER};
static struct mark_state marker;

void cycle_init(void)
{
    cycle.percent = opt.percent;
    cycle.memory_limit = opt.memory_limit;
    AO_store(&cycle.next_gc, pacer_heap_goal(0, 0, cycle.percent));
    mark_init(&marker, (size_t)64 << 20);   /* at most 1 GiB of grey work */
}

static void set_phase(enum gc_phase p)
{
    cycle.phase = (int)p;
}

static bool auto_enabled(void)
{
    return cycle.percent >= 0 && AO_load(&cycle.disabled) == 0;
}

void cycle_maybe_start(void)
{
    if (auto_enabled())
        cycle_run(WHY_PACER);
}

/* Collector CPU as Go accounts it: every stop-the-world nanosecond costs all procs. */
static unsigned cpu_percent(void)
{
    uint64_t elapsed = os_now_ns() - cycle.init_ns;
    if (!elapsed)
        return 0;
    double f = (double)stats_gc.gc_cpu_ns / ((double)elapsed * opt.procs);
    return f >= 1.0 ? 100 : (unsigned)(f * 100);
}

void cycle_run(enum cycle_why why)
{
    struct mutator *self = self_or_register();
    if (!self)
        return;
    AO_t seen = AO_load(&cycle.num_gc);
    pthread_mutex_lock(&cycle.lock);
    if (why == WHY_PACER) {
        /* Another thread may have collected while this one waited for the lock. */
        if (AO_load(&cycle.num_gc) != seen ||
            AO_load(&alloc_heap_live) < AO_load(&cycle.next_gc)) {
            pthread_mutex_unlock(&cycle.lock);
            return;
        }
    }
    struct gc_cycle_info ci;
    memset(&ci, 0, sizeof ci);
    ci.num = (uint32_t)AO_load(&cycle.num_gc) + 1;
    ci.forced = why == WHY_FORCED;
    ci.procs = (uint32_t)opt.procs;
    ci.heap_goal = AO_load(&cycle.next_gc);

    roots_prepare();

    /* ---- STW1: sweep termination ---- */
    uint64_t t0 = os_now_ns();
    ci.start_ns = t0 - cycle.init_ns;
    stw_stop_world();
    set_phase(PHASE_SWEEP_TERM);
    for (struct mutator *m = stw_threads; m; m = m->next)
        alloc_flush_cache(m);
    /* After the flush: bytes handed out, without the slots caches had reserved. */
    ci.heap_start = AO_load(&alloc_heap_live);
    marker.top = 0;
    marker.overflowed = false;
    marker.bytes_scanned = marker.bytes_marked = marker.objects_marked = 0;
    ci.stacks_scanned = roots_scan_stacks(&marker);
    ci.globals_scanned = roots_scan_globals(&marker);
    uint64_t t1 = os_now_ns();

    /* ---- mark ---- */
    set_phase(PHASE_MARK);
    mark_drain(&marker);
    uint64_t t2 = os_now_ns();

    /* ---- STW2: mark termination, then sweep ---- */
    set_phase(PHASE_MARK_TERM);
    if (GC_DEBUG_BUILD)
        verify_no_black_to_white();
    ci.heap_end = AO_load(&alloc_heap_live);
    struct sweep_result sr;
    memset(&sr, 0, sizeof sr);
    set_phase(PHASE_SWEEP);
    sweep_all(&sr);
    if (GC_DEBUG_BUILD)
        verify_heap();
    ci.heap_live = sr.live_bytes;
    AO_store(&alloc_heap_live, sr.live_bytes);
    cycle.last_live = sr.live_bytes;
    cycle.last_roots = ci.stacks_scanned + ci.globals_scanned;
    AO_store(&cycle.next_gc, pacer_heap_goal(sr.live_bytes, cycle.last_roots, cycle.percent));
    set_phase(PHASE_OFF);
    stw_start_world();
    uint64_t t3 = os_now_ns();

    ci.sweep_term_ns = t1 - t0;
    ci.mark_ns = t2 - t1;
    ci.mark_term_ns = t3 - t2;
    /* The world was stopped throughout: STW time costs every proc, as in Go. */
    ci.stw1_cpu_ns = ci.sweep_term_ns * ci.procs;
    ci.background_cpu_ns = ci.mark_ns * ci.procs;
    ci.stw2_cpu_ns = ci.mark_term_ns * ci.procs;
    stats_record_cycle(&ci, t3 - t0, os_wall_ns());
    void (*hook)(const struct gc_cycle_info *, void *) = cycle.hook;
    void *hook_arg = cycle.hook_arg;
    pthread_mutex_unlock(&cycle.lock);

    if (opt.gctrace)
        trace_cycle(&ci, cpu_percent());
    if (hook)
        hook(&ci, hook_arg);
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
    pthread_mutex_lock(&cycle.lock);
    int old = cycle.percent;
    cycle.percent = percent;
    AO_store(&cycle.next_gc, pacer_heap_goal(cycle.last_live, cycle.last_roots, percent));
    pthread_mutex_unlock(&cycle.lock);
    return old;
}

int64_t gc_set_memory_limit(int64_t bytes)
{
    init_ensure();
    pthread_mutex_lock(&cycle.lock);
    int64_t old = cycle.memory_limit;
    if (bytes >= 0)
        cycle.memory_limit = bytes;
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
    pthread_mutex_lock(&cycle.lock);
    cycle.hook = hook;
    cycle.hook_arg = arg;
    pthread_mutex_unlock(&cycle.lock);
}
