package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/policy"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/schema"
	"github.com/remediator/remediator/worker"
)

// spreadRouter is the real router with each decision sent to one of n flows by the event id,
// so that a benchmark spreads its events over many flows and still pays for real routing,
// authorization and input mapping.
type spreadRouter struct {
	*policy.Router
	flows []string
	real  string // the flow the seed is really routed to
}

func (r spreadRouter) Route(ev *event.Event) ([]policy.Decision, error) {
	decs, err := r.Router.Route(ev)
	if err != nil {
		return nil, err
	}
	h := fnv.New32a()
	h.Write([]byte(ev.ID))
	for i := range decs {
		decs[i].Flow = r.flows[int(h.Sum32())%len(r.flows)]
	}
	return decs, nil
}

func (r spreadRouter) Authorize(ev *event.Event, p policy.Principal, _ string) error {
	return r.Router.Authorize(ev, p, r.real)
}

func (r spreadRouter) Inputs(ev *event.Event, _ string) (map[string]any, error) {
	return r.Router.Inputs(ev, r.real)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pipeline is a worker on an in-process JetStream with nFlows flows answered by a trivial
// HTTP 200 server, rate limits lifted.
type pipeline struct {
	b      *broker.Broker
	pub    *publish.Publisher
	seed   []byte
	w      *worker.Worker
	cancel context.CancelFunc
	done   chan error
}

func newPipeline(tb testing.TB, nFlows int) *pipeline {
	tb.Helper()
	srv := brokertest.Server(tb)
	b := brokertest.ConnectTo(tb, srv.ClientURL())
	cfg, err := config.Default()
	if err != nil {
		tb.Fatal(err)
	}
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	tb.Cleanup(ok.Close)
	var flows []worker.Flow
	var names []string
	for i := range nFlows {
		name := fmt.Sprintf("bench-%03d", i)
		names = append(names, name)
		flows = append(flows, worker.Flow{
			Endpoint: flow.Endpoint{
				Name: name, URL: ok.URL + "/api/flo/" + name + "/invoke",
				Auth: flow.ClientToken{Source: flow.StaticToken(simToken)}, Timeout: 5 * time.Second,
			},
			RateLimit: 1e6, Concurrency: config.DefaultFlowConcurrency, Breaker: worker.BreakerForTests(),
		})
	}
	v, err := schema.New()
	if err != nil {
		tb.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider()
	tb.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	wc := worker.ConfigForTests()
	wc.Broker, wc.Validator, wc.Invoker, wc.Flows = worker.JetStream(b), v, flow.NewClient(flow.ClientConfig{}), flows
	wc.Router = spreadRouter{Router: policy.New(cfg), flows: names, real: "suspend-okta-account"}
	wc.TracerProvider = tp
	wc.Logger = slog.New(slog.NewJSONHandler(discard{}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	wc.IntakeConcurrency = config.DefaultIntakeConcurrency
	w, err := worker.New(wc)
	if err != nil {
		tb.Fatal(err)
	}
	seed, err := os.ReadFile("../examples/ispm-unused-admin.json")
	if err != nil {
		tb.Fatal(err)
	}
	return &pipeline{b: b, pub: publish.New(b, nil), seed: seed, w: w}
}

// publishN publishes n copies of the seed with distinct event ids.
func (p *pipeline) publishN(tb testing.TB, prefix string, n int) {
	tb.Helper()
	var doc map[string]any
	if err := json.Unmarshal(p.seed, &doc); err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		doc["eventId"] = fmt.Sprintf("%s-%06d", prefix, i)
		data, err := json.Marshal(doc)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := p.pub.Publish(context.Background(), data, publish.Options{Subject: event.SubjectISPM}); err != nil {
			tb.Fatal(err)
		}
	}
}

func (p *pipeline) start(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan error, 1)
	go func() { p.done <- p.w.Run(ctx) }()
	tb.Cleanup(p.stop)
	testwait.Until(tb, "worker ready", p.w.Ready, testwait.Timeout(5*time.Minute))
}

func (p *pipeline) stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	<-p.done
	p.cancel = nil
}

// statuses is the number of status records stored.
func (p *pipeline) statuses(tb testing.TB) uint64 {
	info, err := p.b.StreamInfo(context.Background(), broker.StreamStatus, false)
	if err != nil {
		tb.Fatal(err)
	}
	return info.Messages
}

// BenchmarkPipeline drains a backlog of events through intake and dispatch to a trivial HTTP
// 200 flow, rate limits lifted, and reports events/s and CPU per event (worker and the
// in-process server together). Run:
//
//	go test ./worker -run '^$' -bench BenchmarkPipeline -benchtime 1x
func BenchmarkPipeline(b *testing.B) {
	const n = 5000
	for _, flows := range []int{4, 40, 200} {
		b.Run(fmt.Sprintf("flows=%d", flows), func(b *testing.B) {
			for range b.N {
				p := newPipeline(b, flows)
				p.publishN(b, "bench", n)
				cpu0, t0 := cpuTime(), time.Now()
				p.start(b)
				testwait.Until(b, "every event succeeded", func() bool { return p.statuses(b) >= n },
					testwait.Timeout(10*time.Minute))
				elapsed, cpu := time.Since(t0), cpuTime()-cpu0
				b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
				b.ReportMetric(float64(cpu.Microseconds())/1000/n, "cpu-ms/event")
				// Idle: the cost of waiting for work with this many flows.
				idle0, it0 := cpuTime(), time.Now()
				time.Sleep(3 * time.Second) // a measurement window, not synchronisation
				b.ReportMetric(100*float64(cpuTime()-idle0)/float64(time.Since(it0)), "idle-%core")
				p.stop()
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkLatency publishes events at 50/s to a running pipeline with 40 flows (severities
// in turn Critical, High, Medium, Low) and reports p50 and p99 of publish → succeeded status
// stored, per severity. Run:
//
//	go test ./worker -run '^$' -bench BenchmarkLatency -benchtime 1x
func BenchmarkLatency(b *testing.B) {
	const n, rate = 400, 50
	severities := []string{"Critical", "High", "Medium", "Low"}
	for range b.N {
		p := newPipeline(b, 40)
		p.start(b)
		var doc map[string]any
		if err := json.Unmarshal(p.seed, &doc); err != nil {
			b.Fatal(err)
		}
		published := map[string]time.Time{}
		severity := map[string]string{}
		tick := time.NewTicker(time.Second / rate)
		for i := range n {
			<-tick.C
			id := fmt.Sprintf("lat-%05d", i)
			doc["eventId"], doc["issueSeverity"] = id, severities[i%len(severities)]
			data, err := json.Marshal(doc)
			if err != nil {
				b.Fatal(err)
			}
			published[id], severity[id] = time.Now(), severities[i%len(severities)]
			if _, err := p.pub.Publish(context.Background(), data, publish.Options{Subject: event.SubjectISPM}); err != nil {
				b.Fatal(err)
			}
		}
		tick.Stop()
		testwait.Until(b, "every event succeeded", func() bool { return p.statuses(b) >= n }, testwait.Timeout(5*time.Minute))
		lat := map[string][]time.Duration{}
		err := p.b.Scan(context.Background(), broker.StreamStatus, "", 0, time.Time{}, func(m *broker.StoredMessage) bool {
			var rec struct {
				EventID string `json:"eventId"`
			}
			if json.Unmarshal(m.Data, &rec) == nil {
				if at, ok := published[rec.EventID]; ok {
					lat[severity[rec.EventID]] = append(lat[severity[rec.EventID]], m.Time.Sub(at))
				}
			}
			return true
		})
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range severities {
			d := lat[s]
			slices.Sort(d)
			if len(d) == 0 {
				b.Fatalf("no latency for %s", s)
			}
			b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "ms-p50-"+s)
			b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1000, "ms-p99-"+s)
		}
		p.stop()
	}
}
