package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
)

// call makes one API request in-process as the session's key, so every change the dashboard
// makes is validated, tested and audited exactly as the API's own, by the same code. A 2xx
// answer is decoded into out (if not nil); any other comes back as its problem. err is only
// for an answer that cannot be read.
func (h *Handler) call(r *http.Request, sess domain.Session, method, path string, body, out any) (*api.Problem, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	//nolint:gosec // never sent over a network: the API handler serves it in this process
	req, err := http.NewRequestWithContext(api.AsKey(r.Context(), sess.Key), method, path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	h.api.ServeHTTP(rec, req)
	if rec.status >= 300 && rec.status < 400 {
		// The API redirects nothing of its own: its router cleaning a path that holds no
		// resource (an id of "..", say) is the only redirect, and such an id names nothing.
		return &api.Problem{Status: http.StatusNotFound}, nil
	}
	if rec.status >= 300 {
		prob := &api.Problem{Status: rec.status}
		if err := json.Unmarshal(rec.body.Bytes(), prob); err != nil {
			return nil, fmt.Errorf("%s %s: %d with an unreadable problem: %w", method, path, rec.status, err)
		}
		return prob, nil
	}
	if out != nil && rec.body.Len() > 0 {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return nil, fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil, nil
}

// forward serves an API answer, such as a CSV export, straight to the browser as it streams.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, sess domain.Session, path string) {
	//nolint:gosec // as in call
	req, err := http.NewRequestWithContext(api.AsKey(r.Context(), sess.Key), http.MethodGet, path, nil)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.api.ServeHTTP(w, req)
}

// recorder keeps an in-process API answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (rec *recorder) Header() http.Header { return rec.header }

func (rec *recorder) Write(b []byte) (int, error) {
	rec.wrote = true
	return rec.body.Write(b)
}

func (rec *recorder) WriteHeader(status int) {
	if !rec.wrote {
		rec.status, rec.wrote = status, true
	}
}
