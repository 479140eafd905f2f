/* heap.c - arenas, the page heap and the address -> span map.
 *
 * Heap memory comes from the OS in 64 MiB arenas, 64 MiB aligned, cut into 8 KiB
 * pages.  A span is a run of pages: in use (a span of small objects of one class, or
 * one large object) or free.  Free runs sit in bins by length (exact for 1..127 pages,
 * one best-fit list beyond), resident ones before those given back to the OS, and
 * coalesce with free neighbours when freed.  A two-level
 * map (address >> 26 -> arena, then page -> span) answers "which span holds this
 * address?" in O(1) without a lock, which is what conservative scanning needs.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

struct heap heap;

void heap_lock(void) { pthread_mutex_lock(&heap.lock); }
void heap_unlock(void) { pthread_mutex_unlock(&heap.lock); }

void heap_init(void)
{
    pthread_mutex_init(&heap.lock, NULL);
    heap.arenas = os_reserve(ARENA_L1_ENTRIES * sizeof(struct arena *));
    if (!heap.arenas)
        gc_fatal_("cannot reserve %zu MiB of address space for the arena map",
                  ARENA_L1_ENTRIES * sizeof(struct arena *) >> 20);
    AO_store(&heap.lo, UINTPTR_MAX);
    AO_store(&heap.hi, 0);
}

/* ---- span descriptors: from 64 KiB slabs, recycled, never unmapped ---------------- */

static struct span *desc_alloc(void)
{
    if (!heap.free_descs) {
        size_t slab = 64 << 10;
        struct span *s = os_map(slab, SYS_MSPAN);
        if (!s)
            return NULL;
        for (size_t i = 0; i < slab / sizeof *s; i++) {
            s[i].next = heap.free_descs;
            heap.free_descs = &s[i];
        }
    }
    struct span *s = heap.free_descs;
    heap.free_descs = s->next;
    /* Zeroed around its state byte, which a walker of the page map may be reading
     * through a stale entry (it stays SPAN_DEAD: see desc_free). */
    size_t st = offsetof(struct span, state);
    memset(s, 0, st);
    memset((char *)s + st + 1, 0, sizeof *s - st - 1);
    return s;
}

static void desc_free(struct span *s)
{
    span_publish(s, SPAN_DEAD);
    s->next = heap.free_descs;
    heap.free_descs = s;
}

/* ---- tiny-object bounds: one word per block of a tiny span, 4 KiB chunks ---------- */

struct bounds_chunk {
    struct bounds_chunk *next;
};
static struct bounds_chunk *free_bounds;   /* heap.lock */
#define BOUNDS_BYTES (MAX_SPAN_OBJECTS * sizeof(atomic_word))

atomic_word *heap_tiny_bounds_alloc(void)
{
    heap_lock();
    if (!free_bounds) {
        size_t slab = 64 << 10;
        char *m = os_map(slab, SYS_GC);
        if (!m) {
            heap_unlock();
            return NULL;
        }
        for (size_t off = 0; off < slab; off += BOUNDS_BYTES) {
            struct bounds_chunk *c = (struct bounds_chunk *)(m + off);
            c->next = free_bounds;
            free_bounds = c;
        }
    }
    struct bounds_chunk *c = free_bounds;
    free_bounds = c->next;
    heap_unlock();
    memset(c, 0, BOUNDS_BYTES);
    return (atomic_word *)c;
}

static void bounds_free(atomic_word *b)
{
    struct bounds_chunk *c = (struct bounds_chunk *)b;
    c->next = free_bounds;
    free_bounds = c;
}

/* ---- the page map ---------------------------------------------------------------- */

static inline struct span **map_slot(uintptr_t p)
{
    struct arena *a = MAP_LOAD(&heap.arenas[p >> ARENA_SHIFT]);
    return &a->spans[(p >> PAGE_SHIFT) & (ARENA_PAGES - 1)];
}

