package templates_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/templates"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/message"
)

func otpTemplate(t *testing.T, st *store.Store, svc *templates.Service) string {
	t.Helper()
	ctx := context.Background()
	ten, err := st.CreateTenant(ctx, domain.NewTenant{Name: "templates"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Create(ctx, ten.ID, templates.Input{Key: "otp", Name: "OTP", Channel: message.SMS,
		Variables: json.RawMessage(`{"type": "object", "properties": {"code": {"type": "string"}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"one {{code}}", "two {{code}}"} {
		if _, err := svc.CreateVersion(ctx, ten.ID, "otp", templates.VersionInput{Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Activate(ctx, ten.ID, "otp", 1); err != nil {
		t.Fatal(err)
	}
	return ten.ID
}

func render(t *testing.T, svc *templates.Service, tenantID string) string {
	t.Helper()
	req, _, err := svc.Render(context.Background(), tenantID, message.Request{To: "+14155550123",
		Template: &message.TemplateRef{Key: "otp", Data: map[string]any{"code": "7"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req.Text
}

// Two API processes share Redis: an activation on one is what the other renders next, through
// the notice, long before its own cache entry would expire.
func TestActivationReachesEveryProcess(t *testing.T) {
	t.Parallel()
	st := store.New(testenv.DB(t))
	rdb, prefix := testenv.Redis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var procs []*templates.Service
	for range 2 {
		c := templates.NewCache(rdb, prefix, stacktest.Logger())
		go c.Run(ctx)
		procs = append(procs, templates.New(st, c, stacktest.Logger()))
	}
	tenantID := otpTemplate(t, st, procs[0])
	if got := render(t, procs[1], tenantID); got != "one 7" {
		t.Fatalf("second process before activation: %q", got)
	}
	if _, err := procs[0].Activate(ctx, tenantID, "otp", 2); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second) // the local entry lives 30 s: only the notice gets it here
	for render(t, procs[1], tenantID) != "two 7" {
		if time.Now().After(deadline) {
			t.Fatal("the second process still renders version 1")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// With Redis unreachable, sends still render, from PostgreSQL.
func TestRenderWithRedisDown(t *testing.T) {
	t.Parallel()
	st := store.New(testenv.DB(t))
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer down.Close()
	svc := templates.New(st, templates.NewCache(down, "down:", stacktest.Logger()), stacktest.Logger())
	tenantID := otpTemplate(t, st, svc)
	if got := render(t, svc, tenantID); got != "one 7" {
		t.Fatalf("rendered %q", got)
	}
	if _, err := svc.Activate(context.Background(), tenantID, "otp", 2); err != nil {
		t.Fatal(err)
	}
	if got := render(t, svc, tenantID); got != "two 7" {
		t.Fatalf("after activation with Redis down: %q", got)
	}
}
