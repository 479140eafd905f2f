/* test_threads.c - several threads allocate, link and exchange structures while
 * stop-the-world cycles run (GCPERCENT 20), with every way a thread can join the heap.
 *
 * Whole-program test against the public library:
 *  - 4 workers from gc_thread_create build lists whose nodes carry an id, a check value
 *    derived from it and a noscan payload, pass lists to each other through a global
 *    mailbox under a mutex, verify what they receive, keep some and drop the rest;
 *  - a thread created with pthread_create registers by hand (gc_register_thread),
 *    builds and keeps lists, and unregisters (gc_unregister_thread) before it exits;
 *  - plain pthreads that never register call gc_malloc (auto-registration), leave a
 *    list in a global, and exit without unregistering, over and over while the others
 *    run; the cycles after they are gone must not crash;
 *  - the main thread forces cycles meanwhile.
 * At the end every kept list, every list left in the mailbox and every orphan list is
 * verified: zero corruption allowed.
 */
#define _GNU_SOURCE
#include <tricolor.h>

#include <check.h>
#include "testutil.h"
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#define NWORKERS 4
#define ROUNDS 6000
#define MAILBOX 16
#define KEEP 48
#define NORPHANS 200
#define HAND_KEEP 32
#define LIST_MAGIC 0x4c495354u


/* ---- lists ---------------------------------------------------------------------------- */

struct node {
    struct node *next;
    uint64_t id, check;
    uint32_t *payload;    /* noscan: payload[i] = (uint32_t)(check + i); some large */
    uint32_t plen;
};

struct list {
    uint64_t magic;
    uint64_t first_id, len, owner;
    struct node *head;
};

static struct list *list_build(uint64_t owner, uint64_t first_id, uint64_t len, struct rng *r)
{
    struct list *l = gc_malloc(sizeof *l);
    if (!l)
        return NULL;
    l->magic = LIST_MAGIC;
    l->first_id = first_id;
    l->len = len;
    l->owner = owner;
    /* Built back to front so the list reads first_id, first_id + 1, ... */
    for (uint64_t i = len; i-- > 0;) {
        struct node *n = gc_malloc(sizeof *n);
        if (!n)
            return NULL;
        n->id = first_id + i;
        n->check = mix(n->id);
        /* One list in 8 carries a large (> 32 KiB) payload on its first node. */
        n->plen = i == 0 && first_id % 8 == 3 ? 9000 + (uint32_t)(rnd(r) % 3000)
                                               : 1 + (uint32_t)(rnd(r) % 24);
        n->payload = gc_malloc_atomic(n->plen * sizeof(uint32_t));
        if (!n->payload)
            return NULL;
        for (uint32_t k = 0; k < n->plen; k++)
            n->payload[k] = (uint32_t)(n->check + k);
        n->next = l->head;
        GC_WRITE(l->head, n);
        /* Garbage between the nodes, so live and dead objects interleave in spans. */
        char *g = gc_malloc(16 + rnd(r) % 200);
        if (!g)
            return NULL;
        g[0] = 1;
    }
    return l;
}

/* 0 if the list is intact, else a nonzero code. */
static int list_verify(const struct list *l)
{
    if (!l)
        return 1;
    if (l->magic != LIST_MAGIC)
        return 2;
    uint64_t i = 0;
    for (const struct node *n = l->head; n; n = n->next, i++) {
        if (i >= l->len)
            return 3;
        if (n->id != l->first_id + i || n->check != mix(n->id))
            return 4;
        if (!n->payload || n->plen == 0 || n->plen > 12000 ||
            gc_size(n->payload) < n->plen * sizeof(uint32_t))
            return 5;
        for (uint32_t k = 0; k < n->plen; k++)
            if (n->payload[k] != (uint32_t)(n->check + k))
                return 6;
    }
    return i == l->len ? 0 : 7;
}

/* ---- shared state (globals are roots) -------------------------------------------------- */

