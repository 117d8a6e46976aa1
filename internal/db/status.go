package db

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/logicspike/comms/migrations"
)

// ErrNotMigrated means the database lacks migrations this binary needs.
var ErrNotMigrated = errors.New("database not migrated")

// MigrationState is one migration as `commsctl migrate status` shows it.
type MigrationState struct {
	Version   int        `json:"version"`
	Name      string     `json:"name"`
	AppliedAt *time.Time `json:"applied_at"` // nil: not applied
	// Checksum: "ok"; "changed" (the file differs from the one applied; migrate refuses to run);
	// "unrecorded" (applied before checksums were kept; the next migrate records it); "" when
	// not applied; "unknown" for a migration the database has and this binary does not (a newer
	// release's).
	Checksum string `json:"checksum"`
}

// Status lists every migration of this binary, applied or not, and any the database has beyond.
func Status(ctx context.Context, pool *pgxpool.Pool) ([]MigrationState, error) {
	files, err := load(migrations.FS)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	ledger, err := readLedger(ctx, pool, false)
	if err != nil {
		return nil, err
	}
	var out []MigrationState
	for _, f := range files {
		st := MigrationState{Version: f.version, Name: f.name}
		if row, ok := ledger[f.version]; ok {
			at := row.appliedAt
			st.AppliedAt = &at
			switch row.checksum {
			case f.checksum:
				st.Checksum = "ok"
			case "":
				st.Checksum = "unrecorded"
			default:
				st.Checksum = "changed"
			}
			delete(ledger, f.version)
		}
		out = append(out, st)
	}
	for v, row := range ledger {
		at := row.appliedAt
		out = append(out, MigrationState{Version: v, Name: row.name, AppliedAt: &at, Checksum: "unknown"})
	}
	return out, nil
}

// CheckMigrated returns ErrNotMigrated, naming what is missing and the command to run, when the
// database lacks any migration embedded in this binary. A database ahead of the binary (a
// rolling upgrade, with the newer release's migrations applied first) is fine.
func CheckMigrated(ctx context.Context, pool *pgxpool.Pool) error {
	states, err := Status(ctx, pool)
	if err != nil {
		return err
	}
	var missing []string
	for _, s := range states {
		if s.AppliedAt == nil {
			missing = append(missing, s.Name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d of this release's migrations are not applied (%s): run commsctl migrate", ErrNotMigrated, len(missing), strings.Join(missing, ", "))
}
