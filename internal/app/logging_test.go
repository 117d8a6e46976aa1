package app

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/testing/testenv"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// records are the JSON log lines written so far whose component is component.
func (s *syncBuffer) records(t *testing.T, component string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		var rec map[string]any
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line that is not JSON: %q", line)
		}
		if rec["component"] == component {
			out = append(out, rec)
		}
	}
	return out
}

// net/http's own error lines (here a handler's recovered panic) come out as JSON warnings of the
// binary's logger, with its service name, not as bare text on stderr.
func TestHTTPServerErrorsGoThroughSlog(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil)).With("service", "api")
	srv := newHTTPServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }), log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	if resp, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
		_ = resp.Body.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(buf.records(t, "http")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no http record; the log holds %q", buf.b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	rec := buf.records(t, "http")[0]
	if rec["level"] != "WARN" || rec["service"] != "api" || !strings.Contains(rec["msg"].(string), "boom") {
		t.Fatalf("record %v", rec)
	}
}

// kafka-go's error lines (a broker that cannot be reached) and go-redis's go through the same
// logger, with component kafka and redis.
func TestKafkaAndRedisLinesGoThroughSlog(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil)).With("service", "worker")
	queue.Configure(queue.Settings{Log: log})
	defer queue.Configure(queue.Settings{})
	RouteLibraryLogs(log)
	defer redis.SetLogger(redisLogger{slog.Default()})

	r := queue.NewGroupReader([]string{"127.0.0.1:1"}, "logging-test", queue.TopicSend)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := r.Fetch(ctx); err == nil {
		t.Fatal("fetched from a broker that does not exist")
	}
	if recs := buf.records(t, "kafka"); len(recs) == 0 || recs[0]["level"] != "WARN" || recs[0]["service"] != "worker" {
		t.Errorf("kafka-go's error lines: %v; the log holds %q", recs, buf.b.String())
	}

	// go-redis drops a subscriber's message it cannot hand over in time, and says so.
	rdb, prefix := testenv.Redis(t)
	sub := rdb.Subscribe(context.Background(), prefix+"logging-test")
	defer sub.Close()
	if _, err := sub.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = sub.Channel(redis.WithChannelSize(1), redis.WithChannelSendTimeout(10*time.Millisecond))
	for i := range 5 {
		rdb.Publish(context.Background(), prefix+"logging-test", i)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(buf.records(t, "redis")) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if recs := buf.records(t, "redis"); len(recs) == 0 || !strings.Contains(recs[0]["msg"].(string), "message is dropped") || recs[0]["service"] != "worker" {
		t.Errorf("go-redis lines: %v", recs)
	}
}
