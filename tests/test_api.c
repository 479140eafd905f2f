/* test_api.c - whole-program tests of the public allocation and control calls.
 *
 * Links the public library only (include <tricolor.h>).  Checks, against the contract
 * in doc/api.md: gc_malloc zeroes memory and aligns to 16 for every size up to 70000,
 * size 0 gives unique non-NULL pointers, gc_calloc overflow, gc_realloc, gc_strdup,
 * gc_size/gc_base (interior, large, non-heap), gc_free and reuse, the one-line report
 * for a bad pointer passed to gc_free/gc_realloc, tiny objects that share a block,
 * a collection before the first allocation, gc_disable/gc_enable nesting, gc_set_percent, gc_set_memory_limit, the cycle hook,
 * and out of memory under RLIMIT_AS in a forked child.
 *
 * Conservative scanning can keep any object alive through a stale word, so no test
 * asserts that one particular object was reclaimed.
 */
#define _GNU_SOURCE
#include <tricolor.h>

#include <check.h>
#define TESTUTIL_OWN_RNG
#include "testutil.h"
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


/* ---- helpers ------------------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1du;
}

static struct gc_memstats *stats(void)
{
    /* The struct is large (about 6 KiB): keep it off small stacks. */
    static struct gc_memstats m;
    gc_read_memstats(&m);
    return &m;
}

static uint32_t num_gc(void) { return stats()->num_gc; }

/* Automatic cycles run on the collector thread and may still be marking when the
 * allocation that started them returns: wait (up to 10 s) for num_gc to pass n. */
static uint32_t num_gc_above(uint32_t n)
{
    for (int i = 0; i < 10000 && num_gc() <= n; i++)
        usleep(1000);
    return num_gc();
}

static int all_bytes(const void *p, int c, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)c)
            return 0;
    return 1;
}

/* Capture what is written to fd 2 (the collector writes with write(2)). */
struct capture {
    int saved;
    FILE *tmp;
};

static void capture_begin(struct capture *c)
{
    fflush(stderr);
    c->tmp = tmpfile();
    must(c->tmp != NULL);
    c->saved = dup(2);
    ck_assert_int_ge(c->saved, 0);
    ck_assert_int_ge(dup2(fileno(c->tmp), 2), 0);
}

static size_t capture_end(struct capture *c, char *buf, size_t len)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    rewind(c->tmp);
    size_t n = fread(buf, 1, len - 1, c->tmp);
    buf[n] = 0;
    fclose(c->tmp);
    return n;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* A small live structure allocated before the bad calls and checked after them. */
struct sentinel {
    struct sentinel *next;
    uint64_t id, magic;
};
static struct sentinel *sentinels;   /* global: a root */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdu;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53u;
    x ^= x >> 33;
    return x;
}

static void sentinels_build(int n)
{
    sentinels = NULL;
    for (int i = 0; i < n; i++) {
        struct sentinel *s = gc_malloc(sizeof *s);
        must(s != NULL);
        s->id = (uint64_t)i;
        s->magic = mix((uint64_t)i);
        s->next = sentinels;
        sentinels = s;
    }
}

static void sentinels_check(int n)
{
    int seen = 0;
    for (struct sentinel *s = sentinels; s; s = s->next, seen++) {
        ck_assert_uint_eq(s->id, (uint64_t)(n - 1 - seen));
        ck_assert_uint_eq(s->magic, mix(s->id));
    }
    ck_assert_int_eq(seen, n);
}

/* Allocate and drop about `bytes` of small garbage. */
static void churn(size_t bytes)
{
    size_t done = 0;
    while (done < bytes) {
        size_t n = 16 + rnd() % 2000;
        char *p = gc_malloc(n);
        must(p != NULL);
        p[0] = 1;
        p[n - 1] = 2;
        done += n;
    }
}

/* gc_init plus one object, so that no test below collects an empty heap by accident:
 * test_collect_empty_heap covers that case on its own. */
static void *first_object;

static void start(void)
{
    gc_init();
    first_object = gc_malloc(64);
    must(first_object != NULL);
}

/* ---- zeroing ---------------------------------------------------------------------------- */

