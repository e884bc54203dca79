package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/service/servicetest"
	"github.com/remediator/remediator/status"
)

// binary is the remediator command built once for the package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "remediator-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "remediator")
	build := exec.Command("go", "build", "-o", binary, "../cmd/remediator")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building remediator:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const token = "e2e-flow-token-4b1d"

// stack is an embedded JetStream, a simulator and a configuration for worker processes.
type stack struct {
	t       testing.TB
	b       *broker.Broker
	natsURL string
	sim     *flowsim.Simulator
	cfgPath string
	cfg     *config.Config
}

type stackOptions struct {
	rate   float64 // per flow, simulator and worker; default 1000
	faults map[string]flowsim.Faults
	adjust func(*config.Config)
}

func newStack(t testing.TB, opt stackOptions) *stack {
	t.Helper()
	if opt.rate == 0 {
		opt.rate = 1000
	}
	srv, err := broker.StartEmbedded(context.Background(), broker.EmbeddedConfig{Port: -1, StoreDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	b, err := broker.Connect(context.Background(), brokertest.ConnConfig(srv.ClientURL()), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	// Streams exist before any worker starts, as they do in production, so events can wait.
	if err := b.Provision(context.Background(), brokertest.Streams()); err != nil {
		t.Fatal(err)
	}

	cfg, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	var flows []flowsim.Flow
	for _, f := range cfg.Flows {
		flows = append(flows, flowsim.Flow{Alias: f.Name, Name: f.Name, Token: token, RateLimit: opt.rate, Faults: opt.faults[f.Name]})
	}
	sim, err := flowsim.New(flowsim.Config{Flows: flows, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Close(); hs.Close() })

	cfg.NATS.URL = srv.ClientURL()
	cfg.HTTP.Addr = "off"
	cfg.Ingress.Addr = "off" // several replicas share this file; none needs Okta's way in
	cfg.Simulator.Enabled = false
	for i := range cfg.Flows {
		cfg.Flows[i].URL = hs.URL + "/api/flo/" + cfg.Flows[i].Name + "/invoke"
		cfg.Flows[i].ClientToken = config.Secret{Env: "E2E_FLOW_TOKEN"}
		cfg.Flows[i].RateLimit = opt.rate
	}
	cfg.Worker.RetryBaseDelay = 100 * time.Millisecond
	cfg.Worker.RetryMaxDelay = time.Second
	cfg.Worker.AckWait = 2 * time.Second
	cfg.Worker.ShutdownTimeout = 5 * time.Second
	if opt.adjust != nil {
		opt.adjust(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "remediator.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path); err != nil {
		t.Fatalf("the generated configuration does not load: %v", err)
	}
	return &stack{t: t, b: b, natsURL: srv.ClientURL(), sim: sim, cfgPath: path, cfg: cfg}
}

// process is a remediator worker running as its own OS process.
type process struct {
	cmd  *exec.Cmd
	logs *servicetest.LogBuffer
	done chan error
}

// startWorker runs `remediator run` against the stack and waits until its consumers are bound.
func (s *stack) startWorker() *process {
	s.t.Helper()
	cmd := exec.Command(binary, "run", "--config", s.cfgPath, "--log-format", "json")
	cmd.Env = append(os.Environ(), "E2E_FLOW_TOKEN="+token)
	logs := &servicetest.LogBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	p := &process{cmd: cmd, logs: logs, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	s.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	waitFor(s.t, 30*time.Second, "worker process ready", func() bool {
		select {
		case err := <-p.done:
			s.t.Fatalf("worker exited early: %v\n%s", err, logs.String())
		default:
		}
		return strings.Contains(logs.String(), "worker started")
	})
	return p
}

// kill ends the process with SIGKILL: no shutdown, no acks, no goodbyes.
func (p *process) kill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// terminal collects, per event id and flow, the terminal status records stored so far.
func (s *stack) terminal() map[string][]status.Record {
	s.t.Helper()
	out := map[string][]status.Record{}
	err := s.b.Scan(context.Background(), broker.StreamStatus, "", 0, time.Time{}, func(m *broker.StoredMessage) bool {
		var r status.Record
		if json.Unmarshal(m.Data, &r) == nil && r.Outcome.Terminal() {
			out[r.EventID+"/"+r.Flow] = append(out[r.EventID+"/"+r.Flow], r)
		}
		return true
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readExample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func withFields(t testing.TB, doc []byte, kv ...string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
