package categories_test

import (
	"context"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/categories"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/message"
)

// Two processes share Redis: a category one of them creates or changes is what the other reads
// next, through the notice, long before its own entry would expire; without Redis a process
// still reads the store once its entry expires.
func TestACategoryChangeReachesEveryProcess(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := store.New(testenv.DB(t))
	rdb, prefix := testenv.Redis(t)
	a := categories.New(st, rdb, prefix, time.Hour, stacktest.Logger())
	b := categories.New(st, rdb, prefix, time.Hour, stacktest.Logger())
	go a.Run(ctx)
	go b.Run(ctx)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		subs, err := rdb.PubSubNumSub(ctx, prefix+categories.Channel).Result()
		if err != nil {
			t.Fatal(err)
		}
		if subs[prefix+categories.Channel] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the caches did not subscribe")
		}
	}
	ten, err := st.CreateTenant(ctx, domain.NewTenant{Name: "categories"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, ten.ID); err != nil || len(got) != 0 {
		t.Fatalf("before: %v, %v", got, err)
	}
	if _, err := st.CreateCategory(ctx, ten.ID, domain.Category{Key: "news", Name: "News", Kind: message.Marketing}); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Get(ctx, ten.ID); len(got) != 0 {
		t.Fatalf("b read the store within its entry's life: %v", got)
	}
	a.Changed(ctx, ten.ID)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got, err := b.Get(ctx, ten.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got["news"].Kind == message.Marketing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other process still reads no category")
		}
	}

	alone := categories.New(st, nil, "", 50*time.Millisecond, stacktest.Logger())
	if got, _ := alone.Get(ctx, ten.ID); len(got) != 1 {
		t.Fatalf("without Redis: %v", got)
	}
	if err := st.DeleteCategory(ctx, ten.ID, "news"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	if got, _ := alone.Get(ctx, ten.ID); len(got) != 0 {
		t.Fatalf("without Redis, after its entry expired: %v", got)
	}
}
