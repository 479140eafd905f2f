/* test_verify.c - unit tests for gc/verify.c: the debug heap verifier.
 *
 * The verifier must pass on a healthy heap (every kind of object, explicit frees,
 * garbage, a second thread's cache, objects allocated since the last cycle), called
 * directly with the world stopped and the caches flushed, as cycle_run calls it in
 * debug builds, and also in the middle of a cycle run by hand (after marking, after
 * sweeping).  Then each kind of damage it looks for is done, in a forked child that
 * runs the verifier: the child must die of SIGABRT with "tricolor: fatal: verify: "
 * and the exact message naming the span or object.  Children that make no damage, or
 * damage that is no violation (a noscan object pointing to a white one, a black one
 * pointing to a freed slot), must exit normally, so the harness itself can fail.
 *
 * The tests run in both builds: in a release build nothing else calls the verifier;
 * in a debug build every gc_collect also runs it.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <check.h>
#include "testutil.h"
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)


/* ---- a varied heap ------------------------------------------------------------------------- */

struct node {
    struct node *next;
    void *payload;
    uint64_t value;
};

#define NKEEP 512
static void *volatile keep[NKEEP];   /* data segment: a root */
static struct node *volatile list_head;
static int nkeep;

static void *kept(void *p)
{
    ck_assert_ptr_nonnull(p);
    ck_assert_int_lt(nkeep, NKEEP);
    keep[nkeep++] = p;
    return p;
}

static __attribute__((noinline)) void make_garbage(size_t bytes)
{
    for (size_t done = 0; done < bytes; done += 512) {
        void *p = gc_malloc(done % 4096 ? 512 : 40 * KiB);
        ck_assert_ptr_nonnull(p);
    }
}

/* Small scanned and noscan objects of many classes, tiny ones, large ones, a list,
 * explicit frees, garbage; then a cycle, then more allocation so caches are busy. */
static void build_heap(void)
{
    nkeep = 0;   /* what an earlier test kept (CK_FORK=no) may die */
    for (int i = 0; i < NKEEP; i++)
        keep[i] = NULL;
    struct node *head = NULL;
    for (int i = 0; i < 300; i++) {
        struct node *n = gc_malloc(sizeof *n);
        ck_assert_ptr_nonnull(n);
        n->next = head;
        n->payload = i % 3 ? gc_malloc_atomic(16 + (size_t)i * 7) : gc_malloc(200);
        ck_assert_ptr_nonnull(n->payload);
        n->value = (uint64_t)i;
        head = n;
    }
    list_head = head;
    static const size_t sizes[] = {16, 48, 100, 144, 1000, 3000, 9000, 20000, 32768};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        kept(gc_malloc(sizes[i]));
        kept(gc_malloc_atomic(sizes[i]));
        void *f = gc_malloc(sizes[i]);   /* freed explicitly */
        ck_assert_ptr_nonnull(f);
        gc_free(f);
    }
    for (int i = 1; i < 16; i++)
        kept(gc_malloc_atomic((size_t)(i % 15) + 1));   /* tiny */
    kept(gc_malloc(40 * KiB));
    kept(gc_malloc_atomic(100 * KiB));
    kept(gc_malloc(MiB + 5));
    void *big = gc_malloc(200 * KiB);
    ck_assert_ptr_nonnull(big);
    gc_free(big);
    make_garbage(2 * MiB);
    clobber_stack();
    gc_collect();
    /* After the cycle: fresh objects and reserved slots in the caches. */
    for (int i = 0; i < 40; i++)
        kept(i % 2 ? gc_malloc(64) : gc_malloc_atomic(3));
    kept(gc_malloc(50 * KiB));
}

static void stop_and_flush(void)
{
    stw_stop_world();
    for (struct mutator *m = stw_threads; m; m = m->next)
        alloc_flush_cache(m);
}

static void set_bit(atomic_word *bits, uint32_t i)
{
    AO_store(&bits[i >> 6], AO_load(&bits[i >> 6]) | ((AO_t)1 << (i & 63)));
}

