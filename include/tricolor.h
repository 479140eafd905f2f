/* tricolor.h - the public interface of the Tricolor garbage-collected heap.
 *
 * Link with -ltricolor (pkg-config --cflags --libs tricolor).  Every public name
 * starts with gc_ or GC_; nothing else is exported.  doc/api.md describes each call.
 */
#ifndef TRICOLOR_H
#define TRICOLOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GC_API __attribute__((visibility("default")))
#define GC_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#define GC_LIKELY(x) __builtin_expect(!!(x), 1)
#define GC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define GC_API
#define GC_MALLOC_ATTR
#define GC_LIKELY(x) (x)
#define GC_UNLIKELY(x) (x)
#endif

#define GC_VERSION_MAJOR 0
#define GC_VERSION_MINOR 1

/* ---- Lifecycle and allocation ------------------------------------------------ */
GC_API void gc_init(void);
GC_API void *gc_malloc(size_t size) GC_MALLOC_ATTR;
GC_API void *gc_malloc_atomic(size_t size) GC_MALLOC_ATTR;
GC_API void *gc_calloc(size_t n, size_t size) GC_MALLOC_ATTR;
GC_API void *gc_realloc(void *p, size_t size);
GC_API char *gc_strdup(const char *s) GC_MALLOC_ATTR;
GC_API void gc_free(void *p);
GC_API size_t gc_size(const void *p);
GC_API void *gc_base(const void *p);

/* ---- Roots and threads ------------------------------------------------------- */
GC_API void gc_add_roots(void *start, void *end);
GC_API void gc_remove_roots(void *start, void *end);
GC_API int gc_register_thread(void);
GC_API int gc_unregister_thread(void);
GC_API int gc_thread_create(pthread_t *t, const pthread_attr_t *attr,
                            void *(*fn)(void *), void *arg);
/* Runs fn(arg) as a blocking region: fn touches no collected object and calls no gc_*
 * function (it waits in a join, a condition variable, a read).  Meanwhile a stop of
 * the world counts the thread as stopped without signalling or waking it; its
 * registers and stack up to this call stay roots.  When fn returns while the world is
 * stopped, the thread waits for it to resume.  Returns what fn returns. */
GC_API void *gc_do_blocking(void *(*fn)(void *), void *arg);

/* ---- Collection control ------------------------------------------------------ */
GC_API void gc_collect(void);
GC_API int gc_set_percent(int percent);
GC_API int64_t gc_set_memory_limit(int64_t bytes);
GC_API void gc_disable(void);
GC_API void gc_enable(void);
GC_API void gc_free_os_memory(void);

/* ---- Statistics -------------------------------------------------------------- */
#define GC_NUM_SIZE_CLASSES 73   /* [0] is size 0 (unused); [1..72] the size classes */

struct gc_memstats {
    /* General */
    uint64_t alloc;          /* bytes of allocated heap objects (= heap_alloc) */
    uint64_t total_alloc;    /* cumulative bytes allocated */
    uint64_t sys;            /* bytes obtained from the OS: the sum of the *_sys fields */
    uint64_t lookups;        /* pointer lookups made by the runtime (always 0, as in Go) */
    uint64_t mallocs;        /* cumulative objects allocated */
    uint64_t frees;          /* cumulative objects freed */
    /* Heap */
    uint64_t heap_alloc;     /* bytes of allocated heap objects */
    uint64_t heap_sys;       /* bytes of heap address space mapped (heap_idle + heap_inuse) */
    uint64_t heap_idle;      /* bytes in spans holding no objects */
    uint64_t heap_inuse;     /* bytes in spans holding at least one object */
    uint64_t heap_released;  /* bytes of idle spans returned to the OS */
    uint64_t heap_objects;   /* live objects (mallocs - frees) */
    /* Off-heap */
    uint64_t stack_inuse;    /* bytes of stacks the collector allocated (0: hosts own theirs) */
    uint64_t stack_sys;
    uint64_t mspan_inuse;    /* bytes of span descriptors in use */
    uint64_t mspan_sys;
    uint64_t mcache_inuse;   /* bytes of per-thread allocation caches in use */
    uint64_t mcache_sys;
    uint64_t buck_hash_sys;  /* profiling bucket tables */
    uint64_t gc_sys;         /* collector metadata: span maps, mark stacks, root tables */
    uint64_t other_sys;      /* everything else the runtime mapped */
    /* Collector */
    uint64_t next_gc;        /* heap goal of the next cycle, bytes */
    uint64_t last_gc;        /* end of the last cycle, ns since the Unix epoch */
    uint64_t pause_total_ns; /* sum of every stop-the-world pause */
    uint64_t pause_ns[256];  /* per cycle: both pauses summed; latest at [(num_gc+255)%256] */
    uint64_t pause_end[256]; /* per cycle: end of its last pause, ns since the Unix epoch */
    uint32_t num_gc;         /* completed cycles */
    uint32_t num_forced_gc;  /* of which forced by gc_collect / gc_free_os_memory */
    double gc_cpu_fraction;  /* share of available CPU used by the collector since gc_init */
    bool enable_gc;          /* false while gc_disable is in force or GCPERCENT=off */
    bool debug_gc;           /* true when GCDEBUG is set */
    struct {
        uint32_t size;       /* the class's object size */
        uint64_t mallocs;
        uint64_t frees;
    } by_size[GC_NUM_SIZE_CLASSES];
};

