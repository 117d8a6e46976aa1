// Command commsctl is the operators' tool: database migrations, Kafka topics, tenants, API keys
// and system-default providers, against whatever environment COMMS_* points at.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/app"
	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/dispatch/dlq"
	"github.com/logicspike/comms/internal/platform/config"
	"github.com/logicspike/comms/internal/platform/invalidate"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/internal/providerconfig"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

const usage = `usage: commsctl <command> [flags]

commands:
  setup [-sandbox-defaults]                 migrate, create the topics, and optionally seed sandbox system defaults
  migrate                                   apply database migrations (each once, under a lock; safe to run from many pods)
  migrate status [-o json]                  every migration: applied when, and whether its file still matches
  topics                                    create the Kafka topics (COMMS_KAFKA_PARTITIONS, COMMS_KAFKA_REPLICATION)
  tenant create -name N [-plan P] [-no-fallback]
  tenant list [-o json]
  tenant set ID [-quota-email-soft N -quota-email-hard N -quota-sms-soft N -quota-sms-hard N] [-max-attempts N] [-max-retry-age 24h] [-rate R] [-burst B] [-fallback=false] [-status suspended]
  apikey create -kind tenant|service|admin [-tenant ID] -name N [-expires 720h]
                                            prints the key as one JSON document ("key" holds it, shown once)
  apikey revoke ID
  apikey list [-tenant ID] [-o json]
  provider system-sandbox [-latency-ms N]   ensure sandbox system defaults for sms and email
  provider list-system [-o json]            system defaults, masked
  provider create -type T -name N -channel sms|email -credentials FILE [-sender JSON]
                  -test-recipient R [-priority N] [-disabled]
                                            add a system default after a real test send (Save & Test);
                                            FILE holds the credentials JSON ("-" reads stdin), so no
                                            secret lands in shell history or the process list
  provider test ID -test-recipient R        send a test message through a system default
  provider delete ID
  dlq list [filters] [-include-replayed] [-limit N] [-o json]
  dlq show ID [-o json]
  dlq replay [filters] [-dry-run] [-all] [-o json]
                                            put dead-lettered messages back in the queue (each entry once);
                                            filters: -tenant -provider -provider-id -error-code
                                            -from -to (RFC 3339) -message-id (repeatable)
  dlq replays [-o json]                     the replay audit log
  outbox requeue                            mark every unfinished message unpublished, so the sweeper publishes
                                            it again: after the broker lost its log (restored from nothing)
  usage export -month YYYY-MM [-tenant ID] [-o FILE]
                                            the month's billing export as CSV (docs/usage.md), every
                                            tenant's or one's; progress on stderr
  keys generate [-version V]                print a new COMMS_ENCRYPTION_KEYS entry (V:base64 of 32 random bytes)
  keys rotate [-batch N]                    re-encrypt every provider config under the newest key;
                                            safe to interrupt and run again; progress on stderr

Lists and shows print a table, or one JSON document with -o json; notes and progress go to stderr.
Settings come from the environment (COMMS_DATABASE_URL, COMMS_KAFKA_BROKERS, ...; see docs/operations.md).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "commsctl:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("bad usage")

// wantsHelp reports whether a command's arguments ask for its help.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
}

// commandUsage is the part of usage about cmd (its lines and their continuations), or all of it.
func commandUsage(cmd string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(usage, "\n") {
		switch {
		case strings.HasPrefix(line, "  "+cmd+" "):
			in = true
		case strings.HasPrefix(line, "   ") && in: // a continuation of the command's line
		default:
			in = false
		}
		if in {
			b.WriteString(line + "\n")
		}
	}
	if b.Len() == 0 {
		return usage
	}
	return "usage: commsctl " + cmd + " …\n\n" + b.String() + "\nSettings come from the environment (see docs/operations.md).\n"
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	// Help and the version need no configuration: answered before the environment is read.
	switch args[0] {
	case "--version", "-version", "version":
		fmt.Fprintln(out, app.VersionLine("commsctl"))
		return nil
	case "--help", "-help", "-h", "help":
		fmt.Fprint(out, usage)
		return nil
	}
	if wantsHelp(args[1:]) {
		fmt.Fprint(out, commandUsage(args[0]))
		return nil
	}
	if len(args) > 1 && args[0] == "keys" && args[1] == "generate" {
		// Needs no configuration: it is how the first key is made.
		fs := flag.NewFlagSet("keys generate", flag.ContinueOnError)
		version := fs.String("version", "v1", "key version label")
		if err := fs.Parse(args[2:]); err != nil {
			return errUsage
		}
		k, err := secrets.GenerateKey(*version)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, k)
		return nil
	}
	cfg, err := config.FromEnv()
	if err != nil {
		return fmt.Errorf("bad configuration:\n%w", err)
	}
	kafka, err := queue.SettingsFrom(cfg.Kafka)
	if err != nil {
		return fmt.Errorf("bad configuration:\n%w", err)
	}
	queue.Configure(kafka)
	cmd := args[0]
	if len(args) > 1 && (cmd == "tenant" || cmd == "apikey" || cmd == "provider" || cmd == "keys" || cmd == "dlq" || cmd == "outbox" || cmd == "usage" || cmd == "migrate" && args[1] == "status") {
		cmd += " " + args[1]
		args = args[1:]
	}
	args = args[1:]

	topics := func() error {
		err := queue.EnsureTopics(ctx, cfg.KafkaBrokers, cfg.KafkaPartitions, cfg.KafkaReplicas,
			queue.AllTopics()...)
		if err != nil {
			return fmt.Errorf("create topics: %w (check COMMS_KAFKA_BROKERS, and COMMS_KAFKA_SASL_* and COMMS_KAFKA_TLS for a secured cluster)", err)
		}
		fmt.Fprintln(out, "topics ready:", strings.Join(queue.AllTopics(), " "))
		return nil
	}
	if cmd == "topics" {
		return topics()
	}

	// Every change commsctl makes is audited as the OS user running it (docs/audit.md).
	ctx = db.WithActor(ctx, db.Actor{Kind: "cli", ID: osUser()})
	pool, err := db.Open(ctx, cfg.DatabaseURL, 2)
	if err != nil {
		return fmt.Errorf("%w (check COMMS_DATABASE_URL: host, credentials, sslmode)", err)
	}
	defer pool.Close()
	st := store.New(pool)
	if cmd != "setup" && cmd != "migrate" && cmd != "migrate status" {
		// Say so once, with what to run, rather than fail on a missing table.
		if err := db.CheckMigrated(ctx, pool); err != nil {
			return err
		}
	}

	switch cmd {
	case "setup":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		sandboxDefaults := fs.Bool("sandbox-defaults", false, "also ensure sandbox system defaults for sms and email")
		if err := fs.Parse(args); err != nil {
			return errUsage
		}
		applied, err := db.Migrate(ctx, pool)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "applied %d migrations %v\n", len(applied), applied)
		if err := topics(); err != nil {
			return err
		}
		if *sandboxDefaults {
			if _, err := app.EnsureSandboxDefaults(ctx, st, 0); err != nil {
				return err
			}
			fmt.Fprintln(out, "sandbox system defaults ready")
		}
		return nil

	case "outbox requeue":
		n, err := st.ForgetPublished(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%d unfinished messages will be published again by the sweeper\n", n)
		return nil

	case "migrate status":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		format := outputFlag(fs)
		if err := fs.Parse(args); err != nil || checkFormat(*format) != nil {
			return errUsage
		}
		states, err := db.Status(ctx, pool)
		if err != nil {
			return err
		}
		t := &table{header: "VERSION\tNAME\tAPPLIED AT\tCHECKSUM"}
		for _, m := range states {
			at := any("not applied")
			if m.AppliedAt != nil {
				at = *m.AppliedAt
			}
			t.add(m.Version, m.Name, at, m.Checksum)
		}
		return emit(out, *format, states, t)

	case "migrate":
		applied, err := db.Migrate(ctx, pool)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "applied %d migrations %v\n", len(applied), applied)
		return nil

	case "tenant create":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		name := fs.String("name", "", "tenant name (required)")
		plan := fs.String("plan", "free", "plan")
		noFallback := fs.Bool("no-fallback", false, "forbid the system-default providers for this tenant")
		if err := fs.Parse(args); err != nil || *name == "" {
			return errUsage
		}
		t, err := st.CreateTenant(ctx, store.NewTenant{Name: *name, Plan: *plan, AllowSystemFallback: !*noFallback})
		if err != nil {
			return err
		}
		return printJSON(out, t)

	case "tenant set":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		var p store.TenantPatch
		set := map[string]bool{}
		maxAttempts := fs.Int("max-attempts", 0, "provider attempts per message before dead-lettering")
		maxAge := fs.Duration("max-retry-age", 0, "no retry past this age of a message (e.g. 24h)")
		rate := fs.Float64("rate", 0, "intake messages per second (0: unlimited)")
		burst := fs.Int("burst", 0, "intake burst")
		fallback := fs.Bool("fallback", true, "may use the system default providers")
		status := fs.String("status", "", "active or suspended")
		limits := map[string]*int64{}
		for _, ch := range []string{"email", "sms"} {
			for _, l := range []string{"soft", "hard"} {
				limits["quota-"+ch+"-"+l] = fs.Int64("quota-"+ch+"-"+l, 0, "monthly "+l+" limit for "+ch+" (0: none; docs/usage.md#quotas)")
			}
		}
		if len(args) < 1 || fs.Parse(args[1:]) != nil {
			return errUsage
		}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for _, ch := range []string{"email", "sms"} {
			if set["quota-"+ch+"-soft"] || set["quota-"+ch+"-hard"] {
				if p.Quotas == nil {
					p.Quotas = map[string]*store.Quota{}
				}
				p.Quotas[ch] = &store.Quota{SoftLimit: *limits["quota-"+ch+"-soft"], HardLimit: *limits["quota-"+ch+"-hard"]}
			}
		}
		if set["max-attempts"] {
			p.MaxAttempts = maxAttempts
		}
		if set["max-retry-age"] {
			secs := int64(maxAge.Seconds())
			p.MaxRetryAgeSeconds = &secs
		}
		if set["rate"] {
			p.RatePerSecond = rate
		}
		if set["burst"] {
			p.RateBurst = burst
		}
		if set["fallback"] {
			p.AllowSystemFallback = fallback
		}
		if set["status"] {
			p.Status = status
		}
		if errs := p.Validate(); len(errs) > 0 {
			return describe(&message.ValidationError{Fields: errs})
		}
		t, err := st.UpdateTenant(ctx, args[0], p)
		if err != nil {
			return fmt.Errorf("update tenant %s: %w", args[0], err)
		}
		rdb := redis.NewClient(cfg.Redis)
		defer rdb.Close()
		invalidate.NewNotifier(rdb, cfg.RedisPrefix, slog.New(slog.NewTextHandler(os.Stderr, nil))).Changed(ctx, t.ID)
		return printJSON(out, t)

	case "tenant list":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		format := outputFlag(fs)
		if err := fs.Parse(args); err != nil || checkFormat(*format) != nil {
			return errUsage
		}
		t := &table{header: "ID\tNAME\tPLAN\tFALLBACK\tSTATUS\tCREATED"}
		all := []store.Tenant{}
		after := ""
		for {
			ts, err := st.ListTenants(ctx, after, 500)
			if err != nil {
				return err
			}
			for _, tn := range ts {
				t.add(tn.ID, tn.Name, tn.Plan, tn.AllowSystemFallback, tn.Status, tn.CreatedAt)
			}
			all = append(all, ts...)
			if len(ts) < 500 {
				return emit(out, *format, all, t)
			}
			after = ts[len(ts)-1].ID
		}

	case "apikey create":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
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
		k, plain, err := st.CreateAPIKey(ctx, store.KeyKind(*kind), *tenant, *name, exp)
		if err != nil {
			return err
		}
		// One JSON document on stdout (jq -r .key); the note for people on stderr.
		if err := printJSON(out, struct {
			store.APIKey
			Key string `json:"key"`
		}{k, plain}); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "the key is shown once: store it now; only its hash is kept")
		return nil

	case "apikey revoke":
		if len(args) != 1 {
			return errUsage
		}
		k, err := st.RevokeAPIKey(ctx, "", args[0])
		if err != nil {
			return fmt.Errorf("revoke %s: %w", args[0], err)
		}
		fmt.Fprintf(out, "revoked %s at %s (running APIs stop accepting it within COMMS_AUTH_CACHE_TTL)\n", k.ID, k.RevokedAt.Format(time.RFC3339))
		return nil

	case "apikey list":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		tenant := fs.String("tenant", "", "only this tenant's keys")
		format := outputFlag(fs)
		if err := fs.Parse(args); err != nil || checkFormat(*format) != nil {
			return errUsage
		}
		keys, err := st.ListAPIKeys(ctx, *tenant)
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
		return emit(out, *format, keys, t)

	case "provider system-sandbox":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
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

	case "provider list-system":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		format := outputFlag(fs)
		if err := fs.Parse(args); err != nil || checkFormat(*format) != nil {
			return errUsage
		}
		ps, err := st.SystemDefaults(ctx)
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

	case "provider create":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
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

	case "provider test":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		to := fs.String("test-recipient", "", "where the test message goes")
		if len(args) < 1 || fs.Parse(args[1:]) != nil {
			return errUsage
		}
		res, err := providerService(cfg, st).Test(ctx, "", args[0], *to)
		if err != nil {
			return describe(err)
		}
		return printJSON(out, res)

	case "provider delete":
		if len(args) != 1 {
			return errUsage
		}
		if err := providerService(cfg, st).Delete(ctx, "", args[0]); err != nil {
			return fmt.Errorf("delete %s: %w", args[0], err)
		}
		fmt.Fprintln(out, "deleted", args[0])
		return nil

	case "dlq list", "dlq replay":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		var f store.DLQFilter
		var from, to string
		var msgIDs multiFlag
		fs.StringVar(&f.TenantID, "tenant", "", "tenant id")
		fs.StringVar(&f.ProviderType, "provider", "", "provider type")
		fs.StringVar(&f.ProviderConfigID, "provider-id", "", "provider config id")
		fs.StringVar(&f.ErrorCode, "error-code", "", "normalized error code")
		fs.StringVar(&from, "from", "", "failed at or after (RFC 3339)")
		fs.StringVar(&to, "to", "", "failed before (RFC 3339)")
		fs.Var(&msgIDs, "message-id", "message id (repeatable)")
		includeReplayed := fs.Bool("include-replayed", false, "list: also entries already replayed")
		limit := fs.Int("limit", 100, "list: at most this many")
		dryRun := fs.Bool("dry-run", false, "replay: count and audit, change nothing")
		all := fs.Bool("all", false, "replay: with no filter, replay everything")
		format := outputFlag(fs)
		if err := fs.Parse(args); err != nil || checkFormat(*format) != nil {
			return errUsage
		}
		f.MessageIDs = msgIDs
		for _, p := range []struct {
			v   string
			dst **time.Time
		}{{from, &f.From}, {to, &f.To}} {
			if p.v == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339, p.v)
			if err != nil {
				return fmt.Errorf("%w: -from and -to take RFC 3339 times", errUsage)
			}
			*p.dst = &t
		}
		if cmd == "dlq list" {
			f.IncludeReplayed = *includeReplayed
			ds, err := st.ListDeadLetters(ctx, f, 0, *limit)
			if err != nil {
				return err
			}
			t := &table{header: "ID\tFAILED AT\tTENANT\tMESSAGE\tPROVIDER\tCODE\tATTEMPTS\tREPLAYED"}
			for _, d := range ds {
				replayed := ""
				if d.ReplayedAt != nil {
					replayed = d.ReplayID
				}
				t.add(d.ID, d.FailedAt, d.TenantID, d.MessageID, d.ProviderType, d.ErrorCode, d.Attempts, replayed)
			}
			return emit(out, *format, ds, t)
		}
		if f.Empty() && !*all {
			return fmt.Errorf("%w: give a filter, or -all to replay everything", errUsage)
		}
		prod := queue.NewProducer(cfg.KafkaBrokers, queue.TopicSend)
		defer prod.Close()
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		actor := "commsctl"
		if u := os.Getenv("USER"); u != "" {
			actor += " (" + u + ")"
		}
		rep, err := dlq.New(st, prod, log).WithProgress(progress(stderr, "published", "replayed messages")).Replay(ctx, f, actor, *dryRun)
		if err != nil {
			return err
		}
		return emit(out, *format, rep, replaysTable([]store.Replay{rep}))

	case "dlq show":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		format := outputFlag(fs)
		if len(args) < 1 || fs.Parse(args[1:]) != nil || checkFormat(*format) != nil {
			return errUsage
		}
		id, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil {
			return errUsage
		}
		d, err := st.GetDeadLetter(ctx, id)
		if err != nil {
			return fmt.Errorf("dead letter %d: %w", id, err)
		}
		t := &table{header: "FIELD\tVALUE"}
		t.add("id", d.ID)
		t.add("failed at", d.FailedAt)
		t.add("tenant", d.TenantID)
		t.add("message", d.MessageID)
		t.add("provider", d.ProviderType+" "+d.ProviderConfigID)
		t.add("error", d.ErrorCode+": "+d.ErrorMessage)
		t.add("attempts", d.Attempts)
		if d.ReplayedAt != nil {
			t.add("replayed", d.ReplayID+" at "+d.ReplayedAt.UTC().Format(time.RFC3339))
		}
		return emit(out, *format, d, t)

	case "dlq replays":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		format := outputFlag(fs)
		if err := fs.Parse(args); err != nil || checkFormat(*format) != nil {
			return errUsage
		}
		reps, err := st.ListReplays(ctx, 100)
		if err != nil {
			return err
		}
		// The log keeps each replay's filter as JSON; the table shows the rest.
		rows := make([]store.Replay, len(reps))
		for i, raw := range reps {
			if err := json.Unmarshal(raw, &rows[i]); err != nil {
				return fmt.Errorf("replay log: %w", err)
			}
		}
		return emit(out, *format, reps, replaysTable(rows))

	case "usage export":
		return usageExport(ctx, st, args, out, os.Stderr)

	case "keys rotate":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
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
		return nil
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, strings.TrimSpace(cmd))
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// stdin is read by "provider create -credentials -"; stderr takes notes and progress, so that
// stdout holds only the result. Tests replace both.
var (
	stdin  io.Reader = os.Stdin
	stderr io.Writer = os.Stderr
)

func replaysTable(reps []store.Replay) *table {
	t := &table{header: "REPLAY\tAT\tACTOR\tDRY RUN\tMATCHED\tREPLAYED"}
	for _, r := range reps {
		t.add(r.ID, r.At, r.Actor, r.DryRun, r.Matched, r.Replayed)
	}
	return t
}

func providerService(cfg config.Config, st *store.Store) *providerconfig.Service {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
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
		return fmt.Errorf("invalid provider config:%s", b.String())
	case errors.As(err, &failed):
		return fmt.Errorf("test send failed, nothing was saved: %s", failed.Err.Describe())
	}
	return err
}

// osUser names whoever runs commsctl, for the audit log.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
