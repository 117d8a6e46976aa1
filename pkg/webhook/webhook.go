// Package webhook is the receiver for provider delivery callbacks. In this version it serves its
// health checks; provider receivers (Twilio, SES via SNS, Resend) are added per provider and
// answer under /webhooks/{provider}/{provider_id}.
package webhook

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/logicspike/comms/pkg/metrics"
)

// Server is the receiver.
type Server struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	mux  *http.ServeMux
}

// New returns the receiver.
func New(pool *pgxpool.Pool, log *slog.Logger) *Server {
	s := &Server{pool: pool, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.pool.Ping(r.Context()); err != nil {
			s.log.WarnContext(r.Context(), "not ready: database unreachable", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unreachable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	s.mux.Handle("GET /metrics", metrics.Handler())
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]any{"title": "Not found", "status": 404,
			"detail": "no callback receiver at this path", "instance": r.URL.Path})
	})
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
