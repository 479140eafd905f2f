/* scavenge.c - giving free pages back to the OS.
 *
 * Free page runs stay mapped so the heap can reuse them without a fault; the scavenger
 * returns the surplus with madvise so the memory the process holds tracks the heap
 * goal: after each cycle it brings what is mapped and not released (heap pages, free or
 * not, and the collector's own metadata) down to pacer_scavenge_goal -- the goal plus
 * 10%, and under 95% of GCMEMLIMIT when one is set.  Whole free runs go back, biggest
 * bins first, one run per hold of the heap lock; the scavenger sleeps 1 ms between
 * steps of 16 MiB so a large release never holds the allocator up for long.  Pages
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

static pthread_mutex_t scav_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t scav_cv = PTHREAD_COND_INITIALIZER;
static uint64_t wakes, seen;        /* scav_wake calls, and those the thread took */
static bool started;

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

/* One round: release until what is retained is at the target or nothing free is left. */
static void scavenge_round(void)
{
    uint64_t released = 0, retained, target;
    for (;;) {
        struct pacer_memory mem;
        cycle_memory_now(&mem);
        retained = mem.mapped_bytes;
        target = pacer_scavenge_goal(AO_load(&cycle.next_gc), cycle.memory_limit);
        if (retained <= target)
            break;
        uint64_t want = retained - target;
        uint64_t got = heap_release_some(want < SCAV_STEP_BYTES ? want : SCAV_STEP_BYTES);
        released += got;
        if (got == 0)
            break;   /* nothing free left to give */
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (opt.scavtrace)
        trace_round(released, retained, target);
}

static void *scav_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "tricolor-scav");
    pthread_mutex_lock(&scav_lock);
    for (;;) {
        while (seen == wakes)
            pthread_cond_wait(&scav_cv, &scav_lock);
        seen = wakes;
        pthread_mutex_unlock(&scav_lock);
        scavenge_round();
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
