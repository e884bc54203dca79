package deployments

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/conf"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/remediator/remediator/config"
)

// The kustomizations a user applies: production (NATS from the Helm chart) and kind/minikube.
var kustomizations = []string{"kubernetes", "kind"}

// backlogMetric is the consumer backlog gauge of worker/metrics.go as Prometheus shows it
// (remediator.consumer.pending); the HPA and prometheus-adapter must name it exactly.
const backlogMetric = "remediator_consumer_pending"

func TestKubernetes(t *testing.T) {
	t.Parallel()
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			if err := checkKubernetes(dir); err != nil {
				t.Error(err)
			}
		})
	}
}

// A deliberately broken overlay must fail with a message that names the file and the field.
func TestKubernetesChecksCatchBreakage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dir  string
		want []string
	}{
		{"testdata/broken-unknown-field", []string{
			"testdata/broken-unknown-field/remediator-patch.yaml",
			`unknown field "spec.template.spec.terminationGracePeriod"`,
		}},
		{"testdata/broken-probe-port", []string{
			"testdata/broken-probe-port/kustomization.yaml",
			"Deployment remediator: container remediator: readinessProbe.httpGet.port 9090",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			t.Parallel()
			err := checkKubernetes(tt.dir)
			if err == nil {
				t.Fatal("no error")
			}
			var found bool
			for _, line := range strings.Split(err.Error(), "\n") {
				if containsAll(line, tt.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("no error line names all of %q; got:\n%v", tt.want, err)
			}
		})
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// decoder decodes manifests into the k8s.io/api types, strictly: an unknown or duplicate
// field is an error naming its path, as `kubectl apply --validate=strict` would report.
var decoder = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
	kjson.SerializerOptions{Yaml: true, Strict: true})

// scheme knows the API groups of the manifests here; any other kind is an error.
var scheme = func() *runtime.Scheme {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, autoscalingv2.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return scheme
}()

var lenientDecoder = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
	kjson.SerializerOptions{Yaml: true})

// describe names a document by its kind and name, else by its position.
func describe(doc []byte, i int) string {
	var o struct {
		Kind     string            `json:"kind"`
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if yaml.Unmarshal(doc, &o) != nil || o.Kind == "" {
		return fmt.Sprintf("document %d", i+1)
	}
	return o.Kind + " " + o.Metadata.Name
}

// manifest is one decoded object and where it came from.
type manifest struct {
	source string // a file, or the kustomization.yaml that built it
	obj    runtime.Object
}

func (m manifest) String() string {
	kind := m.obj.GetObjectKind().GroupVersionKind().Kind
	name := ""
	if o, ok := m.obj.(metav1.Object); ok {
		name = o.GetName()
	}
	return fmt.Sprintf("%s: %s %s", m.source, kind, name)
}

// decodeDocuments decodes every document of a YAML stream strictly. stripDirectives removes
// kustomize's "$patch"-style keys first (patch files carry them; the API types do not).
func decodeDocuments(source string, data []byte, stripDirectives bool) ([]manifest, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []manifest
	var errs []error
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		if stripDirectives {
			var m map[string]any
			if err := yaml.Unmarshal(doc, &m); err != nil {
				errs = append(errs, fmt.Errorf("%s: document %d: %w", source, i+1, err))
				continue
			}
			if doc, err = yaml.Marshal(withoutDirectives(m)); err != nil {
				return nil, err
			}
		}
		obj, _, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", source, describe(doc, i), err))
			// Go on with what a lenient decoder makes of it, so that one typo does not turn
			// into a cascade of "selects nothing" errors.
			if obj, _, err = lenientDecoder.Decode(doc, nil, nil); err != nil {
				continue
			}
		}
		out = append(out, manifest{source, obj})
	}
	return out, errors.Join(errs...)
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func withoutDirectives(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			if !strings.HasPrefix(k, "$") {
				out[k] = withoutDirectives(e)
			}
		}
		return out
	case []any:
		out := make([]any, 0, len(v))
		for _, e := range v {
			out = append(out, withoutDirectives(e))
		}
		return out
	}
	return v
}

