/* alloc.c - thread caches, central lists, tiny and large objects.
 *
 * The path of a small object: its size class, then the calling thread's cache slot
 * for that class.  A slot holds one span and one 64-slot word of that span's
 * allocation bitmap, reserved for the thread (the bits are set in the span at once, so
 * no other thread and no collector will use them); handing out the next slot is a
 * count-trailing-zeros on a private word, with no lock and no atomic operation.  When
 * the word is used up the slot reserves the span's next word with one compare-and-swap;
 * when the span is full it takes a span with free slots from the class's central list,
 * or a fresh one from the page heap.  Objects over 32 KiB get a span of their own.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

__thread struct mutator *alloc_self __attribute__((tls_model("initial-exec")));
struct central alloc_central[NUM_KINDS][NUM_CLASSES + 1];
atomic_word alloc_heap_live;
volatile int alloc_black;              /* objects are born marked (concurrent mark) */
atomic_word alloc_assist_cpu_ns;       /* CPU spent in assists this cycle */
atomic_word alloc_assist_scan_bytes;    /* scan work assists did this cycle */
struct alloc_counters alloc_dead_counters;

void alloc_init(void)
{
    for (int k = 0; k < NUM_KINDS; k++)
        for (int c = 0; c <= NUM_CLASSES; c++)
            pthread_mutex_init(&alloc_central[k][c].lock, NULL);
}

void alloc_lock_all(void)
{
    for (int k = 0; k < NUM_KINDS; k++)
        for (int c = 0; c <= NUM_CLASSES; c++)
            pthread_mutex_lock(&alloc_central[k][c].lock);
}

void alloc_unlock_all(void)
{
    for (int k = NUM_KINDS - 1; k >= 0; k--)
        for (int c = NUM_CLASSES; c >= 0; c--)
            pthread_mutex_unlock(&alloc_central[k][c].lock);
}

struct mutator *alloc_mutator_new(void)
{
    size_t sz = (sizeof(struct mutator) + 4095) & ~(size_t)4095;
    struct mutator *m = os_map(sz, SYS_MCACHE);
    return m;   /* zeroed by the OS: every cache slot empty */
}

void alloc_merge_counters(struct alloc_counters *into, const struct alloc_counters *from)
{
    for (int c = 0; c <= NUM_CLASSES; c++) {
        counter_add(&into->nmalloc[c], AO_load(&from->nmalloc[c]));
        counter_add(&into->nfree[c], AO_load(&from->nfree[c]));
    }
    counter_add(&into->large_alloc_bytes, AO_load(&from->large_alloc_bytes));
    counter_add(&into->large_free_bytes, AO_load(&from->large_free_bytes));
    counter_add(&into->tiny_allocs, AO_load(&from->tiny_allocs));
}

void alloc_mutator_free(struct mutator *m)
{
    alloc_flush_cache(m);
    heap_lock();
    alloc_merge_counters(&alloc_dead_counters, &m->stats);
    heap_unlock();
    os_unmap(m, (sizeof(struct mutator) + 4095) & ~(size_t)4095, SYS_MCACHE);
}

/* ---- span bitmaps -------------------------------------------------------------------- */

static inline uint64_t valid_mask(const struct span *s, uint32_t w)
{
    uint32_t rem = s->nelems - w * 64;
    return rem >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << rem) - 1);
}

static inline uint32_t nwords(const struct span *s) { return (s->nelems + 63) / 64; }

static void bits_or(atomic_word *w, AO_t bits)
{
    for (;;) {
        AO_t old = AO_load(w);
        if ((old & bits) == bits || AO_compare_and_swap_full(w, old, old | bits))
            return;
    }
}

static void bits_clear(atomic_word *w, AO_t bits)
{
    for (;;) {
        AO_t old = AO_load(w);
        if (!(old & bits) || AO_compare_and_swap_full(w, old, old & ~bits))
            return;
    }
}

