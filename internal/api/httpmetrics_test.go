package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
)

// Requests are counted and timed by route pattern and status, never by raw path: an id in the
// path does not make a label of its own.
func TestHTTPRequestsAreCountedByRoutePattern(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	id := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: "counted"})
	s.Do("GET", "/v1/messages/"+id, key, nil, nil, &map[string]any{})
	// Not through the stack's client, which holds every request to the API document.
	resp, err := http.Get(s.URL + "/v1/no-such-thing")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`comms_http_requests_total{route="POST /v1/messages",service="api",status="202"}`,
		`comms_http_requests_total{route="GET /v1/messages/{id}",service="api",status="200"}`,
		`comms_http_requests_total{route="unmatched",service="api",status="404"}`,
		`comms_http_request_seconds_count{route="POST /v1/messages",service="api"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %s in /metrics", want)
		}
	}
	if strings.Contains(body, id) {
		t.Error("a message id became a label")
	}
}
