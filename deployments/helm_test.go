package deployments

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/remediator/remediator/config"
)

const (
	natsValuesPath    = "kubernetes/nats-values.yaml"
	adapterValuesPath = "kubernetes/monitoring/prometheus-adapter-values.yaml"
	podMonitorPath    = "kubernetes/monitoring/remediator-podmonitor.yaml"
)

func loadYAMLMap(t *testing.T, file string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.UnmarshalStrict(b, &m); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return m
}

// at walks a parsed YAML document along dotted keys.
func at(v any, keys string) any {
	for _, k := range strings.Split(keys, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// The values for the official NATS chart give remediator what it relies on: a 3-node
// JetStream cluster on persistent file storage, TLS and auth from Secrets, and metrics for
// Prometheus; and the remediator side (configuration, Deployment) matches them.
func TestNATSHelmValues(t *testing.T) {
	t.Parallel()
	v := loadYAMLMap(t, natsValuesPath)
	want := map[string]any{
		"config.cluster.enabled":                 true,
		"config.cluster.replicas":                float64(3),
		"config.cluster.tls.enabled":             true,
		"config.jetstream.enabled":               true,
		"config.jetstream.fileStore.enabled":     true,
		"config.jetstream.fileStore.pvc.enabled": true,
		"config.jetstream.memoryStore.enabled":   false,
		"config.nats.tls.enabled":                true,
		"config.monitor.enabled":                 true,
		"podDisruptionBudget.enabled":            true,
		"promExporter.enabled":                   true,
		"promExporter.podMonitor.enabled":        true,
	}
	for k, w := range want {
		if got := at(v, k); got != w {
			t.Errorf("%s: %s = %v, want %v", natsValuesPath, k, got, w)
		}
	}
	for _, k := range []string{"config.jetstream.fileStore.pvc.size", "config.cluster.tls.secretName", "config.nats.tls.secretName"} {
		if s, _ := at(v, k).(string); s == "" {
			t.Errorf("%s: %s is not set", natsValuesPath, k)
		}
	}

	// Auth: the user remediator connects as, with a password that is only a reference to an
	// environment variable the chart fills from a Secret.
	users, _ := at(v, "config.merge.authorization.users").([]any)
	refRE := regexp.MustCompile(`^<< \$([A-Z_][A-Z0-9_]*) >>$`)
	k8s, err := config.Load(k8sConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var natsUser map[string]any
	for _, u := range users {
		u, _ := u.(map[string]any)
		if u["user"] == k8s.NATS.User {
			natsUser = u
		}
	}
	if natsUser == nil {
		t.Fatalf("%s: config.merge.authorization.users has no user %q (nats.user in %s)", natsValuesPath, k8s.NATS.User, k8sConfigPath)
	}
	pw, _ := natsUser["password"].(string)
	m := refRE.FindStringSubmatch(pw)
	if m == nil {
		t.Fatalf("%s: config.merge.authorization.users[%s].password %q: not a << $VAR >> reference; no secret value belongs in this file", natsValuesPath, k8s.NATS.User, pw)
	}
	ref, _ := at(v, "container.env."+m[1]+".valueFrom.secretKeyRef").(map[string]any)
	if ref == nil {
		t.Fatalf("%s: container.env.%s: not set from a secretKeyRef", natsValuesPath, m[1])
	}

	// The remediator Deployment reads the same Secret key for nats.passwordEnv.
	d := builtRemediator(t, "kubernetes")
	i := slices.IndexFunc(d.Spec.Template.Spec.Containers[0].Env, func(e corev1.EnvVar) bool { return e.Name == k8s.NATS.PasswordEnv })
	if i < 0 {
		t.Fatalf("Deployment remediator: no env %s (nats.passwordEnv)", k8s.NATS.PasswordEnv)
	}
	if sk := d.Spec.Template.Spec.Containers[0].Env[i].ValueFrom.SecretKeyRef; sk == nil || sk.Name != ref["name"] || sk.Key != ref["key"] {
		t.Errorf("Deployment remediator: env %s reads %v, the NATS chart reads Secret %v key %v", k8s.NATS.PasswordEnv, sk, ref["name"], ref["key"])
	}
	if k8s.NATS.TLSCAFile == "" {
		t.Errorf("%s: nats.tlsCAFile is not set, but the chart's client port requires TLS", k8sConfigPath)
	}

	// With the chart's own values.yaml at hand (NATS_CHART_VALUES=.../helm/charts/nats/values.yaml),
	// every key set here must be one the chart knows: a misspelt key is silently ignored by Helm.
	if chart := os.Getenv("NATS_CHART_VALUES"); chart != "" {
		for _, p := range unknownKeys(v, loadYAMLMap(t, chart), "") {
			t.Errorf("%s: %s is not a value of the chart (%s)", natsValuesPath, p, chart)
		}
	} else {
		t.Log("NATS_CHART_VALUES not set: keys not compared with the chart's values.yaml")
	}
}

// unknownKeys lists the keys of ours that the chart's values do not have. Below a key whose
// chart default is empty or not a map (merge, patch, env, resources...), anything goes.
func unknownKeys(ours, chart map[string]any, prefix string) []string {
	var out []string
	for k, v := range ours {
		cv, ok := chart[k]
		if !ok {
			out = append(out, prefix+k)
			continue
		}
		om, oIsMap := v.(map[string]any)
		cm, cIsMap := cv.(map[string]any)
		if oIsMap && cIsMap && len(cm) > 0 {
			out = append(out, unknownKeys(om, cm, prefix+k+".")...)
		}
	}
	return out
}

func builtRemediator(t *testing.T, dir string) *appsv1.Deployment {
	t.Helper()
	built, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range built.Resources() {
		if r.GetKind() != "Deployment" || r.GetName() != "remediator" {
			continue
		}
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		ms, err := decodeDocuments(dir, y, false)
		if err != nil {
			t.Fatal(err)
		}
		return ms[0].obj.(*appsv1.Deployment)
	}
	t.Fatalf("%s: no Deployment remediator", dir)
	return nil
}

// The HPA's metric reaches Kubernetes only if Prometheus scrapes /metrics and
// prometheus-adapter serves the backlog under the name the HPA asks for.
func TestBacklogMetricPipeline(t *testing.T) {
	t.Parallel()
	d := builtRemediator(t, "kubernetes")
	pm := loadYAMLMap(t, podMonitorPath)
	if at(pm, "kind") != "PodMonitor" {
		t.Fatalf("%s: kind %v", podMonitorPath, at(pm, "kind"))
	}
	sel, _ := at(pm, "spec.selector.matchLabels").(map[string]any)
	for k, v := range sel {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("%s: spec.selector.matchLabels %s=%v does not select the remediator pods", podMonitorPath, k, v)
		}
	}
	eps, _ := at(pm, "spec.podMetricsEndpoints").([]any)
	if len(eps) != 1 {
		t.Fatalf("%s: spec.podMetricsEndpoints: want 1, got %d", podMonitorPath, len(eps))
	}
	port, path := at(eps[0], "port"), at(eps[0], "path")
	if !slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Ports, func(p corev1.ContainerPort) bool { return p.Name == port }) {
		t.Errorf("%s: spec.podMetricsEndpoints[0].port %v: no such port on the remediator container", podMonitorPath, port)
	}
	if path != "/metrics" {
		t.Errorf("%s: spec.podMetricsEndpoints[0].path %v, want /metrics", podMonitorPath, path)
	}
	ann := d.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" ||
		!slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Ports, func(p corev1.ContainerPort) bool { return fmt.Sprint(p.ContainerPort) == ann["prometheus.io/port"] }) {
		t.Errorf("Deployment remediator: prometheus.io annotations %v do not point at /metrics on a container port", ann)
	}

	av := loadYAMLMap(t, adapterValuesPath)
	rules, _ := at(av, "rules.external").([]any)
	var served bool
	for i, r := range rules {
		if at(r, "name.as") != backlogMetric {
			continue
		}
		served = true
		sq, _ := at(r, "seriesQuery").(string)
		mq, _ := at(r, "metricsQuery").(string)
		if !strings.Contains(sq, backlogMetric) {
			t.Errorf("%s: rules.external[%d].seriesQuery %q does not select %s", adapterValuesPath, i, sq, backlogMetric)
		}
		// Each replica reports the same shared consumer: a sum would count the backlog once
		// per replica and scale on itself.
		if !strings.HasPrefix(mq, "max ") || !strings.Contains(mq, "consumer") {
			t.Errorf("%s: rules.external[%d].metricsQuery %q: want the max per consumer over the replicas", adapterValuesPath, i, mq)
		}
	}
	if !served {
		t.Errorf("%s: rules.external serves no metric named %s (what remediator-hpa.yaml asks for)", adapterValuesPath, backlogMetric)
	}
}
