package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// InsertCallbacks makes callbacks durable and reports for each whether it was new (false: a
// provider's retry of one already stored).
func (s *Store) InsertCallbacks(ctx context.Context, cbs []provider.Event) ([]bool, error) {
	n := len(cbs)
	var (
		cfg, typ, key, pmid, status, code, pcode, reason, rcpt, sup, payload = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		at                                                                   = make([]time.Time, n)
	)
	for i, c := range cbs {
		cfg[i], typ[i], key[i], pmid[i], status[i] = pgText(c.ProviderConfigID), c.ProviderType, pgText(c.EventKey), pgText(c.ProviderMessageID), string(c.Status)
		code[i], pcode[i], reason[i], rcpt[i], sup[i], at[i] = c.ErrorCode, pgText(c.ProviderCode), pgText(c.Reason), pgText(c.Recipient), c.Suppress, c.OccurredAt
		payload[i] = pgJSON(c.Payload)
	}
	rows, err := s.pool.Query(ctx, `
		INSERT INTO communication.callbacks (provider_config_id, provider_type, event_key, provider_message_id, status,
			error_code, provider_code, reason, recipient, suppress, occurred_at, payload)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::jsonb[])
		ON CONFLICT (provider_config_id, event_key) DO NOTHING
		RETURNING provider_config_id, event_key`, cfg, typ, key, pmid, status, code, pcode, reason, rcpt, sup, at, payload)
	if err != nil {
		return nil, fmt.Errorf("insert %d callbacks: %w", n, err)
	}
	fresh := map[[2]string]bool{}
	var c, k string
	if _, err := pgx.ForEachRow(rows, []any{&c, &k}, func() error { fresh[[2]string{c, k}] = true; return nil }); err != nil {
		return nil, fmt.Errorf("insert %d callbacks: %w", n, err)
	}
	out := make([]bool, n)
	for i := range cbs {
		// a key twice in one batch: the first is new, the second a duplicate
		out[i] = fresh[[2]string{cfg[i], key[i]}]
		delete(fresh, [2]string{cfg[i], key[i]})
	}
	return out, nil
}

// ApplyPolicy bounds how long a callback waits for its message.
type ApplyPolicy struct {
	Limit    int                           // callbacks per batch
	MaxTries int                           // then the callback is left 'unmatched'
	Backoff  func(tries int) time.Duration // wait before try tries+1
	Now      func() time.Time              // for tests; nil: time.Now
	Log      func(msg string, args ...any) // optional
}

// Applied says what one ApplyCallbacks batch did.
type Applied struct {
	Applied   int // matched to a message and recorded
	Waiting   int // no message yet; retried later
	Unmatched int // gave up waiting: kept for reconciliation
	Changed   []Ref
}

type pendingCallback struct {
	provider.Event
	id       int64
	tries    int
	tenantID string // from the ref; empty when unmatched
	msgID    string
}

type trackedMessage struct {
	message.Tracking
	tenantID, channel, recipient string
	changed                      bool
}

