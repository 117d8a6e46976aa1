package testenv

import (
	"context"
	"errors"
	"time"

	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/ids"
)

// Record stores msgs as the intake would have accepted them: each queued now (or scheduled, with
// a SendAt), counted as one accepted unit. Tests of what follows intake start from it; the
// intake's own rules are tested in internal/intake. A message made in the past (its id carries
// the time) gets its day's partition first, as a restore would.
func Record(ctx context.Context, st *store.Store, msgs ...store.NewMessage) ([]store.Inserted, error) {
	for _, m := range msgs {
		if at, ok := ids.SortableTime(m.ID, ids.Message); ok && at.Before(time.Now().Add(-time.Hour)) {
			if err := partitionDay(ctx, st, at); err != nil {
				return nil, err
			}
		}
	}
	return st.RecordMessages(ctx, func(tx *store.IntakeTx) error {
		for _, m := range msgs {
			tx.Record(m)
			tx.CountUsage(m.ID, 1)
			if m.SendAt != nil {
				tx.Schedule(m.ID)
			} else {
				tx.Enqueue(m.ID)
			}
		}
		return nil
	})
}

// partitionDay makes the day partitions of at, waiting while another process holds the lock.
func partitionDay(ctx context.Context, st *store.Store, at time.Time) error {
	for {
		_, err := st.CreatePartitions(ctx, at, at)
		if !errors.Is(err, store.ErrPartitionsBusy) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
