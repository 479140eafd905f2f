/* test_roots.c - unit tests for gc/roots.c: what keeps an object alive.
 *
 * Roots are the executable's (and shared objects') writable data segments, ranges
 * registered with gc_add_roots, and every registered thread's stack and registers.
 * Memory from malloc is not a root unless registered.  Interior pointers count.
 *
 * Observation without retention: the tests remember objects only as addresses XOR-ed
 * with a key (in malloc'd memory or in non-pointer globals), so the test itself does
 * not keep them alive, and check afterwards with gc_base(p) == p whether each slot is
 * still allocated.  Survival is asserted for every object; reclamation for "most"
 * (a stray word on a stack or in a register may conservatively retain a few).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <check.h>
#include "testutil.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY ((uintptr_t)0xA5A5A5A5A5A5A5A5u)
#define HIDE(p) ((uintptr_t)(p) ^ KEY)
#define SHOW(h) ((void *)((h) ^ KEY))

enum { N = 512 };   /* objects per observation */

/* ---- helpers ---------------------------------------------------------------------- */


static void collect(void)
{
    clobber_stack();
    gc_collect();
}

/* How many of the n hidden addresses are still allocated objects (at their start). */
static int count_alive(const uintptr_t *hidden, int n)
{
    int alive = 0;
    for (int i = 0; i < n; i++) {
        void *p = SHOW(hidden[i]);
        if (gc_base(p) == p)
            alive++;
    }
    return alive;
}

/* Most, not all: at least 90% reclaimed. */
#define ck_assert_most_dead(hidden, n)                                                    \
    do {                                                                                 \
        int alive_ = count_alive((hidden), (n));                                         \
        ck_assert_msg(alive_ <= (n) / 10, "%d of %d unreachable objects still alive",    \
                      alive_, (n));                                                      \
    } while (0)

#define ck_assert_all_alive(hidden, n)                                                    \
    do {                                                                                 \
        int alive_ = count_alive((hidden), (n));                                         \
        ck_assert_msg(alive_ == (n), "only %d of %d reachable objects survived", alive_, \
                      (n));                                                              \
    } while (0)

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Fill an object with a pattern derived from i, check it later. */
static void stamp(void *p, size_t n, unsigned i)
{
    unsigned *w = p;
    for (size_t k = 0; k < n / sizeof *w; k++)
        w[k] = i * 2654435761u + (unsigned)k;
}

static bool stamped(const void *p, size_t n, unsigned i)
{
    const unsigned *w = p;
    for (size_t k = 0; k < n / sizeof *w; k++)
        if (w[k] != i * 2654435761u + (unsigned)k)
            return false;
    return true;
}

/* Run this program again with one argument, in a fresh process; it must exit 0. */
static void run_self(const char *mode)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execl("/proc/self/exe", "test_roots", mode, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char err[512];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof err - 1 &&
           ((r = read(fds[0], err + len, sizeof err - 1 - len)) > 0 || (r < 0 && errno == EINTR)))
        len += r > 0 ? (size_t)r : 0;
    err[len] = '\0';
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(!WIFSIGNALED(status), "%s: died of signal %d %s", mode,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0, err);
    ck_assert_msg(WEXITSTATUS(status) == 0, "%s: exit status %d: %s", mode,
                  WEXITSTATUS(status), err);
}

/* ---- data segments ----------------------------------------------------------------- */

/* Globals that hold roots are volatile: the compiler may otherwise drop stores to a
 * static it can prove nobody in this file reads again (or the whole variable). */
static void *volatile g_bss[N];                  /* .bss */
static void *volatile g_data[N] = {(void *)1};   /* .data: initialized, not in .bss */
static uintptr_t g_hidden[N];            /* not pointers: no retention */

static __attribute__((noinline)) void fill_globals(void *volatile *slots, size_t size)
{
    for (int i = 0; i < N; i++) {
        slots[i] = gc_malloc(size);
        stamp(slots[i], size, (unsigned)i);
        g_hidden[i] = HIDE(slots[i]);
    }
}

