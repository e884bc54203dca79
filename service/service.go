package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/policy"
	"github.com/remediator/remediator/schema"
	"github.com/remediator/remediator/telemetry"
	"github.com/remediator/remediator/worker"
)

// Options are the run-time settings that are not part of the configuration file.
type Options struct {
	Logger *slog.Logger
	// Ready, if set, is called once the service is processing events, with the addresses it
	// listens on.
	Ready func(Addrs)
	// HTTPClient is used to call flows. Default: flow.NewClient's own.
	HTTPClient *http.Client
	// Metrics are served on /metrics. Default: a fresh telemetry.SetupMetrics() for this run.
	Metrics *telemetry.Metrics
}

// Addrs are the addresses a running service listens on.
type Addrs struct {
	NATS      string // client URL of the server in use
	HTTP      string // /healthz, /readyz and /metrics; "" when disabled
	Simulator string // base URL of the simulator; "" when disabled
}

// shutdownStep bounds each infrastructure step of the shutdown after the worker has stopped.
const shutdownStep = 10 * time.Second

// Run starts remediator and blocks until ctx is cancelled, then shuts down in stages: stop
// fetching and finish in-flight events (the worker), stop the HTTP server, drain the NATS
// connection, stop the simulator, and stop the embedded NATS server last.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	var addrs Addrs
	var cleanups []func(context.Context) error
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			sctx, cancel := context.WithTimeout(context.Background(), shutdownStep)
			if err := cleanups[i](sctx); err != nil {
				log.Warn("shutdown step failed", slog.Any("error", err))
			}
			cancel()
		}
	}()

	metrics := opts.Metrics
	if metrics == nil {
		m, err := telemetry.SetupMetrics()
		if err != nil {
			return err
		}
		cleanups = append(cleanups, m.Shutdown)
		metrics = m
	}

	natsURL := cfg.NATS.URL
	if natsURL == "" {
		e := cfg.NATS.Embedded
		dir, _ := filepath.Abs(e.StoreDir)
		emb, err := broker.StartEmbedded(ctx, broker.EmbeddedConfig{Host: e.Host, Port: e.Port, StoreDir: dir, SyncInterval: e.SyncInterval}, log)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, func(ctx context.Context) error {
			log.Info("stopping embedded NATS server")
			return emb.Shutdown(ctx)
		})
		natsURL = emb.ClientURL()
		log.Info("embedded NATS server with JetStream started (no nats.url configured)", slog.String("url", natsURL), slog.String("store_dir", dir))
	}
	addrs.NATS = natsURL

	conn := broker.ConnConfig{
		URL: natsURL, CredsFile: cfg.NATS.CredsFile, NKeyFile: cfg.NATS.NKeyFile, User: cfg.NATS.User,
		TLSCAFile: cfg.NATS.TLSCAFile, TLSCertFile: cfg.NATS.TLSCertFile, TLSKeyFile: cfg.NATS.TLSKeyFile,
	}
	if cfg.NATS.PasswordEnv != "" {
		conn.Password = os.Getenv(cfg.NATS.PasswordEnv)
	}
	b, err := broker.Connect(ctx, conn, log)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func(ctx context.Context) error {
		log.Info("draining NATS connection")
		return b.Drain(ctx)
	})
	if err := b.Provision(ctx, broker.StreamsConfig{
		MaxAge: cfg.Streams.MaxAge, Replicas: cfg.Streams.Replicas,
		DuplicateWindow: cfg.Streams.DuplicateWindow, Storage: cfg.Streams.Storage,
	}); err != nil {
		return err
	}

	if cfg.Simulator.Enabled {
		simURL, stop, err := startSimulator(ctx, cfg, log)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, stop)
		addrs.Simulator = simURL
	}

	validator, err := schema.New()
	if err != nil {
		return err
	}
	flows, err := Flows(cfg)
	if err != nil {
		return err
	}
	w, err := worker.New(worker.Config{
		Broker: worker.JetStream(b), Validator: validator, Router: policy.New(cfg),
		Invoker: flow.NewClient(flow.ClientConfig{HTTPClient: opts.HTTPClient, MeterProvider: metrics.Provider}),
		Flows:   flows, Logger: log, MeterProvider: metrics.Provider,
		IntakeConcurrency: cfg.Worker.IntakeConcurrency, MaxAttempts: cfg.Worker.MaxAttempts,
		QuickRetries: *cfg.Worker.QuickRetries, QuickRetryDelay: quickRetryDelay,
		RetryBaseDelay: cfg.Worker.RetryBaseDelay, RetryMaxDelay: cfg.Worker.RetryMaxDelay,
		ShutdownTimeout: cfg.Worker.ShutdownTimeout, AckWait: cfg.Worker.AckWait, JobRetention: cfg.Streams.MaxAge, Replicas: cfg.Streams.Replicas,
		IntakeMaxDeliver: intakeMaxDeliver, DispatchMaxDeliver: dispatchMaxDeliver, MaxEventBytes: maxEventBytes,
	})
	if err != nil {
		return err
	}

	if cfg.HTTP.Addr != "" && cfg.HTTP.Addr != "off" {
		addr, stop, err := serveHTTP(cfg.HTTP.Addr, health{broker: b, worker: w}, metrics.Handler, log)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, stop)
		addrs.HTTP = addr
	}

	workerCtx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	errc := make(chan error, 1)
	go func() { errc <- w.Run(workerCtx) }()
	go func() {
		for !w.Ready() {
			select {
			case <-time.After(10 * time.Millisecond):
			case <-workerCtx.Done():
				return
			}
		}
		log.Info("remediator is running", slog.String("nats", addrs.NATS), slog.String("http", addrs.HTTP), slog.String("simulator", addrs.Simulator))
		if opts.Ready != nil {
			opts.Ready(addrs)
		}
	}()
	select {
	case err := <-errc: // the worker failed to start or stopped on its own
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: stopping the worker first")
	return <-errc
}

