package api_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
)

// A tenant exports its own month, an admin every tenant's; columns are the documented ones.
func TestBillingExportIsTheMonthsMessages(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	tid, key := s.Tenant()
	otherTid, otherKey := s.Tenant()
	mine := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: "a, \"quoted\" text"})
	theirs := s.Send(otherKey, "", message.Request{Channel: message.Email, To: "ada@example.com", Subject: "s", Text: "t"})
	month := time.Now().UTC().Format("2006-01")

	rows := exportCSV(t, s, "/v1/usage/export?format=csv&month="+month, key)
	if len(rows) != 2 || strings.Join(rows[0], ",") != strings.Join(store.ExportColumns, ",") {
		t.Fatalf("tenant export: %q", rows)
	}
	if rows[1][0] != tid || rows[1][1] != mine || rows[1][3] != "sms" || rows[1][7] != "'+14155550123" || rows[1][12] != "1" {
		t.Fatalf("tenant export row: %q", rows[1])
	}
	all := exportCSV(t, s, "/admin/usage/export?month="+month, s.AdminKey)
	found := map[string]string{}
	for _, r := range all[1:] {
		found[r[1]] = r[0]
	}
	if found[mine] != tid || found[theirs] != otherTid {
		t.Fatalf("admin export misses a tenant's messages: %v", found)
	}
	if one := exportCSV(t, s, "/admin/usage/export?month="+month+"&tenant_id="+otherTid, s.AdminKey); len(one) != 2 || one[1][1] != theirs {
		t.Fatalf("admin export of one tenant: %q", one)
	}
	var p struct {
		Errors []message.FieldError `json:"errors"`
	}
	if resp := s.Do("GET", "/admin/usage/export?month="+month+"&tenant_id=x'%3B+DROP+TABLE+t", s.AdminKey, nil, nil, &p); resp.StatusCode != 400 || p.Errors[0].Field != "tenant_id" {
		t.Fatalf("a tenant_id that is not an id: %d %+v", resp.StatusCode, p)
	}
	if empty := exportCSV(t, s, "/v1/usage/export?month=2020-01", key); len(empty) != 1 {
		t.Fatalf("a month without messages: %q", empty)
	}
	for q, field := range map[string]string{"": "month", "?month=2026-13": "month", "?month=2026-11&format=xlsx": "format", "?month=2026-11&tenant_id=x": "tenant_id"} {
		var p struct {
			Errors []message.FieldError `json:"errors"`
		}
		if resp := s.Do("GET", "/v1/usage/export"+q, key, nil, nil, &p); resp.StatusCode != 400 || len(p.Errors) != 1 || p.Errors[0].Field != field {
			t.Fatalf("%q: %d %+v", q, resp.StatusCode, p)
		}
	}
	if resp := s.Do("GET", "/admin/usage/export?month="+month, key, nil, nil, nil); resp.StatusCode != 403 {
		t.Fatalf("a tenant key on the admin export: %d", resp.StatusCode)
	}
}

// Cells a tenant fills that a spreadsheet would read as a formula (=, +, -, @, tab, carriage
// return first) are exported with a leading quote, so they show as text.
func TestBillingExportNeutralizesFormulas(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	hostile := []string{`=HYPERLINK("http://evil.example") <a@example.com>`, "+sum@example.com", "-cmd@example.com", "=1+2@example.com"}
	ids := map[string]string{}
	for _, to := range hostile {
		ids[s.Send(key, "", message.Request{Channel: message.Email, To: to, Subject: "s", Text: "t"})] = to
	}
	plain := s.Send(key, "", message.Request{Channel: message.Email, To: "ada@example.com", Subject: "s", Text: "t"})
	rows := exportCSV(t, s, "/v1/usage/export?format=csv&month="+time.Now().UTC().Format("2006-01"), key)
	if len(rows) != len(hostile)+2 {
		t.Fatalf("%d rows, want %d", len(rows), len(hostile)+2)
	}
	for _, r := range rows[1:] {
		cell := r[7]
		if r[1] == plain {
			if cell != "ada@example.com" {
				t.Errorf("a plain address exported as %q", cell)
			}
			continue
		}
		if !strings.HasPrefix(cell, "'") || !strings.Contains(cell, strings.TrimSpace(strings.Split(ids[r[1]], " ")[0])[1:]) {
			t.Errorf("recipient %q exported as %q, want it after a quote", ids[r[1]], cell)
		}
	}
}

func exportCSV(t *testing.T, s *stacktest.Stack, path, key string) [][]string {
	t.Helper()
	resp := get(t, s.Client, s, path, key)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// get sends a GET with c: the stack's own client checks the exchange against openapi.json, and
// reads the whole answer to do so.
func get(t testing.TB, c *http.Client, s *stacktest.Stack, path, key string) *http.Response {
	req, _ := http.NewRequest("GET", s.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// seedMonth writes n messages for tenantID in November 2026, straight into message_logs.
func seedMonth(t testing.TB, s *stacktest.Stack, tenantID string, n int) {
	if _, err := s.Pool.Exec(context.Background(), `SELECT communication.create_partitions('message_logs', '2026-11-01', '2026-12-01')`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(context.Background(), `
		INSERT INTO communication.message_logs (id, tenant_id, channel, recipient, status, attempts, provider_type, provider_config_id,
			sms_segments, cost, cost_currency, cost_source, created_at, sent_at, delivered_at)
		SELECT 'msg_export_' || i, $1, 'sms', '+1415555' || lpad((i % 10000)::text, 4, '0'), 'delivered', 1, 'twilio', 'prv_export',
		       1 + i % 3, '-0.00790', 'USD', 'provider', t, t + interval '1 second', t + interval '5 seconds'
		FROM generate_series(1, $2) AS i, LATERAL (SELECT timestamptz '2026-11-01' + i * interval '2 seconds' AS t) x`, tenantID, n); err != nil {
		t.Fatal(err)
	}
}

// A million rows stream through in constant memory: the API's heap grows by far less than the
// export's size while it runs.
func TestBillingExportOfAMillionRowsInConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a million messages")
	}
	s := stacktest.Start(t, stacktest.Options{})
	tid, key := s.Tenant()
	const n = 1_000_000
	seedMonth(t, s, tid, n)

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	start := time.Now()
	resp := get(t, http.DefaultClient, s, "/v1/usage/export?format=csv&month=2026-11", key)
	var rows, size int
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rows++
		size += len(sc.Bytes()) + 1
	}
	resp.Body.Close()
	elapsed := time.Since(start)
	close(done)
	if err := sc.Err(); err != nil || resp.StatusCode != 200 {
		t.Fatalf("export: %d %v", resp.StatusCode, err)
	}
	if rows != n+1 {
		t.Fatalf("exported %d lines, want %d and the header", rows, n)
	}
	growth := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("%d rows, %d MiB in %s (%.0f rows/s); heap in use grew by at most %d MiB", n, size>>20, elapsed.Round(time.Millisecond),
		float64(n)/elapsed.Seconds(), growth>>20)
	if growth > 32<<20 || int64(size) < 4*growth {
		t.Fatalf("the heap grew by %d MiB for a %d MiB export: the export is not streamed", growth>>20, size>>20)
	}
}
