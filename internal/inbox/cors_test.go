package inbox_test

import (
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

// A page of one of the tenant's inbox_origins reads and marks the inbox from the browser (fetch
// with the token in Authorization, through the CORS preflight); a page of any other origin can
// neither read the answer nor change anything, in Chromium.
func TestAPageOfAnAllowedOriginReadsTheInboxInChromium(t *testing.T) {
	browser.Path(t)
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	_, key := s.Tenant()
	page := func() *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(`<!doctype html><title>app</title><p id="ok">app</p>`))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	app, other := page(), page()
	var settings api.Tenant
	if resp := s.Do("PATCH", "/v1/settings", key, map[string]any{"inbox_origins": []string{app.URL}}, nil, &settings); resp.StatusCode != 200 ||
		len(settings.InboxOrigins) != 1 {
		t.Fatalf("inbox_origins: %d %+v", resp.StatusCode, settings)
	}
	var prob api.Problem
	if resp := s.Do("PATCH", "/v1/settings", key, map[string]any{"inbox_origins": []string{"https://app.acme.example/path"}}, nil, &prob); resp.StatusCode != 422 ||
		len(prob.Errors) != 1 || prob.Errors[0].Field != "inbox_origins[0]" {
		t.Fatalf("an origin with a path: %d %+v", resp.StatusCode, prob)
	}
	s.Do("PUT", "/v1/recipients/u_1", key, map[string]any{}, nil, nil)
	id := s.Send(key, "", message.Request{Channel: message.InApp, Recipient: "u_1", InApp: &message.InAppContent{Title: "from comms"}})
	s.WaitAllFinal(30 * time.Second)
	var tok api.InboxToken
	s.Do("POST", "/v1/recipients/u_1/inbox-tokens", key, nil, nil, &tok)

	call := func(method, path string) string {
		return `fetch(` + quote(s.URL+path) + `, {method: "` + method + `", headers: {Authorization: "Bearer ` + tok.Token + `"}})
			.then(r => r.status + " " + r.headers.get("content-type")).then(t => t, e => "blocked: " + e.message)
			.catch(e => "blocked: " + e.message)`
	}
	tab := browser.NewTab(t)
	tab.Do("open the other origin's page", chromedp.Navigate(other.URL), chromedp.WaitVisible(`#ok`))
	if got := tab.Get("read from another origin", chromedp.Evaluate[string](call("GET", "/v1/inbox"), chromedp.EvalAwaitPromise)); !strings.HasPrefix(got, "blocked") {
		t.Fatalf("another origin read the inbox: %s", got)
	}
	tab.Get("mark from another origin", chromedp.Evaluate[string](call("POST", "/v1/inbox/"+id+"/read"), chromedp.EvalAwaitPromise))
	var page1 inboxPage
	if s.Do("GET", "/v1/inbox", tok.Token, nil, nil, &page1); page1.UnreadCount != 1 {
		t.Fatalf("a call from another origin changed the inbox: %+v", page1)
	}

	tab.Do("open the app's page", chromedp.Navigate(app.URL), chromedp.WaitVisible(`#ok`))
	if got := tab.Get("read from the app", chromedp.Evaluate[string](call("GET", "/v1/inbox"), chromedp.EvalAwaitPromise)); got != "200 application/json" {
		t.Fatalf("the app's page reads: %s", got)
	}
	if got := tab.Get("mark from the app", chromedp.Evaluate[string](call("POST", "/v1/inbox/"+id+"/read"), chromedp.EvalAwaitPromise)); got != "200 application/json" {
		t.Fatalf("the app's page marks: %s", got)
	}
	if s.Do("GET", "/v1/inbox", tok.Token, nil, nil, &page1); page1.UnreadCount != 0 {
		t.Fatalf("after the app's read: %+v", page1)
	}
	// The browser reports each refused call in its console, as it gets to it: by now it has. A
	// failure of the app's own calls would have failed the checks above.
	tab.Forgive("blocked by CORS policy")
	tab.Forgive("net::ERR_FAILED")
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
