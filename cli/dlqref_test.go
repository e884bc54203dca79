package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
	"github.com/remediator/remediator/cli"
	"github.com/remediator/remediator/seal"
	"github.com/remediator/remediator/service"
	"github.com/remediator/remediator/status"
)

// provisioned starts a JetStream with remediator's streams and no service: dead letters are
// written by the test itself, signed with the record key of a data directory of the test's,
// which the commands are pointed at (as after a local `run`).
func provisioned(t *testing.T) (string, *broker.Broker) {
	t.Helper()
	srv := brokertest.Server(t)
	b := connectTo(t, srv.ClientURL())
	streams := brokertest.Streams()
	if err := b.Provision(context.Background(), streams); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keys, err := seal.EnsureFile(filepath.Join(dir, service.RecordKeysFileName))
	if err != nil {
		t.Fatal(err)
	}
	provisionedDirs.Store(srv.ClientURL(), dir)
	provisionedKeys.Store(b, keys)
	t.Cleanup(func() { provisionedDirs.Delete(srv.ClientURL()); provisionedKeys.Delete(b) })
	return srv.ClientURL(), b
}

// The data directories and record keys of the servers provisioned started.
var provisionedDirs, provisionedKeys sync.Map

func putLetter(t *testing.T, b *broker.Broker, rec status.DeadLetter) uint64 {
	t.Helper()
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	h := map[string][]string{}
	if k, ok := provisionedKeys.Load(b); ok { // as the worker signs it
		h[seal.Header] = []string{k.(*seal.Keyring).SignRecord(rec.Reason.Subject(), data)}
	}
	ack, err := b.Publish(context.Background(), rec.Reason.Subject(), data, broker.PublishOptions{Header: h})
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// A dead letter that holds only a reference to its event (too large to copy) is shown and
// replayed from REMEDIATION_EVENTS; the dry run shows the principal and headers that would be
// published; once the event is gone, show and replay say so.
func TestDeadLetterByReference(t *testing.T) {
	t.Parallel()
	natsURL, b := provisioned(t)
	payload := `{"eventId":"big-1","issueTitle":"Unused Admin Account"}`
	ev, err := b.Publish(context.Background(), "remediation.events.ispm", []byte(payload), broker.PublishOptions{
		MsgID: "big-1", Header: map[string][]string{"Remediator-Principal": {"00u1admin"}, "X-Api-Token": {"s3cret"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	seq := putLetter(t, b, status.DeadLetter{Reason: status.ReasonPermanentFailure, Subject: "remediation.events.ispm", EventID: "big-1",
		Flow: seedFlow, Error: "event of 300000 bytes is over limits.maxEventBytes 262144", EventSequence: ev.Sequence})
	s := fmt.Sprint(seq)

	code, out, errOut := cmd(t, natsURL, "dlq", "show", s)
	for _, want := range []string{
		fmt.Sprintf("event sequence    %d in REMEDIATION_EVENTS", ev.Sequence),
		fmt.Sprintf("Original headers (event %d in REMEDIATION_EVENTS):", ev.Sequence),
		"Remediator-Principal: 00u1admin", "X-Api-Token: [REDACTED]",
		fmt.Sprintf("Loaded from REMEDIATION_EVENTS sequence %d", ev.Sequence), `"issueTitle": "Unused Admin Account"`,
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("dlq show (exit %d, %s) lacks %q:\n%s", code, errOut, want, out)
		}
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("dlq show prints a secret header:\n%s", out)
	}

	code, out, _ = cmd(t, natsURL, "dlq", "show", s, "--json")
	var shown struct {
		Event struct {
			Sequence uint64 `json:"sequence"`
			Payload  []byte `json:"payload"`
		} `json:"event"`
	}
	if err := json.Unmarshal([]byte(out), &shown); code != 0 || err != nil || shown.Event.Sequence != ev.Sequence || string(shown.Event.Payload) != payload {
		t.Errorf("dlq show --json: exit %d, %v: %s; want the event loaded from REMEDIATION_EVENTS", code, err, out)
	}

	code, out, errOut = cmd(t, natsURL, "dlq", "replay", s, "--dry-run", "--as", "alice")
	for _, want := range []string{
		"dry run: would replay 1 dead letter as 1 event, at most 200/s, as alice",
		fmt.Sprintf("event of dead letter %s to remediation.events.ispm (%d bytes loaded from REMEDIATION_EVENTS sequence %d):", s, len(payload), ev.Sequence),
		"principal: 00u1admin (header Remediator-Principal)",
		"Remediator-Replay-Of: " + s, "Remediator-Replayed-By: alice", "X-Api-Token: [REDACTED]",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("dlq replay --dry-run (exit %d, %s) lacks %q:\n%s", code, errOut, want, out)
		}
	}
	code, out, _ = cmd(t, natsURL, "dlq", "replay", s, "--dry-run", "--json")
	var plan struct {
		Plan []struct {
			Principal     string              `json:"principal"`
			Headers       map[string][]string `json:"headers"`
			EventSequence uint64              `json:"eventSequence"`
		} `json:"plan"`
	}
	if err := json.Unmarshal([]byte(out), &plan); code != 0 || err != nil || len(plan.Plan) != 1 || plan.Plan[0].Principal != "00u1admin" ||
		plan.Plan[0].EventSequence != ev.Sequence || plan.Plan[0].Headers["Remediator-Principal"][0] != "00u1admin" {
		t.Errorf("dlq replay --dry-run --json: exit %d, %v: %s", code, err, out)
	}

	// retention removes the event
	if err := b.DeleteMessage(context.Background(), broker.StreamEvents, ev.Sequence); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = cmd(t, natsURL, "dlq", "show", s)
	if want := fmt.Sprintf("holds only a reference to event %d in REMEDIATION_EVENTS, and that event is gone", ev.Sequence); code != 0 || !strings.Contains(out, want) {
		t.Errorf("dlq show of a letter whose event is gone: exit %d, %s\n%s\nwant %q", code, errOut, out, want)
	}
	code, out, _ = cmd(t, natsURL, "dlq", "show", s, "--json")
	if code != 0 || !strings.Contains(out, `"eventError": "dead letter `+s+` holds only a reference`) {
		t.Errorf("dlq show --json of a letter whose event is gone: exit %d: %s; want eventError", code, out)
	}
	code, out, errOut = cmd(t, natsURL, "dlq", "replay", s, "--dry-run")
	if want := fmt.Sprintf("skipped %s: it holds only a reference to event %d in REMEDIATION_EVENTS, and that event is gone", s, ev.Sequence); code != 0 || !strings.Contains(out, want) {
		t.Errorf("dlq replay --dry-run: exit %d, %s\n%s\nwant %q", code, errOut, out, want)
	}
	code, out, _ = cmd(t, natsURL, "dlq", "replay", s, "--yes")
	if code != 0 || !strings.Contains(out, "nothing replayed: 1 dead letter skipped") {
		t.Errorf("dlq replay of a letter whose event is gone: exit %d: %s", code, out)
	}
}

// Ids, errors and header values come from events, that is from outside: printed, their
// control characters are escaped so that they cannot drive the operator's terminal.
func TestPrintedFieldsCannotDriveTheTerminal(t *testing.T) {
	t.Parallel()
	natsURL, b := provisioned(t)
	seq := putLetter(t, b, status.DeadLetter{Reason: status.ReasonSchemaViolation, Subject: "remediation.events.ispm",
		EventID: "evil\x1b]0;pwned\x07", Flow: "f\u202eow", Error: "bad\x1b[2J field", Payload: []byte(`{"eventId":"evil\u001b"}`),
		Headers: map[string][]string{"X-Note": {"clear\x1b[H"}}})
	for _, args := range [][]string{{"dlq", "list"}, {"dlq", "show", fmt.Sprint(seq)}, {"dlq", "replay", "--all", "--dry-run"}, {"status", "evil\x1b]0;pwned\x07"}} {
		code, out, errOut := cmd(t, natsURL, args...)
		if code != 0 {
			t.Errorf("%q: exit %d: %s", args, code, errOut)
		}
		if strings.ContainsAny(out+errOut, "\x1b\x07\u202e") {
			t.Errorf("%q prints raw control characters:\n%q", args, out)
		}
		if !strings.Contains(out, `evil\x1b]0;pwned\a`) {
			t.Errorf("%q does not show the escaped event id:\n%s", args, out)
		}
	}
}

// Every client command takes its NATS settings from --config unless the flags or the
// environment say otherwise: flag > environment > file > built-in default.
func TestClientCommandsUseTheConfigFilesNATS(t *testing.T) {
	// Not parallel: it sets the environment.
	t.Setenv("NATS_URL", "")
	t.Setenv("NATS_CREDS", "")
	t.Setenv("REMEDIATOR_CONFIG", "")
	natsURL, b := provisioned(t)
	// A dead letter only this server holds, so that reaching another server (a remediator on
	// the default port) cannot pass for reaching this one.
	putLetter(t, b, status.DeadLetter{Reason: status.ReasonNoRoute, Subject: "remediation.events.ispm", EventID: "only-on-the-configured-server"})
	dir := t.TempDir()
	writeConfig := func(name, yaml string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	byURL := writeConfig("url.yaml", fmt.Sprintf("nats:\n  url: %s\n", natsURL))
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	byEmbedded := writeConfig("embedded.yaml", fmt.Sprintf("nats:\n  embedded:\n    port: %s\n", u.Port()))
	const unreachable = "nats://127.0.0.1:1"

	main := func(args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		code := cli.MainWithStdin(ctx, args, strings.NewReader(""), false, &out, &errb)
		return code, out.String(), errb.String()
	}
	reached := func(name string, args ...string) {
		t.Helper()
		code, out, errOut := main(args...)
		if code != 0 || !strings.Contains(out, "only-on-the-configured-server") {
			t.Errorf("%s: %q: exit %d, %s\n%s; want the configured server's dead letter", name, args, code, errOut, out)
		}
	}
	refused := func(name, from string, args ...string) {
		t.Helper()
		code, _, errOut := main(args...)
		if code != 1 || !strings.Contains(errOut, "cannot reach NATS at "+unreachable) || !strings.Contains(errOut, "(the URL is from "+from+")") {
			t.Errorf("%s: %q: exit %d, %s; want it to try %s, from %s", name, args, code, errOut, unreachable, from)
		}
	}

	reached("file's nats.url", "dlq", "list", "--config", byURL)
	reached("file's embedded server", "dlq", "list", "--config", byEmbedded)
	badFile := writeConfig("bad.yaml", "nats:\n  url: "+unreachable+"\n")
	refused("file", "nats.url of "+badFile, "dlq", "list", "--config", badFile)
	refused("flag over file", "--nats-url", "dlq", "list", "--config", byURL, "--nats-url", unreachable)
	reached("file over default, for status too", "status", "only-on-the-configured-server", "--config", byURL)
	t.Setenv("REMEDIATOR_CONFIG", byURL)
	reached("$REMEDIATOR_CONFIG", "dlq", "list")
	t.Setenv("NATS_URL", unreachable)
	refused("environment over file", "NATS_URL", "dlq", "list", "--config", byURL)
	t.Setenv("NATS_URL", "nats://127.0.0.1:2")
	refused("flag over environment", "--nats-url", "dlq", "list", "--nats-url", unreachable)
}

func TestHelpNamesValues(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := cli.MainWithStdin(context.Background(), []string{"dlq", "list", "--help"}, strings.NewReader(""), false, &out, &errb); code != 0 {
		t.Fatalf("--help: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"--nats-url URL ", "--config FILE ", "--creds FILE ", "--reason REASON ", "--since TIME "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "--nats-url run") {
		t.Errorf("help names the --nats-url value \"run\":\n%s", out.String())
	}
}
