/* stw.c - the thread registry, and stopping and resuming the world.
 *
 * Every thread that touches the heap is registered: its stack bounds are known and it
 * can be stopped.  The world is stopped with a signal (GCDEBUG=stopsignal, SIGPWR by
 * default): the handler saves the thread's registers and stack pointer, acknowledges,
 * and waits on a futex until the world resumes: one wake-up call releases every
 * stopped thread at once, so none waits for the collector to signal the others (on a
 * busy machine the first one woken can take the collector's CPU).  Host code needs no
 * safepoint polls,
 * and a thread blocked in a system call stops too.  A thread inside the allocator (a
 * "critical section": it may hold a collector lock or a half-updated cache) defers the
 * stop until it leaves, so the collector never sees the heap mid-update.
 *
 * Lock order: cycle.lock -> the phdr lock (roots.c) -> stw_registry_lock -> (heap,
 * central, roots) locks.  The registry lock is only ever taken outside a critical
 * section; the others only inside one or by the collector with the world stopped.  Nothing here calls malloc or stdio
 * while the world is stopped: a stopped thread may hold their locks.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <semaphore.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

pthread_mutex_t stw_registry_lock = PTHREAD_MUTEX_INITIALIZER;
struct stw_stop_report stw_last_stop;
struct mutator *stw_threads;
int stw_nthreads;

static pthread_key_t exit_key;
static sem_t ack_sem;
static atomic_word stop_seq;        /* current stop request */
static atomic_word resume_seq;      /* last request that was resumed */
static volatile int resume_word;    /* futex: bumped at each resume */
static uint64_t stop_start_ns;
static int stop_sig;
static struct mutator *stopper;     /* the thread stopping the world (atomic: the
                                       stop signal's handler reads it) */

#define STOP_SPIN_NS 50000   /* 50 us: a few times the usual time to stop */

static inline void spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void stop_here(struct mutator *m, const void *uctx)
{
    AO_t seq = AO_load_acquire(&stop_seq);
    if (AO_load(&m->stop_seq) == seq || AO_load(&resume_seq) == seq)
        return;   /* a duplicate or stale request */
    /* This stop is being taken: the flag the stopper set for it is spent (a stale
     * one would only make critical_leave and gc_do_blocking park for nothing). */
    __atomic_store_n(&m->stop_pending, 0, __ATOMIC_RELAXED);
    if (uctx)
        memcpy(&m->stopped_ctx, uctx, sizeof m->stopped_ctx);
    else
        getcontext(&m->stopped_ctx);
    volatile uintptr_t here = 0;
    m->stopped_sp = (uintptr_t)&here;
    m->stop_ns = os_now_ns() - stop_start_ns;
    AO_store_release(&m->stop_seq, seq);
    TSAN_RELEASE(&ack_sem);
    sem_post(&ack_sem);

    for (;;) {
        int w = __atomic_load_n(&resume_word, __ATOMIC_ACQUIRE);
        if (AO_load_acquire(&resume_seq) == seq)
            break;
        /* Returns at once if resume_word moved on since it was read. */
        syscall(SYS_futex, &resume_word, FUTEX_WAIT_PRIVATE, w, NULL, NULL, 0);
    }
    TSAN_ACQUIRE(&resume_word);
    m->stopped_sp = 0;
}

static void on_stop_signal(int sig, siginfo_t *info, void *uctx)
{
    (void)sig;
    (void)info;
    int saved = errno;
    struct mutator *m = alloc_self;
    if (m && m != __atomic_load_n(&stopper, __ATOMIC_RELAXED)) {
        if (m->critical)
            __atomic_store_n(&m->stop_pending, 1, __ATOMIC_RELAXED);   /* critical_leave */
        else if (AO_load(&m->block_state) == STW_RUNNING)
            stop_here(m, uctx);
        /* else: in a blocking region (or, in TSan builds, stw_lock_blocking), where
         * the stop is accounted for */
    }
    errno = saved;
}

void stw_park_pending(struct mutator *m)
{
    if (m == __atomic_load_n(&stopper, __ATOMIC_RELAXED)) {
        /* A flag left from a stop that counted this thread in a blocking region; it
         * is the one stopping the world now. */
        __atomic_store_n(&m->stop_pending, 0, __ATOMIC_RELAXED);
        return;
    }
    int saved = errno;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, stop_sig);
    /* The stop signal must not run the handler again in the middle of this stop. */
    pthread_sigmask(SIG_BLOCK, &block, &old);
    __atomic_store_n(&m->stop_pending, 0, __ATOMIC_RELAXED);
    stop_here(m, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
}

