/* peer.h - the thin allocation interface every C benchmark is written against.
 *
 * One workload source is compiled once per peer (Tricolor, the Boehm collector,
 * malloc/free, a bump allocator that never frees) with -DPEER_xxx, so every peer does
 * exactly the same work.  peer_free is a no-op for the collectors and the bump
 * allocator; the workloads call it where a malloc/free program would free.
 * PEER_WRITE(lvalue, value) stores a pointer into an object that is not freshly
 * allocated (Tricolor's GC_WRITE barrier; a plain store for the others).
 *
 * A workload that starts threads defines PEER_THREADS before including this file and
 * creates them with peer_thread_create (for Boehm, GC_THREADS is then defined before
 * <gc.h>, as its documentation asks of threaded clients).  The figures only some
 * workloads need (peer_mark_ns, peer_gc_cpu_fraction, peer_procs) are measured the
 * same way for every collector: see each peer's section.
 */
#ifndef BENCH_PEER_H
#define BENCH_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#if defined(PEER_TRICOLOR) || defined(PEER_TRICOLOR_STW)
/* tricolor: the library as it comes (concurrent mark and lazy sweep since 26249aa);
 * tricolor-stw: the stop-the-world mode, GCDEBUG=gcstoptheworld=1. */
#include <tricolor.h>
#ifdef PEER_TRICOLOR_STW
#define PEER_NAME "tricolor-stw"
#else
#define PEER_NAME "tricolor"
#endif
#define PEER_COLLECTS 1
static inline void peer_init(void)
{
#ifdef PEER_TRICOLOR_STW
    /* Any other GCDEBUG keys are kept. */
    const char *old = getenv("GCDEBUG");
    char buf[512];
    snprintf(buf, sizeof buf, "%s%sgcstoptheworld=1", old ? old : "", old && *old ? "," : "");
    setenv("GCDEBUG", buf, 1);
#endif
    gc_init();
}
static inline void *peer_alloc(size_t n) { return gc_malloc(n); }
static inline void *peer_alloc_atomic(size_t n) { return gc_malloc_atomic(n); }
static inline void peer_free(void *p) { (void)p; }
#define PEER_WRITE(lvalue, value) GC_WRITE(lvalue, value)
static inline void peer_collect(void) { gc_collect(); }
static inline unsigned peer_cycles(void) { struct gc_memstats m; gc_read_memstats(&m); return m.num_gc; }
static inline double peer_max_pause_ms(void)
{
    struct gc_memstats m;
    gc_read_memstats(&m);
    uint64_t mx = 0;
    for (int i = 0; i < 256 && i < (int)m.num_gc; i++)
        if (m.pause_ns[i] > mx)
            mx = m.pause_ns[i];
    return mx / 1e6;
}
static inline double peer_gc_cpu_fraction(void)
{
    struct gc_memstats m;
    gc_read_memstats(&m);
    return m.gc_cpu_fraction;
}
/* Marking time from the cycle hook: from the start of the cycle to the end of mark
 * termination (stop, root scan, drain, finishing the grey work), in both modes; the
 * sweep is lazy and comes after (with gcstoptheworld=2 mark_term_ns would also hold
 * an eager sweep: no peer runs that way). */
static _Atomic uint64_t peer_tc_mark_ns;
static _Atomic unsigned peer_tc_procs;
static inline void peer_tc_hook(const struct gc_cycle_info *ci, void *arg)
{
    (void)arg;
    peer_tc_mark_ns += ci->sweep_term_ns + ci->mark_ns + ci->mark_term_ns;
    peer_tc_procs = ci->procs;
}
static inline void peer_track_marking(void) { gc_set_cycle_hook(peer_tc_hook, NULL); }
static inline uint64_t peer_mark_ns(void) { return peer_tc_mark_ns; }
static inline unsigned peer_procs(void) { return peer_tc_procs; }
#elif defined(PEER_BOEHM) || defined(PEER_BOEHM_INCR)
#if defined(PEER_THREADS) && !defined(GC_THREADS)
#define GC_THREADS 1
#endif
#include <gc.h>
#ifdef PEER_BOEHM_INCR
#define PEER_NAME "boehm-incr"
#else
#define PEER_NAME "boehm"
#endif
#define PEER_COLLECTS 1
/* Boehm does all its collection work (marking, in parallel or not) with the world
 * stopped, except the lazy sweep during allocation: the stopped time is its pause and
 * its collector time (charged to every CPU, as Go and Tricolor charge pauses); the
 * mark phase is GC_EVENT_MARK_START to GC_EVENT_MARK_END.  The events come from the
 * collecting thread with the allocation lock held, so plain variables are enough. */
