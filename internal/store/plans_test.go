package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

// The hot path's batch statements (insert, mark, claim, outcome) must stay index lookups as
// message_logs and a tenant's suppression list grow, whatever the tables' statistics say, and
// whichever plan PostgreSQL caches for them. A connection caches a statement's plan; a plan
// settled on while the table was nearly empty and never analysed (a fresh database, autovacuum
// behind or off) scanned the whole table on every claim for the life of the connection: 2,155
// scans reading 28.8 million rows in one 60 s isolation run (docs/benchmarks.md). The pool lets
// PostgreSQL cache generic plans for these statements (db.Open), so the test runs once as the pool
// is configured and once with every statement forced onto its generic plan (but the claim's: it
// asks for a plan of its own for each batch, store's replannedByKey).
func TestDispatchStatementsDoNotScanMessageLogsAsItGrows(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"", "force_generic_plan"} {
		t.Run("plan_cache_mode="+mode, func(t *testing.T) {
			t.Parallel()
			testStatementsStayLookups(t, mode)
		})
	}
}

func testStatementsStayLookups(t *testing.T, planCacheMode string) {
	ctx := context.Background()
	url := testenv.DatabaseURL(t)
	if planCacheMode != "" {
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		url += sep + "plan_cache_mode=" + planCacheMode
	}
	// One connection, so every statement below shares one plan cache, as a busy pool's do.
	pool, err := db.Open(ctx, url, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := store.New(pool)
	ten := tenant(t, s)

	var claimPages, outcomePages int64 // index pages of message_logs the claims and outcomes read, once counted
	counting := false
	cycle := func(n int) {
		t.Helper()
		msgs := make([]store.NewMessage, n)
		for i := range msgs {
			msgs[i] = store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: ten, Request: sms(fmt.Sprintf("+1415555%04d", i))}
		}
		ins, err := testenv.Record(ctx, s, msgs...)
		if err != nil {
			t.Fatal(err)
		}
		refs := make([]store.Ref, len(ins))
		for i, in := range ins {
			refs[i] = store.Ref{TenantID: ten, ID: in.ID}
		}
		if err := s.MarkPublished(ctx, refs); err != nil {
			t.Fatal(err)
		}
		var before scans
		if counting {
			before = tableScans(t, pool)
		}
		claimed, err := s.ClaimMessages(ctx, refs, time.Minute)
		if err != nil || len(claimed) != n {
			t.Fatalf("claimed %d of %d: %v", len(claimed), n, err)
		}
		if counting {
			claimPages += tableScans(t, pool).idxPages - before.idxPages
		}
		outs := make([]store.Outcome, len(claimed))
		for i, c := range claimed {
			outs[i] = store.Outcome{Ref: store.Ref{TenantID: ten, ID: c.ID}, Attempt: c.Attempt, Status: message.Sent, ProviderType: "sandbox", ProviderMessageID: "sb_" + c.ID}
		}
		if counting {
			before = tableScans(t, pool)
		}
		got, err := s.FinishAttempts(ctx, func(tx *store.OutcomeTx) error {
			for _, o := range outs {
				tx.Record(o)
				tx.Emit(o.Ref, "sent")
			}
			return nil
		})
		if err != nil || len(got) != n {
			t.Fatalf("finished %d of %d: %v", len(got), n, err)
		}
		if counting {
			outcomePages += tableScans(t, pool).idxPages - before.idxPages
		}
		if _, _, err := s.SweepLost(ctx, "", 500, time.Hour, func(context.Context, []store.Stranded) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// Enough small batches on a nearly empty table for PostgreSQL to settle on cached plans.
	for range 12 {
		cycle(2)
	}
	// The tables grow: unfinished messages, as behind a tenant whose provider is down, and the
	// tenant's suppression list.
	if _, err := pool.Exec(ctx, `INSERT INTO communication.suppressions (tenant_id, channel, recipient, reason)
		SELECT $1, 'sms', '+1999' || lpad(g::text, 7, '0'), 'manual' FROM generate_series(1, 20000) g`, ten); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		msgs := make([]store.NewMessage, 1000)
		for i := range msgs {
			msgs[i] = store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: ten, Request: sms("+14155550000")}
		}
		if _, err := testenv.Record(ctx, s, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	before := tableScans(t, pool)
	counting = true
	for range 5 {
		cycle(2)
	}
	after := tableScans(t, pool)
	if seq, rows := after.seq-before.seq, after.rows-before.rows; seq != 0 {
		t.Fatalf("5 rounds of 2 messages scanned message_logs %d times, reading %d rows (index scans: %d)", seq, rows, after.idx-before.idx)
	}
	// A claim probes each message's key: a few index pages a message (8 here). Its update, on a
	// generic plan cached while the week was nearly empty, read the batch's time range from an
	// index whose first columns it does not bound: the whole week's index for every claim, 1,663
	// pages for these 5 before replannedByKey.
	if claimPages > 10*20 {
		t.Fatalf("5 claims of 2 messages read %d index pages of message_logs, want a few a message", claimPages)
	}
	// The outcome keeps its cached plan. Its lookups, on a generic plan made while the week was
	// empty, found each message through the recipient-key index, reading the tenant's week in it
	// (540 pages for these 5), until migration 0043 made that index lead with the key. Its update
	// has the claim's shape, but the planner expects one row from its batch, so it probes.
	if outcomePages > 10*20 {
		t.Fatalf("5 outcomes of 2 messages read %d index pages of message_logs, want a few a message", outcomePages)
	}
	if seq, rows := after.supSeq-before.supSeq, after.supRows-before.supRows; seq != 0 {
		t.Fatalf("5 rounds of 2 messages scanned suppressions %d times, reading %d rows", seq, rows)
	}
	// The outbox's unpublished entries (20,000 here; a broker outage's or a failing provider's
	// retries in production) are the sweeper's to read, not every publish mark's.
	if read := after.unpublished - before.unpublished; read > 100 {
		t.Fatalf("5 rounds of 2 messages read %d entries of the unpublished outbox index", read)
	}
	// The claim and the outcome change no indexed column, so, given room on the page (fillfactor
	// 70), their updates are HOT: they write no index entries. An index on status or
	// lease_expires_at made all of them cold (migration 0008).
	if upd, hot := after.upd-before.upd, after.hot-before.hot; upd != 20 || hot < upd/2 {
		t.Fatalf("5 rounds of 2 messages updated message_logs %d times (want 20), %d of them HOT (want most)", upd, hot)
	}
}

type scans struct{ seq, rows, idx, idxPages, upd, hot, supSeq, supRows, unpublished int64 }

// tableScans reads message_logs' scan and update counters, suppressions' scans and the entries
// read from the unpublished outbox index, once this backend's counts are flushed: statistics
// reach pg_stat_user_tables when a backend goes idle, at most once a second unless forced.
func tableScans(t *testing.T, pool *pgxpool.Pool) scans {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `SELECT pg_stat_force_next_flush()`); err != nil {
		t.Fatal(err)
	}
	var s scans
	// message_logs' counters are its partitions' (migration 0027).
	err := pool.QueryRow(ctx, `SELECT coalesce(m.seq_scan, 0), coalesce(m.seq_tup_read, 0), coalesce(m.idx_scan, 0),
			(SELECT coalesce(sum(idx_blks_hit + idx_blks_read), 0)::bigint FROM pg_statio_user_indexes WHERE relid IN (
				SELECT inhrelid FROM pg_inherits WHERE inhparent = 'communication.message_logs'::regclass)),
			m.n_tup_upd, m.n_tup_hot_upd,
			coalesce(s.seq_scan, 0), coalesce(s.seq_tup_read, 0), coalesce(u.idx_tup_read, 0)
		FROM (SELECT sum(seq_scan)::bigint AS seq_scan, sum(seq_tup_read)::bigint AS seq_tup_read, sum(idx_scan)::bigint AS idx_scan,
		             sum(n_tup_upd)::bigint AS n_tup_upd, sum(n_tup_hot_upd)::bigint AS n_tup_hot_upd
		      FROM pg_stat_user_tables WHERE relid IN (
		          SELECT inhrelid FROM pg_inherits WHERE inhparent = 'communication.message_logs'::regclass)) m,
		     pg_stat_user_tables s, pg_stat_user_indexes u
		WHERE s.relid = 'communication.suppressions'::regclass
		  AND u.indexrelid = 'communication.dispatch_queue_unpublished'::regclass`).
		Scan(&s.seq, &s.rows, &s.idx, &s.idxPages, &s.upd, &s.hot, &s.supSeq, &s.supRows, &s.unpublished)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