/* Go to STW_BLOCKED (see internal.h).  The pending flag closes the race with a stop
 * that looked before the thread went blocked: the stopper sets it before looking, the
 * thread reads it after going blocked (both sequentially consistent), so one of them
 * sees the other. */
__attribute__((noinline)) void stw_block_enter(struct mutator *m)
{
    volatile uintptr_t here = 0;   /* below the caller's frame */
    if (AO_load(&m->block_state) != STW_RUNNING)
        gc_fatal_("a blocking region entered inside another (a gc_* call inside "
                  "gc_do_blocking?)");
    for (;;) {
        getcontext(&m->stopped_ctx);
        m->stopped_sp = (uintptr_t)&here;
        __atomic_store_n(&m->block_state, STW_BLOCKED, __ATOMIC_SEQ_CST);
        if (!__atomic_load_n(&m->stop_pending, __ATOMIC_SEQ_CST))
            return;
        if (!stw_block_move(m, STW_BLOCKED, STW_RUNNING))
            return;   /* a stop counted it already */
        stw_park_pending(m);   /* a stop that signalled it, or a stale flag */
    }
}

/* Back to STW_RUNNING, waiting while a stop counts the thread as stopped. */
void stw_block_leave(struct mutator *m)
{
    while (!stw_block_move(m, STW_BLOCKED, STW_RUNNING)) {
        int w = __atomic_load_n(&resume_word, __ATOMIC_ACQUIRE);
        if (AO_load(&m->block_state) == STW_BLOCKED_STOPPED)
            syscall(SYS_futex, &resume_word, FUTEX_WAIT_PRIVATE, w, NULL, NULL, 0);
    }
    TSAN_ACQUIRE(&resume_word);
    m->stopped_sp = 0;
    /* The flags of stops that counted it while it was blocked are left set: a stop
     * that saw it running just now set its flag too and relies on it, should the
     * thread enter another region before its signal arrives.  A stale flag costs one
     * stw_park_pending at the next critical_leave, which clears it. */
}

static void region_cancelled(void *arg)
{
    struct mutator *m = arg;
    stw_block_leave(m);
    m->blocking = 0;
}

/* The caller's callee-saved registers are pushed into this frame, which stays live
 * while fn runs, and stw_block_enter publishes a stack pointer below it.  fn's own
 * frames are below that and are scanned only where they overlap: fn holds no
 * collected object. */
__attribute__((noinline)) void *gc_do_blocking(void *(*fn)(void *), void *arg)
{
    struct mutator *m = alloc_self;
    if (!m || m->collector || m->blocking)
        return fn(arg);   /* not stoppable, or a region already */
    if (m->critical)
        gc_fatal_("gc_do_blocking inside the collector (a finalizer or hook?)");
    __builtin_unwind_init();
    /* fn and arg in this frame too: the registers that held them may be reused. */
    void *volatile held[2] = {(void *)(uintptr_t)fn, arg};
    m->blocking = 1;
    stw_block_enter(m);
    /* Cancelled in fn (a join, a read): leave the region before unwinding further,
     * where cleanup handlers and the exit destructor may touch the heap. */
    void *r;
    pthread_cleanup_push(region_cancelled, m);
    r = fn(arg);
    pthread_cleanup_pop(0);
    stw_block_leave(m);
    m->blocking = 0;
    __asm__ volatile("" : : "r"(held) : "memory");
    return r;
}

#if GC_TSAN

/* A registered thread about to block on a lock that a stopping thread may hold.  It
 * saves its registers and stack pointer as stop_here does and goes to STW_BLOCKED; a
 * stop finding it there moves it to STW_BLOCKED_STOPPED and counts it as stopped
 * without a signal.  Leaving, it waits while it is counted as stopped.  The pending
 * flag closes the race with a stop that looked before the thread went blocked: the
 * stopper sets it before looking, the thread reads it after going blocked (both
 * sequentially consistent), so one of them sees the other. */
__attribute__((noinline)) void stw_lock_blocking(pthread_mutex_t *l)
{
    struct mutator *m = alloc_self;
    if (!m || m->critical) {   /* not stoppable here */
        pthread_mutex_lock(l);
        return;
    }
    if (pthread_mutex_trylock(l) == 0)
        return;
    __builtin_unwind_init();
    stw_block_enter(m);
    pthread_mutex_lock(l);
    stw_block_leave(m);
}
#endif

