// mark.go - the shape of bench/mark.c: live_mb MiB of 32-byte nodes in a forest of
// complete binary trees of 4 MiB each, every node also linked to a random node among
// the last 1024 built, then `collections` forced collections (runtime.GC) with
// nothing else allocated.  Go has no clock around its mark phase that a program can
// read, so mark_ms is the wall time of runtime.GC(), which also sweeps the whole heap
// before it returns (collect_ms is the same figure); mark_mb_per_s is the nodes' bytes
// over it.  The marker count is GOMAXPROCS (bench/run sets it from GCPROCS); the
// runtime marks with every P when the program waits in runtime.GC.
// Usage: mark-go [live_mb] [collections]
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"unsafe"
)

type mNode struct {
	left, right *mNode
	link        *mNode
	id          int64
}

const (
	mDepth  = 16
	mRecent = 1024
)

type mBuilder struct {
	nextID int64
	seed   uint32
	recent [mRecent]*mNode
}

func (b *mBuilder) build(depth int) *mNode {
	n := &mNode{id: b.nextID}
	b.nextID++
	if depth > 0 {
		n.left = b.build(depth - 1)
		n.right = b.build(depth - 1)
	}
	b.seed = b.seed*1103515245 + 12345
	n.link = b.recent[(b.seed>>8)%mRecent]
	b.recent[n.id%mRecent] = n
	return n
}

func mCount(n *mNode) int64 {
	if n == nil {
		return 0
	}
	return 1 + mCount(n.left) + mCount(n.right)
}

func main() {
	liveMB := argInt(1, 256)
	collections := int(argInt(2, 5))
	if collections < 1 || collections > 64 {
		fmt.Fprintln(os.Stderr, "mark: between 1 and 64 collections")
		os.Exit(2)
	}
	nodeSize := int64(unsafe.Sizeof(mNode{}))
	treeBytes := ((int64(2) << mDepth) - 1) * nodeSize
	ntrees := (liveMB << 20) / treeBytes
	if ntrees < 1 {
		ntrees = 1
	}

	w0, c0 := benchNow(), benchCPU()
	b := &mBuilder{seed: 12345}
	forest := make([]*mNode, ntrees)
	for t := range forest {
		forest[t] = b.build(mDepth)
	}
	buildS := benchNow() - w0
	nodes := b.nextID
	liveBytes := float64(nodes * nodeSize)

	runtime.GC() // settle: the building garbage and any cycle in progress
	times := make([]float64, collections)
	for k := range times {
		t0 := benchNow()
		runtime.GC()
		times[k] = (benchNow() - t0) * 1e3
	}
	wall, cpu := benchNow()-w0, benchCPU()-c0

	var found int64
	for _, t := range forest {
		found += mCount(t)
	}
	if found != nodes {
		fmt.Fprintf(os.Stderr, "mark: %d nodes built, %d reachable: live data lost\n", nodes, found)
		os.Exit(1)
	}
	sort.Float64s(times)
	mark := times[collections/2]
	rate := 0.0
	if mark > 0 {
		rate = liveBytes / 1e6 / (mark / 1e3)
	}
	benchReport("mark", wall, cpu, fmt.Sprintf(
		"live_mb=%d procs=%d build_s=%.3f collect_ms=%.3f mark_ms=%.3f mark_mb_per_s=%.1f",
		liveMB, runtime.GOMAXPROCS(0), buildS, mark, mark, rate))
	runtime.KeepAlive(b)
}
