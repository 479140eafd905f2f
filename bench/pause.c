/* pause.c - stop-the-world pauses with a large live heap: live_mb MiB of 32-byte nodes
 * (a forest of complete binary trees of 4 MiB each), then churn: short-lived garbage
 * and a live edit every 1000 allocations, while the longest gap between edits is
 * recorded as the stall the mutator sees.  Usage: pause [live_mb] [churn_mb]
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

    double max_gap = 0, last = bench_now();
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
            last = now;
        }
    }
    long nodes = 0;
    for (long t = 0; t < ntrees; t++)
        nodes += count(forest[t]);
    char extra[160];
    snprintf(extra, sizeof extra, "live_mb=%ld nodes=%ld build_s=%.3f max_stall_ms=%.3f",
             live_mb, nodes, build_s, max_gap * 1e3);
    bench_report("pause", bench_now() - t0, bench_cpu() - c0, extra);
    for (long t = 0; t < ntrees; t++)
        free_tree(forest[t]);
    peer_free(forest);
    return 0;
}
