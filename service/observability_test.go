package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/seal"
	"github.com/remediator/remediator/service"
	"github.com/remediator/remediator/service/servicetest"
	"github.com/remediator/remediator/status"
	"github.com/remediator/remediator/telemetry"
	"github.com/remediator/remediator/telemetry/otlptest"
)

const seedID = "f73a7741-6980-4d44-b0bf-13a2fa7ac556"

// jsonLogger is the logger `remediator run` builds (cli/root.go), at debug level.
func jsonLogger(w io.Writer) *slog.Logger {
	return slog.New(telemetry.LogHandler(telemetry.RedactHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))))
}

// setupTracing points the real OTLP/HTTP exporter at recv through the standard environment
// variables, as `remediator run` and `remediator publish` do. The provider is passed to the
// service and the publisher explicitly; nothing is installed globally. The test must not be
// parallel (t.Setenv).
func setupTracing(t *testing.T, recv *otlptest.Receiver, compression string) *telemetry.Tracing {
	t.Helper()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", compression)
	t.Setenv("OTEL_SERVICE_NAME", "remediator")
	tr, err := telemetry.SetupTracing(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Exporting {
		t.Fatal("SetupTracing does not export with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tr.Shutdown(ctx); err != nil {
			t.Errorf("tracer provider shutdown: %v", err)
		}
	})
	return tr
}

func flusher(tr *telemetry.Tracing) func() {
	return func() { _ = tr.Provider.ForceFlush(context.Background()) }
}

func connect(t *testing.T, svc *servicetest.Running) *broker.Broker {
	t.Helper()
	return svc.Connect(t)
}

func readSeed(t *testing.T) []byte {
	t.Helper()
	seed, err := os.ReadFile("../examples/ispm-unused-admin.json")
	if err != nil {
		t.Fatal(err)
	}
	return seed
}