/* Reserve every free slot of word w for the calling thread; returns them.  While a
 * concurrent mark runs the slots are marked too: objects are allocated black. */
static uint64_t reserve_word(struct span *s, uint32_t w)
{
    for (;;) {
        AO_t old = AO_load(&s->alloc_bits[w]);
        uint64_t free = ~(uint64_t)old & valid_mask(s, w);
        if (!free)
            return 0;
        if (AO_compare_and_swap_full(&s->alloc_bits[w], old, old | free)) {
            if (alloc_black)
                bits_or(&s->mark_bits[w], free);
            return free;
        }
    }
}

/* Give back reserved slots that were never handed out (and their black marks). */
static void unreserve(struct span *s, uint32_t w, uint64_t bits)
{
    if (alloc_black)
        bits_clear(&s->mark_bits[w], bits);
    bits_clear(&s->alloc_bits[w], bits);
}

static bool span_has_free(const struct span *s)
{
    for (uint32_t w = 0; w < nwords(s); w++)
        if (~(uint64_t)AO_load(&s->alloc_bits[w]) & valid_mask(s, w))
            return true;
    return false;
}

/* ---- central lists (the class's lock held) ------------------------------------------ */

/* Every small span not in a thread cache and not being swept is on one list of its
 * class: partial (swept, free slots), full (swept, none free), or, after a mark, one of
 * the two unswept lists that were partial and full before it (sweep.c).  s->list says
 * which kind; sweepgen says whether it is the swept or the unswept one. */
static struct span **list_head(struct central *c, const struct span *s)
{
    bool unswept = AO_load(&s->sweepgen) != AO_load(&sweep_gen);
    if (s->list == LIST_PARTIAL)
        return unswept ? &c->unswept[0] : &c->partial;
    return unswept ? &c->unswept[1] : &c->full;
}

static void list_push(struct central *c, struct span *s, unsigned list)
{
    s->list = (uint8_t)list;
    struct span **head = list_head(c, s);
    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
}

static void list_remove(struct central *c, struct span *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *list_head(c, s) = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
    s->list = LIST_NONE;
}

/* File a swept span that no cache holds. */
void alloc_file_span(struct central *c, struct span *s)
{
    list_push(c, s, span_has_free(s) ? LIST_PARTIAL : LIST_FULL);
}

struct span *alloc_unswept_pop(struct central *c)
{
    struct span *s = c->unswept[0] ? c->unswept[0] : c->unswept[1];
    if (s)
        list_remove(c, s);
    return s;
}

/* Mark termination, world stopped, caches flushed: the swept lists become the
 * unswept ones (the spans' sweepgen falls behind in the same pause). */
void alloc_lists_to_unswept(void)
{
    for (int k = 0; k < NUM_KINDS; k++)
        for (int c = 1; c <= NUM_CLASSES; c++) {
            struct central *cl = &alloc_central[k][c];
            GC_ASSERT(!cl->unswept[0] && !cl->unswept[1]);
            cl->unswept[0] = cl->partial;
            cl->unswept[1] = cl->full;
            cl->partial = cl->full = NULL;
        }
}

/* gc_free made room in s: a full swept span becomes partial.  (An unswept one is
 * filed by its sweeper, which sees the freed slot.) */
void alloc_release_span(struct span *s)
{
    struct central *c = &alloc_central[s->kind][s->cls];
    pthread_mutex_lock(&c->lock);
    if (!s->cached && s->list == LIST_FULL && AO_load(&s->sweepgen) == AO_load(&sweep_gen) &&
        span_has_free(s)) {
        list_remove(c, s);
        list_push(c, s, LIST_PARTIAL);
    }
    pthread_mutex_unlock(&c->lock);
}

