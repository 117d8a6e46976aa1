package dashboard_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/testing/browser"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

func listProviders(t *testing.T, s *stacktest.Stack, key, path string) []api.Provider {
	t.Helper()
	var list struct{ Data []api.Provider }
	if resp := s.Do("GET", path, key, nil, nil, &list); resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	return list.Data
}

// A tenant adds its Twilio account in the browser with Save & Test: a wrong token shows
// Twilio's reason inline and stores nothing (the SID typed is kept, the token is not); the right
// one adds the config, healthy. Then it test-sends, disables the config, is told which field is
// wrong in a malformed form, manages its suppressions, reads its usage and quota, deletes the
// config, finds all of it in the audit log, and creates and revokes keys.
func TestProvidersSuppressionsAndUsageInChromium(t *testing.T) {
	browser.Path(t)
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL}})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	tid, key := s.Tenant()
	tab := browser.NewTab(t)
	signIn(tab, s, key, `#total-sent`)

	tab.Do("providers", chromedp.Navigate(s.URL+"/ui/providers"), chromedp.Click(`#add-twilio summary`), chromedp.WaitVisible(`#twilio-account_sid`))
	saveAndTest := func(name, sid, token string) {
		tab.Do("fill the Twilio form and Save & Test", chromedp.SetValue(`#twilio-name`, name), chromedp.SetValue(`#twilio-account_sid`, sid),
			chromedp.SendKeys(`#twilio-auth_token`, token), chromedp.SetValue(`#twilio-sender-from`, "+14155550100"),
			chromedp.SetValue(`#twilio-sender-senders`, " +14155550123, Acme ,"), chromedp.SetValue(`#twilio-test`, "+14155550199"))
		tab.Press("Save & Test", `#add-twilio button[type=submit]`, `main`)
	}
	saveAndTest("my twilio", tw.AccountSID, strings.Repeat("0", 32))
	tab.Do("the refusal", chromedp.WaitVisible(`#add-twilio .refusal`))
	if text := tab.Get("refusal", chromedp.Text(`#add-twilio .refusal`)); !strings.Contains(text, "authentication failed (20003)") || !strings.Contains(text, "Nothing was saved") {
		t.Fatalf("a wrong token: %q", text)
	}
	if sid, token := tab.Get("sid", chromedp.Value(`#twilio-account_sid`)), tab.Get("token", chromedp.Value(`#twilio-auth_token`)); sid != tw.AccountSID || token != "" {
		t.Fatalf("after a refusal the form holds sid %q, token %q: the sid is kept, the token never shown again", sid, token)
	}
	if got := listProviders(t, s, key, "/v1/providers"); len(got) != 0 || len(tw.Received()) != 0 {
		t.Fatalf("a failed test stored %d configs and sent %d", len(got), len(tw.Received()))
	}
	tab.Shoot("providers-refused")
	saveAndTest("my twilio", tw.AccountSID, tw.AuthToken)
	tab.Do("saved", chromedp.WaitVisible(`p.notice`), chromedp.WaitVisible(`#providers tbody tr`))
	row := tab.Get("the row", chromedp.Text(`#providers tbody tr`))
	got := listProviders(t, s, key, "/v1/providers")
	if len(got) != 1 || !strings.Contains(row, "my twilio") || !strings.Contains(row, got[0].Mask) || !strings.Contains(row, "healthy") || strings.Contains(tab.Get("page", chromedp.Text(`main`)), tw.AuthToken) {
		t.Fatalf("after Save & Test: row %q, configs %+v", row, got)
	}
	if !strings.Contains(string(got[0].Sender), `"senders":["+14155550123","Acme"]`) {
		t.Fatalf("the other senders typed comma-separated are stored as %s", got[0].Sender)
	}
	tab.Shoot("providers")

	// Its page: a test send, then disabled.
	tab.Press("open it", `#providers tbody a`, `#test-to`)
	tab.Do("a test send", chromedp.SendKeys(`#test-to`, "+14155550198"))
	tab.Press("a test send", `#test-to ~ button, form[action$="/test"] button`, `#tested`)
	if n := len(tw.Received()); n != 2 || tw.Received()[1].To != "+14155550198" {
		t.Fatalf("the test send: the provider received %d", n)
	}
	tab.Shoot("provider")
	tab.Do("untick Enabled", chromedp.Click(`#enabled`))
	tab.Press("save settings", `#enabled ~ button, form:has(#enabled) button`, `p.notice`)
	if got := listProviders(t, s, key, "/v1/providers"); got[0].Enabled {
		t.Fatal("unticking Enabled left the config enabled")
	}

	// A malformed form names the field next to it.
	tab.Do("a bad SID", chromedp.Navigate(s.URL+"/ui/providers"), chromedp.Click(`#add-twilio summary`), chromedp.WaitVisible(`#twilio-account_sid`))
	saveAndTest("second", "nope", tw.AuthToken)
	tab.Do("the field's error", chromedp.WaitVisible(`#twilio-account_sid-error`))
	if msg := tab.Get("field error", chromedp.Text(`#twilio-account_sid-error`)); !strings.Contains(msg, "AC followed by 32") {
		t.Fatalf("the SID's error: %q", msg)
	}

	// Suppressions: add one, see it, remove it.
	tab.Do("suppress", chromedp.Navigate(s.URL+"/ui/suppressions"), chromedp.WaitVisible(`#s-recipient`), chromedp.SetValue(`#s-channel`, "sms"),
		chromedp.SendKeys(`#s-recipient`, "+14155550123"), chromedp.SendKeys(`#s-detail`, "asked us to stop"))
	tab.Press("suppress", `#add-suppression button`, `#suppressions tbody tr`)
	if row := tab.Get("row", chromedp.Text(`#suppressions tbody tr`)); !strings.Contains(row, "+14155550123") || !strings.Contains(row, "asked us to stop") {
		t.Fatalf("suppression row: %q", row)
	}
	tab.Shoot("suppressions")
	tab.Press("remove", `#suppressions tbody button`, `p.notice`)
	var sup struct{ Data []api.Suppression }
	if s.Do("GET", "/v1/suppressions", key, nil, nil, &sup); len(sup.Data) != 0 || tab.Count("#suppressions tbody tr") != 0 {
		t.Fatalf("after removing: %d suppressions", len(sup.Data))
	}

	// Usage: the totals are the usage API's; the quota is a bar.
	if resp := s.Do("PATCH", "/admin/tenants/"+tid, s.AdminKey, map[string]any{"quotas": map[string]any{"sms": map[string]any{"hard_limit": 100}}}, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("quota: %d", resp.StatusCode)
	}
	s.Do("PATCH", "/v1/providers/"+got[0].ID, key, map[string]any{"enabled": true}, nil, nil)
	for range 3 {
		s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550142", Text: "hello"})
	}
	s.WaitAllFinal(30 * time.Second)
	var use struct{ Totals api.Counters }
	s.Do("GET", "/v1/usage", key, nil, nil, &use)
	tab.Do("usage", chromedp.Navigate(s.URL+"/ui/usage"), chromedp.WaitVisible(`#quota-sms`))
	for id, want := range map[string]int64{"accepted": use.Totals.Accepted, "sent": use.Totals.Sent} {
		if text := tab.Get(id, chromedp.Text(`#use-`+id)); text != fmt.Sprint(want) || want != 3 {
			t.Errorf("usage %s = %s, the API says %d", id, text, want)
		}
	}
	if v := tab.Get("meter", chromedp.Evaluate[string](`String(document.querySelector('#quota-sms').value) + '/' + document.querySelector('#quota-sms').max`)); v != "3/100" {
		t.Fatalf("the quota bar shows %s, want 3/100", v)
	}
	tab.Shoot("usage")
	if n := tab.Count(`a[href^="/ui/usage/export?month="]`); n != 2 {
		t.Fatalf("%d export links, want 2", n)
	}

	// Deleting takes the confirmation tick.
	tab.Do("open the provider", chromedp.Navigate(s.URL+"/ui/providers/"+got[0].ID), chromedp.WaitVisible(`#confirm`), chromedp.Click(`#confirm`))
	tab.Press("delete", `form[action$="/delete"] button`, `p.notice`)
	if left := listProviders(t, s, key, "/v1/providers"); len(left) != 0 || !strings.Contains(tab.Get("notice", chromedp.Text(`p.notice`)), "Deleted “my twilio”") {
		t.Fatalf("after deleting: %d configs", len(left))
	}

	// The audit log shows what the session did, by its key.
	tab.Do("audit log", chromedp.Navigate(s.URL+"/ui/audit"), chromedp.WaitVisible(`#audit tbody tr`))
	audit := tab.Get("audit", chromedp.Text(`#audit tbody`))
	for _, want := range []string{"provider_config.created", "provider_config.deleted", "suppression.created", keyID(t, s, key)} {
		if !strings.Contains(audit, want) {
			t.Fatalf("the audit log lacks %q:\n%s", want, audit)
		}
	}
	tab.Shoot("audit")

	// Keys: one created (its secret shown once, and it works), then revoked; revoking the
	// session's own key signs it out.
	tab.Do("keys", chromedp.Navigate(s.URL+"/ui/keys"), chromedp.WaitVisible(`#k-name`), chromedp.SendKeys(`#k-name`, "billing"))
	tab.Press("create a key", `#create-key button`, `#secret`)
	secret := tab.Get("secret", chromedp.Text(`#secret`))
	if resp := s.Do("GET", "/v1/quota", secret, nil, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("the new key: %d", resp.StatusCode)
	}
	tab.Shoot("keys")
	tab.Press("revoke it", `#keys button[aria-label="Revoke billing"]`, `#keys`)
	if resp := s.Do("GET", "/v1/quota", secret, nil, nil, nil); resp.StatusCode != 401 {
		t.Fatalf("the revoked key: %d", resp.StatusCode)
	}
	tab.Press("revoke the session's key", `#revoke-own`, `#key`)
	tab.Do("after revoking the session's key", chromedp.Navigate(s.URL+"/ui/"), chromedp.WaitVisible(`#key`))
}

// keyID is the id of key.
func keyID(t *testing.T, s *stacktest.Stack, key string) string {
	t.Helper()
	k, err := s.Store.LookupAPIKey(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID
}
