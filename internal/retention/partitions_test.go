package retention_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/retention"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/message"
)

// The partition loop makes the weeks ahead and drops a week once every tenant's retention passed
// it; the purger leaves the messages of the tenants with the longest retention to it and deletes
// the others' row by row.
func TestExpiredWeeksGoWithThePartitionLoop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := fixture{t, store.New(testenv.DB(t))}
	day := int64(86400)
	longest := f.tenant(30 * day) // the default history retention: 90 days
	shorter := f.tenant(30 * day)
	sixty := 60 * day
	if _, err := f.st.UpdateTenant(ctx, shorter, domain.TenantPatch{HistoryRetentionSeconds: &sixty}); err != nil {
		t.Fatal(err)
	}
	expired := f.message(longest, 100*24*time.Hour, message.Delivered)
	theirs := f.message(shorter, 70*24*time.Hour, message.Delivered)
	young := f.message(longest, time.Hour, message.Delivered)

	// The purger deletes the shorter retention's message, and leaves the longest's to the loop.
	if _, err := retention.New(retention.Config{}, f.st, slog.New(slog.NewTextHandler(io.Discard, nil))).Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.GetMessage(ctx, shorter, theirs); err != store.ErrNotFound {
		t.Errorf("the shorter retention's message past it: %v, want deleted by the purger", err)
	}
	if _, err := f.st.GetMessage(ctx, longest, expired); err != nil {
		t.Errorf("the longest retention's message: %v, want it left to the partition loop", err)
	}

	loop := retention.NewPartitions(retention.PartitionConfig{Ahead: 21}, f.st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	drops := weekDrops(t)
	dropped, err := loop.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) == 0 {
		t.Fatal("the loop dropped no week")
	}
	// Each week's drop is timed (other tests' passes may add theirs meanwhile).
	if n := weekDrops(t) - drops; n < uint64(len(dropped)) {
		t.Errorf("comms_history_week_drop_seconds counted %d drops of the %d weeks dropped", n, len(dropped))
	}
	if _, err := f.st.GetMessage(ctx, longest, expired); err != store.ErrNotFound {
		t.Errorf("the message 100 days old: %v, want gone with its week", err)
	}
	if _, err := f.st.GetMessage(ctx, longest, young); err != nil {
		t.Errorf("the young message: %v", err)
	}
	parts, err := f.st.ListPartitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ahead := time.Now().AddDate(0, 0, 21)
	var covered bool
	for _, p := range parts {
		if p.Table == "message_logs" && !p.From.After(ahead) && p.To.After(ahead) {
			covered = true
		}
	}
	if !covered {
		t.Errorf("no partition holds %s, 21 days ahead", ahead.Format(time.DateOnly))
	}
}

// Each pass reports how far the partitions reach (the CommsHistoryPartitionsRunningOut alert reads
// it), also while another worker holds the lock and makes them. Not parallel: the gauge is the
// process's, and the other tests' passes set it too.
func TestThePartitionLoopReportsHowFarThePartitionsReach(t *testing.T) {
	ctx := context.Background()
	pool := testenv.DB(t)
	loop := retention.NewPartitions(retention.PartitionConfig{Ahead: 60}, store.New(pool), slog.New(slog.NewTextHandler(io.Discard, nil)))
	weekEnd := func(at time.Time) float64 {
		at = at.UTC().Truncate(24 * time.Hour)
		return float64(at.AddDate(0, 0, 7-(int(at.Weekday())+6)%7).Unix())
	}
	other, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	const partitionLock = 0x7061727469746e73 // store's: another worker making partitions holds it
	metrics.HistoryPartitionsUntil.Set(0)
	if _, err := other.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(partitionLock)); err != nil {
		t.Fatal(err)
	}
	if _, err := loop.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	// The migrations made the weeks to 14 days ahead; the lock kept this pass from making more.
	if got, want := testutil.ToFloat64(metrics.HistoryPartitionsUntil), weekEnd(time.Now().AddDate(0, 0, 14)); got != want {
		t.Errorf("while another holds the lock: %s, want %s", time.Unix(int64(got), 0).UTC(), time.Unix(int64(want), 0).UTC())
	}
	if _, err := other.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(partitionLock)); err != nil {
		t.Fatal(err)
	}
	if _, err := loop.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := testutil.ToFloat64(metrics.HistoryPartitionsUntil), weekEnd(time.Now().AddDate(0, 0, 60)); got != want {
		t.Errorf("after a pass making 60 days ahead: %s, want %s", time.Unix(int64(got), 0).UTC(), time.Unix(int64(want), 0).UTC())
	}
}

// weekDrops is how many week drops comms_history_week_drop_seconds has counted.
func weekDrops(t *testing.T) uint64 {
	t.Helper()
	var m dto.Metric
	if err := metrics.HistoryWeekDrop.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}
