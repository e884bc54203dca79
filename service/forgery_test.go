package service_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/cli"
	"github.com/remediator/remediator/dlq"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/seal"
	"github.com/remediator/remediator/service"
	"github.com/remediator/remediator/service/servicetest"
	"github.com/remediator/remediator/status"
	"github.com/remediator/remediator/worker"
)

// TestForgeriesAreRefused replays, against the built-in configuration (embedded JetStream with
// authentication on), each forgery of issue 13 by someone who holds a worker's or an
// operator's NATS credentials but no record key. Each is refused as the issue says: nothing
// runs (the simulator's invocation counts), nothing is lost (a real event still ends in one
// terminal record), and each leaves an audit record or an alert metric.
func TestForgeriesAreRefused(t *testing.T) {
	t.Setenv("REMEDIATOR_FLOWSIM_TOKEN", "forgery-token")
	cfg := servicetest.Config(t, t.TempDir())
	svc := servicetest.Start(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testwait.DefaultTimeout)
	defer cancel()
	op := svc.Connect(t)                             // operator credentials (the CLI's)
	wk := svc.ConnectAs(t, broker.RoleWorker)        // worker credentials
	pub := svc.ConnectAs(t, broker.RolePublisher)    // publisher credentials
	keys, err := service.RecordKeys(cfg, nil, false) // what a genuine worker signs with
	if err != nil {
		t.Fatal(err)
	}
	statuses := servicetest.StreamWake(t, op, broker.StreamStatus, broker.SubjectsStatus)
	deadLetters := servicetest.StreamWake(t, op, broker.StreamDLQ, broker.SubjectsDLQ)
	audits := servicetest.StreamWake(t, op, broker.StreamAudit, broker.SubjectsAudit)
	seed := readSeed(t)
	const flow = "suspend-okta-account" // the seed's flow
	withID := func(id string) []byte {
		var doc map[string]any
		if err := json.Unmarshal(seed, &doc); err != nil {
			t.Fatal(err)
		}
		doc["eventId"] = id
		b, _ := json.Marshal(doc)
		return b
	}
	publishEvent := func(id string) uint64 {
		t.Helper()
		res, err := publish.New(pub, nil).Publish(ctx, withID(id), publish.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return res.Sequence
	}
	// terminals returns the terminal status records of an event.
	terminals := func(id string) []status.Record {
		var out []status.Record
		for _, r := range statusRecords(t, op) {
			if r.EventID == id && (r.Outcome == status.Succeeded || r.Outcome == status.Failed || r.Outcome == status.DryRun) {
				out = append(out, r)
			}
		}
		return out
	}
	succeeds := func(id string) {
		t.Helper()
		testwait.Until(t, id+" succeeded", func() bool { return len(terminals(id)) > 0 }, testwait.WakeOn(statuses))
		if got := terminals(id); len(got) != 1 || got[0].Outcome != status.Succeeded || got[0].Flow != flow {
			t.Errorf("%s: terminal records %+v; want one succeeded for %s", id, got, flow)
		}
	}
	deadLettered := func(reason status.Reason, n int) []status.DeadLetter {
		t.Helper()
		var got []status.DeadLetter
		testwait.Until(t, fmt.Sprintf("%d %s dead letters", n, reason), func() bool {
			got = got[:0]
			for _, dl := range decoded[status.DeadLetter](t, op, broker.StreamDLQ, reason.Subject()) {
				if dl.Reason == reason {
					got = append(got, dl)
				}
			}
			return len(got) >= n
		}, testwait.WakeOn(deadLetters))
		return got
	}
	received := func() int { return simReceived(t, svc, flow) }

	t.Run("switch values put by hand are ignored and audited", func(t *testing.T) {
		ctl, err := op.OpenKeyValue(ctx, worker.ControlsBucket)
		if err != nil {
			t.Fatal(err)
		}
		forged := []byte(`{"by":"oncall@example.com","at":"2026-01-01T00:00:00Z","reason":"forged"}`)
		for _, key := range []string{worker.DryRunKey(worker.AllFlows), worker.PauseKey(flow)} {
			if _, err := ctl.Put(ctx, key, forged); err != nil {
				t.Fatal(err)
			}
		}
		var recs []worker.ControlAudit
		testwait.Until(t, "an audit record of each forged switch", func() bool {
			recs = decoded[worker.ControlAudit](t, op, broker.StreamAudit, worker.ControlAuditSubject)
			return len(recs) >= 2
		}, testwait.WakeOn(audits))
		for _, r := range recs {
			if !r.Ignored || r.Writer != worker.UnknownWriter || r.New != nil || !strings.Contains(r.Value, "forged") || r.Revision == 0 {
				t.Errorf("audit of a forged switch: %+v; want ignored, unknown writer, the value as written", r)
			}
		}
		// dry-run on everything and the pause are not obeyed: a real event runs.
		before := received()
		publishEvent("forgery-switches")
		succeeds("forgery-switches")
		if received() != before+1 {
			t.Errorf("the flow received %d calls, want 1", received()-before)
		}
		for _, key := range []string{worker.DryRunKey(worker.AllFlows), worker.PauseKey(flow)} {
			if err := ctl.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		wantMetric(t, svc, `kind="control"`, 2)
	})

	t.Run("a job published by hand is dead-lettered unverified, not run", func(t *testing.T) {
		before := received()
		evSeq := publishEvent("forgery-job-victim") // a real event, whose sequence the forged job names
		succeeds("forgery-job-victim")
		before++
		job := worker.Job{Version: 2, Key: "0123456789abcdef0123456789abcdef", IdempotencyKey: "rmd-x", EventID: "forgery-job",
			EventKind: event.KindISPMIssue, Flow: flow, Rule: "unused-admin-account", Priority: event.PriorityHigh,
			Inputs: map[string]any{"userId": "00uVictim"}, Subject: event.SubjectISPM, Principal: "ispm-console", EventSequence: evSeq}
		data, _ := json.Marshal(job)
		subject := worker.DispatchSubject(flow, event.PriorityHigh)
		other, _ := seal.NewKeyring(seal.Key{ID: keys.Primary(), Secret: []byte("a guessed key, not the deployment's one")})
		for _, h := range []map[string][]string{nil, {seal.Header: {other.SignRecord(subject, data)}}} {
			if _, err := wk.Publish(ctx, subject, data, broker.PublishOptions{Header: h}); err != nil {
				t.Fatal(err)
			}
		}
		for _, dl := range deadLettered(status.ReasonUnverified, 2) {
			if !strings.Contains(dl.Error, "not verified") || string(dl.Payload) != string(data) {
				t.Errorf("dead letter %+v; want the job's bytes and why", dl)
			}
		}
		if n := received(); n != before {
			t.Errorf("the forged jobs ran the flow %d times", n-before)
		}
		wantMetric(t, svc, `kind="dispatch_job"`, 2)
	})

	t.Run("a signed job claiming a rule that may not run the flow is refused", func(t *testing.T) {
		before := received()
		job := worker.Job{Version: 2, EventID: "forgery-rule", EventKind: event.KindEntityRisk, Flow: flow,
			Rule: "medium-risk-notify", Priority: event.PriorityHigh, Principal: "rule:medium-risk-notify",
			Inputs: map[string]any{"userId": "00uVictim"}, Subject: event.SubjectITP}
		job.Key = worker.JobKey(keys, job.EventKind, job.EventID, job.Flow)
		job.IdempotencyKey = "rmd-" + job.Key
		data, _ := json.Marshal(job)
		subject := worker.DispatchSubject(flow, event.PriorityHigh)
		if _, err := wk.Publish(ctx, subject, data, broker.PublishOptions{Header: map[string][]string{seal.Header: {keys.SignRecord(subject, data)}}}); err != nil {
			t.Fatal(err)
		}
		var found bool
		testwait.Until(t, "the job dead-lettered as unauthorized", func() bool {
			for _, dl := range decoded[status.DeadLetter](t, op, broker.StreamDLQ, status.ReasonUnauthorized.Subject()) {
				found = found || dl.EventID == "forgery-rule" && strings.Contains(dl.Error, "medium-risk-notify")
			}
			return found
		}, testwait.WakeOn(deadLetters))
		if n := received(); n != before {
			t.Errorf("the job ran the flow %d times", n-before)
		}
	})

	t.Run("a forged dead letter is not replayed", func(t *testing.T) {
		before := received()
		forged := status.DeadLetter{Reason: status.ReasonUnauthorized, Subject: event.SubjectISPM, EventID: "forgery-dlq",
			Payload: withID("forgery-dlq"), Headers: map[string][]string{"Remediator-Principal": {"ispm-console"}}, Error: "forged"}
		data, _ := json.Marshal(forged)
		ack, err := wk.Publish(ctx, forged.Reason.Subject(), data, broker.PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		store := dlq.New(op, dlq.Options{Keys: keys})
		plan, err := store.PlanReplay(ctx, dlq.Selection{Sequences: []uint64{ack.Sequence}, Describe: "forged"}, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Events) != 0 || plan.Unverified() != 1 {
			t.Fatalf("plan %+v; want the forged letter refused as unverified", plan)
		}
		res, err := store.Replay(ctx, plan, dlq.ReplayOptions{Rate: 100})
		if err != nil || res.Replayed != 0 {
			t.Fatalf("replay %+v, %v", res, err)
		}
		// Through the command line: the dry run counts it as refused, the replay leaves it.
		code, out, errOut := runCLI(t, svc, "dlq", "replay", strconv.FormatUint(ack.Sequence, 10), "--dry-run")
		if code != 0 || !strings.Contains(out, "REFUSED: 1 dead letter do") || !strings.Contains(out, "UNVERIFIED") {
			t.Errorf("dlq replay --dry-run: exit %d %s\n%s", code, errOut, out)
		}
		code, out, errOut = runCLI(t, svc, "dlq", "show", strconv.FormatUint(ack.Sequence, 10))
		if code != 0 || !strings.Contains(out, "UNVERIFIED") {
			t.Errorf("dlq show of a forged letter: exit %d %s\n%s", code, errOut, out)
		}
		code, out, errOut = runCLI(t, svc, "dlq", "replay", strconv.FormatUint(ack.Sequence, 10), "--yes")
		if code != 0 || !strings.Contains(out, "nothing replayed") {
			t.Errorf("dlq replay: exit %d %s\n%s", code, errOut, out)
		}
		if _, err := store.Get(ctx, ack.Sequence); err != nil {
			t.Errorf("the forged letter: %v; want it left for inspection", err)
		}
		if n := received(); n != before {
			t.Errorf("the replay ran the flow %d times", n-before)
		}
	})

	t.Run("a forged succeeded status is marked by status", func(t *testing.T) {
		rec := status.Record{EventID: "forgery-stuck", Flow: flow, Outcome: status.Succeeded, ExecutionID: "forged", Timestamp: time.Now().UTC()}
		data, _ := json.Marshal(rec)
		if _, err := wk.Publish(ctx, status.Succeeded.Subject(), data, broker.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runCLI(t, svc, "status", "forgery-stuck")
		if code != 0 || !strings.Contains(out, "UNVERIFIED") {
			t.Errorf("status of a forged success: exit %d %s\n%s", code, errOut, out)
		}
		code, out, _ = runCLI(t, svc, "status", "forgery-switches")
		if code != 0 || strings.Contains(out, "UNVERIFIED") || !strings.Contains(out, "succeeded") {
			t.Errorf("status of a genuine success: exit %d\n%s", code, out)
		}
	})

	t.Run("a forged record under a job key does not make the event vanish", func(t *testing.T) {
		before := received()
		const id = "forgery-record"
		jobs, err := wk.OpenKeyValue(ctx, "remediation_jobs")
		if err != nil {
			t.Fatal(err)
		}
		// Even with the job key known (it is not predictable without a record key).
		key := worker.JobKey(keys, event.KindISPMIssue, id, flow)
		if _, err := jobs.Put(ctx, key, []byte(`{"eventSequence":0,"terminal":{"outcome":"succeeded","executionId":"forged"}}`)); err != nil {
			t.Fatal(err)
		}
		publishEvent(id)
		succeeds(id)
		if n := received(); n != before+1 {
			t.Errorf("the flow received %d calls, want 1", n-before)
		}
		wantMetric(t, svc, `kind="job_record"`, 1)
	})

	t.Run("the switches in force are shown with who set them", func(t *testing.T) {
		ctl, err := op.OpenKeyValue(ctx, worker.ControlsBucket)
		if err != nil {
			t.Fatal(err)
		}
		if err := worker.SetSignedControl(ctx, ctl, keys, worker.PauseKey("notify-slack"), &worker.Control{By: "alice", At: time.Now().UTC(), Reason: "maintenance"}); err != nil {
			t.Fatal(err)
		}
		if _, err := ctl.Put(ctx, worker.DryRunKey("reset-password"), []byte(`{"by":"mallory"}`)); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runCLI(t, svc, "flows", "list")
		if code != 0 || !strings.Contains(out, "pause flow notify-slack: set by alice") || !strings.Contains(out, "IGNORED dry-run flow reset-password") {
			t.Errorf("flows list: exit %d %s\n%s", code, errOut, out)
		}
		var recs []worker.ControlAudit
		testwait.Until(t, "the signed pause audited with its writer", func() bool {
			recs = decoded[worker.ControlAudit](t, op, broker.StreamAudit, worker.ControlAuditSubject)
			for _, r := range recs {
				if r.Key == worker.PauseKey("notify-slack") && r.Writer == "alice" && !r.Ignored && r.New != nil && r.New.Reason == "maintenance" {
					return true
				}
			}
			return false
		}, testwait.WakeOn(audits))
	})
}

// simReceived is how many calls the built-in simulator's flow alias has received.
func simReceived(t *testing.T, svc *servicetest.Running, alias string) int {
	t.Helper()
	_, body := get(t, svc.Addrs.Simulator+"/_sim/flows")
	var flows []flowsim.FlowInfo
	if err := json.Unmarshal([]byte(body), &flows); err != nil {
		t.Fatalf("simulator flows: %v: %s", err, body)
	}
	for _, f := range flows {
		if f.Alias == alias {
			return f.Stats.Received
		}
	}
	t.Fatalf("no simulator flow %s", alias)
	return 0
}

// wantMetric waits for remediator_records_unverified_total with label to reach n.
func wantMetric(t *testing.T, svc *servicetest.Running, label string, n float64) {
	t.Helper()
	var last string
	testwait.Until(t, "remediator_records_unverified_total{"+label+"} ≥ "+fmt.Sprint(n), func() bool {
		_, body := get(t, "http://"+svc.Addrs.HTTP+"/metrics")
		sc := bufio.NewScanner(strings.NewReader(body))
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "remediator_records_unverified_total{") && strings.Contains(line, label) {
				last = line
				f := strings.Fields(line)
				v, err := strconv.ParseFloat(f[len(f)-1], 64)
				return err == nil && v >= n
			}
		}
		return false
	})
	_ = last
}

// runCLI runs the command line against svc, finding its credentials and record keys in its
// data directory as after a local `run`.
func runCLI(t *testing.T, svc *servicetest.Running, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Main(context.Background(), append(args, "--nats-url", svc.Addrs.NATS, "--data-dir", svc.DataDir()), &out, &errOut)
	return code, out.String(), errOut.String()
}