static void *zero_keep[64];   /* a few objects outlive a round, so spans are mixed */

START_TEST(test_malloc_zeroes)
{
    gc_init();
    for (int round = 0; round < 60; round++) {
        for (int i = 0; i < 1500; i++) {
            size_t n;
            uint64_t r = rnd();
            if (i % 100 == 0)
                n = 32769 + r % 100000;          /* large */
            else if (i % 10 == 0)
                n = 1 + r % 32768;               /* any small class */
            else
                n = 1 + r % 512;
            int atomic = (r >> 40) & 1;
            unsigned char *p = atomic ? gc_malloc_atomic(n) : gc_malloc(n);
            must(p != NULL);
            if (!all_bytes(p, 0, n))
                ck_abort_msg("round %d: %s(%zu) = %p is not zeroed", round,
                             atomic ? "gc_malloc_atomic" : "gc_malloc", n, (void *)p);
            memset(p, 0xA5, n);
            if (i % 7 == 0)
                zero_keep[r % 64] = p;
            if (i % 13 == 0)
                gc_free(p);   /* explicit free: its slot must come back zeroed too */
        }
        unsigned char *c = gc_calloc(100 + round, 24);
        must(c != NULL);
        must(all_bytes(c, 0, (size_t)(100 + round) * 24));
        memset(c, 0xA5, (size_t)(100 + round) * 24);
        if (round % 10 == 9)
            gc_free_os_memory();   /* released pages must read back as zero as well */
        else
            gc_collect();
    }
}
END_TEST

/* ---- alignment and size 0 -------------------------------------------------------------- */

START_TEST(test_alignment_all_sizes)
{
    gc_init();
    for (size_t n = 1; n <= 70000; n++) {
        char *p = gc_malloc(n);
        must(p != NULL);
        if ((uintptr_t)p % 16 != 0)
            ck_abort_msg("gc_malloc(%zu) = %p is not 16-byte aligned", n, (void *)p);
        if (gc_size(p) < n)
            ck_abort_msg("gc_size(gc_malloc(%zu)) = %zu", n, gc_size(p));
        p[n - 1] = 1;
        gc_free(p);   /* keeps the run short: 2.4 GB would otherwise be churned */
    }
}
END_TEST

#define NZERO 4000
static void **zero_objs;   /* root */

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

START_TEST(test_size_zero_unique)
{
    gc_init();
    zero_objs = gc_malloc(NZERO * sizeof(void *));
    must(zero_objs != NULL);
    for (int i = 0; i < NZERO; i++) {
        void *p = (i & 1) ? gc_malloc_atomic(0) : gc_malloc(0);
        must(p != NULL);
        zero_objs[i] = p;
        if (i % 500 == 0)
            gc_collect();   /* the earlier ones are alive: the new ones must not reuse them */
    }
    uintptr_t *sorted = malloc(NZERO * sizeof *sorted);
    must(sorted != NULL);
    for (int i = 0; i < NZERO; i++)
        sorted[i] = (uintptr_t)zero_objs[i];
    qsort(sorted, NZERO, sizeof *sorted, cmp_ptr);
    for (int i = 1; i < NZERO; i++)
        if (sorted[i] == sorted[i - 1])
            ck_abort_msg("size 0 returned %p twice", (void *)sorted[i]);
    free(sorted);
    void *c = gc_calloc(0, 10);
    must(c != NULL);
    c = gc_calloc(10, 0);
    must(c != NULL);
}
END_TEST

/* ---- calloc overflow, huge requests ----------------------------------------------------- */

START_TEST(test_calloc_overflow)
{
    gc_init();
    errno = 0;
    ck_assert_ptr_null(gc_calloc(SIZE_MAX / 2 + 1, 2));
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(gc_calloc(SIZE_MAX, SIZE_MAX));
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(gc_calloc((size_t)1 << 33, (size_t)1 << 33));
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(gc_malloc(SIZE_MAX));
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(gc_malloc_atomic(SIZE_MAX - 4096));
    ck_assert_int_eq(errno, ENOMEM);
    /* The heap still works. */
    unsigned char *p = gc_calloc(1000, 8);
    must(p != NULL);
    must(all_bytes(p, 0, 8000));
    ck_assert_uint_ge(gc_size(p), 8000);
}
END_TEST

