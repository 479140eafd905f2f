/* gcdemo.c - a small program that shows the collector at work.
 *
 * It keeps a ring of linked lists alive while allocating and dropping many more, so
 * with GCDEBUG=gctrace=1 each cycle's line shows the heap growing to the goal and
 * falling back to the live set.  Usage: gcdemo [rounds]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tricolor.h>

struct node {
    struct node *next;
    long value;
    char payload[40];
};

static struct node *make_list(int n, long seed)
{
    struct node *head = NULL;
    for (int i = 0; i < n; i++) {
        struct node *x = gc_malloc(sizeof *x);
        x->value = seed + i;
        x->next = head;      /* x is new and still zero: no barrier needed */
        head = x;
    }
    return head;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 200;
    if (rounds <= 0) {
        fprintf(stderr, "usage: gcdemo [rounds > 0]\n");
        return 2;
    }
    gc_init();
    enum { RING = 16 };
    static struct node *ring[RING];   /* a global: scanned as a root */
    long checksum = 0;
    for (int r = 0; r < rounds; r++) {
        ring[r % RING] = make_list(2000, r * 10000L);   /* replaces (drops) an old list */
        for (struct node *x = ring[(r + 7) % RING]; x; x = x->next)
            checksum += x->value & 1;
        char *scratch = gc_malloc_atomic(4096);          /* short-lived garbage */
        memset(scratch, r & 0xff, 4096);
    }
    struct gc_memstats ms;
    gc_read_memstats(&ms);
    uint64_t longest = 0;
    for (unsigned i = 0; i < 256 && i < ms.num_gc; i++)
        if (ms.pause_ns[i] > longest)
            longest = ms.pause_ns[i];
    printf("rounds %d, checksum %ld: %u cycles, heap %.1f MB live of %.1f MB mapped, "
           "%llu objects, longest pause %.3f ms\n",
           rounds, checksum, ms.num_gc, ms.heap_alloc / 1048576.0, ms.heap_sys / 1048576.0,
           (unsigned long long)ms.heap_objects, longest / 1e6);
    return 0;
}
