/* test_pacer.c - unit tests for gc/pacer.c, the pacer's arithmetic.
 *
 * The heap goal: goal = live + (live + roots) * percent / 100, never below
 * 4 MiB * percent / 100, UINT64_MAX when collection is off (percent < 0), saturating
 * instead of wrapping.  Then the memory-limit goal, the trigger from measured rates,
 * the assist ratio and chunks, the mark-worker split, the CPU limiter's bucket, the
 * scavenger goal and the gcpacertrace line.  Pure arithmetic: no heap, no threads.
 * Expected values are worked out by hand in the comments beside them, not re-derived
 * from the code under test; large inputs are compared with a 128-bit reference.
 */
#include "internal.h"
#include "pacer.h"

#include <check.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- memory limit ---------------------------------------------------------------- */

START_TEST(floor_matches_internal)
{
    ck_assert_uint_eq(PACER_MIN_GOAL_BYTES, MIN_HEAP_GOAL);
}
END_TEST

START_TEST(limit_none)
{
    struct pacer_memory m = { 40 * MiB, 10 * MiB, 20 * MiB };
    ck_assert_uint_eq(pacer_limit_goal(-1, &m), UINT64_MAX);
    ck_assert_uint_eq(pacer_limit_goal(INT64_MIN, &m), UINT64_MAX);
    ck_assert_uint_eq(pacer_limit_goal(INT64_MAX, &m), UINT64_MAX);
    ck_assert_uint_eq(pacer_limit_goal(INT64_MAX, NULL), UINT64_MAX);
    /* No limit: the goal is the GCPERCENT goal (100 MiB live -> 200 MiB). */
    enum pacer_goal_source src = PACER_GOAL_LIMIT;
    ck_assert_uint_eq(pacer_goal(100 * MiB, 0, 100, INT64_MAX, NULL, &src), 200 * MiB);
    ck_assert_int_eq(src, PACER_GOAL_PERCENT);
    ck_assert_uint_eq(pacer_goal(100 * MiB, 0, 100, -1, &m, &src), 200 * MiB);
    ck_assert_int_eq(src, PACER_GOAL_PERCENT);
    /* Off and no limit: unbounded. */
    ck_assert_uint_eq(pacer_goal(100 * MiB, 0, -1, INT64_MAX, &m, &src), UINT64_MAX);
    ck_assert_int_eq(src, PACER_GOAL_OFF);
    /* source may be NULL. */
    ck_assert_uint_eq(pacer_goal(100 * MiB, 10 * MiB, 100, -1, NULL, NULL), 210 * MiB);
}
END_TEST

START_TEST(limit_goal_values)
{
    /* limit 100 MiB; mapped 40, free 10, objects 20: overhead 10 MiB, 90 MiB left,
     * headroom 90/32 = 2.8125 MiB (over 1 MiB): 90 * 31/32 = 87.1875 MiB = 91422720. */
    struct pacer_memory m = { 40 * MiB, 10 * MiB, 20 * MiB };
    ck_assert_uint_eq(pacer_limit_goal((int64_t)(100 * MiB), &m), 91422720);
    /* No overhead, 20 MiB: 20/32 = 640 KiB < 1 MiB, so 1 MiB off: 19 MiB. */
    struct pacer_memory empty = { 0, 0, 0 };
    ck_assert_uint_eq(pacer_limit_goal((int64_t)(20 * MiB), &empty), 19 * MiB);
    /* NULL memory counts as empty: 64 MiB - 2 MiB (64/32) = 62 MiB. */
    ck_assert_uint_eq(pacer_limit_goal((int64_t)(64 * MiB), NULL), 62 * MiB);
    /* Free pages are not overhead: mapped 40, free 30, objects 10 -> overhead 0,
     * 100 MiB * 31/32 = 96.875 MiB = 101580800. */
    struct pacer_memory freeish = { 40 * MiB, 30 * MiB, 10 * MiB };
    ck_assert_uint_eq(pacer_limit_goal((int64_t)(100 * MiB), &freeish), 101580800);
    /* Overhead alone at or over the limit: 0.  mapped 30, objects 15 -> 15 >= 10. */
    struct pacer_memory fat = { 30 * MiB, 0, 15 * MiB };
    ck_assert_uint_eq(pacer_limit_goal((int64_t)(10 * MiB), &fat), 0);
    ck_assert_uint_eq(pacer_limit_goal((int64_t)(15 * MiB), &fat), 0);
    /* Exactly the headroom left: 1 MiB limit, 1 MiB headroom -> 0; limit 0 -> 0. */
    ck_assert_uint_eq(pacer_limit_goal((int64_t)(1 * MiB), &empty), 0);
    ck_assert_uint_eq(pacer_limit_goal(0, &empty), 0);
    /* Inconsistent snapshots clamp: free > mapped counts as mapped (objects then 0);
     * objects > mapped - free counts as the rest.  Both leave overhead 0: 101580800. */
    struct pacer_memory odd1 = { 10 * MiB, 20 * MiB, 5 * MiB };
    struct pacer_memory odd2 = { 10 * MiB, 4 * MiB, 8 * MiB };
    ck_assert_uint_eq(pacer_limit_goal((int64_t)(100 * MiB), &odd1), 101580800);
    ck_assert_uint_eq(pacer_limit_goal((int64_t)(100 * MiB), &odd2), 101580800);
    /* The largest limit: (2^63 - 2) * 31/32 rounded as the code's shifts do:
     * avail = 2^63 - 2, headroom = (2^63 - 2) >> 5 = 2^58 - 1, goal = 2^63 - 2^58 - 1. */
    ck_assert_uint_eq(pacer_limit_goal(INT64_MAX - 1, &empty),
                      (UINT64_C(1) << 63) - (UINT64_C(1) << 58) - 1);
}
END_TEST