/* ---- realloc ------------------------------------------------------------------------------- */

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 31 + seed);
}

static int check_fill(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 31 + seed))
            return 0;
    return 1;
}

START_TEST(test_realloc)
{
    gc_init();
    unsigned char *p = gc_realloc(NULL, 100);
    must(p != NULL);
    must(all_bytes(p, 0, 100));
    ck_assert_uint_ge(gc_size(p), 100);
    fill(p, 100, 7);

    static const size_t sizes[] = {200, 1000, 5000, 32768, 32769, 100000, 1 << 20,
                                   3 << 20, 70000, 40000, 1000, 300, 17, 1};
    size_t have = 100;
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        unsigned char *q = gc_realloc(p, n);
        must(q != NULL);
        ck_assert_uint_ge(gc_size(q), n);
        size_t keep = n < have ? n : have;
        if (!check_fill(q, keep, 7))
            ck_abort_msg("gc_realloc(%zu -> %zu) lost the content", have, n);
        fill(q, n, 7);
        p = q;
        have = n;
        churn(1 << 20);
        gc_collect();
        must(check_fill(p, have, 7));
    }
    /* Atomic objects too. */
    unsigned char *a = gc_malloc_atomic(50);
    must(a != NULL);
    fill(a, 50, 3);
    a = gc_realloc(a, 60000);
    must(a != NULL);
    must(check_fill(a, 50, 3));
    /* Size 0: a valid, unique object. */
    void *z = gc_realloc(gc_malloc(10), 0);
    must(z != NULL);
    must((gc_base(z)) != NULL);
}
END_TEST

START_TEST(test_strdup)
{
    gc_init();
    const char *s = "hello, tricolor";
    char *d = gc_strdup(s);
    must(d != NULL);
    ck_assert_ptr_ne(d, s);
    ck_assert_str_eq(d, s);
    char *e = gc_strdup("");
    must(e != NULL);
    ck_assert_str_eq(e, "");
    size_t n = 100000;
    char *big = malloc(n + 1);
    must(big != NULL);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[n] = 0;
    char *bd = gc_strdup(big);
    must(bd != NULL);
    churn(8 << 20);
    gc_collect();
    ck_assert_str_eq(d, s);
    ck_assert_str_eq(bd, big);
    ck_assert_uint_ge(gc_size(bd), n + 1);
    free(big);
}
END_TEST

/* ---- gc_size / gc_base ---------------------------------------------------------------------- */

static int global_word;

START_TEST(test_size_base)
{
    gc_init();
    static const size_t sizes[] = {1, 16, 17, 100, 1000, 4096, 32768, 32769, 65536, 100000,
                                   1 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        char *p = gc_malloc(n);
        must(p != NULL);
        size_t sz = gc_size(p);
        ck_assert_uint_ge(sz, n);
        ck_assert_ptr_eq(gc_base(p), p);
        ck_assert_ptr_eq(gc_base(p + n / 2), p);
        ck_assert_ptr_eq(gc_base(p + sz - 1), p);
        ck_assert_uint_eq(gc_size(p + n / 2), sz);
        ck_assert_uint_eq(gc_size(p + sz - 1), sz);
        ck_assert_ptr_ne(gc_base(p + sz), p);   /* one past the end is not this object */
        if (n > 32768)
            ck_assert_uint_lt(sz, n + 8192);     /* large: page rounding at most */
        else
            ck_assert_uint_le(sz, n + n / 8 + 16); /* small: one size class */
    }
    int local = 0;
    ck_assert_uint_eq(gc_size(&local), 0);
    ck_assert_ptr_null(gc_base(&local));
    ck_assert_uint_eq(gc_size(&global_word), 0);
    ck_assert_ptr_null(gc_base(&global_word));
    ck_assert_uint_eq(gc_size(NULL), 0);
    ck_assert_ptr_null(gc_base(NULL));
    void *m = malloc(64);
    ck_assert_uint_eq(gc_size(m), 0);
    ck_assert_ptr_null(gc_base(m));
    free(m);
}
END_TEST

