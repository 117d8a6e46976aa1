// Package seed loads a history of sent messages straight into the database with COPY, so that
// comms can be measured on a database the size of a real one (`loadgen seed`). It writes what the
// service itself writes over a message's life (the message; its queued, sending, sent and
// delivery events; its provider reference and delivery callback; the hourly and daily rollups;
// with Plan.HotWebhook, the hot tenant's webhook deliveries), spread evenly over days and over
// tenants, one of which is hot.
package seed

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/ids"
)

// Plan is the history to load.
type Plan struct {
	Messages int     // how many messages
	Days     int     // spread evenly over the Days before Now
	Tenants  int     // how many tenants, created for the seed
	HotShare float64 // the share of the messages that go to the first tenant (0: an even spread)
	Now      time.Time
	Seed     uint64 // the same plan and seed make the same history (ids aside)
	// Persons, when set, are recipients (E.164 numbers) of PersonMessages each of the hot
	// tenant's messages, spread evenly: people to erase.
	Persons        []string
	PersonMessages int
	// ContentRetention, when set, is the tenants' content retention: the bodies of messages
	// older than it are blank, as the content purger leaves them, and each tenant's purge mark
	// stands at its newest such message (0: every body kept).
	ContentRetention time.Duration
	// HotWebhook gives the hot tenant an endpoint for every event type, with a delivery and its
	// attempt for each event published, as the webhook deliverer leaves them.
	HotWebhook bool
}

// Report is what was loaded.
type Report struct {
	Tenants   []string // the hot one first
	Messages  int64
	Events    int64
	Callbacks int64
	// WebhookDeliveries are the hot tenant's with Plan.HotWebhook.
	WebhookDeliveries int64
	Took              time.Duration
}

// chunk is how many messages are generated and copied at a time.
const chunk = 20_000

