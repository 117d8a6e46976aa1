package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/pkg/webpush"
)

// pushMain (loadgen push) measures push fan-out: a new tenant with a Web Push (or FCM) config,
// -recipients profiles with -devices devices each on a push service this process runs (it answers
// at once, after checking each request's auth and, for Web Push, decrypting each notification as
// a browser does), then one push message per profile in batches of 1,000. It reports the deliveries a second
// from the first batch's 202 to the last notification received, and how many never arrived. The
// stack must allow private networks (the dev stack does): the push service is on loopback.
func pushMain(args []string) int {
	fs := flag.NewFlagSet("loadgen push", flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "API base URL")
	adminKey := fs.String("admin-key", os.Getenv("COMMS_ADMIN_KEY"), "admin key, to create the tenant and its key")
	recipients := fs.Int("recipients", 10000, "profiles, each sent one push message")
	devices := fs.Int("devices", 2, "Web Push subscriptions per profile")
	wait := fs.Duration("wait", 5*time.Minute, "how long to wait for the last notifications")
	platform := fs.String("platform", "webpush", "webpush, or fcm: FCM on -fcm-addr, where the stack's COMMS_FCM_BASE_URL and COMMS_FCM_TOKEN_URL (+/token) point")
	fcmAddr := fs.String("fcm-addr", "127.0.0.1:4010", "with -platform fcm: where to serve FCM")
	_ = fs.Parse(args)
	if *adminKey == "" {
		fmt.Fprintln(os.Stderr, "loadgen push: -admin-key (or COMMS_ADMIN_KEY) is required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *platform != "webpush" && *platform != "fcm" {
		fmt.Fprintln(os.Stderr, "loadgen push: -platform must be webpush or fcm")
		return 2
	}
	if err := pushRun(ctx, *url, *adminKey, *platform, *fcmAddr, *recipients, *devices, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen push:", err)
		return 1
	}
	return 0
}

// receiver is the push service loadgen runs: what it received so far.
type receiver interface {
	Received() []fakeprovider.Received
}

// counter is a push service that counts what it accepted without the browsers' work (the Web Push
// fake decrypting later).
type counter interface{ Pushes() int }

func pushRun(ctx context.Context, url, adminKey, platform, fcmAddr string, n, perProfile int, wait time.Duration) error {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 60 * time.Second}
	tenantID, secret, err := newTenantKey(ctx, c, url, adminKey, "loadgen push")
	if err != nil {
		return err
	}
	// The fan-out is measured, not the intake's rate limit: all of it is accepted at once.
	if err := sendJSON(ctx, c, "PATCH", url+"/admin/tenants/"+tenantID, adminKey,
		map[string]any{"rate_per_second": 100_000, "rate_burst": 100_000}, &struct{}{}); err != nil {
		return fmt.Errorf("lift the tenant's rate limit: %w", err)
	}
	var svc receiver
	var device func(i, j int) map[string]any
	var cfg map[string]any
	switch platform {
	case "fcm":
		ln, err := net.Listen("tcp", fcmAddr)
		if err != nil {
			return fmt.Errorf("serve FCM: %w", err)
		}
		fc := fakeprovider.NewFCMOn(ln)
		defer fc.Close()
		svc = fc
		cfg = map[string]any{"type": "fcm", "name": "android", "channel": "push", "credentials": map[string]any{"service_account": fc.ServiceAccount(nil)}}
		device = func(i, j int) map[string]any {
			return map[string]any{"platform": "fcm", "token": "token-" + strconv.Itoa(i) + "-" + strconv.Itoa(j)}
		}
	default:
		wp := fakeprovider.NewWebPush()
		defer wp.Close()
		// The browsers decrypt after the run, as they would on their own machines: the push
		// service only checks and accepts, and the measured cores are comms'.
		wp.DecryptLater = true
		svc = wp
		pub, priv, err := webpush.GenerateVAPID()
		if err != nil {
			return err
		}
		cfg = map[string]any{"type": "webpush", "name": "browsers", "channel": "push",
			"credentials": map[string]any{"subject": "mailto:loadgen@acme.example", "public_key": pub, "private_key": priv}}
		device = func(int, int) map[string]any {
			return map[string]any{"platform": "webpush", "subscription": wp.Subscribe(pub)}
		}
	}
	if err := sendJSON(ctx, c, "POST", url+"/v1/providers", secret, cfg, &struct{}{}); err != nil {
		return fmt.Errorf("create the %s config: %w", platform, err)
	}
	// Profiles and their devices, 32 at a time.
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var setupErr error
	var once sync.Once
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			id := "p_" + strconv.Itoa(i)
			err := sendJSON(ctx, c, "PUT", url+"/v1/recipients/"+id, secret, map[string]any{}, &struct{}{})
			for j := range perProfile {
				if err == nil {
					err = sendJSON(ctx, c, "POST", url+"/v1/recipients/"+id+"/devices", secret, device(i, j), &struct{}{})
				}
			}
			if err != nil {
				once.Do(func() { setupErr = fmt.Errorf("profile %s: %w", id, err) })
			}
		}()
	}
	wg.Wait()
	if setupErr != nil {
		return setupErr
	}
	want := n * perProfile
	start := time.Now()
	for from := 0; from < n; from += 1000 {
		var batch []map[string]any
		for i := from; i < min(n, from+1000); i++ {
			batch = append(batch, map[string]any{"channel": "push", "recipient": "p_" + strconv.Itoa(i),
				"push": map[string]any{"title": "Order shipped", "body": "It arrives Tuesday.", "data": map[string]string{"order": strconv.Itoa(i)}}})
		}
		var res struct{ Accepted int }
		if err := sendJSON(ctx, c, "POST", url+"/v1/messages/batch", secret, map[string]any{"messages": batch}, &res); err != nil || res.Accepted != len(batch) {
			return fmt.Errorf("batch from %d: %d accepted, %v", from, res.Accepted, err)
		}
	}
	accepted := time.Since(start)
	deadline := time.Now().Add(wait)
	arrived := func() int { return len(svc.Received()) }
	if c, ok := svc.(counter); ok {
		arrived = c.Pushes
	}
	for arrived() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	got := svc.Received()
	undecryptable := 0
	for _, r := range got {
		if r.Extra["error"] != "" {
			undecryptable++
		}
	}
	last := start
	for _, r := range got {
		if r.At.After(last) {
			last = r.At
		}
	}
	secs := last.Sub(start).Seconds()
	ids := map[string]int{}
	for _, r := range got {
		ids[r.To+" "+r.MessageID]++
	}
	dups := 0
	for _, v := range ids {
		dups += v - 1
	}
	fmt.Printf("push fan-out: %d recipients x %d %s devices: %d of %d deliveries in %.2f s (%.0f deliveries/s), %d lost, %d twice; batches accepted in %.2f s\n",
		n, perProfile, platform, len(got), want, secs, float64(len(got))/secs, want-len(ids), dups, accepted.Seconds())
	if len(got) < want {
		return fmt.Errorf("%d deliveries never arrived", want-len(got))
	}
	if undecryptable > 0 {
		return fmt.Errorf("%d deliveries could not be decrypted by their browsers", undecryptable)
	}
	return nil
}
