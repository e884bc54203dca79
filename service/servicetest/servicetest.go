// Package servicetest runs a whole remediator service in-process for end-to-end tests:
// embedded JetStream on a random port, the simulator, the worker and the HTTP server.
package servicetest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/service"
)

// Running is a started service.
type Running struct {
	Addrs  service.Addrs
	Config *config.Config
	stop   context.CancelFunc
	done   chan error
}

// Config returns the built-in configuration adjusted for a test: embedded NATS on a random
// port with storage in dir, the HTTP server on a port the system picks, quick retries. The
// simulator gets its port from [Start], which binds it and points the flows at it.
func Config(t testing.TB, dir string) *config.Config {
	t.Helper()
	cfg, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg.NATS.Embedded.Port = -1
	cfg.NATS.Embedded.StoreDir = dir
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Worker.RetryBaseDelay = 50 * time.Millisecond
	cfg.Worker.RetryMaxDelay = 200 * time.Millisecond
	cfg.Worker.ShutdownTimeout = 5 * time.Second
	return cfg
}

// RecordKey is the secret of the record key [WithRecordKey] configures.
const RecordKey = "servicetest-record-key-0123456789abcdef0123"

// WithRecordKey sets security.recordKeys to one key, "test1", whose secret (RecordKey) is in
// a file of the test's: what a configuration with an external NATS needs.
func WithRecordKey(t testing.TB, cfg *config.Config) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "record-key")
	if err := os.WriteFile(path, []byte(RecordKey), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Security.RecordKeys = []config.RecordKey{{ID: "test1", Secret: config.Secret{File: path}}}
}

// Start runs the service with cfg until the test ends or Stop is called.
func Start(t testing.TB, cfg *config.Config, log *slog.Logger) *Running {
	t.Helper()
	return StartWith(t, cfg, service.Options{Logger: log})
}

// StartWith is [Start] with service options (a tracer provider, an HTTP client). When the
// simulator is enabled and opts has no SimulatorListener, it binds 127.0.0.1:0, points the
// flows that call simulator.addr at the bound address, and hands the listener to the service:
// no port is guessed, so no other process can take it in between.
func StartWith(t testing.TB, cfg *config.Config, opts service.Options) *Running {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Ingress.Enabled() && opts.IngressListener == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts.IngressListener = ln
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = lookupEnv
	}
	if cfg.Simulator.Enabled && opts.SimulatorListener == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		PointFlowsAt(cfg, ln.Addr().String())
		opts.SimulatorListener = ln
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{Config: cfg, stop: cancel, done: make(chan error, 1)}
	ready := make(chan service.Addrs, 1)
	opts.Ready = func(a service.Addrs) { ready <- a }
	go func() { r.done <- service.Run(ctx, cfg, opts) }()
	select {
	case r.Addrs = <-ready:
	case err := <-r.done:
		cancel()
		t.Fatalf("service stopped before it was ready: %v", err)
	case <-time.After(testwait.DefaultTimeout):
		cancel()
		t.Fatalf("service not ready within %s", testwait.DefaultTimeout)
	}
	running.Store(r.Addrs.NATS, r)
	t.Cleanup(func() {
		running.CompareAndDelete(r.Addrs.NATS, r)
		if err := r.Stop(); err != nil {
			t.Errorf("service stop: %v", err)
		}
	})
	return r
}

// The ingress secrets a test service accepts (the built-in configuration's variables, set
// for the service alone): tests authenticate with these.
const (
	OktaHookSecret = "servicetest-okta-hook-secret"
	ISPMWebhookKey = "servicetest-ispm-webhook-key"
	IngressToken   = "servicetest-ingress-token"
	// ConsoleToken signs in to the ops console (principal console-admin, which the built-in
	// resource sets let run every flow).
	ConsoleToken = "servicetest-console-token"
)

// lookupEnv is the process environment with the test ingress secrets added.
func lookupEnv(k string) (string, bool) {
	switch k {
	case "REMEDIATOR_OKTA_HOOK_SECRET":
		return OktaHookSecret, true
	case "REMEDIATOR_ISPM_WEBHOOK_KEY":
		return ISPMWebhookKey, true
	case "REMEDIATOR_INGRESS_TOKEN":
		return IngressToken, true
	case "REMEDIATOR_CONSOLE_TOKEN":
		return ConsoleToken, true
	}
	return os.LookupEnv(k)
}

