/* test_concurrent.c - the stress test for concurrent marking (GCDEBUG=gcconcurrent=1).
 *
 * The program turns concurrent marking on itself before gc_init: GCDEBUG becomes the
 * environment's GCDEBUG (so gccheckmark=1, stwtrace=1 and the like still apply) with
 * ",gcconcurrent=1,gcstoptheworld=0" appended; a later item wins, so marking is concurrent whatever the
 * environment said.  GCPERCENT 10 makes cycles run back to back while four threads
 * mutate a shared graph, so the write barrier, allocation black, assists, gc_free
 * during the mark and both pauses are all exercised hundreds of times.
 *
 *  graph        4 gc_thread_create mutators share 4096 slots (a gc_malloc'd array held
 *               by a global) of nodes with an id, a check word derived from the id and
 *               4 edges; every edge stores its target's id next to the pointer, so a
 *               target freed and reused shows as to->id != to_id.  Each thread at
 *               random: allocates nodes into slots, relinks edges, clears slots and
 *               edges, walks paths of up to 16 edges verifying every node and edge,
 *               passes nodes to the others through per-thread heap mailboxes, copies
 *               edge arrays with gc_memcpy (into new nodes and over live ones), keeps
 *               nodes reachable only from its stack for a while, and gc_frees nodes it
 *               never published (also while a mark runs).  Then: no corruption, at
 *               least 100 cycles (num_gc), marking really concurrent (the cycle hook runs
 *               on the collector thread, stores happened with the barrier on), and after
 *               a final gc_collect everything reachable is verified.
 *  large        2 threads build lists of 40-200 KiB objects (arrays of {pointer, id}
 *               pairs to small leaves), linked with GC_WRITE, partly filled with
 *               gc_memcpy, overwritten, trimmed, gc_free'd; every object is verified.
 *  collect      gc_collect from 2 threads at once while 2 threads mutate the graph:
 *               every call returns after a whole new cycle, no corruption.
 *  exit         a thread moves an object with GC_WRITE during a mark and exits at once:
 *               its barrier buffer must not leave with it (the object stays allocated).
 *  fork         fork() while the collector thread marks: the child's first collection
 *               keeps the whole of a reachable 1M-node list.
 * Each is a Check case of its own: CK_RUN_CASE=graph (large, collect, exit, fork)
 * runs one alone; CK_FORK=no runs them in one process (for gdb).
 *
 * Reproducible: the seed comes from TRICOLOR_SEED (else the clock); it is printed at
 * the start and in every failure message (thread interleavings still differ run to
 * run).  TRICOLOR_STRESS_SCALE (a positive number, default 1) multiplies every
 * operation count; when it is unset a --enable-debug build (the heap verifier runs
 * at every cycle, and distcheck runs it under ASan/UBSan as well) uses 0.5.
 */
#define _GNU_SOURCE
#include "config.h"

#include <tricolor.h>

