/* test_pacer.c - unit tests for gc/pacer.c: pacer_heap_goal, the heap goal.
 *
 * goal = live + (live + roots) * percent / 100, never below 4 MiB * percent / 100,
 * UINT64_MAX when collection is off (percent < 0), saturating instead of wrapping.
 * Pure arithmetic: no heap, no threads.  Results are compared with exact values and,
 * for large inputs, with a 128-bit reference that saturates at UINT64_MAX.
 */
#include "internal.h"

#include <check.h>
#include <inttypes.h>
#include <stdlib.h>

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

/* What the goal should be: computed without overflow, then saturated. */
static uint64_t reference_goal(uint64_t live, uint64_t roots, int percent)
{
    if (percent < 0)
        return UINT64_MAX;
    unsigned __int128 base = (unsigned __int128)live + roots;
    unsigned __int128 goal = live + base * (unsigned)percent / 100;
    unsigned __int128 floor = (unsigned __int128)MIN_HEAP_GOAL * (unsigned)percent / 100;
    if (goal < floor)
        goal = floor;
    return goal > UINT64_MAX ? UINT64_MAX : (uint64_t)goal;
}

START_TEST(floor_default_percent)
{
    ck_assert_uint_eq(pacer_heap_goal(0, 0, 100), UINT64_C(4194304));
    ck_assert_uint_eq(MIN_HEAP_GOAL, UINT64_C(4194304));
    /* A small live heap still gets the 4 MiB floor. */
    ck_assert_uint_eq(pacer_heap_goal(1, 0, 100), 4 * MiB);
    ck_assert_uint_eq(pacer_heap_goal(1 * MiB, 0, 100), 4 * MiB);
    ck_assert_uint_eq(pacer_heap_goal(1 * MiB, 1 * MiB, 100), 4 * MiB);
    /* Exactly at the floor, and just above it. */
    ck_assert_uint_eq(pacer_heap_goal(2 * MiB, 0, 100), 4 * MiB);
    ck_assert_uint_eq(pacer_heap_goal(2 * MiB + 1, 0, 100), 4 * MiB + 2);
}
END_TEST

START_TEST(double_the_live_heap)
{
    ck_assert_uint_eq(pacer_heap_goal(100 * MiB, 0, 100), 200 * MiB);
    ck_assert_uint_eq(pacer_heap_goal(1 * GiB, 0, 100), 2 * GiB);
    ck_assert_uint_eq(pacer_heap_goal(12345679, 0, 100), 2 * UINT64_C(12345679));
}
END_TEST

START_TEST(roots_are_counted)
{
    ck_assert_uint_eq(pacer_heap_goal(100 * MiB, 10 * MiB, 100), 210 * MiB);
    /* The roots grow the goal but are not themselves part of the heap base. */
    ck_assert_uint_eq(pacer_heap_goal(100 * MiB, 100 * MiB, 100), 300 * MiB);
    /* Roots alone can lift the goal over the floor. */
    ck_assert_uint_eq(pacer_heap_goal(0, 10 * MiB, 100), 10 * MiB);
    ck_assert_uint_eq(pacer_heap_goal(1 * MiB, 10 * MiB, 100), 12 * MiB);
}
END_TEST

