/* test_survival.c - a live structure survives hundreds of collections under churn.
 *
 * Whole-program test against the public library.  The live data: a binary search tree
 * keyed by id, a chained hash table, a ring of large (> 32 KiB) buffers, objects held
 * only by interior pointers, and a malloc'd array registered with gc_add_roots.  Every
 * node stores a magic derived from its id and points to a noscan payload whose bytes
 * are a function of the id, so any reuse of a live object shows.  A shadow set of the
 * ids that must be present lives in malloc'd memory (not scanned, only integers).
 * Each of 300 rounds allocates mostly short-lived garbage, replaces part of the live
 * structure, collects and verifies everything; the test ends with num_gc >= 200.
 */
#define _GNU_SOURCE
#include <tricolor.h>

#include <check.h>
#define TESTUTIL_OWN_RNG
#include "testutil.h"
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define ROUNDS 300
#define MAX_ID 6000           /* ids live in [0, MAX_ID) */
#define TABLE_BUCKETS 257
#define NLARGE 8
#define NINTERIOR 64
#define NADDED 128

static uint64_t rng_state = 0x243f6a8885a308d3u;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1du;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdu;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53u;
    x ^= x >> 33;
    return x;
}

/* ---- payloads: noscan bytes that are a function of (id, salt) ------------------------- */

static unsigned char *payload_new(uint64_t id, uint64_t salt, size_t n)
{
    unsigned char *p = gc_malloc_atomic(n);
    must(p != NULL);
    uint64_t h = mix(id ^ salt);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(h >> (8 * (i & 7))) ^ (unsigned char)i;
    return p;
}

static int payload_ok(const unsigned char *p, uint64_t id, uint64_t salt, size_t n)
{
    if (!p || gc_size(p) < n)
        return 0;
    uint64_t h = mix(id ^ salt);
    for (size_t i = 0; i < n; i++)
        if (p[i] != ((unsigned char)(h >> (8 * (i & 7))) ^ (unsigned char)i))
            return 0;
    return 1;
}

/* ---- the tree ------------------------------------------------------------------------------ */

struct tnode {
    struct tnode *left, *right;
    uint64_t id, magic;
    unsigned char *payload;
    size_t plen;
};

static struct tnode *tree;          /* global roots */
static struct tbl *table;
static unsigned char *large_ring[NLARGE];
static uint64_t large_ids[NLARGE];
static char *interior[NINTERIOR];   /* point into the middle of their objects */
static uint64_t interior_ids[NINTERIOR];
static void **added_roots;          /* malloc'd; registered with gc_add_roots */

static unsigned char *in_tree;      /* shadow sets (malloc'd) */
static unsigned char *in_table;
static long tree_count, table_count;

static uint64_t tree_magic(uint64_t id) { return mix(id * 2 + 1); }

static struct tnode *tnode_new(uint64_t id)
{
    struct tnode *n = gc_malloc(sizeof *n);
    must(n != NULL);
    n->id = id;
    n->magic = tree_magic(id);
    n->plen = 8 + id % 120;
    n->payload = payload_new(id, 1, n->plen);
    return n;
}

static void tree_insert(uint64_t id)
{
    struct tnode **slot = &tree;
    while (*slot) {
        struct tnode *n = *slot;
        if (id == n->id)
            return;
        slot = id < n->id ? &n->left : &n->right;
    }
    struct tnode *n = tnode_new(id);
    if (slot == &tree)
        tree = n;
    else
        GC_WRITE(*slot, n);
    in_tree[id] = 1;
    tree_count++;
}

/* Delete by replacing the node with a fresh copy of its in-order successor (the old
 * nodes become garbage). */
static void tree_delete(uint64_t id)
{
    struct tnode **slot = &tree;
    while (*slot && (*slot)->id != id)
        slot = id < (*slot)->id ? &(*slot)->left : &(*slot)->right;
    struct tnode *n = *slot;
    if (!n)
        return;
    struct tnode *repl;
    if (!n->left) {
        repl = n->right;
    } else if (!n->right) {
        repl = n->left;
    } else {
        struct tnode **s = &n->right;
        while ((*s)->left)
            s = &(*s)->left;
        struct tnode *succ = *s;
        GC_WRITE(*s, succ->right);
        repl = tnode_new(succ->id);
        GC_WRITE(repl->left, n->left);
        GC_WRITE(repl->right, n->right);
    }
    if (slot == &tree)
        tree = repl;
    else
        GC_WRITE(*slot, repl);
    in_tree[id] = 0;
    tree_count--;
}

static long tree_errors;

static long tree_verify(const struct tnode *n, uint64_t lo, uint64_t hi, int depth)
{
    if (!n)
        return 0;
    if (depth > 200 || n->id < lo || n->id >= hi || n->magic != tree_magic(n->id) ||
        !in_tree[n->id] || gc_base(n) != (const void *)n ||
        !payload_ok(n->payload, n->id, 1, n->plen)) {
        tree_errors++;
        return 1;
    }
    return 1 + tree_verify(n->left, lo, n->id, depth + 1) +
           tree_verify(n->right, n->id + 1, hi, depth + 1);
}