static void on_thread_exit(void *arg)
{
    struct mutator *m = arg;
    if (m && alloc_self == m)
        stw_unregister_self();
}

/* fork: the child inherits one thread.  The others are stopped across fork() (none
 * is then inside the allocator with a half-counted object) and every collector lock
 * is held, so nothing is copied mid-update; the child drops the threads that did not
 * come along. */
static void unlock_all_but_registry(void)
{
    pthread_mutex_unlock(&stats_gc.lock);
    roots_unlock_all();
    heap_unlock();
    alloc_unlock_all();
}

static void atfork_prepare(void)
{
    stw_lock_blocking(&cycle.lock);
    roots_phdr_lock();   /* see roots.c: no walk of the loader's list across fork */
    stw_stop_world();   /* takes stw_registry_lock */
    alloc_lock_all();
    heap_lock();
    roots_lock_all();
    pthread_mutex_lock(&stats_gc.lock);
}

static void atfork_parent(void)
{
    unlock_all_but_registry();
    stw_start_world();   /* releases stw_registry_lock */
    roots_phdr_unlock();
    pthread_mutex_unlock(&cycle.lock);
}

static void atfork_child(void)
{
    unlock_all_but_registry();
    __atomic_store_n(&stopper, NULL, __ATOMIC_RELAXED);   /* the stopped threads are gone */
    AO_store(&resume_seq, AO_load(&stop_seq));
    pthread_mutex_unlock(&stw_registry_lock);
    roots_phdr_unlock();
    pthread_mutex_unlock(&cycle.lock);
    sem_destroy(&ack_sem);
    sem_init(&ack_sem, 0, 0);
    pthread_mutex_lock(&stw_registry_lock);
    struct mutator *gone = NULL;
    for (struct mutator *m = stw_threads, *next; m; m = next) {
        next = m->next;
        if (m == alloc_self)
            continue;
        if (m->prev)
            m->prev->next = m->next;
        else
            stw_threads = m->next;
        if (m->next)
            m->next->prev = m->prev;
        __atomic_store_n(&stw_nthreads, stw_nthreads - 1, __ATOMIC_RELAXED);
        m->next = gone;
        gone = m;
    }
    pthread_mutex_unlock(&stw_registry_lock);
    /* Their caches go back and their counters into the exited threads' totals. */
    while (gone) {
        struct mutator *m = gone;
        gone = m->next;
        alloc_mutator_free(m);
    }
}

void stw_init(void)
{
    stop_sig = opt.stopsignal;   /* (GCDEBUG=resumesignal is accepted and unused) */
    sem_init(&ack_sem, 0, 0);
    pthread_key_create(&exit_key, on_thread_exit);
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_stop_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);   /* nothing interrupts the handler */
    if (sigaction(stop_sig, &sa, NULL) != 0)
        gc_fatal_("cannot install the stop signal handler (signal %d)", stop_sig);
}

struct mutator *stw_register_self(unsigned how)
{
    if (alloc_self)
        return alloc_self;
    struct mutator *m = alloc_mutator_new();
    if (!m)
        return NULL;
    m->thread = pthread_self();
    m->tid = os_gettid();
    m->auto_registered = (how & STW_REG_AUTO) != 0;
    m->collector = (how & STW_REG_COLLECTOR) != 0;   /* set before anyone can see m */
    if (os_thread_stack(&m->stack_lo, &m->stack_hi) != 0) {
        gc_warn_("cannot find the stack of thread %d: not registered", (int)m->tid);
        alloc_mutator_free(m);
        return NULL;
    }
    /* The stop signal must reach this thread. */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, stop_sig);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);

    pthread_mutex_lock(&stw_registry_lock);
    m->next = stw_threads;
    if (stw_threads)
        stw_threads->prev = m;
    stw_threads = m;
    __atomic_store_n(&stw_nthreads, stw_nthreads + 1, __ATOMIC_RELAXED);
    alloc_self = m;
    pthread_mutex_unlock(&stw_registry_lock);
    pthread_setspecific(exit_key, m);
    return m;
}

