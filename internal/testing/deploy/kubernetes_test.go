// Package deploy holds deploy/kubernetes to what a cluster would accept and what an operator is
// promised: every overlay builds with kubectl kustomize, every object decodes strictly into its
// Kubernetes API type (a misspelt field fails here, not at apply time), and the rules of
// docs/kubernetes.md hold for every pod.
package deploy

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// manifests is one overlay's objects, decoded.
type manifests struct {
	overlay     string
	deployments map[string]*appsv1.Deployment
	jobs        map[string]*batchv1.Job
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs        map[string]*policyv1.PodDisruptionBudget
	ingresses   map[string]*networkingv1.Ingress
	policies    map[string]*networkingv1.NetworkPolicy
	scaled      map[string]*scaledObject
	accounts    map[string]*corev1.ServiceAccount
}

// scaledObject is the part of KEDA's keda.sh/v1alpha1 ScaledObject the base uses, field for
// field as KEDA's CRD names them, so that strict decoding still catches a misspelling.
type scaledObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		ScaleTargetRef struct {
			Name       string `json:"name"`
			Kind       string `json:"kind,omitempty"`
			APIVersion string `json:"apiVersion,omitempty"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int32 `json:"minReplicaCount"`
		MaxReplicaCount *int32 `json:"maxReplicaCount"`
		PollingInterval *int32 `json:"pollingInterval"`
		CooldownPeriod  *int32 `json:"cooldownPeriod"`
		Fallback        *struct {
			FailureThreshold int32 `json:"failureThreshold"`
			Replicas         int32 `json:"replicas"`
		} `json:"fallback"`
		Triggers []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// externalSecret is the part of external-secrets.io/v1 ExternalSecret the example uses.
type externalSecret struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		RefreshInterval string `json:"refreshInterval"`
		SecretStoreRef  struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"secretStoreRef"`
		Target struct {
			Name           string `json:"name"`
			CreationPolicy string `json:"creationPolicy"`
		} `json:"target"`
		Data []struct {
			SecretKey string `json:"secretKey"`
			RemoteRef struct {
				Key      string `json:"key"`
				Property string `json:"property"`
			} `json:"remoteRef"`
		} `json:"data"`
	} `json:"spec"`
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// build runs kubectl kustomize on an overlay and decodes every object strictly.
func build(t *testing.T, overlay string) *manifests {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl is needed to build deploy/kubernetes (it is on these machines): %v", err)
	}
	dir := filepath.Join(repoRoot(t), "deploy", "kubernetes", "overlays", overlay)
	var stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", overlay, err, stderr.String())
	}
	m := &manifests{overlay: overlay,
		deployments: map[string]*appsv1.Deployment{}, jobs: map[string]*batchv1.Job{},
		services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, ingresses: map[string]*networkingv1.Ingress{},
		policies: map[string]*networkingv1.NetworkPolicy{}, scaled: map[string]*scaledObject{},
		accounts: map[string]*corev1.ServiceAccount{},
	}
	for i, doc := range bytes.Split(out, []byte("\n---\n")) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("%s: document %d: %v", overlay, i, err)
		}
		name := head.Metadata.Name
		var into any
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 Deployment":
			into = put(m.deployments, name)
		case "batch/v1 Job":
			into = put(m.jobs, name)
		case "v1 Service":
			into = put(m.services, name)
		case "v1 ConfigMap":
			into = put(m.configMaps, name)
		case "v1 Secret":
			into = put(m.secrets, name)
		case "v1 ServiceAccount":
			into = put(m.accounts, name)
		case "autoscaling/v2 HorizontalPodAutoscaler":
			into = put(m.hpas, name)
		case "policy/v1 PodDisruptionBudget":
			into = put(m.pdbs, name)
		case "networking.k8s.io/v1 Ingress":
			into = put(m.ingresses, name)
		case "networking.k8s.io/v1 NetworkPolicy":
			into = put(m.policies, name)
		case "keda.sh/v1alpha1 ScaledObject":
			into = put(m.scaled, name)
		default:
			t.Fatalf("%s: %s %s %q: a kind this test does not know; teach it the kind's rules", overlay, head.APIVersion, head.Kind, name)
		}
		if err := yaml.UnmarshalStrict(doc, into); err != nil {
			t.Errorf("%s: %s %q does not decode strictly: %v", overlay, head.Kind, name, err)
		}
	}
	return m
}