/* Drop a cache slot's span: unhanded slots go back, the span to its central list. */
static void slot_drop(struct cache_slot *k)
{
    struct span *s = k->span;
    if (!s)
        return;
    if (k->free) {
        unreserve(s, k->word, k->free);
        atomic_add(&alloc_heap_live, -(AO_t)((uint64_t)__builtin_popcountll(k->free) * k->size));
    }
    struct central *c = &alloc_central[s->kind][s->cls];
    pthread_mutex_lock(&c->lock);
    s->cached = 0;
    alloc_file_span(c, s);
    pthread_mutex_unlock(&c->lock);
    memset(k, 0, sizeof *k);
}

void alloc_flush_cache(struct mutator *m)
{
    for (int k = 0; k < NUM_KINDS; k++)
        for (int c = 1; c <= NUM_CLASSES; c++)
            slot_drop(&m->cache[k][c]);
    m->tiny = 0;   /* the block may die in the coming sweep: never reuse it after */
    m->tiny_off = 0;
    m->tiny_bounds = NULL;
}

/* ---- refilling a cache slot ------------------------------------------------------------ */

static struct span *new_small_span(unsigned kind, unsigned cls)
{
    const struct size_class *k = &sc_table[cls];
    atomic_word *bounds = NULL;
    if (kind == KIND_TINY && !(bounds = heap_tiny_bounds_alloc()))
        return NULL;
    struct span *s = heap_alloc_span(k->npages);
    if (!s)
        return NULL;   /* bounds stays allocated: a later tiny span will not need it */
    s->cls = (uint8_t)cls;
    s->kind = (uint8_t)kind;
    s->noscan = kind != KIND_SCAN;
    s->tiny_bounds = bounds;
    s->size = k->size;
    s->nelems = k->nelems;
    s->div_mul = k->div_mul;
    for (int w = 0; w < BITMAP_WORDS; w++) {
        AO_store(&s->alloc_bits[w], 0);
        AO_store(&s->mark_bits[w], 0);
    }
    s->list = LIST_NONE;
    s->cached = 1;
    span_publish(s, SPAN_SMALL);
    return s;
}

/* Slots reserved: they count toward the heap the pacer sees, and, while a concurrent
 * mark runs, toward the calling thread's assist debt. */
static inline void note_reserved(struct cache_slot *k, uint64_t f)
{
    uint64_t bytes = (uint64_t)__builtin_popcountll(f) * k->size;
    atomic_add(&alloc_heap_live, bytes);
    if (alloc_black)
        alloc_self->assist_debt += bytes;
}

/* Find the next word with free slots in the slot's span, or a new span.  Returns
 * false when the heap cannot grow. */
static bool slot_refill(struct cache_slot *k, unsigned kind, unsigned cls)
{
    struct span *s = k->span;
    if (s) {
        for (uint32_t w = k->word + 1; w < nwords(s); w++) {
            uint64_t f = reserve_word(s, w);
            if (f) {
                k->word = w;
                k->free = f;
                note_reserved(k, f);
                return true;
            }
        }
        slot_drop(k);   /* full */
    }
    struct central *c = &alloc_central[kind][cls];
    for (;;) {
        pthread_mutex_lock(&c->lock);
        s = c->partial;
        if (s) {
            list_remove(c, s);
            s->cached = 1;
        }
        pthread_mutex_unlock(&c->lock);
        if (!s)   /* none swept: sweep this class's unswept spans for one */
            s = sweep_for_class(kind, cls);
        if (!s)
            break;
        for (uint32_t w = 0; w < nwords(s); w++) {
            uint64_t f = reserve_word(s, w);
            if (f) {
                k->span = s;
                k->base = s->base;
                k->size = s->size;
                k->needzero = s->needzero;
                k->word = w;
                k->free = f;
                note_reserved(k, f);
                return true;
            }
        }
        /* Filled up by nothing we can see (should not happen): file it as full. */
        pthread_mutex_lock(&c->lock);
        s->cached = 0;
        alloc_file_span(c, s);
        pthread_mutex_unlock(&c->lock);
    }
    sweep_some(4);   /* before the page heap grows: sweeping may free pages */
    s = new_small_span(kind, cls);
    if (!s)
        return false;
    k->span = s;
    k->base = s->base;
    k->size = s->size;
    k->needzero = s->needzero;
    k->word = 0;
    k->free = reserve_word(s, 0);
    note_reserved(k, k->free);
    return true;
}

