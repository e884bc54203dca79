package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/remediator/remediator/broker"
)

// Config sizes a run. A zero field takes the default written next to it; [Quick] gives the
// sizes of `remediator bench --quick`.
type Config struct {
	// Events per throughput measurement (raw, plain, every full-pipeline row). Default 20,000.
	Events int
	// EventBytes is the size of each event (and of each raw message). Default 1024, an ISPM
	// issue's size.
	EventBytes int
	// Flows is the number of flows of the main full-pipeline row, the replica rows and the
	// latency row. Default 40.
	Flows int
	// FlowsSweep are the numbers of flows measured with one replica. Default 4, 40, 200.
	FlowsSweep []int
	// Replicas are the numbers of worker replicas measured with Flows flows. Default 1, 2, 3.
	Replicas []int
	// LatencyRate is the fixed publish rate of the latency row, events/s. Default 50.
	LatencyRate float64
	// LatencyEvents is how many events the latency row publishes. Default 1,000 (20 s at 50/s).
	LatencyEvents int
	// Backlog is how many jobs the backlog row leaves waiting (every flow paused), to measure
	// a stored job's size and the process's memory under a backlog. Default 100,000; -1 skips
	// the row.
	Backlog int
	// IdleWindow is how long the CPU of an idle pipeline is measured after each sweep row
	// (and how long the backlog row waits before it reads the memory). Default 3s.
	IdleWindow time.Duration
	// Publishers publish concurrently in the throughput rows. Default 16.
	Publishers int
	// PlainWorkers are the plain pipeline's concurrent pullers. Default 16.
	PlainWorkers int
	// Stall fails a measurement when no event becomes terminal for this long. Default 60s.
	Stall time.Duration
	// NATS is an external server to measure against. Default (no URL): a fresh embedded
	// server in this process per measurement.
	NATS broker.ConnConfig
	// ServiceLog receives the services' logs. Default: JSON at info level to nowhere, so that
	// remediator formats its log lines as `run` does.
	ServiceLog *slog.Logger
	// Log receives bench's progress lines. Default: none.
	Log *slog.Logger
}

// Quick is the configuration of `remediator bench --quick`: small counts and one sweep point,
// well under a minute.
func Quick() Config {
	return Config{Events: 2000, FlowsSweep: []int{40}, Replicas: []int{1}, LatencyEvents: 250, Backlog: 5000, IdleWindow: time.Second}
}

// Defaults is the configuration of a full `remediator bench`: every size at its default.
func Defaults() Config {
	var c Config
	c.setDefaults()
	c.ServiceLog, c.Log, c.NATS = nil, nil, broker.ConnConfig{}
	return c
}

// flowRateLimit is the flows' rate limit: lifted, so that no budget waits and the pipeline
// alone sets the pace.
const flowRateLimit = 100000

func (c *Config) setDefaults() {
	setInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setInt(&c.Events, 20000)
	setInt(&c.EventBytes, 1024)
	setInt(&c.Flows, 40)
	setInt(&c.LatencyEvents, 1000)
	setInt(&c.Backlog, 100000)
	setInt(&c.Publishers, 16)
	setInt(&c.PlainWorkers, 16)
	if c.FlowsSweep == nil {
		c.FlowsSweep = []int{4, 40, 200}
	}
	if c.Replicas == nil {
		c.Replicas = []int{1, 2, 3}
	}
	if c.LatencyRate == 0 {
		c.LatencyRate = 50
	}
	if c.IdleWindow == 0 {
		c.IdleWindow = 3 * time.Second
	}
	if c.Stall == 0 {
		c.Stall = 60 * time.Second
	}
	if c.ServiceLog == nil {
		c.ServiceLog = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.NATS.ConnectTimeout == 0 {
		c.NATS.ConnectTimeout = 5 * time.Second
	}
	if c.NATS.MaxReconnects == 0 {
		c.NATS.MaxReconnects = -1
	}
}

func (c *Config) validate() error {
	var errs []error
	positive := func(name string, v int) {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1, got %d", name, v))
		}
	}
	positive("events", c.Events)
	positive("event size", c.EventBytes)
	positive("flows", c.Flows)
	positive("latency events", c.LatencyEvents)
	positive("publishers", c.Publishers)
	positive("plain workers", c.PlainWorkers)
	for _, n := range c.FlowsSweep {
		positive("each flows sweep point", n)
	}
	for _, n := range c.Replicas {
		positive("each replica count", n)
	}
	if c.LatencyRate <= 0 {
		errs = append(errs, fmt.Errorf("latency rate must be positive, got %v", c.LatencyRate))
	}
	if c.Flows > 999 || slices.Max(append([]int{0}, c.FlowsSweep...)) > 999 {
		errs = append(errs, errors.New("at most 999 flows"))
	}
	if c.Backlog < -1 {
		errs = append(errs, fmt.Errorf("backlog must be -1 (skip the row) or at least 1, got %d", c.Backlog))
	}
	if c.Events > 9_999_999 || c.LatencyEvents > 9_999_999 || c.Backlog > 9_999_999 {
		errs = append(errs, errors.New("at most 9,999,999 events per measurement"))
	}
	return errors.Join(errs...)
}

