package service_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/service"
	"github.com/remediator/remediator/service/servicetest"
	"github.com/remediator/remediator/status"
)

// TestQuickTour follows the README: start with the built-in configuration, publish Okta's
// ISPM example, see it succeed and reach the simulated flow; then restart on the same data
// directory and find everything still there.
func TestQuickTour(t *testing.T) {
	t.Setenv("REMEDIATOR_FLOWSIM_TOKEN", "quick-tour-token")
	dir := t.TempDir()
	cfg := servicetest.Config(t, dir)
	svc := servicetest.Start(t, cfg, nil)

	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, "http://"+svc.Addrs.HTTP+path); code != 200 {
			t.Errorf("%s = %d %q, want 200", path, code, body)
		}
	}

	b := svc.Connect(t)
	seed, err := os.ReadFile("../examples/ispm-unused-admin.json")
	if err != nil {
		t.Fatal(err)
	}
	res, err := publish.New(b, nil).Publish(context.Background(), seed, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Subject != "remediation.events.ispm" || res.EventID != "f73a7741-6980-4d44-b0bf-13a2fa7ac556" {
		t.Errorf("publish result = %+v", res)
	}
	testwait.Until(t, "succeeded status", func() bool { return countStatus(t, b, status.Succeeded) == 1 },
		testwait.WakeOn(servicetest.StreamWake(t, b, broker.StreamStatus, broker.SubjectsStatus)))

	code, body := get(t, svc.Addrs.Simulator+"/_sim/flows/suspend-okta-account/invocations")
	if code != 200 || !strings.Contains(body, `"issueTitle":"Unused Admin Account"`) || !strings.Contains(body, `"entityDisplayName":"john.smith@okta.com"`) {
		t.Errorf("simulator invocations = %d %s; want the seed's fields", code, body)
	}
	if strings.Contains(body, "quick-tour-token") {
		t.Error("the simulator's invocation record shows the client token")
	}

	b.Close()
	if err := svc.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// Same data directory: the streams and their messages are still there.
	svc2 := servicetest.Start(t, servicetest.Config(t, dir), nil)
	b2 := svc2.Connect(t)
	info, err := b2.StreamInfo(context.Background(), broker.StreamEvents, false)
	if err != nil {
		t.Fatal(err)
	}
	if info.Messages != 1 {
		t.Errorf("after restart %s holds %d messages, want 1", broker.StreamEvents, info.Messages)
	}
	if n := countStatus(t, b2, status.Succeeded); n != 1 {
		t.Errorf("after restart %d succeeded statuses, want the 1 from before (and no second invocation)", n)
	}
}

func TestRunRefusesABusyPort(t *testing.T) {
	t.Setenv("REMEDIATOR_FLOWSIM_TOKEN", "busy-port-token")
	first := servicetest.Start(t, servicetest.Config(t, t.TempDir()), nil)
	cfg := servicetest.Config(t, t.TempDir())
	cfg.HTTP.Addr = first.Addrs.HTTP
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := service.RunOnce(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "http.addr") {
		t.Fatalf("second service on a busy HTTP port: err = %v; want an error naming http.addr", err)
	}
}

func countStatus(t *testing.T, b *broker.Broker, o status.Outcome) int {
	t.Helper()
	n := 0
	err := b.Scan(context.Background(), broker.StreamStatus, o.Subject(), 0, time.Time{}, func(m *broker.StoredMessage) bool {
		var r status.Record
		if json.Unmarshal(m.Data, &r) == nil && r.Outcome == o {
			n++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