func put[T any](m map[string]*T, name string) *T {
	v := new(T)
	m[name] = v
	return v
}

var overlays = []string{"production", "dev"}

// The three binaries, each a Deployment.
var workloads = []string{"comms-api", "comms-worker", "comms-webhook"}

func TestEveryPodMeetsTheRestrictedPodSecurityLevel(t *testing.T) {
	for _, overlay := range overlays {
		m := build(t, overlay)
		pods := map[string]corev1.PodSpec{}
		for name, d := range m.deployments {
			pods["Deployment "+name] = d.Spec.Template.Spec
		}
		for name, j := range m.jobs {
			pods["Job "+name] = j.Spec.Template.Spec
		}
		if len(pods) < len(workloads) {
			t.Fatalf("%s: %d pod templates, want at least %d", overlay, len(pods), len(workloads))
		}
		for what, pod := range pods {
			where := overlay + ": " + what
			sc := pod.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				t.Errorf("%s: runAsNonRoot is not set", where)
			}
			if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
				t.Errorf("%s: runAsUser must be a non-zero UID (the image's user is a name, which the kubelet cannot check)", where)
			}
			if sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: seccompProfile is not RuntimeDefault", where)
			}
			if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
				t.Errorf("%s: mounts a service account token it never uses", where)
			}
			if pod.HostNetwork || pod.HostPID || pod.HostIPC {
				t.Errorf("%s: shares a host namespace", where)
			}
			for _, v := range pod.Volumes {
				if v.HostPath != nil {
					t.Errorf("%s: volume %s is a hostPath", where, v.Name)
				}
			}
			for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
				checkContainer(t, where+" container "+c.Name, c)
			}
		}
	}
}

func checkContainer(t *testing.T, where string, c corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Errorf("%s: no securityContext", where)
		return
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("%s: allowPrivilegeEscalation is not false", where)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("%s: the root filesystem is writable", where)
	case sc.Privileged != nil && *sc.Privileged:
		t.Errorf("%s: privileged", where)
	case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0:
		t.Errorf("%s: capabilities must drop ALL and add none, got %+v", where, sc.Capabilities)
	}
	if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		t.Errorf("%s: runs as root", where)
	}
	r := c.Resources
	if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
		t.Errorf("%s: resources want cpu and memory requests and a memory limit, got %+v", where, r)
	}
	repo, tag, ok := strings.Cut(c.Image, ":")
	if !ok || strings.Contains(c.Image, "@") && !strings.Contains(c.Image, "@sha256:") || tag == "" || tag == "latest" || repo == "" {
		t.Errorf("%s: image %q is not pinned to a tag or digest", where, c.Image)
	}
}

func TestEveryBinaryHasProbesDrainsAndIsScraped(t *testing.T) {
	for _, overlay := range overlays {
		m := build(t, overlay)
		cfg := m.configMaps["comms"]
		if cfg == nil {
			t.Fatalf("%s: no ConfigMap comms", overlay)
		}
		drain := duration(t, cfg.Data["COMMS_DRAIN_DELAY"])
		shutdown := duration(t, cfg.Data["COMMS_SHUTDOWN_TIMEOUT"])
		_, metricsPort, err := net.SplitHostPort(cfg.Data["COMMS_METRICS_ADDR"])
		if err != nil {
			t.Fatalf("%s: COMMS_METRICS_ADDR %q: %v", overlay, cfg.Data["COMMS_METRICS_ADDR"], err)
		}
		for _, name := range workloads {
			d := m.deployments[name]
			if d == nil {
				t.Fatalf("%s: no Deployment %s", overlay, name)
			}
			where := overlay + ": " + name
			pod := d.Spec.Template.Spec
			if len(pod.Containers) != 1 {
				t.Fatalf("%s: %d containers, want 1", where, len(pod.Containers))
			}
			c := pod.Containers[0]
			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			for kind, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
				if p == nil || p.HTTPGet == nil {
					t.Errorf("%s: no HTTP %s probe", where, kind)
					continue
				}
				if _, ok := ports[p.HTTPGet.Port.String()]; !ok {
					t.Errorf("%s: %s probe names port %q, which the container does not declare", where, kind, p.HTTPGet.Port.String())
				}
			}
			grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
			if grace <= drain+shutdown {
				t.Errorf("%s: terminationGracePeriodSeconds %v does not cover COMMS_DRAIN_DELAY %v + COMMS_SHUTDOWN_TIMEOUT %v", where, grace, drain, shutdown)
			}
			ann := d.Spec.Template.Annotations
			if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != metricsPort || strconv.Itoa(int(ports["metrics"])) != metricsPort {
				t.Errorf("%s: metrics are not scraped from COMMS_METRICS_ADDR's port %s (annotations %v, ports %v)", where, metricsPort, ann, ports)
			}
			if len(pod.TopologySpreadConstraints) == 0 {
				t.Errorf("%s: no topology spread", where)
			}
			if !selectsAPDB(m, d) {
				t.Errorf("%s: no PodDisruptionBudget selects its pods", where)
			}
		}
	}
}

