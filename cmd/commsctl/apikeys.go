package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/logicspike/comms/internal/accounts"
	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/rekey"
)

// API keys and the encryption key ring: apikey create|revoke|list, keys rotate.

func apikeyCreate(ctx context.Context, e *env, args []string) error {
	st, out := e.st, e.out
	fs := flag.NewFlagSet("apikey create", flag.ContinueOnError)
	kind := fs.String("kind", "tenant", "tenant, service or admin")
	tenant := fs.String("tenant", "", "tenant id (tenant keys only)")
	name := fs.String("name", "", "what the key is for (required)")
	expires := fs.Duration("expires", 0, "lifetime, such as 720h (default: no expiry)")
	if err := fs.Parse(args); err != nil || *name == "" {
		return errUsage
	}
	var exp *time.Time
	if *expires > 0 {
		t := time.Now().Add(*expires)
		exp = &t
	}
	k, plain, err := accounts.New(st, nil).CreateKey(ctx, accounts.NewKey{Kind: domain.KeyKind(*kind), TenantID: *tenant, Name: *name, ExpiresAt: exp})
	if err != nil {
		return describe(err)
	}
	// One JSON document on stdout (jq -r .key); the note for people on stderr.
	if err := printJSON(out, struct {
		api.APIKey
		Key string `json:"key"`
	}{api.KeyView(k), plain}); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "the key is shown once: store it now; only its hash is kept")
	return nil
}

func apikeyRevoke(ctx context.Context, e *env, args []string) error {
	st, out := e.st, e.out
	if len(args) != 1 {
		return errUsage
	}
	k, err := accounts.New(st, nil).RevokeKey(ctx, "", args[0])
	if err != nil {
		return fmt.Errorf("revoke %s: %w", args[0], err)
	}
	fmt.Fprintf(out, "revoked %s at %s (running APIs stop accepting it within COMMS_AUTH_CACHE_TTL)\n", k.ID, k.RevokedAt.Format(time.RFC3339))
	return nil
}

func apikeyList(ctx context.Context, e *env, args []string) error {
	st, out := e.st, e.out
	fs := flag.NewFlagSet("apikey list", flag.ContinueOnError)
	tenant := fs.String("tenant", "", "only this tenant's keys")
	format := outputFlag(fs)
	if err := fs.Parse(args); err != nil || checkFormat(*format) != nil {
		return errUsage
	}
	keys, err := accounts.New(st, nil).Keys(ctx, *tenant)
	if err != nil {
		return err
	}
	t := &table{header: "ID\tKIND\tTENANT\tNAME\tPREFIX\tSTATE"}
	for _, k := range keys {
		state := "active"
		if k.RevokedAt != nil {
			state = "revoked"
		} else if !k.Active(time.Now()) {
			state = "expired"
		}
		t.add(k.ID, k.Kind, k.TenantID, k.Name, k.Prefix+"…", state)
	}
	return emit(out, *format, api.Views(keys, api.KeyView), t)
}

func keysRotate(ctx context.Context, e *env, args []string) error {
	cfg, st, out := e.cfg, e.st, e.out
	fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	batch := fs.Int("batch", 100, "configs per batch")
	if err := fs.Parse(args); err != nil || *batch < 1 {
		return errUsage
	}
	rep, err := providerService(cfg, st).Rotate(ctx, *batch, progress(stderr, "resealed", "provider configs"))
	fmt.Fprintf(out, "resealed %d provider configs under key %s (%d changed meanwhile and were left alone)\n",
		rep.Resealed, cfg.Ring.Current(), rep.Skipped)
	if err != nil {
		return fmt.Errorf("rotation stopped (run it again to finish): %w", err)
	}
	for _, k := range rekey.Kinds {
		rep, err := rekey.Reseal(ctx, st, cfg.Ring, k, *batch)
		fmt.Fprintf(out, "resealed %d %s under key %s (%d rotated meanwhile and were left alone)\n", rep.Resealed, k.Name, cfg.Ring.Current(), rep.Skipped)
		if err != nil {
			return fmt.Errorf("rotation stopped (run it again to finish): %w", err)
		}
	}
	return nil
}