static void global_keeps_alive(void *volatile *slots)
{
    fill_globals(slots, 64);
    collect();
    collect();
    ck_assert_all_alive(g_hidden, N);
    for (int i = 0; i < N; i++)
        ck_assert(stamped(SHOW(g_hidden[i]), 64, (unsigned)i));
    /* Control: the same objects die once the globals forget them. */
    for (int i = 0; i < N; i++)
        slots[i] = NULL;
    collect();
    ck_assert_most_dead(g_hidden, N);
}

START_TEST(bss_global_is_root)
{
    global_keeps_alive(g_bss);
}
END_TEST

START_TEST(data_global_is_root)
{
    global_keeps_alive(g_data);
}
END_TEST

/* A heap object referenced from a global keeps what it references, transitively. */
static void **volatile g_holder;
static struct chain {
    struct chain *next;
    unsigned n;
} *volatile g_chain;
static uintptr_t g_chain_hidden[N];

static __attribute__((noinline)) void build_holder(void)
{
    g_holder = gc_malloc(N * sizeof *g_holder);
    for (int i = 0; i < N; i++) {
        g_holder[i] = gc_malloc(100);
        stamp(g_holder[i], 100, (unsigned)i);
        g_hidden[i] = HIDE(g_holder[i]);
    }
    /* And a linked list N long: only its head is in a global. */
    struct chain *c = NULL;
    for (int i = N - 1; i >= 0; i--) {
        struct chain *n = gc_malloc(sizeof *n);
        n->next = c;
        n->n = (unsigned)i;
        c = n;
        g_chain_hidden[i] = HIDE(n);
    }
    g_chain = c;
}

START_TEST(heap_object_reachable_from_global)
{
    build_holder();
    collect();
    collect();
    ck_assert_all_alive(g_hidden, N);
    ck_assert_all_alive(g_chain_hidden, N);
    for (int i = 0; i < N; i++)
        ck_assert(stamped(SHOW(g_hidden[i]), 100, (unsigned)i));
    unsigned k = 0;
    for (struct chain *c = g_chain; c; c = c->next, k++)
        ck_assert_uint_eq(c->n, k);
    ck_assert_uint_eq(k, N);
    /* Control: drop the holder and the chain. */
    g_holder = NULL;
    g_chain = NULL;
    collect();
    ck_assert_most_dead(g_hidden, N);
    ck_assert_most_dead(g_chain_hidden, N);
}
END_TEST

/* roots_prepare lists at least the executable's data: a 1 MiB .bss array counts in
 * the cycle's globals_scanned (seen by the cycle hook), and a pointer in its very last
 * word is a root (the segment is scanned to its end, .bss included). */
static volatile char g_big_bss[1 << 20];
static volatile uint64_t g_globals_scanned;
static void record_globals(const struct gc_cycle_info *ci, void *arg)
{
    (void)arg;
    g_globals_scanned = ci->globals_scanned;
}

START_TEST(globals_scanned_covers_executable)
{
    g_big_bss[0] = 1;
    gc_set_cycle_hook(record_globals, NULL);
    gc_collect();
    gc_set_cycle_hook(NULL, NULL);
    ck_assert_uint_ge(g_globals_scanned, sizeof g_big_bss + sizeof g_bss + sizeof g_data);
    /* A pointer in the last word of the big array still counts. */
    void *volatile *last = (void *volatile *)(g_big_bss + sizeof g_big_bss) - 1;
    *last = gc_malloc(64);
    uintptr_t h = HIDE(*last);
    collect();
    ck_assert_ptr_eq(gc_base(SHOW(h)), SHOW(h));
    *last = NULL;
    collect();
    /* One object: a stray word could retain it, so no assertion that it died. */
}
END_TEST

/* A collection before anything was allocated: the heap has no arena yet (its bounds
 * are lo = UINTPTR_MAX, hi = 0) while the data segments hold the usual words, -1
 * among them.  Run in a fresh process (this program re-executed with --empty-heap),
 * since every test process here inherits a heap from main. */
static volatile uintptr_t g_all_ones = UINTPTR_MAX;

static int empty_heap_main(void)
{
    gc_init();
    gc_collect();
    gc_collect();
    void *p = gc_malloc(64);
    gc_collect();
    return g_all_ones == UINTPTR_MAX && gc_base(p) == p ? 0 : 3;
}

