package deployments

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/remediator/remediator/config"
)

// Paths are relative to this package's directory, where `go test` runs.
const (
	repoRoot          = ".."
	composePath       = "../docker-compose.yml"
	dockerfilePath    = "../Dockerfile"
	dockerignorePath  = "../.dockerignore"
	composeConfigPath = "compose/remediator.yaml"
	k8sDir            = "kubernetes"
	k8sConfigPath     = "kubernetes/remediator.yaml"
	modulePath        = "github.com/remediator/remediator"
)

// ---------------------------------------------------------------------------------------------
// docker compose
// ---------------------------------------------------------------------------------------------

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image           string     `yaml:"image"`
	Build           any        `yaml:"build"`
	Command         stringList `yaml:"command"`
	Entrypoint      stringList `yaml:"entrypoint"`
	Environment     envMap     `yaml:"environment"`
	Ports           []string   `yaml:"ports"`
	Volumes         []string   `yaml:"volumes"`
	DependsOn       dependsOn  `yaml:"depends_on"`
	StopGracePeriod string     `yaml:"stop_grace_period"`
}

// stringList is a compose command: a list, or a string split on spaces.
type stringList []string

func (s *stringList) UnmarshalYAML(n *yaml.Node) error {
	n = resolveAlias(n)
	if n.Kind == yaml.ScalarNode {
		*s = strings.Fields(n.Value)
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// envMap is a compose environment: a map, or a list of NAME=value.
type envMap map[string]string

func (e *envMap) UnmarshalYAML(n *yaml.Node) error {
	n = resolveAlias(n)
	out := envMap{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
	} else {
		var m map[string]any // Decode into a map resolves << merge keys.
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			if v != nil {
				out[k] = fmt.Sprint(v)
			} else {
				out[k] = ""
			}
		}
	}
	*e = out
	return nil
}

// dependsOn is a compose depends_on: a list of services, or a map of service to condition.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	n = resolveAlias(n)
	out := dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, s := range l {
			out[s] = "service_started"
		}
	} else {
		var m map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := n.Decode(&m); err != nil {
			return err
		}
		for s, c := range m {
			if c.Condition == "" {
				c.Condition = "service_started"
			}
			out[s] = c.Condition
		}
	}
	*d = out
	return nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

var interpolationRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}`)

// interpolate evaluates ${VAR}, ${VAR:-default} and ${VAR-default} as compose does when VAR
// is not set in the environment: the demo's out-of-the-box values.
func interpolate(s string) string {
	return interpolationRE.ReplaceAllStringFunc(s, func(m string) string {
		return interpolationRE.FindStringSubmatch(m)[2]
	})
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	if len(c.Services) == 0 {
		t.Fatalf("%s: no services", composePath)
	}
	return c
}

// flag returns the value after name in args ("--name value" or "--name=value").
func flag(args []string, name string) (string, bool) {
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

// containerPorts returns the container side of compose port mappings ("8081:8080" -> 8080).
func containerPorts(ports []string) []int {
	var out []int
	for _, p := range ports {
		p, _, _ = strings.Cut(p, "/")
		parts := strings.Split(p, ":")
		n, err := strconv.Atoi(parts[len(parts)-1])
		if err == nil {
			out = append(out, n)
		}
	}
	return out
}

// hostPorts returns the host side of compose port mappings that publish one.
func hostPorts(ports []string) []int {
	var out []int
	for _, p := range ports {
		p, _, _ = strings.Cut(p, "/")
		parts := strings.Split(p, ":")
		if len(parts) < 2 {
			continue
		}
		if n, err := strconv.Atoi(parts[len(parts)-2]); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// bindMount splits a compose short volume syntax into source and target.
func bindMount(v string) (source, target string) {
	parts := strings.Split(v, ":")
	if len(parts) == 1 {
		return "", parts[0] // anonymous volume
	}
	return parts[0], parts[1]
}

func natsServices(c composeFile) []string {
	var out []string
	for name, s := range c.Services {
		if strings.HasPrefix(s.Image, "nats:") || strings.Contains(s.Image, "/nats:") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func servicesRunning(c composeFile, sub string) []string {
	var out []string
	for name, s := range c.Services {
		if len(s.Command) > 0 && s.Command[0] == sub {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// hostsOf parses a comma-separated list of URLs into host:port strings.
func hostsOf(t *testing.T, urls string) []string {
	t.Helper()
	var out []string
	for _, u := range strings.Split(urls, ",") {
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil || p.Host == "" {
			t.Errorf("%q is not a URL", u)
			continue
		}
		out = append(out, p.Host)
	}
	sort.Strings(out)
	return out
}

func TestComposeNATSCluster(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	nodes := natsServices(c)
	if len(nodes) != 3 {
		t.Fatalf("want 3 NATS services (a JetStream cluster for streams.replicas: 3), got %v", nodes)
	}
	var wantRoutes []string
	for _, n := range nodes {
		wantRoutes = append(wantRoutes, n+":6222")
	}
	serverNames := map[string]string{}
	for _, name := range nodes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := c.Services[name]
			args := s.Command
			if !slices.Contains(args, "-js") && !slices.Contains(args, "--jetstream") {
				t.Errorf("JetStream is off: command %v has no -js", args)
			}
			store, ok := flag(args, "-sd")
			if !ok {
				store, ok = flag(args, "--store_dir")
			}
			if !ok {
				t.Errorf("no -sd store directory: JetStream would write inside the container and lose the streams on recreation")
			}
			mounted := false
			for _, v := range s.Volumes {
				src, dst := bindMount(v)
				if dst == store {
					mounted = true
					if _, declared := c.Volumes[src]; !declared {
						t.Errorf("store directory %s is on %q, which is not a named volume declared under volumes:", store, src)
					}
				}
			}
			if store != "" && !mounted {
				t.Errorf("store directory %s is not on a volume", store)
			}
			if v, _ := flag(args, "--cluster_name"); v != "remediation" {
				t.Errorf("--cluster_name = %q, want remediation", v)
			}
			if v, _ := flag(args, "--cluster"); v != "nats://0.0.0.0:6222" {
				t.Errorf("--cluster = %q, want nats://0.0.0.0:6222", v)
			}
			routes, _ := flag(args, "--routes")
			if got := hostsOf(t, routes); !slices.Equal(got, wantRoutes) {
				t.Errorf("--routes name %v, want every node %v", got, wantRoutes)
			}
			if v, _ := flag(args, "--server_name"); v != name {
				t.Errorf("--server_name = %q, want the service name %q (JetStream needs a unique, stable name per node)", v, name)
			}
			if v, _ := flag(args, "-m"); v != "8222" {
				t.Errorf("-m = %q, want 8222 (the monitoring port the healthcheck uses)", v)
			}
		})
		v, _ := flag(c.Services[name].Command, "--server_name")
		if other, dup := serverNames[v]; dup {
			t.Errorf("%s and %s share the server name %q", name, other, v)
		}
		serverNames[v] = name
	}
	published := false
	for _, n := range nodes {
		if slices.Contains(hostPorts(c.Services[n].Ports), 4222) {
			published = true
		}
	}
	if !published {
		t.Errorf("no NATS node publishes 4222 to the host: `remediator publish` from the laptop cannot reach the cluster")
	}
}

func TestComposeJaeger(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	j, ok := c.Services["jaeger"]
	if !ok {
		t.Fatal("no jaeger service")
	}
	if !strings.HasPrefix(j.Image, "jaegertracing/") {
		t.Errorf("jaeger image %q is not a jaegertracing image", j.Image)
	}
	for _, p := range []struct {
		port int
		what string
	}{{16686, "the UI"}, {4318, "OTLP/HTTP, where the workers send traces"}, {4317, "OTLP/gRPC"}} {
		if !slices.Contains(hostPorts(j.Ports), p.port) || !slices.Contains(containerPorts(j.Ports), p.port) {
			t.Errorf("jaeger does not publish %d (%s): ports %v", p.port, p.what, j.Ports)
		}
	}
}

func TestComposeWorkers(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	workers := servicesRunning(c, "run")
	if len(workers) != 2 {
		t.Fatalf("want two worker services running `remediator run`, got %v", workers)
	}
	nodes := natsServices(c)
	var wantNATS []string
	for _, n := range nodes {
		wantNATS = append(wantNATS, n+":4222")
	}
	sims := servicesRunning(c, "flowsim")
	for _, name := range workers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := c.Services[name]
			env := s.Environment
			if got := hostsOf(t, env["NATS_URL"]); !slices.Equal(got, wantNATS) {
				t.Errorf("NATS_URL %q names %v, want all three nodes %v (the worker must fail over)", env["NATS_URL"], got, wantNATS)
			}
			ep, err := url.Parse(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
			if err != nil || ep.Scheme != "http" || ep.Host != "jaeger:4318" {
				t.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT = %q, want http://jaeger:4318 (OTLP/HTTP on the jaeger service)", env["OTEL_EXPORTER_OTLP_ENDPOINT"])
			}
			if env["OTEL_SERVICE_NAME"] == "" {
				t.Error("OTEL_SERVICE_NAME is not set: traces would show up as unknown_service")
			}
			if f := env["REMEDIATOR_LOG_FORMAT"]; f != "json" {
				t.Errorf("REMEDIATOR_LOG_FORMAT = %q, want json", f)
			}
			if s.Image != "remediator:dev" || s.Build == nil {
				t.Errorf("image %q build %v: want the locally built remediator:dev", s.Image, s.Build)
			}

			cfgPath, ok := flag(s.Command, "--config")
			if !ok {
				t.Fatalf("command %v has no --config: the worker would embed its own NATS and simulator", s.Command)
			}
			cfg := loadMountedConfig(t, s, cfgPath)
			if cfg.Simulator.Enabled {
				t.Error("the worker's configuration enables the in-process simulator; the flowsim service serves the flows")
			}
			grace, err := time.ParseDuration(s.StopGracePeriod)
			if err != nil {
				t.Errorf("stop_grace_period %q: %v (compose's default 10s kills in-flight flow calls)", s.StopGracePeriod, err)
			} else if grace <= cfg.Worker.ShutdownTimeout {
				t.Errorf("stop_grace_period %s is not above worker.shutdownTimeout %s: `docker compose stop` kills in-flight work", grace, cfg.Worker.ShutdownTimeout)
			}
			for _, f := range cfg.Flows {
				if f.ClientToken.Env == "" {
					continue
				}
				tok := interpolate(env[f.ClientToken.Env])
				if tok == "" {
					t.Errorf("flow %s: %s is not set in the worker: every invocation would be unauthorized", f.Name, f.ClientToken.Env)
				}
				for _, sim := range sims {
					simCfgPath, _ := flag(c.Services[sim].Command, "--config")
					simCfg := loadMountedConfig(t, c.Services[sim], simCfgPath)
					if want := interpolate(c.Services[sim].Environment[simCfg.Simulator.TokenEnv]); tok != want {
						t.Errorf("flow %s: the worker's token %q differs from %s's %q", f.Name, tok, sim, want)
					}
				}
			}
			for _, n := range nodes {
				if _, ok := s.DependsOn[n]; !ok {
					t.Errorf("does not depend on %s: it may start before NATS and exit", n)
				}
			}
		})
	}
}

func TestComposeFlowsim(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	sims := servicesRunning(c, "flowsim")
	if len(sims) != 1 {
		t.Fatalf("want one service running `remediator flowsim`, got %v", sims)
	}
	name := sims[0]
	s := c.Services[name]
	addr, ok := flag(s.Command, "--addr")
	if !ok {
		t.Fatalf("flowsim command %v has no --addr: it would listen on 127.0.0.1, unreachable from the workers", s.Command)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || (host != "0.0.0.0" && host != "") {
		t.Errorf("flowsim --addr %q must listen on all interfaces", addr)
	}
	cfgPath, _ := flag(s.Command, "--config")
	simCfg := loadMountedConfig(t, s, cfgPath)
	if tok := interpolate(s.Environment[simCfg.Simulator.TokenEnv]); tok == "" {
		t.Errorf("%s has no default: flowsim would make up a token the workers do not know", simCfg.Simulator.TokenEnv)
	}
	aliases := map[string]bool{}
	for _, f := range simCfg.Simulator.Flows {
		aliases[f.Alias] = true
	}

	// Every worker's flows must be served by this simulator, at its address.
	invokeRE := regexp.MustCompile(`^/api/flo/([^/]+)/invoke$`)
	for _, w := range servicesRunning(c, "run") {
		p, _ := flag(c.Services[w].Command, "--config")
		cfg := loadMountedConfig(t, c.Services[w], p)
		for _, f := range cfg.Flows {
			u, err := url.Parse(f.URL)
			if err != nil {
				t.Errorf("%s: flow %s: %v", w, f.Name, err)
				continue
			}
			if u.Hostname() != name || u.Port() != port {
				t.Errorf("%s: flow %s calls %s, not the %s service on port %s", w, f.Name, u.Host, name, port)
			}
			m := invokeRE.FindStringSubmatch(u.Path)
			if m == nil || !aliases[m[1]] {
				t.Errorf("%s: flow %s calls %s, which the simulator does not serve (simulator.flows)", w, f.Name, u.Path)
			}
		}
	}
}

// loadMountedConfig loads the host file a compose service mounts at the container path p.
func loadMountedConfig(t *testing.T, s composeService, p string) *config.Config {
	t.Helper()
	for _, v := range s.Volumes {
		src, dst := bindMount(v)
		if dst == p && (strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/")) {
			cfg, err := config.Load(filepath.Join(repoRoot, src))
			if err != nil {
				t.Fatalf("configuration mounted at %s: %v", p, err)
			}
			return cfg
		}
	}
	t.Fatalf("nothing is mounted at %s", p)
	return nil
}

func TestComposeMountsExist(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, dst := bindMount(v)
			switch {
			case src == "":
			case strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/"):
				if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
					t.Errorf("%s mounts %s at %s, which does not exist: %v", name, src, dst, err)
				}
			default:
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("%s mounts the named volume %q, which is not declared under volumes:", name, src)
				}
			}
		}
		if s.Build != nil {
			ctx := "."
			switch b := s.Build.(type) {
			case string:
				ctx = b
			case map[string]any:
				if v, ok := b["context"].(string); ok {
					ctx = v
				}
			}
			if _, err := os.Stat(filepath.Join(repoRoot, ctx, "Dockerfile")); err != nil {
				t.Errorf("%s builds %s, which has no Dockerfile: %v", name, ctx, err)
			}
		}
	}
}

// ---------------------------------------------------------------------------------------------
// remediator configurations
// ---------------------------------------------------------------------------------------------

func TestConfigs(t *testing.T) {
	t.Parallel()
	def, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	oktaInvokeRE := regexp.MustCompile(`^https://[a-z0-9-]+\.workflows\.okta\.com/api/flo/[0-9a-f]{32}/invoke$`)
	tests := []struct {
		path string
		// sameAsDefault: the demo must behave as the shipped default (same flows, routes and policy).
		sameAsDefault bool
		flowURL       *regexp.Regexp
	}{
		{composeConfigPath, true, regexp.MustCompile(`^http://flowsim:8090/api/flo/[a-z0-9-]+/invoke$`)},
		{k8sConfigPath, false, oktaInvokeRE},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load(tt.path)
			if err != nil {
				t.Fatalf("config.Load: %v", err)
			}
			if cfg.NATS.URL == "" {
				t.Error("nats.url is empty: remediator would embed a single-node NATS server instead of using the cluster")
			}
			if cfg.Streams.Replicas != 3 {
				t.Errorf("streams.replicas = %d, want 3 (one copy per NATS node)", cfg.Streams.Replicas)
			}
			if cfg.HTTP.Addr != "0.0.0.0:8080" {
				t.Errorf("http.addr = %q, want 0.0.0.0:8080 (reachable from outside the container)", cfg.HTTP.Addr)
			}
			if cfg.Simulator.Enabled {
				t.Error("simulator.enabled: the workers must call the configured flows, not an in-process simulator")
			}
			if len(cfg.Flows) == 0 {
				t.Fatal("no flows")
			}
			urls := map[string]string{}
			for _, f := range cfg.Flows {
				if (f.ClientToken.Env == "") == (f.ClientToken.File == "") {
					t.Errorf("flow %s: the client token must come from exactly one of env or file", f.Name)
				}
				if strings.Contains(strings.ToLower(f.URL), "clienttoken=") {
					t.Errorf("flow %s: the URL carries the client token in clear", f.Name)
				}
				if !tt.flowURL.MatchString(f.URL) {
					t.Errorf("flow %s: URL %q does not match %s", f.Name, f.URL, tt.flowURL)
				}
				if other, dup := urls[f.URL]; dup {
					t.Errorf("flows %s and %s invoke the same URL %s: one of them runs the wrong flow", other, f.Name, f.URL)
				}
				urls[f.URL] = f.Name
			}
			if !tt.sameAsDefault {
				return
			}
			if got, want := flowNames(cfg), flowNames(def); !slices.Equal(got, want) {
				t.Errorf("flows %v, want the default's %v", got, want)
			}
			if !reflect.DeepEqual(cfg.Routes, def.Routes) {
				t.Errorf("routes differ from config/default.yaml:\n got %+v\nwant %+v", cfg.Routes, def.Routes)
			}
			if !reflect.DeepEqual(cfg.RiskRules, def.RiskRules) {
				t.Errorf("entityRiskPolicy differs from config/default.yaml:\n got %+v\nwant %+v", cfg.RiskRules, def.RiskRules)
			}
			if !reflect.DeepEqual(cfg.Simulator.Flows, def.Simulator.Flows) {
				t.Errorf("simulator.flows differ from config/default.yaml:\n got %+v\nwant %+v", cfg.Simulator.Flows, def.Simulator.Flows)
			}
			for _, f := range cfg.Flows {
				if m := invokeAliasRE.FindStringSubmatch(f.URL); m == nil || m[1] != f.Name {
					t.Errorf("flow %s invokes %s, not the simulator flow of the same name", f.Name, f.URL)
				}
			}
		})
	}
}

