/* barrier.c - the cost of a pointer store into an old heap object: PEER_WRITE is
 * GC_WRITE for Tricolor and a plain store for the others, so the difference between
 * the peers' ns_per_store is the barrier's cost with no cycle marking (nothing is
 * allocated while timing, so no cycle starts).  Usage: barrier [stores]
 */
#include "peer.h"

enum { SLOTS = 1024, TARGETS = 64 };

struct holder {
    void *slot[SLOTS];
};

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 400000000;
    peer_init();
    struct holder *h = peer_alloc(sizeof *h);
    void *targets[TARGETS];
    for (int i = 0; i < TARGETS; i++)
        targets[i] = peer_alloc(32);
    for (int i = 0; i < SLOTS; i++)
        h->slot[i] = targets[i % TARGETS];   /* initializing stores: no barrier needed */
    double w0 = bench_now(), c0 = bench_cpu();
    for (long k = 0; k < n; k++) {
        PEER_WRITE(h->slot[k & (SLOTS - 1)], targets[k & (TARGETS - 1)]);
        __asm__ volatile("" : : : "memory");   /* every store happens, for every peer */
    }
    double wall = bench_now() - w0, cpu = bench_cpu() - c0;
    char extra[64];
    snprintf(extra, sizeof extra, "ns_per_store=%.3f", wall * 1e9 / n);
    bench_report("barrier", wall, cpu, extra);
    return h->slot[3] == targets[3] ? 0 : 1;
}
