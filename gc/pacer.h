/* pacer.h - the pacer's arithmetic: heap goal, memory limit, trigger, assists,
 * mark workers, CPU limiter, scavenger goal and the gcpacertrace line.
 *
 * Pure functions and plain structs: no threads, no heap, no globals, so the unit
 * tests call everything directly.  The caller (cycle.c, alloc.c) measures, keeps
 * the structs and applies the answers.  Every quantity carries its unit in its name
 * or comment: bytes, ns (wall clock), CPU-ns (CPU time summed over threads), or the
 * fixed-point assist unit (scan bytes per PACER_ASSIST_ONE bytes allocated).
 * Self-contained on purpose: it depends on nothing but the C library.
 */
#ifndef TRICOLOR_PACER_H
#define TRICOLOR_PACER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- constants ------------------------------------------------------------------ */

#define PACER_MIN_GOAL_BYTES ((uint64_t)4 << 20)   /* goal floor at GCPERCENT=100 (same as
                                                      internal.h's MIN_HEAP_GOAL) */
#define PACER_BACKGROUND_UTILIZATION 0.25          /* share of procs marking in background */
#define PACER_TRIGGER_MIN_PERCENT 85               /* trigger no earlier than 85% of runway */
#define PACER_TRIGGER_MAX_PERCENT 95               /* and no later than 95% */
#define PACER_TRIGGER_FIRST_PERCENT 90             /* before any cycle was measured */
#define PACER_LIMIT_HEADROOM_SHIFT 5               /* limit goal keeps 1/32 of it spare */
#define PACER_LIMIT_MIN_HEADROOM_BYTES ((uint64_t)1 << 20)
#define PACER_MIN_RUNWAY_SHIFT 5                   /* a limit goal is >= live + live/32 */
#define PACER_MIN_RUNWAY_BYTES ((uint64_t)1 << 20) /* and >= live + 1 MiB */
#define PACER_ASSIST_ONE 1024                      /* assist ratio of 1 scan byte per byte */
#define PACER_ASSIST_RATIO_MIN 1                   /* 1/1024 scan byte per byte */
#define PACER_ASSIST_RATIO_MAX (64 * PACER_ASSIST_ONE)   /* 64 scan bytes per byte */
#define PACER_ASSIST_CHUNK_BYTES ((uint64_t)64 << 10)   /* scan work done per assist step */
/* The most scan work one allocation does at once (well under a millisecond on a heap
 * of small linked objects, where each object is a cache miss): a larger
 * debt is paid over the thread's next allocations, so no single one stalls long. */
#define PACER_ASSIST_STEP_MAX_BYTES ((uint64_t)128 << 10)
#define PACER_HARD_GOAL_SHIFT 4                    /* hard goal = goal + goal/16 */
#define PACER_LIMITER_CPU_NS_PER_PROC UINT64_C(1000000000)  /* bucket: 1 CPU-second/proc */
#define PACER_SCAVENGE_RETAIN_PERCENT 10           /* keep goal + 10% of pages */
#define PACER_SCAVENGE_LIMIT_PERCENT 95            /* and total under 95% of the limit */

/* ---- heap goal and memory limit -------------------------------------------------- */

/* GCPERCENT goal, bytes: live + (live + roots) * percent / 100, never below
 * PACER_MIN_GOAL_BYTES * percent / 100; UINT64_MAX when percent < 0 (off); saturating. */
uint64_t pacer_heap_goal(uint64_t live, uint64_t roots, int percent);

/* Where the collector's memory is, all bytes, read at one moment.  A concurrent read
 * may be slightly inconsistent; the functions clamp instead of wrapping. */
struct pacer_memory {
    uint64_t mapped_bytes;   /* mapped and not released to the OS: heap pages in use and
                                free, span/metadata slabs, everything the limit counts */
    uint64_t free_bytes;     /* of which: free page-heap pages not released (the heap can
                                grow into them without mapping more); 0 if unknown */
    uint64_t object_bytes;   /* of which: allocated heap objects (heap_alloc) */
};

/* The heap goal (object bytes) that keeps mapped memory under limit_bytes: the limit
 * less what is not heap objects (mapped - free - objects: metadata, fragmentation),
 * less a headroom of 1/32 of the rest, at least 1 MiB.  0 when the overhead alone
 * exceeds the limit.  UINT64_MAX when limit_bytes < 0 or == INT64_MAX (no limit). */
uint64_t pacer_limit_goal(int64_t limit_bytes, const struct pacer_memory *mem);

/* The least runway a memory-limit goal gives beyond the live heap, bytes:
 * max(live / 32, 1 MiB).  With live above the limit, cycles then start after every
 * live/32 bytes allocated instead of back to back; the CPU limiter caps their cost. */
uint64_t pacer_min_runway(uint64_t live);

enum pacer_goal_source {
    PACER_GOAL_OFF,          /* GCPERCENT off and no limit: UINT64_MAX */
    PACER_GOAL_PERCENT,      /* the GCPERCENT goal was the lower */
    PACER_GOAL_LIMIT,        /* the memory-limit goal was the lower */
    PACER_GOAL_LIMIT_FLOOR   /* the limit goal, raised to live + pacer_min_runway */
};