// History loads p into the database behind pool, calling progress after each chunk. The seeding
// connection runs with session_replication_role = replica, so the event outbox's trigger does
// not queue every seeded event for publishing: it needs a role that may set it (a superuser on a
// benchmark database).
func History(ctx context.Context, pool *pgxpool.Pool, p Plan, progress func(done, total int)) (Report, error) {
	if p.Messages <= 0 || p.Days <= 0 || p.Tenants <= 0 || p.HotShare < 0 || p.HotShare >= 1 {
		return Report{}, errors.New("seed: messages, days and tenants must be positive, and the hot share in [0, 1)")
	}
	if p.Now.IsZero() {
		p.Now = time.Now()
	}
	if len(p.Persons) == 0 {
		p.PersonMessages = 0
	}
	start := time.Now()
	var rep Report
	st := store.New(pool)
	for i := range p.Tenants {
		t, err := st.CreateTenant(ctx, domain.NewTenant{Name: "seed tenant " + strconv.Itoa(i), Plan: "seed", AllowSystemFallback: true})
		if err != nil {
			return rep, fmt.Errorf("seed: create tenant: %w", err)
		}
		rep.Tenants = append(rep.Tenants, t.ID)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return rep, fmt.Errorf("seed: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET session_replication_role = replica`); err != nil {
		return rep, fmt.Errorf("seed: the seeding role must be allowed to set session_replication_role (a superuser on a benchmark database): %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `RESET session_replication_role`) //nolint:errcheck // the connection goes back to the pool either way

	g := newGenerator(p, rep.Tenants)
	if _, err := st.CreatePartitions(ctx, g.from, p.Now.Add(14*24*time.Hour)); err != nil {
		return rep, fmt.Errorf("seed: %w", err)
	}
	for done := 0; done < p.Messages; {
		n := min(chunk, p.Messages-done)
		b := g.batch(done, n)
		for _, t := range []struct {
			table string
			cols  []string
			rows  [][]any
		}{
			{"message_logs", messageCols, b.messages},
			{"message_events", eventCols, b.events},
			{"provider_message_refs", refCols, b.refs},
			{"callbacks", callbackCols, b.callbacks},
		} {
			if _, err := conn.CopyFrom(ctx, pgx.Identifier{"communication", t.table}, t.cols, pgx.CopyFromRows(t.rows)); err != nil {
				return rep, fmt.Errorf("seed: copy %s: %w", t.table, err)
			}
		}
		rep.Messages += int64(len(b.messages))
		rep.Events += int64(len(b.events))
		rep.Callbacks += int64(len(b.callbacks))
		done += n
		if progress != nil {
			progress(done, p.Messages)
		}
	}
	if err := rollUp(ctx, conn.Conn(), rep.Tenants); err != nil {
		return rep, err
	}
	for tenant, m := range g.purgedThrough {
		if _, err := conn.Exec(ctx, `INSERT INTO communication.content_purge (tenant_id, through_at, through_id) VALUES ($1, $2, $3)
			ON CONFLICT (tenant_id) DO UPDATE SET through_at = excluded.through_at, through_id = excluded.through_id`, tenant, m.at, m.id); err != nil {
			return rep, fmt.Errorf("seed: content purge mark: %w", err)
		}
	}
	if p.HotWebhook {
		if rep.WebhookDeliveries, err = deliverHotTenantsEvents(ctx, pool, rep.Tenants[0]); err != nil {
			return rep, err
		}
	}
	rep.Took = time.Since(start)
	return rep, nil
}

// rollUp fills the hourly analytics and daily usage of the seeded tenants from their messages,
// as the fold would have.
func rollUp(ctx context.Context, conn *pgx.Conn, tenants []string) error {
	if _, err := conn.Exec(ctx, `
		INSERT INTO communication.analytics_hourly AS a (tenant_id, channel, bucket, sent, delivered, bounced, failed)
		SELECT tenant_id, channel, date_trunc('hour', created_at, 'UTC'), count(sent_at), count(delivered_at),
		       count(*) FILTER (WHERE status = 'bounced'), count(*) FILTER (WHERE status IN ('failed', 'undelivered'))
		FROM communication.message_logs WHERE tenant_id = ANY($1) GROUP BY 1, 2, 3
		ON CONFLICT (tenant_id, channel, bucket) DO UPDATE SET sent = a.sent + excluded.sent,
			delivered = a.delivered + excluded.delivered, bounced = a.bounced + excluded.bounced, failed = a.failed + excluded.failed`,
		tenants); err != nil {
		return fmt.Errorf("seed: roll up analytics: %w", err)
	}
	if _, err := conn.Exec(ctx, `
		INSERT INTO communication.usage_daily AS u (tenant_id, day, channel, provider_config_id, template_key, category, currency,
			accepted, accepted_units, attempts, sent, delivered, failed, bounced, segments, cost)
		SELECT tenant_id, (created_at AT TIME ZONE 'UTC')::date, channel, coalesce(provider_config_id, ''), '', category, cost_currency,
		       count(*), sum(coalesce(sms_segments, 1)), count(*), count(sent_at), count(delivered_at),
		       count(*) FILTER (WHERE status IN ('failed', 'undelivered')), count(*) FILTER (WHERE status = 'bounced'),
		       coalesce(sum(sms_segments) FILTER (WHERE sent_at IS NOT NULL), 0), coalesce(sum(abs(NULLIF(cost, '')::numeric)), 0)
		FROM communication.message_logs WHERE tenant_id = ANY($1) GROUP BY 1, 2, 3, 4, 5, 6, 7
		ON CONFLICT (tenant_id, day, channel, provider_config_id, template_key, category, currency) DO UPDATE SET
			accepted = u.accepted + excluded.accepted, accepted_units = u.accepted_units + excluded.accepted_units,
			attempts = u.attempts + excluded.attempts, sent = u.sent + excluded.sent, delivered = u.delivered + excluded.delivered,
			failed = u.failed + excluded.failed, bounced = u.bounced + excluded.bounced, segments = u.segments + excluded.segments,
			cost = u.cost + excluded.cost`, tenants); err != nil {
		return fmt.Errorf("seed: roll up usage: %w", err)
	}
	return nil
}

// TableSize is one table's footprint.
type TableSize struct {
	Table string
	Rows  int64 // the planner's estimate, exact after ANALYZE
	Bytes int64 // rows, TOAST and indexes
}

// HistoryTables are the tables that grow with every message.
var HistoryTables = []string{"message_logs", "message_events", "provider_message_refs", "callbacks", "event_outbox",
	"webhook_deliveries", "webhook_attempts", "dead_letters", "audit_log", "analytics_hourly", "usage_daily"}

// Footprint analyzes the history tables and returns their sizes.
func Footprint(ctx context.Context, pool *pgxpool.Pool) ([]TableSize, error) {
	out := make([]TableSize, 0, len(HistoryTables))
	for _, t := range HistoryTables {
		if _, err := pool.Exec(ctx, `ANALYZE communication.`+t); err != nil {
			return nil, fmt.Errorf("analyze %s: %w", t, err)
		}
		ts := TableSize{Table: t}
		// a partitioned table (migration 0027) is the sum of its partitions
		if err := pool.QueryRow(ctx, `SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint, coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
			FROM pg_class c WHERE (c.oid = ('communication.' || $1)::regclass AND c.relkind <> 'p')
			   OR c.oid IN (SELECT relid FROM pg_partition_tree(('communication.' || $1)::regclass) WHERE isleaf)`, t).Scan(&ts.Rows, &ts.Bytes); err != nil {
			return nil, fmt.Errorf("size of %s: %w", t, err)
		}
		out = append(out, ts)
	}
	return out, nil
}

// generator makes the rows of one chunk of messages at a time.
type generator struct {
	p       Plan
	tenants []string
	rnd     *rand.Rand
	from    time.Time
	step    time.Duration
	// purgedThrough is each tenant's newest message whose content is purged (Plan.ContentRetention).
	purgedThrough map[string]mark
}

// mark is a message in (created_at, id) order.
type mark struct {
	at time.Time
	id string
}

func newGenerator(p Plan, tenants []string) *generator {
	span := time.Duration(p.Days) * 24 * time.Hour
	return &generator{p: p, tenants: tenants, rnd: rand.New(rand.NewPCG(p.Seed, p.Seed^0x5eed)),
		from: p.Now.Add(-span), step: span / time.Duration(p.Messages), purgedThrough: map[string]mark{}}
}

type rows struct{ messages, events, refs, callbacks [][]any }

var (
	messageCols = []string{"id", "tenant_id", "channel", "recipient", "sender", "subject", "body_text", "body_html", "status",
		"attempts", "provider_config_id", "provider_type", "provider_message_id", "error_code", "error_message", "created_at",
		"updated_at", "sent_at", "delivered_at", "cost", "cost_currency", "cost_source", "category", "sms_encoding",
		"sms_characters", "sms_segments", "content_purged_at"}
	eventCols    = []string{"message_id", "tenant_id", "message_at", "status", "attempt", "source", "provider_config_id", "provider_type", "error_code", "reason", "payload", "occurred_at"}
	refCols      = []string{"provider_config_id", "provider_message_id", "tenant_id", "message_id", "created_at"}
	callbackCols = []string{"provider_config_id", "provider_type", "event_key", "provider_message_id", "status", "recipient", "occurred_at",
		"payload", "received_at", "received_week", "applied_at", "message_id", "outcome"}
)

// emailHTML is an email body of a typical transactional size.
const emailHTML = `<!doctype html><html><body style="font-family:sans-serif"><h1>Your receipt</h1><p>Thank you for your order.` +
	` Your items are on their way and will arrive within three to five working days.</p><table><tr><td>Item</td><td>Qty</td>` +
	`<td>Price</td></tr><tr><td>Blue mug</td><td>2</td><td>$18.00</td></tr><tr><td>Shipping</td><td>1</td><td>$4.99</td></tr>` +
	`</table><p>Questions? Reply to this email.</p><p style="color:#777">You receive this email because you ordered from us.</p></body></html>`

// batch makes the rows of messages [first, first+n).
func (g *generator) batch(first, n int) rows {
	var r rows
	for i := first; i < first+n; i++ {
		at := g.from.Add(time.Duration(i)*g.step + time.Duration(g.rnd.Int64N(int64(g.step)+1))).UTC().Truncate(time.Millisecond) // an id carries milliseconds
		tenant := g.tenants[0]
		if len(g.tenants) > 1 && g.rnd.Float64() >= g.p.HotShare {
			tenant = g.tenants[1+g.rnd.IntN(len(g.tenants)-1)]
		}
		id := ids.NewSortableAt(ids.Message, at)
		sms := g.rnd.IntN(10) < 4
		person := ""
		if n := g.p.PersonMessages * len(g.p.Persons); n > 0 {
			if step := max(1, g.p.Messages/n); i%step == 0 {
				person = g.p.Persons[(i/step)%len(g.p.Persons)]
			}
		}
		if person != "" {
			tenant, sms = g.tenants[0], true
		}
		channel, cfg, typ, pmid := "email", "prv_seed_email", "ses", "0100019"+ids.Random(20)
		recipient := "person" + strconv.Itoa(g.rnd.IntN(20_000)) + "@" + tenant + ".example"
		sender, subject, text, html := "receipts@shop.example", "Your receipt", "Thank you for your order. Your items are on their way.", emailHTML
		var enc, chars, segs any
		if sms {
			channel, cfg, typ, pmid = "sms", "prv_seed_sms", "twilio", "SM"+ids.Random(32)
			recipient = "+1415" + fmt.Sprintf("%07d", g.rnd.IntN(10_000_000))
			if person != "" {
				recipient = person
			}
			sender, subject, html = "+14155550000", "", ""
			text = "Your login code is " + fmt.Sprintf("%06d", g.rnd.IntN(1_000_000)) + ". It expires in 10 minutes."
			enc, chars, segs = "GSM-7", len(text), 1
		}
		status, final := "delivered", ""
		switch roll := g.rnd.IntN(100); {
		case roll < 3:
			status = "failed"
		case roll < 4 && sms:
			status, final = "undelivered", "undelivered"
		case roll < 4:
			status, final = "bounced", "bounced"
		case roll < 8:
			status = "sent"
		default:
			final = "delivered"
		}
		sendingAt, sentAt, doneAt := at.Add(40*time.Millisecond), at.Add(300*time.Millisecond), at.Add(3*time.Second)
		var sent, delivered, errCode, errMsg, cost, currency, source any = sentAt, nil, "", "", "0.0079", "USD", "unit_price"
		if status == "failed" {
			sent, pmid, errCode, errMsg, cost, currency, source = nil, "", "invalid_recipient", "the provider refused the recipient", "", "", ""
		}
		if status == "delivered" {
			delivered = doneAt
		}
		updated := sentAt
		if final != "" {
			updated = doneAt
		}
		var purged any
		if g.p.ContentRetention > 0 && at.Before(g.p.Now.Add(-g.p.ContentRetention)) {
			subject, text, html, purged = "", "", "", at.Add(g.p.ContentRetention)
			g.purgedThrough[tenant] = mark{at, id}
		}
		r.messages = append(r.messages, []any{id, tenant, channel, recipient, sender, subject, text, html, status,
			1, cfg, typ, pmid, errCode, errMsg, at, updated, sent, delivered, cost, currency, source, "transactional", enc, chars, segs, purged})
		created := at // the message's, which its events carry as message_at
		event := func(status, source string, at time.Time, payload any) {
			r.events = append(r.events, []any{id, tenant, created, status, 1, source, cfg, typ, "", "", payload, at})
		}
		event("queued", "internal", at, nil)
		event("sending", "internal", sendingAt, nil)
		if status == "failed" {
			event("failed", "internal", sentAt, nil)
			continue
		}
		event("sent", "internal", sentAt, nil)
		r.refs = append(r.refs, []any{cfg, pmid, tenant, id, sentAt})
		if final == "" {
			continue
		}
		payload := `{"MessageSid":"` + pmid + `","MessageStatus":"` + final + `","To":"` + recipient + `","ApiVersion":"2010-04-01"}`
		event(final, "provider", doneAt, payload)
		r.callbacks = append(r.callbacks, []any{cfg, typ, pmid + ":" + final, pmid, final, recipient, doneAt, payload, doneAt, monday(doneAt), doneAt, id, "applied"})
	}
	return r
}

// monday is the start of t's UTC week, Monday 00:00: a callback's partition key (received_week).
func monday(t time.Time) time.Time {
	d := t.UTC().Truncate(24 * time.Hour)
	return d.AddDate(0, 0, -(int(d.Weekday())+6)%7)
}
