package e2e_test

import (
	"os/exec"
	"strings"
	"testing"
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
