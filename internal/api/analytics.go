package api

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// channelHint is what a bad channel is told.
const channelHint = `must be "sms" or "email"`

// Analytics ranges: hourly series up to 31 days (744 buckets), daily up to 400 days.
const (
	maxHourlyRange = 31 * 24 * time.Hour
	maxDailyRange  = 400 * 24 * time.Hour
)

// analyticsQuery is the parsed query of both analytics endpoints.
type analyticsQuery struct {
	channel  message.Channel
	from, to time.Time
	interval string
}

// parseAnalyticsQuery reads channel, from, to and (when withInterval) interval. Defaults: to is
// now, from is 7 days (daily) or 24 hours (hourly) before to, interval is day.
func parseAnalyticsQuery(q url.Values, withInterval bool) (analyticsQuery, []message.FieldError) {
	var (
		a   = analyticsQuery{interval: "day"}
		bad []message.FieldError
	)
	for name, vals := range q {
		v := vals[0]
		switch name {
		case "channel":
			a.channel = message.Channel(v)
			if !a.channel.Valid() && a.channel != message.Push && a.channel != message.InApp {
				bad = append(bad, message.FieldError{Field: name, Message: `must be "sms", "email", "push" or "in_app"`})
			}
		case "from", "to":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				bad = append(bad, message.FieldError{Field: name, Message: "must be an RFC 3339 timestamp such as 2026-11-22T00:00:00Z"})
			} else if name == "from" {
				a.from = t
			} else {
				a.to = t
			}
		case "interval":
			if !withInterval {
				bad = append(bad, message.FieldError{Field: name, Message: "is not a known query parameter"})
				continue
			}
			a.interval = v
			if v != "hour" && v != "day" {
				bad = append(bad, message.FieldError{Field: name, Message: `must be "hour" or "day"`})
			}
		default:
			bad = append(bad, message.FieldError{Field: name, Message: "is not a known query parameter"})
		}
	}
	if len(bad) > 0 {
		return a, bad
	}
	if a.to.IsZero() {
		a.to = time.Now().UTC()
	}
	if a.from.IsZero() {
		if a.interval == "hour" {
			a.from = a.to.Add(-24 * time.Hour)
		} else {
			a.from = a.to.AddDate(0, 0, -7)
		}
	}
	limit := maxDailyRange
	if a.interval == "hour" {
		limit = maxHourlyRange
	}
	switch {
	case !a.from.Before(a.to):
		bad = append(bad, message.FieldError{Field: "from", Message: "must be before to"})
	case a.to.Sub(a.from) > limit:
		bad = append(bad, message.FieldError{Field: "from", Message: "is too far before to: at most 31 days with interval=hour, 400 days with interval=day"})
	}
	return a, bad
}

type timeseriesResponse struct {
	Channel  message.Channel `json:"channel,omitempty"`
	Interval string          `json:"interval"`
	From     time.Time       `json:"from"`
	To       time.Time       `json:"to"`
	Buckets  []Bucket        `json:"buckets"`
	Totals   Bucket          `json:"totals"`
}

// timeseries serves sent, delivered, opened, clicked, bounced, complained and failed per hour or
// day (UTC), read from the hourly rollup. A message counts in the bucket of the event: sent when
// the provider accepted it, delivered when the provider reported delivery.
func (s *Server) timeseries(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	q, bad := parseAnalyticsQuery(r.URL.Query(), true)
	if len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query", bad...))
		return
	}
	ts, err := s.Reports.Timeseries(r.Context(), p.TenantID, q.channel, q.from, q.to, q.interval)
	if err != nil {
		s.analyticsFailed(w, r, p.TenantID, err)
		return
	}
	writeJSON(w, http.StatusOK, timeseriesResponse{Channel: q.channel, Interval: q.interval, From: q.from, To: q.to,
		Buckets: Views(ts.Buckets, BucketView), Totals: BucketView(ts.Totals)})
}

