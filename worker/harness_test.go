package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/policy"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/schema"
	"github.com/remediator/remediator/service/servicetest"
	"github.com/remediator/remediator/status"
	"github.com/remediator/remediator/worker"
)

func TestMain(m *testing.M) { brokertest.VerifyTestMain(m) }

const simToken = "test-client-token-5f0c1e"

// harness is a worker on a real embedded JetStream, calling a real simulator over HTTP.
type harness struct {
	t       *testing.T
	b       *broker.Broker
	url     string // of the NATS server, for tests that act on JetStream directly
	sim     *flowsim.Simulator
	pub     *publish.Publisher
	workers []*running
	logs    *servicetest.LogBuffer
	wc      worker.Config
}

type options struct {
	mutate       func(*config.Config)
	workerConfig func(*worker.Config)
	faults       map[string]flowsim.Faults
	// before runs before the worker starts, e.g. to set operator controls.
	before func(*broker.Broker)
	// rate is every flow's limit, enforced by the simulator and respected by the worker.
	// Default: 1000/s, so that tests not about rates are not slowed by them.
	rate float64
}

func start(t *testing.T, opt options) *harness {
	t.Helper()
	srv := brokertest.Server(t)
	b := connect(t, srv.ClientURL())
	cfg, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	if opt.mutate != nil {
		opt.mutate(cfg)
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	if opt.rate == 0 {
		opt.rate = 1000
	}
	var simFlows []flowsim.Flow
	for _, f := range cfg.Flows {
		simFlows = append(simFlows, flowsim.Flow{Alias: f.Name, Name: f.Name, Token: simToken, RateLimit: opt.rate, Faults: opt.faults[f.Name]})
	}
	sim, err := flowsim.New(flowsim.Config{Flows: simFlows, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)

	var flows []worker.Flow
	for _, f := range cfg.Flows {
		flows = append(flows, worker.Flow{
			Endpoint: flow.Endpoint{
				Name: f.Name, URL: simSrv.URL + "/api/flo/" + f.Name + "/invoke",
				Auth: flow.ClientToken{Source: flow.StaticToken(simToken)}, Timeout: 2 * time.Second,
			},
			RateLimit: opt.rate, Concurrency: 4, Breaker: worker.BreakerForTests(),
		})
	}
	v, err := schema.New()
	if err != nil {
		t.Fatal(err)
	}
	logs := &servicetest.LogBuffer{}
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	wc := worker.ConfigForTests()
	wc.Broker, wc.Validator, wc.Router, wc.Invoker, wc.Flows = worker.JetStream(b), v, policy.New(cfg), flow.NewClient(flow.ClientConfig{}), flows
	wc.TracerProvider = tp
	wc.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opt.workerConfig != nil {
		opt.workerConfig(&wc)
	}
	h := &harness{t: t, b: b, url: srv.ClientURL(), sim: sim, pub: publish.New(b, tp), logs: logs, wc: wc}
	if opt.before != nil {
		opt.before(b)
	}
	t.Cleanup(h.stop)
	t.Cleanup(func() {
		if t.Failed() { // leave the evidence: what the pipeline recorded, and the simulator's counters
			for _, r := range h.statuses() {
				t.Logf("status: %s %s flow=%s attempt=%d http=%d why=%q error=%q", r.Outcome, r.EventID, r.Flow, r.Attempt, r.HTTPStatus, r.Why, r.Error)
			}
			dls, _ := h.deadLetters()
			for _, d := range dls {
				t.Logf("dead letter: %s %s flow=%s attempts=%d error=%q", d.Reason, d.EventID, d.Flow, d.Attempts, d.Error)
			}
			for _, f := range cfg.Flows {
				t.Logf("simulator %s: %+v", f.Name, h.sim.Stats(f.Name))
			}
			t.Logf("worker logs:\n%s", h.logs.String())
		}
	})
	h.run()
	return h
}

// connect connects to the NATS server at url and provisions the streams; closed when the
// test ends.
func connect(t *testing.T, url string) *broker.Broker {
	t.Helper()
	return brokertest.ConnectTo(t, url)
}

type running struct {
	w      *worker.Worker
	cancel context.CancelFunc
	done   chan error
}

// run starts a worker — another replica if some run already — on the harness's broker and
// simulator.
func (h *harness) run() {
	h.t.Helper()
	w, err := worker.New(h.wc)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, cancel: cancel, done: make(chan error, 1)}
	h.workers = append(h.workers, r)
	go func() { r.done <- w.Run(ctx) }()
	testwait.Until(h.t, "worker ready", w.Ready)
}

// stop shuts every worker down and waits for them.
func (h *harness) stop() {
	for _, r := range h.workers {
		r.cancel()
	}
	for _, r := range h.workers {
		select {
		case err := <-r.done:
			if err != nil {
				h.t.Errorf("worker stopped with error: %v", err)
			}
		case <-time.After(15 * time.Second):
			h.t.Error("worker did not stop within 15s")
		}
	}
	h.workers = nil
}

func (h *harness) publish(subject string, data []byte) publish.Result {
	h.t.Helper()
	res, err := h.pub.Publish(context.Background(), data, publish.Options{Subject: subject})
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

// statuses returns every status record stored so far.
func (h *harness) statuses() []status.Record {
	h.t.Helper()
	var out []status.Record
	err := h.b.Scan(context.Background(), broker.StreamStatus, "", 0, time.Time{}, func(m *broker.StoredMessage) bool {
		var r status.Record
		if err := json.Unmarshal(m.Data, &r); err != nil {
			h.t.Errorf("status record is not JSON: %v: %s", err, m.Data)
		}
		out = append(out, r)
		return true
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// deadLetters returns every dead letter stored so far, with their subjects.
func (h *harness) deadLetters() ([]status.DeadLetter, []string) {
	h.t.Helper()
	var out []status.DeadLetter
	var subjects []string
	err := h.b.Scan(context.Background(), broker.StreamDLQ, "", 0, time.Time{}, func(m *broker.StoredMessage) bool {
		var r status.DeadLetter
		if err := json.Unmarshal(m.Data, &r); err != nil {
			h.t.Errorf("dead letter is not JSON: %v: %s", err, m.Data)
		}
		out = append(out, r)
		subjects = append(subjects, m.Subject)
		return true
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out, subjects
}

// waitStatus waits for a status record of the event with the given outcome and flow ("" = any).
func (h *harness) waitStatus(eventID string, outcome status.Outcome, flow string) status.Record {
	h.t.Helper()
	var found status.Record
	testwait.Until(h.t, fmt.Sprintf("status %s for event %s flow %q", outcome, eventID, flow), func() bool {
		for _, r := range h.statuses() {
			if (eventID == "" || r.EventID == eventID) && r.Outcome == outcome && (flow == "" || r.Flow == flow) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// waitDeadLetter waits for a dead letter matching pred.
func (h *harness) waitDeadLetter(what string, pred func(status.DeadLetter) bool) (status.DeadLetter, string) {
	h.t.Helper()
	var found status.DeadLetter
	var subject string
	testwait.Until(h.t, what, func() bool {
		dls, subjects := h.deadLetters()
		for i, dl := range dls {
			if pred(dl) {
				found, subject = dl, subjects[i]
				return true
			}
		}
		return false
	})
	return found, subject
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func publishOpts(msgID string) publish.Options {
	return publish.Options{Subject: event.SubjectISPM, MsgID: msgID}
}
