package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// promtool finds Prometheus' promtool (Debian's prometheus package; `make tools` installs it).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("COMMS_REQUIRE_TOOLS") != "" {
			t.Fatalf("promtool is required here (make tools installs it): %v", err)
		}
		t.Skip("promtool not installed (make tools); the alert rules are not checked")
	}
	return p
}

func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Record      string            `json:"record,omitempty"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// The rules load, each alert fires on its failure and not on the healthy case beside it
// (alerts_test.yml, alerts_days_test.yml), and the compose Prometheus' configuration loads them.
func TestAlertRulesPassPromtool(t *testing.T) {
	tool := promtool(t)
	dir := filepath.Join(repoRoot(t), "deploy", "prometheus")
	run(t, dir, tool, "check", "rules", "alerts.yml")
	run(t, dir, tool, "test", "rules", "alerts_test.yml", "alerts_days_test.yml")
	run(t, dir, tool, "check", "config", "prometheus.yml")
}

// Every alert is unit-tested, has a severity, and links a runbook entry that exists.
func TestEveryAlertHasATestAndARunbook(t *testing.T) {
	root := repoRoot(t)
	var rules ruleFile
	decodeYAML(t, filepath.Join(root, "deploy", "prometheus", "alerts.yml"), &rules)
	var tests []byte
	for _, f := range []string{"alerts_test.yml", "alerts_days_test.yml"} {
		b, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", f))
		if err != nil {
			t.Fatal(err)
		}
		tests = append(tests, b...)
	}
	ops, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !regexp.MustCompile(`alertname: ` + r.Alert + `\n`).Match(tests) {
				t.Errorf("%s has no unit test in alerts_test.yml or alerts_days_test.yml", r.Alert)
			}
			if !slices.Contains([]string{"page", "ticket", "info"}, r.Labels["severity"]) {
				t.Errorf("%s: severity %q, want page, ticket or info", r.Alert, r.Labels["severity"])
			}
			anchor := "alert-" + strings.ToLower(r.Alert)
			if !strings.HasSuffix(r.Annotations["runbook_url"], "docs/operations.md#"+anchor) {
				t.Errorf("%s: runbook_url %q, want docs/operations.md#%s", r.Alert, r.Annotations["runbook_url"], anchor)
			}
			if !strings.Contains(string(ops), "\n### Alert: "+r.Alert+"\n") {
				t.Errorf("%s: docs/operations.md has no section \"### Alert: %s\"", r.Alert, r.Alert)
			}
		}
	}
	if n < 6 {
		t.Errorf("%d alerts, want at least the six the operators were promised", n)
	}
}

func decodeYAML(t *testing.T, path string, v any) {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(body, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// Every query of the dashboard and every rule names only metrics comms exports (a renamed metric
// fails here, not on an on-call's empty graph), and every dashboard query is valid PromQL:
// promtool checks them as recording rules.
func TestDashboardAndRulesReadMetricsThatExist(t *testing.T) {
	root := repoRoot(t)
	exported := exportedMetrics(t, root)
	var rules ruleFile
	decodeYAML(t, filepath.Join(root, "deploy", "prometheus", "alerts.yml"), &rules)
	var exprs []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	body, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "comms.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash dashboard
	if err := json.Unmarshal(body, &dash); err != nil {
		t.Fatalf("deploy/grafana/comms.json: %v", err)
	}
	var queries []string
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			queries = append(queries, strings.ReplaceAll(q.Expr, "$__rate_interval", "5m"))
		}
	}
	// What an on-call was promised on the dashboard.
	for _, want := range []string{"comms_messages_accepted_total", "comms_http_request_seconds_bucket", "comms_accepted_to_sent_seconds_bucket",
		"comms_consumer_lag", "comms_messages_failed_total", "comms_breaker_state", "comms_retries_scheduled_total", "comms_dead_letters_total",
		"comms_callbacks_total", "comms_webhook_attempts_total"} {
		if !strings.Contains(strings.Join(queries, "\n"), want) {
			t.Errorf("the dashboard shows nothing of %s", want)
		}
	}
	used := regexp.MustCompile(`\bcomms_[a-z_]+`)
	for _, e := range append(exprs, queries...) {
		for _, name := range used.FindAllString(e, -1) {
			base := regexp.MustCompile(`_(bucket|count|sum)$`).ReplaceAllString(name, "")
			if !exported[name] && !exported[base] {
				t.Errorf("%q reads %s, which comms does not export", e, name)
			}
		}
	}

	tool := promtool(t)
	var rec strings.Builder
	rec.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, q := range queries {
		fmt.Fprintf(&rec, "      - record: dashboard:query%d\n        expr: %q\n", i, q)
	}
	file := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(file, []byte(rec.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, filepath.Dir(file), tool, "check", "rules", file)
}

// exportedMetrics is every metric name the metrics package declares.
func exportedMetrics(t *testing.T, root string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "internal", "platform", "metrics", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`"(comms_[a-z_]+)"`).FindAllStringSubmatch(string(body), -1) {
			out[m[1]] = true
		}
	}
	if len(out) < 20 {
		t.Fatalf("found %d metric names in internal/platform/metrics", len(out))
	}
	return out
}

// The compose observability profile mounts files that exist: the rules and Prometheus'
// configuration, Grafana's provisioning and the dashboard.
func TestComposeObservabilityProfileMountsWhatExists(t *testing.T) {
	root := repoRoot(t)
	var compose struct {
		Services map[string]struct {
			Profiles []string `json:"profiles"`
			Volumes  []string `json:"volumes"`
		} `json:"services"`
	}
	body, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(body, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"prometheus", "grafana"} {
		svc, ok := compose.Services[name]
		if !ok || !slices.Contains(svc.Profiles, "observability") {
			t.Errorf("no %s service in the observability profile", name)
			continue
		}
		for _, v := range svc.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("%s mounts %s: %v", name, src, err)
			}
		}
	}
}
