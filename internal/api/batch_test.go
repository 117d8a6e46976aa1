package api_test

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
)

func sendBatch(t *testing.T, s *stacktest.Stack, key, idem string, b message.BatchRequest, want int) api.BatchResult {
	t.Helper()
	var out api.BatchResult
	var headers map[string]string
	if idem != "" {
		headers = map[string]string{"Idempotency-Key": idem}
	}
	var raw any = &out
	if want != http.StatusOK {
		raw = &api.Problem{}
	}
	if resp := s.Do("POST", "/v1/messages/batch", key, b, headers, raw); resp.StatusCode != want {
		t.Fatalf("batch: %d %+v, want %d", resp.StatusCode, raw, want)
	}
	return out
}

func item(req message.Request) message.BatchItem { return message.BatchItem{Request: req} }

// Invalid items do not stop valid ones; each refusal names its item's field; the answer lists
// every item in order, and only the accepted ones are recorded.
func TestBatchPartialFailure(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	s.Do("POST", "/v1/suppressions", key, map[string]any{"channel": "sms", "recipient": "+14155550199"}, nil, nil)
	res := sendBatch(t, s, key, "", message.BatchRequest{Messages: []message.BatchItem{
		item(message.Request{Channel: message.SMS, To: "+14155550101", Text: "one"}),
		item(message.Request{Channel: message.SMS, To: "not a number", Text: "two"}),
		item(message.Request{Channel: message.Email, To: "a@example.com", Subject: "three", Text: "3"}),
		item(message.Request{Channel: message.SMS, To: "+14155550199", Text: "suppressed"}),
		{Request: message.Request{Channel: message.SMS, To: "+14155550102", Text: "x"}, Data: map[string]any{"a": "b"}},
	}}, http.StatusOK)
	if res.Accepted != 2 || res.Refused != 3 || len(res.Items) != 5 {
		t.Fatalf("result: %+v", res)
	}
	for i, want := range []string{"", "messages[1].to", "", "messages[3].to", "messages[4].data"} {
		it := res.Items[i]
		if want == "" {
			if it.ID == "" || it.Status != message.Queued || it.Error != nil {
				t.Errorf("item %d: %+v", i, it)
			}
			continue
		}
		if it.ID != "" || it.Error == nil || len(it.Error.Errors) == 0 || it.Error.Errors[0].Field != want {
			t.Errorf("item %d: %+v, want a problem on %s", i, it, want)
		}
	}
	if res.Items[3].Error.Type != "https://github.com/logicspike/comms/blob/main/docs/errors.md#recipient-suppressed" {
		t.Errorf("suppressed item: %+v", res.Items[3].Error)
	}
	counts, _ := s.CountByStatus(t.Context())
	if counts[message.Queued]+counts[message.Sending]+counts[message.Sent] != 2 {
		t.Errorf("recorded %v, want 2 messages", counts)
	}
	for _, n := range []int{0, message.MaxBatchItems + 1} {
		b := message.BatchRequest{Messages: make([]message.BatchItem, n)}
		for i := range b.Messages {
			b.Messages[i] = item(message.Request{Channel: message.SMS, To: "+14155550101", Text: "x"})
		}
		if f := problemFields(t, s, 422, "POST", "/v1/messages/batch", key, b); f["messages"] == "" {
			t.Errorf("%d items: %v", n, f)
		}
	}
}

// One template for the batch, each recipient with its own data and locale; a missing variable
// is named at its item.
func TestBatchWithOneTemplate(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	newOTPTemplate(t, s, key)
	res := sendBatch(t, s, key, "", message.BatchRequest{
		Template: &message.TemplateRef{Key: "otp", Data: map[string]any{"name": "default"}},
		Messages: []message.BatchItem{
			{Request: message.Request{To: "+14155550101"}, Data: map[string]any{"code": "111111"}},
			{Request: message.Request{To: "+14155550102"}, Data: map[string]any{"code": "222222"}, Locale: "fr-CA"},
			{Request: message.Request{To: "+14155550103"}, Data: map[string]any{"name": "no code"}},
			{Request: message.Request{To: "+14155550104", Template: &message.TemplateRef{Key: "otp"}}, Data: map[string]any{"code": "444444"}},
		}}, http.StatusOK)
	if res.Accepted != 2 || res.Items[2].Error == nil || res.Items[2].Error.Errors[0].Field != "messages[2].data.code" ||
		res.Items[3].Error == nil || res.Items[3].Error.Errors[0].Field != "messages[3].template" {
		t.Fatalf("result: %+v", res)
	}
	for i, want := range []string{"Your code is 111111", "Votre code est 222222"} {
		var m message.Message
		mustDo(t, s, 200, "GET", "/v1/messages/"+res.Items[i].ID, key, nil, &m)
		if m.Text != want || m.Template == nil {
			t.Errorf("item %d: %q %+v", i, m.Text, m.Template)
		}
	}
}

