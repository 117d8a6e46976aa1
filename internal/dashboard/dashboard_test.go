package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/logicspike/comms/internal/dashboard"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/browser"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// hostile is provider text that would run script if it were not escaped.
const hostile = `<img src=x onerror="document.title='pwned'"><script>document.title='pwned'</script>`

// A tenant signs in with its key in headless Chromium, sees the same totals as the analytics
// API, reads a provider error whose hostile text stays inert, finds a message and its timeline
// (its hostile subject inert too), signs out, and loses its session when its key is revoked. Any console error or CSP violation fails the test. Screenshots of
// each page at 1280 and 390 px go to COMMS_SCREENSHOT_DIR (default: a temporary folder).
func TestDashboardInChromium(t *testing.T) {
	browser.Path(t)
	s := stacktest.Start(t, stacktest.Options{})
	tid, key := s.Tenant()
	ctx := context.Background()
	if _, err := s.Pool.Exec(ctx, `
		INSERT INTO communication.analytics_hourly (tenant_id, channel, bucket, sent, delivered, opened, clicked, failed)
		SELECT $1, ch, date_trunc('hour', now()) - h * interval '1 hour', 100 + h, 90 + h, 40, 7, 3
		FROM generate_series(0, 47) AS h, unnest(ARRAY['sms', 'email']) AS ch`, tid); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `
		INSERT INTO communication.provider_errors_hourly (tenant_id, bucket, channel, provider_type, provider_config_id, error_code, count, last_message, last_provider_code, last_at)
		VALUES ($1, date_trunc('hour', now()), 'sms', 'twilio', 'prv_x', 'insufficient_funds', 4, $2, '20005', now())`, tid, hostile); err != nil {
		t.Fatal(err)
	}
	tab := browser.NewTab(t)

	// Signing in: / leads there; a wrong key is refused with a message.
	tab.Do("open /", chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(`#key`))
	if loc := tab.Location(); !strings.HasSuffix(loc, "/ui/signin") {
		t.Fatalf("/ led to %s", loc)
	}
	tab.Shoot("signin")
	tab.Do("a wrong key", chromedp.SendKeys(`#key`, "ck_tenant_wrong"), chromedp.Submit(`#key`), chromedp.WaitVisible(`.error`))
	if text := tab.Get("the error", chromedp.Text(`.error`)); !strings.Contains(text, "not a valid") {
		t.Fatalf("wrong key: %q", text)
	}
	signIn(tab, s, key, `#total-sent`)
	// The overview's totals are the analytics API's.
	var api struct {
		Totals struct{ Sent, Delivered, Opened, Clicked, Failed, Read int64 }
	}
	from := url.QueryEscape(time.Now().UTC().Add(-7 * 24 * time.Hour).Format(time.RFC3339))
	if resp := s.Do("GET", "/v1/analytics/timeseries?interval=day&from="+from, key, nil, nil, &api); resp.StatusCode != 200 {
		t.Fatalf("analytics: %d", resp.StatusCode)
	}
	for id, want := range map[string]int64{"sent": api.Totals.Sent, "delivered": api.Totals.Delivered, "opened": api.Totals.Opened,
		"clicked": api.Totals.Clicked, "failed": api.Totals.Failed, "read": api.Totals.Read} {
		if text := tab.Get("read "+id, chromedp.Text(`#total-`+id)); text != fmt.Sprint(want) || want == 0 && id != "read" {
			t.Errorf("overview %s = %s, the API says %d", id, text, want)
		}
	}
	if n := tab.Count("svg.chart polyline"); n != len([]string{"sent", "delivered", "opened", "clicked", "read", "failed"}) {
		t.Fatalf("the chart has %d lines, want 6", n)
	}
	tab.Shoot("overview")
	// The keyboard reaches the skip link first, then the pages.
	tab.Do("tab", chromedp.KeyEvent("\t"))
	if c := tab.Get("focus", chromedp.Evaluate[string](`document.activeElement.className`)); c != "skip" {
		t.Fatalf("the first Tab focuses %q, want the skip link", c)
	}
	tab.Do("tab", chromedp.KeyEvent("\t"))
	if c := tab.Get("focus", chromedp.Evaluate[string](`document.activeElement.textContent + " " + document.activeElement.getAttribute("aria-current")`)); c != "Overview page" {
		t.Fatalf("the second Tab focuses %q, want the current page's link", c)
	}

	// Provider errors: the hostile words are shown as text; nothing of them runs or loads.
	tab.Do("provider errors", chromedp.Navigate(s.URL+"/ui/errors"), chromedp.WaitVisible(`td.words`))
	text := tab.Get("the words", chromedp.Text(`td.words`))
	if !strings.Contains(text, hostile) || tab.Count("main script, main img") != 0 || tab.Get("title", chromedp.Title()) == "pwned" {
		t.Fatalf("hostile provider text: shown %q", text)
	}
	if row := tab.Get("the advice", chromedp.Text(`tbody tr`)); !strings.Contains(row, "Top up") {
		t.Fatalf("no advice for insufficient_funds: %q", row)
	}
	tab.Shoot("errors")

	// Messages: a search by recipient finds the message; its page shows its timeline, and its
	// hostile subject stays text.
	id := s.Send(key, "", message.Request{Channel: message.Email, To: "ada@example.com", Subject: hostile, Text: "hello"})
	s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: "someone else"})
	tab.Do("search messages", chromedp.Navigate(s.URL+"/ui/messages"), chromedp.WaitVisible(`#to`), chromedp.SendKeys(`#to`, "ada@example.com"))
	tab.Press("search", `form[role=search] button`, `tbody tr`)
	if n := tab.Count("tbody tr"); n != 1 {
		t.Fatalf("the search found %d messages, want 1", n)
	}
	tab.Shoot("messages")
	tab.Do("open the message", chromedp.Click(`tbody tr a`), chromedp.WaitVisible(`.timeline li`))
	if loc := tab.Location(); !strings.HasSuffix(loc, "/ui/messages/"+id) {
		t.Fatalf("the result led to %s", loc)
	}
	subject := tab.Get("subject", chromedp.Text(`#subject`))
	if subject != hostile || tab.Count("main script, main img") != 0 || tab.Get("title", chromedp.Title()) == "pwned" {
		t.Fatalf("hostile subject: shown %q", subject)
	}
	if tl := tab.Get("timeline", chromedp.Text(`.timeline`)); !strings.Contains(tl, "queued") {
		t.Fatalf("timeline: %q", tl)
	}
	tab.Shoot("message")

	// Past the content retention the page says the content was removed, and shows none.
	if _, err := s.Pool.Exec(context.Background(), `UPDATE communication.message_logs SET subject = '', body_text = '', body_html = '',
		content_purged_at = now() WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	tab.Do("reload the purged message", chromedp.Reload(), chromedp.WaitVisible(`#content-purged`))
	if got := tab.Get("content", chromedp.Text(`#content-purged`)); !strings.Contains(got, "Removed") || tab.Count("#subject") != 0 {
		t.Fatalf("a purged message shows %q, and %d subjects", got, tab.Count("#subject"))
	}
	// Past the history retention (90 days by default) a message is gone, and the page says so.
	old := ids.NewSortableAt(ids.Message, time.Now().Add(-91*24*time.Hour))
	tab.Do("open an expired message", chromedp.Navigate(s.URL+"/ui/messages/"+old), chromedp.WaitVisible(`#expired`))
	tab.Do("open an unknown message", chromedp.Navigate(s.URL+"/ui/messages/"+ids.NewSortable(ids.Message)), chromedp.WaitVisible(`main h1`))
	if tab.Count("#expired") != 0 {
		t.Fatal("a message that never existed shows as expired")
	}
	tab.Forgive("status of 404") // the two pages answered 404, as they should

	// Recipients: the categories, the profiles, and a profile's page with its preferences and messages.
	for _, c := range []map[string]any{{"key": "news", "name": "Newsletter", "kind": "marketing", "default": "out"},
		{"key": "security", "name": "Security alerts", "default": "in", "required": true}} {
		if resp := s.Do("POST", "/v1/categories", key, c, nil, nil); resp.StatusCode != 201 {
			t.Fatalf("category: %d", resp.StatusCode)
		}
	}
	if resp := s.Do("PUT", "/v1/recipients/u_1", key, map[string]any{"email": "grace@example.com", "phone": "+14155550188"}, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("profile: %d", resp.StatusCode)
	}
	if resp := s.Do("PUT", "/v1/recipients/u_1/preferences", key, map[string]any{"categories": map[string]any{"news": map[string]any{"email": true}}}, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("preferences: %d", resp.StatusCode)
	}
	sentTo := s.Send(key, "", message.Request{Channel: message.Email, Recipient: "u_1", Subject: "News", Text: "t", Category: "news"})
	tab.Do("open the recipients", chromedp.Navigate(s.URL+"/ui/recipients"), chromedp.WaitVisible(`#people`))
	if got := tab.Get("categories", chromedp.Text(`#categories`)); !strings.Contains(got, "Newsletter") || !strings.Contains(got, "Security alerts") {
		t.Fatalf("the categories show %q", got)
	}
	if resp := s.Do("PUT", "/v1/recipients/u_2", key, map[string]any{"email": "alan@example.com", "phone": "+14155550189"}, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("profile: %d", resp.StatusCode)
	}
	find := func(q string) string {
		tab.Do("find "+q, chromedp.Navigate(s.URL+"/ui/recipients"), chromedp.WaitVisible(`#q`), chromedp.SendKeys(`#q`, q))
		tab.Press("find", `#find-recipient button`, `#q`)
		if tab.Count(`#people`) == 0 {
			return tab.Get("nobody", chromedp.Text(`#no-people`))
		}
		return tab.Get("found", chromedp.Text(`#people tbody`))
	}
	for q, want := range map[string]string{"u_2": "alan@example.com", "GRACE@example.com": "u_1", "+14155550189": "u_2", "nobody@example.com": "Nobody with"} {
		if got := find(q); !strings.Contains(got, want) || strings.Count(got, "@example.com") > 1 {
			t.Fatalf("finding %s shows %q", q, got)
		}
	}
	tab.Do("open a profile", chromedp.Navigate(s.URL+"/ui/recipients?q=u_1"), chromedp.WaitVisible(`#people`), chromedp.Click(`#people a`), chromedp.WaitVisible(`#preferences`))
	prefs := tab.Get("preferences", chromedp.Text(`#preferences`))
	if !strings.Contains(prefs, "Newsletter") || !strings.Contains(prefs, "by them") || !strings.Contains(prefs, "Security alerts (required)") ||
		tab.Count(`#their-messages tbody tr`) != 1 || !strings.Contains(tab.Get("their messages", chromedp.Evaluate[string](`document.querySelector('#their-messages a').pathname`)), sentTo) {
		t.Fatalf("the profile page: preferences %q, %d messages", prefs, tab.Count(`#their-messages tbody tr`))
	}
	tab.Shoot("recipient")

	// An SMS a person sent to the tenant's number shows as inbound, with what they wrote.
	in, _, err := s.Store.RecordInbound(context.Background(), store.Inbound{TenantID: tid, ConfigID: "prv_twilio", ProviderType: "twilio",
		Message: provider.InboundMessage{ProviderMessageID: "SM1", From: "+14155550177", To: "+14155550100", Text: "What time do you open?"}})
	if err != nil {
		t.Fatal(err)
	}
	tab.Do("open the inbound message", chromedp.Navigate(s.URL+"/ui/messages/"+in), chromedp.WaitVisible(`#direction`))
	if got := tab.Get("direction", chromedp.Text(`#direction`)) + " | " + tab.Get("text", chromedp.Text(`#inbound-text`)); got !=
		"inbound: +14155550177 wrote to +14155550100 | What time do you open?" || !strings.Contains(tab.Get("timeline", chromedp.Text(`.timeline`)), "received") {
		t.Fatalf("the inbound message shows %q", got)
	}

	// Signing out ends the session: the overview sends the browser back to sign in.
	tab.Do("sign out", chromedp.Click(`header button`), chromedp.WaitVisible(`#key`), chromedp.Navigate(s.URL+"/ui/"), chromedp.WaitVisible(`#key`))
	if loc := tab.Location(); !strings.HasSuffix(loc, "/ui/signin") {
		t.Fatalf("after signing out /ui/ showed %s", loc)
	}

	// Revoking the key ends its sessions at once.
	signIn(tab, s, key, `#total-sent`)
	var keys struct {
		Data []struct{ ID string } `json:"data"`
	}
	s.Do("GET", "/v1/api-keys", key, nil, nil, &keys)
	for _, k := range keys.Data {
		s.Do("DELETE", "/v1/api-keys/"+k.ID, key, nil, nil, nil)
	}
	tab.Do("after the revoke", chromedp.Navigate(s.URL+"/ui/errors"), chromedp.WaitVisible(`#key`))
	if loc := tab.Location(); !strings.HasSuffix(loc, "/ui/signin") {
		t.Fatalf("a revoked key's session still showed %s", loc)
	}
}

