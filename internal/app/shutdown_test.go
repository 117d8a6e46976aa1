package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/logicspike/comms/internal/app"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/config"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/testing/testenv"
)

// Each binary's parts all stop when its context ends: Run returns only after every goroutine it
// started (servers, consumers, batchers, publishers, listeners, gauges) has, and nothing is left
// running once the connections are closed.
func TestEveryProcessStopsEveryGoroutine(t *testing.T) {
	brokers := testenv.Kafka(t, 2, queue.AllTopics()...)
	dbURL := testenv.DatabaseURL(t)
	_, prefix := testenv.Redis(t)
	env := map[string]string{
		"COMMS_DATABASE_URL": dbURL, "COMMS_ENCRYPTION_KEYS": stacktest.TestKeys, "COMMS_REDIS_ADDR": testenv.RedisAddr(),
		"COMMS_REDIS_PREFIX": prefix, "COMMS_KAFKA_BROKERS": strings.Join(brokers, ","), "COMMS_DRAIN_DELAY": "0s",
		"COMMS_SHUTDOWN_TIMEOUT": "5s", "COMMS_WORKER_GROUP": "leak-test",
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	for name, run := range map[string]func(context.Context, app.Deps) error{
		"api":     func(ctx context.Context, d app.Deps) error { return app.API(ctx, cfg, d, listen()) },
		"worker":  func(ctx context.Context, d app.Deps) error { return app.Worker(ctx, cfg, d, app.Registry(cfg, nil)) },
		"webhook": func(ctx context.Context, d app.Deps) error { return app.Webhook(ctx, cfg, d, listen()) },
	} {
		t.Run(name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			ctx, cancel := context.WithCancel(context.Background())
			d, err := app.Open(ctx, cfg, log)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- run(ctx, d) }()
			time.Sleep(500 * time.Millisecond) // every part started and at work
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%s stopped with %v", name, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%s did not stop within 30 s of its context ending", name)
			}
			d.Close()
			queue.CloseIdleConnections()
			goleak.VerifyNone(t, before,
				// The standard library's HTTP client keeps idle keep-alive connections to the
				// brokers' and providers' hosts; they are not the process's parts.
				goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
				goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
		})
	}
}

// An open inbox stream does not hold the API's shutdown up to its timeout: the server ends the
// streams as it starts shutting down (the browsers reconnect to another replica).
func TestAnOpenInboxStreamEndsAtShutdown(t *testing.T) {
	brokers := testenv.Kafka(t, 2, queue.AllTopics()...)
	_, prefix := testenv.Redis(t)
	env := map[string]string{
		"COMMS_DATABASE_URL": testenv.DatabaseURL(t), "COMMS_ENCRYPTION_KEYS": stacktest.TestKeys, "COMMS_REDIS_ADDR": testenv.RedisAddr(),
		"COMMS_REDIS_PREFIX": prefix, "COMMS_KAFKA_BROKERS": strings.Join(brokers, ","), "COMMS_DRAIN_DELAY": "0s",
		"COMMS_SHUTDOWN_TIMEOUT": "2m",
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := app.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st := store.New(d.Pool)
	tn, err := st.CreateTenant(ctx, domain.NewTenant{Name: "streams"})
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := st.CreateAPIKey(ctx, domain.KindTenant, tn.ID, "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.PutRecipient(ctx, tn.ID, domain.Recipient{ExternalID: "u_1", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- app.API(ctx, cfg, d, ln) }()
	var tok struct{ Token string }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest("POST", base+"/v1/recipients/u_1/inbox-tokens", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&tok)
			resp.Body.Close()
			if resp.StatusCode == 201 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no inbox token from the API")
		}
	}
	req, _ := http.NewRequest("GET", base+"/v1/inbox/stream?token="+tok.Token, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	ended := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, resp.Body); close(ended) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the API stopped with %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the API's shutdown waited on the open stream")
	}
	<-ended
}
