package api

import (
	"encoding/json"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// Template is a template as /v1/templates shows it.
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
}

// TemplateView is t as the API shows it.
func TemplateView(t domain.Template) Template {
	return Template{Key: t.Key, Name: t.Name, Channel: t.Channel, Category: t.Category, DefaultLocale: t.DefaultLocale,
		Variables: t.Variables, ActiveVersions: t.ActiveVersions, Archived: t.Archived, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

// TemplateVersion is one version as /v1/templates/{key}/versions shows it.
type TemplateVersion struct {
	Version   int       `json:"version"`
	Locale    string    `json:"locale"`
	Subject   string    `json:"subject,omitempty"`
	Text      string    `json:"text,omitempty"`
	HTML      string    `json:"html,omitempty"`
	Active    bool      `json:"active"`
	CreatedAt time.Time `json:"created_at"`
}

// TemplateVersionView is v as the API shows it.
func TemplateVersionView(v domain.TemplateVersion) TemplateVersion {
	return TemplateVersion{Version: v.Version, Locale: v.Locale, Subject: v.Subject, Text: v.Text, HTML: v.HTML, Active: v.Active, CreatedAt: v.CreatedAt}
}

// TemplatePatch is the body of PATCH /v1/templates/{key}; absent fields are left alone.
type TemplatePatch struct {
	Name          *string           `json:"name,omitempty"`
	Category      *message.Category `json:"category,omitempty"`
	DefaultLocale *string           `json:"default_locale,omitempty"`
	Variables     json.RawMessage   `json:"variables,omitempty"`
}

func (p TemplatePatch) domain() domain.TemplatePatch {
	return domain.TemplatePatch{Name: p.Name, Category: p.Category, DefaultLocale: p.DefaultLocale, Variables: p.Variables}
}
