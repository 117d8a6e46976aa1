package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// sink is the benchmarks' receiver: it answers 204 at once, except on /hang, which holds every
// request until the benchmark ends (longer than the Deliverer's timeout). It keeps each
// delivery's latency from the event's time.
type sink struct {
	*httptest.Server
	hang  chan struct{}
	n     atomic.Int64
	mu    sync.Mutex
	lats  []time.Duration
	since time.Time // deliveries of events before this are counted but not timed
}

func newSink(tb testing.TB) *sink {
	s := &sink{hang: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			select {
			case <-s.hang:
			case <-r.Context().Done():
			}
			return
		}
		var ev struct{ Time time.Time }
		_ = json.NewDecoder(r.Body).Decode(&ev)
		lat := time.Since(ev.Time)
		s.n.Add(1)
		w.WriteHeader(http.StatusNoContent)
		s.mu.Lock()
		if !ev.Time.Before(s.since) {
			s.lats = append(s.lats, lat)
		}
		s.mu.Unlock()
	}))
	tb.Cleanup(func() { close(s.hang); s.Close() })
	return s
}

func (s *sink) p99() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lats) == 0 {
		return 0
	}
	slices.Sort(s.lats)
	return s.lats[len(s.lats)*99/100]
}

// events makes n CloudEvents of tenantID, timed now.
func events(tenantID string, from, n int) []queue.Message {
	out := make([]queue.Message, n)
	for i := range out {
		id := fmt.Sprintf("evt_bench_%s_%d", tenantID, from+i)
		b, _ := json.Marshal(event.Event{SpecVersion: "1.0", ID: id, Source: event.Source(tenantID), Type: event.Accepted,
			Subject: "msg_bench", Time: time.Now(), DataContentType: "application/json",
			Data: event.Data{TenantID: tenantID, MessageID: "msg_bench", Channel: "sms", Recipient: "+14155550100", Status: "queued"}})
		out[i] = queue.Message{Key: []byte(tenantID), Value: b}
	}
	return out
}