START_TEST(collect_with_empty_heap)
{
    run_self("--empty-heap");
}
END_TEST

/* The collector's own variables are not roots.  Linked statically (as here, and as
 * with an installed libtricolor.a), the collector's globals sit in the executable's
 * data segment; heap.lo holds the base of the lowest arena, which is the address of
 * the first object ever allocated.  That object, and all it references, must still
 * die when unreachable.  Fresh process: this program re-executed with --first-object. */
static __attribute__((noinline)) void first_object_holder(uintptr_t *hidden, uintptr_t *holder)
{
    void **h = gc_malloc(N * sizeof *h);     /* the very first object */
    *holder = HIDE(h);
    for (int i = 0; i < N; i++) {
        h[i] = gc_malloc(64);
        hidden[i] = HIDE(h[i]);
    }
}

static int first_object_main(void)
{
    static uintptr_t hidden[N], holder;
#if GC_ASAN
    /* AddressSanitizer's larger frames leave stale copies of heap addresses on the
     * collector's own stack, which conservative scanning rightly keeps alive. */
    return 0;
#endif
    gc_init();
    /* What this checks does not depend on the mode, and in concurrent mode a stale
     * register saved while this thread waits for the collector thread now and then
     * retains the first object: the stop-the-world run of the suite checks it. */
    if (opt.gcconcurrent && !opt.gcstoptheworld)
        return 0;
    first_object_holder(hidden, &holder);
    collect();
    int alive = count_alive(hidden, N);
    if (alive > N / 10) {
        fprintf(stderr, "the first object allocated (at heap.lo) is %s, and %d of its %d "
                "children are alive after it became unreachable\n",
                gc_base(SHOW(holder)) == SHOW(holder) ? "alive" : "dead", alive, N);
        return 4;
    }
    return 0;
}

START_TEST(first_object_is_not_rooted_by_collector_data)
{
    run_self("--first-object");
}
END_TEST

/* ---- malloc'd memory and gc_add_roots -------------------------------------------------- */

static __attribute__((noinline)) void fill_malloced(void **slots, uintptr_t *hidden)
{
    for (int i = 0; i < N; i++) {
        slots[i] = gc_malloc(64);
        stamp(slots[i], 64, (unsigned)i);
        hidden[i] = HIDE(slots[i]);
    }
}

START_TEST(malloc_memory_is_not_root)
{
    void **slots = malloc(N * sizeof *slots);
    uintptr_t *hidden = malloc(N * sizeof *hidden);
    ck_assert_ptr_nonnull(slots);
    ck_assert_ptr_nonnull(hidden);

    struct gc_memstats before, after;
    fill_malloced(slots, hidden);
    collect();
    gc_read_memstats(&before);
    ck_assert_most_dead(hidden, N);

    /* Registered: the same kind of objects survive, every one. */
    gc_add_roots(slots, slots + N);
    fill_malloced(slots, hidden);
    collect();
    collect();
    ck_assert_all_alive(hidden, N);
    for (int i = 0; i < N; i++)
        ck_assert(stamped(slots[i], 64, (unsigned)i));
    gc_read_memstats(&after);
    /* "before" may still count a few objects a stale stack word kept alive then. */
    ck_assert_uint_ge(after.heap_objects + 4, before.heap_objects + N);

    /* Unregistered again: reclaimed. */
    gc_remove_roots(slots, slots + N);
    collect();
    ck_assert_most_dead(hidden, N);
    gc_read_memstats(&after);
    ck_assert_uint_le(after.heap_objects, before.heap_objects + N / 10);
    free(slots);
    free(hidden);
}
END_TEST

/* Several ranges: removing one leaves the others; removal of a covering range takes
 * out every range inside it; a range that is only partly covered stays. */
