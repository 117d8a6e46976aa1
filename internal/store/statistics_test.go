package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

// ANALYZE samples no address or content into the planner's statistics, where an erasure could
// not reach it: not from the messages of the weeks made with the schema, nor of those made later,
// nor from the recipient key's index over them, nor from profiles. It samples the tenant all the
// same.
func TestThePlannersStatisticsHoldNoAddress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	s := store.New(pool)
	ten := tenant(t, s)
	now := time.Now()
	// weeks made now, after the schema's
	if _, err := s.CreatePartitions(ctx, now.AddDate(0, 0, -40), now); err != nil {
		t.Fatal(err)
	}
	const person = "+14155550123"
	var msgs []store.NewMessage
	for i := range 60 {
		to := person
		if i%4 == 0 {
			to = fmt.Sprintf("+1415555%04d", i)
		}
		at := now.AddDate(0, 0, -(i % 40))
		msgs = append(msgs, store.NewMessage{ID: ids.NewSortableAt(ids.Message, at), TenantID: ten,
			Request: message.Request{Channel: message.Email, To: "ann@example.com", Subject: "for " + person, Text: "call " + person}})
		msgs = append(msgs, store.NewMessage{ID: ids.NewSortableAt(ids.Message, at), TenantID: ten, Request: sms(to)})
	}
	if _, err := testenv.Record(ctx, s, msgs...); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, _, err := s.PutRecipient(ctx, ten, domain.Recipient{ExternalID: fmt.Sprintf("u%d", i), Email: "Ann@Example.com",
			Phone: person, Data: []byte(`{"mobile": "` + person + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	for _, needle := range []string{"14155550123", "ann@example.com"} {
		if found := testenv.StatisticsHolding(t, pool, needle); len(found) > 0 {
			t.Errorf("the statistics hold %s in %v", needle, found)
		}
	}
	if found := testenv.StatisticsHolding(t, pool, ten); len(found) < 3 {
		t.Fatalf("ANALYZE sampled the tenant in %v: not the messages' weeks", found)
	}
}
