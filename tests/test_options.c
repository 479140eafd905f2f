/* test_options.c - unit tests for gc/options.c: GCPERCENT, GCMEMLIMIT, GCPROCS, GCDEBUG.
 *
 * The environment is a table read by a fake get function, and err is captured with
 * open_memstream, so each test checks both the settings and the exact number of lines
 * printed.  If TRICOLOR_OPTIONS_MD names doc/options.md, it must contain
 * opt_write_markdown's output byte for byte.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#endif

#include "options.h"

#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NCPU 2 /* what every test passes to opt_defaults */

/* ---- the fake environment and captured err ----------------------------------------- */

struct var {
    const char *name, *value;
};

static const struct var *fake_env; /* ends with {NULL, NULL} */

static const char *fake_get(const char *name)
{
    for (const struct var *v = fake_env; v && v->name; v++)
        if (strcmp(v->name, name) == 0)
            return v->value;
    return NULL;
}

static char err_text[8192]; /* what the last parse printed */
static size_t err_len;
static int err_lines; /* '\n' count in err_text */

/* opt_defaults(o, NCPU), then opt_parse over env, capturing err. */
static int parse_env(struct gc_options *o, const struct var *env)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *err = open_memstream(&buf, &len);
    ck_assert(err != NULL);
    opt_defaults(o, NCPU);
    fake_env = env;
    int bad = opt_parse(o, fake_get, err);
    fake_env = NULL;
    ck_assert_int_eq(fclose(err), 0);
    ck_assert_uint_lt(len, sizeof err_text);
    memcpy(err_text, buf, len);
    err_text[len] = '\0';
    err_len = len;
    free(buf);
    err_lines = 0;
    for (size_t i = 0; i < err_len; i++)
        err_lines += err_text[i] == '\n';
    return bad;
}

/* One variable set, the others unset. */
static int parse_one(struct gc_options *o, const char *name, const char *value)
{
    const struct var env[] = {{name, value}, {NULL, NULL}};
    return parse_env(o, env);
}

static bool contains(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
    if (nlen == 0)
        return true;
    for (size_t i = 0; i + nlen <= hlen; i++)
        if (memcmp(hay + i, needle, nlen) == 0)
            return true;
    return false;
}

static bool err_has(const char *needle)
{
    return contains(err_text, err_len, needle, strlen(needle));
}

/* The captured err is exactly one line, starting "tricolor: ", naming name, and
 * containing each of the other strings. */
static void check_one_line(const char *name, const char *has1, const char *has2)
{
    ck_assert_msg(err_lines == 1 && err_len > 0 && err_text[err_len - 1] == '\n',
                  "expected exactly one line, got %d: <%s>", err_lines, err_text);
    ck_assert_msg(strncmp(err_text, "tricolor: ", 10) == 0, "no prefix: %s", err_text);
    ck_assert_msg(err_has(name), "%s not named: %s", name, err_text);
    if (has1)
        ck_assert_msg(err_has(has1), "\"%s\" not in: %s", has1, err_text);
    if (has2)
        ck_assert_msg(err_has(has2), "\"%s\" not in: %s", has2, err_text);
}

static void check_silent(int bad)
{
    ck_assert_int_eq(bad, 0);
    ck_assert_msg(err_len == 0, "unexpected output: %s", err_text);
}

/* Every GCDEBUG key at its default. */
static void check_keys_default(const struct gc_options *o)
{
#define CHECK_KEY_(key, def, lo, hi, doc) ck_assert_msg(o->key == (def), #key " is %d", o->key);
    OPT_DEBUG_KEYS(CHECK_KEY_)
#undef CHECK_KEY_
}

/* Every field equal to the defaults with NCPU CPUs. */
static void check_defaults(const struct gc_options *o)
{
    ck_assert_int_eq(o->percent, 100);
    ck_assert(o->memory_limit == INT64_MAX);
    ck_assert_int_eq(o->procs, NCPU);
    ck_assert(!o->debug_set);
    check_keys_default(o);
}

