package testenv

import (
	"context"

	"github.com/logicspike/comms/internal/store"
)

// Record stores msgs as the intake would have accepted them: each queued now (or scheduled, with
// a SendAt), counted as one accepted unit. Tests of what follows intake start from it; the
// intake's own rules are tested in internal/intake.
func Record(ctx context.Context, st *store.Store, msgs ...store.NewMessage) ([]store.Inserted, error) {
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