// checkKubernetes checks the kustomization in dir the way a cluster would see it: every YAML
// file of dir decoded strictly into the k8s.io/api types (resources whole, patches without
// their directives), then `kustomize build` (krusty, on disk) and the built objects decoded
// strictly again and checked for what remediator and NATS rely on. Each problem is one line
// naming the file (or the kustomization.yaml whose build produced the object), the object and
// the field.
func checkKubernetes(dir string) error {
	kfile := filepath.Join(dir, "kustomization.yaml")
	b, err := os.ReadFile(kfile)
	if err != nil {
		return err
	}
	var k types.Kustomization
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		return fmt.Errorf("%s: %w", kfile, err)
	}
	generated := map[string]bool{}
	for _, g := range k.ConfigMapGenerator {
		for _, f := range g.FileSources {
			generated[f] = true
		}
	}
	patches := map[string]bool{}
	for _, p := range k.Patches {
		if p.Path != "" {
			patches[p.Path] = true
		}
	}
	var errs []error
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	for _, f := range files {
		base := filepath.Base(f)
		switch {
		case base == "kustomization.yaml", generated[base], strings.HasSuffix(base, "-values.yaml"):
			continue // not manifests: the kustomization, remediator configurations, Helm values
		case !patches[base] && !slices.Contains(k.Resources, base):
			errs = append(errs, fmt.Errorf("%s: not listed in %s: kubectl apply -k would leave it out", f, kfile))
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if _, err := decodeDocuments(f, data, patches[base]); err != nil {
			errs = append(errs, err)
		}
	}

	built, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("%s: kustomize build: %w", kfile, err))...)
	}
	var objs []manifest
	for _, r := range built.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return err
		}
		ms, err := decodeDocuments(kfile, y, false)
		if err != nil {
			errs = append(errs, err)
		}
		objs = append(objs, ms...)
	}
	errs = append(errs, checkObjects(objs)...)
	return errors.Join(errs...)
}

// cluster is a kustomize build, by kind.
type cluster struct {
	all          []manifest
	namespaces   []*corev1.Namespace
	configMaps   map[string]*corev1.ConfigMap
	secrets      []manifest
	services     []manifest
	deployments  []manifest
	statefulSets []manifest
	pdbs         []manifest
	hpas         []manifest
}

func checkObjects(objs []manifest) []error {
	c := cluster{all: objs, configMaps: map[string]*corev1.ConfigMap{}}
	for _, m := range objs {
		switch o := m.obj.(type) {
		case *corev1.Namespace:
			c.namespaces = append(c.namespaces, o)
		case *corev1.ConfigMap:
			c.configMaps[o.Name] = o
		case *corev1.Secret:
			c.secrets = append(c.secrets, m)
		case *corev1.Service:
			c.services = append(c.services, m)
		case *appsv1.Deployment:
			c.deployments = append(c.deployments, m)
		case *appsv1.StatefulSet:
			c.statefulSets = append(c.statefulSets, m)
		case *policyv1.PodDisruptionBudget:
			c.pdbs = append(c.pdbs, m)
		case *autoscalingv2.HorizontalPodAutoscaler:
			c.hpas = append(c.hpas, m)
		}
	}
	var errs []error
	bad := func(m manifest, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", m, fmt.Sprintf(format, args...)))
	}
	c.checkNamespace(&errs)
	for _, m := range c.deployments {
		d := m.obj.(*appsv1.Deployment)
		c.checkPod(m, bad, d.Spec.Template, nil)
		if d.Name == "remediator" {
			c.checkRemediator(m, bad, d)
		}
	}
	for _, m := range c.statefulSets {
		s := m.obj.(*appsv1.StatefulSet)
		var claims []string
		for _, pvc := range s.Spec.VolumeClaimTemplates {
			claims = append(claims, pvc.Name)
		}
		c.checkPod(m, bad, s.Spec.Template, claims)
		if s.Name == "nats" {
			c.checkNATS(m, bad, s)
		}
	}
	for _, m := range c.secrets {
		for k, v := range m.obj.(*corev1.Secret).StringData {
			if v != "REPLACE_ME" {
				bad(m, "stringData.%s: a real value is committed; keep REPLACE_ME and create the Secret out of band", k)
			}
		}
		if len(m.obj.(*corev1.Secret).Data) > 0 {
			bad(m, "data: a real value is committed; keep stringData REPLACE_ME placeholders only")
		}
	}
	for _, m := range c.services {
		c.checkService(m, bad)
	}
	for _, m := range c.pdbs {
		c.checkPDB(m, bad)
	}
	for _, m := range c.hpas {
		c.checkHPA(m, bad)
	}
	if len(c.deploymentsNamed("remediator")) != 1 {
		errs = append(errs, fmt.Errorf("the build has %d Deployments named remediator, want 1", len(c.deploymentsNamed("remediator"))))
	}
	return errs
}

