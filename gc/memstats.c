/* memstats.c - gc_read_memstats: per-thread counters merged on read.
 *
 * Allocation counters live in each thread's struct mutator and are written only by
 * that thread; sweeping and exited threads add to global counters.  A read merges them
 * while holding the registry lock (no collection can start) and the heap lock (no span
 * can be taken or freed), which is a few microseconds and never stops the world.
 * Counters are read before the page-heap figures they are bounded by, and only grow,
 * so every invariant of the contract holds in each snapshot.
 */
#include "internal.h"

#include <string.h>

struct stats_gc stats_gc = {.lock = PTHREAD_MUTEX_INITIALIZER};

void stats_record_cycle(const struct gc_cycle_info *ci, uint64_t pause_ns, uint64_t end_wall)
{
    struct mutator *self = critical_enter_self();
    pthread_mutex_lock(&stats_gc.lock);
    /* Slot of cycle n is (n + 255) % 256 once num_gc == n. */
    uint32_t i = (ci->num + 255) % 256;
    stats_gc.pause_ns[i] = pause_ns;
    stats_gc.pause_end[i] = end_wall;
    stats_gc.pause_total_ns += pause_ns;
    stats_gc.last_gc_wall = end_wall;
    stats_gc.gc_cpu_ns += ci->stw1_cpu_ns + ci->assist_cpu_ns + ci->background_cpu_ns +
                          ci->idle_cpu_ns + ci->stw2_cpu_ns;
    if (ci->forced)
        stats_gc.num_forced_gc++;
    AO_store(&cycle.num_gc, ci->num);
    pthread_mutex_unlock(&stats_gc.lock);
    critical_leave_self(self);
}

/* The counters, summed.  The caller holds the registry and heap locks, or has stopped
 * the world. */
void stats_sum(struct stats_sum *t)
{
    struct alloc_counters sum;
    memset(&sum, 0, sizeof sum);
    memset(t, 0, sizeof *t);
    for (struct mutator *m = stw_threads; m; m = m->next)
        alloc_merge_counters(&sum, &m->stats);
    alloc_merge_counters(&sum, &alloc_dead_counters);
    for (int c = 1; c <= NUM_CLASSES; c++) {
        t->nmalloc[c] = AO_load(&sum.nmalloc[c]);
        t->nfree[c] = AO_load(&sum.nfree[c]) + AO_load(&sweep_nfree[c]);
        t->mallocs += t->nmalloc[c];
        t->frees += t->nfree[c];
        t->alloc_bytes += t->nmalloc[c] * sc_table[c].size;
        t->freed_bytes += t->nfree[c] * sc_table[c].size;
    }
    uint64_t tiny = AO_load(&sum.tiny_allocs);
    t->mallocs += AO_load(&sum.nmalloc[0]) + tiny;
    t->frees += AO_load(&sum.nfree[0]) + AO_load(&sweep_nfree[0]) + tiny;
    t->alloc_bytes += AO_load(&sum.large_alloc_bytes);
    t->freed_bytes += AO_load(&sum.large_free_bytes) + AO_load(&sweep_large_free_bytes);
}

void gc_read_memstats(struct gc_memstats *ms)
{
    init_ensure();
    memset(ms, 0, sizeof *ms);
    struct stats_sum t;

    stw_lock_blocking(&stw_registry_lock);
    /* Holding the registry lock, no collection can start: no critical section needed. */
    heap_lock();
    stats_sum(&t);
    uint64_t pages_mapped = heap.pages_mapped, pages_inuse = heap.pages_inuse;
    uint64_t pages_released = heap.pages_released, spans_inuse = heap.spans_inuse;
    int nthreads = stw_nthreads;
    heap_unlock();
    pthread_mutex_unlock(&stw_registry_lock);

    for (int c = 1; c <= NUM_CLASSES; c++) {
        ms->by_size[c].size = sc_table[c].size;
        ms->by_size[c].mallocs = t.nmalloc[c];
        ms->by_size[c].frees = t.nfree[c];
    }
    ms->mallocs = t.mallocs;
    ms->frees = t.frees;
    ms->heap_objects = t.mallocs - t.frees;
    ms->total_alloc = t.alloc_bytes;
    ms->heap_alloc = ms->alloc = t.alloc_bytes - t.freed_bytes;
    ms->heap_sys = pages_mapped * PAGE_SIZE;
    ms->heap_inuse = pages_inuse * PAGE_SIZE;
    ms->heap_idle = ms->heap_sys - ms->heap_inuse;
    ms->heap_released = pages_released * PAGE_SIZE;
    ms->stack_inuse = ms->stack_sys = AO_load(&os_sys_bytes[SYS_STACK]);
    ms->mspan_sys = AO_load(&os_sys_bytes[SYS_MSPAN]);
    ms->mspan_inuse = spans_inuse * sizeof(struct span);
    if (ms->mspan_inuse > ms->mspan_sys)
        ms->mspan_inuse = ms->mspan_sys;
    ms->mcache_sys = AO_load(&os_sys_bytes[SYS_MCACHE]);
    ms->mcache_inuse = (uint64_t)nthreads * ((sizeof(struct mutator) + 4095) & ~(size_t)4095);
    if (ms->mcache_inuse > ms->mcache_sys)
        ms->mcache_inuse = ms->mcache_sys;
    ms->buck_hash_sys = AO_load(&os_sys_bytes[SYS_BUCKHASH]);
    ms->gc_sys = AO_load(&os_sys_bytes[SYS_GC]);
    ms->other_sys = AO_load(&os_sys_bytes[SYS_OTHER]);
    ms->sys = ms->heap_sys + ms->stack_sys + ms->mspan_sys + ms->mcache_sys +
              ms->buck_hash_sys + ms->gc_sys + ms->other_sys;

    ms->next_gc = AO_load(&cycle.next_gc);
    if (ms->next_gc == UINT64_MAX)
        ms->next_gc = 0;
    ms->enable_gc = cycle.percent >= 0 && AO_load(&cycle.disabled) == 0;
    ms->debug_gc = opt.debug_set;

    struct mutator *self = critical_enter_self();
    pthread_mutex_lock(&stats_gc.lock);
    ms->num_gc = (uint32_t)AO_load(&cycle.num_gc);
    ms->num_forced_gc = stats_gc.num_forced_gc;
    ms->last_gc = stats_gc.last_gc_wall;
    ms->pause_total_ns = stats_gc.pause_total_ns;
    memcpy(ms->pause_ns, stats_gc.pause_ns, sizeof ms->pause_ns);
    memcpy(ms->pause_end, stats_gc.pause_end, sizeof ms->pause_end);
    uint64_t cpu = stats_gc.gc_cpu_ns;
    pthread_mutex_unlock(&stats_gc.lock);
    critical_leave_self(self);
    uint64_t elapsed = os_now_ns() - cycle.init_ns;
    ms->gc_cpu_fraction = elapsed ? (double)cpu / ((double)elapsed * opt.procs) : 0.0;
}