/* Point every page of s at s (in-use spans: interior pointers must find it). */
static void map_all(struct span *s)
{
    for (uint32_t i = 0; i < s->npages; i++)
        MAP_STORE(map_slot(s->base + i * PAGE_SIZE), s);
}

/* A free run is found from its neighbours by its first and last page only. */
static void map_ends(struct span *s, struct span *v)
{
    MAP_STORE(map_slot(s->base), v);
    MAP_STORE(map_slot(s->base + (s->npages - 1) * PAGE_SIZE), v);
}

static void map_clear(struct span *s)
{
    for (uint32_t i = 0; i < s->npages; i++)
        MAP_STORE(map_slot(s->base + i * PAGE_SIZE), (struct span *)NULL);
}

/* ---- free-run bins ------------------------------------------------------------------ */

static unsigned bin_of(uint32_t npages) { return npages < 128 ? npages : 0; }

/* ---- pages returned to the OS ----------------------------------------------------
 * Each page of a free run has a bit in its arena saying whether its memory went back
 * to the OS (MADV_DONTNEED), and each free run counts its own (nreleased), so that a
 * run merged from a released neighbour and a resident one, or split again, keeps the
 * exact count: heap.pages_released is what the process really gave back, and the
 * scavenger never chases pages it has returned already.  A run is allocated with its
 * bits cleared. */

enum { RELEASED_COUNT, RELEASED_SET, RELEASED_CLEAR };

/* Count the released pages of [base, base + npages pages), then set or clear their
 * bits (heap lock held).  A word of bits never straddles two arenas. */
static uint32_t released_bits(uintptr_t base, uint32_t npages, int op)
{
    uint32_t n = 0;
    while (npages) {
        struct arena *a = MAP_LOAD(&heap.arenas[base >> ARENA_SHIFT]);
        size_t pg = (base >> PAGE_SHIFT) & (ARENA_PAGES - 1);
        unsigned bit = (unsigned)(pg & 63), k = 64 - bit < npages ? 64 - bit : npages;
        uint64_t m = (k == 64 ? ~(uint64_t)0 : ((uint64_t)1 << k) - 1) << bit;
        uint64_t *w = &a->released[pg >> 6];
        n += (uint32_t)__builtin_popcountll(*w & m);
        if (op == RELEASED_SET)
            *w |= m;
        else if (op == RELEASED_CLEAR)
            *w &= ~m;
        base += (uintptr_t)k * PAGE_SIZE;
        npages -= k;
    }
    return n;
}

/* Split free run s at npages: the tail t takes its share of the released count. */
static void released_split(struct span *s, struct span *t)
{
    t->nreleased = s->nreleased ? released_bits(t->base, t->npages, RELEASED_COUNT) : 0;
    s->nreleased -= t->nreleased;
    /* Pages given back read as zero: a run that is all such needs no zeroing. */
    if (t->nreleased == t->npages)
        t->needzero = 0;
}

/* Each bin lists its resident runs first and its released ones after them, so the
 * head of a bin is resident if any of its runs is (bin_find prefers those: reusing
 * released pages costs a page fault each). */
static struct span *bin_tail[128];

static void bin_insert(struct span *s)
{
    unsigned b = bin_of(s->npages);
    struct span *h = heap.bins[b];
    if (s->nreleased && h) {   /* after the last run */
        struct span *t = bin_tail[b];
        s->prev = t;
        s->next = NULL;
        t->next = s;
        bin_tail[b] = s;
    } else {
        s->prev = NULL;
        s->next = h;
        if (h)
            h->prev = s;
        else
            bin_tail[b] = s;
        heap.bins[b] = s;
    }
    heap.bin_mask[b >> 6] |= (uint64_t)1 << (b & 63);
}

static void bin_remove(struct span *s)
{
    unsigned b = bin_of(s->npages);
    if (s->prev)
        s->prev->next = s->next;
    else
        heap.bins[b] = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        bin_tail[b] = s->prev;
    if (!heap.bins[b])
        heap.bin_mask[b >> 6] &= ~((uint64_t)1 << (b & 63));
}