// ApplyCallbacks applies up to p.Limit due callbacks in one transaction: each matched callback
// becomes a message event, moves its message's status forward (message.Tracking.Observe), adds
// its counts to the analytics rollups and its error to the provider-error rollup, and suppresses
// the recipient of a hard bounce or complaint. Concurrent callers share the work (SKIP LOCKED).
func (s *Store) ApplyCallbacks(ctx context.Context, p ApplyPolicy) (Applied, error) {
	var res Applied
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res = Applied{}
		rows, err := tx.Query(ctx, `
			SELECT c.id, c.provider_config_id, c.provider_type, c.event_key, c.provider_message_id, c.status,
			       c.error_code, c.provider_code, c.reason, c.recipient, c.suppress, c.occurred_at, c.payload::text,
			       c.tries, coalesce(r.tenant_id, ''), coalesce(r.message_id, '')
			FROM communication.callbacks c
			LEFT JOIN communication.provider_message_refs r
			  ON r.provider_config_id = c.provider_config_id AND r.provider_message_id = c.provider_message_id
			WHERE c.outcome = 'pending' AND c.next_try_at <= now()
			ORDER BY c.next_try_at, c.id LIMIT $1
			FOR UPDATE OF c SKIP LOCKED`, p.Limit)
		if err != nil {
			return err
		}
		cbs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pendingCallback, error) {
			var c pendingCallback
			var payload string
			err := r.Scan(&c.id, &c.ProviderConfigID, &c.ProviderType, &c.EventKey, &c.ProviderMessageID, &c.Status,
				&c.ErrorCode, &c.ProviderCode, &c.Reason, &c.Recipient, &c.Suppress, &c.OccurredAt, &payload,
				&c.tries, &c.tenantID, &c.msgID)
			c.Payload = []byte(payload)
			return c, err
		})
		if err != nil || len(cbs) == 0 {
			return err
		}
		msgs, err := lockTracked(ctx, tx, cbs)
		if err != nil {
			return err
		}
		// Apply in the providers' order of events, whatever order they arrived in.
		slices.SortStableFunc(cbs, func(a, b pendingCallback) int { return a.OccurredAt.Compare(b.OccurredAt) })
		w := newTrackWriter()
		for _, c := range cbs {
			m := msgs[c.msgID]
			if m == nil {
				w.wait(c, p, &res)
				continue
			}
			next, counts := m.Observe(c.Status, c.OccurredAt)
			if next != m.Tracking {
				m.Tracking, m.changed = next, true
			}
			w.applied(c, m, counts)
			res.Applied++
		}
		for id, m := range msgs {
			if m.changed {
				w.update(id, m)
				res.Changed = append(res.Changed, Ref{TenantID: m.tenantID, ID: id})
			}
		}
		return w.flush(ctx, tx)
	})
	if err != nil {
		return Applied{}, fmt.Errorf("apply callbacks: %w", err)
	}
	return res, nil
}

// lockTracked locks the matched messages, in id order so concurrent appliers cannot deadlock.
func lockTracked(ctx context.Context, tx pgx.Tx, cbs []pendingCallback) (map[string]*trackedMessage, error) {
	var tenants, msgIDs []string
	for _, c := range cbs {
		if c.msgID != "" {
			tenants, msgIDs = append(tenants, c.tenantID), append(msgIDs, c.msgID)
		}
	}
	out := map[string]*trackedMessage{}
	if len(msgIDs) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, `
		SELECT m.id, m.tenant_id, m.channel, m.recipient, m.status, m.delivered_at, m.opened_at, m.clicked_at
		FROM communication.message_logs m
		JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[])) AS r(tenant_id, id) ON m.tenant_id = r.tenant_id AND m.id = r.id
		ORDER BY m.id FOR UPDATE OF m`, tenants, msgIDs)
	if err != nil {
		return nil, err
	}
	var id string
	var m trackedMessage
	_, err = pgx.ForEachRow(rows, []any{&id, &m.tenantID, &m.channel, &m.recipient, &m.Status, &m.DeliveredAt, &m.OpenedAt, &m.ClickedAt}, func() error {
		c := m
		out[id] = &c
		return nil
	})
	return out, err
}

type rollupKey struct {
	tenant, channel string
	bucket          time.Time
}

type errorKey struct {
	tenant, channel, typ, cfg, code string
	bucket                          time.Time
}

type errorDelta struct {
	count          int64
	message, pcode string
	at             time.Time
}

// trackWriter gathers one batch's writes and sends them in one round trip.
type trackWriter struct {
	evMsg, evTenant, evStatus, evCfg, evType, evCode, evReason, evPayload []string
	evAt                                                                  []time.Time
	updID, updTenant, updStatus                                           []string
	updDelivered, updOpened, updClicked                                   []*time.Time
	rollups                                                               map[rollupKey]*message.Counts
	errors                                                                map[errorKey]*errorDelta
	supTenant, supChannel, supRcpt, supReason, supDetail, supMsg          []string
	doneID                                                                []int64
	doneMsg                                                               []string
	waitID                                                                []int64
	waitNext                                                              []time.Time
	waitGiveUp                                                            []bool
}