func (c cluster) deploymentsNamed(name string) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, m := range c.deployments {
		if d := m.obj.(*appsv1.Deployment); d.Name == name {
			out = append(out, d)
		}
	}
	return out
}

// Every pod of the namespace meets the "restricted" Pod Security Standard, enforced at
// admission: a pod missing one of its requirements would never run.
func (c cluster) checkNamespace(errs *[]error) {
	for _, ns := range c.namespaces {
		if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
			*errs = append(*errs, fmt.Errorf("Namespace %s: metadata.labels[pod-security.kubernetes.io/enforce] is not restricted", ns.Name))
		}
	}
}

// podTemplates lists the workloads' pod templates with their source.
func (c cluster) podTemplates() []corev1.PodTemplateSpec {
	var out []corev1.PodTemplateSpec
	for _, m := range c.deployments {
		out = append(out, m.obj.(*appsv1.Deployment).Spec.Template)
	}
	for _, m := range c.statefulSets {
		out = append(out, m.obj.(*appsv1.StatefulSet).Spec.Template)
	}
	return out
}

// checkPod: what every workload here must have: the restricted security context, resources,
// probes, a pinned image, secrets only by reference, and configuration that exists.
// claims are the StatefulSet's volumeClaimTemplates, volumes a container may mount too.
func (c cluster) checkPod(m manifest, bad func(manifest, string, ...any), tpl corev1.PodTemplateSpec, claims []string) {
	pod := tpl.Spec
	psc := pod.SecurityContext
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		bad(m, "spec.template.spec.automountServiceAccountToken: must be false (nothing here calls the Kubernetes API)")
	}
	podNonRoot := psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
	podSeccomp := psc != nil && psc.SeccompProfile != nil && psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
	for _, ctr := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		at := func(field string) string { return "container " + ctr.Name + ": " + field }
		sc := ctr.SecurityContext
		if !podNonRoot && (sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
			bad(m, "%s: runAsNonRoot is not true", at("securityContext.runAsNonRoot"))
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			bad(m, "%s: must be false", at("securityContext.allowPrivilegeEscalation"))
		}
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			bad(m, "%s: must be true", at("securityContext.readOnlyRootFilesystem"))
		}
		if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			bad(m, "%s: must drop ALL", at("securityContext.capabilities.drop"))
		}
		if sc != nil && sc.Privileged != nil && *sc.Privileged {
			bad(m, "%s: must not be true", at("securityContext.privileged"))
		}
		if !podSeccomp && (sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault) {
			bad(m, "%s: RuntimeDefault is not set on the pod or the container", at("securityContext.seccompProfile"))
		}
		if ctr.Resources.Requests.Cpu().IsZero() || ctr.Resources.Requests.Memory().IsZero() {
			bad(m, "%s: cpu and memory requests must be set (the scheduler and the HPA need them)", at("resources.requests"))
		}
		if ctr.Resources.Limits.Memory().IsZero() {
			bad(m, "%s: a memory limit must be set", at("resources.limits.memory"))
		}
		if !imagePinned(ctr.Image) {
			bad(m, "%s: %q is not pinned to a version or digest", at("image"), ctr.Image)
		}
		for _, p := range []struct {
			name  string
			probe *corev1.Probe
		}{{"livenessProbe", ctr.LivenessProbe}, {"readinessProbe", ctr.ReadinessProbe}, {"startupProbe", ctr.StartupProbe}} {
			if p.probe == nil {
				bad(m, "%s: missing", at(p.name))
				continue
			}
			if g := p.probe.HTTPGet; g != nil {
				if _, ok := containerPort(ctr, g.Port); !ok {
					bad(m, "%s: %s is no port of the container", at(p.name+".httpGet.port"), g.Port.String())
				}
			}
		}
		for _, e := range ctr.Env {
			if looksSecret(e.Name) && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				bad(m, "%s: a secret must come from a secretKeyRef, not a literal value", at("env["+e.Name+"]"))
			}
		}
		for _, vm := range ctr.VolumeMounts {
			if !slices.Contains(claims, vm.Name) && !slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name }) {
				bad(m, "%s: no volume %s", at("volumeMounts["+vm.MountPath+"]"), vm.Name)
			}
		}
	}
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil && c.configMaps[v.ConfigMap.Name] == nil {
			bad(m, "spec.template.spec.volumes[%s].configMap.name: no ConfigMap %s in the build", v.Name, v.ConfigMap.Name)
		}
	}
}

