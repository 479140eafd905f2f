/* binarytrees.c - the benchmarks-game binary-trees shape, single-threaded.
 *
 * For a maximum depth N (argv[1], default 21; never below MIN_DEPTH + 2):
 *   - a "stretch" tree of depth N+1 is built, checked and dropped;
 *   - a long-lived tree of depth N is built and kept until the end;
 *   - for d = 4, 6, ..., N: 2^(N - d + 4) trees of depth d are built, checked and
 *     dropped one after the other.
 * A node is two pointers and nothing else; a tree is built bottom-up (children
 * first), so every store goes into a freshly allocated object.  The check of a tree
 * is its node count; every check is verified against 2^(d+1) - 1 and a mismatch is
 * fatal.  With -v (or BENCH_VERBOSE set) the usual per-depth lines go to stderr.
 *
 * Usage: binarytrees [depth] [-v]
 */
#include "peer.h"

struct tree {
    struct tree *left, *right;
};

enum { MIN_DEPTH = 4 };

static struct tree *bottom_up(int depth)
{
    struct tree *l = NULL, *r = NULL;
    if (depth > 0) {
        l = bottom_up(depth - 1);
        r = bottom_up(depth - 1);
    }
    struct tree *t = peer_alloc(sizeof *t);
    if (!t) {
        fprintf(stderr, "binarytrees: out of memory\n");
        exit(1);
    }
    t->left = l;    /* a new object: plain stores are fine */
    t->right = r;
    return t;
}

static long check(const struct tree *t)
{
    long n = 1;
    if (t->left)
        n += check(t->left) + check(t->right);
    return n;
}

static void drop(struct tree *t)
{
    if (t->left) {
        drop(t->left);
        drop(t->right);
    }
    peer_free(t);
}

static long expected(int depth) { return (2L << depth) - 1; }

static void verify(const char *what, int depth, long got, long want)
{
    if (got != want) {
        fprintf(stderr, "binarytrees: %s of depth %d: check %ld, expected %ld\n", what,
                depth, got, want);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    int max_depth = 21, verbose = getenv("BENCH_VERBOSE") != NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            verbose = 1;
        else
            max_depth = atoi(argv[i]);
    }
    if (max_depth < MIN_DEPTH + 2)
        max_depth = MIN_DEPTH + 2;
    if (max_depth > 30) {
        fprintf(stderr, "binarytrees: depth %d is too large\n", max_depth);
        return 2;
    }

    peer_init();
    double w0 = bench_now(), c0 = bench_cpu();
    long total = 0;

    int stretch_depth = max_depth + 1;
    struct tree *stretch = bottom_up(stretch_depth);
    long c = check(stretch);
    verify("stretch tree", stretch_depth, c, expected(stretch_depth));
    total += c;
    drop(stretch);
    if (verbose)
        fprintf(stderr, "stretch tree of depth %d\t check: %ld\n", stretch_depth, c);

    struct tree *long_lived = bottom_up(max_depth);

    for (int d = MIN_DEPTH; d <= max_depth; d += 2) {
        long iterations = 1L << (max_depth - d + MIN_DEPTH);
        long sum = 0;
        for (long i = 0; i < iterations; i++) {
            struct tree *t = bottom_up(d);
            sum += check(t);
            drop(t);
        }
        verify("trees", d, sum, iterations * expected(d));
        total += sum;
        if (verbose)
            fprintf(stderr, "%ld\t trees of depth %d\t check: %ld\n", iterations, d, sum);
    }

    c = check(long_lived);
    verify("long lived tree", max_depth, c, expected(max_depth));
    total += c;
    if (verbose)
        fprintf(stderr, "long lived tree of depth %d\t check: %ld\n", max_depth, c);

    double wall = bench_now() - w0, cpu = bench_cpu() - c0;
    char extra[64];
    snprintf(extra, sizeof extra, "depth=%d check=%ld", max_depth, total);
    bench_report("binarytrees", wall, cpu, extra);
    drop(long_lived);
    return 0;
}
