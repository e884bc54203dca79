// Package servicetest runs a whole remediator service in-process for end-to-end tests:
// embedded JetStream on a random port, the simulator, the worker and the HTTP server.
package servicetest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/remediator/remediator/config"
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
// port with storage in dir, the HTTP server and the simulator on free ports, quick retries.
func Config(t testing.TB, dir string) *config.Config {
	t.Helper()
	cfg, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg.NATS.Embedded.Port = -1
	cfg.NATS.Embedded.StoreDir = dir
	cfg.HTTP.Addr = "127.0.0.1:0"
	simAddr := FreeAddr(t)
	cfg.Simulator.Addr = simAddr
	for i := range cfg.Flows {
		cfg.Flows[i].URL = strings.Replace(cfg.Flows[i].URL, "127.0.0.1:8090", simAddr, 1)
	}
	cfg.Worker.RetryBaseDelay = 50 * time.Millisecond
	cfg.Worker.RetryMaxDelay = 200 * time.Millisecond
	cfg.Worker.ShutdownTimeout = 5 * time.Second
	return cfg
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start runs the service with cfg until the test ends or Stop is called.
func Start(t testing.TB, cfg *config.Config, log *slog.Logger) *Running {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{Config: cfg, stop: cancel, done: make(chan error, 1)}
	ready := make(chan service.Addrs, 1)
	go func() {
		r.done <- service.Run(ctx, cfg, service.Options{Logger: log, Ready: func(a service.Addrs) { ready <- a }})
	}()
	select {
	case r.Addrs = <-ready:
	case err := <-r.done:
		cancel()
		t.Fatalf("service stopped before it was ready: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("service not ready within 20s")
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("service stop: %v", err)
		}
	})
	return r
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
	case <-time.After(30 * time.Second):
		return fmt.Errorf("service did not stop within 30s")
	}
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