START_TEST(min_runway)
{
    ck_assert_uint_eq(pacer_min_runway(0), 1 * MiB);
    ck_assert_uint_eq(pacer_min_runway(32 * MiB), 1 * MiB);   /* 32/32 = 1 MiB */
    ck_assert_uint_eq(pacer_min_runway(64 * MiB), 2 * MiB);
    ck_assert_uint_eq(pacer_min_runway(1 * GiB), 32 * MiB);
    ck_assert_uint_eq(pacer_min_runway(UINT64_MAX), UINT64_MAX >> 5);
}
END_TEST

START_TEST(combined_goal)
{
    enum pacer_goal_source src;
    /* live 100 MiB, GCPERCENT 100 -> 200 MiB; limit 150 MiB with 10 MiB overhead
     * (mapped 110, objects 100): 140 MiB * 31/32 = 135.625 MiB = 142213120. */
    struct pacer_memory m = { 110 * MiB, 0, 100 * MiB };
    ck_assert_uint_eq(pacer_goal(100 * MiB, 0, 100, (int64_t)(150 * MiB), &m, &src), 142213120);
    ck_assert_int_eq(src, PACER_GOAL_LIMIT);
    /* A 1 GiB limit is above the GCPERCENT goal: 200 MiB, gcpercent. */
    ck_assert_uint_eq(pacer_goal(100 * MiB, 0, 100, (int64_t)GiB, &m, &src), 200 * MiB);
    ck_assert_int_eq(src, PACER_GOAL_PERCENT);
    /* GCPERCENT=off with a limit: live 10 MiB, mapped 12, objects 10 -> overhead 2,
     * 98 MiB * 31/32 = 94.9375 MiB = 99549184. */
    struct pacer_memory m2 = { 12 * MiB, 0, 10 * MiB };
    ck_assert_uint_eq(pacer_goal(10 * MiB, 0, -1, (int64_t)(100 * MiB), &m2, &src), 99549184);
    ck_assert_int_eq(src, PACER_GOAL_LIMIT);
    /* GCPERCENT=0 stays the smaller (continuous collection, for debugging): 100 MiB. */
    ck_assert_uint_eq(pacer_goal(100 * MiB, 0, 0, (int64_t)(150 * MiB), &m, &src), 100 * MiB);
    ck_assert_int_eq(src, PACER_GOAL_PERCENT);
}
END_TEST

/* Live above the limit: the goal keeps a runway instead of collecting back to back. */
START_TEST(live_above_limit)
{
    enum pacer_goal_source src;
    /* live 200 MiB, limit 100 MiB, overhead 10 MiB: the limit goal would be
     * 87.1875 MiB, under live; the floor is 200 + 200/32 = 206.25 MiB = 216268800. */
    struct pacer_memory m = { 210 * MiB, 0, 200 * MiB };
    ck_assert_uint_eq(pacer_goal(200 * MiB, 0, 100, (int64_t)(100 * MiB), &m, &src), 216268800);
    ck_assert_int_eq(src, PACER_GOAL_LIMIT_FLOOR);
    ck_assert_uint_eq(pacer_goal(200 * MiB, 0, -1, (int64_t)(100 * MiB), &m, &src), 216268800);
    ck_assert_int_eq(src, PACER_GOAL_LIMIT_FLOOR);
    /* Overhead over the limit (limit goal 0): a small live heap gets live + 1 MiB. */
    struct pacer_memory fat = { 30 * MiB, 0, 2 * MiB };
    ck_assert_uint_eq(pacer_goal(2 * MiB, 0, 100, (int64_t)(10 * MiB), &fat, &src), 3 * MiB);
    ck_assert_int_eq(src, PACER_GOAL_LIMIT_FLOOR);
    /* The floor saturates. */
    ck_assert_uint_eq(pacer_goal(UINT64_MAX - 10, 0, 100, 0, NULL, &src), UINT64_MAX);
}
END_TEST

START_TEST(hard_goal)
{
    ck_assert_uint_eq(pacer_hard_goal(160 * MiB), 170 * MiB);   /* + 160/16 */
    ck_assert_uint_eq(pacer_hard_goal(16), 17);
    ck_assert_uint_eq(pacer_hard_goal(15), 15);
    ck_assert_uint_eq(pacer_hard_goal(0), 0);
    ck_assert_uint_eq(pacer_hard_goal(UINT64_MAX), UINT64_MAX);
    ck_assert_uint_eq(pacer_hard_goal(UINT64_MAX - 1), UINT64_MAX);
}
END_TEST

/* ---- trigger ------------------------------------------------------------------- */

/* live 100 MiB, goal 200 MiB: runway 100 MiB; clamps at 185 MiB (193986560) and
 * 195 MiB (204472320); first trigger 190 MiB (199229440). */
#define T_LIVE (100 * MiB)
#define T_GOAL (200 * MiB)
#define T_LO UINT64_C(193986560)
#define T_HI UINT64_C(204472320)
#define T_FIRST UINT64_C(199229440)

static struct pacer_state state_with(double cons_mark)
{
    struct pacer_state s;
    pacer_state_init(&s);
    s.cycles = 1;
    s.cons_mark = cons_mark;
    return s;
}

