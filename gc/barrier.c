/* barrier.c - the write barrier's slow path and the barriered bulk copies.
 *
 * GC_WRITE tests gc_barrier_active_ inline; only while a cycle marks concurrently is
 * it set, and then the slot's old value and the new value are shaded.  This build
 * marks with the world stopped, so the flag stays clear: the barrier costs one
 * predictable branch, and the bulk calls below are plain copies.  The entry points
 * and their contract are already the final ones, so host code written against them
 * needs no change when marking becomes concurrent.
 */
#include "internal.h"

#include <string.h>

volatile int gc_barrier_active_;

/* Shade an old or new pointer value during concurrent mark (nothing to do while
 * marking only happens with the world stopped). */
static inline void shade_value(void *v)
{
    (void)v;
}

void gc_write_barrier_slow_(void *slot, void *value)
{
    shade_value(*(void *volatile *)slot);
    shade_value(value);
}

void gc_write_range(void *dst, size_t len)
{
    if (!gc_barrier_active_)
        return;
    uintptr_t p = ((uintptr_t)dst + sizeof(void *) - 1) & ~(uintptr_t)(sizeof(void *) - 1);
    for (; p + sizeof(void *) <= (uintptr_t)dst + len; p += sizeof(void *))
        shade_value(*(void *volatile *)p);
}

void *gc_memcpy(void *dst, const void *src, size_t n)
{
    gc_write_range(dst, n);
    return memcpy(dst, src, n);
}

void *gc_memmove(void *dst, const void *src, size_t n)
{
    gc_write_range(dst, n);
    return memmove(dst, src, n);
}

void *gc_memset(void *dst, int c, size_t n)
{
    gc_write_range(dst, n);
    return memset(dst, c, n);
}
