/* test_alloc.c - unit tests for gc/alloc.c, seen from inside: thread caches fill spans
 * front to back, one span per (noscan, class) pair per thread; a cycle gives the pages
 * of dead spans back; alloc_heap_live follows allocation, gc_free and sweeping; tiny
 * noscan objects pack into 16-byte blocks, and gc_size, gc_base, gc_free and gc_realloc
 * treat their neighbours with care.
 *
 * Garbage is made in noinline functions and the stack scrubbed before a cycle, and
 * reclaim checks ask for most of the garbage, not all: conservative scanning may find
 * a stale copy of a pointer somewhere and keep a little of it.
 */
#include "internal.h"

#include <check.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void setup(void)
{
    gc_init();
    gc_disable();   /* only the cycles a test asks for */
}

/* For the tests that measure what a cycle reclaims: one live object first, so no cycle
 * runs on an empty heap and the object at the heap's lowest address (see
 * test_first_object_collected) is one that is meant to live. */
static void *volatile anchor;

static void setup_anchored(void)
{
    setup();
    anchor = gc_malloc(16);
    ck_assert_uint_eq((uintptr_t)anchor, AO_load(&heap.lo));
}

static __attribute__((noinline)) void scrub_stack(void)
{
    volatile char buf[16384];
    memset((char *)buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- thread caches -------------------------------------------------------------------- */

START_TEST(test_one_class_few_spans)
{
    enum { N = 1000, SZ = 48 };
    unsigned cls = sc_of(SZ);
    const struct size_class *k = &sc_table[cls];
    uint64_t nmalloc0 = AO_load(&alloc_self->stats.nmalloc[cls]);
    uintptr_t p[N];
    struct span *spans[N];
    size_t nspans = 0, jumps = 0;
    for (int i = 0; i < N; i++) {
        unsigned char *q = gc_malloc(SZ);
        ck_assert_ptr_nonnull(q);
        for (int b = 0; b < SZ; b++)
            ck_assert_msg(q[b] == 0, "object %d byte %d not zeroed", i, b);
        memset(q, 0xee, SZ);   /* a later overlap would show as a non-zero new object */
        p[i] = (uintptr_t)q;
        ck_assert_uint_eq(p[i] % 16, 0);
        ck_assert_uint_eq(gc_size(q), k->size);
        ck_assert_ptr_eq(gc_base(q + SZ - 1), q);
        struct span *s = heap_span_of(p[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_eq(s->state, SPAN_SMALL);
        ck_assert_uint_eq(s->cls, cls);
        ck_assert_uint_eq(s->noscan, 0);
        bool seen = false;
        for (size_t j = 0; j < nspans; j++)
            seen |= spans[j] == s;
        if (!seen)
            spans[nspans++] = s;
        if (i > 0 && p[i] != p[i - 1] + k->size)
            jumps++;
    }
    size_t need = (N + k->nelems - 1) / k->nelems;
    ck_assert_msg(nspans <= need + 1, "%d objects of %u B (%u a span) came from %zu spans", N,
                  k->size, k->nelems, nspans);
    /* A cache hands out a span's slots in address order: the address only jumps when
     * the next span starts. */
    ck_assert_msg(jumps < nspans, "%zu jumps between consecutive objects in %zu spans", jumps,
                  nspans);
    qsort(p, N, sizeof p[0], cmp_ptr);
    for (int i = 1; i < N; i++)
        ck_assert_msg(p[i] >= p[i - 1] + k->size, "objects %p and %p overlap",
                      (void *)p[i - 1], (void *)p[i]);
    ck_assert_uint_eq(AO_load(&alloc_self->stats.nmalloc[cls]), nmalloc0 + N);
}
END_TEST

/* Scanned and noscan objects of one class never share a span. */
START_TEST(test_noscan_separate_spans)
{
    void *a = gc_malloc(64), *b = gc_malloc_atomic(64);
    struct span *sa = heap_span_of((uintptr_t)a), *sb = heap_span_of((uintptr_t)b);
    ck_assert_ptr_ne(sa, sb);
    ck_assert_uint_eq(sa->noscan, 0);
    ck_assert_uint_eq(sb->noscan, 1);
    ck_assert_uint_eq(sa->cls, sb->cls);
    ck_assert_ptr_eq(alloc_self->cache[0][sa->cls].span, sa);
    ck_assert_ptr_eq(alloc_self->cache[1][sb->cls].span, sb);
}
END_TEST

/* Every request size gets its class's size back from gc_size; 0 gets a unique object. */
START_TEST(test_sizes)
{
    for (size_t n = 1; n <= MAX_SMALL_SIZE; n += (n < 1100 ? 1 : 97)) {
        void *p = gc_malloc(n);
        ck_assert_ptr_nonnull(p);
        ck_assert_msg(gc_size(p) == sc_table[sc_of(n)].size, "gc_size(gc_malloc(%zu)) = %zu",
                      n, gc_size(p));
        gc_free(p);
    }
    void *big = gc_malloc(MAX_SMALL_SIZE + 1);
    ck_assert_uint_eq(gc_size(big), 5 * PAGE_SIZE);
    ck_assert_uint_eq(heap_span_of((uintptr_t)big)->state, SPAN_LARGE);
    void *z1 = gc_malloc(0), *z2 = gc_malloc(0), *z3 = gc_malloc_atomic(0),
         *z4 = gc_malloc_atomic(0);
    ck_assert_ptr_nonnull(z1);
    ck_assert_ptr_nonnull(z3);
    ck_assert_ptr_ne(z1, z2);
    ck_assert_ptr_ne(z3, z4);
    ck_assert_uint_gt(gc_size(z1), 0);
}
END_TEST

/* Objects handed out from reused (dirty) slots are zeroed, in every class and both
 * kinds: the fast path writes out the zeroing of objects up to 128 bytes and calls
 * memset for larger ones, so each class size is checked, byte by byte, on slots that
 * held 0xee before a collection freed them. */
static __attribute__((noinline)) void dirty_garbage(size_t size, int n, bool atomic)
{
    for (int i = 0; i < n; i++) {
        void *q = atomic ? gc_malloc_atomic(size) : gc_malloc(size);
        ck_assert_ptr_nonnull(q);
        memset(q, 0xee, size);
    }
}

START_TEST(test_reused_slots_zeroed)
{
    for (int atomic = 0; atomic <= 1; atomic++)
        for (unsigned c = 1; c <= NUM_CLASSES; c++) {
            size_t size = sc_table[c].size;
            int n = (int)((256 << 10) / size);
            n = n < 8 ? 8 : n > 64 ? 64 : n;
            dirty_garbage(size, n, atomic);
            scrub_stack();
            gc_collect();
            int dirty = 0;
            for (int i = 0; i < n; i++) {
                unsigned char *q = atomic ? gc_malloc_atomic(size) : gc_malloc(size);
                ck_assert_ptr_nonnull(q);
                dirty += heap_span_of((uintptr_t)q)->needzero;
                size_t b = 0;
                while (b < size && q[b] == 0)
                    b++;
                ck_assert_msg(b == size, "%s %zu-byte object %d: byte %zu is %#x",
                              atomic ? "atomic" : "scanned", size, i, b, q[b < size ? b : 0]);
            }
            ck_assert_msg(dirty > 0, "class %u (%zu B): no object came from a reused slot",
                          c, size);
        }
}
END_TEST

/* Each thread fills its own span: another thread never gets slots of a span this
 * thread's cache holds, and an exiting thread's counters are kept. */
struct other_result {
    uintptr_t obj[10];
    struct span *span;
};

static void *other_thread(void *arg)
{
    struct other_result *r = arg;
    for (int i = 0; i < 10; i++)
        r->obj[i] = (uintptr_t)gc_malloc(48);
    r->span = alloc_self->cache[0][sc_of(48)].span;
    return NULL;
}

START_TEST(test_per_thread_spans)
{
    unsigned cls = sc_of(48);
    void *mine = gc_malloc(48);
    struct span *s = alloc_self->cache[0][cls].span;
    ck_assert_ptr_eq(heap_span_of((uintptr_t)mine), s);
    uint64_t dead0 = AO_load(&alloc_dead_counters.nmalloc[cls]);

    struct other_result r;
    memset(&r, 0, sizeof r);
    pthread_t t;
    ck_assert_int_eq(gc_thread_create(&t, NULL, other_thread, &r), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_ptr_nonnull(r.span);
    ck_assert_ptr_ne(r.span, s);
    for (int i = 0; i < 10; i++) {
        ck_assert_ptr_eq(heap_span_of(r.obj[i]), r.span);
        ck_assert_ptr_eq(gc_base((void *)r.obj[i]), (void *)r.obj[i]);
    }
    ck_assert_uint_eq(AO_load(&alloc_dead_counters.nmalloc[cls]), dead0 + 10);
    ck_assert_int_eq(stw_nthreads, 1);
    /* Its span went back to the central list, not cached by anyone. */
    ck_assert_uint_eq(r.span->cached, 0);
    ck_assert_uint_eq(r.span->list, LIST_PARTIAL);
    /* This thread goes on in its own span. */
    void *next = gc_malloc(48);
    ck_assert_ptr_eq(heap_span_of((uintptr_t)next), s);
}
END_TEST

/* ---- collection gives pages back ------------------------------------------------------------ */

enum { GARBAGE_SMALL = 4000, GARBAGE_SMALL_SZ = 1024, GARBAGE_LARGE = 20,
       GARBAGE_LARGE_SZ = 64 << 10 };
#define GARBAGE_BYTES ((uint64_t)GARBAGE_SMALL * GARBAGE_SMALL_SZ + \
                       (uint64_t)GARBAGE_LARGE * GARBAGE_LARGE_SZ)

/* Each object dropped at once: a stale pointer can keep one of them, not all. */
static __attribute__((noinline)) void make_garbage(void)
{
    for (int i = 0; i < GARBAGE_SMALL; i++) {
        void *volatile p = gc_malloc(GARBAGE_SMALL_SZ);
        (void)p;
    }
    for (int i = 0; i < GARBAGE_LARGE; i++) {
        void *volatile p = gc_malloc(GARBAGE_LARGE_SZ);
        (void)p;
    }
}

START_TEST(test_collect_returns_pages)
{
    gc_collect();
    uint64_t inuse0 = heap.pages_inuse;
    struct gc_memstats m0;
    gc_read_memstats(&m0);
    make_garbage();
    uint64_t peak = heap.pages_inuse;
    uint64_t garbage_pages = GARBAGE_BYTES / PAGE_SIZE;
    ck_assert_msg(peak >= inuse0 + garbage_pages, "pages_inuse %" PRIu64 " -> %" PRIu64
                  " after allocating %" PRIu64 " pages", inuse0, peak, garbage_pages);
    scrub_stack();
    gc_collect();
    uint64_t after = heap.pages_inuse;
    ck_assert_msg(peak - after >= (peak - inuse0) * 9 / 10,
                  "pages_inuse %" PRIu64 " -> %" PRIu64 " -> %" PRIu64 ": less than 90%% of "
                  "the garbage's pages came back", inuse0, peak, after);
    struct gc_memstats m1;
    gc_read_memstats(&m1);
    ck_assert_uint_le(m1.heap_inuse, m0.heap_inuse + GARBAGE_BYTES / 10);
    ck_assert_uint_le(m1.heap_objects, m0.heap_objects + GARBAGE_SMALL / 10);
}
END_TEST

/* The object at the lowest heap address is garbage like any other once nothing points
 * to it.  (The collector's own variables are no roots: when it is linked statically,
 * as here, they sit in the program's data segment, and heap.lo holds exactly that
 * object's address.) */
static volatile uintptr_t first_disguised;   /* ~address: points nowhere */

static __attribute__((noinline)) void make_first_object(void)
{
    void **first = gc_malloc(64 * sizeof(void *));
    for (int i = 0; i < 64; i++)
        first[i] = gc_malloc(1024);   /* what it would keep alive with it */
    first_disguised = ~(uintptr_t)first;
}

START_TEST(test_first_object_collected)
{
    make_first_object();
    ck_assert_msg(~first_disguised == AO_load(&heap.lo),
                  "precondition: the first object of a fresh heap is at heap.lo");
    uint64_t inuse = heap.pages_inuse;
    scrub_stack();
    gc_collect();
    ck_assert_msg(heap_find_object(~first_disguised, NULL) == 0,
                  "the unreachable object at heap.lo survived a cycle (pages in use %" PRIu64
                  " -> %" PRIu64 ")", inuse, heap.pages_inuse);
    ck_assert_uint_le(heap.pages_inuse, inuse / 10);
}
END_TEST

/* ---- alloc_heap_live ------------------------------------------------------------------------ */

static __attribute__((noinline)) void make_small_garbage(size_t n, size_t size)
{
    for (size_t i = 0; i < n; i++) {
        void *volatile p = gc_malloc(size);
        (void)p;
    }
}

START_TEST(test_heap_live_tracks)
{
    gc_collect();
    uint64_t l0 = AO_load(&alloc_heap_live);
    ck_assert_uint_eq(l0, cycle.last_live);   /* a cycle sets it to the marked bytes */

    /* A large object: exactly its pages, in and out. */
    void *big = gc_malloc(100000);
    size_t big_bytes = 13 * PAGE_SIZE;
    ck_assert_uint_eq(gc_size(big), big_bytes);
    ck_assert_uint_eq(AO_load(&alloc_heap_live), l0 + big_bytes);
    gc_free(big);
    ck_assert_uint_eq(AO_load(&alloc_heap_live), l0);

    /* Small objects: counted when the cache reserves them, 64 slots at a time at most. */
    enum { N = 640, SZ = 256 };
    make_small_garbage(N, SZ);
    uint64_t l1 = AO_load(&alloc_heap_live);
    ck_assert_msg(l1 >= l0 + (uint64_t)N * SZ && l1 < l0 + (uint64_t)(N + 64) * SZ,
                  "heap_live %" PRIu64 " -> %" PRIu64 " after %d objects of %d B", l0, l1, N,
                  SZ);

    /* gc_free of one small object takes exactly its size off. */
    void *one = gc_malloc(SZ);
    uint64_t l2 = AO_load(&alloc_heap_live);
    gc_free(one);
    ck_assert_uint_eq(AO_load(&alloc_heap_live), l2 - SZ);

    /* A cycle: back to (about) where it started, and equal to what it marked. */
    scrub_stack();
    gc_collect();
    uint64_t l3 = AO_load(&alloc_heap_live);
    ck_assert_uint_eq(l3, cycle.last_live);
    ck_assert_msg(l3 <= l0 + (uint64_t)N * SZ / 10, "heap_live %" PRIu64 " after a cycle, %"
                  PRIu64 " before the garbage", l3, l0);
}
END_TEST

/* Flushing a cache gives back the slots reserved but never handed out. */
START_TEST(test_flush_unreserves)
{
    alloc_flush_cache(alloc_self);
    uint64_t l0 = AO_load(&alloc_heap_live);
    void *p = gc_malloc(128);
    unsigned cls = sc_of(128);
    struct span *s = heap_span_of((uintptr_t)p);
    uint64_t reserved = AO_load(&alloc_heap_live) - l0;
    ck_assert_uint_ge(reserved, 128);
    ck_assert_uint_le(reserved, 64 * 128);
    ck_assert_uint_gt(alloc_self->cache[0][cls].free, 0);
    alloc_flush_cache(alloc_self);
    ck_assert_uint_eq(AO_load(&alloc_heap_live), l0 + 128);
    ck_assert_ptr_null(alloc_self->cache[0][cls].span);
    /* Only p is left allocated in its span. */
    uint64_t bits = 0;
    for (int w = 0; w < BITMAP_WORDS; w++)
        bits += (uint64_t)__builtin_popcountll(AO_load(&s->alloc_bits[w]));
    ck_assert_uint_eq(bits, 1);
    ck_assert_uint_eq(s->cached, 0);
    ck_assert_uint_eq(s->list, LIST_PARTIAL);
}
END_TEST

/* ---- tiny objects ----------------------------------------------------------------------------- */

static uintptr_t block_of(const void *p)
{
    return (uintptr_t)p & ~(uintptr_t)(TINY_SIZE - 1);
}

START_TEST(test_tiny_two_eights)
{
    alloc_flush_cache(alloc_self);   /* the next tiny object starts a block */
    char *a = gc_malloc_atomic(8), *b = gc_malloc_atomic(8), *c = gc_malloc_atomic(8);
    ck_assert_uint_eq((uintptr_t)a % TINY_SIZE, 0);
    ck_assert_ptr_eq(b, a + 8);
    ck_assert_uint_eq((uintptr_t)c % TINY_SIZE, 0);
    ck_assert_ptr_ne(c, a);
    struct span *s = heap_span_of((uintptr_t)a);
    ck_assert_uint_eq(s->cls, 1);
    ck_assert_uint_eq(s->noscan, 1);
    ck_assert_uint_eq(s->size, TINY_SIZE);
}
END_TEST

/* n bytes at a time (_i = n, 1..15): each object inside one block, aligned to the
 * largest power of two dividing n (up to 8), packed floor(16 / n) to a block. */
START_TEST(test_tiny_packing)
{
    enum { N = 96 };
    size_t n = (size_t)_i;
    size_t align = n % 8 == 0 ? 8 : n % 4 == 0 ? 4 : n % 2 == 0 ? 2 : 1;
    alloc_flush_cache(alloc_self);
    uint64_t tiny0 = AO_load(&alloc_self->stats.tiny_allocs);
    unsigned char *p[N];
    size_t blocks = 0;
    for (int i = 0; i < N; i++) {
        p[i] = gc_malloc_atomic(n);
        ck_assert_ptr_nonnull(p[i]);
        for (size_t b = 0; b < n; b++)
            ck_assert_msg(p[i][b] == 0, "tiny object %d (%zu B) byte %zu not zero", i, n, b);
        memset(p[i], 0x40 + i % 64, n);
        ck_assert_msg(block_of(p[i]) == block_of(p[i] + n - 1),
                      "a %zu-byte tiny object at %p straddles two blocks", n, (void *)p[i]);
        ck_assert_msg((uintptr_t)p[i] % align == 0, "a %zu-byte tiny object at %p is not "
                      "%zu-aligned", n, (void *)p[i], align);
        if (i == 0 || block_of(p[i]) != block_of(p[i - 1])) {
            blocks++;
            ck_assert_uint_eq((uintptr_t)p[i] % TINY_SIZE, 0);   /* a new block starts at 0 */
        } else {
            ck_assert_ptr_eq(p[i], p[i - 1] + n);                 /* packed after the last */
        }
        ck_assert_ptr_eq(gc_base(p[i]), p[i]);          /* each tiny object is its own */
        ck_assert_uint_eq(gc_size(p[i]), n);
        ck_assert_ptr_eq(gc_base(p[i] + n - 1), p[i]);
    }
    size_t per = TINY_SIZE / n;
    ck_assert_msg(blocks == (N + per - 1) / per, "%d objects of %zu B used %zu blocks, "
                  "expected %zu", N, n, blocks, (N + per - 1) / per);
    ck_assert_uint_eq(AO_load(&alloc_self->stats.tiny_allocs), tiny0 + N);
    /* Nobody overwrote anybody. */
    for (int i = 0; i < N; i++)
        for (size_t b = 0; b < n; b++)
            ck_assert_msg(p[i][b] == 0x40 + i % 64, "tiny object %d byte %zu clobbered", i, b);
}
END_TEST

/* After an odd-sized object, the next one is aligned by its own size: 1 then n puts the
 * second object at its alignment (1, 2, 4 or 8), not at offset 1; all of these fit. */
START_TEST(test_tiny_alignment_mixed)
{
    static const struct { size_t n, off; } cases[] = {
        {1, 1}, {2, 2}, {3, 1}, {4, 4}, {6, 2}, {8, 8}, {10, 2}, {12, 4}, {14, 2}, {15, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        alloc_flush_cache(alloc_self);
        char *a = gc_malloc_atomic(1), *b = gc_malloc_atomic(cases[i].n);
        ck_assert_uint_eq((uintptr_t)a % TINY_SIZE, 0);
        ck_assert_msg(b == a + cases[i].off, "1 B then %zu B: second at offset %td, "
                      "expected %zu", cases[i].n, b - a, cases[i].off);
    }
    /* Then 8 bytes after 1 + 2 bytes: offset 8 is taken up to 16, it fits exactly. */
    alloc_flush_cache(alloc_self);
    char *a = gc_malloc_atomic(1), *b = gc_malloc_atomic(2), *c = gc_malloc_atomic(8);
    ck_assert_ptr_eq(b, a + 2);
    ck_assert_ptr_eq(c, a + 8);
    /* And 8 more no longer fit: a new block. */
    char *d = gc_malloc_atomic(8);
    ck_assert_uint_eq((uintptr_t)d % TINY_SIZE, 0);
    ck_assert_uint_ne(block_of(d), block_of(a));
}
END_TEST

/* gc_base and gc_size know each tiny object's own extent inside its block. */
START_TEST(test_tiny_size_base)
{
    alloc_flush_cache(alloc_self);
    char *a = gc_malloc_atomic(4), *b = gc_malloc_atomic(4), *c = gc_malloc_atomic(8);
    ck_assert_ptr_eq(b, a + 4);
    ck_assert_ptr_eq(c, a + 8);
    ck_assert_ptr_eq(gc_base(a), a);
    ck_assert_ptr_eq(gc_base(b + 3), b);
    ck_assert_ptr_eq(gc_base(c + 7), c);
    ck_assert_uint_eq(gc_size(a), 4);
    ck_assert_uint_eq(gc_size(b + 2), 4);
    ck_assert_uint_eq(gc_size(c), 8);
    /* Padding between tiny objects belongs to none of them. */
    char *d = gc_malloc_atomic(1), *e = gc_malloc_atomic(2);
    ck_assert_ptr_eq(e, d + 2);
    ck_assert_ptr_null(gc_base(d + 1));
    ck_assert_uint_eq(gc_size(d + 1), 0);
}
END_TEST

/* "Usable size" means usable: writing gc_size(p) bytes at a tiny object must not reach
 * into the next tiny object of its block. */
START_TEST(test_tiny_size_stays_in_object)
{
    alloc_flush_cache(alloc_self);
    char *a = gc_malloc_atomic(8), *b = gc_malloc_atomic(8);
    ck_assert_ptr_eq(b, a + 8);
    ck_assert_msg(gc_size(a) <= (size_t)(b - a),
                  "gc_size of an 8-byte tiny object is %zu: its usable size covers the "
                  "next object in the block", gc_size(a));
}
END_TEST

/* Growing a tiny object must not grow it over its neighbour. */
START_TEST(test_tiny_realloc_keeps_neighbour)
{
    alloc_flush_cache(alloc_self);
    char *a = gc_malloc_atomic(1), *b = gc_malloc_atomic(1);
    ck_assert_ptr_eq(b, a + 1);
    *a = 'a';
    *b = 'b';
    char *a2 = gc_realloc(a, 12);
    ck_assert_ptr_nonnull(a2);
    ck_assert_int_eq(*a2, 'a');
    memset(a2, 'A', 12);   /* the caller owns 12 bytes now */
    ck_assert_msg(*b == 'b', "gc_realloc(tiny, 12) returned %s, and writing 12 bytes "
                  "there overwrote the next tiny object", a2 == a ? "the same block" : "memory");
}
END_TEST

/* Redirect fd 2 into a temporary file while fn runs; returns what was written. */
static size_t capture_stderr(void (*fn)(void *), void *arg, char *out, size_t len)
{
    char path[] = "/tmp/test_alloc_stderr_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, out, len - 1, 0);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

static void call_gc_free(void *p)
{
    gc_free(p);
}

/* gc_free of a tiny object inside a block is ignored, quietly: the block holds other
 * objects and is left to the collector. */
START_TEST(test_tiny_free_inner_noop)
{
    alloc_flush_cache(alloc_self);
    char *a = gc_malloc_atomic(8), *b = gc_malloc_atomic(8);
    ck_assert_ptr_eq(b, a + 8);
    memset(a, 'a', 8);
    memset(b, 'b', 8);
    struct span *s = heap_span_of((uintptr_t)a);
    uint64_t nfree0 = AO_load(&alloc_self->stats.nfree[1]);
    uint64_t live0 = AO_load(&alloc_heap_live);
    char err[256];
    size_t n = capture_stderr(call_gc_free, b, err, sizeof err);
    ck_assert_msg(n == 0, "gc_free of a tiny object printed: %s", err);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(a[i], 'a');
        ck_assert_int_eq(b[i], 'b');
    }
    ck_assert_ptr_eq(gc_base(b), b);
    ck_assert_uint_eq(AO_load(&alloc_self->stats.nfree[1]), nfree0);
    ck_assert_uint_eq(AO_load(&alloc_heap_live), live0);
    ck_assert_ptr_eq(heap_span_of((uintptr_t)a), s);
}
END_TEST

/* The same for the tiny object that starts the block: freeing it would free (and
 * zero) the whole block, with its neighbours in it. */
START_TEST(test_tiny_free_first_noop)
{
    alloc_flush_cache(alloc_self);
    char *a = gc_malloc_atomic(8), *b = gc_malloc_atomic(8);
    ck_assert_ptr_eq(b, a + 8);
    memset(a, 'a', 8);
    memset(b, 'b', 8);
    uint64_t live0 = AO_load(&alloc_heap_live);
    char err[256];
    capture_stderr(call_gc_free, a, err, sizeof err);
    for (int i = 0; i < 8; i++)
        ck_assert_msg(b[i] == 'b', "gc_free of the first tiny object of a block zeroed its "
                      "neighbour (byte %d is %#x)", i, (unsigned char)b[i]);
    ck_assert_msg(gc_base(b) == b, "gc_free of the first tiny object of a block freed the "
                  "whole block: its neighbour is no longer a heap object");
    ck_assert_uint_eq(AO_load(&alloc_heap_live), live0);
}
END_TEST

/* A 16-byte atomic object is an object of its own, in spans apart from tiny blocks:
 * gc_free releases it. */
START_TEST(test_atomic16_free)
{
    char *p = gc_malloc_atomic(16);
    struct span *s = heap_span_of((uintptr_t)p);
    ck_assert_uint_eq(s->cls, 1);
    ck_assert_uint_eq(s->noscan, 1);
    ck_assert_uint_eq(s->kind, KIND_NOSCAN);
    ck_assert_uint_eq(gc_size(p), 16);
    ck_assert_ptr_eq(gc_base(p), p);
    gc_free(p);
    ck_assert_ptr_null(gc_base(p));
}
END_TEST

/* A cycle with no tiny object reachable frees their blocks; one reachable object keeps
 * its block, and the allocator never reuses a block after a cycle. */
static char *volatile kept_tiny;

static __attribute__((noinline)) void make_tiny_garbage(void)
{
    for (int i = 0; i < 100000; i++) {
        char *volatile p = gc_malloc_atomic(3);
        (void)p;
    }
    kept_tiny = gc_malloc_atomic(5);
    memcpy(kept_tiny, "live", 5);
}

START_TEST(test_tiny_collected)
{
    gc_collect();
    uint64_t inuse0 = heap.pages_inuse;
    make_tiny_garbage();
    uint64_t peak = heap.pages_inuse;
    ck_assert_uint_ge(peak, inuse0 + 100000 / 5 * 16 / PAGE_SIZE);
    scrub_stack();
    gc_collect();
    ck_assert_uint_le(heap.pages_inuse, inuse0 + (peak - inuse0) / 10 + 2);
    ck_assert_str_eq(kept_tiny, "live");
    ck_assert_ptr_nonnull(gc_base(kept_tiny));
    ck_assert_uint_eq(alloc_self->tiny, 0);   /* the cycle took the block away */
    char *q = gc_malloc_atomic(5);
    ck_assert_uint_ne(block_of(q), block_of(kept_tiny));
}
END_TEST

static Suite *alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc;

    tc = tcase_create("cache");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_one_class_few_spans);
    tcase_add_test(tc, test_noscan_separate_spans);
    tcase_add_test(tc, test_sizes);
    tcase_add_test(tc, test_per_thread_spans);
    tcase_add_test(tc, test_flush_unreserves);
    suite_add_tcase(s, tc);

    tc = tcase_create("reclaim");
    tcase_add_checked_fixture(tc, setup_anchored, NULL);
    tcase_add_test(tc, test_collect_returns_pages);
    tcase_add_test(tc, test_heap_live_tracks);
    tcase_add_test(tc, test_tiny_collected);
    tcase_add_test(tc, test_reused_slots_zeroed);
    suite_add_tcase(s, tc);

    tc = tcase_create("roots");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_first_object_collected);
    suite_add_tcase(s, tc);

    tc = tcase_create("tiny");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_tiny_two_eights);
    tcase_add_loop_test(tc, test_tiny_packing, 1, TINY_SIZE);
    tcase_add_test(tc, test_tiny_alignment_mixed);
    tcase_add_test(tc, test_tiny_size_base);
    tcase_add_test(tc, test_tiny_size_stays_in_object);
    tcase_add_test(tc, test_tiny_realloc_keeps_neighbour);
    tcase_add_test(tc, test_tiny_free_inner_noop);
    tcase_add_test(tc, test_tiny_free_first_noop);
    tcase_add_test(tc, test_atomic16_free);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(alloc_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
