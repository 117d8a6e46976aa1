// Package browser loads pages in a real headless Chromium (Debian's chromium package) for tests:
// the page's scripts run, and what they rendered comes back as the DOM, with the browser's console
// (where Content-Security-Policy violations and script errors show).
package browser

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Path finds Chromium. A test that needs it skips when it is missing, unless
// COMMS_REQUIRE_BROWSER is set (CI installs it and sets that), where it fails.
func Path(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("COMMS_REQUIRE_BROWSER") != "" {
		tb.Fatal("chromium is not installed (apt-get install chromium)")
	}
	tb.Skip("chromium is not installed; set COMMS_REQUIRE_BROWSER=1 to make this a failure")
	return ""
}

// Page is what a page rendered.
type Page struct {
	DOM     string   // the document after its scripts ran
	Console []string // console messages and errors the browser logged
}

// Load renders url in a fresh headless browser profile, letting scripts run for up to budget of
// virtual time.
func Load(ctx context.Context, tb testing.TB, url string, budget time.Duration) (Page, error) {
	tb.Helper()
	bin := Path(tb)
	ctx, cancel := context.WithTimeout(ctx, budget+60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--user-data-dir="+tb.TempDir(), "--enable-logging=stderr", "--v=0",
		fmt.Sprintf("--virtual-time-budget=%d", budget.Milliseconds()), "--dump-dom", url)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return Page{}, fmt.Errorf("chromium: %w: %s", err, tail(errOut.String(), 2000))
	}
	var console []string
	for _, line := range strings.Split(errOut.String(), "\n") {
		if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Content Security Policy") || strings.Contains(line, "Uncaught") {
			console = append(console, line)
		}
	}
	return Page{DOM: out.String(), Console: console}, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