var invokeAliasRE = regexp.MustCompile(`/api/flo/([^/]+)/invoke$`)

func flowNames(c *config.Config) []string {
	var out []string
	for _, f := range c.Flows {
		out = append(out, f.Name)
	}
	sort.Strings(out)
	return out
}

// ---------------------------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------------------------

type object struct {
	file string
	node *yaml.Node

	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
}

func (o object) String() string { return fmt.Sprintf("%s %s/%s", o.file, o.Kind, o.Metadata.Name) }

// decode decodes the whole object into v.
func (o object) decode(t *testing.T, v any) {
	t.Helper()
	if err := o.node.Decode(v); err != nil {
		t.Fatalf("%s: %v", o, err)
	}
}

type kustomization struct {
	Namespace          string   `yaml:"namespace"`
	Resources          []string `yaml:"resources"`
	ConfigMapGenerator []struct {
		Name  string   `yaml:"name"`
		Files []string `yaml:"files"`
	} `yaml:"configMapGenerator"`
	SecretGenerator []struct {
		Name  string   `yaml:"name"`
		Files []string `yaml:"files"`
	} `yaml:"secretGenerator"`
}

// generatedFiles maps the ConfigMap name to its files (key = base name).
func (k kustomization) generatedFiles() map[string][]string {
	out := map[string][]string{}
	for _, g := range k.ConfigMapGenerator {
		for _, f := range g.Files {
			_, file, _ := strings.Cut(f, "=") // "key=path" or "path"
			if file == "" {
				file = f
			}
			out[g.Name] = append(out[g.Name], file)
		}
	}
	return out
}

func loadKustomization(t *testing.T) kustomization {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	return k
}

