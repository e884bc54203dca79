package cli_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/remediator/remediator/service/servicetest"
)

// TestCommandsFindTheLocalCredentials follows the quick tour: `run` with the default data
// directory, then `publish` and `status` with nothing but the URL (here a random port) find
// the credentials run generated in ./data/nats/credentials.
func TestCommandsFindTheLocalCredentials(t *testing.T) {
	t.Setenv("REMEDIATOR_FLOWSIM_TOKEN", "cli-natsauth-token")
	seed, err := filepath.Abs("../examples/ispm-unused-admin.json")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	svc := servicetest.Start(t, servicetest.Config(t, "./data/nats"), nil)
	url := svc.Addrs.NATS

	code, out, errOut := run(t, context.Background(), "publish", "--nats-url", url, seed)
	if code != 0 || !strings.Contains(out, "sequence 1") {
		t.Fatalf("publish with the default data directory: code %d, out %q, err %q", code, out, errOut)
	}
	code, out, errOut = run(t, context.Background(), "status", "f73a7741-6980-4d44-b0bf-13a2fa7ac556", "--nats-url", url)
	if code != 0 && !strings.Contains(errOut, "no status") {
		t.Fatalf("status with the default data directory: code %d, out %q, err %q", code, out, errOut)
	}
	if strings.Contains(errOut, "rejected the credentials") {
		t.Fatalf("status was refused: %s", errOut)
	}

	// Another data directory holds no credentials: the error says where it looked and how to
	// point at the right one.
	code, _, errOut = run(t, context.Background(), "dlq", "list", "--nats-url", url, "--data-dir", t.TempDir())
	if code != 1 || !strings.Contains(errOut, "rejected the credentials") || !strings.Contains(errOut, "--data-dir") || !strings.Contains(errOut, "operator.nk") {
		t.Errorf("dlq list with a data directory without credentials: code %d, stderr %q", code, errOut)
	}
}