func looksSecret(name string) bool {
	n := strings.ToUpper(name)
	return strings.Contains(n, "TOKEN") || strings.Contains(n, "PASSWORD") || strings.Contains(n, "SECRET")
}

// imagePinned: a tag other than latest, or a digest.
func imagePinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	name := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(name, ":")
	return ok && tag != "" && tag != "latest"
}

// containerPort resolves a probe or Service target port (a number or a port name).
func containerPort(c corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// checkRemediator: the worker Deployment against the configuration it mounts: probes on the
// HTTP server's port and paths, a grace period covering the shutdown, flow tokens and the NATS
// password from Secrets, the NATS CA mounted where the configuration reads it.
func (c cluster) checkRemediator(m manifest, bad func(manifest, string, ...any), d *appsv1.Deployment) {
	var ctr *corev1.Container
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == "remediator" {
			ctr = &d.Spec.Template.Spec.Containers[i]
		}
	}
	if ctr == nil {
		bad(m, "spec.template.spec.containers: no container remediator")
		return
	}
	at := func(field string) string { return "container remediator: " + field }
	if len(ctr.Args) == 0 || ctr.Args[0] != "run" {
		bad(m, "%s: %q does not start with run", at("args"), ctr.Args)
	}
	cfgPath, ok := flagValue(ctr.Args, "--config")
	if !ok {
		bad(m, "%s: no --config", at("args"))
		return
	}
	cfg, err := c.mountedConfig(d.Spec.Template.Spec, *ctr, cfgPath)
	if err != nil {
		bad(m, "%s: %v", at("args --config"), err)
		return
	}
	_, portStr, err := net.SplitHostPort(cfg.HTTP.Addr)
	if err != nil {
		bad(m, "configuration http.addr %q: %v", cfg.HTTP.Addr, err)
		return
	}
	adminPort, _ := strconv.Atoi(portStr)
	if host, _, _ := net.SplitHostPort(cfg.HTTP.Addr); host != "0.0.0.0" && host != "" {
		bad(m, "configuration http.addr %q: the kubelet cannot reach a server on %s", cfg.HTTP.Addr, host)
	}
	for _, p := range []struct {
		name, path string
		probe      *corev1.Probe
	}{
		{"startupProbe", "/healthz", ctr.StartupProbe},
		{"livenessProbe", "/healthz", ctr.LivenessProbe},
		{"readinessProbe", "/readyz", ctr.ReadinessProbe},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			bad(m, "%s: must be an httpGet on %s", at(p.name+".httpGet"), p.path)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path {
			bad(m, "%s %q: want %s", at(p.name+".httpGet.path"), g.Path, p.path)
		}
		if n, ok := containerPort(*ctr, g.Port); !ok || int(n) != adminPort {
			bad(m, "%s %s is not the HTTP server's port %d (http.addr in %s)", at(p.name+".httpGet.port"), g.Port.String(), adminPort, path.Base(cfgPath))
		}
	}
	grace := time.Duration(30) * time.Second
	if s := d.Spec.Template.Spec.TerminationGracePeriodSeconds; s != nil {
		grace = time.Duration(*s) * time.Second
	}
	if grace < cfg.Worker.ShutdownTimeout+10*time.Second {
		bad(m, "spec.template.spec.terminationGracePeriodSeconds %v: below worker.shutdownTimeout (%v) plus 10s for the NATS drain; in-flight flows would be killed and run twice",
			grace, cfg.Worker.ShutdownTimeout)
	}
	secretEnv := func(name, what string) {
		i := slices.IndexFunc(ctr.Env, func(e corev1.EnvVar) bool { return e.Name == name })
		if i < 0 || ctr.Env[i].ValueFrom == nil || ctr.Env[i].ValueFrom.SecretKeyRef == nil {
			bad(m, "%s: %s must be set from a secretKeyRef", at("env["+name+"]"), what)
		}
	}
	for _, f := range cfg.Flows {
		if f.ClientToken.Env != "" {
			secretEnv(f.ClientToken.Env, "the client token of flow "+f.Name)
		}
	}
	if cfg.NATS.PasswordEnv != "" {
		secretEnv(cfg.NATS.PasswordEnv, "the NATS password (nats.passwordEnv)")
	}
	for _, f := range []string{cfg.NATS.TLSCAFile, cfg.NATS.CredsFile, cfg.NATS.TLSCertFile, cfg.NATS.TLSKeyFile} {
		if f != "" && !mounted(*ctr, f) {
			bad(m, "%s: nothing is mounted at %s, which remediator.yaml reads", at("volumeMounts"), f)
		}
	}
	if !slices.ContainsFunc(ctr.Ports, func(p corev1.ContainerPort) bool { return int(p.ContainerPort) == adminPort }) {
		bad(m, "%s: no port %d (http.addr): /metrics cannot be scraped", at("ports"), adminPort)
	}
	c.checkIngress(m, bad, *ctr, cfg, adminPort)

	// run starts with the environment the Deployment documents: each secretKeyRef stands for
	// its Secret's value, created out of band; files must be mounted.
	podEnv := map[string]string{}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			podEnv[e.Name] = "value of Secret " + e.ValueFrom.SecretKeyRef.Name + " key " + e.ValueFrom.SecretKeyRef.Key
		case e.ValueFrom != nil:
			podEnv[e.Name] = "value from the pod"
		default:
			podEnv[e.Name] = e.Value
		}
	}
	lookup := func(k string) (string, bool) { v, ok := podEnv[k]; return v, ok }
	if err := startProblems(cfg, lookup, func(f string) bool { return mounted(*ctr, f) }); err != nil {
		bad(m, "run would refuse to start: %v", err)
	}
}

