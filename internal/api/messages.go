package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/intake"
	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

// The message endpoints: POST /v1/messages (with its rate limit and Idempotency-Key) and the reads.

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	if !s.allowIntake(w, r, p.Tenant) {
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if prob := checkIdempotencyKey(key); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	var req message.Request
	if prob := decodeJSON(r, message.MaxRequestBodySize, &req); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	acc, err := s.Intake.Submit(r.Context(), p.Tenant, key, req)
	var verr *message.ValidationError
	switch {
	case errors.As(err, &verr):
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request", verr.Fields...))
		return
	case errors.Is(err, intake.ErrSuppressed):
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "recipient-suppressed", "Recipient suppressed",
			message.FieldError{Field: "to", Message: "is on this tenant's suppression list for " + string(req.Channel) +
				" (an earlier hard bounce, complaint, or manual entry); see GET /v1/suppressions, and DELETE it there to send again"}))
		return
	case errors.Is(err, intake.ErrOptedOut):
		writeProblem(w, r, optedOut("category"))
		return
	case errors.Is(err, intake.ErrIdempotencyMismatch):
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency key reused",
			message.FieldError{Field: "Idempotency-Key", Message: "was already used in the last 24 hours with a different request body; use a new key for a new message"}))
		return
	case quotaProblem(err) != nil:
		writeProblem(w, r, quotaProblem(err))
		return
	case db.RowError(err):
		// The decoder keeps unstorable text out, so this is a value PostgreSQL refused that
		// validation missed: the request's own fault, and retrying it cannot help.
		s.log.WarnContext(r.Context(), "message refused by the database", "tenant_id", p.TenantID, "err", err)
		writeProblem(w, r, problem(http.StatusUnprocessableEntity, "unstorable", "Message cannot be stored",
			"the database refused a value of this message; nothing was recorded"))
		return
	case err != nil:
		if r.Context().Err() == nil {
			s.log.ErrorContext(r.Context(), "accept message failed", "tenant_id", p.TenantID, "err", err)
		}
		writeProblem(w, r, unavailable("the message could not be recorded and was not accepted; retry with the same Idempotency-Key"))
		return
	}
	if acc.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	} else {
		metrics.Accepted.WithLabelValues(p.TenantID, string(req.Channel)).Inc()
	}
	w.Header().Set("Location", "/v1/messages/"+acc.ID)
	writeJSON(w, http.StatusAccepted, acc)
}

// allowIntake applies the tenant's token bucket, writing the RateLimit headers
// (draft-ietf-httpapi-ratelimit-headers) on every answer and a 429 with Retry-After when the
// bucket is empty. If Redis cannot answer, the request is let through: a lost limit is better than
// lost messages, and it is counted (comms_ratelimit_errors_total).
func (s *Server) allowIntake(w http.ResponseWriter, r *http.Request, t domain.Tenant) bool {
	return s.allowIntakeN(w, r, t, 1)
}

