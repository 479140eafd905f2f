/* heart.c - a beating heart drawn on the Tricolor heap: the showcase demo.
 *
 * Every frame draws the heart curve (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, scaled by a
 * heartbeat (a quick double beat, then rest), shaded by depth and lit from the upper
 * left, with sparks that fly off the outline, leave short trails, drift upwards and
 * fade.  Under the heart a status line shows what the collector is doing:
 *
 *     gc 12 | HeapAlloc 2.7 MB | NextGC 4 MB | last pause 0.412 ms | GC CPU 1.3%
 *
 * The demo is written to teach the collector by example, so its memory is all on the
 * Tricolor heap and never freed by hand:
 *
 *   - long-lived: the heart's relief, a height field computed once at startup and
 *     kept by a global for the whole run.
 *   - per-frame scratch: the frame, one row record per text row, each row's
 *     supersampled shading field and its cells, the memstats snapshot, the status
 *     text and the output buffer.  All of it is garbage one frame later; that steady
 *     stream of garbage is what makes the collector run every second or two (watch
 *     it with GCDEBUG=gctrace=1).
 *   - sparks and their trails: they live for a second or so on a linked list and
 *     become garbage when they burn out and are unlinked.
 *   - with --leak, a registry that remembers every spark ever made and is never
 *     pruned: the classic leak.  Nothing is lost - the collector can still reach all
 *     of it - but nothing can be reclaimed, so the live heap grows frame after frame,
 *     and faster than the sparks alone would explain (see struct spark's origin).
 *
 * Rules of the heap followed here (doc/api.md has the full contract):
 *
 *   - gc_malloc for objects that hold pointers, gc_malloc_atomic for those that hold
 *     none (shading fields, cells, trails, text): the collector never scans atomic
 *     objects, which saves marking work and avoids false retention.
 *   - every store of a pointer into a heap object goes through GC_WRITE.  (A store into
 *     a field that still holds gc_malloc's zero strictly needs no barrier; this demo
 *     uses GC_WRITE for all of them anyway, so the rule has no exceptions to remember.)
 *     Stores into globals and locals need no barrier: those are roots, scanned when
 *     each cycle starts.
 *   - threads that touch the heap are registered: --threads N starts its workers with
 *     gc_thread_create, which registers and unregisters them.
 *
 * Output is deterministic: the sparks come from a fixed-seed generator and the time
 * is the frame number over --fps, so every run (with or without --threads) draws the
 * same frames; only the status line, which reports the real heap, differs.
 *
 * Terminal manners: on a terminal the demo uses the alternate screen, hides the
 * cursor and turns off echo, and restores all three on exit, on Ctrl-C, on SIGTERM
 * and on Ctrl-Z (it redraws after fg).  The signal handlers only set flags; the main
 * loop notices them within a frame.  On a pipe, or with --plain, it writes plain text.
 */
#define _DEFAULT_SOURCE /* SIGWINCH, TIOCGWINSZ and clock_nanosleep under -std=c11 */

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <tricolor.h>

/* ---- Shape, beat and look -------------------------------------------------------- */

#define SS 3              /* supersamples per cell edge: SS x SS shading samples a cell */
#define ASPECT 2.0        /* a terminal cell is about twice as tall as it is wide */
#define HEART_W 2.276     /* the curve spans x in [-1.138, 1.138] ... */
#define HEART_H 2.236     /* ... and y in [-1, 1.236] */
#define HEART_YC 0.118    /* the vertical middle of that span */
#define FILL 0.78         /* share of the screen the heart takes at the top of a beat */
#define BEAT_PERIOD 1.1   /* seconds from one double beat to the next (~55 a minute) */
#define BEAT_GAIN 0.16    /* how much bigger the heart is at the top of the first beat */
#define RELIEF 0.55       /* how domed the heart looks: the height of the lit surface */
#define TRAIL_LEN 3       /* positions a spark remembers */
#define MAX_THREADS 64

/* Heart glyphs from dim to bright, and the glyphs of sparks and trails.  The two sets
 * are disjoint, so a reader of --plain output can tell the heart from the sparks. */
static const char heart_glyphs[] = ":-=+x#%@";
#define HEART_LEVELS ((int)sizeof heart_glyphs - 1)
#define SPARK_HOT '*'
#define SPARK_COOL '\''
#define TRAIL_GLYPH '.'
#define SPARK_LEVELS 9

/* 256-colour palette entries: reds for the heart, fire for the sparks. */
static const unsigned char heart_c256[HEART_LEVELS] = {52, 88, 124, 160, 160, 196, 203, 217};
static const unsigned char spark_c256[SPARK_LEVELS] = {52, 88, 130, 166, 202, 208, 214, 220, 228};
static const unsigned char trail_c256[TRAIL_LEN] = {130, 94, 52};

/* ---- Heap objects ------------------------------------------------------------------ */

enum cell_kind { CELL_EMPTY, CELL_HEART, CELL_SPARK, CELL_TRAIL };

/* One character cell.  Cells hold no pointers, so arrays of them are atomic objects. */
struct cell {
    uint8_t kind;   /* enum cell_kind */
    uint8_t level;  /* heart: 1..HEART_LEVELS; spark: 0..SPARK_LEVELS-1; trail: age */
};

