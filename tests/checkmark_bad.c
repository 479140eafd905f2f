/* checkmark_bad.c - a program that moves pointers between heap objects while the
 * collector marks concurrently.  With --barrier every store goes through GC_WRITE;
 * without it the stores are plain, which hides objects from the concurrent mark, and
 * GCDEBUG=gccheckmark=1 must catch it (tests/checkmark.sh).  Runs for at most the
 * given number of seconds (default 20).  Usage: checkmark_bad [--barrier] [seconds]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tricolor.h>

struct payload {
    uint64_t id, check;
};

struct holder {
    struct payload *p;
    struct holder *pad[3];   /* make the holders take a while to mark */
};

enum { N = 200000 };
static struct holder **holders;   /* a global: the root of everything */
static void *volatile sink;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int barrier = argc > 1 && strcmp(argv[1], "--barrier") == 0;
    double seconds = argc > 1 + barrier ? atof(argv[1 + barrier]) : 20;
    gc_init();
    holders = gc_malloc(N * sizeof *holders);
    for (int i = 0; i < N; i++) {
        holders[i] = gc_malloc(sizeof(struct holder));   /* into zeroed memory */
        holders[i]->p = gc_malloc_atomic(sizeof(struct payload));
        holders[i]->p->id = (uint64_t)i;
        holders[i]->p->check = (uint64_t)i ^ 0x5eed;
    }
    unsigned seed = 42;
    double end = now() + seconds;
    long moves = 0;
    while (now() < end) {
        for (int k = 0; k < 10000; k++, moves++) {
            seed = seed * 1103515245u + 12345u;
            struct holder *a = holders[(seed >> 4) % N];
            seed = seed * 1103515245u + 12345u;
            struct holder *b = holders[(seed >> 4) % N];
            if (a == b || !a->p)
                continue;
            /* Move a's payload into b (b's old one becomes garbage), then cut it from a. */
            if (barrier) {
                GC_WRITE(b->p, a->p);
                GC_WRITE(a->p, NULL);
            } else {
                b->p = a->p;
                a->p = NULL;
            }
            if (!a->p) {   /* refill, so the moves go on */
                struct payload *q = gc_malloc_atomic(sizeof *q);
                q->id = (uint64_t)moves;
                q->check = (uint64_t)moves ^ 0x5eed;
                if (barrier)
                    GC_WRITE(a->p, q);
                else
                    a->p = q;
            }
        }
        for (int k = 0; k < 200; k++)   /* garbage, so that cycles keep coming */
            sink = gc_malloc(4096);
    }
    long bad = 0;
    for (int i = 0; i < N; i++)
        if (holders[i]->p && holders[i]->p->check != (holders[i]->p->id ^ 0x5eed))
            bad++;
    struct gc_memstats m;
    gc_read_memstats(&m);
    printf("checkmark_bad: %s, %ld moves, %u cycles, %ld corrupt payloads\n",
           barrier ? "with barriers" : "without barriers", moves, m.num_gc, bad);
    return bad ? 1 : 0;
}
