package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// noisy is tenant B of the isolation benchmark: a tenant of its own, with its own webhook
// provider served by loadgen on loopback, which answers Save & Test and then misbehaves on every
// real send (hangs, or answers 503), while B sends at its own rate. The report covers the other
// tenants only: the question is whether they notice.
type noisy struct {
	mode     string        // hang, 503, ok (a well-behaved B: the control), or poison (bodies that cannot be stored)
	hang     time.Duration // how long a hanging send is held
	rate     int
	accepted atomic.Int64
	refused  atomic.Int64
	calls    atomic.Int64
	srv      *http.Server
}

func (nz *noisy) start(ctx context.Context, c *http.Client, o options) (key string, err error) {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	nz.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"test":true`)) {
			w.WriteHeader(http.StatusNoContent) // Save & Test passes: the trouble starts later
			return
		}
		nz.calls.Add(1)
		if nz.mode == "ok" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if nz.mode == "503" {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		select {
		case <-time.After(nz.hang):
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = nz.srv.Serve(ln) }()

	admin := func(path string, body, out any) error { return postJSON(ctx, c, o.url+path, o.adminKey, body, out) }
	var t struct{ ID string }
	if err := admin("/admin/tenants", map[string]any{"name": "noisy neighbour", "allow_system_fallback": false}, &t); err != nil {
		return "", fmt.Errorf("create noisy tenant: %w", err)
	}
	if o.noisyLimit > 0 {
		// B's plan: what it sends beyond this is refused with 429 at the door.
		limit := map[string]any{"rate_per_second": o.noisyLimit, "rate_burst": max(1, int(o.noisyLimit))}
		if err := sendJSON(ctx, c, "PATCH", o.url+"/admin/tenants/"+t.ID, o.adminKey, limit, &struct{}{}); err != nil {
			return "", fmt.Errorf("limit noisy tenant: %w", err)
		}
	}
	var k struct{ Secret string }
	if err := admin("/admin/api-keys", map[string]any{"kind": "tenant", "tenant_id": t.ID, "name": "loadgen"}, &k); err != nil {
		return "", fmt.Errorf("create noisy key: %w", err)
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("n", 32)))
	cfg := map[string]any{"type": "webhook", "name": "noisy " + nz.mode, "channel": o.channel,
		"credentials": map[string]any{"url": "http://" + ln.Addr().String() + "/hook", "secret": secret}}
	if o.channel == "sms" {
		cfg["test_recipient"] = "+14155550100"
	} else {
		cfg["test_recipient"] = "ops@example.com"
	}
	if err := postJSON(ctx, c, o.url+"/v1/providers", k.Secret, cfg, &struct{}{}); err != nil {
		return "", fmt.Errorf("create noisy provider (the dev stack must allow private networks): %w", err)
	}
	return k.Secret, nil
}

// run sends as B at nz.rate until ctx ends.
func (nz *noisy) run(ctx context.Context, c *http.Client, o options, key string) {
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(nz.rate))
	defer tick.Stop()
	sem := make(chan struct{}, 64)
	for n := int64(0); ; n++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // B's own sender is saturated: skip rather than slow A's pacer
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			bo := o
			bo.poison = nz.mode == "poison"
			bo.batch = 0     // B sends one message per request
			bo.category = "" // B declared none
			status, _, err := send(ctx, c, bo, key, fmt.Sprintf("noisy-%d-%d", time.Now().UnixNano(), n), n)
			if err == nil && status == http.StatusAccepted {
				nz.accepted.Add(1)
			} else {
				nz.refused.Add(1)
			}
		}()
	}
}

func (nz *noisy) stop() { _ = nz.srv.Close() }

func postJSON(ctx context.Context, c *http.Client, url, key string, body, out any) error {
	return sendJSON(ctx, c, "POST", url, key, body, out)
}

func sendJSON(ctx context.Context, c *http.Client, method, url, key string, body, out any) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, raw)
	}
	return json.Unmarshal(raw, out)
}
