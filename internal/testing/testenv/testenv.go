// Package testenv gives each test its own isolated real infrastructure: a PostgreSQL database
// cloned from a migrated template, a Redis key prefix, and an in-process Kafka-protocol broker.
// Nothing is mocked. Set COMMS_TEST_DATABASE_URL / COMMS_TEST_REDIS_ADDR to point elsewhere.
package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/migrations"
	"github.com/logicspike/comms/pkg/ids"
)

// AdminURL is the maintenance database tests create their databases from.
func AdminURL() string {
	if u := os.Getenv("COMMS_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// RedisAddr is the Redis tests use.
func RedisAddr() string {
	if a := os.Getenv("COMMS_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// templateDB creates, once per process (and once per migration set and day across processes), a
// database with every migration applied, named after the migrations' hash and the day so a
// changed migration gets a fresh template, and so does a new day (its partitions start today).
func templateDB(ctx context.Context) (string, error) {
	templateOnce.Do(func() {
		h := sha256.New()
		h.Write([]byte("tern ledger v1")) // the runner's own tables are part of the template
		// The migrations make message history's day partitions from today: a template is a day's.
		h.Write([]byte(time.Now().UTC().Format(time.DateOnly)))
		_ = fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := fs.ReadFile(migrations.FS, path)
				h.Write([]byte(path))
				h.Write(b)
			}
			return nil
		})
		templateName = "comms_tpl_" + hex.EncodeToString(h.Sum(nil))[:12]
		templateErr = func() error {
			conn, err := pgx.Connect(ctx, AdminURL())
			if err != nil {
				return fmt.Errorf("connect to %s (is PostgreSQL running?): %w", AdminURL(), err)
			}
			defer conn.Close(ctx)
			// Test binaries of several packages run at once: one of them builds the template.
			if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(4242)`); err != nil {
				return err
			}
			defer conn.Exec(ctx, `SELECT pg_advisory_unlock(4242)`) //nolint:errcheck
			var exists bool
			if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, templateName).Scan(&exists); err != nil {
				return err
			}
			if exists {
				return nil
			}
			building := templateName + "_building"
			_, _ = conn.Exec(ctx, `DROP DATABASE IF EXISTS `+building+` WITH (FORCE)`)
			if _, err := conn.Exec(ctx, `CREATE DATABASE `+building); err != nil {
				return err
			}
			pool, err := db.Open(ctx, withDB(AdminURL(), building), 2)
			if err != nil {
				return err
			}
			_, err = db.Migrate(ctx, pool)
			pool.Close()
			if err != nil {
				return err
			}
			_, err = conn.Exec(ctx, `ALTER DATABASE `+building+` RENAME TO `+templateName)
			return err
		}()
	})
	return templateName, templateErr
}

// withDB returns the URL-style DSN u pointing at database name.
func withDB(u, name string) string {
	parsed, err := url.Parse(u)
	if err != nil || parsed.Scheme == "" {
		panic(fmt.Sprintf("testenv: COMMS_TEST_DATABASE_URL must be a postgres:// URL, got %q", u))
	}
	parsed.Path = "/" + name
	return parsed.String()
}

// DatabaseURL creates a fresh migrated database for t, dropped when t ends, and returns its URL.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	tpl, err := templateDB(ctx)
	if err != nil {
		t.Fatalf("testenv: template database: %v", err)
	}
	name := "comms_t_" + strings.ToLower(ids.Random(12))
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("testenv: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE `+tpl); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, AdminURL())
		if err != nil {
			t.Logf("testenv: drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Logf("testenv: drop %s: %v", name, err)
		}
	})
	return withDB(AdminURL(), name)
}

// DB returns a pool on a fresh migrated database for t.
func DB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Open(context.Background(), DatabaseURL(t), 16)
	if err != nil {
		t.Fatalf("testenv: open: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Redis returns a client and a key prefix no other test uses; keys under it are deleted when t ends.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: RedisAddr()})
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("testenv: redis at %s (is it running?): %v", RedisAddr(), err)
	}
	prefix := "test:" + ids.Random(10) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		_ = rdb.Close()
	})
	return rdb, prefix
}

// Kafka starts an in-process Kafka-protocol broker with the given topics (partitions each) and
// returns its bootstrap addresses. It is closed when t ends.
func Kafka(t testing.TB, partitions int32, topics ...string) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatalf("testenv: kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}
