/* roots.c - where marking starts: stacks, registers, data segments, added ranges.
 *
 * All roots are scanned conservatively: any aligned word that points at or into an
 * allocated object keeps it alive.  The writable segments of the executable and of
 * every loaded shared object are listed with dl_iterate_phdr before the world stops
 * (the loader's lock may be held by a thread we are about to stop) and scanned once it
 * has.  Thread stacks are scanned from the stack pointer saved when the thread stopped
 * to the stack's base, plus the registers the stop handler saved.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <link.h>
#include <string.h>

struct range_list {
    struct mark_range *v;
    size_t n, cap;
    enum sys_kind kind;
};

static pthread_mutex_t roots_lock = PTHREAD_MUTEX_INITIALIZER;
static struct range_list added = {.kind = SYS_GC};    /* gc_add_roots; roots_lock */
static struct range_list segments = {.kind = SYS_GC}; /* data segments, per cycle */

static bool range_push(struct range_list *l, uintptr_t lo, uintptr_t hi)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        struct mark_range *v = os_map(cap * sizeof *v, l->kind);
        if (!v)
            return false;
        if (l->v) {
            memcpy(v, l->v, l->n * sizeof *v);
            os_unmap(l->v, l->cap * sizeof *v, l->kind);
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].lo = lo;
    l->v[l->n].hi = hi;
    l->n++;
    return true;
}

void roots_init(void) {}
void roots_lock_all(void) { pthread_mutex_lock(&roots_lock); }
void roots_unlock_all(void) { pthread_mutex_unlock(&roots_lock); }

/* ---- registered ranges ------------------------------------------------------------------ */

static void roots_enter(void)
{
    if (alloc_self)
        critical_enter(alloc_self);
    pthread_mutex_lock(&roots_lock);
}

static void roots_leave(void)
{
    pthread_mutex_unlock(&roots_lock);
    if (alloc_self)
        critical_leave(alloc_self);
}

void gc_add_roots(void *start, void *end)
{
    init_ensure();
    if ((uintptr_t)end <= (uintptr_t)start)
        return;
    roots_enter();
    if (!range_push(&added, (uintptr_t)start, (uintptr_t)end))
        gc_warn_("gc_add_roots: out of memory; [%p, %p) is not a root", start, end);
    roots_leave();
}

void gc_remove_roots(void *start, void *end)
{
    init_ensure();
    roots_enter();
    /* Remove every added range inside [start, end). */
    size_t j = 0;
    for (size_t i = 0; i < added.n; i++)
        if (!(added.v[i].lo >= (uintptr_t)start && added.v[i].hi <= (uintptr_t)end))
            added.v[j++] = added.v[i];
    added.n = j;
    roots_leave();
}

/* ---- data segments ------------------------------------------------------------------------ */

static int phdr_callback(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    int *index = arg;
    bool main_program = (*index)++ == 0;
    uintptr_t self = (uintptr_t)&heap;
    if (!main_program) {
        /* Skip the collector's own shared object: its data is metadata, not roots. */
        for (int i = 0; i < info->dlpi_phnum; i++) {
            const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
            uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
            if (ph->p_type == PT_LOAD && self >= lo && self < lo + ph->p_memsz)
                return 0;
        }
    }
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        uintptr_t hi = lo + ph->p_memsz;
        if (!range_push(&segments, lo, hi))
            return 1;
    }
    return 0;
}

/* dl_iterate_phdr holds the dynamic loader's lock while it calls back, and the
 * collector thread runs it beside the program: a fork() meanwhile would leave that
 * lock held for ever in the child.  fork's prepare handler takes phdr_lock before it
 * stops the world, so no walk of the program headers is under way at a fork. */
static pthread_mutex_t phdr_lock = PTHREAD_MUTEX_INITIALIZER;
void roots_phdr_lock(void) { stw_lock_blocking(&phdr_lock); }
void roots_phdr_unlock(void) { pthread_mutex_unlock(&phdr_lock); }

void roots_prepare(void)
{
    int index = 0;
    roots_phdr_lock();
    segments.n = 0;
    dl_iterate_phdr(phdr_callback, &index);
    roots_phdr_unlock();
}

/* Every global root range, in pieces: the data segments and the gc_add_roots ranges,
 * less the collector's own struct heap, whose bounds (heap.lo is the address of the
 * first object ever allocated) are not references.  It lies in the program's data
 * segment when the collector is linked statically. */