/* ---- defaults ----------------------------------------------------------------------- */

START_TEST(test_defaults)
{
    struct gc_options o;
    memset(&o, 0x5a, sizeof o);
    opt_defaults(&o, NCPU);
    check_defaults(&o);
    /* spelled out, in case the table and the header comments drift */
    ck_assert_int_eq(o.gctrace, 0);
    ck_assert_int_eq(o.gcstoptheworld, 0);
    ck_assert_int_eq(o.stopsignal, 30);
    ck_assert_int_eq(o.resumesignal, 24);
    ck_assert_int_eq(o.stoptimeout, 5000);

    opt_defaults(&o, 1);
    ck_assert_int_eq(o.procs, 1);
    opt_defaults(&o, 64);
    ck_assert_int_eq(o.procs, 64);
    opt_defaults(&o, 0); /* sysconf failed */
    ck_assert_int_eq(o.procs, 1);
    opt_defaults(&o, -1);
    ck_assert_int_eq(o.procs, 1);
    opt_defaults(&o, 5000);
    ck_assert_int_eq(o.procs, 1024);
}
END_TEST

START_TEST(test_global_starts_at_defaults)
{
    ck_assert_int_eq(opt.percent, 100);
    ck_assert(opt.memory_limit == INT64_MAX);
    ck_assert_int_ge(opt.procs, 1);
    ck_assert(!opt.debug_set);
    ck_assert_int_eq(opt.stoptimeout, 5000);
    ck_assert_int_eq(opt.stopsignal, 30);
}
END_TEST

START_TEST(test_nothing_set)
{
    struct gc_options o;
    const struct var env[] = {{"GOGC", "50"}, {"GCPERCENTX", "x"}, {NULL, NULL}};
    check_silent(parse_env(&o, env));
    check_defaults(&o);
}
END_TEST

START_TEST(test_all_valid_together)
{
    struct gc_options o;
    const struct var env[] = {{"GCPERCENT", "200"},
                              {"GCMEMLIMIT", "64MiB"},
                              {"GCPROCS", "3"},
                              {"GCDEBUG", "gctrace=1"},
                              {NULL, NULL}};
    check_silent(parse_env(&o, env));
    ck_assert_int_eq(o.percent, 200);
    ck_assert(o.memory_limit == 64 << 20);
    ck_assert_int_eq(o.procs, 3);
    ck_assert(o.debug_set);
    ck_assert_int_eq(o.gctrace, 1);
    ck_assert_int_eq(o.stoptimeout, 5000);
}
END_TEST

/* ---- GCPERCENT ---------------------------------------------------------------------- */

static const struct {
    const char *s;
    int want;
} percent_ok[] = {
    {"100", 100},     {"0", 0},           {"1", 1},           {"+50", 50},
    {"007", 7},       {"-0", 0},          {"-1", -1},         {"-100", -1},
    {"off", -1},      {"OFF", -1},        {"Off", -1},        {"oFf", -1},
    {"2147483647", INT_MAX},              {"-2147483648", -1}, {"100000", 100000},
};

START_TEST(test_percent_valid)
{
    struct gc_options o;
    check_silent(parse_one(&o, "GCPERCENT", percent_ok[_i].s));
    ck_assert_msg(o.percent == percent_ok[_i].want, "GCPERCENT=%s gave %d", percent_ok[_i].s,
                  o.percent);
    ck_assert(o.memory_limit == INT64_MAX);
    ck_assert_int_eq(o.procs, NCPU);
}
END_TEST

static const char *const percent_bad[] = {
    "",    "abc", "12x", " 1",  "1 ",   "+",   "-",   "--1",        "+-1",        "1.5",
    "1e3", "0x10", "of", "offf", "off ", "on",  "100%", "2147483648", "-2147483649",
    "99999999999999999999", "-99999999999999999999",
};

