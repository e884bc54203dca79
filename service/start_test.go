package service_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/service"
	"github.com/remediator/remediator/service/servicetest"
	"github.com/remediator/remediator/status"
)

// bind listens on a port the system picks, closed when the test ends (the service closes it
// first when it was handed over).
func bind(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// runUntilStarted runs the service and returns Run's error if it stops within wait, or nil
// after cancelling it once it is ready.
func runUntilStarted(t *testing.T, cfg *config.Config, opts service.Options) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	opts.Ready = func(service.Addrs) { close(ready) }
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, cfg, opts) }()
	select {
	case err := <-done:
		return err
	case <-ready:
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stop: %v", err)
		}
		return nil
	case <-time.After(testwait.DefaultTimeout):
		cancel()
		<-done
		t.Fatal("Run neither failed nor became ready")
		return nil
	}
}

// TestRunRefusesASecondInstanceOnOneDataDir: a second `remediator run` on the same data
// directory stops before it touches the store, naming the instance that holds it, whether it
// was given other ports or the same ones (issue 11, defect 9). The first keeps working.
func TestRunRefusesASecondInstanceOnOneDataDir(t *testing.T) {
	t.Setenv("REMEDIATOR_FLOWSIM_TOKEN", "lock-test-token")
	dir := t.TempDir()
	first := servicetest.Start(t, servicetest.Config(t, dir), nil)
	holder := "pid " + strconv.Itoa(os.Getpid())

	t.Run("other ports", func(t *testing.T) {
		cfg := servicetest.Config(t, dir)
		err := runUntilStarted(t, cfg, service.Options{HTTPListener: bind(t), SimulatorListener: bind(t)})
		if err == nil || !strings.Contains(err.Error(), "data directory "+dir+" is in use by another remediator ("+holder) {
			t.Fatalf("second instance on %s: err = %v; want the data directory named in use by %s", dir, err, holder)
		}
	})
	t.Run("same ports", func(t *testing.T) {
		cfg := servicetest.Config(t, dir)
		cfg.HTTP.Addr = first.Addrs.HTTP
		u, err := url.Parse(first.Addrs.Simulator)
		if err != nil {
			t.Fatal(err)
		}
		servicetest.PointFlowsAt(cfg, u.Host)
		err = runUntilStarted(t, cfg, service.Options{})
		if err == nil || !strings.Contains(err.Error(), "is in use by another remediator ("+holder) || strings.Contains(err.Error(), "http.addr") {
			t.Fatalf("second instance on the same ports: err = %v; want the lock checked first, naming its holder", err)
		}
	})

	b := connect(t, first)
	if _, err := publish.New(b, nil).Publish(context.Background(), readSeed(t), publish.Options{}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the first instance's succeeded status", func() bool { return countStatus(t, b, status.Succeeded) == 1 },
		testwait.WakeOn(servicetest.StreamWake(t, b, broker.StreamStatus, broker.SubjectsStatus)))
}

