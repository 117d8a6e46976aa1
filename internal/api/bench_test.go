package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/logicspike/comms/internal/testing/stacktest"
)

// BenchmarkAcceptMessage measures POST /v1/messages end to end in one process: HTTP, auth,
// validation, the Redis fast path, the batched durable insert and the publish to the in-process
// broker. Run with -cpu to vary parallelism; ns/op is per accepted message.
func BenchmarkAcceptMessage(b *testing.B) {
	s := stacktest.Start(b, stacktest.Options{Partitions: 12, AuthCacheTTL: 10e9})
	keys := make([]string, 10)
	for i := range keys {
		_, keys[i] = s.Tenant()
	}
	var seq atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			body := fmt.Sprintf(`{"channel":"sms","to":"+1415555%04d","text":"code %d"}`, n%10000, n)
			req, _ := http.NewRequest("POST", s.URL+"/v1/messages", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+keys[n%int64(len(keys))])
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", fmt.Sprint("bench-", n))
			resp, err := s.Client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}

// BenchmarkBatchOfRecipients measures POST /v1/messages/batch of 1,000 recipients named by
// address, and by recipient profile id (each resolved from its profile: one query for the
// batch). ns/op is per batch of 1,000.
func BenchmarkBatchOfRecipients(b *testing.B) {
	s := stacktest.Start(b, stacktest.Options{Partitions: 12, AuthCacheTTL: 10e9})
	tid, key := s.Tenant()
	if resp := s.Do("PATCH", "/admin/tenants/"+tid, s.AdminKey, map[string]any{"rate_per_second": 1e6, "rate_burst": 100000}, nil, nil); resp.StatusCode != 200 {
		b.Fatalf("lift the rate limit: %d", resp.StatusCode)
	}
	var byAddress, byID strings.Builder
	byAddress.WriteString(`{"messages":[`)
	byID.WriteString(`{"messages":[`)
	for i := range 1000 {
		if i > 0 {
			byAddress.WriteString(",")
			byID.WriteString(",")
		}
		phone := fmt.Sprintf("+1415555%04d", i)
		fmt.Fprintf(&byAddress, `{"channel":"sms","to":%q,"text":"hello"}`, phone)
		fmt.Fprintf(&byID, `{"channel":"sms","recipient":"u_%d","text":"hello"}`, i)
		if resp := s.Do("PUT", fmt.Sprintf("/v1/recipients/u_%d", i), key, map[string]any{"phone": phone}, nil, nil); resp.StatusCode != 201 {
			b.Fatalf("profile: %d", resp.StatusCode)
		}
	}
	byAddress.WriteString("]}")
	byID.WriteString("]}")
	for name, body := range map[string]string{"address": byAddress.String(), "recipient": byID.String()} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				req, _ := http.NewRequest("POST", s.URL+"/v1/messages/batch", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := s.Client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
