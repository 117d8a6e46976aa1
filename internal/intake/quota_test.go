package intake_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/intake"
	"github.com/logicspike/comms/internal/quota"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/message"
)

// With Redis unreachable, quotas fall back to a bounded allowance: PostgreSQL's count for the
// month plus at most 1% of the hard limit (at least 10), never past the limit; beyond it the
// intake answers quota.ErrUnavailable, never silently unlimited. Once Redis is back, its counter
// starts from PostgreSQL, with what the allowance accepted.
func TestQuotaWithRedisDownIsABoundedAllowance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := store.New(testenv.DB(t))
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer dead.Close()
	svc := intake.New(st, nil, nopPublisher{}, stacktest.Logger()).WithQuotas(quota.New(dead, "x:", st, stacktest.Logger()))
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go svc.Run(runCtx)

	// tenant makes a tenant whose month has already counted used emails.
	tenant := func(hard, used int64) domain.Tenant {
		tn, err := st.CreateTenant(ctx, domain.NewTenant{Name: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Pool().Exec(ctx, `INSERT INTO communication.usage_daily (tenant_id, day, channel, category, accepted, accepted_units)
			VALUES ($1, current_date, 'email', 'transactional', $2, $2)`, tn.ID, used); err != nil {
			t.Fatal(err)
		}
		tn.Quotas = domain.Quotas{message.Email: {HardLimit: hard}}
		return tn
	}
	send := func(tn domain.Tenant, n int) (accepted int, err error) {
		for i := range n {
			if _, err = svc.Submit(ctx, tn, "", message.Request{Channel: message.Email, To: fmt.Sprintf("u%d@example.com", i), Subject: "s", Text: "t"}); err != nil {
				return accepted, err
			}
			accepted++
		}
		return accepted, nil
	}

	roomy := tenant(1000, 500) // the allowance (10) binds
	if n, err := send(roomy, 11); n != 10 || !errors.Is(err, quota.ErrUnavailable) {
		t.Fatalf("accepted %d with Redis down, then %v; want 10 then ErrUnavailable", n, err)
	}
	tight := tenant(100, 95) // the limit binds
	var qe *quota.ExceededError
	if n, err := send(tight, 6); n != 5 || !errors.As(err, &qe) || qe.Used != 100 || qe.Limit != 100 {
		t.Fatalf("accepted %d with Redis down, then %v; want 5 then the quota exceeded at 100", n, err)
	}
	unlimited, _ := st.CreateTenant(ctx, domain.NewTenant{Name: "no quota"})
	if n, err := send(unlimited, 20); n != 20 || err != nil {
		t.Fatalf("a tenant without a quota is not held back by Redis: %d %v", n, err)
	}

	// Redis is back: the counter starts from PostgreSQL, which has what the allowance accepted.
	rdb, prefix := testenv.Redis(t)
	svc.WithQuotas(quota.New(rdb, prefix, st, stacktest.Logger()))
	if n, err := send(roomy, 1000); n != 490 || !errors.As(err, &qe) || qe.Used != 1000 {
		t.Fatalf("after the outage %d more were accepted, then %v; want 490 (1000 - 500 - 10)", n, err)
	}
	var stored int
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM communication.message_logs WHERE tenant_id = $1`, roomy.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 500 {
		t.Fatalf("stored %d messages, want 500 (10 during the outage, 490 after)", stored)
	}
}