/* ---- the allocation paths ------------------------------------------------------------------ */

static void maybe_collect(void)
{
    if (unlikely(AO_load(&alloc_heap_live) >= AO_load(&cycle.trigger)))
        cycle_maybe_start();
}

/* An allocating thread that runs ahead of the concurrent marker pays in scan work:
 * assist_ratio (1/1024 units, pacer.c) of scan work per byte allocated, in whole
 * chunks of 64 KiB, so marking ends near the heap goal.  At most 128 KiB at a time:
 * the rest stays owed and is paid at the next slow-path allocations (every 64
 * objects at most), so the rate keeps up with any ratio while no allocation stalls
 * for more than a fraction of a millisecond.  With no grey work to take, or with the
 * CPU limiter full (the collector has had its share), the debt is forgiven. */
static void maybe_assist(struct mutator *m)
{
    if (likely(!alloc_black) || m->assist_debt < PACER_ASSIST_CHUNK_BYTES)
        return;
    uint64_t ratio = AO_load(&cycle.assist_ratio);
    uint64_t owed = pacer_assist_work(m->assist_debt, ratio);
    m->assist_debt = 0;
    owed -= mark_take_credit(owed);   /* the background markers' surplus first */
    if (owed < PACER_ASSIST_CHUNK_BYTES / 2 || cycle.limiting)
        return;   /* a small rest, or the collector has had its CPU share: forgiven */
    uint64_t carry;
    uint64_t budget = pacer_assist_step(owed, ratio, &carry);
    if (carry) {
        m->assist_debt = carry;
        owed = budget;
    }
    /* Timed with the monotonic clock (vDSO): the thread CPU clock is a system call,
     * a microsecond or so, which was 2% of gcbench's mutator time.  An assist does
     * not block, so its wall time is its CPU time unless it was preempted; the end is
     * read before critical_leave, where a pending stop would park the thread. */
    uint64_t t0 = os_now_ns(), t1 = t0, done = 0;
    critical_enter(m);
    if (alloc_black) {   /* still marking: it only ends with this thread stopped */
        done = mark_assist(&m->assist, budget);
        t1 = os_now_ns();
    }
    critical_leave(m);
    if (done > owed)   /* whole chunks: the surplus is credit for the next assist */
        atomic_add(&mark_bg_credit, done - owed);
    atomic_add(&alloc_assist_cpu_ns, t1 - t0);
    atomic_add(&alloc_assist_scan_bytes, done);
}

/* The page heap could not grow: the first time, a full collection (unless collection
 * is disabled) and true, to try once more; after that, ENOMEM and false. */
static bool collect_after_oom(int attempt)
{
    if (attempt > 0 || AO_load(&cycle.disabled)) {
        errno = ENOMEM;
        return false;
    }
    cycle_run(WHY_OOM);
    return true;
}

static void *alloc_small_slow(struct mutator *m, unsigned kind, unsigned cls)
{
    int saved_errno = errno;   /* a failed first try must not leave ENOMEM behind */
    for (int attempt = 0;; attempt++) {
        critical_enter(m);
        struct cache_slot *k = &m->cache[kind][cls];
        bool ok = k->free || slot_refill(k, kind, cls);
        if (ok) {
            uint64_t f = k->free;
            unsigned i = (unsigned)__builtin_ctzll(f);
            k->free = f & (f - 1);
            void *p = (void *)(k->base + ((uintptr_t)k->word * 64 + i) * k->size);
            /* Zeroed before the thread can stop: a marked object with stale contents
             * would look like a missed edge to the verifier and gccheckmark. */
            if (k->needzero)
                memset(p, 0, k->size);
            counter_add(&m->stats.nmalloc[cls], 1);
            HOLD_POINTER(p);
            critical_leave(m);
            maybe_collect();
            maybe_assist(m);
            errno = saved_errno;
            return p;
        }
        critical_leave(m);
        if (!collect_after_oom(attempt))
            return NULL;
    }
}

