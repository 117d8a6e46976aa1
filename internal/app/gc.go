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
// to; with Go's default, collections come every second or two under load, and a tenant's slowest
// messages are mostly the ones that overlap one. The price is memory: the heap may reach five
// times what is live, so containers should set GOMEMLIMIT (the Kubernetes manifests do), which
// makes the collector run sooner near the limit.
const DefaultGCPercent = 400

// TuneGC applies DefaultGCPercent unless GOGC is set (the runtime has applied that already).
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(DefaultGCPercent)
	}
}
