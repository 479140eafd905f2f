/* test_os.c - unit tests for gc/os.c: mapping and unmapping with the per-kind
 * accounting in os_sys_bytes, aligned mappings, returning pages to the OS, the
 * clocks, the CPU count, thread ids and the calling thread's stack bounds.
 *
 * The collector is never initialized here: os.c stands on its own, so the sys
 * counters change only through the calls under test.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* True if every byte of [p, p + n) is zero. */
static bool all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return false;
    return true;
}

/* True if [p, p + n) is mapped (mincore fails with ENOMEM on unmapped pages). */
static bool is_mapped(const void *p, size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char vec[64];
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(pg - 1);
    size_t len = (uintptr_t)p + n - a;
    if ((len + pg - 1) / pg > sizeof vec)
        len = sizeof vec * pg;
    return mincore((void *)a, len, vec) == 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- os_map / os_unmap ---------------------------------------------------------- */

START_TEST(map_is_zeroed_and_counted)
{
    static const size_t sizes[] = {4096, 8192, 64 * KiB, 1 * MiB, 3 * MiB + 4096};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        AO_t before = AO_load(&os_sys_bytes[SYS_OTHER]);
        unsigned char *p = os_map(n, SYS_OTHER);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(AO_load(&os_sys_bytes[SYS_OTHER]), before + n);
        ck_assert_msg(all_zero(p, n), "os_map(%zu) is not zeroed", n);
        /* Writable throughout. */
        memset(p, 0x5A, n);
        ck_assert_int_eq(p[0], 0x5A);
        ck_assert_int_eq(p[n - 1], 0x5A);
        os_unmap(p, n, SYS_OTHER);
        ck_assert_uint_eq(AO_load(&os_sys_bytes[SYS_OTHER]), before);
        ck_assert(!is_mapped(p, n));
    }
}
END_TEST

START_TEST(map_counts_per_kind)
{
    AO_t before[SYS_KINDS];
    for (int k = 0; k < SYS_KINDS; k++)
        before[k] = AO_load(&os_sys_bytes[k]);
    void *p[SYS_KINDS];
    for (int k = 0; k < SYS_KINDS; k++) {
        p[k] = os_map((size_t)(k + 1) * 8192, (enum sys_kind)k);
        ck_assert_ptr_nonnull(p[k]);
    }
    for (int k = 0; k < SYS_KINDS; k++)
        ck_assert_uint_eq(AO_load(&os_sys_bytes[k]), before[k] + (AO_t)(k + 1) * 8192);
    /* Unmapping one kind leaves the others alone. */
    os_unmap(p[SYS_HEAP], 8192, SYS_HEAP);
    ck_assert_uint_eq(AO_load(&os_sys_bytes[SYS_HEAP]), before[SYS_HEAP]);
    for (int k = 1; k < SYS_KINDS; k++)
        ck_assert_uint_eq(AO_load(&os_sys_bytes[k]), before[k] + (AO_t)(k + 1) * 8192);
    for (int k = 1; k < SYS_KINDS; k++)
        os_unmap(p[k], (size_t)(k + 1) * 8192, (enum sys_kind)k);
    for (int k = 0; k < SYS_KINDS; k++)
        ck_assert_uint_eq(AO_load(&os_sys_bytes[k]), before[k]);
}
END_TEST

START_TEST(map_fails_cleanly)
{
    AO_t before = AO_load(&os_sys_bytes[SYS_OTHER]);
    errno = 0;
    void *p = os_map((size_t)1 << 62, SYS_OTHER);   /* more than any address space */
    ck_assert_ptr_null(p);
    ck_assert_int_eq(errno, ENOMEM);
    ck_assert_uint_eq(AO_load(&os_sys_bytes[SYS_OTHER]), before);
    errno = 0;
    p = os_map_aligned((size_t)1 << 62, ARENA_SIZE, SYS_OTHER);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(errno, ENOMEM);
    ck_assert_uint_eq(AO_load(&os_sys_bytes[SYS_OTHER]), before);
}
END_TEST

/* ---- os_map_aligned -------------------------------------------------------------- */

