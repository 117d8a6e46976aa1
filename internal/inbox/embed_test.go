package inbox_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/testing/browser"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
)

// The <comms-inbox> element, as docs/inbox.md tells a tenant to embed it, on a page of the
// tenant's own origin (another than comms'): the bell counts the unread messages; the list shows
// them; a message sent while the page is open appears at once; reading one and reading all
// change the inbox itself, not only the page; a message's text is shown as text, never markup.
func TestTheEmbeddedInboxInChromium(t *testing.T) {
	browser.Path(t)
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	tenantID, key := s.Tenant()
	s.Do("PUT", "/v1/recipients/u_1", key, map[string]any{}, nil, nil)
	send := func(title string) string {
		return s.Send(key, "", message.Request{Channel: message.InApp, Recipient: "u_1", InApp: &message.InAppContent{Title: title, Body: "body of " + title}})
	}
	send("Invoice ready")
	send(`<img src=x onerror="document.title='injected'">`)
	s.WaitAllFinal(30 * time.Second)
	var tok api.InboxToken
	s.Do("POST", "/v1/recipients/u_1/inbox-tokens", key, nil, nil, &tok)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><title>app</title>
<script src="` + s.URL + `/v1/inbox/embed.js" defer></script>
<comms-inbox api="` + s.URL + `" token="` + tok.Token + `"></comms-inbox>`))
	}))
	t.Cleanup(app.Close)
	s.Do("PATCH", "/v1/settings", key, map[string]any{"inbox_origins": []string{app.URL}}, nil, nil)

	tab := browser.NewTab(t)
	tab.Do("open the app's page", chromedp.Navigate(app.URL))
	shadow := func(js string) string {
		return `(() => { const r = document.querySelector("comms-inbox").shadowRoot; return ` + js + ` })()`
	}
	waitFor := func(what, js, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := tab.Get(what, chromedp.Evaluate[string](shadow(js)))
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %q, want %q", what, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	badge := `r.getElementById("badge").hidden ? "hidden" : r.getElementById("badge").textContent`
	titles := `[...r.querySelectorAll("li .title")].map(e => e.textContent).join(" | ")`
	waitFor("the bell's count", badge, "2")
	click := func(what, js string) { tab.Get(what, chromedp.Evaluate[string](shadow(`(`+js+`.click(), "ok")`))) }
	click("open the list", `r.getElementById("bell")`)
	waitFor("the list", titles, `<img src=x onerror="document.title='injected'"> | Invoice ready`)

	shipped := send("Shipped") // live, through the stream
	waitFor("the bell after a new message", badge, "3")
	waitFor("the list after a new message", titles, `Shipped | <img src=x onerror="document.title='injected'"> | Invoice ready`)
	// A message announced again (as one that reached the inbox as the stream opened may be) is
	// shown and counted once.
	s.Announcer().Arrived(context.Background(), tenantID, "u_1", shipped)
	send("Delivered")
	waitFor("the list after a message announced twice", titles, `Delivered | Shipped | <img src=x onerror="document.title='injected'"> | Invoice ready`)
	waitFor("the bell after a message announced twice", badge, "4")

	click("read one", `r.querySelector("li[data-id]")`)
	waitFor("the bell after reading one", badge, "3")
	var page inboxPage
	if s.Do("GET", "/v1/inbox", tok.Token, nil, nil, &page); page.UnreadCount != 3 {
		t.Fatalf("the inbox after reading one on the page: %+v", page)
	}
	click("read all", `r.getElementById("read-all")`)
	waitFor("the bell after reading all", badge, "hidden")
	if s.Do("GET", "/v1/inbox", tok.Token, nil, nil, &page); page.UnreadCount != 0 {
		t.Fatalf("the inbox after reading all on the page: %+v", page)
	}
	if got := tab.Get("the page's title", chromedp.Evaluate[string](`document.title`)); got != "app" || strings.Contains(got, "injected") {
		t.Fatalf("a message's text ran as markup: title %q", got)
	}
}
