package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/ops"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/service"
	"github.com/remediator/remediator/service/servicetest"
	"github.com/remediator/remediator/status"
)

func TestMain(m *testing.M) {
	// Services started by parallel tests share one simulator client token (see cli's TestMain).
	if os.Getenv("REMEDIATOR_FLOWSIM_TOKEN") == "" {
		os.Setenv("REMEDIATOR_FLOWSIM_TOKEN", "console-tests-token")
	}
	code := m.Run()
	closeBrowser()
	os.Exit(code)
}

// jaegerURL is the Jaeger UI the test services link traces to.
const jaegerURL = "http://jaeger.test:16686"

// env is a running service with its console and an operator connection.
type env struct {
	t    *testing.T
	svc  *servicetest.Running
	b    *broker.Broker
	ops  *ops.Ops
	base string // http://host:port/ui/
}

func start(t *testing.T, adjust ...func(*config.Config)) *env {
	t.Helper()
	cfg := servicetest.Config(t, t.TempDir())
	cfg.UI.JaegerURL = jaegerURL
	for _, f := range adjust {
		f(cfg)
	}
	// A real tracer provider (no exporter), so that status records carry trace ids to link.
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	svc := servicetest.StartWith(t, cfg, service.Options{TracerProvider: tp})
	b := svc.Connect(t)
	return &env{t: t, svc: svc, b: b, ops: ops.New(b, ops.Options{}), base: "http://" + svc.Addrs.HTTP + "/ui/"}
}

// client does not follow redirects, so that tests see them.
var client = &http.Client{Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type resp struct {
	code   int
	body   string
	header http.Header
}

// do sends a request to the console; auth is "bearer", "basic", "" (none) or a session
// cookie value prefixed with "cookie:".
func (e *env) do(method, path, auth string, form url.Values, hdr ...string) resp {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.base+strings.TrimPrefix(path, "/ui/"), body)
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	switch {
	case auth == "bearer":
		req.Header.Set("Authorization", "Bearer "+servicetest.ConsoleToken)
	case auth == "basic":
		req.SetBasicAuth("alice", servicetest.ConsoleToken)
	case strings.HasPrefix(auth, "cookie:"):
		req.AddCookie(&http.Cookie{Name: "remediator_console", Value: strings.TrimPrefix(auth, "cookie:")})
	case auth != "":
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{code: res.StatusCode, body: string(b), header: res.Header}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the CSRF token from a page rendered for auth.
func (e *env) csrf(auth string) string {
	e.t.Helper()
	r := e.do("GET", "/ui/brakes", auth, nil)
	m := csrfRE.FindStringSubmatch(r.body)
	if r.code != 200 || m == nil {
		e.t.Fatalf("no CSRF token on the brakes page (%d)", r.code)
	}
	return m[1]
}

func (e *env) switches() []ops.SwitchState {
	e.t.Helper()
	s, err := e.ops.Switches(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

var seed = func() []byte {
	b, err := os.ReadFile("../examples/ispm-unused-admin.json")
	if err != nil {
		panic(err)
	}
	return b
}()

// event is the seed ISPM issue (routed to suspend-okta-account) with another id and more
// fields.
func event(id string, extra map[string]any) []byte {
	var doc map[string]any
	if err := json.Unmarshal(seed, &doc); err != nil {
		panic(err)
	}
	doc["eventId"] = id
	for k, v := range extra {
		if v == nil {
			delete(doc, k)
		} else {
			doc[k] = v
		}
	}
	b, _ := json.Marshal(doc)
	return b
}

func (e *env) publish(data []byte, header map[string][]string) {
	e.t.Helper()
	if _, err := publish.New(e.b, nil).Publish(context.Background(), data, publish.Options{Header: header}); err != nil {
		e.t.Fatal(err)
	}
}

// outcomes counts the status records of eventID by outcome.
func (e *env) outcomes(eventID string) map[status.Outcome]int {
	e.t.Helper()
	h, err := e.ops.EventHistory(context.Background(), eventID, time.Time{})
	if err != nil {
		e.t.Fatal(err)
	}
	n := map[status.Outcome]int{}
	for _, r := range h.Statuses {
		n[r.Outcome]++
	}
	return n
}

func (e *env) waitOutcome(eventID string, o status.Outcome) {
	e.t.Helper()
	testwait.Until(e.t, eventID+" "+string(o), func() bool { return e.outcomes(eventID)[o] > 0 },
		testwait.WakeOn(servicetest.StreamWake(e.t, e.b, broker.StreamStatus, broker.SubjectsStatus)))
}

// setFaults replaces a simulated flow's faults, e.g. `{"status":400}` or `{}`.
func (e *env) setFaults(alias, faults string) {
	e.t.Helper()
	req, _ := http.NewRequest("PUT", e.svc.Addrs.Simulator+"/_sim/flows/"+alias+"/faults", bytes.NewBufferString(faults))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		e.t.Fatalf("set faults of %s: %s", alias, res.Status)
	}
}

// deadLetters lists the dead letters of eventID.
func (e *env) deadLetters(eventID string) []uint64 {
	e.t.Helper()
	h, err := e.ops.EventHistory(context.Background(), eventID, time.Time{})
	if err != nil {
		e.t.Fatal(err)
	}
	var seqs []uint64
	for _, d := range h.DeadLetters {
		seqs = append(seqs, d.Sequence)
	}
	return seqs
}

// audits returns the audit records on remediation.audit.<action>.
func (e *env) audits(action string) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	err := e.b.Scan(context.Background(), broker.StreamAudit, ops.AuditSubjectPrefix+action, 0, time.Time{}, func(m *broker.StoredMessage) bool {
		var rec map[string]any
		_ = json.Unmarshal(m.Data, &rec)
		out = append(out, rec)
		return true
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}
