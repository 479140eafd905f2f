/* test_sizeclass.c - unit tests for gc/sizeclass.c: the shape of the 72-class table,
 * the two rules it is built from (rounding waste per object, tail waste per span), the
 * lookup tables behind sc_of for every request size, and the reciprocal multiplier
 * span_index uses instead of a division, for every byte offset of every class's span.
 * Nothing here touches the heap: sc_init is pure arithmetic.
 */
#include "internal.h"

#include <check.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void setup(void)
{
    sc_init();
}

/* ---- the table's shape ------------------------------------------------------------ */

START_TEST(test_bounds_and_count)
{
    ck_assert_uint_eq(sc_table[1].size, 16);
    ck_assert_uint_eq(sc_table[NUM_CLASSES].size, MAX_SMALL_SIZE);
    ck_assert_uint_eq(NUM_CLASSES, 72);
    /* Class 0 means "large" and is never filled in. */
    ck_assert_uint_eq(sc_table[0].size, 0);
    ck_assert_uint_eq(sc_table[0].npages, 0);
}
END_TEST

START_TEST(test_strictly_increasing_multiples_of_16)
{
    for (unsigned c = 1; c <= NUM_CLASSES; c++) {
        uint32_t size = sc_table[c].size;
        ck_assert_msg(size % 16 == 0, "class %u: size %u is not a multiple of 16", c, size);
        if (c > 1)
            ck_assert_msg(size > sc_table[c - 1].size, "class %u: size %u not above class %u's %u",
                          c, size, c - 1, sc_table[c - 1].size);
    }
}
END_TEST

/* The documented layout: multiples of 16 up to 128, then eight classes per doubling. */
START_TEST(test_layout)
{
    unsigned c = 1;
    for (uint32_t size = 16; size <= 128; size += 16, c++)
        ck_assert_uint_eq(sc_table[c].size, size);
    for (uint32_t base = 128; base < MAX_SMALL_SIZE; base *= 2)
        for (unsigned k = 1; k <= 8; k++, c++)
            ck_assert_msg(sc_table[c].size == base + k * (base / 8),
                          "class %u: size %u, expected %u", c, sc_table[c].size,
                          base + k * (base / 8));
    ck_assert_uint_eq(c, NUM_CLASSES + 1);
}
END_TEST

/* ---- rounding waste: what a request loses to its class -------------------------------- */

/* The worst request of a class is one byte above the previous class.  Above 128 B the
 * waste is a fraction of the object (under 12.5%, in fact at most 1/9); the classes up
 * to 128 B are 16 apart because every object is 16-aligned, so there the bound is the
 * alignment itself (at most 15 bytes), not a fraction: a 17-byte request in the 32-byte
 * class wastes 15/32 by necessity. */
START_TEST(test_rounding_waste)
{
    for (unsigned c = 1; c <= NUM_CLASSES; c++) {
        uint32_t size = sc_table[c].size, prev = c > 1 ? sc_table[c - 1].size : 0;
        uint32_t waste = size - prev - 1;   /* request prev+1 rounded up to size */
        if (size <= 128) {
            ck_assert_msg(waste <= 15, "class %u (%u B): worst waste %u B", c, size, waste);
        } else {
            ck_assert_msg((uint64_t)waste * 8 < size,
                          "class %u (%u B): worst rounding waste %u B is >= 12.5%%", c, size,
                          waste);
            ck_assert_msg((uint64_t)waste * 9 <= size,
                          "class %u (%u B): worst rounding waste %u B is above 1/9", c, size,
                          waste);
        }
    }
}
END_TEST

/* ---- spans: pages, objects, tail waste ------------------------------------------------------ */

START_TEST(test_span_shape)
{
    for (unsigned c = 1; c <= NUM_CLASSES; c++) {
        const struct size_class *k = &sc_table[c];
        uint64_t bytes = (uint64_t)k->npages * PAGE_SIZE;
        ck_assert_msg(k->npages >= 1, "class %u: no pages", c);
        ck_assert_msg(k->nelems >= 1, "class %u: no objects", c);
        ck_assert_msg(k->nelems <= MAX_SPAN_OBJECTS, "class %u: %u objects > %d", c, k->nelems,
                      MAX_SPAN_OBJECTS);
        /* nelems is every whole object that fits: no room for one more. */
        ck_assert_msg(k->nelems == bytes / k->size, "class %u: nelems %u, %u pages of %u B", c,
                      k->nelems, k->npages, k->size);
        uint64_t tail = bytes - (uint64_t)k->nelems * k->size;
        ck_assert_msg(tail * 8 <= bytes, "class %u (%u B, %u pages): tail waste %" PRIu64
                      " B is above 12.5%%", c, k->size, k->npages, tail);
    }
}
END_TEST

