package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/internal/domain"
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
	fresh := map[[2]string]bool{}
	for i, c := range cbs {
		cfg[i], typ[i], key[i], pmid[i], status[i] = pgText(c.ProviderConfigID), c.ProviderType, pgText(c.EventKey), pgText(c.ProviderMessageID), string(c.Status)
		code[i], pcode[i], reason[i], rcpt[i], sup[i], at[i] = c.ErrorCode, pgText(c.ProviderCode), pgText(c.Reason), pgText(c.Recipient), c.Suppress, c.OccurredAt
		payload[i] = pgJSON(c.Payload)
	}
	// A partitioned table holds a unique key only with its partition key: a provider's retry is
	// recognised in the week it comes in by the key (provider_config_id, event_key, received_week),
	// and in the week before (across a Monday) by a look there; providers give up within days.
	rows, err := s.pool.Query(ctx, `
		INSERT INTO communication.callbacks (provider_config_id, provider_type, event_key, provider_message_id, status,
			error_code, provider_code, reason, recipient, suppress, occurred_at, payload)
		SELECT DISTINCT ON (x.cfg, x.key) x.cfg, x.typ, x.key, x.pmid, x.status, x.code, x.pcode, x.reason, x.rcpt, x.sup, x.at, x.payload
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::jsonb[]) WITH ORDINALITY
			AS x(cfg, typ, key, pmid, status, code, pcode, reason, rcpt, sup, at, payload, n)
		WHERE NOT EXISTS (SELECT 1 FROM communication.callbacks c
		                  WHERE c.provider_config_id = x.cfg AND c.event_key = x.key
		                    AND c.received_week = date_trunc('week', now(), 'UTC') - interval '168 hours')
		ORDER BY x.cfg, x.key, x.n
		ON CONFLICT (provider_config_id, event_key, received_week) DO NOTHING
		RETURNING provider_config_id, event_key`, cfg, typ, key, pmid, status, code, pcode, reason, rcpt, sup, at, payload)
	if err == nil {
		err = collectFresh(rows, fresh)
	}
	if err != nil {
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

// collectFresh notes the callbacks rows says were inserted.
func collectFresh(rows pgx.Rows, fresh map[[2]string]bool) error {
	var c, k string
	_, err := pgx.ForEachRow(rows, []any{&c, &k}, func() error { fresh[[2]string{c, k}] = true; return nil })
	return err
}

// ListUnmatchedCallbacks returns up to limit callbacks that gave up waiting for their message,
// newest first, for reconciliation.
func (s *Store) ListUnmatchedCallbacks(ctx context.Context, limit int) ([]domain.UnmatchedCallback, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, provider_config_id, provider_type, provider_message_id, status, received_at, tries
		FROM communication.callbacks WHERE outcome = 'unmatched' ORDER BY received_at DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list unmatched callbacks: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[domain.UnmatchedCallback])
}

// RetryUnmatchedCallbacks puts every unmatched callback back in the queue, for after a
// reconciliation (a restored message, a fixed provider config).
func (s *Store) RetryUnmatchedCallbacks(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `
		WITH u AS (
			UPDATE communication.callbacks SET outcome = 'pending', tries = 0, next_try_at = now() WHERE outcome = 'unmatched' RETURNING 1
		), n AS (SELECT count(*)::int AS n FROM u)
		SELECT n, communication.audit_action('callbacks.retried', 'unmatched_callbacks', '', NULL, jsonb_build_object('count', n)) FROM n`).Scan(&n, nil)
	if err != nil {
		return 0, fmt.Errorf("retry unmatched callbacks: %w", err)
	}
	return n, nil
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