START_TEST(map_aligned_64mib)
{
    static const size_t sizes[] = {ARENA_SIZE, 2 * ARENA_SIZE, 8192, 5 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        AO_t before = AO_load(&os_sys_bytes[SYS_HEAP]);
        unsigned char *p = os_map_aligned(n, ARENA_SIZE, SYS_HEAP);
        ck_assert_ptr_nonnull(p);
        ck_assert_msg(((uintptr_t)p & (ARENA_SIZE - 1)) == 0, "%p is not 64 MiB aligned",
                      (void *)p);
        /* Counted at the size asked for, not the over-mapping. */
        ck_assert_uint_eq(AO_load(&os_sys_bytes[SYS_HEAP]), before + n);
        ck_assert(is_mapped(p, 4096));
        ck_assert(is_mapped(p + n - 4096, 4096));
        ck_assert(all_zero(p, 4096));
        ck_assert(all_zero(p + n - 4096, 4096));
        p[0] = 1;
        p[n - 1] = 2;
        os_unmap(p, n, SYS_HEAP);
        ck_assert_uint_eq(AO_load(&os_sys_bytes[SYS_HEAP]), before);
    }
    /* Smaller alignments too. */
    for (size_t align = 4096; align <= 16 * MiB; align <<= 2) {
        void *p = os_map_aligned(12288, align, SYS_OTHER);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p & (align - 1), 0);
        os_unmap(p, 12288, SYS_OTHER);
    }
}
END_TEST

/* The over-mapping (size + align bytes) is trimmed to the block: the pages just
 * before and just after it cannot both still be mapped.  (One neighbour may be an
 * unrelated mapping that the kernel placed next to ours.) */
START_TEST(map_aligned_trims)
{
    for (int i = 0; i < 4; i++) {
        unsigned char *p = os_map_aligned(ARENA_SIZE, ARENA_SIZE, SYS_HEAP);
        ck_assert_ptr_nonnull(p);
        bool mapped_after = is_mapped(p + ARENA_SIZE, 4096);
        bool mapped_before = is_mapped(p - 4096, 4096);
        os_unmap(p, ARENA_SIZE, SYS_HEAP);
        ck_assert(!is_mapped(p, 4096));
        ck_assert(!is_mapped(p + ARENA_SIZE - 4096, 4096));
        ck_assert_msg(!(mapped_after && mapped_before),
                      "both neighbours of the aligned block are mapped: over-mapping not trimmed?");
    }
}
END_TEST

/* ---- os_reserve / os_release --------------------------------------------------------- */

START_TEST(release_reads_zero)
{
    size_t n = 256 * KiB;
    AO_t before = AO_load(&os_sys_bytes[SYS_OTHER]);
    unsigned char *p = os_map(n, SYS_OTHER);
    ck_assert_ptr_nonnull(p);
    memset(p, 0xC3, n);
    os_release(p, n);
    ck_assert_msg(all_zero(p, n), "released memory does not read as zero");
    /* Still mapped and usable, and still counted (release is not unmap). */
    ck_assert_uint_eq(AO_load(&os_sys_bytes[SYS_OTHER]), before + n);
    memset(p, 0x11, n);
    ck_assert_int_eq(p[n / 2], 0x11);
    /* Releasing part of it leaves the rest alone. */
    os_release(p + 64 * KiB, 64 * KiB);
    ck_assert_int_eq(p[64 * KiB - 1], 0x11);
    ck_assert(all_zero(p + 64 * KiB, 64 * KiB));
    ck_assert_int_eq(p[128 * KiB], 0x11);
    os_unmap(p, n, SYS_OTHER);
    ck_assert_uint_eq(AO_load(&os_sys_bytes[SYS_OTHER]), before);
}
END_TEST

START_TEST(release_heap_aligned)
{
    unsigned char *p = os_map_aligned(ARENA_SIZE, ARENA_SIZE, SYS_HEAP);
    ck_assert_ptr_nonnull(p);
    for (size_t off = 0; off < ARENA_SIZE; off += PAGE_SIZE)
        p[off] = 0xEE;
    os_release(p + PAGE_SIZE, 4 * PAGE_SIZE);
    ck_assert_int_eq(p[0], 0xEE);
    ck_assert(all_zero(p + PAGE_SIZE, 4 * PAGE_SIZE));
    ck_assert_int_eq(p[5 * PAGE_SIZE], 0xEE);
    os_unmap(p, ARENA_SIZE, SYS_HEAP);
}
END_TEST

START_TEST(reserve_not_counted)
{
    AO_t before[SYS_KINDS];
    for (int k = 0; k < SYS_KINDS; k++)
        before[k] = AO_load(&os_sys_bytes[k]);
    size_t n = (size_t)1 << 32;   /* 4 GiB of address space, never committed */
    unsigned char *p = os_reserve(n);
    ck_assert_ptr_nonnull(p);
    for (int k = 0; k < SYS_KINDS; k++)
        ck_assert_uint_eq(AO_load(&os_sys_bytes[k]), before[k]);
    ck_assert_int_eq(p[0], 0);
    ck_assert_int_eq(p[n - 1], 0);
    p[n / 2] = 7;
    ck_assert_int_eq(p[n / 2], 7);
    munmap(p, n);
}
END_TEST

