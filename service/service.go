package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/console"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/ingress"
	"github.com/remediator/remediator/okta"
	"github.com/remediator/remediator/policy"
	"github.com/remediator/remediator/publish"
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
	// TracerProvider makes the worker's and the flow client's spans. Default:
	// otel.GetTracerProvider(), a no-op unless the program's main installed one; the service
	// itself never installs anything globally.
	TracerProvider trace.TracerProvider
	// HTTPListener serves /healthz, /readyz and /metrics instead of listening on http.addr; the
	// service closes it. Tests bind 127.0.0.1:0 and pass the listener, rather than guessing a
	// free port.
	HTTPListener net.Listener
	// SimulatorListener serves the simulator (when simulator.enabled) instead of listening on
	// simulator.addr; the service closes it.
	SimulatorListener net.Listener
	// IngressListener serves the ingress (Okta event hooks, the ISPM webhook, the publish API)
	// instead of listening on ingress.addr; the service closes it.
	IngressListener net.Listener
	// LookupEnv reads the environment variables the configuration names (flow tokens, the NATS
	// password, the ingress secrets). Default os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Announce receives, once, the secrets the built-in configuration generated for this run
	// (ingress secrets whose variables are unset), to be pasted into Okta. Nil: they are not
	// shown anywhere (they are never logged).
	Announce io.Writer
}

// Addrs are the addresses a running service listens on.
type Addrs struct {
	NATS      string // client URL of the server in use
	HTTP      string // /healthz, /readyz and /metrics; "" when disabled
	Ingress   string // host:port of the ingress (scheme https when ingress.tls is set); "" when off
	Simulator string // base URL of the simulator; "" when disabled
}

// shutdownStep bounds each infrastructure step of the shutdown after the worker has stopped.
const shutdownStep = 10 * time.Second

// dial makes one NATS connection attempt; a variable so that a test can count attempts.
var dial dialFunc = broker.Connect

