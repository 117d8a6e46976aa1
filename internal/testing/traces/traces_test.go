// Package traces_test holds one message's trace to its shape: one trace from the caller's
// request to the tenant's webhook delivery of the message's delivered event. It turns tracing on
// for its whole test binary, so it lives alone.
package traces_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/platform/tracing"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

func TestOneMessageIsOneTraceFromRequestToWebhook(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tracing.Use(tp) // before the stack: its connections are instrumented when they are made

	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL}})
	s.StartWorker(worker.Config{})
	s.StartDeliverer(webhooks.Config{})
	hook := s.StartWebhook()
	_, key := s.Tenant()
	cfgID := s.TwilioConfig(key, tw)
	delivered := make(chan string, 8) // the traceparent header of each delivery
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev event.Event
		_ = json.NewDecoder(r.Body).Decode(&ev)
		if ev.Type == event.Delivered {
			delivered <- r.Header.Get("traceparent")
		}
	}))
	defer rcv.Close()
	var ep api.WebhookEndpointWithSecret
	s.Do("POST", "/v1/webhook-endpoints", key, webhooks.Input{URL: rcv.URL, EventTypes: []string{event.Delivered}}, nil, &ep)

	// The caller's own span: the message's trace continues it.
	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	var accepted struct{ ID string }
	s.Do("POST", "/v1/messages", key, message.Request{Channel: message.SMS, To: "+14155550123", Text: "code 1234"},
		map[string]string{"traceparent": "00-" + traceID + "-" + callerSpan + "-01"}, &accepted)
	s.WaitAllFinal(30 * time.Second)
	var msg message.Message
	s.Do("GET", "/v1/messages/"+accepted.ID, key, nil, nil, &msg)
	resp, err := fakeprovider.PostTwilioCallback(s.Client, hook.URL+"/webhooks/twilio/"+cfgID, tw.AuthToken,
		fakeprovider.TwilioStatus(tw.AccountSID, msg.ProviderMessageID, "+14155550123", "delivered", ""))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var header string
	select {
	case header = <-delivered:
	case <-time.After(30 * time.Second):
		t.Fatal("the delivered event never reached the endpoint")
	}
	if !strings.Contains(header, traceID) {
		t.Errorf("the webhook delivery carries traceparent %q, not the message's trace", header)
	}
	// The delivery's spans end once its answer is read, after the receiver saw it.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		done := false
		for _, sp := range rec.Ended() {
			done = done || sp.Name() == "comms.webhook.deliver"
		}
		if done {
			break
		}
	}
	_ = tp.ForceFlush(context.Background())

	// Every span of the trace hangs from the caller's span, through spans of the trace.
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	var spans []sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		if sp.SpanContext().TraceID().String() == traceID {
			spans = append(spans, sp)
			byID[sp.SpanContext().SpanID()] = sp
		}
	}
	var names []string
	for _, sp := range spans {
		names = append(names, sp.Name())
		if p := sp.Parent().SpanID(); p.String() != callerSpan {
			if _, ok := byID[p]; !ok {
				t.Errorf("span %q: its parent %s is not in the trace", sp.Name(), p)
			}
		}
	}
	has := func(what string, match func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
		for _, sp := range spans {
			if match(sp) {
				return sp
			}
		}
		t.Errorf("no %s in the trace; spans: %q", what, names)
		return nil
	}
	under := func(child, ancestor sdktrace.ReadOnlySpan) bool {
		for sp := child; sp != nil; sp = byID[sp.Parent().SpanID()] {
			if sp.Parent().SpanID() == ancestor.SpanContext().SpanID() {
				return true
			}
		}
		return false
	}
	kind := func(k trace.SpanKind, prefix string) func(sdktrace.ReadOnlySpan) bool {
		return func(sp sdktrace.ReadOnlySpan) bool { return sp.SpanKind() == k && strings.HasPrefix(sp.Name(), prefix) }
	}
	api := has("API request, named after its route", kind(trace.SpanKindServer, "api POST /v1/messages"))
	if api != nil && api.Parent().SpanID().String() != callerSpan {
		t.Errorf("the API span does not continue the caller's traceparent")
	}
	insert := has("database insert", func(sp sdktrace.ReadOnlySpan) bool {
		return sp.SpanKind() == trace.SpanKindClient && sp.Name() == "comms.insert message"
	})
	dispatch := has("worker dispatch", kind(trace.SpanKindConsumer, "comms.dispatch"))
	call := has("provider call", func(sp sdktrace.ReadOnlySpan) bool {
		return dispatch != nil && sp.SpanKind() == trace.SpanKindClient && strings.HasPrefix(sp.Name(), "HTTP POST") && under(sp, dispatch)
	})
	ev := has("delivered event", kind(trace.SpanKindProducer, "comms.event "+event.Delivered))
	deliver := has("webhook delivery", func(sp sdktrace.ReadOnlySpan) bool {
		return ev != nil && sp.Name() == "comms.webhook.deliver" && under(sp, ev)
	})
	has("webhook POST", func(sp sdktrace.ReadOnlySpan) bool {
		return deliver != nil && sp.SpanKind() == trace.SpanKindClient && strings.HasPrefix(sp.Name(), "HTTP POST") && under(sp, deliver)
	})
	for _, c := range []struct {
		child, parent sdktrace.ReadOnlySpan
	}{{insert, api}, {dispatch, api}, {call, dispatch}, {ev, api}, {deliver, ev}} {
		if c.child != nil && c.parent != nil && !under(c.child, c.parent) {
			t.Errorf("%q is not below %q", c.child.Name(), c.parent.Name())
		}
	}
}
