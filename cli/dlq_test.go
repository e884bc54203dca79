package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
	"github.com/remediator/remediator/cli"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/service/servicetest"
	"github.com/remediator/remediator/status"
)

const (
	seedPath    = "../examples/ispm-unused-admin.json"
	seedEventID = "f73a7741-6980-4d44-b0bf-13a2fa7ac556"
	seedFlow    = "suspend-okta-account" // the flow the seed is routed to, and its simulator alias
)

// natsFlags points the command line at url and, when url is a service started by servicetest,
// at its data directory, where the commands find its credentials as after a local `run`.
func natsFlags(url string) []string {
	flags := []string{"--nats-url", url}
	if svc := servicetest.ByNATSURL(url); svc != nil {
		flags = append(flags, "--data-dir", svc.DataDir())
	} else if dir, ok := provisionedDirs.Load(url); ok {
		flags = append(flags, "--data-dir", dir.(string))
	}
	return flags
}

// cmd runs the command line against svc's NATS with stdin not a terminal.
func cmd(t testing.TB, natsURL string, args ...string) (int, string, string) {
	t.Helper()
	return cmdStdin(t, natsURL, "", false, args...)
}

// cmdStdin runs the command line with stdin holding input, as a terminal or not.
func cmdStdin(t testing.TB, natsURL, input string, terminal bool, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := cli.MainWithStdin(ctx, append(args, natsFlags(natsURL)...), strings.NewReader(input), terminal, &out, &errb)
	return code, out.String(), errb.String()
}

func connectTo(t testing.TB, url string) *broker.Broker {
	t.Helper()
	if svc := servicetest.ByNATSURL(url); svc != nil {
		return svc.Connect(t) // authenticated, as the operator
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := broker.Connect(ctx, brokertest.ConnConfig(url), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func streamInfo(t testing.TB, b *broker.Broker, stream string) *broker.StreamInfo {
	t.Helper()
	info, err := b.StreamInfo(context.Background(), stream, true)
	if err != nil {
		t.Fatalf("StreamInfo(%s): %v", stream, err)
	}
	return info
}

// simCall calls the simulator's admin API and decodes the answer into out (if not nil).
func simCall(t testing.TB, method, url, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, data)
		}
	}
}

func setFaults(t testing.TB, svc *servicetest.Running, alias, faults string) {
	t.Helper()
	simCall(t, http.MethodPut, svc.Addrs.Simulator+"/_sim/flows/"+alias+"/faults", faults, nil)
}

func simFlow(t testing.TB, svc *servicetest.Running, alias string) flowsim.FlowInfo {
	t.Helper()
	var flows []flowsim.FlowInfo
	simCall(t, http.MethodGet, svc.Addrs.Simulator+"/_sim/flows", "", &flows)
	for _, f := range flows {
		if f.Alias == alias {
			return f
		}
	}
	t.Fatalf("the simulator has no flow %q", alias)
	return flowsim.FlowInfo{}
}

// listEntry is one line of `dlq list --json`.
type listEntry struct {
	Sequence uint64        `json:"sequence"`
	Reason   status.Reason `json:"reason"`
	EventID  string        `json:"eventId"`
	Flow     string        `json:"flow"`
	Error    string        `json:"error"`
	Attempts int           `json:"attempts"`
}

func dlqList(t *testing.T, url string, args ...string) []listEntry {
	t.Helper()
	code, out, errOut := cmd(t, url, append([]string{"dlq", "list", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("dlq list: exit %d: %s", code, errOut)
	}
	var list []listEntry
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var e listEntry
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("dlq list --json: %v in %q", err, out)
		}
		list = append(list, e)
	}
	return list
}

// waitDeadLetters polls `dlq list` until it shows n dead letters.
func waitDeadLetters(t *testing.T, url string, n int) []listEntry {
	t.Helper()
	var list []listEntry
	testwait.Until(t, fmt.Sprintf("%d dead letters", n), func() bool {
		list = dlqList(t, url)
		return len(list) >= n
	})
	if len(list) != n {
		t.Fatalf("%d dead letters, want %d: %+v", len(list), n, list)
	}
	return list
}

