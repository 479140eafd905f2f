/* options.h - the collector's settings, read once from the environment by gc_init.
 *
 * One table (the X-macro below) names every GCDEBUG key with its default, its range
 * and its one-line documentation; options.c parses from it and writes doc/options.md's
 * list from it, so the code and the documentation cannot drift apart.
 */
#ifndef TRICOLOR_OPTIONS_H
#define TRICOLOR_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/*      key              default  min  max         documentation */
#define OPT_DEBUG_KEYS(X)                                                                \
    X(gctrace,           0,       0,   2,          "print one line per cycle on stderr, in Go's gctrace format") \
    X(gcpacertrace,      0,       0,   1,          "print the pacer's state after each cycle") \
    X(scavtrace,         0,       0,   1,          "print a line for each round of the scavenger, which returns free pages to the OS") \
    X(gcstoptheworld,    0,       0,   2,          "mark with the world stopped (hosts without write barriers); 2 also sweeps eagerly") \
    X(gccheckmark,       0,       0,   1,          "verify each mark against a stop-the-world re-mark and report every object the barrier missed") \
    X(gcconcurrent,      1,       0,   1,          "mark and sweep while the program runs, between two short pauses; 0 = as gcstoptheworld=1") \
    X(stwtrace,          0,       0,   1,          "print, for each stop-the-world pause, which thread was slowest to stop and how long it took") \
    X(stopsignal,        30,      1,   64,         "signal that stops a thread for a collection (default SIGPWR)") \
    X(resumesignal,      24,      1,   64,         "accepted and unused (stopped threads now wait on a futex, not for a signal)") \
    X(stoptimeout,       5000,    1,   3600000,    "milliseconds to wait for a thread to stop before naming it on stderr")

struct gc_options {
    int percent;              /* GCPERCENT: heap growth percent; -1 = off.  Default 100 */
    int64_t memory_limit;     /* GCMEMLIMIT in bytes; INT64_MAX = none (the default) */
    int procs;                /* GCPROCS: marker threads at most.  Default: CPUs online */
    bool debug_set;           /* GCDEBUG was present and non-empty */
#define OPT_FIELD_(key, def, lo, hi, doc) int key;
    OPT_DEBUG_KEYS(OPT_FIELD_)
#undef OPT_FIELD_
};

extern struct gc_options opt;   /* the process's settings (options.c) */

/* Defaults, with procs = ncpu clamped to 1..1024. */
void opt_defaults(struct gc_options *o, int ncpu);

/* Read GCPERCENT, GCMEMLIMIT, GCPROCS and GCDEBUG through get (getenv in the library,
 * a table in tests) into o, which should hold opt_defaults' values; an unset variable
 * leaves its setting alone.  Every malformed value (an unknown GCDEBUG key included)
 * prints exactly one line on err naming the variable and the value, and leaves that
 * setting at its default; err may be NULL to print nothing.  Returns the number of
 * malformed values, which is the number of lines printed. */
int opt_parse(struct gc_options *o, const char *(*get)(const char *name), FILE *err);

/* "N" or "N" followed by B, KiB, MiB, GiB or TiB, as Go accepts for GOMEMLIMIT.
 * 0 on success, -1 if malformed or out of range (the value must fit in int64_t), in
 * which case *out is left unchanged.  "off" is GCMEMLIMIT's, not a size. */
int opt_parse_size(const char *s, int64_t *out);

/* The documented list of variables and GCDEBUG keys, as Markdown. */
void opt_write_markdown(FILE *f);

#endif /* TRICOLOR_OPTIONS_H */