static void mark_object(void *p)
{
    struct span *s = heap_span_of((uintptr_t)p);
    ck_assert_ptr_nonnull(s);
    set_bit(s->mark_bits, s->cls ? span_index(s, (uintptr_t)p) : 0);
}

/* ---- healthy heaps -------------------------------------------------------------------------- */

/* A second registered thread with objects on its stack and slots in its cache. */
struct holder {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int ready, quit;
    void *objs[64];
};

static void *holder_main(void *arg)
{
    struct holder *h = arg;
    void *local[64];
    for (int i = 0; i < 64; i++)
        local[i] = i % 4 ? gc_malloc((size_t)(i + 1) * 24) : gc_malloc_atomic((size_t)i + 1);
    memcpy(h->objs, local, sizeof local);
    pthread_mutex_lock(&h->lock);
    h->ready = 1;
    pthread_cond_broadcast(&h->cond);
    while (!h->quit)
        pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
    for (int i = 0; i < 64; i++)
        if (local[i] != h->objs[i])
            return (void *)1;
    return NULL;
}

START_TEST(healthy_heap_passes)
{
    build_heap();
    struct holder h = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    pthread_t t;
    ck_assert_int_eq(gc_thread_create(&t, NULL, holder_main, &h), 0);
    pthread_mutex_lock(&h.lock);
    while (!h.ready)
        pthread_cond_wait(&h.cond, &h.lock);
    pthread_mutex_unlock(&h.lock);

    void *volatile more[100];
    for (int round = 0; round < 3; round++) {
        stop_and_flush();
        verify_no_black_to_white();
        verify_heap();
        stw_start_world();
        /* Still usable, and still verifiable after a cycle and more allocation. */
        for (int i = 0; i < 100; i++) {
            more[i] = gc_malloc((size_t)(round * 100 + i) * 13 % 2000 + 1);
            ck_assert_ptr_nonnull(more[i]);
        }
        make_garbage(MiB);
        gc_collect();
        for (int i = 0; i < 100; i += 3)
            gc_free(more[i]);
    }

    pthread_mutex_lock(&h.lock);
    h.quit = 1;
    pthread_cond_broadcast(&h.cond);
    pthread_mutex_unlock(&h.lock);
    void *rv;
    ck_assert_int_eq(pthread_join(t, &rv), 0);
    ck_assert_ptr_null(rv);
    stop_and_flush();
    verify_heap();
    stw_start_world();
}
END_TEST

/* A cycle by hand, as cycle_run runs it, with both checks at their places: after
 * marking (objects are black now) and after sweeping. */

struct manual_result {
    int list_len, list_marked;
    int keep_unmarked;
    uint64_t live;
};

static void manual_cycle(struct manual_result *r, bool verify)
{
    static struct mark_state ms;
    static bool ready;
    if (!ready) {
        mark_init(&ms, (size_t)1 << 20);
        ready = true;
    }
    memset(r, 0, sizeof *r);
    /* With a collector thread (concurrent mode) a cycle of its own may be under way:
     * let it finish, and start no other until this one is done. */
    gc_disable();
    gc_collect();
    pthread_mutex_lock(&cycle.lock);
    roots_prepare();
    stop_and_flush();
    ms.top = 0;
    ms.overflowed = false;
    ms.bytes_scanned = ms.bytes_marked = ms.objects_marked = 0;
    roots_scan_stacks(&ms);
    roots_scan_globals(&ms);
    mark_drain(&ms);
    for (struct node *n = list_head; n; n = n->next) {
        r->list_len++;
        r->list_marked += mark_is_marked((uintptr_t)n) && mark_is_marked((uintptr_t)n->payload);
    }
    for (int i = 0; i < nkeep; i++)
        r->keep_unmarked += !mark_is_marked((uintptr_t)keep[i]);
    if (verify)
        verify_no_black_to_white();
    uint64_t live = sweep_all();
    if (verify)
        verify_heap();
    AO_store(&alloc_heap_live, live);
    r->live = live;
    stw_start_world();
    pthread_mutex_unlock(&cycle.lock);
    gc_enable();
}

