package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/pkg/ids"
)

// EmptyDatabaseURL creates a database with no migrations applied for t, dropped when t ends, and
// returns its URL: what a release meets before `commsctl migrate` ran.
func EmptyDatabaseURL(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	name := "comms_e_" + strings.ToLower(ids.Random(12))
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("testenv: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, AdminURL()); err == nil {
			_, _ = conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
			_ = conn.Close(ctx)
		}
	})
	return withDB(AdminURL(), name)
}
