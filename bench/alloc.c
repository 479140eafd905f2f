/* alloc.c - the allocation fast path: small objects (16..512 B, 32 B most often),
 * nothing retained, in ns per allocation including the collector's share.
 */
#include "peer.h"

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 50000000;
    size_t size = argc > 2 ? (size_t)atol(argv[2]) : 32;
    peer_init();
    void *volatile sink;
    double w0 = bench_now(), c0 = bench_cpu();
    for (long i = 0; i < n; i++) {
        void *p = peer_alloc(size);
        sink = p;
        peer_free(p);
    }
    double wall = bench_now() - w0, cpu = bench_cpu() - c0;
    (void)sink;
    char extra[64];
    snprintf(extra, sizeof extra, "ns_per_alloc=%.2f size=%zu", wall * 1e9 / n, size);
    bench_report("alloc", wall, cpu, extra);
    return 0;
}
