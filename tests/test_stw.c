/* test_stw.c - unit tests for gc/stw.c: stopping and resuming the world, the thread
 * registry, the stop timeout report, threads that exit registered, and fork.
 *
 * stw_stop_world is called directly (from the registered main thread) with other
 * registered threads busy in a loop, sleeping, blocked in read() and in
 * pthread_cond_wait: every one must be parked in the stop handler (its saved stack
 * pointer inside its stack, its progress counter frozen however long we wait), and
 * after stw_start_world each must run again.  While the world is stopped the test
 * calls nothing that may take a lock a stopped thread holds (no malloc, no stdio, no
 * Check assertion): results are recorded and asserted after the world resumes.
 *
 * main sets GCDEBUG=stoptimeout=200 before gc_init, for the timeout report test.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000ull

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- worker threads ------------------------------------------------------------------ */

enum kind { BUSY, SLEEPER, NAPPER, READER, CONDWAIT, ALLOCATOR, BLOCKREAD, BLOCKCYCLE, NKINDS };
static const char *const kind_name[] = {"busy", "sleep", "nap", "read", "condwait", "alloc",
                                        "blockread", "blockcycle"};

struct worker {
    enum kind kind;
    pthread_t thread;
    struct mutator *m;        /* its registry entry */
    pid_t tid;
    volatile atomic_word progress;
    volatile int quit;
    volatile int ready;
    int pipefd[2];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int tokens;               /* CONDWAIT: wake-ups to consume */
    volatile long state_at_cleanup;   /* BLOCKREAD cancelled: its block_state then */
    volatile int bad;         /* ALLOCATOR: objects found corrupted */
};

/* An allocation loop that checks its own data: a list it keeps must stay intact
 * across any number of collections. */
struct cell {
    struct cell *next;
    uint64_t value;
    char pad[40];
};

static void allocator_loop(struct worker *w)
{
    struct cell *keep = NULL;
    uint64_t n = 0;
    while (!w->quit) {
        struct cell *c = gc_malloc(sizeof *c);
        if (!c) {
            w->bad++;
            break;
        }
        c->value = n * 2654435761u;
        c->next = keep;
        keep = c;
        if (++n % 200 == 0) {
            /* Check the list, then drop it (garbage for the next cycle). */
            uint64_t k = n;
            for (struct cell *p = keep; p; p = p->next) {
                k--;
                if (p->value != k * 2654435761u)
                    w->bad++;
            }
            keep = NULL;
            /* Some other sizes and a large object now and then. */
            void *volatile x = gc_malloc(1 + (size_t)(n % 3000));
            if (n % 2000 == 0)
                x = gc_malloc(40000);
            (void)x;
        }
        AO_fetch_and_add1(&w->progress);
    }
}

/* BLOCKREAD: a read of the pipe, inside gc_do_blocking. */
static void *read_one(void *arg)
{
    struct worker *w = arg;
    char c = 0;
    ssize_t r;
    do
        r = read(w->pipefd[0], &c, 1);
    while (r < 0 && errno == EINTR);
    return r == 1 && c != 'q' ? (void *)1 : NULL;
}

/* A list of n cells holding their own index, built before a blocking region and
 * checked after it: while the thread is blocked only its stack and the registers
 * saved on entry keep the list alive. */
static struct cell *build_list(int n)
{
    struct cell *keep = NULL;
    for (int i = 0; i < n; i++) {
        struct cell *c = gc_malloc(sizeof *c);
        if (!c)
            return NULL;
        c->value = (uint64_t)i * 2654435761u;
        c->next = keep;
        keep = c;
    }
    return keep;
}

static int list_bad(const struct cell *keep, int n)
{
    int bad = 0;
    for (const struct cell *p = keep; p; p = p->next)
        bad += p->value != (uint64_t)--n * 2654435761u;
    return bad + (n != 0);
}

static void *nap_one(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 20000};   /* 20 us */
    nanosleep(&ts, NULL);
    return NULL;
}