// Twenty identical batches at once under one Idempotency-Key: one set of messages, and every
// answer names the same ids. The same key with another body is refused item by item.
func TestBatchIdempotentUnderConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	b := message.BatchRequest{}
	for _, to := range []string{"+14155550101", "+14155550102", "bad", "+14155550104"} {
		b.Messages = append(b.Messages, item(message.Request{Channel: message.SMS, To: to, Text: "hello"}))
	}
	answers := make([]api.BatchResult, 20)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() { defer wg.Done(); answers[i] = sendBatch(t, s, key, "batch-1", b, http.StatusOK) }()
	}
	wg.Wait()
	ids := func(r api.BatchResult) []string {
		var out []string
		for _, it := range r.Items {
			out = append(out, it.ID)
		}
		return out
	}
	replays := 0
	for _, a := range answers {
		if !reflect.DeepEqual(ids(a), ids(answers[0])) || a.Accepted != 3 || a.Refused != 1 {
			t.Fatalf("answers differ: %+v vs %+v", a, answers[0])
		}
		if a.Items[0].Replayed {
			replays++
		}
	}
	counts, _ := s.CountByStatus(t.Context())
	total := 0
	for _, n := range counts {
		total += n
	}
	if total != 3 || replays != 19 {
		t.Errorf("%d messages recorded (want 3), %d answers replayed (want 19)", total, replays)
	}
	b.Messages[0].Text = "changed"
	sendBatch(t, s, key, "batch-1", b, http.StatusUnprocessableEntity)
}

// A batch's Idempotency-Key covers the whole request: the same key with another body (here, one
// more item) is refused whole and creates nothing, and keys of batches and single sends never
// collide, whatever their spelling.
func TestBatchIdempotencyKeyCoversTheWholeRequest(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	m1 := item(message.Request{Channel: message.SMS, To: "+14155550101", Text: "one"})
	m2 := item(message.Request{Channel: message.SMS, To: "+14155550102", Text: "two"})
	total := func() int {
		counts, err := s.CountByStatus(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range counts {
			n += c
		}
		return n
	}
	// A single send whose key looks like a batch item's.
	single := s.Send(key, "K#0", message.Request{Channel: message.SMS, To: "+14155550109", Text: "single"})
	first := sendBatch(t, s, key, "K", message.BatchRequest{Messages: []message.BatchItem{m1}}, http.StatusOK)
	if first.Accepted != 1 || first.Items[0].Replayed || first.Items[0].ID == single {
		t.Fatalf("batch K after a single send with key K#0: %+v", first)
	}
	var prob api.Problem
	if resp := s.Do("POST", "/v1/messages/batch", key, message.BatchRequest{Messages: []message.BatchItem{m1, m2}},
		map[string]string{"Idempotency-Key": "K"}, &prob); resp.StatusCode != http.StatusUnprocessableEntity ||
		prob.Type != "https://github.com/logicspike/comms/blob/main/docs/errors.md#idempotency-key-reused" || !strings.Contains(fmt.Sprint(prob.Errors), "Idempotency-Key") {
		t.Fatalf("batch K with one more item: %d %+v", resp.StatusCode, prob)
	}
	if n := total(); n != 2 {
		t.Fatalf("%d messages recorded, want 2 (the single send and the first batch's item)", n)
	}
	again := sendBatch(t, s, key, "K", message.BatchRequest{Messages: []message.BatchItem{m1}}, http.StatusOK)
	if !again.Items[0].Replayed || again.Items[0].ID != first.Items[0].ID {
		t.Fatalf("the same batch again: %+v, want the first answer replayed", again)
	}
}

// A batch takes one token per recipient, all or none: one that does not fit the bucket is a 429
// and records nothing.
func TestBatchRateLimitCountsRecipients(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	tid, key := s.Tenant()
	rate, burst := 0.01, 10
	mustDo(t, s, 200, "PATCH", "/admin/tenants/"+tid, s.AdminKey, map[string]any{"rate_per_second": rate, "rate_burst": burst}, &map[string]any{})
	batch := func(n int) message.BatchRequest {
		b := message.BatchRequest{}
		for range n {
			b.Messages = append(b.Messages, item(message.Request{Channel: message.SMS, To: "+14155550101", Text: "x"}))
		}
		return b
	}
	sendBatch(t, s, key, "", batch(11), http.StatusTooManyRequests)
	sendBatch(t, s, key, "", batch(6), http.StatusOK)
	sendBatch(t, s, key, "", batch(6), http.StatusTooManyRequests)
	if res := sendBatch(t, s, key, "", batch(4), http.StatusOK); res.Accepted != 4 {
		t.Errorf("the rest of the bucket: %+v", res)
	}
	counts, _ := s.CountByStatus(t.Context())
	total := 0
	for _, n := range counts {
		total += n
	}
	if total != 10 {
		t.Errorf("%d messages recorded, want 10", total)
	}
}