/* True if the kernel lets us read [p, p + n): write() from it to a pipe fails with
 * EFAULT on inaccessible memory instead of faulting. */
static bool readable(const void *p, size_t n)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ssize_t r = write(fds[1], p, n);
    int e = errno;
    close(fds[0]);
    close(fds[1]);
    return r == (ssize_t)n || (r < 0 && e != EFAULT);
}

START_TEST(reserve_aligned_then_commit)
{
    AO_t before[SYS_KINDS];
    for (int k = 0; k < SYS_KINDS; k++)
        before[k] = AO_load(&os_sys_bytes[k]);
    unsigned char *p = os_reserve_aligned(ARENA_SIZE, ARENA_SIZE);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p & (ARENA_SIZE - 1), 0);
    /* Reserved only: not counted anywhere, not accessible. */
    for (int k = 0; k < SYS_KINDS; k++)
        ck_assert_uint_eq(AO_load(&os_sys_bytes[k]), before[k]);
    ck_assert(!readable(p, 16));
    ck_assert(!readable(p + ARENA_SIZE - 16, 16));
    /* Commit 1 MiB in the middle: counted, zeroed, writable; the rest stays shut. */
    unsigned char *c = p + 8 * MiB;
    ck_assert_int_eq(os_commit(c, 1 * MiB, SYS_HEAP), 0);
    ck_assert_uint_eq(AO_load(&os_sys_bytes[SYS_HEAP]), before[SYS_HEAP] + 1 * MiB);
    ck_assert(readable(c, 4096));
    ck_assert(all_zero(c, 1 * MiB));
    memset(c, 0x3C, 1 * MiB);
    ck_assert_int_eq(c[1 * MiB - 1], 0x3C);
    ck_assert(!readable(c - 16, 16));
    ck_assert(!readable(c + 1 * MiB, 16));
    /* Released committed memory reads zero and stays usable. */
    os_release(c, 1 * MiB);
    ck_assert(all_zero(c, 1 * MiB));
    c[5] = 1;
    munmap(p, ARENA_SIZE);
}
END_TEST

/* ---- clocks, CPUs, threads ------------------------------------------------------------ */

START_TEST(clocks_monotonic)
{
    uint64_t prev = os_now_ns();
    for (int i = 0; i < 100000; i++) {
        uint64_t t = os_now_ns();
        ck_assert_uint_ge(t, prev);
        prev = t;
    }
    uint64_t t0 = os_now_ns();
    sleep_ms(20);
    uint64_t t1 = os_now_ns();
    ck_assert_uint_ge(t1 - t0, 20 * 1000000ull);
    ck_assert_uint_lt(t1 - t0, 2000 * 1000000ull);

    /* Wall clock: nanoseconds since the epoch, agreeing with time(). */
    uint64_t w = os_wall_ns();
    time_t now = time(NULL);
    ck_assert_uint_ge(w / 1000000000u + 2, (uint64_t)now);
    ck_assert_uint_le(w / 1000000000u, (uint64_t)now + 2);
}
END_TEST

START_TEST(cpu_clocks)
{
    uint64_t t0 = os_thread_cpu_ns(), p0 = os_process_cpu_ns();
    uint64_t w0 = os_now_ns();
    /* Spin until this thread has used 5 ms of CPU (however loaded the machine is),
     * or give up after 3 s of wall time. */
    volatile uint64_t x = 0;
    while (os_thread_cpu_ns() - t0 < 5 * 1000000ull && os_now_ns() - w0 < 3000 * 1000000ull)
        x++;
    uint64_t t1 = os_thread_cpu_ns(), p1 = os_process_cpu_ns(), w1 = os_now_ns();
    ck_assert_uint_ge(t1 - t0, 5 * 1000000ull);
    /* CPU time cannot run ahead of wall time for one thread. */
    ck_assert_uint_le(t1 - t0, w1 - w0 + 1000000ull);
    /* The process has used at least what this thread has. */
    ck_assert_uint_ge(p1 - p0, t1 - t0 - 1000000ull);
    ck_assert_uint_ge(p1, t1);
    /* Sleeping costs no CPU to speak of. */
    uint64_t t2 = os_thread_cpu_ns();
    sleep_ms(30);
    ck_assert_uint_lt(os_thread_cpu_ns() - t2, 20 * 1000000ull);
}
END_TEST

START_TEST(ncpu)
{
    int n = os_ncpu();
    ck_assert_int_ge(n, 1);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online > 0)
        ck_assert_int_eq(n, (int)online);
}
END_TEST

struct stack_probe {
    uintptr_t lo, hi, local;
    int rc;
    pid_t tid;
    void *want_lo;     /* non-NULL: the thread was given this stack */
    size_t want_size;
};