START_TEST(other_percents)
{
    ck_assert_uint_eq(pacer_heap_goal(100 * MiB, 0, 50), 150 * MiB);
    ck_assert_uint_eq(pacer_heap_goal(100 * MiB, 0, 200), 300 * MiB);
    ck_assert_uint_eq(pacer_heap_goal(100 * MiB, 10 * MiB, 50), 155 * MiB);
    ck_assert_uint_eq(pacer_heap_goal(100 * MiB, 10 * MiB, 200), 320 * MiB);
    ck_assert_uint_eq(pacer_heap_goal(100 * MiB, 0, 1), 101 * MiB);
    ck_assert_uint_eq(pacer_heap_goal(100 * MiB, 0, 1000), 1100 * MiB);
    /* percent 0: collect as soon as anything is allocated past the live heap. */
    ck_assert_uint_eq(pacer_heap_goal(100 * MiB, 10 * MiB, 0), 100 * MiB);
    ck_assert_uint_eq(pacer_heap_goal(0, 0, 0), 0);
    /* Rounding: the growth is floor((live + roots) * percent / 100), exactly. */
    ck_assert_uint_eq(pacer_heap_goal(10 * MiB + 99, 0, 50), 10 * MiB + 99 + (10 * MiB + 99) / 2);
    ck_assert_uint_eq(pacer_heap_goal(100 * MiB + 99, 0, 100000), (100 * MiB + 99) * 1001);
    ck_assert_uint_eq(pacer_heap_goal(1000000007, 3, 33), 1000000007 + 1000000010ull * 33 / 100);
}
END_TEST

START_TEST(floor_scales_with_percent)
{
    ck_assert_uint_eq(pacer_heap_goal(0, 0, 50), 2 * MiB);
    ck_assert_uint_eq(pacer_heap_goal(0, 0, 200), 8 * MiB);
    ck_assert_uint_eq(pacer_heap_goal(0, 0, 25), 1 * MiB);
    ck_assert_uint_eq(pacer_heap_goal(0, 0, 1), 4 * MiB / 100);
    ck_assert_uint_eq(pacer_heap_goal(0, 0, 1000), 40 * MiB);
    ck_assert_uint_eq(pacer_heap_goal(1 * MiB, 0, 50), 2 * MiB);
    ck_assert_uint_eq(pacer_heap_goal(3 * MiB, 0, 50), 3 * MiB + 3 * MiB / 2);
}
END_TEST

START_TEST(off_is_unbounded)
{
    ck_assert_uint_eq(pacer_heap_goal(0, 0, -1), UINT64_MAX);
    ck_assert_uint_eq(pacer_heap_goal(100 * MiB, 10 * MiB, -1), UINT64_MAX);
    ck_assert_uint_eq(pacer_heap_goal(UINT64_MAX, UINT64_MAX, -1), UINT64_MAX);
    ck_assert_uint_eq(pacer_heap_goal(1, 2, -100), UINT64_MAX);
    ck_assert_uint_eq(pacer_heap_goal(1, 2, -2147483647 - 1), UINT64_MAX);
}
END_TEST

/* The case in the brief: half the address range, percent 1000. */
START_TEST(no_overflow_half_range)
{
    uint64_t live = UINT64_MAX / 2;
    uint64_t g = pacer_heap_goal(live, 0, 1000);
    ck_assert_msg(g == UINT64_MAX || g >= live, "goal %" PRIu64 " < live %" PRIu64, g, live);
    ck_assert_uint_eq(g, UINT64_MAX);   /* the true goal is far beyond 2^64 */
    ck_assert_uint_ge(pacer_heap_goal(UINT64_MAX, 0, 100), UINT64_MAX);
    ck_assert_uint_eq(pacer_heap_goal(UINT64_MAX - 1, 0, 1), UINT64_MAX);
    ck_assert_uint_eq(pacer_heap_goal(UINT64_MAX, UINT64_MAX, 100), UINT64_MAX);
}
END_TEST

