/* internal.h - types and functions shared between the collector's files.
 *
 * Nothing public depends on this header.  Declarations are grouped under the file
 * that defines them, in pipeline order (os -> sizeclass -> heap -> alloc -> roots/stw
 * -> mark/barrier -> sweep -> pacer -> cycle -> memstats/trace -> options), so the
 * header doubles as an index of the tree.  Cross-file functions carry the prefix of
 * their file (os_, sc_, heap_, alloc_, roots_, stw_, mark_, sweep_, pacer_, cycle_,
 * stats_, trace_, opt_); everything else is static.
 */
#ifndef TRICOLOR_INTERNAL_H
#define TRICOLOR_INTERNAL_H

#include "config.h"

#include <atomic_ops.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <ucontext.h>

#include "tricolor.h"
#include "pacer.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define INTERNAL __attribute__((visibility("hidden")))

/* ThreadSanitizer does not see the stop and resume of the world as synchronisation
 * (a signal, a semaphore posted in its handler, a raw futex): these annotations tell
 * it that what a thread did before it stopped happens before what the collector does
 * in the pause, and that happens before what the thread does after it resumes.  Then
 * reuse of swept memory by another thread is ordered as it really is.  No-ops in
 * other builds. */
#if GC_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#define TSAN_RELEASE(p) __tsan_release((void *)(p))
#else
#define TSAN_ACQUIRE(p) ((void)0)
#define TSAN_RELEASE(p) ((void)0)
#endif

/* The collector reads words of memory it does not own (stacks, data segments, heap
 * objects) and reads them racily by design; sanitizers are told so here. */
#if defined(__clang__) || defined(__GNUC__)
#define NO_SANITIZE \
    __attribute__((no_sanitize_address, no_sanitize("undefined"), no_sanitize("thread")))
#else
#define NO_SANITIZE
#endif

