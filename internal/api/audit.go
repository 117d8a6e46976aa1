package api

import (
	"context"
	"net/http"
	"time"

	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/ids"
)

// unaudited are the changing routes that leave no audit record, and why. Every other route that
// is not a GET runs with its caller as the audit actor (db.WithActor), so each change it makes is
// recorded by the database in the change's own transaction; a test holds every such route to
// that.
var unaudited = map[string]string{
	"POST /v1/messages":                "messages are the data, with their own timeline",
	"POST /v1/messages/batch":          "messages are the data, with their own timeline",
	"POST /v1/messages/{id}/cancel":    "the cancel is on the message's timeline",
	"POST /v1/templates/{key}/preview": "renders, changes nothing",
	// The inbox: a recipient's own reading, kept on each message (seen_at, read_at, archived_at).
	"POST /v1/recipients/{id}/inbox-tokens": "signs a token, stores nothing",
	"POST /v1/inbox/read-all":               "a recipient's reading is on its messages",
	"POST /v1/inbox/{id}/seen":              "a recipient's reading is on its messages",
	"POST /v1/inbox/{id}/read":              "a recipient's reading is on its messages",
	"POST /v1/inbox/{id}/archived":          "a recipient's reading is on its messages",
}

// Unaudited reports whether pattern is a changing route that leaves no audit record on purpose.
func Unaudited(pattern string) bool {
	_, ok := unaudited[pattern]
	return ok
}

type requestIDKey struct{}

// withRequestID gives every request an id, the caller's X-Request-Id (1-128 printable ASCII
// characters) or a new one, answered in X-Request-Id: a client quotes it in a support request,
// and the audit log records it for changes.
func withRequestID(w http.ResponseWriter, r *http.Request) *http.Request {
	id := r.Header.Get("X-Request-Id")
	if !printable(id, 128) {
		id = ids.New("req")
	}
	w.Header().Set("X-Request-Id", id)
	return r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
}

// audited runs h with the caller as the audit actor, and the request's id.
func (s *Server) audited(pattern string, h http.HandlerFunc) http.HandlerFunc {
	if _, skip := unaudited[pattern]; skip {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			h(w, r)
			return
		}
		p := principalFrom(r.Context())
		id, _ := r.Context().Value(requestIDKey{}).(string)
		h(w, r.WithContext(db.WithActor(r.Context(), db.Actor{Kind: string(p.Kind), ID: p.KeyID, TenantID: p.TenantID, RequestID: id})))
	}
}

// printable reports whether s is 1 to n printable ASCII characters.
func printable(s string, n int) bool {
	if s == "" || len(s) > n {
		return false
	}
	for _, c := range s {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// timeParam reads an RFC 3339 query value into dst, for pageQuery's other.
func timeParam(v string, dst *time.Time) (problem string, known bool) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return "must be an RFC 3339 timestamp such as 2026-11-22T10:00:00Z", true
	}
	*dst = t
	return "", true
}

// listAudit serves the audit log: every tenant's on /admin (tenant_id filters), the caller's own
// on /v1.
func (s *Server) listAudit(admin bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var f domain.AuditFilter
		if !admin {
			f.TenantID = principalFrom(r.Context()).TenantID
		}
		limit, cursor := 50, ""
		bad := pageQuery(r.URL.Query(), &limit, &cursor, func(name, v string) (string, bool) {
			switch name {
			case "tenant_id":
				f.TenantID = v
				return "", admin
			case "action":
				f.Action = v
			case "actor":
				f.Actor = v
			case "from":
				return timeParam(v, &f.From)
			case "to":
				return timeParam(v, &f.To)
			default:
				return "", false
			}
			return "", true
		})
		if len(bad) > 0 {
			writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query", bad...))
			return
		}
		list, next, err := s.Reports.Audit(r.Context(), f, cursor, limit)
		writePage(s, w, r, "audit log", Views(list, AuditView), next, err)
	}
}
