// Package benchcpu reports CPU time per operation in Go benchmarks, beside the wall time that `go test -bench`
// reports: on a shared machine it moves much less. e2e/bench reads it as the cpu-ns/op metric.
package benchcpu

import (
	"syscall"
	"testing"
	"time"
)

// PerOp reports the process's CPU time (user + system, every thread, so the garbage collector's work is in)
// per operation as cpu-ns/op. Call it before b.Loop and the returned func after.
func PerOp(b *testing.B) func() {
	start := processCPU()
	return func() { b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op") }
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
