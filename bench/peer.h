/* peer.h - the thin allocation interface every C benchmark is written against.
 *
 * One workload source is compiled once per peer (Tricolor, the Boehm collector,
 * malloc/free, a bump allocator that never frees) with -DPEER_xxx, so every peer does
 * exactly the same work.  peer_free is a no-op for the collectors; the workloads call
 * it where a malloc/free program would free.  PEER_WRITE(lvalue, value) stores a
 * pointer into an object that is not freshly allocated (Tricolor's GC_WRITE barrier;
 * a plain store for the others).
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

#if defined(PEER_TRICOLOR) || defined(PEER_TRICOLOR_CONC)
#include <tricolor.h>
#ifdef PEER_TRICOLOR_CONC
#define PEER_NAME "tricolor-conc"
#else
#define PEER_NAME "tricolor"
#endif
#define PEER_COLLECTS 1
static inline void peer_init(void)
{
#ifdef PEER_TRICOLOR_CONC
    /* Concurrent marking (GCDEBUG=gcconcurrent=1), with any other GCDEBUG keys kept. */
    const char *old = getenv("GCDEBUG");
    char buf[512];
    snprintf(buf, sizeof buf, "%s%sgcconcurrent=1", old ? old : "", old && *old ? "," : "");
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
#elif defined(PEER_BOEHM) || defined(PEER_BOEHM_INCR)
#include <gc.h>
#ifdef PEER_BOEHM_INCR
#define PEER_NAME "boehm-incr"
#else
#define PEER_NAME "boehm"
#endif
#define PEER_COLLECTS 1
static unsigned long peer_boehm_max_pause_ns;
static void peer_boehm_on_event(GC_EventType e)
{
    static struct timespec t0;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (e == GC_EVENT_PRE_STOP_WORLD)
        t0 = t;
    else if (e == GC_EVENT_POST_START_WORLD) {
        unsigned long ns = (t.tv_sec - t0.tv_sec) * 1000000000UL + (t.tv_nsec - t0.tv_nsec);
        if (ns > peer_boehm_max_pause_ns)
            peer_boehm_max_pause_ns = ns;
    }
}
static inline void peer_init(void)
{
    GC_INIT();
#ifdef PEER_BOEHM_INCR
    GC_enable_incremental();
#endif
    GC_set_on_collection_event(peer_boehm_on_event);
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
#else
#error "define one of PEER_TRICOLOR, PEER_BOEHM, PEER_BOEHM_INCR, PEER_MALLOC"
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

/* One result line, parsed by bench/run: key=value pairs. */
static inline void bench_report(const char *workload, double wall, double cpu, const char *extra)
{
    printf("peer=%s workload=%s wall_s=%.4f cpu_s=%.4f maxrss_kb=%ld cycles=%u max_pause_ms=%.3f%s%s\n",
           PEER_NAME, workload, wall, cpu, bench_maxrss_kb(), peer_cycles(),
           peer_max_pause_ms(), extra && *extra ? " " : "", extra ? extra : "");
}

#endif