void stw_unregister_self(void)
{
    struct mutator *m = alloc_self;
    if (!m)
        return;
    if (AO_load(&m->block_state) != STW_RUNNING) {   /* left a region by longjmp */
        stw_block_leave(m);
        m->blocking = 0;
    }
    /* Give the cached spans back while still registered, so no collection can run
     * while this thread's cache is half-returned; a mark under way gets what the
     * thread's barrier buffer holds. */
    critical_enter(m);
    barrier_flush(m);
    alloc_flush_cache(m);
    critical_leave(m);
    mark_destroy(&m->assist);

    stw_lock_blocking(&stw_registry_lock);
    if (m->prev)
        m->prev->next = m->next;
    else
        stw_threads = m->next;
    if (m->next)
        m->next->prev = m->prev;
    __atomic_store_n(&stw_nthreads, stw_nthreads - 1, __ATOMIC_RELAXED);
    alloc_self = NULL;
    heap_lock();
    alloc_merge_counters(&alloc_dead_counters, &m->stats);
    heap_unlock();
    pthread_mutex_unlock(&stw_registry_lock);
    pthread_setspecific(exit_key, NULL);
    os_unmap(m, (sizeof(struct mutator) + 4095) & ~(size_t)4095, SYS_MCACHE);
}

/* Wait for n stop acknowledgements; name the threads that are late.  In TSan builds
 * the signal is sent again every 10 ms to the threads that have not stopped: TSan
 * holds a signal back until the thread's next intercepted call and can merge it with
 * a later one.  A repeat is harmless: stop_here acknowledges each request once. */