START_TEST(test_percent_malformed)
{
    struct gc_options o;
    const char *s = percent_bad[_i];
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", s);
    ck_assert_int_eq(parse_one(&o, "GCPERCENT", s), 1);
    check_one_line("GCPERCENT", quoted, "default 100");
    ck_assert_int_eq(o.percent, 100);
}
END_TEST

START_TEST(test_percent_malformed_keeps_current)
{
    /* "the default" is whatever o held: here off, from an earlier parse */
    struct gc_options o;
    opt_defaults(&o, NCPU);
    o.percent = -1;
    const struct var env[] = {{"GCPERCENT", "x"}, {NULL, NULL}};
    fake_env = env;
    ck_assert_int_eq(opt_parse(&o, fake_get, NULL), 1); /* NULL err: count, print nothing */
    fake_env = NULL;
    ck_assert_int_eq(o.percent, -1);
}
END_TEST

/* ---- GCMEMLIMIT and opt_parse_size -------------------------------------------------- */

static const struct {
    const char *s;
    int64_t want;
} size_ok[] = {
    {"0", 0},
    {"1", 1},
    {"0B", 0},
    {"1B", 1},
    {"1024", 1024},
    {"1KiB", 1024},
    {"0KiB", 0},
    {"512MiB", INT64_C(512) << 20},
    {"3GiB", INT64_C(3) << 30},
    {"2TiB", INT64_C(2) << 40},
    {"000001MiB", INT64_C(1) << 20},
    {"9223372036854775807", INT64_MAX},
    {"9223372036854775807B", INT64_MAX},
    {"00009223372036854775807", INT64_MAX},
    {"9007199254740991KiB", INT64_C(9007199254740991) << 10}, /* (2^63 - 1) >> 10 */
    {"8589934591GiB", INT64_C(8589934591) << 30},
    {"8388607TiB", INT64_C(8388607) << 40},
};

START_TEST(test_size_valid)
{
    int64_t v = -42;
    ck_assert_msg(opt_parse_size(size_ok[_i].s, &v) == 0, "%s rejected", size_ok[_i].s);
    ck_assert_msg(v == size_ok[_i].want, "%s gave %jd", size_ok[_i].s, (intmax_t)v);

    struct gc_options o;
    check_silent(parse_one(&o, "GCMEMLIMIT", size_ok[_i].s));
    ck_assert(o.memory_limit == size_ok[_i].want);
    ck_assert_int_eq(o.percent, 100);
}
END_TEST

static const char *const size_bad[] = {
    "",
    "-1",
    "+1",
    "-0",
    " 1",
    "1 ",
    "1 MiB",
    "12XB",
    "1K",
    "1KB",
    "1kib",
    "1KIB",
    "1mib",
    "1Mib",
    "1PiB",
    "1EiB",
    "1MiBB",
    "1BB",
    "B",
    "MiB",
    "1.5GiB",
    "0x10",
    "1e9",
    "on",
    "9223372036854775808",  /* 2^63 */
    "9223372036854775808B",
    "18446744073709551616", /* 2^64: wraps to 0 if unchecked */
    "99999999999999999999999",
    "9007199254740992KiB",  /* 2^63 exactly */
    "8589934592GiB",        /* 2^63 exactly */
    "17179869184GiB",       /* 2^64: wraps to 0 if unchecked */
    "8388608TiB",           /* 2^63 exactly */
    "16777216TiB",          /* 2^64 */
    "99999999999999999999TiB",
};

START_TEST(test_size_malformed)
{
    const char *s = size_bad[_i];
    int64_t v = -42;
    ck_assert_msg(opt_parse_size(s, &v) == -1, "\"%s\" accepted", s);
    ck_assert_msg(v == -42, "\"%s\": *out written on failure", s);

    struct gc_options o;
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", s);
    ck_assert_int_eq(parse_one(&o, "GCMEMLIMIT", s), 1);
    check_one_line("GCMEMLIMIT", quoted, "no limit");
    ck_assert(o.memory_limit == INT64_MAX);
}
END_TEST

