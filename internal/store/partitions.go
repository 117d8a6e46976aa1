package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// madeAt is the condition that finds the row of the message whose id is idExpr by its full primary
// key, in its own week's partition (migration 0027): col, the row's created_at (an event's
// message_at), is the instant the id carries. With it a lookup by id is one index probe in one
// partition.
func madeAt(col, idExpr string) string {
	return col + " = communication.id_time(" + idExpr + ")"
}

// Partition is one week of a partitioned history table.
type Partition struct {
	Table, Name string
	From, To    time.Time
	Bytes       int64 // rows, indexes and TOAST
	Rows        int64 // the planner's estimate
}

// partitionLock is the advisory lock under which one process at a time creates or drops
// partitions, so that any number of workers run the maintenance loop safely.
const partitionLock int64 = 0x7061727469746e73 // "partitns"

// partitionFrom and partitionTo are the bounds of the partition c, read from its definition.
const (
	partitionFrom = `substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''([^'']+)''\)')::timestamptz`
	partitionTo   = `substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)')::timestamptz`
)

// partitionsOf lists the partitions of every partitioned history table, oldest first.
const partitionsOf = `
	SELECT p.name, c.relname, ` + partitionFrom + `, ` + partitionTo + `,
	       pg_total_relation_size(c.oid), greatest(c.reltuples, 0)::bigint
	FROM communication.partitioned_tables p
	JOIN pg_inherits i ON i.inhparent = ('communication.' || p.name)::regclass
	JOIN pg_class c ON c.oid = i.inhrelid
	ORDER BY p.name, c.relname`

// ListPartitions returns every partition of the partitioned history tables, by table and week.
func (s *Store) ListPartitions(ctx context.Context) ([]Partition, error) {
	rows, err := s.pool.Query(ctx, partitionsOf)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Partition, error) {
		var p Partition
		err := r.Scan(&p.Table, &p.Name, &p.From, &p.To, &p.Bytes, &p.Rows)
		p.From, p.To = p.From.UTC(), p.To.UTC()
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	return out, nil
}

// PartitionedUntil is the instant up to which every partitioned history table has its weeks
// without a gap from the week holding now; a table without that week gives now. The intake
// refuses a message past it (no partition holds it), so the partition loop keeps it weeks ahead
// and the CommsHistoryPartitionsRunningOut alert watches it.
func (s *Store) PartitionedUntil(ctx context.Context, now time.Time) (time.Time, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT p.name, `+partitionFrom+`, `+partitionTo+`
		FROM communication.partitioned_tables p
		LEFT JOIN pg_inherits i ON i.inhparent = ('communication.' || p.name)::regclass
		LEFT JOIN pg_class c ON c.oid = i.inhrelid
		ORDER BY p.name, c.relname`)
	if err != nil {
		return time.Time{}, fmt.Errorf("partitioned until: %w", err)
	}
	until := map[string]time.Time{}
	var table string
	var from, to *time.Time
	_, err = pgx.ForEachRow(rows, []any{&table, &from, &to}, func() error {
		u, seen := until[table]
		if !seen {
			u = now
		}
		// Oldest first, so the weeks from now's on extend it one after another.
		if from != nil && to != nil && !from.After(u) && to.After(u) {
			u = *to
		}
		until[table] = u
		return nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("partitioned until: %w", err)
	}
	if len(until) == 0 {
		return now, nil
	}
	return slices.MinFunc(slices.Collect(maps.Values(until)), time.Time.Compare).UTC(), nil
}

// ErrPartitionsBusy is returned when another process holds the partition lock.
var ErrPartitionsBusy = errors.New("another process is maintaining the partitions")

// CreatePartitions creates, for every partitioned history table, the missing week partitions
// that hold the UTC days from through to, and returns how many it created.
func (s *Store) CreatePartitions(ctx context.Context, from, to time.Time) (int, error) {
	var n int
	err := s.withPartitionLock(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
			SELECT coalesce(sum(communication.create_partitions(name, $1::date, $2::date)), 0)
			FROM communication.partitioned_tables`, from.UTC().Format(time.DateOnly), to.UTC().Format(time.DateOnly)).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("create partitions: %w", err)
	}
	return n, nil
}

// HistoryHorizon is the instant before which every tenant's history has expired: now less the
// longest history retention of any tenant. A week wholly before it may be dropped.
func (s *Store) HistoryHorizon(ctx context.Context) (time.Time, error) {
	var at time.Time
	err := s.pool.QueryRow(ctx, `
		SELECT now() - coalesce((SELECT max(history_retention) FROM communication.tenants), interval '90 days')
		                       `).Scan(&at)
	if err != nil {
		return time.Time{}, fmt.Errorf("history horizon: %w", err)
	}
	return at, nil
}

