package dashboard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/testing/browser"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/message"
)

// A tenant activates a template version and previews it with hostile data: the subject, the
// text and the HTML (in its sandboxed frame) show the data as text, and malformed data is named
// beside its field; messages sent with it are found by template. It adds an event endpoint, is shown its secret once, sends it a test event,
// and sees the delivery with the endpoint's answer.
func TestTemplatesAndWebhooksInChromium(t *testing.T) {
	browser.Path(t)
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	do := func(status int, method, path string, body any) {
		t.Helper()
		if resp := s.Do(method, path, key, body, nil, nil); resp.StatusCode != status {
			t.Fatalf("%s %s: %d, want %d", method, path, resp.StatusCode, status)
		}
	}
	do(201, "POST", "/v1/templates", map[string]any{"key": "receipt", "name": "Receipt", "channel": "email",
		"variables": map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}}})
	do(201, "POST", "/v1/templates/receipt/versions", map[string]any{"subject": "Hi {{name}}", "text": "Hello {{name}}",
		"html": `<p style="color:#1f5fbf">Hello <b>{{name}}</b></p>`})
	tab := browser.NewTab(t)
	signIn(tab, s, key, `#total-sent`)

	tab.Do("templates", chromedp.Navigate(s.URL+"/ui/templates"), chromedp.WaitVisible(`#templates tbody a`))
	tab.Shoot("templates")
	tab.Press("open the template", `#templates tbody a`, `#versions`)
	tab.Press("activate v1", `#versions button`, `p.notice`)
	var tpl api.Template
	if s.Do("GET", "/v1/templates/receipt", key, nil, nil, &tpl); tpl.ActiveVersions["en"] != 1 {
		t.Fatalf("after Activate: %v", tpl.ActiveVersions)
	}
	// Messages sent with it are found by template.
	id := s.Send(key, "", message.Request{To: "ada@example.com", Template: &message.TemplateRef{Key: "receipt", Data: map[string]any{"name": "Ada"}}})
	s.Send(key, "", message.Request{Channel: message.Email, To: "ada@example.com", Subject: "not from a template", Text: "x"})
	tab.Do("search by template", chromedp.Navigate(s.URL+"/ui/messages"), chromedp.WaitVisible(`#template`), chromedp.SetValue(`#template`, "receipt"))
	tab.Press("search", `form[role=search] button`, `tbody tr`)
	if n, href := tab.Count(`tbody tr`), tab.Get("link", chromedp.Evaluate[string](`document.querySelector('tbody a').pathname`)); n != 1 || href != "/ui/messages/"+id {
		t.Fatalf("by template: %d rows, the first %s; want only %s", n, href, id)
	}
	tab.Do("back to the template", chromedp.Navigate(s.URL+"/ui/templates/receipt"), chromedp.WaitVisible(`#p-data`))
	tab.Do("malformed data", chromedp.SetValue(`#p-data`, `{nope`))
	tab.Press("preview", `#preview-form button`, `#p-data-error`)
	tab.Do("hostile data", chromedp.SetValue(`#p-data`, `{"name": "`+strings.ReplaceAll(hostile, `"`, `\"`)+`"}`))
	tab.Press("preview", `#preview-form button`, `#preview-html`)
	if subject, text := tab.Get("subject", chromedp.Text(`#preview-subject`)), tab.Get("text", chromedp.Text(`#preview-text`)); subject != "Hi "+hostile || text != "Hello "+hostile {
		t.Fatalf("preview: subject %q, text %q", subject, text)
	}
	if tab.Count("main script, main img") != 0 || tab.Get("title", chromedp.Title()) == "pwned" {
		t.Fatal("the preview's data ran in the page")
	}
	// The HTML part, as its frame loads it: the markup renders with the data as text, under a
	// policy that sandboxes it and allows no script.
	frame := tab.Get("frame", chromedp.Evaluate[string](`document.querySelector('#preview-html').src`))
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		urls := tab.FrameURLs()
		if slices.Contains(urls, frame) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the preview frame shows %v, want %s (the session reaches the sandboxed frame)", urls, frame)
		}
	}
	resp := sessionGet(t, sessionCookie(t, s, key), frame)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.HasPrefix(csp, "sandbox;") || strings.Contains(csp, "script") ||
		!strings.Contains(string(body), "<b>&lt;img src=x") || strings.Contains(string(body), "<script") {
		t.Fatalf("the HTML preview: %d %q %s", resp.StatusCode, csp, body)
	}
	tab.Shoot("template")
	// The preview follows typing, without a page load.
	tab.Do("type", chromedp.Evaluate[chromedp.Void](`document.documentElement.dataset.stays = "1"`), chromedp.SetValue(`#p-data`, `{"name": "Gra`), chromedp.SendKeys(`#p-data`, `ce"}`))
	tab.Get("the preview", chromedp.Poll[string](`document.querySelector('#preview-subject')?.textContent === 'Hi Grace' && 'ok'`))
	if tab.Count(`html[data-stays]`) != 1 {
		t.Fatal("the live preview loaded a page")
	}
	// Webhooks: add an endpoint for delivered events, test it, see the delivery.
	var hits atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	tab.Do("add an endpoint", chromedp.Navigate(s.URL+"/ui/webhooks"), chromedp.WaitVisible(`#w-url`), chromedp.SendKeys(`#w-url`, rcv.URL+"/events"),
		chromedp.SendKeys(`#w-description`, "orders"), chromedp.Click(`input[value="`+event.Delivered+`"]`))
	tab.Press("add it", `#add-endpoint button`, `#created`)
	secret := tab.Get("secret", chromedp.Text(`#secret`))
	var list struct {
		Data []api.WebhookEndpointWithSecret
	}
	s.Do("GET", "/v1/webhook-endpoints", key, nil, nil, &list)
	if !strings.HasPrefix(secret, "whsec_") || len(list.Data) != 1 || list.Data[0].URL != rcv.URL+"/events" ||
		len(list.Data[0].EventTypes) != 1 || list.Data[0].EventTypes[0] != event.Delivered {
		t.Fatalf("after adding: secret %q, endpoints %+v", secret, list.Data)
	}
	tab.Shoot("webhooks")
	tab.Press("open it", `#endpoints tbody a`, `#send-test`)
	tab.Press("send a test event", `#send-test`, `#tested`)
	if text := tab.Get("result", chromedp.Text(`#tested`)); !strings.Contains(text, "succeeded (HTTP 204") || hits.Load() != 1 {
		t.Fatalf("test event: %q, the endpoint was called %d times", text, hits.Load())
	}
	if row := tab.Get("delivery", chromedp.Text(`#deliveries tbody tr`)); !strings.Contains(row, event.Test) || !strings.Contains(row, "succeeded") {
		t.Fatalf("the delivery: %q", row)
	}
	if strings.Contains(tab.Get("page", chromedp.Text(`main`)), secret) {
		t.Fatal("the endpoint's page shows its secret")
	}
	tab.Shoot("webhook")
}
