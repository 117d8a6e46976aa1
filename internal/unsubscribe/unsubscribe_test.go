package unsubscribe_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/testing/browser"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// unsubscribeStack is a stack whose tenant sends email through a Resend fake, with the
// categories news (in by default) and security (required), and the public receiver running.
func unsubscribeStack(t *testing.T) (s *stacktest.Stack, rs *fakeprovider.Resend, tid, key, hook string) {
	t.Helper()
	rs = fakeprovider.NewResend()
	t.Cleanup(rs.Close)
	s = stacktest.Start(t, stacktest.Options{Env: provider.Env{ResendBaseURL: rs.URL}})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	hook = s.StartWebhook().URL
	tid, key = s.Tenant()
	if resp := s.Do("POST", "/v1/providers", key, map[string]any{"type": "resend", "name": "rs", "channel": "email", "test_recipient": "me@acme.example",
		"credentials": map[string]any{"api_key": rs.APIKey}, "sender": map[string]any{"from": "a@acme.example"}}, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("create resend config: %d", resp.StatusCode)
	}
	for _, c := range []map[string]any{
		{"key": "news", "name": "Newsletter", "description": "What is new, monthly", "kind": "marketing", "default": "in"},
		{"key": "security", "name": "Security alerts", "default": "in", "required": true},
	} {
		if resp := s.Do("POST", "/v1/categories", key, c, nil, nil); resp.StatusCode != 201 {
			t.Fatalf("category: %d", resp.StatusCode)
		}
	}
	return s, rs, tid, key, hook
}

// sent sends req and returns the headers the provider received with it.
func sent(t *testing.T, s *stacktest.Stack, rs *fakeprovider.Resend, key string, req message.Request) map[string]string {
	t.Helper()
	id := s.Send(key, "", req)
	s.WaitAllFinal(30 * time.Second)
	for _, r := range rs.Received() {
		if r.MessageID == id {
			return r.Extra
		}
	}
	t.Fatalf("%s never reached the provider", id)
	return nil
}

