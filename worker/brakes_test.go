package worker_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/status"
	"github.com/remediator/remediator/worker"
)

func (h *harness) controls() *broker.KV {
	h.t.Helper()
	kv, err := h.b.KeyValue(context.Background(), broker.KVConfig{Bucket: worker.ControlsBucket, History: 1, Replicas: 1})
	if err != nil {
		h.t.Fatal(err)
	}
	return kv
}

// dispatchBacklog is how many jobs wait in REMEDIATION_DISPATCH.
func (h *harness) dispatchBacklog() uint64 {
	h.t.Helper()
	info, err := h.b.StreamInfo(context.Background(), broker.StreamDispatch, false)
	if err != nil {
		h.t.Fatal(err)
	}
	return info.Messages
}

func TestKillSwitchHoldsDispatchWithoutLosingEvents(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"suspend-okta-account", worker.AllFlows} {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			h := start(t, options{})
			kv := h.controls()
			pause := &worker.Control{By: "oncall@example.com", At: time.Now(), Reason: "investigating a detector bug"}
			if err := worker.SetSignedControl(context.Background(), kv, worker.KeysForTests(), worker.PauseKey(target), pause); err != nil {
				t.Fatal(err)
			}
			seed := readFixture(t, "ispm-unused-admin.json")
			for i := range 3 {
				h.publish(event.SubjectISPM, withID(t, seed, fmt.Sprintf("evt-paused-%d", i)))
			}
			// Intake goes on: the jobs are stored, then they wait.
			testwait.Until(t, "jobs stored", func() bool { return h.dispatchBacklog() == 3 })
			time.Sleep(time.Second) // an observation window: nothing may reach the flow during it
			if n := h.sim.Stats("suspend-okta-account").Received; n != 0 {
				t.Fatalf("a paused flow received %d calls", n)
			}
			if err := worker.SetControl(context.Background(), kv, worker.PauseKey(target), nil); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				h.waitStatus(fmt.Sprintf("evt-paused-%d", i), status.Succeeded, "suspend-okta-account")
			}
			if st := h.sim.Stats("suspend-okta-account"); st.Executed != 3 {
				t.Errorf("after resume the flow ran %d times for 3 events", st.Executed)
			}
		})
	}
}

func TestDryRunRecordsTheCallWithoutMakingIt(t *testing.T) {
	t.Parallel()
	h := start(t, options{workerConfig: func(c *worker.Config) {
		for i := range c.Flows {
			if c.Flows[i].Endpoint.Name == "suspend-okta-account" {
				c.Flows[i].DryRun = true
			}
		}
	}})
	h.publish(event.SubjectISPM, readFixture(t, "ispm-unused-admin.json"))
	rec := h.waitStatus("f73a7741-6980-4d44-b0bf-13a2fa7ac556", status.DryRun, "suspend-okta-account")
	if !rec.DryRun || rec.Inputs["issueTitle"] != "Unused Admin Account" || rec.Inputs["entityDisplayName"] != "john.smith@okta.com" || rec.IdempotencyKey == "" {
		t.Errorf("dry-run status = %+v; want the would-be inputs and idempotency key", rec)
	}
	if n := h.sim.Stats("suspend-okta-account").Received; n != 0 {
		t.Errorf("a dry-run flow received %d calls", n)
	}

}

// An operator's dry-run switch, set before the worker starts, is in force from its first event.
func TestDryRunSwitchIsSeenBeforeTheFirstEvent(t *testing.T) {
	t.Parallel()
	h := start(t, options{before: func(b *broker.Broker) {
		kv, err := b.KeyValue(context.Background(), broker.KVConfig{Bucket: worker.ControlsBucket, History: 1, Replicas: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := worker.SetSignedControl(context.Background(), kv, worker.KeysForTests(), worker.DryRunKey("clear-sessions"), &worker.Control{By: "t", At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}})
	h.publish(event.SubjectITP, readFixture(t, "itp-high-risk.json"))
	h.waitStatus("9f5b2c1e-4d7a-4b8e-9a31-2f0c6d8e7b14", status.DryRun, "clear-sessions")
	if n := h.sim.Stats("clear-sessions").Received; n != 0 {
		t.Errorf("clear-sessions received %d calls in dry-run", n)
	}
}

func TestBlastRadiusCapHoldsTheExcess(t *testing.T) {
	t.Parallel()
	const capN, window = 2, 3 * time.Second
	h := start(t, options{workerConfig: func(c *worker.Config) {
		for i := range c.Flows {
			c.Flows[i].BlastMax, c.Flows[i].BlastWindow = capN, window
		}
	}})
	seed := readFixture(t, "ispm-unused-admin.json")
	const n = 5
	for i := range n {
		h.publish(event.SubjectISPM, withID(t, seed, fmt.Sprintf("evt-blast-%d", i)))
	}
	held := h.waitStatus("", status.Held, "suspend-okta-account")
	if !strings.Contains(held.Why, "blast-radius cap") || held.Delay <= 0 {
		t.Errorf("held status = %+v; want the cap named and a delay", held)
	}
	for i := range n {
		h.waitStatus(fmt.Sprintf("evt-blast-%d", i), status.Succeeded, "suspend-okta-account")
	}
	var at []time.Time
	for _, inv := range h.sim.Invocations("suspend-okta-account") {
		at = append(at, inv.At)
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	if len(at) != n {
		t.Fatalf("%d calls for %d events", len(at), n)
	}
	for i := range at {
		in := 0
		for j := i; j < len(at) && at[j].Sub(at[i]) < window; j++ {
			in++
		}
		if in > capN {
			t.Fatalf("%d calls within %s from %v; the cap is %d", in, window, at[i], capN)
		}
	}
}
