package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/bench"
	"github.com/remediator/remediator/cli"
)

// TestBenchReportsEveryRow runs `remediator bench --json` with tiny counts and prints the
// report it gave as the command's table: every row must be there. It checks the command's
// shape, not the speed (package bench checks the figures' accounting).
func TestBenchReportsEveryRow(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	profile := filepath.Join(t.TempDir(), "cpu.out")
	code, out, errOut := run(t, ctx, "bench", "--json", "--log-level", "error", "--events", "60", "--flows", "2",
		"--flows-sweep", "2,3", "--replicas", "1", "--latency-events", "12", "--latency-rate", "200", "--idle-window", "50ms",
		"--backlog", "40", "--cpuprofile", profile)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output is not a report: %v\n%s", err, out)
	}
	if rep.Full.Events != 60 || rep.Full.Succeeded != 60 || len(rep.FlowsSweep) != 2 || len(rep.Replicas) != 1 || rep.Latency.Events != 12 ||
		rep.Backlog == nil || rep.Backlog.Jobs+rep.Backlog.Dispatched != 40 {
		t.Errorf("report does not follow the flags: %s", out)
	}
	var table bytes.Buffer
	if err := cli.PrintBench(&table, &rep); err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{"publish (async)", "consume + ack", "Fetch(1) + double ack", "plain pipeline",
		"remediator, 2 flows", "remediator, 3 flows", "high", "normal", "low", "backlog", "job/event", "ratios"} {
		if !strings.Contains(table.String(), row) {
			t.Errorf("no %q row in:\n%s", row, table.String())
		}
	}
	if fi, err := os.Stat(profile); err != nil || fi.Size() == 0 {
		t.Errorf("--cpuprofile wrote no profile: %v", err)
	}
}