static unsigned long peer_boehm_max_pause_ns;
static uint64_t peer_boehm_pause_total_ns, peer_boehm_mark_ns;
static struct timespec peer_boehm_t_init;
static inline uint64_t peer_boehm_ns_since(const struct timespec *a, const struct timespec *b)
{
    return (uint64_t)((b->tv_sec - a->tv_sec) * 1000000000L + (b->tv_nsec - a->tv_nsec));
}
static void peer_boehm_on_event(GC_EventType e)
{
    static struct timespec t0, m0;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (e == GC_EVENT_PRE_STOP_WORLD)
        t0 = t;
    else if (e == GC_EVENT_POST_START_WORLD) {
        unsigned long ns = peer_boehm_ns_since(&t0, &t);
        peer_boehm_pause_total_ns += ns;
        if (ns > peer_boehm_max_pause_ns)
            peer_boehm_max_pause_ns = ns;
    } else if (e == GC_EVENT_MARK_START)
        m0 = t;
    else if (e == GC_EVENT_MARK_END)
        peer_boehm_mark_ns += peer_boehm_ns_since(&m0, &t);
}
static inline void peer_init(void)
{
    GC_INIT();
#ifdef PEER_BOEHM_INCR
    GC_enable_incremental();
#endif
    clock_gettime(CLOCK_MONOTONIC, &peer_boehm_t_init);
    GC_set_on_collection_event(peer_boehm_on_event);
}
static inline double peer_gc_cpu_fraction(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    uint64_t all = peer_boehm_ns_since(&peer_boehm_t_init, &t);
    return all ? (double)peer_boehm_pause_total_ns / (double)all : 0;
}
/* Boehm starts its parallel markers (GC_MARKERS of them, default one per CPU) only when
 * the client creates its first thread; a single-threaded workload that wants them
 * (mark) asks for them here. */
static inline void peer_track_marking(void) { GC_start_mark_threads(); }
static inline uint64_t peer_mark_ns(void) { return peer_boehm_mark_ns; }
static inline unsigned peer_procs(void)
{
    struct GC_prof_stats_s st;
    GC_get_prof_stats(&st, sizeof st);
    return (unsigned)st.markers_m1 + 1;
}
static inline void *peer_alloc(size_t n) { return GC_MALLOC(n); }
static inline void *peer_alloc_atomic(size_t n)
{
    void *p = GC_MALLOC_ATOMIC(n);
    if (p)
        memset(p, 0, n);   /* the others return zeroed memory */
    return p;
}
static inline void peer_free(void *p) { (void)p; }
#define PEER_WRITE(lvalue, value) ((lvalue) = (value))   /* dirty bits from the VM */
static inline void peer_collect(void) { GC_gcollect(); }
static inline unsigned peer_cycles(void) { return (unsigned)GC_get_gc_no(); }
static inline double peer_max_pause_ms(void) { return peer_boehm_max_pause_ns / 1e6; }
#elif defined(PEER_MALLOC)
#define PEER_NAME "malloc"
#define PEER_COLLECTS 0
static inline void peer_init(void) {}
static inline void *peer_alloc(size_t n) { return calloc(1, n); }
static inline void *peer_alloc_atomic(size_t n) { return calloc(1, n); }
static inline void peer_free(void *p) { free(p); }
#define PEER_WRITE(lvalue, value) ((lvalue) = (value))
static inline void peer_collect(void) {}
static inline unsigned peer_cycles(void) { return 0; }
static inline double peer_max_pause_ms(void) { return 0; }
static inline double peer_gc_cpu_fraction(void) { return 0; }
#elif defined(PEER_BUMP)
/* The floor of allocation cost: a pointer bump, nothing ever freed or reused.  One big
 * reservation of address space (MAP_NORESERVE: pages appear, zeroed, when first
 * touched, one fault per 4 KiB page; BENCH_BUMP_GIB sets its size, default 64 GiB);
 * each thread bumps through a private 1 MiB chunk and takes the next chunk from the
 * region with one atomic add.  Memory only grows: use it where everything a run
 * allocates fits in RAM.  (Huge pages and MADV_POPULATE_WRITE were tried: the first
 * made runs vary by 4x through compaction stalls, the second gained nothing.) */