// BenchmarkDeliveryThroughput: b.N events of 10 tenants, waiting on comms.events, delivered to
// a local sink by one Deliverer (consumed, POSTed, recorded): deliveries/s from its start to the
// last one recorded. Run with -benchtime=20000x.
func BenchmarkDeliveryThroughput(b *testing.B) {
	s := stacktest.Start(b, stacktest.Options{Partitions: 8})
	sk := newSink(b)
	prod := queue.NewProducer(s.Brokers, queue.TopicEvents)
	defer prod.Close()
	var tenants []string
	for range 10 {
		tenant, key := s.Tenant()
		createEndpoint(b, s, key, webhooks.Input{URL: sk.URL + "/ok"})
		tenants = append(tenants, tenant)
	}
	ctx := context.Background()
	per := max(1, b.N/len(tenants))
	for i := 0; i < per; i += 100 {
		var msgs []queue.Message
		for _, t := range tenants {
			msgs = append(msgs, events(t, i, min(100, per-i))...)
		}
		if err := prod.PublishRaw(ctx, msgs...); err != nil {
			b.Fatal(err)
		}
	}
	want := int64(per * len(tenants))
	b.ResetTimer()
	start := time.Now()
	s.StartDeliverer(webhooks.Config{})
	var recorded int64
	for recorded < want {
		time.Sleep(20 * time.Millisecond)
		if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM communication.webhook_deliveries WHERE status = 'succeeded'`).Scan(&recorded); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(sk.n.Load()-want), "redelivered")
}

// BenchmarkIsolation: tenant A's events at 500/s, alone and then beside tenant B's at 500/s to
// an endpoint that never answers within the timeout, on a fresh stack each, interleaved for 3
// rounds; A's p99 from event to endpoint, each scenario's median, and their ratio (the bound is
// 1.5×). Run with -benchtime=1x.
func BenchmarkIsolation(b *testing.B) {
	const rate, runFor, rounds = 500, 10 * time.Second, 3
	run := func(withB bool) time.Duration {
		var p99 time.Duration
		b.Run(map[bool]string{false: "A alone", true: "A beside B hanging"}[withB], func(b *testing.B) {
			s := stacktest.Start(b, stacktest.Options{Partitions: 8})
			sk := newSink(b)
			prod := queue.NewProducer(s.Brokers, queue.TopicEvents)
			defer prod.Close()
			a, keyA := s.Tenant()
			createEndpoint(b, s, keyA, webhooks.Input{URL: sk.URL + "/ok"})
			bt, keyB := s.Tenant()
			createEndpoint(b, s, keyB, webhooks.Input{URL: sk.URL + "/hang"})
			s.StartDeliverer(webhooks.Config{RetryInterval: time.Second})
			ctx := context.Background()
			sk.since = time.Now().Add(2 * time.Second) // the first seconds: consumer groups joining
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			sent := 0
			for end := time.Now().Add(runFor); time.Now().Before(end); <-tick.C {
				msgs := events(a, sent, rate/100)
				if withB {
					msgs = append(msgs, events(bt, sent, rate/100)...)
				}
				if err := prod.PublishRaw(ctx, msgs...); err != nil {
					b.Fatal(err)
				}
				sent += rate / 100
			}
			for sk.n.Load() < int64(sent) {
				time.Sleep(10 * time.Millisecond)
			}
			p99 = sk.p99()
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		})
		return p99
	}
	var alone, beside []time.Duration
	for range rounds {
		alone = append(alone, run(false))
		beside = append(beside, run(true))
	}
	slices.Sort(alone)
	slices.Sort(beside)
	ma, mb := alone[rounds/2], beside[rounds/2]
	b.Logf("A's p99 alone %v (median of %v), beside B hanging %v (median of %v): %.2fx", ma, alone, mb, beside, float64(mb)/float64(ma))
	b.ReportMetric(float64(mb)/float64(ma), "ratio")
}

// BenchmarkCallbackToEndpoint: at idle, a Twilio status callback posted to the receiver until
// the tenant's endpoint has the comms.message.delivered event it caused: through the receiver,
// the applier, the event outbox, the publisher, comms.events and the Deliverer, with production's
// polling intervals. 200 callbacks, one every 50 ms. Run with -benchtime=1x.
func BenchmarkCallbackToEndpoint(b *testing.B) {
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	s := stacktest.Start(b, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL}, ApplyInterval: 100 * time.Millisecond, EventsInterval: 50 * time.Millisecond})
	s.StartWorker(worker.Config{})
	s.StartDeliverer(webhooks.Config{})
	hook := s.StartWebhook()
	_, key := s.Tenant()
	cfgID := s.TwilioConfig(key, tw)
	arrived := make(chan string, 256)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev event.Event
		_ = json.NewDecoder(r.Body).Decode(&ev)
		arrived <- ev.Subject
	}))
	defer rcv.Close()
	createEndpoint(b, s, key, webhooks.Input{URL: rcv.URL, EventTypes: []string{event.Delivered}})

	const n = 200
	type sent struct{ id, to string }
	var msgs []sent
	for i := range n {
		to := fmt.Sprintf("+1415555%04d", i)
		msgs = append(msgs, sent{s.Send(key, "", message.Request{Channel: message.SMS, To: to, Text: "code 1234"}), to})
	}
	s.WaitAllFinal(30 * time.Second)
	endpoint := hook.URL + "/webhooks/twilio/" + cfgID
	var lats []time.Duration
	b.ResetTimer()
	for _, m := range msgs {
		var msg message.Message
		s.Do("GET", "/v1/messages/"+m.id, key, nil, nil, &msg)
		start := time.Now()
		resp, err := fakeprovider.PostTwilioCallback(s.Client, endpoint, tw.AuthToken, fakeprovider.TwilioStatus(tw.AccountSID, msg.ProviderMessageID, m.to, "delivered", ""))
		if err != nil || resp.StatusCode >= 300 {
			b.Fatalf("callback: %v %v", err, resp)
		}
		resp.Body.Close()
		for got := ""; got != m.id; {
			select {
			case got = <-arrived:
			case <-time.After(10 * time.Second):
				b.Fatalf("no delivered event for %s", m.id)
			}
		}
		lats = append(lats, time.Since(start))
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	slices.Sort(lats)
	b.ReportMetric(float64(lats[n/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lats[n*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lats[n-1].Microseconds())/1000, "max-ms")
}