type auditRecord struct {
	Action    string   `json:"action"`
	ID        string   `json:"id"`
	User      string   `json:"user"`
	Selector  string   `json:"selector"`
	Total     int      `json:"total"`
	Part      int      `json:"part"`
	Parts     int      `json:"parts"`
	Count     int      `json:"count"`
	Sequences []uint64 `json:"sequences"`
	Events    []uint64 `json:"eventSequences"`
}

func auditRecords(t testing.TB, b *broker.Broker) []auditRecord {
	t.Helper()
	var out []auditRecord
	err := b.Scan(context.Background(), broker.StreamAudit, "", 0, time.Time{}, func(m *broker.StoredMessage) bool {
		var a auditRecord
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Errorf("audit record %d: %v", m.Sequence, err)
		}
		if want := "remediation.audit." + a.Action; m.Subject != want {
			t.Errorf("audit record %d is on %s, want %s", m.Sequence, m.Subject, want)
		}
		out = append(out, a)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func eventHistory(t *testing.T, url, eventID string) (statuses []status.Record, dead []listEntry) {
	t.Helper()
	code, out, errOut := cmd(t, url, "status", eventID, "--json")
	if code != 0 {
		t.Fatalf("status %s: exit %d: %s", eventID, code, errOut)
	}
	var h struct {
		Statuses    []status.Record `json:"statuses"`
		DeadLetters []listEntry     `json:"deadLetters"`
	}
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("status --json: %v in %s", err, out)
	}
	return h.Statuses, h.DeadLetters
}

func outcomes(recs []status.Record) []status.Outcome {
	var out []status.Outcome
	for _, r := range recs {
		out = append(out, r.Outcome)
	}
	return out
}

// An event dead-lettered by a failing flow is listed, shown, replayed once the flow is fixed,
// and then succeeds exactly once; the DLQ no longer holds it, and the replay is audited.
func TestDeadLetterIsListedShownReplayedAndSucceedsOnce(t *testing.T) {
	t.Parallel()
	svc := servicetest.Start(t, servicetest.Config(t, t.TempDir()), nil)
	url := svc.Addrs.NATS
	b := connectTo(t, url)

	setFaults(t, svc, seedFlow, `{"status":400}`)
	if code, _, errOut := cmd(t, url, "publish", seedPath); code != 0 {
		t.Fatalf("publish: exit %d: %s", code, errOut)
	}
	dl := waitDeadLetters(t, url, 1)[0]
	if dl.Reason != status.ReasonPermanentFailure || dl.EventID != seedEventID || dl.Flow != seedFlow || dl.Attempts != 1 || !strings.Contains(dl.Error, "HTTP 400") {
		t.Fatalf("dead letter = %+v; want the seed's permanent failure after one HTTP 400", dl)
	}
	seq := strconv.FormatUint(dl.Sequence, 10)

	// list, as people read it
	code, out, _ := cmd(t, url, "dlq", "list")
	if code != 0 || !strings.Contains(out, "SEQ") {
		t.Fatalf("dlq list: exit %d: %s", code, out)
	}
	line := strings.Split(strings.TrimSpace(out), "\n")[1]
	for _, want := range []string{seq, "permanent_failure", seedEventID, seedFlow, "HTTP 400"} {
		if !strings.Contains(line, want) {
			t.Errorf("dlq list line %q lacks %q", line, want)
		}
	}
	if list := dlqList(t, url, "--reason", "schema_violation"); len(list) != 0 {
		t.Errorf("dlq list --reason schema_violation = %+v, want none", list)
	}
	if list := dlqList(t, url, "--flow", seedFlow, "--since", "1h"); len(list) != 1 {
		t.Errorf("dlq list --flow %s --since 1h = %+v, want the dead letter", seedFlow, list)
	}

	// show: the pretty payload and the attempt history
	code, out, errOut := cmd(t, url, "dlq", "show", seq)
	if code != 0 {
		t.Fatalf("dlq show: exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"Dead letter " + seq + " in REMEDIATION_DLQ", "reason            permanent_failure", "idempotency key   rmd-",
		"Attempts (1):", "400   flow suspend-okta-account: HTTP 400",
		"Payload (JSON, ", "\n    \"issueTitle\": \"Unused Admin Account\",\n", "Nats-Msg-Id: " + seedEventID,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dlq show lacks %q:\n%s", want, out)
		}
	}

	// fix the flow, replay
	setFaults(t, svc, seedFlow, `{}`)
	eventsBefore := streamInfo(t, b, broker.StreamEvents).LastSeq
	code, out, errOut = cmd(t, url, "dlq", "replay", seq, "--yes", "--as", "tester")
	if code != 0 || !strings.Contains(out, "replayed 1 dead letter as 1 event") {
		t.Fatalf("dlq replay: exit %d: %s %s", code, out, errOut)
	}

	// the replayed event: same bytes, new de-duplication id, replay headers
	replayed, err := b.GetMessage(context.Background(), broker.StreamEvents, eventsBefore+1)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := os.ReadFile(seedPath)
	if !bytes.Equal(replayed.Data, seed) || replayed.Subject != "remediation.events.ispm" {
		t.Errorf("the replayed event is %s %q, want the original bytes on remediation.events.ispm", replayed.Subject, replayed.Data)
	}
	h := replayed.Header
	if got := h["Remediator-Replay-Of"]; !slices.Equal(got, []string{seq}) {
		t.Errorf("Remediator-Replay-Of = %v, want [%s]", got, seq)
	}
	if got := h["Remediator-Replayed-By"]; !slices.Equal(got, []string{"tester"}) {
		t.Errorf("Remediator-Replayed-By = %v, want [tester]", got)
	}
	if id := h["Nats-Msg-Id"]; len(id) != 1 || !strings.HasPrefix(id[0], "replay:"+seq+":") {
		t.Errorf("Nats-Msg-Id = %v, want replay:%s:<unixnano>", id, seq)
	}

	// it succeeds, once
	var statuses []status.Record
	testwait.Until(t, "the replayed event to succeed", func() bool {
		statuses, _ = eventHistory(t, url, seedEventID)
		return slices.Contains(outcomes(statuses), status.Succeeded)
	})
	if got := outcomes(statuses); !slices.Equal(got, []status.Outcome{status.Failed, status.Succeeded}) {
		t.Fatalf("status history outcomes = %v, want [failed succeeded]", got)
	}
	key := statuses[0].IdempotencyKey
	if key == "" || statuses[1].IdempotencyKey != key {
		t.Errorf("idempotency keys %q then %q, want the same key before and after the replay", key, statuses[1].IdempotencyKey)
	}
	var invs []flowsim.Invocation
	simCall(t, http.MethodGet, svc.Addrs.Simulator+"/_sim/flows/"+seedFlow+"/invocations", "", &invs)
	ok := 0
	for _, inv := range invs {
		if inv.IdempotencyKey == key && inv.Status == 200 {
			ok++
		}
	}
	if ok != 1 {
		t.Errorf("the flow answered 200 %d times for key %s, want exactly once: %+v", ok, key, invs)
	}

	// status EVENT_ID, as people read it
	code, out, _ = cmd(t, url, "status", seedEventID)
	if code != 0 || !strings.Contains(out, "2 status records, 0 dead letters") ||
		strings.Index(out, "failed ") > strings.Index(out, "succeeded ") || !strings.Contains(out, "permanent_failure: flow suspend-okta-account: HTTP 400") ||
		!strings.Contains(out, statuses[1].TraceID) || !strings.Contains(out, "execution "+statuses[1].ExecutionID) {
		t.Errorf("status %s: exit %d:\n%s", seedEventID, code, out)
	}

	// the DLQ no longer holds it; the replay is audited
	if list := dlqList(t, url); len(list) != 0 {
		t.Errorf("the DLQ still holds %+v after the replay", list)
	}
	code, _, errOut = cmd(t, url, "dlq", "show", seq)
	if code != 1 || !strings.Contains(errOut, "no dead letter with sequence "+seq) {
		t.Errorf("dlq show of the replayed letter: exit %d: %s", code, errOut)
	}
	audit := auditRecords(t, b)
	if len(audit) != 1 {
		t.Fatalf("audit records = %+v, want one", audit)
	}
	if a := audit[0]; a.Action != "dlq.replay" || a.User != "tester" || a.Count != 1 || a.Total != 1 ||
		!slices.Equal(a.Sequences, []uint64{dl.Sequence}) || !slices.Equal(a.Events, []uint64{eventsBefore + 1}) || a.Selector != "sequences "+seq {
		t.Errorf("audit record = %+v", a)
	}
}

// A dry run prints what would be replayed and changes nothing: no event, no deletion, no audit.
func TestReplayDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	svc := servicetest.Start(t, servicetest.Config(t, t.TempDir()), nil)
	url := svc.Addrs.NATS
	b := connectTo(t, url)
	setFaults(t, svc, seedFlow, `{"status":400}`)
	seed, err := os.ReadFile(seedPath)
	if err != nil {
		t.Fatal(err)
	}
	p := publish.New(b, nil)
	for _, id := range []string{"dry-run-1", "dry-run-2"} {
		if _, err := p.Publish(context.Background(), bytes.Replace(seed, []byte(seedEventID), []byte(id), 1), publish.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Publish(context.Background(), []byte("not json"), publish.Options{Subject: "remediation.events.ispm"}); err != nil {
		t.Fatal(err)
	}
	list := waitDeadLetters(t, url, 3)
	setFaults(t, svc, seedFlow, `{}`)
	events, dlq := streamInfo(t, b, broker.StreamEvents), streamInfo(t, b, broker.StreamDLQ)

	code, out, errOut := cmd(t, url, "dlq", "replay", "--all", "--dry-run")
	if code != 0 || !strings.Contains(out, "dry run: would replay 3 dead letters as 3 events") {
		t.Fatalf("dlq replay --all --dry-run: exit %d: %s %s", code, out, errOut)
	}
	for _, e := range list {
		if !strings.Contains(out, fmt.Sprintf("%6d  ", e.Sequence)) {
			t.Errorf("the dry run does not list dead letter %d:\n%s", e.Sequence, out)
		}
	}
	code, out, _ = cmd(t, url, "dlq", "replay", "--reason", "permanent_failure", "--dry-run", "--json")
	var res struct {
		DryRun    bool     `json:"dryRun"`
		Replayed  int      `json:"replayed"`
		Sequences []uint64 `json:"sequences"`
	}
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || !res.DryRun || res.Replayed != 2 || len(res.Sequences) != 2 {
		t.Errorf("dlq replay --reason permanent_failure --dry-run --json: exit %d, %v: %s", code, err, out)
	}

	if got := streamInfo(t, b, broker.StreamEvents); got.LastSeq != events.LastSeq {
		t.Errorf("a dry run published %d events", got.LastSeq-events.LastSeq)
	}
	if got := streamInfo(t, b, broker.StreamDLQ); got.Messages != dlq.Messages || got.LastSeq != dlq.LastSeq {
		t.Errorf("a dry run changed the DLQ: %d messages (last %d), was %d (last %d)", got.Messages, got.LastSeq, dlq.Messages, dlq.LastSeq)
	}
	if got := streamInfo(t, b, broker.StreamAudit); got.Messages != 0 {
		t.Errorf("a dry run wrote %d audit records", got.Messages)
	}
	if got := simFlow(t, svc, seedFlow).Stats; got.Succeeded != 0 {
		t.Errorf("a dry run invoked the flow: %+v", got)
	}
}

func TestPurge(t *testing.T) {
	t.Parallel()
	svc := servicetest.Start(t, servicetest.Config(t, t.TempDir()), nil)
	url := svc.Addrs.NATS
	b := connectTo(t, url)
	p := publish.New(b, nil)
	for i := range 3 {
		if _, err := p.Publish(context.Background(), fmt.Appendf(nil, "not json %d", i), publish.Options{Subject: "remediation.events.ispm"}); err != nil {
			t.Fatal(err)
		}
	}
	list := waitDeadLetters(t, url, 3)
	first := strconv.FormatUint(list[0].Sequence, 10)

	// Without --yes: refused when stdin is not a terminal, and when the answer is not yes.
	code, _, errOut := cmd(t, url, "dlq", "purge", "--reason", "invalid_json")
	if code != 1 || !strings.Contains(errOut, "standard input is not a terminal") || !strings.Contains(errOut, "--yes") {
		t.Errorf("purge without --yes on a pipe: exit %d: %s", code, errOut)
	}
	code, _, errOut = cmdStdin(t, url, "n\n", true, "dlq", "purge", first)
	if code != 1 || !strings.Contains(errOut, "Delete 1 dead letter from REMEDIATION_DLQ for good?") || !strings.Contains(errOut, "not confirmed; nothing changed") {
		t.Errorf("purge answered no: exit %d: %s", code, errOut)
	}
	if got := dlqList(t, url); len(got) != 3 {
		t.Fatalf("a refused purge deleted dead letters: %d left", len(got))
	}

	// Confirmed at the prompt, then with --yes.
	code, out, errOut := cmdStdin(t, url, "y\n", true, "dlq", "purge", first, "--as", "tester")
	if code != 0 || !strings.Contains(out, "purged 1 dead letter") {
		t.Fatalf("purge answered yes: exit %d: %s %s", code, out, errOut)
	}
	code, out, errOut = cmd(t, url, "dlq", "purge", "--reason", "invalid_json", "--yes", "--as", "tester")
	if code != 0 || !strings.Contains(out, "purged 2 dead letters") {
		t.Fatalf("purge --yes: exit %d: %s %s", code, out, errOut)
	}
	if got := dlqList(t, url); len(got) != 0 {
		t.Fatalf("%d dead letters left after the purge", len(got))
	}
	code, out, _ = cmd(t, url, "dlq", "purge", "--older-than", "1h", "--yes")
	if code != 0 || !strings.Contains(out, "no dead letters match") {
		t.Errorf("purge of nothing: exit %d: %s", code, out)
	}

	audit := auditRecords(t, b)
	if len(audit) != 2 || audit[0].Action != "dlq.purge" || audit[1].Action != "dlq.purge" || audit[1].User != "tester" ||
		!slices.Equal(audit[0].Sequences, []uint64{list[0].Sequence}) || !slices.Equal(audit[1].Sequences, []uint64{list[1].Sequence, list[2].Sequence}) ||
		audit[1].Selector != "--reason invalid_json" {
		t.Errorf("audit records = %+v", audit)
	}
}

func TestErrorsSayWhatToDo(t *testing.T) {
	t.Parallel()
	// a provisioned but empty JetStream
	provisionedURL, _ := provisioned(t)
	// a JetStream without remediator's streams
	bare := brokertest.Server(t)

	tests := []struct {
		name string
		url  string
		args []string
		want []string
	}{
		{"wrong sequence: show", provisionedURL, []string{"dlq", "show", "42"},
			[]string{"no dead letter with sequence 42 in REMEDIATION_DLQ", "list them with `remediator dlq list`"}},
		{"wrong sequence: replay", provisionedURL, []string{"dlq", "replay", "42", "--yes"},
			[]string{"no dead letter with sequence 42 in REMEDIATION_DLQ", "`remediator dlq list`"}},
		{"wrong sequence: purge", provisionedURL, []string{"dlq", "purge", "42", "--yes"},
			[]string{"no dead letter with sequence 42 in REMEDIATION_DLQ", "`remediator dlq list`"}},
		{"unreachable NATS: list", "nats://127.0.0.1:1", []string{"dlq", "list"},
			[]string{"cannot reach NATS at nats://127.0.0.1:1", "--nats-url"}},
		{"unreachable NATS: stats", "nats://127.0.0.1:1", []string{"stats"},
			[]string{"cannot reach NATS at nats://127.0.0.1:1", "--nats-url"}},
		{"unreachable NATS: status", "nats://127.0.0.1:1", []string{"status", seedEventID},
			[]string{"cannot reach NATS at nats://127.0.0.1:1", "--nats-url"}},
		{"missing stream: list", bare.ClientURL(), []string{"dlq", "list"},
			[]string{"stream REMEDIATION_DLQ does not exist", "is remediator running against this NATS?", "it creates its streams at start"}},
		{"missing stream: show", bare.ClientURL(), []string{"dlq", "show", "1"},
			[]string{"stream REMEDIATION_DLQ does not exist", "is remediator running against this NATS?"}},
		{"missing stream: replay", bare.ClientURL(), []string{"dlq", "replay", "--all", "--yes"},
			[]string{"stream REMEDIATION_DLQ does not exist", "it creates its streams at start"}},
		{"missing stream: purge", bare.ClientURL(), []string{"dlq", "purge", "--reason", "no_route", "--yes"},
			[]string{"does not exist", "it creates its streams at start"}},
		{"missing stream: status", bare.ClientURL(), []string{"status", seedEventID},
			[]string{"stream REMEDIATION_STATUS does not exist", "is remediator running against this NATS?"}},
		{"missing stream: stats", bare.ClientURL(), []string{"stats"},
			[]string{"stream REMEDIATION_EVENTS does not exist", "is remediator running against this NATS?"}},
		{"unknown event", provisionedURL, []string{"status", "no-such-event"},
			[]string{`no status record or dead letter for event id "no-such-event"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, errOut := cmd(t, tt.url, tt.args...)
			if code != 1 {
				t.Errorf("exit %d, want 1; stderr %q", code, errOut)
			}
			for _, want := range tt.want {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr %q lacks %q", errOut, want)
				}
			}
		})
	}

	usage := [][]string{
		{"dlq", "show", "x"},
		{"dlq", "replay"},
		{"dlq", "replay", "1", "--reason", "no_route"},
		{"dlq", "replay", "--reason", "nope"},
		{"dlq", "replay", "--all", "--rate", "0"},
		{"dlq", "purge"},
		{"dlq", "list", "--since", "yesterday"},
		{"stats", "--window", "-1h"},
	}
	for _, args := range usage {
		if code, _, errOut := cmd(t, provisionedURL, args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q; want a usage error (2)", args, code, errOut)
		}
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	svc := servicetest.Start(t, servicetest.Config(t, t.TempDir()), nil)
	url := svc.Addrs.NATS
	setFaults(t, svc, seedFlow, `{"status":400}`)
	for _, f := range []string{seedPath, "../examples/ispm-compromised-account.json"} { // one fails, one runs two flows
		if code, _, errOut := cmd(t, url, "publish", f); code != 0 {
			t.Fatalf("publish %s: %s", f, errOut)
		}
	}
	waitDeadLetters(t, url, 1)

	var s struct {
		Streams []struct {
			Name     string `json:"name"`
			Messages uint64 `json:"messages"`
		} `json:"streams"`
		Consumers []struct {
			Name string `json:"name"`
		} `json:"consumers"`
		DeadLetters struct {
			Total    uint64            `json:"total"`
			ByReason map[string]uint64 `json:"byReason"`
		} `json:"deadLetters"`
		Flows []struct {
			Flow        string   `json:"flow"`
			Succeeded   int      `json:"succeeded"`
			Failed      int      `json:"failed"`
			SuccessRate *float64 `json:"successRate"`
			CallP95MS   *int64   `json:"callP95Ms"`
		} `json:"flows"`
	}
	testwait.Until(t, "two successes in stats", func() bool {
		code, out, errOut := cmd(t, url, "stats", "--json")
		if code != 0 {
			t.Fatalf("stats --json: exit %d: %s", code, errOut)
		}
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("stats --json: %v in %s", err, out)
		}
		n := 0
		for _, f := range s.Flows {
			n += f.Succeeded
		}
		return n == 2
	})
	if len(s.Streams) != 5 || s.Streams[0].Name != broker.StreamEvents || s.Streams[0].Messages != 2 || s.Streams[4].Name != broker.StreamAudit {
		t.Errorf("streams = %+v", s.Streams)
	}
	if s.DeadLetters.Total != 1 || s.DeadLetters.ByReason["permanent_failure"] != 1 {
		t.Errorf("dead letters = %+v", s.DeadLetters)
	}
	if !slices.ContainsFunc(s.Consumers, func(c struct {
		Name string `json:"name"`
	}) bool {
		return c.Name == "remediator-intake"
	}) {
		t.Errorf("consumers = %+v, want remediator-intake among them", s.Consumers)
	}
	for _, f := range s.Flows {
		switch f.Flow {
		case seedFlow:
			if f.Failed != 1 || f.Succeeded != 0 || f.SuccessRate == nil || *f.SuccessRate != 0 {
				t.Errorf("%s: %+v, want 1 failed, success rate 0", f.Flow, f)
			}
		case "clear-sessions", "reset-password":
			if f.Succeeded != 1 || f.SuccessRate == nil || *f.SuccessRate != 1 || f.CallP95MS == nil {
				t.Errorf("%s: %+v, want 1 succeeded, success rate 1, a call latency", f.Flow, f)
			}
		default:
			t.Errorf("unexpected flow %+v", f)
		}
	}

	code, out, _ := cmd(t, url, "stats")
	for _, want := range []string{
		"REMEDIATION_DLQ", "REMEDIATION_AUDIT", "remediator-intake", "permanent_failure              1",
		"suspend-okta-account            0       1     0.0%", "clear-sessions                  1       0   100.0%", "remediator_time_to_remediate_seconds",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stats (exit %d) lacks %q:\n%s", code, want, out)
		}
	}
}
