// gcbench.go - the GCBench shape of bench/gcbench.c: a long-lived tree (depth 16) and
// a 500000-element float array stay live while complete binary trees of depths
// 4, 6, ..., 16 are built top-down (populated after allocation) and bottom-up
// (children first); a stretch tree of depth 18 comes first.
package main

import (
	"fmt"
	"os"
	"runtime"
)

type gcNode struct {
	left, right *gcNode
	i, j        int32
}

const (
	gcStretchDepth   = 18
	gcLongLivedDepth = 16
	gcArraySize      = 500000
	gcMinDepth       = 4
	gcMaxDepth       = 16
)

func gcTreeSize(depth int) int64 { return (int64(1) << (depth + 1)) - 1 }

func gcIterations(depth int) int64 { return 2 * gcTreeSize(gcStretchDepth) / gcTreeSize(depth) }

func gcNewNode(l, r *gcNode) *gcNode { return &gcNode{left: l, right: r} }

func gcPopulate(depth int, n *gcNode) {
	if depth <= 0 {
		return
	}
	n.left = gcNewNode(nil, nil)
	n.right = gcNewNode(nil, nil)
	gcPopulate(depth-1, n.left)
	gcPopulate(depth-1, n.right)
}

func gcMakeTree(depth int) *gcNode {
	if depth <= 0 {
		return gcNewNode(nil, nil)
	}
	l := gcMakeTree(depth - 1)
	return gcNewNode(l, gcMakeTree(depth-1))
}

var gcSink *gcNode

func main() {
	w0, c0 := benchNow(), benchCPU()

	gcSink = gcMakeTree(gcStretchDepth)
	gcSink = nil

	longLived := gcNewNode(nil, nil)
	gcPopulate(gcLongLivedDepth, longLived)
	array := make([]float64, gcArraySize)
	for i := 0; i < gcArraySize/2; i++ {
		array[i] = 1.0 / float64(i)
	}

	for d := gcMinDepth; d <= gcMaxDepth; d += 2 {
		n := gcIterations(d)
		for k := int64(0); k < n; k++ {
			t := gcNewNode(nil, nil)
			gcPopulate(d, t)
			gcSink = t
		}
		for k := int64(0); k < n; k++ {
			gcSink = gcMakeTree(d)
		}
	}
	gcSink = nil
	if longLived.left == nil || array[1000] != 1.0/1000 {
		fmt.Fprintln(os.Stderr, "gcbench: live data lost")
		os.Exit(1)
	}
	benchReport("gcbench", benchNow()-w0, benchCPU()-c0, "")
	runtime.KeepAlive(longLived)
	runtime.KeepAlive(array)
}