/* ---- gc_free ----------------------------------------------------------------------------------- */

#define NFREE 1000

START_TEST(test_free_reuse)
{
    gc_init();
    gc_disable();   /* no cycle in between: the counts below are exact */
    uintptr_t *addr = malloc(NFREE * sizeof *addr);   /* not scanned: plain integers */
    must(addr != NULL);
    struct gc_memstats m0 = *stats();
    for (int i = 0; i < NFREE; i++) {
        char *p = gc_malloc(64);
        must(p != NULL);
        memset(p, 0x5A, 64);
        addr[i] = (uintptr_t)p;
    }
    struct gc_memstats m1 = *stats();
    ck_assert_uint_eq(m1.mallocs - m0.mallocs, NFREE);
    for (int i = 0; i < NFREE; i++) {
        gc_free((void *)addr[i]);
        ck_assert_uint_eq(gc_size((void *)addr[i]), 0);   /* no longer an object */
        ck_assert_ptr_null(gc_base((void *)addr[i]));
    }
    struct gc_memstats m2 = *stats();
    ck_assert_uint_eq(m2.frees - m1.frees, NFREE);
    ck_assert_uint_eq(m2.heap_objects, m0.heap_objects);
    ck_assert_uint_eq(m2.heap_alloc, m0.heap_alloc);
    qsort(addr, NFREE, sizeof *addr, cmp_ptr);
    int reused = 0;
    for (int i = 0; i < NFREE; i++) {
        uintptr_t p = (uintptr_t)gc_malloc(64);
        must(p != 0);
        must(all_bytes((void *)p, 0, 64));
        if (bsearch(&p, addr, NFREE, sizeof *addr, cmp_ptr))
            reused++;
    }
    must_msg(reused >= NFREE / 2, "only %d of %d freed slots were reused", reused, NFREE);

    /* Large objects: the pages go back to the heap and are reused. */
    struct gc_memstats m3 = *stats();
    for (int i = 0; i < 200; i++) {
        char *p = gc_malloc(1 << 20);
        must(p != NULL);
        must(all_bytes(p, 0, 1 << 20));
        memset(p, 0x77, 1 << 20);
        gc_free(p);
        ck_assert_uint_eq(gc_size(p), 0);
    }
    struct gc_memstats m4 = *stats();
    ck_assert_uint_le(m4.heap_sys, m3.heap_sys + (64u << 20));   /* not 200 MB */
    ck_assert_uint_eq(m4.heap_alloc, m3.heap_alloc);
    ck_assert_uint_eq(m4.num_gc, m0.num_gc);
    gc_enable();
    free(addr);
}
END_TEST

/* gc_free(p) on a bad pointer: exactly one line naming it, then the heap still works. */
static void expect_one_report(const char *fn, void *bad, void (*call)(void *))
{
    char buf[4096], want[64];
    struct capture c;
    capture_begin(&c);
    call(bad);
    capture_end(&c, buf, sizeof buf);
    snprintf(want, sizeof want, "tricolor: %s: %p", fn, bad);
    must_msg(count_lines(buf) == 1, "%s(%p): expected one line on stderr, got \"%s\"",
                  fn, bad, buf);
    must_msg(strstr(buf, want) != NULL, "%s(%p): \"%s\" lacks \"%s\"", fn, bad, buf,
                  want);
    must_msg(strstr(buf, "0x") != NULL, "no address in \"%s\"", buf);
    must_msg(strstr(buf, "is not a heap object") != NULL, "%s(%p): got \"%s\"", fn, bad,
                  buf);
}

static void call_free(void *p) { gc_free(p); }

static void *realloc_result;
static void call_realloc(void *p) { realloc_result = gc_realloc(p, 256); }

static void heap_still_works(void)
{
    sentinels_check(500);
    churn(16 << 20);
    gc_collect();
    sentinels_check(500);
    char *p = gc_malloc(1000);
    must(p != NULL);
    must(all_bytes(p, 0, 1000));
}

