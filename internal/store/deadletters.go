package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/ids"
)

// replayFilter is a replay's filter as dlq_replays.filter keeps it (JSON: these names are
// in every row written since the table exists, so they do not change).
type replayFilter struct {
	TenantID         string     `json:"tenant_id,omitempty"`
	ProviderType     string     `json:"provider,omitempty"`
	ProviderConfigID string     `json:"provider_id,omitempty"`
	ErrorCode        string     `json:"error_code,omitempty"`
	From             *time.Time `json:"from,omitempty"`
	To               *time.Time `json:"to,omitempty"`
	MessageIDs       []string   `json:"message_ids,omitempty"`
}

// deadLetterWhere renders f as SQL conditions on dead_letters d.
func deadLetterWhere(f domain.DeadLetterFilter) *where {
	w := &where{}
	w.addIf(f.TenantID != "", "d.tenant_id = ?", f.TenantID)
	w.addIf(f.ProviderType != "", "d.provider_type = ?", f.ProviderType)
	w.addIf(f.ProviderConfigID != "", "d.provider_config_id = ?", f.ProviderConfigID)
	w.addIf(f.ErrorCode != "", "d.error_code = ?", f.ErrorCode)
	if f.From != nil {
		w.add("d.failed_at >= ?", *f.From)
	}
	if f.To != nil {
		w.add("d.failed_at < ?", *f.To)
	}
	w.addIf(len(f.MessageIDs) > 0, "d.message_id = ANY(?)", f.MessageIDs)
	if !f.IncludeReplayed {
		w.add("d.replayed_at IS NULL")
	}
	return w
}

const deadLetterCols = `d.id, d.message_id, d.tenant_id, d.channel, d.provider_type, d.provider_config_id, d.error_code,
	d.error_message, d.attempts, d.envelope, d.failed_at, d.replayed_at, coalesce(d.replay_id, '')`

func scanDeadLetter(r pgx.CollectableRow) (domain.DeadLetter, error) {
	var d domain.DeadLetter
	err := r.Scan(&d.ID, &d.MessageID, &d.TenantID, &d.Channel, &d.ProviderType, &d.ProviderConfigID, &d.ErrorCode,
		&d.ErrorMessage, &d.Attempts, &d.Envelope, &d.FailedAt, &d.ReplayedAt, &d.ReplayID)
	return d, err
}

// ListDeadLetters returns up to limit entries matching f, newest first, before the entry id
// before (0: from the newest).
func (s *Store) ListDeadLetters(ctx context.Context, f domain.DeadLetterFilter, before int64, limit int) ([]domain.DeadLetter, error) {
	w := deadLetterWhere(f)
	w.addIf(before > 0, "d.id < ?", before)
	rows, err := s.pool.Query(ctx, `SELECT `+deadLetterCols+` FROM communication.dead_letters d WHERE `+w.sql()+
		` ORDER BY d.id DESC LIMIT `+w.arg(limit), w.args...)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanDeadLetter)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// GetDeadLetter returns one entry, or ErrNotFound.
func (s *Store) GetDeadLetter(ctx context.Context, id int64) (domain.DeadLetter, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deadLetterCols+` FROM communication.dead_letters d WHERE d.id = $1`, id)
	if err != nil {
		return domain.DeadLetter{}, fmt.Errorf("get dead letter %d: %w", id, err)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDeadLetter)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.DeadLetter{}, ErrNotFound
	}
	return d, err
}

// MaxReplay bounds one replay; run it again for more.
const MaxReplay = 10_000