START_TEST(trigger_first_cycle)
{
    struct pacer_state s;
    pacer_state_init(&s);
    ck_assert_uint_eq(s.cycles, 0);
    ck_assert_uint_eq(pacer_trigger(&s, T_LIVE, T_LIVE, T_GOAL), T_FIRST);
    ck_assert_uint_eq(pacer_trigger(NULL, T_LIVE, T_LIVE, T_GOAL), T_FIRST);
    /* Rounding down: runway 10 bytes -> 9, clamps 8 (8.5) and 9 (9.5). */
    ck_assert_uint_eq(pacer_trigger(NULL, 0, 0, 10), 9);
    /* The 4 MiB floor with nothing live: 90% of 4 MiB = 3774873 (3774873.6). */
    ck_assert_uint_eq(pacer_trigger(NULL, 0, 0, 4 * MiB), 3774873);
}
END_TEST

START_TEST(trigger_from_rates)
{
    /* cons/mark 1/32, 100 MiB to scan: the mutators allocate 100 MiB * 1/32 * 3 =
     * 9.375 MiB while 25% of the CPUs mark it, so trigger = 200 - 9.375 = 190.625 MiB
     * = 199884800, inside the clamps. */
    struct pacer_state s = state_with(0.03125);
    ck_assert_uint_eq(pacer_trigger(&s, T_LIVE, T_LIVE, T_GOAL), 199884800);
    /* With 10 MiB of roots more to scan: 110 * 3/32 = 10.3125 MiB -> 189.6875 MiB. */
    ck_assert_uint_eq(pacer_trigger(&s, T_LIVE, T_LIVE + 10 * MiB, T_GOAL), 198901760);
    /* cons/mark 1/16 needs 18.75 MiB: 181.25 MiB is before the 85% clamp. */
    s = state_with(0.0625);
    ck_assert_uint_eq(pacer_trigger(&s, T_LIVE, T_LIVE, T_GOAL), T_LO);
}
END_TEST

START_TEST(trigger_clamps)
{
    /* cons/mark 1/4: 75 MiB needed -> 125 MiB, below 85%: 185 MiB. */
    struct pacer_state s = state_with(0.25);
    ck_assert_uint_eq(pacer_trigger(&s, T_LIVE, T_LIVE, T_GOAL), T_LO);
    /* More needed than the whole runway: still 85%. */
    s = state_with(10.0);
    ck_assert_uint_eq(pacer_trigger(&s, T_LIVE, T_LIVE, T_GOAL), T_LO);
    s = state_with(1e300);
    ck_assert_uint_eq(pacer_trigger(&s, T_LIVE, T_LIVE, T_GOAL), T_LO);
    /* Nothing allocated during mark: 0 needed -> the goal itself, capped at 95%. */
    s = state_with(0.0);
    ck_assert_uint_eq(pacer_trigger(&s, T_LIVE, T_LIVE, T_GOAL), T_HI);
    /* No runway: the goal; GC off: never. */
    ck_assert_uint_eq(pacer_trigger(&s, T_GOAL, T_GOAL, T_GOAL), T_GOAL);
    ck_assert_uint_eq(pacer_trigger(&s, T_GOAL + 1, T_GOAL, T_GOAL), T_GOAL);
    ck_assert_uint_eq(pacer_trigger(&s, T_LIVE, T_LIVE, UINT64_MAX), UINT64_MAX);
    ck_assert_uint_eq(pacer_trigger(NULL, T_LIVE, T_LIVE, UINT64_MAX), UINT64_MAX);
}
END_TEST

/* One cycle: 10 MiB allocated, 160 MiB scanned, 10 ms of mark on 4 procs using
 * 20 CPU-ms (u = 0.5, so u/(1-u) = 1): cons/mark = 10/160 = 1/16. */
static const struct pacer_sample sample_16 = {
    .alloc_bytes = 10 * MiB, .scan_bytes = 160 * MiB,
    .mark_wall_ns = 10000000, .mark_cpu_ns = 20000000, .procs = 4,
};

START_TEST(observe_one_cycle)
{
    struct pacer_state s;
    pacer_state_init(&s);
    ck_assert(pacer_observe(&s, &sample_16));
    ck_assert_uint_eq(s.cycles, 1);
    ck_assert(s.cons_mark == 0.0625);
    ck_assert(s.last_cons_mark == 0.0625);
    ck_assert(s.last_alloc_rate == 1.048576);    /* 10485760 B / 10^7 ns */
    ck_assert(s.last_scan_rate == 8.388608);     /* 167772160 B / (2 * 10^7) CPU-ns */
    ck_assert(s.last_utilization == 0.5);
    /* 1/16 needs 18.75 MiB of the 100 MiB runway: 181.25 MiB, clamped to 85%. */
    ck_assert_uint_eq(pacer_trigger(&s, T_LIVE, T_LIVE, T_GOAL), T_LO);
}
END_TEST

START_TEST(observe_rejects)
{
    struct pacer_state s;
    pacer_state_init(&s);
    struct pacer_sample x = sample_16;
    x.mark_wall_ns = 0;
    ck_assert(!pacer_observe(&s, &x));
    x = sample_16;
    x.mark_cpu_ns = 0;
    ck_assert(!pacer_observe(&s, &x));
    x = sample_16;
    x.scan_bytes = 0;
    ck_assert(!pacer_observe(&s, &x));
    x = sample_16;
    x.procs = 0;
    ck_assert(!pacer_observe(&s, &x));
    ck_assert_uint_eq(s.cycles, 0);
    ck_assert(s.cons_mark == 0.0);
    /* Nothing allocated is a valid sample: cons/mark 0. */
    x = sample_16;
    x.alloc_bytes = 0;
    ck_assert(pacer_observe(&s, &x));
    ck_assert(s.cons_mark == 0.0);
}
END_TEST