START_TEST(test_memlimit_off)
{
    static const char *const offs[] = {"off", "OFF", "Off"};
    struct gc_options o;
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        const struct var env[] = {{"GCMEMLIMIT", "1MiB"}, {NULL, NULL}};
        parse_env(&o, env);
        ck_assert(o.memory_limit == 1 << 20);
        /* off over a value that was set: back to no limit */
        fake_env = (const struct var[]){{"GCMEMLIMIT", offs[i]}, {NULL, NULL}};
        ck_assert_int_eq(opt_parse(&o, fake_get, NULL), 0);
        fake_env = NULL;
        ck_assert(o.memory_limit == INT64_MAX);
    }
    int64_t v = 7;
    ck_assert_int_eq(opt_parse_size("off", &v), -1); /* a size only: "off" is GCMEMLIMIT's */
    ck_assert_int_eq(opt_parse_size(NULL, &v), -1);
    ck_assert(v == 7);
}
END_TEST

/* ---- GCPROCS ------------------------------------------------------------------------ */

START_TEST(test_procs_valid)
{
    static const struct {
        const char *s;
        int want;
    } ok[] = {{"1", 1}, {"2", 2}, {"8", 8}, {"+8", 8}, {"064", 64}, {"1024", 1024}};
    struct gc_options o;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        check_silent(parse_one(&o, "GCPROCS", ok[i].s));
        ck_assert_msg(o.procs == ok[i].want, "GCPROCS=%s gave %d", ok[i].s, o.procs);
    }
}
END_TEST

static const char *const procs_bad[] = {
    "", "0", "-0", "-1", "-8", "1025", "4096", "x", "4 ", " 4", "4x", "0x4", "1.0",
    "off", "99999999999", "99999999999999999999",
};

START_TEST(test_procs_malformed)
{
    struct gc_options o;
    const char *s = procs_bad[_i];
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", s);
    ck_assert_int_eq(parse_one(&o, "GCPROCS", s), 1);
    check_one_line("GCPROCS", quoted, "1024");
    ck_assert_msg(err_has("default 2"), "default not named: %s", err_text);
    ck_assert_int_eq(o.procs, NCPU);
}
END_TEST

/* ---- GCDEBUG ------------------------------------------------------------------------ */

START_TEST(test_debug_one_key)
{
    struct gc_options o;
    check_silent(parse_one(&o, "GCDEBUG", "gctrace=1"));
    ck_assert(o.debug_set);
    ck_assert_int_eq(o.gctrace, 1);
    ck_assert_int_eq(o.gcpacertrace, 0);
    ck_assert_int_eq(o.stoptimeout, 5000);
    ck_assert_int_eq(o.percent, 100);
}
END_TEST

START_TEST(test_debug_several_keys)
{
    struct gc_options o;
    check_silent(parse_one(&o, "GCDEBUG",
                           "gctrace=2,gcpacertrace=1,stoptimeout=250,stopsignal=+10,resumesignal=012"));
    ck_assert(o.debug_set);
    ck_assert_int_eq(o.gctrace, 2);
    ck_assert_int_eq(o.gcpacertrace, 1);
    ck_assert_int_eq(o.stoptimeout, 250);
    ck_assert_int_eq(o.stopsignal, 10);
    ck_assert_int_eq(o.resumesignal, 12);
    ck_assert_int_eq(o.gcstoptheworld, 0);
    ck_assert_int_eq(o.gccheckmark, 0);
    ck_assert_int_eq(o.stwtrace, 0);
}
END_TEST

