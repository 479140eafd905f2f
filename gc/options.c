/* options.c - the collector's settings: GCPERCENT, GCMEMLIMIT, GCPROCS and GCDEBUG.
 *
 * gc_init fills the global opt once (opt_defaults, then opt_parse over getenv).  A bad
 * value never stops the program: it costs one line on stderr and keeps its default.
 * The GCDEBUG keys come from options.h's table, which opt_write_markdown also documents.
 */
#include "options.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

enum {
    PERCENT_DEFAULT = 100,
    PROCS_MAX = 1024,
    QUOTE_MAX = 64, /* bytes of a bad value echoed in a message; longer ones are cut */
};

/* Each key's default lies within its range, and the range fits an int. */
#define OPT_CHECK_(key, def, lo, hi, doc)                                              \
    _Static_assert((lo) >= INT_MIN && (hi) <= INT_MAX && (lo) <= (def) && (def) <= (hi), \
                   "GCDEBUG key " #key ": default outside [min, max]");
OPT_DEBUG_KEYS(OPT_CHECK_)
#undef OPT_CHECK_

/* The defaults (with one CPU) until gc_init reads the environment. */
struct gc_options opt = {
    .percent = PERCENT_DEFAULT,
    .memory_limit = INT64_MAX,
    .procs = 1,
    .debug_set = false,
#define OPT_INIT_(key, def, lo, hi, doc) .key = (def),
    OPT_DEBUG_KEYS(OPT_INIT_)
#undef OPT_INIT_
};

struct debug_key {
    const char *name;
    int def, min, max;
    const char *doc;
    size_t offset; /* of the int field in struct gc_options */
};

static const struct debug_key debug_keys[] = {
#define OPT_KEY_(key, def, lo, hi, doc) {#key, (def), (lo), (hi), doc, offsetof(struct gc_options, key)},
    OPT_DEBUG_KEYS(OPT_KEY_)
#undef OPT_KEY_
};

#define NKEYS (sizeof debug_keys / sizeof debug_keys[0])

void opt_defaults(struct gc_options *o, int ncpu)
{
    *o = (struct gc_options){
        .percent = PERCENT_DEFAULT,
        .memory_limit = INT64_MAX,
        .procs = ncpu < 1 ? 1 : ncpu > PROCS_MAX ? PROCS_MAX : ncpu,
        .debug_set = false,
#define OPT_INIT_(key, def, lo, hi, doc) .key = (def),
        OPT_DEBUG_KEYS(OPT_INIT_)
#undef OPT_INIT_
    };
}

/* ---- parsing ------------------------------------------------------------------------ */

enum { PARSE_OK = 0, PARSE_SYNTAX = -1, PARSE_RANGE = -2 };

/* s[0..n) as a decimal integer, with an optional '+' or '-' if sign_ok.  Nothing else
 * is allowed: no spaces, no base prefix.  PARSE_RANGE if well-formed but outside
 * int64_t.  *out is written only on success. */
static int parse_int64(const char *s, size_t n, bool sign_ok, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (sign_ok && n > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n)
        return PARSE_SYNTAX;
    const uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    bool over = false;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return PARSE_SYNTAX; /* junk wins over overflow: keep scanning */
        unsigned d = (unsigned)(s[i] - '0');
        if (over || v > (limit - d) / 10)
            over = true;
        else
            v = v * 10 + d;
    }
    if (over)
        return PARSE_RANGE;
    if (!neg)
        *out = (int64_t)v;
    else if (v == (uint64_t)INT64_MAX + 1)
        *out = INT64_MIN;
    else
        *out = -(int64_t)v;
    return PARSE_OK;
}

/* The suffixes Go's GOMEMLIMIT takes, case-sensitive. */
static const struct {
    const char *name;
    unsigned shift;
} size_suffixes[] = {
    {"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40},
};

static int parse_size(const char *s, size_t n, int64_t *out)
{
    size_t digits = 0;
    while (digits < n && s[digits] >= '0' && s[digits] <= '9')
        digits++;
    if (digits == 0)
        return PARSE_SYNTAX;
    const char *suffix = s + digits;
    size_t slen = n - digits;
    for (size_t i = 0; i < sizeof size_suffixes / sizeof size_suffixes[0]; i++) {
        if (strlen(size_suffixes[i].name) != slen || memcmp(size_suffixes[i].name, suffix, slen))
            continue;
        int64_t v;
        int r = parse_int64(s, digits, false, &v);
        if (r != PARSE_OK)
            return r;
        if (v > (INT64_MAX >> size_suffixes[i].shift))
            return PARSE_RANGE;
        *out = v << size_suffixes[i].shift;
        return PARSE_OK;
    }
    return PARSE_SYNTAX;
}

int opt_parse_size(const char *s, int64_t *out)
{
    int64_t v;
    if (!s || parse_size(s, strlen(s), &v) != PARSE_OK)
        return -1;
    *out = v;
    return 0;
}

/* Whether the string s is "off", in any case. */
static bool is_off(const char *s)
{
    static const char off[] = "off";
    for (size_t i = 0; i < sizeof off; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != off[i])
            return false; /* also stops at s's NUL before reading past it */
    }
    return true;
}