// providerErrors serves the breakdown of provider errors by provider config and normalized code,
// most frequent first, each with the latest provider message ("Twilio: out of funds").
func (s *Server) providerErrors(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	q, bad := parseAnalyticsQuery(r.URL.Query(), false)
	if len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query", bad...))
		return
	}
	errs, err := s.Reports.ProviderErrors(r.Context(), p.TenantID, q.channel, q.from, q.to)
	if err != nil {
		s.analyticsFailed(w, r, p.TenantID, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": q.from, "to": q.to, "channel": q.channel, "errors": Views(errs, ProviderErrorView)})
}

func (s *Server) analyticsFailed(w http.ResponseWriter, r *http.Request, tenantID string, err error) {
	if r.Context().Err() == nil {
		s.log.ErrorContext(r.Context(), "analytics query failed", "tenant_id", tenantID, "err", err)
	}
	writeProblem(w, r, unavailable("analytics are unavailable; retry shortly"))
}

// listSuppressions serves the tenant's suppression list, newest first.
func (s *Server) listSuppressions(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	f := domain.SuppressionFilter{Limit: 50}
	bad := pageQuery(r.URL.Query(), &f.Limit, &f.Cursor, func(name, v string) (string, bool) {
		switch name {
		case "channel":
			f.Channel = message.Channel(v)
			if !f.Channel.Valid() {
				return channelHint, true
			}
		case "recipient":
			f.Recipient = v
		case "reason":
			f.Reason = v
			if v != "bounce" && v != "complaint" && v != "manual" && v != "stop" {
				return `must be "bounce", "complaint", "manual" or "stop"`, true
			}
		default:
			return "", false
		}
		return "", true
	})
	if f.Recipient != "" {
		if f.Channel == "" {
			bad = append(bad, message.FieldError{Field: "recipient", Message: "needs channel"})
		} else {
			f.Recipient = message.RecipientKey(f.Channel, f.Recipient)
		}
	}
	if len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query", bad...))
		return
	}
	list, next, err := s.Recipients.Suppressions(r.Context(), p.TenantID, f)
	writePage(s, w, r, "suppressions", Views(list, SuppressionView), next, err)
}

type addSuppressionRequest struct {
	Channel   message.Channel `json:"channel"`
	Recipient string          `json:"recipient"`
	Detail    string          `json:"detail,omitempty"`
}

// addSuppression adds a recipient by hand (an unsubscribe handled elsewhere, say).
func (s *Server) addSuppression(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	var req addSuppressionRequest
	if prob := decodeJSON(r, 16<<10, &req); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	if bad := checkSuppressionTarget(req.Channel, req.Recipient); len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request", bad...))
		return
	}
	if len(req.Detail) > 500 {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request",
			message.FieldError{Field: "detail", Message: "is at most 500 bytes"}))
		return
	}
	sup, err := s.Recipients.Suppress(r.Context(), p.TenantID, req.Channel, req.Recipient, req.Detail)
	if err != nil {
		s.log.ErrorContext(r.Context(), "add suppression failed", "tenant_id", p.TenantID, "err", err)
		writeProblem(w, r, unavailable("the suppression list is unreachable; retry shortly"))
		return
	}
	writeJSON(w, http.StatusCreated, SuppressionView(sup))
}

// deleteSuppression lifts a suppression, so the recipient can be sent to again.
func (s *Server) deleteSuppression(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	ch, rcpt := message.Channel(r.PathValue("channel")), r.PathValue("recipient")
	if bad := checkSuppressionTarget(ch, rcpt); len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid path", bad...))
		return
	}
	err := s.Recipients.Unsuppress(r.Context(), p.TenantID, ch, rcpt)
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, r, errNotFound)
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "delete suppression failed", "tenant_id", p.TenantID, "err", err)
		writeProblem(w, r, unavailable("the suppression list is unreachable; retry shortly"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// checkSuppressionTarget validates a channel and recipient as intake would.
func checkSuppressionTarget(ch message.Channel, rcpt string) []message.FieldError {
	if !ch.Valid() {
		return []message.FieldError{{Field: "channel", Message: channelHint}}
	}
	req := message.Request{Channel: ch, To: rcpt, Subject: "x", Text: "x"}
	var verr *message.ValidationError
	if err := req.Validate(); errors.As(err, &verr) {
		for _, f := range verr.Fields {
			if f.Field == "to" {
				return []message.FieldError{{Field: "recipient", Message: f.Message}}
			}
		}
	}
	return nil
}

// listUnmatchedCallbacks shows callbacks that never found their message, for reconciliation.
func (s *Server) listUnmatchedCallbacks(w http.ResponseWriter, r *http.Request) {
	list, err := s.Unmatched.List(r.Context(), MaxPageSize)
	writePage(s, w, r, "unmatched callbacks", Views(list, unmatchedView), "", err) // the newest 200: no further pages
}

// retryUnmatchedCallbacks queues every unmatched callback for matching again.
func (s *Server) retryUnmatchedCallbacks(w http.ResponseWriter, r *http.Request) {
	n, err := s.Unmatched.Retry(r.Context())
	if err != nil {
		s.log.ErrorContext(r.Context(), "retry unmatched callbacks failed", "err", err)
		writeProblem(w, r, unavailable("the callbacks inbox is unreachable; retry shortly"))
		return
	}
	s.log.InfoContext(r.Context(), "unmatched callbacks queued again", "count", n, "actor", principalFrom(r.Context()).KeyID)
	writeJSON(w, http.StatusOK, map[string]int{"queued": n})
}
