package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/logicspike/comms/pkg/client"
)

// inboxMain (loadgen inbox) holds -streams inbox streams open on one API, one per recipient of a
// new tenant, sends -messages in_app messages to random recipients at -rate a second, and reports
// how long each took from the API's 202 to its event on the recipient's stream, how many never
// arrived, and the API process's resident memory per open stream (-metrics-url).
func inboxMain(args []string) int {
	fs := flag.NewFlagSet("loadgen inbox", flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "API base URL")
	adminKey := fs.String("admin-key", os.Getenv("COMMS_ADMIN_KEY"), "admin key, to create the tenant and its key")
	metrics := fs.String("metrics-url", "http://127.0.0.1:9090/metrics", "the API process's /metrics, for its resident memory (empty: not reported)")
	streams := fs.Int("streams", 1000, "inbox streams to hold open, one per recipient")
	messages := fs.Int("messages", 2000, "in_app messages to send")
	rate := fs.Int("rate", 200, "messages per second")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for the last events")
	_ = fs.Parse(args)
	if *adminKey == "" {
		fmt.Fprintln(os.Stderr, "loadgen inbox: -admin-key (or COMMS_ADMIN_KEY) is required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := inboxRun(ctx, *url, *adminKey, *metrics, *streams, *messages, *rate, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen inbox:", err)
		return 1
	}
	return 0
}

func inboxRun(ctx context.Context, url, adminKey, metricsURL string, n, messages, rate int, wait time.Duration) error {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
	_, secret, err := newTenantKey(ctx, c, url, adminKey, "loadgen inbox")
	if err != nil {
		return err
	}
	tokens := make([]string, n)
	for i := range n {
		id := "p_" + strconv.Itoa(i)
		if err := sendJSON(ctx, c, "PUT", url+"/v1/recipients/"+id, secret, map[string]any{}, &struct{}{}); err != nil {
			return fmt.Errorf("profile %s: %w", id, err)
		}
		var tok struct{ Token string }
		if err := sendJSON(ctx, c, "POST", url+"/v1/recipients/"+id+"/inbox-tokens", secret, map[string]any{"ttl_seconds": 86400}, &tok); err != nil {
			return fmt.Errorf("token %s: %w", id, err)
		}
		tokens[i] = tok.Token
	}
	before := residentBytes(ctx, metricsURL)

	var (
		sentAt   sync.Map // message id → when the API answered 202
		mu       sync.Mutex
		lat      []time.Duration
		arrived  atomic.Int64
		ready    sync.WaitGroup
		streamCx = &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: n}}
	)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready.Add(n)
	for i := range n {
		go func() {
			once := sync.OnceFunc(ready.Done)
			defer once()
			req, _ := http.NewRequestWithContext(sctx, "GET", url+"/v1/inbox/stream", nil)
			req.Header.Set("Authorization", "Bearer "+tokens[i])
			resp, err := streamCx.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				line := sc.Text()
				switch {
				case line == "event: ready":
					once()
				case strings.HasPrefix(line, "id: "):
					if at, ok := sentAt.Load(strings.TrimPrefix(line, "id: ")); ok {
						d := time.Since(at.(time.Time))
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
						arrived.Add(1)
					}
				}
			}
		}()
	}
	ready.Wait()
	time.Sleep(2 * time.Second) // let the process settle before reading its memory
	open := residentBytes(ctx, metricsURL)

	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var accepted int64
	start := time.Now()
	for i := range messages {
		<-tick.C
		body := map[string]any{"channel": "in_app", "recipient": "p_" + strconv.Itoa(i%n),
			"in_app": map[string]any{"title": "loadgen " + strconv.Itoa(i), "body": "a new message"}}
		var acc struct{ ID string }
		if err := sendJSON(ctx, c, "POST", url+"/v1/messages", secret, body, &acc); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		sentAt.Store(acc.ID, time.Now())
		accepted++
	}
	sending := time.Since(start)
	for deadline := time.Now().Add(wait); arrived.Load() < accepted && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	p := pct(lat)
	mu.Unlock()
	fmt.Printf("inbox streams: %d open, %d messages sent in %.1f s (%.0f/s), %d arrived, %d lost\n",
		n, accepted, sending.Seconds(), float64(accepted)/sending.Seconds(), arrived.Load(), accepted-arrived.Load())
	fmt.Printf("  202 -> stream event ms: p50 %.1f p95 %.1f p99 %.1f max %.1f\n", p.P50, p.P95, p.P99, p.Max)
	if before > 0 && open > 0 {
		fmt.Printf("  API resident memory: %.1f MiB before the streams, %.1f MiB with them open: %.1f KiB a stream\n",
			before/(1<<20), open/(1<<20), (open-before)/float64(n)/1024)
	}
	return nil
}

// residentBytes reads process_resident_memory_bytes from a /metrics page (0 when it cannot).
func residentBytes(ctx context.Context, url string) float64 {
	if url == "" {
		return 0
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// newTenantKey makes a tenant named name with the admin key and returns its id and a key of it.
func newTenantKey(ctx context.Context, c *http.Client, url, adminKey, name string) (tenantID, secret string, err error) {
	admin := client.NewAdmin(url, adminKey, client.WithHTTPClient(c))
	t, err := admin.CreateTenant(ctx, client.CreateTenantJSONRequestBody{Name: name})
	if err != nil {
		return "", "", fmt.Errorf("create tenant: %w", err)
	}
	k, err := admin.CreateAPIKey(ctx, client.CreateAPIKeyJSONRequestBody{Kind: "tenant", TenantID: t.ID, Name: "loadgen"})
	if err != nil {
		return "", "", fmt.Errorf("create key: %w", err)
	}
	return t.ID, k.Secret, nil
}
