/* mark.c - marking throughput: live_mb MiB of 32-byte nodes stay live (a forest of
 * complete binary trees of 4 MiB each, every node also linked to a random node among
 * the last 1024 built, so the graph has shared nodes and the marker meets objects it
 * has already marked), then `collections` full collections are forced, with nothing
 * else allocated.  Reported: the median collection's mark time and its throughput,
 * live bytes (the nodes the program built, the same figure for every peer) divided by
 * mark time, in MB/s (10^6 bytes per second).
 *
 * Mark time is measured by each collector's own clock around its mark phase: for
 * Tricolor the cycle hook (sweep termination + mark + mark termination; the sweep is
 * lazy and comes after), for Boehm GC_EVENT_MARK_START..MARK_END; the wall time of the
 * whole forced collection is reported beside it (collect_ms).  The number of marker
 * threads comes from the environment (GCPROCS for Tricolor, GC_MARKERS for Boehm;
 * bench/run sets them from one GCPROCS value) and is reported as procs.  A collector
 * is needed: there is no malloc or bump version.
 *
 * Usage: mark [live_mb] [collections]
 */
#include "peer.h"

#if !PEER_COLLECTS
#error "mark measures a collector: build it for the collecting peers only"
#endif

struct node {
    struct node *left, *right;   /* the tree */
    struct node *link;           /* a random recent node: sharing */
    long id;
};

enum { DEPTH = 16, RECENT = 1024, MAX_COLLECTIONS = 64 };

struct builder {      /* on main's stack */
    long next_id;
    unsigned seed;
    struct node *recent[RECENT];   /* the last nodes built, in the forest or on the stack */
};

static struct node *build(struct builder *b, int depth)
{
    struct node *n = peer_alloc(sizeof *n);
    if (!n) {
        fprintf(stderr, "mark: out of memory\n");
        exit(1);
    }
    n->id = b->next_id++;
    if (depth > 0) {   /* a new object: plain stores are fine */
        n->left = build(b, depth - 1);
        n->right = build(b, depth - 1);
    }
    b->seed = b->seed * 1103515245 + 12345;
    n->link = b->recent[(b->seed >> 8) % RECENT];
    b->recent[n->id % RECENT] = n;
    return n;
}

static long count(const struct node *n)
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
    long live_mb = argc > 1 ? atol(argv[1]) : 256;
    int collections = argc > 2 ? atoi(argv[2]) : 5;
    if (collections < 1 || collections > MAX_COLLECTIONS) {
        fprintf(stderr, "mark: between 1 and %d collections\n", MAX_COLLECTIONS);
        return 2;
    }
    peer_init();
    peer_track_marking();
    long tree_bytes = ((2L << DEPTH) - 1) * (long)sizeof(struct node);
    long ntrees = (live_mb << 20) / tree_bytes;
    if (ntrees < 1)
        ntrees = 1;

    double w0 = bench_now(), c0 = bench_cpu();
    struct builder b = { .seed = 12345 };
    struct node **forest = peer_alloc(ntrees * sizeof *forest);
    if (!forest) {
        fprintf(stderr, "mark: out of memory\n");
        return 1;
    }
    for (long t = 0; t < ntrees; t++)
        forest[t] = build(&b, DEPTH);   /* into a new, zeroed array: no barrier */
    double build_s = bench_now() - w0;
    long nodes = b.next_id;
    double live_bytes = (double)nodes * sizeof(struct node);

    peer_collect();   /* settle: the building garbage and any cycle in progress */
    double mark_ms[MAX_COLLECTIONS], collect_ms[MAX_COLLECTIONS];
    for (int k = 0; k < collections; k++) {
        uint64_t m0 = peer_mark_ns();
        double t0 = bench_now();
        peer_collect();
        collect_ms[k] = (bench_now() - t0) * 1e3;
        mark_ms[k] = (peer_mark_ns() - m0) / 1e6;
    }
    double wall = bench_now() - w0, cpu = bench_cpu() - c0;

    long found = 0;
    for (long t = 0; t < ntrees; t++)
        found += count(forest[t]);
    if (found != nodes) {
        fprintf(stderr, "mark: %ld nodes built, %ld reachable: live data lost\n", nodes, found);
        return 1;
    }
    qsort(mark_ms, collections, sizeof *mark_ms, cmp_double);
    qsort(collect_ms, collections, sizeof *collect_ms, cmp_double);
    double mark = mark_ms[collections / 2], collect = collect_ms[collections / 2];
    char extra[256];
    snprintf(extra, sizeof extra,
             "live_mb=%ld procs=%u build_s=%.3f collect_ms=%.3f mark_ms=%.3f "
             "mark_mb_per_s=%.1f",
             live_mb, peer_procs(), build_s, collect, mark,
             mark > 0 ? live_bytes / 1e6 / (mark / 1e3) : 0.0);
    bench_report("mark", wall, cpu, extra);
    return 0;
}
