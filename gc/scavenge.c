/* scavenge.c - giving free pages back to the OS.
 *
 * Free page runs stay mapped so the heap can reuse them without a fault; the scavenger
 * returns the surplus with madvise so the memory the process holds tracks the heap
 * goal: after each cycle it brings what is mapped and not released (heap pages, free or
 * not, and the collector's own metadata) down to pacer_scavenge_goal of the highest
 * goal of the last half second -- that goal plus 10%, and under 95% of GCMEMLIMIT when
 * one is set.  Free runs go back biggest bins first, whole, except the tail of the one
 * that would overshoot; one run per hold of the heap lock; the scavenger sleeps 1 ms
 * between steps of 16 MiB so a large release never holds the allocator up for long.
 * When a higher goal ages out of the half second, a round runs by itself.  Pages
 * that are reused come back zeroed by the kernel (heap.c counts them out of
 * heap_released again).
 *
 * The scavenger is its own thread ("tricolor-scav"), started by the first cycle and not
 * registered: stopping the world does not stop it, and fork (whose prepare handler
 * takes the heap lock) only waits for its current step.  GCDEBUG=scavtrace=1 prints a
 * line per round.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <string.h>
#include <time.h>

#define SCAV_STEP_BYTES ((uint64_t)16 << 20)
#define SCAV_HOLD_NS ((uint64_t)500 * 1000 * 1000)
#define SCAV_SLOT_NS ((uint64_t)100 * 1000 * 1000)
#define SCAV_SLOTS 6

static pthread_mutex_t scav_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t scav_cv = PTHREAD_COND_INITIALIZER;
static uint64_t wakes, seen;        /* scav_wake calls, and those the thread took */
static bool started;

/* The highest goal in each of the last 100 ms slots (scavenger thread only).  The
 * target is the highest goal of the cycles that ended in the last half second (up to
 * 600 ms, by slots): a program whose live heap swings from cycle to cycle (a big
 * structure built and dropped again and again) would otherwise see pages given back
 * after one cycle and faulted in again after the next.  A higher goal that has aged
 * out is let go by a round of its own. */
static struct { uint64_t slot, goal; } recent[SCAV_SLOTS];

static void recent_add(uint64_t now, uint64_t goal)
{
    uint64_t slot = now / SCAV_SLOT_NS + 1;   /* 0: never used */
    unsigned i = (unsigned)(slot % SCAV_SLOTS);
    if (recent[i].slot != slot) {
        recent[i].slot = slot;
        recent[i].goal = 0;
    }
    if (goal > recent[i].goal)
        recent[i].goal = goal;
}

/* The goal to hold memory for, and when the highest of the recent ones ages out (0:
 * the current goal is the highest). */
static uint64_t held_goal(uint64_t now, uint64_t goal, uint64_t *until)
{
    uint64_t held = goal, cur = now / SCAV_SLOT_NS + 1;
    uint64_t span = SCAV_HOLD_NS / SCAV_SLOT_NS;
    *until = 0;
    for (unsigned i = 0; i < SCAV_SLOTS; i++)
        if (recent[i].slot && cur - recent[i].slot <= span && recent[i].goal > held) {
            held = recent[i].goal;
            *until = (recent[i].slot + span) * SCAV_SLOT_NS;   /* when it leaves */
        }
    return held;
}

static void trace_round(uint64_t released, uint64_t retained, uint64_t target)
{
    char line[256];
    int n = snprintf(line, sizeof line,
                     "scav: released %llu KiB, retained %llu KiB, target %llu KiB, "
                     "heap_released %llu KiB\n",
                     (unsigned long long)(released >> 10), (unsigned long long)(retained >> 10),
                     (unsigned long long)(target >> 10),
                     (unsigned long long)((AO_load((AO_t *)&heap.pages_released) * PAGE_SIZE) >> 10));
    if (n > 0)
        trace_write(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* One round: release until what is retained is at the target or nothing free is left.
 * Returns when to look again for a held goal that ages out, or 0. */
static uint64_t scavenge_round(void)
{
    uint64_t released = 0, retained, target, until = 0, budget = UINT64_MAX;
    for (;;) {
        struct pacer_memory mem;
        cycle_memory_now(&mem);
        retained = mem.mapped_bytes;
        uint64_t goal = held_goal(os_now_ns(), AO_load(&cycle.next_gc), &until);
        target = pacer_scavenge_goal(goal, cycle.memory_limit);
        if (retained <= target || released >= budget)
            break;
        uint64_t want = retained - target;
        /* No more than the surplus seen first: pages the program takes back meanwhile
         * are its own business until the next round, not a chase. */
        if (budget == UINT64_MAX)
            budget = want;
        if (want > budget - released)
            want = budget - released;
        uint64_t got = heap_release_some(want < SCAV_STEP_BYTES ? want : SCAV_STEP_BYTES);
        released += got;
        if (got == 0)
            break;   /* nothing free left to give */
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (opt.scavtrace)
        trace_round(released, retained, target);
    /* Only worth a round of its own if memory would go back without the held goal. */
    if (until && retained > pacer_scavenge_goal(AO_load(&cycle.next_gc), cycle.memory_limit))
        return until;
    return 0;
}

static void *scav_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "tricolor-scav");
    uint64_t recheck = 0;   /* CLOCK_MONOTONIC ns of a held goal's end, or 0 */
    pthread_mutex_lock(&scav_lock);
    for (;;) {
        while (seen == wakes) {
            if (recheck == 0) {
                pthread_cond_wait(&scav_cv, &scav_lock);
                continue;
            }
            uint64_t now = os_now_ns();
            if (now >= recheck)
                break;
            /* The condition variable's clock is CLOCK_REALTIME. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t at = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec +
                          (recheck - now);
            ts.tv_sec = (time_t)(at / 1000000000u);
            ts.tv_nsec = (long)(at % 1000000000u);
            pthread_cond_timedwait(&scav_cv, &scav_lock, &ts);
        }
        bool woken = seen != wakes;   /* else the held goal's time is up */
        seen = wakes;
        pthread_mutex_unlock(&scav_lock);
        if (woken)
            recent_add(os_now_ns(), AO_load(&cycle.next_gc));
        recheck = scavenge_round();
        pthread_mutex_lock(&scav_lock);
    }
    return NULL;
}

void scav_wake(void)
{
    pthread_mutex_lock(&scav_lock);
    if (!started) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_t t;
        int rc = pthread_create(&t, &attr, scav_main, NULL);
        pthread_attr_destroy(&attr);
        started = rc == 0;
        if (!started) {   /* tried again after the next cycle */
            static bool warned;
            if (!warned) {
                warned = true;
                gc_warn_("cannot start the scavenger thread (%s): free memory goes back to "
                         "the OS only through gc_free_os_memory until it starts", strerror(rc));
            }
            pthread_mutex_unlock(&scav_lock);
            return;
        }
    }
    wakes++;
    pthread_cond_signal(&scav_cv);
    pthread_mutex_unlock(&scav_lock);
}

/* fork() child: the scavenger did not come along. */
void scav_fork_child(void)
{
    pthread_mutex_init(&scav_lock, NULL);
    pthread_cond_init(&scav_cv, NULL);
    started = false;
    wakes = seen = 0;
}