#include <stdatomic.h>
#include <sys/mman.h>
#define PEER_NAME "bump"
#define PEER_COLLECTS 0
enum { PEER_BUMP_CHUNK = 1 << 20, PEER_BUMP_ALIGN = 16 };
static char *peer_bump_base;
static size_t peer_bump_size;
static atomic_size_t peer_bump_used;
static _Thread_local uintptr_t peer_bump_cur, peer_bump_end;   /* this thread's chunk */
static inline void peer_init(void)
{
    const char *e = getenv("BENCH_BUMP_GIB");
    size_t gib = e && atol(e) > 0 ? (size_t)atol(e) : 64;
    peer_bump_size = gib << 30;
    void *p = mmap(NULL, peer_bump_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "bump: cannot reserve %zu GiB of address space\n", gib);
        exit(1);
    }
    peer_bump_base = p;
}
static inline void *peer_bump_take(size_t n)
{
    size_t off = atomic_fetch_add_explicit(&peer_bump_used, n, memory_order_relaxed);
    return off <= peer_bump_size && n <= peer_bump_size - off ? peer_bump_base + off : NULL;
}
static inline void *peer_bump_refill(size_t n)
{
    if (n > PEER_BUMP_CHUNK / 8)   /* large: straight from the region, keep the chunk */
        return peer_bump_take(n);
    char *c = peer_bump_take(PEER_BUMP_CHUNK);
    if (!c)
        return NULL;
    peer_bump_cur = (uintptr_t)c + n;
    peer_bump_end = (uintptr_t)c + PEER_BUMP_CHUNK;
    return c;
}
static inline void *peer_alloc(size_t n)
{
    n = n ? (n + PEER_BUMP_ALIGN - 1) & ~(size_t)(PEER_BUMP_ALIGN - 1) : PEER_BUMP_ALIGN;
    uintptr_t p = peer_bump_cur;
    if (__builtin_expect(peer_bump_end - p >= n, 1)) {
        peer_bump_cur = p + n;
        return (void *)p;
    }
    return peer_bump_refill(n);
}
static inline void *peer_alloc_atomic(size_t n) { return peer_alloc(n); }
static inline void peer_free(void *p) { (void)p; }
#define PEER_WRITE(lvalue, value) ((lvalue) = (value))
static inline void peer_collect(void) {}
static inline unsigned peer_cycles(void) { return 0; }
static inline double peer_max_pause_ms(void) { return 0; }
static inline double peer_gc_cpu_fraction(void) { return 0; }
#else
#error "define one of PEER_TRICOLOR, PEER_TRICOLOR_STW, PEER_BOEHM, PEER_BOEHM_INCR, PEER_MALLOC, PEER_BUMP"
#endif

#ifdef PEER_THREADS
#include <pthread.h>
/* A thread that allocates.  Tricolor's gc_thread_create registers the new thread
 * before fn runs and unregisters it when fn returns (gc_register_thread /
 * gc_unregister_thread); Boehm's GC_pthread_create does the same for Boehm and
 * starts its parallel markers with the first thread. */
static inline int peer_thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
#if defined(PEER_TRICOLOR) || defined(PEER_TRICOLOR_STW)
    return gc_thread_create(t, NULL, fn, arg);
#elif defined(PEER_BOEHM) || defined(PEER_BOEHM_INCR)
    return GC_pthread_create(t, NULL, fn, arg);
#else
    return pthread_create(t, NULL, fn, arg);
#endif
}
/* Tricolor: the waiting thread joins inside gc_do_blocking, as a program whose threads
 * wait in the kernel should, so stopping the world need not signal and wake it. */
#if defined(PEER_TRICOLOR) || defined(PEER_TRICOLOR_STW)
static inline void *peer_join_blocking(void *t)
{
    return (void *)(intptr_t)pthread_join(*(pthread_t *)t, NULL);
}
#endif
static inline int peer_thread_join(pthread_t t)
{
#if defined(PEER_BOEHM) || defined(PEER_BOEHM_INCR)
    return GC_pthread_join(t, NULL);
#elif defined(PEER_TRICOLOR) || defined(PEER_TRICOLOR_STW)
    return (int)(intptr_t)gc_do_blocking(peer_join_blocking, &t);
#else
    return pthread_join(t, NULL);
#endif
}
#endif

static inline double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static inline double bench_cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static inline long bench_maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* The resident set now, in KiB (the second field of /proc/self/statm). */
static inline long bench_rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* CPU time the host kept from this (virtual) machine, all CPUs together, in ms since
 * boot: the steal column of /proc/stat's "cpu" line; 0 where there is none.  A
 * workload reports what accrued while it ran: a stall that coincides with steal is
 * the machine's, not the collector's. */
static inline double bench_steal_ms(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
            v[7] = 0;
        fclose(f);
    }
    return (double)v[7] * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

/* The file named by BENCH_SERIES, opened for writing, or NULL when it is not set (the
 * workloads that can write a time series for bench/plot only do it when asked). */
static inline FILE *bench_series_open(void)
{
    const char *path = getenv("BENCH_SERIES");
    if (!path || !*path)
        return NULL;
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "%s: cannot write BENCH_SERIES=%s\n", PEER_NAME, path);
    return f;
}

/* One result line, parsed by bench/run: key=value pairs. */
static inline void bench_report(const char *workload, double wall, double cpu, const char *extra)
{
    printf("peer=%s workload=%s wall_s=%.4f cpu_s=%.4f maxrss_kb=%ld cycles=%u max_pause_ms=%.3f%s%s\n",
           PEER_NAME, workload, wall, cpu, bench_maxrss_kb(), peer_cycles(),
           peer_max_pause_ms(), extra && *extra ? " " : "", extra ? extra : "");
}

#endif