START_TEST(add_remove_several_ranges)
{
    enum { R = 4 };
    void **slots[R];
    uintptr_t *hidden[R];
    for (int r = 0; r < R; r++) {
        slots[r] = malloc(N * sizeof **slots);
        hidden[r] = malloc(N * sizeof **hidden);
        fill_malloced(slots[r], hidden[r]);
        gc_add_roots(slots[r], slots[r] + N);
    }
    collect();
    for (int r = 0; r < R; r++)
        ck_assert_all_alive(hidden[r], N);

    gc_remove_roots(slots[1], slots[1] + N);
    collect();
    ck_assert_all_alive(hidden[0], N);
    ck_assert_most_dead(hidden[1], N);
    ck_assert_all_alive(hidden[2], N);
    ck_assert_all_alive(hidden[3], N);

    /* A range that covers only half of slots[2] does not remove it. */
    gc_remove_roots(slots[2], slots[2] + N / 2);
    collect();
    ck_assert_all_alive(hidden[2], N);

    gc_remove_roots(slots[0], slots[0] + N);
    gc_remove_roots(slots[2], slots[2] + N);
    gc_remove_roots(slots[3], slots[3] + N);
    collect();
    for (int r = 0; r < R; r++)
        ck_assert_most_dead(hidden[r], N);
    for (int r = 0; r < R; r++) {
        free(slots[r]);
        free(hidden[r]);
    }
}
END_TEST

/* A registered range that is not word-aligned still has its aligned words scanned. */
START_TEST(unaligned_range)
{
    char *raw = malloc(N * sizeof(void *) + 16);
    void **slots = (void **)(raw + 8);
    uintptr_t *hidden = malloc(N * sizeof *hidden);
    fill_malloced(slots, hidden);
    gc_add_roots(raw + 3, raw + 8 + N * sizeof(void *) + 5);
    collect();
    ck_assert_all_alive(hidden, N);
    gc_remove_roots(raw, raw + N * sizeof(void *) + 16);
    collect();
    ck_assert_most_dead(hidden, N);
    free(raw);
    free(hidden);
}
END_TEST

/* ---- other threads' stacks --------------------------------------------------------------- */

enum block_mode { BLOCK_COND, BLOCK_READ, BLOCK_SLEEP };

struct holder {
    enum block_mode mode;
    int pipefd[2];
    uintptr_t hidden[N];      /* malloc'd struct: not a root */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int ready, release, bad;
    volatile int done;
};

static __attribute__((noinline)) void hold_and_block(struct holder *h)
{
    void *volatile keep[N];
    for (int i = 0; i < N; i++) {
        keep[i] = gc_malloc(64);
        stamp(keep[i], 64, (unsigned)i);
        h->hidden[i] = HIDE(keep[i]);
    }
    pthread_mutex_lock(&h->lock);
    h->ready = 1;
    pthread_cond_broadcast(&h->cond);
    if (h->mode == BLOCK_COND)
        while (!h->release)
            pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
    if (h->mode == BLOCK_READ) {
        char c;
        while (read(h->pipefd[0], &c, 1) < 0 && errno == EINTR) {
        }
    } else if (h->mode == BLOCK_SLEEP) {
        while (!h->done)
            sleep_ms(5);
    }
    for (int i = 0; i < N; i++)
        if (!stamped(keep[i], 64, (unsigned)i))
            h->bad++;
    for (int i = 0; i < N; i++)
        keep[i] = NULL;
}

static void *holder_thread(void *arg)
{
    struct holder *h = arg;
    if (gc_register_thread() != 0)
        return (void *)1;
    hold_and_block(h);
    clobber_stack();
    gc_unregister_thread();
    return NULL;
}

static void other_thread_stack(enum block_mode mode)
{
    struct holder *h = calloc(1, sizeof *h);
    ck_assert_ptr_nonnull(h);
    h->mode = mode;
    ck_assert_int_eq(pipe(h->pipefd), 0);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, holder_thread, h), 0);
    pthread_mutex_lock(&h->lock);
    while (!h->ready)
        pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
    sleep_ms(20);   /* let it reach its blocking call */

    collect();
    collect();
    ck_assert_all_alive(h->hidden, N);

    pthread_mutex_lock(&h->lock);
    h->release = 1;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    h->done = 1;
    ck_assert_int_eq(write(h->pipefd[1], "x", 1), 1);
    void *ret;
    ck_assert_int_eq(pthread_join(t, &ret), 0);
    ck_assert_ptr_null(ret);
    ck_assert_int_eq(h->bad, 0);

    /* Control: with the thread gone, so are its objects. */
    collect();
    ck_assert_most_dead(h->hidden, N);
    close(h->pipefd[0]);
    close(h->pipefd[1]);
    free(h);
}