START_TEST(test_debug_empty_items_and_override)
{
    struct gc_options o;
    check_silent(parse_one(&o, "GCDEBUG", ",,gctrace=1,,,stwtrace=1,"));
    ck_assert_int_eq(o.gctrace, 1);
    ck_assert_int_eq(o.stwtrace, 1);

    check_silent(parse_one(&o, "GCDEBUG", "gctrace=1,gctrace=2,gctrace=0"));
    ck_assert_int_eq(o.gctrace, 0); /* the last one wins */
    ck_assert(o.debug_set);

    check_silent(parse_one(&o, "GCDEBUG", ","));
    ck_assert(o.debug_set); /* present and non-empty, though it sets nothing */
    check_keys_default(&o);

    check_silent(parse_one(&o, "GCDEBUG", ""));
    ck_assert(!o.debug_set);
    check_defaults(&o);
}
END_TEST

/* Every key from the table at its min and then its max, in one GCDEBUG string each. */
START_TEST(test_debug_every_key_bounds)
{
    struct debug_case {
        const char *name;
        int lo, hi;
    };
    static const struct debug_case keys[] = {
#define CASE_(key, def, lo, hi, doc) {#key, lo, hi},
        OPT_DEBUG_KEYS(CASE_)
#undef CASE_
    };
    for (int pass = 0; pass < 2; pass++) {
        char buf[1024] = "";
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            size_t n = strlen(buf);
            snprintf(buf + n, sizeof buf - n, "%s%s=%d", i ? "," : "", keys[i].name,
                     pass ? keys[i].hi : keys[i].lo);
        }
        struct gc_options o;
        check_silent(parse_one(&o, "GCDEBUG", buf));
        ck_assert(o.debug_set);
#define CHECK_(key, def, lo, hi, doc) ck_assert_int_eq(o.key, pass ? (hi) : (lo));
        OPT_DEBUG_KEYS(CHECK_)
#undef CHECK_
    }
}
END_TEST

START_TEST(test_debug_unknown_key)
{
    struct gc_options o;
    ck_assert_int_eq(parse_one(&o, "GCDEBUG", "foo=1"), 1);
    check_one_line("GCDEBUG", "\"foo\"", "unknown");
    ck_assert(o.debug_set);
    check_keys_default(&o);

    /* known keys around it still apply */
    ck_assert_int_eq(parse_one(&o, "GCDEBUG", "gctrace=1,foo=1,stwtrace=1"), 1);
    check_one_line("GCDEBUG", "\"foo\"", NULL);
    ck_assert_int_eq(o.gctrace, 1);
    ck_assert_int_eq(o.stwtrace, 1);

    /* keys are case-sensitive and not trimmed */
    ck_assert_int_eq(parse_one(&o, "GCDEBUG", "GCTRACE=1"), 1);
    check_one_line("GCDEBUG", "\"GCTRACE\"", NULL);
    ck_assert_int_eq(o.gctrace, 0);
    ck_assert_int_eq(parse_one(&o, "GCDEBUG", " gctrace=1"), 1);
    check_one_line("GCDEBUG", "\" gctrace\"", NULL);
    ck_assert_int_eq(o.gctrace, 0);
    ck_assert_int_eq(parse_one(&o, "GCDEBUG", "=1"), 1);
    check_one_line("GCDEBUG", "\"\"", NULL);
    ck_assert_int_eq(parse_one(&o, "GCDEBUG", "foo"), 1);
    check_one_line("GCDEBUG", "\"foo\"", NULL);
}
END_TEST

static const struct {
    const char *item, *key, *value;
    int def;
} debug_bad[] = {
    {"gctrace=3", "gctrace", "3", 0},
    {"gctrace=-1", "gctrace", "-1", 0},
    {"gctrace=x", "gctrace", "x", 0},
    {"gctrace=", "gctrace", "", 0},
    {"gctrace=1x", "gctrace", "1x", 0},
    {"gctrace= 1", "gctrace", " 1", 0},
    {"gctrace=1=2", "gctrace", "1=2", 0},
    {"gctrace=99999999999999999999", "gctrace", "99999999999999999999", 0},
    {"gcpacertrace=2", "gcpacertrace", "2", 0},
    {"stopsignal=0", "stopsignal", "0", 30},
    {"stopsignal=65", "stopsignal", "65", 30},
    {"resumesignal=SIGXCPU", "resumesignal", "SIGXCPU", 24},
    {"stoptimeout=0", "stoptimeout", "0", 5000},
    {"stoptimeout=3600001", "stoptimeout", "3600001", 5000},
    {"stoptimeout=4294967297", "stoptimeout", "4294967297", 5000}, /* 2^32 + 1 */
};