/* BLOCKREAD's cleanup handler, run if it is cancelled: by then its region is over. */
static void note_state(void *arg)
{
    struct worker *w = arg;
    w->state_at_cleanup = (long)AO_load(&alloc_self->block_state);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    if (gc_register_thread() != 0)
        return (void *)1;
    w->m = alloc_self;
    w->tid = os_gettid();
    char name[16];
    snprintf(name, sizeof name, "stw-%s", kind_name[w->kind]);
    pthread_setname_np(pthread_self(), name);
    w->ready = 1;
    switch (w->kind) {
    case BUSY:
        while (!w->quit)
            AO_fetch_and_add1(&w->progress);
        break;
    case SLEEPER:   /* in sleep(); a signal handler ends it early (EINTR) */
        while (!w->quit) {
            AO_fetch_and_add1(&w->progress);
            sleep(1);
        }
        break;
    case NAPPER:    /* short sleeps: runnable often */
        while (!w->quit) {
            sleep_ms(2);
            AO_fetch_and_add1(&w->progress);
        }
        break;
    case READER:
        for (;;) {
            char c;
            ssize_t r = read(w->pipefd[0], &c, 1);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0 || c == 'q')
                break;
            AO_fetch_and_add1(&w->progress);
        }
        break;
    case CONDWAIT:
        pthread_mutex_lock(&w->lock);
        while (!w->quit) {
            while (w->tokens == 0 && !w->quit)
                pthread_cond_wait(&w->cond, &w->lock);
            if (w->tokens > 0) {
                w->tokens--;
                AO_fetch_and_add1(&w->progress);
            }
        }
        pthread_mutex_unlock(&w->lock);
        break;
    case ALLOCATOR:
        allocator_loop(w);
        break;
    case BLOCKREAD:   /* blocked in read(), in a blocking region, holding a list */
        w->state_at_cleanup = -1;
        pthread_cleanup_push(note_state, w);
        for (;;) {
            struct cell *keep = build_list(1000);
            void *got = gc_do_blocking(read_one, w);
            w->bad += list_bad(keep, 1000);
            if (!got)
                break;
            AO_fetch_and_add1(&w->progress);
        }
        pthread_cleanup_pop(0);
        break;
    case BLOCKCYCLE:   /* in and out of short blocking regions, allocating between */
        while (!w->quit) {
            struct cell *keep = build_list(50);
            gc_do_blocking(nap_one, NULL);
            w->bad += list_bad(keep, 50);
            AO_fetch_and_add1(&w->progress);
        }
        break;
    default:
        break;
    }
    gc_unregister_thread();
    return NULL;
}

static void worker_start(struct worker *w, enum kind k)
{
    memset(w, 0, sizeof *w);
    w->kind = k;
    ck_assert_int_eq(pipe(w->pipefd), 0);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    ck_assert_int_eq(pthread_create(&w->thread, NULL, worker_main, w), 0);
    while (!w->ready)
        sleep_ms(1);
}

/* Wake a blocked worker once (READER, CONDWAIT); others need nothing. */
static void worker_poke(struct worker *w)
{
    if (w->kind == READER || w->kind == BLOCKREAD) {
        ck_assert_int_eq(write(w->pipefd[1], "x", 1), 1);
    } else if (w->kind == CONDWAIT) {
        pthread_mutex_lock(&w->lock);
        w->tokens++;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
    }
}

static void worker_stop(struct worker *w)
{
    w->quit = 1;
    if (w->kind == READER || w->kind == BLOCKREAD)
        ck_assert_int_eq(write(w->pipefd[1], "q", 1), 1);
    if (w->kind == CONDWAIT) {
        pthread_mutex_lock(&w->lock);
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
    }
    if (w->kind == SLEEPER) {   /* cut its sleep(1) short: a stop signal does */
        stw_stop_world();
        stw_start_world();
    }
    void *ret;
    ck_assert_int_eq(pthread_join(w->thread, &ret), 0);
    ck_assert_ptr_null(ret);
    close(w->pipefd[0]);
    close(w->pipefd[1]);
}