START_TEST(test_free_bad_pointers)
{
    gc_init();
    sentinels_build(500);
    long on_stack[4] = {0};
    char *small = gc_malloc(64);
    char *large = gc_malloc(100000);
    must(small != NULL);
    must(large != NULL);
    char *dbl = gc_malloc(64);
    char *dbl_large = gc_malloc(50000);
    must(dbl != NULL);
    must(dbl_large != NULL);

    expect_one_report("gc_free", &on_stack[1], call_free);
    expect_one_report("gc_free", small + 16, call_free);
    expect_one_report("gc_free", large + 8192, call_free);
    expect_one_report("gc_free", large + 8, call_free);
    gc_free(dbl);
    expect_one_report("gc_free", dbl, call_free);
    gc_free(dbl_large);
    expect_one_report("gc_free", dbl_large, call_free);
    heap_still_works();
    /* The objects around the bad calls are untouched. */
    ck_assert_uint_ge(gc_size(small), 64);
    ck_assert_uint_ge(gc_size(large), 100000);
    ck_assert_int_eq(on_stack[0] + on_stack[1] + on_stack[2] + on_stack[3], 0);
}
END_TEST

START_TEST(test_realloc_bad_pointers)
{
    gc_init();
    sentinels_build(500);
    long on_stack[4] = {0};
    char *small = gc_malloc(64);
    char *large = gc_malloc(100000);
    must(small != NULL);
    must(large != NULL);
    memset(small, 0x33, 64);
    char *dbl = gc_malloc(64);
    must(dbl != NULL);

    expect_one_report("gc_realloc", &on_stack[1], call_realloc);
    expect_one_report("gc_realloc", small + 16, call_realloc);
    expect_one_report("gc_realloc", large + 8192, call_realloc);
    gc_free(dbl);
    expect_one_report("gc_realloc", dbl, call_realloc);
    heap_still_works();
    must(all_bytes(small, 0x33, 64));
    ck_assert_uint_ge(gc_size(large), 100000);
    ck_assert_int_eq(on_stack[0] + on_stack[1] + on_stack[2] + on_stack[3], 0);
}
END_TEST

/* A 16-byte noscan object is an ordinary object (only smaller ones share blocks): an
 * interior pointer to it is reported like any other. */
START_TEST(test_free_interior_atomic16)
{
    gc_init();
    sentinels_build(500);
    char *a = gc_malloc_atomic(16);
    char *b = gc_malloc_atomic(32);
    must(a != NULL);
    must(b != NULL);
    memset(a, 0x44, 16);
    expect_one_report("gc_free", b + 8, call_free);
    expect_one_report("gc_free", a + 8, call_free);
    must(all_bytes(a, 0x44, 16));
    ck_assert_ptr_eq(gc_base(a + 8), a);
    heap_still_works();
}
END_TEST

/* ---- tiny objects: small atomic objects may share a block; each is still its own ---------- */

START_TEST(test_tiny_free_keeps_neighbours)
{
    gc_init();
    /* Allocate pairs of small noscan objects; free the first of each pair; the second,
     * whatever block it sits in, must keep its content. */
    for (int i = 0; i < 64; i++) {
        size_t n = 1 + (size_t)i % 8;
        unsigned char *a = gc_malloc_atomic(n);
        unsigned char *b = gc_malloc_atomic(n);
        must(a != NULL);
        must(b != NULL);
        memset(a, 0x11, n);
        memset(b, 0x5A, n);
        gc_free(a);
        if (!all_bytes(b, 0x5A, n))
            ck_abort_msg("gc_free(%p) (gc_malloc_atomic(%zu)) overwrote its neighbour %p", (void *)a,
                         n, (void *)b);
        unsigned char *c = gc_malloc_atomic(n);
        must(c != NULL);
        memset(c, 0x22, n);
        if (!all_bytes(b, 0x5A, n))
            ck_abort_msg("an object allocated after gc_free(%p) overlaps %p", (void *)a,
                         (void *)b);
    }
}
END_TEST

