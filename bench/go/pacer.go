// pacer.go - the shape of bench/pacer.c: L = live_mb MiB live as a ring of slots, each
// a chain of 8 nodes of 32 bytes (264 bytes a slot with the ring's pointer), replaced
// one slot at a time until churn × L bytes of chains have been allocated.  Reported:
// rss_per_live (peak RSS over L) and gc_cpu_pct (MemStats.GCCPUFraction).  GOGC and
// GOMEMLIMIT (bench/run sets them from GCPERCENT and GCMEMLIMIT) steer the pacer.
// With BENCH_SERIES=path the RSS is sampled 32 times per lap and written there, one
// line "seconds rss_mib" per sample.  Usage: pacer-go [live_mb] [churn]
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"unsafe"
)

type pcNode struct {
	next *pcNode
	id   int64 // step * pcChain + position
	pad  [2]int64
}

const (
	pcChain         = 8
	pcSamplesPerLap = 32
)

func pcNewChain(step int64) *pcNode {
	var head *pcNode
	for j := int64(0); j < pcChain; j++ {
		head = &pcNode{next: head, id: step*pcChain + j}
	}
	return head
}

// pcRSSKB is the resident set now, in KiB (the second field of /proc/self/statm).
func pcRSSKB() int64 {
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		return 0
	}
	defer f.Close()
	var pages, resident int64
	if _, err := fmt.Fscan(f, &pages, &resident); err != nil {
		return 0
	}
	return resident * int64(os.Getpagesize()) / 1024
}

type pcSample struct{ t, rssMiB float64 }

func main() {
	liveMB := argInt(1, 64)
	churn := argInt(2, 8)
	if liveMB < 1 || churn < 1 {
		fmt.Fprintln(os.Stderr, "pacer: live_mb and churn must be at least 1")
		os.Exit(2)
	}
	nodeSize := int64(unsafe.Sizeof(pcNode{}))
	slotBytes := pcChain*nodeSize + int64(unsafe.Sizeof(&pcNode{}))
	nslots := (liveMB << 20) / slotBytes
	steps := churn * nslots

	seriesPath := os.Getenv("BENCH_SERIES")
	sampleEvery := nslots / pcSamplesPerLap
	if sampleEvery < 1 {
		sampleEvery = 1
	}
	var samples []pcSample
	if seriesPath != "" {
		samples = make([]pcSample, 0, (nslots+steps)/sampleEvery+2)
	}

	w0, c0 := benchNow(), benchCPU()
	ring := make([]*pcNode, nslots)
	for i := int64(0); i < nslots+steps; i++ {
		ring[i%nslots] = pcNewChain(i)
		if seriesPath != "" && i%sampleEvery == 0 {
			samples = append(samples, pcSample{benchNow() - w0, float64(pcRSSKB()) / 1024})
		}
	}
	wall, cpu := benchNow()-w0, benchCPU()-c0

	for s, c := range ring {
		step, n := c.id/pcChain, 0
		for x := c; x != nil; x = x.next {
			if x.id/pcChain != step || step%nslots != int64(s) {
				fmt.Fprintf(os.Stderr, "pacer: slot %d: node %d of step %d: live data lost\n", s, x.id, step)
				os.Exit(1)
			}
			n++
		}
		if n != pcChain {
			fmt.Fprintf(os.Stderr, "pacer: slot %d: chain of %d nodes\n", s, n)
			os.Exit(1)
		}
	}

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	live := float64(liveMB << 20)
	benchReport("pacer", wall, cpu, fmt.Sprintf("live_mb=%d churn=%d rss_per_live=%.3f gc_cpu_pct=%.2f",
		liveMB, churn, float64(benchMaxRSSKB())*1024/live, 100*ms.GCCPUFraction))

	if seriesPath != "" {
		f, err := os.Create(seriesPath)
		if err != nil {
			fmt.Fprintf(os.Stderr, "go: cannot write BENCH_SERIES=%s\n", seriesPath)
			return
		}
		w := bufio.NewWriter(f)
		fmt.Fprintf(w, "# pacer go live_mb=%d churn=%d: seconds rss_mib\n", liveMB, churn)
		for _, s := range samples {
			fmt.Fprintf(w, "%.6f %.3f\n", s.t, s.rssMiB)
		}
		w.Flush()
		f.Close()
	}
	runtime.KeepAlive(ring)
}