// PointFlowsAt moves the simulator to addr and rewrites the flows that call the simulator's
// current address to call addr instead, and okta.orgUrl when the simulator plays the org.
func PointFlowsAt(cfg *config.Config, addr string) {
	old := cfg.Simulator.Addr
	for i := range cfg.Flows {
		cfg.Flows[i].URL = strings.Replace(cfg.Flows[i].URL, "//"+old+"/", "//"+addr+"/", 1)
	}
	if cfg.Okta.OrgURL == "http://"+old {
		cfg.Okta.OrgURL = "http://" + addr
	}
	cfg.Simulator.Addr = addr
}

// Stop shuts the service down and returns Run's error. It is safe to call twice.
func (r *Running) Stop() error {
	if r.stop == nil {
		return nil
	}
	r.stop()
	r.stop = nil
	select {
	case err := <-r.done:
		return err
	case <-time.After(testwait.DefaultTimeout):
		return fmt.Errorf("service did not stop within %s", testwait.DefaultTimeout)
	}
}

// Connect opens a client connection to the running service's NATS as the operator role (what
// the CLI may do: read every stream, publish events, audit records and switches), closed when
// the test ends. A test that must forge what only the worker writes uses [Running.ConnectAs].
func (r *Running) Connect(t testing.TB) *broker.Broker {
	t.Helper()
	return r.ConnectAs(t, broker.RoleOperator)
}

// ConnectAs opens a client connection to the running service's NATS as role, closed when the
// test ends. With nats.embedded.auth off it connects without credentials. Every connection
// setting is explicit (broker keeps no hidden defaults).
func (r *Running) ConnectAs(t testing.TB, role broker.Role) *broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testwait.DefaultTimeout)
	defer cancel()
	b, err := broker.Connect(ctx, r.ConnConfigAs(t, role), nil)
	if err != nil {
		t.Fatalf("servicetest: connect to %s as %s: %v", r.Addrs.NATS, role, err)
	}
	t.Cleanup(b.Close)
	return b
}

// ConnConfigAs is the client configuration of role for the running service's NATS.
func (r *Running) ConnConfigAs(t testing.TB, role broker.Role) broker.ConnConfig {
	t.Helper()
	cc := broker.ConnConfig{URL: r.Addrs.NATS, Name: "servicetest", ConnectTimeout: 5 * time.Second, MaxReconnects: -1}
	if r.Config.NATS.URL != "" || (r.Config.NATS.Embedded.Auth != nil && !*r.Config.NATS.Embedded.Auth) {
		return cc
	}
	dir, err := service.CredentialsDir(r.Config)
	if err != nil {
		t.Fatal(err)
	}
	cc.NKeyFile = broker.CredentialsFile(dir, role)
	cc.InboxPrefix = role.InboxPrefix()
	return cc
}

// DataDir is the embedded NATS data directory of the running service: the CLI's --data-dir,
// under which it finds the generated credentials.
func (r *Running) DataDir() string { return r.Config.NATS.Embedded.StoreDir }

// running maps the NATS URL of each service started here to it, for test helpers that are
// handed only the URL (see [ByNATSURL]).
var running sync.Map

// ByNATSURL returns the running service whose NATS client URL is url, or nil: a CLI test
// helper given a URL finds the service's credentials (its DataDir) with it.
func ByNATSURL(url string) *Running {
	if r, ok := running.Load(url); ok {
		return r.(*Running)
	}
	return nil
}

// StreamWake returns a channel that receives a value each time a message matching filter is
// stored in stream (from now on), for [testwait.WakeOn]: a test waiting for a status or a dead
// letter re-checks when one arrives instead of rescanning the stream every few milliseconds.
// The tail stops when the test ends.
func StreamWake(t testing.TB, b *broker.Broker, stream, filter string) <-chan struct{} {
	t.Helper()
	wake := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Tail(ctx, stream, filter, 0, func(*broker.StoredMessage) {
			select {
			case wake <- struct{}{}:
			default: // a wake-up is already pending; the check reads everything anyway
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return wake
}

// LogBuffer collects log output written from many goroutines (a service's, a worker process's),
// for tests that read it back.
type LogBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