START_TEST(thread_stack_blocked_in_cond_wait)
{
    other_thread_stack(BLOCK_COND);
}
END_TEST

START_TEST(thread_stack_blocked_in_read)
{
    other_thread_stack(BLOCK_READ);
}
END_TEST

START_TEST(thread_stack_blocked_in_sleep)
{
    other_thread_stack(BLOCK_SLEEP);
}
END_TEST

/* Several threads at once, each holding its own objects. */
START_TEST(several_thread_stacks)
{
    enum { T = 4 };
    struct holder *h[T];
    pthread_t t[T];
    for (int k = 0; k < T; k++) {
        h[k] = calloc(1, sizeof **h);
        h[k]->mode = (enum block_mode)(k % 3);
        ck_assert_int_eq(pipe(h[k]->pipefd), 0);
        pthread_mutex_init(&h[k]->lock, NULL);
        pthread_cond_init(&h[k]->cond, NULL);
        ck_assert_int_eq(pthread_create(&t[k], NULL, holder_thread, h[k]), 0);
    }
    for (int k = 0; k < T; k++) {
        pthread_mutex_lock(&h[k]->lock);
        while (!h[k]->ready)
            pthread_cond_wait(&h[k]->cond, &h[k]->lock);
        pthread_mutex_unlock(&h[k]->lock);
    }
    sleep_ms(20);
    for (int round = 0; round < 5; round++) {
        collect();
        for (int k = 0; k < T; k++)
            ck_assert_all_alive(h[k]->hidden, N);
    }
    for (int k = 0; k < T; k++) {
        pthread_mutex_lock(&h[k]->lock);
        h[k]->release = 1;
        pthread_cond_broadcast(&h[k]->cond);
        pthread_mutex_unlock(&h[k]->lock);
        h[k]->done = 1;
        ck_assert_int_eq(write(h[k]->pipefd[1], "x", 1), 1);
    }
    for (int k = 0; k < T; k++) {
        ck_assert_int_eq(pthread_join(t[k], NULL), 0);
        ck_assert_int_eq(h[k]->bad, 0);
    }
    collect();
    for (int k = 0; k < T; k++) {
        ck_assert_most_dead(h[k]->hidden, N);
        close(h[k]->pipefd[0]);
        close(h[k]->pipefd[1]);
        free(h[k]);
    }
}
END_TEST

/* ---- interior pointers ------------------------------------------------------------------- */

enum { NI = 64, NL = 8 };
static char *volatile g_interior[NI];
static char *volatile g_interior_large[NL][3];
static uintptr_t g_interior_hidden[NI], g_large_hidden[NL];

static __attribute__((noinline)) void make_interior(void)
{
    for (int i = 0; i < NI; i++) {
        char *p = gc_malloc(1000);
        stamp(p, 1000, (unsigned)i);
        g_interior_hidden[i] = HIDE(p);
        g_interior[i] = p + 500;   /* the middle */
    }
    for (int i = 0; i < NL; i++) {
        char *p = gc_malloc(100 << 10);
        stamp(p, 100 << 10, (unsigned)i);
        g_large_hidden[i] = HIDE(p);
        /* Different pages of the span: the middle, the last byte asked for, and a
         * byte inside the first page (not the start). */
        int which = i % 3;
        for (int k = 0; k < 3; k++)
            g_interior_large[i][k] = NULL;
        g_interior_large[i][which] = which == 0   ? p + (50 << 10)
                                     : which == 1 ? p + (100 << 10) - 1
                                                  : p + 8;
    }
}