// ReplayDeadLetters puts the messages of the entries f selects (not replayed yet, at most
// MaxReplay) back in the queue with a fresh retry budget, marks the entries replayed, and writes
// the audit row, in one transaction. A dry run only counts and audits. Replaying the same entries
// again finds them replayed and does nothing, so a message is re-sent at most once per dead
// letter. It returns the messages to publish (the sweeper publishes them if the caller cannot).
func (s *Store) ReplayDeadLetters(ctx context.Context, f domain.DeadLetterFilter, actor string, dryRun bool) (domain.Replay, []Stranded, error) {
	f.IncludeReplayed = false
	rep := domain.Replay{ID: ids.New("rpl"), Actor: actor, Filter: f, DryRun: dryRun}
	var out []Stranded
	filterJSON, err := json.Marshal(replayFilter{TenantID: f.TenantID, ProviderType: f.ProviderType, ProviderConfigID: f.ProviderConfigID,
		ErrorCode: f.ErrorCode, From: f.From, To: f.To, MessageIDs: f.MessageIDs})
	if err != nil {
		return domain.Replay{}, nil, fmt.Errorf("replay dead letters: encode the filter: %w", err)
	}
	err = s.keyedTx(ctx, func(tx pgx.Tx) error {
		w := deadLetterWhere(f)
		rows, err := tx.Query(ctx, `SELECT d.id, d.message_id, d.tenant_id FROM communication.dead_letters d WHERE `+w.sql()+
			` ORDER BY d.id LIMIT `+w.arg(MaxReplay)+` FOR UPDATE SKIP LOCKED`, w.args...)
		if err != nil {
			return err
		}
		var entryIDs []int64
		var msgIDs, tenantIDs []string
		for rows.Next() {
			var id int64
			var mid, tid string
			if err := rows.Scan(&id, &mid, &tid); err != nil {
				rows.Close()
				return err
			}
			entryIDs, msgIDs, tenantIDs = append(entryIDs, id), append(msgIDs, mid), append(tenantIDs, tid)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rep.Matched = len(entryIDs)
		if !dryRun && len(entryIDs) > 0 {
			rows, err := tx.Query(ctx, `
				WITH m AS (
					UPDATE communication.message_logs m
					SET status = 'queued', next_attempt_at = NULL, attempt_base = attempts, retry_since = now(),
					    error_code = '', error_message = '', lease_expires_at = NULL, updated_at = now()
					FROM unnest($1::text[], $4::text[]) AS r(id, tenant_id)
					WHERE m.tenant_id = r.tenant_id AND m.id = r.id AND `+madeAt("m.created_at", "r.id")+`
					  AND m.status = 'failed' AND m.content_purged_at IS NULL -- nothing left to send
					RETURNING m.id, m.tenant_id, m.created_at, m.channel, m.attempts
				), ev AS (
					INSERT INTO communication.message_events (message_id, tenant_id, message_at, status, attempt, source, reason)
					SELECT id, tenant_id, created_at, 'queued', attempts, 'replay', 'replayed from the dead-letter queue by ' || $2 || ' (' || $3 || ')' FROM m
				), q AS (
					INSERT INTO communication.dispatch_queue (message_id, tenant_id, created_at)
					SELECT id, tenant_id, now() FROM m
					ON CONFLICT (message_id) DO UPDATE SET published_at = NULL, created_at = now()
				)
				SELECT tenant_id, id, channel, attempts FROM m`, msgIDs, actor, rep.ID, tenantIDs)
			if err != nil {
				return err
			}
			out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Stranded, error) {
				var st Stranded
				return st, r.Scan(&st.TenantID, &st.ID, &st.Channel, &st.Attempts)
			})
			if err != nil {
				return err
			}
			rep.Replayed = len(out)
			if _, err := tx.Exec(ctx, `UPDATE communication.dead_letters SET replayed_at = now(), replay_id = $2 WHERE id = ANY($1)`, entryIDs, rep.ID); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, `INSERT INTO communication.dlq_replays (id, actor, filter, dry_run, matched, replayed)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING at`, rep.ID, actor, filterJSON, dryRun, rep.Matched, rep.Replayed).Scan(&rep.At)
	})
	if err != nil {
		return domain.Replay{}, nil, fmt.Errorf("replay dead letters: %w", err)
	}
	return rep, out, nil
}

// ListReplays returns the replay log, newest first.
func (s *Store) ListReplays(ctx context.Context, limit int) ([]domain.Replay, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, actor, at, filter, dry_run, matched, replayed
		FROM communication.dlq_replays ORDER BY at DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list replays: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Replay, error) {
		var rep domain.Replay
		var f replayFilter
		if err := r.Scan(&rep.ID, &rep.Actor, &rep.At, &f, &rep.DryRun, &rep.Matched, &rep.Replayed); err != nil {
			return rep, err
		}
		rep.Filter = domain.DeadLetterFilter{TenantID: f.TenantID, ProviderType: f.ProviderType, ProviderConfigID: f.ProviderConfigID,
			ErrorCode: f.ErrorCode, From: f.From, To: f.To, MessageIDs: f.MessageIDs}
		return rep, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list replays: %w", err)
	}
	return out, nil
}