/* One text row of a frame, rendered by one thread. */
struct row {
    double *samples;     /* SS x (SS * width) brightness samples, -1 outside: atomic */
    struct cell *cells;  /* width cells: atomic */
};

/* One frame: all of it is garbage once it has been written out. */
struct frame {
    int width, height;   /* the art area in cells; the status line comes under it */
    double pulse;        /* 0 at rest, about 1 at the top of the first beat */
    double rpu, cpu;     /* rows and columns per heart unit, beat included */
    double base_rpu;     /* rows per heart unit at rest */
    struct row **rows;   /* height row pointers, stored by whoever rendered them */
};

/* Where a spark has been: a small ring of positions.  Only floats: atomic. */
struct trail {
    int n, head;
    float x[TRAIL_LEN], y[TRAIL_LEN];
};

struct spark {
    struct spark *next;   /* the live list */
    struct row *origin;   /* the row it flew out of: its heat comes from its cell there.
                           * A pointer where a copy of one byte would do, so each spark
                           * keeps a whole row alive (~6 KB at 80 columns, most of it the
                           * shading field).  Harmless while sparks burn out within a
                           * second or so - and it is what makes --leak expensive. */
    struct trail *trail;
    double x, y;          /* position in cells (column, row), fractional */
    double vx, vy;        /* cells per second */
    double age, life;     /* seconds */
    int origin_x;         /* its cell in origin->cells */
};

/* ---- Options ----------------------------------------------------------------------- */

struct options {
    long frames;        /* 0: until interrupted */
    bool frames_given;
    int fps;
    bool fps_given;
    int threads;        /* 0: the main thread renders */
    bool plain, no_color, leak;
};

static const char usage_text[] =
    "usage: heart [--frames N] [--fps N] [--threads N] [--plain] [--no-color] [--leak]\n"
    "             [--pool] [--local] [--help]\n"
    "A beating heart drawn on the Tricolor garbage-collected heap.\n"
    "  --frames N   stop after N frames; 0 runs until interrupted (the default on a\n"
    "               terminal; otherwise 60)\n"
    "  --fps N      frames per second, 1 to 1000 (default 15); output that is not a\n"
    "               terminal is not paced unless --fps is given\n"
    "  --threads N  render the rows with N worker threads, 0 to 64 (default 0: the\n"
    "               main thread renders)\n"
    "  --plain      no escape codes: frames as text, each followed by a blank line\n"
    "               (also the case when the output is not a terminal)\n"
    "  --no-color   no colours (neither when NO_COLOR is set or TERM is dumb)\n"
    "  --leak       remember every spark in a registry that is never pruned: a leak\n"
    "  --pool       recycle sparks through a gc_pool (a later version of Tricolor)\n"
    "  --local      allocate frame scratch with gc_malloc_local (a later version)\n"
    "  --help       print this text\n"
    "GCDEBUG=gctrace=1 prints a line per collection on stderr; doc/heart-demo.md is\n"
    "the lesson that goes with this demo.\n";

/* Parse a whole decimal number in [lo, hi]. */
static bool parse_number(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("heart: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fputs(usage_text, stderr);
    return 2;
}

/* Fills *o.  Returns -1 to go on, or the exit status (0 after --help, 2 on errors). */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct {
        const char *name;
        long lo, hi;
    } numeric[] = {{"--frames", 0, 1000000000L}, {"--fps", 1, 1000}, {"--threads", 0, MAX_THREADS}};
    bool pool = false, local = false;

    *o = (struct options){.fps = 15};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(arg, "--plain")) {
            o->plain = true;
        } else if (!strcmp(arg, "--no-color") || !strcmp(arg, "--no-colour")) {
            o->no_color = true;
        } else if (!strcmp(arg, "--leak")) {
            o->leak = true;
        } else if (!strcmp(arg, "--pool")) {
            pool = true;
        } else if (!strcmp(arg, "--local")) {
            local = true;
        } else {
            /* --name N or --name=N */
            size_t k, nlen = 0;
            for (k = 0; k < sizeof numeric / sizeof numeric[0]; k++) {
                nlen = strlen(numeric[k].name);
                if (!strncmp(arg, numeric[k].name, nlen) && (arg[nlen] == 0 || arg[nlen] == '='))
                    break;
            }
            if (k == sizeof numeric / sizeof numeric[0])
                return usage_error("unknown option '%s'", arg);
            const char *val = arg[nlen] == '=' ? arg + nlen + 1 : (i + 1 < argc ? argv[++i] : NULL);
            long v;
            if (!val)
                return usage_error("%s needs a number", numeric[k].name);
            if (!parse_number(val, numeric[k].lo, numeric[k].hi, &v))
                return usage_error("%s: '%s' is not a number from %ld to %ld", numeric[k].name, val,
                                   numeric[k].lo, numeric[k].hi);
            if (k == 0) {
                o->frames = v;
                o->frames_given = true;
            } else if (k == 1) {
                o->fps = (int)v;
                o->fps_given = true;
            } else {
                o->threads = (int)v;
            }
        }
    }
    /* Pools and escape hints arrive in a later version of the library; until then
     * the options exist, so scripts can be written against them, and refuse to run. */
    if (pool) {
        fputs("heart: --pool needs gc_pool, which this build of Tricolor does not have yet\n", stderr);
        return 2;
    }
    if (local) {
        fputs("heart: --local needs gc_malloc_local and GC_SCOPE, which this build of Tricolor "
              "does not have yet\n", stderr);
        return 2;
    }
    return -1;
}