START_TEST(interior_pointers_keep_objects)
{
    make_interior();
    collect();
    collect();
    ck_assert_all_alive(g_interior_hidden, NI);
    ck_assert_all_alive(g_large_hidden, NL);
    for (int i = 0; i < NI; i++)
        ck_assert(stamped(SHOW(g_interior_hidden[i]), 1000, (unsigned)i));
    for (int i = 0; i < NL; i++)
        ck_assert(stamped(SHOW(g_large_hidden[i]), 100 << 10, (unsigned)i));
    /* gc_base maps each interior pointer back to its object. */
    for (int i = 0; i < NI; i++)
        ck_assert_ptr_eq(gc_base(g_interior[i]), SHOW(g_interior_hidden[i]));
    /* Control. */
    for (int i = 0; i < NI; i++)
        g_interior[i] = NULL;
    for (int i = 0; i < NL; i++)
        for (int k = 0; k < 3; k++)
            g_interior_large[i][k] = NULL;
    collect();
    ck_assert_most_dead(g_interior_hidden, NI);
    int alive = count_alive(g_large_hidden, NL);
    ck_assert_msg(alive <= 2, "%d of %d unreachable large objects alive", alive, NL);
}
END_TEST

/* An interior pointer on another thread's stack (not a global). */
struct interior_arg {
    uintptr_t hidden;
    int ready, release;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static __attribute__((noinline)) void interior_on_stack(struct interior_arg *a)
{
    char *p = gc_malloc(100 << 10);
    a->hidden = HIDE(p);
    char *volatile mid = p + (70 << 10);
    p = NULL;
    pthread_mutex_lock(&a->lock);
    a->ready = 1;
    pthread_cond_broadcast(&a->cond);
    while (!a->release)
        pthread_cond_wait(&a->cond, &a->lock);
    pthread_mutex_unlock(&a->lock);
    mid = NULL;
    (void)mid;
}

static void *interior_thread(void *arg)
{
    gc_register_thread();
    interior_on_stack(arg);
    gc_unregister_thread();
    return NULL;
}

START_TEST(interior_pointer_on_thread_stack)
{
    struct interior_arg *a = calloc(1, sizeof *a);
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, interior_thread, a), 0);
    pthread_mutex_lock(&a->lock);
    while (!a->ready)
        pthread_cond_wait(&a->cond, &a->lock);
    pthread_mutex_unlock(&a->lock);
    sleep_ms(10);
    collect();
    void *obj = SHOW(a->hidden);
    ck_assert_msg(gc_base(obj) == obj, "large object %p, referenced only by an interior "
                  "pointer on a blocked thread's stack, was freed", obj);
    obj = NULL;
    pthread_mutex_lock(&a->lock);
    a->release = 1;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    free(a);
}
END_TEST

static Suite *roots_suite(void)
{
    Suite *s = suite_create("roots");
    TCase *tc = tcase_create("globals");
    tcase_add_test(tc, bss_global_is_root);
    tcase_add_test(tc, data_global_is_root);
    tcase_add_test(tc, heap_object_reachable_from_global);
    tcase_add_test(tc, globals_scanned_covers_executable);
    tcase_add_test(tc, collect_with_empty_heap);
    tcase_add_test(tc, first_object_is_not_rooted_by_collector_data);
    suite_add_tcase(s, tc);

    tc = tcase_create("added");
    tcase_add_test(tc, malloc_memory_is_not_root);
    tcase_add_test(tc, add_remove_several_ranges);
    tcase_add_test(tc, unaligned_range);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_add_test(tc, thread_stack_blocked_in_cond_wait);
    tcase_add_test(tc, thread_stack_blocked_in_read);
    tcase_add_test(tc, thread_stack_blocked_in_sleep);
    tcase_add_test(tc, several_thread_stacks);
    suite_add_tcase(s, tc);

    tc = tcase_create("interior");
    tcase_add_test(tc, interior_pointers_keep_objects);
    tcase_add_test(tc, interior_pointer_on_thread_stack);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--empty-heap") == 0)
        return empty_heap_main();
    if (argc > 1 && strcmp(argv[1], "--first-object") == 0)
        return first_object_main();
    gc_init();
    /* One allocation, so that every test starts with a mapped heap (an empty heap is
     * tested by collect_with_empty_heap alone). */
    void *volatile first = gc_malloc(16);
    (void)first;
    SRunner *sr = srunner_create(roots_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
