/* init.c - gc_init: bringing the collector up once, in pipeline order.
 *
 * Options first (everything else reads them), then the size classes, the page heap,
 * the central lists, the signal handlers and the phase machine.  gc_init is idempotent
 * and thread-safe; the first allocation calls it when the host did not.
 */
#include "internal.h"

#include <stdlib.h>

atomic_word gc_initialized;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static const char *env_get(const char *name)
{
    return getenv(name);
}

static void do_init(void)
{
    opt_defaults(&opt, os_ncpu());
    opt_parse(&opt, env_get, stderr);
    sc_init();
    heap_init();
    alloc_init();
    roots_init();
    stw_init();
    cycle_init();
    cycle.init_ns = os_now_ns();
    cycle.init_wall_ns = os_wall_ns();
    AO_store_release(&gc_initialized, 1);
}

void init_ensure(void)
{
    if (likely(AO_load_acquire(&gc_initialized)))
        return;
    pthread_once(&init_once, do_init);
}

void gc_init(void)
{
    init_ensure();
    stw_register_self(0);
}
