package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/logicspike/comms/internal/domain"
)

// ErrKeyTaken is returned when the tenant already has a template with that key.
var ErrKeyTaken = errors.New("a template with that key exists")

const templateCols = `key, name, channel, category, default_locale, variables, archived_at IS NOT NULL, created_at, updated_at, revision,
	coalesce((SELECT jsonb_object_agg(a.locale, a.version) FROM communication.template_active_versions a
	          WHERE a.tenant_id = t.tenant_id AND a.template_key = t.key), '{}')`

func scanTemplate(row pgx.Row) (domain.Template, error) {
	var t domain.Template
	err := row.Scan(&t.Key, &t.Name, &t.Channel, &t.Category, &t.DefaultLocale, &t.Variables, &t.Archived, &t.CreatedAt, &t.UpdatedAt, &t.Revision, &t.ActiveVersions)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Template{}, ErrNotFound
	}
	return t, err
}

// CreateTemplate stores t for tenantID, or returns ErrKeyTaken.
func (s *Store) CreateTemplate(ctx context.Context, tenantID string, t domain.Template) (domain.Template, error) {
	out, err := scanTemplate(s.pool.QueryRow(ctx, `
		INSERT INTO communication.templates AS t (tenant_id, key, name, channel, category, default_locale, variables)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		RETURNING `+templateCols, tenantID, t.Key, t.Name, t.Channel, t.Category, t.DefaultLocale, t.Variables))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return domain.Template{}, ErrKeyTaken
	}
	if err != nil {
		return domain.Template{}, fmt.Errorf("create template %s: %w", t.Key, err)
	}
	return out, nil
}

// GetTemplate returns tenantID's template key (archived ones too), or ErrNotFound.
func (s *Store) GetTemplate(ctx context.Context, tenantID, key string) (domain.Template, error) {
	t, err := scanTemplate(s.pool.QueryRow(ctx,
		`SELECT `+templateCols+` FROM communication.templates t WHERE tenant_id = $1 AND key = $2`, tenantID, key))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return domain.Template{}, fmt.Errorf("get template %s: %w", key, err)
	}
	return t, err
}

// ListTemplates returns tenantID's templates by key, after the cursor (a key), with the next
// page's cursor ("" on the last page).
func (s *Store) ListTemplates(ctx context.Context, tenantID, after string, archived bool, limit int) ([]domain.Template, string, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+templateCols+` FROM communication.templates t
		WHERE tenant_id = $1 AND key > $2 AND (archived_at IS NULL OR $3) ORDER BY key LIMIT $4`, tenantID, after, archived, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list templates: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Template, error) { return scanTemplate(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list templates: %w", err)
	}
	out, next := page(out, limit, func(t domain.Template) string { return t.Key })
	return out, next, nil
}

// UpdateTemplate applies p to an unarchived template, or returns ErrNotFound.
func (s *Store) UpdateTemplate(ctx context.Context, tenantID, key string, p domain.TemplatePatch) (domain.Template, error) {
	var vars []byte
	if len(p.Variables) > 0 {
		vars = p.Variables
	}
	t, err := scanTemplate(s.pool.QueryRow(ctx, `
		UPDATE communication.templates t SET name = coalesce($3, name), category = coalesce($4, category),
			default_locale = coalesce($5, default_locale), variables = coalesce($6::jsonb, variables), updated_at = now(),
			revision = revision + 1
		WHERE tenant_id = $1 AND key = $2 AND archived_at IS NULL
		RETURNING `+templateCols, tenantID, key, p.Name, p.Category, p.DefaultLocale, vars))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return domain.Template{}, fmt.Errorf("update template %s: %w", key, err)
	}
	return t, err
}

// ArchiveTemplate stops a template's sends and returns its new revision, or ErrNotFound (also
// when already archived).
func (s *Store) ArchiveTemplate(ctx context.Context, tenantID, key string) (int64, error) {
	var rev int64
	err := s.pool.QueryRow(ctx, `UPDATE communication.templates SET archived_at = now(), updated_at = now(), revision = revision + 1
		WHERE tenant_id = $1 AND key = $2 AND archived_at IS NULL RETURNING revision`, tenantID, key).Scan(&rev)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("archive template %s: %w", key, err)
	}
	return rev, nil
}
