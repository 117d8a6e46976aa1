package main

import (
	"flag"
	"fmt"
	"io"
	"sync"
	"text/tabwriter"
	"time"
)

// Every list and show takes -o table (the default, for people) or -o json (one JSON document on
// stdout, for jq and scripts). Human notes go to stderr, so stdout stays parseable.

func outputFlag(fs *flag.FlagSet) *string {
	return fs.String("o", "table", "output: table or json")
}

// table is what a command prints in table form: a header and its rows.
type table struct {
	header string
	rows   [][]any
}

func (t *table) add(cells ...any) { t.rows = append(t.rows, cells) }

// emit writes v as JSON, or t as a table, as format asks.
func emit(out io.Writer, format string, v any, t *table) error {
	switch format {
	case "json":
		return printJSON(out, v)
	case "table", "":
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, t.header)
		for _, r := range t.rows {
			for i, c := range r {
				if i > 0 {
					fmt.Fprint(tw, "\t")
				}
				if ts, ok := c.(time.Time); ok {
					c = ts.UTC().Format(time.RFC3339)
				}
				fmt.Fprint(tw, c)
			}
			fmt.Fprintln(tw)
		}
		return tw.Flush()
	}
	return fmt.Errorf("%w: -o %q: want table or json", errUsage, format)
}

// checkFormat refuses an unknown -o before a command does any work.
func checkFormat(format string) error {
	if format != "table" && format != "json" {
		return fmt.Errorf("%w: -o %q: want table or json", errUsage, format)
	}
	return nil
}

// progress returns a reporter printing "<verb> done of total (rate/s)" to w at most once a
// second, and always the last figure (done == total).
func progress(w io.Writer, verb, unit string) func(done, total int) {
	start := time.Now()
	var mu sync.Mutex
	var last time.Time
	return func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		if done < total && time.Since(last) < time.Second {
			return
		}
		last = time.Now()
		rate := float64(done) / max(time.Since(start).Seconds(), 0.001)
		fmt.Fprintf(w, "%s %d of %d %s (%.0f/s)\n", verb, done, total, unit, rate)
	}
}