// The headers and rules a browser cannot be trusted to show: the CSP forbids every script and
// framing; the session cookie is HttpOnly, SameSite=Strict, and Secure behind https; a form
// posted from another origin, or without the session's CSRF token, changes nothing; a service key
// cannot sign in.
func TestDashboardSessionRules(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	post := func(path string, form url.Values, headers map[string]string, cookies ...*http.Cookie) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", s.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp, err := noRedirect.Get(s.URL + "/ui/signin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "script-src") {
		t.Fatalf("CSP: %q", csp)
	}
	// A service key acts for any tenant and belongs to a program: it cannot sign in.
	_, service, err := s.Store.CreateAPIKey(t.Context(), domain.KindService, "", "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := post("/ui/signin", url.Values{"key": {service}}, map[string]string{"Sec-Fetch-Site": "same-origin"}); r.StatusCode != http.StatusOK || len(r.Cookies()) != 0 {
		t.Fatalf("a service key signed in: %d %v", r.StatusCode, r.Cookies())
	}
	form := url.Values{"key": {key}}
	if r := post("/ui/signin", form, map[string]string{"Origin": "https://evil.example"}); r.StatusCode != http.StatusForbidden || len(r.Cookies()) != 0 {
		t.Fatalf("a sign-in posted from another origin: %d", r.StatusCode)
	}
	r := post("/ui/signin", form, map[string]string{"Sec-Fetch-Site": "same-origin", "X-Forwarded-Proto": "https"})
	if r.StatusCode != http.StatusSeeOther || len(r.Cookies()) != 1 {
		t.Fatalf("sign in: %d %v", r.StatusCode, r.Cookies())
	}
	c := r.Cookies()[0]
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Value == key || strings.Contains(c.Value, key) {
		t.Fatalf("session cookie: %+v", c)
	}
	// Signing out without the CSRF token does nothing: the session still opens the overview.
	if r := post("/ui/signout", url.Values{}, map[string]string{"Sec-Fetch-Site": "same-origin"}, c); r.StatusCode != http.StatusForbidden {
		t.Fatalf("sign out without the CSRF token: %d", r.StatusCode)
	}
	if resp := sessionGet(t, c, s.URL+"/ui/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the session after a refused sign-out: %d", resp.StatusCode)
	} else {
		resp.Body.Close()
	}

	// The usage page's export link downloads the month's billing CSV through the session.
	resp = sessionGet(t, c, s.URL+"/ui/usage/export?month="+time.Now().UTC().Format("2006-01"))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") || !strings.HasPrefix(string(body), "tenant_id,message_id,") {
		t.Fatalf("export: %d %v %.80q", resp.StatusCode, resp.Header, body)
	}
}

