package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/logicspike/comms/internal/platform/tracing"
)

var (
	httpRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "comms_http_requests_total", Help: "HTTP requests answered, by service, route pattern and status.",
	}, []string{"service", "route", "status"})
	httpDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "comms_http_request_seconds", Help: "Time to answer HTTP requests, by service and route pattern.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"service", "route"})
)

// Route counts and times the requests h answers for one route of service, labelled by its
// pattern ("POST /v1/messages", never the raw path, so the label set stays bounded), and names
// the request's trace span after it.
func Route(service, pattern string, h http.Handler) http.Handler {
	duration := httpDuration.WithLabelValues(service, pattern)
	name := service + " " + pattern
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tracing.NameRoute(r.Context(), name)
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		duration.Observe(time.Since(start).Seconds())
		httpRequests.WithLabelValues(service, pattern, strconv.Itoa(sw.status)).Inc()
	})
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(status int) {
	if !w.wrote {
		w.status, w.wrote = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
