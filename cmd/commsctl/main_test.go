package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/logicspike/comms/internal/testenv"
)

func TestOpsWorkflow(t *testing.T) {
	t.Setenv("COMMS_DATABASE_URL", testenv.DatabaseURL(t))
	ctx := context.Background()
	run1 := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(ctx, args, &out); err != nil {
			t.Fatalf("commsctl %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	run1("migrate") // already migrated: applies nothing, fails nothing
	out := run1("tenant", "create", "-name", "acme", "-no-fallback")
	tenant := regexp.MustCompile(`ten_[0-9A-Za-z]+`).FindString(out)
	if tenant == "" || !strings.Contains(out, `"allow_system_fallback": false`) {
		t.Fatalf("tenant create: %s", out)
	}
	if !strings.Contains(run1("tenant", "list"), tenant) {
		t.Fatal("tenant list misses the new tenant")
	}
	out = run1("apikey", "create", "-tenant", tenant, "-name", "backend")
	secret := regexp.MustCompile(`(?m)^api key: (ck_tenant_\S+)$`).FindStringSubmatch(out)
	keyID := regexp.MustCompile(`key_[0-9A-Za-z]+`).FindString(out)
	if secret == nil || keyID == "" {
		t.Fatalf("apikey create: %s", out)
	}
	list := run1("apikey", "list", "-tenant", tenant)
	if !strings.Contains(list, keyID) || strings.Contains(list, secret[1]) || !strings.Contains(list, "active") {
		t.Fatalf("apikey list must show the key, never its secret: %s", list)
	}
	run1("apikey", "revoke", keyID)
	if !strings.Contains(run1("apikey", "list"), "revoked") {
		t.Fatal("revoked key not shown as revoked")
	}
	if !strings.Contains(run1("provider", "system-sandbox"), `"type": "sandbox"`) {
		t.Fatal("system sandbox not created")
	}
	var out2 bytes.Buffer
	if err := run(ctx, []string{"tenant", "explode"}, &out2); !errors.Is(err, errUsage) {
		t.Fatalf("unknown command: %v", err)
	}
	if err := run(ctx, []string{"apikey", "create", "-kind", "tenant", "-name", "x"}, &out2); err == nil {
		t.Fatal("a tenant key without a tenant must fail")
	}
}
