/* os.c - every call the collector makes into the operating system.
 *
 * Memory mapping (arenas, metadata), returning pages, clocks, CPU counts and the
 * calling thread's stack bounds.  The rest of the collector is written against these
 * few functions, so a port touches this file (and the signal code in stw.c) only.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

atomic_word os_sys_bytes[SYS_KINDS];

void gc_fatal_(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    if (write(2, "tricolor: fatal: ", 17) < 0 || write(2, buf, (size_t)n) < 0) {
        /* nothing more can be said */
    }
    abort();
}

void gc_warn_(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    char line[600];
    memcpy(line, "tricolor: ", 10);
    memcpy(line + 10, buf, (size_t)n);
    /* One write, so lines from several threads never interleave. */
    if (write(2, line, (size_t)n + 10) < 0) {
        /* stderr closed: nothing to do */
    }
}

void *os_map(size_t size, enum sys_kind kind)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    atomic_add(&os_sys_bytes[kind], size);
    return p;
}

/* Map size bytes aligned to align (a power of two) by over-mapping and trimming. */
void *os_map_aligned(size_t size, size_t align, enum sys_kind kind)
{
    size_t len = size + align;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    uintptr_t start = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)p, tail = len - head - size;
    if (head)
        munmap(p, head);
    if (tail)
        munmap((char *)start + size, tail);
    atomic_add(&os_sys_bytes[kind], size);
    return (void *)start;
}

void os_unmap(void *p, size_t size, enum sys_kind kind)
{
    munmap(p, size);
    atomic_add(&os_sys_bytes[kind], -(AO_t)size);
}

/* Address space that is only touched page by page (the arena L1 map): not counted
 * in sys until used, and never committed by the kernel up front. */
void *os_reserve(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Address space for heap arenas: reserved inaccessible, committed piece by piece with
 * os_commit, so heap_sys (and the kernel's commit charge) follow what is used. */
void *os_reserve_aligned(size_t size, size_t align)
{
    size_t len = size + align;
    char *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    uintptr_t start = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)p, tail = len - head - size;
    if (head)
        munmap(p, head);
    if (tail)
        munmap((char *)start + size, tail);
    return (void *)start;
}

int os_commit(void *p, size_t size, enum sys_kind kind)
{
    if (mprotect(p, size, PROT_READ | PROT_WRITE) != 0) {
        errno = ENOMEM;
        return -1;
    }
    atomic_add(&os_sys_bytes[kind], size);
    return 0;
}

void os_release(void *p, size_t size)
{
    madvise(p, size, MADV_DONTNEED);
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t os_now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
uint64_t os_wall_ns(void) { return clock_ns(CLOCK_REALTIME); }
uint64_t os_thread_cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }
uint64_t os_process_cpu_ns(void) { return clock_ns(CLOCK_PROCESS_CPUTIME_ID); }

int os_ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

pid_t os_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

int os_thread_stack(uintptr_t *lo, uintptr_t *hi)
{
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return -1;
    int rc = pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return -1;
    *lo = (uintptr_t)addr;
    *hi = (uintptr_t)addr + size;
    return 0;
}
