// binarytrees.go - the binary-trees shape of bench/binarytrees.c, single goroutine:
// a stretch tree of depth N+1, a long-lived tree of depth N, and 2^(N-d+4) trees of
// each depth d = 4, 6, ..., N, each built bottom-up, checked (node count, verified
// against 2^(d+1)-1) and dropped.  Usage: binarytrees-go [depth] [-v]
package main

import (
	"fmt"
	"os"
	"strconv"
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

func main() {
	maxDepth, verbose := 21, os.Getenv("BENCH_VERBOSE") != ""
	for _, a := range os.Args[1:] {
		if a == "-v" {
			verbose = true
			continue
		}
		v, err := strconv.Atoi(a)
		if err != nil {
			fmt.Fprintf(os.Stderr, "binarytrees: bad argument %q\n", a)
			os.Exit(2)
		}
		maxDepth = v
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

	for d := btMinDepth; d <= maxDepth; d += 2 {
		iterations := int64(1) << (maxDepth - d + btMinDepth)
		var sum int64
		for i := int64(0); i < iterations; i++ {
			sum += btBottomUp(d).check()
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
	benchReport("binarytrees", wall, cpu, fmt.Sprintf("depth=%d check=%d", maxDepth, total))
}
