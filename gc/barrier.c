/* barrier.c - the write barrier's slow path and the barriered bulk copies.
 *
 * GC_WRITE tests gc_barrier_active_ inline; it is set only while a concurrent mark
 * runs (GCDEBUG=gcconcurrent=1), between the two pauses.  Then the slot's old value
 * (the deletion, or Yuasa, barrier that keeps the snapshot invariant of mark.c) and
 * the new value (as Go's hybrid barrier does) go into the thread's buffer; a full
 * buffer is shaded into the shared grey list, and mark termination shades what is
 * left in every buffer.  The bulk calls shade the old contents of the destination
 * first.  An initializing store into a field that still holds the zero gc_malloc gave
 * needs no barrier: there is no old pointer to lose, and the new value is either a
 * root-reachable object (scanned in the first pause or shaded when it was unlinked)
 * or an object allocated black.
 */
#include "internal.h"

#include <string.h>

volatile int gc_barrier_active_;

/* Inside a critical section: the buffer is never seen half-written by a stop. */
static inline void buffer_value(struct mutator *m, uintptr_t v)
{
    if (v - AO_load(&heap.lo) >= AO_load(&heap.hi) - AO_load(&heap.lo))
        return;   /* not a heap address */
    m->wbuf[m->wbuf_n++] = v;
    if (m->wbuf_n == sizeof m->wbuf / sizeof m->wbuf[0])
        barrier_flush(m);
}

void barrier_flush(struct mutator *m)
{
    if (m->wbuf_n) {
        mark_shade_shared(m->wbuf, m->wbuf_n);
        m->wbuf_n = 0;
    }
}

NO_SANITIZE void gc_write_barrier_slow_(void *slot, void *value)
{
    struct mutator *m = self_or_register();
    if (!m)
        return;
    critical_enter(m);
    if (gc_barrier_active_) {   /* re-read: marking may have ended since the inline test */
        buffer_value(m, *(volatile uintptr_t *)slot);
        buffer_value(m, (uintptr_t)value);
    }
    critical_leave(m);
}

NO_SANITIZE void barrier_shade_range(struct mutator *m, const void *dst, size_t len)
{
    uintptr_t p = ((uintptr_t)dst + sizeof(void *) - 1) & ~(uintptr_t)(sizeof(void *) - 1);
    for (; p + sizeof(void *) <= (uintptr_t)dst + len; p += sizeof(void *))
        buffer_value(m, *(volatile uintptr_t *)p);
}

/* Shades the old contents of [dst, dst+len) if a mark is running.  The caller's own
 * copy that follows is not covered if a collection starts in between: use gc_memcpy,
 * gc_memmove or gc_memset, which test and copy together, where that matters. */
void gc_write_range(void *dst, size_t len)
{
    if (!gc_barrier_active_)
        return;
    struct mutator *m = self_or_register();
    if (!m)
        return;
    critical_enter(m);
    if (gc_barrier_active_)
        barrier_shade_range(m, dst, len);
    critical_leave(m);
}

/* The bulk copies test the flag and copy inside one critical section, a chunk at a
 * time: a collection cannot start between the test and the copy (which would let the
 * copy overwrite pointers unshaded), and a large copy does not hold up a pause. */
enum { CHUNK = 4096 };
enum bulk_op { OP_COPY, OP_MOVE, OP_SET };

static void bulk_chunk(struct mutator *m, enum bulk_op op, char *dst, const char *src, int c,
                       size_t len)
{
    critical_enter(m);
    if (gc_barrier_active_)
        barrier_shade_range(m, dst, len);
    if (op == OP_COPY)
        memcpy(dst, src, len);
    else if (op == OP_MOVE)
        memmove(dst, src, len);
    else
        memset(dst, c, len);
    critical_leave(m);
}

/* Chunks front to back, or back to front when a move's destination lies above its
 * source (so an overlapping move reads each byte before overwriting it). */
static void *bulk(enum bulk_op op, void *dst, const void *src, int c, size_t n)
{
    struct mutator *m = self_or_register();
    char *d = dst;
    const char *s = src;
    if (op == OP_MOVE && (uintptr_t)dst > (uintptr_t)src) {
        for (size_t end = n; end > 0;) {
            size_t len = end < CHUNK ? end : CHUNK;
            end -= len;
            bulk_chunk(m, op, d + end, s + end, c, len);
        }
        return dst;
    }
    for (size_t off = 0; off < n; off += CHUNK)
        bulk_chunk(m, op, d + off, op == OP_SET ? NULL : s + off, c,
                   n - off < CHUNK ? n - off : CHUNK);
    return dst;
}

void *gc_memcpy(void *dst, const void *src, size_t n)
{
    if (!self_or_register())
        return memcpy(dst, src, n);
    return bulk(OP_COPY, dst, src, 0, n);
}

void *gc_memmove(void *dst, const void *src, size_t n)
{
    if (!self_or_register())
        return memmove(dst, src, n);
    return bulk(OP_MOVE, dst, src, 0, n);
}

void *gc_memset(void *dst, int c, size_t n)
{
    if (!self_or_register())
        return memset(dst, c, n);
    return bulk(OP_SET, dst, NULL, c, n);
}
