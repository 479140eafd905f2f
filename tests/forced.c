/* forced.c - calls gc_collect three times, then gc_free_os_memory once: four forced
 * cycles (tests/gctrace.sh checks their " (forced)" lines).  It allocates far less
 * than the smallest heap goal, so every cycle it sees is one of its own forced ones.
 * Prints "forced: num_gc N num_forced_gc M", then whether a rooted list survived all
 * four collections intact. */
#include <stdio.h>
#include <tricolor.h>

struct node {
    struct node *next;
    long value;
};

static struct node *list;   /* a global: a root */

int main(void)
{
    gc_init();
    for (long i = 0; i < 1000; i++) {
        struct node *x = gc_malloc(sizeof *x);
        if (!x) {
            fprintf(stderr, "forced: gc_malloc failed\n");
            return 1;
        }
        x->value = i;
        x->next = list;     /* x is new and still zero: no barrier needed */
        list = x;
        char *garbage = gc_malloc_atomic(64);   /* a little for the cycles to free */
        if (garbage)
            garbage[0] = 1;
    }
    for (int i = 0; i < 3; i++)
        gc_collect();
    gc_free_os_memory();

    long n = 0, sum = 0;
    for (struct node *x = list; x; x = x->next) {
        n++;
        sum += x->value;
    }
    struct gc_memstats ms;
    gc_read_memstats(&ms);
    printf("forced: num_gc %u num_forced_gc %u\n", ms.num_gc, ms.num_forced_gc);
    printf("list: %ld nodes, sum %ld\n", n, sum);
    return n == 1000 && sum == 999L * 1000 / 2 ? 0 : 1;
}
