/* pacer.c - how much memory and collector CPU a steady live set costs.  L = live_mb MiB
 * stay live as a ring of slots, each holding a chain of 8 nodes of 32 bytes (264 bytes a
 * slot with the ring's pointer, so L counts the ring too).  The ring is continuously
 * replaced: step i builds a new chain and stores it in slot i mod n, and the chain it
 * replaces becomes garbage (a malloc/free program frees it), until churn × L bytes of
 * chains have been allocated.  The live set never changes size, so what the heap
 * grows to is the pacer's doing: GCPERCENT (Go: GOGC) sets the goal, GCMEMLIMIT
 * (GOMEMLIMIT) caps it.
 *
 * Reported: rss_per_live, the peak RSS (getrusage ru_maxrss, the whole process) over
 * L; gc_cpu_pct, the collector's share of the available CPU since start-up (Tricolor
 * gc_cpu_fraction, Go GCCPUFraction; for Boehm its stopped-world time over wall time,
 * pauses charged to every CPU as the other two do).  With BENCH_SERIES=path the RSS
 * is sampled 32 times per lap of the ring and written there at exit, one line
 * "seconds rss_mib" per sample (bench/plot draws it).  Not for the bump peer: it
 * never frees, so the RSS would only grow.
 *
 * Usage: pacer [live_mb] [churn]
 */
#include "peer.h"

enum { CHAIN = 8, SAMPLES_PER_LAP = 32 };

struct node {
    struct node *next;
    long id;         /* step * CHAIN + position: a chain's nodes share id / CHAIN */
    long pad[2];
};

static struct node *new_chain(long step)
{
    struct node *head = NULL;
    for (int j = 0; j < CHAIN; j++) {
        struct node *n = peer_alloc(sizeof *n);
        if (!n) {
            fprintf(stderr, "pacer: out of memory\n");
            exit(1);
        }
        n->next = head;   /* a new object: plain stores are fine */
        n->id = step * CHAIN + j;
        head = n;
    }
    return head;
}

static void free_chain(struct node *n)
{
    while (n) {
        struct node *next = n->next;
        peer_free(n);
        n = next;
    }
}

struct sample {
    double t, rss_mib;
};

int main(int argc, char **argv)
{
    long live_mb = argc > 1 ? atol(argv[1]) : 64;
    long churn = argc > 2 ? atol(argv[2]) : 8;
    if (live_mb < 1 || churn < 1) {
        fprintf(stderr, "pacer: live_mb and churn must be at least 1\n");
        return 2;
    }
    peer_init();
    long slot_bytes = CHAIN * (long)sizeof(struct node) + (long)sizeof(struct node *);
    long nslots = (live_mb << 20) / slot_bytes;
    long steps = churn * nslots;   /* churn × L of chains after the ring is full */

    FILE *series = bench_series_open();
    long sample_every = nslots / SAMPLES_PER_LAP > 0 ? nslots / SAMPLES_PER_LAP : 1;
    long max_samples = series ? (nslots + steps) / sample_every + 2 : 0, nsamples = 0;
    struct sample *samples = series ? malloc(max_samples * sizeof *samples) : NULL;
    if (series && !samples) {
        fprintf(stderr, "pacer: out of memory\n");
        return 1;
    }

    double w0 = bench_now(), c0 = bench_cpu();
    struct node **ring = peer_alloc(nslots * sizeof *ring);
    if (!ring) {
        fprintf(stderr, "pacer: out of memory\n");
        return 1;
    }
    for (long i = 0; i < nslots + steps; i++) {
        long slot = i % nslots;
        struct node *c = new_chain(i);
        if (i < nslots)
            ring[slot] = c;   /* filling a new, zeroed array: no barrier */
        else {
            struct node *old = ring[slot];
            PEER_WRITE(ring[slot], c);
            free_chain(old);
        }
        if (samples && i % sample_every == 0 && nsamples < max_samples)
            samples[nsamples++] = (struct sample){ bench_now() - w0, bench_rss_kb() / 1024.0 };
    }
    double wall = bench_now() - w0, cpu = bench_cpu() - c0;

    /* Every slot holds a whole chain from the last lap. */
    for (long s = 0; s < nslots; s++) {
        long n = 0, step = ring[s]->id / CHAIN;
        for (struct node *x = ring[s]; x; x = x->next, n++)
            if (x->id / CHAIN != step || step % nslots != s) {
                fprintf(stderr, "pacer: slot %ld: node %ld of step %ld: live data lost\n",
                        s, x->id, step);
                return 1;
            }
        if (n != CHAIN) {
            fprintf(stderr, "pacer: slot %ld: chain of %ld nodes\n", s, n);
            return 1;
        }
    }

    double live = (double)(live_mb << 20);
    char extra[160];
    snprintf(extra, sizeof extra, "live_mb=%ld churn=%ld rss_per_live=%.3f gc_cpu_pct=%.2f",
             live_mb, churn, bench_maxrss_kb() * 1024.0 / live,
             100.0 * peer_gc_cpu_fraction());
    bench_report("pacer", wall, cpu, extra);

    if (series) {
        fprintf(series, "# pacer %s live_mb=%ld churn=%ld: seconds rss_mib\n", PEER_NAME,
                live_mb, churn);
        for (long k = 0; k < nsamples; k++)
            fprintf(series, "%.6f %.3f\n", samples[k].t, samples[k].rss_mib);
        fclose(series);
    }
    free(samples);
    for (long s = 0; s < nslots; s++)
        free_chain(ring[s]);
    peer_free(ring);
    return 0;
}