/* ---- messages ----------------------------------------------------------------------- */

#define QUOTE_BUF (4 * QUOTE_MAX + 4)

/* s[0..n) made safe to print inside double quotes on one line: '"', '\\' and control
 * bytes escaped, and anything past QUOTE_MAX bytes cut (at a UTF-8 boundary) and
 * replaced by "...". */
static const char *quote(char buf[QUOTE_BUF], const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    bool cut = n > QUOTE_MAX;
    if (cut) {
        n = QUOTE_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf[j++] = '\\';
            buf[j++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            buf[j++] = '\\';
            buf[j++] = 'x';
            buf[j++] = hex[c >> 4];
            buf[j++] = hex[c & 15];
        } else {
            buf[j++] = (char)c;
        }
    }
    if (cut) {
        memcpy(buf + j, "...", 3);
        j += 3;
    }
    buf[j] = '\0';
    return buf;
}

/* One message, one line, one call into stdio so that it is not interleaved with other
 * threads' output.  err may be NULL to count without printing. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static void report(FILE *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(err, fmt, ap);
    va_end(ap);
}

/* ---- the variables ------------------------------------------------------------------ */

static int parse_percent(struct gc_options *o, const char *s, FILE *err)
{
    char q[QUOTE_BUF], def[24];
    int64_t v = -1;
    int r = is_off(s) ? PARSE_OK : parse_int64(s, strlen(s), true, &v);
    if (r == PARSE_OK && (v < INT_MIN || v > INT_MAX))
        r = PARSE_RANGE;
    if (r == PARSE_OK) {
        o->percent = v < 0 ? -1 : (int)v;
        return 0;
    }
    if (o->percent < 0)
        strcpy(def, "off");
    else
        snprintf(def, sizeof def, "%d", o->percent);
    if (r == PARSE_SYNTAX)
        report(err, "tricolor: GCPERCENT=\"%s\" is not a whole number or \"off\"; using the default %s\n",
               quote(q, s, strlen(s)), def);
    else
        report(err, "tricolor: GCPERCENT=\"%s\" does not fit in an int; using the default %s\n",
               quote(q, s, strlen(s)), def);
    return 1;
}

static int parse_memlimit(struct gc_options *o, const char *s, FILE *err)
{
    char q[QUOTE_BUF], def[48];
    int64_t v = INT64_MAX;
    int r = is_off(s) ? PARSE_OK : parse_size(s, strlen(s), &v);
    if (r == PARSE_OK) {
        o->memory_limit = v;
        return 0;
    }
    if (o->memory_limit == INT64_MAX)
        strcpy(def, "no limit");
    else
        snprintf(def, sizeof def, "the default %" PRId64 " bytes", o->memory_limit);
    if (r == PARSE_SYNTAX)
        report(err, "tricolor: GCMEMLIMIT=\"%s\" is not a size like 512MiB or \"off\"; using %s\n",
               quote(q, s, strlen(s)), def);
    else
        report(err, "tricolor: GCMEMLIMIT=\"%s\" is more than %" PRId64 " bytes; using %s\n",
               quote(q, s, strlen(s)), INT64_MAX, def);
    return 1;
}

static int parse_procs(struct gc_options *o, const char *s, FILE *err)
{
    char q[QUOTE_BUF];
    int64_t v;
    if (parse_int64(s, strlen(s), true, &v) == PARSE_OK && v >= 1 && v <= PROCS_MAX) {
        o->procs = (int)v;
        return 0;
    }
    report(err, "tricolor: GCPROCS=\"%s\" must be a whole number from 1 to %d; using the default %d\n",
           quote(q, s, strlen(s)), PROCS_MAX, o->procs);
    return 1;
}

