/* pacer.c - when to collect: the heap goal.
 *
 * Pure arithmetic in bytes, no threads and no heap, so tests can call it directly.
 * As Go's: the goal is the live heap plus GCPERCENT percent of the live heap and the
 * roots scanned (stacks and globals), and never below 4 MB x GCPERCENT/100.  A cycle
 * starts when the bytes allocated since the last mark plus the live heap reach it.
 */
#include "internal.h"

uint64_t pacer_heap_goal(uint64_t live, uint64_t roots, int percent)
{
    if (percent < 0)
        return UINT64_MAX;
    /* 128-bit arithmetic: a goal that does not fit saturates instead of wrapping. */
    unsigned __int128 base = (unsigned __int128)live + roots;
    unsigned __int128 goal = live + base * (unsigned)percent / 100;
    unsigned __int128 floor = (unsigned __int128)MIN_HEAP_GOAL * (unsigned)percent / 100;
    if (goal < floor)
        goal = floor;
    return goal > UINT64_MAX ? UINT64_MAX : (uint64_t)goal;
}