START_TEST(healthy_heap_passes_mid_cycle)
{
    build_heap();
    make_garbage(MiB);
    clobber_stack();
    struct manual_result r;
    manual_cycle(&r, true);
    ck_assert_int_eq(r.list_len, 300);
    ck_assert_int_eq(r.list_marked, 300);   /* the check had black objects to look at */
    ck_assert_int_eq(r.keep_unmarked, 0);
    ck_assert_uint_ge(r.live, MiB);
    /* And the heap goes on working, and verifying, after it. */
    for (int i = 0; i < 400; i++)
        kept(gc_malloc(24));
    make_garbage(MiB);
    manual_cycle(&r, true);
    ck_assert_int_eq(r.keep_unmarked, 0);
    ck_assert_int_eq(r.list_marked, 300);
    gc_collect();
}
END_TEST

/* ---- the death harness ------------------------------------------------------------------------- */

enum check { HEAP, BLACK };
typedef void (*damage_fn)(void *arg);

struct outcome {
    int status;
    char err[4096];
};

/* In a child: stop the world, flush the caches, do the damage, run the check. */
static void run_child(damage_fn damage, void *arg, enum check which, struct outcome *o)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        close(fds[0]);
        if (dup2(fds[1], 2) != 2)
            _exit(70);
        close(fds[1]);
        stop_and_flush();
        if (damage)
            damage(arg);
        if (which == HEAP)
            verify_heap();
        else
            verify_no_black_to_white();
        stw_start_world();
        _exit(0);
    }
    close(fds[1]);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fds[0], o->err + len, sizeof o->err - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof o->err - 1)
            break;
    }
    o->err[len] = 0;
    close(fds[0]);
    pid_t w;
    while ((w = waitpid(pid, &o->status, 0)) < 0 && errno == EINTR) {
    }
    ck_assert_int_eq(w, pid);
}

/* The verifier must abort with "tricolor: fatal: verify: <want>". */
static void expect_death(damage_fn damage, void *arg, enum check which, const char *want)
{
    struct outcome o;
    run_child(damage, arg, which, &o);
    ck_assert_msg(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT,
                  "verifier did not abort (status 0x%x), stderr: \"%s\", wanted \"%s\"",
                  o.status, o.err, want);
    ck_assert_msg(strncmp(o.err, "tricolor: fatal: verify: ", 25) == 0,
                  "stderr does not start with the verify prefix: \"%s\"", o.err);
    ck_assert_msg(strstr(o.err, want) != NULL, "stderr \"%s\" does not say \"%s\"", o.err,
                  want);
    ck_assert_msg(strchr(o.err, '\n') == o.err + strlen(o.err) - 1,
                  "not exactly one line: \"%s\"", o.err);
}

static void expect_pass(damage_fn damage, void *arg, enum check which)
{
    struct outcome o;
    run_child(damage, arg, which, &o);
    ck_assert_msg(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0,
                  "verifier failed (status 0x%x): \"%s\"", o.status, o.err);
    ck_assert_str_eq(o.err, "");
}

START_TEST(harness_passes_without_damage)
{
    build_heap();
    expect_pass(NULL, NULL, HEAP);
    expect_pass(NULL, NULL, BLACK);
}
END_TEST

/* ---- verify_heap: one kind of damage each ------------------------------------------------------ */

static void damage_mark(void *p)
{
    mark_object(p);
}

START_TEST(catches_mark_bit_after_sweep)
{
    build_heap();
    char want[200];
    void *p = kept(gc_malloc(100));
    struct span *s = heap_span_of((uintptr_t)p);
    snprintf(want, sizeof want, "span %p slot %u still marked after sweep", (void *)s->base,
             span_index(s, (uintptr_t)p));
    expect_death(damage_mark, p, HEAP, want);

    void *l = kept(gc_malloc(70 * KiB));
    snprintf(want, sizeof want, "span %p slot 0 still marked after sweep", l);
    expect_death(damage_mark, l, HEAP, want);
}
END_TEST

struct bit_damage {
    struct span *s;
    uint32_t index;
};

static void damage_alloc_bit(void *arg)
{
    struct bit_damage *d = arg;
    set_bit(d->s->alloc_bits, d->index);
}