static void *alloc_large(struct mutator *m, size_t n, unsigned kind)
{
    size_t npages = (n + PAGE_SIZE - 1) / PAGE_SIZE;
    if (n > ((size_t)1 << (ADDR_BITS - 2))) {
        errno = ENOMEM;
        return NULL;
    }
    int saved_errno = errno;
    for (int attempt = 0;; attempt++) {
        critical_enter(m);
        sweep_some(4);   /* pages that sweeping frees come before new ones */
        struct span *s = heap_alloc_span(npages);
        if (s) {
            s->cls = 0;
            s->kind = (uint8_t)kind;
            s->noscan = kind != KIND_SCAN;
            s->tiny_bounds = NULL;
            s->size = (uint32_t)(npages * PAGE_SIZE > UINT32_MAX ? 0 : npages * PAGE_SIZE);
            s->nelems = 1;
            s->div_mul = 0;
            s->cached = 0;
            s->list = LIST_NONE;
            for (int w = 0; w < BITMAP_WORDS; w++) {
                AO_store(&s->alloc_bits[w], 0);
                AO_store(&s->mark_bits[w], 0);
            }
            AO_store(&s->alloc_bits[0], 1);
            if (alloc_black)
                AO_store(&s->mark_bits[0], 1);
            size_t bytes = npages * PAGE_SIZE;
            /* From here on the object must be held in this frame: once the critical
             * section ends a collection may run, and the span descriptor is no root. */
            void *p = (void *)s->base;
            if (s->needzero)
                memset(p, 0, bytes);
            span_publish(s, SPAN_LARGE);
            counter_add(&m->stats.nmalloc[0], 1);
            counter_add(&m->stats.large_alloc_bytes, bytes);
            atomic_add(&alloc_heap_live, bytes);
            if (alloc_black)
                m->assist_debt += bytes;
            HOLD_POINTER(p);
            critical_leave(m);
            maybe_collect();
            maybe_assist(m);
            errno = saved_errno;
            return p;
        }
        critical_leave(m);
        if (!collect_after_oom(attempt))
            return NULL;
    }
}

/* Record a tiny object's extent in its block's bounds word (only this thread writes
 * it while the block is its current one; readers load it whole). */
static inline void tiny_record(atomic_word *w, size_t off, size_t n)
{
    AO_store(w, AO_load(w) | ((AO_t)1 << off) | ((AO_t)1 << (16 + off + n - 1)));
}

static void *alloc_tiny(struct mutator *m, size_t n)
{
    size_t align = (n & 7) == 0 ? 8 : (n & 3) == 0 ? 4 : (n & 1) == 0 ? 2 : 1;
    critical_enter(m);
    size_t off = (m->tiny_off + align - 1) & ~(align - 1);
    if (m->tiny && off + n <= TINY_SIZE) {
        void *p = (void *)(m->tiny + off);
        m->tiny_off = off + n;
        tiny_record(m->tiny_bounds, off, n);
        counter_add(&m->stats.tiny_allocs, 1);
        HOLD_POINTER(p);
        critical_leave(m);
        return p;
    }
    critical_leave(m);
    void *block = alloc_small_slow(m, KIND_TINY, 1);
    if (!block)
        return NULL;
    critical_enter(m);
    /* A collection may have run since the block was handed out (and reset m->tiny);
     * the block survived it, since this frame holds it. */
    struct span *s = heap_span_of((uintptr_t)block);
    m->tiny = (uintptr_t)block;
    m->tiny_off = n;
    m->tiny_bounds = &s->tiny_bounds[span_index(s, (uintptr_t)block)];
    tiny_record(m->tiny_bounds, 0, n);
    counter_add(&m->stats.tiny_allocs, 1);
    critical_leave(m);
    return block;
}