/* Wait up to ms for the worker's progress to pass `than`. */
static bool progressed(struct worker *w, AO_t than, long ms)
{
    uint64_t end = os_now_ns() + (uint64_t)ms * MS;
    while (AO_load(&w->progress) <= than) {
        if (os_now_ns() > end)
            return false;
        sleep_ms(1);
    }
    return true;
}

/* Registered threads other than the collector thread (which concurrent mode, the
 * default, starts with the first cycle; a forked test process has none at first). */
static int program_threads(void)
{
    int n = 0;
    pthread_mutex_lock(&stw_registry_lock);
    for (struct mutator *m = stw_threads; m; m = m->next)
        n += !m->collector;
    pthread_mutex_unlock(&stw_registry_lock);
    return n;
}

/* ---- stop and resume with blocked and busy threads ----------------------------------- */

START_TEST(stop_and_resume_all_kinds)
{
    enum { K = 6, ROUNDS = 5, IREAD = 4, ICOND = 5 };
    static const enum kind kinds[K] = {BUSY, BUSY, SLEEPER, NAPPER, READER, CONDWAIT};
    struct worker *w = calloc(K, sizeof *w);
    for (int i = 0; i < K; i++)
        worker_start(&w[i], kinds[i]);
    /* Everyone running once, the blocked ones then blocked again. */
    for (int i = 0; i < K; i++) {
        worker_poke(&w[i]);
        ck_assert_msg(progressed(&w[i], 0, 2000), "%s worker never ran", kind_name[kinds[i]]);
    }
    ck_assert_int_eq(program_threads(), K + 1);

    for (int round = 0; round < ROUNDS; round++) {
        sleep_ms(5);   /* blocked ones back in their calls */
        AO_t seq0[K];
        for (int i = 0; i < K; i++)
            seq0[i] = AO_load(&w[i].m->stop_seq);

        /* ---- world stopped: record only ---- */
        uint64_t stop_ns = stw_stop_world();
        AO_t frozen[K], later[K], seq[K];
        uintptr_t sp[K];
        for (int i = 0; i < K; i++) {
            frozen[i] = AO_load(&w[i].progress);
            seq[i] = AO_load(&w[i].m->stop_seq);
            sp[i] = w[i].m->stopped_sp;
        }
        /* Wake the blocked ones now: they must not act on it until resumed. */
        ssize_t wr = write(w[IREAD].pipefd[1], "x", 1);
        struct timespec ts = {0, 80 * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        for (int i = 0; i < K; i++)
            later[i] = AO_load(&w[i].progress);
        stw_start_world();
        /* ---- running again ---- */

        ck_assert_int_eq(wr, 1);
        ck_assert_uint_lt(stop_ns, 2000 * MS);
        for (int i = 0; i < K; i++) {
            /* Acknowledged this very request: the same sequence number for all. */
            ck_assert_msg(seq[i] != seq0[i] && seq[i] == seq[0],
                          "%s worker: stop_seq %lu (was %lu, first worker's %lu)", kind_name[kinds[i]],
                          (unsigned long)seq[i], (unsigned long)seq0[i], (unsigned long)seq[0]);
            ck_assert_msg(sp[i] >= w[i].m->stack_lo && sp[i] <= w[i].m->stack_hi,
                          "%s worker not parked on its stack (sp %#lx)", kind_name[kinds[i]],
                          (unsigned long)sp[i]);
            ck_assert_msg(later[i] == frozen[i], "%s worker ran while stopped (%lu -> %lu)",
                          kind_name[kinds[i]], (unsigned long)frozen[i], (unsigned long)later[i]);
            /* stw_start_world does not wait for threads to run again: give it time. */
            for (int t = 0; t < 2000 && w[i].m->stopped_sp != 0; t++)
                sleep_ms(1);
            ck_assert_msg(w[i].m->stopped_sp == 0, "%s worker: stopped_sp not cleared",
                          kind_name[kinds[i]]);
        }
        /* Each makes progress after (the reader has its byte already). */
        worker_poke(&w[ICOND]);
        for (int i = 0; i < K; i++)
            ck_assert_msg(progressed(&w[i], later[i], 2000), "%s worker did not resume",
                          kind_name[kinds[i]]);
    }
    for (int i = 0; i < K; i++)
        worker_stop(&w[i]);
    ck_assert_int_eq(program_threads(), 1);
    free(w);
}
END_TEST

/* Stopping with no other program thread registered returns at once. */
START_TEST(stop_alone)
{
    ck_assert_int_eq(program_threads(), 1);
    for (int i = 0; i < 100; i++) {
        uint64_t ns = stw_stop_world();
        stw_start_world();
        ck_assert_uint_lt(ns, 100 * MS);
    }
}
END_TEST

/* ---- many rounds with allocating threads ------------------------------------------------- */

/* Each worker still makes progress; stop it and check it saw nothing corrupted. */
static void workers_finish(struct worker *w, int k)
{
    for (int i = 0; i < k; i++) {
        AO_t p = AO_load(&w[i].progress);
        ck_assert(progressed(&w[i], p, 2000));
        worker_stop(&w[i]);
        ck_assert_int_eq(w[i].bad, 0);
    }
    free(w);
}

/* Stop and start the world `rounds` times against k workers of one kind (a forced
 * collection every collect_every rounds, 0: none): every stop must find each worker
 * parked or counted, none inside the allocator.  Returns how many times a stop found
 * a worker counted in a blocking region. */
static int stop_rounds(struct worker *w, int k, int rounds, int collect_every)
{
    int not_parked = 0, in_critical = 0, counted = 0;
    for (int round = 0; round < rounds; round++) {
        stw_stop_world();
        for (int i = 0; i < k; i++) {
            not_parked += w[i].m->stopped_sp == 0;
            in_critical += w[i].m->critical != 0;
            counted += AO_load(&w[i].m->block_state) == STW_BLOCKED_STOPPED;
        }
        stw_start_world();
        if (collect_every && round % collect_every == 0)
            gc_collect();
    }
    ck_assert_int_eq(not_parked, 0);
    ck_assert_int_eq(in_critical, 0);
    return counted;
}

START_TEST(many_collections_with_allocators)
{
    enum { K = 3, ROUNDS = 500 };
    struct worker *w = calloc(K, sizeof *w);
    for (int i = 0; i < K; i++)
        worker_start(&w[i], ALLOCATOR);
    uint32_t gc0 = (uint32_t)AO_load(&cycle.num_gc);
    for (int round = 0; round < ROUNDS; round++) {
        gc_collect();
        if (round % 100 == 0) {
            AO_t p = AO_load(&w[round % K].progress);
            ck_assert_msg(progressed(&w[round % K], p, 2000), "allocator %d stuck", round % K);
        }
    }
    ck_assert_uint_ge((uint32_t)AO_load(&cycle.num_gc) - gc0, ROUNDS);
    workers_finish(w, K);
}
END_TEST

/* Raw stop/start rounds against allocating threads: a thread stopped inside the
 * allocator defers the stop to critical_leave; none may be caught mid-update. */
START_TEST(raw_rounds_with_allocators)
{
    enum { K = 3, ROUNDS = 1500 };
    struct worker *w = calloc(K, sizeof *w);
    for (int i = 0; i < K; i++)
        worker_start(&w[i], ALLOCATOR);
    stop_rounds(w, K, ROUNDS, 0);
    workers_finish(w, K);
}
END_TEST

/* ---- blocking regions (gc_do_blocking) ------------------------------------------------ */

/* A thread blocked in read() inside gc_do_blocking is counted as stopped without a
 * signal: the stop signals nobody, yet records the thread's stop and its stack
 * pointer; the list the thread holds across the region survives collections; woken
 * while the world is stopped, it does not run on until the world resumes. */
START_TEST(blocking_region_is_not_signalled)
{
    struct worker w;
    worker_start(&w, BLOCKREAD);
    sleep_ms(20);   /* into its region */
    ck_assert_uint_eq(AO_load(&w.m->block_state), STW_BLOCKED);
    for (int round = 0; round < 5; round++) {
        AO_t seq0 = AO_load(&w.m->stop_seq), p0 = AO_load(&w.progress);
        stw_stop_world();
        int signalled = stw_last_stop.threads, others = -1;   /* but this thread */
        for (struct mutator *m = stw_threads; m; m = m->next)
            others++;
        AO_t seq = AO_load(&w.m->stop_seq), state = AO_load(&w.m->block_state);
        uintptr_t sp = w.m->stopped_sp;
        ssize_t wr = write(w.pipefd[1], "x", 1);   /* it must wait for the resume */
        struct timespec ts = {0, 30 * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        AO_t later = AO_load(&w.progress);
        stw_start_world();

        ck_assert_int_eq(wr, 1);
        ck_assert_int_eq(signalled, others - 1);   /* all but w (the collector thread) */
        ck_assert_uint_ne(seq, seq0);
        ck_assert_uint_eq(state, STW_BLOCKED_STOPPED);
        ck_assert(sp >= w.m->stack_lo && sp <= w.m->stack_hi);
        ck_assert_uint_eq(later, p0);
        ck_assert(progressed(&w, p0, 2000));
        /* Collections while it is blocked again: its list must survive. */
        for (int i = 0; i < 4; i++) {
            for (int j = 0; j < 20000; j++) {
                void *volatile g = gc_malloc(64);
                (void)g;
            }
            gc_collect();
        }
    }
    worker_stop(&w);
    ck_assert_int_eq(w.bad, 0);
}
END_TEST

/* Threads going in and out of blocking regions while the world is stopped and
 * started again and again: each stop finds every thread parked or counted, none in
 * the allocator, and the lists they hold across their regions stay intact. */
START_TEST(blocking_regions_race_stops)
{
    enum { K = 3, ROUNDS = 2000 };
    struct worker *w = calloc(K, sizeof *w);
    for (int i = 0; i < K; i++)
        worker_start(&w[i], BLOCKCYCLE);
    /* Some stops must find a thread in its region. */
    ck_assert_int_gt(stop_rounds(w, K, ROUNDS, 200), 0);
    workers_finish(w, K);
}
END_TEST

/* A thread cancelled inside its blocking region (read() is a cancellation point)
 * leaves the region as it unwinds: its exit unregisters it like any other, and stops
 * and collections go on without it. */
START_TEST(blocking_region_cancelled)
{
    struct worker w;
    worker_start(&w, BLOCKREAD);
    sleep_ms(20);
    ck_assert_uint_eq(AO_load(&w.m->block_state), STW_BLOCKED);
    ck_assert_int_eq(program_threads(), 2);
    ck_assert_int_eq(pthread_cancel(w.thread), 0);
    void *ret;
    ck_assert_int_eq(pthread_join(w.thread, &ret), 0);
    ck_assert_ptr_eq(ret, PTHREAD_CANCELED);
    ck_assert_int_eq(w.state_at_cleanup, STW_RUNNING);   /* left before the handlers */
    ck_assert_int_eq(program_threads(), 1);
    for (int i = 0; i < 5; i++) {
        uint64_t ns = stw_stop_world();
        stw_start_world();
        ck_assert_uint_lt(ns, 1000 * MS);
        gc_collect();
    }
    close(w.pipefd[0]);
    close(w.pipefd[1]);
}
END_TEST

static void *identity(void *arg) { return arg; }
static void *nested(void *arg) { return gc_do_blocking(identity, arg); }

START_TEST(do_blocking_returns_and_nests)
{
    int x;
    ck_assert_ptr_eq(gc_do_blocking(identity, &x), &x);
    ck_assert_ptr_eq(gc_do_blocking(nested, &x), &x);
    ck_assert_uint_eq(AO_load(&alloc_self->block_state), STW_RUNNING);
    ck_assert_uint_eq(alloc_self->blocking, 0);
    ck_assert_uint_eq(alloc_self->stopped_sp, 0);
}
END_TEST

/* ---- a thread that blocks the stop signal ------------------------------------------------- */

struct blocker {
    int log_fd;               /* a second descriptor on the file that stderr now is */
    pid_t tid;
    volatile int ready, saw_report, done;
    volatile int go;
};

static void *blocker_main(void *arg)
{
    struct blocker *b = arg;
    gc_register_thread();
    b->tid = os_gettid();
    pthread_setname_np(pthread_self(), "stw-blocker");
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, opt.stopsignal);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    b->ready = 1;
    while (!b->go)
        sleep_ms(1);
    /* Wait (at most 3 s) for the collector's report, then let the signal in. */
    uint64_t end = os_now_ns() + 3000 * MS;
    char buf[4096];
    while (os_now_ns() < end) {
        ssize_t n = pread(b->log_fd, buf, sizeof buf - 1, 0);
        if (n > 0) {
            buf[n] = '\0';
            if (strstr(buf, "has not stopped")) {
                b->saw_report = 1;
                break;
            }
        }
        sleep_ms(5);
    }
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);   /* the pending stop is taken here */
    while (!b->done)
        sleep_ms(1);
    gc_unregister_thread();
    return NULL;
}