// Run measures everything [Config] asks for, in this order: the raw JetStream baseline, the
// plain pipeline, the full pipeline across FlowsSweep (its Flows point is [Report.Full];
// when FlowsSweep lacks it, it is measured on its own), across Replicas, the latency row and
// the backlog row.
// It fails when a measurement cannot be completed or an event is not accounted for.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	r := &runner{cfg: cfg, log: cfg.Log}
	rep := &Report{
		Started: time.Now().UTC(),
		Machine: Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), NATS: "embedded", PeakRSSPerMeasurement: resetPeakRSS(), LoadAtStart: loadAverage()},
		Settings: Settings{
			Events: cfg.Events, EventBytes: cfg.EventBytes, Flows: cfg.Flows, FlowsSweep: cfg.FlowsSweep,
			Replicas: cfg.Replicas, LatencyRate: cfg.LatencyRate, LatencyEvents: cfg.LatencyEvents, Backlog: max(cfg.Backlog, 0),
			IdleWindowMS: ms(cfg.IdleWindow), FlowRateLimit: flowRateLimit, Publishers: cfg.Publishers,
			PlainWorkers: cfg.PlainWorkers, ServiceLogging: "JSON at info, discarded",
		},
	}
	if cfg.NATS.URL != "" {
		rep.Machine.NATS = cfg.NATS.URL
	}
	fs, err := startFlowServer()
	if err != nil {
		return nil, err
	}
	defer func() { _ = fs.stop() }()
	r.flows = fs

	r.log.Info("raw JetStream baseline", "messages", cfg.Events, "bytes", cfg.EventBytes)
	if rep.Raw, err = r.raw(ctx); err != nil {
		return nil, err
	}
	r.log.Info("plain pipeline baseline", "events", cfg.Events)
	if rep.Plain, err = r.plain(ctx); err != nil {
		return nil, err
	}
	var full *Measurement
	for _, n := range cfg.FlowsSweep {
		r.log.Info("remediator", "flows", n, "replicas", 1, "events", cfg.Events)
		m, err := r.full(ctx, fmt.Sprintf("remediator, %d flows", n), n, 1, cfg.Events, 0, true)
		if err != nil {
			return nil, err
		}
		rep.FlowsSweep = append(rep.FlowsSweep, m)
		if n == cfg.Flows && full == nil {
			full = &rep.FlowsSweep[len(rep.FlowsSweep)-1]
		}
	}
	if full == nil {
		r.log.Info("remediator", "flows", cfg.Flows, "replicas", 1, "events", cfg.Events)
		m, err := r.full(ctx, fmt.Sprintf("remediator, %d flows", cfg.Flows), cfg.Flows, 1, cfg.Events, 0, true)
		if err != nil {
			return nil, err
		}
		full = &m
	}
	rep.Full = *full
	for _, n := range cfg.Replicas {
		if n == 1 {
			m := *full
			m.Name = "remediator, 1 replica"
			rep.Replicas = append(rep.Replicas, m)
			continue
		}
		r.log.Info("remediator", "flows", cfg.Flows, "replicas", n, "events", cfg.Events)
		m, err := r.full(ctx, "remediator, "+strconv.Itoa(n)+" replicas", cfg.Flows, n, cfg.Events, 0, false)
		if err != nil {
			return nil, err
		}
		rep.Replicas = append(rep.Replicas, m)
	}
	r.log.Info("remediator latency", "flows", cfg.Flows, "rate", cfg.LatencyRate, "events", cfg.LatencyEvents)
	if rep.Latency, err = r.full(ctx, fmt.Sprintf("remediator at %g events/s", cfg.LatencyRate), cfg.Flows, 1, cfg.LatencyEvents, cfg.LatencyRate, false); err != nil {
		return nil, err
	}
	if cfg.Backlog > 0 {
		r.log.Info("remediator backlog", "flows", cfg.Flows, "jobs", cfg.Backlog)
		b, err := r.backlog(ctx, cfg.Flows, cfg.Backlog)
		if err != nil {
			return nil, err
		}
		rep.Backlog = &b
	}
	rep.ratios()
	rep.Finished = time.Now().UTC()
	rep.Machine.LoadAtEnd = loadAverage()
	return rep, nil
}

