package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/status"
)

// The benchmarks run one iteration each (-benchtime 1x); see BENCHMARKS.md for the commands.

const benchFlow = "suspend-okta-account" // where the seed is routed

// publishSeeds publishes n copies of the seed with distinct event ids and the given fields.
func (s *stack) publishSeeds(b *testing.B, n int, prefix string, fields ...string) {
	b.Helper()
	seed := readExample(b, "ispm-unused-admin.json")
	pub := publish.New(s.b, nil)
	for i := range n {
		doc := withFields(b, seed, append([]string{"eventId", fmt.Sprintf("%s-%05d", prefix, i)}, fields...)...)
		if _, err := pub.Publish(context.Background(), doc, publish.Options{Subject: event.SubjectISPM}); err != nil {
			b.Fatal(err)
		}
	}
}

// invocationRate is the sustained rate of the flow's successful invocations: (n−1) over the
// time from the first to the last.
func invocationRate(invs []flowsim.Invocation) float64 {
	var at []time.Time
	for _, inv := range invs {
		if inv.Status == 200 && !inv.Duplicate {
			at = append(at, inv.At)
		}
	}
	if len(at) < 2 {
		return 0
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	return float64(len(at)-1) / at[len(at)-1].Sub(at[0]).Seconds()
}

// BenchmarkRateAdherence: 1,000 events for one flow limited to 10/s, against the simulator
// enforcing 10/s: the sustained rate and the 429s, with one worker process, three worker
// processes sharing the budget, and a baseline of three dispatchers with private limiters.
func BenchmarkRateAdherence(b *testing.B) {
	const n = 1000
	for _, tc := range []struct {
		name     string
		replicas int
		naive    bool
	}{
		{"remediator-1-process", 1, false},
		{"remediator-3-processes", 3, false},
		{"baseline-3-private-limiters", 3, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				s := newStack(b, stackOptions{rate: 10})
				s.publishSeeds(b, n, "rate")
				start := time.Now()
				if tc.naive {
					naiveDispatch(b, s, tc.replicas, 10)

				} else {
					for range tc.replicas {
						s.startWorker()
					}
				}
				s.waitSim("every event dispatched", 10*time.Minute, func() bool {
					st := s.sim.Stats(benchFlow)
					if tc.naive { // one call per event, whatever the answer
						return st.Received >= n
					}
					return st.Succeeded >= n
				})
				st := s.sim.Stats(benchFlow)
				b.ReportMetric(invocationRate(s.sim.Invocations(benchFlow)), "invocations/s")
				b.ReportMetric(float64(st.RateLimited), "429s")
				b.ReportMetric(float64(st.Succeeded), "succeeded")
				b.ReportMetric(float64(st.Received-st.Succeeded-st.RateLimited), "other-failures")
				b.ReportMetric(time.Since(start).Seconds(), "s-total")
			}
		})
	}
}

// naiveDispatch is the baseline: replicas that each hold a private limiter at the flow's rate
// and call the flow once per event, sharing a plain consumer.
func naiveDispatch(b *testing.B, s *stack, replicas int, perSecond float64) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cons, err := s.b.Consumer(ctx, broker.ConsumerConfig{Stream: broker.StreamEvents, Durable: "naive", FilterSubjects: []string{event.SubjectISPM}, AckWait: 30 * time.Second, MaxDeliver: -1, MaxAckPending: 1000})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	cfg := s.cfg.Flows[0]
	for _, f := range s.cfg.Flows {
		if f.Name == benchFlow {
			cfg = f
		}
	}
	ep := flow.Endpoint{Name: cfg.Name, URL: cfg.URL, Auth: flow.ClientToken{Source: flow.StaticToken(token)}, Timeout: 5 * time.Second}
	client := flow.NewClient(flow.ClientConfig{})
	var wg sync.WaitGroup
	for range replicas {
		lim := rate.NewLimiter(rate.Limit(perSecond), 1)
		wg.Go(func() {
			for ctx.Err() == nil {
				msgs, err := cons.Fetch(ctx, 1, 250*time.Millisecond)
				if err != nil || len(msgs) == 0 {
					continue
				}
				if lim.Wait(ctx) != nil {
					return
				}
				m := msgs[0]
				_, _ = client.Invoke(ctx, ep, flow.Request{Inputs: map[string]any{"eventId": event.PeekID(m.Data())}, IdempotencyKey: fmt.Sprint(m.StreamSequence())})
				_ = m.Ack(ctx)
			}
		})
	}
	b.Cleanup(func() { cancel(); wg.Wait() })
}

