package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/service/servicetest"
	"github.com/remediator/remediator/status"
)

func TestPauseAndResumeAFlowFromTheCommandLine(t *testing.T) {
	t.Parallel()
	svc := servicetest.Start(t, servicetest.Config(t, t.TempDir()), nil)
	url := svc.Addrs.NATS
	b := connectTo(t, url)

	code, out, errOut := cmd(t, url, "flows", "pause", seedFlow, "--reason", "detector misfiring", "--as", "oncall")
	if code != 0 || !strings.Contains(out, "paused flow "+seedFlow) {
		t.Fatalf("pause: exit %d, %q %q", code, out, errOut)
	}
	// The switch in force is shown, with who set it and why, by stats (text and JSON).
	if code, out, errOut := cmd(t, url, "stats"); code != 0 || !strings.Contains(out, "pause flow "+seedFlow+": set by oncall") || !strings.Contains(out, "detector misfiring") {
		t.Errorf("stats after pause: exit %d, %q %q; want the pause, who set it and why", code, out, errOut)
	}
	if code, out, errOut := cmd(t, url, "stats", "--json"); code != 0 || !strings.Contains(out, `"switches": [`) || !strings.Contains(out, `"flow": "`+seedFlow+`",
      "by": "oncall"`) {
		t.Errorf("stats --json after pause: exit %d, %q %q; want the switch", code, out, errOut)
	}
	if code, _, errOut := cmd(t, url, "publish", seedPath); code != 0 {
		t.Fatalf("publish: %s", errOut)
	}
	testwait.Until(t, "the job stored", func() bool { return streamInfo(t, b, broker.StreamDispatch).Messages == 1 })
	time.Sleep(time.Second) // an observation window: a paused flow must get no call in it
	if n := simFlow(t, svc, seedFlow).Stats.Received; n != 0 {
		t.Fatalf("a paused flow received %d calls", n)
	}

	if code, _, errOut := cmd(t, url, "flows", "resume", seedFlow, "--as", "oncall"); code != 0 {
		t.Fatalf("resume: %s", errOut)
	}
	testwait.Until(t, "the event succeeds after resume", func() bool { return simFlow(t, svc, seedFlow).Stats.Succeeded == 1 })

	var actions []string
	err := b.Scan(context.Background(), broker.StreamAudit, "remediation.audit.flows.>", 0, time.Time{}, func(m *broker.StoredMessage) bool {
		var a struct{ Action, Flow, User, Reason string }
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Error(err)
		}
		if a.Flow != seedFlow || a.User != "oncall" {
			t.Errorf("audit record %+v", a)
		}
		actions = append(actions, a.Action)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(actions, ",") != "flows.pause,flows.resume" {
		t.Errorf("audit actions = %v", actions)
	}
}

func TestDryRunFromTheCommandLine(t *testing.T) {
	t.Parallel()
	svc := servicetest.Start(t, servicetest.Config(t, t.TempDir()), nil)
	url := svc.Addrs.NATS
	if code, out, errOut := cmd(t, url, "flows", "dry-run", "--all"); code != 0 || !strings.Contains(out, "dry-run on for every flow") {
		t.Fatalf("dry-run: exit %d %q %q", code, out, errOut)
	}
	if code, _, errOut := cmd(t, url, "publish", seedPath); code != 0 {
		t.Fatalf("publish: %s", errOut)
	}
	b := connectTo(t, url)
	testwait.Until(t, "a dry_run status", func() bool {
		return streamInfo(t, b, broker.StreamStatus).Messages > 0 && dryRunStatuses(t, b) == 1
	})
	if n := simFlow(t, svc, seedFlow).Stats.Received; n != 0 {
		t.Errorf("a dry-run flow received %d calls", n)
	}
	if code, _, _ := cmd(t, url, "flows", "pause"); code != 2 {
		t.Errorf("pause with neither a flow nor --all: exit %d, want 2", code)
	}
}

func dryRunStatuses(t *testing.T, b *broker.Broker) int {
	t.Helper()
	n := 0
	err := b.Scan(context.Background(), broker.StreamStatus, status.DryRun.Subject(), 0, time.Time{}, func(m *broker.StoredMessage) bool {
		n++
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