// DroppedWeek is a week whose partitions DropExpiredPartitions dropped: its messages' and events'
// (unless one of them is still to be sent), those of what refers to messages (callbacks, provider
// references, webhook deliveries and their attempts), or all. The counts are the planner's
// estimates.
type DroppedWeek struct {
	From                               time.Time // its Monday
	Messages, Events                   int64
	Callbacks, ProviderReferences      int64
	WebhookDeliveries, WebhookAttempts int64
	Took                               time.Duration
}

// referring are the partitioned tables whose weeks refer only to messages made before the week
// ended (a callback, a reference or a webhook delivery comes after its message), with where
// DropExpiredPartitions counts a dropped week's rows of each.
var referring = map[string]func(*DroppedWeek) *int64{
	"callbacks":             func(d *DroppedWeek) *int64 { return &d.Callbacks },
	"provider_message_refs": func(d *DroppedWeek) *int64 { return &d.ProviderReferences },
	"webhook_deliveries":    func(d *DroppedWeek) *int64 { return &d.WebhookDeliveries },
	"webhook_attempts":      func(d *DroppedWeek) *int64 { return &d.WebhookAttempts },
}

// DropExpiredPartitions drops, a week at a time and oldest first, the week partitions of messages
// and their events that end at or before before (HistoryHorizon: every tenant's history in them
// has expired). A week holding a message still to be sent (scheduled far ahead, or waiting for a
// retry) is kept until it is final. The rows that refer to the week's messages from unpartitioned
// tables (dead letters, price checks) are deleted with it. The weeks of callbacks, provider
// references and webhook deliveries (with their attempts) that end at or before before go too:
// they refer only to messages made before their week ended, whose history has expired (even where
// a week of messages stays for one still to be sent: a message gets references, callbacks and
// events to deliver once it is sent).
func (s *Store) DropExpiredPartitions(ctx context.Context, before time.Time) ([]DroppedWeek, error) {
	if err := s.dropDetached(ctx); errors.Is(err, ErrPartitionsBusy) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	parts, err := s.ListPartitions(ctx)
	if err != nil {
		return nil, err
	}
	var out []DroppedWeek
	for _, p := range parts {
		if p.Table != "message_logs" || p.To.After(before) {
			continue
		}
		d, dropped, err := s.dropWeek(ctx, p.From)
		if errors.Is(err, ErrPartitionsBusy) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if dropped {
			out = append(out, d)
		}
	}
	for _, p := range parts {
		count, ok := referring[p.Table]
		if !ok || p.To.After(before) {
			continue
		}
		start := time.Now()
		n, err := s.dropPartition(ctx, p)
		if errors.Is(err, ErrPartitionsBusy) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		i := slices.IndexFunc(out, func(d DroppedWeek) bool { return d.From.Equal(p.From) })
		if i < 0 {
			out, i = append(out, DroppedWeek{From: p.From}), len(out)
		}
		out[i].Took += time.Since(start)
		*count(&out[i]) = n
	}
	slices.SortFunc(out, func(a, b DroppedWeek) int { return a.From.Compare(b.From) })
	return out, nil
}

// dropPartition drops a week partition of a referring table (detachAndDrop) and returns how
// many rows it held (estimated).
func (s *Store) dropPartition(ctx context.Context, p Partition) (int64, error) {
	n, err := s.detachAndDrop(ctx, p.Table, p.Name)
	if err != nil && !errors.Is(err, ErrPartitionsBusy) {
		return 0, fmt.Errorf("drop %s: %w", p.Name, err)
	}
	return n[0], err
}

