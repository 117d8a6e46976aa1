package app

import (
	"os"
	"runtime/debug"
)

// DefaultGCPercent is the garbage collector's target for our binaries when GOGC is not set: the
// heap may grow to 5× what is live between collections, against Go's default of 2×.
//
// Why: each collection's mark phase takes a quarter of the process's CPU and makes allocating
// goroutines assist, so every message in flight during it is slowed, whichever tenant it belongs
// to. With Go's default the dev stack collected every 1–2 s (50–100 ms of marking behind a hanging
// provider's thousands of waiting sends), and 53% of tenant A's slowest 1% of messages overlapped
// a collection, against 5% of the rest (docs/benchmarks.md, isolation). The price is memory:
// a worker holding 70 MB live may reach 350 MB, so containers should set GOMEMLIMIT (the
// Kubernetes manifests do), which makes the collector run sooner near the limit.
const DefaultGCPercent = 400

// TuneGC applies DefaultGCPercent unless GOGC is set (the runtime has applied that already).
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(DefaultGCPercent)
	}
}
