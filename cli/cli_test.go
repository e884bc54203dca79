package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/cli"
	"github.com/remediator/remediator/service/servicetest"
)

func run(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestPublishAndTailAgainstARunningService(t *testing.T) {
	t.Setenv("REMEDIATOR_FLOWSIM_TOKEN", "cli-test-token")
	svc := servicetest.Start(t, servicetest.Config(t, t.TempDir()), nil)
	url := svc.Addrs.NATS

	code, out, errOut := run(t, context.Background(), "publish", "--nats-url", url, "--data-dir", svc.DataDir(), "../examples/ispm-unused-admin.json")
	if code != 0 || !strings.Contains(out, "remediation.events.ispm") || !strings.Contains(out, "sequence 1") || !strings.Contains(out, "trace id ") {
		t.Fatalf("publish: code %d, out %q, err %q", code, out, errOut)
	}
	code, out, _ = run(t, context.Background(), "publish", "--nats-url", url, "--data-dir", svc.DataDir(), "../examples/ispm-unused-admin.json")
	if code != 0 || !strings.Contains(out, "duplicate") {
		t.Errorf("publishing the same event again should say it is a duplicate: code %d, %q", code, out)
	}

	// Follow the status stream until the success shows up.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var tailOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"status", "tail", "--nats-url", url, "--data-dir", svc.DataDir(), "--last", "5"}, &syncWriter{w: &tailOut, onWrite: func(s string) {
			if strings.Contains(s, "succeeded") {
				cancel()
			}
		}}, os.Stderr)
	}()
	if code := <-done; code != 0 {
		t.Fatalf("status tail exited %d", code)
	}
	if !strings.Contains(tailOut.String(), "succeeded  f73a7741-6980-4d44-b0bf-13a2fa7ac556") || !strings.Contains(tailOut.String(), "suspend-okta-account") {
		t.Errorf("status tail printed %q; want the succeeded line for the seed", tailOut.String())
	}
}

func TestPublishErrorsSayWhatToDo(t *testing.T) {
	t.Parallel()
	code, _, errOut := run(t, context.Background(), "publish", "--nats-url", "nats://127.0.0.1:1", "../examples/ispm-unused-admin.json")
	if code != 1 || !strings.Contains(errOut, "127.0.0.1:1") || !strings.Contains(errOut, "--nats-url") {
		t.Errorf("unreachable NATS: code %d, stderr %q; want the URL and a hint", code, errOut)
	}
	code, _, errOut = run(t, context.Background(), "publish", "--subject", "remediation.events.nope", "../examples/ispm-unused-admin.json")
	if code != 2 || !strings.Contains(errOut, "remediation.events.ispm") {
		t.Errorf("bad subject: code %d, stderr %q", code, errOut)
	}
}

func TestSchemaValidateUsesTheWorkersMessages(t *testing.T) {
	t.Parallel()
	code, out, _ := run(t, context.Background(), "schema", "validate",
		"../examples/ispm-unused-admin.json", "../examples/itp-high-risk.json", "../examples/invalid-missing-issueid.json", "../examples/not-json.txt")
	if code != 1 {
		t.Errorf("exit code %d, want 1 when a file is invalid", code)
	}
	for _, want := range []string{
		"ispm-unused-admin.json: valid ispm-issue-ondemand",
		"itp-high-risk.json: valid entity-risk-trigger",
		"invalid-missing-issueid.json: INVALID: ispm-issue-ondemand v1: /issueId: missing required property (required)",
		"not-json.txt: INVALID: invalid JSON at byte",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunRejectsAnInvalidConfigNamingFileRuleAndProblem(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "remediator.yaml")
	cfg := `flows:
  - name: suspend
    url: https://acme.workflows.okta.com/api/flo/abc/invoke
    clientToken: {env: TOKEN}
entityRiskPolicy:
  - name: block-all
    priority: 3
    conditions:
      detectionTypes: {include: [BRUTE_FORCE_ATTACK], exclude: [SUSPICIOUS_APP_ACCESS]}
    flow: suspend
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, context.Background(), "run", "--config", path)
	if code != 1 || !strings.Contains(errOut, path) || !strings.Contains(errOut, "block-all") || !strings.Contains(errOut, "both include and exclude") {
		t.Errorf("code %d, stderr %q; want the file, the rule and the problem", code, errOut)
	}
}

// syncWriter calls onWrite after each write; the tail command writes from one goroutine.
type syncWriter struct {
	w       *bytes.Buffer
	onWrite func(string)
}

func (s *syncWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.onWrite(s.w.String())
	return n, err
}
