/* envprobe.c - shows what the environment (GCPERCENT, GCMEMLIMIT, GCPROCS, GCDEBUG)
 * did to the collector, for tests/env.sh.  It keeps about 1 MB live while it
 * allocates about 64 MB of garbage, then prints one line:
 *   envprobe: num_gc N num_forced_gc F next_gc G enable_gc E debug_gc D live OK
 * "live OK" means the live set was intact at the end; anything else is a failure. */
#include <inttypes.h>
#include <stdio.h>
#include <tricolor.h>

enum { LIVE = 1024, LIVE_SIZE = 1024, GARBAGE = 65536, GARBAGE_SIZE = 1024 };

static long *keep[LIVE];   /* a global: a root */

int main(void)
{
    gc_init();
    for (long i = 0; i < LIVE; i++) {
        keep[i] = gc_malloc(LIVE_SIZE);
        if (!keep[i]) {
            fprintf(stderr, "envprobe: gc_malloc failed\n");
            return 1;
        }
        keep[i][0] = i;
        keep[i][LIVE_SIZE / sizeof(long) - 1] = ~i;
    }
    for (long i = 0; i < GARBAGE; i++) {
        char *g = gc_malloc(GARBAGE_SIZE);
        if (!g) {
            fprintf(stderr, "envprobe: gc_malloc failed\n");
            return 1;
        }
        g[0] = (char)i;
    }
    int ok = 1;
    for (long i = 0; i < LIVE; i++)
        if (keep[i][0] != i || keep[i][LIVE_SIZE / sizeof(long) - 1] != ~i)
            ok = 0;
    struct gc_memstats ms;
    gc_read_memstats(&ms);
    printf("envprobe: num_gc %u num_forced_gc %u next_gc %" PRIu64 " enable_gc %d debug_gc %d live %s\n",
           ms.num_gc, ms.num_forced_gc, ms.next_gc, (int)ms.enable_gc, (int)ms.debug_gc,
           ok ? "OK" : "CORRUPT");
    return ok ? 0 : 1;
}