// loadManifests parses every document of every resource listed in kustomization.yaml.
func loadManifests(t *testing.T) []object {
	t.Helper()
	var out []object
	for _, r := range loadKustomization(t).Resources {
		p := filepath.Join(k8sDir, r)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("kustomization.yaml lists %s: %v", r, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for i := 0; ; i++ {
			var n yaml.Node
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", p, i, err)
			}
			if len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
				continue // an empty document
			}
			o := object{file: r, node: &n}
			if err := n.Decode(&o); err != nil {
				t.Fatalf("%s: document %d: %v", p, i, err)
			}
			out = append(out, o)
		}
	}
	return out
}

func find(objs []object, kind, name string) (object, bool) {
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o, true
		}
	}
	return object{}, false
}

func ofKind(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// intOrString is a Kubernetes IntOrString (ports, PDB thresholds).
type intOrString string

func (v *intOrString) UnmarshalYAML(n *yaml.Node) error {
	*v = intOrString(n.Value)
	return nil
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
		ConfigMapKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"configMapKeyRef"`
		FieldRef *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string      `yaml:"path"`
		Port intOrString `yaml:"port"`
	} `yaml:"httpGet"`
}

type securityContext struct {
	RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
	RunAsUser                *int64 `yaml:"runAsUser"`
	AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
	ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
	Capabilities             struct {
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
	SeccompProfile *struct {
		Type string `yaml:"type"`
	} `yaml:"seccompProfile"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []envVar `yaml:"env"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	StartupProbe    *probe           `yaml:"startupProbe"`
	LivenessProbe   *probe           `yaml:"livenessProbe"`
	ReadinessProbe  *probe           `yaml:"readinessProbe"`
	SecurityContext *securityContext `yaml:"securityContext"`
	Resources       struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

// port resolves a probe or Service target port (a number or a container port name).
func (c container) port(p intOrString) (int, bool) {
	if n, err := strconv.Atoi(string(p)); err == nil {
		return n, true
	}
	for _, cp := range c.Ports {
		if cp.Name == string(p) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

func (c container) env(name string) (envVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return envVar{}, false
}

func (c container) mountPath(volume string) (string, bool) {
	for _, m := range c.VolumeMounts {
		if m.Name == volume {
			return m.MountPath, true
		}
	}
	return "", false
}

type podSpec struct {
	TerminationGracePeriodSeconds *int64           `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               *securityContext `yaml:"securityContext"`
	InitContainers                []container      `yaml:"initContainers"`
	Containers                    []container      `yaml:"containers"`
	Volumes                       []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

type workload struct {
	Spec struct {
		Replicas    *int   `yaml:"replicas"`
		ServiceName string `yaml:"serviceName"`
		Selector    struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				Resources struct {
					Requests map[string]string `yaml:"requests"`
				} `yaml:"resources"`
			} `yaml:"spec"`
		} `yaml:"volumeClaimTemplates"`
	} `yaml:"spec"`
}