START_TEST(test_debug_bad_value)
{
    struct gc_options o;
    char want_kv[128], want_def[64];
    snprintf(want_kv, sizeof want_kv, "%s=\"%s\"", debug_bad[_i].key, debug_bad[_i].value);
    snprintf(want_def, sizeof want_def, "default %d", debug_bad[_i].def);
    ck_assert_int_eq(parse_one(&o, "GCDEBUG", debug_bad[_i].item), 1);
    check_one_line("GCDEBUG", want_kv, want_def);
    ck_assert(o.debug_set);
    check_keys_default(&o);
}
END_TEST

START_TEST(test_debug_bad_value_resets_to_default)
{
    struct gc_options o;
    ck_assert_int_eq(parse_one(&o, "GCDEBUG", "gctrace=2,stoptimeout=10,gctrace=x"), 1);
    check_one_line("GCDEBUG", "gctrace=\"x\"", "default 0");
    ck_assert_int_eq(o.gctrace, 0);
    ck_assert_int_eq(o.stoptimeout, 10);
}
END_TEST

START_TEST(test_debug_missing_value)
{
    struct gc_options o;
    ck_assert_int_eq(parse_one(&o, "GCDEBUG", "gctrace"), 1);
    check_one_line("GCDEBUG", "\"gctrace\"", NULL);
    ck_assert_int_eq(o.gctrace, 0);

    ck_assert_int_eq(parse_one(&o, "GCDEBUG", "gctrace=2,gctrace,stwtrace=1"), 1);
    check_one_line("GCDEBUG", "\"gctrace\"", NULL);
    ck_assert_int_eq(o.gctrace, 2); /* ignored: the earlier setting stands */
    ck_assert_int_eq(o.stwtrace, 1);
}
END_TEST

START_TEST(test_debug_several_errors)
{
    struct gc_options o;
    ck_assert_int_eq(parse_one(&o, "GCDEBUG", "foo=1,gctrace=9,,bar,stoptimeout=abc,gcpacertrace=1"),
                     4);
    ck_assert_int_eq(err_lines, 4);
    ck_assert(err_has("\"foo\""));
    ck_assert(err_has("gctrace=\"9\""));
    ck_assert(err_has("\"bar\""));
    ck_assert(err_has("stoptimeout=\"abc\""));
    ck_assert_int_eq(o.gcpacertrace, 1);
    ck_assert_int_eq(o.gctrace, 0);
    ck_assert_int_eq(o.stoptimeout, 5000);
    /* each line stands alone */
    for (const char *line = err_text; *line; line = strchr(line, '\n') + 1) {
        ck_assert_msg(strncmp(line, "tricolor: GCDEBUG", 17) == 0, "bad line: %s", line);
    }
}
END_TEST

/* ---- several variables, and what a message looks like ------------------------------ */

START_TEST(test_every_variable_malformed)
{
    struct gc_options o;
    const struct var env[] = {{"GCPERCENT", "abc"},
                              {"GCMEMLIMIT", "12XB"},
                              {"GCPROCS", "0"},
                              {"GCDEBUG", "gctrace=x"},
                              {NULL, NULL}};
    ck_assert_int_eq(parse_env(&o, env), 4);
    ck_assert_int_eq(err_lines, 4);
    ck_assert(err_has("tricolor: GCPERCENT=\"abc\""));
    ck_assert(err_has("tricolor: GCMEMLIMIT=\"12XB\""));
    ck_assert(err_has("tricolor: GCPROCS=\"0\""));
    ck_assert(err_has("tricolor: GCDEBUG: gctrace=\"x\""));
    o.debug_set = false;
    check_defaults(&o);
}
END_TEST