START_TEST(test_tiny_realloc_in_place)
{
    gc_init();
    for (int i = 0; i < 64; i++) {
        size_t n = 1 + (size_t)i % 8;
        unsigned char *a = gc_malloc_atomic(n);
        unsigned char *b = gc_malloc_atomic(n);
        must(a != NULL);
        must(b != NULL);
        memset(a, 0x11, n);
        memset(b, 0x5A, n);
        /* Growing a: the result is n + 4 usable bytes of its own, whatever block a is in. */
        size_t grow = n + 4;
        unsigned char *a2 = gc_realloc(a, grow);
        must(a2 != NULL);
        must(all_bytes(a2, 0x11, n));
        memset(a2, 0x22, grow);
        if (!all_bytes(b, 0x5A, n))
            ck_abort_msg("gc_realloc(%p, %zu) returned %p, whose %zu bytes overlap the next "
                         "object %p", (void *)a, grow, (void *)a2, grow, (void *)b);
    }
}
END_TEST

START_TEST(test_tiny_size_base)
{
    gc_init();
    for (int i = 0; i < 64; i++) {
        size_t n = 1 + (size_t)i % 8;
        unsigned char *a = gc_malloc_atomic(n);
        unsigned char *b = gc_malloc_atomic(n);
        must(a != NULL);
        must(b != NULL);
        ck_assert_uint_ge(gc_size(a), n);
        ck_assert_uint_ge(gc_size(b), n);
        /* Each is a heap object of its own: gc_base gives its own start. */
        if (gc_base(a) != a || gc_base(b) != b)
            ck_abort_msg("gc_malloc_atomic(%zu) twice = %p, %p; gc_base gives %p, %p", n,
                         (void *)a, (void *)b, gc_base(a), gc_base(b));
        /* The usable size of a (what the caller may write) must not reach into b. */
        if (b > a && a + gc_size(a) > b)
            ck_abort_msg("gc_size(%p) = %zu (gc_malloc_atomic(%zu)) overlaps the next object %p",
                         (void *)a, gc_size(a), n, (void *)b);
    }
}
END_TEST

/* ---- collecting before the first allocation ------------------------------------------ */

static volatile uintptr_t all_ones = UINTPTR_MAX;   /* a data word that is no heap pointer */

START_TEST(test_collect_empty_heap)
{
    gc_init();
    volatile uintptr_t on_stack = UINTPTR_MAX;
    gc_collect();   /* no arena exists yet: every root word is outside the heap */
    gc_collect();
    struct gc_memstats *m = stats();
    ck_assert_uint_ge(m->num_gc, 2);
    ck_assert_uint_ge(m->num_forced_gc, 2);
    void *p = gc_malloc(100);
    must(p != NULL);
    gc_collect();
    ck_assert_ptr_eq(gc_base(p), p);
    must(all_ones == UINTPTR_MAX && on_stack == UINTPTR_MAX);
}
END_TEST

/* ---- collection control -------------------------------------------------------------------- */

START_TEST(test_disable_enable_nest)
{
    start();
    gc_collect();
    uint32_t n0 = num_gc();
    must(stats()->enable_gc);
    gc_disable();
    gc_disable();
    must(!stats()->enable_gc);
    churn(64 << 20);   /* 16 times the minimum goal */
    ck_assert_uint_eq(num_gc(), n0);
    gc_enable();
    must(!stats()->enable_gc);
    churn(16 << 20);
    ck_assert_uint_eq(num_gc(), n0);
    gc_enable();
    must(stats()->enable_gc);
    churn(32 << 20);
    ck_assert_uint_gt(num_gc_above(n0), n0);
    /* gc_collect still works while disabled (it is forced).  The first call also
     * waits for a cycle the churn may have started (concurrent mode). */
    gc_disable();
    gc_collect();
    uint32_t n1 = num_gc();
    gc_collect();
    ck_assert_uint_eq(num_gc(), n1 + 1);
    gc_enable();
}
END_TEST

