package app

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "") // restored after the test

	t.Run("GOGC unset: our default", func(t *testing.T) {
		if err := os.Unsetenv("GOGC"); err != nil {
			t.Fatal(err)
		}
		debug.SetGCPercent(100)
		TuneGC()
		if got := debug.SetGCPercent(100); got != DefaultGCPercent {
			t.Fatalf("GC percent = %d, want %d", got, DefaultGCPercent)
		}
	})
	t.Run("GOGC set: the runtime's value stands", func(t *testing.T) {
		t.Setenv("GOGC", "150")
		debug.SetGCPercent(150) // what the runtime read at start-up
		TuneGC()
		if got := debug.SetGCPercent(100); got != 150 {
			t.Fatalf("GC percent = %d, want 150 (GOGC)", got)
		}
	})
}