// Worker settings the configuration does not carry yet.
// TODO(lead, at merge): take them from the config package's defaults (limits.maxEventBytes,
// worker.quickRetryDelay, worker.intakeMaxDeliver, worker.dispatchMaxDeliver, the breaker's
// failure ratio) and drop these.
const (
	quickRetryDelay    = 200 * time.Millisecond
	intakeMaxDeliver   = 20
	dispatchMaxDeliver = 100
	maxEventBytes      = 256 << 10
)

// breakerConfig fills what the configuration leaves to defaults.
// TODO(lead, at merge): the config package's defaults table should hold these.
func breakerConfig(b config.Breaker) worker.BreakerConfig {
	c := worker.BreakerConfig{ConsecutiveFailures: b.ConsecutiveFailures, Cooldown: b.Cooldown,
		FailureRatio: 0.5, MinRequests: 20, Window: time.Minute}
	if c.ConsecutiveFailures == 0 {
		c.ConsecutiveFailures = 5
	}
	if c.Cooldown == 0 {
		c.Cooldown = 30 * time.Second
	}
	return c
}

// Flows turns the configured flows into worker flows with their credentials.
func Flows(cfg *config.Config) ([]worker.Flow, error) {
	var out []worker.Flow
	for _, f := range cfg.Flows {
		var src flow.TokenSource
		if f.ClientToken.Env != "" {
			src = flow.TokenFromEnv(f.ClientToken.Env)
		} else {
			src = flow.TokenFromFile(f.ClientToken.File)
		}
		out = append(out, worker.Flow{
			Endpoint:  flow.Endpoint{Name: f.Name, URL: f.URL, Auth: flow.ClientToken{Source: src}, Timeout: f.Timeout, ExecutionIDHeader: f.ExecutionIDHeader},
			RateLimit: f.RateLimit, Concurrency: f.Concurrency, DryRun: f.DryRun,
			BlastMax: f.BlastRadius.Max, BlastWindow: f.BlastRadius.Window,
			Breaker: breakerConfig(f.Breaker),
		})
	}
	return out, nil
}

// SimulatorToken returns the simulator's client token, generating and exporting one into the
// process environment when the variable is unset, so that the flows configured with
// clientToken.env find it.
func SimulatorToken(cfg *config.Config, log *slog.Logger) (string, error) {
	if tok := os.Getenv(cfg.Simulator.TokenEnv); tok != "" {
		return tok, nil
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b)
	if err := os.Setenv(cfg.Simulator.TokenEnv, tok); err != nil {
		return "", err
	}
	log.Info("flow simulator: generated a client token for this process", slog.String("env", cfg.Simulator.TokenEnv))
	return tok, nil
}

// SimulatorFlows maps configured simulator flows to simulator flows.
func SimulatorFlows(cfg *config.Config, token string) []flowsim.Flow {
	var out []flowsim.Flow
	for _, f := range cfg.Simulator.Flows {
		out = append(out, flowsim.Flow{Alias: f.Alias, Name: f.Name, Token: token, RateLimit: f.RateLimit})
	}
	return out
}

func startSimulator(ctx context.Context, cfg *config.Config, log *slog.Logger) (string, func(context.Context) error, error) {
	tok, err := SimulatorToken(cfg, log)
	if err != nil {
		return "", nil, err
	}
	sim, err := flowsim.New(flowsim.Config{Flows: SimulatorFlows(cfg, tok), Logger: log.With("component", "flowsim")})
	if err != nil {
		return "", nil, err
	}
	ln, err := listen(ctx, cfg.Simulator.Addr, "simulator.addr")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	log.Info("Okta Workflows simulator started in-process: flows are simulated, nothing reaches a real Okta org",
		slog.String("url", url), slog.Int("flows", len(cfg.Simulator.Flows)))
	return url, func(ctx context.Context) error {
		log.Info("stopping flow simulator")
		sim.Close() // drop calls held by injected latency or hangs, or Shutdown would wait for them
		return srv.Shutdown(ctx)
	}, nil
}

func listen(ctx context.Context, addr, setting string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s (%s): %w — is another remediator running? change %s", addr, setting, err, setting)
	}
	return ln, nil
}

// health answers /healthz and /readyz.
type health struct {
	broker *broker.Broker
	worker *worker.Worker
}

func (h health) ready(ctx context.Context) error {
	if !h.broker.Connected() {
		return errors.New("not connected to NATS")
	}
	if err := h.broker.StreamsPresent(ctx); err != nil {
		return err
	}
	if !h.worker.Ready() {
		return errors.New("worker cannot take work: consumers not bound yet, or fetches failing (see the worker log)")
	}
	return nil
}

func serveHTTP(addr string, h health, metrics http.Handler, log *slog.Logger) (string, func(context.Context) error, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := h.ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", metrics) // Prometheus text format
	ln, err := listen(context.Background(), addr, "http.addr")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	var once sync.Once
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			once.Do(func() { log.Error("http server stopped", slog.Any("error", err)) })
		}
	}()
	return ln.Addr().String(), func(ctx context.Context) error {
		log.Info("stopping HTTP server")
		return srv.Shutdown(ctx)
	}, nil
}
