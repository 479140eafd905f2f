/* pause.c - stop-the-world pauses with a large live heap: live_mb MiB of 32-byte nodes
 * (a forest of complete binary trees of 4 MiB each), then churn: short-lived garbage
 * and a live edit every 1000 allocations, while the gap between edits is recorded as
 * the stall the mutator sees: the longest (max_stall_ms) and the 99th percentile
 * (p99_stall_ms), and the CPU time the host took from the machine meanwhile (steal_ms,
 * all CPUs: bench_steal_ms).  With BENCH_SERIES=path every gap is written there at
 * exit, one line "seconds stall_ms" (seconds since the churn began; bench/plot draws
 * them).
 * Usage: pause [live_mb] [churn_mb]
 */
#include "peer.h"

struct node {
    struct node *left, *right;
    long id;
    long pad;
};

static void *volatile garbage_sink;

static struct node *build(long *next_id, int depth)
{
    struct node *n = peer_alloc(sizeof *n);
    if (!n) {
        fprintf(stderr, "pause: out of memory\n");
        exit(1);
    }
    n->id = (*next_id)++;
    if (depth > 0) {
        n->left = build(next_id, depth - 1);
        n->right = build(next_id, depth - 1);
    }
    return n;
}

static void free_tree(struct node *n)
{
    if (!n)
        return;
    free_tree(n->left);
    free_tree(n->right);
    peer_free(n);
}

static long count(struct node *n)
{
    return n ? 1 + count(n->left) + count(n->right) : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long live_mb = argc > 1 ? atol(argv[1]) : 100;
    long churn_mb = argc > 2 ? atol(argv[2]) : 4 * live_mb;
    peer_init();
    enum { depth = 16 };   /* 2^17 - 1 nodes: a 4 MiB tree */
    long tree_bytes = ((2L << depth) - 1) * (long)sizeof(struct node);
    long ntrees = (live_mb << 20) / tree_bytes;
    if (ntrees < 1)
        ntrees = 1;
    long ids = 0;
    double t0 = bench_now(), c0 = bench_cpu();
    struct node **forest = peer_alloc(ntrees * sizeof *forest);
    for (long t = 0; t < ntrees; t++)
        forest[t] = build(&ids, depth);   /* into a new, zeroed array: no barrier */
    double build_s = bench_now() - t0;

    /* Every gap, in plain memory outside the collected heap (doubles: no pointers). */
    long max_gaps = (churn_mb << 20) / (1000 * (long)sizeof(struct node)) + 1, ngaps = 0;
    double *gaps = malloc(max_gaps * sizeof *gaps), *gap_end = malloc(max_gaps * sizeof *gap_end);
    if (!gaps || !gap_end) {
        fprintf(stderr, "pause: out of memory\n");
        return 1;
    }
    double max_gap = 0, churn0 = bench_now(), last = churn0, steal0 = bench_steal_ms();
    long churned = 0, batch = 0;
    unsigned seed = 12345;
    while (churned < churn_mb << 20) {
        struct node *g = peer_alloc(sizeof *g);    /* garbage */
        g->id = churned;
        churned += sizeof *g;
        garbage_sink = g;    /* keeps the compiler from dropping the allocation */
        peer_free(g);        /* what a malloc/free program would do with it */
        if (++batch == 1000) {
            batch = 0;
            /* A live edit: replace a random subtree leaf with a new node. */
            seed = seed * 1103515245 + 12345;
            struct node *n = forest[seed % ntrees];
            for (int d = 0; d < depth - 1 && n->left; d++)
                n = (seed >> (d % 16)) & 1 ? n->left : n->right;
            struct node *x = peer_alloc(sizeof *x);
            x->id = ids++;
            peer_free(n->left);
            PEER_WRITE(n->left, x);   /* an old object: needs the barrier */
            double now = bench_now();
            if (now - last > max_gap)
                max_gap = now - last;
            if (ngaps < max_gaps) {
                gaps[ngaps] = now - last;
                gap_end[ngaps++] = now - churn0;
            }
            last = now;
        }
    }
    double steal_ms = bench_steal_ms() - steal0;
    long nodes = 0;
    for (long t = 0; t < ntrees; t++)
        nodes += count(forest[t]);
    double wall = bench_now() - t0, cpu = bench_cpu() - c0;
    FILE *series = bench_series_open();
    if (series) {
        fprintf(series, "# pause %s live_mb=%ld churn_mb=%ld: seconds stall_ms\n", PEER_NAME,
                live_mb, churn_mb);
        for (long k = 0; k < ngaps; k++)
            fprintf(series, "%.6f %.4f\n", gap_end[k], gaps[k] * 1e3);
        fclose(series);
    }
    qsort(gaps, ngaps, sizeof *gaps, cmp_double);
    double p99 = ngaps ? gaps[(long)(0.99 * (ngaps - 1))] : 0;
    char extra[192];
    snprintf(extra, sizeof extra,
             "live_mb=%ld nodes=%ld build_s=%.3f max_stall_ms=%.3f p99_stall_ms=%.3f "
             "steal_ms=%.0f",
             live_mb, nodes, build_s, max_gap * 1e3, p99 * 1e3, steal_ms);
    bench_report("pause", wall, cpu, extra);
    free(gaps);
    free(gap_end);
    for (long t = 0; t < ntrees; t++)
        free_tree(forest[t]);
    peer_free(forest);
    return 0;
}