// checkIngress: the ingress is on, on a container port, its secrets come from Secrets, and a
// Service of its own (remediator-ingress) exposes that port and not the admin one, since only
// the ingress faces Okta.
func (c cluster) checkIngress(m manifest, bad func(manifest, string, ...any), ctr corev1.Container, cfg *config.Config, adminPort int) {
	at := func(field string) string { return "container remediator: " + field }
	if !cfg.Ingress.Enabled() {
		bad(m, "configuration ingress.addr is off: Okta's event hook and ISPM's webhook cannot reach remediator")
		return
	}
	host, portStr, err := net.SplitHostPort(cfg.Ingress.Addr)
	if err != nil {
		bad(m, "configuration ingress.addr %q: %v", cfg.Ingress.Addr, err)
		return
	}
	if host != "0.0.0.0" && host != "" {
		bad(m, "configuration ingress.addr %q: a Service cannot reach a server on %s", cfg.Ingress.Addr, host)
	}
	ingressPort, _ := strconv.Atoi(portStr)
	if !slices.ContainsFunc(ctr.Ports, func(p corev1.ContainerPort) bool { return int(p.ContainerPort) == ingressPort }) {
		bad(m, "%s: no port %d (ingress.addr)", at("ports"), ingressPort)
	}
	for key, sec := range ingressSecrets(cfg) {
		switch {
		case sec.Env != "":
			i := slices.IndexFunc(ctr.Env, func(e corev1.EnvVar) bool { return e.Name == sec.Env })
			if i < 0 || ctr.Env[i].ValueFrom == nil || ctr.Env[i].ValueFrom.SecretKeyRef == nil {
				bad(m, "%s: %s (%s) must be set from a secretKeyRef", at("env["+sec.Env+"]"), sec.Env, key)
			}
		case !mounted(ctr, sec.File):
			bad(m, "%s: nothing is mounted at %s (%s)", at("volumeMounts"), sec.File, key)
		}
	}
	var svc *corev1.Service
	for _, sm := range c.services {
		if s := sm.obj.(*corev1.Service); s.Name == "remediator-ingress" {
			svc = s
		}
	}
	if svc == nil {
		bad(m, "no Service remediator-ingress exposes the ingress (port %d of ingress.addr)", ingressPort)
		return
	}
	var exposed bool
	for _, p := range svc.Spec.Ports {
		n, ok := containerPort(ctr, p.TargetPort)
		switch {
		case ok && int(n) == ingressPort:
			exposed = true
		case ok && int(n) == adminPort:
			bad(m, "Service remediator-ingress: spec.ports[%s] exposes the admin port %d (http.addr); only the ingress faces Okta", p.Name, adminPort)
		}
	}
	if !exposed {
		bad(m, "Service remediator-ingress: no port targets the ingress port %d (ingress.addr)", ingressPort)
	}
}