// runner holds what the measurements share.
type runner struct {
	cfg   Config
	log   *slog.Logger
	flows *flowServer
	seq   int // numbers the workloads, so that event ids differ between measurements
}

// newWorkload names a fresh workload.
func (r *runner) newWorkload(n, flows int) *workload {
	r.seq++
	return newWorkload(fmt.Sprintf("bench-%d-%02d-", time.Now().Unix(), r.seq), n, flows, r.cfg.EventBytes)
}

// window measures CPU and peak RSS around work.
type window struct {
	start time.Time
	cpu   time.Duration
}

func begin() window {
	resetPeakRSS()
	return window{start: time.Now(), cpu: cpuTime()}
}

// phase runs one raw operation over n messages and measures it.
func phase(n int, op func() error) (Phase, error) {
	w := begin()
	if err := op(); err != nil {
		return Phase{}, err
	}
	wall, cpu := time.Since(w.start), cpuTime()-w.cpu
	return Phase{
		Messages: n, Seconds: wall.Seconds(), PerSecond: float64(n) / wall.Seconds(),
		CPUPerMessage: ms(cpu) / float64(n), CPUCoresBusy: cpu.Seconds() / wall.Seconds(), PeakRSSBytes: peakRSS(),
	}, nil
}

// raw measures the JetStream baseline on a fresh server.
func (r *runner) raw(ctx context.Context) (RawResult, error) {
	var res RawResult
	srv, err := startNATS(ctx, r.cfg.NATS, r.log)
	if err != nil {
		return res, err
	}
	defer func() { _ = srv.stop() }()
	rb, err := broker.NewRawBaseline(ctx, srv.conn, r.cfg.EventBytes, r.log)
	if err != nil {
		return res, err
	}
	defer func() { _ = rb.Close(context.WithoutCancel(ctx)) }()
	n := r.cfg.Events
	if res.Publish, err = phase(n, func() error { return rb.Publish(ctx, n) }); err != nil {
		return res, err
	}
	if res.ConsumeAck, err = phase(n, func() error { return rb.ConsumeAck(ctx, n) }); err != nil {
		return res, err
	}
	if res.FetchOneDoubleAck, err = phase(n, func() error { return rb.FetchOneDoubleAck(ctx, n) }); err != nil {
		return res, err
	}
	return res, nil
}

// measure publishes w's events on b (as fast as the publishers go, or at rate) while the
// pipeline already running on b's server handles them, waits for every terminal status, and
// measures the span; with idle it then measures the CPU of the idle pipeline.
func (r *runner) measure(ctx context.Context, b *broker.Broker, w *workload, rate float64, idle bool, m *Measurement) error {
	col, err := startCollector(ctx, b, w)
	if err != nil {
		return err
	}
	defer col.close()
	pub := newPublisher(b, w)
	win := begin()
	pubErr := make(chan error, 1)
	go func() { pubErr <- pub.run(ctx, r.cfg.Publishers, rate) }()
	published := time.Duration(0)
	select {
	case err := <-pubErr:
		if err != nil {
			return fmt.Errorf("bench: publish: %w", err)
		}
		published = time.Since(win.start)
	case <-col.done:
	}
	if err := col.wait(ctx, r.cfg.Stall); err != nil {
		return err
	}
	if published == 0 {
		if err := <-pubErr; err != nil {
			return fmt.Errorf("bench: publish: %w", err)
		}
		published = time.Since(win.start)
	}
	first := pub.first()
	span := col.last.Sub(first)
	cpu := col.cpuEnd - win.cpu
	m.Events = w.n
	m.PublishRate = rate
	m.Seconds = span.Seconds()
	m.EventsPerSecond = float64(w.n) / span.Seconds()
	m.PublishedPerSecond = float64(w.n) / published.Seconds()
	m.CPUPerEvent = ms(cpu) / float64(w.n)
	m.CPUCoresBusy = cpu.Seconds() / span.Seconds()
	m.PeakRSSBytes = peakRSS()
	col.fill(m, pub)
	if m.Missing > 0 || m.ExtraTerminals > 0 {
		return fmt.Errorf("bench: %s: %d events without a terminal status, %d extra terminal statuses", m.Name, m.Missing, m.ExtraTerminals)
	}
	if idle {
		c0 := cpuTime()
		select {
		case <-time.After(r.cfg.IdleWindow):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		m.IdleCPUCores = (cpuTime() - c0).Seconds() / r.cfg.IdleWindow.Seconds()
	}
	return nil
}
