// pause.go - the shape of bench/pause.c: live_mb MiB of 32-byte nodes in a forest of
// complete binary trees of 4 MiB each, then churn_mb MiB of short-lived 32-byte garbage with a live edit
// (a random leaf replaced by a new node) every 1000 allocations.  The gap between two
// edits is the stall the mutator sees: the longest (max_stall_ms) and the 99th
// percentile (p99_stall_ms); max_pause_ms is the runtime's longest stop-the-world
// pause; steal_ms is the CPU time the host took from the machine meanwhile.  With BENCH_SERIES=path every gap is written there at exit, one line
// "seconds stall_ms" (seconds since the churn began).
// Usage: pause-go [live_mb] [churn_mb]
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"unsafe"
)

type pNode struct {
	left, right *pNode
	id, pad     int64
}

func pBuild(nextID *int64, depth int) *pNode {
	n := &pNode{id: *nextID}
	*nextID++
	if depth > 0 {
		n.left = pBuild(nextID, depth-1)
		n.right = pBuild(nextID, depth-1)
	}
	return n
}

func pCount(n *pNode) int64 {
	if n == nil {
		return 0
	}
	return 1 + pCount(n.left) + pCount(n.right)
}

var pSink *pNode

func main() {
	liveMB := argInt(1, 100)
	churnMB := argInt(2, 4*liveMB)
	nodeSize := int64(unsafe.Sizeof(pNode{}))
	if nodeSize != 32 {
		fmt.Fprintf(os.Stderr, "pause: node is %d bytes, expected 32\n", nodeSize)
		os.Exit(1)
	}
	const depth = 16 // 2^17 - 1 nodes: a 4 MiB tree
	treeBytes := ((int64(2) << depth) - 1) * nodeSize
	ntrees := (liveMB << 20) / treeBytes
	if ntrees < 1 {
		ntrees = 1
	}
	var ids int64
	t0, c0 := benchNow(), benchCPU()
	forest := make([]*pNode, ntrees)
	for t := range forest {
		forest[t] = pBuild(&ids, depth)
	}
	buildS := benchNow() - t0

	maxGaps := (churnMB<<20)/(1000*nodeSize) + 1
	gaps := make([]float64, 0, maxGaps)
	gapEnd := make([]float64, 0, maxGaps)
	churn0 := benchNow()
	steal0 := benchStealMS()
	maxGap, last := 0.0, churn0
	var churned, batch int64
	var seed uint32 = 12345
	for churned < churnMB<<20 {
		g := &pNode{id: churned} // garbage
		pSink = g
		churned += nodeSize
		batch++
		if batch == 1000 {
			batch = 0
			// A live edit: replace a random subtree leaf with a new node.
			seed = seed*1103515245 + 12345
			n := forest[int64(seed)%ntrees]
			for d := 0; d < depth-1 && n.left != nil; d++ {
				if (seed>>(d%16))&1 != 0 {
					n = n.left
				} else {
					n = n.right
				}
			}
			x := &pNode{id: ids}
			ids++
			n.left = x
			now := benchNow()
			if now-last > maxGap {
				maxGap = now - last
			}
			if int64(len(gaps)) < maxGaps {
				gaps = append(gaps, now-last)
				gapEnd = append(gapEnd, now-churn0)
			}
			last = now
		}
	}
	pSink = nil
	stealMS := benchStealMS() - steal0
	var nodes int64
	for _, t := range forest {
		nodes += pCount(t)
	}
	wall, cpu := benchNow()-t0, benchCPU()-c0
	if path := os.Getenv("BENCH_SERIES"); path != "" {
		if f, err := os.Create(path); err != nil {
			fmt.Fprintf(os.Stderr, "go: cannot write BENCH_SERIES=%s\n", path)
		} else {
			w := bufio.NewWriter(f)
			fmt.Fprintf(w, "# pause go live_mb=%d churn_mb=%d: seconds stall_ms\n", liveMB, churnMB)
			for k := range gaps {
				fmt.Fprintf(w, "%.6f %.4f\n", gapEnd[k], gaps[k]*1e3)
			}
			w.Flush()
			f.Close()
		}
	}
	sort.Float64s(gaps)
	p99 := 0.0
	if len(gaps) > 0 {
		p99 = gaps[int(0.99*float64(len(gaps)-1))]
	}
	extra := fmt.Sprintf("live_mb=%d nodes=%d build_s=%.3f max_stall_ms=%.3f p99_stall_ms=%.3f steal_ms=%.0f",
		liveMB, nodes, buildS, maxGap*1e3, p99*1e3, stealMS)
	benchReport("pause", wall, cpu, extra)
}
