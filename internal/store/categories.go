package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// ErrCategoryTaken is returned when the tenant already has a category with that key.
var ErrCategoryTaken = errors.New("a category with that key exists")

const categoryCols = `key, name, description, kind, default_in, required, created_at, updated_at`

func scanCategory(r pgx.Row) (domain.Category, error) {
	var c domain.Category
	err := r.Scan(&c.Key, &c.Name, &c.Description, &c.Kind, &c.DefaultIn, &c.Required, &c.CreatedAt, &c.UpdatedAt)
	return c, err
}

// CreateCategory stores c for tenantID, or returns ErrCategoryTaken.
func (s *Store) CreateCategory(ctx context.Context, tenantID string, c domain.Category) (domain.Category, error) {
	out, err := scanCategory(s.pool.QueryRow(ctx, `
		INSERT INTO communication.categories (tenant_id, key, name, description, kind, default_in, required)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+categoryCols,
		tenantID, c.Key, c.Name, c.Description, c.Kind, c.DefaultIn, c.Required))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return domain.Category{}, ErrCategoryTaken
	}
	if err != nil {
		return domain.Category{}, fmt.Errorf("create category: %w", err)
	}
	return out, nil
}

// ListCategories returns all of tenantID's categories, by key (a tenant declares a few).
func (s *Store) ListCategories(ctx context.Context, tenantID string) ([]domain.Category, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+categoryCols+` FROM communication.categories WHERE tenant_id = $1 ORDER BY key`, tenantID)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Category, error) { return scanCategory(r) })
	if err != nil {
		return nil, fmt.Errorf("list categories: %w", err)
	}
	return out, nil
}

// GetCategory returns one of tenantID's categories, or ErrNotFound.
func (s *Store) GetCategory(ctx context.Context, tenantID, key string) (domain.Category, error) {
	c, err := scanCategory(s.pool.QueryRow(ctx, `SELECT `+categoryCols+` FROM communication.categories WHERE tenant_id = $1 AND key = $2`, tenantID, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Category{}, ErrNotFound
	}
	if err != nil {
		return domain.Category{}, fmt.Errorf("get category: %w", err)
	}
	return c, nil
}

// UpdateCategory applies p to one of tenantID's categories, or returns ErrNotFound.
func (s *Store) UpdateCategory(ctx context.Context, tenantID, key string, p domain.CategoryPatch) (domain.Category, error) {
	c, err := scanCategory(s.pool.QueryRow(ctx, `
		UPDATE communication.categories SET name = coalesce($3, name), description = coalesce($4, description),
			kind = coalesce($5, kind), default_in = coalesce($6, default_in), required = coalesce($7, required), updated_at = now()
		WHERE tenant_id = $1 AND key = $2 RETURNING `+categoryCols, tenantID, key, p.Name, p.Description, p.Kind, p.DefaultIn, p.Required))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Category{}, ErrNotFound
	}
	if err != nil {
		return domain.Category{}, fmt.Errorf("update category: %w", err)
	}
	return c, nil
}

// DeleteCategory removes one of tenantID's categories with everyone's choices for it, or returns
// ErrNotFound.
func (s *Store) DeleteCategory(ctx context.Context, tenantID, key string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM communication.categories WHERE tenant_id = $1 AND key = $2`, tenantID, key)
	if err != nil {
		return fmt.Errorf("delete category: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// PreferenceSubjectKey is how preferences name a person: a profile by its id (recipient:<id>),
// an address by its keyed hash (address:<hash>, as suppressions keep it), so that no address is
// kept with them.
func (s *Store) PreferenceSubjectKey(ctx context.Context, tenantID string, p domain.PreferenceSubject) (string, error) {
	if p.RecipientID != "" {
		return "recipient:" + p.RecipientID, nil
	}
	key, err := s.recipientHashKey(ctx)
	if err != nil {
		return "", err
	}
	return "address:" + recipientHash(key, tenantID, string(p.Channel), message.RecipientKey(p.Channel, p.Address)), nil
}

// GetPreferences returns a person's choices (only those they made).
func (s *Store) GetPreferences(ctx context.Context, tenantID string, who domain.PreferenceSubject) (domain.Preferences, error) {
	subject, err := s.PreferenceSubjectKey(ctx, tenantID, who)
	if err != nil {
		return nil, err
	}
	return readPreferences(ctx, s.pool, tenantID, subject)
}

// GetSubjectPreferences returns the choices of the person subject names (PreferenceSubjectKey).
func (s *Store) GetSubjectPreferences(ctx context.Context, tenantID, subject string) (domain.Preferences, error) {
	return readPreferences(ctx, s.pool, tenantID, subject)
}

func readPreferences(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, tenantID, subject string) (domain.Preferences, error) {
	rows, _ := q.Query(ctx, `SELECT category, channel, opted_in FROM communication.preferences
		WHERE tenant_id = $1 AND subject = $2`, tenantID, subject)
	out := domain.Preferences{}
	var (
		cat, ch string
		in      bool
	)
	_, err := pgx.ForEachRow(rows, []any{&cat, &ch, &in}, func() error {
		if out[cat] == nil {
			out[cat] = map[message.Channel]bool{}
		}
		out[cat][message.Channel(ch)] = in
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get preferences: %w", err)
	}
	return out, nil
}

// ReplacePreferences makes p a person's choices: a channel p does not name for a category goes
// back to the category's default. It returns their choices after, and records
// comms.preference.updated when they changed. Every category in p must exist.
func (s *Store) ReplacePreferences(ctx context.Context, tenantID string, who domain.PreferenceSubject, p domain.Preferences) (domain.Preferences, error) {
	subject, err := s.PreferenceSubjectKey(ctx, tenantID, who)
	if err != nil {
		return nil, err
	}
	return s.writePreferences(ctx, tenantID, subject, who.Channel, p, true)
}

// ChoosePreferences records the choices in p for the person subject names (an address's on
// channel ch), leaving their other choices as they are, and returns all their choices after
// (with comms.preference.updated when they changed). Every category in p must exist.
func (s *Store) ChoosePreferences(ctx context.Context, tenantID, subject string, ch message.Channel, p domain.Preferences) (domain.Preferences, error) {
	return s.writePreferences(ctx, tenantID, subject, ch, p, false)
}

func (s *Store) writePreferences(ctx context.Context, tenantID, subject string, ch message.Channel, p domain.Preferences, replace bool) (domain.Preferences, error) {
	var cats, chans []string
	var ins []bool
	for cat, byCh := range p {
		for ch, in := range byCh {
			cats, chans, ins = append(cats, cat), append(chans, string(ch)), append(ins, in)
		}
	}
	var after domain.Preferences
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// one change to a person's choices at a time, so that each event tells its own change
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1 || ' ' || $2, 0))`, tenantID, subject); err != nil {
			return err
		}
		before, err := readPreferences(ctx, tx, tenantID, subject)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			WITH given AS (SELECT * FROM unnest($3::text[], $4::text[], $5::bool[]) AS u(category, channel, opted_in)),
			gone AS (
				DELETE FROM communication.preferences p WHERE $6 AND p.tenant_id = $1 AND p.subject = $2
				AND NOT EXISTS (SELECT 1 FROM given g WHERE g.category = p.category AND g.channel = p.channel)
			)
			INSERT INTO communication.preferences (tenant_id, subject, category, channel, opted_in)
			SELECT $1, $2, category, channel, opted_in FROM given
			ON CONFLICT (tenant_id, subject, category, channel) DO UPDATE SET opted_in = excluded.opted_in, updated_at = now()
			WHERE communication.preferences.opted_in <> excluded.opted_in`,
			tenantID, subject, cats, chans, ins, replace); err != nil {
			return err
		}
		if after, err = readPreferences(ctx, tx, tenantID, subject); err != nil || samePreferences(before, after) {
			return err
		}
		data, err := json.Marshal(after)
		if err != nil {
			return err
		}
		id, profile := strings.CutPrefix(subject, "recipient:")
		hash, _ := strings.CutPrefix(subject, "address:")
		if profile {
			hash, ch = "", ""
		} else {
			id = ""
		}
		_, err = tx.Exec(ctx, `INSERT INTO communication.account_events (tenant_id, type, subject, data)
			VALUES ($1, 'comms.preference.updated', $2, jsonb_build_object('recipient_id', $3::text, 'recipient_hash', $4::text,
				'channel', $5::text, 'preferences', $6::jsonb))`, tenantID, subject, id, hash, string(ch), data)
		return err
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" {
		return nil, ErrNotFound // a category that does not exist (deleted meanwhile)
	}
	if err != nil {
		return nil, fmt.Errorf("record preferences: %w", err)
	}
	return after, nil
}

func samePreferences(a, b domain.Preferences) bool {
	n := 0
	for cat, byCh := range a {
		for ch, in := range byCh {
			if got, ok := b[cat][ch]; !ok || got != in {
				return false
			}
			n++
		}
	}
	for _, byCh := range b {
		n -= len(byCh)
	}
	return n == 0
}