/* Mark CPU at 100% of the procs: u/(1-u) would be infinite; capped at 0.9/0.1 = 9. */
START_TEST(observe_utilization_cap)
{
    struct pacer_state s;
    pacer_state_init(&s);
    struct pacer_sample x = { .alloc_bytes = 1 * MiB, .scan_bytes = 1 * MiB,
                              .mark_wall_ns = 1000000, .mark_cpu_ns = 2000000, .procs = 1 };
    ck_assert(pacer_observe(&s, &x));
    ck_assert(s.last_utilization == 2.0);        /* reported as measured */
    ck_assert_double_eq_tol(s.cons_mark, 9.0, 1e-9);
}
END_TEST

/* Smoothing: a fall comes in by halves, 1 -> 0.25 gives 0.25 + 0.75 / 2^n; a rise is
 * taken at once; a steady rate is reached exactly. */
START_TEST(smoothing_converges)
{
    struct pacer_state s;
    pacer_state_init(&s);
    /* alloc = scan at u = 0.5: cons/mark 1. */
    struct pacer_sample one = { .alloc_bytes = 64 * MiB, .scan_bytes = 64 * MiB,
                                .mark_wall_ns = 1000000, .mark_cpu_ns = 2000000, .procs = 4 };
    /* alloc = scan / 4: cons/mark 0.25. */
    struct pacer_sample quarter = one;
    quarter.alloc_bytes = 16 * MiB;
    ck_assert(pacer_observe(&s, &one));
    ck_assert(s.cons_mark == 1.0);
    static const double want[] = { 0.625, 0.4375, 0.34375, 0.296875, 0.2734375 };
    for (int i = 0; i < 5; i++) {
        ck_assert(pacer_observe(&s, &quarter));
        ck_assert_msg(s.cons_mark == want[i], "step %d: %.17g, want %.17g", i, s.cons_mark,
                      want[i]);
        ck_assert(s.last_cons_mark == 0.25);
    }
    for (int i = 0; i < 100; i++)
        pacer_observe(&s, &quarter);
    ck_assert(s.cons_mark == 0.25);
    ck_assert_uint_eq(s.cycles, 106);
    /* A rise: taken whole. */
    ck_assert(pacer_observe(&s, &one));
    ck_assert(s.cons_mark == 1.0);
    /* The trigger follows: from cons/mark 1 (needs 300 MiB: clamped to 185 MiB) down
     * to the steady 1/32 rate's 190.625 MiB. */
    ck_assert_uint_eq(pacer_trigger(&s, T_LIVE, T_LIVE, T_GOAL), T_LO);
    struct pacer_sample x32 = sample_16;
    x32.alloc_bytes /= 2;
    for (int i = 0; i < 100; i++)
        pacer_observe(&s, &x32);
    ck_assert(s.cons_mark == 0.03125);
    ck_assert_uint_eq(pacer_trigger(&s, T_LIVE, T_LIVE, T_GOAL), 199884800);
}
END_TEST

/* ---- assists ------------------------------------------------------------------- */

static uint64_t ratio(uint64_t expected, uint64_t max, uint64_t done, uint64_t live,
                      uint64_t goal)
{
    struct pacer_assist_in in = { expected, max, done, live, goal };
    return pacer_assist_ratio(&in);
}

START_TEST(assist_before_goal)
{
    /* 100 MiB to scan over 50 MiB of runway: 2 scan bytes per byte = 2048. */
    ck_assert_uint_eq(ratio(100 * MiB, 150 * MiB, 0, 150 * MiB, 200 * MiB), 2048);
    /* Later: 40 MiB left over 20 MiB: still 2048. */
    ck_assert_uint_eq(ratio(100 * MiB, 150 * MiB, 60 * MiB, 180 * MiB, 200 * MiB), 2048);
    /* Rounded up: 100 MiB over 3 MiB = 102400 / 3 = 34133.3 -> 34134. */
    ck_assert_uint_eq(ratio(100 * MiB, 0, 0, 197 * MiB, 200 * MiB), 34134);
    /* Under one: 1 MiB over 16 MiB = 1/16 = 64. */
    ck_assert_uint_eq(ratio(1 * MiB, 0, 0, 0, 16 * MiB), 64);
    /* Tiny: 64 KiB over 1 TiB = 2^-14, rounds up to the least unit, 1. */
    ck_assert_uint_eq(ratio(64 * KiB, 0, 0, 0, UINT64_C(1) << 40), PACER_ASSIST_RATIO_MIN);
    /* GC off but a cycle running (goal UINT64_MAX): the least ratio. */
    ck_assert_uint_eq(ratio(100 * MiB, 0, 0, 100 * MiB, UINT64_MAX), 1);
}
END_TEST

START_TEST(assist_tightens_near_goal)
{
    /* 100 MiB over 1 MiB = 100 per byte: capped at 64 (65536). */
    ck_assert_uint_eq(ratio(100 * MiB, 0, 0, 199 * MiB, 200 * MiB), PACER_ASSIST_RATIO_MAX);
    ck_assert_uint_eq(PACER_ASSIST_RATIO_MAX, 65536);
    /* The least remaining work (a 64 KiB chunk) over 1 KiB of runway: exactly 64. */
    ck_assert_uint_eq(ratio(0, 0, 0, 200 * MiB - 1024, 200 * MiB), 65536);
    /* Over 2 KiB: 32 (32768). */
    ck_assert_uint_eq(ratio(0, 0, 0, 200 * MiB - 2048, 200 * MiB), 32768);
}
END_TEST