START_TEST(blocked_signal_is_reported)
{
    ck_assert_int_eq(opt.stoptimeout, 200);
    ck_assert_int_eq(opt.stopsignal, SIGPWR);
    char path[] = "/tmp/test_stw_stderr_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    struct blocker *b = calloc(1, sizeof *b);
    b->log_fd = fd;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, blocker_main, b), 0);
    while (!b->ready)
        sleep_ms(1);

    int saved = dup(2);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(fd, 2), 2);
    b->go = 1;
    uint64_t t0 = os_now_ns();
    gc_collect();   /* waits for the blocker, which lets the signal in after the report */
    uint64_t took = os_now_ns() - t0;
    dup2(saved, 2);
    close(saved);

    char buf[4096];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    b->done = 1;
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    close(fd);

    ck_assert_msg(b->saw_report, "no report within 3 s; stderr: %s", buf);
    ck_assert_uint_ge(took, 200 * MS);
    int lines = 0, reports = 0;
    for (char *p = buf; *p; p++)
        lines += *p == '\n';
    for (char *p = buf; (p = strstr(p, "has not stopped")); p++)
        reports++;
    ck_assert_msg(reports == 1, "%d reports in: %s", reports, buf);
    ck_assert_msg(lines == 1, "%d lines in: %s", lines, buf);
    char want[64];
    snprintf(want, sizeof want, "thread %d ", (int)b->tid);
    ck_assert_msg(strstr(buf, want) != NULL, "report does not name tid %d: %s", (int)b->tid, buf);
    ck_assert_msg(strstr(buf, "stw-blocker") != NULL,
                  "report does not carry the thread's name: %s", buf);
    free(b);
}
END_TEST

