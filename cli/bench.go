package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/remediator/remediator/bench"
	"github.com/remediator/remediator/broker"
)

func newBenchCmd(g *globals) *cobra.Command {
	var (
		quick      bool
		cpuProfile string
		cfg        bench.Config
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure remediator against raw JetStream and a plain pipeline, in one run on this machine",
		Long: `bench measures, in one run on this machine and on the same events (1 KiB ISPM issues,
each routed to one flow, severities mixed):

  - raw JetStream: publish the messages (asynchronous publishes), consume and ack them
    through a long-lived pull subscription, and again one Fetch(1) and double ack at a time;
  - a plain pipeline: pull, validate with the same JSON Schema, POST to the flow, publish a
    status, ack: the simplest correct thing, the baseline remediator is compared with;
  - remediator itself (the service, in this process) with its flows answered by a no-op
    HTTP 200 server and their rate limits lifted, for each number of flows of --flows-sweep
    and each number of worker replicas of --replicas;
  - remediator at a fixed publish rate (--latency-rate), for publish → succeeded per priority;
  - remediator with a backlog of --backlog jobs waiting (every flow paused): a stored job's
    size beside its event's, and the memory of the process holding the backlog.

It prints events/s (first publish to last terminal status), p50/p99/p99.9 publish →
succeeded, CPU per event and peak RSS of this process (the embedded server included), CPU
while idle, and the ratios. Every event must end in exactly one terminal status, or bench
fails. Each measurement gets a fresh embedded NATS server unless --nats-url is given; then
it publishes into that server's remediation streams, so never point it at production.

The default is the full table (20,000 events per row, a few minutes on 2 cores); --quick
is small counts, one sweep point and a 5,000-job backlog, about a minute.`,
		Example: `  remediator bench --quick
  remediator bench --json > bench.json
  remediator bench --events 5000 --flows-sweep 40 --replicas 1,2,3
  remediator bench --quick --flows-sweep 200 --cpuprofile cpu.out && go tool pprof -top cpu.out`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			run := cfg
			if quick {
				q := bench.Quick()
				flags := cmd.Flags()
				if !flags.Changed("events") {
					run.Events = q.Events
				}
				if !flags.Changed("flows-sweep") {
					run.FlowsSweep = q.FlowsSweep
				}
				if !flags.Changed("replicas") {
					run.Replicas = q.Replicas
				}
				if !flags.Changed("latency-events") {
					run.LatencyEvents = q.LatencyEvents
				}
				if !flags.Changed("backlog") {
					run.Backlog = q.Backlog
				}
				if !flags.Changed("idle-window") {
					run.IdleWindow = q.IdleWindow
				}
			}
			if g.natsURL != "" {
				run.NATS = broker.ConnConfig{URL: g.natsURL, CredsFile: g.creds, TLSCAFile: g.tlsCA, TLSCertFile: g.tlsCert, TLSKeyFile: g.tlsKey}
			}
			run.Log = log
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			rep, err := bench.Run(cmd.Context(), run)
			if err != nil {
				return err
			}
			if g.jsonOut {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return printBench(g.stdout, rep)
		},
	}
	d := bench.Defaults()
	f := cmd.Flags()
	f.BoolVar(&quick, "quick", false, "small counts and one sweep point (2,000 events, 40 flows, 1 replica, 250 latency events, 5,000 jobs of backlog)")
	f.IntVar(&cfg.Events, "events", d.Events, "events per throughput row")
	f.IntVar(&cfg.EventBytes, "size", d.EventBytes, "size of each event in bytes")
	f.IntVar(&cfg.Flows, "flows", d.Flows, "flows of the main row, the replica rows and the latency row")
	f.IntSliceVar(&cfg.FlowsSweep, "flows-sweep", d.FlowsSweep, "numbers of flows to measure with one replica")
	f.IntSliceVar(&cfg.Replicas, "replicas", d.Replicas, "numbers of worker replicas to measure (services in this process, on one server)")
	f.Float64Var(&cfg.LatencyRate, "latency-rate", d.LatencyRate, "publish rate of the latency row, events/s")
	f.IntVar(&cfg.LatencyEvents, "latency-events", d.LatencyEvents, "events of the latency row")
	f.IntVar(&cfg.Backlog, "backlog", d.Backlog, "jobs the backlog row leaves waiting (-1 skips the row)")
	f.DurationVar(&cfg.IdleWindow, "idle-window", d.IdleWindow, "how long to measure the CPU of the idle pipeline after each sweep row")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (remediator, the embedded server, the baselines) to this file, for go tool pprof")
	f.BoolVar(&g.jsonOut, "json", false, "print the report as JSON")
	return cmd
}