// TestRunWaitsForNATS: `remediator run` against an external NATS that is not up yet retries
// with backoff, answering /readyz with 503 meanwhile, and starts once the server comes
// (issue 11, defect 8). nats-server cannot take a listener, so the port is chosen by starting
// a server, noting its port and stopping it; the server started later takes the same port.
// Another process could grab the port in between; the test then fails to restart the server
// and says so, rather than passing wrongly.
func TestRunWaitsForNATS(t *testing.T) {
	t.Setenv("REMEDIATOR_FLOWSIM_TOKEN", "late-nats-token")
	storeDir := t.TempDir()
	ctx := context.Background()
	probe, err := broker.StartEmbedded(ctx, broker.EmbeddedConfig{Port: -1, StoreDir: storeDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	natsURL := probe.ClientURL()
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	if err := probe.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	cfg := servicetest.Config(t, t.TempDir())
	cfg.NATS.URL = natsURL
	servicetest.WithRecordKey(t, cfg)
	simLn := bind(t)
	servicetest.PointFlowsAt(cfg, simLn.Addr().String())
	httpLn := bind(t)
	readyz := "http://" + httpLn.Addr().String() + "/readyz"
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ready := make(chan service.Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- service.Run(runCtx, cfg, service.Options{
			Logger: slog.New(slog.DiscardHandler), HTTPListener: httpLn, SimulatorListener: simLn,
			Ready: func(a service.Addrs) { ready <- a },
		})
	}()

	// Alive, not ready, and saying why, across several failed attempts.
	testwait.Until(t, "/readyz to say it is connecting to NATS", func() bool {
		code, body := getQuiet(readyz)
		return code == 503 && strings.Contains(body, "connecting to NATS (attempt 3)")
	})
	select {
	case err := <-done:
		t.Fatalf("Run gave up while NATS was down: %v", err)
	default:
	}

	srv, err := broker.StartEmbedded(ctx, broker.EmbeddedConfig{Port: port, StoreDir: storeDir}, nil)
	if err != nil {
		t.Fatalf("restart NATS on port %d (another process may have taken it): %v", port, err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run stopped instead of connecting: %v", err)
	case <-time.After(testwait.DefaultTimeout):
		t.Fatal("the service did not start within 30s of NATS coming up")
	}
	if code, body := getQuiet(readyz); code != 200 {
		t.Errorf("/readyz = %d %q once connected, want 200", code, body)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestRunRefusesAnUnsetClientToken: a flow whose token variable is unset is refused at start,
// naming the flow and the variable, before the store or any port is touched (issue 11,
// defect 10). Today it starts, and every call of that flow fails minutes later.
func TestRunRefusesAnUnsetClientToken(t *testing.T) {
	dir := t.TempDir()
	cfg := servicetest.Config(t, dir)
	cfg.Flows[1].ClientToken = config.Secret{Env: "REMEDIATOR_TEST_UNSET_TOKEN"}
	env := func(k string) (string, bool) {
		if k == "REMEDIATOR_TEST_UNSET_TOKEN" {
			return "", false
		}
		return "a-token", true
	}
	err := runUntilStarted(t, cfg, service.Options{LookupEnv: env, HTTPListener: bind(t), SimulatorListener: bind(t)})
	want := "flows[1] (" + cfg.Flows[1].Name + "): clientToken.env: environment variable REMEDIATOR_TEST_UNSET_TOKEN is not set"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run = %v; want an error saying %q", err, want)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the refused start left %d entries in the data directory", len(entries))
	}
}

// TestRunRefusesValuesThatCannotWork: a value out of range is a start-up error naming its key,
// never a panic (issue 11, defect 7), even for a Config built in code rather than loaded.
func TestRunRefusesValuesThatCannotWork(t *testing.T) {
	for _, tt := range []struct {
		key    string
		adjust func(*config.Config)
	}{
		{"worker.intakeConcurrency", func(c *config.Config) { c.Worker.IntakeConcurrency = -1 }},
		{"worker.ackWait", func(c *config.Config) { c.Worker.AckWait = 10 * time.Millisecond }},
		{"flows[0] (suspend-okta-account): concurrency", func(c *config.Config) { c.Flows[0].Concurrency = -2 }},
	} {
		t.Run(tt.key, func(t *testing.T) {
			cfg := servicetest.Config(t, t.TempDir())
			tt.adjust(cfg)
			err := runUntilStarted(t, cfg, service.Options{LookupEnv: func(string) (string, bool) { return "t", true }, HTTPListener: bind(t), SimulatorListener: bind(t)})
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("Run = %v; want an error naming %s", err, tt.key)
			}
		})
	}
}

// TestRunLeavesTheEnvironmentAlone: with the simulator's token variable unset, `run`
// generates a token and hands it to its flows without exporting it into the process
// environment (a library has no business changing process-wide state).
func TestRunLeavesTheEnvironmentAlone(t *testing.T) {
	t.Setenv("REMEDIATOR_FLOWSIM_TOKEN", "")
	if err := os.Unsetenv("REMEDIATOR_FLOWSIM_TOKEN"); err != nil {
		t.Fatal(err)
	}
	svc := servicetest.Start(t, servicetest.Config(t, t.TempDir()), nil)
	if v, ok := os.LookupEnv("REMEDIATOR_FLOWSIM_TOKEN"); ok {
		t.Errorf("the service exported REMEDIATOR_FLOWSIM_TOKEN=%q into the process environment", v)
	}
	b := connect(t, svc)
	if _, err := publish.New(b, nil).Publish(context.Background(), readSeed(t), publish.Options{}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "a success with the generated token", func() bool { return countStatus(t, b, status.Succeeded) == 1 },
		testwait.WakeOn(servicetest.StreamWake(t, b, broker.StreamStatus, broker.SubjectsStatus)))
}

// getQuiet is an HTTP GET that reports a failed request as code 0.
func getQuiet(u string) (int, string) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
