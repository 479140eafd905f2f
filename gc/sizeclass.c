/* sizeclass.c - the size-class table.
 *
 * Small requests (up to 32 KiB) are rounded up to one of 72 classes: multiples of 16
 * up to 128 B, then eight classes per power of two, so rounding never wastes more than
 * one ninth of an object.  Each class gets the fewest pages (one to a few) whose tail,
 * after the last whole object, wastes at most an eighth of the span.  The table is
 * computed once by sc_init from these two rules; tests/test_sizeclass.c checks them.
 */
#include "internal.h"

struct size_class sc_table[NUM_CLASSES + 1];
uint8_t sc_index_small[1024 / 8 + 1];
uint8_t sc_index_large[(MAX_SMALL_SIZE - 1024) / 128 + 1];

static uint32_t pages_for(uint32_t size)
{
    for (uint32_t np = 1;; np++) {
        uint32_t bytes = np * (uint32_t)PAGE_SIZE;
        uint32_t n = bytes / size;
        if (n == 0 || n > MAX_SPAN_OBJECTS)
            continue;
        if ((bytes - n * size) * 8 <= bytes)
            return np;
    }
}

void sc_init(void)
{
    unsigned c = 1;
    for (uint32_t size = 16; size <= 128; size += 16)
        sc_table[c++].size = size;
    for (uint32_t base = 128; base < MAX_SMALL_SIZE; base *= 2)
        for (uint32_t size = base + base / 8; size <= base * 2; size += base / 8)
            sc_table[c++].size = size;
    GC_ASSERT(c == NUM_CLASSES + 1);

    for (c = 1; c <= NUM_CLASSES; c++) {
        struct size_class *k = &sc_table[c];
        k->npages = pages_for(k->size);
        k->nelems = k->npages * (uint32_t)PAGE_SIZE / k->size;
        /* ceil(2^32 / size): exact for every offset inside a span (checked by test). */
        k->div_mul = (uint32_t)(UINT32_MAX / k->size + 1);
    }

    c = 1;
    for (unsigned i = 0; i < sizeof sc_index_small; i++) {
        while (sc_table[c].size < i * 8)
            c++;
        sc_index_small[i] = (uint8_t)c;
    }
    for (unsigned i = 0; i < sizeof sc_index_large; i++) {
        while (sc_table[c].size < 1024 + i * 128)
            c++;
        sc_index_large[i] = (uint8_t)c;
    }
}
