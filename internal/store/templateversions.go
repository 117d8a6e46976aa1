package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/logicspike/comms/internal/domain"
)

const versionCols = `v.version, v.locale, v.subject, v.body_text, v.body_html,
	EXISTS (SELECT 1 FROM communication.template_active_versions a
	        WHERE a.tenant_id = v.tenant_id AND a.template_key = v.template_key AND a.version = v.version), v.created_at`

func scanVersion(row pgx.Row) (domain.TemplateVersion, error) {
	var v domain.TemplateVersion
	err := row.Scan(&v.Version, &v.Locale, &v.Subject, &v.Text, &v.HTML, &v.Active, &v.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.TemplateVersion{}, ErrNotFound
	}
	return v, err
}

// CreateTemplateVersion stores v as the next version of an unarchived template (numbers count up
// from 1 per template, across locales), or returns ErrNotFound.
func (s *Store) CreateTemplateVersion(ctx context.Context, tenantID, key string, v domain.TemplateVersion) (domain.TemplateVersion, error) {
	out, err := scanVersion(s.pool.QueryRow(ctx, `
		WITH t AS (
			UPDATE communication.templates SET next_version = next_version + 1, updated_at = now()
			WHERE tenant_id = $1 AND key = $2 AND archived_at IS NULL
			RETURNING tenant_id, key, next_version - 1 AS version
		)
		INSERT INTO communication.template_versions AS v (tenant_id, template_key, version, locale, subject, body_text, body_html)
		SELECT tenant_id, key, version, $3, $4, $5, $6 FROM t
		RETURNING v.version, v.locale, v.subject, v.body_text, v.body_html, false, v.created_at`,
		tenantID, key, v.Locale, v.Subject, v.Text, v.HTML))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return domain.TemplateVersion{}, fmt.Errorf("create version of template %s: %w", key, err)
	}
	return out, err
}

// GetTemplateVersion returns version n of tenantID's template key, or ErrNotFound.
func (s *Store) GetTemplateVersion(ctx context.Context, tenantID, key string, n int) (domain.TemplateVersion, error) {
	v, err := scanVersion(s.pool.QueryRow(ctx, `SELECT `+versionCols+` FROM communication.template_versions v
		WHERE v.tenant_id = $1 AND v.template_key = $2 AND v.version = $3`, tenantID, key, n))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return domain.TemplateVersion{}, fmt.Errorf("get version %d of template %s: %w", n, key, err)
	}
	return v, err
}

// ListTemplateVersions returns a template's versions newest first, below version before (0: from
// the newest), and the next page's cursor (0 on the last page).
func (s *Store) ListTemplateVersions(ctx context.Context, tenantID, key string, before, limit int) ([]domain.TemplateVersion, int, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+versionCols+` FROM communication.template_versions v
		WHERE v.tenant_id = $1 AND v.template_key = $2 AND ($3 = 0 OR v.version < $3)
		ORDER BY v.version DESC LIMIT $4`, tenantID, key, before, limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("list versions of template %s: %w", key, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.TemplateVersion, error) { return scanVersion(r) })
	if err != nil {
		return nil, 0, fmt.Errorf("list versions of template %s: %w", key, err)
	}
	out, next := page(out, limit, func(v domain.TemplateVersion) int { return v.Version })
	return out, next, nil
}

// ActivateTemplateVersion makes version n the one its locale sends, in one statement that also
// counts the template's revision. ErrNotFound when the template is archived or has no version n.
func (s *Store) ActivateTemplateVersion(ctx context.Context, tenantID, key string, n int) (domain.Activation, error) {
	var a domain.Activation
	v := &a.TemplateVersion
	err := s.pool.QueryRow(ctx, `
		WITH v AS (
			SELECT v.* FROM communication.template_versions v
			JOIN communication.templates t ON t.tenant_id = v.tenant_id AND t.key = v.template_key AND t.archived_at IS NULL
			WHERE v.tenant_id = $1 AND v.template_key = $2 AND v.version = $3
		), prev AS (
			SELECT a.version FROM communication.template_active_versions a JOIN v USING (tenant_id, template_key, locale)
		), up AS (
			INSERT INTO communication.template_active_versions (tenant_id, template_key, locale, version)
			SELECT tenant_id, template_key, locale, version FROM v
			ON CONFLICT (tenant_id, template_key, locale) DO UPDATE SET version = excluded.version, activated_at = now()
			RETURNING version
		), bump AS (
			UPDATE communication.templates t SET revision = revision + 1, updated_at = now()
			FROM v WHERE t.tenant_id = v.tenant_id AND t.key = v.template_key
			RETURNING t.revision
		)
		SELECT v.version, v.locale, v.subject, v.body_text, v.body_html, true, v.created_at, coalesce((SELECT version FROM prev), 0), bump.revision
		FROM v, up, bump`, tenantID, key, n).Scan(&v.Version, &v.Locale, &v.Subject, &v.Text, &v.HTML, &v.Active, &v.CreatedAt, &a.Replaced, &a.Revision)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Activation{}, ErrNotFound
	}
	if err != nil {
		return domain.Activation{}, fmt.Errorf("activate version %d of template %s: %w", n, key, err)
	}
	return a, nil
}

// ListActiveTemplateVersions returns the version each locale of an unarchived template sends, or
// ErrNotFound.
func (s *Store) ListActiveTemplateVersions(ctx context.Context, tenantID, key string) (domain.Template, []domain.TemplateVersion, error) {
	t, err := scanTemplate(s.pool.QueryRow(ctx,
		`SELECT `+templateCols+` FROM communication.templates t WHERE tenant_id = $1 AND key = $2 AND archived_at IS NULL`, tenantID, key))
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			err = fmt.Errorf("get template %s: %w", key, err)
		}
		return domain.Template{}, nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+versionCols+` FROM communication.template_versions v
		JOIN communication.template_active_versions a USING (tenant_id, template_key, version)
		WHERE v.tenant_id = $1 AND v.template_key = $2`, tenantID, key)
	if err != nil {
		return domain.Template{}, nil, fmt.Errorf("active versions of template %s: %w", key, err)
	}
	vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.TemplateVersion, error) { return scanVersion(r) })
	if err != nil {
		return domain.Template{}, nil, fmt.Errorf("active versions of template %s: %w", key, err)
	}
	return t, vs, nil
}
