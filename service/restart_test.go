package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/ops"
	"github.com/remediator/remediator/service"
	"github.com/remediator/remediator/service/servicetest"
	"github.com/remediator/remediator/status"
)

// TestJobsWaitingSurviveANATSServerRestart: jobs waiting in REMEDIATION_DISPATCH while the
// NATS server restarts (with its store) are each dispatched exactly once afterwards, whether
// the dispatch consumers keep their state in the server's memory (the default: the restart
// drops them, and the worker creates them again) or in files.
func TestJobsWaitingSurviveANATSServerRestart(t *testing.T) {
	for _, state := range []string{"memory", "file"} {
		t.Run(state, func(t *testing.T) {
			t.Parallel()
			jobsSurviveRestart(t, state)
		})
	}
}

func jobsSurviveRestart(t *testing.T, consumerState string) {
	ctx := context.Background()
	natsDir := t.TempDir()
	srv, err := broker.StartEmbedded(ctx, broker.EmbeddedConfig{Host: "127.0.0.1", Port: -1, StoreDir: natsDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	u, err := url.Parse(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())

	cfg := servicetest.Config(t, filepath.Join(t.TempDir(), "unused"))
	cfg.NATS.URL = srv.ClientURL()
	servicetest.WithRecordKey(t, cfg)
	cfg.Simulator.Enabled = false
	cfg.Worker.DispatchConsumerState = consumerState
	const token = "restart-sim-token"
	var simFlows []flowsim.Flow
	for _, f := range cfg.Flows {
		simFlows = append(simFlows, flowsim.Flow{Alias: f.Name, Token: token, RateLimit: 1000})
	}
	sim, err := flowsim.New(flowsim.Config{Flows: simFlows})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	t.Cleanup(sim.Close)
	for i := range cfg.Flows {
		cfg.Flows[i].URL = hs.URL + "/api/flo/" + cfg.Flows[i].Name + "/invoke"
	}
	env := func(k string) (string, bool) {
		if k == cfg.Simulator.TokenEnv {
			return token, true
		}
		return os.LookupEnv(k)
	}
	svc := servicetest.StartWith(t, cfg, service.Options{LookupEnv: env})
	b := svc.Connect(t)
	keys, err := service.RecordKeys(cfg, env, false)
	if err != nil {
		t.Fatal(err)
	}
	o := ops.New(b, ops.Options{Keys: keys})
	pause := ops.Switch{Kind: ops.Pause, Flow: ops.AllFlows, On: true, Reason: "test: jobs wait through a restart"}
	by := ops.Operator{User: "test"}
	if err := o.SetSwitch(ctx, pause, by); err != nil {
		t.Fatal(err)
	}

	// The unused-admin example runs one flow: n jobs wait, one per event.
	const n = 12
	var doc map[string]any
	if err := json.Unmarshal(readSeed(t), &doc); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		publishAs(t, b, doc, fmt.Sprintf("restart-%s-%02d", consumerState, i), 1)
	}
	testwait.Until(t, fmt.Sprintf("%d jobs waiting", n), func() bool {
		info, err := b.StreamInfo(ctx, broker.StreamDispatch, false)
		return err == nil && info.Messages == n
	})

	// The server restarts with its store, on the same port.
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err = broker.StartEmbedded(ctx, broker.EmbeddedConfig{Host: "127.0.0.1", Port: port, StoreDir: natsDir}, nil)
	if err != nil {
		t.Fatalf("restart NATS on port %d (another process may have taken it): %v", port, err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })

	pause.On = false
	testwait.UntilNil(t, "the flows resumed (the client reconnected)", func() error { return o.SetSwitch(ctx, pause, by) })
	testwait.Until(t, fmt.Sprintf("%d successes", n), func() bool { return countStatus(t, b, status.Succeeded) >= n },
		testwait.Timeout(2*time.Minute), testwait.WakeOn(servicetest.StreamWake(t, b, broker.StreamStatus, broker.SubjectsStatus)))

	if got := countStatus(t, b, status.Succeeded); got != n {
		t.Errorf("%d successes, want exactly %d", got, n)
	}
	keysRun := map[string]int{}
	for _, f := range cfg.Flows {
		for _, inv := range sim.Invocations(f.Name) {
			keysRun[inv.IdempotencyKey]++
		}
		if st := sim.Stats(f.Name); st.MaxExecutionsPerKey > 1 {
			t.Errorf("flow %s: an idempotency key ran %d times", f.Name, st.MaxExecutionsPerKey)
		}
	}
	if len(keysRun) != n {
		t.Errorf("%d idempotency keys invoked, want %d (one per event)", len(keysRun), n)
	}
}
