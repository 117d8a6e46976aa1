package receiver_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// BenchmarkCallbackBurst fires signed Twilio status callbacks at the receiver at a fixed rate
// (COMMS_BENCH_CALLBACK_RATE, default 5,000/s) for COMMS_BENCH_CALLBACK_DURATION (default 10s),
// over real HTTP into the real inbox, while the applier applies them to real messages (two
// callbacks per message: sent, then delivered). Latency runs from when each callback was due,
// so a stalled receiver cannot hide the queue it causes. It reports the rate achieved, the ack
// latency percentiles, errors, and how long the applier took to apply everything after the burst.
//
//	go test ./internal/callbacks/receiver -run '^$' -bench CallbackBurst -benchtime 1x
func BenchmarkCallbackBurst(b *testing.B) {
	rate := envInt("COMMS_BENCH_CALLBACK_RATE", 5000)
	dur, _ := time.ParseDuration(envStr("COMMS_BENCH_CALLBACK_DURATION", "10s"))
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	s := stacktest.Start(b, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL}})
	hook := s.StartWebhook()
	tenantID, key := s.Tenant()
	cfg := s.TwilioConfig(key, tw)
	endpoint := hook.URL + "/webhooks/twilio/" + cfg
	total := int(float64(rate) * dur.Seconds())

	for iter := 0; iter < b.N; iter++ {
		b.StopTimer()
		sids := seedSentMessages(b, s.Store, tenantID, cfg, (total+1)/2)
		// Two callbacks per message, interleaved as Twilio sends them.
		forms := make([][]byte, 0, total)
		sigs := make([]string, 0, total)
		for i := 0; i < total; i++ {
			status := "sent"
			if i%2 == 1 {
				status = "delivered"
			}
			f := fakeprovider.TwilioStatus(tw.AccountSID, sids[i/2], "+14155550123", status, "")
			forms = append(forms, []byte(f.Encode()))
			sigs = append(sigs, fakeprovider.TwilioSignature(tw.AuthToken, endpoint, f))
		}
		b.StartTimer()

		lat := make([]time.Duration, total)
		var errs atomic.Int64
		jobs := make(chan int, 1024)
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < 256; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					due := start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
					req, _ := http.NewRequest("POST", endpoint, bytes.NewReader(forms[i]))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("X-Twilio-Signature", sigs[i])
					resp, err := s.Client.Do(req)
					if err != nil || resp.StatusCode != 200 {
						errs.Add(1)
					}
					if resp != nil {
						resp.Body.Close()
					}
					lat[i] = time.Since(due)
				}
			}()
		}
		for i := 0; i < total; i++ {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		sent := time.Since(start)
		// The applier drains the inbox: everything applied.
		for pendingCallbacks(b, s) > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		drained := time.Since(start)
		b.StopTimer()
		if n := appliedCallbacks(b, s); n != total*(iter+1) {
			b.Fatalf("%d of %d callbacks applied: the others found no message", n, total*(iter+1))
		}

		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(float64(total)/sent.Seconds(), "acked/s")
		b.ReportMetric(p(0.50), "p50_ms")
		b.ReportMetric(p(0.99), "p99_ms")
		b.ReportMetric(float64(errs.Load()), "errors")
		b.ReportMetric(float64(total)/drained.Seconds(), "applied/s")
		b.ReportMetric((drained - sent).Seconds(), "drain_s")
		b.Logf("%d callbacks at %d/s: acked in %s (p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms, %d errors); all applied %s after the first",
			total, rate, sent.Round(time.Millisecond), p(0.5), p(0.95), p(0.99), p(1), errs.Load(), drained.Round(time.Millisecond))
		b.StartTimer()
	}
}

// seedSentMessages records n messages as sent through cfg, as the worker would, in batches.
func seedSentMessages(tb testing.TB, st *store.Store, tenantID, cfg string, n int) []string {
	ctx := context.Background()
	sids := make([]string, 0, n)
	for len(sids) < n {
		k := min(1000, n-len(sids))
		msgs := make([]store.NewMessage, k)
		refs := make([]store.Ref, k)
		for i := range msgs {
			id := ids.NewSortable(ids.Message)
			msgs[i] = store.NewMessage{ID: id, TenantID: tenantID, Request: message.Request{Channel: message.SMS, To: "+14155550123", Text: "code"}}
			refs[i] = store.Ref{TenantID: tenantID, ID: id}
		}
		if _, err := testenv.Record(ctx, st, msgs...); err != nil {
			tb.Fatal(err)
		}
		if _, err := st.ClaimMessages(ctx, refs, time.Minute); err != nil {
			tb.Fatal(err)
		}
		outs := make([]store.Outcome, k)
		for i, r := range refs {
			sid := fmt.Sprintf("SM%032x", len(sids)+i+int(time.Now().UnixNano()%1e9)*1000)
			outs[i] = store.Outcome{Ref: r, Attempt: 1, Status: message.Sent, ProviderConfigID: cfg, ProviderType: "twilio", ProviderMessageID: sid}
		}
		if _, err := st.FinishAttempts(ctx, func(tx *store.OutcomeTx) error {
			for _, o := range outs {
				tx.Record(o)
				tx.Emit(o.Ref, "sent")
				tx.IndexForCallbacks(o.Ref)
			}
			return nil
		}); err != nil {
			tb.Fatal(err)
		}
		for _, o := range outs {
			sids = append(sids, o.ProviderMessageID)
		}
	}
	return sids
}

func pendingCallbacks(tb testing.TB, s *stacktest.Stack) int {
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM communication.callbacks WHERE outcome = 'pending'`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func appliedCallbacks(tb testing.TB, s *stacktest.Stack) int {
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM communication.callbacks WHERE outcome = 'applied'`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envStr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
