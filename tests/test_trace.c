/* test_trace.c - unit tests for gc/trace.c: the gctrace duration format, the whole
 * line against fixed cycle records and Go's parsing regex, truncation into short
 * buffers, and trace_cycle's single write to fd 2 from several threads at once.
 */
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The regex from doc/api.md that parses Go's gctrace lines (without the '\n'). */
static const char GO_GCTRACE_RE[] =
    "^gc ([0-9]+) @([0-9]+\\.[0-9]{3})s ([0-9]+)%: ([0-9.]+)\\+([0-9.]+)\\+([0-9.]+) "
    "ms clock, ([0-9.]+)\\+([0-9.]+)/([0-9.]+)/([0-9.]+)\\+([0-9.]+) ms cpu, "
    "([0-9]+)->([0-9]+)->([0-9]+) MB, ([0-9]+) MB goal, ([0-9]+) MB stacks, "
    "([0-9]+) MB globals, ([0-9]+) P( \\(forced\\))?$";

#define MS UINT64_C(1000000)
#define US UINT64_C(1000)
#define MiB (UINT64_C(1) << 20)
#define TRACE_TEST_BUF 512          /* larger than any gctrace line */

/* The cycle of the example line in doc/api.md. */
static struct gc_cycle_info example_cycle(void)
{
    struct gc_cycle_info ci = {
        .num = 7,
        .forced = false,
        .start_ns = 1042 * MS + 999999,      /* truncated to 1.042 */
        .sweep_term_ns = 21 * US + 999,      /* 0.021 */
        .mark_ns = 1 * MS + 399 * US,        /* 1.3 */
        .mark_term_ns = 34 * US,             /* 0.034 */
        .stw1_cpu_ns = 42 * US,              /* 0.042 */
        .assist_cpu_ns = 200 * US + 500,     /* 0.20 */
        .background_cpu_ns = 1 * MS + 150 * US, /* 1.1 */
        .idle_cpu_ns = 999,                  /* 0 */
        .stw2_cpu_ns = 68 * US,              /* 0.068 */
        .heap_start = 4 * MiB + 12345,
        .heap_end = 5 * MiB + MiB - 1,
        .heap_live = 2 * MiB,
        .heap_goal = 5 * MiB + 7,
        .stacks_scanned = 64 * 1024,
        .globals_scanned = MiB - 1,
        .procs = 2,
    };
    return ci;
}

static const char EXAMPLE_LINE[] =
    "gc 7 @1.042s 3%: 0.021+1.3+0.034 ms clock, 0.042+0.20/1.1/0+0.068 ms cpu, "
    "4->5->2 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 2 P\n";

/* True if line (one gctrace line, '\n'-terminated) matches Go's regex.  The regex
 * is compiled once per test process (Check forks one per test) and kept. */
static bool matches_go_regex(const char *line)
{
    static regex_t re;
    static bool compiled;
    if (!compiled) {
        ck_assert_int_eq(regcomp(&re, GO_GCTRACE_RE, REG_EXTENDED | REG_NOSUB), 0);
        compiled = true;
    }

    char copy[TRACE_TEST_BUF];
    size_t n = strlen(line);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_lt(n, sizeof copy);
    ck_assert_int_eq(line[n - 1], '\n');
    memcpy(copy, line, n - 1);
    copy[n - 1] = '\0';
    return regexec(&re, copy, 0, NULL, 0) == 0;
}

/* ---- trace_fmt_ms ----------------------------------------------------------- */
static const struct {
    uint64_t ns;
    const char *want;
} ms_cases[] = {
    { 0, "0" },
    { 999, "0" },                       /* under 1 us */
    { 1 * US, "0.001" },
    { 1 * US + 999, "0.001" },          /* truncated, not rounded */
    { 6 * US, "0.006" },
    { 21 * US, "0.021" },
    { 98 * US, "0.098" },
    { 99 * US, "0.099" },
    { 99 * US + 999, "0.099" },
    { 100 * US, "0.10" },               /* two significant digits from here on */
    { 101 * US, "0.10" },
    { 980 * US, "0.98" },
    { 999 * US + 999, "0.99" },
    { 1 * MS, "1.0" },
    { 1 * MS + 300 * US, "1.3" },
    { 1 * MS + 399 * US, "1.3" },
    { 9 * MS + 990 * US, "9.9" },
    { 10 * MS - 1, "9.9" },
    { 10 * MS, "10" },                  /* whole ms from 10 ms on */
    { 13 * MS + 700 * US, "13" },
    { 99 * MS + 999999, "99" },
    { 100 * MS, "100" },
    { 1234 * MS, "1234" },
    { 1234 * MS + 999999, "1234" },
    { UINT64_MAX, "18446744073709" },
};

