package api_test

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
)

// newBlowUpTemplate creates template key whose active version prints {{a}} n times.
func newBlowUpTemplate(t *testing.T, s *stacktest.Stack, apiKey, key string, n int) {
	t.Helper()
	mustDo(t, s, 201, "POST", "/v1/templates", apiKey, map[string]any{"key": key, "name": key, "channel": "email",
		"variables": rawJSON(`{"type": "object", "properties": {"a": {"type": "string"}}}`)}, &api.Template{})
	mustDo(t, s, 201, "POST", "/v1/templates/"+key+"/versions", apiKey, map[string]any{"subject": "s", "text": strings.Repeat("{{a}}", n)}, &api.TemplateVersion{})
	mustDo(t, s, 200, "POST", "/v1/templates/"+key+"/versions/1/activate", apiKey, nil, &api.TemplateVersion{})
}

// The reproduction of a render that would build 500 MB: {{a}} × 10,000 previewed with a 50,000
// characters long is refused as it passes the budget, allocating a few MB rather than the 500 MB
// it would build.
// Not parallel, so that the allocation counted is this request's.
func TestTemplateBlowUpIsRefusedWithinTheBudget(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	newBlowUpTemplate(t, s, key, "blow", 10_000)
	// Compiling a version is paid once and cached (raymond's lexer allocates in proportion to the
	// rest of the source at every token: ~1 GB in all for these 50 KB); what is measured is the
	// render the data asks for.
	mustDo(t, s, 200, "POST", "/v1/templates/blow/preview", key, map[string]any{"data": map[string]any{"a": "x"}}, &map[string]any{})
	body := map[string]any{"data": map[string]any{"a": strings.Repeat("x", 50_000)}}
	// The least of three tries: a late cache invalidation (the activation's notice) may make one
	// of them compile the version again, which is not what this test is about.
	least := uint64(1 << 62)
	for range 3 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		fields := problemFields(t, s, http.StatusUnprocessableEntity, "POST", "/v1/templates/blow/preview", key, body)
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		if fields["data"] == "" {
			t.Fatalf("faults %v, want one on data", fields)
		}
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("refused in %s, %.1f MB allocated by the whole process meanwhile", took.Round(time.Millisecond), float64(allocated)/(1<<20))
		least = min(least, allocated)
	}
	if least > 64<<20 {
		t.Errorf("%d MB allocated to refuse the render, want a few", least>>20)
	}
	// The same through a send, and data larger than a message shows is refused before rendering.
	if f := problemFields(t, s, 422, "POST", "/v1/messages", key, message.Request{To: "a@example.com",
		Template: &message.TemplateRef{Key: "blow", Data: map[string]any{"a": strings.Repeat("x", 50_000)}}}); f["template.data"] == "" {
		t.Errorf("send: faults %v, want one on template.data", f)
	}
	if f := problemFields(t, s, 422, "POST", "/v1/messages", key, message.Request{To: "a@example.com",
		Template: &message.TemplateRef{Key: "blow", Data: map[string]any{"a": strings.Repeat("x", 70_000)}}}); !strings.Contains(f["template.data"], "larger than") {
		t.Errorf("oversized data: faults %v", f)
	}
}

// A batch is budgeted as a whole: a small template rendered for many recipients may not make
// one request store more than 16 MiB; it is refused whole, naming messages, and records nothing.
func TestTemplateBatchIsBudgetedAsAWhole(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	newBlowUpTemplate(t, s, key, "wide", 10) // 500 KB an item with a of 50,000
	b := message.BatchRequest{Template: &message.TemplateRef{Key: "wide", Data: map[string]any{"a": strings.Repeat("x", 50_000)}}}
	for range 40 {
		b.Messages = append(b.Messages, message.BatchItem{Request: message.Request{To: "a@example.com"}})
	}
	var prob api.Problem
	if resp := s.Do("POST", "/v1/messages/batch", key, b, nil, &prob); resp.StatusCode != http.StatusUnprocessableEntity ||
		len(prob.Errors) != 1 || prob.Errors[0].Field != "messages" {
		t.Fatalf("a 20 MB batch: %d %+v", resp.StatusCode, prob)
	}
	if counts, _ := s.CountByStatus(t.Context()); len(counts) != 0 {
		t.Fatalf("the refused batch recorded %v", counts)
	}
	b.Messages = b.Messages[:20] // 10 MB
	if res := sendBatch(t, s, key, "", b, http.StatusOK); res.Accepted != 20 {
		t.Fatalf("a 10 MB batch: %+v", res)
	}
}
