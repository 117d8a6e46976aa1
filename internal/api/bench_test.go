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