START_TEST(test_set_percent)
{
    start();
    int first = gc_set_percent(50);
    if (!getenv("GCPERCENT"))
        ck_assert_int_eq(first, 100);
    ck_assert_int_eq(gc_set_percent(77), 50);
    ck_assert_int_eq(gc_set_percent(-1), 77);
    must(!stats()->enable_gc);
    ck_assert_uint_eq(stats()->next_gc, 0);   /* no goal */
    gc_collect();
    uint32_t n0 = num_gc();
    churn(64 << 20);
    ck_assert_uint_eq(num_gc(), n0);   /* automatic collection is off */
    ck_assert_int_eq(gc_set_percent(100), -1);
    must(stats()->enable_gc);
    churn(16 << 20);
    ck_assert_uint_gt(num_gc_above(n0), n0);
    gc_collect();
    ck_assert_uint_ge(stats()->next_gc, 4u << 20);
    ck_assert_int_eq(gc_set_percent(-5), 100);   /* any negative is off */
    ck_assert_int_eq(gc_set_percent(100), -1);
}
END_TEST

START_TEST(test_memory_limit)
{
    gc_init();
    int64_t cur = gc_set_memory_limit(-1);
    if (!getenv("GCMEMLIMIT"))
        ck_assert_int_eq(cur, INT64_MAX);
    ck_assert_int_eq(gc_set_memory_limit(-1), cur);   /* negative: only returns */
    ck_assert_int_eq(gc_set_memory_limit((int64_t)1 << 40), cur);
    ck_assert_int_eq(gc_set_memory_limit(-12345), (int64_t)1 << 40);
    ck_assert_int_eq(gc_set_memory_limit(INT64_MAX), (int64_t)1 << 40);
    ck_assert_int_eq(gc_set_memory_limit(-1), INT64_MAX);
}
END_TEST

struct hook_log {
    int calls;
    void *arg_seen;
    struct gc_cycle_info last;
    uint32_t num_gc_in_hook;
};
static struct hook_log hook_log;

static void hook(const struct gc_cycle_info *info, void *arg)
{
    hook_log.arg_seen = arg;
    hook_log.last = *info;
    hook_log.num_gc_in_hook = num_gc();
    void *p = gc_malloc(100);   /* the hook may allocate */
    (void)p;
    /* Last, so a thread that sees the count sees the rest. */
    __atomic_store_n(&hook_log.calls, hook_log.calls + 1, __ATOMIC_RELEASE);
}

START_TEST(test_cycle_hook)
{
    start();
    static int token;
    gc_set_cycle_hook(hook, &token);
    gc_collect();
    ck_assert_int_eq(hook_log.calls, 1);
    ck_assert_ptr_eq(hook_log.arg_seen, &token);
    ck_assert_uint_eq(hook_log.last.num, num_gc());
    ck_assert_uint_eq(hook_log.last.num, hook_log.num_gc_in_hook);
    must(hook_log.last.forced);
    ck_assert_uint_gt(hook_log.last.heap_goal, 0);
    ck_assert_uint_ge(hook_log.last.procs, 1);

    /* An automatic cycle: not forced. */
    gc_set_percent(100);
    uint32_t n0 = num_gc();
    int calls0 = hook_log.calls;
    for (int i = 0; i < 100000 && num_gc() == n0; i++)
        churn(64 << 10);
    ck_assert_uint_gt(num_gc(), n0);
    /* The cycle counts in num_gc before its hook runs (on the collector thread by
     * default): give the hook a moment. */
    for (int i = 0; i < 2000 && __atomic_load_n(&hook_log.calls, __ATOMIC_ACQUIRE) <= calls0; i++)
        usleep(1000);
    ck_assert_int_gt(__atomic_load_n(&hook_log.calls, __ATOMIC_ACQUIRE), calls0);
    must(!hook_log.last.forced);
    ck_assert_uint_gt(hook_log.last.heap_goal, 0);
    ck_assert_uint_eq(hook_log.last.num, num_gc());

    gc_free_os_memory();
    must(hook_log.last.forced);
    ck_assert_uint_eq(hook_log.last.num, num_gc());

    /* Removing the hook. */
    gc_set_cycle_hook(NULL, NULL);
    int calls1 = hook_log.calls;
    gc_collect();
    gc_collect();
    ck_assert_int_eq(hook_log.calls, calls1);
}
END_TEST

/* ---- out of memory --------------------------------------------------------------------------- */

#define OOM_SLOTS 2048
static void *oom_keep[OOM_SLOTS];   /* global: a root */