START_TEST(assist_past_goal)
{
    /* Zero runway (at the goal) and negative runway (past it): the cap. */
    ck_assert_uint_eq(ratio(100 * MiB, 0, 0, 200 * MiB, 200 * MiB), 65536);
    ck_assert_uint_eq(ratio(100 * MiB, 0, 0, 201 * MiB, 200 * MiB), 65536);
    ck_assert_uint_eq(ratio(0, 0, 0, UINT64_MAX, 200 * MiB), 65536);
    ck_assert_uint_eq(ratio(0, 0, 0, 0, 0), 65536);
    /* Even with all the expected work done. */
    ck_assert_uint_eq(ratio(100 * MiB, 0, 200 * MiB, 300 * MiB, 200 * MiB), 65536);
}
END_TEST

START_TEST(assist_work_beyond_estimate)
{
    /* Done 110 of 100 MiB expected: the worst case (150 MiB) counts, 40 MiB left over
     * 50 MiB of runway = 0.8 per byte = 819.2 -> 820. */
    ck_assert_uint_eq(ratio(100 * MiB, 150 * MiB, 110 * MiB, 150 * MiB, 200 * MiB), 820);
    /* Past the worst case too: one chunk left, 64 KiB / 50 MiB * 1024 = 1.28 -> 2. */
    ck_assert_uint_eq(ratio(100 * MiB, 150 * MiB, 160 * MiB, 150 * MiB, 200 * MiB), 2);
    /* No worst case given (0): one chunk left at once. */
    ck_assert_uint_eq(ratio(100 * MiB, 0, 120 * MiB, 150 * MiB, 200 * MiB), 2);
}
END_TEST

START_TEST(assist_work_and_chunks)
{
    /* Debt to scan work. */
    ck_assert_uint_eq(pacer_assist_work(64 * KiB, 2048), 128 * KiB);
    ck_assert_uint_eq(pacer_assist_work(1000, 1536), 1500);          /* 1.5 per byte */
    ck_assert_uint_eq(pacer_assist_work(1, 1), 1);                   /* 1/1024, rounded up */
    ck_assert_uint_eq(pacer_assist_work(0, 65536), 0);
    ck_assert_uint_eq(pacer_assist_work(UINT64_MAX, 65536), UINT64_MAX);
    /* Whole 64 KiB chunks. */
    ck_assert_uint_eq(pacer_assist_chunk(0), 0);
    ck_assert_uint_eq(pacer_assist_chunk(1), 65536);
    ck_assert_uint_eq(pacer_assist_chunk(1500), 65536);
    ck_assert_uint_eq(pacer_assist_chunk(65536), 65536);
    ck_assert_uint_eq(pacer_assist_chunk(65537), 131072);
    ck_assert_uint_eq(pacer_assist_chunk(UINT64_MAX), UINT64_C(0xFFFFFFFFFFFF0000));
    /* What the work pays for: 128 KiB at 2 per byte = 64 KiB; a 64 KiB chunk at 1.5
     * per byte = 65536 / 1.5 = 43690.7 -> 43690, of which 1000 were owed and 42690
     * are credit. */
    ck_assert_uint_eq(pacer_assist_paid(128 * KiB, 2048), 64 * KiB);
    ck_assert_uint_eq(pacer_assist_paid(65536, 1536), 43690);
    ck_assert_uint_eq(pacer_assist_paid(65536, 0), 65536 * 1024);    /* as ratio 1 */
    ck_assert_uint_eq(pacer_assist_paid(UINT64_MAX, 1), UINT64_MAX);
    /* One assist does at most 128 KiB; the rest comes back as allocation debt at the
     * same ratio.  Up to the cap it is pacer_assist_chunk with nothing carried. */
    ck_assert_uint_eq(PACER_ASSIST_STEP_MAX_BYTES, 128 * KiB);
    uint64_t carry = 99;
    ck_assert_uint_eq(pacer_assist_step(1500, 2048, &carry), 64 * KiB);
    ck_assert_uint_eq(carry, 0);
    ck_assert_uint_eq(pacer_assist_step(128 * KiB, 2048, &carry), 128 * KiB);
    ck_assert_uint_eq(carry, 0);
    /* 6 MiB owed at 100 per byte (102400/1024): 128 KiB now; 6016 KiB left =
     * 61603.84 bytes of allocation -> 61603. */
    ck_assert_uint_eq(pacer_assist_step(6 * MiB, 102400, &carry), 128 * KiB);
    ck_assert_uint_eq(carry, 61603);
    /* The carried debt is worth (almost) the work left: at most one byte's work short. */
    uint64_t back = pacer_assist_work(carry, 102400);
    ck_assert(back <= 6 * MiB - 128 * KiB && back + 100 >= 6 * MiB - 128 * KiB);
    ck_assert_uint_eq(pacer_assist_step(UINT64_MAX, 1, &carry), 128 * KiB);
    ck_assert_uint_eq(carry, UINT64_MAX);
}
END_TEST

/* ---- mark workers ------------------------------------------------------------------ */