START_TEST(test_mixed_good_and_bad)
{
    struct gc_options o;
    const struct var env[] = {{"GCPERCENT", "off"},
                              {"GCMEMLIMIT", "1GiB "},
                              {"GCPROCS", "4"},
                              {"GCDEBUG", "stoptimeout=100,nope=1"},
                              {NULL, NULL}};
    ck_assert_int_eq(parse_env(&o, env), 2);
    ck_assert_int_eq(err_lines, 2);
    ck_assert(err_has("GCMEMLIMIT=\"1GiB \""));
    ck_assert(err_has("\"nope\""));
    ck_assert_int_eq(o.percent, -1);
    ck_assert(o.memory_limit == INT64_MAX);
    ck_assert_int_eq(o.procs, 4);
    ck_assert_int_eq(o.stoptimeout, 100);
}
END_TEST

START_TEST(test_message_is_one_safe_line)
{
    struct gc_options o;
    /* a newline in the value must not split the message */
    ck_assert_int_eq(parse_one(&o, "GCPERCENT", "1\n2"), 1);
    check_one_line("GCPERCENT", "\"1\\x0a2\"", NULL);
    ck_assert_int_eq(parse_one(&o, "GCDEBUG", "a\nb=1"), 1);
    check_one_line("GCDEBUG", "\"a\\x0ab\"", NULL);
    ck_assert_int_eq(parse_one(&o, "GCDEBUG", "gctrace=\r\n"), 1);
    check_one_line("GCDEBUG", "gctrace=\"\\x0d\\x0a\"", NULL);

    /* quotes and backslashes are escaped */
    ck_assert_int_eq(parse_one(&o, "GCPROCS", "\"4\"\\"), 1);
    check_one_line("GCPROCS", "\"\\\"4\\\"\\\\\"", NULL);

    /* a huge value is cut short */
    char big[4096];
    memset(big, '7', sizeof big - 2);
    big[sizeof big - 2] = 'x';
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(parse_one(&o, "GCMEMLIMIT", big), 1);
    check_one_line("GCMEMLIMIT", "...\"", "no limit");
    ck_assert_uint_lt(err_len, 400);
    ck_assert(o.memory_limit == INT64_MAX);

    /* and a cut never splits a UTF-8 character: 63 ASCII bytes, then 'é' on bytes 64-65 */
    char utf[80];
    memset(utf, 'a', 63);
    strcpy(utf + 63, "\xc3\xa9zzzzzzzz");
    ck_assert_int_eq(parse_one(&o, "GCPERCENT", utf), 1);
    ck_assert(!err_has("\xc3..."));
    ck_assert(err_has("a...\""));
}
END_TEST

/* ---- the documentation --------------------------------------------------------------- */

static char *markdown(size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    ck_assert(f != NULL);
    opt_write_markdown(f);
    ck_assert_int_eq(fclose(f), 0);
    return buf;
}

