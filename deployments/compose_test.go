package deployments

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/remediator/remediator/config"
)

// Paths are relative to this package's directory, where `go test` runs.
const (
	repoRoot          = ".."
	composePath       = "../docker-compose.yml"
	dockerfilePath    = "../Dockerfile"
	dockerignorePath  = "../.dockerignore"
	composeConfigPath = "compose/remediator.yaml"
	k8sConfigPath     = "kubernetes/remediator.yaml"
	kindConfigPath    = "kind/remediator.yaml"
	modulePath        = "github.com/remediator/remediator"
)

// loadCompose loads a compose file as `docker compose config` does (compose-go: schema
// validation, interpolation from env, anchors, merge keys and extends, normalization), with
// paths resolved against the file's directory.
func loadCompose(ctx context.Context, file string, env []string) (*types.Project, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithName("remediator"),
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithEnv(env),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(ctx)
}

// The demo token a user gets without setting REMEDIATOR_FLOWSIM_TOKEN, and the one the test
// sets to see interpolation reach every service that reads it.
const (
	composeDefaultToken = "demo-token-change-me"
	composeTestToken    = "token-from-the-environment"
)

// The ingress secrets a user gets without setting them (the demo defaults), and the ones the
// test sets to see them passed through.
var (
	composeDefaultIngress = map[string]string{
		config.EnvOktaHookSecret: "demo-okta-hook-secret-change-me",
		config.EnvISPMWebhookKey: "demo-ispm-webhook-key-change-me",
		config.EnvIngressToken:   "demo-ingress-token-change-me",
	}
	composeTestIngress = map[string]string{
		config.EnvOktaHookSecret: "hook-secret-from-the-environment",
		config.EnvISPMWebhookKey: "ispm-key-from-the-environment",
		config.EnvIngressToken:   "ingress-token-from-the-environment",
	}
)

func TestCompose(t *testing.T) {
	t.Parallel()
	testEnv := []string{"REMEDIATOR_FLOWSIM_TOKEN=" + composeTestToken}
	for k, v := range composeTestIngress {
		testEnv = append(testEnv, k+"="+v)
	}
	for _, tc := range []struct {
		env     []string
		token   string
		ingress map[string]string
	}{
		{nil, composeDefaultToken, composeDefaultIngress},
		{testEnv, composeTestToken, composeTestIngress},
	} {
		p, err := loadCompose(t.Context(), composePath, tc.env)
		if err != nil {
			t.Fatalf("%s: %v", composePath, err)
		}
		if err := checkCompose(p, tc.token, tc.ingress); err != nil {
			t.Errorf("env %q:\n%v", tc.env, err)
		}
	}
}

// A compose file with a typo fails to load, naming the field: compose-go validates against
// the Compose specification's schema, as docker compose does.
func TestComposeRejectsUnknownFields(t *testing.T) {
	t.Parallel()
	_, err := loadCompose(t.Context(), "testdata/broken-compose/docker-compose.yml", nil)
	if err == nil || !strings.Contains(err.Error(), "healthchek") {
		t.Fatalf("err = %v, want one naming healthchek", err)
	}
}

