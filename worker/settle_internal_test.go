package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/status"
)

// The settle table: ack or terminate only what is recorded; everything else comes back.
func TestSettleTable(t *testing.T) {
	t.Parallel()
	const backoff = 7 * time.Second
	dl := DeadLetter(status.ReasonNoRoute, errors.New("no rule"))
	tests := []struct {
		name string
		res  Result
		want settlement
	}{
		{"recorded success is acked", Result{Recorded: true}, settlement{action: settleAck}},
		{"recorded dead letter is terminated", Result{Err: dl, Recorded: true}, settlement{action: settleTerm, reason: "no_route"}},
		{"unrecorded success is handed back", Result{}, settlement{action: settleNak, delay: backoff}},
		{"unrecorded dead letter is handed back", Result{Err: dl}, settlement{action: settleNak, delay: backoff}},
		{"retry with a delay", Result{Err: Retry(3*time.Second, "429", nil)}, settlement{action: settleNak, delay: 3 * time.Second}},
		{"recorded retry with a delay", Result{Err: Retry(3*time.Second, "503", nil), Recorded: true}, settlement{action: settleNak, delay: 3 * time.Second}},
		{"retry leaving the delay to the runner", Result{Err: Retry(0, "x", errors.New("x"))}, settlement{action: settleNak, delay: backoff}},
		{"other error", Result{Err: errors.New("boom")}, settlement{action: settleNak, delay: backoff}},
		{"shutdown comes back at once", Result{Err: Retry(time.Minute, "shutting down", context.Canceled)}, settlement{action: settleNak}},
		{"shutdown cause comes back at once", Result{Err: fmt.Errorf("x: %w", errShutdown)}, settlement{action: settleNak}},
	}
	for _, tt := range tests {
		if got := decideSettlement(tt.res, backoff); got != tt.want {
			t.Errorf("%s: settlement = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// The runner settles a message as the table says.
func TestRunnerSettlesByTheTable(t *testing.T) {
	t.Parallel()
	w := fakeWorker(t, newFakeBroker(), nil)
	r := w.newRunner("intake", nil, 1, 10, nil)
	for _, tt := range []struct {
		res  Result
		want string
	}{
		{Result{Recorded: true}, "ack"},
		{Result{}, "nak"},
		{Result{Err: DeadLetter(status.ReasonInvalidJSON, nil), Recorded: true}, "term"},
		{Result{Err: DeadLetter(status.ReasonInvalidJSON, nil)}, "nak"},
	} {
		m := newFakeMsg("remediation.events.ispm", nil, 1, 1)
		r.settle(&Delivery{Msg: m, Delivered: 1}, tt.res)
		if got := m.outcome(); got != tt.want {
			t.Errorf("result %+v settled as %q, want %q", tt.res, got, tt.want)
		}
	}
}

func TestConfigValidationNamesEveryBadField(t *testing.T) {
	t.Parallel()
	good := configForTests()
	good.Broker, good.Validator, good.Router = newFakeBroker(), nopValidator{}, nopRouter{}
	good.Invoker = invokerFunc(nil)
	good.Flows = []Flow{{RateLimit: 1, Concurrency: 1, Breaker: breakerForTests()}}
	good.Flows[0].Endpoint.Name = "f"
	if _, err := New(good); err != nil {
		t.Fatalf("the test configuration is refused: %v", err)
	}
	tests := []struct {
		field  string
		mutate func(*Config)
	}{
		{"Broker", func(c *Config) { c.Broker = nil }},
		{"IntakeConcurrency", func(c *Config) { c.IntakeConcurrency = -1 }},
		{"IntakeConcurrency", func(c *Config) { c.IntakeConcurrency = 0 }},
		{"MaxAttempts", func(c *Config) { c.MaxAttempts = 0 }},
		{"QuickRetries", func(c *Config) { c.QuickRetries = -1 }},
		{"QuickRetryDelay", func(c *Config) { c.QuickRetryDelay = 0 }},
		{"RetryBaseDelay", func(c *Config) { c.RetryBaseDelay = 0 }},
		{"RetryMaxDelay", func(c *Config) { c.RetryMaxDelay = c.RetryBaseDelay / 2 }},
		{"ShutdownTimeout", func(c *Config) { c.ShutdownTimeout = 0 }},
		{"AckWait", func(c *Config) { c.AckWait = 100 * time.Millisecond }},
		{"IntakeMaxDeliver", func(c *Config) { c.IntakeMaxDeliver = 0 }},
		{"DispatchMaxDeliver", func(c *Config) { c.DispatchMaxDeliver = c.MaxAttempts - 1 }},
		{"MaxEventBytes", func(c *Config) { c.MaxEventBytes = 0 }},
		{"JobRetention", func(c *Config) { c.JobRetention = -time.Second }},
		{"Replicas", func(c *Config) { c.Replicas = 0 }},
		{"Unrouted", func(c *Config) { c.Unrouted = "" }},
		{"Unrouted", func(c *Config) { c.Unrouted = "drop" }},
		{"Flows[f].RateLimit", func(c *Config) { c.Flows[0].RateLimit = 0 }},
		{"Flows[f].Concurrency", func(c *Config) { c.Flows[0].Concurrency = -4 }},
		{"Flows[f].BlastWindow", func(c *Config) { c.Flows[0].BlastMax = 3 }},
		{"Flows[f].Breaker", func(c *Config) { c.Flows[0].Breaker.Cooldown = 0 }},
		{"Flows[f].Breaker", func(c *Config) { c.Flows[0].Breaker.FailureRatio = 0.5 }},
		{"Flows[0].Endpoint.Name", func(c *Config) { c.Flows[0].Endpoint.Name = "" }},
	}
	for _, tt := range tests {
		c := good
		c.Flows = append([]Flow(nil), good.Flows...)
		tt.mutate(&c)
		_, err := New(c)
		if err == nil || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s out of range: New error = %v, want one naming %s", tt.field, err, tt.field)
		}
	}
	// "None" is an explicit, valid value.
	c := good
	c.QuickRetries, c.QuickRetryDelay, c.JobRetention = 0, 0, 0
	if _, err := New(c); err != nil {
		t.Errorf("QuickRetries 0 (none) and JobRetention 0 (forever) refused: %v", err)
	}
}
