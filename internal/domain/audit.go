package domain

import (
	"encoding/json"
	"time"
)

// AuditEntry is one audit log row (docs/audit.md).
type AuditEntry struct {
	ID         string
	At         time.Time
	TenantID   string
	Actor      AuditActor
	RequestID  string
	Action     string
	TargetType string
	TargetID   string
	Before     json.RawMessage
	After      json.RawMessage
}

// AuditActor is who made a change: an API key (its kind and id) or an OS user through commsctl.
type AuditActor struct {
	Kind string
	ID   string
}

// AuditFilter narrows an audit listing; empty fields match everything.
type AuditFilter struct {
	TenantID, Action, Actor string
	From, To                time.Time
}
