package main

import (
	"context"
	"io"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/logicspike/comms/internal/platform/config"
	"github.com/logicspike/comms/internal/store"
)

// command is one commsctl command: its name (one or two words), its flags as the usage shows
// them, what it does, what it needs, and the function that runs it.
type command struct {
	name  string
	args  string
	help  string // lines after the first are indented under it
	needs need
	run   func(ctx context.Context, e *env, args []string) error
}

// need is what a command needs before it runs.
type need int

const (
	needDatabase  need = iota // a database with this release's schema (the default)
	needNothing               // no configuration at all
	needKafka                 // the configuration and Kafka, no database
	needAnySchema             // a database, migrated or not (the commands that migrate it)
)

// env is what a command runs with: the configuration and, unless it needs none, the database.
type env struct {
	cfg  config.Config
	pool *pgxpool.Pool
	st   *store.Store
	out  io.Writer
}

// commands is every command, in the order the usage lists them.
var commands = []command{
	{name: "setup", args: "[-sandbox-defaults]", help: "migrate, create the topics, and optionally seed sandbox system defaults", needs: needAnySchema, run: setup},
	{name: "migrate", help: "apply database migrations (each once, under a lock; safe to run from many pods)", needs: needAnySchema, run: migrateUp},
	{name: "migrate status", args: "[-o json]", help: "every migration: applied when, and whether its file still matches", needs: needAnySchema, run: migrateStatus},
	{name: "topics", help: "create the Kafka topics (COMMS_KAFKA_PARTITIONS, COMMS_KAFKA_REPLICATION)", needs: needKafka,
		run: func(ctx context.Context, e *env, _ []string) error { return topics(ctx, e) }},
	{name: "tenant create", args: "-name N [-plan P] [-no-fallback]", run: tenantCreate},
	{name: "tenant list", args: "[-o json]", run: tenantList},
	{name: "tenant set", args: "ID [-quota-email-soft N -quota-email-hard N -quota-sms-soft N -quota-sms-hard N] [-max-attempts N] [-max-retry-age 24h] [-rate R] [-burst B] [-fallback=false] [-status suspended]", run: tenantSet},
	{name: "apikey create", args: "-kind tenant|service|admin [-tenant ID] -name N [-expires 720h]",
		help: `prints the key as one JSON document ("key" holds it, shown once)`, run: apikeyCreate},
	{name: "apikey revoke", args: "ID", run: apikeyRevoke},
	{name: "apikey list", args: "[-tenant ID] [-o json]", run: apikeyList},
	{name: "provider system-sandbox", args: "[-latency-ms N]", help: "ensure sandbox system defaults for sms and email", run: providerSystemSandbox},
	{name: "provider list-system", args: "[-o json]", help: "system defaults, masked", run: providerListSystem},
	{name: "provider create", args: "-type T -name N -channel sms|email -credentials FILE [-sender JSON] -test-recipient R [-priority N] [-disabled]",
		help: "add a system default after a real test send (Save & Test);\nFILE holds the credentials JSON (\"-\" reads stdin), so no\nsecret lands in shell history or the process list", run: providerCreate},
	{name: "provider test", args: "ID -test-recipient R", help: "send a test message through a system default", run: providerTest},
	{name: "provider delete", args: "ID", run: providerDelete},
	{name: "dlq list", args: "[filters] [-include-replayed] [-limit N] [-o json]", run: dlqFiltered("dlq list")},
	{name: "dlq show", args: "ID [-o json]", run: dlqShow},
	{name: "dlq replay", args: "[filters] [-dry-run] [-all] [-o json]",
		help: "put dead-lettered messages back in the queue (each entry once);\nfilters: -tenant -provider -provider-id -error-code\n-from -to (RFC 3339) -message-id (repeatable); progress on stderr", run: dlqFiltered("dlq replay")},
	{name: "dlq replays", args: "[-o json]", help: "the replay audit log", run: dlqReplays},
	{name: "outbox requeue", help: "mark every unfinished message unpublished, so the sweeper publishes\nit again: after the broker lost its log (restored from nothing)", run: outboxRequeue},
	{name: "usage export", args: "-month YYYY-MM [-tenant ID] [-o FILE]",
		help: "the month's billing export as CSV (docs/usage.md), every\ntenant's or one's; progress on stderr",
		run: func(ctx context.Context, e *env, args []string) error {
			return usageExport(ctx, e.st, args, e.out, stderr)
		}},
	{name: "plan set", args: "NAME [-content-retention D] [-history-retention D] [-audit-retention D]",
		help: "create or replace a plan's retention defaults (durations such as 720h);\none not given is the global default", run: planSet},
	{name: "plan list", args: "[-o json]", help: "every plan and its retentions", run: planList},
	{name: "partitions list", args: "[-o json]", help: "the week partitions of message history, with their sizes", run: partitionsList},
	{name: "partitions create", args: "[-ahead 14] [-from YYYY-MM-DD]", help: "make the missing weeks from today (or -from) to -ahead days ahead", run: partitionsCreate},
	{name: "partitions drop-expired", args: "[-o json]", help: "drop the weeks every tenant's history retention has passed\n(a week holding a message still to be sent is kept)", run: partitionsDropExpired},
	{name: "keys generate", args: "[-version V]", help: "print a new COMMS_ENCRYPTION_KEYS entry (V:base64 of 32 random bytes)", needs: needNothing, run: keysGenerate},
	{name: "keys rotate", args: "[-batch N]", help: "re-encrypt every provider config, webhook secret and inbox secret under the newest key;\nsafe to interrupt and run again; progress on stderr", run: keysRotate},
}

// lookup finds the command args start with, and the arguments after its name.
func lookup(args []string) (*command, []string) {
	for n := 2; n >= 1; n-- {
		if len(args) < n {
			continue
		}
		name := strings.Join(args[:n], " ")
		for i := range commands {
			if commands[i].name == name {
				return &commands[i], args[n:]
			}
		}
	}
	return nil, nil
}

// usageOf lists the commands whose name starts with prefix ("" for all).
func usageOf(prefix string) string {
	var b strings.Builder
	b.WriteString("usage: commsctl <command> [flags]\n\ncommands:\n")
	for _, c := range commands {
		if prefix != "" && c.name != prefix && !strings.HasPrefix(c.name, prefix+" ") {
			continue
		}
		line := "  " + c.name
		if c.args != "" {
			line += " " + c.args
		}
		help := strings.Split(c.help, "\n")
		switch {
		case c.help == "":
			b.WriteString(line + "\n")
			continue
		case len(line) < 44:
			b.WriteString(line + strings.Repeat(" ", 44-len(line)) + help[0] + "\n")
		default:
			b.WriteString(line + "\n" + strings.Repeat(" ", 44) + help[0] + "\n")
		}
		for _, h := range help[1:] {
			b.WriteString(strings.Repeat(" ", 44) + h + "\n")
		}
	}
	b.WriteString("\nLists and shows print a table, or one JSON document with -o json; notes and progress go to stderr.\n" +
		"Settings come from the environment (COMMS_DATABASE_URL, COMMS_KAFKA_BROKERS, ...; see docs/operations.md).\n")
	return b.String()
}