static size_t vm_size_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long pages = 0;
    if (fscanf(f, "%lu", &pages) != 1)
        pages = 0;
    fclose(f);
    return pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Runs in the child; returns its exit status (0 = pass; stdio may fail, so codes). */
static int oom_child(void)
{
    gc_init();
    if (!gc_malloc(64))
        return 18;
    gc_collect();   /* the collector's own lazily mapped tables exist before the limit */
    size_t vm = vm_size_bytes();
    if (!vm)
        return 10;
    struct rlimit rl = {.rlim_cur = vm + ((size_t)200 << 20), .rlim_max = RLIM_INFINITY};
    getrlimit(RLIMIT_AS, &rl);
    rl.rlim_cur = vm + ((size_t)200 << 20);
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        return 11;
    int n = 0;
    errno = 0;
    for (; n < OOM_SLOTS; n++) {
        void *p = gc_malloc(1 << 20);
        if (!p)
            break;
        ((char *)p)[0] = 1;
        ((char *)p)[(1 << 20) - 1] = 1;
        oom_keep[n] = p;
    }
    int e = errno;
    if (n == OOM_SLOTS)
        return 12;   /* never ran out: the limit did not apply */
    if (e != ENOMEM)
        return 13;
    if (n < 10)
        return 14;   /* ran out far too early */
    /* Small objects fail cleanly too (or succeed from what is left). */
    for (int i = 0; i < 100000; i++) {
        errno = 0;
        void *p = gc_malloc(1000);
        if (!p) {
            if (errno != ENOMEM)
                return 15;
            break;
        }
    }
    /* Drop everything, collect, allocate again. */
    memset(oom_keep, 0, sizeof oom_keep);
    gc_collect();
    for (int i = 0; i < 40; i++) {
        void *p = gc_malloc(1 << 20);
        if (!p)
            return 16;
        memset(p, 1, 1 << 20);
        oom_keep[i] = p;
    }
    for (int i = 0; i < 1000; i++)
        if (!gc_malloc(1000))
            return 17;
    return 0;
}

START_TEST(test_out_of_memory)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(oom_child());
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        ck_abort_msg("out-of-memory child died of signal %d", WTERMSIG(status));
    must(WIFEXITED(status));
    static const char *why[] = {
        [10] = "cannot read /proc/self/statm",
        [11] = "setrlimit failed",
        [12] = "the limit was never reached",
        [13] = "allocation failed with errno != ENOMEM",
        [14] = "ran out of memory far too early",
        [15] = "small allocation failed with errno != ENOMEM",
        [16] = "1 MB allocation failed after dropping everything and collecting",
        [17] = "small allocation failed after dropping everything and collecting",
        [18] = "the first allocation failed",
    };
    int code = WEXITSTATUS(status);
    must_msg(code == 0, "out-of-memory child exited %d: %s", code,
                  code < (int)(sizeof why / sizeof *why) && why[code] ? why[code] : "?");
}
END_TEST

/* ---- the suite ------------------------------------------------------------------------------- */

static Suite *api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("alloc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_malloc_zeroes);
    tcase_add_test(tc, test_alignment_all_sizes);
    tcase_add_test(tc, test_size_zero_unique);
    tcase_add_test(tc, test_calloc_overflow);
    tcase_add_test(tc, test_realloc);
    tcase_add_test(tc, test_strdup);
    tcase_add_test(tc, test_size_base);
    tcase_add_test(tc, test_free_reuse);
    tcase_add_test(tc, test_free_bad_pointers);
    tcase_add_test(tc, test_realloc_bad_pointers);
    tcase_add_test(tc, test_free_interior_atomic16);
    tcase_add_test(tc, test_tiny_free_keeps_neighbours);
    tcase_add_test(tc, test_tiny_realloc_in_place);
    tcase_add_test(tc, test_tiny_size_base);
    suite_add_tcase(s, tc);

    tc = tcase_create("control");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_collect_empty_heap);
    tcase_add_test(tc, test_disable_enable_nest);
    tcase_add_test(tc, test_set_percent);
    tcase_add_test(tc, test_memory_limit);
    tcase_add_test(tc, test_cycle_hook);
    tcase_add_test(tc, test_out_of_memory);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(api_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