void roots_for_each_global(struct mark_state *ms,
                           void (*fn)(struct mark_state *ms, uintptr_t lo, uintptr_t hi))
{
    uintptr_t xlo = (uintptr_t)&heap, xhi = (uintptr_t)(&heap + 1);
    for (size_t i = 0; i < segments.n; i++) {
        uintptr_t lo = segments.v[i].lo, hi = segments.v[i].hi;
        if (xhi <= lo || xlo >= hi) {
            fn(ms, lo, hi);
            continue;
        }
        if (lo < xlo)
            fn(ms, lo, xlo);
        if (xhi < hi)
            fn(ms, xhi, hi);
    }
    pthread_mutex_lock(&roots_lock);   /* free: its holders are never stopped inside */
    for (size_t i = 0; i < added.n; i++)
        fn(ms, added.v[i].lo, added.v[i].hi);
    pthread_mutex_unlock(&roots_lock);
}

uint64_t roots_scan_globals(struct mark_state *ms)
{
    uint64_t before = ms->bytes_scanned;
    roots_for_each_global(ms, mark_scan_range);
    return ms->bytes_scanned - before;
}

/* ---- stacks and registers ---------------------------------------------------------------------- */

/* The collecting thread's own stack: spill its registers into this frame first. */
static __attribute__((noinline)) uint64_t scan_own_stack(struct mark_state *ms, struct mutator *m)
{
    ucontext_t ctx;
    getcontext(&ctx);
    mark_scan_range(ms, (uintptr_t)&ctx, (uintptr_t)(&ctx + 1));
    volatile uintptr_t here = 0;
    uintptr_t sp = (uintptr_t)&here;
    if (sp < m->stack_lo || sp > m->stack_hi)
        return 0;
    mark_scan_range(ms, sp, m->stack_hi);
    return m->stack_hi - sp;
}

/* One registered thread's registers and stack (world stopped); bytes of stack. */
uint64_t roots_scan_thread(struct mark_state *ms, struct mutator *m)
{
    if (m->collector)
        return 0;   /* stale grey addresses from its last mark would retain garbage */
    if (m == alloc_self)
        return scan_own_stack(ms, m);
    mark_scan_range(ms, (uintptr_t)&m->stopped_ctx, (uintptr_t)(&m->stopped_ctx + 1));
    uintptr_t sp = m->stopped_sp;
    if (sp >= m->stack_lo && sp <= m->stack_hi) {
        mark_scan_range(ms, sp, m->stack_hi);
        return m->stack_hi - sp;
    }
    /* Running on a stack we were not told about (a coroutine, an alternate signal
     * stack): only its registers are roots. */
    static bool warned;
    if (!warned) {
        warned = true;
        gc_warn_("thread %d is running on an unknown stack: only its registers "
                 "are scanned", (int)m->tid);
    }
    return 0;
}

/* Every registered thread's stack.  With many threads (ROOTS_PARALLEL_THREADS) and
 * several markers, the markers share them out (mark_parallel_roots). */
uint64_t roots_scan_stacks(struct mark_state *ms)
{
    static struct mutator **list;
    static size_t cap;
    size_t n = (size_t)stw_nthreads;
    if (n >= ROOTS_PARALLEL_THREADS && mark_workers_max() > 1 && mark_is_atomic()) {
        if (n > cap) {   /* grown with the world stopped: os_map, not malloc */
            size_t c = n * 2;
            struct mutator **v = os_map(c * sizeof *v, SYS_GC);
            if (v) {
                if (list)
                    os_unmap(list, cap * sizeof *list, SYS_GC);
                list = v;
                cap = c;
            }
        }
        if (n <= cap) {
            /* This thread's own stack is scanned here: only it knows its registers. */
            uint64_t own = 0;
            size_t k = 0;
            for (struct mutator *m = stw_threads; m && k < n; m = m->next) {
                if (m == alloc_self)
                    own = roots_scan_thread(ms, m);
                else
                    list[k++] = m;
            }
            return own + mark_parallel_roots(ms, list, k);
        }
    }
    uint64_t bytes = 0;
    for (struct mutator *m = stw_threads; m; m = m->next)
        bytes += roots_scan_thread(ms, m);
    return bytes;
}
