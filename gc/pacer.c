/* pacer.c - when to collect and how hard: the pacer's arithmetic.
 *
 * Pure functions over the structs of pacer.h: no threads, no heap, no globals, so
 * tests call them directly.  After each cycle cycle.c folds the cycle's measurements
 * into a pacer_state, computes the next goal (GCPERCENT, capped by the memory limit)
 * and the trigger that lets background marking at 25% of the CPUs end at the goal;
 * during mark it sets the assist ratio; throughout, a leaky bucket caps GC CPU near
 * 50% and the scavenger aims at goal + 10%.  The ideas are Go's (GOGC, GOMEMLIMIT,
 * the cons/mark ratio, the CPU limiter); the formulation is ours, see doc/tuning.md.
 */
#include "pacer.h"

#include <inttypes.h>
#include <stdio.h>

__extension__ typedef unsigned __int128 u128;   /* gcc and clang, 64-bit targets */

/* ---- saturating helpers -------------------------------------------------------- */

static uint64_t sat128(u128 x)
{
    return x > UINT64_MAX ? UINT64_MAX : (uint64_t)x;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* A non-negative double to bytes: NaN and negatives give 0, anything at or past
 * 2^64 gives UINT64_MAX (the cast alone would be undefined there). */
static uint64_t sat_double(double x)
{
    if (!(x > 0.0))
        return 0;
    if (x >= 18446744073709551616.0)
        return UINT64_MAX;
    return (uint64_t)x;
}

/* x * num / den for num <= den: exact, never above x. */
static uint64_t part(uint64_t x, unsigned num, unsigned den)
{
    return (uint64_t)((u128)x * num / den);
}

static bool has_limit(int64_t limit_bytes)
{
    return limit_bytes >= 0 && limit_bytes != INT64_MAX;
}

/* ---- heap goal and memory limit ------------------------------------------------- */

uint64_t pacer_heap_goal(uint64_t live, uint64_t roots, int percent)
{
    if (percent < 0)
        return UINT64_MAX;
    /* 128-bit arithmetic: a goal that does not fit saturates instead of wrapping. */
    u128 base = (u128)live + roots;
    u128 goal = live + base * (unsigned)percent / 100;
    u128 least = (u128)PACER_MIN_GOAL_BYTES * (unsigned)percent / 100;
    if (goal < least)
        goal = least;
    return sat128(goal);
}

/* Go subtracts a 3% headroom (at least 1 MiB) from its limit-derived goal, because
 * the inputs lag and fragmentation grows with the heap.  Ours keeps 1/32 (3.1%),
 * a shift, with the same 1 MiB floor.  Free unreleased pages are not overhead: the
 * heap grows into them before it maps more, and the scavenger returns the rest. */
uint64_t pacer_limit_goal(int64_t limit_bytes, const struct pacer_memory *mem)
{
    if (!has_limit(limit_bytes))
        return UINT64_MAX;
    uint64_t limit = (uint64_t)limit_bytes;
    uint64_t mapped = mem ? mem->mapped_bytes : 0;
    uint64_t free_b = mem ? mem->free_bytes : 0;
    uint64_t objects = mem ? mem->object_bytes : 0;
    if (free_b > mapped)
        free_b = mapped;
    if (objects > mapped - free_b)
        objects = mapped - free_b;
    uint64_t overhead = mapped - free_b - objects;
    if (overhead >= limit)
        return 0;
    uint64_t avail = limit - overhead;
    uint64_t headroom = avail >> PACER_LIMIT_HEADROOM_SHIFT;
    if (headroom < PACER_LIMIT_MIN_HEADROOM_BYTES)
        headroom = PACER_LIMIT_MIN_HEADROOM_BYTES;
    return avail > headroom ? avail - headroom : 0;
}

uint64_t pacer_min_runway(uint64_t live)
{
    uint64_t r = live >> PACER_MIN_RUNWAY_SHIFT;
    return r < PACER_MIN_RUNWAY_BYTES ? PACER_MIN_RUNWAY_BYTES : r;
}

/* A limit below the live heap must not make the goal the live heap itself: cycles
 * would run back to back and assists would owe the maximum on every byte, with no
 * progress for the program (Go's livelock guard is its CPU limiter alone).  The floor
 * keeps some runway, and the limiter caps what the frequent cycles cost. */
uint64_t pacer_goal(uint64_t live, uint64_t roots, int percent, int64_t limit_bytes,
                    const struct pacer_memory *mem, enum pacer_goal_source *source)
{
    uint64_t goal = pacer_heap_goal(live, roots, percent);
    enum pacer_goal_source src = percent < 0 ? PACER_GOAL_OFF : PACER_GOAL_PERCENT;
    uint64_t lgoal = pacer_limit_goal(limit_bytes, mem);
    if (lgoal != UINT64_MAX) {
        enum pacer_goal_source lsrc = PACER_GOAL_LIMIT;
        uint64_t least = sat_add(live, pacer_min_runway(live));
        if (lgoal < least) {
            lgoal = least;
            lsrc = PACER_GOAL_LIMIT_FLOOR;
        }
        if (lgoal < goal) {
            goal = lgoal;
            src = lsrc;
        }
    }
    if (source)
        *source = src;
    return goal;
}

uint64_t pacer_hard_goal(uint64_t goal)
{
    return sat_add(goal, goal >> PACER_HARD_GOAL_SHIFT);
}

/* ---- trigger ------------------------------------------------------------------- */

/* Mark CPU share above which a sample's u / (1 - u) is not trusted to grow further:
 * at u = 1 the mutators had no CPU and the ratio would be infinite. */
#define UTILIZATION_CAP 0.9

void pacer_state_init(struct pacer_state *s)
{
    *s = (struct pacer_state){ 0 };
}

/* Why mutator CPU and not wall time for the allocation rate: in a cycle where assists
 * took a large share of the CPU, the mutators allocated less per wall-ns than they
 * will when marking takes only its 25%.  A wall-time rate would then predict a short
 * runway, start the next cycle late, cause more assists, and so on.  Per mutator
 * CPU-ns the rate does not depend on how the CPU was shared. */
bool pacer_observe(struct pacer_state *s, const struct pacer_sample *x)
{
    if (x->mark_wall_ns == 0 || x->mark_cpu_ns == 0 || x->scan_bytes == 0 || x->procs < 1)
        return false;
    double cpu_ns = (double)x->mark_wall_ns * x->procs;      /* CPU-ns there was */
    double u = (double)x->mark_cpu_ns / cpu_ns;
    double uc = u > UTILIZATION_CAP ? UTILIZATION_CAP : u;
    double cm = (double)x->alloc_bytes / (double)x->scan_bytes * uc / (1.0 - uc);

    s->last_alloc_rate = (double)x->alloc_bytes / (double)x->mark_wall_ns;
    s->last_scan_rate = (double)x->scan_bytes / (double)x->mark_cpu_ns;
    s->last_utilization = u;
    s->last_cons_mark = cm;
    /* Noise in cons/mark moves the trigger both ways, but late costs more (assists
     * slow the program) than early (one more cycle now and then): follow a rise at
     * once, let a fall in by halves. */
    if (s->cycles == 0 || cm >= s->cons_mark)
        s->cons_mark = cm;
    else
        s->cons_mark = (s->cons_mark + cm) / 2.0;
    s->cycles++;
    return true;
}

/* The clamps.  Objects allocated during a mark are black, so what the program
 * allocates between the trigger and the end of the mark survives that cycle and
 * takes runway from the next one; the goal is set from what marking found, without
 * it.  A cycle's allocation budget is therefore about the trigger's fraction of the
 * runway, and the total marking goes as its inverse: a trigger at 70% of the runway
 * (Go's earliest) marks 21% more than one at 85%.  So the trigger is never earlier
 * than 85%: when the background share cannot finish in the last 15%, the assists,
 * capped per allocation (pacer_assist_step), make up the rest.  Never later than 95%:
 * some runway is always left.  The first trigger, with nothing measured, is the
 * middle, 90%. */
uint64_t pacer_trigger(const struct pacer_state *s, uint64_t live, uint64_t scan_expected,
                       uint64_t goal)
{
    if (goal == UINT64_MAX)
        return UINT64_MAX;
    if (goal <= live)
        return goal;
    uint64_t runway = goal - live;
    uint64_t lo = live + part(runway, PACER_TRIGGER_MIN_PERCENT, 100);
    uint64_t hi = live + part(runway, PACER_TRIGGER_MAX_PERCENT, 100);
    if (!s || s->cycles == 0)
        return live + part(runway, PACER_TRIGGER_FIRST_PERCENT, 100);

    /* Marking W bytes at scan rate S per CPU-ns on u * P CPUs takes W / (S u P) ns,
     * in which the mutators, on (1 - u) P CPUs at A bytes per CPU-ns, allocate
     * W (A / S) (1 - u) / u bytes: cons/mark is A / S and P cancels. */
    const double u = PACER_BACKGROUND_UTILIZATION;
    double need = (double)scan_expected * s->cons_mark * (1.0 - u) / u;
    uint64_t trigger = need >= (double)runway ? live : goal - sat_double(need);
    if (trigger < lo)
        trigger = lo;
    if (trigger > hi)
        trigger = hi;
    return trigger;
}

/* ---- assists ------------------------------------------------------------------- */

/* Go, past the goal, measures the runway to a hard goal 10% further and counts the
 * worst-case work as remaining, so its ratio drops back when the goal is crossed.
 * Ours is monotonic instead: as goal - live shrinks the ratio climbs to the cap,
 * which it reaches while the heap is still under the goal (remaining work is at least
 * a chunk, so the cap applies within 1 KiB of the goal at the latest) and keeps past
 * it.  Overshoot is then at most remaining / 64 bytes plus what threads allocate
 * without finding grey work; pacer_hard_goal bounds the latter. */
uint64_t pacer_assist_ratio(const struct pacer_assist_in *in)
{
    uint64_t expected = in->scan_expected_bytes;
    uint64_t done = in->scan_done_bytes;
    if (done >= expected && in->scan_max_bytes > expected)
        expected = in->scan_max_bytes;   /* more survived than last time: assume all */
    uint64_t remaining = expected > done ? expected - done : 0;
    if (remaining < PACER_ASSIST_CHUNK_BYTES)
        remaining = PACER_ASSIST_CHUNK_BYTES;
    if (in->heap_live_bytes >= in->goal_bytes)
        return PACER_ASSIST_RATIO_MAX;
    uint64_t runway = in->goal_bytes - in->heap_live_bytes;
    u128 ratio = ((u128)remaining * PACER_ASSIST_ONE + runway - 1) / runway;
    if (ratio < PACER_ASSIST_RATIO_MIN)
        return PACER_ASSIST_RATIO_MIN;
    if (ratio > PACER_ASSIST_RATIO_MAX)
        return PACER_ASSIST_RATIO_MAX;
    return (uint64_t)ratio;
}

uint64_t pacer_assist_work(uint64_t debt_bytes, uint64_t ratio)
{
    return sat128(((u128)debt_bytes * ratio + PACER_ASSIST_ONE - 1) / PACER_ASSIST_ONE);
}

/* Whole chunks: an assist pays its setup (a critical section, taking grey work) once
 * per 64 KiB of scanning at least, and can stop between chunks. */
uint64_t pacer_assist_chunk(uint64_t owed_scan_bytes)
{
    const uint64_t c = PACER_ASSIST_CHUNK_BYTES;
    if (owed_scan_bytes > UINT64_MAX - (c - 1))
        return UINT64_MAX / c * c;
    return (owed_scan_bytes + c - 1) / c * c;
}

uint64_t pacer_assist_step(uint64_t owed_scan_bytes, uint64_t ratio, uint64_t *carry_debt_bytes)
{
    *carry_debt_bytes = 0;
    if (owed_scan_bytes <= PACER_ASSIST_STEP_MAX_BYTES)
        return pacer_assist_chunk(owed_scan_bytes);
    *carry_debt_bytes = pacer_assist_paid(owed_scan_bytes - PACER_ASSIST_STEP_MAX_BYTES, ratio);
    return PACER_ASSIST_STEP_MAX_BYTES;
}

uint64_t pacer_assist_paid(uint64_t scan_bytes, uint64_t ratio)
{
    if (ratio < PACER_ASSIST_RATIO_MIN)
        ratio = PACER_ASSIST_RATIO_MIN;
    return sat128((u128)scan_bytes * PACER_ASSIST_ONE / ratio);
}

/* ---- background mark workers ---------------------------------------------------- */

/* The goal is procs / 4 CPUs.  Whole workers d = round(procs / 4) are used when
 * |d - procs/4| <= 30% of procs/4, i.e. 10 |4d - procs| <= 3 procs, in integers.
 * Otherwise (procs 1, 2, 3, 6) floor(procs / 4) whole workers and the rest as a
 * fraction of one thread's time. */
struct pacer_workers pacer_worker_split(int procs)
{
    if (procs < 1)
        procs = 1;
    long p = procs;
    long d = (p + 2) / 4;
    long err = 4 * d - p;
    if (err < 0)
        err = -err;
    struct pacer_workers w = { (int)d, 0.0 };
    if (10 * err > 3 * p) {
        w.dedicated = (int)(p / 4);
        w.fractional = (double)(p % 4) / 4.0;
    }
    return w;
}

/* ---- CPU limiter ------------------------------------------------------------------ */

static uint64_t limiter_capacity(int procs)
{
    return (uint64_t)(procs < 1 ? 1 : procs) * PACER_LIMITER_CPU_NS_PER_PROC;
}

void pacer_limiter_init(struct pacer_limiter *l, int procs)
{
    *l = (struct pacer_limiter){ .capacity_cpu_ns = limiter_capacity(procs) };
}

void pacer_limiter_set_procs(struct pacer_limiter *l, int procs)
{
    l->capacity_cpu_ns = limiter_capacity(procs);
    if (l->fill_cpu_ns >= l->capacity_cpu_ns) {
        l->fill_cpu_ns = l->capacity_cpu_ns;
        l->limiting = true;
    } else {
        l->limiting = false;
    }
}

/* The bucket never goes below empty: idle hours must not buy the GC a CPU-hour of
 * credit.  Its capacity is the burst the GC may take above 50% before it is held
 * back: with 1 CPU-second per proc, at least a second at 100% GC. */
void pacer_limiter_update(struct pacer_limiter *l, uint64_t gc_cpu_ns, uint64_t total_cpu_ns)
{
    if (gc_cpu_ns > total_cpu_ns)
        gc_cpu_ns = total_cpu_ns;
    uint64_t mutator_cpu_ns = total_cpu_ns - gc_cpu_ns;
    l->total_cpu_ns = sat_add(l->total_cpu_ns, total_cpu_ns);
    if (l->limiting)
        l->limited_cpu_ns = sat_add(l->limited_cpu_ns, total_cpu_ns);

    if (gc_cpu_ns > mutator_cpu_ns) {
        uint64_t rise = gc_cpu_ns - mutator_cpu_ns;
        uint64_t headroom = l->capacity_cpu_ns - l->fill_cpu_ns;
        if (rise >= headroom) {
            l->overflow_cpu_ns = sat_add(l->overflow_cpu_ns, rise - headroom);
            l->fill_cpu_ns = l->capacity_cpu_ns;
            l->limiting = true;
        } else {
            l->fill_cpu_ns += rise;
            l->limiting = false;
        }
    } else if (mutator_cpu_ns > gc_cpu_ns) {
        uint64_t drop = mutator_cpu_ns - gc_cpu_ns;
        l->fill_cpu_ns = drop >= l->fill_cpu_ns ? 0 : l->fill_cpu_ns - drop;
        l->limiting = false;
    }
    /* Equal shares: the bucket holds, and so does the state. */
}

bool pacer_limiter_limiting(const struct pacer_limiter *l)
{
    return l->limiting;
}

double pacer_limiter_fill(const struct pacer_limiter *l)
{
    return l->capacity_cpu_ns ? (double)l->fill_cpu_ns / (double)l->capacity_cpu_ns : 0.0;
}

double pacer_limiter_fraction(const struct pacer_limiter *l)
{
    return l->total_cpu_ns ? (double)l->limited_cpu_ns / (double)l->total_cpu_ns : 0.0;
}

/* ---- scavenger ------------------------------------------------------------------- */

/* The 10% over the goal keeps pages the heap is about to reuse (releasing and
 * faulting them back costs more than holding them); the 5% under the limit makes
 * the scavenger act before the limit is reached, not at it. */
uint64_t pacer_scavenge_goal(uint64_t goal, int64_t limit_bytes)
{
    uint64_t g = sat128((u128)goal * (100 + PACER_SCAVENGE_RETAIN_PERCENT) / 100);
    if (has_limit(limit_bytes)) {
        uint64_t l = part((uint64_t)limit_bytes, PACER_SCAVENGE_LIMIT_PERCENT, 100);
        if (l < g)
            g = l;
    }
    return g;
}

/* ---- GCDEBUG=gcpacertrace=1 ----------------------------------------------------------- */

void pacer_trace_fill(struct pacer_trace *t, const struct pacer_state *s,
                      const struct pacer_limiter *l)
{
    if (s) {
        t->alloc_rate = s->last_alloc_rate;
        t->scan_rate = s->last_scan_rate;
        t->cons_mark = s->cons_mark;
        t->utilization = s->last_utilization;
    }
    if (l) {
        t->limiter_fill = pacer_limiter_fill(l);
        t->limiting = pacer_limiter_limiting(l);
        t->limited_fraction = pacer_limiter_fraction(l);
    }
}

static const char *source_name(enum pacer_goal_source s)
{
    switch (s) {
    case PACER_GOAL_PERCENT: return "gcpercent";
    case PACER_GOAL_LIMIT: return "memlimit";
    case PACER_GOAL_LIMIT_FLOOR: return "memlimit floor";
    case PACER_GOAL_OFF: break;
    }
    return "off";
}

/* Rates print in MB/s (10^6 bytes per second): bytes per ns times 1000. */
size_t pacer_format_trace(char *buf, size_t len, const struct pacer_trace *t)
{
    char goal[160];
    if (t->goal_bytes == UINT64_MAX) {
        snprintf(goal, sizeof goal, "goal none (off), trigger none");
    } else if (t->goal_bytes <= t->live_bytes) {
        snprintf(goal, sizeof goal, "goal %" PRIu64 " B (%s), trigger %" PRIu64
                 " B (no runway)", t->goal_bytes, source_name(t->goal_source),
                 t->trigger_bytes);
    } else {
        uint64_t above = t->trigger_bytes > t->live_bytes ? t->trigger_bytes - t->live_bytes : 0;
        double f = (double)above / (double)(t->goal_bytes - t->live_bytes);
        snprintf(goal, sizeof goal, "goal %" PRIu64 " B (%s), trigger %" PRIu64
                 " B (%.3f of runway)", t->goal_bytes, source_name(t->goal_source),
                 t->trigger_bytes, f);
    }
    int n = snprintf(buf, len,
                     "pacer: gc %" PRIu32 ": live %" PRIu64 " B, %s; "
                     "assist %.3f scan B/B; "
                     "alloc %.1f MB/s, scan %.1f MB/cpu-s, cons/mark %.4f; "
                     "mark cpu %.1f%% (goal %.0f%%, workers %d+%.2f); "
                     "limiter %.0f%% full, %s, limited %.1f%% of cpu time\n",
                     t->cycle, t->live_bytes, goal,
                     (double)t->assist_ratio / PACER_ASSIST_ONE,
                     t->alloc_rate * 1000.0, t->scan_rate * 1000.0, t->cons_mark,
                     t->utilization * 100.0, PACER_BACKGROUND_UTILIZATION * 100.0,
                     t->workers.dedicated, t->workers.fractional,
                     t->limiter_fill * 100.0, t->limiting ? "limiting" : "off",
                     t->limited_fraction * 100.0);
    return n < 0 ? 0 : (size_t)n;
}
