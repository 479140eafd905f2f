/* trace.c - the gctrace=1 line: one line per finished cycle on stderr.
 *
 * The cycle code hands over a struct gc_cycle_info (the same record the cycle hook
 * sees) and the cumulative GC CPU percent; this file only formats, in Go's gctrace
 * layout so that tools parsing Go's lines parse ours, and writes the line atomically.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <unistd.h>

#define NS_PER_US UINT64_C(1000)
#define NS_PER_MS UINT64_C(1000000)

/* Room for the longest possible line: every number at its uint64_t maximum comes to
 * about 340 bytes, so a line is never truncated in trace_cycle's buffer. */
#define TRACE_LINE_MAX 512

/* Durations of 10 ms and more print as whole ms (truncated); shorter ones keep two
 * significant digits of their whole-microsecond value, with at most three decimals:
 * 6 us -> "0.006", 21 us -> "0.021", 100 us -> "0.10", 1.3 ms -> "1.3".  Under 1 us
 * prints "0".  Returns what snprintf would: the full length, even if len cut it. */
size_t trace_fmt_ms(char *buf, size_t len, uint64_t ns)
{
    int n;

    if (ns >= 10 * NS_PER_MS) {
        n = snprintf(buf, len, "%" PRIu64, ns / NS_PER_MS);
    } else {
        uint64_t x = ns / NS_PER_US;
        int dec = 3;             /* decimals; x / 10^dec is the value in ms */
        uint64_t scale = 1000;   /* 10^dec */

        while (x >= 100 && dec > 0) {
            x /= 10;
            dec--;
            scale /= 10;
        }
        if (x == 0)
            n = snprintf(buf, len, "0");
        else if (dec == 0)
            n = snprintf(buf, len, "%" PRIu64, x);
        else
            n = snprintf(buf, len, "%" PRIu64 ".%0*" PRIu64, x / scale, dec, x % scale);
    }
    return n < 0 ? 0 : (size_t)n;
}

/* The whole line, '\n' included, with snprintf's contract: at most len bytes are
 * stored, NUL-terminated when len > 0, and the return value is the full length, so
 * a result >= len means the line was cut. */
size_t trace_format_gctrace(char *buf, size_t len, const struct gc_cycle_info *ci,
                            unsigned cpu_percent)
{
    /* Each duration is formatted on its own first; 24 bytes hold any uint64_t. */
    char clk[3][24], cpu[5][24];
    const uint64_t clk_ns[3] = { ci->sweep_term_ns, ci->mark_ns, ci->mark_term_ns };
    const uint64_t cpu_ns[5] = { ci->stw1_cpu_ns, ci->assist_cpu_ns, ci->background_cpu_ns,
                                 ci->idle_cpu_ns, ci->stw2_cpu_ns };
    for (int i = 0; i < 3; i++)
        trace_fmt_ms(clk[i], sizeof clk[i], clk_ns[i]);
    for (int i = 0; i < 5; i++)
        trace_fmt_ms(cpu[i], sizeof cpu[i], cpu_ns[i]);

    /* Seconds with exactly three decimals, truncated like the durations. */
    uint64_t start_ms = ci->start_ns / NS_PER_MS;

    int n = snprintf(buf, len,
                     "gc %" PRIu32 " @%" PRIu64 ".%03" PRIu64 "s %u%%: "
                     "%s+%s+%s ms clock, %s+%s/%s/%s+%s ms cpu, "
                     "%" PRIu64 "->%" PRIu64 "->%" PRIu64 " MB, %" PRIu64 " MB goal, "
                     "%" PRIu64 " MB stacks, %" PRIu64 " MB globals, %" PRIu32 " P%s\n",
                     ci->num, start_ms / 1000, start_ms % 1000, cpu_percent,
                     clk[0], clk[1], clk[2], cpu[0], cpu[1], cpu[2], cpu[3], cpu[4],
                     ci->heap_start >> 20, ci->heap_end >> 20, ci->heap_live >> 20,
                     ci->heap_goal >> 20, ci->stacks_scanned >> 20,
                     ci->globals_scanned >> 20, ci->procs, ci->forced ? " (forced)" : "");
    return n < 0 ? 0 : (size_t)n;
}

/* One write(2) for the whole line: stdio's stderr is unbuffered and could split it,
 * and a single write of under PIPE_BUF bytes is never interleaved with another
 * thread's line on a pipe.  A partial write (a full disk, a signal) is finished with
 * further writes; EINTR retries.  errno is left as the caller had it. */
void trace_cycle(const struct gc_cycle_info *ci, unsigned cpu_percent)
{
    char line[TRACE_LINE_MAX];
    size_t n = trace_format_gctrace(line, sizeof line, ci, cpu_percent);
    trace_write(line, n < sizeof line ? n : sizeof line - 1);
}

void trace_write(const char *line, size_t n)
{
    int saved_errno = errno;
    const char *p = line;
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;               /* stderr closed or broken: nothing better to do */
        p += w;
        n -= (size_t)w;
    }
    errno = saved_errno;
}