// Run starts remediator and blocks until ctx is cancelled, then shuts down in stages: stop
// fetching and finish in-flight events (the worker), stop the ingress, the HTTP server and the
// simulator, drain the NATS connection, stop the embedded NATS server, and release the data
// directory last.
//
// Run fills cfg's unset keys with their defaults ([config.Config.SetDefaults]). It refuses to
// start, before touching anything, when the configuration cannot work: a value
// out of range, a secret reference that resolves to nothing, a data directory held by another
// instance (checked before any listener), a busy port, or a NATS server whose max_payload
// cannot carry limits.maxEventBytes. An external NATS that is not up yet is waited for
// (nats.connectAttempts), with /readyz answering 503 meanwhile.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	// A configuration assembled in code (tests, embedders) may leave keys unset; they take the
	// same defaults as a loaded file. SetDefaults only fills what is unset.
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	env := opts.LookupEnv
	if env == nil {
		env = os.LookupEnv
	}
	var simToken string
	if cfg.Simulator.Enabled {
		tok, generated, err := simulatorToken(cfg, env)
		if err != nil {
			return err
		}
		if generated {
			// The flows that name simulator.tokenEnv see the generated token through env; the
			// process environment is left alone.
			env = overlayEnv(env, cfg.Simulator.TokenEnv, tok)
			log.Info("flow simulator: generated a client token for this run", slog.String("env", cfg.Simulator.TokenEnv))
		}
		simToken = tok
	}
	if err := cfg.CheckSecrets(env); err != nil {
		return err
	}
	// One org client per process: every flow with auth: oauth2 shares its token cache. The
	// private key is read and checked here, before anything starts.
	oktaClient, oktaKey, err := OktaClient(cfg, env, log)
	if err != nil {
		return err
	}
	ingressSecrets, err := cfg.ResolveIngressSecrets(cfg.BuiltIn(), func(k string) string { v, _ := env(k); return v }, nil)
	if err != nil {
		return err
	}
	consoleAcc, err := resolveConsole(cfg, env, log)
	if err != nil {
		return err
	}

	var addrs Addrs
	// front are the servers people and probes talk to, stopped first (HTTP, then the
	// simulator); cleanups are the rest, undone in reverse order of set-up: the NATS drain,
	// the embedded server, and the store lock last.
	var front, cleanups []func(context.Context) error
	defer func() {
		steps := append([]func(context.Context) error{}, front...)
		for i := len(cleanups) - 1; i >= 0; i-- {
			steps = append(steps, cleanups[i])
		}
		for _, step := range steps {
			sctx, cancel := context.WithTimeout(context.Background(), shutdownStep)
			if err := step(sctx); err != nil {
				log.Warn("shutdown step failed", slog.Any("error", err))
			}
			cancel()
		}
	}()
	// closeAtEnd closes a listener when Run returns, also when it fails before its server
	// starts (a started server's Shutdown closes it first).
	closeAtEnd := func(ln net.Listener) {
		cleanups = append(cleanups, func(context.Context) error {
			if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				return err
			}
			return nil
		})
	}

	// 1. The store lock, before any listener: a second instance on the same data directory
	// stops here, naming the first, whatever ports it was given.
	var storeDir string
	if cfg.NATS.URL == "" {
		dir, err := filepath.Abs(cfg.NATS.Embedded.StoreDir)
		if err != nil {
			return fmt.Errorf("nats.embedded.storeDir: %w", err)
		}
		storeDir = dir
		lock, err := lockStore(dir, holderLine(storeHolder{natsPort: strconv.Itoa(cfg.NATS.Embedded.Port), httpAddr: cfg.HTTP.Addr}))
		if err != nil {
			return err
		}
		cleanups = append(cleanups, func(context.Context) error { return lock.Release() })
	}

	// 2. The listeners, before the store is opened: a busy port stops the start with nothing
	// else touched.
	httpLn := opts.HTTPListener
	if httpLn == nil && cfg.HTTP.Addr != "" && cfg.HTTP.Addr != "off" {
		ln, err := listen(ctx, cfg.HTTP.Addr, "http.addr")
		if err != nil {
			return err
		}
		httpLn = ln
	}
	if httpLn != nil {
		closeAtEnd(httpLn)
	}
	simLn := opts.SimulatorListener
	if simLn == nil && cfg.Simulator.Enabled {
		ln, err := listen(ctx, cfg.Simulator.Addr, "simulator.addr")
		if err != nil {
			return err
		}
		simLn = ln
	}
	if simLn != nil {
		closeAtEnd(simLn)
	}
	ingressLn := opts.IngressListener
	if ingressLn == nil && cfg.Ingress.Enabled() {
		ln, err := listen(ctx, cfg.Ingress.Addr, "ingress.addr")
		if err != nil {
			return err
		}
		ingressLn = ln
	}
	if ingressLn != nil {
		closeAtEnd(ingressLn)
	}

	// Only now, with the data directory and the ports ours, show the secrets generated for
	// this run: a start refused above must not print secrets it will never accept.
	if opts.Announce != nil {
		if err := ingressSecrets.Announce(opts.Announce); err != nil {
			return err
		}
		if httpLn != nil {
			if err := consoleAcc.announce(opts.Announce, httpLn.Addr().String()); err != nil {
				return err
			}
		}
	}

	metrics := opts.Metrics
	if metrics == nil {
		m, err := telemetry.SetupMetrics()
		if err != nil {
			return err
		}
		cleanups = append(cleanups, m.Shutdown)
		metrics = m
	}
	tp := opts.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}

	// 3. Health first, so that an orchestrator sees the replica alive but not ready while it
	// waits for NATS.
	h := &health{}
	h.notReady(errors.New("starting"))
	consoleUI := &lateHandler{}
	if httpLn != nil {
		var ui http.Handler
		if !consoleAcc.off {
			ui = consoleUI
		}
		front = append(front, serveHTTP(httpLn, h, metrics.Handler, ui, log, cfg.HTTP.Pprof))
		addrs.HTTP = httpLn.Addr().String()
	}
	if simLn != nil && cfg.Simulator.Enabled {
		simURL, stop, err := startSimulator(cfg, simToken, oktaKey, simLn, log)
		if err != nil {
			return err
		}
		front = append(front, stop)
		addrs.Simulator = simURL
	}

	recordKeys, err := RecordKeys(cfg, env, true)
	if err != nil {
		return fmt.Errorf("record keys: %w", err)
	}
	log.Info("record keys loaded: remediator signs its records and refuses those it cannot verify", slog.Any("key_ids", recordKeys))

	natsURL := cfg.NATS.URL
	cc := connConfig(cfg, natsURL, env)
	consoleCC := cc // the console's connection: the operator role where the service has its credentials
	if natsURL == "" {
		creds, err := embeddedAuth(cfg, storeDir, log)
		if err != nil {
			return err
		}
		ec := embeddedConfig(cfg, storeDir)
		ec.Credentials = creds
		emb, err := broker.StartEmbedded(ctx, ec, log)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, func(ctx context.Context) error {
			log.Info("stopping embedded NATS server")
			return emb.Shutdown(ctx)
		})
		natsURL = emb.ClientURL()
		cc.URL = natsURL
		consoleCC.URL = natsURL
		if creds != nil {
			// The service is the worker role, whatever nats.* credentials the file names
			// (they are for an external server).
			consoleCC = creds.ConnConfigFor(broker.RoleOperator, cc)
			cc = creds.ConnConfigFor(broker.RoleWorker, cc)
			writeNATSContext(creds, natsURL, log)
		}
		log.Info("embedded NATS server with JetStream started (no nats.url configured)", slog.String("url", natsURL), slog.String("store_dir", storeDir))
	}
	addrs.NATS = natsURL

	b, err := connectNATS(ctx, dial, cc, *cfg.NATS.ConnectAttempts, log, h.notReady)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func(ctx context.Context) error {
		log.Info("draining NATS connection")
		return b.Drain(ctx)
	})
	if err := checkMaxPayload(cfg, b); err != nil {
		return err
	}
	h.notReady(errors.New("provisioning streams"))
	if err := b.Provision(ctx, streamsConfig(cfg)); err != nil {
		return err
	}

	// people.groups look-ups through the org client, when the okta block is configured.
	routerOpts, err := RouterOptions(cfg, oktaClient)
	if err != nil {
		return err
	}
	validator, err := schema.New()
	if err != nil {
		return err
	}
	flows, err := Flows(cfg, env, oktaClient)
	if err != nil {
		return err
	}
	invoker, err := newInvoker(cfg, flow.NewClient(flow.ClientConfig{HTTPClient: opts.HTTPClient, TracerProvider: tp, MeterProvider: metrics.Provider,
		MaxResultBody: cfg.Limits.MaxOutputBytes}), oktaClient)
	if err != nil {
		return err
	}
	router := policy.New(cfg, routerOpts...)
	w, err := worker.New(workerConfig(cfg, worker.Config{
		Broker: worker.JetStream(b), Advisories: b, Validator: validator, Router: router, Keys: recordKeys,
		Invoker: invoker,
		Logger:  log, TracerProvider: tp, MeterProvider: metrics.Provider,
	}, flows))
	if err != nil {
		return err
	}
	h.running(b, w)
	if httpLn != nil && !consoleAcc.off {
		consoleCC.Name += "-console"
		cb, err := broker.Connect(ctx, consoleCC, log)
		if err != nil {
			return fmt.Errorf("ops console: connect to NATS: %w", err)
		}
		cleanups = append(cleanups, func(ctx context.Context) error { return cb.Drain(ctx) })
		ui, err := newConsole(ctx, cfg, consoleAcc, cb, w, router, validator, recordKeys, env, log)
		if err != nil {
			return err
		}
		consoleUI.set(ui)
		log.Info("ops console serving", slog.String("url", "http://"+httpLn.Addr().String()+console.Prefix))
	}
	if ingressLn != nil {
		// The ingress stores events in JetStream; it needs neither the worker nor its readiness.
		stop, err := startIngress(cfg, ingressSecrets, ingressLn, b, validator, log, metrics.Provider, tp)
		if err != nil {
			return err
		}
		front = append([]func(context.Context) error{stop}, front...) // the first to stop
		addrs.Ingress = ingressLn.Addr().String()
	}

	// The System Log poller, when configured, stops with the ingress: both only store events.
	stopBackfill, err := startBackfill(ctx, cfg, oktaClient, b, log, metrics.Provider, tp)
	if err != nil {
		return err
	}
	if stopBackfill != nil {
		front = append([]func(context.Context) error{stopBackfill}, front...)
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
		log.Info("remediator is running", slog.String("nats", addrs.NATS), slog.String("http", addrs.HTTP), slog.String("ingress", addrs.Ingress), slog.String("simulator", addrs.Simulator))
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

// SimulatorToken returns the simulator's client token: the value of simulator.tokenEnv, or a
// random token generated for this process when it is unset. Nothing is exported into the
// process environment; `run` hands a generated token to its flows itself.
func SimulatorToken(cfg *config.Config, log *slog.Logger) (string, error) {
	tok, generated, err := simulatorToken(cfg, os.LookupEnv)
	if err == nil && generated && log != nil {
		log.Info("flow simulator: generated a client token for this process", slog.String("env", cfg.Simulator.TokenEnv))
	}
	return tok, err
}

func simulatorToken(cfg *config.Config, env func(string) (string, bool)) (tok string, generated bool, err error) {
	if tok, _ := env(cfg.Simulator.TokenEnv); tok != "" {
		return tok, false, nil
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", false, err
	}
	return hex.EncodeToString(b), true, nil
}

// SimulatorFlows maps configured simulator flows to simulator flows. A flow that a flow with
// auth: oauth2 invokes is secured with OAuth 2.0 instead of the client token (it needs the org
// of [SimulatorOrg]).
func SimulatorFlows(cfg *config.Config, token string) []flowsim.Flow {
	oauth := simulatorOAuthAliases(cfg)
	var out []flowsim.Flow
	for _, f := range cfg.Simulator.Flows {
		sf := flowsim.Flow{Alias: f.Alias, Name: f.Name, Token: token, RateLimit: f.RateLimit}
		if oauth[f.Alias] {
			sf.Token, sf.OAuth = "", true
		}
		out = append(out, sf)
	}
	return out
}

func startSimulator(cfg *config.Config, token string, key *okta.Key, ln net.Listener, log *slog.Logger) (string, func(context.Context) error, error) {
	org, err := SimulatorOrg(cfg, key)
	if err != nil {
		return "", nil, err
	}
	sim, err := flowsim.New(flowsim.Config{Flows: SimulatorFlows(cfg, token), Org: org, Logger: log.With("component", "flowsim")})
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

// health answers /healthz and /readyz. Until the service runs, readiness reports why not.
type health struct {
	mu     sync.Mutex
	why    error // why not ready before running
	broker *broker.Broker
	worker *worker.Worker
}

func (h *health) notReady(why error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.why = why
}

func (h *health) running(b *broker.Broker, w *worker.Worker) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.broker, h.worker, h.why = b, w, nil
}

func (h *health) ready(ctx context.Context) error {
	h.mu.Lock()
	b, w, why := h.broker, h.worker, h.why
	h.mu.Unlock()
	if b == nil {
		return why
	}
	if !b.Connected() {
		return errors.New("not connected to NATS")
	}
	if err := b.StreamsPresent(ctx); err != nil {
		return err
	}
	if !w.Ready() {
		return errors.New("worker cannot take work: consumers not bound yet, or fetches failing (see the worker log)")
	}
	return nil
}

func serveHTTP(ln net.Listener, h *health, metrics http.Handler, ui http.Handler, log *slog.Logger, pprofOn bool) func(context.Context) error {
	mux := http.NewServeMux()
	if pprofOn {
		mountPprof(mux)
		log.Warn("Go profiler served on the admin listener (http.pprof): keep this listener private", slog.String("path", "/debug/pprof/"))
	}
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
	if ui != nil {
		mux.Handle(console.Prefix, ui) // the ops console (nil: http.console off or no way to sign in)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	var once sync.Once
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			once.Do(func() { log.Error("http server stopped", slog.Any("error", err)) })
		}
	}()
	return func(ctx context.Context) error {
		log.Info("stopping HTTP server")
		return srv.Shutdown(ctx)
	}
}