START_TEST(worker_split)
{
    /* procs: goal (CPUs) -> rounded, error -> split
     *  1: 0.25 -> 0, -100% -> 0 + 0.25     2: 0.5 -> 1, +100% -> 0 + 0.5
     *  3: 0.75 -> 1, +33%  -> 0 + 0.75     4: 1 -> 1
     *  5: 1.25 -> 1, -20%  -> 1            6: 1.5 -> 2, +33% -> 1 + 0.5
     *  7: 1.75 -> 2, +14%  -> 2            8: 2 -> 2
     * 10: 2.5 -> 3, +20%   -> 3           16: 4       64: 16 */
    static const struct { int procs, dedicated; double fractional; } want[] = {
        {1, 0, 0.25}, {2, 0, 0.5}, {3, 0, 0.75}, {4, 1, 0.0}, {5, 1, 0.0}, {6, 1, 0.5},
        {7, 2, 0.0}, {8, 2, 0.0}, {10, 3, 0.0}, {16, 4, 0.0}, {64, 16, 0.0},
        {0, 0, 0.25}, {-3, 0, 0.25},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        struct pacer_workers w = pacer_worker_split(want[i].procs);
        ck_assert_msg(w.dedicated == want[i].dedicated && w.fractional == want[i].fractional,
                      "procs %d: %d + %g, want %d + %g", want[i].procs, w.dedicated,
                      w.fractional, want[i].dedicated, want[i].fractional);
    }
}
END_TEST

/* ---- CPU limiter ----------------------------------------------------------------- */

#define SEC UINT64_C(1000000000)

START_TEST(limiter_fill_drain)
{
    struct pacer_limiter l;
    pacer_limiter_init(&l, 2);                  /* capacity 2 CPU-seconds */
    ck_assert_uint_eq(l.capacity_cpu_ns, 2 * SEC);
    ck_assert(!pacer_limiter_limiting(&l));
    ck_assert(pacer_limiter_fraction(&l) == 0.0);
    ck_assert(pacer_limiter_fill(&l) == 0.0);
    /* 75% GC over 1 s on 2 procs: +1.5 - 0.5 = +1 CPU-s: half full. */
    pacer_limiter_update(&l, 3 * SEC / 2, 2 * SEC);
    ck_assert_uint_eq(l.fill_cpu_ns, 1 * SEC);
    ck_assert(pacer_limiter_fill(&l) == 0.5);
    ck_assert(!pacer_limiter_limiting(&l));
    /* Again: exactly full, limiting, nothing overflowed. */
    pacer_limiter_update(&l, 3 * SEC / 2, 2 * SEC);
    ck_assert_uint_eq(l.fill_cpu_ns, 2 * SEC);
    ck_assert(pacer_limiter_limiting(&l));
    ck_assert_uint_eq(l.overflow_cpu_ns, 0);
    ck_assert_uint_eq(l.limited_cpu_ns, 0);     /* the limiter was off during both */
    /* Again, limiting all along: 1 CPU-s overflows, 2 CPU-s limited of 6. */
    pacer_limiter_update(&l, 3 * SEC / 2, 2 * SEC);
    ck_assert(pacer_limiter_limiting(&l));
    ck_assert_uint_eq(l.overflow_cpu_ns, 1 * SEC);
    ck_assert_uint_eq(l.limited_cpu_ns, 2 * SEC);
    ck_assert(pacer_limiter_fraction(&l) == 1.0 / 3.0);
    /* Exactly half GC: the bucket holds and so does the limiter. */
    pacer_limiter_update(&l, 1 * SEC, 2 * SEC);
    ck_assert(pacer_limiter_limiting(&l));
    ck_assert_uint_eq(l.fill_cpu_ns, 2 * SEC);
    ck_assert_uint_eq(l.limited_cpu_ns, 4 * SEC);
    /* 25% GC: -1 CPU-s, off (this interval was still limited: 6 of 10). */
    pacer_limiter_update(&l, SEC / 2, 2 * SEC);
    ck_assert(!pacer_limiter_limiting(&l));
    ck_assert_uint_eq(l.fill_cpu_ns, 1 * SEC);
    ck_assert_uint_eq(l.limited_cpu_ns, 6 * SEC);
    ck_assert(pacer_limiter_fraction(&l) == 0.6);
    /* Mutator only, for long: empty, never below. */
    pacer_limiter_update(&l, 0, 1000 * SEC);
    ck_assert_uint_eq(l.fill_cpu_ns, 0);
    /* No credit from idle time: a second of 100% GC on both procs fills it at once. */
    pacer_limiter_update(&l, 2 * SEC, 2 * SEC);
    ck_assert(pacer_limiter_limiting(&l));
    ck_assert_uint_eq(l.fill_cpu_ns, 2 * SEC);
    ck_assert_uint_eq(l.total_cpu_ns, 1012 * SEC);
}
END_TEST

START_TEST(limiter_clamps_and_procs)
{
    struct pacer_limiter l;
    pacer_limiter_init(&l, 0);                  /* procs < 1 counts as 1 */
    ck_assert_uint_eq(l.capacity_cpu_ns, 1 * SEC);
    /* GC CPU above the total counts as the total: +1 CPU-s, full. */
    pacer_limiter_update(&l, 5 * SEC, 1 * SEC);
    ck_assert(pacer_limiter_limiting(&l));
    ck_assert_uint_eq(l.overflow_cpu_ns, 0);
    ck_assert_uint_eq(l.total_cpu_ns, 1 * SEC);
    /* More procs: bigger bucket, no longer full. */
    pacer_limiter_set_procs(&l, 4);
    ck_assert_uint_eq(l.capacity_cpu_ns, 4 * SEC);
    ck_assert_uint_eq(l.fill_cpu_ns, 1 * SEC);
    ck_assert(!pacer_limiter_limiting(&l));
    ck_assert(pacer_limiter_fill(&l) == 0.25);
    /* Fewer: the fill is cut to the capacity, and it is full. */
    pacer_limiter_update(&l, 4 * SEC, 4 * SEC);  /* fill 4 s, full */
    pacer_limiter_set_procs(&l, 2);
    ck_assert_uint_eq(l.fill_cpu_ns, 2 * SEC);
    ck_assert(pacer_limiter_limiting(&l));
}
END_TEST