// records returns every message stored in stream.
func records(t *testing.T, b *broker.Broker, stream, subjects string) []*broker.StoredMessage {
	t.Helper()
	var out []*broker.StoredMessage
	err := b.Scan(context.Background(), stream, subjects, 0, time.Time{}, func(m *broker.StoredMessage) bool {
		out = append(out, m)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func statusRecords(t *testing.T, b *broker.Broker) []status.Record {
	t.Helper()
	return decoded[status.Record](t, b, broker.StreamStatus, broker.SubjectsStatus)
}

// decoded returns every record of stream matching subjects, decoded as T.
func decoded[T any](t *testing.T, b *broker.Broker, stream, subjects string) []T {
	t.Helper()
	var out []T
	for _, m := range records(t, b, stream, subjects) {
		var v T
		if err := json.Unmarshal(m.Data, &v); err != nil {
			t.Fatalf("%s #%d: %v", stream, m.Sequence, err)
		}
		out = append(out, v)
	}
	return out
}

// terminal returns the event's last succeeded, failed or rejected record, if any.
func terminal(recs []status.Record, eventID string) (status.Record, bool) {
	var found status.Record
	ok := false
	for _, r := range recs {
		if r.EventID == eventID && (r.Outcome == status.Succeeded || r.Outcome == status.Failed || r.Outcome == status.Rejected) {
			found, ok = r, true
		}
	}
	return found, ok
}

// TestTraceOfOneEvent runs the whole service with the real OTLP exporter pointed at an
// in-process OTLP receiver, publishes Okta's ISPM example with the publish package, and checks
// the trace of that one event as Jaeger would show it:
//
//	send remediation.events.ispm [producer]                          publish package
//	  process remediation.events.ispm [consumer]                     intake, linked to the send
//	    validate, route, authorize [internal]
//	    process remediation.dispatch.suspend-okta-account.* [consumer]  linked to the intake span
//	      invoke suspend-okta-account [internal]                       one attempt
//	        POST [client]                                            otelhttp: the HTTP call
//	      publish remediation.status.succeeded [producer]
//
// all with one trace id, the one in the status record.
func TestTraceOfOneEvent(t *testing.T) {
	recv := otlptest.Start(t)
	tr := setupTracing(t, recv, "gzip")
	t.Setenv("REMEDIATOR_FLOWSIM_TOKEN", "trace-test-token")
	logs := &servicetest.LogBuffer{}
	svc := servicetest.StartWith(t, servicetest.Config(t, t.TempDir()), service.Options{Logger: jsonLogger(logs), TracerProvider: tr.Provider})
	b := connect(t, svc)
	statuses := servicetest.StreamWake(t, b, broker.StreamStatus, broker.SubjectsStatus)

	res, err := publish.New(b, tr.Provider).Publish(context.Background(), readSeed(t), publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.TraceID == "" {
		t.Fatal("publish returned no trace id")
	}
	var rec status.Record
	testwait.Until(t, "the succeeded status", func() bool {
		r, ok := terminal(statusRecords(t, b), seedID)
		rec = r
		return ok
	}, testwait.WakeOn(statuses))
	if rec.Outcome != status.Succeeded {
		t.Fatalf("outcome %s (%s), want succeeded", rec.Outcome, rec.Error)
	}
	if rec.TraceID != res.TraceID {
		t.Errorf("status traceId %q, publish trace id %q: want one trace", rec.TraceID, res.TraceID)
	}
	traceID := rec.TraceID

	want := []string{
		"send remediation.events.ispm", "process remediation.events.ispm", "validate", "route",
		"process remediation.dispatch.suspend-okta-account.*", "invoke suspend-okta-account", "POST",
		"publish remediation.status.succeeded",
	}
	recv.WaitFor(t, 15*time.Second, "the event's spans", flusher(tr), func([]otlptest.Span) bool {
		spans := recv.Trace(traceID)
		for _, name := range want {
			found := false
			for _, s := range spans {
				found = found || otlptest.Named(name)(s)
			}
			if !found {
				return false
			}
		}
		return true
	})
	if _, gz := recv.Requests(); gz == 0 {
		t.Error("no gzip-compressed export arrived (OTEL_EXPORTER_OTLP_COMPRESSION=gzip)")
	}

	// Every span about this event is in its trace.
	for _, s := range recv.Spans() {
		if (s.Attr("event.id") == seedID) && s.TraceID != traceID {
			t.Errorf("span %s of the event is in trace %s, not %s", s, s.TraceID, traceID)
		}
	}
	roots := otlptest.Tree(recv.Trace(traceID))
	var tree strings.Builder
	for _, r := range roots {
		tree.WriteString(r.String())
	}
	t.Logf("trace %s:\n%s", traceID, tree.String())
	if len(roots) != 1 {
		t.Fatalf("trace has %d roots, want 1 (the publish):\n%s", len(roots), tree.String())
	}
	expect := func(n *otlptest.Node, what string) *otlptest.Node {
		t.Helper()
		if n == nil {
			t.Fatalf("no %s in the trace:\n%s", what, tree.String())
		}
		return n
	}
	attrs := func(n *otlptest.Node, kv ...string) {
		t.Helper()
		for i := 0; i < len(kv); i += 2 {
			if got := n.Attr(kv[i]); got != kv[i+1] {
				t.Errorf("%s: %s = %q, want %q", n.Name, kv[i], got, kv[i+1])
			}
		}
	}
	linked := func(n, to *otlptest.Node) {
		t.Helper()
		for _, l := range n.Links {
			if l.SpanID == to.SpanID && l.TraceID == to.TraceID {
				return
			}
		}
		t.Errorf("%s has links %+v, want one to %s (%s)", n.Name, n.Links, to.Name, to.SpanID)
	}

	producer := roots[0]
	if producer.Name != "send remediation.events.ispm" || producer.Kind != "producer" || producer.Scope != "github.com/remediator/remediator/publish" {
		t.Errorf("root = %s, want the publish package's producer span", producer.Span)
	}
	attrs(producer, "messaging.system", "nats", "messaging.destination.name", "remediation.events.ispm", "event.id", seedID)
	if producer.Service != "remediator" {
		t.Errorf("service.name = %q", producer.Service)
	}

	intake := expect(producer.Child(otlptest.Named("process remediation.events.ispm")), "intake consumer span under the producer")
	if intake.Kind != "consumer" {
		t.Errorf("intake span kind %s", intake.Kind)
	}
	attrs(intake, "messaging.system", "nats", "messaging.destination.name", "remediation.events.ispm",
		"messaging.operation.type", "process", "event.id", seedID, "outcome", "ok")
	linked(intake, producer)
	attrs(expect(intake.Child(otlptest.Named("validate")), "validate under intake"), "event.id", seedID)
	attrs(expect(intake.Child(otlptest.Named("route")), "route under intake"), "event.id", seedID)

	dispatch := expect(intake.Child(otlptest.Named("process remediation.dispatch.suspend-okta-account.*")), "dispatch consumer span under intake")
	if dispatch.Kind != "consumer" {
		t.Errorf("dispatch span kind %s", dispatch.Kind)
	}
	attrs(dispatch, "messaging.system", "nats", "event.id", seedID, "flow", "suspend-okta-account", "outcome", "ok")
	linked(dispatch, intake)

	invoke := expect(dispatch.Child(otlptest.Named("invoke suspend-okta-account")), "invoke span under dispatch")
	attrs(invoke, "event.id", seedID, "flow", "suspend-okta-account", "attempt", "1", "http.response.status_code", "200")

	httpSpan := expect(invoke.Child(func(s otlptest.Span) bool { return s.Kind == "client" && strings.Contains(s.Scope, "otelhttp") }),
		"otelhttp client span under invoke")
	attrs(httpSpan, "http.request.method", "POST", "http.response.status_code", "200")
	wantURL := svc.Addrs.Simulator + "/api/flo/suspend-okta-account/invoke"
	attrs(httpSpan, "url.full", wantURL)
	if !httpSpan.HasAttr("server.address") || !httpSpan.HasAttr("server.port") {
		t.Errorf("HTTP span lacks server.address/server.port: %v", httpSpan.Attributes)
	}

	statusPub := expect(dispatch.Child(otlptest.Named("publish remediation.status.succeeded")), "status publish under dispatch")
	if statusPub.Kind != "producer" {
		t.Errorf("status publish kind %s", statusPub.Kind)
	}
	attrs(statusPub, "messaging.system", "nats", "messaging.destination.name", "remediation.status.succeeded")

	// The flow received the HTTP span's context.
	code, body := get(t, svc.Addrs.Simulator+"/_sim/flows/suspend-okta-account/invocations")
	var invs []flowsim.Invocation
	if err := json.Unmarshal([]byte(body), &invs); code != 200 || err != nil || len(invs) != 1 {
		t.Fatalf("invocations = %d %s (%v)", code, body, err)
	}
	if tp, wantTP := invs[0].Header.Get("Traceparent"), fmt.Sprintf("00-%s-%s-01", traceID, httpSpan.SpanID); tp != wantTP {
		t.Errorf("the flow received traceparent %q, want %q (the HTTP client span)", tp, wantTP)
	}

	// Log lines within the event's spans carry the trace and span ids.
	lines := 0
	for line := range strings.SplitSeq(logs.String(), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil || l["msg"] != "delivery handled" || l["event_id"] != seedID {
			continue
		}
		lines++
		if l["trace_id"] != traceID || (l["span_id"] != intake.SpanID && l["span_id"] != dispatch.SpanID) {
			t.Errorf("log line %s: want trace_id %s and the consumer span's span_id", line, traceID)
		}
	}
	if lines != 2 {
		t.Errorf("%d \"delivery handled\" lines for the event, want 2 (intake, dispatch):\n%s", lines, logs.String())
	}
}

// TestSecretsNeverLeak feeds events to flows that use a known client token and checks that the
// token appears in no log line (JSON, debug level), no exported span, no status record and no
// dead letter: a flow that succeeds, one that answers 401, one that echoes the token in a 400
// body, one that echoes it in 503 bodies until retries run out, and events carrying an
// Authorization header (one valid, one invalid). Two flows over OAuth 2.0 on a simulated org
// (issue 10), one that succeeds and one that refuses even a fresh token, add the app's private
// key, every client assertion and every access token that crossed the wire to the secrets
// that must appear nowhere, metrics included. The flows also echo the token in their response
// headers (under an innocent name, as a cookie, as an Authorization-like header), which records
// keep with the output; a native action (clearSessions) on the same org adds its own token
// and Okta's answers.
func TestSecretsNeverLeak(t *testing.T) {
	const secret = "tok-SECRET-8c1f"
	recv := otlptest.Start(t)
	tr := setupTracing(t, recv, "none")
	t.Setenv("REMEDIATOR_FLOWSIM_TOKEN", secret)

	// Flows that echo what they received, the token included, in their error body.
	var echoed sync.Map
	echo := func(status int) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok := r.Header.Get("X-Api-Client-Token")
			echoed.Store(status, tok)
			// Echoed in response headers too, which records keep: under an innocent name,
			// as a cookie, and as an Authorization-like header.
			w.Header().Set("X-Echo", "got "+tok)
			w.Header().Set("Set-Cookie", "sid="+tok+"; Path=/")
			w.Header().Set("X-Upstream-Authorization", r.Header.Get("Authorization"))
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":"token %s refused","query":%q,"auth":%q}`, tok, r.URL.RawQuery, r.Header.Get("Authorization"))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	echo200, echo400, echo503 := echo(200), echo(400), echo(503)

	cfg := servicetest.Config(t, t.TempDir())
	cfg.Worker.MaxAttempts = 3
	for name, url := range map[string]string{"echo-200": echo200.URL, "echo-400": echo400.URL, "echo-503": echo503.URL} {
		cfg.Flows = append(cfg.Flows, config.Flow{Name: name, URL: url + "/api/flo/" + name + "/invoke", ClientToken: config.Secret{Env: "REMEDIATOR_FLOWSIM_TOKEN"},
			Timeout: 5 * time.Second, RateLimit: 100, Concurrency: 2})
		cfg.Routes = append(cfg.Routes, config.Route{Name: name, Match: config.IssueMatch{Titles: []string{"Echo " + name}}, Flows: []string{name}})
	}
	// The OAuth 2.0 flows, on an org that records what crossed the wire.
	keyFile, keyPEM := writeOktaKey(t, t.TempDir())
	cfg.Okta = config.OktaConfig{OrgURL: "http://127.0.0.1:1", ClientID: testClientID, KeyID: testKeyID, PrivateKey: config.Secret{File: keyFile}}
	oauthFlows := []string{"oauth-ok", "oauth-refused"}
	for _, name := range oauthFlows {
		cfg.Flows = append(cfg.Flows, config.Flow{Name: name, Auth: config.FlowAuthOAuth2, Timeout: 5 * time.Second, RateLimit: 100, Concurrency: 2})
		cfg.Routes = append(cfg.Routes, config.Route{Name: name, Match: config.IssueMatch{Titles: []string{"Echo " + name}}, Flows: []string{name}})
	}
	// A native action on the same org: its access token (another scope set) and Okta's
	// answers, headers included, go through the records too.
	cfg.Flows = append(cfg.Flows, config.Flow{Name: "okta-clear", Action: config.ActionClearSessions, Timeout: 5 * time.Second, Concurrency: 2})
	cfg.Routes = append(cfg.Routes, config.Route{Name: "okta-clear", Match: config.IssueMatch{Titles: []string{"Echo okta-clear"}}, Flows: []string{"okta-clear"}})
	oktaKey, err := cfg.OktaKey(os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	org, err := service.SimulatorOrg(cfg, oktaKey)
	if err != nil {
		t.Fatal(err)
	}
	org.Users = []flowsim.User{{ID: "00ktw0utvzPBXxny16x7", Status: "ACTIVE", Sessions: 1}} // the seed issue's entity
	orgSim, err := flowsim.New(flowsim.Config{Flows: []flowsim.Flow{{Alias: "oauth-ok", OAuth: true}, {Alias: "oauth-refused", OAuth: true}}, Org: org})
	if err != nil {
		t.Fatal(err)
	}
	if err := orgSim.SetFlowClients("oauth-refused", []string{"0oa-another-app"}); err != nil {
		t.Fatal(err)
	}
	orgSrv, wire := recordingOrg(t, orgSim)
	cfg.Okta.OrgURL = orgSrv.URL
	for _, name := range oauthFlows {
		f, _ := cfg.Flow(name)
		f.URL = orgSrv.URL + "/api/flo/" + name + "/invoke"
	}
	for i := range cfg.ResourceSets {
		if strings.Contains(strings.Join(cfg.ResourceSets[i].Flows, ","), "suspend-okta-account") {
			cfg.ResourceSets[i].Flows = append(cfg.ResourceSets[i].Flows, "echo-200", "echo-400", "echo-503", "oauth-ok", "oauth-refused", "okta-clear")
		}
	}
	cfg.SetDefaults() // the flows added above take the documented defaults
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &servicetest.LogBuffer{}
	svc := servicetest.StartWith(t, cfg, service.Options{Logger: jsonLogger(logs), TracerProvider: tr.Provider})
	b := connect(t, svc)
	statuses := servicetest.StreamWake(t, b, broker.StreamStatus, broker.SubjectsStatus)

	// notify-slack answers 401 whatever the token.
	req, _ := http.NewRequest(http.MethodPut, svc.Addrs.Simulator+"/_sim/flows/notify-slack/faults", strings.NewReader(`{"status":401}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("set faults: %d", resp.StatusCode)
	}

	var seedDoc map[string]any
	if err := json.Unmarshal(readSeed(t), &seedDoc); err != nil {
		t.Fatal(err)
	}
	event := func(id, title string) []byte {
		doc := map[string]any{}
		for k, v := range seedDoc {
			doc[k] = v
		}
		doc["eventId"], doc["issueTitle"] = id, title
		data, _ := json.Marshal(doc)
		return data
	}
	cases := []struct {
		id, title string
		data      []byte
		want      status.Outcome
		reason    status.Reason
	}{
		{id: "secret-ok", title: "Unused Admin Account", want: status.Succeeded},
		{id: "secret-401", title: "No MFA - Admin Account", want: status.Failed, reason: status.ReasonPermanentFailure},
		{id: "secret-echo-400", title: "Echo echo-400", want: status.Failed, reason: status.ReasonPermanentFailure},
		{id: "secret-echo-503", title: "Echo echo-503", want: status.Failed, reason: status.ReasonRetriesExhausted},
		{id: "secret-oauth-ok", title: "Echo oauth-ok", want: status.Succeeded},
		{id: "secret-echo-200", title: "Echo echo-200", want: status.Succeeded},
		{id: "secret-okta-clear", title: "Echo okta-clear", want: status.Succeeded},
		{id: "secret-oauth-refused", title: "Echo oauth-refused", want: status.Failed, reason: status.ReasonPermanentFailure},
		{id: "secret-invalid", data: []byte(`{"eventId":"secret-invalid","issueTitle":"Unused Admin Account"}`), want: status.Rejected, reason: status.ReasonSchemaViolation},
	}
	pub := publish.New(b, tr.Provider)
	header := map[string][]string{"Authorization": {"Bearer " + secret}, "X-Api-Client-Token": {secret}}
	for _, c := range cases {
		data := c.data
		if data == nil {
			data = event(c.id, c.title)
		}
		if _, err := pub.Publish(context.Background(), data, publish.Options{Subject: "remediation.events.ispm", Header: header}); err != nil {
			t.Fatal(err)
		}
	}
	testwait.Until(t, "every event's final status", func() bool {
		recs := statusRecords(t, b)
		for _, c := range cases {
			if _, ok := terminal(recs, c.id); !ok {
				return false
			}
		}
		return true
	}, testwait.WakeOn(statuses))
	recs := statusRecords(t, b)
	for _, c := range cases {
		r, _ := terminal(recs, c.id)
		if r.Outcome != c.want || r.Reason != c.reason {
			t.Errorf("%s: %s/%s (%s), want %s/%s", c.id, r.Outcome, r.Reason, r.Error, c.want, c.reason)
		}
	}
	for _, status := range []int{400, 503} {
		if tok, _ := echoed.Load(status); tok != secret {
			t.Errorf("echo-%d received token %v; the test needs it to receive (and echo) the real one", status, tok)
		}
	}
	// Wait for the spans of every delivery: 7 intake consumer spans, and a dispatch consumer
	// span that settled each of the 6 jobs.
	recv.WaitFor(t, 15*time.Second, "every delivery's spans", flusher(tr), func(spans []otlptest.Span) bool {
		intake, settled := 0, map[string]bool{}
		for _, s := range spans {
			switch {
			case s.Name == "process remediation.events.ispm":
				intake++
			case strings.HasPrefix(s.Name, "process remediation.dispatch.") && s.Attr("outcome") != "retry":
				settled[s.Attr("event.id")] = true
			}
		}
		return intake >= len(cases) && len(settled) >= 6
	})
	codes := map[string]bool{}
	for _, s := range recv.Spans() {
		if s.Kind == "client" && strings.Contains(s.Scope, "otelhttp") {
			codes[s.Attr("http.response.status_code")] = true
		}
	}
	for _, c := range []string{"200", "401", "400", "503"} {
		if !codes[c] {
			t.Errorf("no HTTP client span with status %s (have %v): the scan would prove nothing", c, codes)
		}
	}

	// The secrets: the client token, the app's private key, and every client assertion and
	// access token that crossed the wire to the org.
	secrets := map[string]string{secret: "client token"}
	maps.Copy(secrets, keySecrets(t, keyPEM))
	onWire := wire.all()
	if kinds := slices.Collect(maps.Values(onWire)); !slices.Contains(kinds, "client assertion") || !slices.Contains(kinds, "access token") {
		t.Fatalf("secrets seen on the wire to the org: %v; the scan would prove nothing without an assertion and a token", kinds)
	}
	maps.Copy(secrets, onWire)
	// The NATS role seeds the embedded server was started with, and the ingress secrets.
	credDir, err := service.CredentialsDir(cfg)
	if err != nil {
		t.Fatal(err)
	}
	seeds, err := filepath.Glob(filepath.Join(credDir, "*.nk"))
	if err != nil || len(seeds) != 3 {
		t.Fatalf("NATS seeds in %s: %v (%v); want the three roles'", credDir, seeds, err)
	}
	for _, f := range seeds {
		seed, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		secrets[strings.TrimSpace(string(seed))] = "NATS seed " + filepath.Base(f)
	}
	// The record keys (issue 13): generated next to the credentials; every record is signed
	// with them, so a leak would be in every record's header if anywhere.
	keysFile, err := service.RecordKeysFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	keyText, err := os.ReadFile(keysFile)
	if err != nil {
		t.Fatalf("record keys: %v", err)
	}
	keys, err := seal.ParseFile(keyText)
	if err != nil || len(keys) == 0 {
		t.Fatalf("record keys in %s: %v", keysFile, err)
	}
	for _, k := range keys {
		secrets[string(k.Secret)] = "record key " + k.ID
	}
	secrets[servicetest.OktaHookSecret] = "Okta event hook secret"
	secrets[servicetest.ISPMWebhookKey] = "ISPM webhook key"
	secrets[servicetest.IngressToken] = "ingress token"
	// leak names the first secret s carries, or "".
	leak := func(s string) string {
		for v, what := range secrets {
			if strings.Contains(s, v) {
				return what
			}
		}
		return ""
	}

	// Spans: every exported byte.
	for _, s := range recv.Spans() {
		if what := leak(s.Dump()); what != "" {
			t.Errorf("span carries the %s: %s", what, s.Dump())
		}
	}
	for v, what := range secrets {
		if recv.Contains(v) {
			t.Errorf("an OTLP export carries the %s", what)
		}
	}
	// Logs.
	out := logs.String()
	if !strings.Contains(out, `"msg":"delivery handled"`) {
		t.Errorf("the logs look empty:\n%s", out)
	}
	for line := range strings.SplitSeq(out, "\n") {
		if what := leak(line); what != "" {
			t.Errorf("log line carries the %s: %s", what, line)
		}
	}
	// Status and dead-letter records, their headers and the dead letters' original payloads.
	scan := func(stream, subjects string) int {
		msgs := records(t, b, stream, subjects)
		for _, m := range msgs {
			if what := leak(string(m.Data) + fmt.Sprint(m.Header)); what != "" {
				t.Errorf("%s #%d (%s) carries the %s: %s %v", stream, m.Sequence, m.Subject, what, m.Data, m.Header)
			}
			if stream == broker.StreamDLQ {
				var dl status.DeadLetter
				if err := json.Unmarshal(m.Data, &dl); err != nil {
					t.Fatal(err)
				}
				if what := leak(string(dl.Payload) + fmt.Sprint(dl.Headers)); what != "" {
					t.Errorf("dead letter #%d carries the %s in its payload or headers: %v", m.Sequence, what, dl.Headers)
				}
				if got := dl.Headers["Authorization"]; len(got) != 1 || got[0] != "[REDACTED]" {
					t.Errorf("dead letter #%d Authorization header = %v, want [REDACTED]", m.Sequence, got)
				}
			}
		}
		return len(msgs)
	}
	if n := scan(broker.StreamStatus, broker.SubjectsStatus); n < len(cases) {
		t.Errorf("%d status records, want at least %d", n, len(cases))
	}
	if n := scan(broker.StreamDLQ, broker.SubjectsDLQ); n != 5 {
		t.Errorf("%d dead letters, want 5", n)
	}
	// Metrics count what happened, and carry no secret either.
	_, metrics := get(t, "http://"+svc.Addrs.HTTP+"/metrics")
	for _, want := range []string{
		`remediator_dispatch_attempts_total{flow="echo-503",status_class="5xx"} 3`,
		`remediator_dispatch_attempts_total{flow="echo-400",status_class="4xx"} 1`,
		`remediator_dispatch_attempts_total{flow="notify-slack",status_class="4xx"} 1`,
		`remediator_dispatch_attempts_total{flow="suspend-okta-account",status_class="2xx"} 1`,
		`remediator_dead_letters_total{reason="retries_exhausted"} 1`,
		`remediator_dead_letters_total{reason="permanent_failure"} 3`,
		`remediator_dispatch_attempts_total{flow="oauth-ok",status_class="2xx"} 1`,
		`remediator_dispatch_attempts_total{flow="oauth-refused",status_class="4xx"} 1`,
		`remediator_events_rejected_total{kind="ispm_issue",reason="schema_violation"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, grep(metrics, "remediator_"))
		}
	}
	if !regexp.MustCompile(`remediator_retries_total\{flow="echo-503",level="quick"\} [1-9]`).MatchString(metrics) {
		t.Errorf("no quick retries counted for echo-503:\n%s", grep(metrics, "retries"))
	}
	if what := leak(metrics); what != "" {
		t.Errorf("/metrics carries the %s", what)
	}
	// The echoed bodies made it into the records, redacted.
	if r, _ := terminal(recs, "secret-echo-400"); !strings.Contains(r.Error, "token [REDACTED] refused") {
		t.Errorf("echo-400 error %q, want the body with the token redacted", r.Error)
	}
	// So did the output and the response headers, redacted: the scan above would have
	// proved nothing had they been left out.
	r, _ := terminal(recs, "secret-echo-200")
	h := r.ResponseHeaders
	if !strings.Contains(r.Output, "token [REDACTED] refused") || len(h["X-Echo"]) != 1 || h["X-Echo"][0] != "got [REDACTED]" ||
		len(h["Set-Cookie"]) != 1 || h["Set-Cookie"][0] != "[REDACTED]" || len(h["X-Upstream-Authorization"]) != 1 || h["X-Upstream-Authorization"][0] != "[REDACTED]" {
		t.Errorf("echo-200 output %q, headers %v; want both kept with the token redacted", r.Output, h)
	}
	if r, _ := terminal(recs, "secret-okta-clear"); r.HTTPStatus != 204 || len(r.ResponseHeaders["X-Okta-Request-Id"]) != 1 {
		t.Errorf("okta-clear: HTTP %d, headers %v; want Okta's 204 with its headers", r.HTTPStatus, r.ResponseHeaders)
	}
	for _, dl := range deadLetters(t, b) {
		if dl.EventID == "secret-echo-400" && (len(dl.ResponseHeaders["X-Echo"]) != 1 || dl.ResponseHeaders["X-Echo"][0] != "got [REDACTED]" || !strings.Contains(dl.Output, "[REDACTED]")) {
			t.Errorf("echo-400 dead letter: output %q, headers %v; want both kept, redacted", dl.Output, dl.ResponseHeaders)
		}
	}
}

// TestMetricsEndpoint scrapes /metrics over HTTP after a success and a rejection and finds
// every series the README documents.
func TestMetricsEndpoint(t *testing.T) {
	t.Setenv("REMEDIATOR_FLOWSIM_TOKEN", "metrics-test-token")
	svc := servicetest.Start(t, servicetest.Config(t, t.TempDir()), nil)
	b := connect(t, svc)
	statuses := servicetest.StreamWake(t, b, broker.StreamStatus, broker.SubjectsStatus)
	pub := publish.New(b, nil)
	if _, err := pub.Publish(context.Background(), readSeed(t), publish.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(context.Background(), []byte("not json"), publish.Options{Subject: "remediation.events.ispm", MsgID: "m-bad"}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "a success and a rejection", func() bool {
		recs := statusRecords(t, b)
		ok := false
		rejected := 0
		for _, r := range recs {
			ok = ok || (r.EventID == seedID && r.Outcome == status.Succeeded)
			if r.Outcome == status.Rejected {
				rejected++
			}
		}
		return ok && rejected == 1
	}, testwait.WakeOn(statuses))

	var out string
	testwait.Until(t, "the success in /metrics", func() bool {
		code, body := get(t, "http://"+svc.Addrs.HTTP+"/metrics")
		out = body
		return code == 200 && strings.Contains(body, `remediator_time_to_remediate_seconds_count{flow="suspend-okta-account"} 1`)
	})
	for _, want := range []string{
		"# TYPE remediator_events_received_total counter",
		`remediator_events_received_total{kind="ispm_issue"} 2`,
		`remediator_events_validated_total{kind="ispm_issue"} 1`,
		`remediator_events_rejected_total{kind="ispm_issue",reason="invalid_json"} 1`,
		"# TYPE remediator_dispatch_attempts_total counter",
		`remediator_dispatch_attempts_total{flow="suspend-okta-account",status_class="2xx"} 1`,
		`remediator_dispatch_outcomes_total{flow="suspend-okta-account",outcome="succeeded"} 1`,
		`remediator_retries_total{flow="suspend-okta-account",level="quick"} 0`,
		`remediator_retries_total{flow="suspend-okta-account",level="redelivery"} 0`,
		`remediator_dead_letters_total{reason="invalid_json"} 1`,
		`remediator_dead_letters_total{reason="retries_exhausted"} 0`,
		"# TYPE remediator_inflight gauge",
		`remediator_inflight{stage="intake"} 0`,
		`remediator_inflight{flow="suspend-okta-account",stage="dispatch"} 0`,
		"# TYPE remediator_rate_limit_wait_seconds histogram",
		`remediator_rate_limit_wait_seconds_count{flow="suspend-okta-account"}`,
		"# TYPE remediator_circuit_state gauge",
		`remediator_circuit_state{flow="suspend-okta-account"} 0`,
		"# TYPE remediator_consumer_pending gauge",
		`remediator_consumer_pending{consumer="remediator-intake"} 0`,
		"# TYPE remediator_time_to_remediate_seconds histogram",
		`remediator_time_to_remediate_seconds_bucket{flow="suspend-okta-account",le="86400"}`,
		"# TYPE http_client_request_duration_seconds histogram",
		"go_goroutines ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The seed is from 2024: far older than a day, it lands in +Inf only.
	if !regexp.MustCompile(`remediator_time_to_remediate_seconds_bucket\{flow="suspend-okta-account",le="86400"\} 0\n`).MatchString(out) {
		t.Errorf("time to remediate of a 2024 event is not above a day:\n%s", grep(out, "time_to_remediate"))
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grep(out, "remediator_"))
	}
}

func grep(s, sub string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