GC_API void gc_read_memstats(struct gc_memstats *m);

/* ---- Write barrier ------------------------------------------------------------ */
/* The barrier flag is read inline; its layout is private, only its non-zero test
 * is part of the interface. */
GC_API extern volatile int gc_barrier_active_;
GC_API void gc_write_barrier_slow_(void *slot, void *value);

/* Keep v in a register up to this point (see GC_WRITE). */
#if defined(__GNUC__)
#define GC_KEEP_(v) __asm__ volatile("" : : "r"(v))
#else
#define GC_KEEP_(v) ((void)(v))
#endif

/* Statement: store the pointer value into the heap lvalue.  The slot's old value is
 * read first (the slot is about to be written, so it is in cache) and held until the
 * store is done: a collection may stop the thread between the flag test and the
 * store, and the old value must then be in a register, where the root scan finds it.
 * Each argument is evaluated exactly once. */
#define GC_WRITE(lvalue, value)                                                   \
    do {                                                                          \
        __typeof__(lvalue) *gc_write_p_ = &(lvalue);                              \
        __typeof__(lvalue) gc_write_v_ = (value);                                 \
        __typeof__(lvalue) gc_write_old_ = *(__typeof__(lvalue) volatile *)gc_write_p_; \
        if (GC_UNLIKELY(gc_barrier_active_))                                      \
            gc_write_barrier_slow_((void *)gc_write_p_, (void *)(uintptr_t)gc_write_v_); \
        *gc_write_p_ = gc_write_v_;                                               \
        GC_KEEP_(gc_write_old_);                                                  \
    } while (0)

/* Statement: GC_WRITE as one C11 atomic store with the given memory order
 * (__ATOMIC_RELAXED, __ATOMIC_RELEASE or __ATOMIC_SEQ_CST), for slots that other
 * threads read with atomic loads: publishing an object to lock-free readers, a
 * seqlock's fields.  The old value is read with a relaxed atomic load.  Readers need
 * no barrier: loading a pointer never needs one. */
#if defined(__GNUC__)
#define GC_WRITE_ATOMIC(lvalue, value, order)                                     \
    do {                                                                          \
        __typeof__(lvalue) *gc_write_p_ = &(lvalue);                              \
        __typeof__(lvalue) gc_write_v_ = (value);                                 \
        __typeof__(lvalue) gc_write_old_ = __atomic_load_n(gc_write_p_, __ATOMIC_RELAXED); \
        if (GC_UNLIKELY(gc_barrier_active_))                                      \
            gc_write_barrier_slow_((void *)gc_write_p_, (void *)(uintptr_t)gc_write_v_); \
        __atomic_store_n(gc_write_p_, gc_write_v_, order);                        \
        GC_KEEP_(gc_write_old_);                                                  \
    } while (0)
#endif

GC_API void gc_write_range(void *dst, size_t len);
GC_API void *gc_memcpy(void *dst, const void *src, size_t n);
GC_API void *gc_memmove(void *dst, const void *src, size_t n);
GC_API void *gc_memset(void *dst, int c, size_t n);

/* ---- Phase timing ------------------------------------------------------------- */
struct gc_cycle_info {
    uint32_t num;                /* cycle number; equals num_gc once it finished */
    bool forced;                 /* gc_collect / gc_free_os_memory */
    uint64_t start_ns;           /* since gc_init */
    uint64_t sweep_term_ns;      /* wall: STW1 */
    uint64_t mark_ns;            /* wall: concurrent mark */
    uint64_t mark_term_ns;       /* wall: STW2 */
    uint64_t stw1_cpu_ns, assist_cpu_ns, background_cpu_ns, idle_cpu_ns, stw2_cpu_ns;
    uint64_t heap_start;         /* bytes at cycle start */
    uint64_t heap_end;           /* bytes at mark termination */
    uint64_t heap_live;          /* bytes marked */
    uint64_t heap_goal;          /* bytes this cycle aimed at */
    uint64_t stacks_scanned;     /* bytes */
    uint64_t globals_scanned;    /* bytes */
    uint32_t procs;              /* marker threads */
};

GC_API void gc_set_cycle_hook(void (*hook)(const struct gc_cycle_info *info, void *arg),
                              void *arg);

#ifdef __cplusplus
}
#endif
#endif /* TRICOLOR_H */
