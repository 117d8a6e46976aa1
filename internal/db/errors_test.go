package db_test

import (
	"context"
	"testing"

	"github.com/logicspike/comms/internal/db"
)

// A row no partition holds is the partitions' fault, not the row's: callers answer 503 and retry
// it, where a value PostgreSQL refuses (a CHECK constraint, a NOT NULL) fails only its request.
func TestARowNoPartitionHoldsIsNotTheRowsFault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyPool(t)
	if _, err := pool.Exec(ctx, `
		CREATE TABLE h (n int NOT NULL CHECK (n > 0), at timestamptz NOT NULL) PARTITION BY RANGE (at);
		CREATE TABLE h_p20260105 PARTITION OF h FOR VALUES FROM ('2026-01-05') TO ('2026-01-12')`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		insert            string
		noPartition, rows bool
	}{
		{`INSERT INTO h VALUES (1, '2026-01-20')`, true, false},
		{`INSERT INTO h VALUES (0, '2026-01-06')`, false, true},
		{`INSERT INTO h VALUES (NULL, '2026-01-06')`, false, true},
	} {
		_, err := pool.Exec(ctx, c.insert)
		if err == nil {
			t.Fatalf("%s: no error", c.insert)
		}
		if got := db.NoPartition(err); got != c.noPartition {
			t.Errorf("%s: NoPartition %v, want %v (%v)", c.insert, got, c.noPartition, err)
		}
		if got := db.RowError(err); got != c.rows {
			t.Errorf("%s: RowError %v, want %v (%v)", c.insert, got, c.rows, err)
		}
	}
}
