/* memstats.c - the cost of gc_read_memstats while other threads allocate: T threads
 * (argv[2]) churn small objects while the main thread reads a snapshot N times
 * (argv[1]).  Tricolor only.  Usage: memstats [reads] [threads]
 */
#include "peer.h"

#include <pthread.h>

static volatile int stop;
static void *volatile sink;

static void *churn(void *arg)
{
    (void)arg;
    while (!stop)
        for (int i = 0; i < 1000; i++)
            sink = peer_alloc(48);
    return NULL;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    peer_init();
    pthread_t t[64];
    if (threads > 64)
        threads = 64;
    for (int i = 0; i < threads; i++)
        gc_thread_create(&t[i], NULL, churn, NULL);
    struct gc_memstats *m = malloc(sizeof *m);
    double w0 = bench_now(), c0 = bench_cpu(), worst = 0;
    for (long k = 0; k < n; k++) {
        double a = bench_now();
        gc_read_memstats(m);
        double d = bench_now() - a;
        if (d > worst)
            worst = d;
    }
    double wall = bench_now() - w0, cpu = bench_cpu() - c0;
    stop = 1;
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    char extra[96];
    snprintf(extra, sizeof extra, "us_per_call=%.3f worst_us=%.1f threads=%d",
             wall * 1e6 / n, worst * 1e6, threads);
    bench_report("memstats", wall, cpu, extra);
    free(m);
    return 0;
}
