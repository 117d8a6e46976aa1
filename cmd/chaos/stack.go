package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stack is the dev stack as separate processes: the broker (cmd/dev in broker-only mode), api,
// worker and webhook, each killable and restartable on its own, logging to files under dir.
type stack struct {
	bin, dir string
	env      []string
	mu       sync.Mutex
	procs    map[string]*exec.Cmd
}

// start runs bin/<binary> as name with extra environment, and waits until its log holds ready.
func (s *stack) start(name, binary, ready string, extra ...string) error {
	logPath := filepath.Join(s.dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	// Its life is managed by kill and stop, not by a context.
	cmd := exec.CommandContext(context.Background(), filepath.Join(s.bin, binary))
	cmd.Env = append(append(os.Environ(), s.env...), extra...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); _ = f.Close() }()
	s.mu.Lock()
	s.procs[name] = cmd
	s.mu.Unlock()
	if ready == "" {
		time.Sleep(time.Second)
		return nil
	}
	return waitForLine(logPath, ready, 30*time.Second)
}

// kill ends name at once (SIGKILL: a crash, not a shutdown).
func (s *stack) kill(name string) {
	s.mu.Lock()
	cmd := s.procs[name]
	delete(s.procs, name)
	s.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	}
}

// stop ends every process gracefully.
func (s *stack) stop() {
	s.mu.Lock()
	procs := s.procs
	s.procs = map[string]*exec.Cmd{}
	s.mu.Unlock()
	for _, cmd := range procs {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, cmd := range procs {
		done := make(chan struct{})
		go func() { _, _ = cmd.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
	}
}

// waitForLine waits until the file at path has a line containing want.
func waitForLine(path, want string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if f, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			found := false
			for sc.Scan() {
				if strings.Contains(sc.Text(), want) {
					found = true
				}
			}
			_ = f.Close()
			if found {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s: no line with %q within %s", path, want, within)
}

// restartPostgres restarts the machine's PostgreSQL cluster (fast shutdown: sessions are cut).
func restartPostgres(ctx context.Context) error {
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) == 0 {
		return fmt.Errorf("find the PostgreSQL cluster: %w", err)
	}
	return command(ctx, "pg_ctlcluster", "--skip-systemctl-redirect", versions[0].Name(), "main", "restart", "-m", "fast")
}

// restartRedis stops Redis without saving and starts it as this machine runs it (nothing on disk).
func restartRedis(ctx context.Context) error {
	_ = command(ctx, "redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave")
	time.Sleep(time.Second)
	return command(ctx, "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no")
}

func command(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