func mounted(c corev1.Container, file string) bool {
	return slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
		return strings.HasPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/")
	})
}

// mountedConfig follows --config to the volume mount, the ConfigMap of the build, and parses
// it with config.Parse.
func (c cluster) mountedConfig(pod corev1.PodSpec, ctr corev1.Container, p string) (*config.Config, error) {
	for _, vm := range ctr.VolumeMounts {
		rel, ok := strings.CutPrefix(p, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != vm.Name || v.ConfigMap == nil {
				continue
			}
			cm := c.configMaps[v.ConfigMap.Name]
			if cm == nil {
				return nil, fmt.Errorf("no ConfigMap %s in the build", v.ConfigMap.Name)
			}
			data, ok := cm.Data[rel]
			if !ok {
				return nil, fmt.Errorf("ConfigMap %s has no key %s", cm.Name, rel)
			}
			return config.Parse([]byte(data), "ConfigMap "+cm.Name+" "+rel)
		}
	}
	return nil, fmt.Errorf("%s is on no ConfigMap volume", p)
}

func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// checkNATS: the plain StatefulSet (kind/minikube) must form the cluster remediator's R3
// streams need: its nats.conf, read with the server's own parser, routes to every pod.
func (c cluster) checkNATS(m manifest, bad func(manifest, string, ...any), s *appsv1.StatefulSet) {
	replicas := int32(1)
	if s.Spec.Replicas != nil {
		replicas = *s.Spec.Replicas
	}
	if replicas != 3 {
		bad(m, "spec.replicas %d: want 3 for streams.replicas: 3", replicas)
	}
	if len(s.Spec.VolumeClaimTemplates) == 0 {
		bad(m, "spec.volumeClaimTemplates: JetStream needs a PersistentVolume per node")
	}
	var cm *corev1.ConfigMap
	for _, v := range s.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			cm = c.configMaps[v.ConfigMap.Name]
		}
	}
	if cm == nil || cm.Data["nats.conf"] == "" {
		bad(m, "spec.template.spec.volumes: no ConfigMap with nats.conf")
		return
	}
	// nats.conf may read variables from the pod's environment (the roles' passwords): give
	// the parser a placeholder for each variable the nats container sets, so that a reference
	// to one it does not set fails.
	var envVars strings.Builder
	for _, ctr := range s.Spec.Template.Spec.Containers {
		if ctr.Name == "nats" {
			for _, e := range ctr.Env {
				fmt.Fprintf(&envVars, "%s: \"placeholder\"\n", e.Name)
			}
		}
	}
	parsed, err := conf.Parse(envVars.String() + cm.Data["nats.conf"])
	if err != nil {
		bad(m, "ConfigMap %s nats.conf: %v", cm.Name, err)
		return
	}
	if _, ok := parsed["jetstream"]; !ok {
		bad(m, "ConfigMap %s nats.conf: no jetstream block", cm.Name)
	}
	// Probes on the monitoring port's /healthz, as the official chart does.
	monitor, _ := parsed["http_port"].(int64)
	for _, ctr := range s.Spec.Template.Spec.Containers {
		if ctr.Name != "nats" {
			continue
		}
		for _, np := range []struct {
			name string
			p    *corev1.Probe
		}{{"startupProbe", ctr.StartupProbe}, {"livenessProbe", ctr.LivenessProbe}, {"readinessProbe", ctr.ReadinessProbe}} {
			name, p := np.name, np.p
			if p == nil || p.HTTPGet == nil {
				continue // missing probes are reported by checkPod
			}
			if n, ok := containerPort(ctr, p.HTTPGet.Port); !ok || int64(n) != monitor {
				bad(m, "container nats: %s.httpGet.port %s is not http_port %d of nats.conf", name, p.HTTPGet.Port.String(), monitor)
			}
			if !strings.HasPrefix(p.HTTPGet.Path, "/healthz") {
				bad(m, "container nats: %s.httpGet.path %q: want /healthz", name, p.HTTPGet.Path)
			}
		}
	}
	// The pod must outlive lame duck mode, or clients see the node vanish instead of moving.
	lameDuck := 2*time.Minute + 10*time.Second // the server's defaults
	if d, err := confDuration(parsed, "lame_duck_duration"); err == nil && d > 0 {
		lameDuck = d
		if g, err := confDuration(parsed, "lame_duck_grace_period"); err == nil && g > 0 {
			lameDuck += g
		} else {
			lameDuck += 10 * time.Second
		}
	}
	if tg := s.Spec.Template.Spec.TerminationGracePeriodSeconds; tg == nil || time.Duration(*tg)*time.Second <= lameDuck {
		bad(m, "spec.template.spec.terminationGracePeriodSeconds: not above lame duck mode (%v) of nats.conf", lameDuck)
	}
	cl, _ := parsed["cluster"].(map[string]any)
	routes, _ := cl["routes"].([]any)
	for i := range replicas {
		want := fmt.Sprintf("nats://%s-%d.%s:", s.Name, i, s.Spec.ServiceName)
		if !slices.ContainsFunc(routes, func(r any) bool { s, _ := r.(string); return strings.HasPrefix(s, want) }) {
			bad(m, "ConfigMap %s nats.conf cluster.routes: no route to %s*", cm.Name, want)
		}
	}
}