// startCPUProfile profiles the process's CPU into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// printBench prints the report as tables.
func printBench(w io.Writer, r *bench.Report) error {
	s := r.Settings
	fmt.Fprintf(w, "remediator bench — %s/%s, %d CPUs, %s, NATS %s; %s\n", r.Machine.OS, r.Machine.Arch, r.Machine.CPUs, r.Machine.GoVersion, r.Machine.NATS, r.Started.Format("2006-01-02 15:04 MST"))
	if r.Machine.LoadAtStart != "" {
		fmt.Fprintf(w, "load average %s at the start, %s at the end\n", r.Machine.LoadAtStart, r.Machine.LoadAtEnd)
	}
	fmt.Fprintf(w, "%d events of %d bytes per row, flows' rate limits lifted (%g/s), flows answered by a no-op HTTP 200 server\n\n", s.Events, s.EventBytes, s.FlowRateLimit)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "raw JetStream\tmsg/s\tCPU ms/msg\tcores busy\tpeak RSS MB\t")
	for _, p := range []struct {
		name string
		p    bench.Phase
	}{{"publish (async)", r.Raw.Publish}, {"consume + ack", r.Raw.ConsumeAck}, {"Fetch(1) + double ack", r.Raw.FetchOneDoubleAck}} {
		fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.2f\t%.0f\t\n", p.name, p.p.PerSecond, p.p.CPUPerMessage, p.p.CPUCoresBusy, mb(p.p.PeakRSSBytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "pipeline\tflows\treplicas\tevents/s\tp50 ms\tp99 ms\tp99.9 ms\tCPU ms/event\tcores busy\tpeak RSS MB\tidle cores\t")
	row := func(m bench.Measurement) {
		idle := "-"
		if m.IdleCPUCores > 0 {
			idle = fmt.Sprintf("%.3f", m.IdleCPUCores)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.1f\t%.1f\t%.1f\t%.3f\t%.2f\t%.0f\t%s\t\n", m.Name, m.Flows, m.Replicas, m.EventsPerSecond,
			m.Latency.P50, m.Latency.P99, m.Latency.P999, m.CPUPerEvent, m.CPUCoresBusy, mb(m.PeakRSSBytes), idle)
	}
	row(r.Plain)
	for _, m := range r.FlowsSweep {
		row(m)
	}
	if !containsRow(r.FlowsSweep, r.Full) {
		row(r.Full)
	}
	for _, m := range r.Replicas {
		if m.Replicas != 1 {
			row(m)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "(these rows publish every event at once: their latency is mostly time spent queued; the next table is latency)")
	fmt.Fprintln(w)

	l := r.Latency
	fmt.Fprintf(w, "publish → succeeded at %g events/s, %d flows, %d events (high: Critical and High issues, normal: Medium, low: Low)\n", l.PublishRate, l.Flows, l.Events)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "priority\tevents\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\t")
	for _, p := range []string{"high", "normal", "low"} {
		pc := l.ByPriority[p]
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t\n", p, pc.Count, pc.P50, pc.P99, pc.P999, pc.Max)
	}
	fmt.Fprintf(tw, "all\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t\n", l.Latency.Count, l.Latency.P50, l.Latency.P99, l.Latency.P999, l.Latency.Max)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)

	if bl := r.Backlog; bl != nil {
		fmt.Fprintf(w, "backlog: %d jobs waiting on %d paused flows (%d dispatched before the pause took effect), intake %.0f events/s\n", bl.Jobs, bl.Flows, bl.Dispatched, bl.IntakePerSecond)
		fmt.Fprintf(w, "  stored per message: event %.0f bytes, job %.0f bytes (job/event %.2f×); dispatch stream %.1f MB\n", bl.EventStoredBytes, bl.JobStoredBytes, bl.JobOverEvent, mb(int64(bl.DispatchStoreBytes)))
		fmt.Fprintf(w, "  process (%s): peak RSS %.0f MB while it built up; with it waiting: RSS %.0f MB, Go heap in use %.0f MB\n\n", backlogProcess(r.Machine.NATS), mb(bl.PeakRSSBytes), mb(bl.RSSBytes), mb(int64(bl.HeapInUseBytes)))
	}

	ra := r.Ratios
	fmt.Fprintf(w, "ratios (remediator with %d flows, 1 replica): plain/remediator %.1f×, raw consume+ack/remediator %.1f×; CPU per event remediator/plain %.1f×, remediator/raw %.1f×",
		r.Full.Flows, ra.PlainOverFull, ra.RawOverFull, ra.CPUFullOverPlain, ra.CPUFullOverRaw)
	if n := len(r.FlowsSweep); n > 1 {
		fmt.Fprintf(w, "; %d flows/%d flows %.2f", r.FlowsSweep[n-1].Flows, r.Full.Flows, ra.LastSweepOverFull)
	}
	fmt.Fprintln(w)
	var notes []string
	for _, m := range append(append([]bench.Measurement{r.Plain}, r.FlowsSweep...), r.Replicas...) {
		if m.PublishRate == 0 && m.PublishedPerSecond < 1.2*m.EventsPerSecond {
			notes = append(notes, fmt.Sprintf("%s: published at %.0f/s, close to its rate: the publishers may bind", m.Name, m.PublishedPerSecond))
		}
	}
	if !r.Machine.PeakRSSPerMeasurement {
		notes = append(notes, "peak RSS is the process's peak so far (this system cannot reset it per row)")
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "notes:\n  "+strings.Join(notes, "\n  "))
	}
	return nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// backlogProcess says what the process's memory holds.
func backlogProcess(nats string) string {
	if nats == "embedded" {
		return "remediator and the embedded server"
	}
	return "remediator and bench's client; the server is elsewhere"
}

func containsRow(rows []bench.Measurement, m bench.Measurement) bool {
	for _, r := range rows {
		if r.Name == m.Name {
			return true
		}
	}
	return false
}
