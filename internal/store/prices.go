package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// PriceCheck is a sent message whose price is still to be fetched from its provider.
type PriceCheck struct {
	MessageID, TenantID, ProviderConfigID, ProviderMessageID string
	Tries                                                    int // fetches before this one
}

// PriceResult is the outcome of one fetch: Cost empty means the provider has not priced it yet.
type PriceResult struct {
	MessageID      string
	Cost, Currency string
}

// ClaimPriceChecks takes up to limit checks due at least delay ago (the provider needs a moment
// to price a message), leasing them for lease: a crashed pricer's checks come due again after it.
func (s *Store) ClaimPriceChecks(ctx context.Context, limit int, delay, lease time.Duration) ([]PriceCheck, error) {
	rows, err := s.pool.Query(ctx, `
		UPDATE communication.price_checks p SET due_at = now() + $2::interval, tries = p.tries + 1
		FROM (SELECT message_id FROM communication.price_checks WHERE due_at <= now() - $3::interval ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED) d
		WHERE p.message_id = d.message_id
		RETURNING p.message_id, p.tenant_id, p.provider_config_id, p.provider_message_id, p.tries - 1`, limit, lease, delay)
	if err != nil {
		return nil, fmt.Errorf("claim price checks: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[PriceCheck])
	if err != nil {
		return nil, fmt.Errorf("claim price checks: %w", err)
	}
	return out, nil
}

// ApplyPrices records fetched prices in one statement: each message's cost becomes the
// provider's (cost_source provider), usage moves from the estimate it counted (a unit price, or
// nothing) to the price, on the day the message was sent, and the check is done. Results without
// a price wait again until retryAt; after maxTries fetches a check is dropped, the estimate kept.
func (s *Store) ApplyPrices(ctx context.Context, results []PriceResult, retryAt time.Time, maxTries int) error {
	var id, cost, currency []string
	for _, r := range results {
		id, cost, currency = append(id, r.MessageID), append(cost, pgText(r.Cost)), append(currency, pgText(r.Currency))
	}
	err := s.keyedTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
		WITH r AS (
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS r(id, cost, currency)
		), priced AS (
			SELECT r.* FROM r WHERE r.cost ~ '^-?[0-9]+(\.[0-9]+)?$'
		), old AS MATERIALIZED (
			SELECT m.id, m.tenant_id, m.channel, coalesce(m.provider_config_id, '') AS cfg, coalesce(m.template_key, '') AS tmpl, m.category,
			       (coalesce(m.sent_at, now()) AT TIME ZONE 'UTC')::date AS day, m.cost, m.cost_currency, m.cost_source
			FROM priced JOIN communication.price_checks c ON c.message_id = priced.id
			JOIN communication.message_logs m ON m.tenant_id = c.tenant_id AND m.id = priced.id AND `+madeAt("m.created_at", "priced.id")+`
			WHERE m.cost_source <> 'provider'
			ORDER BY m.id FOR UPDATE OF m
		), upd AS (
			UPDATE communication.message_logs m SET cost = p.cost, cost_currency = p.currency, cost_source = 'provider'
			FROM priced p, old WHERE m.tenant_id = old.tenant_id AND m.id = p.id AND `+madeAt("m.created_at", "p.id")+` AND old.id = p.id
		), usage AS (
			INSERT INTO communication.usage_deltas (tenant_id, day, channel, provider_config_id, template_key, category, currency, cost)
			SELECT old.tenant_id, old.day, old.channel, old.cfg, old.tmpl, old.category, old.cost_currency, -abs(old.cost::numeric)
			FROM old WHERE old.cost_source = 'unit_price' AND old.cost ~ '^-?[0-9]+(\.[0-9]+)?$'
			UNION ALL
			SELECT old.tenant_id, old.day, old.channel, old.cfg, old.tmpl, old.category, p.currency, abs(p.cost::numeric)
			FROM old JOIN priced p ON p.id = old.id
		), done AS (
			DELETE FROM communication.price_checks c USING r
			WHERE c.message_id = r.id AND (r.id IN (SELECT id FROM priced) OR c.tries >= $5)
		)
		UPDATE communication.price_checks c SET due_at = $4
		FROM r WHERE c.message_id = r.id AND r.id NOT IN (SELECT id FROM priced) AND c.tries < $5`,
			id, cost, currency, retryAt, maxTries)
		return err
	})
	if err != nil {
		return fmt.Errorf("apply %d prices: %w", len(results), err)
	}
	return nil
}