// checkService: selects a pod template and targets ports it has.
func (c cluster) checkService(m manifest, bad func(manifest, string, ...any)) {
	svc := m.obj.(*corev1.Service)
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	var matched bool
	for _, tpl := range c.podTemplates() {
		if len(svc.Spec.Selector) == 0 || !sel.Matches(labels.Set(tpl.Labels)) {
			continue
		}
		matched = true
		for _, p := range svc.Spec.Ports {
			if !slices.ContainsFunc(tpl.Spec.Containers, func(ctr corev1.Container) bool { _, ok := containerPort(ctr, p.TargetPort); return ok }) {
				bad(m, "spec.ports[%s].targetPort %s: no such container port", p.Name, p.TargetPort.String())
			}
		}
	}
	if !matched {
		bad(m, "spec.selector %v: selects no pod of the build", svc.Spec.Selector)
	}
}

// checkPDB: selects a workload and still lets a drain evict one pod of it.
func (c cluster) checkPDB(m manifest, bad func(manifest, string, ...any)) {
	pdb := m.obj.(*policyv1.PodDisruptionBudget)
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || pdb.Spec.Selector == nil {
		bad(m, "spec.selector: %v", err)
		return
	}
	if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
		bad(m, "spec: neither minAvailable nor maxUnavailable")
	}
	for _, w := range c.deployments {
		d := w.obj.(*appsv1.Deployment)
		if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			continue
		}
		minReplicas := int32(1)
		if d.Spec.Replicas != nil {
			minReplicas = *d.Spec.Replicas
		}
		if h := c.hpaFor("Deployment", d.Name); h != nil && h.Spec.MinReplicas != nil {
			minReplicas = *h.Spec.MinReplicas
		}
		if ma := pdb.Spec.MinAvailable; ma != nil && ma.Type == intstr.Int && ma.IntVal >= minReplicas {
			bad(m, "spec.minAvailable %d: not below the %d replicas of Deployment %s, so a node drain can never evict one", ma.IntVal, minReplicas, d.Name)
		}
		return
	}
	for _, w := range c.statefulSets {
		if sel.Matches(labels.Set(w.obj.(*appsv1.StatefulSet).Spec.Template.Labels)) {
			if mu := pdb.Spec.MaxUnavailable; mu == nil || mu.IntVal != 1 {
				bad(m, "spec.maxUnavailable: want 1, an R3 stream keeps its quorum only with 2 of 3 nodes")
			}
			return
		}
	}
	bad(m, "spec.selector: selects no workload of the build")
}