func duration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}

func selectsAPDB(m *manifests, d *appsv1.Deployment) bool {
	for _, pdb := range m.pdbs {
		if pdb.Spec.Selector != nil && subset(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			return true
		}
	}
	return false
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

func TestScalingIsBoundedAndTargetsTheWorkloads(t *testing.T) {
	for _, overlay := range overlays {
		m := build(t, overlay)
		partitions, err := strconv.Atoi(m.configMaps["comms"].Data["COMMS_KAFKA_PARTITIONS"])
		if err != nil {
			t.Fatalf("%s: COMMS_KAFKA_PARTITIONS: %v", overlay, err)
		}
		so := m.scaled["comms-worker"]
		if so == nil {
			t.Fatalf("%s: no ScaledObject for the worker", overlay)
		}
		if so.Spec.ScaleTargetRef.Name != "comms-worker" || m.deployments[so.Spec.ScaleTargetRef.Name] == nil {
			t.Errorf("%s: the ScaledObject targets %q", overlay, so.Spec.ScaleTargetRef.Name)
		}
		if so.Spec.MaxReplicaCount == nil || int(*so.Spec.MaxReplicaCount) > partitions || *so.Spec.MinReplicaCount < 1 {
			t.Errorf("%s: worker replicas must stay within 1..COMMS_KAFKA_PARTITIONS (%d)", overlay, partitions)
		}
		if len(so.Spec.Triggers) != 1 || !strings.Contains(so.Spec.Triggers[0].Metadata["query"], "comms_consumer_lag") {
			t.Errorf("%s: the worker scales on something other than comms_consumer_lag: %+v", overlay, so.Spec.Triggers)
		}
		for _, name := range []string{"comms-api", "comms-webhook"} {
			h := m.hpas[name]
			if h == nil || h.Spec.ScaleTargetRef.Name != name || m.deployments[name] == nil || h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
				t.Errorf("%s: %s needs an HPA keeping at least 2 replicas", overlay, name)
			}
		}
	}
}

func TestSecretsAndSeedingStayOutOfProduction(t *testing.T) {
	prod := build(t, "production")
	if len(prod.secrets) != 0 {
		t.Errorf("production carries Secrets %v: an apply would reset the real ones", keys(prod.secrets))
	}
	dev := build(t, "dev")
	if dev.secrets["comms"] == nil {
		t.Errorf("dev has no Secret comms")
	}
	seeds := func(m *manifests) (n int) {
		for _, d := range m.deployments {
			for _, c := range append(d.Spec.Template.Spec.InitContainers, d.Spec.Template.Spec.Containers...) {
				if strings.Contains(strings.Join(c.Command, " "), "sandbox") {
					n++
				}
			}
		}
		return n + len(m.jobs)
	}
	if n := seeds(prod); n != 0 {
		t.Errorf("production seeds sandbox providers in %d places", n)
	}
	if n := seeds(dev); n != 1 {
		t.Errorf("dev seeds sandbox providers in %d places, want 1", n)
	}
	// Every pod migrates before it serves, and reads the Secret by the one name the docs give.
	for _, name := range workloads {
		pod := prod.deployments[name].Spec.Template.Spec
		if len(pod.InitContainers) != 1 || strings.Join(pod.InitContainers[0].Command, " ") != "commsctl setup" {
			t.Errorf("production %s: its pods do not run `commsctl setup` before serving", name)
		}
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			found := false
			for _, e := range c.EnvFrom {
				found = found || e.SecretRef != nil && e.SecretRef.Name == "comms"
			}
			if !found {
				t.Errorf("production %s container %s: does not read the Secret comms", name, c.Name)
			}
		}
	}
}