func newTrackWriter() *trackWriter {
	return &trackWriter{rollups: map[rollupKey]*message.Counts{}, errors: map[errorKey]*errorDelta{}}
}

func (w *trackWriter) wait(c pendingCallback, p ApplyPolicy, res *Applied) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	giveUp := c.tries+1 >= p.MaxTries
	w.waitID = append(w.waitID, c.id)
	w.waitNext = append(w.waitNext, now().Add(p.Backoff(c.tries+1)))
	w.waitGiveUp = append(w.waitGiveUp, giveUp)
	if giveUp {
		res.Unmatched++
		if p.Log != nil {
			p.Log("callback matches no message; kept as unmatched", "provider_id", c.ProviderConfigID,
				"provider_message_id", c.ProviderMessageID, "status", c.Status, "tries", c.tries+1)
		}
	} else {
		res.Waiting++
	}
}

func (w *trackWriter) applied(c pendingCallback, m *trackedMessage, counts message.Counts) {
	w.evMsg, w.evTenant, w.evStatus = append(w.evMsg, c.msgID), append(w.evTenant, m.tenantID), append(w.evStatus, string(c.Status))
	w.evCfg, w.evType, w.evCode = append(w.evCfg, c.ProviderConfigID), append(w.evType, c.ProviderType), append(w.evCode, c.ErrorCode)
	reason := c.Reason
	if c.ProviderCode != "" {
		reason = strings.TrimSpace(c.ProviderCode + " " + reason)
	}
	w.evReason, w.evPayload, w.evAt = append(w.evReason, reason), append(w.evPayload, string(c.Payload)), append(w.evAt, c.OccurredAt)
	w.doneID, w.doneMsg = append(w.doneID, c.id), append(w.doneMsg, c.msgID)

	hour := c.OccurredAt.UTC().Truncate(time.Hour)
	if !counts.Zero() {
		k := rollupKey{m.tenantID, m.channel, hour}
		if w.rollups[k] == nil {
			w.rollups[k] = &message.Counts{}
		}
		w.rollups[k].Add(counts)
	}
	if c.ErrorCode != "" {
		k := errorKey{m.tenantID, m.channel, c.ProviderType, c.ProviderConfigID, c.ErrorCode, hour}
		d := w.errors[k]
		if d == nil {
			d = &errorDelta{}
			w.errors[k] = d
		}
		d.count++
		if !c.OccurredAt.Before(d.at) {
			d.message, d.pcode, d.at = c.Reason, c.ProviderCode, c.OccurredAt
		}
	}
	if c.Suppress != "" {
		rcpt := c.Recipient
		if rcpt == "" {
			rcpt = m.recipient
		}
		w.supTenant, w.supChannel = append(w.supTenant, m.tenantID), append(w.supChannel, m.channel)
		w.supRcpt = append(w.supRcpt, message.RecipientKey(message.Channel(m.channel), rcpt))
		w.supReason, w.supDetail, w.supMsg = append(w.supReason, c.Suppress), append(w.supDetail, strings.TrimSpace(c.ProviderCode+" "+c.Reason)), append(w.supMsg, c.msgID)
	}
}

func (w *trackWriter) update(id string, m *trackedMessage) {
	w.updID, w.updTenant, w.updStatus = append(w.updID, id), append(w.updTenant, m.tenantID), append(w.updStatus, string(m.Status))
	w.updDelivered, w.updOpened, w.updClicked = append(w.updDelivered, m.DeliveredAt), append(w.updOpened, m.OpenedAt), append(w.updClicked, m.ClickedAt)
}