// A suspended tenant is suspended in the dashboard as in the API: its key cannot sign in, and a
// session it opened before ends on its next request, whichever page that is. Each page is tried
// with a session of its own, so every one of them must apply the rule.
func TestSuspendedTenantIsSignedOutOfEveryPage(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	tid, key := s.Tenant()
	patterns := dashboard.PagePatterns("tenant")
	cookies := make([]*http.Cookie, len(patterns))
	for i := range patterns {
		cookies[i] = sessionCookie(t, s, key)
	}
	if resp := s.Do("PATCH", "/admin/tenants/"+tid, s.AdminKey, map[string]any{"status": "suspended"}, nil, &map[string]any{}); resp.StatusCode != 200 {
		t.Fatalf("suspend: %d", resp.StatusCode)
	}
	for i, pattern := range patterns {
		method, path, _ := strings.Cut(pattern, " ")
		path = strings.NewReplacer("{$}", "", "{id}", "x", "{key}", "x", "{n}", "1").Replace(path)
		req, _ := http.NewRequest(method, s.URL+path, strings.NewReader("csrf=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.AddCookie(cookies[i])
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/signin" {
			t.Errorf("%s with a suspended tenant's session: %d %s, want a redirect to sign in", pattern, resp.StatusCode, resp.Header.Get("Location"))
		}
		// The session is gone, not only refused: it stays ended after a reactivation.
		if again := sessionGet(t, cookies[i], s.URL+"/ui/"); again.StatusCode != http.StatusSeeOther {
			t.Errorf("%s: the session still answers %d after ending", pattern, again.StatusCode)
		}
	}
	req, _ := http.NewRequest("POST", s.URL+"/ui/signin", strings.NewReader(url.Values{"key": {key}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Errorf("a suspended tenant's key signing in: %d with %d cookies, want 403 and none", resp.StatusCode, len(resp.Cookies()))
	}
}

// Ids that cannot be ids (dot segments, encoded or not) are pages that do not exist: 404, and
// nothing for an operator to chase in the error log.
func TestImpossibleIDsAreNotFoundWithoutAnErrorLog(t *testing.T) {
	t.Parallel()
	var logged strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(b)
	}), &slog.HandlerOptions{Level: slog.LevelError}))
	s := stacktest.Start(t, stacktest.Options{Log: log})
	_, key := s.Tenant()
	c := sessionCookie(t, s, key)
	for _, path := range []string{"/ui/webhooks/%2e%2e", "/ui/webhooks/%2E%2E%2F", "/ui/messages/%2e%2e", "/ui/templates/%2e%2e", "/ui/providers/%2e%2e", "/ui/webhooks/nope"} {
		resp := sessionGet(t, c, s.URL+path)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if logged.Len() > 0 {
		t.Errorf("error lines logged:\n%s", logged.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
