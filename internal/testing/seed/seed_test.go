package seed_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/seed"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

// TestSeededHistoryIsWhatTheServiceWouldHaveWritten: the seed's messages read back through the
// store as the service's own do (newest first, with their timelines), their ids carry their
// times, the hot tenant has its share, the rollups count them, and nothing was queued for
// publishing.
func TestSeededHistoryIsWhatTheServiceWouldHaveWritten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	now := time.Now()
	plan := seed.Plan{Messages: 3_000, Days: 3, Tenants: 5, HotShare: 0.5, Now: now, Seed: 1,
		Persons: []string{"+14155550901", "+14155550902"}, PersonMessages: 100}
	var calls int
	rep, err := seed.History(ctx, pool, plan, func(done, total int) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Messages != 3_000 || len(rep.Tenants) != 5 || calls != 1 || rep.Events < 3*rep.Messages {
		t.Fatalf("report: %+v after %d progress calls", rep, calls)
	}
	var hot, total, outbox, misdated int64
	var oldest, newest time.Time
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE tenant_id = $1), count(*), min(created_at), max(created_at),
		(SELECT count(*) FROM communication.event_outbox)
		FROM communication.message_logs`, rep.Tenants[0]).Scan(&hot, &total, &oldest, &newest, &outbox); err != nil {
		t.Fatal(err)
	}
	if share := float64(hot) / float64(total); math.Abs(share-0.5) > 0.05 {
		t.Errorf("the hot tenant has %.2f of the messages, want 0.5", share)
	}
	if oldest.Before(now.Add(-73*time.Hour)) || newest.After(now) || newest.Sub(oldest) < 71*time.Hour {
		t.Errorf("messages from %v to %v, want the 3 days before %v", oldest, newest, now)
	}
	if outbox != 0 {
		t.Errorf("%d seeded events were queued for publishing", outbox)
	}
	for _, person := range plan.Persons {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM communication.message_logs WHERE tenant_id = $1 AND recipient = $2 AND channel = 'sms'`,
			rep.Tenants[0], person).Scan(&n); err != nil || n != 100 {
			t.Errorf("%s received %d of the hot tenant's messages, want 100 (%v)", person, n, err)
		}
	}
	rows, err := pool.Query(ctx, `SELECT id, created_at FROM communication.message_logs`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			t.Fatal(err)
		}
		if idAt, ok := ids.SortableTime(id, ids.Message); !ok || !idAt.Equal(at.Truncate(time.Millisecond)) {
			misdated++
		}
	}
	if rows.Err() != nil || misdated > 0 {
		t.Errorf("%d ids do not carry their message's time (%v)", misdated, rows.Err())
	}

	// Read back as the API reads: the newest first page, a delivered message's timeline.
	st := store.New(pool)
	page, next, err := st.ListMessages(ctx, rep.Tenants[0], domain.MessageFilter{Limit: 50})
	if err != nil || len(page) != 50 || next == "" || page[0].CreatedAt.Before(page[49].CreatedAt) {
		t.Fatalf("first page: %d messages, next %q, %v", len(page), next, err)
	}
	var delivered message.Message
	for _, m := range page {
		if m.Status == message.Delivered {
			delivered = m
			break
		}
	}
	m, err := st.GetMessage(ctx, rep.Tenants[0], delivered.ID)
	if err != nil || len(m.Events) != 4 || m.Events[3].Status != "delivered" {
		t.Fatalf("a delivered message's timeline: %+v %v", m.Events, err)
	}

	// The rollups count every seeded message: the overview and usage read them.
	var sent, accepted int64
	if err := pool.QueryRow(ctx, `SELECT (SELECT sum(sent) FROM communication.analytics_hourly),
		(SELECT sum(accepted) FROM communication.usage_daily)`).Scan(&sent, &accepted); err != nil {
		t.Fatal(err)
	}
	var wantSent int64
	if err := pool.QueryRow(ctx, `SELECT count(sent_at) FROM communication.message_logs`).Scan(&wantSent); err != nil {
		t.Fatal(err)
	}
	if sent != wantSent || accepted != 3_000 {
		t.Errorf("rollups: %d sent (want %d), %d accepted (want 3000)", sent, wantSent, accepted)
	}

	// Bodies older than the content retention are blank, as the purger leaves them, and the
	// purger takes up from each tenant's newest such message.
	{
		pool := testenv.DB(t)
		ten := seed.Plan{Messages: 1_000, Days: 10, Tenants: 2, Now: now, Seed: 2, ContentRetention: 5 * 24 * time.Hour}
		rep, err := seed.History(ctx, pool, ten, nil)
		if err != nil {
			t.Fatal(err)
		}
		var wrong, purged int
		if err := pool.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE (created_at < $1) <> (content_purged_at IS NOT NULL AND body_text = '' AND subject = '' AND body_html = '')),
			count(*) FILTER (WHERE content_purged_at IS NOT NULL) FROM communication.message_logs`, now.Add(-5*24*time.Hour)).Scan(&wrong, &purged); err != nil {
			t.Fatal(err)
		}
		if wrong != 0 || purged < 400 || purged > 600 {
			t.Errorf("%d messages with their content purged, %d of them on the wrong side of the retention", purged, wrong)
		}
		res, err := store.New(pool).PurgeContent(ctx, rep.Tenants[0], now.Add(-5*24*time.Hour), 100)
		if err != nil || res.Purged != 0 || res.Looked > 1 {
			t.Errorf("the purger after the seed: %+v (%v), want nothing left to purge or look at", res, err)
		}
	}

	sizes, err := seed.Footprint(ctx, pool)
	if err != nil || len(sizes) != len(seed.HistoryTables) || sizes[0].Table != "message_logs" || sizes[0].Rows != 3_000 || sizes[0].Bytes == 0 {
		t.Fatalf("footprint: %+v %v", sizes, err)
	}
}

// TestSeededWebhookDeliveriesAreTheDeliverersOwn: with HotWebhook, each event of the hot tenant
// that the publisher publishes has one succeeded delivery with one attempt on the tenant's
// endpoint, holding its CloudEvent, filed under the event's time; they read back through the
// store as the endpoint's delivery log does; no other tenant has any.
func TestSeededWebhookDeliveriesAreTheDeliverersOwn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	rep, err := seed.History(ctx, pool, seed.Plan{Messages: 500, Days: 10, Tenants: 3, HotShare: 0.5, Seed: 2, HotWebhook: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hot := rep.Tenants[0]
	var published, others int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE tenant_id = $1 AND status <> 'sending'), count(*) FILTER (WHERE tenant_id <> $1 AND status <> 'sending')
		FROM communication.message_events`, hot).Scan(&published, &others); err != nil {
		t.Fatal(err)
	}
	if rep.WebhookDeliveries != published || published == 0 || others == 0 {
		t.Fatalf("%d deliveries for the hot tenant's %d published events", rep.WebhookDeliveries, published)
	}
	eps, err := store.New(pool).ListWebhookEndpoints(ctx, hot, false)
	if err != nil || len(eps) != 1 || eps[0].Enabled {
		t.Fatalf("endpoints %+v: %v", eps, err)
	}
	var mismatched, attempts, elsewhere int64
	if err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM communication.webhook_deliveries d JOIN communication.message_events e ON d.event_id = 'evt_' || e.id
		 WHERE d.created_at <> e.occurred_at OR d.event_type <> 'comms.message.' || CASE e.status WHEN 'queued' THEN 'accepted' ELSE e.status END
		    OR (convert_from(d.payload, 'UTF8')::jsonb)->'data'->>'message_id' <> e.message_id),
		(SELECT count(*) FROM communication.webhook_attempts WHERE status_code = 204),
		(SELECT count(*) FROM communication.webhook_deliveries WHERE tenant_id <> $1)`, hot).Scan(&mismatched, &attempts, &elsewhere); err != nil {
		t.Fatal(err)
	}
	if mismatched != 0 || attempts != published || elsewhere != 0 {
		t.Fatalf("%d deliveries unlike their events, %d attempts for %d deliveries, %d for other tenants", mismatched, attempts, published, elsewhere)
	}
	var read int
	for cursor := ""; ; {
		page, next, err := store.New(pool).ListWebhookDeliveries(ctx, hot, eps[0].ID, "", cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			if d.Status != event.DeliverySucceeded || len(d.AttemptLog) != 1 {
				t.Fatalf("delivery %+v", d)
			}
		}
		read += len(page)
		if cursor = next; next == "" {
			break
		}
	}
	if int64(read) != published {
		t.Fatalf("the endpoint's delivery log lists %d of %d", read, published)
	}
}