/* A collector that stops when limited and marks flat out otherwise: once the bucket
 * is full it gets exactly half the CPU.  4 procs, 10 ms steps = 40 CPU-ms each. */
START_TEST(limiter_holds_half)
{
    const uint64_t step = 4 * UINT64_C(10000000);
    struct pacer_limiter l;
    pacer_limiter_init(&l, 4);
    /* 100% GC fills the 4 CPU-s bucket in 100 steps (40 CPU-ms net each). */
    int steps = 0;
    while (!pacer_limiter_limiting(&l)) {
        pacer_limiter_update(&l, step, step);
        steps++;
    }
    ck_assert_int_eq(steps, 100);
    uint64_t gc = 0, total = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t g = pacer_limiter_limiting(&l) ? 0 : step;
        pacer_limiter_update(&l, g, step);
        gc += g;
        total += step;
    }
    ck_assert_uint_eq(gc * 2, total);
    ck_assert_uint_eq(l.overflow_cpu_ns, 0);
    /* Limited for 500 of the 1100 steps: 5/11. */
    ck_assert_uint_eq(l.limited_cpu_ns, 500 * step);
    ck_assert(pacer_limiter_fraction(&l) == 5.0 / 11.0);
}
END_TEST

/* ---- scavenger ------------------------------------------------------------------ */

START_TEST(scavenge_goal)
{
    /* 100 MiB goal + 10% = 110 MiB = 115343360. */
    ck_assert_uint_eq(pacer_scavenge_goal(100 * MiB, INT64_MAX), 115343360);
    ck_assert_uint_eq(pacer_scavenge_goal(100 * MiB, -1), 115343360);
    ck_assert_uint_eq(pacer_scavenge_goal(100 * MiB, (int64_t)GiB), 115343360);
    /* Under a 100 MiB limit: 95 MiB = 99614720. */
    ck_assert_uint_eq(pacer_scavenge_goal(100 * MiB, (int64_t)(100 * MiB)), 99614720);
    /* GC off with a 1 GiB limit: 1073741824 * 0.95 = 1020054732.8 -> 1020054732. */
    ck_assert_uint_eq(pacer_scavenge_goal(UINT64_MAX, (int64_t)GiB), 1020054732);
    ck_assert_uint_eq(pacer_scavenge_goal(UINT64_MAX, INT64_MAX), UINT64_MAX);
    /* Small numbers round down: 10 -> 11, 15 -> 16 (16.5); 0 -> 0; limit 0 -> 0. */
    ck_assert_uint_eq(pacer_scavenge_goal(10, -1), 11);
    ck_assert_uint_eq(pacer_scavenge_goal(15, -1), 16);
    ck_assert_uint_eq(pacer_scavenge_goal(0, -1), 0);
    ck_assert_uint_eq(pacer_scavenge_goal(100 * MiB, 0), 0);
}
END_TEST

/* ---- gcpacertrace ------------------------------------------------------------------- */

START_TEST(trace_line)
{
    /* Trigger 185 MiB of a 100 -> 200 MiB runway: 0.850; assist 2560/1024 = 2.5;
     * 0.5 B/ns = 500 MB/s; 1.25 B/CPU-ns = 1250 MB/cpu-s. */
    struct pacer_trace t = {
        .cycle = 7, .live_bytes = 104857600, .goal_bytes = 209715200,
        .goal_source = PACER_GOAL_PERCENT, .trigger_bytes = 193986560, .assist_ratio = 2560,
        .alloc_rate = 0.5, .scan_rate = 1.25, .cons_mark = 0.0625, .utilization = 0.5,
        .workers = { 1, 0.0 }, .limiter_fill = 0.25, .limiting = false,
        .limited_fraction = 0.0,
    };
    const char *want =
        "pacer: gc 7: live 104857600 B, goal 209715200 B (gcpercent), trigger 193986560 B "
        "(0.850 of runway); assist 2.500 scan B/B; alloc 500.0 MB/s, scan 1250.0 MB/cpu-s, "
        "cons/mark 0.0625; mark cpu 50.0% (goal 25%, workers 1+0.00); limiter 25% full, "
        "off, limited 0.0% of cpu time\n";
    char buf[512];
    size_t n = pacer_format_trace(buf, sizeof buf, &t);
    ck_assert_str_eq(buf, want);
    ck_assert_uint_eq(n, strlen(want));
}
END_TEST