func (w *trackWriter) flush(ctx context.Context, tx pgx.Tx) error {
	b := &pgx.Batch{}
	if len(w.evMsg) > 0 {
		b.Queue(`
			INSERT INTO communication.message_events (message_id, tenant_id, status, source, provider_config_id, provider_type, error_code, reason, payload, occurred_at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], array_fill('provider'::text, ARRAY[cardinality($1::text[])]), $4::text[], $5::text[], $6::text[], $7::text[], $8::jsonb[], $9::timestamptz[])`,
			w.evMsg, w.evTenant, w.evStatus, w.evCfg, w.evType, w.evCode, w.evReason, w.evPayload, w.evAt)
	}
	if len(w.updID) > 0 {
		b.Queue(`
			UPDATE communication.message_logs m
			SET status = u.status, delivered_at = u.delivered_at, opened_at = u.opened_at, clicked_at = u.clicked_at, updated_at = now()
			FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[])
			  AS u(id, tenant_id, status, delivered_at, opened_at, clicked_at)
			WHERE m.tenant_id = u.tenant_id AND m.id = u.id`,
			w.updID, w.updTenant, w.updStatus, w.updDelivered, w.updOpened, w.updClicked)
	}
	if len(w.rollups) > 0 {
		keys := make([]rollupKey, 0, len(w.rollups))
		for k := range w.rollups {
			keys = append(keys, k)
		}
		// key order: every writer locks shared rollup rows in the same order
		slices.SortFunc(keys, func(a, b rollupKey) int {
			return cmpAll(strings.Compare(a.tenant, b.tenant), strings.Compare(a.channel, b.channel), a.bucket.Compare(b.bucket))
		})
		var tenant, channel []string
		var bucket []time.Time
		var del, opn, clk, bnc, cmp, fld []int64
		for _, k := range keys {
			c := w.rollups[k]
			tenant, channel, bucket = append(tenant, k.tenant), append(channel, k.channel), append(bucket, k.bucket)
			del, opn, clk = append(del, int64(c.Delivered)), append(opn, int64(c.Opened)), append(clk, int64(c.Clicked))
			bnc, cmp, fld = append(bnc, int64(c.Bounced)), append(cmp, int64(c.Complained)), append(fld, int64(c.Failed))
		}
		b.Queue(`
			INSERT INTO communication.analytics_hourly AS a (tenant_id, channel, bucket, delivered, opened, clicked, bounced, complained, failed)
			SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
			ON CONFLICT (tenant_id, channel, bucket) DO UPDATE SET
				delivered = a.delivered + excluded.delivered, opened = a.opened + excluded.opened,
				clicked = a.clicked + excluded.clicked, bounced = a.bounced + excluded.bounced,
				complained = a.complained + excluded.complained, failed = a.failed + excluded.failed`,
			tenant, channel, bucket, del, opn, clk, bnc, cmp, fld)
	}
	if len(w.errors) > 0 {
		keys := make([]errorKey, 0, len(w.errors))
		for k := range w.errors {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b errorKey) int {
			return cmpAll(strings.Compare(a.tenant, b.tenant), a.bucket.Compare(b.bucket), strings.Compare(a.channel, b.channel),
				strings.Compare(a.typ, b.typ), strings.Compare(a.cfg, b.cfg), strings.Compare(a.code, b.code))
		})
		var tenant, channel, typ, cfg, code, msg, pcode []string
		var bucket, at []time.Time
		var count []int64
		for _, k := range keys {
			d := w.errors[k]
			tenant, channel, typ, cfg, code = append(tenant, k.tenant), append(channel, k.channel), append(typ, k.typ), append(cfg, k.cfg), append(code, k.code)
			bucket, count, msg, pcode, at = append(bucket, k.bucket), append(count, d.count), append(msg, d.message), append(pcode, d.pcode), append(at, d.at)
		}
		days := make([]time.Time, len(bucket))
		for i, h := range bucket {
			days[i] = h.Truncate(24 * time.Hour) // UTC days: bucket is UTC
		}
		b.Queue(upsertProviderErrors("provider_errors_hourly"), tenant, bucket, channel, typ, cfg, code, count, msg, pcode, at)
		// sorted by hour within a tenant is sorted by day too: the same lock order
		b.Queue(upsertProviderErrors("provider_errors_daily"), tenant, days, channel, typ, cfg, code, count, msg, pcode, at)
	}
	if len(w.supTenant) > 0 {
		b.Queue(`
			INSERT INTO communication.suppressions (tenant_id, channel, recipient, reason, detail, message_id)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
			ON CONFLICT DO NOTHING`, w.supTenant, w.supChannel, w.supRcpt, w.supReason, w.supDetail, w.supMsg)
	}
	if len(w.doneID) > 0 {
		b.Queue(`
			UPDATE communication.callbacks c SET outcome = 'applied', applied_at = now(), message_id = d.msg, tries = c.tries + 1
			FROM unnest($1::bigint[], $2::text[]) AS d(id, msg) WHERE c.id = d.id`, w.doneID, w.doneMsg)
	}
	if len(w.waitID) > 0 {
		b.Queue(`
			UPDATE communication.callbacks c SET tries = c.tries + 1, next_try_at = d.next,
				outcome = CASE WHEN d.give_up THEN 'unmatched' ELSE 'pending' END
			FROM unnest($1::bigint[], $2::timestamptz[], $3::bool[]) AS d(id, next, give_up) WHERE c.id = d.id`,
			w.waitID, w.waitNext, w.waitGiveUp)
	}
	return tx.SendBatch(ctx, b).Close()
}

