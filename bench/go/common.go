// common.go - measurement and the result line shared by the Go versions of the
// Tricolor benchmarks.  Each workload is one file built together with this one:
//
//	go build -o gcbench-go common.go gcbench.go
//
// The line has the same format as the C programs' (bench/peer.h), with peer=go:
// wall from the monotonic clock, CPU from CLOCK_PROCESS_CPUTIME_ID (every thread),
// peak RSS from getrusage (KiB on Linux), cycles and the longest pause from
// runtime.MemStats (PauseNs keeps the last 256 cycles, both pauses of a cycle summed).
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

const clockProcessCPUTimeID = 2 // CLOCK_PROCESS_CPUTIME_ID

var benchEpoch = time.Now()

// benchNow is the monotonic time in seconds.
func benchNow() float64 { return time.Since(benchEpoch).Seconds() }

// benchCPU is the process's CPU time (user + system, all threads) in seconds.
func benchCPU() float64 {
	var ts syscall.Timespec
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockProcessCPUTimeID,
		uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

// benchStealMS is the CPU time the host has kept from this (virtual) machine since
// boot, all CPUs, in ms: the steal column of /proc/stat's "cpu" line (USER_HZ ticks,
// 100 a second on Linux); 0 where there is none.
func benchStealMS() float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line := strings.SplitN(string(data), "\n", 2)[0]
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	v, err := strconv.ParseFloat(f[8], 64)
	if err != nil {
		return 0
	}
	return v * 10
}

func benchMaxRSSKB() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss
}

// benchReport prints the one result line bench/run parses.
func benchReport(workload string, wall, cpu float64, extra string) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var maxPause uint64
	n := int(ms.NumGC)
	if n > len(ms.PauseNs) {
		n = len(ms.PauseNs)
	}
	for i := 0; i < n; i++ {
		if ms.PauseNs[i] > maxPause {
			maxPause = ms.PauseNs[i]
		}
	}
	sep := ""
	if extra != "" {
		sep = " "
	}
	fmt.Printf("peer=go workload=%s wall_s=%.4f cpu_s=%.4f maxrss_kb=%d cycles=%d max_pause_ms=%.3f%s%s\n",
		workload, wall, cpu, benchMaxRSSKB(), ms.NumGC, float64(maxPause)/1e6, sep, extra)
}

// argInt returns os.Args[i] as an integer, or def when it is absent.
func argInt(i int, def int64) int64 {
	if len(os.Args) <= i {
		return def
	}
	v, err := strconv.ParseInt(os.Args[i], 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: bad argument %q\n", os.Args[0], os.Args[i])
		os.Exit(2)
	}
	return v
}
