// Package migrations holds the versioned SQL migrations, embedded so every binary can apply them.
// Files are named NNNN_description.sql and applied in order, each in its own transaction.
package migrations

import "embed"

// FS holds every *.sql migration.
//
//go:embed *.sql
var FS embed.FS