/* Is run a better fit for n pages than best?  Resident before released, then smaller,
 * then lower. */
static bool better_fit(const struct span *run, const struct span *best)
{
    if (!best)
        return true;
    if ((run->nreleased != 0) != (best->nreleased != 0))
        return !run->nreleased;
    if (run->npages != best->npages)
        return run->npages < best->npages;
    return run->base < best->base;
}

/* Offset in pages of the first n pages in a row of free run s that are resident, or
 * UINT32_MAX when it has none such. */
static uint32_t resident_window(const struct span *s, uint32_t n)
{
    if (!s->nreleased)
        return 0;
    if (s->npages - s->nreleased < n)
        return UINT32_MAX;
    /* A word of bits at a time: all released and all resident words are taken whole. */
    uint32_t row = 0;
    for (uint32_t i = 0; i < s->npages;) {
        uintptr_t p = s->base + (uintptr_t)i * PAGE_SIZE;
        struct arena *a = MAP_LOAD(&heap.arenas[p >> ARENA_SHIFT]);
        size_t pg = (p >> PAGE_SHIFT) & (ARENA_PAGES - 1);
        unsigned bit = (unsigned)(pg & 63);
        uint32_t k = 64 - bit < s->npages - i ? 64 - bit : s->npages - i;
        uint64_t m = (k == 64 ? ~(uint64_t)0 : ((uint64_t)1 << k) - 1) << bit;
        uint64_t w = a->released[pg >> 6] & m;
        if (w == 0) {   /* k resident pages */
            if (row + k >= n)
                return i - row;   /* the row began row pages before i */
            row += k;
        } else if (w == m) {   /* k released pages */
            row = 0;
        } else {
            for (uint32_t b = 0; b < k; b++) {
                if ((w >> (bit + b)) & 1)
                    row = 0;
                else if (++row == n)
                    return i + b + 1 - n;
            }
        }
        i += k;
    }
    return UINT32_MAX;
}

/* Free runs with some pages released looked at for resident ones, at most, per search. */
#define MIXED_LOOK 32

/* Of the first MIXED_LOOK partly released runs looked at, remember in *mixed and *off
 * the first with n resident pages in a row, and where they start. */
static void try_mixed(struct span *r, size_t n, struct span **mixed, uint32_t *off,
                      unsigned *looked)
{
    if (*mixed || *looked >= MIXED_LOOK)
        return;
    ++*looked;
    uint32_t o = resident_window(r, (uint32_t)n);
    if (o != UINT32_MAX) {
        *mixed = r;
        *off = o;
    }
}

/* A free run for n pages and the offset (*off) to take them at: the smallest resident
 * run; else, of the runs with some pages released (a run freed next to a released one
 * merges with it), the first of MIXED_LOOK with n resident pages in a row, taken there;
 * else the smallest released one, at its start (each of its released pages will cost
 * a fault); or NULL. */
static struct span *bin_find(size_t n, uint32_t *off)
{
    struct span *best = NULL, *big = NULL, *mixed = NULL;
    unsigned looked = 0;
    *off = 0;
    if (n < 128) {
        for (unsigned w = (unsigned)n >> 6; w < 2; w++) {
            uint64_t m = heap.bin_mask[w];
            if (w == n >> 6)
                m &= ~(uint64_t)0 << (n & 63);
            if (w == 0)
                m &= ~(uint64_t)1;     /* bin 0 holds the big runs: searched below */
            for (; m; m &= m - 1) {
                struct span *h = heap.bins[w * 64 + (unsigned)__builtin_ctzll(m)];
                if (!h->nreleased) {
                    *off = 0;
                    return h;          /* resident, and the smallest such */
                }
                if (!best)
                    best = h;          /* the smallest released: if nothing resident */
                for (struct span *r = h; r && !mixed && looked < MIXED_LOOK; r = r->next)
                    try_mixed(r, n, &mixed, off, &looked);
            }
        }
    }
    for (struct span *s = heap.bins[0]; s; s = s->next) {
        if (s->npages < n)
            continue;
        if (!s->nreleased && better_fit(s, big))
            big = s;
        else if (s->nreleased)
            try_mixed(s, n, &mixed, off, &looked);
        if (better_fit(s, best))
            best = s;
    }
    if (big) {
        *off = 0;
        return big;
    }
    if (mixed)
        return mixed;
    *off = 0;
    return best;
}

