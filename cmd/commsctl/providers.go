package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/app"
	"github.com/logicspike/comms/internal/platform/config"
	"github.com/logicspike/comms/internal/platform/invalidate"
	"github.com/logicspike/comms/internal/providerconfig"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
	"github.com/redis/go-redis/v9"
)

// System-default providers: create (Save \& Test), test, delete, list, the sandbox.

func providerSystemSandbox(ctx context.Context, e *env, args []string) error {
	st, out := e.st, e.out
	fs := flag.NewFlagSet("provider system-sandbox", flag.ContinueOnError)
	latency := fs.Int("latency-ms", 0, "how long the sandbox takes to answer")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	ps, err := app.EnsureSandboxDefaults(ctx, st, *latency)
	if err != nil {
		return err
	}
	views := make([]api.Provider, len(ps))
	for i, p := range ps {
		views[i] = api.ProviderView(p)
	}
	return printJSON(out, views)
}

func providerListSystem(ctx context.Context, e *env, args []string) error {
	st, out := e.st, e.out
	fs := flag.NewFlagSet("provider list-system", flag.ContinueOnError)
	format := outputFlag(fs)
	if err := fs.Parse(args); err != nil || checkFormat(*format) != nil {
		return errUsage
	}
	ps, err := st.ListSystemDefaults(ctx)
	if err != nil {
		return err
	}
	t := &table{header: "ID\tTYPE\tCHANNEL\tNAME\tACCOUNT\tPRIORITY\tENABLED\tHEALTH"}
	views := make([]api.Provider, len(ps))
	for i, p := range ps {
		t.add(p.ID, p.Type, p.Channel, p.Name, p.Mask, p.Priority, p.Enabled, p.Health)
		views[i] = api.ProviderView(p)
	}
	return emit(out, *format, views, t)
}

func providerCreate(ctx context.Context, e *env, args []string) error {
	cfg, st, out := e.cfg, e.st, e.out
	fs := flag.NewFlagSet("provider create", flag.ContinueOnError)
	var in providerconfig.Input
	var credFile, sender, channel string
	fs.StringVar(&in.Type, "type", "", "twilio, ses, smtp, resend or webhook")
	fs.StringVar(&in.Name, "name", "", "name shown in lists")
	fs.StringVar(&channel, "channel", "", "sms or email")
	fs.StringVar(&credFile, "credentials", "", `file holding the credentials JSON, "-" for stdin`)
	fs.StringVar(&sender, "sender", "{}", `sender JSON, e.g. {"from":"+14155550100"}`)
	fs.StringVar(&in.TestRecipient, "test-recipient", "", "where the test message goes")
	priority := fs.Int("priority", 100, "lower is tried first")
	disabled := fs.Bool("disabled", false, "store it disabled")
	if err := fs.Parse(args); err != nil || credFile == "" {
		return errUsage
	}
	var creds []byte
	var err error
	if credFile == "-" {
		creds, err = io.ReadAll(io.LimitReader(stdin, 64<<10))
	} else {
		creds, err = os.ReadFile(credFile) //nolint:gosec // the operator names the file
	}
	if err != nil {
		return fmt.Errorf("read credentials: %w", err)
	}
	enabled := !*disabled
	in.Channel, in.Credentials, in.Sender, in.Priority, in.Enabled = message.Channel(channel), creds, json.RawMessage(sender), priority, &enabled
	p, res, err := providerService(cfg, st).Create(ctx, "", in)
	if err != nil {
		return describe(err)
	}
	v := api.ProviderView(p)
	v.Test = &res
	return printJSON(out, v)
}

func providerTest(ctx context.Context, e *env, args []string) error {
	cfg, st, out := e.cfg, e.st, e.out
	fs := flag.NewFlagSet("provider test", flag.ContinueOnError)
	to := fs.String("test-recipient", "", "where the test message goes")
	if len(args) < 1 || fs.Parse(args[1:]) != nil {
		return errUsage
	}
	res, err := providerService(cfg, st).Test(ctx, "", args[0], *to)
	if err != nil {
		return describe(err)
	}
	return printJSON(out, res)
}

func providerDelete(ctx context.Context, e *env, args []string) error {
	cfg, st, out := e.cfg, e.st, e.out
	if len(args) != 1 {
		return errUsage
	}
	if err := providerService(cfg, st).Delete(ctx, "", args[0]); err != nil {
		return fmt.Errorf("delete %s: %w", args[0], err)
	}
	fmt.Fprintln(out, "deleted", args[0])
	return nil
}

func providerService(cfg config.Config, st *store.Store) *providerconfig.Service {
	log := quiet()
	// Tell running workers at once; if Redis is unreachable they notice within their route TTL.
	rdb := redis.NewClient(cfg.Redis)
	return providerconfig.New(st, app.Registry(cfg, nil), log, cfg.ProviderTestTimeout).
		WithNotifier(invalidate.NewNotifier(rdb, cfg.RedisPrefix, log))
}

// describe turns validation and test failures into the lines an operator needs.
func describe(err error) error {
	var verr *message.ValidationError
	var failed *providerconfig.TestFailedError
	switch {
	case errors.As(err, &verr):
		var b strings.Builder
		for _, f := range verr.Fields {
			b.WriteString("\n  " + f.Field + ": " + f.Message)
		}
		return fmt.Errorf("invalid:%s", b.String())
	case errors.As(err, &failed):
		return fmt.Errorf("test send failed, nothing was saved: %s", failed.Err.Describe())
	}
	return err
}
