// Package clients runs each language's client test against a running API: the TypeScript
// client's with Node (clients/typescript, installed by make clients), the Python client's with
// python3.
package clients_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/webhooks"
)

// stack starts an API with a worker and a webhook deliverer, and returns the environment a
// client's test reads: the API's URL, an admin key, and a tenant's id and key.
func stack(t *testing.T) []string {
	t.Helper()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	s.StartDeliverer(webhooks.Config{})
	tid, key := s.Tenant()
	return append(os.Environ(), "COMMS_URL="+s.URL, "COMMS_ADMIN_KEY="+s.AdminKey, "COMMS_KEY="+key, "COMMS_TENANT_ID="+tid)
}

// run runs a command in dir with env, failing the test with its output unless it succeeds.
func run(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v in %s: %v\n%s", name, args, dir, err, out)
	}
}

func TestTheTypeScriptClient(t *testing.T) {
	t.Parallel()
	dir, _ := filepath.Abs("../../../clients/typescript")
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		t.Fatalf("clients/typescript has no node_modules: run make clients (%v)", err)
	}
	env := stack(t)
	run(t, dir, env, "npx", "tsc", "-p", "tsconfig.json")
	run(t, dir, env, "node", "--test", "test/")
}

func TestThePythonClient(t *testing.T) {
	t.Parallel()
	dir, _ := filepath.Abs("../../../clients/python")
	if _, err := os.Stat("../../../clients/typescript/node_modules"); err != nil {
		t.Fatalf("the Python client's tests check signatures against clients/typescript's standardwebhooks: run make clients (%v)", err)
	}
	run(t, dir, stack(t), "python3", "-m", "unittest", "discover", "-s", "tests", "-v")
}