/* Merge s with a free neighbour n (n already out of its bin). */
static void absorb(struct span *s, struct span *n)
{
    s->nreleased += n->nreleased;   /* the pages keep their bits */
    s->needzero |= n->needzero;
    if (n->base < s->base)
        s->base = n->base;
    s->npages += n->npages;
    map_ends(n, NULL);   /* a free run's interior pages are already unmapped */
    desc_free(n);
}

/* Merge s (out of any bin) with the free runs on either side.  Two on one side at
 * most: a resident run and the released tail the scavenger split from it. */
static void coalesce(struct span *s)
{
    for (;;) {
        struct span *left = s->base > AO_load(&heap.lo) ? heap_span_of(s->base - 1) : NULL;
        if (!left || span_state(left) != SPAN_FREE)
            break;
        bin_remove(left);
        absorb(s, left);
    }
    for (;;) {
        struct span *right = heap_span_of(s->base + s->npages * PAGE_SIZE);
        if (!right || span_state(right) != SPAN_FREE)
            break;
        bin_remove(right);
        absorb(s, right);
    }
}

/* ---- growing: commit the next piece of reserved space --------------------------------- */

/* Reserve fresh arenas (one, or several for a huge object) and register their maps. */
static bool reserve(size_t bytes)
{
    size_t size = (bytes + ARENA_SIZE - 1) & ~(ARENA_SIZE - 1);
    char *mem = os_reserve_aligned(size, ARENA_SIZE);
    if (!mem)
        return false;
    for (size_t i = 0; i < size / ARENA_SIZE; i++) {
        uintptr_t a = (uintptr_t)mem + i * ARENA_SIZE;
        struct arena *ar = os_map(sizeof(struct arena), SYS_GC);
        if (!ar)
            return false;   /* the arenas registered so far stay, unused */
        MAP_STORE(&heap.arenas[a >> ARENA_SHIFT], ar);
        heap.arenas_mapped++;
    }
    /* Publish the bounds before any object in them can be handed out. */
    if ((uintptr_t)mem < AO_load(&heap.lo))
        AO_store_release(&heap.lo, (uintptr_t)mem);
    if ((uintptr_t)mem + size > AO_load(&heap.hi))
        AO_store_release(&heap.hi, (uintptr_t)mem + size);
    /* What is left of the previous reservation is abandoned: address space only. */
    heap.grow_next = (uintptr_t)mem;
    heap.grow_end = (uintptr_t)mem + size;
    return true;
}

/* A new free run of at least npages, committed from the reserved space and merged
 * with a free run just before it.  Not in a bin yet. */
static struct span *grow(size_t npages)
{
    size_t bytes = (npages * PAGE_SIZE + GROW_CHUNK - 1) & ~(GROW_CHUNK - 1);
    if (heap.grow_fail_for_test) {
        errno = ENOMEM;
        return NULL;
    }
    if (heap.grow_end - heap.grow_next < bytes && !reserve(bytes))
        return NULL;
    struct span *s = desc_alloc();
    if (!s || os_commit((void *)heap.grow_next, bytes, SYS_HEAP) != 0) {
        if (s)
            desc_free(s);
        errno = ENOMEM;
        return NULL;
    }
    s->base = heap.grow_next;
    s->npages = (uint32_t)(bytes / PAGE_SIZE);
    span_publish(s, SPAN_FREE);
    heap.grow_next += bytes;
    HEAP_COUNT(pages_mapped, s->npages);
    coalesce(s);
    return s;
}