START_TEST(catches_alloc_bit_past_end)
{
    build_heap();
    void *p = kept(gc_malloc(48));
    struct span *s = heap_span_of((uintptr_t)p);
    ck_assert_uint_eq(s->state, SPAN_SMALL);
    ck_assert_uint_lt(s->nelems, MAX_SPAN_OBJECTS);
    char want[200];
    struct bit_damage d = {s, s->nelems};
    snprintf(want, sizeof want, "span %p slot %u allocated past its end", (void *)s->base,
             s->nelems);
    expect_death(damage_alloc_bit, &d, HEAP, want);
    d.index = MAX_SPAN_OBJECTS - 1;   /* the very last bit of the bitmap */
    snprintf(want, sizeof want, "span %p slot %u allocated past its end", (void *)s->base,
             MAX_SPAN_OBJECTS - 1);
    expect_death(damage_alloc_bit, &d, HEAP, want);

    void *l = kept(gc_malloc(64 * KiB));   /* a large object has one slot */
    struct bit_damage dl = {heap_span_of((uintptr_t)l), 1};
    snprintf(want, sizeof want, "span %p slot 1 allocated past its end", l);
    expect_death(damage_alloc_bit, &dl, HEAP, want);
}
END_TEST

static void damage_pages_inuse(void *arg)
{
    heap.pages_inuse += (uint64_t)(intptr_t)arg;
}

START_TEST(catches_pages_inuse_off_by_one)
{
    build_heap();
    heap_lock();
    uint64_t inuse = heap.pages_inuse;
    heap_unlock();
    char want[200];
    snprintf(want, sizeof want, "pages in use %" PRIu64 " (counted %" PRIu64 ")", inuse + 1,
             inuse);
    expect_death(damage_pages_inuse, (void *)(intptr_t)1, HEAP, want);
    snprintf(want, sizeof want, "pages in use %" PRIu64 " (counted %" PRIu64 ")", inuse - 1,
             inuse);
    expect_death(damage_pages_inuse, (void *)(intptr_t)-1, HEAP, want);
}
END_TEST

static void damage_mapped(void *arg)
{
    (void)arg;
    heap.pages_mapped += 1;
}

START_TEST(catches_pages_mapped_off_by_one)
{
    build_heap();
    expect_death(damage_mapped, NULL, HEAP, "pages in use");
}
END_TEST

struct map_damage {
    uintptr_t page;
    struct span *wrong;
};

static void damage_map(void *arg)
{
    struct map_damage *d = arg;
    heap.arenas[d->page >> ARENA_SHIFT]->spans[(d->page >> PAGE_SHIFT) & (ARENA_PAGES - 1)] =
        d->wrong;
}

START_TEST(catches_map_pointing_elsewhere)
{
    build_heap();
    char *l = kept(gc_malloc(100 * KiB));   /* 13 pages */
    struct span *ls = heap_span_of((uintptr_t)l);
    ck_assert_uint_ge(ls->npages, 5);
    struct span *other = heap_span_of((uintptr_t)kept(gc_malloc(32)));
    ck_assert_ptr_ne(other, ls);
    struct map_damage d = {(uintptr_t)l + 3 * PAGE_SIZE, other};
    char want[200];
    snprintf(want, sizeof want, "page 3 of span %p does not map to it", (void *)l);
    expect_death(damage_map, &d, HEAP, want);
    /* An interior page mapped to nothing. */
    d.page = (uintptr_t)l + (ls->npages - 1) * PAGE_SIZE;
    d.wrong = NULL;
    snprintf(want, sizeof want, "page %u of span %p does not map to it", ls->npages - 1,
             (void *)l);
    expect_death(damage_map, &d, HEAP, want);
    /* The last page of a small span of several pages pointing at the large span. */
    unsigned cls = 1;
    while (cls <= NUM_CLASSES && sc_table[cls].npages < 2)
        cls++;
    ck_assert_uint_le(cls, NUM_CLASSES);
    void *sm = kept(gc_malloc(sc_table[cls].size));
    struct span *ss = heap_span_of((uintptr_t)sm);
    ck_assert_uint_eq(ss->npages, sc_table[cls].npages);
    d.page = ss->base + (ss->npages - 1) * PAGE_SIZE;
    d.wrong = ls;
    snprintf(want, sizeof want, "page %u of span %p does not map to it", ss->npages - 1,
             (void *)ss->base);
    expect_death(damage_map, &d, HEAP, want);
}
END_TEST