/* ---- the hash table -------------------------------------------------------------------- */

struct hnode {
    struct hnode *next;
    uint64_t key, value, magic;
    unsigned char *payload;
};

struct tbl {
    uint64_t magic;
    struct hnode *buckets[TABLE_BUCKETS];
};

static uint64_t value_of(uint64_t key) { return mix(key ^ 0xabcdef); }
static uint64_t hnode_magic(uint64_t key) { return mix(key * 3 + 7); }

static void table_insert(uint64_t key)
{
    if (in_table[key])
        return;
    struct hnode *h = gc_malloc(sizeof *h);
    must(h != NULL);
    h->key = key;
    h->value = value_of(key);
    h->magic = hnode_magic(key);
    h->payload = payload_new(key, 2, 24);
    struct hnode **b = &table->buckets[key % TABLE_BUCKETS];
    h->next = *b;
    GC_WRITE(*b, h);
    in_table[key] = 1;
    table_count++;
}

static void table_delete(uint64_t key)
{
    struct hnode **p = &table->buckets[key % TABLE_BUCKETS];
    while (*p && (*p)->key != key)
        p = &(*p)->next;
    if (!*p)
        return;
    GC_WRITE(*p, (*p)->next);
    in_table[key] = 0;
    table_count--;
}

static long table_verify(long *errors)
{
    long n = 0;
    if (table->magic != mix(42))
        (*errors)++;
    for (int b = 0; b < TABLE_BUCKETS; b++)
        for (struct hnode *h = table->buckets[b]; h; h = h->next, n++) {
            if (n > MAX_ID) {
                (*errors)++;
                return n;
            }
            if (h->key >= MAX_ID || h->key % TABLE_BUCKETS != (uint64_t)b ||
                h->value != value_of(h->key) || h->magic != hnode_magic(h->key) ||
                !in_table[h->key] || !payload_ok(h->payload, h->key, 2, 24))
                (*errors)++;
        }
    return n;
}

/* ---- the other roots ----------------------------------------------------------------- */

#define LARGE_SIZE(i) (32768 + 4096 + (size_t)(i) * 9000)

static void large_replace(int i, uint64_t id)
{
    large_ring[i] = payload_new(id, 3, LARGE_SIZE(i));
    large_ids[i] = id;
}

struct iobj {
    uint64_t id, magic;
    char middle[48];
    uint64_t tail;
};

static void interior_replace(int i, uint64_t id)
{
    struct iobj *o = gc_malloc(sizeof *o);
    must(o != NULL);
    o->id = id;
    o->magic = mix(id + 99);
    memset(o->middle, (int)(id & 0xff), sizeof o->middle);
    o->tail = ~id;
    interior[i] = o->middle + 5;   /* unaligned into the middle: the only reference */
    interior_ids[i] = id;
}

static struct iobj *interior_obj(int i)
{
    return (struct iobj *)(interior[i] - 5 - offsetof(struct iobj, middle));
}

struct aobj {
    uint64_t id, magic;
    struct aobj *self;
};

static void added_replace(int i, uint64_t id)
{
    struct aobj *o = gc_malloc(sizeof *o);
    must(o != NULL);
    o->id = id;
    o->magic = mix(id + 1234);
    o->self = o;
    added_roots[i] = o;
}

/* ---- verification --------------------------------------------------------------------- */

static void verify_all(int round)
{
    tree_errors = 0;
    long nt = tree_verify(tree, 0, MAX_ID, 0);
    must_msg(tree_errors == 0, "round %d: %ld corrupt tree nodes", round, tree_errors);
    must_msg(nt == tree_count, "round %d: tree has %ld nodes, expected %ld", round, nt,
                  tree_count);
    long terr = 0;
    long nh = table_verify(&terr);
    must_msg(terr == 0, "round %d: %ld corrupt table entries", round, terr);
    must_msg(nh == table_count, "round %d: table has %ld entries, expected %ld", round,
                  nh, table_count);
    for (int i = 0; i < NLARGE; i++)
        must_msg(payload_ok(large_ring[i], large_ids[i], 3, LARGE_SIZE(i)),
                      "round %d: large buffer %d corrupt", round, i);
    for (int i = 0; i < NINTERIOR; i++) {
        struct iobj *o = interior_obj(i);
        uint64_t id = interior_ids[i];
        must_msg(gc_base(interior[i]) == (void *)o,
                      "round %d: object held by an interior pointer was freed", round);
        must_msg(o->id == id && o->magic == mix(id + 99) && o->tail == ~id &&
                          (unsigned char)o->middle[47] == (id & 0xff),
                      "round %d: object held by an interior pointer is corrupt", round);
    }
    for (int i = 0; i < NADDED; i++) {
        struct aobj *o = added_roots[i];
        must_msg(o && o->self == o && o->magic == mix(o->id + 1234) &&
                          gc_base(o) == (void *)o,
                      "round %d: object held from a gc_add_roots range is corrupt", round);
    }
}

