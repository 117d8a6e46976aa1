package intake_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/intake"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/message"
)

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, ...queue.Envelope) error { return nil }

// running starts an intake service on its own database with one tenant, until the test ends.
func running(t *testing.T, idem *intake.IdempotencyCache) (*intake.Service, string) {
	t.Helper()
	st := store.New(testenv.DB(t))
	tn, err := st.CreateTenant(context.Background(), domain.NewTenant{Name: "t", AllowSystemFallback: true})
	if err != nil {
		t.Fatal(err)
	}
	svc := intake.New(st, idem, nopPublisher{}, stacktest.Logger())
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	go svc.Run(ctx)
	return svc, tn.ID
}

// With Redis unreachable the fast path fails on every call, and PostgreSQL's key must still make
// repeats return the first message and reject a changed body.
func TestIdempotencyHoldsWithRedisDown(t *testing.T) {
	t.Parallel()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer dead.Close()
	svc, tenantID := running(t, intake.NewIdempotencyCache(dead, "x:"))
	ctx := context.Background()

	req := message.Request{Channel: message.SMS, To: "+14155550123", Text: "code 1"}
	ids := make([]string, 10)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acc, err := svc.Submit(ctx, domain.Tenant{ID: tenantID}, "k", req)
			if err != nil {
				t.Error(err)
			}
			ids[i] = acc.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("repeats got different ids: %v", ids)
		}
	}
	req.Text = "code 2"
	if _, err := svc.Submit(ctx, domain.Tenant{ID: tenantID}, "k", req); !errors.Is(err, intake.ErrIdempotencyMismatch) {
		t.Fatalf("changed body: %v", err)
	}
}

// Leaving out the category and naming the default are the same request for idempotency.
func TestDefaultCategoryIsTheSameRequest(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	svc, tenantID := running(t, intake.NewIdempotencyCache(rdb, prefix))
	ctx := context.Background()
	req := message.Request{Channel: message.SMS, To: "+14155550123", Text: "code 1"}
	a, err := svc.Submit(ctx, domain.Tenant{ID: tenantID}, "same", req)
	if err != nil {
		t.Fatal(err)
	}
	req.Category = message.Transactional
	b, err := svc.Submit(ctx, domain.Tenant{ID: tenantID}, "same", req)
	if err != nil || b.ID != a.ID || !b.Replayed {
		t.Fatalf("%+v %+v %v", a, b, err)
	}
	req.Category = message.Marketing
	if _, err := svc.Submit(ctx, domain.Tenant{ID: tenantID}, "same", req); !errors.Is(err, intake.ErrIdempotencyMismatch) {
		t.Fatalf("a different category under the same key: %v", err)
	}
}

// countingPublisher accepts every intent and counts them.
type countingPublisher struct {
	mu sync.Mutex
	n  int
}

func (p *countingPublisher) Publish(_ context.Context, envs ...queue.Envelope) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += len(envs)
	return nil
}

// Every intent the broker took is marked published by the time the service has stopped, though
// marks wait to share a statement: an unmarked one would be published again by the sweeper.
func TestPublishedIntentsAreMarkedBeforeShutdownEnds(t *testing.T) {
	t.Parallel()
	db := testenv.DB(t)
	st := store.New(db)
	ctx := context.Background()
	tn, err := st.CreateTenant(ctx, domain.NewTenant{Name: "t", AllowSystemFallback: true})
	if err != nil {
		t.Fatal(err)
	}
	pub := &countingPublisher{}
	svc := intake.New(st, nil, pub, stacktest.Logger())
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(runCtx) }()

	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := svc.Submit(ctx, domain.Tenant{ID: tn.ID}, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: fmt.Sprint("code ", i)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	stop()
	<-done

	var published, unpublished int
	if err := db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE published_at IS NOT NULL), count(*) FILTER (WHERE published_at IS NULL)
		FROM communication.dispatch_queue`).Scan(&published, &unpublished); err != nil {
		t.Fatal(err)
	}
	if pub.n != n || published != n || unpublished != 0 {
		t.Fatalf("published %d intents; outbox rows marked %d, unmarked %d; want %d, %d, 0", pub.n, published, unpublished, n, n)
	}
}

// Inserts from many requests share one statement. A row PostgreSQL refuses (text with a NUL,
// which only a caller skipping the HTTP decoder can still send) must fail its own request and no
// other: every valid message sent beside it is accepted and stored.
func TestUnstorableRowFailsOnlyItsOwnRequest(t *testing.T) {
	t.Parallel()
	svc, tenantB := running(t, nil)
	ctx := context.Background()
	const n = 400
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := map[string]bool{}
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := svc.Submit(ctx, domain.Tenant{ID: tenantB + "-poison"}, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: "a\x00b"}); err == nil {
				t.Errorf("a message with a NUL was accepted")
			}
		}()
		go func() {
			defer wg.Done()
			acc, err := svc.Submit(ctx, domain.Tenant{ID: tenantB}, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: fmt.Sprintf("valid %d", i)})
			if err != nil {
				t.Errorf("valid message %d failed beside a bad one: %v", i, err)
				return
			}
			mu.Lock()
			accepted[acc.ID] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(accepted) != n {
		t.Fatalf("%d of %d valid messages accepted", len(accepted), n)
	}
}