static __attribute__((noinline)) void probe_here(struct stack_probe *r)
{
    volatile int local = 1;
    r->rc = os_thread_stack(&r->lo, &r->hi);
    r->local = (uintptr_t)&local;
    r->tid = os_gettid();
}

static void *probe_thread(void *arg)
{
    probe_here(arg);
    return NULL;
}

START_TEST(stack_bounds_main)
{
    struct stack_probe r;
    memset(&r, 0, sizeof r);
    probe_here(&r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_uint_lt(r.lo, r.hi);
    ck_assert_msg(r.lo <= r.local && r.local < r.hi, "local %#lx outside [%#lx, %#lx)",
                  (unsigned long)r.local, (unsigned long)r.lo, (unsigned long)r.hi);
    /* This frame's variable too, and the environment (above main's frames). */
    int mine = 0;
    ck_assert(r.lo <= (uintptr_t)&mine && (uintptr_t)&mine < r.hi);
    ck_assert_uint_ge(r.hi - r.lo, 64 * KiB);
    /* In the (forked) test process the main thread's tid is the pid. */
    ck_assert_int_eq(r.tid, getpid());
}
END_TEST

START_TEST(stack_bounds_thread)
{
    struct stack_probe r;
    memset(&r, 0, sizeof r);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, probe_thread, &r), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_msg(r.lo <= r.local && r.local < r.hi, "thread local %#lx outside [%#lx, %#lx)",
                  (unsigned long)r.local, (unsigned long)r.lo, (unsigned long)r.hi);
    ck_assert_int_ne(r.tid, getpid());
    ck_assert_int_gt(r.tid, 0);
    /* Not the main thread's stack. */
    int mine = 0;
    ck_assert(!(r.lo <= (uintptr_t)&mine && (uintptr_t)&mine < r.hi));

    /* A thread with a stack size given: the bounds span at least that much. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * KiB);
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(pthread_create(&t, &attr, probe_thread, &r), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    pthread_attr_destroy(&attr);
    ck_assert_int_eq(r.rc, 0);
    ck_assert(r.lo <= r.local && r.local < r.hi);
    ck_assert_uint_ge(r.hi - r.lo, 256 * KiB);
    ck_assert_uint_lt(r.hi - r.lo, 64 * MiB);
}
END_TEST

START_TEST(stack_bounds_user_stack)
{
    /* A stack the host allocated: the bounds are exactly that block. */
    size_t n = 512 * KiB;
    void *stack = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(stack, MAP_FAILED);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    ck_assert_int_eq(pthread_attr_setstack(&attr, stack, n), 0);
    struct stack_probe r;
    memset(&r, 0, sizeof r);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, &attr, probe_thread, &r), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    pthread_attr_destroy(&attr);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_uint_eq(r.lo, (uintptr_t)stack);
    ck_assert_uint_eq(r.hi, (uintptr_t)stack + n);
    ck_assert(r.lo <= r.local && r.local < r.hi);
    munmap(stack, n);
}
END_TEST

START_TEST(many_threads_distinct_stacks)
{
    enum { N = 8 };
    struct stack_probe r[N];
    pthread_t t[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, probe_thread, &r[i]), 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(r[i].rc, 0);
        ck_assert(r[i].lo <= r[i].local && r[i].local < r[i].hi);
        for (int j = 0; j < i; j++)
            if (r[j].lo == r[i].lo)   /* glibc may reuse a joined thread's stack */
                continue;
            else
                ck_assert(r[i].hi <= r[j].lo || r[j].hi <= r[i].lo);
    }
}
END_TEST

static Suite *os_suite(void)
{
    Suite *s = suite_create("os");
    TCase *tc = tcase_create("map");
    tcase_add_test(tc, map_is_zeroed_and_counted);
    tcase_add_test(tc, map_counts_per_kind);
    tcase_add_test(tc, map_fails_cleanly);
    tcase_add_test(tc, map_aligned_64mib);
    tcase_add_test(tc, map_aligned_trims);
    tcase_add_test(tc, release_reads_zero);
    tcase_add_test(tc, release_heap_aligned);
    tcase_add_test(tc, reserve_not_counted);
    tcase_add_test(tc, reserve_aligned_then_commit);
    suite_add_tcase(s, tc);

    tc = tcase_create("clocks");
    tcase_add_test(tc, clocks_monotonic);
    tcase_add_test(tc, cpu_clocks);
    tcase_add_test(tc, ncpu);
    suite_add_tcase(s, tc);

    tc = tcase_create("stacks");
    tcase_add_test(tc, stack_bounds_main);
    tcase_add_test(tc, stack_bounds_thread);
    tcase_add_test(tc, stack_bounds_user_stack);
    tcase_add_test(tc, many_threads_distinct_stacks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(os_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
