/* gcbench.c - the GCBench shape: a long-lived tree and array stay live while many
 * short-lived complete binary trees are built top-down (filled in after allocation)
 * and bottom-up (children first), at depths 4, 6, ..., 16.  Stretch depth 18,
 * long-lived depth 16, as in the brief.
 */
#include "peer.h"

struct node {
    struct node *left, *right;
    int i, j;
};

enum { STRETCH_DEPTH = 18, LONG_LIVED_DEPTH = 16, ARRAY_SIZE = 500000, MIN_DEPTH = 4,
       MAX_DEPTH = 16 };

static long tree_size(int depth) { return (1L << (depth + 1)) - 1; }
static long iterations(int depth) { return 2 * tree_size(STRETCH_DEPTH) / tree_size(depth); }

static struct node *new_node(struct node *l, struct node *r)
{
    struct node *n = peer_alloc(sizeof *n);
    if (!n) {
        fprintf(stderr, "gcbench: out of memory\n");
        exit(1);
    }
    n->left = l;    /* a new object: plain stores are fine */
    n->right = r;
    return n;
}

static void populate(int depth, struct node *n)
{
    if (depth <= 0)
        return;
    n->left = new_node(NULL, NULL);
    n->right = new_node(NULL, NULL);
    populate(depth - 1, n->left);
    populate(depth - 1, n->right);
}

static struct node *make_tree(int depth)
{
    if (depth <= 0)
        return new_node(NULL, NULL);
    struct node *l = make_tree(depth - 1);
    return new_node(l, make_tree(depth - 1));
}

static void free_tree(struct node *n)
{
    if (!n)
        return;
    free_tree(n->left);
    free_tree(n->right);
    peer_free(n);
}

int main(void)
{
    peer_init();
    double w0 = bench_now(), c0 = bench_cpu();

    free_tree(make_tree(STRETCH_DEPTH));

    struct node *long_lived = new_node(NULL, NULL);
    populate(LONG_LIVED_DEPTH, long_lived);
    double *array = peer_alloc_atomic(sizeof(double) * ARRAY_SIZE);
    for (int i = 0; i < ARRAY_SIZE / 2; i++)
        array[i] = 1.0 / i;

    for (int d = MIN_DEPTH; d <= MAX_DEPTH; d += 2) {
        long n = iterations(d);
        for (long k = 0; k < n; k++) {
            struct node *t = new_node(NULL, NULL);
            populate(d, t);
            free_tree(t);
        }
        for (long k = 0; k < n; k++)
            free_tree(make_tree(d));
    }
    if (!long_lived || array[1000] != 1.0 / 1000) {
        fprintf(stderr, "gcbench: live data lost\n");
        return 1;
    }
    bench_report("gcbench", bench_now() - w0, bench_cpu() - c0, "");
    free_tree(long_lived);
    peer_free(array);
    return 0;
}