START_TEST(fmt_ms_values)
{
    const uint64_t ns = ms_cases[_i].ns;
    const char *want = ms_cases[_i].want;
    char buf[32];
    memset(buf, 'x', sizeof buf);
    size_t n = trace_fmt_ms(buf, sizeof buf, ns);
    ck_assert_msg(strcmp(buf, want) == 0, "trace_fmt_ms(%" PRIu64 ") = \"%s\", want \"%s\"",
                  ns, buf, want);
    ck_assert_uint_eq(n, strlen(want));
}
END_TEST

START_TEST(fmt_ms_short_buffer)
{
    /* 1.3 ms -> "1.3": every shorter buffer gets a NUL-terminated prefix and the
     * full length back; nothing past len is touched. */
    for (size_t len = 0; len <= 5; len++) {
        char buf[8];
        memset(buf, 'x', sizeof buf);
        size_t n = trace_fmt_ms(len ? buf : NULL, len, 1 * MS + 300 * US);
        ck_assert_uint_eq(n, 3);
        if (len > 0) {
            size_t kept = len - 1 < 3 ? len - 1 : 3;
            ck_assert_int_eq(strncmp(buf, "1.3", kept), 0);
            ck_assert_int_eq(buf[kept], '\0');
        }
        for (size_t i = len; i < sizeof buf; i++)
            ck_assert_int_eq(buf[i], 'x');
    }
}
END_TEST

/* ---- trace_format_gctrace --------------------------------------------------- */
START_TEST(format_example_line)
{
    struct gc_cycle_info ci = example_cycle();
    char buf[TRACE_TEST_BUF];
    size_t n = trace_format_gctrace(buf, sizeof buf, &ci, 3);
    ck_assert_str_eq(buf, EXAMPLE_LINE);
    ck_assert_uint_eq(n, strlen(EXAMPLE_LINE));
    ck_assert(matches_go_regex(buf));
}
END_TEST

START_TEST(format_forced_line)
{
    struct gc_cycle_info ci = {
        .num = 123456,
        .forced = true,
        .start_ns = UINT64_C(3723) * 1000 * MS + 5 * MS + 999999, /* 3723.005 s */
        .sweep_term_ns = 6 * US,
        .mark_ns = 250 * MS + 1,
        .mark_term_ns = 10 * MS,
        .stw1_cpu_ns = 48 * US,
        .assist_cpu_ns = 0,
        .background_cpu_ns = 1999 * MS,
        .idle_cpu_ns = 9 * MS + 999 * US,
        .stw2_cpu_ns = 80 * MS + 5,
        .heap_start = UINT64_C(1536) * MiB,
        .heap_end = UINT64_C(1600) * MiB + 1,
        .heap_live = 700 * MiB,
        .heap_goal = UINT64_C(1400) * MiB,
        .stacks_scanned = 3 * MiB + 5,
        .globals_scanned = 17 * MiB,
        .procs = 8,
    };
    char buf[TRACE_TEST_BUF];
    trace_format_gctrace(buf, sizeof buf, &ci, 41);
    ck_assert_str_eq(buf,
                     "gc 123456 @3723.005s 41%: 0.006+250+10 ms clock, "
                     "0.048+0/1999/9.9+80 ms cpu, 1536->1600->700 MB, 1400 MB goal, "
                     "3 MB stacks, 17 MB globals, 8 P (forced)\n");
    ck_assert(matches_go_regex(buf));
}
END_TEST

