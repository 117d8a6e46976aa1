package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/logicspike/comms/pkg/message"
)

// Template is a tenant's template as the API shows it.
type Template struct {
	Key           string           `json:"key"`
	Name          string           `json:"name"`
	Channel       message.Channel  `json:"channel"`
	Category      message.Category `json:"category"`
	DefaultLocale string           `json:"default_locale"`
	Variables     json.RawMessage  `json:"variables"` // JSON Schema of the data object
	// ActiveVersions maps each locale to the version it sends.
	ActiveVersions map[string]int `json:"active_versions"`
	Archived       bool           `json:"archived"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
	// Revision counts the changes that alter what sends render (edits, activations, archiving):
	// caches compare it to know an entry is current.
	Revision int64 `json:"-"`
}

// TemplateVersion is one immutable version of a template, in one locale.
type TemplateVersion struct {
	Version   int       `json:"version"`
	Locale    string    `json:"locale"`
	Subject   string    `json:"subject,omitempty"`
	Text      string    `json:"text,omitempty"`
	HTML      string    `json:"html,omitempty"`
	Active    bool      `json:"active"`
	CreatedAt time.Time `json:"created_at"`
}

// ErrKeyTaken is returned when the tenant already has a template with that key.
var ErrKeyTaken = errors.New("a template with that key exists")

const templateCols = `key, name, channel, category, default_locale, variables, archived_at IS NOT NULL, created_at, updated_at, revision,
	coalesce((SELECT jsonb_object_agg(a.locale, a.version) FROM communication.template_active_versions a
	          WHERE a.tenant_id = t.tenant_id AND a.template_key = t.key), '{}')`

func scanTemplate(row pgx.Row) (Template, error) {
	var t Template
	err := row.Scan(&t.Key, &t.Name, &t.Channel, &t.Category, &t.DefaultLocale, &t.Variables, &t.Archived, &t.CreatedAt, &t.UpdatedAt, &t.Revision, &t.ActiveVersions)
	if errors.Is(err, pgx.ErrNoRows) {
		return Template{}, ErrNotFound
	}
	return t, err
}

// CreateTemplate stores t for tenantID, or returns ErrKeyTaken.
func (s *Store) CreateTemplate(ctx context.Context, tenantID string, t Template) (Template, error) {
	out, err := scanTemplate(s.pool.QueryRow(ctx, `
		INSERT INTO communication.templates AS t (tenant_id, key, name, channel, category, default_locale, variables)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		RETURNING `+templateCols, tenantID, t.Key, t.Name, t.Channel, t.Category, t.DefaultLocale, t.Variables))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return Template{}, ErrKeyTaken
	}
	if err != nil {
		return Template{}, fmt.Errorf("create template %s: %w", t.Key, err)
	}
	return out, nil
}

// GetTemplate returns tenantID's template key (archived ones too), or ErrNotFound.
func (s *Store) GetTemplate(ctx context.Context, tenantID, key string) (Template, error) {
	t, err := scanTemplate(s.pool.QueryRow(ctx,
		`SELECT `+templateCols+` FROM communication.templates t WHERE tenant_id = $1 AND key = $2`, tenantID, key))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Template{}, fmt.Errorf("get template %s: %w", key, err)
	}
	return t, err
}

// ListTemplates returns tenantID's templates by key, after the cursor (a key), with the next
// page's cursor ("" on the last page).
func (s *Store) ListTemplates(ctx context.Context, tenantID, after string, archived bool, limit int) ([]Template, string, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+templateCols+` FROM communication.templates t
		WHERE tenant_id = $1 AND key > $2 AND (archived_at IS NULL OR $3) ORDER BY key LIMIT $4`, tenantID, after, archived, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list templates: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Template, error) { return scanTemplate(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list templates: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].Key
	}
	return out, next, nil
}

// TemplatePatch changes a template; nil fields stay as they are.
type TemplatePatch struct {
	Name          *string           `json:"name,omitempty"`
	Category      *message.Category `json:"category,omitempty"`
	DefaultLocale *string           `json:"default_locale,omitempty"`
	Variables     json.RawMessage   `json:"variables,omitempty"`
}

// UpdateTemplate applies p to an unarchived template, or returns ErrNotFound.
func (s *Store) UpdateTemplate(ctx context.Context, tenantID, key string, p TemplatePatch) (Template, error) {
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
		return Template{}, fmt.Errorf("update template %s: %w", key, err)
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
