// Package e2e_test runs the real binaries as separate processes over real PostgreSQL, Redis and a
// Kafka-protocol broker.
package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/logicspike/comms/internal/app"
	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/client"
	"github.com/logicspike/comms/pkg/message"
)

type proc struct {
	cmd     *exec.Cmd
	addr    chan string // the address from the "listening" log line
	metrics chan string // the address from the "metrics listening" log line
	done    chan error
}

func startBinary(t *testing.T, bin string, env []string) *proc {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, addr: make(chan string, 1), metrics: make(chan string, 1), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil {
				switch line["msg"] {
				case "listening":
					p.addr <- fmt.Sprint(line["addr"])
				case "metrics listening":
					p.metrics <- fmt.Sprint(line["addr"])
				}
			}
			if testing.Verbose() {
				t.Log(filepath.Base(bin), sc.Text())
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return p
}

// binaryEnv is what the binaries under test share: a fresh migrated database with sandbox system
// defaults, a Redis prefix, a broker, one tenant's key, and the environment that points the
// binaries at them (listeners on free ports, worker consumer group group).
type binaryEnv struct {
	pool    *pgxpool.Pool
	key     string
	brokers []string
	env     []string
}

func newBinaryEnv(t *testing.T, group string, sandboxLatencyMS int) binaryEnv {
	t.Helper()
	ctx := context.Background()
	dbURL := testenv.DatabaseURL(t)
	_, prefix := testenv.Redis(t)
	brokers := testenv.Kafka(t, 4, queue.AllTopics()...)
	pool, err := db.Open(ctx, dbURL, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := store.New(pool)
	if _, err := app.EnsureSandboxDefaults(ctx, st, sandboxLatencyMS); err != nil {
		t.Fatal(err)
	}
	tenant, _ := st.CreateTenant(ctx, domain.NewTenant{Name: "t", AllowSystemFallback: true})
	_, key, _ := st.CreateAPIKey(ctx, domain.KindTenant, tenant.ID, "k", nil)
	return binaryEnv{pool: pool, key: key, brokers: brokers, env: []string{
		"COMMS_DATABASE_URL=" + dbURL, "COMMS_REDIS_ADDR=" + testenv.RedisAddr(), "COMMS_REDIS_PREFIX=" + prefix,
		"COMMS_KAFKA_BROKERS=" + strings.Join(brokers, ","), "COMMS_API_ADDR=127.0.0.1:0", "COMMS_WEBHOOK_ADDR=127.0.0.1:0",
		"COMMS_METRICS_ADDR=127.0.0.1:0", "COMMS_WORKER_GROUP=" + group, "COMMS_DRAIN_DELAY=0s",
		"COMMS_LOG_FORMAT=json", "COMMS_ENCRYPTION_KEYS=" + stacktest.TestKeys,
	}}
}

// buildBinaries builds the named commands into a temporary directory and returns it.
func buildBinaries(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"build", "-o", dir + "/"}
	for _, n := range names {
		args = append(args, "../../../cmd/"+n)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return dir
}

func (p *proc) terminate(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("%s exited after SIGTERM with %v", p.cmd.Path, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit within 30 s of SIGTERM", p.cmd.Path)
	}
}

func TestBinariesShutDownGracefullyOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	t.Parallel()
	dir := buildBinaries(t, "api", "worker", "webhook")

	ctx := context.Background()
	be := newBinaryEnv(t, "sigterm-test", 5000) // slow provider: sends are in flight at SIGTERM
	pool, key, brokers := be.pool, be.key, be.brokers
	env := append(be.env, "COMMS_SHUTDOWN_TIMEOUT=20s", "COMMS_DRAIN_DELAY=3s")
	api := startBinary(t, dir+"/api", env)
	worker := startBinary(t, dir+"/worker", env)
	hook := startBinary(t, dir+"/webhook", env)
	apiAddr, hookAddr := <-api.addr, <-hook.addr

	const n = 20
	apiClient := client.New("http://"+apiAddr, key)
	for i := range n {
		if _, err := apiClient.SendMessage(context.Background(), client.MessageRequest{Channel: "sms", To: "+14155550123", Text: fmt.Sprintf("m%d", i)}); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	if resp, err := http.Get("http://" + hookAddr + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("webhook health: %v", err)
	}
	// Metrics are served on each binary's own listener, never on the public ports: their labels
	// name every tenant.
	for _, addr := range []string{apiAddr, hookAddr} {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("public port %s answered /metrics with %d, want 404", addr, resp.StatusCode)
		}
	}
	for name, p := range map[string]*proc{"api": api, "worker": worker, "webhook": hook} {
		addr := <-p.metrics
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `comms_build_info{binary="`+name+`"`) {
			t.Errorf("%s's metrics listener %s: %d", name, addr, resp.StatusCode)
		}
		// Pool figures, read from the live pools at scrape time: every binary has used its
		// PostgreSQL pool by now, and holds a Redis pool.
		if m := regexp.MustCompile(`(?m)^comms_db_pool_acquires_total (\d+)`).FindStringSubmatch(string(body)); m == nil || m[1] == "0" {
			t.Errorf("%s: comms_db_pool_acquires_total is %v, want a count above 0", name, m)
		}
		for _, series := range []string{`comms_db_pool_connections{state="acquired"}`, `comms_db_pool_max_connections`, `comms_redis_pool_connections{state="idle"}`, `comms_redis_pool_timeouts_total`} {
			if !strings.Contains(string(body), "\n"+series+" ") {
				t.Errorf("%s: no %s in its metrics", name, series)
			}
		}
		if resp, err := http.Get("http://" + addr + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s's liveness on %s: %v", name, addr, err)
		} else {
			_ = resp.Body.Close()
		}
	}

	count := func(status message.Status) int {
		var c int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM communication.message_logs WHERE status = $1`, status).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	deadline := time.Now().Add(30 * time.Second)
	for count(message.Sending) < n { // the worker is mid-send on every one of them
		if time.Now().After(deadline) {
			t.Fatalf("messages never reached sending: %d sending, %d sent", count(message.Sending), count(message.Sent))
		}
		time.Sleep(20 * time.Millisecond)
	}
	worker.terminate(t)
	if sent := count(message.Sent); sent != n {
		t.Fatalf("after SIGTERM the worker left %d of %d messages unsent", n-sent, n)
	}
	offs, err := queue.Committed(ctx, brokers, "sigterm-test", queue.TopicSend, 0, 1, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	for _, off := range offs {
		committed += max(off, 0)
	}
	if committed != n {
		t.Fatalf("offsets committed for %d intents, want %d", committed, n)
	}
	// On SIGTERM the API first drains: /readyz fails while it goes on serving, so that load
	// balancers stop sending before it stops accepting.
	if err := api.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(3 * time.Second)
	for {
		resp, err := http.Get("http://" + apiAddr + "/readyz")
		if err != nil {
			t.Fatalf("the API stopped accepting before it drained: %v", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still answers %d after SIGTERM", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := apiClient.SendMessage(context.Background(), client.MessageRequest{Channel: "sms", To: "+14155550123", Text: "while draining"}); err != nil {
		t.Fatalf("a send while draining: %v", err)
	}
	if err := <-api.done; err != nil {
		t.Fatalf("api exited after SIGTERM with %v", err)
	}
	hook.terminate(t)
}
