/* binarytrees.c - the benchmarks-game binary-trees shape, single- or multi-threaded.
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
 * With -t T (T >= 1) the trees of every depth are shared out among T worker threads,
 * one tree per thread at a time: worker w builds and checks iterations
 * [w*I/T, (w+1)*I/T) of each depth, while the main thread keeps the long-lived tree
 * and waits.  The stretch and long-lived trees stay on the main thread, as in the
 * benchmarks game.  Without -t everything runs on the main thread.
 *
 * Usage: binarytrees [depth] [-t threads] [-v]
 */
#define PEER_THREADS 1
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

/* The stretch tree is garbage once checked.  Built in a frame of its own, so no stale
 * copy of its root stays in main's frame, where a conservative collector would find it
 * and keep the whole tree (twice the long-lived one) for the rest of the run. */
static __attribute__((noinline)) long stretch(int depth)
{
    struct tree *t = bottom_up(depth);
    long c = check(t);
    drop(t);
    return c;
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

enum { MAX_THREADS = 256 };

/* One worker's share; plain memory, it holds no heap pointers. */
struct worker {
    pthread_t thread;
    int id, nthreads, max_depth;
    long sum[32];    /* check sums of its trees, by depth */
};

static long iterations_at(int max_depth, int d) { return 1L << (max_depth - d + MIN_DEPTH); }

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int d = MIN_DEPTH; d <= w->max_depth; d += 2) {
        long n = iterations_at(w->max_depth, d);
        long lo = n * w->id / w->nthreads, hi = n * (w->id + 1) / w->nthreads;
        long sum = 0;
        for (long i = lo; i < hi; i++) {
            struct tree *t = bottom_up(d);
            sum += check(t);
            drop(t);
        }
        w->sum[d] = sum;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int max_depth = 21, nthreads = 0, verbose = getenv("BENCH_VERBOSE") != NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            verbose = 1;
        else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
            nthreads = atoi(argv[++i]);
        else
            max_depth = atoi(argv[i]);
    }
    if (max_depth < MIN_DEPTH + 2)
        max_depth = MIN_DEPTH + 2;
    if (max_depth > 30) {
        fprintf(stderr, "binarytrees: depth %d is too large\n", max_depth);
        return 2;
    }
    if (nthreads < 0 || nthreads > MAX_THREADS) {
        fprintf(stderr, "binarytrees: -t %d: between 1 and %d threads\n", nthreads,
                MAX_THREADS);
        return 2;
    }

    peer_init();
    double w0 = bench_now(), c0 = bench_cpu();
    long total = 0;

    int stretch_depth = max_depth + 1;
    long c = stretch(stretch_depth);
    verify("stretch tree", stretch_depth, c, expected(stretch_depth));
    total += c;
    if (verbose)
        fprintf(stderr, "stretch tree of depth %d\t check: %ld\n", stretch_depth, c);

    struct tree *long_lived = bottom_up(max_depth);

    struct worker *workers = calloc(nthreads ? nthreads : 1, sizeof *workers);
    if (!workers) {
        fprintf(stderr, "binarytrees: out of memory\n");
        return 1;
    }
    for (int k = 0; k < (nthreads ? nthreads : 1); k++) {
        workers[k].id = k;
        workers[k].nthreads = nthreads ? nthreads : 1;
        workers[k].max_depth = max_depth;
    }
    if (nthreads == 0)
        work(&workers[0]);
    else {
        for (int k = 0; k < nthreads; k++)
            if (peer_thread_create(&workers[k].thread, work, &workers[k]) != 0) {
                fprintf(stderr, "binarytrees: cannot start thread %d\n", k);
                return 1;
            }
        for (int k = 0; k < nthreads; k++)
            peer_thread_join(workers[k].thread);
    }

    for (int d = MIN_DEPTH; d <= max_depth; d += 2) {
        long iterations = iterations_at(max_depth, d);
        long sum = 0;
        for (int k = 0; k < (nthreads ? nthreads : 1); k++)
            sum += workers[k].sum[d];
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
    char extra[96];
    if (nthreads)
        snprintf(extra, sizeof extra, "depth=%d threads=%d check=%ld", max_depth, nthreads,
                 total);
    else
        snprintf(extra, sizeof extra, "depth=%d check=%ld", max_depth, total);
    bench_report("binarytrees", wall, cpu, extra);
    drop(long_lived);
    free(workers);
    return 0;
}
