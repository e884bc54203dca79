package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/internal/testwait"
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

// stack is a JetStream (one embedded server or a cluster), a simulator and a configuration
// for worker processes.
type stack struct {
	t       testing.TB
	b       *broker.Broker
	natsURL string
	cluster *brokertest.TestCluster // nil for a single server
	sim     *flowsim.Simulator
	// simWake receives a value after each call the simulator answered (or dropped), so that
	// waits on its statistics re-check when they change.
	simWake chan struct{}
	cfgPath string
	cfg     *config.Config

	statusWake <-chan struct{} // see statusWakeOn
}

type stackOptions struct {
	rate   float64 // per flow, simulator and worker; default 1000
	faults map[string]flowsim.Faults
	// retryAfter, per flow, replaces the simulator's "Retry-After: 1" on a 429 by this many
	// seconds: a long budget wait (flowsim's injected 429s always say 1 s).
	retryAfter map[string]int
	// clusterSize > 0 runs a brokertest.Cluster of that many servers instead of one embedded
	// server; the workers get every server's client URL.
	clusterSize int
	// replicas of every stream and KV bucket (streams.replicas); default 1.
	replicas int
	// unprovisioned leaves JetStream empty: the workers create the streams and buckets.
	unprovisioned bool
	adjust        func(*config.Config)
}

