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
    uint64_t base = live + roots;
    uint64_t growth = base / 100 * (uint64_t)percent + base % 100 * (uint64_t)percent / 100;
    uint64_t goal = live + growth;
    uint64_t floor = MIN_HEAP_GOAL * (uint64_t)percent / 100;
    if (goal < floor)
        goal = floor;
    if (goal < live)   /* overflow */
        goal = UINT64_MAX;
    return goal;
}