// linkPath is the path of a List-Unsubscribe header's https link.
func linkPath(t *testing.T, h map[string]string) string {
	t.Helper()
	v := h["List-Unsubscribe"]
	if !strings.HasPrefix(v, "<"+stacktest.PublicURL+"/u/") || !strings.HasSuffix(v, ">") || h["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" {
		t.Fatalf("headers: %v", h)
	}
	u, err := url.Parse(strings.Trim(v, "<>"))
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func post(t *testing.T, u string, form url.Values, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// An email in a category a person may leave carries List-Unsubscribe (a signed https link, no
// address in it) and List-Unsubscribe-Post; a required category's, a built-in one's and an SMS
// do not. The one-click POST opts the person out of that category for email, answers 200
// without a redirect, and again changes nothing; intake then refuses the category to them,
// while the other person and the required category are untouched. A forged link is a 404.
func TestOneClickUnsubscribe(t *testing.T) {
	t.Parallel()
	s, rs, tid, key, hook := unsubscribeStack(t)
	mail := func(to, recipient, cat string) message.Request {
		return message.Request{Channel: message.Email, To: to, Recipient: recipient, Subject: "s", Text: "t", Category: message.Category(cat)}
	}
	h := sent(t, s, rs, key, mail("ada@example.com", "", "news"))
	path := linkPath(t, h)
	payload, _, _ := strings.Cut(strings.TrimPrefix(path, "/u/"), ".")
	if raw, err := base64.RawURLEncoding.DecodeString(payload); err != nil || strings.Contains(string(raw), "example.com") ||
		strings.Contains(h["List-Unsubscribe"], "example.com") {
		t.Fatalf("the link holds the address: %s (%s, %v)", h["List-Unsubscribe"], raw, err)
	}
	for _, req := range []message.Request{mail("ada@example.com", "", "security"), mail("ada@example.com", "", "marketing"), mail("ada@example.com", "", "")} {
		if h := sent(t, s, rs, key, req); h["List-Unsubscribe"] != "" {
			t.Errorf("category %q carries %v", req.Category, h)
		}
	}

	for range 2 { // asked again, the same answer
		resp, body := post(t, hook+path, url.Values{"List-Unsubscribe": {"One-Click"}}, nil)
		if resp.StatusCode != 200 || resp.Header.Get("Location") != "" || !strings.Contains(body, "no longer receive Newsletter") {
			t.Fatalf("one-click: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}
	var p struct{ Type string }
	if resp := s.Do("POST", "/v1/messages", key, mail("ada@example.com", "", "news"), nil, &p); resp.StatusCode != 422 || !strings.HasSuffix(p.Type, "#recipient-opted-out") {
		t.Fatalf("a send after the one-click: %d %s", resp.StatusCode, p.Type)
	}
	for _, req := range []message.Request{mail("bob@example.com", "", "news"), mail("ada@example.com", "", "security")} {
		if resp := s.Do("POST", "/v1/messages", key, req, nil, nil); resp.StatusCode != 202 {
			t.Errorf("%s in %s after ada's one-click: %d", req.To, req.Category, resp.StatusCode)
		}
	}
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM communication.account_events WHERE tenant_id = $1 AND type = 'comms.preference.updated'`, tid).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d comms.preference.updated (%v), want 1: the second one-click changed nothing", n, err)
	}
	var actor, target string
	if err := s.Pool.QueryRow(context.Background(), `SELECT actor_kind || ' ' || actor_id, target_id FROM communication.audit_log
		WHERE tenant_id = $1 AND action = 'preference.created'`, tid).Scan(&actor, &target); err != nil ||
		!strings.HasPrefix(actor, "recipient address:") || !strings.HasSuffix(target, "/news/email") || strings.Contains(actor+target, "example.com") {
		t.Errorf("audited as %q on %q (%v), want the person by their hash", actor, target, err)
	}

	// A profile's link opts the profile out.
	if resp := s.Do("PUT", "/v1/recipients/u_1", key, map[string]any{"email": "cy@example.com"}, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("profile: %d", resp.StatusCode)
	}
	path = linkPath(t, sent(t, s, rs, key, mail("", "u_1", "news")))
	if resp, _ := post(t, hook+path, url.Values{"List-Unsubscribe": {"One-Click"}}, nil); resp.StatusCode != 200 {
		t.Fatalf("one-click of a profile: %d", resp.StatusCode)
	}
	var prefs api.Preferences
	if resp := s.Do("GET", "/v1/recipients/u_1/preferences", key, nil, nil, &prefs); resp.StatusCode != 200 || prefs.Categories["news"][message.Email] || !prefs.Categories["news"][message.SMS] {
		t.Fatalf("u_1 after the one-click: %+v", prefs)
	}

	for _, bad := range []string{"/u/nonsense", path[:len(path)-3] + "AAA"} {
		if resp, _ := post(t, hook+bad, url.Values{"List-Unsubscribe": {"One-Click"}}, nil); resp.StatusCode != 404 {
			t.Errorf("forged %s: %d", bad, resp.StatusCode)
		}
	}
}

// The link opens a preference page (no script, the dashboard's CSP) where the person sees the
// tenant's categories and changes them; its form is refused from another site.
func TestPreferencePageInChromium(t *testing.T) {
	t.Parallel()
	s, rs, tid, key, hook := unsubscribeStack(t)
	path := linkPath(t, sent(t, s, rs, key, message.Request{Channel: message.Email, To: "ada@example.com", Subject: "s", Text: "t", Category: "news"}))
	resp, err := http.Get(hook + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "form-action 'self'") || strings.Contains(csp, "script-src") {
		t.Fatalf("CSP: %q", csp)
	}

	tab := browser.NewTab(t)
	tab.Do("open the page", chromedp.Navigate(hook+path), chromedp.WaitVisible(`button[type=submit]`))
	state := func() string {
		return tab.Get("the boxes", chromedp.Evaluate[string](`[...document.querySelectorAll('input[type=checkbox]')].map(b => b.id + '=' + b.checked + (b.disabled ? '/fixed' : '')).join(' ')`))
	}
	if got := state(); got != "in.news=true in.security=true/fixed" {
		t.Fatalf("page: %s", got)
	}
	tab.Do("leave the newsletter", chromedp.Click(`#in\.news`), chromedp.Click(`button[type=submit]`), chromedp.WaitVisible(`#saved`))
	if got := state(); got != "in.news=false in.security=true/fixed" {
		t.Fatalf("after saving: %s", got)
	}
	var p struct{ Type string }
	if resp := s.Do("POST", "/v1/messages", key, message.Request{Channel: message.Email, To: "ada@example.com", Subject: "s", Text: "t", Category: "news"}, nil, &p); resp.StatusCode != 422 {
		t.Fatalf("a send after the page's change: %d", resp.StatusCode)
	}
	tab.Do("come back", chromedp.Navigate(hook+path), chromedp.WaitVisible(`button[type=submit]`), chromedp.Click(`#in\.news`),
		chromedp.Click(`button[type=submit]`), chromedp.WaitVisible(`#saved`))
	if resp := s.Do("POST", "/v1/messages", key, message.Request{Channel: message.Email, To: "ada@example.com", Subject: "s", Text: "t", Category: "news"}, nil, nil); resp.StatusCode != 202 {
		t.Fatalf("a send after opting back in: %d", resp.StatusCode)
	}

	// Another site's form, even with the page's fields, changes nothing.
	resp2, _ := post(t, hook+path, url.Values{"csrf": {"x"}}, map[string]string{"Sec-Fetch-Site": "cross-site"})
	if resp2.StatusCode != 403 {
		t.Fatalf("a cross-site form: %d", resp2.StatusCode)
	}
	var chosen domain.Preferences
	chosen, err = s.Store.GetPreferences(context.Background(), tid, domain.PreferenceSubject{Channel: message.Email, Address: "ada@example.com"})
	if err != nil || !chosen["news"][message.Email] {
		t.Fatalf("after the cross-site form: %v %v", chosen, err)
	}
}

// A tenant that sets its own unsubscribe_mailto (PATCH /v1/settings) has it offered in
// List-Unsubscribe after the https link, with the same signed token as its subject, so the
// mailbox's owner can tell who asked for which category without an address in the link. A
// display name, or a setting that is its operator's, is refused naming the field, and changes
// nothing.
func TestAMailtoIsOfferedWhereTheTenantSetsOne(t *testing.T) {
	t.Parallel()
	s, rs, _, key, _ := unsubscribeStack(t)
	var prob struct{ Errors []message.FieldError }
	if resp := s.Do("PATCH", "/v1/settings", key, map[string]any{"unsubscribe_mailto": "Acme <unsubscribe@acme.example>"}, nil, &prob); resp.StatusCode != 422 ||
		len(prob.Errors) != 1 || prob.Errors[0].Field != "unsubscribe_mailto" {
		t.Fatalf("a display name: %d %+v", resp.StatusCode, prob)
	}
	if resp := s.Do("PATCH", "/v1/settings", key, map[string]any{"unsubscribe_mailto": "unsubscribe@acme.example", "plan": "enterprise"}, nil, &prob); resp.StatusCode != 422 ||
		len(prob.Errors) != 1 || prob.Errors[0].Field != "plan" {
		t.Fatalf("a tenant changing its plan: %d %+v", resp.StatusCode, prob)
	}
	var settings api.Tenant
	if s.Do("GET", "/v1/settings", key, nil, nil, &settings); settings.UnsubscribeMailto != "" {
		t.Fatalf("a refused change left %q", settings.UnsubscribeMailto)
	}
	if resp := s.Do("PATCH", "/v1/settings", key, map[string]any{"unsubscribe_mailto": "unsubscribe@acme.example"}, nil, &settings); resp.StatusCode != 200 ||
		settings.UnsubscribeMailto != "unsubscribe@acme.example" {
		t.Fatalf("set the mailto: %d %+v", resp.StatusCode, settings)
	}
	h := sent(t, s, rs, key, message.Request{Channel: message.Email, To: "ada@example.com", Subject: "s", Text: "t", Category: "news"})
	link, mailto, ok := strings.Cut(h["List-Unsubscribe"], ", ")
	token := strings.TrimSuffix(strings.TrimPrefix(link, "<"+stacktest.PublicURL+"/u/"), ">")
	if !ok || mailto != "<mailto:unsubscribe@acme.example?subject=unsubscribe%20"+token+">" || h["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" {
		t.Fatalf("headers: %v", h)
	}
}