struct list_damage {
    struct span *s;
    int kind, cls;
};

/* Take s off its central list (if on one) and push it onto [kind][cls]. */
static void damage_list(void *arg)
{
    struct list_damage *d = arg;
    struct span *s = d->s;
    if (s->list) {
        struct central *own = &alloc_central[s->kind][s->cls];
        if (s->prev)
            s->prev->next = s->next;
        else if (s->list == LIST_PARTIAL)
            own->partial = s->next;
        else
            own->full = s->next;
        if (s->next)
            s->next->prev = s->prev;
    }
    struct central *c = &alloc_central[d->kind][d->cls];
    s->prev = NULL;
    s->next = c->partial;
    if (c->partial)
        c->partial->prev = s;
    c->partial = s;
    s->list = LIST_PARTIAL;
}

START_TEST(catches_span_on_wrong_central_list)
{
    build_heap();
    void *p = kept(gc_malloc(48));
    struct span *s = heap_span_of((uintptr_t)p);
    ck_assert_uint_eq(s->kind, KIND_SCAN);
    char want[200];
    snprintf(want, sizeof want, "span %p on the wrong central list", (void *)s->base);
    struct list_damage d = {s, KIND_SCAN, s->cls};
    expect_pass(damage_list, &d, HEAP);   /* its own list: no damage */
    d.cls = s->cls + 1;                    /* the next class */
    expect_death(damage_list, &d, HEAP, want);
    d.cls = s->cls;
    d.kind = KIND_NOSCAN;                  /* the right class, the wrong kind */
    expect_death(damage_list, &d, HEAP, want);

    void *l = kept(gc_malloc(64 * KiB));   /* a large span on a small list */
    struct list_damage dl = {heap_span_of((uintptr_t)l), KIND_SCAN, 1};
    snprintf(want, sizeof want, "span %p on the wrong central list", l);
    expect_death(damage_list, &dl, HEAP, want);
}
END_TEST

struct counter_damage {
    atomic_word *counter;
    AO_t delta;
};

static void damage_counter(void *arg)
{
    struct counter_damage *d = arg;
    AO_store(d->counter, AO_load(d->counter) + d->delta);
}

START_TEST(catches_counters_off)
{
    build_heap();
    void *p = kept(gc_malloc(48));
    unsigned cls = sc_of(48);
    uint64_t size = sc_table[cls].size;
    (void)p;
    struct gc_memstats *ms = malloc(sizeof *ms);
    ck_assert_ptr_nonnull(ms);
    gc_read_memstats(ms);
    uint64_t objs = ms->heap_objects, bytes = ms->heap_alloc;
    free(ms);
    ck_assert_uint_gt(objs, 0);
    char want[300];
    /* One malloc too many in this thread's counters. */
    struct counter_damage d = {&alloc_self->stats.nmalloc[cls], 1};
    snprintf(want, sizeof want,
             "counters say %" PRIu64 " objects / %" PRIu64 " bytes, bitmaps %" PRIu64
             " / %" PRIu64,
             objs + 1, bytes + size, objs, bytes);
    expect_death(damage_counter, &d, HEAP, want);
    /* One free too many, counted by the sweeper. */
    d.counter = &sweep_nfree[cls];
    snprintf(want, sizeof want,
             "counters say %" PRIu64 " objects / %" PRIu64 " bytes, bitmaps %" PRIu64
             " / %" PRIu64,
             objs - 1, bytes - size, objs, bytes);
    expect_death(damage_counter, &d, HEAP, want);
    /* Only the bytes: large allocations counted one page too many. */
    d.counter = &alloc_self->stats.large_alloc_bytes;
    d.delta = PAGE_SIZE;
    snprintf(want, sizeof want,
             "counters say %" PRIu64 " objects / %" PRIu64 " bytes, bitmaps %" PRIu64
             " / %" PRIu64,
             objs, bytes + PAGE_SIZE, objs, bytes);
    expect_death(damage_counter, &d, HEAP, want);
    /* Tiny allocations count as a malloc and a free: one more changes nothing. */
    d.counter = &alloc_self->stats.tiny_allocs;
    d.delta = 1;
    expect_pass(damage_counter, &d, HEAP);
}
END_TEST