static const struct debug_key *find_key(const char *s, size_t n)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strlen(debug_keys[i].name) == n && memcmp(debug_keys[i].name, s, n) == 0)
            return &debug_keys[i];
    return NULL;
}

/* One non-empty item s[0..n) of GCDEBUG.  A bad value sets the key to its default. */
static int parse_debug_item(struct gc_options *o, const char *s, size_t n, FILE *err)
{
    char q[QUOTE_BUF];
    const char *eq = memchr(s, '=', n);
    size_t klen = eq ? (size_t)(eq - s) : n;
    const struct debug_key *k = find_key(s, klen);
    if (!eq && k) {
        report(err, "tricolor: GCDEBUG: \"%s\" has no value (write %s=N, N from %d to %d); ignored\n",
               quote(q, s, n), k->name, k->min, k->max);
        return 1;
    }
    if (!k) {
        report(err, "tricolor: GCDEBUG: unknown key \"%s\"; ignored\n", quote(q, s, klen));
        return 1;
    }
    int *field = (int *)(void *)((char *)o + k->offset);
    const char *val = eq + 1;
    size_t vlen = n - klen - 1;
    int64_t v;
    if (parse_int64(val, vlen, true, &v) == PARSE_OK && v >= k->min && v <= k->max) {
        *field = (int)v;
        return 0;
    }
    *field = k->def;
    report(err, "tricolor: GCDEBUG: %s=\"%s\" must be a whole number from %d to %d; using the default %d\n",
           k->name, quote(q, val, vlen), k->min, k->max, k->def);
    return 1;
}

/* GCDEBUG: key=value items separated by commas; empty items are skipped and a later
 * item overrides an earlier one for the same key. */
static int parse_debug(struct gc_options *o, const char *s, FILE *err)
{
    int bad = 0;
    o->debug_set = *s != '\0';
    while (*s) {
        size_t n = strcspn(s, ",");
        if (n > 0)
            bad += parse_debug_item(o, s, n, err);
        s += n;
        if (*s == ',')
            s++;
    }
    return bad;
}

int opt_parse(struct gc_options *o, const char *(*get)(const char *name), FILE *err)
{
    int bad = 0;
    const char *s;
    if ((s = get("GCPERCENT")))
        bad += parse_percent(o, s, err);
    if ((s = get("GCMEMLIMIT")))
        bad += parse_memlimit(o, s, err);
    if ((s = get("GCPROCS")))
        bad += parse_procs(o, s, err);
    if ((s = get("GCDEBUG")))
        bad += parse_debug(o, s, err);
    return bad;
}

/* ---- documentation ------------------------------------------------------------------ */

/* s in a Markdown table cell: '|' would end the cell. */
static void put_cell(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', f);
        fputc(*s, f);
    }
}

void opt_write_markdown(FILE *f)
{
    fprintf(f,
            "## Environment variables\n"
            "\n"
            "| Variable | Default | Meaning |\n"
            "| --- | --- | --- |\n"
            "| `GCPERCENT` | `%d` | Start a collection when the heap has grown by this many "
            "percent over what the last collection left live, as Go's `GOGC`. `off` (in any "
            "case) or any negative number turns this trigger off. |\n"
            "| `GCMEMLIMIT` | `off` (no limit) | Soft limit on the heap, in bytes, as Go's "
            "`GOMEMLIMIT`: a whole number, optionally followed by `B`, `KiB`, `MiB`, `GiB` or "
            "`TiB` (case matters, no spaces), e.g. `512MiB`; at most %" PRId64 " bytes. `off` "
            "means no limit. |\n"
            "| `GCPROCS` | number of CPUs online (at most %d) | Most marker threads to use, a "
            "whole number from 1 to %d. |\n"
            "| `GCDEBUG` | empty | Debugging switches: comma-separated `key=value` items, e.g. "
            "`GCDEBUG=gctrace=1,stoptimeout=2000`. Values are whole numbers; a later item "
            "overrides an earlier one; an unknown key is reported and ignored. Keys below. |\n"
            "\n"
            "## GCDEBUG keys\n"
            "\n"
            "| Key | Default | Range | Meaning |\n"
            "| --- | ---: | --- | --- |\n",
            PERCENT_DEFAULT, INT64_MAX, PROCS_MAX, PROCS_MAX);
    for (size_t i = 0; i < NKEYS; i++) {
        const struct debug_key *k = &debug_keys[i];
        fprintf(f, "| `%s` | %d | %d to %d | ", k->name, k->def, k->min, k->max);
        put_cell(f, k->doc);
        fputs(" |\n", f);
    }
}