static pthread_mutex_t mbox_lock = PTHREAD_MUTEX_INITIALIZER;
static struct list *mailbox[MAILBOX];

struct worker {
    int index;
    struct list **kept;       /* gc_malloc'd, KEEP entries */
    long built, sent, received, errors, verified;
    int first_error;
};
static struct worker workers[NWORKERS];

static pthread_mutex_t orphan_lock = PTHREAD_MUTEX_INITIALIZER;
static struct list *orphans[NORPHANS];
static int norphans;
static long orphan_errors;

static struct list *hand_kept[HAND_KEEP];
static long hand_errors;
static int hand_rc_register = -1, hand_rc_unregister = -1;


static void record_error(struct worker *w, int code)
{
    if (code && !w->errors)
        w->first_error = code;
    w->errors += code != 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct rng r = {mix((uint64_t)w->index + 17)};
    w->kept = gc_malloc(KEEP * sizeof *w->kept);
    if (!w->kept) {
        w->errors++;
        return NULL;
    }
    uint64_t next_id = (uint64_t)(w->index + 1) << 40;
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t len = 5 + rnd(&r) % 60;
        struct list *l = list_build((uint64_t)w->index, next_id, len, &r);
        next_id += len;
        if (!l) {
            w->errors++;
            break;
        }
        w->built++;
        struct list *got = NULL;
        pthread_mutex_lock(&mbox_lock);
        int slot = (int)(rnd(&r) % MAILBOX);
        if (!mailbox[slot] && (round & 1)) {
            mailbox[slot] = l;
            l = NULL;
            w->sent++;
        } else if (mailbox[slot] && mailbox[slot]->owner != (uint64_t)w->index) {
            got = mailbox[slot];
            mailbox[slot] = NULL;
        }
        pthread_mutex_unlock(&mbox_lock);
        if (got) {
            record_error(w, list_verify(got));
            w->received++;
            GC_WRITE(w->kept[rnd(&r) % KEEP], got);
        }
        if (l && rnd(&r) % 3 == 0)
            GC_WRITE(w->kept[rnd(&r) % KEEP], l);   /* else: l is garbage now */
        if (round % 100 == 99) {
            for (int k = 0; k < KEEP; k++)
                if (w->kept[k]) {
                    record_error(w, list_verify(w->kept[k]));
                    w->verified++;
                }
        }
    }
    return NULL;
}

/* A thread the host created and registers itself. */
static void *hand_main(void *arg)
{
    (void)arg;
    hand_rc_register = gc_register_thread();
    struct rng r = {12345};
    uint64_t next_id = (uint64_t)99 << 40;
    for (int round = 0; round < 400; round++) {
        uint64_t len = 3 + rnd(&r) % 40;
        struct list *l = list_build(99, next_id, len, &r);
        next_id += len;
        if (!l) {
            hand_errors++;
            break;
        }
        hand_kept[rnd(&r) % HAND_KEEP] = l;   /* a global: no barrier needed */
        if (round % 50 == 0)
            gc_collect();   /* collections from this thread too */
    }
    for (int k = 0; k < HAND_KEEP; k++)
        if (hand_kept[k] && list_verify(hand_kept[k]))
            hand_errors++;
    hand_rc_unregister = gc_unregister_thread();
    return NULL;
}

/* A plain thread: first gc_malloc registers it; it exits without unregistering. */
static void *orphan_main(void *arg)
{
    uint64_t k = (uint64_t)(uintptr_t)arg;
    struct rng r = {mix(k + 1000)};
    struct list *l = list_build(1000 + k, (1000 + k) << 40, 20 + k % 30, &r);
    for (int i = 0; i < 200; i++) {   /* some garbage: may trigger cycles from here */
        char *g = gc_malloc(64 + rnd(&r) % 4000);
        if (g)
            g[0] = 1;
    }
    pthread_mutex_lock(&orphan_lock);
    if (!l || list_verify(l))
        orphan_errors++;
    if (norphans < NORPHANS)
        orphans[norphans++] = l;
    pthread_mutex_unlock(&orphan_lock);
    return NULL;
}