START_TEST(format_start_seconds)
{
    /* Seconds keep exactly three decimals, zero-padded and truncated. */
    static const struct {
        uint64_t ns;
        const char *want;
    } cases[] = {
        { 0, "@0.000s" },
        { 999999, "@0.000s" },
        { 1 * MS, "@0.001s" },
        { 50 * MS, "@0.050s" },
        { 999 * MS + 999999, "@0.999s" },
        { 1000 * MS, "@1.000s" },
        { 61 * 1000 * MS + 7 * MS, "@61.007s" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gc_cycle_info ci = example_cycle();
        ci.start_ns = cases[i].ns;
        char buf[TRACE_TEST_BUF];
        trace_format_gctrace(buf, sizeof buf, &ci, 0);
        ck_assert_msg(strstr(buf, cases[i].want) != NULL, "start %" PRIu64 ": %s",
                      cases[i].ns, buf);
        ck_assert(matches_go_regex(buf));
    }
}
END_TEST

START_TEST(format_extremes_match_regex)
{
    struct gc_cycle_info zero = { 0 };
    struct gc_cycle_info max;
    memset(&max, 0xff, sizeof max);
    max.forced = true;
    char buf[TRACE_TEST_BUF];

    size_t n = trace_format_gctrace(buf, sizeof buf, &zero, 0);
    ck_assert_str_eq(buf, "gc 0 @0.000s 0%: 0+0+0 ms clock, 0+0/0/0+0 ms cpu, "
                          "0->0->0 MB, 0 MB goal, 0 MB stacks, 0 MB globals, 0 P\n");
    ck_assert(matches_go_regex(buf));

    n = trace_format_gctrace(buf, sizeof buf, &max, UINT_MAX);
    ck_assert_uint_lt(n, sizeof buf);
    ck_assert_uint_eq(n, strlen(buf));
    ck_assert(matches_go_regex(buf));
    ck_assert_ptr_nonnull(strstr(buf, "gc 4294967295 @18446744073.709s 4294967295%: "
                                      "18446744073709+"));
    ck_assert_ptr_nonnull(strstr(buf, ", 17592186044415 MB goal, "));
    ck_assert_ptr_nonnull(strstr(buf, " 4294967295 P (forced)\n"));

    /* Every duration from 0 to 20 ms in 1 us steps (and a few beyond) stays
     * within the regex's number syntax in every position. */
    struct gc_cycle_info ci = example_cycle();
    for (uint64_t ns = 0; ns <= 20 * MS; ns += 997) {
        ci.sweep_term_ns = ci.mark_ns = ci.mark_term_ns = ns;
        ci.stw1_cpu_ns = ci.assist_cpu_ns = ci.background_cpu_ns = ns;
        ci.idle_cpu_ns = ci.stw2_cpu_ns = ns;
        ci.forced = (ns / 997) % 2;
        trace_format_gctrace(buf, sizeof buf, &ci, (unsigned)(ns % 101));
        ck_assert_msg(matches_go_regex(buf), "no match: %s", buf);
    }
}
END_TEST

START_TEST(format_truncates_safely)
{
    struct gc_cycle_info ci = example_cycle();
    const size_t full = strlen(EXAMPLE_LINE);

    ck_assert_uint_eq(trace_format_gctrace(NULL, 0, &ci, 3), full);
    for (size_t len = 1; len <= full + 2; len++) {
        char buf[TRACE_TEST_BUF];
        memset(buf, 'x', sizeof buf);
        size_t n = trace_format_gctrace(buf, len, &ci, 3);
        ck_assert_uint_eq(n, full);                 /* full length, as snprintf */
        size_t kept = len - 1 < full ? len - 1 : full;
        ck_assert_int_eq(memcmp(buf, EXAMPLE_LINE, kept), 0);
        ck_assert_int_eq(buf[kept], '\0');
        for (size_t i = len; i < sizeof buf; i++)   /* nothing written past len */
            ck_assert_int_eq(buf[i], 'x');
    }
}
END_TEST

/* ---- trace_cycle ------------------------------------------------------------ */
/* Points fd 2 at a pipe for the duration of a test; fd 2 is restored afterwards so
 * the tests also work under CK_FORK=no. */
struct capture {
    int saved_fd2;
    int rd;
    char *data;
    size_t len, cap;
};

static void capture_begin(struct capture *c)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    c->saved_fd2 = dup(STDERR_FILENO);
    ck_assert_int_ge(c->saved_fd2, 0);
    ck_assert_int_ge(dup2(p[1], STDERR_FILENO), 0);
    close(p[1]);
    c->rd = p[0];
    c->data = NULL;
    c->len = c->cap = 0;
}