START_TEST(trace_line_variants)
{
    char buf[512];
    /* GC off, no limit; the limiter full and on half the time. */
    struct pacer_trace off = {
        .cycle = 1, .goal_bytes = UINT64_MAX, .goal_source = PACER_GOAL_OFF,
        .trigger_bytes = UINT64_MAX, .assist_ratio = 1024, .workers = { 0, 0.25 },
        .limiter_fill = 1.0, .limiting = true, .limited_fraction = 0.5,
    };
    pacer_format_trace(buf, sizeof buf, &off);
    ck_assert_str_eq(buf,
        "pacer: gc 1: live 0 B, goal none (off), trigger none; assist 1.000 scan B/B; "
        "alloc 0.0 MB/s, scan 0.0 MB/cpu-s, cons/mark 0.0000; mark cpu 0.0% (goal 25%, "
        "workers 0+0.25); limiter 100% full, limiting, limited 50.0% of cpu time\n");
    /* Live above the limit: live 200 MiB, goal 206.25 MiB (the floor), trigger 85% of
     * the 6.25 MiB runway = 215285760. */
    struct pacer_trace floor_t = {
        .cycle = 12, .live_bytes = 209715200, .goal_bytes = 216268800,
        .goal_source = PACER_GOAL_LIMIT_FLOOR, .trigger_bytes = 215285760,
        .assist_ratio = 65536, .workers = { 1, 0.5 },
    };
    pacer_format_trace(buf, sizeof buf, &floor_t);
    ck_assert_str_eq(buf,
        "pacer: gc 12: live 209715200 B, goal 216268800 B (memlimit floor), trigger "
        "215285760 B (0.850 of runway); assist 64.000 scan B/B; alloc 0.0 MB/s, scan 0.0 "
        "MB/cpu-s, cons/mark 0.0000; mark cpu 0.0% (goal 25%, workers 1+0.50); limiter 0% "
        "full, off, limited 0.0% of cpu time\n");
    /* GCPERCENT=0: goal = live, no runway. */
    struct pacer_trace zero = {
        .cycle = 3, .live_bytes = 1000, .goal_bytes = 1000,
        .goal_source = PACER_GOAL_PERCENT, .trigger_bytes = 1000, .assist_ratio = 65536,
    };
    pacer_format_trace(buf, sizeof buf, &zero);
    ck_assert(strstr(buf, "goal 1000 B (gcpercent), trigger 1000 B (no runway);") != NULL);
    /* A memory-limit goal. */
    zero.goal_source = PACER_GOAL_LIMIT;
    pacer_format_trace(buf, sizeof buf, &zero);
    ck_assert(strstr(buf, "(memlimit)") != NULL);
}
END_TEST

START_TEST(trace_truncates_like_snprintf)
{
    struct pacer_trace t = { .cycle = 7, .goal_bytes = UINT64_MAX };
    char big[512], small[10];
    size_t full = pacer_format_trace(big, sizeof big, &t);
    ck_assert_uint_eq(full, strlen(big));
    ck_assert_uint_eq(pacer_format_trace(small, sizeof small, &t), full);
    ck_assert_str_eq(small, "pacer: gc");
    ck_assert_uint_eq(pacer_format_trace(NULL, 0, &t), full);
}
END_TEST

START_TEST(trace_fill)
{
    struct pacer_state s;
    pacer_state_init(&s);
    pacer_observe(&s, &sample_16);
    struct pacer_limiter l;
    pacer_limiter_init(&l, 2);
    pacer_limiter_update(&l, 3 * SEC / 2, 2 * SEC);   /* half full, off */
    struct pacer_trace t = { .cycle = 1 };
    pacer_trace_fill(&t, &s, &l);
    ck_assert(t.alloc_rate == 1.048576);
    ck_assert(t.scan_rate == 8.388608);
    ck_assert(t.cons_mark == 0.0625);
    ck_assert(t.utilization == 0.5);
    ck_assert(t.limiter_fill == 0.5);
    ck_assert(!t.limiting);
    ck_assert(t.limited_fraction == 0.0);
    /* NULLs leave the fields alone. */
    struct pacer_trace u = { .alloc_rate = 3.0, .limiter_fill = 0.75 };
    pacer_trace_fill(&u, NULL, NULL);
    ck_assert(u.alloc_rate == 3.0 && u.limiter_fill == 0.75);
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
    tcase_add_test(tc, floor_matches_internal);
    suite_add_tcase(s, tc);

    tc = tcase_create("memory_limit");
    tcase_add_test(tc, limit_none);
    tcase_add_test(tc, limit_goal_values);
    tcase_add_test(tc, min_runway);
    tcase_add_test(tc, combined_goal);
    tcase_add_test(tc, live_above_limit);
    tcase_add_test(tc, hard_goal);
    suite_add_tcase(s, tc);

    tc = tcase_create("trigger");
    tcase_add_test(tc, trigger_first_cycle);
    tcase_add_test(tc, trigger_from_rates);
    tcase_add_test(tc, trigger_clamps);
    tcase_add_test(tc, observe_one_cycle);
    tcase_add_test(tc, observe_rejects);
    tcase_add_test(tc, observe_utilization_cap);
    tcase_add_test(tc, smoothing_converges);
    suite_add_tcase(s, tc);

    tc = tcase_create("assist");
    tcase_add_test(tc, assist_before_goal);
    tcase_add_test(tc, assist_tightens_near_goal);
    tcase_add_test(tc, assist_past_goal);
    tcase_add_test(tc, assist_work_beyond_estimate);
    tcase_add_test(tc, assist_work_and_chunks);
    suite_add_tcase(s, tc);

    tc = tcase_create("workers");
    tcase_add_test(tc, worker_split);
    suite_add_tcase(s, tc);

    tc = tcase_create("limiter");
    tcase_add_test(tc, limiter_fill_drain);
    tcase_add_test(tc, limiter_clamps_and_procs);
    tcase_add_test(tc, limiter_holds_half);
    suite_add_tcase(s, tc);

    tc = tcase_create("scavenger");
    tcase_add_test(tc, scavenge_goal);
    suite_add_tcase(s, tc);

    tc = tcase_create("gcpacertrace");
    tcase_add_test(tc, trace_line);
    tcase_add_test(tc, trace_line_variants);
    tcase_add_test(tc, trace_truncates_like_snprintf);
    tcase_add_test(tc, trace_fill);
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