// checkCompose checks the loaded model: the NATS cluster routes and health checks, the
// workers' dependencies, ports, grace period and mounted configuration, the simulator, and
// that every bind-mounted file exists, and that the workers start: their ingress is published
// and its secrets are passed. token is what REMEDIATOR_FLOWSIM_TOKEN must be after
// interpolation, ingress what each ingress variable must be.
func checkCompose(p *types.Project, token string, ingress map[string]string) error {
	var errs []error
	bad := func(svc, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: service %s: %s", composePath, svc, fmt.Sprintf(format, args...)))
	}
	for _, name := range []string{"nats-1", "nats-2", "nats-3", "jaeger", "flowsim", "worker-1", "worker-2"} {
		if _, err := p.GetService(name); err != nil {
			bad(name, "missing")
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	// NATS: three JetStream nodes routed to each other, healthy once /healthz answers.
	var natsServices []string
	for name, s := range p.Services {
		if strings.HasPrefix(s.Image, "nats:") {
			natsServices = append(natsServices, name)
		}
	}
	slices.Sort(natsServices)
	serverNames := map[string]string{}
	for _, name := range natsServices {
		s := p.Services[name]
		if !imagePinned(s.Image) {
			bad(name, "image %q is not pinned", s.Image)
		}
		if !slices.Contains(s.Command, "-js") {
			bad(name, "command: JetStream (-js) is off")
		}
		if sn, _ := flagValue(s.Command, "--server_name"); sn == "" {
			bad(name, "command: no --server_name (JetStream clustering needs a unique one)")
		} else if other, dup := serverNames[sn]; dup {
			bad(name, "command: --server_name %s is also %s's", sn, other)
		} else {
			serverNames[sn] = name
		}
		routes, _ := flagValue(s.Command, "--routes")
		for _, peer := range natsServices {
			if !strings.Contains(routes, "nats://"+peer+":6222") {
				bad(name, "command --routes %q: no route to %s", routes, peer)
			}
		}
		monitor, _ := flagValue(s.Command, "-m")
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) == 0 {
			bad(name, "healthcheck: missing; the workers wait for service_healthy")
		} else if want := "http://127.0.0.1:" + monitor + "/healthz"; monitor == "" || !slices.Contains(hc.Test, want) {
			bad(name, "healthcheck.test %q: does not fetch %s (the monitoring port, -m)", hc.Test, want)
		}
		if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Type == types.VolumeTypeVolume && v.Target == "/data"
		}) {
			bad(name, "volumes: no named volume on /data: the JetStream store would die with the container")
		}
	}
	if len(natsServices) != 3 {
		errs = append(errs, fmt.Errorf("%s: %d NATS services %v, want 3 (streams.replicas: 3)", composePath, len(natsServices), natsServices))
	}

	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		if s.Build == nil && !imagePinned(s.Image) {
			bad(name, "image %q is not pinned", s.Image)
		}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				bad(name, "volumes: %s is mounted at %s but does not exist in the repository", v.Source, v.Target)
			}
		}
	}

	// The simulator: its --addr is published, and its flows are the configuration's.
	fs := p.Services["flowsim"]
	if fs.Command[0] != "flowsim" {
		bad("flowsim", "command %q does not run flowsim", fs.Command)
	}
	if addr, _ := flagValue(fs.Command, "--addr"); !publishes(fs, addr) {
		bad("flowsim", "ports: --addr %s is not published", addr)
	}
	simPath, _ := flagValue(fs.Command, "--config")
	simCfg, err := mountedComposeConfig(fs, simPath)
	if err != nil {
		bad("flowsim", "command --config: %v", err)
		return errors.Join(errs...)
	}
	simToken := env(fs, simCfg.Simulator.TokenEnv)
	if simToken != token {
		bad("flowsim", "environment %s = %q after interpolation, want %q", simCfg.Simulator.TokenEnv, simToken, token)
	}

	// Jaeger: the UI and both OTLP receivers on the host.
	j := p.Services["jaeger"]
	for _, port := range []string{"16686", "4317", "4318"} {
		if !publishes(j, ":"+port) {
			bad("jaeger", "ports: %s is not published", port)
		}
	}

	// The workers.
	for _, name := range []string{"worker-1", "worker-2"} {
		s := p.Services[name]
		if len(s.Command) == 0 || s.Command[0] != "run" {
			bad(name, "command %q does not run the worker", s.Command)
			continue
		}
		cfgPath, _ := flagValue(s.Command, "--config")
		cfg, err := mountedComposeConfig(s, cfgPath)
		if err != nil {
			bad(name, "command --config: %v", err)
			continue
		}
		if !publishes(s, cfg.HTTP.Addr) {
			bad(name, "ports: http.addr %s (/healthz, /readyz, /metrics) is not published", cfg.HTTP.Addr)
		}
		if !publishes(s, cfg.Ingress.Addr) {
			bad(name, "ports: ingress.addr %s (Okta event hook, ISPM webhook, publish API) is not published", cfg.Ingress.Addr)
		}
		for key, sec := range ingressSecrets(cfg) {
			if sec.Env == "" {
				bad(name, "%s in %s: want an environment variable, which this file passes", key, cfgPath)
			} else if got := env(s, sec.Env); got != ingress[sec.Env] {
				bad(name, "environment %s (%s) = %q after interpolation, want %q", sec.Env, key, got, ingress[sec.Env])
			}
		}
		lookup := func(k string) (string, bool) {
			v := s.Environment[k]
			if v == nil {
				return "", false
			}
			return *v, true
		}
		mountedFile := func(f string) bool {
			return slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == f })
		}
		if err := startProblems(cfg, lookup, mountedFile); err != nil {
			bad(name, "run would refuse to start: %v", err)
		}
		for _, nats := range natsServices {
			if d, ok := s.DependsOn[nats]; !ok || d.Condition != types.ServiceConditionHealthy {
				bad(name, "depends_on.%s: want condition service_healthy (run does not retry its first connection)", nats)
			}
		}
		if d, ok := s.DependsOn["flowsim"]; !ok || d.Condition != types.ServiceConditionStarted {
			bad(name, "depends_on.flowsim: want condition service_started")
		}
		if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) < cfg.Worker.ShutdownTimeout+10*time.Second {
			bad(name, "stop_grace_period %v: below worker.shutdownTimeout (%v) plus 10s for the NATS drain", s.StopGracePeriod, cfg.Worker.ShutdownTimeout)
		}
		urls := env(s, "NATS_URL")
		for _, nats := range natsServices {
			if !slices.ContainsFunc(strings.Split(urls, ","), func(u string) bool {
				pu, err := url.Parse(u)
				return err == nil && pu.Hostname() == nats
			}) {
				bad(name, "environment NATS_URL %q: does not list %s (the client could not fail over to it)", urls, nats)
			}
		}
		if cfg.Simulator.Enabled {
			bad(name, "simulator.enabled in %s: the flowsim service serves the flows", cfgPath)
		}
		for _, f := range cfg.Flows {
			if f.ClientToken.Env != "" && env(s, f.ClientToken.Env) != simToken {
				bad(name, "environment %s (the client token of flow %s) = %q, not the simulator's %q: every call would be unauthorized",
					f.ClientToken.Env, f.Name, env(s, f.ClientToken.Env), simToken)
			}
		}
		if ep, err := url.Parse(env(s, "OTEL_EXPORTER_OTLP_ENDPOINT")); err != nil || ep.Host != "jaeger:4318" {
			bad(name, "environment OTEL_EXPORTER_OTLP_ENDPOINT %q: want http://jaeger:4318 (OTLP/HTTP on the jaeger service)", env(s, "OTEL_EXPORTER_OTLP_ENDPOINT"))
		}
		if env(s, "OTEL_SERVICE_NAME") == "" {
			bad(name, "environment OTEL_SERVICE_NAME is not set: traces would show up as unknown_service")
		}
	}
	return errors.Join(errs...)
}

func env(s types.ServiceConfig, name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

// publishes reports whether the container port of addr (host:port) is published on the host.
func publishes(s types.ServiceConfig, addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	n, _ := strconv.Atoi(port)
	return slices.ContainsFunc(s.Ports, func(p types.ServicePortConfig) bool {
		return int(p.Target) == n && p.Published != ""
	})
}

// mountedComposeConfig follows a container path to the host file bind-mounted there and loads
// it with config.Load.
func mountedComposeConfig(s types.ServiceConfig, containerPath string) (*config.Config, error) {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == containerPath {
			return config.Load(v.Source)
		}
	}
	return nil, fmt.Errorf("nothing is bind-mounted at %q", containerPath)
}