START_TEST(test_threads)
{
    gc_init();
    gc_set_percent(20);
    /* The heap is not empty when the first cycle runs (test_api covers that case). */
    void *first = gc_malloc(100);
    must(first != NULL);
    struct gc_memstats *m = malloc(sizeof *m);
    must(m != NULL);
    gc_read_memstats(m);
    uint32_t gc0 = m->num_gc;

    pthread_t wt[NWORKERS], ht;
    for (int i = 0; i < NWORKERS; i++) {
        workers[i].index = i;
        ck_assert_int_eq(gc_thread_create(&wt[i], NULL, worker_main, &workers[i]), 0);
    }
    ck_assert_int_eq(pthread_create(&ht, NULL, hand_main, NULL), 0);

    /* Orphans come and go while the workers run; the main thread forces cycles. */
    int spawned = 0;
    for (int i = 0; i < NORPHANS; i++) {
        pthread_t ot;
        ck_assert_int_eq(pthread_create(&ot, NULL, orphan_main, (void *)(uintptr_t)i), 0);
        spawned++;
        if (i % 2 == 0)
            gc_collect();
        ck_assert_int_eq(pthread_join(ot, NULL), 0);
        gc_collect();   /* the orphan has exited without gc_unregister_thread */
        char *p = gc_malloc(1000);
        must(p != NULL);
    }
    for (int i = 0; i < NWORKERS; i++)
        ck_assert_int_eq(pthread_join(wt[i], NULL), 0);
    ck_assert_int_eq(pthread_join(ht, NULL), 0);

    /* More cycles with every thread gone. */
    for (int i = 0; i < 10; i++) {
        char *p = gc_malloc(50000);
        must(p != NULL);
        gc_collect();
    }

    long errors = 0, kept = 0, built = 0, received = 0, sent = 0;
    for (int i = 0; i < NWORKERS; i++) {
        struct worker *w = &workers[i];
        must_msg(w->errors == 0, "worker %d saw %ld corrupt lists during the run (first code %d)",
                      i, w->errors, w->first_error);
        built += w->built;
        sent += w->sent;
        received += w->received;
        must(w->kept != NULL);
        for (int k = 0; k < KEEP; k++)
            if (w->kept[k]) {
                kept++;
                int code = list_verify(w->kept[k]);
                if (code) {
                    errors++;
                    fprintf(stderr, "worker %d kept list %d: code %d\n", i, k, code);
                }
            }
    }
    int in_mailbox = 0;
    for (int s = 0; s < MAILBOX; s++)
        if (mailbox[s]) {
            in_mailbox++;
            if (list_verify(mailbox[s]))
                errors++;
        }
    ck_assert_int_eq(orphan_errors, 0);
    ck_assert_int_eq(norphans, spawned);
    for (int i = 0; i < norphans; i++)
        if (list_verify(orphans[i]))
            errors++;
    ck_assert_int_eq(hand_rc_register, 0);
    ck_assert_int_eq(hand_rc_unregister, 0);
    ck_assert_int_eq(hand_errors, 0);
    for (int k = 0; k < HAND_KEEP; k++)
        if (hand_kept[k] && list_verify(hand_kept[k]))
            errors++;
    gc_read_memstats(m);
    printf("threads: %u cycles; built %ld lists, sent %ld, received %ld, kept %ld, "
           "%d in the mailbox, %d orphans\n",
           m->num_gc - gc0, built, sent, received, kept, in_mailbox, norphans);
    fflush(stdout);
    must_msg(errors == 0, "%ld corrupt lists at the end", errors);
    ck_assert_uint_eq(built, (long)NWORKERS * ROUNDS);
    ck_assert_int_gt(received, 0);
    ck_assert_uint_ge(m->num_gc - gc0, 100);
    free(m);
}
END_TEST

static Suite *threads_suite(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("mixed");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(threads_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
