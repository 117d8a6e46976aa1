// Package migrations holds the versioned SQL migrations, embedded so every binary can apply them.
// Files are named NNNN_description.sql (numbered without gaps) and applied in order by tern, each in
// its own transaction unless it starts with "---- tern: disable-tx ----" (internal/db/migrate.go).
// An applied file never changes: its checksum is kept, and a change goes in a new file.
package migrations

import "embed"

// FS holds every *.sql migration.
//
//go:embed *.sql
var FS embed.FS
