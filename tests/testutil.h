/* testutil.h - small helpers shared by the test programs. */
#ifndef TRICOLOR_TESTUTIL_H
#define TRICOLOR_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* ck_assert* records a checkpoint with the test runner (a write(2)) each time it
 * passes, which dominates hot loops; these call into Check only when they fail. */
#define must(c)                                                                           \
    do {                                                                                  \
        if (!(c))                                                                         \
            ck_abort_msg("Assertion '%s' failed", #c);                                    \
    } while (0)
#define must_msg(c, ...)                                                                  \
    do {                                                                                  \
        if (!(c))                                                                         \
            ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

#ifndef TESTUTIL_OWN_RNG   /* a test with generators of its own defines this */
/* A seed scrambler and a small xorshift generator: reproducible runs. */
static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdu;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53u;
    x ^= x >> 33;
    return x;
}

struct rng {
    uint64_t s;
};

static inline uint64_t rnd(struct rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545f4914f6cdd1du;
}
#endif

/* Overwrite the dead part of the stack below the caller, so stale pointers left by
 * earlier calls do not retain objects (roots are scanned conservatively). */
static __attribute__((noinline, unused)) void clobber_stack(void)
{
    volatile char buf[32768];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = 0;
}

#endif