/* A few more of the checks. */
static void damage_cached(void *s)
{
    ((struct span *)s)->cached = 1;
}

static void damage_bin_mask(void *arg)
{
    unsigned b = (unsigned)(uintptr_t)arg;
    heap.bin_mask[b >> 6] ^= (uint64_t)1 << (b & 63);
}

static void damage_class(void *s)
{
    ((struct span *)s)->cls++;
}

START_TEST(catches_other_damage)
{
    build_heap();
    void *p = kept(gc_malloc(48));
    struct span *s = heap_span_of((uintptr_t)p);
    char want[200];
    snprintf(want, sizeof want, "span %p still cached after the flush", (void *)s->base);
    expect_death(damage_cached, s, HEAP, want);
    snprintf(want, sizeof want, "span %p has a bad class %u", (void *)s->base, s->cls + 1);
    expect_death(damage_class, s, HEAP, want);
    unsigned empty = 0;
    for (unsigned b = 1; b < 128 && !empty; b++)
        if (!heap.bins[b])
            empty = b;
    ck_assert_uint_gt(empty, 0);
    snprintf(want, sizeof want, "bin %u and its mask bit disagree", empty);
    expect_death(damage_bin_mask, (void *)(uintptr_t)empty, HEAP, want);
}
END_TEST

/* ---- verify_no_black_to_white ------------------------------------------------------------------- */

struct bw {
    void *black[2];   /* objects to mark */
    int nblack;
};

static void damage_blacken(void *arg)
{
    struct bw *d = arg;
    for (int i = 0; i < d->nblack; i++)
        mark_object(d->black[i]);
}

static char *black_white(char *buf, size_t len, void *a, size_t asize, void *b)
{
    snprintf(buf, len, "black object %p (%zu B) points to white object %p", a, asize, b);
    return buf;
}

START_TEST(catches_black_to_white)
{
    build_heap();
    void **a = kept(gc_malloc(64));
    void **b = kept(gc_malloc(64));
    a[0] = b;
    char want[200];
    struct bw d = {{a}, 1};
    expect_death(damage_blacken, &d, BLACK, black_white(want, sizeof want, a, 64, b));
    /* Both black: fine.  verify_heap would object to the marks, this check does not. */
    struct bw both = {{a, b}, 2};
    expect_pass(damage_blacken, &both, BLACK);

    /* An interior pointer names the object's start. */
    a[0] = (char *)b + 24;
    expect_death(damage_blacken, &d, BLACK, black_white(want, sizeof want, a, 64, b));

    /* The pointer in the last word of a black large object, to a white large one. */
    char *la = kept(gc_malloc(100 * KiB));
    void *lb = kept(gc_malloc(50 * KiB));
    size_t la_size = (size_t)heap_span_of((uintptr_t)la)->npages * PAGE_SIZE;
    *(void **)(la + la_size - sizeof(void *)) = lb;
    struct bw dl = {{la}, 1};
    expect_death(damage_blacken, &dl, BLACK, black_white(want, sizeof want, la, la_size, lb));
}
END_TEST

START_TEST(black_to_white_ignores_what_is_no_violation)
{
    build_heap();
    /* A noscan object is never scanned: its words are not pointers. */
    void **n = kept(gc_malloc_atomic(64));
    void *w = kept(gc_malloc(64));
    n[0] = w;
    struct bw d = {{n}, 1};
    expect_pass(damage_blacken, &d, BLACK);

    /* A pointer to a freed slot or outside the heap is not a white object. */
    void **a = kept(gc_malloc(64));
    void *f = gc_malloc(64);
    ck_assert_ptr_nonnull(f);
    gc_free(f);
    a[0] = f;
    a[1] = &d;
    a[2] = (void *)(uintptr_t)1;
    struct bw da = {{a}, 1};
    expect_pass(damage_blacken, &da, BLACK);

    /* Unmarked objects pointing to unmarked ones: nothing is black. */
    void **x = kept(gc_malloc(64));
    x[0] = kept(gc_malloc(64));
    expect_pass(NULL, NULL, BLACK);
}
END_TEST