/* ---- Global state ------------------------------------------------------------------ */

static struct options opt;
static bool fancy;       /* escape codes: a terminal and no --plain */
static int colours;      /* 0, 8 or 256 */

/* The live sparks.  A global is a root: the collector scans the data and bss
 * segments at the start of every cycle, so whatever this points to stays alive. */
static struct spark *sparks;

/* --leak: every spark ever made.  The array is a heap object (it holds pointers, so
 * it is scanned); the struct around it is a global, hence a root. */
static struct {
    struct spark **items;
    size_t n, cap;
} registry;

/* Signals only set these; the main loop acts on them. */
static volatile sig_atomic_t got_quit, got_winch, got_tstp;

/* Bumped by the cycle hook: the status line lights up on the frame after a cycle. */
static atomic_uint cycles_seen;

/* A fixed-seed xorshift64* generator: the same sparks on every run. */
static uint64_t rng_state = 0x2545F4914F6CDD1DULL;

static double rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static void terminal_leave(void);

/* Allocation failure: the heap returns NULL with errno = ENOMEM, never aborts. */
static void *must(void *p)
{
    if (!p) {
        terminal_leave();
        fputs("heart: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

/* ---- The heart ----------------------------------------------------------------------- */

/* The beat at t seconds: a quick first beat ("lub"), a smaller second one ("dub")
 * a quarter of a second later, then rest.  Each beat rises fast and falls slowly. */
static double beat_pulse(double t)
{
    double phase = fmod(t, BEAT_PERIOD) / BEAT_PERIOD;
    struct {
        double at, rise, fall, height;
    } beats[] = {{0.10, 0.030, 0.080, 1.0}, {0.31, 0.035, 0.090, 0.65}};
    double p = 0;
    for (size_t i = 0; i < sizeof beats / sizeof beats[0]; i++) {
        double d = phase - beats[i].at;
        double w = d < 0 ? beats[i].rise : beats[i].fall;
        p += beats[i].height * exp(-(d / w) * (d / w));
    }
    return p;
}

/* The heart function: <= 0 inside the heart. */
static double heart_f(double x, double y)
{
    double a = x * x + y * y - 1;
    return a * a * a - x * x * y * y * y;
}

/* Its gradient: it points out of the heart, across the outline. */
static void heart_grad(double x, double y, double *gx, double *gy)
{
    double a = x * x + y * y - 1;
    *gx = 6 * x * a * a - 2 * x * y * y * y;
    *gy = 6 * y * a * a - 3 * x * x * y * y;
}

/* The heart's relief: the heart is drawn as a cushion, inflated like a soap film.
 * Its height field solves Poisson's equation (laplacian h = -1 inside, h = 0 on the
 * outline), computed once on a grid in heart units.  The grid is an atomic heap
 * object referenced from a global: live for the whole run, and never scanned. */
#define DOME_STEP 0.016                      /* grid spacing, heart units */
#define DOME_X0 (-1.2)                       /* grid covers x in [-1.2, 1.2] ... */
#define DOME_Y0 (-1.05)                      /* ... and y in [-1.05, 1.29] */
#define DOME_NX 151
#define DOME_NY 147
static double *dome;         /* DOME_NY rows of DOME_NX heights, scaled to a peak of 1 */

static void dome_init(void)
{
    dome = must(gc_malloc_atomic(sizeof *dome * DOME_NX * DOME_NY));
    /* Which grid points are inside: needed only here, so it is garbage once this
     * function returns, and the first cycle reclaims it. */
    unsigned char *inside = must(gc_malloc_atomic(DOME_NX * DOME_NY));
    for (int j = 1; j < DOME_NY - 1; j++)
        for (int i = 1; i < DOME_NX - 1; i++)
            inside[j * DOME_NX + i] = heart_f(DOME_X0 + i * DOME_STEP, DOME_Y0 + j * DOME_STEP) <= 0;
    /* Successive over-relaxation: a few hundred sweeps settle a grid of this size. */
    double peak = 0, h2 = DOME_STEP * DOME_STEP;
    for (int sweep = 0; sweep < 300; sweep++)
        for (int j = 1; j < DOME_NY - 1; j++)
            for (int i = 1; i < DOME_NX - 1; i++) {
                if (!inside[j * DOME_NX + i])
                    continue;   /* outside: stays 0 */
                double *p = &dome[j * DOME_NX + i];
                double avg = (p[-1] + p[1] + p[-DOME_NX] + p[DOME_NX] + h2) / 4;
                *p += 1.93 * (avg - *p);
            }
    for (int k = 0; k < DOME_NX * DOME_NY; k++)
        peak = fmax(peak, dome[k]);
    for (int k = 0; k < DOME_NX * DOME_NY; k++)
        dome[k] /= peak;
}

/* The height at (x, y), interpolated between the grid points. */
static double dome_at(double x, double y)
{
    double gx = (x - DOME_X0) / DOME_STEP, gy = (y - DOME_Y0) / DOME_STEP;
    gx = fmin(fmax(gx, 0), DOME_NX - 1.001);
    gy = fmin(fmax(gy, 0), DOME_NY - 1.001);
    int i = (int)gx, j = (int)gy;
    double fx = gx - i, fy = gy - j;
    const double *p = &dome[j * DOME_NX + i];
    return (p[0] * (1 - fx) + p[1] * fx) * (1 - fy) + (p[DOME_NX] * (1 - fx) + p[DOME_NX + 1] * fx) * fy;
}

/* Brightness of the heart at (x, y) in heart units, 0..1, or -1 outside.
 *
 * Depth is the cushion's height z = RELIEF * sqrt(h): 0 on the outline, rounding
 * steeply off the rim, highest in the middle of the lobes.  The brightness mixes
 * that depth with diffuse light from the upper left and a small highlight.  Only
 * the shading is lopsided: whether a point is inside comes from heart_f alone,
 * which sees x only as x^2, so the shape itself is exactly symmetric. */
static double heart_shade(double x, double y)
{
    if (heart_f(x, y) > 0)
        return -1;
    const double e = DOME_STEP;
    double h = fmax(dome_at(x, y), 1e-4);
    double hx = (dome_at(x + e, y) - dome_at(x - e, y)) / (2 * e);
    double hy = (dome_at(x, y + e) - dome_at(x, y - e)) / (2 * e);
    double depth = sqrt(h);
    /* The surface's slope: grad z = RELIEF * grad h / (2 sqrt h); its normal is
     * (-dz/dx, -dz/dy, 1), normalised. */
    double k = RELIEF / (2 * depth);
    double nx = -hx * k, ny = -hy * k, nz = 1;
    double n = sqrt(nx * nx + ny * ny + nz * nz);
    nx /= n, ny /= n, nz /= n;
    static const double lx = -0.48, ly = 0.52, lz = 0.71;   /* towards the light */
    static const double vx = -0.28, vy = 0.30, vz = 0.91;   /* halfway to the eye */
    double diffuse = fmax(0, nx * lx + ny * ly + nz * lz);
    double highlight = pow(fmax(0, nx * vx + ny * vy + nz * vz), 30);
    double b = 0.05 + 0.35 * depth + 0.50 * diffuse + 0.40 * highlight;
    return b > 1 ? 1 : b;
}

/* Render text row y of frame f: SS x SS samples a cell, then a glyph level per cell.
 * Runs on the main thread or on a worker; every object it makes is new, so the
 * threads never share a half-written row. */
static struct row *render_row(const struct frame *f, int y)
{
    int w = f->width;
    struct row *r = must(gc_malloc(sizeof *r));
    double *s = must(gc_malloc_atomic(sizeof *s * SS * SS * (size_t)w));
    struct cell *c = must(gc_malloc_atomic(sizeof *c * (size_t)w));
    GC_WRITE(r->samples, s);
    GC_WRITE(r->cells, c);

    /* Sample positions in integer half-sample units from the centre of the screen:
     * column u and -u are exact mirror images, so the mask is symmetric to the bit. */
    for (int j = 0; j < SS; j++) {
        int v = 2 * SS * y + 2 * j + 1 - SS * f->height;
        double hy = HEART_YC - v / (2.0 * SS * f->rpu);
        for (int i = 0; i < SS * w; i++) {
            int u = 2 * i + 1 - SS * w;
            s[j * SS * w + i] = heart_shade(u / (2.0 * SS * f->cpu), hy);
        }
    }
    for (int x = 0; x < w; x++) {
        int inside = 0;
        double sum = 0;
        for (int j = 0; j < SS; j++)
            for (int i = 0; i < SS; i++) {
                double b = s[j * SS * w + x * SS + i];
                if (b >= 0) {
                    inside++;
                    sum += b;
                }
            }
        if (2 * inside <= SS * SS)
            continue;   /* mostly outside: empty (gc_malloc_atomic zeroed it) */
        double b = sum / inside * sqrt((double)inside / (SS * SS));   /* soften the rim */
        int level = 1 + (int)(b * (HEART_LEVELS - 1) + 0.5);
        c[x].kind = CELL_HEART;
        c[x].level = (uint8_t)(level > HEART_LEVELS ? HEART_LEVELS : level);
    }
    return r;
}

/* A new frame at t seconds for a w x h art area; the rows are still to render. */
static struct frame *frame_new(int w, int h, double t)
{
    struct frame *f = must(gc_malloc(sizeof *f));
    f->width = w;
    f->height = h;
    f->pulse = beat_pulse(t);
    double peak = fmin(FILL * h / HEART_H, FILL * w / (HEART_W * ASPECT));
    f->base_rpu = peak / (1 + BEAT_GAIN);
    f->rpu = f->base_rpu * (1 + BEAT_GAIN * f->pulse);
    f->cpu = ASPECT * f->rpu;
    GC_WRITE(f->rows, must(gc_malloc(sizeof *f->rows * (size_t)h)));
    return f;
}

static inline struct cell *frame_cell(const struct frame *f, int x, int y)
{
    return &f->rows[y]->cells[x];
}

static bool is_heart(const struct frame *f, int x, int y)
{
    if (x < 0 || y < 0 || x >= f->width || y >= f->height)
        return false;
    return frame_cell(f, x, y)->kind == CELL_HEART;
}

/* ---- Render threads ------------------------------------------------------------------ */

/* With --threads N, N workers render a frame's rows.  The main thread publishes the
 * frame, the workers take rows one at a time, and the main thread waits until all
 * rows are in.  Each worker allocates its rows itself: the heap's per-thread caches
 * make that cheap, and a cycle can start from whichever thread finds the heap at its
 * goal; it then stops all the others, workers included. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    struct frame *frame;   /* the frame being rendered, or NULL (a global: a root) */
    int next_row, rows_done;
    bool quit;
    int n;
    pthread_t threads[MAX_THREADS];
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER,
          .work = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static void *render_worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        /* Wait for a frame with rows left to take. */
        while (!pool.quit && (!pool.frame || pool.next_row >= pool.frame->height))
            pthread_cond_wait(&pool.work, &pool.lock);
        if (pool.quit)
            break;
        struct frame *f = pool.frame;
        int y = pool.next_row++;
        pthread_mutex_unlock(&pool.lock);
        struct row *r = render_row(f, y);   /* allocates, so it may start a cycle */
        pthread_mutex_lock(&pool.lock);
        GC_WRITE(f->rows[y], r);
        if (++pool.rows_done == f->height)
            pthread_cond_signal(&pool.done);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

static void pool_start(int n)
{
    for (int i = 0; i < n; i++) {
        int err = gc_thread_create(&pool.threads[i], NULL, render_worker, NULL);
        if (err) {
            fprintf(stderr, "heart: cannot start render thread %d: %s\n", i + 1, strerror(err));
            exit(1);
        }
        pool.n++;
    }
}

static void pool_stop(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.quit = true;
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.lock);
    for (int i = 0; i < pool.n; i++)
        pthread_join(pool.threads[i], NULL);
    pool.n = 0;
}

static void render_rows(struct frame *f)
{
    if (pool.n == 0) {
        for (int y = 0; y < f->height; y++)
            GC_WRITE(f->rows[y], render_row(f, y));
        return;
    }
    pthread_mutex_lock(&pool.lock);
    pool.frame = f;
    pool.next_row = pool.rows_done = 0;
    pthread_cond_broadcast(&pool.work);
    while (pool.rows_done < f->height)
        pthread_cond_wait(&pool.done, &pool.lock);
    pool.frame = NULL;
    pthread_mutex_unlock(&pool.lock);
}

/* ---- Sparks -------------------------------------------------------------------------- */

/* --leak: remember the spark forever.  Nothing ever reads the registry, so nothing
 * here is wrong in a way a crash would show: the sparks just never become garbage,
 * and neither does anything they point to - their trails, and the rows they flew
 * out of (each with its whole shading field). */
static void registry_add(struct spark *s)
{
    if (registry.n == registry.cap) {
        size_t cap = registry.cap ? 2 * registry.cap : 256;
        /* gc_realloc copies into a new object and frees the old one. */
        registry.items = must(gc_realloc(registry.items, cap * sizeof *registry.items));
        registry.cap = cap;
    }
    GC_WRITE(registry.items[registry.n], s);
    registry.n++;
}

/* A spark leaves the outline cell (x, y) along the outward normal. */
static void spark_emit(const struct frame *f, int x, int y)
{
    double hx = (x + 0.5 - f->width / 2.0) / f->cpu;
    double hy = HEART_YC - (y + 0.5 - f->height / 2.0) / f->rpu;
    double gx, gy;
    heart_grad(hx, hy, &gx, &gy);
    double len = sqrt(gx * gx + gy * gy);
    if (len < 1e-6) {   /* the tip and the cleft have no normal: go away from the middle */
        gx = hx;
        gy = hy - HEART_YC;
        len = sqrt(gx * gx + gy * gy) + 1e-9;
    }
    double angle = atan2(gy / len, gx / len) + (rnd() - 0.5) * 0.9;
    double speed = 0.25 + 0.55 * rnd();   /* heart units per second */

    struct spark *s = must(gc_malloc(sizeof *s));
    GC_WRITE(s->trail, must(gc_malloc_atomic(sizeof *s->trail)));
    GC_WRITE(s->origin, f->rows[y]);
    s->origin_x = x;
    s->x = x + 0.5;
    s->y = y + 0.5;
    s->vx = cos(angle) * speed * f->cpu;
    s->vy = -sin(angle) * speed * f->rpu;   /* rows grow downwards */
    s->life = 0.45 + 0.8 * rnd();
    GC_WRITE(s->next, sparks);
    sparks = s;   /* a global: no barrier */
    if (opt.leak)
        registry_add(s);
}

/* Outline cells (heart cells next to an empty one) throw sparks, more of them on
 * the beat.  Frames are processed in a fixed order, so the sparks are the same on
 * every run. */
static void sparks_emit(const struct frame *f)
{
    double p = 0.025 + 0.30 * f->pulse;
    for (int y = 0; y < f->height; y++)
        for (int x = 0; x < f->width; x++) {
            if (!is_heart(f, x, y))
                continue;
            if (is_heart(f, x - 1, y) && is_heart(f, x + 1, y) && is_heart(f, x, y - 1) &&
                is_heart(f, x, y + 1))
                continue;
            if (rnd() < p)
                spark_emit(f, x, y);
        }
}

/* Move every spark by one frame and unlink the ones that burnt out or left the
 * screen.  Unlinking is all it takes to free them: once nothing points to a spark,
 * the next cycle finds it unmarked and sweeps it, trail and all. */
static void sparks_update(const struct frame *f, double dt)
{
    double drag = exp(-0.9 * dt);
    double lift = 0.45 * f->base_rpu * dt;   /* hot air rises: rows per second, per second */
    struct spark *prev = NULL, *next;
    for (struct spark *s = sparks; s; s = next) {
        next = s->next;
        struct trail *tr = s->trail;   /* atomic: plain stores, no barrier */
        tr->head = (tr->head + 1) % TRAIL_LEN;
        tr->x[tr->head] = (float)s->x;
        tr->y[tr->head] = (float)s->y;
        if (tr->n < TRAIL_LEN)
            tr->n++;
        s->vx *= drag;
        s->vy = s->vy * drag - lift;
        s->x += s->vx * dt;
        s->y += s->vy * dt;
        s->age += dt;
        bool gone = s->age >= s->life || s->x < -2 || s->x > f->width + 2 || s->y < -2 ||
                    s->y > f->height + 2;
        if (!gone) {
            prev = s;
            continue;
        }
        if (prev)
            GC_WRITE(prev->next, next);
        else
            sparks = next;
    }
}

/* Draw the sparks and their trails into the empty cells: the heart is in front. */
static void sparks_draw(const struct frame *f)
{
    for (const struct spark *s = sparks; s; s = s->next) {
        const struct trail *tr = s->trail;
        for (int k = tr->n - 1; k >= 1; k--) {   /* oldest first; [head] is under the spark */
            int i = (tr->head - k + TRAIL_LEN) % TRAIL_LEN;
            int x = (int)floor(tr->x[i]), y = (int)floor(tr->y[i]);
            if (x < 0 || y < 0 || x >= f->width || y >= f->height)
                continue;
            struct cell *c = frame_cell(f, x, y);
            if (c->kind == CELL_EMPTY || (c->kind == CELL_TRAIL && c->level > k)) {
                c->kind = CELL_TRAIL;
                c->level = (uint8_t)k;
            }
        }
        int x = (int)floor(s->x), y = (int)floor(s->y);
        if (x < 0 || y < 0 || x >= f->width || y >= f->height)
            continue;
        struct cell *c = frame_cell(f, x, y);
        if (c->kind == CELL_HEART)
            continue;
        /* A spark starts as hot as the heart cell it left and cools as it ages. */
        const struct cell *from = &s->origin->cells[s->origin_x];
        double warmth = from->kind == CELL_HEART ? (double)from->level / HEART_LEVELS : 0.5;
        double heat = (1 - s->age / s->life) * (0.55 + 0.45 * warmth);
        int level = (int)(heat * SPARK_LEVELS);
        level = level < 0 ? 0 : level >= SPARK_LEVELS ? SPARK_LEVELS - 1 : level;
        if (c->kind != CELL_SPARK || c->level < level) {
            c->kind = CELL_SPARK;
            c->level = (uint8_t)level;
        }
    }
}

/* ---- Output ---------------------------------------------------------------------------- */

/* The frame's text, built in one atomic heap buffer and written with one write(). */
struct out {
    char *buf;
    size_t len, cap;
};

/* Make room for n more bytes.  gc_realloc copies into a bigger object and frees the
 * old one at once: nothing else points to it. */
static void out_reserve(struct out *o, size_t n)
{
    if (o->len + n <= o->cap)
        return;
    size_t cap = 2 * (o->len + n);
    o->buf = must(gc_realloc(o->buf, cap));
    o->cap = cap;
}

static void out_put(struct out *o, const char *s, size_t n)
{
    out_reserve(o, n);
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void out_str(struct out *o, const char *s)
{
    out_put(o, s, strlen(s));
}

/* Formatted text, straight into the buffer. */
static void out_fmt(struct out *o, const char *fmt, ...)
{
    for (;;) {
        size_t room = o->cap - o->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            o->len += (size_t)n;
            return;
        }
        out_reserve(o, (size_t)n + 1);
    }
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static char cell_glyph(const struct cell *c)
{
    switch (c->kind) {
    case CELL_HEART: return heart_glyphs[c->level - 1];
    case CELL_SPARK: return c->level >= 3 ? SPARK_HOT : SPARK_COOL;
    case CELL_TRAIL: return TRAIL_GLYPH;
    default: return ' ';
    }
}

/* With 8 colours: red, bright red, yellow, bright yellow. */
static const char *const sgr8[] = {"0;31", "0;1;31", "0;33", "0;1;33"};

/* The colour of a drawn cell: a 256-colour palette index, or with 8 colours
 * -1 - i for sgr8[i]. */
static int cell_colour(const struct cell *c)
{
    int i = c->level;
    if (colours == 256)
        return c->kind == CELL_HEART   ? heart_c256[i - 1]
               : c->kind == CELL_SPARK ? spark_c256[i]
                                       : trail_c256[i < TRAIL_LEN ? i : TRAIL_LEN - 1];
    if (c->kind == CELL_HEART)
        return i > HEART_LEVELS / 2 ? -2 : -1;
    if (c->kind == CELL_SPARK)
        return i >= 6 ? -4 : i >= 3 ? -3 : -1;
    return -1;
}

static void out_colour(struct out *o, int colour)
{
    if (colour >= 0)
        out_fmt(o, "\033[0;38;5;%dm", colour);
    else
        out_fmt(o, "\033[%sm", sgr8[-1 - colour]);
}

/* The status line: the collector's numbers, from gc_read_memstats.  Its words are
 * fixed (outside tools parse them).  Like everything else made for one frame, the
 * snapshot and the text are heap objects, garbage by the next frame. */
static char *status_line(void)
{
    struct gc_memstats *ms = must(gc_malloc_atomic(sizeof *ms));   /* ~5 KB, no pointers */
    gc_read_memstats(ms);
    /* pause_ns is a ring of the last 256 cycles; the latest is at (num_gc + 255) % 256. */
    uint64_t pause = ms->num_gc ? ms->pause_ns[(ms->num_gc + 255) % 256] : 0;
    size_t len = 160;
    char *s = must(gc_malloc_atomic(len));
    snprintf(s, len, "gc %u | HeapAlloc %.1f MB | NextGC %llu MB | last pause %.3f ms | GC CPU %.1f%%",
             ms->num_gc, ms->heap_alloc / 1048576.0, (unsigned long long)(ms->next_gc >> 20),
             pause / 1e6, ms->gc_cpu_fraction * 100);
    return s;
}

static void frame_write(const struct frame *f, bool flash)
{
    char *status = status_line();
    size_t cells = (size_t)f->width * (size_t)f->height;
    struct out o = {.cap = cells * (fancy ? 4 : 1) + 16 * (size_t)f->height + 256};
    o.buf = must(gc_malloc_atomic(o.cap));

    if (!fancy) {
        for (int y = 0; y < f->height; y++) {
            size_t start = o.len, end = o.len;
            for (int x = 0; x < f->width; x++) {
                char g = cell_glyph(frame_cell(f, x, y));
                out_put(&o, &g, 1);
                if (g != ' ')
                    end = o.len;
            }
            o.len = end > start ? end : start;   /* no trailing blanks */
            out_str(&o, "\n");
        }
        out_str(&o, status);
        out_str(&o, "\n\n");
    } else {
        bool coloured = false;   /* whether `colour` has been sent yet */
        int colour = 0;
        for (int y = 0; y < f->height; y++) {
            out_fmt(&o, "\033[%d;1H", y + 1);
            for (int x = 0; x < f->width; x++) {
                const struct cell *c = frame_cell(f, x, y);
                char g = cell_glyph(c);
                if (g != ' ' && colours && (!coloured || cell_colour(c) != colour)) {
                    colour = cell_colour(c);
                    coloured = true;
                    out_colour(&o, colour);
                }
                out_put(&o, &g, 1);
            }
        }
        /* The status line goes on the last row, one column short of the edge so the
         * terminal never wraps or scrolls; it lights up when a cycle has just ended. */
        size_t n = strlen(status), room = f->width > 1 ? (size_t)f->width - 1 : 1;
        out_fmt(&o, "\033[%d;1H\033[0m%s", f->height + 1, flash && colours ? "\033[1m" : "");
        out_put(&o, status, n < room ? n : room);
        /* Park the cursor top left: gctrace lines on the same terminal then overwrite
         * the top row until the next frame instead of scrolling the screen. */
        out_str(&o, "\033[0m\033[K\033[H");
    }
    if (!write_all(STDOUT_FILENO, o.buf, o.len))
        got_quit = got_quit ? got_quit : SIGPIPE;
}

/* ---- Terminal ------------------------------------------------------------------------- */

static bool term_active;
static struct termios saved_tio;
static bool tio_saved;

static bool in_foreground(void)
{
    return isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
}

static void terminal_enter(void)
{
    if (!fancy || term_active)
        return;
    /* Typed keys would scribble over the picture: turn echo off (only when we own the
     * terminal; a background job must not touch its modes). */
    if (in_foreground() && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
        struct termios t = saved_tio;
        t.c_lflag &= ~(tcflag_t)ECHO;
        tio_saved = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
    }
    static const char enter[] = "\033[?1049h\033[?25l\033[2J\033[H";
    write_all(STDOUT_FILENO, enter, sizeof enter - 1);
    term_active = true;
}

/* Idempotent; also run at exit, so every way out restores the terminal. */
static void terminal_leave(void)
{
    if (!term_active)
        return;
    static const char leave[] = "\033[0m\033[?1049l\033[?25h";
    write_all(STDOUT_FILENO, leave, sizeof leave - 1);
    if (tio_saved && in_foreground())
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
    tio_saved = false;
    term_active = false;
}

static void terminal_size(int *w, int *h)
{
    struct winsize ws;
    long v;
    *w = 80;
    *h = 24;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row) {
        *w = ws.ws_col;
        *h = ws.ws_row;
    } else {
        if (parse_number(getenv("COLUMNS"), 1, 10000, &v))
            *w = (int)v;
        if (parse_number(getenv("LINES"), 1, 10000, &v))
            *h = (int)v;
    }
    *w = *w < 1 ? 1 : *w > 1000 ? 1000 : *w;
    *h = *h < 2 ? 2 : *h > 500 ? 500 : *h;
}

static int colour_support(void)
{
    const char *term = getenv("TERM"), *ct = getenv("COLORTERM"), *nc = getenv("NO_COLOR");
    if (!fancy || opt.no_color || (nc && *nc) || !term || !strcmp(term, "dumb"))
        return 0;
    return strstr(term, "256color") || (ct && *ct) ? 256 : 8;
}

static void on_signal(int sig)
{
    if (sig == SIGWINCH)
        got_winch = 1;
    else if (sig == SIGTSTP)
        got_tstp = 1;
    else
        got_quit = sig;
}

static void set_handler(int sig, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = SA_RESTART;   /* writes resume; sleeps still return early */
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* Catch sig, unless it was ignored when we started (nohup, a background job of a
 * non-interactive shell): then it stays ignored, as a well-behaved program does. */
static void catch_signal(int sig)
{
    struct sigaction old;
    if (sigaction(sig, NULL, &old) == 0 && old.sa_handler == SIG_IGN)
        return;
    set_handler(sig, on_signal);
}

/* Ctrl-Z: give the terminal back, stop, and take it again after fg. */
static void suspend(void)
{
    got_tstp = 0;
    terminal_leave();
    set_handler(SIGTSTP, SIG_DFL);
    raise(SIGTSTP);   /* stops here until SIGCONT */
    set_handler(SIGTSTP, on_signal);
    terminal_enter();
    got_winch = 1;   /* the size may have changed meanwhile; redraw anyway */
}

/* ---- The cycle hook -------------------------------------------------------------------- */

/* Runs after each cycle, on the thread that finished it, with the world running
 * again.  It may allocate; this one only counts, so the next frame can light up its
 * status line.  (GCDEBUG=gctrace=1 is the library's own printer for the same record.) */
static void on_cycle(const struct gc_cycle_info *info, void *arg)
{
    (void)info;
    (void)arg;
    atomic_fetch_add(&cycles_seen, 1);
}

/* ---- Main loop --------------------------------------------------------------------- */

static void timespec_add_ns(struct timespec *t, long ns)
{
    t->tv_nsec += ns;
    while (t->tv_nsec >= 1000000000L) {
        t->tv_nsec -= 1000000000L;
        t->tv_sec++;
    }
}

static bool timespec_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void run(void)
{
    bool paced = isatty(STDOUT_FILENO) || opt.fps_given;
    long frame_ns = 1000000000L / opt.fps;
    double dt = 1.0 / opt.fps;
    int w, h;
    terminal_size(&w, &h);
    unsigned cycles_drawn = atomic_load(&cycles_seen);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);

    for (long n = 0; opt.frames == 0 || n < opt.frames; n++) {
        if (got_tstp)
            suspend();
        if (got_quit)
            break;
        if (got_winch) {
            got_winch = 0;
            int nw, nh;
            terminal_size(&nw, &nh);
            if (nw != w || nh != h) {
                w = nw;
                h = nh;
                sparks = NULL;   /* they live in the old size's cells: let them go */
            }
            if (fancy)
                write_all(STDOUT_FILENO, "\033[2J", 4);
        }

        /* One frame: render the heart, move and spawn sparks, draw, write. */
        struct frame *f = frame_new(w, h - 1, n * dt);
        render_rows(f);
        sparks_update(f, dt);
        sparks_emit(f);
        sparks_draw(f);
        unsigned cycles = atomic_load(&cycles_seen);
        frame_write(f, cycles != cycles_drawn);
        cycles_drawn = cycles;
        /* f goes out of scope here: the frame, its rows and its text are garbage now,
         * except the rows that sparks flew out of, which those sparks keep alive. */

        if (!paced)
            continue;
        timespec_add_ns(&next, frame_ns);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (timespec_before(&next, &now)) {
            next = now;   /* running late: do not rush to catch up */
            continue;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            if (got_quit || got_winch || got_tstp)
                break;
    }
}

int main(int argc, char **argv)
{
    int status = parse_options(argc, argv, &opt);
    if (status >= 0)
        return status;
    if (!opt.frames_given)
        opt.frames = isatty(STDOUT_FILENO) ? 0 : 60;
    fancy = isatty(STDOUT_FILENO) && !opt.plain;
    colours = colour_support();

    /* Only the main thread takes our signals: block them while the collector and the
     * render threads start (new threads inherit the mask), then unblock them here. */
    sigset_t ours, old;
    sigemptyset(&ours);
    sigaddset(&ours, SIGINT);
    sigaddset(&ours, SIGTERM);
    sigaddset(&ours, SIGWINCH);
    sigaddset(&ours, SIGTSTP);
    pthread_sigmask(SIG_BLOCK, &ours, &old);
    catch_signal(SIGINT);
    catch_signal(SIGTERM);
    catch_signal(SIGWINCH);
    if (fancy)
        catch_signal(SIGTSTP);

    gc_init();
    dome_init();
    gc_set_cycle_hook(on_cycle, NULL);
    pool_start(opt.threads);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    atexit(terminal_leave);
    terminal_enter();
    run();
    pool_stop();
    terminal_leave();

    /* Interrupted: die of the same signal, so the shell sees what happened. */
    int sig = got_quit;
    if (sig && sig != SIGPIPE) {
        set_handler(sig, SIG_DFL);
        raise(sig);
    }
    return sig == SIGPIPE ? 1 : 0;
}
