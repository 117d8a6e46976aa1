package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/logicspike/comms/internal/reports"
	"github.com/logicspike/comms/internal/store"
)

// usageExport writes a month's billing export (docs/usage.md) to -o or out, reporting progress
// on progress once a second.
func usageExport(ctx context.Context, st *store.Store, args []string, out, progress io.Writer) error {
	fs := flag.NewFlagSet("usage export", flag.ContinueOnError)
	monthArg := fs.String("month", "", "UTC calendar month, such as 2026-11 (required)")
	tenant := fs.String("tenant", "", "only this tenant's messages (default: every tenant)")
	file := fs.String("o", "", "write to this file instead of stdout")
	if err := fs.Parse(args); err != nil || *monthArg == "" {
		return errUsage
	}
	month, err := time.Parse("2006-01", *monthArg)
	if err != nil {
		return fmt.Errorf("-month %q: want a month such as 2026-11", *monthArg)
	}
	if *file != "" {
		f, err := os.Create(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	lines := &lineCounter{w: out}
	start := time.Now()
	report := func(final bool) {
		n := max(lines.n.Load()-1, 0) // the header is not a row
		rate := float64(n) / max(time.Since(start).Seconds(), 0.001)
		verb := "exported"
		if !final {
			verb = "exporting:"
		}
		fmt.Fprintf(progress, "%s %d rows (%.0f rows/s)\n", verb, n, rate)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				report(false)
			}
		}
	}()
	_, err = reports.New(st).Export(ctx, lines, *tenant, month)
	close(stop)
	<-done
	if err != nil {
		return err
	}
	report(true)
	if f, ok := out.(*os.File); ok && *file != "" {
		return f.Sync()
	}
	return nil
}

// lineCounter counts the lines written through it.
type lineCounter struct {
	w io.Writer
	n atomic.Int64
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n.Add(int64(bytes.Count(p, []byte{'\n'})))
	return c.w.Write(p)
}