// upsertProviderErrors adds counts to a provider-error rollup table, keeping the latest example.
// Several rows of one batch may share a day: unnest feeds them in order, and ON CONFLICT cannot
// touch one row twice in a statement, so they are summed first.
func upsertProviderErrors(table string) string {
	return `
	INSERT INTO communication.` + table + ` AS e
		(tenant_id, bucket, channel, provider_type, provider_config_id, error_code, count, last_message, last_provider_code, last_at)
	SELECT tenant_id, bucket, channel, typ, cfg, code, sum(n)::bigint,
	       (array_agg(msg ORDER BY at DESC))[1], (array_agg(pcode ORDER BY at DESC))[1], max(at)
	FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[], $10::timestamptz[])
	  AS d(tenant_id, bucket, channel, typ, cfg, code, n, msg, pcode, at)
	GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
	ON CONFLICT (tenant_id, bucket, channel, provider_type, provider_config_id, error_code) DO UPDATE SET
		count = e.count + excluded.count,
		last_message = CASE WHEN excluded.last_at >= e.last_at THEN excluded.last_message ELSE e.last_message END,
		last_provider_code = CASE WHEN excluded.last_at >= e.last_at THEN excluded.last_provider_code ELSE e.last_provider_code END,
		last_at = greatest(e.last_at, excluded.last_at)`
}

func cmpAll(cs ...int) int {
	for _, c := range cs {
		if c != 0 {
			return c
		}
	}
	return 0
}

// UnmatchedCallback is a callback that never found its message.
type UnmatchedCallback struct {
	ID                int64     `json:"id"`
	ProviderConfigID  string    `json:"provider_id"`
	ProviderType      string    `json:"provider"`
	ProviderMessageID string    `json:"provider_message_id"`
	Status            string    `json:"status"`
	ReceivedAt        time.Time `json:"received_at"`
	Tries             int       `json:"tries"`
}

// ListUnmatchedCallbacks returns up to limit callbacks that gave up waiting for their message,
// newest first, for reconciliation.
func (s *Store) ListUnmatchedCallbacks(ctx context.Context, limit int) ([]UnmatchedCallback, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, provider_config_id, provider_type, provider_message_id, status, received_at, tries
		FROM communication.callbacks WHERE outcome = 'unmatched' ORDER BY received_at DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list unmatched callbacks: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[UnmatchedCallback])
}

// RetryUnmatchedCallbacks puts every unmatched callback back in the queue, for after a
// reconciliation (a restored message, a fixed provider config).
func (s *Store) RetryUnmatchedCallbacks(ctx context.Context) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE communication.callbacks SET outcome = 'pending', tries = 0, next_try_at = now() WHERE outcome = 'unmatched'`)
	if err != nil {
		return 0, fmt.Errorf("retry unmatched callbacks: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// pgText makes s storable as PostgreSQL text, which refuses NUL and invalid UTF-8: a callback
// carrying either would otherwise fail its batch on every retry.
func pgText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// pgJSON does the same for jsonb, which also refuses the escape \u0000.
func pgJSON(b []byte) string {
	return strings.ReplaceAll(pgText(string(b)), `\u0000`, `\uFFFD`)
}