func keys[T any](m map[string]T) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestIngressAndNetworkPoliciesReachTheRightPods(t *testing.T) {
	m := build(t, "production")
	ing := m.ingresses["comms"]
	if ing == nil {
		t.Fatal("no Ingress comms")
	}
	reached := map[string]bool{}
	for _, rule := range ing.Spec.Rules {
		for _, p := range rule.HTTP.Paths {
			svc := m.services[p.Backend.Service.Name]
			if svc == nil {
				t.Errorf("Ingress host %s routes to a missing Service %q", rule.Host, p.Backend.Service.Name)
				continue
			}
			found := false
			for _, sp := range svc.Spec.Ports {
				found = found || sp.Name == p.Backend.Service.Port.Name
			}
			if !found {
				t.Errorf("Ingress host %s names port %q, which Service %s lacks", rule.Host, p.Backend.Service.Port.Name, svc.Name)
			}
			reached[svc.Name] = true
		}
	}
	if !reached["comms-api"] || !reached["comms-webhook"] {
		t.Errorf("the Ingress reaches %v, want comms-api and comms-webhook", reached)
	}
	for name, svc := range m.services {
		d := m.deployments[name]
		if d == nil || !subset(svc.Spec.Selector, d.Spec.Template.Labels) {
			t.Errorf("Service %s selects no Deployment's pods", name)
		}
	}
	deny := m.policies["comms-default-deny"]
	if deny == nil || len(deny.Spec.Ingress) != 0 {
		t.Fatal("no default-deny NetworkPolicy")
	}
	for _, name := range workloads {
		labels := m.deployments[name].Spec.Template.Labels
		if !subset(deny.Spec.PodSelector.MatchLabels, labels) {
			t.Errorf("the default-deny policy does not select %s's pods (labels %v)", name, labels)
		}
		allowed := map[string]bool{}
		for _, p := range m.policies {
			if p.Name == deny.Name || !subset(p.Spec.PodSelector.MatchLabels, labels) {
				continue
			}
			for _, rule := range p.Spec.Ingress {
				for _, port := range rule.Ports {
					allowed[port.Port.String()] = true
				}
			}
		}
		for _, port := range m.deployments[name].Spec.Template.Spec.Containers[0].Ports {
			if !allowed[port.Name] {
				t.Errorf("%s's port %s is reachable from nowhere", name, port.Name)
			}
		}
	}
}

func TestExternalSecretExampleDecodesAndFillsTheSecret(t *testing.T) {
	body, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "kubernetes", "examples", "external-secret.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var es externalSecret
	if err := yaml.UnmarshalStrict(body, &es); err != nil {
		t.Fatalf("does not decode strictly: %v", err)
	}
	if es.APIVersion != "external-secrets.io/v1" || es.Kind != "ExternalSecret" || es.Spec.Target.Name != "comms" {
		t.Errorf("want an external-secrets.io/v1 ExternalSecret making Secret comms, got %s %s → %s", es.APIVersion, es.Kind, es.Spec.Target.Name)
	}
	got := map[string]bool{}
	for _, d := range es.Spec.Data {
		got[d.SecretKey] = true
	}
	for _, required := range []string{"COMMS_DATABASE_URL", "COMMS_ENCRYPTION_KEYS"} {
		if !got[required] {
			t.Errorf("the example does not fill %s", required)
		}
	}
	// Every key it fills is a setting the binaries read.
	ops, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	for k := range got {
		if !regexp.MustCompile(regexp.QuoteMeta(strings.TrimSuffix(k, "_PASSWORD"))).Match(ops) {
			t.Errorf("the example fills %s, which docs/operations.md does not document", k)
		}
	}
}
