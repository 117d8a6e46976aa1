package browser

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Tab is one headless Chromium tab driven through chromedp. Every console message, exception
// and browser-log entry (CSP violations are these) is kept, and fails the test when it ends.
// Each step has 30 s; a failed step fails the test.
type Tab struct {
	t        testing.TB
	ctx      context.Context
	shots    string
	mu       sync.Mutex
	problems []string
}

// Forgive drops the console messages so far that contain s: a step that loads a page answered
// with an error status on purpose (a 404 page) forgives "status of 404", since the browser
// reports every such load.
func (tab *Tab) Forgive(s string) {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	kept := tab.problems[:0]
	for _, p := range tab.problems {
		if !strings.Contains(p, s) {
			kept = append(kept, p)
		}
	}
	tab.problems = kept
}

// NewTab starts Chromium for t. Screenshots go to COMMS_SCREENSHOT_DIR (default: a temporary
// folder).
func NewTab(t testing.TB) *Tab {
	t.Helper()
	bin := Path(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true))...)
	ctx, cancel := chromedp.NewContext(alloc)
	tab := &Tab{t: t, ctx: ctx, shots: os.Getenv("COMMS_SCREENSHOT_DIR")}
	if tab.shots == "" {
		tab.shots = t.TempDir()
	}
	if err := os.MkdirAll(tab.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			tab.mu.Lock()
			tab.problems = append(tab.problems, m.String())
			tab.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		tab.mu.Lock()
		problems := tab.problems
		tab.mu.Unlock()
		cancel()
		cancelAlloc()
		if len(problems) > 0 {
			t.Errorf("the browser reported:\n%s", strings.Join(problems, "\n"))
		}
	})
	return tab
}

// Do runs actions as one step named what.
func (tab *Tab) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tab.t.Fatalf("%s: %v", what, err)
	}
}

// Get runs a and returns its string.
func (tab *Tab) Get(what string, a chromedp.Action[string]) string {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tab.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// Count is how many elements match the CSS selector.
func (tab *Tab) Count(selector string) int {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, 30*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", selector)))
	if err != nil {
		tab.t.Fatalf("count %s: %v", selector, err)
	}
	return n
}

// Location is the page's URL.
func (tab *Tab) Location() string { return tab.Get("location", chromedp.Location()) }

// Shoot saves full-page screenshots of the page at 1280 and 390 px wide, as page-1280.png and
// page-390.png, and leaves the tab at 1280. It checks the screen-reader basics of the page too:
// every field has a label, and every image or frame a text alternative.
func (tab *Tab) Shoot(page string) {
	tab.t.Helper()
	unlabelled := tab.Get("unlabelled fields of "+page, chromedp.Evaluate[string](`[
		...[...document.querySelectorAll('input:not([type=hidden]), select, textarea')].filter(e => !e.labels || e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.outerHTML),
		...[...document.querySelectorAll('img:not([alt]), svg:not([aria-label]):not([aria-labelledby]):not([aria-hidden=true]), iframe:not([title])')].map(e => e.outerHTML.slice(0, 120)),
	].join('\n')`))
	if unlabelled != "" {
		tab.t.Errorf("%s: without a label or text alternative:\n%s", page, unlabelled)
	}
	for _, width := range []int64{390, 1280} {
		tab.Do("resize for "+page, chromedp.EmulateViewport(width, 900))
		ctx, cancel := context.WithTimeout(tab.ctx, 30*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			tab.t.Fatalf("screenshot %s: %v", page, err)
		}
		if err := os.WriteFile(filepath.Join(tab.shots, fmt.Sprintf("%s-%d.png", page, width)), png, 0o644); err != nil {
			tab.t.Fatal(err)
		}
	}
}

// Press clicks the element at click (a submit button or a link), then waits until the next page
// has loaded and shows waitFor: the current document is marked first, so an element of the
// page being left cannot satisfy the wait.
func (tab *Tab) Press(what, click, waitFor string) {
	tab.t.Helper()
	tab.Do(what, chromedp.Evaluate[chromedp.Void](`document.documentElement.dataset.left = "1"`), chromedp.Click(click),
		chromedp.WaitVisible(`html:not([data-left]) `+waitFor))
}

// FrameURLs lists the URLs the page's frames show now, after any redirect: those in the page's
// process, and those Chromium runs in their own (a sandboxed frame, for one).
func (tab *Tab) FrameURLs() []string {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, 30*time.Second)
	defer cancel()
	res, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
	if err != nil {
		tab.t.Fatalf("frames: %v", err)
	}
	var out []string
	for _, c := range res.FrameTree.ChildFrames {
		out = append(out, c.Frame.URL)
	}
	targets, err := chromedp.Targets(ctx)
	if err != nil {
		tab.t.Fatalf("targets: %v", err)
	}
	for _, t := range targets {
		if t.Type == "iframe" {
			out = append(out, t.URL)
		}
	}
	return out
}
