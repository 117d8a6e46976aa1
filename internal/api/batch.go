package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/intake"
	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/pkg/message"
)

// maxBatchBody bounds POST /v1/messages/batch: a thousand typical requests with room to spare.
const maxBatchBody = 10 << 20

// BatchResult answers POST /v1/messages/batch: every item in order, with its id or its problem.
type BatchResult struct {
	Accepted int          `json:"accepted"`
	Refused  int          `json:"refused"`
	Items    []BatchEntry `json:"items"`
}

// BatchEntry is one item's outcome.
type BatchEntry struct {
	ID          string         `json:"id,omitempty"`
	Status      message.Status `json:"status,omitempty"`
	ScheduledAt *time.Time     `json:"scheduled_at,omitempty"`
	Replayed    bool           `json:"replayed,omitempty"`
	Error       *Problem       `json:"error,omitempty"`
}

func (s *Server) createBatch(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	key := r.Header.Get("Idempotency-Key")
	if prob := checkIdempotencyKey(key); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	var b message.BatchRequest
	if prob := decodeJSON(r, maxBatchBody, &b); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	if n := len(b.Messages); n == 0 || n > message.MaxBatchItems {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request",
			message.FieldError{Field: "messages", Message: fmt.Sprintf("must hold 1 to %d items; %d given", message.MaxBatchItems, n)}))
		return
	}
	if !s.allowIntakeN(w, r, p.Tenant, len(b.Messages)) {
		return
	}
	results, err := s.Intake.SubmitBatch(r.Context(), p.Tenant, key, b)
	switch {
	case quotaProblem(err) != nil:
		writeProblem(w, r, quotaProblem(err))
		return
	case errors.Is(err, intake.ErrBatchTooLarge):
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Batch too large",
			message.FieldError{Field: "messages", Message: fmt.Sprintf("render to more than %d MiB of content in all; nothing was recorded: split the batch", intake.MaxBatchContentBytes>>20)}))
		return
	case errors.Is(err, intake.ErrIdempotencyMismatch):
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency key reused",
			message.FieldError{Field: "Idempotency-Key", Message: "was already used in the last 24 hours with a different batch; nothing was recorded: use a new key for a new batch"}))
		return
	case db.RowError(err):
		s.log.WarnContext(r.Context(), "batch refused by the database", "tenant_id", p.TenantID, "err", err)
		writeProblem(w, r, problem(http.StatusUnprocessableEntity, "unstorable", "Batch cannot be stored",
			"the database refused a value of this batch; nothing was recorded"))
		return
	case err != nil:
		if r.Context().Err() == nil {
			s.log.ErrorContext(r.Context(), "accept batch failed", "tenant_id", p.TenantID, "err", err)
		}
		writeProblem(w, r, unavailable("the batch could not be recorded and nothing was accepted; retry with the same Idempotency-Key"))
		return
	}
	out := BatchResult{Items: make([]BatchEntry, len(results))}
	replayed := 0
	for i, res := range results {
		if res.Err != nil {
			out.Refused++
			out.Items[i].Error = itemProblem(i, b.Template != nil, b.Messages[i].Locale != "", res.Err)
			continue
		}
		out.Accepted++
		out.Items[i] = BatchEntry{ID: res.ID, Status: res.Status, ScheduledAt: res.ScheduledAt, Replayed: res.Replayed}
		if res.Replayed {
			replayed++
		} else {
			metrics.Accepted.WithLabelValues(p.TenantID, string(b.Expand(i).Channel)).Inc()
		}
	}
	if replayed > 0 && replayed == out.Accepted {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusOK, out)
}

// itemProblem is item i's refusal, its fields named from the batch's top: messages[17].to, or
// messages[17].data.code for a batch template's variable.
func itemProblem(i int, batchTemplate, itemLocale bool, err error) *Problem {
	at := fmt.Sprintf("messages[%d]", i)
	var verr *message.ValidationError
	switch {
	case errors.As(err, &verr):
		fields := make([]message.FieldError, len(verr.Fields))
		for j, f := range verr.Fields {
			switch {
			case batchTemplate && strings.HasPrefix(f.Field, "template.data"):
				f.Field = at + strings.TrimPrefix(f.Field, "template")
			case batchTemplate && f.Field == "template.locale" && itemLocale:
				f.Field = at + ".locale"
			case batchTemplate && strings.HasPrefix(f.Field, "template."): // the batch's own template
			default:
				f.Field = at + "." + f.Field
			}
			fields[j] = f
		}
		return fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid item", fields...)
	case errors.Is(err, intake.ErrSuppressed):
		return fieldProblem(http.StatusUnprocessableEntity, "recipient-suppressed", "Recipient suppressed",
			message.FieldError{Field: at + ".to", Message: "is on this tenant's suppression list; see GET /v1/suppressions"})
	case errors.Is(err, intake.ErrOptedOut):
		return optedOut(at + ".category")
	case errors.Is(err, intake.ErrIdempotencyMismatch):
		return fieldProblem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency key reused",
			message.FieldError{Field: "Idempotency-Key", Message: "was already used in the last 24 hours with a different batch; use a new key for a new batch"})
	}
	return problem(http.StatusInternalServerError, "internal", "Internal error", "")
}