/* Zero a new small object.  Every class size is a multiple of 16 and every object
 * 16-aligned; up to 128 bytes the stores are written out, so the fast path makes no
 * call (a call would cost it the saving and restoring of registers). */
typedef uint64_t zero16 __attribute__((vector_size(16), aligned(16)));
static inline void zero_object(void *p, size_t size)
{
    zero16 *v = p, z = {0, 0};
    switch (size >> 4) {
    case 8: v[7] = z; __attribute__((fallthrough));
    case 7: v[6] = z; __attribute__((fallthrough));
    case 6: v[5] = z; __attribute__((fallthrough));
    case 5: v[4] = z; __attribute__((fallthrough));
    case 4: v[3] = z; __attribute__((fallthrough));
    case 3: v[2] = z; __attribute__((fallthrough));
    case 2: v[1] = z; __attribute__((fallthrough));
    case 1: v[0] = z; break;
    default: memset(p, 0, size);
    }
}

/* Everything but a small object from a cached bitmap word: a thread not registered
 * yet, size 0, tiny and large objects, and an empty cache slot. */
static __attribute__((noinline)) void *alloc_object_slow(size_t n, unsigned kind)
{
    struct mutator *m = self_or_register();
    if (unlikely(!m)) {
        errno = ENOMEM;
        return NULL;
    }
    if (unlikely(n == 0))
        n = 1;
    if (n > MAX_SMALL_SIZE)
        return alloc_large(m, n, kind);
    if (kind == KIND_NOSCAN && n < TINY_SIZE)
        return alloc_tiny(m, n);
    return alloc_small_slow(m, kind, sc_of(n));
}

/* The fast path: a registered thread, a small object, a free slot in the cached
 * bitmap word of its class. */
static inline void *alloc_object(size_t n, unsigned kind)
{
    struct mutator *m = alloc_self;
    if (likely(m != NULL) && likely(n - 1 < MAX_SMALL_SIZE) &&
        !(kind == KIND_NOSCAN && n < TINY_SIZE)) {
        unsigned cls = sc_of(n);
        struct cache_slot *k = &m->cache[kind][cls];
        critical_enter(m);
        uint64_t f = k->free;
        if (likely(f)) {
            unsigned i = (unsigned)__builtin_ctzll(f);
            k->free = f & (f - 1);
            void *p = (void *)(k->base + ((uintptr_t)k->word * 64 + i) * k->size);
            if (k->needzero)
                zero_object(p, k->size);
            counter_add(&m->stats.nmalloc[cls], 1);
            HOLD_POINTER(p);
            critical_leave(m);
            return p;
        }
        critical_leave(m);
    }
    return alloc_object_slow(n, kind);
}

void *gc_malloc(size_t size) { return alloc_object(size, KIND_SCAN); }
void *gc_malloc_atomic(size_t size) { return alloc_object(size, KIND_NOSCAN); }

void *gc_calloc(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return alloc_object(total, KIND_SCAN);
}

char *gc_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = alloc_object(n, KIND_NOSCAN);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* ---- looking objects up, freeing them early --------------------------------------------------- */

static void bad_pointer(const char *fn, const void *p)
{
    gc_warn_("%s: %p is not a heap object", fn, p);
}

/* The tiny object containing p, from its block's bounds word: its start, and its size
 * in *size; 0 if p is in padding or in a part of the block not handed out. */
static uintptr_t tiny_object(const struct span *s, uintptr_t block, uintptr_t p, size_t *size)
{
    uint64_t w = AO_load(&s->tiny_bounds[span_index(s, block)]);
    unsigned off = (unsigned)(p - block);
    uint64_t starts = w & 0xffff & ((2u << off) - 1);
    if (!starts)
        return 0;
    unsigned start = 63 - (unsigned)__builtin_clzll(starts);
    uint64_t ends = (w >> 16) >> start;
    if (!ends)
        return 0;
    unsigned end = start + (unsigned)__builtin_ctzll(ends) + 1;
    if (off >= end)
        return 0;
    *size = end - start;
    return block + start;
}