/* The case the check exists for: a store into a black object, after marking, of a
 * pointer to an object the mark did not reach, with no barrier to shade it. */
static uintptr_t hidden_white;
static void *volatile black_holder;

/* Mark from the roots; then, if arg, store the white object into a black one. */
static void damage_store_after_mark(void *arg)
{
    static struct mark_state ms;
    mark_init(&ms, (size_t)1 << 20);
    roots_scan_stacks(&ms);
    roots_scan_globals(&ms);
    mark_drain(&ms);
    if (arg)
        ((void **)black_holder)[1] = (void *)(hidden_white ^ 0x5A5A5A5A5A5A5A5Au);
}

static __attribute__((noinline)) void make_hidden_white(void)
{
    void *p = gc_malloc(200);
    ck_assert_ptr_nonnull(p);
    hidden_white = (uintptr_t)p ^ 0x5A5A5A5A5A5A5A5Au;
}

START_TEST(catches_unbarriered_store_after_real_mark)
{
    build_heap();
    black_holder = gc_malloc(64);
    ck_assert_ptr_nonnull(black_holder);
    make_hidden_white();
    clobber_stack();
    /* A complete mark leaves no black-to-white edge. */
    roots_prepare();
    expect_pass(damage_store_after_mark, NULL, BLACK);
    /* The expected message is not formatted in advance: that would put the white
     * object's address on this stack, and the mark would find it. */
    char want[200];
    snprintf(want, sizeof want, "black object %p (64 B) points to white object 0x",
             black_holder);
    struct outcome o;
    run_child(damage_store_after_mark, (void *)1, BLACK, &o);
    ck_assert_msg(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGABRT,
                  "verifier did not abort (status 0x%x), stderr: \"%s\"", o.status, o.err);
    ck_assert_msg(strncmp(o.err, "tricolor: fatal: verify: ", 25) == 0, "stderr: \"%s\"",
                  o.err);
    const char *at = strstr(o.err, want);
    ck_assert_msg(at != NULL, "stderr \"%s\" does not say \"%s\"", o.err, want);
    uintptr_t named = (uintptr_t)strtoull(at + strlen(want), NULL, 16);
    ck_assert_msg((named ^ 0x5A5A5A5A5A5A5A5Au) == hidden_white,
                  "the message names another object: \"%s\"", o.err);
}
END_TEST

static Suite *verify_suite(void)
{
    Suite *s = suite_create("verify");
    TCase *tc = tcase_create("healthy");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, healthy_heap_passes);
    tcase_add_test(tc, healthy_heap_passes_mid_cycle);
    tcase_add_test(tc, harness_passes_without_damage);
    suite_add_tcase(s, tc);

    tc = tcase_create("heap");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, catches_mark_bit_after_sweep);
    tcase_add_test(tc, catches_alloc_bit_past_end);
    tcase_add_test(tc, catches_pages_inuse_off_by_one);
    tcase_add_test(tc, catches_pages_mapped_off_by_one);
    tcase_add_test(tc, catches_map_pointing_elsewhere);
    tcase_add_test(tc, catches_span_on_wrong_central_list);
    tcase_add_test(tc, catches_counters_off);
    tcase_add_test(tc, catches_other_damage);
    suite_add_tcase(s, tc);

    tc = tcase_create("black_to_white");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, catches_black_to_white);
    tcase_add_test(tc, black_to_white_ignores_what_is_no_violation);
    tcase_add_test(tc, catches_unbarriered_store_after_real_mark);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    gc_init();
    /* The lowest object of the heap is retained by heap.lo (see test_roots). */
    void *volatile first = gc_malloc(16);
    (void)first;
    SRunner *sr = srunner_create(verify_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