type service struct {
	Spec struct {
		ClusterIP string            `yaml:"clusterIP"`
		Selector  map[string]string `yaml:"selector"`
		Ports     []struct {
			Name       string      `yaml:"name"`
			Port       int         `yaml:"port"`
			TargetPort intOrString `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

// selects reports whether a label selector (non-empty) matches labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// remediatorDeployment finds the Deployment running `remediator run` and loads the
// configuration it mounts.
func remediatorDeployment(t *testing.T, objs []object) (object, workload, container, *config.Config) {
	t.Helper()
	for _, o := range ofKind(objs, "Deployment") {
		var w workload
		o.decode(t, &w)
		for _, c := range w.Spec.Template.Spec.Containers {
			if args := append(slices.Clone(c.Command), c.Args...); len(args) > 0 && args[0] == "run" {
				return o, w, c, k8sMountedConfig(t, objs, w.Spec.Template.Spec, c)
			}
		}
	}
	t.Fatal("no Deployment runs `remediator run`")
	return object{}, workload{}, container{}, nil
}

// k8sMountedConfig follows --config to the volume, the ConfigMap (generated by kustomize from
// a file, or a manifest) and loads the configuration with config.Load.
func k8sMountedConfig(t *testing.T, objs []object, pod podSpec, c container) *config.Config {
	t.Helper()
	p, ok := flag(c.Args, "--config")
	if !ok {
		if e, found := c.env("REMEDIATOR_CONFIG"); found {
			p, ok = e.Value, true
		}
	}
	if !ok {
		t.Fatalf("container %s has no --config: it would run the built-in configuration (embedded NATS, simulated flows)", c.Name)
	}
	dir, key := path.Split(p)
	for _, v := range pod.Volumes {
		mp, mounted := c.mountPath(v.Name)
		if !mounted || path.Clean(mp) != path.Clean(dir) || v.ConfigMap == nil {
			continue
		}
		for _, f := range loadKustomization(t).generatedFiles()[v.ConfigMap.Name] {
			if path.Base(f) == key {
				cfg, err := config.Load(filepath.Join(k8sDir, f))
				if err != nil {
					t.Fatalf("configuration %s (ConfigMap %s): %v", f, v.ConfigMap.Name, err)
				}
				return cfg
			}
		}
		if cm, found := find(objs, "ConfigMap", v.ConfigMap.Name); found {
			var data struct {
				Data map[string]string `yaml:"data"`
			}
			cm.decode(t, &data)
			if s, has := data.Data[key]; has {
				cfg, err := config.Parse([]byte(s), cm.String())
				if err != nil {
					t.Fatal(err)
				}
				return cfg
			}
		}
		t.Fatalf("--config %s: ConfigMap %s mounted at %s is neither generated by kustomization.yaml with a file %s nor a manifest with that key",
			p, v.ConfigMap.Name, mp, key)
	}
	t.Fatalf("--config %s: no ConfigMap volume is mounted at %s", p, dir)
	return nil
}

func TestManifestsWellFormed(t *testing.T) {
	t.Parallel()
	objs := loadManifests(t)
	k := loadKustomization(t)
	seen := map[string]string{}
	for i, o := range objs {
		t.Run(fmt.Sprintf("%d-%s-%s", i, o.Kind, o.Metadata.Name), func(t *testing.T) {
			t.Parallel()
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Fatalf("%s: document %d needs apiVersion, kind and metadata.name (got %q %q %q)", o.file, i, o.APIVersion, o.Kind, o.Metadata.Name)
			}
			if o.Kind != "Namespace" && o.Metadata.Namespace != "" && o.Metadata.Namespace != k.Namespace {
				t.Errorf("%s: namespace %q differs from the kustomization's %q", o, o.Metadata.Namespace, k.Namespace)
			}
		})
		id := o.APIVersion + "/" + o.Kind + "/" + o.Metadata.Name
		if other, dup := seen[id]; dup {
			t.Errorf("%s is defined twice (%s and %s)", id, other, o.file)
		}
		seen[id] = o.file
	}
	if ns := ofKind(objs, "Namespace"); len(ns) != 1 || ns[0].Metadata.Name != k.Namespace {
		t.Errorf("want one Namespace manifest named %q (the kustomization's namespace), got %v", k.Namespace, ns)
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	t.Parallel()
	k := loadKustomization(t)
	generated := map[string]bool{}
	for _, files := range k.generatedFiles() {
		for _, f := range files {
			generated[f] = true
			if _, err := os.Stat(filepath.Join(k8sDir, f)); err != nil {
				t.Errorf("configMapGenerator file %s: %v", f, err)
			}
		}
	}
	for _, g := range k.SecretGenerator {
		for _, f := range g.Files {
			generated[f] = true
		}
	}
	entries, err := os.ReadDir(k8sDir)
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || (!strings.HasSuffix(n, ".yaml") && !strings.HasSuffix(n, ".yml")) {
			continue
		}
		if n == "kustomization.yaml" || n == "kustomization.yml" || generated[n] {
			continue
		}
		onDisk = append(onDisk, n)
	}
	listed := slices.Clone(k.Resources)
	sort.Strings(onDisk)
	sort.Strings(listed)
	for _, f := range onDisk {
		if !slices.Contains(listed, f) {
			t.Errorf("%s is not listed under resources: `kubectl apply -k` would skip it", f)
		}
	}
	for _, f := range listed {
		if !slices.Contains(onDisk, f) {
			t.Errorf("resources lists %s, which is not a manifest file in %s", f, k8sDir)
		}
	}
	if len(listed) != len(slices.Compact(slices.Clone(listed))) {
		t.Errorf("resources lists a file twice: %v", listed)
	}
}

func TestRemediatorDeployment(t *testing.T) {
	t.Parallel()
	objs := loadManifests(t)
	dep, w, c, cfg := remediatorDeployment(t, objs)

	if w.Spec.Replicas == nil || *w.Spec.Replicas < 2 {
		t.Errorf("%s: replicas %s; want several replicas sharing the durable consumers", dep, deref(w.Spec.Replicas))
	}

	_, httpPortStr, err := net.SplitHostPort(cfg.HTTP.Addr)
	if err != nil {
		t.Fatalf("http.addr %q: %v", cfg.HTTP.Addr, err)
	}
	if host, _, _ := net.SplitHostPort(cfg.HTTP.Addr); host != "0.0.0.0" && host != "" && host != "::" {
		t.Errorf("http.addr %q listens on %s only: the kubelet's probes cannot reach it", cfg.HTTP.Addr, host)
	}
	httpPort, _ := strconv.Atoi(httpPortStr)
	probes := []struct {
		name  string
		probe *probe
		path  string
	}{
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
	}
	if c.StartupProbe != nil {
		probes = append(probes, struct {
			name  string
			probe *probe
			path  string
		}{"startupProbe", c.StartupProbe, "/healthz"})
	}
	for _, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no httpGet %s", dep, p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s: %s path %q, want %s", dep, p.name, p.probe.HTTPGet.Path, p.path)
		}
		if port, ok := c.port(p.probe.HTTPGet.Port); !ok || port != httpPort {
			t.Errorf("%s: %s port %q is %d, but http.addr listens on %d", dep, p.name, p.probe.HTTPGet.Port, port, httpPort)
		}
	}

	grace := w.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second <= cfg.Worker.ShutdownTimeout {
		t.Errorf("%s: terminationGracePeriodSeconds %s is not above worker.shutdownTimeout %s: pods are killed with work in flight",
			dep, deref(grace), cfg.Worker.ShutdownTimeout)
	}

	pod := w.Spec.Template.Spec
	if !isTrue(pod.SecurityContext, func(s *securityContext) *bool { return s.RunAsNonRoot }) &&
		!isTrue(c.SecurityContext, func(s *securityContext) *bool { return s.RunAsNonRoot }) {
		t.Errorf("%s: runAsNonRoot is not set", dep)
	}
	if !isTrue(c.SecurityContext, func(s *securityContext) *bool { return s.ReadOnlyRootFilesystem }) {
		t.Errorf("%s: readOnlyRootFilesystem is not set", dep)
	}
	if c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" || c.Resources.Requests["cpu"] == "" {
		t.Errorf("%s: resources %+v: want cpu and memory requests and a memory limit", dep, c.Resources)
	}

	// NATS: the configuration must not fall back to an embedded server (it would write to the
	// read-only root file system, and each pod would have its own streams).
	natsURL := cfg.NATS.URL
	if e, ok := c.env("NATS_URL"); ok {
		natsURL = e.Value
	}
	if natsURL == "" {
		t.Fatalf("%s: neither NATS_URL nor nats.url is set", dep)
	}
	for _, hp := range hostsOf(t, natsURL) {
		host, port, _ := net.SplitHostPort(hp)
		host, _, _ = strings.Cut(host, ".") // svc, svc.ns, svc.ns.svc.cluster.local
		if !serviceExposes(t, objs, host, port) {
			t.Errorf("%s: NATS_URL host %s is not a Service exposing port %s", dep, hp, port)
		}
	}

	// Tokens: every clientToken.env must come from a Secret key that exists.
	for _, f := range cfg.Flows {
		if f.ClientToken.Env == "" {
			continue
		}
		e, ok := c.env(f.ClientToken.Env)
		if !ok {
			t.Errorf("flow %s: %s is not set in the container: every invocation would fail", f.Name, f.ClientToken.Env)
			continue
		}
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("flow %s: %s is not read from a Secret (secretKeyRef)", f.Name, f.ClientToken.Env)
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		sec, found := find(objs, "Secret", ref.Name)
		if !found {
			t.Errorf("flow %s: %s reads Secret %s, which no manifest defines", f.Name, f.ClientToken.Env, ref.Name)
			continue
		}
		var s struct {
			Data       map[string]string `yaml:"data"`
			StringData map[string]string `yaml:"stringData"`
		}
		sec.decode(t, &s)
		_, inData := s.Data[ref.Key]
		_, inStringData := s.StringData[ref.Key]
		if !inData && !inStringData {
			t.Errorf("flow %s: Secret %s has no key %s", f.Name, ref.Name, ref.Key)
		}
	}
}

func deref[T any](p *T) string {
	if p == nil {
		return "(unset)"
	}
	return fmt.Sprint(*p)
}

func isTrue(sc *securityContext, field func(*securityContext) *bool) bool {
	if sc == nil {
		return false
	}
	v := field(sc)
	return v != nil && *v
}

func serviceExposes(t *testing.T, objs []object, name, port string) bool {
	t.Helper()
	o, ok := find(objs, "Service", name)
	if !ok {
		return false
	}
	var s service
	o.decode(t, &s)
	for _, p := range s.Spec.Ports {
		if strconv.Itoa(p.Port) == port {
			return true
		}
	}
	return false
}

func TestSecretsArePlaceholders(t *testing.T) {
	t.Parallel()
	objs := loadManifests(t)
	secrets := ofKind(objs, "Secret")
	if len(secrets) == 0 {
		t.Skip("no Secret manifest")
	}
	for _, o := range secrets {
		var s struct {
			Data       map[string]string `yaml:"data"`
			StringData map[string]string `yaml:"stringData"`
		}
		o.decode(t, &s)
		if len(s.Data) > 0 {
			t.Errorf("%s: has data:; keep only REPLACE_ME placeholders under stringData and never commit tokens", o)
		}
		for k, v := range s.StringData {
			if v != "REPLACE_ME" {
				t.Errorf("%s: %s is not the REPLACE_ME placeholder: is a real token committed?", o, k)
			}
		}
	}
}

func TestNATSStatefulSet(t *testing.T) {
	t.Parallel()
	objs := loadManifests(t)
	_, _, _, cfg := remediatorDeployment(t, objs)
	var (
		sts  object
		w    workload
		nats container
	)
	for _, o := range ofKind(objs, "StatefulSet") {
		var ww workload
		o.decode(t, &ww)
		for _, c := range ww.Spec.Template.Spec.Containers {
			if strings.HasPrefix(c.Image, "nats:") || strings.Contains(c.Image, "/nats:") {
				sts, w, nats = o, ww, c
			}
		}
	}
	if sts.Kind == "" {
		t.Fatal("no StatefulSet runs NATS")
	}
	replicas := 1
	if w.Spec.Replicas != nil {
		replicas = *w.Spec.Replicas
	}
	if replicas != 3 {
		t.Errorf("%s: replicas %d, want 3", sts, replicas)
	}
	if replicas < cfg.Streams.Replicas {
		t.Errorf("%s: %d nodes cannot hold streams.replicas %d: stream creation fails", sts, replicas, cfg.Streams.Replicas)
	}

	// The headless Service the routes go through.
	headless, ok := find(objs, "Service", w.Spec.ServiceName)
	if !ok {
		t.Fatalf("%s: serviceName %q is not a Service", sts, w.Spec.ServiceName)
	}
	var hs service
	headless.decode(t, &hs)
	if hs.Spec.ClusterIP != "None" {
		t.Errorf("%s: clusterIP %q; a StatefulSet's serviceName must be headless (None) for per-pod DNS names", headless, hs.Spec.ClusterIP)
	}
	if !selects(hs.Spec.Selector, w.Spec.Template.Metadata.Labels) {
		t.Errorf("%s does not select the NATS pods", headless)
	}

	// nats.conf: from --config, in a ConfigMap mounted there.
	confPath, ok := flag(nats.Args, "--config")
	if !ok {
		confPath, ok = flag(nats.Args, "-c")
	}
	if !ok {
		t.Fatalf("%s: nats-server has no --config", sts)
	}
	conf := ""
	dir, key := path.Split(confPath)
	for _, v := range w.Spec.Template.Spec.Volumes {
		if mp, mounted := nats.mountPath(v.Name); mounted && path.Clean(mp) == path.Clean(dir) && v.ConfigMap != nil {
			cm, found := find(objs, "ConfigMap", v.ConfigMap.Name)
			if !found {
				t.Fatalf("%s mounts ConfigMap %s, which no manifest defines", sts, v.ConfigMap.Name)
			}
			var data struct {
				Data map[string]string `yaml:"data"`
			}
			cm.decode(t, &data)
			conf = data.Data[key]
		}
	}
	if conf == "" {
		t.Fatalf("%s: --config %s is not a key of a mounted ConfigMap", sts, confPath)
	}
	conf = stripConfComments(conf)

	js, ok := confBlock(conf, "jetstream")
	if !ok {
		t.Fatalf("nats.conf has no jetstream { } block: JetStream is off and remediator cannot start")
	}
	store := confValue(js, "store_dir")
	dataMount := ""
	for _, vct := range w.Spec.VolumeClaimTemplates {
		if mp, mounted := nats.mountPath(vct.Metadata.Name); mounted {
			dataMount = mp
			if size := vct.Spec.Resources.Requests["storage"]; size != "10Gi" {
				t.Errorf("volume claim %s requests %q, want 10Gi", vct.Metadata.Name, size)
			}
		}
	}
	if store == "" || dataMount == "" || path.Clean(store) != path.Clean(dataMount) {
		t.Errorf("jetstream store_dir %q is not the persistent volume mounted at %q: streams are lost when a pod restarts", store, dataMount)
	}

	cluster, ok := confBlock(conf, "cluster")
	if !ok {
		t.Fatal("nats.conf has no cluster { } block: three independent servers, not a cluster")
	}
	clusterPort := confValue(cluster, "port")
	if clusterPort == "" {
		if l := confValue(cluster, "listen"); l != "" {
			_, clusterPort, _ = net.SplitHostPort(l)
		}
	}
	var want []string
	for i := range replicas {
		want = append(want, fmt.Sprintf("%s-%d.%s:%s", sts.Metadata.Name, i, w.Spec.ServiceName, clusterPort))
	}
	var got []string
	for _, r := range regexp.MustCompile(`nats-route://[^\s,\]"]+|nats://[^\s,\]"]+`).FindAllString(cluster, -1) {
		u, err := url.Parse(r)
		if err != nil {
			t.Errorf("route %q: %v", r, err)
			continue
		}
		host, port, _ := net.SplitHostPort(u.Host)
		// Accept the short name and the namespace-qualified / fully qualified forms.
		parts := strings.SplitN(host, ".", 3)
		if len(parts) >= 2 {
			host = parts[0] + "." + parts[1]
		}
		got = append(got, host+":"+port)
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("cluster routes %v, want one per pod through the headless Service %v", got, want)
	}
	if _, ok := flag(nats.Args, "--server_name"); !ok && !strings.Contains(conf, "server_name") {
		t.Error("no server_name: JetStream clustering needs a unique, stable name per node")
	}
}

var slashCommentRE = regexp.MustCompile(`(^|\s)//.*$`)

// stripConfComments removes # and // comments from a NATS configuration.
func stripConfComments(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		line = slashCommentRE.ReplaceAllString(line, "")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// confBlock returns the body of the top-level block "name { ... }" of a NATS configuration.
func confBlock(conf, name string) (string, bool) {
	loc := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `\s*[:=]?\s*\{`).FindStringIndex(conf)
	if loc == nil {
		return "", false
	}
	depth := 1
	for i := loc[1]; i < len(conf); i++ {
		switch conf[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return conf[loc[1]:i], true
			}
		}
	}
	return "", false
}