// waitForIntake waits until the intake consumer has nothing left: every event is a stored job.
func (s *stack) waitForIntake(b *testing.B) {
	b.Helper()
	// Nothing announces a consumer's counts; testwait's fallback poll reads them.
	testwait.Until(b, "intake to drain", func() bool {
		infos, err := s.b.ConsumerInfos(context.Background(), broker.StreamEvents)
		if err != nil {
			return false
		}
		for _, ci := range infos {
			if ci.Name == "remediator-intake" {
				return ci.NumPending == 0 && ci.NumAckPending == 0
			}
		}
		return false
	}, testwait.Timeout(5*time.Minute))
}

// latencyToInvocation publishes doc and returns how long until the simulator received it.
func (s *stack) latencyToInvocation(b *testing.B, alias string, doc []byte) time.Duration {
	b.Helper()
	id := event.PeekID(doc)
	start := time.Now()
	if _, err := publish.New(s.b, nil).Publish(context.Background(), doc, publish.Options{Subject: event.SubjectISPM}); err != nil {
		b.Fatal(err)
	}
	var at time.Time
	s.waitSim("the event's invocation", 10*time.Minute, func() bool {
		for _, inv := range s.sim.Invocations(alias) {
			if inv.Inputs["eventId"] == id {
				at = inv.At
				return true
			}
		}
		return false
	})
	return at.Sub(start)
}

// BenchmarkFairness: with 5,000 events queued for flow A (10/s), one new event for flow B is
// dispatched within the reported time. A FIFO dispatcher would reach it after ~500 s.
func BenchmarkFairness(b *testing.B) {
	const backlog = 5000
	for range b.N {
		s := newStack(b, stackOptions{rate: 10})
		s.startWorker()
		s.publishSeeds(b, backlog, "fair-a")
		s.waitForIntake(b)
		ahead := s.sim.Stats(benchFlow).Received
		doc := withFields(b, readExample(b, "ispm-unused-admin.json"), "eventId", "fair-b", "issueTitle", "No MFA - Admin Account")
		lat := s.latencyToInvocation(b, "notify-slack", doc)
		b.ReportMetric(float64(lat.Milliseconds()), "ms-flow-B-latency")
		b.ReportMetric(float64(backlog-ahead), "flow-A-backlog")
		b.ReportMetric(float64(backlog-ahead)/10, "s-FIFO-estimate")
	}
}

// BenchmarkPriority: a High (here Critical) event published behind 5,000 Low events for the
// same flow is dispatched within the reported time.
func BenchmarkPriority(b *testing.B) {
	const backlog = 5000
	for range b.N {
		s := newStack(b, stackOptions{rate: 10})
		s.startWorker()
		s.publishSeeds(b, backlog, "prio-low", "issueSeverity", "Low")
		s.waitForIntake(b)
		doc := withFields(b, readExample(b, "ispm-unused-admin.json"), "eventId", "prio-high", "issueSeverity", "Critical")
		lat := s.latencyToInvocation(b, benchFlow, doc)
		b.ReportMetric(float64(lat.Milliseconds()), "ms-high-latency")
		b.ReportMetric(float64(backlog-s.sim.Stats(benchFlow).Received), "low-backlog")
	}
}

