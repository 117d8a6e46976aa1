// Command commsctl is the operators' tool: database migrations, Kafka topics, tenants, API keys,
// system-default providers, dead letters and key rotation, against whatever environment COMMS_*
// points at. Each command is an entry of the table in commands.go.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"syscall"

	"github.com/logicspike/comms/internal/app"
	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/platform/config"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "commsctl:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(os.Stderr, usageOf(""))
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("bad usage")

// stdin is read by "provider create -credentials -"; stderr takes notes and progress, so that
// stdout holds only the result. Tests replace both.
var (
	stdin  io.Reader = os.Stdin
	stderr io.Writer = os.Stderr
)

// wantsHelp reports whether a command's arguments ask for its help.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
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
		fmt.Fprint(out, usageOf(""))
		return nil
	}
	cmd, rest := lookup(args)
	if wantsHelp(args[1:]) {
		prefix := args[0]
		if cmd != nil {
			prefix = cmd.name
		}
		fmt.Fprint(out, usageOf(prefix))
		return nil
	}
	if cmd == nil {
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	e := &env{out: out}
	if cmd.needs == needNothing {
		return cmd.run(ctx, e, rest)
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
	e.cfg = cfg
	if cmd.needs == needKafka {
		return cmd.run(ctx, e, rest)
	}
	// Every change commsctl makes is audited as the OS user running it (docs/audit.md).
	ctx = db.WithActor(ctx, db.Actor{Kind: "cli", ID: osUser()})
	e.pool, err = db.Open(ctx, cfg.DatabaseURL, 2)
	if err != nil {
		return fmt.Errorf("%w (check COMMS_DATABASE_URL: host, credentials, sslmode)", err)
	}
	defer e.pool.Close()
	e.st = store.New(e.pool)
	if cmd.needs == needDatabase {
		// Say so once, with what to run, rather than fail on a missing table.
		if err := db.CheckMigrated(ctx, e.pool); err != nil {
			return err
		}
	}
	return cmd.run(ctx, e, rest)
}

// keysGenerate prints a new key ring entry; it needs no configuration (it makes the first key).
func keysGenerate(_ context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("keys generate", flag.ContinueOnError)
	version := fs.String("version", "v1", "key version label")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	k, err := secrets.GenerateKey(*version)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.out, k)
	return nil
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
