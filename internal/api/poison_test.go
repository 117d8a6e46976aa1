package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/logicspike/comms/internal/testing/stacktest"
)

// countingHandler counts warnings and errors, to hold a flood of bad requests to a bounded log.
type countingHandler struct{ n *atomic.Int64 }

func (h countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h countingHandler) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// Tenant A sends text PostgreSQL cannot store as fast as it can while tenant B sends valid
// messages: every one of B's is accepted, every one of A's is a 422 naming the field, and the log
// does not grow with A's requests.
func TestPoisonFromOneTenantFailsNoneOfAnothers(t *testing.T) {
	t.Parallel()
	var lines atomic.Int64
	s := stacktest.Start(t, stacktest.Options{AuthCacheTTL: 10e9, Log: slog.New(countingHandler{&lines})})
	tenantA, keyA := s.Tenant()
	tenantB, keyB := s.Tenant()
	for _, id := range []string{tenantA, tenantB} {
		if _, err := s.Pool.Exec(context.Background(), `UPDATE communication.tenants SET rate_per_second = 0 WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
	}
	send := func(key, body string) (int, string) {
		req, _ := http.NewRequest("POST", s.URL+"/v1/messages", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	done := make(chan struct{})
	var poisonSent, poisonRejected atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				field := []string{`"text":"a\u0000b"`, `"text":"ok","metadata":{"k":"\u0000"}`, "\"text\":\"\xff\""}[i%3]
				code, body := send(keyA, `{"channel":"sms","to":"+14155550123",`+field+`}`)
				poisonSent.Add(1)
				if code == 422 && (strings.Contains(body, `"field":"text"`) || strings.Contains(body, `"field":"metadata.k"`)) {
					poisonRejected.Add(1)
				} else {
					t.Errorf("poison answered %d: %s", code, body)
				}
			}
		}()
	}
	const perWorker = 60
	var accepted atomic.Int64
	var bwg sync.WaitGroup
	for w := range 8 {
		bwg.Add(1)
		go func() {
			defer bwg.Done()
			for i := range perWorker {
				code, body := send(keyB, fmt.Sprintf(`{"channel":"sms","to":"+14155550123","text":"valid %d-%d"}`, w, i))
				if code != 202 {
					t.Errorf("tenant B's valid message answered %d beside A's poison: %s", code, body)
					continue
				}
				accepted.Add(1)
			}
		}()
	}
	bwg.Wait()
	close(done)
	wg.Wait()
	if accepted.Load() != 8*perWorker {
		t.Fatalf("tenant B: %d of %d accepted", accepted.Load(), 8*perWorker)
	}
	var stored int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM communication.message_logs WHERE tenant_id = $1`, tenantA).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("tenant A's poison stored %d messages (%v)", stored, err)
	}
	if poisonRejected.Load() == 0 || lines.Load() > poisonRejected.Load() {
		t.Fatalf("%d log lines for %d rejected requests (%d sent)", lines.Load(), poisonRejected.Load(), poisonSent.Load())
	}
}

// The decoder's rule holds on every endpoint with a body, not only messages.
func TestUnstorableTextIsRefusedOnEveryEndpoint(t *testing.T) {
	s := start(t)
	tenantID, key := s.Tenant()
	for _, tc := range []struct {
		key, path, body, field string
	}{
		{key, "/v1/suppressions", `{"channel":"sms","recipient":"+14155550123","detail":"\u0000"}`, "detail"},
		{s.AdminKey, "/admin/tenants", `{"name":"a\u0000"}`, "name"},
		{s.AdminKey, "/admin/api-keys", `{"kind":"tenant","tenant_id":"` + tenantID + `","name":"\u0000"}`, "name"},
		{s.AdminKey, "/admin/tenants", `{"name":"a","name":"b"}`, "name"},
	} {
		req, _ := http.NewRequest("POST", s.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+tc.key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 4 || !strings.Contains(string(b), `"field":"`+tc.field+`"`) {
			t.Errorf("POST %s %s: %d %s, want a 4xx naming %q", tc.path, tc.body, resp.StatusCode, b, tc.field)
		}
	}
	for _, path := range []string{"/v1/messages?to=%00", "/v1/suppressions?recipient=%ff", "/v1/messages/msg_%00"} {
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("GET %s: %d, want 400", path, resp.StatusCode)
		}
	}
}