// confValue returns the value of "key: value" (or "key = value", "key value") in a block.
func confValue(block, key string) string {
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(key) + `\s*[:=\s]\s*"?([^"\s]+)"?`).FindStringSubmatch(block)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestServicesAndBudgetsSelectPods(t *testing.T) {
	t.Parallel()
	objs := loadManifests(t)
	type pods struct {
		owner  object
		labels map[string]string
		spec   podSpec
	}
	var all []pods
	for _, o := range append(ofKind(objs, "Deployment"), ofKind(objs, "StatefulSet")...) {
		var w workload
		o.decode(t, &w)
		if !selects(w.Spec.Selector.MatchLabels, w.Spec.Template.Metadata.Labels) {
			t.Errorf("%s: selector %v does not match its own pod labels %v", o, w.Spec.Selector.MatchLabels, w.Spec.Template.Metadata.Labels)
		}
		all = append(all, pods{o, w.Spec.Template.Metadata.Labels, w.Spec.Template.Spec})
	}
	for _, o := range ofKind(objs, "Service") {
		t.Run(o.Metadata.Name, func(t *testing.T) {
			t.Parallel()
			var s service
			o.decode(t, &s)
			var target *pods
			for i := range all {
				if selects(s.Spec.Selector, all[i].labels) {
					target = &all[i]
				}
			}
			if target == nil {
				t.Fatalf("%s: selector %v matches no pods: the Service has no endpoints", o, s.Spec.Selector)
			}
			for _, p := range s.Spec.Ports {
				tp := p.TargetPort
				if tp == "" {
					tp = intOrString(strconv.Itoa(p.Port))
				}
				found := false
				for _, c := range target.spec.Containers {
					if _, ok := c.port(tp); ok {
						found = true
					}
				}
				if !found {
					t.Errorf("%s: port %s targets %q, which %s's containers do not declare", o, p.Name, tp, target.owner)
				}
			}
		})
	}
	for _, o := range ofKind(objs, "PodDisruptionBudget") {
		var pdb struct {
			Spec struct {
				MinAvailable   *intOrString `yaml:"minAvailable"`
				MaxUnavailable *intOrString `yaml:"maxUnavailable"`
				Selector       struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"selector"`
			} `yaml:"spec"`
		}
		o.decode(t, &pdb)
		matched := false
		for _, p := range all {
			matched = matched || selects(pdb.Spec.Selector.MatchLabels, p.labels)
		}
		if !matched {
			t.Errorf("%s: selector matches no pods: the budget protects nothing", o)
		}
		if (pdb.Spec.MinAvailable == nil) == (pdb.Spec.MaxUnavailable == nil) {
			t.Errorf("%s: set exactly one of minAvailable and maxUnavailable", o)
		}
	}

	// The remediator Service exposes the health endpoints on 8080, port name http.
	dep, w, _, _ := remediatorDeployment(t, objs)
	found := false
	for _, o := range ofKind(objs, "Service") {
		var s service
		o.decode(t, &s)
		if !selects(s.Spec.Selector, w.Spec.Template.Metadata.Labels) {
			continue
		}
		for _, p := range s.Spec.Ports {
			found = found || (p.Name == "http" && p.Port == 8080)
		}
	}
	if !found {
		t.Errorf("no Service selects %s with a port named http on 8080", dep)
	}
	minOne := false
	for _, o := range ofKind(objs, "PodDisruptionBudget") {
		var pdb struct {
			Spec struct {
				MinAvailable *intOrString `yaml:"minAvailable"`
				Selector     struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"selector"`
			} `yaml:"spec"`
		}
		o.decode(t, &pdb)
		if selects(pdb.Spec.Selector.MatchLabels, w.Spec.Template.Metadata.Labels) && pdb.Spec.MinAvailable != nil && *pdb.Spec.MinAvailable == "1" {
			minOne = true
		}
	}
	if !minOne {
		t.Errorf("no PodDisruptionBudget with minAvailable 1 covers %s", dep)
	}
}