/* The goal to use, bytes: min(GCPERCENT goal, limit goal raised to live +
 * pacer_min_runway(live)).  mem may be NULL when there is no limit.  *source (may be
 * NULL) says which rule won.  live = marked by the last cycle, roots = stack and
 * global bytes it scanned. */
uint64_t pacer_goal(uint64_t live, uint64_t roots, int percent, int64_t limit_bytes,
                    const struct pacer_memory *mem, enum pacer_goal_source *source);

/* Past this heap size (bytes) allocating threads should wait for the cycle under way:
 * goal + goal/16, saturating; UINT64_MAX stays UINT64_MAX. */
uint64_t pacer_hard_goal(uint64_t goal);

/* ---- trigger: measured rates carried across cycles -------------------------------- */

/* One concurrent cycle's measurements, between the end of STW1 and the start of STW2.
 * scan_bytes and mark_cpu_ns must cover the same work (both with or both without the
 * roots scanned in STW1). */
struct pacer_sample {
    uint64_t alloc_bytes;    /* allocated by the mutators while marking ran */
    uint64_t scan_bytes;     /* scan work done by background marking and assists */
    uint64_t mark_wall_ns;   /* wall time of the concurrent mark */
    uint64_t mark_cpu_ns;    /* CPU-ns spent marking: background + assists + idle */
    int procs;               /* CPUs the program may use (GCPROCS) */
};

/* Pacer memory across cycles.  Zero it (or pacer_state_init) before the first cycle. */
struct pacer_state {
    uint32_t cycles;          /* samples accepted so far; 0 = no history */
    double cons_mark;         /* smoothed cons/mark ratio (dimensionless, see below) */
    double last_cons_mark;    /* the last sample's own ratio */
    double last_alloc_rate;   /* bytes allocated per wall-ns of mark, last sample */
    double last_scan_rate;    /* bytes scanned per CPU-ns of marking, last sample */
    double last_utilization;  /* mark CPU-ns / (wall-ns * procs), last sample */
};

void pacer_state_init(struct pacer_state *s);

/* Fold one cycle's measurements into s.  The cycle's cons/mark ratio is
 *   (alloc_bytes per mutator CPU-ns) / (scan_bytes per mark CPU-ns)
 *     = alloc_bytes / scan_bytes * u / (1 - u),  u = mark CPU share (capped at 0.9),
 * so a cycle slowed by assists does not make the next trigger later.  Smoothing
 * rises at once and falls by halves: s' = max(new, (s + new) / 2), biased toward
 * starting early rather than assisting.  Returns false, changing nothing, for an
 * unusable sample (no wall time, no mark CPU, no scan work or procs < 1). */
bool pacer_observe(struct pacer_state *s, const struct pacer_sample *x);

/* Heap size (bytes) at which the next cycle starts.  Marking scan_expected_bytes
 * (live + roots) at PACER_BACKGROUND_UTILIZATION of the procs lets the mutators
 * allocate scan_expected * cons_mark * (1 - 0.25) / 0.25 bytes meanwhile; the trigger
 * is that far below the goal, clamped to [85%, 95%] of the runway (goal - live) above
 * live; 90% with no history (s NULL or s->cycles == 0).  goal <= live returns goal;
 * goal UINT64_MAX returns UINT64_MAX. */
uint64_t pacer_trigger(const struct pacer_state *s, uint64_t live, uint64_t scan_expected,
                       uint64_t goal);

/* ---- assists ---------------------------------------------------------------------- */

struct pacer_assist_in {
    uint64_t scan_expected_bytes;  /* expected scan work this cycle: last live + roots */
    uint64_t scan_max_bytes;       /* worst case: heap at cycle start + roots */
    uint64_t scan_done_bytes;      /* scan work done so far this cycle */
    uint64_t heap_live_bytes;      /* heap now (alloc_heap_live) */
    uint64_t goal_bytes;           /* this cycle's goal */
};

/* Scan work owed per byte allocated during mark, in 1/PACER_ASSIST_ONE units (scan
 * bytes per 1024 bytes allocated): remaining work / (goal - heap live), rounded up,
 * within [PACER_ASSIST_RATIO_MIN, PACER_ASSIST_RATIO_MAX].  Remaining work is the
 * expected work less the work done, or, once the estimate is passed, the worst case
 * less the work done, and never below one chunk.  At or past the goal the ratio is
 * PACER_ASSIST_RATIO_MAX: it tightens as the heap nears the goal and stays tight. */
uint64_t pacer_assist_ratio(const struct pacer_assist_in *in);

/* Scan bytes owed for debt_bytes allocated at ratio: ceil(debt * ratio / 1024). */
uint64_t pacer_assist_work(uint64_t debt_bytes, uint64_t ratio);

/* Scan bytes one assist does for owed_scan_bytes: rounded up to whole
 * PACER_ASSIST_CHUNK_BYTES chunks (0 for 0).  The extra is credit, see below. */
