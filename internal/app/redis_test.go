package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/app"
	"github.com/logicspike/comms/internal/platform/config"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/testing/testenv"
)

// A managed Redis is reached as its URL says: a password (requirepass or an ACL user), a
// database, and TLS with a private CA (rediss:// and COMMS_REDIS_TLS_CA_FILE). Credentials it
// refuses, or a certificate no configured CA signed, stop the service at start with a line
// naming the settings; Redis being down does not (it is a fast path).
func TestManagedRedisWithPasswordAndTLS(t *testing.T) {
	t.Parallel()
	certs := testenv.NewCertificates(t)
	ca := certs.CAFile
	plain, tlsPort := freePort(t), freePort(t)
	srv := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", plain, "--tls-port", tlsPort,
		"--tls-cert-file", certs.CertFile, "--tls-key-file", certs.KeyFile,
		"--tls-ca-cert-file", ca, "--tls-auth-clients", "no", "--requirepass", "s3cret", "--save", "", "--appendonly", "no")
	if err := srv.Start(); err != nil {
		t.Fatalf("redis-server (Debian's build has TLS): %v", err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	waitForPort(t, "127.0.0.1:"+tlsPort)

	open := func(env map[string]string) error {
		env["COMMS_DATABASE_URL"] = testenv.DatabaseURL(t)
		env["COMMS_ENCRYPTION_KEYS"] = stacktest.TestKeys
		cfg, err := config.Load(func(k string) string { return env[k] })
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d, err := app.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			return err
		}
		defer d.Close()
		if err := d.Redis.Set(ctx, "comms-test", "v", time.Minute).Err(); err != nil {
			return fmt.Errorf("set: %w", err)
		}
		if db := d.Redis.Options().DB; db != 2 {
			return fmt.Errorf("database %d, want 2", db)
		}
		return nil
	}
	for name, env := range map[string]map[string]string{
		"password":         {"COMMS_REDIS_URL": "redis://:s3cret@127.0.0.1:" + plain + "/2"},
		"TLS with its CA":  {"COMMS_REDIS_URL": "rediss://:s3cret@127.0.0.1:" + tlsPort + "/2", "COMMS_REDIS_TLS_CA_FILE": ca},
		"ACL default user": {"COMMS_REDIS_URL": "rediss://default:s3cret@127.0.0.1:" + tlsPort + "/2", "COMMS_REDIS_TLS_CA_FILE": ca},
	} {
		if err := open(env); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"wrong password": {map[string]string{"COMMS_REDIS_URL": "redis://:wrong@127.0.0.1:" + plain + "/2"}, "WRONGPASS"},
		"no password":    {map[string]string{"COMMS_REDIS_ADDR": "127.0.0.1:" + plain}, "NOAUTH"},
		"untrusted":      {map[string]string{"COMMS_REDIS_URL": "rediss://:s3cret@127.0.0.1:" + tlsPort + "/2"}, "certificate"},
		"CA without TLS": {map[string]string{"COMMS_REDIS_URL": "redis://:s3cret@127.0.0.1:" + plain, "COMMS_REDIS_TLS_CA_FILE": ca}, "rediss://"},
		"not a URL":      {map[string]string{"COMMS_REDIS_URL": "http://:s3cret@x:1"}, "COMMS_REDIS_URL"},
	} {
		err := open(tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
}

// freePort is a port below the kernel's ephemeral range, free now, for a server this test starts.
func freePort(t *testing.T) string {
	t.Helper()
	for range 100 {
		p := 20000 + int(time.Now().UnixNano()%12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			_ = ln.Close()
			return fmt.Sprint(p)
		}
	}
	t.Fatal("no free port")
	return ""
}

func waitForPort(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