/* Never below live, for any input. */
START_TEST(never_below_live)
{
    static const uint64_t lives[] = {0, 1, 99, 100, 4 * MiB, 1 * GiB, UINT64_C(1) << 40,
                                     UINT64_C(1) << 56, UINT64_MAX / 1000, UINT64_MAX / 100,
                                     UINT64_MAX / 11, UINT64_MAX / 4, UINT64_MAX / 3,
                                     UINT64_MAX / 2, UINT64_MAX / 2 + 1, UINT64_MAX - 100,
                                     UINT64_MAX};
    static const uint64_t roots[] = {0, 1, 64 * KiB, 1 * GiB, UINT64_MAX / 4,
                                     UINT64_MAX / 2 + 1, UINT64_MAX};
    static const int percents[] = {0, 1, 50, 100, 200, 1000, 100000, 2147483647};
    for (size_t i = 0; i < sizeof lives / sizeof *lives; i++)
        for (size_t j = 0; j < sizeof roots / sizeof *roots; j++)
            for (size_t k = 0; k < sizeof percents / sizeof *percents; k++) {
                uint64_t g = pacer_heap_goal(lives[i], roots[j], percents[k]);
                ck_assert_msg(g >= lives[i],
                              "pacer_heap_goal(%" PRIu64 ", %" PRIu64 ", %d) = %" PRIu64
                              " < live", lives[i], roots[j], percents[k], g);
            }
}
END_TEST

/* Exact, saturating: the goal equals the 128-bit computation clamped to UINT64_MAX.
 * A wrapped multiplication gives a goal that is >= live but far below the true one. */
START_TEST(saturates_exactly)
{
    static const uint64_t lives[] = {0, 1, 4 * MiB, 1 * GiB, UINT64_C(1) << 40,
                                     UINT64_C(1) << 50, UINT64_C(1) << 56, UINT64_MAX / 1000,
                                     UINT64_MAX / 100, UINT64_MAX / 11, UINT64_MAX / 4,
                                     UINT64_MAX / 3, UINT64_MAX / 2, UINT64_MAX / 2 + 1,
                                     UINT64_MAX - 100, UINT64_MAX};
    static const uint64_t roots[] = {0, 1, 64 * KiB, 1 * GiB, UINT64_MAX / 4,
                                     UINT64_MAX / 2 + 1, UINT64_MAX};
    static const int percents[] = {0, 1, 50, 100, 200, 1000, 100000, 2147483647};
    int bad = 0;
    char first[256] = "";
    for (size_t i = 0; i < sizeof lives / sizeof *lives; i++)
        for (size_t j = 0; j < sizeof roots / sizeof *roots; j++)
            for (size_t k = 0; k < sizeof percents / sizeof *percents; k++) {
                uint64_t g = pacer_heap_goal(lives[i], roots[j], percents[k]);
                uint64_t want = reference_goal(lives[i], roots[j], percents[k]);
                if (g != want && bad++ == 0)
                    snprintf(first, sizeof first,
                             "pacer_heap_goal(%" PRIu64 ", %" PRIu64 ", %d) = %" PRIu64
                             ", want %" PRIu64, lives[i], roots[j], percents[k], g, want);
            }
    ck_assert_msg(bad == 0, "%d wrong goals; first: %s", bad, first);
}
END_TEST

/* A 1 TiB heap with GCPERCENT at the largest value options.c accepts (INT_MAX):
 * (live / 100) * percent wraps, and the goal comes out at about a quarter of 2^64. */
START_TEST(huge_percent_terabyte_heap)
{
    uint64_t live = UINT64_C(1) << 40;
    uint64_t g = pacer_heap_goal(live, 0, 2147483647);
    ck_assert_uint_eq(g, reference_goal(live, 0, 2147483647));
    ck_assert_uint_eq(g, UINT64_MAX);
}
END_TEST

static Suite *pacer_suite(void)
{
    Suite *s = suite_create("pacer");
    TCase *tc = tcase_create("heap_goal");
    tcase_add_test(tc, floor_default_percent);
    tcase_add_test(tc, double_the_live_heap);
    tcase_add_test(tc, roots_are_counted);
    tcase_add_test(tc, other_percents);
    tcase_add_test(tc, floor_scales_with_percent);
    tcase_add_test(tc, off_is_unbounded);
    tcase_add_test(tc, no_overflow_half_range);
    tcase_add_test(tc, never_below_live);
    tcase_add_test(tc, saturates_exactly);
    tcase_add_test(tc, huge_percent_terabyte_heap);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pacer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
