package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/testing/browser"
	"github.com/logicspike/comms/internal/testing/stacktest"
)

// The reference at /docs renders the API's own document in a real browser, under its
// Content-Security-Policy, from the binary alone (no request leaves the server's origin).
func TestReferenceRendersInABrowser(t *testing.T) {
	t.Parallel()
	browser.Path(t)
	s := stacktest.Start(t, stacktest.Options{})
	page, err := browser.Load(context.Background(), t, s.URL+"/docs", 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Send a message", "sendMessage", "Idempotency-Key", "Messages"} {
		if !strings.Contains(page.DOM, want) {
			t.Errorf("the rendered reference lacks %q (%d bytes of DOM)", want, len(page.DOM))
		}
	}
	for _, line := range page.Console {
		// Redoc's credit links a logo on its CDN; the policy blocks it and Redoc hides the image.
		if strings.Contains(line, "https://cdn.redoc.ly/redoc/logo-mini.svg") {
			continue
		}
		if strings.Contains(line, "Content Security Policy") || strings.Contains(line, "Uncaught") || strings.Contains(line, "Error") {
			t.Errorf("browser console: %s", line)
		}
	}
}
