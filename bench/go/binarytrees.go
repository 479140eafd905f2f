// binarytrees.go - the binary-trees shape of bench/binarytrees.c: a stretch tree of
// depth N+1, a long-lived tree of depth N, and 2^(N-d+4) trees of each depth
// d = 4, 6, ..., N, each built bottom-up, checked (node count, verified against
// 2^(d+1)-1) and dropped.  Without -t everything runs on the main goroutine; with
// -t T the trees of every depth are shared out among T goroutines as in the C version
// (goroutine w builds iterations [w*I/T, (w+1)*I/T) of each depth, one tree at a
// time).  Usage: binarytrees-go [depth] [-t threads] [-v]
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
)

type btTree struct {
	left, right *btTree
}

const btMinDepth = 4

func btBottomUp(depth int) *btTree {
	if depth <= 0 {
		return &btTree{}
	}
	l := btBottomUp(depth - 1)
	r := btBottomUp(depth - 1)
	return &btTree{left: l, right: r}
}

func (t *btTree) check() int64 {
	if t.left == nil {
		return 1
	}
	return 1 + t.left.check() + t.right.check()
}

func btExpected(depth int) int64 { return (int64(2) << depth) - 1 }

func btVerify(what string, depth int, got, want int64) {
	if got != want {
		fmt.Fprintf(os.Stderr, "binarytrees: %s of depth %d: check %d, expected %d\n",
			what, depth, got, want)
		os.Exit(1)
	}
}

func btIterations(maxDepth, d int) int64 { return int64(1) << (maxDepth - d + btMinDepth) }

// btWork builds and checks worker id's share of every depth's trees; sums[d] gets
// their total check.
func btWork(id, nthreads, maxDepth int, sums []int64) {
	for d := btMinDepth; d <= maxDepth; d += 2 {
		n := btIterations(maxDepth, d)
		lo, hi := n*int64(id)/int64(nthreads), n*int64(id+1)/int64(nthreads)
		var sum int64
		for i := lo; i < hi; i++ {
			sum += btBottomUp(d).check()
		}
		sums[d] = sum
	}
}

func main() {
	maxDepth, nthreads, verbose := 21, 0, os.Getenv("BENCH_VERBOSE") != ""
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-v" {
			verbose = true
			continue
		}
		t := a == "-t" && i+1 < len(args)
		if t {
			i++
			a = args[i]
		}
		v, err := strconv.Atoi(a)
		if err != nil {
			fmt.Fprintf(os.Stderr, "binarytrees: bad argument %q\n", a)
			os.Exit(2)
		}
		if t {
			nthreads = v
		} else {
			maxDepth = v
		}
	}
	if nthreads < 0 || nthreads > 256 {
		fmt.Fprintf(os.Stderr, "binarytrees: -t %d: between 1 and 256 threads\n", nthreads)
		os.Exit(2)
	}
	if maxDepth < btMinDepth+2 {
		maxDepth = btMinDepth + 2
	}
	if maxDepth > 30 {
		fmt.Fprintf(os.Stderr, "binarytrees: depth %d is too large\n", maxDepth)
		os.Exit(2)
	}

	w0, c0 := benchNow(), benchCPU()
	var total int64

	stretchDepth := maxDepth + 1
	c := btBottomUp(stretchDepth).check()
	btVerify("stretch tree", stretchDepth, c, btExpected(stretchDepth))
	total += c
	if verbose {
		fmt.Fprintf(os.Stderr, "stretch tree of depth %d\t check: %d\n", stretchDepth, c)
	}

	longLived := btBottomUp(maxDepth)

	workers := nthreads
	if workers == 0 {
		workers = 1
	}
	sums := make([][]int64, workers)
	for k := range sums {
		sums[k] = make([]int64, maxDepth+1)
	}
	if nthreads == 0 {
		btWork(0, 1, maxDepth, sums[0])
	} else {
		var wg sync.WaitGroup
		for k := 0; k < nthreads; k++ {
			wg.Add(1)
			go func(k int) {
				defer wg.Done()
				btWork(k, nthreads, maxDepth, sums[k])
			}(k)
		}
		wg.Wait()
	}

	for d := btMinDepth; d <= maxDepth; d += 2 {
		iterations := btIterations(maxDepth, d)
		var sum int64
		for k := range sums {
			sum += sums[k][d]
		}
		btVerify("trees", d, sum, iterations*btExpected(d))
		total += sum
		if verbose {
			fmt.Fprintf(os.Stderr, "%d\t trees of depth %d\t check: %d\n", iterations, d, sum)
		}
	}

	c = longLived.check()
	btVerify("long lived tree", maxDepth, c, btExpected(maxDepth))
	total += c
	if verbose {
		fmt.Fprintf(os.Stderr, "long lived tree of depth %d\t check: %d\n", maxDepth, c)
	}

	wall, cpu := benchNow()-w0, benchCPU()-c0
	if nthreads > 0 {
		benchReport("binarytrees", wall, cpu, fmt.Sprintf("depth=%d threads=%d check=%d", maxDepth, nthreads, total))
	} else {
		benchReport("binarytrees", wall, cpu, fmt.Sprintf("depth=%d check=%d", maxDepth, total))
	}
}