// allowIntakeN takes n tokens at once, for a batch of n recipients: all of it fits or none does.
func (s *Server) allowIntakeN(w http.ResponseWriter, r *http.Request, t domain.Tenant, n int) bool {
	if s.limiter == nil {
		return true
	}
	if t.RateBurst > 0 && t.RatePerSecond > 0 && n > t.RateBurst {
		p := problem(http.StatusTooManyRequests, "rate-limited", "Batch larger than the rate limit's burst",
			fmt.Sprintf("this batch has %d recipients, and this tenant may send at most %d at once (%g per second); split it", n, t.RateBurst, t.RatePerSecond))
		p.retryAfter = max(1, int(math.Ceil(float64(n)/t.RatePerSecond)))
		writeProblem(w, r, p)
		return false
	}
	res, err := s.limiter.AllowN(r.Context(), "tenant:"+t.ID, t.RatePerSecond, t.RateBurst, n)
	if err != nil {
		metrics.RateLimitErrors.WithLabelValues("intake").Inc()
		s.log.WarnContext(r.Context(), "rate limiter unavailable; request let through", "tenant_id", t.ID, "err", err)
		return true
	}
	if res.Limit == 0 {
		return true // unlimited tenant
	}
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(res.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(res.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(int(math.Ceil(res.Reset.Seconds()))))
	if res.Allowed {
		return true
	}
	metrics.RateLimited.WithLabelValues(t.ID).Inc()
	p := problem(http.StatusTooManyRequests, "rate-limited", "Too many requests",
		fmt.Sprintf("this tenant may send %g messages per second (bursts of %d)%s; retry after the given seconds", t.RatePerSecond, t.RateBurst, batchNote(n)))
	p.retryAfter = max(1, int(math.Ceil(res.Wait.Seconds())))
	writeProblem(w, r, p)
	return false
}

func batchNote(n int) string {
	if n == 1 {
		return ""
	}
	return fmt.Sprintf(", and this batch has %d recipients", n)
}

func checkIdempotencyKey(key string) *Problem {
	if key == "" {
		return nil
	}
	if len(key) > intake.MaxIdempotencyKeyLen {
		return fieldProblem(http.StatusBadRequest, "validation", "Invalid request",
			message.FieldError{Field: "Idempotency-Key", Message: "must be at most " + strconv.Itoa(intake.MaxIdempotencyKeyLen) + " characters"})
	}
	for _, c := range key {
		if c < 0x21 || c > 0x7e {
			return fieldProblem(http.StatusBadRequest, "validation", "Invalid request",
				message.FieldError{Field: "Idempotency-Key", Message: "must be printable ASCII without spaces"})
		}
	}
	return nil
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	id := r.PathValue("id")
	if !ids.HasPrefix(id, ids.Message) {
		writeProblem(w, r, errNotFound)
		return
	}
	m, err := s.Intake.Message(r.Context(), p.TenantID, id)
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, r, errNotFound) // also for another tenant's message: 404, never 403
		return
	}
	if errors.Is(err, intake.ErrExpired) {
		writeProblem(w, r, problem(http.StatusNotFound, "expired", "Expired",
			fmt.Sprintf("this message was made more than %d days ago, past this account's history retention, and is deleted",
				p.Tenant.HistoryRetentionSeconds/86400)))
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "get message failed", "tenant_id", p.TenantID, "message_id", id, "err", err)
		writeProblem(w, r, unavailable("the message store is unreachable; retry shortly"))
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// cancelMessage cancels a scheduled message. Racing its due time, exactly one of the two wins:
// the message ends canceled, or it is sent and the cancel is a 409.
func (s *Server) cancelMessage(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	id := r.PathValue("id")
	if !ids.HasPrefix(id, ids.Message) {
		writeProblem(w, r, errNotFound)
		return
	}
	err := s.Intake.Cancel(r.Context(), p.TenantID, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, r, errNotFound)
		return
	case errors.Is(err, store.ErrNotScheduled):
		writeProblem(w, r, problem(http.StatusConflict, "not-scheduled", "Not scheduled",
			"only a scheduled message can be canceled; this one is queued or sent already (GET it for its status)"))
		return
	case err != nil:
		s.log.ErrorContext(r.Context(), "cancel message failed", "tenant_id", p.TenantID, "message_id", id, "err", err)
		writeProblem(w, r, unavailable("the message store is unreachable; retry shortly"))
		return
	}
	s.getMessage(w, r)
}

// MaxPageSize bounds list pages.
const MaxPageSize = 200

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	q := r.URL.Query()
	f := domain.MessageFilter{Limit: 50}
	bad := pageQuery(q, &f.Limit, &f.Cursor, func(name, v string) (string, bool) {
		switch name {
		case "status":
			f.Status = message.Status(v)
			if !f.Status.Valid() {
				return "must be one of scheduled, queued, sending, sent, delivered, failed, undelivered, bounced, complained, canceled", true
			}
		case "channel":
			f.Channel = message.Channel(v)
			if !f.Channel.Valid() && f.Channel != message.InApp && f.Channel != message.Push {
				return `must be "sms", "email", "push" or "in_app"`, true
			}
		case "to":
			f.Recipient = v
		case "recipient":
			f.RecipientID = v
		case "template":
			f.Template = v
		case "created_after":
			return timeParam(v, &f.CreatedAfter)
		case "created_before":
			return timeParam(v, &f.CreatedBefore)
		default:
			return "", false
		}
		return "", true
	})
	if len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query", bad...))
		return
	}
	msgs, next, err := s.Intake.Messages(r.Context(), p.TenantID, f)
	writePage(s, w, r, "messages", msgs, next, err)
}

// optedOut is the problem for a send its recipient does not want, naming field.
func optedOut(field string) *Problem {
	return fieldProblem(http.StatusUnprocessableEntity, "recipient-opted-out", "Recipient opted out",
		message.FieldError{Field: field, Message: "the recipient opted out of this category on this channel, or did not opt in to a category that is out by default; " +
			"see GET /v1/recipients/{id}/preferences or GET /v1/preferences?channel=&address="})
}
