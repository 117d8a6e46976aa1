package db

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// A migration adds an index to a partitioned table without blocking writers by declaring it
// ON ONLY the parent (instant; the index is invalid until every partition has its own).
// CompletePartitionIndexes then builds each partition's with CREATE INDEX CONCURRENTLY and
// attaches it; once the last is attached, PostgreSQL marks the parent's valid. Partitions made
// later get the index when they are created.

// CompletePartitionIndexes (run by Migrate after the files) builds and attaches the missing partition indexes of every invalid
// index on a partitioned table of the communication schema, and returns how many it built. A
// build that failed half-way (an invalid index of the same name) is dropped and redone, so it
// is safe to run again after any failure. conn must not be in a transaction.
func CompletePartitionIndexes(ctx context.Context, conn *pgx.Conn) (int, error) {
	type missing struct{ index, def, partition string }
	rows, _ := conn.Query(ctx, `
		SELECT pc.relname, pg_get_indexdef(pi.indexrelid), part.relname
		FROM pg_index pi
		JOIN pg_class pc ON pc.oid = pi.indexrelid
		JOIN pg_class parent ON parent.oid = pi.indrelid AND parent.relkind = 'p'
		JOIN pg_namespace n ON n.oid = parent.relnamespace AND n.nspname = 'communication'
		JOIN pg_inherits inh ON inh.inhparent = parent.oid
		JOIN pg_class part ON part.oid = inh.inhrelid
		WHERE NOT pi.indisvalid
		  AND NOT EXISTS (SELECT 1 FROM pg_inherits ii JOIN pg_index ci ON ci.indexrelid = ii.inhrelid
		                  WHERE ii.inhparent = pi.indexrelid AND ci.indrelid = part.oid)
		ORDER BY 1, 3`)
	todo, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (missing, error) {
		var m missing
		return m, r.Scan(&m.index, &m.def, &m.partition)
	})
	if err != nil {
		return 0, fmt.Errorf("list partition indexes to build: %w", err)
	}
	// A schema made by other files than migrations/ (this package's tests) lacks the function,
	// and has no statistics targets to pass on.
	var inherit bool
	if err := conn.QueryRow(ctx, `SELECT to_regprocedure('communication.inherit_statistics_targets(regclass)') IS NOT NULL`).Scan(&inherit); err != nil {
		return 0, fmt.Errorf("look for inherit_statistics_targets: %w", err)
	}
	for i, m := range todo {
		// pg_get_indexdef writes "CREATE [UNIQUE ]INDEX <name> ON ONLY <table> USING ...".
		head, rest, ok := strings.Cut(m.def, " ON ONLY ")
		_, using, ok2 := strings.Cut(rest, " USING ")
		unique := strings.HasPrefix(head, "CREATE UNIQUE ")
		if !ok || !ok2 || !strings.HasPrefix(head, "CREATE ") {
			return i, fmt.Errorf("index %s: unexpected definition %q", m.index, m.def)
		}
		create := "CREATE INDEX CONCURRENTLY"
		if unique {
			create = "CREATE UNIQUE INDEX CONCURRENTLY"
		}
		bare := partitionIndexName(m.partition, m.index)
		name := pgx.Identifier{"communication", bare}.Sanitize()
		steps := []string{
			`DROP INDEX CONCURRENTLY IF EXISTS ` + name,
			// an index is made in its table's schema: its name takes none
			fmt.Sprintf(`%s %s ON %s USING %s`, create, pgx.Identifier{bare}.Sanitize(), pgx.Identifier{"communication", m.partition}.Sanitize(), using),
			fmt.Sprintf(`ALTER INDEX %s ATTACH PARTITION %s`, pgx.Identifier{"communication", m.index}.Sanitize(), name),
		}
		for _, sql := range steps {
			if _, err := conn.Exec(ctx, sql); err != nil {
				return i, fmt.Errorf("index %s on %s: %w", m.index, m.partition, err)
			}
		}
		// The parent index's statistics targets (migration 0047: none sampled of an address).
		if inherit {
			if _, err := conn.Exec(ctx, `SELECT communication.inherit_statistics_targets($1::text::regclass)`,
				pgx.Identifier{"communication", m.partition}.Sanitize()); err != nil {
				return i, fmt.Errorf("index %s on %s: statistics targets: %w", m.index, m.partition, err)
			}
		}
	}
	return len(todo), nil
}

// partitionIndexName is the name of parentIndex's index on partition, in partition's schema:
// the partition's name and what the parent index's name adds to its table's (message_logs_p20261130
// and message_logs_recipient_id make message_logs_p20261130_recipient_id), within PostgreSQL's
// 63 bytes.
func partitionIndexName(partition, parentIndex string) string {
	suffix := parentIndex
	if i := strings.LastIndex(partition, "_p"); i > 0 {
		suffix = strings.TrimPrefix(suffix, partition[:i]+"_")
	}
	name := partition + "_" + suffix
	if len(name) > 63 {
		h := sha256.Sum256([]byte(name))
		name = name[:54] + "_" + hex.EncodeToString(h[:4])
	}
	return name
}