START_TEST(test_markdown_lists_everything)
{
    size_t len;
    char *md = markdown(&len);
    ck_assert_uint_gt(len, 0);
    ck_assert_int_eq(md[len - 1], '\n');
    static const char *const vars[] = {"`GCPERCENT`", "`GCMEMLIMIT`", "`GCPROCS`", "`GCDEBUG`",
                                       "`100`", "KiB", "TiB", "1024"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        ck_assert_msg(contains(md, len, vars[i], strlen(vars[i])), "%s missing", vars[i]);

    /* one table row per key, with its default, range and documentation */
    char row[512];
#define ROW_(key, def, lo, hi, doc)                                                      \
    snprintf(row, sizeof row, "| `%s` | %d | %d to %d | %s |\n", #key, def, lo, hi, doc); \
    ck_assert_msg(contains(md, len, row, strlen(row)), "no row: %s", row);
    OPT_DEBUG_KEYS(ROW_)
#undef ROW_

    /* rows: 2 header lines + 4 variables, 2 header lines + one per key */
    int rows = 0;
    for (size_t i = 0; i < len; i++)
        rows += md[i] == '|' && (i == 0 || md[i - 1] == '\n');
    int nkeys = 0;
#define COUNT_(key, def, lo, hi, doc) nkeys++;
    OPT_DEBUG_KEYS(COUNT_)
#undef COUNT_
    ck_assert_int_eq(rows, 2 + 4 + 2 + nkeys);
    free(md);
}
END_TEST

START_TEST(test_markdown_matches_doc)
{
    const char *path = getenv("TRICOLOR_OPTIONS_MD");
    if (!path || !*path) {
        printf("test_options: TRICOLOR_OPTIONS_MD is not set; not comparing doc/options.md\n");
        return;
    }
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *doc = NULL;
    size_t doclen = 0, cap = 0, n;
    do {
        if (doclen == cap) {
            cap = cap ? 2 * cap : 16384;
            doc = realloc(doc, cap);
            ck_assert(doc != NULL);
        }
        n = fread(doc + doclen, 1, cap - doclen, f);
        doclen += n;
    } while (n > 0);
    ck_assert(!ferror(f));
    fclose(f);

    size_t len;
    char *md = markdown(&len);
    ck_assert_msg(contains(doc, doclen, md, len),
                  "%s is out of date: regenerate its list with opt_write_markdown", path);
    free(md);
    free(doc);
}
END_TEST

/* ---- main ---------------------------------------------------------------------------- */

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *options_suite(void)
{
    Suite *s = suite_create("options");
    TCase *tc;

    tc = tcase_create("defaults");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_global_starts_at_defaults);
    tcase_add_test(tc, test_nothing_set);
    tcase_add_test(tc, test_all_valid_together);
    suite_add_tcase(s, tc);

    tc = tcase_create("GCPERCENT");
    tcase_add_loop_test(tc, test_percent_valid, 0, N(percent_ok));
    tcase_add_loop_test(tc, test_percent_malformed, 0, N(percent_bad));
    tcase_add_test(tc, test_percent_malformed_keeps_current);
    suite_add_tcase(s, tc);

    tc = tcase_create("GCMEMLIMIT");
    tcase_add_loop_test(tc, test_size_valid, 0, N(size_ok));
    tcase_add_loop_test(tc, test_size_malformed, 0, N(size_bad));
    tcase_add_test(tc, test_memlimit_off);
    suite_add_tcase(s, tc);

    tc = tcase_create("GCPROCS");
    tcase_add_test(tc, test_procs_valid);
    tcase_add_loop_test(tc, test_procs_malformed, 0, N(procs_bad));
    suite_add_tcase(s, tc);

    tc = tcase_create("GCDEBUG");
    tcase_add_test(tc, test_debug_one_key);
    tcase_add_test(tc, test_debug_several_keys);
    tcase_add_test(tc, test_debug_empty_items_and_override);
    tcase_add_test(tc, test_debug_every_key_bounds);
    tcase_add_test(tc, test_debug_unknown_key);
    tcase_add_loop_test(tc, test_debug_bad_value, 0, N(debug_bad));
    tcase_add_test(tc, test_debug_bad_value_resets_to_default);
    tcase_add_test(tc, test_debug_missing_value);
    tcase_add_test(tc, test_debug_several_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("messages");
    tcase_add_test(tc, test_every_variable_malformed);
    tcase_add_test(tc, test_mixed_good_and_bad);
    tcase_add_test(tc, test_message_is_one_safe_line);
    suite_add_tcase(s, tc);

    tc = tcase_create("markdown");
    tcase_add_test(tc, test_markdown_lists_everything);
    tcase_add_test(tc, test_markdown_matches_doc);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(options_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