func (c cluster) hpaFor(kind, name string) *autoscalingv2.HorizontalPodAutoscaler {
	for _, m := range c.hpas {
		h := m.obj.(*autoscalingv2.HorizontalPodAutoscaler)
		if h.Spec.ScaleTargetRef.Kind == kind && h.Spec.ScaleTargetRef.Name == name {
			return h
		}
	}
	return nil
}

// checkHPA: scales an existing Deployment that sets no replicas of its own, on the backlog
// metric the service exports.
func (c cluster) checkHPA(m manifest, bad func(manifest, string, ...any)) {
	h := m.obj.(*autoscalingv2.HorizontalPodAutoscaler)
	ref := h.Spec.ScaleTargetRef
	ds := c.deploymentsNamed(ref.Name)
	if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || len(ds) != 1 {
		bad(m, "spec.scaleTargetRef %s %s: no such Deployment in the build", ref.Kind, ref.Name)
	} else if ds[0].Spec.Replicas != nil {
		bad(m, "spec.scaleTargetRef: Deployment %s sets spec.replicas; every apply would reset what the HPA chose", ref.Name)
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
		bad(m, "spec.minReplicas: want at least 2 (one replica is a single point of failure)")
	}
	if h.Spec.MinReplicas != nil && h.Spec.MaxReplicas < *h.Spec.MinReplicas {
		bad(m, "spec.maxReplicas %d: below minReplicas %d", h.Spec.MaxReplicas, *h.Spec.MinReplicas)
	}
	var backlog bool
	for i, ms := range h.Spec.Metrics {
		var id *autoscalingv2.MetricIdentifier
		switch ms.Type {
		case autoscalingv2.ExternalMetricSourceType:
			if ms.External != nil {
				id = &ms.External.Metric
			}
		case autoscalingv2.PodsMetricSourceType:
			if ms.Pods != nil {
				id = &ms.Pods.Metric
			}
		}
		if id == nil || id.Name != backlogMetric {
			continue
		}
		backlog = true
		if id.Selector == nil || id.Selector.MatchLabels["consumer"] == "" {
			bad(m, "spec.metrics[%d].metric.selector: must pick one consumer (label consumer), else the backlogs of all consumers add up", i)
		}
	}
	if !backlog {
		bad(m, "spec.metrics: no External or Pods metric %s (the consumer backlog)", backlogMetric)
	}
}

func confDuration(parsed map[string]any, key string) (time.Duration, error) {
	v, ok := parsed[key].(string)
	if !ok {
		return 0, fmt.Errorf("%s is not a duration string", key)
	}
	return time.ParseDuration(v)
}