// startIngress serves the ingress on ln, over TLS when ingress.tls is set, and returns its
// graceful stop.
func startIngress(cfg *config.Config, secrets *config.IngressSecrets, ln net.Listener, b *broker.Broker, v *schema.Validator, log *slog.Logger, mp metric.MeterProvider, tp trace.TracerProvider) (func(context.Context) error, error) {
	h, err := ingress.New(ingress.FromConfig(cfg.Ingress, secrets, cfg.Limits.MaxEventBytes, log, mp, tp), ingress.Deps{
		Publisher: publish.New(b, tp), Connected: b.Connected,
		Split: event.SplitHookDelivery, CheckJSON: event.CheckJSON, Validator: v, Decode: event.Decode,
	})
	if err != nil {
		return nil, err
	}
	srv := ingress.NewHTTPServer(h)
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	tlsOn := cfg.Ingress.TLS.CertFile != ""
	go func() {
		var err error
		if tlsOn {
			err = srv.ServeTLS(ln, cfg.Ingress.TLS.CertFile, cfg.Ingress.TLS.KeyFile)
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("ingress server stopped", slog.Any("error", err))
		}
	}()
	log.Info("ingress listening", slog.String("addr", ln.Addr().String()), slog.Bool("tls", tlsOn))
	return srv.Shutdown, nil
}

// mountPprof serves net/http/pprof under /debug/pprof/ (http.pprof).
func mountPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