static void wait_acks(int n, AO_t seq)
{
    /* The acknowledgements come within microseconds: spin for them first.  A stopper
     * that slept instead would be woken onto the CPU it slept on, and if a kernel
     * thread took that CPU meanwhile, wait there for milliseconds while the CPU the
     * stopped thread left stands idle; a spinning stopper is still runnable when that
     * CPU goes idle, and is moved to it at once. */
    uint64_t spin_until = os_now_ns() + STOP_SPIN_NS;
    while (n > 0) {
        if (sem_trywait(&ack_sem) == 0)
            n--;
        else if (os_now_ns() >= spin_until)
            break;
        else
            spin_pause();
    }
    int warn_ms = opt.stoptimeout, waited_ms = 0;
    const int slice_ms = GC_TSAN && warn_ms > 10 ? 10 : warn_ms;
    while (n > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += slice_ms / 1000;
        ts.tv_nsec += (long)(slice_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (sem_timedwait(&ack_sem, &ts) == 0) {
            n--;
            continue;
        }
        if (errno == EINTR)
            continue;
        waited_ms += slice_ms;
        bool warn = waited_ms >= warn_ms;
        for (struct mutator *m = stw_threads; m; m = m->next)
            if (m != alloc_self && AO_load(&m->stop_seq) != seq) {
                if (GC_TSAN)
                    pthread_kill(m->thread, stop_sig);
                if (!warn)
                    continue;
                char name[32] = "?";
                pthread_getname_np(m->thread, name, sizeof name);
                gc_warn_("thread %d (%s) has not stopped for the collector after %d ms: "
                         "is signal %d blocked in it, or is it stuck in the allocator?",
                         (int)m->tid, name, waited_ms, stop_sig);
            }
        if (warn)
            warn_ms *= 2;   /* then keep waiting, less chattily */
    }
}

uint64_t stw_stop_world(void)
{
    stw_lock_blocking(&stw_registry_lock);   /* another thread may be stopping it */
    __atomic_store_n(&stopper, alloc_self, __ATOMIC_RELAXED);
    AO_t seq = AO_load(&stop_seq) + 1;
    stop_start_ns = os_now_ns();
    stw_last_stop.request_ns = stop_start_ns;
    AO_store_release(&stop_seq, seq);
    int n = 0;
    for (struct mutator *m = stw_threads; m; m = m->next) {
        if (m == alloc_self)
            continue;
        /* A thread in a blocking region (or, in TSan builds, stw_lock_blocking) is
         * stopped already: counted, not signalled (see stw_block_enter).  The flag also
         * makes a TSan build, which delays the signal to the thread's next
         * intercepted call, stop at critical_leave. */
        __atomic_store_n(&m->stop_pending, 1, __ATOMIC_SEQ_CST);
        if (stw_block_move(m, STW_BLOCKED, STW_BLOCKED_STOPPED)) {
            m->stop_ns = 0;
            AO_store(&m->stop_seq, seq);
            continue;
        }
        int rc = pthread_kill(m->thread, stop_sig);
        if (rc == 0)
            n++;
        else
            gc_fatal_("cannot signal thread %d to stop (%s): did it exit without "
                      "gc_unregister_thread?", (int)m->tid, strerror(rc));
    }
    wait_acks(n, seq);
    TSAN_ACQUIRE(&ack_sem);
    uint64_t took = os_now_ns() - stop_start_ns;
    /* For stwtrace: which thread was slowest to stop. */
    struct stw_stop_report *r = &stw_last_stop;
    memset(r, 0, sizeof *r);
    r->request_ns = stop_start_ns;
    r->stop_ns = took;
    r->threads = n;
    for (struct mutator *m = stw_threads; m; m = m->next)
        if (m != alloc_self && m->stop_ns >= r->slowest_ns) {
            r->slowest_ns = m->stop_ns;
            r->slowest_tid = m->tid;
            r->slowest = m->thread;
        }
    return took;
}

/* Resuming does not wait for the threads to run again: on a machine with fewer cores
 * than runnable threads that would time the scheduler, not the pause.  A thread that
 * has not woken yet when the next stop begins leaves its wait (resume_seq moved on),
 * then takes the next stop signal, which stayed blocked while its handler ran.
 * For the same reason the pause ends when the world is released, before the futex
 * wake: the kernel may hand this thread's CPU to the threads it wakes before the
 * call returns (seen: binarytrees -t 2, three program threads on two cores, the call
 * returning 2-5 ms after the world ran again), and that is the program running. */
uint64_t stw_start_world(void)
{
    AO_t seq = AO_load(&stop_seq);
    for (struct mutator *m = stw_threads; m; m = m->next)
        stw_block_move(m, STW_BLOCKED_STOPPED, STW_BLOCKED);
    AO_store_release(&resume_seq, seq);
    TSAN_RELEASE(&resume_word);
    __atomic_add_fetch(&resume_word, 1, __ATOMIC_RELEASE);
    uint64_t now = os_now_ns();
    syscall(SYS_futex, &resume_word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    /* Returned, not only recorded: stw_last_stop belongs to the next stopper as soon
     * as the registry lock is released. */
    stw_last_stop.resume_ns = now;
    __atomic_store_n(&stopper, NULL, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&stw_registry_lock);
    return now;
}

/* ---- public registration calls ------------------------------------------------------------ */

int gc_register_thread(void)
{
    init_ensure();
    return stw_register_self(0) ? 0 : -1;
}

int gc_unregister_thread(void)
{
    if (!alloc_self)
        return -1;
    stw_unregister_self();
    return 0;
}

struct start_args {
    void *(*fn)(void *);
    void *arg;
};

static void *thread_start(void *p)
{
    struct start_args *a = p;
    stw_register_self(0);
    void *(*fn)(void *) = a->fn;
    void *arg = a->arg;   /* now on this registered thread's stack */
    gc_remove_roots(a, a + 1);
    free(a);
    void *r = fn(arg);
    stw_unregister_self();
    return r;
}

int gc_thread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    init_ensure();
    /* Until the new thread has registered, arg is reachable only through this block:
     * make it a root for that long. */
    struct start_args *a = malloc(sizeof *a);
    if (!a)
        return ENOMEM;
    a->fn = fn;
    a->arg = arg;
    gc_add_roots(a, a + 1);
    int rc = pthread_create(t, attr, thread_start, a);
    if (rc != 0) {
        gc_remove_roots(a, a + 1);
        free(a);
    }
    return rc;
}

/* GCDEBUG=stwtrace=1: one line per pause, after the world resumed (no stdio while
 * it is stopped).  r is a copy taken during the pause. */
void stw_trace(const char *what, uint32_t cycle_num, uint64_t pause_ns,
               const struct stw_stop_report *r)
{
    char name[32] = "?";
    if (r->threads == 0) {
        gc_warn_("stw: gc %u %s: %.3f ms paused, no other thread to stop", cycle_num, what,
                 pause_ns / 1e6);
        return;
    }
    if (pthread_getname_np(r->slowest, name, sizeof name) != 0)
        strcpy(name, "exited");
    gc_warn_("stw: gc %u %s: %.3f ms paused, %d threads stopped in %.3f ms, slowest "
             "thread %d (%s) took %.3f ms to stop", cycle_num, what, pause_ns / 1e6,
             r->threads, r->stop_ns / 1e6, (int)r->slowest_tid, name, r->slowest_ns / 1e6);
}