/* "The fewest pages whose tail wastes at most an eighth": no shorter span would do. */
START_TEST(test_span_pages_minimal)
{
    for (unsigned c = 1; c <= NUM_CLASSES; c++) {
        const struct size_class *k = &sc_table[c];
        for (uint32_t np = 1; np < k->npages; np++) {
            uint64_t bytes = (uint64_t)np * PAGE_SIZE, n = bytes / k->size;
            bool ok = n >= 1 && n <= MAX_SPAN_OBJECTS && (bytes - n * k->size) * 8 <= bytes;
            ck_assert_msg(!ok, "class %u (%u B): %u pages would do, the table uses %u", c,
                          k->size, np, k->npages);
        }
    }
}
END_TEST

/* ---- sc_of: every request size ------------------------------------------------------------- */

START_TEST(test_sc_of_every_size)
{
    unsigned expect = 1;
    for (size_t n = 1; n <= MAX_SMALL_SIZE; n++) {
        while (sc_table[expect].size < n)
            expect++;
        unsigned got = sc_of(n);
        if (got != expect)
            ck_abort_msg("sc_of(%zu) = %u (%u B), expected class %u (%u B)", n, got,
                         got <= NUM_CLASSES ? sc_table[got].size : 0, expect,
                         sc_table[expect].size);
    }
    ck_assert_uint_eq(expect, NUM_CLASSES);
}
END_TEST

/* The index tables never name class 0 ("large") or a class past the end. */
START_TEST(test_index_tables_in_range)
{
    for (size_t i = 1; i < sizeof sc_index_small; i++)
        ck_assert_msg(sc_index_small[i] >= 1 && sc_index_small[i] <= NUM_CLASSES,
                      "sc_index_small[%zu] = %u", i, sc_index_small[i]);
    for (size_t i = 0; i < sizeof sc_index_large; i++)
        ck_assert_msg(sc_index_large[i] >= 1 && sc_index_large[i] <= NUM_CLASSES,
                      "sc_index_large[%zu] = %u", i, sc_index_large[i]);
}
END_TEST

/* ---- div_mul: exact division for every offset in a span ----------------------------------- */

START_TEST(test_div_mul_exact)
{
    unsigned c = (unsigned)_i;
    const struct size_class *k = &sc_table[c];
    uint64_t bytes = (uint64_t)k->npages * PAGE_SIZE;
    for (uint64_t off = 0; off < bytes; off++) {
        uint64_t q = (off * k->div_mul) >> 32;
        if (q != off / k->size)
            ck_abort_msg("class %u (%u B, div_mul %u): offset %" PRIu64 " gives %" PRIu64
                         ", expected %" PRIu64, c, k->size, k->div_mul, off, q, off / k->size);
    }
}
END_TEST

/* The same through span_index, which is what the collector calls. */
START_TEST(test_span_index_matches)
{
    for (unsigned c = 1; c <= NUM_CLASSES; c++) {
        const struct size_class *k = &sc_table[c];
        struct span s = {.base = (uintptr_t)1 << 40, .size = k->size, .div_mul = k->div_mul};
        for (uint32_t i = 0; i < k->nelems; i++) {
            uintptr_t first = s.base + (uintptr_t)i * k->size, last = first + k->size - 1;
            ck_assert_uint_eq(span_index(&s, first), i);
            ck_assert_uint_eq(span_index(&s, last), i);
        }
        /* The tail after the last whole object never maps to a real slot. */
        uintptr_t end = s.base + (uintptr_t)k->npages * PAGE_SIZE;
        for (uintptr_t p = s.base + (uintptr_t)k->nelems * k->size; p < end; p += 8)
            ck_assert_uint_ge(span_index(&s, p), k->nelems);
    }
}
END_TEST

/* sc_init twice gives the same table: gc_init's pthread_once is not the only guard. */
START_TEST(test_init_idempotent)
{
    struct size_class copy[NUM_CLASSES + 1];
    uint8_t small[sizeof sc_index_small], large[sizeof sc_index_large];
    memcpy(copy, sc_table, sizeof copy);
    memcpy(small, sc_index_small, sizeof small);
    memcpy(large, sc_index_large, sizeof large);
    sc_init();
    ck_assert_mem_eq(copy, sc_table, sizeof copy);
    ck_assert_mem_eq(small, sc_index_small, sizeof small);
    ck_assert_mem_eq(large, sc_index_large, sizeof large);
}
END_TEST

static Suite *sizeclass_suite(void)
{
    Suite *s = suite_create("sizeclass");
    TCase *tc;

    tc = tcase_create("table");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_bounds_and_count);
    tcase_add_test(tc, test_strictly_increasing_multiples_of_16);
    tcase_add_test(tc, test_layout);
    tcase_add_test(tc, test_rounding_waste);
    tcase_add_test(tc, test_init_idempotent);
    suite_add_tcase(s, tc);

    tc = tcase_create("spans");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_span_shape);
    tcase_add_test(tc, test_span_pages_minimal);
    suite_add_tcase(s, tc);

    tc = tcase_create("lookup");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_sc_of_every_size);
    tcase_add_test(tc, test_index_tables_in_range);
    suite_add_tcase(s, tc);

    tc = tcase_create("div_mul");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_div_mul_exact, 1, NUM_CLASSES + 1);
    tcase_add_test(tc, test_span_index_matches);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sizeclass_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
