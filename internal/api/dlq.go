package api

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// parseDLQFilter reads the filter query parameters, naming each bad one.
func parseDLQFilter(q url.Values) (domain.DeadLetterFilter, []message.FieldError) {
	f := domain.DeadLetterFilter{TenantID: q.Get("tenant_id"), ProviderType: q.Get("provider"), ProviderConfigID: q.Get("provider_id"),
		ErrorCode: q.Get("error_code"), MessageIDs: q["message_id"], IncludeReplayed: q.Get("include_replayed") == "true"}
	var errs []message.FieldError
	for _, name := range []string{"from", "to"} {
		v := q.Get(name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			errs = append(errs, message.FieldError{Field: name, Message: "must be an RFC 3339 time such as 2026-11-22T00:00:00Z"})
			continue
		}
		if name == "from" {
			f.From = &t
		} else {
			f.To = &t
		}
	}
	return f, errs
}

func (s *Server) listDLQ(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, errs := parseDLQFilter(q)
	limit, before := 100, int64(0)
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			errs = append(errs, message.FieldError{Field: "limit", Message: "must be an integer from 1 to 1000"})
		}
		limit = n
	}
	if v := q.Get("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			errs = append(errs, message.FieldError{Field: "cursor", Message: "must be the next_cursor of a previous page"})
		}
		before = n
	}
	if len(errs) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query", errs...))
		return
	}
	entries, err := s.DLQ.List(r.Context(), f, before, limit)
	if err != nil {
		s.log.ErrorContext(r.Context(), "list dead letters failed", "err", err)
		writeProblem(w, r, unavailable("the dead-letter index is unreachable; retry shortly"))
		return
	}
	out := map[string]any{"data": Views(entries, DeadLetterView)}
	if len(entries) == limit {
		out["next_cursor"] = strconv.FormatInt(entries[len(entries)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getDLQ(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeProblem(w, r, errNotFound)
		return
	}
	d, err := s.DLQ.Get(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, r, errNotFound)
	case err != nil:
		s.log.ErrorContext(r.Context(), "get dead letter failed", "err", err)
		writeProblem(w, r, unavailable("the dead-letter index is unreachable; retry shortly"))
	default:
		writeJSON(w, http.StatusOK, DeadLetterView(d))
	}
}

type replayRequest struct {
	Filter DeadLetterFilter `json:"filter"`
	DryRun bool             `json:"dry_run"`
	// All must be set to replay with an empty filter: replaying everything is never an accident.
	All bool `json:"all"`
}

func (s *Server) replayDLQ(w http.ResponseWriter, r *http.Request) {
	var req replayRequest
	if prob := decodeJSON(r, 64<<10, &req); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	if req.Filter.domain().Empty() && !req.All {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request",
			message.FieldError{Field: "filter", Message: "select what to replay (tenant_id, provider, provider_id, error_code, from, to, message_ids), or set all: true"}))
		return
	}
	if req.Filter.IncludeReplayed {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request",
			message.FieldError{Field: "filter.include_replayed", Message: "a replay never re-sends entries already replayed"}))
		return
	}
	actor := "admin key " + principalFrom(r.Context()).KeyID
	rep, err := s.DLQ.Replay(r.Context(), req.Filter.domain(), actor, req.DryRun)
	if err != nil {
		s.log.ErrorContext(r.Context(), "replay failed", "err", err)
		writeProblem(w, r, unavailable("the replay did not run (nothing changed); retry shortly"))
		return
	}
	writeJSON(w, http.StatusOK, ReplayView(rep))
}

func (s *Server) listReplays(w http.ResponseWriter, r *http.Request) {
	reps, err := s.DLQ.Replays(r.Context(), 100)
	if err != nil {
		s.log.ErrorContext(r.Context(), "list replays failed", "err", err)
		writeProblem(w, r, unavailable("the replay log is unreachable; retry shortly"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": Views(reps, ReplayLogView)})
}