#if GC_DEBUG_BUILD
#define GC_ASSERT(c)                                                                     \
    ((c) ? (void)0 : gc_fatal_("assertion failed: %s (%s:%d)", #c, __FILE__, __LINE__))
#else
#define GC_ASSERT(c) ((void)0)
#endif

/* ---- Atomics: libatomic_ops, in one place ------------------------------------- */
typedef AO_t atomic_word;
#define atomic_load_relaxed(p) AO_load(p)
#define atomic_store_relaxed(p, v) AO_store((p), (v))
#define atomic_load_acquire(p) AO_load_acquire(p)
#define atomic_store_release(p, v) AO_store_release((p), (v))
#define atomic_add(p, v) ((void)AO_fetch_and_add((p), (AO_t)(v)))
#define atomic_cas(p, o, n) AO_compare_and_swap_full((p), (o), (n))
/* A counter with a single writer: a plain add that readers may load at any time. */
static inline void counter_add(atomic_word *c, AO_t d)
{
    AO_store(c, AO_load(c) + d);
}

/* ---- Geometry ----------------------------------------------------------------- */
#define PAGE_SHIFT 13
#define PAGE_SIZE ((size_t)1 << PAGE_SHIFT)          /* 8 KiB */
#define ARENA_SHIFT 26
#define ARENA_SIZE ((size_t)1 << ARENA_SHIFT)        /* 64 MiB */
#define ARENA_PAGES (ARENA_SIZE >> PAGE_SHIFT)       /* 8192 */
#define ADDR_BITS 48                                 /* user address space, x86-64 and aarch64 */
#define ARENA_L1_ENTRIES ((size_t)1 << (ADDR_BITS - ARENA_SHIFT))
#define MAX_SMALL_SIZE 32768
#define NUM_CLASSES 72                               /* classes 1..72; 0 means "large" */
#define MAX_SPAN_OBJECTS 512
#define BITMAP_WORDS (MAX_SPAN_OBJECTS / 64)
#define TINY_SIZE 16                                 /* noscan objects below this share blocks */

/* What a span's objects are: scanned, never scanned, or 16-byte blocks that pack
 * several tiny noscan objects. */
enum alloc_kind { KIND_SCAN, KIND_NOSCAN, KIND_TINY, NUM_KINDS };
#define MIN_HEAP_GOAL ((uint64_t)4 << 20)
#define GROW_CHUNK ((size_t)1 << 20)                 /* the heap is committed 1 MiB at a time */

void gc_fatal_(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void gc_warn_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- os.c: every call into the OS ------------------------------------------- */
enum sys_kind { SYS_HEAP, SYS_STACK, SYS_MSPAN, SYS_MCACHE, SYS_BUCKHASH, SYS_GC, SYS_OTHER,
                SYS_KINDS };
extern atomic_word os_sys_bytes[SYS_KINDS];         /* bytes mapped, per memstats field */
void *os_map(size_t size, enum sys_kind kind);       /* zeroed; NULL + ENOMEM on failure */
void *os_map_aligned(size_t size, size_t align, enum sys_kind kind);
void os_unmap(void *p, size_t size, enum sys_kind kind);
void *os_reserve(size_t size);                       /* address space only, never touched */
void *os_reserve_aligned(size_t size, size_t align); /* inaccessible until committed */
int os_commit(void *p, size_t size, enum sys_kind kind); /* 0, or -1 + ENOMEM */
void os_release(void *p, size_t size);               /* madvise(DONTNEED): back to the OS */
uint64_t os_now_ns(void);                            /* monotonic */
uint64_t os_wall_ns(void);                           /* since the Unix epoch */
uint64_t os_thread_cpu_ns(void);
uint64_t os_process_cpu_ns(void);
int os_ncpu(void);
pid_t os_gettid(void);
int os_thread_stack(uintptr_t *lo, uintptr_t *hi);   /* calling thread's stack bounds */

/* ---- sizeclass.c: the size-class table -------------------------------------- */
struct size_class {
    uint32_t size;      /* object size, multiple of 16 */
    uint32_t npages;    /* pages per span */
    uint32_t nelems;    /* objects per span, <= MAX_SPAN_OBJECTS */
    uint32_t div_mul;   /* (off * div_mul) >> 32 == off / size for every offset in a span */
};
extern struct size_class sc_table[NUM_CLASSES + 1];
extern uint8_t sc_index_small[1024 / 8 + 1];        /* (n + 7) >> 3 -> class, n <= 1024 */
extern uint8_t sc_index_large[(MAX_SMALL_SIZE - 1024) / 128 + 1];
void sc_init(void);
static inline unsigned sc_of(size_t n)              /* 1 <= n <= MAX_SMALL_SIZE */
{
    return n <= 1024 ? sc_index_small[(n + 7) >> 3] : sc_index_large[(n - 1024 + 127) >> 7];
}

/* ---- heap.c: arenas, page heap, address -> span map ------------------------- */
/* A span is published in use with a release store of its state once every field is
 * set (SPAN_INIT until then), and read with span_state(), so a marker running beside
 * the allocator never sees a half-made span. */
enum span_state { SPAN_DEAD, SPAN_FREE, SPAN_INIT, SPAN_SMALL, SPAN_LARGE };

enum span_list { LIST_NONE, LIST_PARTIAL, LIST_FULL };

struct span {
    uintptr_t base;             /* first byte */
    uint32_t npages;            /* length in pages */
    uint8_t state;              /* enum span_state */
    uint8_t cls;                /* size class, 0 for a large object */
    uint8_t kind;               /* enum alloc_kind */
    uint8_t noscan;             /* kind != KIND_SCAN: objects are never scanned */
    uint8_t needzero;           /* memory may be dirty: zero objects on allocation */
    uint8_t list;               /* enum span_list: which central list it is on */
    uint8_t cached;             /* held by a thread cache */
    uint32_t size;              /* object size in bytes (npages * PAGE_SIZE if large) */
    uint32_t nelems;            /* object slots */
    uint32_t div_mul;           /* see struct size_class */
    uint32_t nreleased;         /* FREE spans: of its pages, those returned to the OS */
    atomic_word sweepgen;       /* sweep_gen: swept; -1: being swept; -2: to sweep */
    struct span *next, *prev;   /* free-run bin or central partial list */
    atomic_word *tiny_bounds;   /* KIND_TINY: per block, bit o = an object starts at
                                   offset o, bit 16 + e - 1 = an object ends at e */
    atomic_word alloc_bits[BITMAP_WORDS];  /* 1 = slot allocated (or reserved by a cache) */
    atomic_word mark_bits[BITMAP_WORDS];   /* 1 = reached in the current mark */
    atomic_word check_bits[BITMAP_WORDS];  /* gccheckmark: objects already reported */
};

struct arena {
    struct span *spans[ARENA_PAGES];   /* page -> span; free runs map first and last page */
    uint64_t released[ARENA_PAGES / 64];   /* page returned to the OS (free runs only);
                                              heap.lock */
};

static inline unsigned span_state(const struct span *s)
{
    return AO_char_load_acquire(&s->state);
}

static inline void span_publish(struct span *s, enum span_state st)
{
    AO_char_store_release(&s->state, (unsigned char)st);
}

/* The size of each object in s (a large span's size field only holds 32 bits). */
static inline size_t span_object_size(const struct span *s)
{
    return s->cls ? s->size : (size_t)s->npages * PAGE_SIZE;
}

static inline uint32_t span_index(const struct span *s, uintptr_t p)
{
    return (uint32_t)(((uint64_t)(p - s->base) * s->div_mul) >> 32);
}

struct heap {
    pthread_mutex_t lock;              /* page heap: arenas, free runs, span descriptors */
    struct arena **arenas;             /* L1 map, ARENA_L1_ENTRIES, reserved lazily */
    atomic_word lo, hi;                /* bounds of every arena mapped so far */
    struct span *bins[128];            /* free runs of exactly n pages; [0]: 128 and more */
    uint64_t bin_mask[2];              /* non-empty bins */
    struct span *free_descs;           /* unused span descriptors */
    uint64_t pages_mapped;             /* heap_sys / PAGE_SIZE */
    uint64_t pages_inuse;              /* pages in SMALL and LARGE spans */
    uint64_t pages_released;           /* free pages returned to the OS */
    uint64_t spans_inuse;
    uint64_t arenas_mapped;
    uintptr_t grow_next, grow_end;     /* reserved but not yet committed address space */
    int grow_fail_for_test;            /* tests: pretend the OS refuses more memory */
};
extern struct heap heap;

void heap_init(void);
struct span *heap_alloc_span(size_t npages);        /* NULL + ENOMEM; caller sets state */
void heap_free_span(struct span *s);                 /* pages back to the page heap */
uint64_t heap_release_free(void);                   /* every free page to the OS; bytes */
uint64_t heap_release_some(uint64_t max_bytes);     /* at least max_bytes if there are */
void heap_lock(void);
void heap_unlock(void);
/* The page map is read without heap.lock (markers, gc_base, the sweeper's walk) and
 * written under it: its words are loaded and stored atomically (plain moves on every
 * target we build for).  What a lock-free reader finds is validated with span_state. */
#define MAP_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define MAP_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

/* The span holding address p (in use or not), or NULL.  Lock-free: reads the maps. */
static inline struct span *heap_span_of(uintptr_t p)
{
    if (p < atomic_load_relaxed(&heap.lo) || p >= atomic_load_relaxed(&heap.hi))
        return NULL;
    struct arena *a = MAP_LOAD(&heap.arenas[p >> ARENA_SHIFT]);
    return a ? MAP_LOAD(&a->spans[(p >> PAGE_SHIFT) & (ARENA_PAGES - 1)]) : NULL;
}

/* heap.pages_* and spans_inuse: changed under heap.lock, read without it (the pacer's
 * memory figure, scavtrace). */
#define HEAP_COUNT(field, delta) \
    AO_store((AO_t *)&heap.field, AO_load((AO_t *)&heap.field) + (AO_t)(delta))
/* Object containing p: its start and span, or 0 when p is not inside an allocated one. */
uintptr_t heap_find_object(uintptr_t p, struct span **out);
void heap_for_each_span(void (*fn)(struct span *s, void *arg), void *arg); /* world stopped */
atomic_word *heap_tiny_bounds_alloc(void);           /* zeroed, MAX_SPAN_OBJECTS words */

/* ---- alloc.c: thread caches, central lists, tiny and large objects ---------- */
struct mark_range { uintptr_t lo, hi; };
struct mark_state {
    struct mark_range *stack;   /* grey objects: [lo, hi) still to scan */
    size_t top, cap, max_cap;   /* entries; max_cap bounds the memory used */
    bool overflowed;            /* a push was dropped: rescan marked objects */
    uint64_t check_errors;      /* gccheckmark: unmarked objects found */
    uint64_t bytes_scanned;
    uint64_t bytes_marked;
    uint64_t objects_marked;
};

struct cache_slot {             /* one cached span for one (kind, class) pair */
    uint64_t free;              /* free slots of bitmap word `word`, not handed out yet */
    uintptr_t base;             /* span base */
    uint32_t size;              /* object size */
    uint32_t word;              /* current alloc_bits word */
    uint8_t needzero;
    struct span *span;          /* NULL: nothing cached */
};

struct central {                /* the spans of one (kind, class) pair no cache holds */
    pthread_mutex_t lock;
    struct span *partial;       /* swept, with free slots */
    struct span *full;          /* swept, no free slot */
    struct span *unswept[2];    /* after a mark: what was partial, and full, before it */
};

/* Per-thread counters, written only by their thread, merged on read. */
struct alloc_counters {
    atomic_word nmalloc[NUM_CLASSES + 1];   /* small objects per class; [0] large objects */
    atomic_word nfree[NUM_CLASSES + 1];     /* explicit gc_free per class; [0] large */
    atomic_word large_alloc_bytes;
    atomic_word large_free_bytes;
    atomic_word tiny_allocs;                /* tiny objects (counted as freed at once) */
};

struct mutator {
    struct cache_slot cache[NUM_KINDS][NUM_CLASSES + 1];   /* [kind][class] */
    struct alloc_counters stats;
    uintptr_t tiny;             /* current tiny block, 0 if none */
    size_t tiny_off;            /* bytes used in it */
    atomic_word *tiny_bounds;   /* its word in its span's tiny_bounds */
    volatile sig_atomic_t critical;   /* > 0: inside the allocator or a collector lock */
    volatile sig_atomic_t stop_pending; /* a stop request arrived while critical */
    /* Thread registry (stw.c) */
    pthread_t thread;
    pid_t tid;
    uintptr_t stack_lo, stack_hi;     /* stack bounds; hi is the base */
    volatile uintptr_t stopped_sp;    /* stack pointer saved when stopped */
    ucontext_t stopped_ctx;           /* registers saved when stopped */
    volatile atomic_word stop_seq;    /* last stop request this thread acknowledged */
    atomic_word block_state;          /* STW_RUNNING, STW_BLOCKED, STW_BLOCKED_STOPPED */
    unsigned blocking;                /* inside gc_do_blocking */
    uint64_t stop_ns;                 /* how long it took to stop, last time */
    bool auto_registered;             /* registered by its first allocation */
    bool collector;                   /* the collector thread: its stack holds no roots */
    /* Concurrent mark (barrier.c, alloc.c) */
    unsigned wbuf_n;                  /* values in wbuf */
    uintptr_t wbuf[256];              /* barrier: values to shade, flushed when full */
    uint64_t assist_debt;             /* bytes allocated black, not yet paid in scan work */
    struct mark_state assist;         /* this thread's grey work while assisting */
    struct mutator *next, *prev;
};

extern __thread struct mutator *alloc_self __attribute__((tls_model("initial-exec")));
extern struct central alloc_central[NUM_KINDS][NUM_CLASSES + 1];
extern atomic_word alloc_heap_live;           /* bytes allocated since the last mark + marked */
extern volatile int alloc_black;               /* concurrent mark: allocate marked */
extern atomic_word alloc_assist_cpu_ns;
extern atomic_word alloc_assist_scan_bytes;     /* scan work done by assists this cycle */

void alloc_init(void);
void alloc_lock_all(void);                      /* every central lock (fork) */
void alloc_unlock_all(void);
struct mutator *alloc_mutator_new(void);
void alloc_mutator_free(struct mutator *m);      /* flushes and merges its counters */
void alloc_flush_cache(struct mutator *m);      /* world stopped or m is the caller */
void alloc_merge_counters(struct alloc_counters *into, const struct alloc_counters *from);
extern struct alloc_counters alloc_dead_counters; /* threads that exited; heap.lock */
void alloc_release_span(struct span *s);        /* gc_free made room: full -> partial */
void alloc_file_span(struct central *c, struct span *s);  /* c->lock: partial or full */
struct span *alloc_unswept_pop(struct central *c);         /* c->lock */
void alloc_lists_to_unswept(void);                         /* world stopped */

/* Critical sections: a thread inside one is never stopped; the stop waits until it
 * leaves (see stw.c).  Everything that takes a collector lock runs inside one. */
void stw_park_pending(struct mutator *m);
static inline void critical_enter(struct mutator *m)
{
    m->critical++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}
/* Make the compiler hold p, fully computed, in a register or memory at this point.
 * A new object must exist as a real pointer before its thread can be stopped: left
 * to itself the compiler may keep only "span base" and "slot index" in registers and
 * form the address later, and a conservative scan cannot see such a pointer. */
#define HOLD_POINTER(p) __asm__ volatile("" : : "r"(p) : "memory")

static inline void critical_leave(struct mutator *m)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    m->critical--;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    /* (Atomic: in TSan builds the stopping thread sets it too.) */
    if (unlikely(__atomic_load_n(&m->stop_pending, __ATOMIC_RELAXED)) && m->critical == 0)
        stw_park_pending(m);
}

/* Take a collector lock that is held across stops of the world (cycle.lock, the
 * registry lock) outside a critical section.  In TSan builds a thread blocked in
 * pthread_mutex_lock cannot take the stop signal (TSan delivers it at the next call
 * it intercepts), so the thread publishes its registers and stack pointer first and
 * counts as stopped while it waits; elsewhere this is pthread_mutex_lock. */
enum { STW_RUNNING, STW_BLOCKED, STW_BLOCKED_STOPPED };

/* m->block_state from -> to; false if it was not `from`. */
static inline bool stw_block_move(struct mutator *m, AO_t from, AO_t to)
{
    return __atomic_compare_exchange_n(&m->block_state, &from, to, false, __ATOMIC_SEQ_CST,
                                       __ATOMIC_SEQ_CST);
}

/* Blocking regions (gc_do_blocking, and where a program thread waits for the
 * collector thread): between stw_block_enter and stw_block_leave the thread touches
 * no object and holds no lock a stopper needs, and a stop counts it as stopped
 * without a signal.  stw_block_enter publishes a stack pointer below its caller's
 * frame, which must stay live (not return) until stw_block_leave and must have called
 * __builtin_unwind_init first: the program's callee-saved registers are then in that
 * frame, where the stack scan finds them (caller-saved ones hold nothing live across
 * a call). */
void stw_block_enter(struct mutator *m);
void stw_block_leave(struct mutator *m);
#if GC_TSAN
void stw_lock_blocking(pthread_mutex_t *l);
#else
static inline void stw_lock_blocking(pthread_mutex_t *l) { pthread_mutex_lock(l); }
#endif

/* A collector lock taken by a thread that may be stopped (any registered thread) is
 * held only inside a critical section: fork stops the world and then takes them all. */
static inline struct mutator *critical_enter_self(void)
{
    struct mutator *m = alloc_self;
    if (m)
        critical_enter(m);
    return m;
}

static inline void critical_leave_self(struct mutator *m)
{
    if (m)
        critical_leave(m);
}

/* ---- roots.c: stacks, registers, data segments, registered ranges ----------- */
struct mark_state;
void roots_init(void);
void roots_prepare(void);
void roots_lock_all(void);                            /* fork */
void roots_phdr_lock(void);                           /* fork, before the world stops */
void roots_phdr_unlock(void);
void roots_unlock_all(void);                             /* before the world stops */
uint64_t roots_scan_globals(struct mark_state *ms);   /* bytes scanned */
uint64_t roots_scan_stacks(struct mark_state *ms);    /* world stopped; bytes scanned */
uint64_t roots_scan_thread(struct mark_state *ms, struct mutator *m);  /* world stopped */
#define ROOTS_PARALLEL_THREADS 16   /* from this many threads, markers share the stacks */
/* Call fn on every global root range (data segments and gc_add_roots ranges). */
void roots_for_each_global(struct mark_state *ms,
                           void (*fn)(struct mark_state *ms, uintptr_t lo, uintptr_t hi));

/* ---- stw.c: thread registry, stop and resume the world ---------------------- */
extern pthread_mutex_t stw_registry_lock;
extern struct mutator *stw_threads;                 /* registered threads */
extern int stw_nthreads;
void stw_init(void);
#define STW_REG_AUTO 1                                /* registered by a first allocation */
#define STW_REG_COLLECTOR 2                           /* the collector thread */
struct mutator *stw_register_self(unsigned how);      /* NULL on failure */
void stw_unregister_self(void);
uint64_t stw_stop_world(void);                      /* returns ns taken to stop */
struct stw_stop_report {          /* the last stop: how long, and the slowest thread */
    uint64_t request_ns;          /* os_now_ns when the stop was requested */
    uint64_t resume_ns;           /* os_now_ns when the world was released */
    uint64_t stop_ns, slowest_ns;
    pid_t slowest_tid;
    pthread_t slowest;
    int threads;
};
extern struct stw_stop_report stw_last_stop;
void stw_trace(const char *what, uint32_t cycle_num, uint64_t pause_ns,
               const struct stw_stop_report *r);
uint64_t stw_start_world(void);   /* returns when it released the world */

/* ---- mark.c: grey work and conservative scanning ---------------------------- */
void mark_init(struct mark_state *ms, size_t max_entries);
void mark_destroy(struct mark_state *ms);
void mark_scan_range(struct mark_state *ms, uintptr_t lo, uintptr_t hi);
void mark_drain(struct mark_state *ms);
void mark_set_atomic(bool on);                        /* several markers: CAS mark bits */
bool mark_is_atomic(void);
void mark_shade_value(struct mark_state *ms, uintptr_t w);
void mark_shade_shared(const uintptr_t *v, size_t n); /* into the shared grey list */
uint64_t mark_assist(struct mark_state *ms, uint64_t budget); /* in a critical section */
void mark_finish(struct mark_state *ms);              /* world stopped */
uint64_t mark_check(struct mark_state *ms);           /* gccheckmark; world stopped */
void mark_abandon(struct mark_state *ms);             /* fork child: forget a mark */
void mark_fork_child(void);                           /* fork child: grey_lock anew */
bool mark_is_marked(uintptr_t obj);
size_t mark_step(struct mark_state *ms);              /* scan up to 128; 0: empty */
void mark_move_oldest(struct mark_range *dst, struct mark_state *src, size_t n);
void mark_push_all(struct mark_state *ms, const struct mark_range *v, size_t n);
bool mark_take_shared(struct mark_state *ms, size_t max);
void mark_offer_shared(struct mark_state *ms);        /* half, when the list is dry */
void mark_give_shared(struct mark_state *ms);         /* all of it */
bool mark_shared_pending(void);
extern atomic_word mark_bg_scanned, mark_bg_credit;   /* concurrent mark: scan bytes */
uint64_t mark_take_credit(uint64_t want);

/* ---- workers.c: parallel marking --------------------------------------------- */
#define MARK_WORKERS_MAX 64
struct mark_cpu { unsigned workers; uint64_t cpu_ns, idle_cpu_ns; };
unsigned mark_workers_max(void);                      /* min(GCPROCS, MARK_WORKERS_MAX) */
enum mark_mode { MARK_STW, MARK_BACKGROUND, MARK_URGENT };  /* URGENT: concurrent, all markers */
void mark_parallel(struct mark_state *ms, enum mark_mode mode, struct mark_cpu *cpu);
void mark_workers_fork_child(void);
uint64_t mark_parallel_roots(struct mark_state *ms, struct mutator **threads, size_t n);

/* ---- barrier.c: write barrier slow path -------------------------------------------- */
void barrier_flush(struct mutator *m);                /* in a critical section, or stopped */
void barrier_shade_range(struct mutator *m, const void *dst, size_t len);

/* ---- sweep.c ------------------------------------------------------------------ */
void sweep_begin(void);                 /* world stopped: every span becomes unswept */
uint64_t sweep_finish(void);            /* sweep the rest; returns live bytes */
uint64_t sweep_all(void);               /* world stopped: begin + finish */
struct span *sweep_for_class(unsigned kind, unsigned cls);  /* lazy: a span, cached */
void sweep_some(unsigned n);            /* up to n spans of any class */
extern atomic_word sweep_nfree[NUM_CLASSES + 1];      /* objects freed by sweeping, per class */
extern atomic_word sweep_large_free_bytes;
extern atomic_word sweep_gen;                         /* current sweep generation (even) */
extern int sweep_active;   /* a background sweep is running: sweep_is_active() to read */
static inline bool sweep_is_active(void)
{
    return __atomic_load_n(&sweep_active, __ATOMIC_ACQUIRE);
}

/* ---- pacer.c: see pacer.h --------------------------------------------------------- */

/* ---- cycle.c: the phase machine ------------------------------------------------ */
enum gc_phase { PHASE_OFF, PHASE_SWEEP_TERM, PHASE_MARK, PHASE_MARK_TERM, PHASE_SWEEP };
struct cycle_state {
    pthread_mutex_t lock;          /* one cycle at a time */
    volatile int phase;            /* enum gc_phase; changed only by cycle.c */
    atomic_word num_gc;            /* completed cycles */
    atomic_word next_gc;           /* heap goal in bytes */
    atomic_word trigger;           /* heap size that starts a cycle (= goal when STW) */
    atomic_word disabled;          /* gc_disable depth */
    atomic_word assist_ratio;      /* scan bytes owed per 1024 bytes allocated in mark */
    struct pacer_assist_in assist_in;   /* this mark's figures, for revising the ratio */
    int percent;                   /* GCPERCENT, -1 = off */
    int64_t memory_limit;
    uint64_t init_ns;              /* os_now_ns at gc_init */
    uint64_t init_wall_ns;
    uint64_t last_live, last_roots;
    struct pacer_state pacer;      /* measured rates, across cycles (cycle.lock) */
    struct pacer_limiter limiter;  /* GC CPU leaky bucket (cycle.lock) */
    volatile int limiting;         /* limiter full: assists are forgiven */
    enum pacer_goal_source goal_source;
    uint64_t limiter_ns;           /* os_now_ns of the limiter's last update */
    void (*hook)(const struct gc_cycle_info *, void *);
    void *hook_arg;
};
extern struct cycle_state cycle;
void cycle_init(void);
void cycle_maybe_start(void);
void cycle_revise_assist_ratio(void);   /* concurrent mark: from the progress so far */
void cycle_memory_now(struct pacer_memory *mem);   /* what the memory limit counts */

/* ---- scavenge.c: returning free pages to the OS ------------------------------ */
void scav_wake(void);                   /* after a cycle: a new goal */
void scav_fork_child(void);      /* allocation crossed the goal; outside critical */
enum cycle_why {
    WHY_PACER,      /* the heap reached its goal (skipped if another thread just collected) */
    WHY_FORCED,     /* gc_collect, gc_free_os_memory: counted in num_forced_gc */
    WHY_OOM,        /* the page heap could not grow: always runs, not "forced" */
};
void cycle_run(enum cycle_why why);

/* ---- memstats.c ----------------------------------------------------------------- */
struct stats_gc {                  /* collector figures, updated at each cycle end */
    pthread_mutex_t lock;
    uint64_t pause_total_ns;
    uint64_t pause_ns[256], pause_end[256];
    uint32_t num_forced_gc;
    uint64_t last_gc_wall;
    uint64_t gc_cpu_ns;            /* collector CPU so far, as Go accounts it */
};
extern struct stats_gc stats_gc;
void stats_record_cycle(const struct gc_cycle_info *ci, uint64_t pause_ns, uint64_t end_wall);
struct stats_sum {
    uint64_t nmalloc[NUM_CLASSES + 1], nfree[NUM_CLASSES + 1];   /* small, per class */
    uint64_t mallocs, frees;            /* all objects, tiny ones counted in both */
    uint64_t alloc_bytes, freed_bytes;  /* cumulative */
};
void stats_sum(struct stats_sum *t);    /* registry + heap locks held, or world stopped */

/* ---- verify.c: the debug verifier (world stopped) ------------------------------- */
void verify_no_black_to_white(void);    /* after mark, before sweep */
void verify_heap(void);                 /* after sweep */

/* ---- trace.c: gctrace --------------------------------------------------------- */
size_t trace_fmt_ms(char *buf, size_t len, uint64_t ns);
size_t trace_format_gctrace(char *buf, size_t len, const struct gc_cycle_info *ci,
                            unsigned cpu_percent);
void trace_cycle(const struct gc_cycle_info *ci, unsigned cpu_percent);
void trace_write(const char *line, size_t n);   /* one line to stderr, whole */

/* ---- options.c: environment ------------------------------------------------------- */
#include "options.h"

/* ---- init.c ------------------------------------------------------------------------ */
extern atomic_word gc_initialized;
void init_ensure(void);
static inline struct mutator *self_or_register(void)
{
    struct mutator *m = alloc_self;
    if (unlikely(!m)) {
        init_ensure();
        m = alloc_self ? alloc_self : stw_register_self(STW_REG_AUTO);
    }
    return m;
}

#endif /* TRICOLOR_INTERNAL_H */