/* ---- allocate and free runs ----------------------------------------------------------- */

struct span *heap_alloc_span(size_t npages)
{
    if (npages == 0 || npages > (SIZE_MAX >> PAGE_SHIFT) / 2 || npages >= UINT32_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    heap_lock();
    uint32_t off;
    struct span *s = bin_find(npages, &off);
    if (s) {
        bin_remove(s);
        struct span *h = off ? desc_alloc() : NULL;
        if (h) {
            /* Resident pages inside a partly released run: the head before them stays
             * free, a run of its own. */
            h->base = s->base;
            h->npages = off;
            h->needzero = s->needzero;
            s->base += (uintptr_t)off * PAGE_SIZE;
            s->npages -= off;
            released_split(s, h);
            span_publish(h, SPAN_FREE);
            map_ends(h, h);
            bin_insert(h);
        }
    } else {
        s = grow(npages);
        if (!s) {
            heap_unlock();
            errno = ENOMEM;
            return NULL;
        }
    }
    if (s->npages > npages) {
        /* Split: the tail stays free. */
        struct span *t = desc_alloc();
        if (!t) {
            bin_insert(s);
            map_ends(s, s);
            heap_unlock();
            errno = ENOMEM;
            return NULL;
        }
        t->base = s->base + npages * PAGE_SIZE;
        t->npages = s->npages - (uint32_t)npages;
        span_publish(t, SPAN_FREE);
        t->needzero = s->needzero;
        s->npages = (uint32_t)npages;
        released_split(s, t);
        map_ends(t, t);
        bin_insert(t);
    }
    if (s->nreleased) {
        HEAP_COUNT(pages_released, -(AO_t)s->nreleased);
        if (s->nreleased == s->npages)
            s->needzero = 0;  /* pages given back with MADV_DONTNEED read as zero */
        released_bits(s->base, s->npages, RELEASED_CLEAR);
        s->nreleased = 0;
    }
    span_publish(s, SPAN_INIT);   /* the caller fills it in and publishes it */
    AO_store(&s->sweepgen, AO_load(&sweep_gen));   /* born swept */
    s->next = s->prev = NULL;
    HEAP_COUNT(pages_inuse, s->npages);
    HEAP_COUNT(spans_inuse, 1);
    map_all(s);
    heap_unlock();
    return s;
}

static void free_locked(struct span *s)
{
    GC_ASSERT(span_state(s) >= SPAN_INIT);
    HEAP_COUNT(pages_inuse, -(AO_t)s->npages);
    HEAP_COUNT(spans_inuse, -(AO_t)1);
    map_clear(s);
    if (s->tiny_bounds) {
        bounds_free(s->tiny_bounds);
        s->tiny_bounds = NULL;
    }
    span_publish(s, SPAN_FREE);
    s->needzero = 1;
    s->nreleased = 0;   /* its bits were cleared when it was allocated */
    s->cls = 0;
    coalesce(s);
    map_ends(s, s);
    bin_insert(s);
}

void heap_free_span(struct span *s)
{
    heap_lock();
    free_locked(s);
    heap_unlock();
}

/* Pages returned at a time when only part of a run is wanted (64 KiB). */
#define RELEASE_GRAIN_PAGES 8

/* Give back the last npages of free run s (heap lock held): the head stays free and
 * resident in its bin, the tail becomes a run of its own.  Returns the tail, or s
 * whole when it is not worth splitting or no descriptor is to be had. */
static struct span *split_tail(struct span *s, uint32_t npages)
{
    if (npages + RELEASE_GRAIN_PAGES > s->npages)
        return s;
    struct span *t = desc_alloc();
    if (!t)
        return s;
    bin_remove(s);
    s->npages -= npages;
    t->base = s->base + (uintptr_t)s->npages * PAGE_SIZE;
    t->npages = npages;
    t->needzero = s->needzero;
    released_split(s, t);
    span_publish(t, SPAN_FREE);
    map_ends(s, s);
    map_ends(t, t);
    bin_insert(s);
    bin_insert(t);
    return t;
}

/* Return free memory to the OS, the biggest bins first (bin 0 holds the runs of 128
 * pages and more), until at least max_bytes went back: whole runs, and of the run that
 * would overshoot only its tail, what is still wanted rounded up to 64 KiB.  One run
 * per hold of the heap lock, so allocation is never held up for more than one madvise. */
uint64_t heap_release_some(uint64_t max_bytes)
{
    uint64_t bytes = 0;
    for (unsigned i = 0; i < 128 && bytes < max_bytes; i++) {
        unsigned b = i == 0 ? 0 : 128 - i;
        for (;;) {
            struct mutator *self = critical_enter_self();   /* see internal.h */
            heap_lock();
            struct span *s = heap.bins[b];
            while (s && s->nreleased == s->npages)
                s = s->next;
            if (s) {
                uint64_t left = max_bytes - bytes;
                uint64_t want = left / PAGE_SIZE + (left % PAGE_SIZE != 0);
                if (want < s->npages) {
                    want = (want + RELEASE_GRAIN_PAGES - 1) / RELEASE_GRAIN_PAGES *
                           RELEASE_GRAIN_PAGES;
                    s = split_tail(s, (uint32_t)want);
                }
                os_release((void *)s->base, s->npages * PAGE_SIZE);
                bin_remove(s);
                uint32_t fresh = s->npages - s->nreleased;
                released_bits(s->base, s->npages, RELEASED_SET);
                s->nreleased = s->npages;
                s->needzero = 0;
                bin_insert(s);   /* behind the resident runs */
                HEAP_COUNT(pages_released, fresh);
                bytes += (uint64_t)fresh * PAGE_SIZE;
            }
            heap_unlock();
            critical_leave_self(self);
            if (!s || bytes >= max_bytes)
                break;
        }
    }
    return bytes;
}

uint64_t heap_release_free(void)
{
    return heap_release_some(UINT64_MAX);
}

/* ---- lookups ---------------------------------------------------------------------------- */

uintptr_t heap_find_object(uintptr_t p, struct span **out)
{
    struct span *s = heap_span_of(p);
    if (!s || span_state(s) < SPAN_SMALL || p < s->base ||
        p >= s->base + s->npages * PAGE_SIZE)
        return 0;
    uint32_t i = span_index(s, p);
    if (i >= s->nelems)
        return 0;
    if (!(AO_load(&s->alloc_bits[i >> 6]) & ((AO_t)1 << (i & 63))))
        return 0;
    if (out)
        *out = s;
    return s->base + (uintptr_t)i * s->size;
}

/* Without heap.lock: the sweeper walks while threads allocate and free spans.  A span
 * in use keeps its base and length; the ones read from a descriptor that is being
 * freed or reused at that moment are checked again by fn under its own claim (the
 * sweep generation), so this walk's few racy reads are deliberate. */
NO_SANITIZE void heap_for_each_span(void (*fn)(struct span *s, void *arg), void *arg)
{
    uintptr_t lo = AO_load(&heap.lo), hi = AO_load(&heap.hi);
    for (uintptr_t a = lo; a < hi; a += ARENA_SIZE) {
        struct arena *ar = MAP_LOAD(&heap.arenas[a >> ARENA_SHIFT]);
        if (!ar)
            continue;
        for (size_t i = 0; i < ARENA_PAGES;) {
            struct span *s = MAP_LOAD(&ar->spans[i]);
            uintptr_t page = a + i * PAGE_SIZE;
            unsigned st = s ? span_state(s) : SPAN_DEAD;
            if ((st == SPAN_SMALL || st == SPAN_LARGE) && s->base == page) {
                /* fn may free s: read its length first. */
                size_t np = s->npages;
                fn(s, arg);
                i += np;
                continue;
            }
            i++;
        }
    }
}
