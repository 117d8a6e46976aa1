package e2e_test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/testing/testenv"
)

// Help and --version need no configuration: with an empty environment (no database, no keys)
// they answer on stdout and exit 0, on every binary.
func TestHelpAndVersionWithoutConfiguration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	t.Parallel()
	dir := buildBinaries(t, "api", "worker", "webhook", "commsctl", "dev")
	run := func(bin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(dir+"/"+bin, args...)
		cmd.Env = []string{} // nothing: no COMMS_*, no PATH
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("%s %v: %v, stderr %q", bin, args, err, stderr.String())
		}
		return stdout.String()
	}
	for _, bin := range []string{"api", "worker", "webhook", "commsctl", "dev"} {
		if out := run(bin, "--version"); !strings.HasPrefix(out, bin+" ") || !strings.Contains(out, "commit") {
			t.Errorf("%s --version: %q", bin, out)
		}
	}
	for _, args := range [][]string{{"--help"}, {"help"}, {"-h"}} {
		if out := run("commsctl", args...); !strings.Contains(out, "usage: commsctl") || !strings.Contains(out, "dlq replay") {
			t.Errorf("commsctl %v: %q", args, out)
		}
	}
	if out := run("commsctl", "dlq", "replay", "-h"); !strings.Contains(out, "dlq replay") || strings.Contains(out, "tenant create") {
		t.Errorf("commsctl dlq replay -h: %q, want the dlq commands only", out)
	}
	if out := run("api", "--help"); !strings.Contains(out, "environment") {
		t.Errorf("api --help: %q", out)
	}
}

// A binary refuses to start against a database older than it needs, saying which migrations are
// missing and what to run, rather than failing request by request.
func TestBinaryRefusesAnUnmigratedDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	t.Parallel()
	dir := buildBinaries(t, "api", "commsctl")
	dbURL := testenv.EmptyDatabaseURL(t)
	cmd := exec.Command(dir + "/api")
	cmd.Env = []string{"COMMS_DATABASE_URL=" + dbURL, "COMMS_ENCRYPTION_KEYS=" + stacktest.TestKeys,
		"COMMS_API_ADDR=127.0.0.1:0", "COMMS_METRICS_ADDR=127.0.0.1:0", "COMMS_KAFKA_BROKERS=127.0.0.1:1", "COMMS_LOG_FORMAT=text"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "run commsctl migrate") ||
		!strings.Contains(string(out), "0001_init.sql") {
		t.Fatalf("api against an unmigrated database: %v\n%s", err, out)
	}
	// commsctl says the same, and its status lists what is missing.
	ctl := func(url string, args ...string) (string, error) {
		cmd := exec.Command(dir+"/commsctl", args...)
		cmd.Env = []string{"COMMS_DATABASE_URL=" + url, "COMMS_ENCRYPTION_KEYS=" + stacktest.TestKeys}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := ctl(dbURL, "tenant", "list"); err == nil || !strings.Contains(out, "database not migrated") || !strings.Contains(out, "run commsctl migrate") {
		t.Errorf("commsctl tenant list against an unmigrated database: %v\n%s", err, out)
	}
	if out, err := ctl(dbURL, "migrate", "status"); err != nil || !strings.Contains(out, "0001_init.sql") || !strings.Contains(out, "not applied") {
		t.Errorf("commsctl migrate status: %v\n%s", err, out)
	}
	if out, err := ctl("postgres://nobody@127.0.0.1:1/comms?connect_timeout=2", "tenant", "list"); err == nil || !strings.Contains(out, "check COMMS_DATABASE_URL") {
		t.Errorf("commsctl against no database: %v\n%s", err, out)
	}
}