// detachAndDrop takes the week partitions named (each of its table, given as table, partition,
// table, partition…) out of their tables with DETACH PARTITION CONCURRENTLY and then drops them,
// under the partition lock, and returns how many rows each held (the planner's estimate, as
// commsctl partitions list shows it: counting a week's rows read it whole). A concurrent detach takes no lock
// that writers wait for: it waits, without blocking them, for the transactions that may be using
// the week, where a DROP of a partition would queue every statement on its table behind its own
// wait (intake's p99 rose sevenfold during a drop under load). A detach left pending by a crash is
// finished (FINALIZE) on the next pass, and a week detached but not dropped is dropped by
// dropDetached.
func (s *Store) detachAndDrop(ctx context.Context, tablesAndParts ...string) ([]int64, error) {
	counts := make([]int64, len(tablesAndParts)/2)
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return counts, err
	}
	defer c.Release()
	var mine bool
	if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, partitionLock).Scan(&mine); err != nil {
		return counts, err
	}
	if !mine {
		return counts, ErrPartitionsBusy
	}
	defer func() {
		if _, err := c.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, partitionLock); err != nil {
			c.Conn().Close(context.Background()) //nolint:errcheck // closing the session releases its lock
		}
	}()
	var names []string
	for i := 0; i < len(tablesAndParts); i += 2 {
		table := pgx.Identifier{"communication", tablesAndParts[i]}.Sanitize()
		part := pgx.Identifier{"communication", tablesAndParts[i+1]}.Sanitize()
		// pending is NULL for a table no longer a partition (detached by a pass cut off before its
		// drop); no row, for one already gone.
		var pending *bool
		err := c.QueryRow(ctx, `SELECT greatest(c.reltuples, 0)::bigint, i.inhdetachpending FROM pg_class c
			LEFT JOIN pg_inherits i ON i.inhrelid = c.oid WHERE c.oid = to_regclass($1)`, part).Scan(&counts[i/2], &pending)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return counts, fmt.Errorf("look up %s: %w", part, err)
		}
		if pending != nil {
			how := "CONCURRENTLY"
			if *pending {
				how = "FINALIZE"
			}
			if _, err := c.Exec(ctx, `ALTER TABLE `+table+` DETACH PARTITION `+part+` `+how); err != nil {
				return counts, err
			}
		}
		names = append(names, part)
	}
	if len(names) > 0 {
		_, err = c.Exec(ctx, `DROP TABLE `+strings.Join(names, ", "))
	}
	return counts, err
}

// dropDetached drops the week tables of the partitioned tables that are no longer partitions: a
// detachAndDrop interrupted between its detach and its drop leaves one.
func (s *Store) dropDetached(ctx context.Context) error {
	return s.withPartitionLock(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			JOIN communication.partitioned_tables p ON c.relname ~ ('^' || p.name || '_p\d{8}$')
			WHERE n.nspname = 'communication' AND c.relkind = 'r' AND NOT c.relispartition`)
		left, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("find detached weeks: %w", err)
		}
		for _, name := range left {
			if _, err := tx.Exec(ctx, `DROP TABLE `+pgx.Identifier{"communication", name}.Sanitize()); err != nil {
				return fmt.Errorf("drop the detached %s: %w", name, err)
			}
		}
		return nil
	})
}

// dropWeek drops the message_logs and message_events partitions of the week from monday, unless one of its
// messages is not final. The rows of unpartitioned tables that refer to its messages go first;
// the partitions are then detached without holding up intake and dropped (detachAndDrop). Its
// counts are the planner's estimates, as commsctl partitions list shows them.
func (s *Store) dropWeek(ctx context.Context, monday time.Time) (DroppedWeek, bool, error) {
	start := time.Now()
	suffix := "_p" + monday.UTC().Format("20060102")
	logs := pgx.Identifier{"communication", "message_logs" + suffix}.Sanitize()
	d := DroppedWeek{From: monday}
	fail := func(err error) (DroppedWeek, bool, error) {
		return d, false, fmt.Errorf("drop the partitions of the week of %s: %w", monday.Format(time.DateOnly), err)
	}
	// Every message still to be sent is in the dispatch outbox or the schedule: both are small.
	var live bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (
		SELECT 1 FROM (SELECT tenant_id, message_id FROM communication.dispatch_queue
		               UNION ALL SELECT tenant_id, message_id FROM communication.schedule) q
		JOIN `+logs+` l ON l.tenant_id = q.tenant_id AND l.id = q.message_id)`).Scan(&live); err != nil || live {
		if err != nil {
			return fail(err)
		}
		return d, false, nil
	}
	// The referring tables are small beside a week (a dead letter for each message that failed
	// for good, a price check for each waiting for its price, a deferred purge for each being
	// sent when its content expired), so each is read whole and its rows looked up in the week's
	// primary key: walking the week's messages instead took 2 s for a week of a million.
	for _, table := range []string{"dead_letters", "price_checks", "content_purge_deferred"} {
		if _, err := s.pool.Exec(ctx, `DELETE FROM communication.`+table+` r
			WHERE EXISTS (SELECT 1 FROM `+logs+` l WHERE l.tenant_id = r.tenant_id AND l.id = r.message_id)`); err != nil {
			return fail(fmt.Errorf("delete the %s of its messages: %w", table, err))
		}
	}
	n, err := s.detachAndDrop(ctx, "message_events", "message_events"+suffix, "message_logs", "message_logs"+suffix)
	if err != nil {
		return fail(err)
	}
	d.Events, d.Messages = n[0], n[1]
	d.Took = time.Since(start)
	return d, true, nil
}

// withPartitionLock runs fn in a transaction that holds the partition lock, or returns
// ErrPartitionsBusy at once.
func (s *Store) withPartitionLock(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var mine bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, partitionLock).Scan(&mine); err != nil {
			return err
		}
		if !mine {
			return ErrPartitionsBusy
		}
		return fn(tx)
	})
}