// TestRestrictedPodSecurity: the Namespace enforces the "restricted" Pod Security Standard, so
// a pod that misses one of its requirements is rejected at admission and never runs.
func TestRestrictedPodSecurity(t *testing.T) {
	t.Parallel()
	objs := loadManifests(t)
	restricted := false
	for _, ns := range ofKind(objs, "Namespace") {
		restricted = restricted || ns.Metadata.Labels["pod-security.kubernetes.io/enforce"] == "restricted"
	}
	if !restricted {
		t.Skip("the Namespace does not enforce the restricted Pod Security Standard")
	}
	for _, o := range append(ofKind(objs, "Deployment"), ofKind(objs, "StatefulSet")...) {
		t.Run(o.Kind+"-"+o.Metadata.Name, func(t *testing.T) {
			t.Parallel()
			var w workload
			o.decode(t, &w)
			pod := w.Spec.Template.Spec
			podSeccomp := pod.SecurityContext != nil && pod.SecurityContext.SeccompProfile != nil && pod.SecurityContext.SeccompProfile.Type == "RuntimeDefault"
			for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
				sc := c.SecurityContext
				if !isTrue(pod.SecurityContext, func(s *securityContext) *bool { return s.RunAsNonRoot }) &&
					!isTrue(sc, func(s *securityContext) *bool { return s.RunAsNonRoot }) {
					t.Errorf("%s: container %s: runAsNonRoot is not true", o, c.Name)
				}
				if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
					t.Errorf("%s: container %s: allowPrivilegeEscalation must be false", o, c.Name)
				}
				if sc == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
					t.Errorf("%s: container %s: capabilities must drop ALL", o, c.Name)
				}
				if !podSeccomp && (sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != "RuntimeDefault") {
					t.Errorf("%s: container %s: seccompProfile RuntimeDefault is not set", o, c.Name)
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------------------------

type instruction struct {
	cmd  string // upper case
	args string
}

func loadDockerfile(t *testing.T) []instruction {
	t.Helper()
	b, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		full := strings.TrimSpace(cur.String())
		cur.Reset()
		if full == "" {
			continue
		}
		cmd, args, _ := strings.Cut(full, " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
	}
	return out
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	ins := loadDockerfile(t)
	args := map[string]string{}
	var froms []string
	var runtime []instruction // instructions of the last stage
	for _, in := range ins {
		switch in.cmd {
		case "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			if _, set := args[k]; !set {
				args[k] = v
			}
		case "FROM":
			img := in.args
			for _, f := range strings.Fields(in.args) {
				if !strings.HasPrefix(f, "--") {
					img = f
					break
				}
			}
			for k, v := range args {
				img = strings.ReplaceAll(strings.ReplaceAll(img, "${"+k+"}", v), "$"+k, v)
			}
			froms = append(froms, img)
			runtime = nil
		}
		runtime = append(runtime, in)
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build (builder and runtime), got FROM %v", froms)
	}

	// Builder: a golang image new enough for go.mod (the golang images set GOTOOLCHAIN=local,
	// so an older one fails instead of downloading a toolchain).
	builder := froms[0]
	goVersion, ok := strings.CutPrefix(builder, "golang:")
	if !ok {
		t.Fatalf("builder %q is not a golang image", builder)
	}
	goVersion, _, _ = strings.Cut(goVersion, "-")
	if want := goDirective(t); compareVersions(goVersion, majorMinor(want)) < 0 {
		t.Errorf("builder golang:%s is older than go.mod's go %s", goVersion, want)
	}

	// The build.
	var build string
	for _, in := range ins {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			build = in.args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X " + modulePath + "/cli.Version="} {
		if !strings.Contains(build, want) {
			t.Errorf("the go build step %q lacks %q", build, want)
		}
	}
	if f := strings.Fields(build); len(f) == 0 || f[len(f)-1] != "./cmd/remediator" {
		t.Errorf("the go build step %q does not build ./cmd/remediator", build)
	}
	if !versionVarExists(t) {
		t.Errorf("-X %s/cli.Version names no string variable Version in package cli: --version would say dev", modulePath)
	}
	if fi, err := os.Stat(filepath.Join(repoRoot, "cmd", "remediator", "main.go")); err != nil || fi.IsDir() {
		t.Errorf("./cmd/remediator/main.go: %v", err)
	}
	out := ""
	if m := regexp.MustCompile(`-o\s+(\S+)`).FindStringSubmatch(build); m != nil {
		out = m[1]
	}

	// Runtime: distroless, nonroot, the binary as the entrypoint, `run` by default.
	final := froms[len(froms)-1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") || !strings.HasSuffix(final, ":nonroot") {
		t.Errorf("runtime image %q, want gcr.io/distroless/static-debian12:nonroot", final)
	}
	user, entry, cmd, copied, exposed := "", "", "", false, ""
	for _, in := range runtime {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "CMD":
			cmd = in.args
		case "COPY":
			copied = copied || (strings.Contains(in.args, "--from=") && out != "" && strings.Fields(in.args)[len(strings.Fields(in.args))-1] == out)
		case "EXPOSE":
			exposed = in.args
		case "HEALTHCHECK":
			t.Errorf("HEALTHCHECK %q: distroless has no shell or HTTP client; it would always fail", in.args)
		}
	}
	if user != "nonroot" && user != "65532" && user != "65532:65532" && user != "nonroot:nonroot" {
		t.Errorf("runtime USER %q, want nonroot", user)
	}
	var entryArgs, cmdArgs []string
	if err := json.Unmarshal([]byte(entry), &entryArgs); err != nil || len(entryArgs) == 0 || entryArgs[0] != out {
		t.Errorf("ENTRYPOINT %s, want the exec form [%q] (the binary built with -o)", entry, out)
	}
	if err := json.Unmarshal([]byte(cmd), &cmdArgs); err != nil || !slices.Equal(cmdArgs, []string{"run"}) {
		t.Errorf(`CMD %s, want ["run"]`, cmd)
	}
	if !copied {
		t.Errorf("the runtime stage does not COPY --from the builder's %s", out)
	}
	if exposed != "8080" {
		t.Errorf("EXPOSE %q, want 8080 (http.addr in the deployment configurations)", exposed)
	}
}

func goDirective(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go\s+(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// versionVarExists reports whether package cli declares `var Version string` (or = "...").
func versionVarExists(t *testing.T) bool {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(repoRoot, "cli", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			continue
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name != "Version" {
						continue
					}
					if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "string" {
						return true
					}
					if vs.Type == nil && i < len(vs.Values) {
						if bl, ok := vs.Values[i].(*ast.BasicLit); ok && bl.Kind == token.STRING {
							return true
						}
					}
				}
			}
		}
	}
	return false
}