func newStack(t testing.TB, opt stackOptions) *stack {
	t.Helper()
	if opt.rate == 0 {
		opt.rate = 1000
	}
	if opt.replicas == 0 {
		opt.replicas = 1
	}
	s := &stack{t: t, simWake: make(chan struct{}, 1)}
	if opt.clusterSize > 0 {
		s.cluster = brokertest.Cluster(t, opt.clusterSize)
		s.natsURL = s.cluster.ClientURL()
	} else {
		srv, err := broker.StartEmbedded(context.Background(), broker.EmbeddedConfig{Port: -1, StoreDir: t.TempDir()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
		s.natsURL = srv.ClientURL()
	}
	b, err := broker.Connect(context.Background(), brokertest.ConnConfig(s.natsURL), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	s.b = b
	streams := brokertest.Streams()
	streams.Replicas = opt.replicas
	if !opt.unprovisioned {
		// Streams exist before any worker starts, as they do in production, so events can wait.
		if err := b.Provision(context.Background(), streams); err != nil {
			t.Fatal(err)
		}
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
	s.sim = sim
	hs := httptest.NewServer(s.simHandler(opt.retryAfter))
	t.Cleanup(func() { sim.Close(); hs.Close() })

	cfg.NATS.URL = s.natsURL
	// An external NATS needs record keys, the same for every replica and the CLI.
	cfg.Security.RecordKeys = []config.RecordKey{{ID: "e2e", Secret: config.Secret{Env: "E2E_RECORD_KEY"}}}
	cfg.HTTP.Addr = "off"
	cfg.Ingress.Addr = "off" // several replicas share this file; none needs Okta's way in
	cfg.Simulator.Enabled = false
	cfg.Streams.Replicas = opt.replicas
	if opt.replicas > 1 {
		cfg.Worker.DispatchConsumerState = "file" // what a file naming the replicas gets by default
	}
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
	s.cfgPath = filepath.Join(t.TempDir(), "remediator.yaml")
	if err := os.WriteFile(s.cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(s.cfgPath); err != nil {
		t.Fatalf("the generated configuration does not load: %v", err)
	}
	s.cfg = cfg
	return s
}

// e2eRecordKey is the record key every replica of a stack holds.
const e2eRecordKey = "e2e-record-key-0123456789abcdef0123456789"

// simHandler serves the simulator, wakes simWake after each call, and stretches the
// Retry-After of a 429 for the flows in retryAfter.
func (s *stack) simHandler(retryAfter map[string]int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Deferred: the simulator drops a connection by panicking with http.ErrAbortHandler.
		defer signal(s.simWake)
		for alias, secs := range retryAfter {
			if strings.HasPrefix(r.URL.Path, "/api/flo/"+alias+"/") {
				w = &retryAfterWriter{ResponseWriter: w, seconds: secs}
			}
		}
		s.sim.ServeHTTP(w, r)
	})
}

// retryAfterWriter rewrites the Retry-After header of a 429 as it is sent.
type retryAfterWriter struct {
	http.ResponseWriter
	seconds int
}

func (w *retryAfterWriter) WriteHeader(code int) {
	if code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(w.seconds))
	}
	w.ResponseWriter.WriteHeader(code)
}

// signal wakes whoever waits on ch, without blocking: one pending wake-up is enough, since the
// waiter re-reads everything when it wakes.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// waitSim waits until cond holds on the simulator's state, re-checking after each call.
func (s *stack) waitSim(what string, timeout time.Duration, cond func() bool) {
	s.t.Helper()
	testwait.Until(s.t, what, cond, testwait.Timeout(timeout), testwait.WakeOn(s.simWake))
}

// statusWakeOn wakes a wait when a status record is stored. The tail starts on first use,
// since a stack left unprovisioned has no status stream until a worker creates it.
func (s *stack) statusWakeOn() testwait.Option {
	if s.statusWake == nil {
		s.statusWake = servicetest.StreamWake(s.t, s.b, broker.StreamStatus, "")
	}
	return testwait.WakeOn(s.statusWake)
}

// waitTerminal waits until n (event, flow) pairs have a terminal status record and returns
// the records. A scan that fails (a stream electing a leader) is retried until the timeout.
func (s *stack) waitTerminal(n int, timeout time.Duration) map[string][]status.Record {
	s.t.Helper()
	var got map[string][]status.Record
	testwait.UntilNil(s.t, fmt.Sprintf("%d (event, flow) pairs to reach a terminal state", n), func() error {
		recs, err := s.scanTerminal()
		if err != nil {
			return err
		}
		got = recs
		if len(recs) < n {
			return fmt.Errorf("%d of %d terminal", len(recs), n)
		}
		return nil
	}, testwait.Timeout(timeout), s.statusWakeOn())
	return got
}

// process is a remediator worker running as its own OS process.
type process struct {
	cmd  *exec.Cmd
	logs *wakingLog
	// admin is the address of its /healthz, /readyz and /metrics, on a socket the test bound
	// and handed over (LISTEN_FDS), so that no port is guessed.
	admin string
	// exited is closed when the process has exited; err is then cmd.Wait's error.
	exited chan struct{}
	err    error
}

// wakingLog is a process's log, announcing each write so that a wait for readiness re-checks.
type wakingLog struct {
	servicetest.LogBuffer
	wake chan struct{}
}

func (l *wakingLog) Write(p []byte) (int, error) {
	n, err := l.LogBuffer.Write(p)
	signal(l.wake)
	return n, err
}

// startWorker runs `remediator run` against the stack and waits until its consumers are bound.
func (s *stack) startWorker() *process {
	s.t.Helper()
	p := s.spawnWorker()
	s.waitReady(p)
	return p
}

// spawnWorker runs `remediator run` against the stack without waiting for it.
func (s *stack) spawnWorker() *process {
	s.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	sock, err := ln.(*net.TCPListener).File()
	if err != nil {
		s.t.Fatal(err)
	}
	_ = ln.Close() // the child gets its own copy of the socket; it stays bound
	cmd := exec.Command(binary, "run", "--config", s.cfgPath, "--log-format", "json")
	cmd.Env = append(os.Environ(), "E2E_FLOW_TOKEN="+token, "E2E_RECORD_KEY="+e2eRecordKey, "LISTEN_FDS=1")
	cmd.ExtraFiles = []*os.File{sock} // file descriptor 3
	logs := &wakingLog{wake: make(chan struct{}, 1)}
	cmd.Stdout, cmd.Stderr = logs, logs
	err = cmd.Start()
	_ = sock.Close()
	if err != nil {
		s.t.Fatal(err)
	}
	p := &process{cmd: cmd, logs: logs, admin: ln.Addr().String(), exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	s.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	return p
}

// errExited ends a wait for a process that is gone.
var errExited = errors.New("worker exited")

// waitReady waits until the worker's /readyz answers 200 (its consumers bound and fetching),
// and fails the test at once if it exits instead.
func (s *stack) waitReady(p *process) {
	s.t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	err := testwait.Wait(func() error {
		select {
		case <-p.exited:
			return fmt.Errorf("%w: %v", errExited, p.err)
		default:
		}
		resp, err := client.Get("http://" + p.admin + "/readyz")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz %d: %s", resp.StatusCode, body)
		}
		return nil
	}, testwait.Timeout(60*time.Second), testwait.WakeOn(p.logs.wake), testwait.WakeOn(p.exited))
	if err != nil {
		s.t.Fatalf("worker not ready: %v\n%s", err, p.logs.String())
	}
}

// kill ends the process with SIGKILL: no shutdown, no acks, no goodbyes.
func (p *process) kill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// terminal collects, per event id and flow, the terminal status records stored so far.
func (s *stack) terminal() map[string][]status.Record {
	s.t.Helper()
	out, err := s.scanTerminal()
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

func (s *stack) scanTerminal() (map[string][]status.Record, error) {
	out := map[string][]status.Record{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.b.Scan(ctx, broker.StreamStatus, "", 0, time.Time{}, func(m *broker.StoredMessage) bool {
		var r status.Record
		if json.Unmarshal(m.Data, &r) == nil && r.Outcome.Terminal() {
			out[r.EventID+"/"+r.Flow] = append(out[r.EventID+"/"+r.Flow], r)
		}
		return true
	})
	return out, err
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