/* ---- garbage ---------------------------------------------------------------------------- */

struct gnode {
    struct gnode *next;
    uint64_t junk[3];
};

static void make_garbage(void)
{
    /* Mostly small, short-lived objects; some linked lists; a few large ones. */
    for (int i = 0; i < 3000; i++) {
        size_t n = 16 + rnd() % 300;
        char *p = (i & 3) ? gc_malloc(n) : gc_malloc_atomic(n);
        must(p != NULL);
        memset(p, 0xEE, n);
    }
    struct gnode *list = NULL;
    for (int i = 0; i < 1000; i++) {
        struct gnode *g = gc_malloc(sizeof *g);
        must(g != NULL);
        g->next = list;
        g->junk[0] = (uint64_t)i;
        list = g;
    }
    for (int i = 0; i < 3; i++) {
        char *p = gc_malloc(40000 + rnd() % 60000);
        must(p != NULL);
        p[0] = 1;
    }
}

static void *live_only_through_stack(void)
{
    return gc_malloc(64);
}

START_TEST(test_survival)
{
    gc_init();
    gc_set_percent(50);   /* automatic cycles between the forced ones, too */
    in_tree = calloc(MAX_ID, 1);
    in_table = calloc(MAX_ID, 1);
    added_roots = calloc(NADDED, sizeof *added_roots);
    must(in_tree && in_table && added_roots);
    gc_add_roots(added_roots, added_roots + NADDED);

    table = gc_malloc(sizeof *table);
    must(table != NULL);
    table->magic = mix(42);
    for (int i = 0; i < 2000; i++) {
        tree_insert(rnd() % MAX_ID);
        table_insert(rnd() % MAX_ID);
    }
    for (int i = 0; i < NLARGE; i++)
        large_replace(i, (uint64_t)i);
    for (int i = 0; i < NINTERIOR; i++)
        interior_replace(i, (uint64_t)i);
    for (int i = 0; i < NADDED; i++)
        added_replace(i, (uint64_t)i);
    gc_collect();
    verify_all(-1);

    struct gc_memstats *m = malloc(sizeof *m);
    must(m != NULL);
    uint64_t max_alloc_after_gc = 0;
    for (int round = 0; round < ROUNDS; round++) {
        make_garbage();
        for (int k = 0; k < 60; k++) {
            uint64_t id = rnd() % MAX_ID;
            if (in_tree[id])
                tree_delete(id);
            else
                tree_insert(id);
            id = rnd() % MAX_ID;
            if (in_table[id])
                table_delete(id);
            else
                table_insert(id);
        }
        large_replace((int)(rnd() % NLARGE), 1000 + (uint64_t)round);
        interior_replace((int)(rnd() % NINTERIOR), 2000 + (uint64_t)round);
        added_replace((int)(rnd() % NADDED), 3000 + (uint64_t)round);
        make_garbage();
        gc_collect();
        verify_all(round);
        gc_read_memstats(m);
        if (m->heap_alloc > max_alloc_after_gc)
            max_alloc_after_gc = m->heap_alloc;
    }
    void *held = live_only_through_stack();
    gc_collect();
    ck_assert_ptr_eq(gc_base(held), held);
    verify_all(ROUNDS);

    gc_read_memstats(m);
    must_msg(m->num_gc >= 200, "only %u cycles", m->num_gc);
    ck_assert_uint_ge(m->num_forced_gc, ROUNDS);
    /* Most garbage is reclaimed: the live data is about 1 MB (tree, table, payloads,
     * 8 large buffers of at most 100 KiB) while each round makes about 1.5 MB of garbage,
     * 450 MB in all. */
    uint64_t live_estimate = (uint64_t)(tree_count + table_count) * 256 + NLARGE * 110000 +
                             (NINTERIOR + NADDED) * 128;
    must_msg(max_alloc_after_gc < 3 * live_estimate + (4u << 20),
                  "heap_alloc after a collection reached %" PRIu64 " bytes (live ~%" PRIu64 ")",
                  max_alloc_after_gc, live_estimate);
    ck_assert_uint_gt(m->total_alloc, (uint64_t)ROUNDS << 20);
    printf("survival: %u cycles (%u forced), tree %ld, table %ld, max heap_alloc after gc "
           "%" PRIu64 " KiB, heap_sys %" PRIu64 " MiB\n",
           m->num_gc, m->num_forced_gc, tree_count, table_count, max_alloc_after_gc >> 10,
           m->heap_sys >> 20);
    gc_remove_roots(added_roots, added_roots + NADDED);
    free(m);
}
END_TEST

static Suite *survival_suite(void)
{
    Suite *s = suite_create("survival");
    TCase *tc = tcase_create("churn");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_survival);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(survival_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