// TestDockerignoreKeepsBuildInputs: every file `go build ./cmd/remediator` reads (go.mod,
// go.sum, the module's Go and embedded files) must be in the build context.
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	b, err := os.ReadFile(dockerignorePath)
	if err != nil {
		t.Fatal(err)
	}
	ignore := parseDockerignore(string(b))

	cmd := exec.Command(goBin, "list", "-e", "-deps", "-json=Dir,GoFiles,EmbedFiles,Module", "./cmd/remediator")
	cmd.Dir = repoRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	inputs := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(outb))
	for dec.More() {
		var p struct {
			Dir        string
			GoFiles    []string
			EmbedFiles []string
			Module     *struct{ Path string }
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || p.Module.Path != modulePath {
			continue
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(slices.Clone(p.GoFiles), p.EmbedFiles...) {
			inputs = append(inputs, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	if len(inputs) < 3 {
		t.Fatalf("go list found no source files of %s", modulePath)
	}
	for _, f := range inputs {
		if ignore.excludes(f) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", f)
		}
	}
	// And it must keep local state out of the image build context.
	for _, f := range []string{".git/config", "data/nats/jetstream/x"} {
		if !ignore.excludes(f) {
			t.Errorf(".dockerignore does not exclude %s", f)
		}
	}
}

type dockerignore []struct {
	re     *regexp.Regexp
	negate bool
}

func parseDockerignore(s string) dockerignore {
	var out dockerignore
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		neg := strings.HasPrefix(line, "!")
		line = strings.TrimPrefix(line, "!")
		line = strings.Trim(path.Clean("/"+line), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case c == '*' && i+1 < len(line) && line[i+1] == '*':
				re.WriteString(".*")
				i++
				if i+1 < len(line) && line[i+1] == '/' {
					re.WriteString("/?")
					i++
				}
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("$")
		out = append(out, struct {
			re     *regexp.Regexp
			negate bool
		}{regexp.MustCompile(re.String()), neg})
	}
	return out
}

// excludes reports whether a path (slash-separated, relative to the context) is left out of
// the build context: a pattern matching the path or one of its parent directories excludes
// it; the last matching pattern wins.
func (d dockerignore) excludes(p string) bool {
	excluded := false
	parts := strings.Split(p, "/")
	for _, rule := range d {
		for i := 1; i <= len(parts); i++ {
			if rule.re.MatchString(strings.Join(parts[:i], "/")) {
				excluded = !rule.negate
				break
			}
		}
	}
	return excluded
}