/* ---- threads that exit registered ----------------------------------------------------- */

static void *exit_registered(void *arg)
{
    gc_register_thread();
    void *volatile p = gc_malloc(100);
    (void)p;
    return arg;   /* no gc_unregister_thread */
}

static void *exit_auto_registered(void *arg)
{
    void *volatile p = gc_malloc(100);   /* registers the thread */
    (void)p;
    return arg;
}

START_TEST(thread_exits_without_unregistering)
{
    for (int i = 0; i < 20; i++) {
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, i % 2 ? exit_auto_registered : exit_registered,
                                        NULL), 0);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        gc_collect();
        ck_assert_int_eq(program_threads(), 1);
    }
    /* Detached ones, collecting while they exit. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < 50; i++) {
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, &attr, i % 2 ? exit_auto_registered : exit_registered,
                                        NULL), 0);
        gc_collect();
    }
    pthread_attr_destroy(&attr);
    uint64_t end = os_now_ns() + 2000 * MS;
    while (program_threads() > 1 && os_now_ns() < end) {
        gc_collect();
        sleep_ms(1);
    }
    ck_assert_int_eq(program_threads(), 1);
    gc_collect();
}
END_TEST

/* ---- fork ---------------------------------------------------------------------------------- */

static int child_uses_heap(void)
{
    /* A hang is a failure, not a stuck test.  The default action: Check's own SIGALRM
     * handler, inherited through fork, would kill the whole test process group and
     * the failure would read "Received signal 9" instead of "child died of signal 14". */
    signal(SIGALRM, SIG_DFL);
    alarm(5);
    if (program_threads() != 1)
        return 2;
    struct cell *keep = NULL;
    for (int i = 0; i < 20000; i++) {
        struct cell *c = gc_malloc(sizeof *c);
        if (!c)
            return 3;
        c->value = (uint64_t)i;
        c->next = i % 1000 == 0 ? NULL : keep;
        keep = c;
    }
    gc_collect();
    uint64_t k = 19999;
    for (struct cell *p = keep; p; p = p->next, k--)
        if (p->value != k)
            return 4;
    for (int i = 0; i < 5; i++)
        gc_collect();
    void *big = gc_malloc(1 << 20);
    if (!big)
        return 5;
    return 0;
}

