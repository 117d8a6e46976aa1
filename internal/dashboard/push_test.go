package dashboard_test

import (
	"encoding/json"
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

// A tenant adds its APNs key and its Web Push config in the browser with Save & Test: the .p8
// key is pasted whole, line breaks and all, and the test notification reaches the device; the
// Web Push test goes to the browser subscription pasted as JSON. A push message's page shows the
// notification and its devices, and the overview counts the inbox's reads with a read rate.
func TestPushProvidersAndReadsInChromium(t *testing.T) {
	browser.Path(t)
	ap := fakeprovider.NewAPNs()
	defer ap.Close()
	push := fakeprovider.NewWebPush()
	defer push.Close()
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{APNsBaseURL: ap.URL, RootCAs: ap.RootCAs()}})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	_, key := s.Tenant()
	tab := browser.NewTab(t)
	signIn(tab, s, key, `#total-sent`)

	iphone := strings.Repeat("ab", 32)
	p8 := ap.P8(nil)
	if !strings.Contains(strings.TrimSpace(p8), "\n") {
		t.Fatal("the fake's .p8 key is one line: the test would not show that line breaks survive the form")
	}
	tab.Do("the APNs form", chromedp.Navigate(s.URL+"/ui/providers"), chromedp.Click(`#add-apns summary`), chromedp.WaitVisible(`#apns-private_key`),
		chromedp.SetValue(`#apns-name`, "ios"), chromedp.SetValue(`#apns-key_id`, ap.KeyID), chromedp.SetValue(`#apns-team_id`, ap.TeamID),
		chromedp.SetValue(`#apns-private_key`, p8), chromedp.SetValue(`#apns-sender-topic`, ap.Topic),
		chromedp.SetValue(`#apns-sender-environment`, "sandbox"), chromedp.SetValue(`#apns-test`, iphone))
	tab.Press("Save & Test", `#add-apns button[type=submit]`, `p.notice`)
	got := listProviders(t, s, key, "/v1/providers")
	if len(got) != 1 || got[0].Type != "apns" || len(ap.Received()) != 1 || ap.Received()[0].To != iphone {
		t.Fatalf("after Save & Test: configs %+v, APNs received %d", got, len(ap.Received()))
	}

	sub := push.Subscribe("")
	subJSON, _ := json.MarshalIndent(sub, "", "  ")
	tab.Do("the Web Push form", chromedp.Navigate(s.URL+"/ui/providers"), chromedp.Click(`#add-webpush summary`), chromedp.WaitVisible(`#webpush-subject`),
		chromedp.SetValue(`#webpush-name`, "browsers"), chromedp.SetValue(`#webpush-subject`, "mailto:ops@acme.example"),
		chromedp.SetValue(`#webpush-test`, string(subJSON)))
	tab.Press("Save & Test", `#add-webpush button[type=submit]`, `p.notice`)
	if p := push.Payloads(sub.Endpoint); len(p) != 1 || p[0].Title != "comms test" || len(listProviders(t, s, key, "/v1/providers")) != 2 {
		t.Fatalf("the Web Push test: the browser decrypted %+v", p)
	}
	tab.Shoot("providers-push")

	s.Do("PUT", "/v1/recipients/u_1", key, map[string]any{}, nil, nil)
	s.Do("POST", "/v1/recipients/u_1/devices", key, map[string]any{"platform": "apns", "token": iphone}, nil, nil)
	pushed := s.Send(key, "", message.Request{Channel: message.Push, Recipient: "u_1", Push: &message.PushContent{Title: "Order shipped", Body: "It arrives Tuesday."}})
	var inbox []string
	for _, title := range []string{"one", "two"} {
		inbox = append(inbox, s.Send(key, "", message.Request{Channel: message.InApp, Recipient: "u_1", InApp: &message.InAppContent{Title: title}}))
	}
	s.WaitAllFinal(30 * time.Second)
	var tok api.InboxToken
	s.Do("POST", "/v1/recipients/u_1/inbox-tokens", key, nil, nil, &tok)
	if resp := s.Do("POST", "/v1/inbox/"+inbox[0]+"/read", tok.Token, nil, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("read: %d", resp.StatusCode)
	}

	tab.Do("the push message", chromedp.Navigate(s.URL+"/ui/messages/"+pushed), chromedp.WaitVisible(`#deliveries tbody tr`))
	if n, text := tab.Get("notification", chromedp.Text(`#push`)), tab.Get("devices", chromedp.Text(`#deliveries tbody`)); !strings.Contains(n, "Order shipped") ||
		!strings.Contains(text, "apns") || !strings.Contains(text, "sent") {
		t.Fatalf("the push message's page: %q, devices %q", n, text)
	}
	tab.Do("the messages", chromedp.Navigate(s.URL+"/ui/messages"), chromedp.WaitVisible(`table tbody tr`))
	if list := tab.Get("list", chromedp.Text(`table tbody`)); !strings.Contains(list, "Order shipped") || !strings.Contains(list, "two") {
		t.Fatalf("the message list shows no title of the push and in_app messages: %q", list)
	}
	// Reads reach the rollup when the folder next runs.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		tab.Do("the in-app overview", chromedp.Navigate(s.URL+"/ui/?range=24h&channel=in_app"), chromedp.WaitVisible(`#total-read`))
		read, rate := tab.Get("read", chromedp.Text(`#total-read`)), tab.Get("rate", chromedp.Text(`#read-rate`))
		if read == "1" && strings.HasPrefix(rate, "50.0%") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the overview shows %s read at %q, want 1 at 50.0%%", read, rate)
		}
	}
	tab.Shoot("overview-in-app")
	tab.Do("every channel", chromedp.Navigate(s.URL+"/ui/?range=24h"), chromedp.WaitVisible(`#read-rate`))
	if rate := tab.Get("rate", chromedp.Text(`#read-rate`)); !strings.HasPrefix(rate, "50.0%") {
		t.Fatalf("over every channel the read rate is %q: it is of in-app messages only, 50.0%%", rate)
	}
}