#include <check.h>
#include "testutil.h"
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Check's ck_assert* talk to the runner each time they pass; these only on failure. */
#define must_msg(c, ...)                                                                  \
    do {                                                                                  \
        if (!(c))                                                                         \
            ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

#define NSLOTS 4096
#define K 4                  /* edges per node */
#define MAX_THREADS 4
#define STASH 16             /* nodes a graph thread holds on its stack only */
#define WALK_MAX 16
#define MIN_CYCLES 100

#define GRAPH_OPS 1500000    /* per thread, at scale 1 */
#define LARGE_OPS 8000
#define COLLECT_CALLS 200    /* per collecting thread */
#define COLLECT_MUTATOR_OPS 600000

static uint64_t seed;
static double scale = 1.0;


static uint64_t below(struct rng *r, uint64_t n)
{
    return rnd(r) % n;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t scaled(uint64_t n)
{
    uint64_t v = (uint64_t)((double)n * scale);
    return v ? v : 1;
}

static uint64_t check_of(uint64_t id)
{
    return mix(id ^ 0x5eed5eed5eed5eedu) | 1;   /* never 0: a zeroed object fails */
}

/* ---- failures: counted, the first ones printed with the seed ------------------------ */

static uint64_t errors;   /* __atomic */

static void report(int tid, const char *what, const void *obj, uint64_t expected, uint64_t found)
{
    uint64_t n = __atomic_fetch_add(&errors, 1, __ATOMIC_RELAXED);
    if (n < 40)
        fprintf(stderr,
                "test_concurrent: seed %" PRIu64 ": thread %d: %s: object %p expected %#" PRIx64
                " found %#" PRIx64 "\n",
                seed, tid, what, obj, expected, found);
    else if (n == 40)
        fprintf(stderr, "test_concurrent: seed %" PRIu64 ": more errors not shown\n", seed);
}

static uint64_t nerrors(void)
{
    return __atomic_load_n(&errors, __ATOMIC_RELAXED);
}

/* ---- cycle hook: count cycles and where they ran ----------------------------------- */

static uint64_t hook_cycles, hook_on_collector, hook_max_pause_ns, hook_pause_ns;

static void cycle_hook(const struct gc_cycle_info *ci, void *arg)
{
    (void)arg;
    char name[32] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    uint64_t pause = ci->sweep_term_ns + ci->mark_term_ns;
    __atomic_fetch_add(&hook_cycles, 1, __ATOMIC_RELAXED);
    if (strcmp(name, "tricolor-gc") == 0)
        __atomic_fetch_add(&hook_on_collector, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&hook_pause_ns, pause, __ATOMIC_RELAXED);
    if (pause > __atomic_load_n(&hook_max_pause_ns, __ATOMIC_RELAXED))
        __atomic_store_n(&hook_max_pause_ns, pause, __ATOMIC_RELAXED);
}

static void hook_reset(void)
{
    gc_set_cycle_hook(NULL, NULL);
    hook_cycles = hook_on_collector = hook_max_pause_ns = hook_pause_ns = 0;
    gc_set_cycle_hook(cycle_hook, NULL);
}

/* ======================================================================================
 * graph
 * ====================================================================================== */

struct node;
struct edge {
    struct node *to;
    uint64_t to_id;          /* to->id when the edge was written; 0 with to == NULL */
};

struct node {
    uint64_t id, check;      /* immutable once published */
    uint64_t seq;            /* seqlock over e[]: odd while a writer holds it */
    struct edge e[K];
};

/* A mailbox entry: written by one sender, emptied by its receiver. */
struct mslot {
    struct node *p;
    uint64_t id;
};

/* Globals are roots: the slot array and the mailboxes hang from here. */
static struct node **g_slots;
static struct mslot *g_mail[MAX_THREADS];   /* g_mail[to][from] */
static int g_nthreads;

struct gstats {                   /* per graph thread; no heap pointers in here */
    int tid;
    uint64_t ops;
    uint64_t allocs, links, clears, walks, walk_steps, sent, received, copies,
        copies_over, frees, frees_marking, stashed, writes_marking;
};
static struct gstats gstats[MAX_THREADS];

static struct node *load_ptr(struct node *const *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* An object's id and check word (the first two words of nodes and large objects). */
static bool ids_ok(int tid, const void *obj, const uint64_t *idp, const uint64_t *checkp,
                   uint64_t expect_id, const char *where)
{
    const void *n = obj;
    uint64_t id = __atomic_load_n(idp, __ATOMIC_RELAXED);
    uint64_t ck = __atomic_load_n(checkp, __ATOMIC_RELAXED);
    if (expect_id && id != expect_id) {
        char what[96];
        snprintf(what, sizeof what, "%s: id (freed and reused?)", where);
        report(tid, what, n, expect_id, id);
        return false;
    }
    if (id == 0 || ck != check_of(id)) {
        char what[96];
        snprintf(what, sizeof what, "%s: check word of id %#" PRIx64, where, id);
        report(tid, what, n, check_of(id), ck);
        return false;
    }
    return true;
}

static bool node_ok(int tid, const struct node *n, uint64_t expect_id, const char *where)
{
    return ids_ok(tid, n, &n->id, &n->check, expect_id, where);
}

/* A spinning thread's pause.  Under ThreadSanitizer a signal is delivered only when the
 * thread next enters a call TSan intercepts; sched_yield is not one, so a thread that
 * spins on a lock held by a stopped thread would never stop.  nanosleep is. */
static void spin_pause(void)
{
#if GC_TSAN
    struct timespec ts = {0, 1000};
    nanosleep(&ts, NULL);
#else
    sched_yield();
#endif
}

/* Writers: a spin lock in the seq word.  Bounded, so a corrupted node cannot hang. */
static bool node_lock(int tid, struct node *n)
{
    for (unsigned long i = 0;; i++) {
        uint64_t s = __atomic_load_n(&n->seq, __ATOMIC_RELAXED);
        if (!(s & 1) && __atomic_compare_exchange_n(&n->seq, &s, s + 1, false,
                                                    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            __atomic_thread_fence(__ATOMIC_RELEASE);
            return true;
        }
        if (i % 64 == 63)
            spin_pause();
        if (i > 20000000) {
            report(tid, "node lock never released (seq)", n, s & ~(uint64_t)1, s);
            return false;
        }
    }
}

static void node_unlock(struct node *n)
{
    uint64_t s = __atomic_load_n(&n->seq, __ATOMIC_RELAXED);
    __atomic_store_n(&n->seq, s + 1, __ATOMIC_RELEASE);
}

/* Readers: a consistent copy of edge j.  ThreadSanitizer does not model the fences a
 * seqlock pairs (and the writer's gc_memcpy is not atomic): there, readers take the
 * writers' lock instead. */
static bool read_edge(int tid, const struct node *n, int j, struct node **to, uint64_t *to_id)
{
#if GC_TSAN
    struct node *w = (struct node *)n;
    if (!node_lock(tid, w))
        return false;
    *to = w->e[j].to;
    *to_id = w->e[j].to_id;
    node_unlock(w);
    return true;
#endif
    for (unsigned long i = 0;; i++) {
        uint64_t s1 = __atomic_load_n(&n->seq, __ATOMIC_ACQUIRE);
        if (!(s1 & 1)) {
            struct node *t = __atomic_load_n(&n->e[j].to, __ATOMIC_RELAXED);
            uint64_t id = __atomic_load_n(&n->e[j].to_id, __ATOMIC_RELAXED);
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (__atomic_load_n(&n->seq, __ATOMIC_RELAXED) == s1) {
                *to = t;
                *to_id = id;
                return true;
            }
        }
        if (i % 64 == 63)
            spin_pause();
        if (i > 20000000) {
            report(tid, "edge never stable (seq)", n, s1 & ~(uint64_t)1, s1);
            return false;
        }
    }
}

/* Edge j of n is consistent and its target (if any) is the node it was written with.
 * Returns the target (NULL if none or bad). */
static struct node *edge_ok(int tid, const struct node *n, int j, const char *where)
{
    struct node *t;
    uint64_t tid_;
    if (!read_edge(tid, n, j, &t, &tid_))
        return NULL;
    if (!t) {
        if (tid_ != 0)
            report(tid, "null edge with an id", n, 0, tid_);
        return NULL;
    }
    if (tid_ == 0) {
        report(tid, "edge without an id", n, 1, 0);
        return NULL;
    }
    return node_ok(tid, t, tid_, where) ? t : NULL;
}

static bool node_and_edges_ok(int tid, const struct node *n, uint64_t expect_id,
                              const char *where)
{
    if (!node_ok(tid, n, expect_id, where))
        return false;
    for (int j = 0; j < K; j++)
        (void)edge_ok(tid, n, j, where);
    return true;
}

static struct node *new_node(int tid, uint64_t *next_id)
{
    struct node *n = gc_malloc(sizeof *n);
    if (!n) {
        report(tid, "gc_malloc(node) failed", NULL, 1, 0);
        return NULL;
    }
    if (n->id || n->check || n->seq) {
        report(tid, "new node not zeroed", n, 0, n->id | n->check | n->seq);
        return NULL;
    }
    for (int j = 0; j < K; j++)
        if (n->e[j].to || n->e[j].to_id) {
            report(tid, "new node edge not zeroed", n, 0, (uint64_t)(uintptr_t)n->e[j].to);
            return NULL;
        }
    uint64_t id = ++*next_id;
    n->id = id;
    n->check = check_of(id);
    return n;
}

/* Set edge j of a node nobody else can see yet (no lock needed). */
static void set_edge_private(struct gstats *st, struct node *n, int j, struct node *t)
{
    if (gc_barrier_active_)
        st->writes_marking++;
    GC_WRITE(n->e[j].to, t);
    n->e[j].to_id = t ? t->id : 0;
}

/* Set edge j of a published node. */
static void set_edge_shared(struct gstats *st, struct node *n, int j, struct node *t)
{
    if (!node_lock(st->tid, n))
        return;
    if (gc_barrier_active_)
        st->writes_marking++;
    GC_WRITE_ATOMIC(n->e[j].to, t, __ATOMIC_RELAXED);
    __atomic_store_n(&n->e[j].to_id, t ? t->id : 0, __ATOMIC_RELAXED);
    node_unlock(n);
}

static void publish(struct gstats *st, size_t slot, struct node *n)
{
    if (gc_barrier_active_)
        st->writes_marking++;
    /* Its id and edges before the pointer. */
    GC_WRITE_ATOMIC(g_slots[slot], n, __ATOMIC_RELEASE);
}

/* A node reachable now: a random slot's, then up to `hops` random edges on. */
static struct node *pick(struct gstats *st, struct rng *r, int hops)
{
    struct node *n = load_ptr(&g_slots[below(r, NSLOTS)]);
    if (!n || !node_ok(st->tid, n, 0, "pick"))
        return NULL;
    int h = (int)below(r, (uint64_t)hops + 1);
    for (int i = 0; i < h; i++) {
        struct node *t = edge_ok(st->tid, n, (int)below(r, K), "pick");
        if (!t)
            break;
        n = t;
    }
    return n;
}

static void walk(struct gstats *st, struct rng *r)
{
    size_t slot = below(r, NSLOTS);
    struct node *n = load_ptr(&g_slots[slot]);
    st->walks++;
    if (!n || !node_and_edges_ok(st->tid, n, 0, "walk start"))
        return;
    int len = 1 + (int)below(r, WALK_MAX);
    for (int i = 0; i < len; i++) {
        struct node *t = edge_ok(st->tid, n, (int)below(r, K), "walk");
        if (!t)
            return;
        st->walk_steps++;
        for (int j = 0; j < K; j++)   /* every edge of every node on the way */
            (void)edge_ok(st->tid, t, j, "walk edge");
        n = t;
    }
}

static void *graph_worker(void *arg)
{
    struct gstats *st = arg;
    const int tid = st->tid;
    char name[16];
    snprintf(name, sizeof name, "graph-%d", tid);
    pthread_setname_np(pthread_self(), name);   /* in stwtrace's lines */
    struct rng r = {mix(seed ^ ((uint64_t)(tid + 1) * 0x9e3779b97f4a7c15u)) | 1};
    uint64_t next_id = (uint64_t)(tid + 1) << 48;

    /* Held on this stack only (no barrier: stacks are scanned in the first pause). */
    struct node *stash[STASH];
    uint64_t stash_id[STASH];
    memset(stash, 0, sizeof stash);
    memset(stash_id, 0, sizeof stash_id);
    struct node *priv = NULL;   /* allocated, never published: may be gc_free'd */

    for (uint64_t op = 0; op < st->ops; op++) {
        unsigned what = (unsigned)below(&r, 100);
        if (what < 18) {   /* (a) allocate a node, link it to reachable ones, publish it */
            struct node *n = new_node(tid, &next_id);
            if (!n)
                continue;
            int ne = (int)below(&r, K + 1);
            for (int j = 0; j < ne; j++)
                set_edge_private(st, n, j, pick(st, &r, 3));
            /* Some short-lived garbage around it, scanned and not. */
            if (below(&r, 4) == 0) {
                void **g = gc_malloc(16 + below(&r, 480));
                if (g)
                    g[0] = n;
            } else if (below(&r, 4) == 0) {
                char *g = gc_malloc_atomic(16 + below(&r, 2000));
                if (g)
                    g[0] = 1;
            }
            publish(st, below(&r, NSLOTS), n);
            st->allocs++;
        } else if (what < 36) {   /* (b) relink: an edge of a reachable node to another */
            struct node *n = pick(st, &r, 4);
            struct node *t = pick(st, &r, 4);
            if (n) {
                set_edge_shared(st, n, (int)below(&r, K), t);
                st->links++;
            }
        } else if (what < 42) {   /* (c) clear a slot or an edge */
            if (below(&r, 2)) {
                size_t slot = below(&r, NSLOTS);
                if (gc_barrier_active_)
                    st->writes_marking++;
                GC_WRITE_ATOMIC(g_slots[slot], NULL, __ATOMIC_RELAXED);
            } else {
                struct node *n = pick(st, &r, 2);
                if (n)
                    set_edge_shared(st, n, (int)below(&r, K), NULL);
            }
            st->clears++;
        } else if (what < 64) {   /* (d) walk and verify */
            walk(st, &r);
        } else if (what < 72) {   /* (e) mailboxes */
            /* Receive from every sender. */
            for (int from = 0; from < g_nthreads; from++) {
                struct mslot *m = &g_mail[tid][from];
                struct node *p = load_ptr(&m->p);
                if (!p)
                    continue;
                uint64_t id = __atomic_load_n(&m->id, __ATOMIC_RELAXED);
                node_and_edges_ok(tid, p, id, "mailbox");
                /* The id is read before the slot empties. */
                GC_WRITE_ATOMIC(m->p, NULL, __ATOMIC_RELEASE);
                st->received++;
                /* Keep it on the stack (possibly its only reference), or publish it. */
                if (below(&r, 2)) {
                    int s = (int)below(&r, STASH);
                    stash[s] = p;
                    stash_id[s] = id;
                } else {
                    publish(st, below(&r, NSLOTS), p);
                }
            }
            /* Send to one other thread: a fresh node (reachable only from the mailbox
             * once sent) or a reachable one. */
            int to = (int)below(&r, (uint64_t)g_nthreads);
            if (to != tid) {
                struct mslot *m = &g_mail[to][tid];
                if (!load_ptr(&m->p)) {
                    struct node *p;
                    if (below(&r, 2)) {
                        p = new_node(tid, &next_id);
                        if (p)
                            for (int j = 0; j < K; j++)
                                if (below(&r, 2))
                                    set_edge_private(st, p, j, pick(st, &r, 2));
                    } else {
                        p = pick(st, &r, 3);
                    }
                    if (p) {
                        __atomic_store_n(&m->id, p->id, __ATOMIC_RELAXED);
                        if (gc_barrier_active_)
                            st->writes_marking++;
                        GC_WRITE_ATOMIC(m->p, p, __ATOMIC_RELEASE);
                        st->sent++;
                    }
                }
            }
        } else if (what < 78) {   /* (f) gc_memcpy of an edge array */
            struct node *src = pick(st, &r, 3);
            if (!src)
                continue;
            struct edge tmp[K];   /* a consistent copy, on the stack */
            bool ok = true;
            for (int j = 0; j < K && ok; j++)
                ok = read_edge(tid, src, j, &tmp[j].to, &tmp[j].to_id);
            if (!ok)
                continue;
            if (below(&r, 2)) {   /* into a new node, then published */
                struct node *n = new_node(tid, &next_id);
                if (!n)
                    continue;
                gc_memcpy(n->e, tmp, sizeof tmp);
                for (int j = 0; j < K; j++)
                    if (n->e[j].to != tmp[j].to || n->e[j].to_id != tmp[j].to_id)
                        report(tid, "gc_memcpy into a new node", n, tmp[j].to_id,
                               n->e[j].to_id);
                node_and_edges_ok(tid, n, n->id, "memcpy copy");
                publish(st, below(&r, NSLOTS), n);
                st->copies++;
            } else {   /* over a live node's edges: their old targets must be kept */
                struct node *dst = pick(st, &r, 3);
                if (!dst || dst == src || !node_lock(tid, dst))
                    continue;
                if (gc_barrier_active_)
                    st->writes_marking++;
                gc_memcpy(dst->e, tmp, sizeof tmp);
                node_unlock(dst);
                st->copies_over++;
            }
        } else if (what < 82) {   /* (g) a private node: created, held a while, freed */
            if (!priv) {
                priv = new_node(tid, &next_id);
                if (priv)
                    for (int j = 0; j < K; j++)
                        set_edge_private(st, priv, j, pick(st, &r, 2));
            } else if (below(&r, 2)) {
                node_and_edges_ok(tid, priv, 0, "private node");
                if (gc_barrier_active_)
                    st->frees_marking++;
                gc_free(priv);
                priv = NULL;
                st->frees++;
            }
        } else if (what < 88) {   /* stack-only nodes: take one from a slot */
            size_t slot = below(&r, NSLOTS);
            struct node *n = load_ptr(&g_slots[slot]);
            if (!n || !node_ok(tid, n, 0, "stash take"))
                continue;
            int s = (int)below(&r, STASH);
            stash[s] = n;
            stash_id[s] = n->id;
            if (below(&r, 2)) {   /* its slot emptied: maybe only this stack has it now */
                if (gc_barrier_active_)
                    st->writes_marking++;
                GC_WRITE_ATOMIC(g_slots[slot], NULL, __ATOMIC_RELAXED);
            }
            st->stashed++;
        } else if (what < 96) {   /* verify the stack-only nodes */
            for (int s = 0; s < STASH; s++)
                if (stash[s])
                    node_and_edges_ok(tid, stash[s], stash_id[s], "stash");
        } else {   /* publish a stack-only node again */
            int s = (int)below(&r, STASH);
            if (stash[s]) {
                if (node_ok(tid, stash[s], stash_id[s], "stash publish"))
                    publish(st, below(&r, NSLOTS), stash[s]);
                stash[s] = NULL;
                stash_id[s] = 0;
            }
        }
    }
    /* Leave the stack-held nodes somewhere reachable for the final check. */
    for (int s = 0; s < STASH; s++)
        if (stash[s] && node_ok(tid, stash[s], stash_id[s], "stash final"))
            publish(st, below(&r, NSLOTS), stash[s]);
    if (priv) {
        node_and_edges_ok(tid, priv, 0, "private node at exit");
        gc_free(priv);
    }
    return NULL;
}

/* The shared graph: slots half full, empty mailboxes. */
static void graph_setup(int nthreads)
{
    struct rng r = {mix(seed ^ 0xabcdef) | 1};
    uint64_t next_id = (uint64_t)0xff << 48;
    g_nthreads = nthreads;
    g_slots = gc_malloc(NSLOTS * sizeof *g_slots);
    ck_assert_ptr_nonnull(g_slots);
    for (int t = 0; t < MAX_THREADS; t++) {
        g_mail[t] = gc_malloc(MAX_THREADS * sizeof(struct mslot));
        ck_assert_ptr_nonnull(g_mail[t]);
    }
    struct gstats st = {.tid = -1};
    for (size_t i = 0; i < NSLOTS; i += 2) {
        struct node *n = new_node(-1, &next_id);
        must_msg(n != NULL, "seed %" PRIu64 ": gc_malloc failed", seed);
        for (int j = 0; j < K; j++)
            if (below(&r, 2))
                set_edge_private(&st, n, j, pick(&st, &r, 1));
        publish(&st, i, n);
    }
}

/* ---- the final check: everything reachable from the slots and mailboxes ------------ */

struct seen {
    uintptr_t *v;
    size_t cap, n;
};

static bool seen_add(struct seen *s, uintptr_t p)
{
    if ((s->n + 1) * 2 > s->cap) {
        struct seen b = {calloc(s->cap ? s->cap * 2 : 1 << 16, sizeof(uintptr_t)),
                         s->cap ? s->cap * 2 : 1 << 16, 0};
        ck_assert_ptr_nonnull(b.v);
        for (size_t i = 0; i < s->cap; i++)
            if (s->v[i])
                seen_add(&b, s->v[i]);
        free(s->v);
        *s = b;
    }
    size_t i = (size_t)mix(p) & (s->cap - 1);
    while (s->v[i]) {
        if (s->v[i] == p)
            return false;
        i = (i + 1) & (s->cap - 1);
    }
    s->v[i] = p;
    s->n++;
    return true;
}

/* Returns the number of distinct nodes reached; errors are reported. */
static size_t graph_verify_all(void)
{
    struct seen seen = {NULL, 0, 0};
    size_t qcap = 1 << 16, qn = 0;
    struct node **q = malloc(qcap * sizeof *q);   /* nothing allocates while it is used */
    ck_assert_ptr_nonnull(q);
#define VISIT(p)                                                                           \
    do {                                                                                   \
        if (seen_add(&seen, (uintptr_t)(p))) {                                            \
            if (qn == qcap) {                                                              \
                qcap *= 2;                                                                 \
                q = realloc(q, qcap * sizeof *q);                                          \
                ck_assert_ptr_nonnull(q);                                                  \
            }                                                                              \
            q[qn++] = (p);                                                                 \
        }                                                                                  \
    } while (0)
    for (size_t i = 0; i < NSLOTS; i++) {
        struct node *n = g_slots[i];
        if (n && node_ok(-1, n, 0, "final: slot"))
            VISIT(n);
    }
    for (int t = 0; t < MAX_THREADS; t++)
        for (int f = 0; f < MAX_THREADS; f++) {
            struct node *n = g_mail[t][f].p;
            if (n && node_ok(-1, n, g_mail[t][f].id, "final: mailbox"))
                VISIT(n);
        }
    while (qn > 0) {
        struct node *n = q[--qn];
        if (n->seq & 1)
            report(-1, "final: node left locked", n, n->seq & ~(uint64_t)1, n->seq);
        for (int j = 0; j < K; j++) {
            struct node *t = edge_ok(-1, n, j, "final: edge");
            if (t)
                VISIT(t);
        }
    }
#undef VISIT
    free(q);
    free(seen.v);
    return seen.n;
}

static void print_cycles(const char *test, const struct gc_memstats *a,
                         const struct gc_memstats *b, uint64_t ns)
{
    fprintf(stderr,
            "test_concurrent: %s: %.2f s, %u cycles (%u forced), hook saw %" PRIu64
            " (%" PRIu64 " on the collector thread), pauses %.3f ms total, max %.3f ms\n",
            test, ns / 1e9, b->num_gc - a->num_gc, b->num_forced_gc - a->num_forced_gc,
            __atomic_load_n(&hook_cycles, __ATOMIC_RELAXED),
            __atomic_load_n(&hook_on_collector, __ATOMIC_RELAXED),
            (b->pause_total_ns - a->pause_total_ns) / 1e6,
            __atomic_load_n(&hook_max_pause_ns, __ATOMIC_RELAXED) / 1e6);
}

START_TEST(graph_stress)
{
    gc_set_percent(10);
    hook_reset();
    graph_setup(MAX_THREADS);
    struct gc_memstats before, after;
    gc_read_memstats(&before);
    uint64_t t0 = now_ns();
    pthread_t th[MAX_THREADS];
    for (int t = 0; t < MAX_THREADS; t++) {
        memset(&gstats[t], 0, sizeof gstats[t]);
        gstats[t].tid = t;
        gstats[t].ops = scaled(GRAPH_OPS);
        ck_assert_int_eq(gc_thread_create(&th[t], NULL, graph_worker, &gstats[t]), 0);
    }
    for (int t = 0; t < MAX_THREADS; t++)
        pthread_join(th[t], NULL);
    uint64_t ns = now_ns() - t0;
    gc_read_memstats(&after);
    print_cycles("graph", &before, &after, ns);
    struct gstats sum = {0};
    for (int t = 0; t < MAX_THREADS; t++) {
        sum.allocs += gstats[t].allocs;
        sum.links += gstats[t].links;
        sum.walk_steps += gstats[t].walk_steps;
        sum.sent += gstats[t].sent;
        sum.received += gstats[t].received;
        sum.copies += gstats[t].copies;
        sum.copies_over += gstats[t].copies_over;
        sum.frees += gstats[t].frees;
        sum.frees_marking += gstats[t].frees_marking;
        sum.stashed += gstats[t].stashed;
        sum.writes_marking += gstats[t].writes_marking;
    }
    fprintf(stderr,
            "test_concurrent: graph: %" PRIu64 " nodes allocated, %" PRIu64 " relinks, %" PRIu64
            " walk steps, %" PRIu64 "/%" PRIu64 " mailed/received, %" PRIu64 "+%" PRIu64
            " gc_memcpy, %" PRIu64 " gc_free (%" PRIu64 " while marking), %" PRIu64
            " stashed, %" PRIu64 " pointer stores while marking\n",
            sum.allocs, sum.links, sum.walk_steps, sum.sent, sum.received, sum.copies,
            sum.copies_over, sum.frees, sum.frees_marking, sum.stashed, sum.writes_marking);

    must_msg(nerrors() == 0, "seed %" PRIu64 ": %" PRIu64 " verification errors (see stderr)",
             seed, nerrors());
    uint32_t cycles = after.num_gc - before.num_gc;
    uint32_t want = scale >= 1.0 ? MIN_CYCLES : (uint32_t)(MIN_CYCLES * scale) + 1;
    must_msg(cycles >= want,
             "seed %" PRIu64 ": only %u cycles ran during the graph stress (want %u)", seed,
             cycles, want);
    must_msg(__atomic_load_n(&hook_on_collector, __ATOMIC_RELAXED) > 0,
             "seed %" PRIu64 ": no cycle ran on the collector thread: is gcconcurrent on?", seed);
    must_msg(sum.writes_marking > 0,
             "seed %" PRIu64 ": no pointer store happened while a mark ran", seed);

    gc_collect();
    size_t reached = graph_verify_all();
    struct gc_memstats end;
    gc_read_memstats(&end);
    fprintf(stderr, "test_concurrent: graph: %zu nodes reachable at the end, %" PRIu64
            " heap objects\n", reached, end.heap_objects);
    must_msg(nerrors() == 0, "seed %" PRIu64 ": %" PRIu64 " errors in the final walk", seed,
             nerrors());
    must_msg(reached > 0, "seed %" PRIu64 ": nothing reachable at the end", seed);
    must_msg(end.heap_objects >= reached,
             "seed %" PRIu64 ": %" PRIu64 " heap objects but %zu nodes reachable", seed,
             end.heap_objects, reached);
    gc_set_cycle_hook(NULL, NULL);
}
END_TEST

/* ======================================================================================
 * large objects
 * ====================================================================================== */

struct leaf {
    uint64_t id, check, pad[2];
};

struct lent {
    struct leaf *p;
    uint64_t id;
};

struct big {
    uint64_t id, check;
    uint64_t n;               /* entries */
    struct big *next;
    uint64_t next_id;
    struct lent e[];
};

#define LARGE_THREADS 2
#define LIST_MAX 6
#define LEAVES 32

static struct big *g_big_head[LARGE_THREADS];   /* roots */

struct lstats {
    int tid;
    uint64_t ops, made, copied, overwritten, freed, verified_entries;
};
static struct lstats lstats[LARGE_THREADS];

static bool big_ok(int tid, const struct big *b, uint64_t expect_id, bool entries,
                   uint64_t *checked)
{
    if (!ids_ok(tid, b, &b->id, &b->check, expect_id, "large object"))
        return false;
    size_t size = gc_size(b);
    if (b->n == 0 || sizeof *b + b->n * sizeof b->e[0] > size) {
        report(tid, "large object: entry count past its size", b, size, b->n);
        return false;
    }
    if (!entries)
        return true;
    for (uint64_t i = 0; i < b->n; i++) {
        const struct lent *e = &b->e[i];
        if (!e->p) {
            report(tid, "large object: empty entry", b, e->id, 0);
            return false;
        }
        if (e->p->id != e->id || e->p->check != check_of(e->p->id)) {
            char what[96];
            snprintf(what, sizeof what, "large object %#" PRIx64 " entry %" PRIu64 " -> leaf %p",
                     b->id, i, (void *)e->p);
            report(tid, what, b, e->id, e->p->id);
            return false;
        }
    }
    if (checked)
        *checked += b->n;
    return true;
}

static struct leaf *new_leaf(int tid, uint64_t *next_id)
{
    struct leaf *l = gc_malloc_atomic(sizeof *l);
    if (!l) {
        report(tid, "gc_malloc_atomic(leaf) failed", NULL, 1, 0);
        return NULL;
    }
    l->id = ++*next_id;
    l->check = check_of(l->id);
    return l;
}

static struct big *new_big(int tid, struct rng *r, uint64_t *next_id)
{
    size_t size = (40 + below(r, 161)) * 1024;   /* 40-200 KiB */
    struct big *b = gc_malloc(size);
    if (!b) {
        report(tid, "gc_malloc(large) failed", NULL, size, 0);
        return NULL;
    }
    if (b->id || b->n || b->next) {
        report(tid, "new large object not zeroed", b, 0, b->id | b->n);
        return NULL;
    }
    b->id = ++*next_id;
    b->check = check_of(b->id);
    b->n = (size - sizeof *b) / sizeof b->e[0];
    return b;
}

/* Fill [from, to) of b with leaves, LEAVES fresh ones shared round robin. */
static void fill(int tid, struct big *b, uint64_t from, uint64_t to, uint64_t *next_id)
{
    struct leaf *leaves[LEAVES];   /* on the stack */
    for (int i = 0; i < LEAVES; i++)
        if (!(leaves[i] = new_leaf(tid, next_id)))
            return;
    for (uint64_t i = from; i < to; i++) {
        struct leaf *l = leaves[i % LEAVES];
        GC_WRITE(b->e[i].p, l);
        b->e[i].id = l->id;
    }
}

static void *large_worker(void *arg)
{
    struct lstats *st = arg;
    const int tid = st->tid;
    char name[16];
    snprintf(name, sizeof name, "large-%d", tid);
    pthread_setname_np(pthread_self(), name);
    struct rng r = {mix(seed ^ ((uint64_t)(tid + 101) * 0x9e3779b97f4a7c15u)) | 1};
    uint64_t next_id = (uint64_t)(tid + 16) << 48;
    struct big *held = NULL;   /* one on the stack only */
    uint64_t held_id = 0;

    for (uint64_t op = 0; op < st->ops; op++) {
        unsigned what = (unsigned)below(&r, 100);
        struct big *head = g_big_head[tid];
        if (what < 45) {   /* a new one at the head, partly copied from another */
            struct big *b = new_big(tid, &r, &next_id);
            if (!b)
                continue;
            uint64_t done = 0;
            struct big *src = head;
            for (uint64_t k = below(&r, LIST_MAX); src && k > 0; k--)
                src = src->next;
            if (src && below(&r, 2)) {
                uint64_t cnt = below(&r, (b->n < src->n ? b->n : src->n) + 1);
                gc_memcpy(b->e, src->e, cnt * sizeof b->e[0]);
                done = cnt;
                st->copied++;
            }
            fill(tid, b, done, b->n, &next_id);
            GC_WRITE(b->next, head);
            b->next_id = head ? head->id : 0;
            big_ok(tid, b, b->id, true, &st->verified_entries);
            GC_WRITE(g_big_head[tid], b);
            st->made++;
        } else if (what < 55) {   /* trim the list */
            struct big *b = head;
            for (int k = 1; b && k < LIST_MAX; k++)
                b = b->next;
            if (b) {
                GC_WRITE(b->next, NULL);
                b->next_id = 0;
            }
        } else if (what < 70) {   /* overwrite a range of a listed one */
            struct big *b = head;
            for (uint64_t k = below(&r, LIST_MAX); b && k > 0; k--)
                b = b->next;
            if (!b)
                continue;
            uint64_t from = below(&r, b->n), to = from + below(&r, b->n - from) + 1;
            if (below(&r, 2)) {
                fill(tid, b, from, to, &next_id);
            } else if (head != b && to - from <= head->n) {   /* from the head, by bulk copy */
                gc_memcpy(&b->e[from], head->e, (to - from) * sizeof b->e[0]);
            }
            st->overwritten++;
        } else if (what < 90) {   /* verify the whole list */
            uint64_t expect = head ? head->id : 0;
            for (struct big *b = head; b; b = b->next) {
                if (!big_ok(tid, b, expect, true, &st->verified_entries))
                    break;
                expect = b->next_id;
                if (!b->next && b->next_id)
                    report(tid, "large list: next_id without next", b, 0, b->next_id);
            }
            if (held)
                big_ok(tid, held, held_id, true, &st->verified_entries);
        } else if (what < 95) {   /* one held on the stack only, for a while */
            if (held && !big_ok(tid, held, held_id, true, &st->verified_entries))
                held = NULL;
            held = new_big(tid, &r, &next_id);
            if (held) {
                fill(tid, held, 0, held->n, &next_id);
                held_id = held->id;
            }
        } else {   /* a private one, freed (possibly during the mark) */
            struct big *b = new_big(tid, &r, &next_id);
            if (!b)
                continue;
            fill(tid, b, 0, b->n, &next_id);
            big_ok(tid, b, b->id, true, &st->verified_entries);
            gc_free(b);
            st->freed++;
        }
    }
    return NULL;
}

START_TEST(large_objects)
{
    gc_set_percent(10);
    hook_reset();
    struct gc_memstats before, after;
    gc_read_memstats(&before);
    uint64_t t0 = now_ns();
    pthread_t th[LARGE_THREADS];
    for (int t = 0; t < LARGE_THREADS; t++) {
        memset(&lstats[t], 0, sizeof lstats[t]);
        lstats[t].tid = t;
        lstats[t].ops = scaled(LARGE_OPS);
        g_big_head[t] = NULL;
        ck_assert_int_eq(gc_thread_create(&th[t], NULL, large_worker, &lstats[t]), 0);
    }
    for (int t = 0; t < LARGE_THREADS; t++)
        pthread_join(th[t], NULL);
    uint64_t ns = now_ns() - t0;
    gc_read_memstats(&after);
    print_cycles("large", &before, &after, ns);
    uint64_t made = 0, copied = 0, over = 0, freed = 0, entries = 0;
    for (int t = 0; t < LARGE_THREADS; t++) {
        made += lstats[t].made;
        copied += lstats[t].copied;
        over += lstats[t].overwritten;
        freed += lstats[t].freed;
        entries += lstats[t].verified_entries;
    }
    fprintf(stderr, "test_concurrent: large: %" PRIu64 " objects linked (%" PRIu64
            " partly gc_memcpy'd), %" PRIu64 " overwritten, %" PRIu64 " gc_free'd, %" PRIu64
            " entries verified\n", made, copied, over, freed, entries);
    must_msg(nerrors() == 0, "seed %" PRIu64 ": %" PRIu64 " verification errors (see stderr)",
             seed, nerrors());
    must_msg(__atomic_load_n(&hook_on_collector, __ATOMIC_RELAXED) > 0, "seed %" PRIu64 ": no concurrent cycle ran", seed);

    gc_collect();
    for (int t = 0; t < LARGE_THREADS; t++) {
        uint64_t expect = g_big_head[t] ? g_big_head[t]->id : 0;
        for (struct big *b = g_big_head[t]; b; b = b->next) {
            if (!big_ok(-1, b, expect, true, NULL))
                break;
            expect = b->next_id;
        }
    }
    must_msg(nerrors() == 0, "seed %" PRIu64 ": %" PRIu64 " errors in the final check", seed,
             nerrors());
    gc_set_cycle_hook(NULL, NULL);
}
END_TEST

/* ======================================================================================
 * gc_collect from two threads while two others mutate
 * ====================================================================================== */

struct cstats {
    int index;
    uint64_t calls, bad;
    uint32_t bad_before, bad_after;
};
static struct cstats cstats[2];

static void *collector_thread(void *arg)
{
    struct cstats *c = arg;
    char name[16];
    snprintf(name, sizeof name, "collect-%d", c->index);
    pthread_setname_np(pthread_self(), name);
    uint64_t calls = scaled(COLLECT_CALLS);
    struct gc_memstats m;
    for (uint64_t i = 0; i < calls; i++) {
        gc_read_memstats(&m);
        uint32_t before = m.num_gc;
        gc_collect();
        gc_read_memstats(&m);
        if (m.num_gc < before + 1 && !c->bad++) {   /* must wait for a whole new cycle */
            c->bad_before = before;
            c->bad_after = m.num_gc;
        }
        c->calls++;
        if (i % 8 == 7)
            usleep(200);
    }
    return NULL;
}

START_TEST(concurrent_collect)
{
    gc_set_percent(10);
    hook_reset();
    graph_setup(2);
    struct gc_memstats before, after;
    gc_read_memstats(&before);
    uint64_t t0 = now_ns();
    pthread_t mut[2], col[2];
    for (int t = 0; t < 2; t++) {
        memset(&gstats[t], 0, sizeof gstats[t]);
        gstats[t].tid = t;
        gstats[t].ops = scaled(COLLECT_MUTATOR_OPS);
        ck_assert_int_eq(gc_thread_create(&mut[t], NULL, graph_worker, &gstats[t]), 0);
    }
    for (int t = 0; t < 2; t++) {
        memset(&cstats[t], 0, sizeof cstats[t]);
        cstats[t].index = t;
        ck_assert_int_eq(gc_thread_create(&col[t], NULL, collector_thread, &cstats[t]), 0);
    }
    for (int t = 0; t < 2; t++)
        pthread_join(col[t], NULL);
    for (int t = 0; t < 2; t++)
        pthread_join(mut[t], NULL);
    uint64_t ns = now_ns() - t0;
    gc_read_memstats(&after);
    print_cycles("collect", &before, &after, ns);
    uint64_t calls = cstats[0].calls + cstats[1].calls;
    for (int t = 0; t < 2; t++)
        must_msg(cstats[t].bad == 0,
                 "seed %" PRIu64 ": gc_collect on thread %d returned %" PRIu64
                 " times before a new cycle ended (num_gc %u -> %u)",
                 seed, t, cstats[t].bad, cstats[t].bad_before, cstats[t].bad_after);
    must_msg(after.num_forced_gc - before.num_forced_gc >= calls,
             "seed %" PRIu64 ": %" PRIu64 " gc_collect calls but %u forced cycles", seed, calls,
             after.num_forced_gc - before.num_forced_gc);
    must_msg(nerrors() == 0, "seed %" PRIu64 ": %" PRIu64 " verification errors (see stderr)",
             seed, nerrors());
    must_msg(__atomic_load_n(&hook_on_collector, __ATOMIC_RELAXED) > 0, "seed %" PRIu64 ": no concurrent cycle ran", seed);
    gc_collect();
    size_t reached = graph_verify_all();
    must_msg(nerrors() == 0, "seed %" PRIu64 ": %" PRIu64 " errors in the final walk", seed,
             nerrors());
    must_msg(reached > 0, "seed %" PRIu64 ": nothing reachable at the end", seed);
    gc_set_cycle_hook(NULL, NULL);
}
END_TEST

/* ======================================================================================
 * a thread that exits while a mark runs
 * ====================================================================================== */

/* The write barrier buffers the values it shades per thread (gc/barrier.c) until the
 * buffer fills or mark termination flushes every registered thread's.  A thread that
 * exits (or unregisters) while marking runs must not take its buffer with it.  Set up:
 * X hangs from the tail of a 1M-node chain (at scale 1), so the marker reaches it late; a thread
 * knows the tail through a hidden (XOR'd) pointer, waits for marking to begin, moves X
 * into a node it allocates (black) with GC_WRITE, unlinks it from the tail with
 * GC_WRITE, and exits.  Only its barrier buffer says that X must be marked. */

#define CHAIN_LEN (1u << 20)   /* at scale 1; at least 64Ki */
#define HIDE ((uintptr_t)0x5a5a5a5a5a5a5a5au)

struct chain {
    struct chain *next;
    void *p;
};

static struct chain *volatile g_chain;   /* root of the chain (volatile: only written) */
static uintptr_t g_hidden_tail;      /* the tail, hidden from the conservative scan */
static struct chain *g_moved;        /* the exiting thread's black node, holding X */
static uint64_t g_x_id;
static volatile int exit_saw_mark, exit_still_marking;
static unsigned chain_len;

static unsigned chain_length(void)
{
    uint64_t n = scaled(CHAIN_LEN);
    return n < (1u << 16) ? 1u << 16 : (unsigned)n;
}

/* Builds the chain; with arg non-NULL, hangs a new X (id g_x_id) from the tail.  On a
 * thread of its own, so no stack that is scanned later holds X or the tail. */
static void *chain_builder(void *arg)
{
    if (!g_chain) {
        struct chain *head = gc_malloc(sizeof *head), *tail = head;
        must_msg(head != NULL, "gc_malloc failed");
        for (unsigned i = 1; i < chain_len; i++) {
            struct chain *c = gc_malloc(sizeof *c);
            must_msg(c != NULL, "gc_malloc failed");
            GC_WRITE(tail->next, c);
            tail = c;
        }
        g_chain = head;
        g_hidden_tail = (uintptr_t)tail ^ HIDE;
    }
    if (arg) {
        struct chain *tail = (struct chain *)(g_hidden_tail ^ HIDE);
        uint64_t *x = gc_malloc(2 * sizeof *x);
        must_msg(x != NULL, "gc_malloc failed");
        x[0] = g_x_id;
        x[1] = check_of(g_x_id);
        GC_WRITE(tail->p, x);
    }
    return NULL;
}

static void *exit_during_mark_thread(void *arg)
{
    (void)arg;
    uint64_t t0 = now_ns();
    while (!gc_barrier_active_)
        if (now_ns() - t0 > 5000000000u)
            return NULL;
    exit_saw_mark = 1;
    struct chain *tail = (struct chain *)(g_hidden_tail ^ HIDE);
    struct chain *b = gc_malloc(sizeof *b);   /* allocated black: never scanned */
    if (!b)
        return NULL;
    void *x = tail->p;
    GC_WRITE(b->p, x);          /* buffered: new value x */
    GC_WRITE(tail->p, NULL);    /* buffered: old value x */
    g_moved = b;                /* a global: no barrier needed */
    exit_still_marking = gc_barrier_active_;
    return NULL;                /* the thread unregisters with x still in its buffer */
}

START_TEST(exit_during_mark)
{
    int conclusive = 0;
    gc_set_percent(100);
    chain_len = chain_length();
    g_chain = NULL;
    for (int attempt = 0; attempt < 3; attempt++) {
        g_moved = NULL;
        g_x_id = ((uint64_t)0xe7 << 48) + (uint64_t)attempt + 1;
        exit_saw_mark = exit_still_marking = 0;
        pthread_t t;
        ck_assert_int_eq(gc_thread_create(&t, NULL, chain_builder, &t), 0);
        pthread_join(t, NULL);
        ck_assert_int_eq(gc_thread_create(&t, NULL, exit_during_mark_thread, NULL), 0);
        usleep(2000);
        gc_collect();   /* a cycle begins (if none is under way): the thread acts in it */
        pthread_join(t, NULL);
        gc_collect();   /* and one more, after the thread is gone */
        if (!exit_saw_mark || !g_moved)
            continue;
        conclusive += exit_still_marking;
        const uint64_t *x = g_moved->p;
        must_msg(x != NULL, "seed %" PRIu64 ": the moved pointer is gone", seed);
        if (gc_base(x) != x || x[0] != g_x_id || x[1] != check_of(g_x_id)) {
            report(-1, "exit during mark: object moved by an exiting thread is not "
                       "allocated any more (gc_base)", x, (uint64_t)(uintptr_t)x,
                   (uint64_t)(uintptr_t)gc_base(x));
            report(-1, "exit during mark: its id", x, g_x_id, x[0]);
        }
        must_msg(nerrors() == 0,
                 "seed %" PRIu64 ": attempt %d: an object stored with GC_WRITE by a thread that "
                 "exited during the mark was freed while reachable (%p, gc_base %p, id %#" PRIx64
                 " expected %#" PRIx64 "): the thread's barrier buffer was lost at exit",
                 seed, attempt, (const void *)x, gc_base(x), x[0], g_x_id);
    }
    fprintf(stderr, "test_concurrent: exit during mark: %d conclusive attempts of 3\n",
            conclusive);
    g_chain = NULL;
    g_moved = NULL;
}
END_TEST

#if !GC_TSAN   /* (see concurrent_suite) */
/* ======================================================================================
 * fork while a mark runs
 * ====================================================================================== */

/* fork() from a mutator while the collector thread marks: the child inherits the heap
 * with the mark half done (mark bits set, the barrier flag on, objects allocated
 * black) but not the collector thread nor its grey work.  Its next collection must
 * still keep everything reachable: here, the 1M-node chain hanging from a global. */

static void *collect_once(void *arg)
{
    (void)arg;
    gc_collect();
    return NULL;
}

/* Nodes of the chain that are intact and allocated, from its head. */
static unsigned chain_count(unsigned *bad_index, const void **bad_node)
{
    unsigned n = 0;
    for (struct chain *c = g_chain; c; c = c->next, n++)
        if (gc_base(c) != c) {
            *bad_index = n;
            *bad_node = c;
            return n;
        }
    return n;
}

START_TEST(fork_during_mark)
{
    gc_set_percent(100);
    g_chain = NULL;
    chain_len = chain_length();
    pthread_t t;
    ck_assert_int_eq(gc_thread_create(&t, NULL, chain_builder, NULL), 0);
    pthread_join(t, NULL);
    unsigned bad = 0;
    const void *badp = NULL;
    ck_assert_uint_eq(chain_count(&bad, &badp), chain_len);
    ck_assert_int_eq(gc_thread_create(&t, NULL, collect_once, NULL), 0);
    uint64_t t0 = now_ns();
    while (!gc_barrier_active_ && now_ns() - t0 < 5000000000u)
        ;
    usleep(1000);   /* part of the chain marked, the rest not yet */
    int marking = gc_barrier_active_;
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        gc_collect();
        unsigned n = chain_count(&bad, &badp);
        unsigned bad1 = bad;
        const void *badp1 = badp;
        for (int i = 0; i < 200000; i++) {   /* reuse whatever was freed */
            uint64_t *g = gc_malloc(2 * sizeof *g);
            if (g)
                g[0] = ~(uint64_t)0;
        }
        unsigned m = chain_count(&bad, &badp);
        if (n != chain_len || m != chain_len)
            fprintf(stderr,
                    "test_concurrent: seed %" PRIu64 ": forked child (marking was %s at the "
                    "fork): the first %u of %u chain nodes are allocated after gc_collect "
                    "(node %u, %p, is not), %u after reusing freed memory\n",
                    seed, marking ? "on" : "off", n, chain_len, bad1, badp1, m);
        _exit(n == chain_len && m == chain_len ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    pthread_join(t, NULL);
    must_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
             "seed %" PRIu64 ": a child forked while marking %s lost part of a reachable "
             "list in its first collection (exit status %#x, see stderr)",
             seed, marking ? "ran" : "(had just ended)", status);
    ck_assert_uint_eq(chain_count(&bad, &badp), chain_len);   /* the parent's is intact */
    fprintf(stderr, "test_concurrent: fork during mark: marking was %s at the fork\n",
            marking ? "on" : "off (inconclusive)");
    g_chain = NULL;
}
END_TEST
#endif /* !GC_TSAN */

static Suite *concurrent_suite(void)
{
    /* One case per test (CK_RUN_CASE selects one).  Generous timeouts: the debug
     * verifier and the sanitizers make it several times slower. */
    const struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"graph", graph_stress},
        {"large", large_objects},
        {"collect", concurrent_collect},
        {"exit", exit_during_mark},
#if !GC_TSAN   /* TSan does not support a forked child that starts threads */
        {"fork", fork_during_mark},
#endif
    };
    Suite *s = suite_create("concurrent");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 300);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

/* GCDEBUG as found, plus gcconcurrent=1,gcstoptheworld=0 (a later item overrides an
 * earlier one): this test marks concurrently in every run of the suite. */
static void set_gcdebug(void)
{
    const char *old = getenv("GCDEBUG");
    const char *add = "gcconcurrent=1,gcstoptheworld=0";
    size_t n = (old ? strlen(old) : 0) + strlen(add) + 2;
    char *v = malloc(n);
    if (!v)
        abort();
    if (old && *old)
        snprintf(v, n, "%s,%s", old, add);
    else
        snprintf(v, n, "%s", add);
    setenv("GCDEBUG", v, 1);
    free(v);
}

int main(void)
{
    const char *s = getenv("TRICOLOR_SEED");
    seed = s && *s ? strtoull(s, NULL, 0) : mix((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
    const char *sc = getenv("TRICOLOR_STRESS_SCALE");
    if (sc && *sc) {
        scale = strtod(sc, NULL);
        if (!(scale > 0))
            scale = 1.0;
    } else if (GC_DEBUG_BUILD) {
        scale = 0.5;
    }
    set_gcdebug();
    unsetenv("GCPERCENT");
    fprintf(stderr, "test_concurrent: seed %" PRIu64 " (TRICOLOR_SEED=%" PRIu64
            " to repeat), scale %g, GCDEBUG=%s\n", seed, seed, scale, getenv("GCDEBUG"));
    gc_init();
    SRunner *sr = srunner_create(concurrent_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