static void fork_with_workers(enum kind kind)
{
    struct worker *w = calloc(2, sizeof *w);
    for (int i = 0; i < 2; i++)
        worker_start(&w[i], kind);
    ck_assert_int_eq(program_threads(), 3);
    for (int round = 0; round < 3; round++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
            _exit(child_uses_heap());
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status), "child died of signal %d",
                      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        ck_assert_msg(WEXITSTATUS(status) == 0, "child exit status %d", WEXITSTATUS(status));
        /* The parent goes on too. */
        gc_collect();
    }
    for (int i = 0; i < 2; i++) {
        AO_t p = AO_load(&w[i].progress);
        worker_poke(&w[i]);
        ck_assert(progressed(&w[i], p, 2000));
        worker_stop(&w[i]);
        ck_assert_int_eq(w[i].bad, 0);
    }
    free(w);
}

START_TEST(fork_with_blocked_threads)
{
    fork_with_workers(CONDWAIT);
}
END_TEST

START_TEST(fork_with_allocating_threads)
{
    fork_with_workers(ALLOCATOR);
}
END_TEST

static Suite *stw_suite(void)
{
    Suite *s = suite_create("stw");
    TCase *tc = tcase_create("stop");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, stop_and_resume_all_kinds);
    tcase_add_test(tc, stop_alone);
    tcase_add_test(tc, many_collections_with_allocators);
    tcase_add_test(tc, raw_rounds_with_allocators);
    tcase_add_test(tc, blocking_region_is_not_signalled);
    tcase_add_test(tc, blocking_regions_race_stops);
    tcase_add_test(tc, blocking_region_cancelled);
    tcase_add_test(tc, do_blocking_returns_and_nests);
    suite_add_tcase(s, tc);

    tc = tcase_create("timeout");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, blocked_signal_is_reported);
    suite_add_tcase(s, tc);

    tc = tcase_create("registry");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, thread_exits_without_unregistering);
    tcase_add_test(tc, fork_with_blocked_threads);
    tcase_add_test(tc, fork_with_allocating_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    setenv("GCDEBUG", "stoptimeout=200", 1);
    gc_init();
    void *volatile first = gc_malloc(16);   /* the heap is mapped before any test forks */
    (void)first;
    SRunner *sr = srunner_create(stw_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