// BenchmarkChaos: 10,000 events against the simulator injecting 30% 5xx, 10% timeouts and 5%
// 429s, dispatched by two worker processes: every event ends succeeded or in the DLQ, none is
// lost, and no idempotency key succeeds twice at a flow.
func BenchmarkChaos(b *testing.B) {
	const n = 10000
	titles := []string{"Unused Admin Account", "No MFA - Admin Account", "Old Password", "Compromised Okta Account"}
	flowsPerTitle := []int{1, 1, 1, 2}
	faults := flowsim.Faults{ErrorRate: 0.30, TimeoutRate: 0.10, RateLimitRate: 0.05, Hang: 2 * time.Second}
	for range b.N {
		s := newStack(b, stackOptions{
			rate:   1000,
			faults: map[string]flowsim.Faults{"suspend-okta-account": faults, "notify-slack": faults, "reset-password": faults, "clear-sessions": faults},
			adjust: func(c *config.Config) {
				c.Worker.MaxAttempts = 10
				for i := range c.Flows {
					c.Flows[i].Timeout = 500 * time.Millisecond
					c.Flows[i].Concurrency = 16
					// With 45% of calls failing the breakers rightly open again and again; a 1s
					// cooldown (default 30s) keeps the run about correctness, not about waiting.
					c.Flows[i].Breaker.Cooldown = time.Second
				}
			},
		})
		expected := 0
		seed := readExample(b, "ispm-compromised-account.json")
		pub := publish.New(s.b, nil)
		for i := range n {
			doc := withFields(b, seed, "eventId", fmt.Sprintf("chaos-%05d", i), "issueTitle", titles[i%4])
			expected += flowsPerTitle[i%4]
			if _, err := pub.Publish(context.Background(), doc, publish.Options{Subject: event.SubjectISPM}); err != nil {
				b.Fatal(err)
			}
		}
		start := time.Now()
		s.startWorker()
		s.startWorker()
		// The scan reads the whole status stream; with thousands of records arriving, a scan
		// per stored record would be most of the machine, so scans are at least 2 s apart.
		var lastScan time.Time
		testwait.Until(b, "every (event, flow) terminal", func() bool {
			if time.Since(lastScan) < 2*time.Second {
				return false
			}
			lastScan = time.Now()
			return len(s.terminal()) >= expected
		}, testwait.Timeout(30*time.Minute))
		elapsed := time.Since(start)
		var succeeded, failed, multiple int
		for _, recs := range s.terminal() {
			if len(recs) > 1 {
				multiple++
			}
			switch recs[0].Outcome {
			case status.Succeeded:
				succeeded++
			case status.Failed:
				failed++
			}
		}
		info, err := s.b.StreamInfo(context.Background(), broker.StreamDLQ, false)
		if err != nil {
			b.Fatal(err)
		}
		maxExec := 0
		var calls int
		for _, f := range s.cfg.Flows {
			st := s.sim.Stats(f.Name)
			maxExec = max(maxExec, st.MaxExecutionsPerKey)
			calls += st.Received
		}
		b.ReportMetric(float64(expected), "jobs")
		b.ReportMetric(float64(succeeded), "succeeded")
		b.ReportMetric(float64(failed), "dead-lettered")
		b.ReportMetric(float64(info.Messages), "dlq-messages")
		b.ReportMetric(float64(expected-succeeded-failed), "lost")
		b.ReportMetric(float64(multiple), "jobs-with-2-terminal-records")
		b.ReportMetric(float64(maxExec), "max-executions-per-key")
		b.ReportMetric(float64(calls), "flow-calls")
		b.ReportMetric(elapsed.Seconds(), "s-total")
		if lost := expected - succeeded - failed; lost != 0 || multiple != 0 || maxExec > 1 || int(info.Messages) != failed {
			b.Errorf("lost %d, %d jobs with two terminal records, max executions per key %d, %d dead letters for %d failures",
				lost, multiple, maxExec, info.Messages, failed)
		}
	}
}
