package dashboard

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// ranges are the overview's periods: each with its span and the interval of its points.
var ranges = []struct {
	Name     string
	Span     time.Duration
	Interval string
}{
	{"24h", 24 * time.Hour, "hour"}, {"7d", 7 * 24 * time.Hour, "day"}, {"30d", 30 * 24 * time.Hour, "day"}, {"90d", 90 * 24 * time.Hour, "day"},
}

// series are the overview's lines, with their colours (distinguishable, and each also named in
// the legend and the table).
var series = []struct{ Name, Colour string }{
	{"sent", "#1f5fbf"}, {"delivered", "#1e7d32"}, {"opened", "#8a4baf"}, {"clicked", "#b25d00"}, {"read", "#00838f"}, {"failed", "#c62828"},
}

// channels are the overview's channel filters.
var channels = []struct{ Value, Name string }{{"sms", "SMS"}, {"email", "email"}, {"push", "push"}, {"in_app", "in-app"}}

func value(b domain.Bucket, name string) int64 {
	switch name {
	case "sent":
		return b.Sent
	case "delivered":
		return b.Delivered
	case "opened":
		return b.Opened
	case "clicked":
		return b.Clicked
	case "read":
		return b.Read
	}
	return b.Failed
}

var funcs = template.FuncMap{"dict": dict, "list": func(v ...string) []string { return v }, "pairs": pairs, "last": last}

// last is a webhook delivery's latest attempt, if any.
func last(log []api.WebhookAttempt) *api.WebhookAttempt {
	if len(log) == 0 {
		return nil
	}
	return &log[len(log)-1]
}

// pairs lists a JSON object's set members, by name, for showing a config's sender.
func pairs(raw json.RawMessage) [][2]string {
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	var out [][2]string
	for k, v := range m {
		if v != nil && v != "" {
			out = append(out, [2]string{k, fmt.Sprint(v)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// dict pairs up its arguments into a map, for passing several values to a shared template.
func dict(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := kv[i].(string)
		m[k] = kv[i+1]
	}
	return m
}

// overview draws sent, delivered, opened, clicked, read and failed over the chosen range, from the
// same rollup and query as GET /v1/analytics/timeseries.
func (h *Handler) overview(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	rng := ranges[1]
	for _, x := range ranges {
		if x.Name == r.URL.Query().Get("range") {
			rng = x
		}
	}
	ch := message.Channel(r.URL.Query().Get("channel"))
	if !ch.Valid() && ch != message.Push && ch != message.InApp {
		ch = ""
	}
	to := time.Now().UTC()
	ts, err := h.svc.Reports.Timeseries(r.Context(), sess.Key.TenantID, ch, to.Add(-rng.Span), to, rng.Interval)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	buckets, total := ts.Buckets, ts.Totals
	// The read rate is of in_app messages: over every channel, its denominator is in_app's sent.
	inAppSent := total.Sent
	if ch != message.InApp && total.Read > 0 {
		inApp, err := h.svc.Reports.Timeseries(r.Context(), sess.Key.TenantID, message.InApp, to.Add(-rng.Span), to, rng.Interval)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		inAppSent = inApp.Totals.Sent
	}
	h.render(w, r, http.StatusOK, "overview.html", map[string]any{
		"Range": rng.Name, "Ranges": ranges, "Channel": string(ch), "Channels": channels, "Chart": chart(buckets), "Series": series, "Total": total,
		"DeliveredRate": rate(total.Delivered, total.Sent), "OpenedRate": rate(total.Opened, total.Delivered), "FailedRate": rate(total.Failed, total.Sent+total.Failed),
		"ReadRate": rate(total.Read, inAppSent),
	})
}

func rate(n, of int64) string {
	if of == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

// svgChart is a line chart drawn on the server: no script, nothing fetched.
type svgChart struct {
	Width, Height int
	Lines         []svgLine
	Max           int64
	From, To      string
}

type svgLine struct {
	Name, Colour, Points string
}

func chart(buckets []domain.Bucket) svgChart {
	c := svgChart{Width: 720, Height: 240}
	for _, b := range buckets {
		for _, s := range series {
			c.Max = max(c.Max, value(b, s.Name))
		}
	}
	if len(buckets) > 0 {
		c.From, c.To = buckets[0].Start.Format("2 Jan 15:04"), buckets[len(buckets)-1].Start.Format("2 Jan 15:04")
	}
	top := max(c.Max, 1)
	for _, s := range series {
		var pts []string
		for i, b := range buckets {
			x := float64(i) * float64(c.Width) / float64(max(len(buckets)-1, 1))
			y := float64(c.Height) - float64(value(b, s.Name))*float64(c.Height-10)/float64(top)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		c.Lines = append(c.Lines, svgLine{Name: s.Name, Colour: s.Colour, Points: strings.Join(pts, " ")})
	}
	return c
}

// advice is what a tenant can do about each normalized provider error (docs/errors.md).
var advice = map[string]string{
	"auth_failed":          "Update the provider's credentials on the Providers page (the provider refuses them).",
	"insufficient_funds":   "Top up or reactivate your provider account.",
	"invalid_sender":       "Use a number or address your provider account owns.",
	"invalid_recipient":    "Check the recipient: the provider says it cannot be reached.",
	"rate_limited":         "Your provider throttled you: lower the config's rate limit or ask the provider for more.",
	"provider_unavailable": "The provider was unavailable; messages are retried and fail over.",
	"content_rejected":     "The provider or carrier filtered the content; change the message.",
}

// providerErrors lists the last 7 days' provider errors, most frequent first, with the
// provider's latest words and what to do.
func (h *Handler) providerErrors(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	to := time.Now().UTC()
	errs, err := h.svc.Reports.ProviderErrors(r.Context(), sess.Key.TenantID, "", to.AddDate(0, 0, -7), to)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "errors.html", map[string]any{"Errors": errs, "Advice": advice})
}