uint64_t pacer_assist_chunk(uint64_t owed_scan_bytes);

/* Allocation bytes paid for by scan_bytes of work at ratio: floor(scan * 1024 / ratio)
 * (ratio 0 counts as PACER_ASSIST_RATIO_MIN). */
uint64_t pacer_assist_paid(uint64_t scan_bytes, uint64_t ratio);

/* One assist for owed_scan_bytes at ratio: its scan budget, pacer_assist_chunk's but at
 * most PACER_ASSIST_STEP_MAX_BYTES; *carry_debt_bytes gets what the rest is worth in
 * allocation bytes (pacer_assist_paid), to be owed again, or 0. */
uint64_t pacer_assist_step(uint64_t owed_scan_bytes, uint64_t ratio, uint64_t *carry_debt_bytes);

/* ---- background mark workers ------------------------------------------------------ */

struct pacer_workers {
    int dedicated;       /* threads marking all through the mark phase */
    double fractional;   /* CPUs of further marking, 0 <= f < 1: one thread marking this
                            fraction of the mark's wall time */
};

/* Split procs * 0.25 CPUs of background marking: round to whole dedicated workers;
 * if that misses the 25% by more than 30% of it, take the whole workers below and a
 * fractional worker for the rest.  procs < 1 counts as 1. */
struct pacer_workers pacer_worker_split(int procs);

/* ---- CPU limiter ------------------------------------------------------------------ */

/* A leaky bucket of CPU-ns: GC CPU fills it, mutator CPU drains it, one for one, so it
 * only fills while the GC takes more than half the CPU.  Full = limiting: the caller
 * then cuts GC CPU (no assists, no idle marking), holding the GC near 50%. */
struct pacer_limiter {
    uint64_t capacity_cpu_ns;   /* procs * 1 CPU-second */
    uint64_t fill_cpu_ns;       /* 0 <= fill <= capacity */
    bool limiting;              /* full at the last update */
    uint64_t total_cpu_ns;      /* CPU-ns accounted since init */
    uint64_t limited_cpu_ns;    /* of which: spent with the limiter on */
    uint64_t overflow_cpu_ns;   /* GC CPU-ns that arrived with the bucket full */
};

void pacer_limiter_init(struct pacer_limiter *l, int procs);
/* New capacity for a new procs; the fill is kept, clamped (full = limiting). */
void pacer_limiter_set_procs(struct pacer_limiter *l, int procs);
/* Account an interval since the last update: gc_cpu_ns of it went to the collector
 * (marking, assists; a stop-the-world pause counts whole: wall-ns * procs) out of
 * total_cpu_ns = wall-ns * procs.  The interval counts as limited when the limiter
 * was on at its start (the caller was holding back during it). */
void pacer_limiter_update(struct pacer_limiter *l, uint64_t gc_cpu_ns, uint64_t total_cpu_ns);
bool pacer_limiter_limiting(const struct pacer_limiter *l);
double pacer_limiter_fill(const struct pacer_limiter *l);      /* 0..1 */
double pacer_limiter_fraction(const struct pacer_limiter *l);  /* limited / total, 0..1 */

/* ---- scavenger -------------------------------------------------------------------- */

/* Retained memory (bytes mapped and not released) the scavenger should bring the heap
 * down to: goal + 10%, and at most 95% of the limit when one is set (limit_bytes >= 0
 * and != INT64_MAX).  UINT64_MAX when neither bounds it. */
uint64_t pacer_scavenge_goal(uint64_t goal, int64_t limit_bytes);

/* ---- GCDEBUG=gcpacertrace=1 --------------------------------------------------------- */

/* Everything one trace line shows, for the cycle that just ended. */
struct pacer_trace {
    uint32_t cycle;                     /* its number, as gctrace's "gc N" */
    uint64_t live_bytes;                /* marked by it */
    uint64_t goal_bytes;                /* next cycle's goal, UINT64_MAX = none */
    enum pacer_goal_source goal_source;
    uint64_t trigger_bytes;             /* next cycle's trigger */
    uint64_t assist_ratio;              /* 1/1024 units, the last one this cycle used */
    double alloc_rate;                  /* bytes per wall-ns during its mark */
    double scan_rate;                   /* bytes per mark CPU-ns */
    double cons_mark;                   /* smoothed, after this cycle */
    double utilization;                 /* its mark CPU share, 0..1 */
    struct pacer_workers workers;       /* the split it used */
    double limiter_fill;                /* 0..1 */
    bool limiting;
    double limited_fraction;            /* 0..1, since start */
};

/* Copy the rates from s and the limiter figures from l (either may be NULL). */
void pacer_trace_fill(struct pacer_trace *t, const struct pacer_state *s,
                      const struct pacer_limiter *l);

/* The line, '\n' included, with snprintf's contract (at most len bytes stored,
 * NUL-terminated if len > 0; returns the full length).  doc/tuning.md explains it. */
size_t pacer_format_trace(char *buf, size_t len, const struct pacer_trace *t);

#endif /* TRICOLOR_PACER_H */
