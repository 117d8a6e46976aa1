package store

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// flush sends the batch's writes in one round trip; shared rows (rollups) are written in key
// order, the same in every writer, so concurrent batches cannot deadlock on them.
func (w *trackWriter) flush(ctx context.Context, tx pgx.Tx) error {
	b := &pgx.Batch{}
	if len(w.evMsg) > 0 {
		b.Queue(`
			INSERT INTO communication.message_events (message_id, tenant_id, message_at, status, source, provider_config_id, provider_type, error_code, reason, payload, occurred_at)
			SELECT * FROM unnest($1::text[], $2::text[], $10::timestamptz[], $3::text[], array_fill('provider'::text, ARRAY[cardinality($1::text[])]), $4::text[], $5::text[], $6::text[], $7::text[], $8::jsonb[], $9::timestamptz[])`,
			w.evMsg, w.evTenant, w.evStatus, w.evCfg, w.evType, w.evCode, w.evReason, w.evPayload, w.evAt, w.evMsgAt)
	}
	if len(w.updID) > 0 {
		b.Queue(`
			UPDATE communication.message_logs m
			SET status = u.status, delivered_at = u.delivered_at, opened_at = u.opened_at, clicked_at = u.clicked_at, updated_at = now()
			FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[])
			  AS u(id, tenant_id, status, delivered_at, opened_at, clicked_at)
			WHERE m.tenant_id = u.tenant_id AND m.id = u.id AND `+madeAt("m.created_at", "u.id"),
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
	if len(w.usage) > 0 {
		// plain inserts into usage_deltas: no shared row, so no lock order to keep
		var tenant, channel, cfg, tmpl, category []string
		var day []time.Time
		var del, bnc, fld []int64
		for k, c := range w.usage {
			tenant, channel, cfg, tmpl, category, day = append(tenant, k.tenant), append(channel, k.channel), append(cfg, k.cfg), append(tmpl, k.template), append(category, k.category), append(day, k.day)
			del, bnc, fld = append(del, int64(c.Delivered)), append(bnc, int64(c.Bounced)), append(fld, int64(c.Failed))
		}
		b.Queue(`
			INSERT INTO communication.usage_deltas (tenant_id, channel, provider_config_id, template_key, category, day, delivered, bounced, failed)
			SELECT tenant_id, channel, cfg, tmpl, category, (day AT TIME ZONE 'UTC')::date, del, bnc, fld
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::bigint[], $8::bigint[], $9::bigint[])
			  AS u(tenant_id, channel, cfg, tmpl, category, day, del, bnc, fld)
			WHERE del + bnc + fld > 0`,
			tenant, channel, cfg, tmpl, category, day, del, bnc, fld)
	}
	if len(w.supTenant) > 0 {
		b.Queue(`
			INSERT INTO communication.suppressions (tenant_id, channel, recipient, reason, detail, message_id)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
			ON CONFLICT DO NOTHING`, w.supTenant, w.supChannel, w.supRcpt, w.supReason, w.supDetail, w.supMsg)
	}
	if len(w.doneID) > 0 {
		b.Queue(`
			UPDATE communication.callbacks c SET outcome = 'applied', applied_at = now(), message_id = d.msg, tries = c.tries + 1,
				payload = CASE WHEN d.erased THEN '{}' ELSE c.payload END, recipient = CASE WHEN d.erased THEN '' ELSE c.recipient END
			FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::bool[]) AS d(id, at, msg, erased)
			WHERE c.id = d.id AND c.received_week = d.at`, w.doneID, w.doneAt, w.doneMsg, w.doneErased)
	}
	if len(w.waitID) > 0 {
		b.Queue(`
			UPDATE communication.callbacks c SET tries = c.tries + 1, next_try_at = d.next,
				outcome = CASE WHEN d.give_up THEN 'unmatched' ELSE 'pending' END
			FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[], $4::bool[]) AS d(id, at, next, give_up)
			WHERE c.id = d.id AND c.received_week = d.at`,
			w.waitID, w.waitAt, w.waitNext, w.waitGiveUp)
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
