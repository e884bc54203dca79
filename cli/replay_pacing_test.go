package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/service/servicetest"
	"github.com/remediator/remediator/status"
)

// replayFigures is what replayThroughRateLimit observed.
type replayFigures struct {
	published time.Duration // for `dlq replay` to publish every event
	succeeded time.Duration // from the start of the replay to the last success
	sustained float64       // flow invocations per second, first to last
	tooMany   int           // 429s the simulator answered
}

// replayThroughRateLimit dead-letters n events of a broken flow, restarts the service on the
// same data with the flow fixed and limited to perSecond calls (in the worker and in the
// simulator, which answers 429 above it), replays them with `dlq replay`, and checks that each
// event then succeeds exactly once, with no 429: the worker's rate budget paces dispatch.
func replayThroughRateLimit(tb testing.TB, n int, perSecond float64) replayFigures {
	dir := tb.TempDir()
	setRate := func(cfg *config.Config, perSecond float64) {
		for i := range cfg.Flows {
			if cfg.Flows[i].Name == seedFlow {
				cfg.Flows[i].RateLimit = perSecond
			}
		}
		for i := range cfg.Simulator.Flows {
			if cfg.Simulator.Flows[i].Alias == seedFlow {
				cfg.Simulator.Flows[i].RateLimit = perSecond
			}
		}
	}

	// 1. Produce n dead letters quickly: a broken flow with a generous limit.
	cfg := servicetest.Config(tb, dir)
	setRate(cfg, 10000)
	svc := servicetest.Start(tb, cfg, nil)
	setFaults(tb, svc, seedFlow, `{"status":400}`)
	b := connectTo(tb, svc.Addrs.NATS)
	seed, err := os.ReadFile(seedPath)
	if err != nil {
		tb.Fatal(err)
	}
	p := publish.New(b, nil)
	for i := range n {
		doc := bytes.Replace(seed, []byte(seedEventID), fmt.Appendf(nil, "bulk-%04d", i), 1)
		if _, err := p.Publish(context.Background(), doc, publish.Options{}); err != nil {
			tb.Fatal(err)
		}
	}
	testwait.Until(tb, fmt.Sprintf("%d dead letters", n), func() bool { return streamInfo(tb, b, broker.StreamDLQ).Messages == uint64(n) }, testwait.Timeout(5*time.Minute))
	b.Close()

	// 2. Deploy the fix: restart on the same data with the flow at perSecond, in the worker
	// and in the simulator.
	if err := svc.Stop(); err != nil {
		tb.Fatal(err)
	}
	cfg = servicetest.Config(tb, dir)
	setRate(cfg, perSecond)
	svc = servicetest.Start(tb, cfg, nil)
	url := svc.Addrs.NATS
	b = connectTo(tb, url)

	var fig replayFigures
	start := time.Now()
	code, out, errOut := cmd(tb, url, "dlq", "replay", "--reason", "permanent_failure", "--yes")
	if want := fmt.Sprintf("replayed %d dead letters as %d events", n, n); code != 0 || !strings.Contains(out, want) {
		tb.Fatalf("dlq replay: exit %d: %s %s", code, out, errOut)
	}
	if want := fmt.Sprintf("[##############################] %d/%d replayed", n, n); !strings.Contains(errOut, want) {
		tb.Errorf("no progress bar on stderr: %q", errOut)
	}
	fig.published = time.Since(start)

	succeeded := func() uint64 {
		return streamInfo(tb, b, broker.StreamStatus).Subjects[status.Succeeded.Subject()]
	}
	// Generous: the work takes n/perSecond by nature; the wait only guards against a hang.
	testwait.Until(tb, fmt.Sprintf("%d succeeded statuses", n), func() bool { return succeeded() >= uint64(n) }, testwait.Timeout(10*time.Minute))
	fig.succeeded = time.Since(start)

	fi := simFlow(tb, svc, seedFlow)
	if fi.RateLimit == nil || *fi.RateLimit != perSecond {
		tb.Fatalf("the simulated flow's rate limit is %v, want %g/s", fi.RateLimit, perSecond)
	}
	st := fi.Stats
	fig.tooMany = st.RateLimited
	if st.RateLimited != 0 {
		tb.Errorf("the simulator answered 429 %d times; the replay stampeded the flow", st.RateLimited)
	}
	if st.Executed != n || st.MaxExecutionsPerKey != 1 || succeeded() != uint64(n) {
		tb.Errorf("simulator stats %+v, %d succeeded statuses; want %d executions, one per event", st, succeeded(), n)
	}
	if got := streamInfo(tb, b, broker.StreamDLQ).Messages; got != 0 {
		tb.Errorf("%d dead letters left after the replay", got)
	}
	audit := auditRecords(tb, b)
	if len(audit) != 1 {
		tb.Fatalf("%d audit records, want 1", len(audit))
	}
	if a := audit[0]; a.Action != "dlq.replay" || a.Count != n || len(a.Sequences) != n || len(a.Events) != n || a.Part != 1 || a.Parts != 1 {
		tb.Errorf("audit record: %s, part %d/%d, %d sequences, %d events", a.Action, a.Part, a.Parts, len(a.Sequences), len(a.Events))
	}
	fig.sustained = invocationRate(tb, svc)
	return fig
}

// invocationRate is the flow's sustained rate of successful calls, first to last.
func invocationRate(tb testing.TB, svc *servicetest.Running) float64 {
	var invs []flowsim.Invocation
	simCall(tb, "GET", svc.Addrs.Simulator+"/_sim/flows/"+seedFlow+"/invocations", "", &invs)
	var first, last time.Time
	ok := 0
	for _, inv := range invs {
		if inv.Status != 200 || inv.Duplicate {
			continue
		}
		ok++
		if first.IsZero() || inv.At.Before(first) {
			first = inv.At
		}
		if inv.At.After(last) {
			last = inv.At
		}
	}
	if ok < 2 {
		return 0
	}
	return float64(ok-1) / last.Sub(first).Seconds()
}

// Replaying dead letters of a rate-limited flow draws no 429 and runs each event once: the
// worker's rate budget paces dispatch, not the replay. A small, fast version; the 1,000
// letters at Okta's 10/s are BenchmarkReplayOfAThousandDeadLetters.
func TestReplayRespectsTheFlowsRateLimit(t *testing.T) {
	t.Parallel()
	replayThroughRateLimit(t, 30, 20)
}

// BenchmarkReplayOfAThousandDeadLetters: 1,000 dead letters of a flow limited to Okta's 10
// calls/s, replayed at once, go through at the flow's rate with no 429 (about 100 s by
// nature). Run it with
//
//	go test -run '^$' -bench ReplayOfAThousand -benchtime 1x ./cli/
func BenchmarkReplayOfAThousandDeadLetters(b *testing.B) {
	for range b.N {
		fig := replayThroughRateLimit(b, 1000, 10)
		b.ReportMetric(fig.published.Seconds(), "s-publish")
		b.ReportMetric(fig.succeeded.Seconds(), "s-all-succeeded")
		b.ReportMetric(fig.sustained, "invocations/s")
		b.ReportMetric(float64(fig.tooMany), "429s")
	}
}