/* The object containing p and its size; tiny objects are told apart within their
 * block.  0 if p is not inside an allocated object. */
static uintptr_t find_object(const void *p, struct span **sp, size_t *size)
{
    struct span *s;
    uintptr_t base = heap_find_object((uintptr_t)p, &s);
    if (!base)
        return 0;
    *sp = s;
    if (s->kind == KIND_TINY)
        return tiny_object(s, base, (uintptr_t)p, size);
    *size = span_object_size(s);
    return base;
}

size_t gc_size(const void *p)
{
    struct span *s;
    size_t size;
    return p && find_object(p, &s, &size) ? size : 0;
}

void *gc_base(const void *p)
{
    struct span *s;
    size_t size;
    return p ? (void *)find_object(p, &s, &size) : NULL;
}

void gc_free(void *p)
{
    if (!p)
        return;
    struct mutator *m = self_or_register();
    if (!m)
        return;
    critical_enter(m);
    struct span *s;
    size_t size;
    uintptr_t base = find_object(p, &s, &size);
    if (base == (uintptr_t)p && s->kind == KIND_TINY) {
        critical_leave(m);   /* a tiny object cannot be freed alone: its block is collected */
        return;
    }
    if (!base || base != (uintptr_t)p) {
        critical_leave(m);
        bad_pointer("gc_free", p);
        return;
    }
    if (alloc_black && !s->noscan)
        barrier_shade_range(m, p, size);   /* freeing deletes every pointer it held */
    if (span_state(s) == SPAN_LARGE) {
        size_t bytes = span_object_size(s);
        bool defer = alloc_black ||
                     (sweep_is_active() && AO_load(&s->sweepgen) != AO_load(&sweep_gen));
        if (defer) {
            /* A marker may be scanning it, or the sweeper sweeping it: the span stays
             * until a sweep frees it. */
            if (!(AO_load(&s->alloc_bits[0]) & 1) ||
                !AO_compare_and_swap_full(&s->alloc_bits[0], 1, 0)) {
                critical_leave(m);
                bad_pointer("gc_free", p);
                return;
            }
        }
        counter_add(&m->stats.nfree[0], 1);
        counter_add(&m->stats.large_free_bytes, bytes);
        atomic_add(&alloc_heap_live, -(AO_t)bytes);
        if (!defer)
            heap_free_span(s);
        critical_leave(m);
        return;
    }
    uint32_t i = span_index(s, base);
    AO_t bit = (AO_t)1 << (i & 63);
    memset(p, 0, s->size);   /* free slots are kept zeroed: see needzero */
    for (;;) {
        AO_t old = AO_load(&s->alloc_bits[i >> 6]);
        if (!(old & bit)) {
            /* Lost a race with another gc_free of the same object. */
            critical_leave(m);
            bad_pointer("gc_free", p);
            return;
        }
        if (AO_compare_and_swap_full(&s->alloc_bits[i >> 6], old, old & ~bit))
            break;
    }
    counter_add(&m->stats.nfree[s->cls], 1);
    atomic_add(&alloc_heap_live, -(AO_t)s->size);
    alloc_release_span(s);
    critical_leave(m);
}

void *gc_realloc(void *p, size_t size)
{
    if (!p)
        return gc_malloc(size);
    struct span *s;
    size_t have;
    uintptr_t base = find_object(p, &s, &have);
    if (base != (uintptr_t)p) {
        bad_pointer("gc_realloc", p);
        errno = EINVAL;
        return NULL;
    }
    if (size <= have && size >= have / 2 && size > 0)
        return p;
    void *q = alloc_object(size, s->kind == KIND_SCAN ? KIND_SCAN : KIND_NOSCAN);
    if (!q)
        return NULL;
    memcpy(q, p, size < have ? size : have);
    gc_free(p);   /* a tiny object's block is left to the collector */
    return q;
}