/* Reads the pipe until every writer is gone (fd 2 restored, threads joined). */
static void *capture_drain(void *arg)
{
    struct capture *c = arg;
    for (;;) {
        if (c->cap - c->len < 4096) {
            c->cap = c->cap ? 2 * c->cap : 65536;
            c->data = realloc(c->data, c->cap + 1);
            if (!c->data)
                abort();
        }
        ssize_t r = read(c->rd, c->data + c->len, c->cap - c->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        c->len += (size_t)r;
    }
    c->data[c->len] = '\0';
    return NULL;
}

static void capture_restore_fd2(struct capture *c)
{
    ck_assert_int_ge(dup2(c->saved_fd2, STDERR_FILENO), 0);
    close(c->saved_fd2);
}

START_TEST(cycle_writes_one_line)
{
    struct gc_cycle_info ci = example_cycle();
    struct capture c;
    pthread_t reader;

    capture_begin(&c);
    ck_assert_int_eq(pthread_create(&reader, NULL, capture_drain, &c), 0);
    errno = 1234;
    trace_cycle(&ci, 3);
    ck_assert_int_eq(errno, 1234);                  /* errno preserved */
    capture_restore_fd2(&c);
    ck_assert_int_eq(pthread_join(reader, NULL), 0);
    close(c.rd);

    ck_assert_str_eq(c.data, EXAMPLE_LINE);
    free(c.data);
}
END_TEST

#define WRITERS 4
#define LINES_PER_WRITER 500

static void *writer_main(void *arg)
{
    struct gc_cycle_info ci = example_cycle();
    ci.procs = (uint32_t)(uintptr_t)arg;          /* tells the writers apart */
    for (uint32_t i = 0; i < LINES_PER_WRITER; i++) {
        ci.num = i;
        ci.forced = i % 3 == 0;
        trace_cycle(&ci, (unsigned)(uintptr_t)arg);
    }
    return NULL;
}

START_TEST(cycle_lines_never_interleave)
{
    struct capture c;
    pthread_t reader, writers[WRITERS];

    capture_begin(&c);
    ck_assert_int_eq(pthread_create(&reader, NULL, capture_drain, &c), 0);
    for (uintptr_t w = 0; w < WRITERS; w++)
        ck_assert_int_eq(pthread_create(&writers[w], NULL, writer_main, (void *)(w + 1)), 0);
    for (int w = 0; w < WRITERS; w++)
        ck_assert_int_eq(pthread_join(writers[w], NULL), 0);
    capture_restore_fd2(&c);
    ck_assert_int_eq(pthread_join(reader, NULL), 0);
    close(c.rd);

    /* Every line is whole and each writer's lines arrive in order. */
    uint32_t next[WRITERS + 1] = { 0 };
    size_t lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(c.data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char withnl[TRACE_TEST_BUF];
        snprintf(withnl, sizeof withnl, "%s\n", line);
        ck_assert_msg(matches_go_regex(withnl), "interleaved: %s", line);
        unsigned num, pct, procs;
        ck_assert_int_eq(sscanf(line, "gc %u @%*s %u%%", &num, &pct), 2);
        const char *p = strstr(line, " MB globals, ");
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(sscanf(p, " MB globals, %u P", &procs), 1);
        ck_assert_uint_eq(pct, procs);
        ck_assert_uint_ge(procs, 1);
        ck_assert_uint_le(procs, WRITERS);
        ck_assert_uint_eq(num, next[procs]);
        next[procs]++;
        lines++;
    }
    ck_assert_uint_eq(lines, WRITERS * LINES_PER_WRITER);
    free(c.data);
}
END_TEST

static Suite *trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *tc = tcase_create("fmt_ms");
    tcase_add_loop_test(tc, fmt_ms_values, 0, (int)(sizeof ms_cases / sizeof ms_cases[0]));
    tcase_add_test(tc, fmt_ms_short_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("format");
    tcase_add_test(tc, format_example_line);
    tcase_add_test(tc, format_forced_line);
    tcase_add_test(tc, format_start_seconds);
    tcase_add_test(tc, format_extremes_match_regex);
    tcase_add_test(tc, format_truncates_safely);
    suite_add_tcase(s, tc);

    tc = tcase_create("cycle");
    tcase_add_test(tc, cycle_writes_one_line);
    tcase_add_test(tc, cycle_lines_never_interleave);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(trace_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
