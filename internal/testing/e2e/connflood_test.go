package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/app"
)

// holdEnv makes the test binary a connection holder (see holdConnections) instead of a test run.
const holdEnv = "COMMS_E2E_HOLD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(holdEnv); spec != "" {
		holdConnections(spec)
		return
	}
	os.Exit(m.Run())
}

// holdConnections opens the connections spec asks for ("addr count local-ip"), says "held" on
// stdout, and keeps them open until stdin closes. Each holder is its own process because the
// held connections are more than one process's open-file limit.
func holdConnections(spec string) {
	f := strings.Fields(spec)
	addr, local := f[0], f[2]
	n, _ := strconv.Atoi(f[1])
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	var (
		mu     sync.Mutex
		conns  []net.Conn
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				c, err := d.Dial("tcp", addr)
				if err != nil {
					failed.Add(1)
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	fmt.Printf("held %d failed %d\n", len(conns), failed.Load())
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

// 25,000 client connections held open against the API (more than the process's open-file
// limit) must not stop it: a new client's message is accepted and sent, the API holds no more
// connections than its cap, and oversized headers get 431.
func TestHeldConnectionFloodLeavesIntakeAndDispatchWorking(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	t.Parallel()
	dir := buildBinaries(t, "api", "worker")
	ctx := context.Background()
	be := newBinaryEnv(t, "flood-test", 0)
	pool, key := be.pool, be.key
	const maxConns = 2000
	env := append(be.env, "COMMS_API_MAX_CONNS="+strconv.Itoa(maxConns))
	api := startBinary(t, dir+"/api", env)
	startBinary(t, dir+"/worker", env)
	apiAddr := <-api.addr

	const holders, perHolder = 2, 12_500
	var held int
	for h := range holders {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d 127.0.0.%d", holdEnv, apiAddr, perHolder, h+2))
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
		line, err := bufio.NewReader(stdout).ReadString('\n')
		var ok, failed int
		if _, serr := fmt.Sscanf(line, "held %d failed %d", &ok, &failed); err != nil || serr != nil {
			t.Fatalf("holder %d: %q, %v", h, line, err)
		}
		held += ok
	}
	t.Logf("%d client connections held against a cap of %d", held, maxConns)
	if held < holders*perHolder*9/10 {
		t.Fatalf("only %d of %d connections could be opened: the flood was not a flood", held, holders*perHolder)
	}
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", api.cmd.Process.Pid)); err == nil && len(fds) > maxConns+200 {
		t.Fatalf("the API holds %d descriptors with a cap of %d connections", len(fds), maxConns)
	}

	client := &http.Client{Timeout: 10 * time.Second}
	post := func(header string) (*http.Response, error) {
		req, _ := http.NewRequest("POST", "http://"+apiAddr+"/v1/messages", strings.NewReader(`{"channel":"sms","to":"+14155550123","text":"through the flood"}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		if header != "" {
			req.Header.Set("X-Padding", header)
		}
		return client.Do(req)
	}
	resp, err := post("")
	if err != nil {
		t.Fatalf("send during the flood: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("send during the flood: %d", resp.StatusCode)
	}
	id := strings.TrimPrefix(resp.Header.Get("Location"), "/v1/messages/")
	deadline := time.Now().Add(30 * time.Second)
	for {
		var status string
		if err := pool.QueryRow(ctx, `SELECT status FROM communication.message_logs WHERE id = $1`, id).Scan(&status); err != nil {
			t.Fatal(err)
		}
		if status == "sent" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message accepted during the flood is still %s after 30 s", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp, err := post(strings.Repeat("x", 2*app.MaxHeaderBytes)); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized headers: %v, %v; want 431", resp, err)
	}
}
