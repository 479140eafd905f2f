// alloc.go - the allocation fast path of bench/alloc.c: n objects of size bytes
// (default 50000000 of 32 B), nothing retained, in ns per allocation including the
// collector's share.  Objects hold pointers (scanned), like gc_malloc's, so the size
// is rounded up to a multiple of 8.  Usage: alloc-go [n] [size]
package main

import (
	"fmt"
	"unsafe"
)

var allocSink []unsafe.Pointer

func main() {
	n := argInt(1, 50000000)
	size := argInt(2, 32)
	words := int((size + 7) / 8)
	if words < 1 {
		words = 1
	}
	w0, c0 := benchNow(), benchCPU()
	for i := int64(0); i < n; i++ {
		allocSink = make([]unsafe.Pointer, words)
	}
	wall, cpu := benchNow()-w0, benchCPU()-c0
	allocSink = nil
	benchReport("alloc", wall, cpu, fmt.Sprintf("ns_per_alloc=%.2f size=%d", wall*1e9/float64(n), size))
}
