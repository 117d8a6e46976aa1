package dashboard_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/testing/browser"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// An operator signs in with an admin key: sets a tenant's attempts and quota in the tenants
// page, finds that tenant's dead letters after a provider outage, counts them with a dry run
// (which changes nothing), and replays them after confirming; each is then sent once. A tenant
// key's session cannot open the ops pages.
func TestOpsInChromium(t *testing.T) {
	browser.Path(t)
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL}})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond, RetryInitial: 50 * time.Millisecond, BreakerCooldown: 50 * time.Millisecond})
	tid, key := s.Tenant()
	s.TwilioConfig(key, tw)
	tab := browser.NewTab(t)
	signIn(tab, s, s.AdminKey, `section.tenant`)
	if loc := tab.Location(); !strings.HasSuffix(loc, "/ui/ops/tenants") {
		t.Fatalf("an admin session starts at %s", loc)
	}

	// The tenant's settings: its own providers only, one attempt before the dead-letter queue,
	// and an SMS quota.
	sec := `section[aria-labelledby="t-` + tid + `"]`
	tab.Do("open the settings", chromedp.Click(sec+` summary`), chromedp.WaitVisible(`#`+tid+`-attempts`), chromedp.Click(`#`+tid+`-fallback`),
		chromedp.SetValue(`#`+tid+`-attempts`, "1"), chromedp.SetValue(`#`+tid+`-sms-hard`, "5000"))
	tab.Shoot("tenants")
	tab.Press("save the tenant", sec+` button[type=submit]`, `p.notice`)
	tn, err := s.Store.GetTenant(t.Context(), tid)
	if err != nil || tn.MaxAttempts != 1 || tn.Quotas[message.SMS].HardLimit != 5000 || tn.AllowSystemFallback {
		t.Fatalf("after saving: %+v %v", tn, err)
	}
	// A refused value is named beside its field, and changes nothing.
	tab.Do("a bad value", chromedp.Click(sec+` summary`), chromedp.SetValue(`#`+tid+`-attempts`, "500"))
	tab.Press("save the bad value", sec+` button[type=submit]`, `#`+tid+`-attempts-error`)
	if tn, _ := s.Store.GetTenant(t.Context(), tid); tn.MaxAttempts != 1 {
		t.Fatalf("a refused form changed max_attempts to %d", tn.MaxAttempts)
	}

	// An outage: both messages fail their one attempt and are dead-lettered.
	tw.FailAll(provider.ProviderUnavailable)
	ids := []string{s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550101", Text: "one"}),
		s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550102", Text: "two"})}
	s.WaitAllFinal(30 * time.Second)
	tw.FailAll("")
	sent := len(tw.Received())

	tab.Do("dead letters", chromedp.Navigate(s.URL+"/ui/ops/dlq?tenant_id="+tid), chromedp.WaitVisible(`#dead-letters tbody tr`))
	if n := tab.Count(`#dead-letters tbody tr`); n != 2 {
		t.Fatalf("%d dead letters listed, want 2", n)
	}
	tab.Press("dry run", `#dry-run`, `#confirm`)
	if text := tab.Get("the count", chromedp.Text(`#confirm-title`)); !strings.HasPrefix(text, "2 dead letters match") {
		t.Fatalf("dry run: %q", text)
	}
	for _, id := range ids {
		if m := getMessage(t, s, key, id); m.Status != message.Failed {
			t.Fatalf("the dry run changed %s to %s", id, m.Status)
		}
	}
	tab.Shoot("dlq")
	tab.Press("replay", `#confirm-replay`, `#replayed`)
	if text := tab.Get("the result", chromedp.Text(`#replayed`)); !strings.HasPrefix(text, "Replayed 2 of 2") {
		t.Fatalf("replay: %q", text)
	}
	s.WaitAllFinal(30 * time.Second)
	for _, id := range ids {
		if m := getMessage(t, s, key, id); m.Status != message.Sent {
			t.Fatalf("after the replay %s is %s", id, m.Status)
		}
	}
	if n := len(tw.Received()) - sent; n != 2 {
		t.Fatalf("the replay sent %d messages, want 2", n)
	}

	tab.Do("system providers", chromedp.Navigate(s.URL+"/ui/providers"), chromedp.WaitVisible(`#add-twilio`))
	if h := tab.Get("heading", chromedp.Text(`h1`)); h != "System-default providers" {
		t.Fatalf("an admin's providers page: %q", h)
	}
	tab.Shoot("system-providers")

	// A tenant's session is sent away from the ops pages.
	tab.Press("sign out", `header button`, `#key`)
	signIn(tab, s, key, `#total-sent`)
	tab.Do("ops as a tenant", chromedp.Navigate(s.URL+"/ui/ops/dlq"), chromedp.WaitVisible(`#total-sent`))
}

func getMessage(t *testing.T, s *stacktest.Stack, key, id string) message.Message {
	t.Helper()
	var m message.Message
	if resp := s.Do("GET", "/v1/messages/"+id, key, nil, nil, &m); resp.StatusCode != 200 {
		t.Fatalf("GET message %s: %d", id, resp.StatusCode)
	}
	return m
}
