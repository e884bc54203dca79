package flowsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/internal/testwait"
)

const (
	alias     = "0123456789abcdef0123456789abcdef"
	openAlias = "open"
	token     = "sim-client-token-7f3a"
)

// start serves a simulator on a real socket. Its flows are `alias` (token-protected) and
// `openAlias` (no token) unless cfg names flows.
func start(t *testing.T, cfg flowsim.Config) (*flowsim.Simulator, *httptest.Server) {
	t.Helper()
	if cfg.Flows == nil {
		cfg.Flows = []flowsim.Flow{
			{Alias: alias, Name: "suspend-user", Token: token},
			{Alias: openAlias},
		}
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	sim, err := flowsim.New(cfg)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	return sim, serve(t, sim)
}

func serve(t *testing.T, sim *flowsim.Simulator) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close) // runs first: releases hung calls so srv.Close does not wait
	return srv
}

func newClient(t *testing.T) *flow.Client {
	t.Helper()
	c := flow.NewClient(flow.ClientConfig{})
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func endpointFor(srv *httptest.Server, a string) flow.Endpoint {
	ep := flow.Endpoint{Name: "sim-" + a, URL: srv.URL + "/api/flo/" + a + "/invoke"}
	if a == alias {
		ep.Auth = flow.ClientToken{Source: flow.StaticToken(token)}
	}
	return ep
}

func asFlowError(t *testing.T, err error) *flow.Error {
	t.Helper()
	var fe *flow.Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *flow.Error", err, err)
	}
	return fe
}

// fakeClock is a settable clock for the rate bucket.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// startWithClock is start with a fake clock fixed at a whole second.
func startWithClock(t *testing.T, cfg flowsim.Config) (*flowsim.Simulator, *httptest.Server, *fakeClock) {
	t.Helper()
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	sim, err := flowsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	flowsim.SetClock(sim, clock.Now)
	return sim, serve(t, sim), clock
}

func oktaErrorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		ErrorCode    string `json:"errorCode"`
		ErrorSummary string `json:"errorSummary"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("body %q is not an Okta error: %v", body, err)
	}
	return e.ErrorCode
}

func TestAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		flow   string
		auth   flow.Authorizer
		query  string
		status int
	}{
		{"missing token", alias, nil, "", 401},
		{"wrong header token", alias, flow.ClientToken{Source: flow.StaticToken("wrong")}, "", 401},
		{"wrong query token", alias, nil, "?clientToken=wrong", 401},
		{"header token", alias, flow.ClientToken{Source: flow.StaticToken(token)}, "", 200},
		{"query token", alias, nil, "?clientToken=" + token, 200},
		{"wrong header, right query", alias, flow.ClientToken{Source: flow.StaticToken("wrong")}, "?clientToken=" + token, 200},
		{"open flow", openAlias, nil, "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim, srv := start(t, flowsim.Config{})
			ep := flow.Endpoint{Name: "x", URL: srv.URL + "/api/flo/" + tt.flow + "/invoke" + tt.query, Auth: tt.auth}
			res, err := newClient(t).Invoke(context.Background(), ep, flow.Request{IdempotencyKey: "k"})
			if res == nil || res.StatusCode != tt.status {
				t.Fatalf("Invoke() = %+v, %v; want status %d", res, err, tt.status)
			}
			st := sim.Stats(tt.flow)
			if tt.status == 401 {
				fe := asFlowError(t, err)
				if fe.Class != flow.ClassPermanent {
					t.Errorf("Class = %v, want permanent", fe.Class)
				}
				if code := oktaErrorCode(t, res.Body); code != "E0000011" {
					t.Errorf("errorCode = %s, want E0000011", code)
				}
				if st.Unauthorized != 1 || st.Executed != 0 {
					t.Errorf("Stats = %+v, want 1 unauthorized, 0 executed", st)
				}
				return
			}
			if err != nil || res.ExecutionID == "" {
				t.Errorf("Invoke() = %v, execution id %q", err, res.ExecutionID)
			}
			if st.Executed != 1 || st.Succeeded != 1 {
				t.Errorf("Stats = %+v, want 1 executed and succeeded", st)
			}
		})
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	_, srv := start(t, flowsim.Config{})
	_, err := newClient(t).Invoke(context.Background(), endpointFor(srv, "nope"), flow.Request{})
	fe := asFlowError(t, err)
	if fe.StatusCode != 404 || fe.Class != flow.ClassPermanent {
		t.Errorf("unknown flow: %v, want permanent 404", err)
	}

	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodPost, "/api/flo/nope/invoke", 404, "E0000007"},
		{http.MethodGet, "/elsewhere", 404, "E0000007"},
		{http.MethodPut, "/api/flo/" + openAlias + "/invoke", 405, "E0000022"},
		{http.MethodDelete, "/api/flo/" + openAlias + "/invoke", 405, "E0000022"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || oktaErrorCode(t, body) != tt.code {
			t.Errorf("%s %s = %d %s, want %d %s", tt.method, tt.path, resp.StatusCode, body, tt.status, tt.code)
		}
	}
}

func TestRateLimitBurst(t *testing.T) {
	t.Parallel()
	sim, srv, clock := startWithClock(t, flowsim.Config{Flows: []flowsim.Flow{{Alias: openAlias}}})
	c := newClient(t)
	var ok, limited int
	for i := range 30 {
		res, err := c.Invoke(context.Background(), endpointFor(srv, openAlias), flow.Request{IdempotencyKey: "k" + strconv.Itoa(i)})
		if err == nil {
			ok++
			continue
		}
		fe := asFlowError(t, err)
		if fe.StatusCode != http.StatusTooManyRequests || fe.Class != flow.ClassRetryable {
			t.Fatalf("call %d: %v, want a retryable 429", i, err)
		}
		limited++
		h := res.Header
		wantReset := strconv.FormatInt(clock.Now().Unix()+1, 10)
		if h.Get("X-Rate-Limit-Limit") != "10" || h.Get("X-Rate-Limit-Remaining") != "0" || h.Get("X-Rate-Limit-Reset") != wantReset {
			t.Errorf("429 headers: limit %q remaining %q reset %q; want 10, 0, %s",
				h.Get("X-Rate-Limit-Limit"), h.Get("X-Rate-Limit-Remaining"), h.Get("X-Rate-Limit-Reset"), wantReset)
		}
		if h.Get("Retry-After") != "" {
			t.Errorf("bucket 429 has Retry-After %q; Okta sends none", h.Get("Retry-After"))
		}
		if fe.RetryAfter != time.Second {
			t.Errorf("RetryAfter = %v, want 1s (reset − Date)", fe.RetryAfter)
		}
		if code := oktaErrorCode(t, res.Body); code != "E0000047" {
			t.Errorf("errorCode = %s, want E0000047", code)
		}
	}
	if ok != 10 || limited != 20 {
		t.Errorf("%d ok, %d limited; want 10 and 20 (burst 10, clock stopped)", ok, limited)
	}
	if st := sim.Stats(openAlias); st.RateLimited != 20 || st.Executed != 10 {
		t.Errorf("Stats = %+v", st)
	}
	// A tenth of a second later one more call fits.
	clock.Advance(100 * time.Millisecond)
	if _, err := c.Invoke(context.Background(), endpointFor(srv, openAlias), flow.Request{}); err != nil {
		t.Errorf("after 100ms: %v, want success", err)
	}
}

// TestRateLimitConcurrentBurst fires 30 calls at once on the real clock.
func TestRateLimitConcurrentBurst(t *testing.T) {
	t.Parallel()
	_, srv := start(t, flowsim.Config{Flows: []flowsim.Flow{{Alias: openAlias, RateLimit: 10}}})
	c := newClient(t)
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			res, err := c.Invoke(context.Background(), endpointFor(srv, openAlias), flow.Request{})
			if res == nil {
				t.Errorf("no response: %v", err)
				return
			}
			if res.StatusCode == 429 && res.Header.Get("X-Rate-Limit-Reset") == "" {
				t.Errorf("429 without X-Rate-Limit-Reset")
			}
			mu.Lock()
			statuses[res.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[429] == 0 || statuses[200] < 10 || statuses[200]+statuses[429] != 30 {
		t.Errorf("statuses = %v, want ≥10 200s, some 429s, nothing else", statuses)
	}
}

func TestRateLimitPaced(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		rate        float64 // configured
		perSecond   float64 // paced
		calls       int
		wantLimited bool
	}{
		{"9/s against 10/s for 1.5s", 10, 9, 14, false},
		{"10/s against 10/s for 3s", 10, 10, 30, false},
		{"2.5/s against 2.5/s", 2.5, 2.5, 10, false},
		{"20/s against 10/s for 1.5s", 10, 20, 30, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim, srv, clock := startWithClock(t, flowsim.Config{Flows: []flowsim.Flow{{Alias: openAlias, RateLimit: tt.rate}}})
			c := newClient(t)
			step := time.Duration(float64(time.Second) / tt.perSecond)
			for i := range tt.calls {
				if i > 0 {
					clock.Advance(step)
				}
				_, _ = c.Invoke(context.Background(), endpointFor(srv, openAlias), flow.Request{})
			}
			if got := sim.Stats(openAlias).RateLimited; (got > 0) != tt.wantLimited {
				t.Errorf("RateLimited = %d, want limited = %v", got, tt.wantLimited)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		faults    flowsim.Faults
		statuses  []int
		class     flow.Class
		retryAft  time.Duration
		countFail bool
	}{
		{"status 400", flowsim.Faults{Status: 400}, []int{400}, flow.ClassPermanent, 0, true},
		{"status 404", flowsim.Faults{Status: 404}, []int{404}, flow.ClassPermanent, 0, true},
		{"status 302", flowsim.Faults{Status: 302}, []int{302}, flow.ClassPermanent, 0, true},
		{"error rate 1", flowsim.Faults{ErrorRate: 1}, []int{500, 502, 503}, flow.ClassRetryable, 0, true},
		{"rate limit rate 1", flowsim.Faults{RateLimitRate: 1}, []int{429}, flow.ClassRetryable, time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim, srv := start(t, flowsim.Config{Flows: []flowsim.Flow{{Alias: openAlias, RateLimit: 1000}}})
			if err := sim.SetFaults(openAlias, tt.faults); err != nil {
				t.Fatal(err)
			}
			c := newClient(t)
			const calls = 8
			for i := range calls {
				res, err := c.Invoke(context.Background(), endpointFor(srv, openAlias), flow.Request{IdempotencyKey: "k" + strconv.Itoa(i)})
				fe := asFlowError(t, err)
				if !slices.Contains(tt.statuses, fe.StatusCode) || fe.Class != tt.class || fe.RetryAfter != tt.retryAft {
					t.Errorf("call %d: %v {status %d, %v, retry after %v}; want one of %v, %v, %v",
						i, err, fe.StatusCode, fe.Class, fe.RetryAfter, tt.statuses, tt.class, tt.retryAft)
				}
				if res == nil || res.Header.Get("X-Rate-Limit-Limit") == "" {
					t.Errorf("call %d: no rate-limit headers", i)
				}
			}
			st := sim.Stats(openAlias)
			if st.Executed != 0 || st.Received != calls {
				t.Errorf("Stats = %+v, want %d received, none executed", st, calls)
			}
			if tt.countFail && st.Failed != calls || !tt.countFail && st.RateLimited != calls {
				t.Errorf("Stats = %+v", st)
			}
		})
	}
}

func TestIdempotentDuplicates(t *testing.T) {
	t.Parallel()
	sim, srv := start(t, flowsim.Config{})
	c := newClient(t)
	ep := endpointFor(srv, alias)
	invoke := func(key string) *flow.Result {
		t.Helper()
		res, err := c.Invoke(context.Background(), ep, flow.Request{IdempotencyKey: key, Inputs: map[string]any{"eventId": key}})
		if err != nil {
			t.Fatalf("Invoke(%q) error = %v", key, err)
		}
		return res
	}
	first := invoke("evt-1")
	again := invoke("evt-1")
	other := invoke("evt-2")
	invoke("")
	invoke("")
	if first.ExecutionID == "" || again.ExecutionID != first.ExecutionID || other.ExecutionID == first.ExecutionID {
		t.Errorf("execution ids: first %q, again %q, other %q", first.ExecutionID, again.ExecutionID, other.ExecutionID)
	}
	var body struct{ ExecutionID, Status string }
	if err := json.Unmarshal(again.Body, &body); err != nil || body.ExecutionID != first.ExecutionID || body.Status != "ok" {
		t.Errorf("duplicate body = %s, want executionId %s and status ok", again.Body, first.ExecutionID)
	}
	invs := sim.Invocations(alias)
	if len(invs) != 5 || invs[0].Duplicate || !invs[1].Duplicate || invs[2].Duplicate {
		t.Errorf("Duplicate flags = %v", duplicateFlags(invs))
	}
	want := flowsim.Stats{Received: 5, Executed: 4, Succeeded: 5, Duplicates: 1, MaxExecutionsPerKey: 1}
	if st := sim.Stats(alias); st != want {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
}

func duplicateFlags(invs []flowsim.Invocation) []bool {
	var out []bool
	for _, inv := range invs {
		out = append(out, inv.Duplicate)
	}
	return out
}

func TestTimeoutThenRetryIsDuplicate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		hang    time.Duration
		timeout time.Duration
	}{
		{"client gives up", time.Minute, 150 * time.Millisecond},
		{"simulator drops the connection", 50 * time.Millisecond, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim, srv := start(t, flowsim.Config{})
			if err := sim.SetFaults(alias, flowsim.Faults{TimeoutRate: 1, Hang: tt.hang}); err != nil {
				t.Fatal(err)
			}
			ep := endpointFor(srv, alias)
			ep.Timeout = tt.timeout
			req := flow.Request{IdempotencyKey: "evt-9/suspend-user", Inputs: map[string]any{"eventId": "evt-9"}}

			res, err := newClient(t).Invoke(context.Background(), ep, req)
			fe := asFlowError(t, err)
			if res != nil || !fe.OutcomeUnknown || fe.Class != flow.ClassRetryable {
				t.Fatalf("first call: %v (unknown %v, class %v), want retryable with outcome unknown", err, fe.OutcomeUnknown, fe.Class)
			}
			invs := sim.Invocations(alias)
			if len(invs) != 1 || invs[0].Status != 0 || invs[0].ExecutionID == "" {
				t.Fatalf("recorded %+v, want one unanswered execution", invs)
			}

			if err := sim.SetFaults(alias, flowsim.Faults{}); err != nil {
				t.Fatal(err)
			}
			res, err = newClient(t).Invoke(context.Background(), ep, req)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if res.ExecutionID != invs[0].ExecutionID {
				t.Errorf("retry execution id %q, want the first run's %q", res.ExecutionID, invs[0].ExecutionID)
			}
			st := sim.Stats(alias)
			want := flowsim.Stats{Received: 2, Executed: 1, Succeeded: 1, TimedOut: 1, Duplicates: 1, MaxExecutionsPerKey: 1}
			if st != want {
				t.Errorf("Stats = %+v, want %+v", st, want)
			}
			if last := sim.Invocations(alias)[1]; !last.Duplicate || last.Status != 200 {
				t.Errorf("retry recorded as %+v, want a 200 duplicate", last)
			}
		})
	}
}

// TestOverlappingSameKeyExecutesTwice shows what MaxExecutionsPerKey is for: a dispatcher that
// sends the same job again while the first call is still running makes the flow run twice.
func TestOverlappingSameKeyExecutesTwice(t *testing.T) {
	t.Parallel()
	sim, srv := start(t, flowsim.Config{Flows: []flowsim.Flow{{Alias: openAlias, Faults: flowsim.Faults{Latency: time.Minute}}}})
	c := newClient(t)
	req := flow.Request{IdempotencyKey: "evt-3/suspend-user"}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	invoke := func() {
		wg.Go(func() { _, _ = c.Invoke(ctx, endpointFor(srv, openAlias), req) })
	}
	invoke()
	testwait.Until(t, "the first execution", func() bool { return sim.Stats(openAlias).Executed == 1 })
	invoke()
	testwait.Until(t, "the second execution", func() bool { return sim.Stats(openAlias).Executed == 2 })
	cancel() // both callers give up; both runs finish
	wg.Wait()
	testwait.Until(t, "both calls recorded", func() bool { return sim.Stats(openAlias).TimedOut == 2 })

	if err := sim.SetFaults(openAlias, flowsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Invoke(context.Background(), endpointFor(srv, openAlias), req); err != nil {
		t.Fatal(err)
	}
	st := sim.Stats(openAlias)
	if st.MaxExecutionsPerKey != 2 || st.Executed != 2 || st.Duplicates != 1 {
		t.Errorf("Stats = %+v, want 2 executions of one key and a duplicate", st)
	}
}

func TestInvocationsRecordInputs(t *testing.T) {
	t.Parallel()
	sim, srv := start(t, flowsim.Config{})
	req := flow.Request{
		Inputs: map[string]any{
			"eventId":       "evt-1",
			"issueSeverity": "High",
			"count":         3,
			"flag":          true,
			"at":            time.Date(2024, 6, 9, 14, 56, 58, 0, time.UTC),
		},
		IdempotencyKey: "evt-1/suspend-user",
		Header:         http.Header{"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
	}
	if _, err := newClient(t).Invoke(context.Background(), endpointFor(srv, alias), req); err != nil {
		t.Fatal(err)
	}
	invs := sim.Invocations(alias)
	if len(invs) != 1 {
		t.Fatalf("%d invocations recorded, want 1", len(invs))
	}
	inv := invs[0]
	want := map[string]any{
		"eventId":        "evt-1",
		"issueSeverity":  "High",
		"count":          json.Number("3"),
		"flag":           true,
		"at":             "2024-06-09T14:56:58Z",
		"idempotencyKey": "evt-1/suspend-user", // the body field, as the flow received it
	}
	if len(inv.Inputs) != len(want) {
		t.Errorf("Inputs = %v, want %v", inv.Inputs, want)
	}
	for k, v := range want {
		if inv.Inputs[k] != v {
			t.Errorf("Inputs[%q] = %#v, want %#v", k, inv.Inputs[k], v)
		}
	}
	if inv.IdempotencyKey != req.IdempotencyKey || inv.Status != 200 || inv.At.IsZero() {
		t.Errorf("Invocation = %+v", inv)
	}
	if got := inv.Header.Get("X-Api-Client-Token"); got != "REDACTED" {
		t.Errorf("recorded client token header = %q, want REDACTED", got)
	}
	if got := inv.Header.Get("Traceparent"); got != req.Header.Get("Traceparent") {
		t.Errorf("recorded traceparent = %q", got)
	}
	// Invocations returns copies.
	inv.Inputs["eventId"] = "changed"
	inv.Header.Set("Traceparent", "changed")
	if again := sim.Invocations(alias)[0]; again.Inputs["eventId"] != "evt-1" || again.Header.Get("Traceparent") == "changed" {
		t.Error("Invocations shares maps with the simulator")
	}
}

func TestBodyValidation(t *testing.T) {
	t.Parallel()
	sim, srv := start(t, flowsim.Config{Flows: []flowsim.Flow{{Alias: openAlias, RateLimit: 1000}}})
	url := srv.URL + "/api/flo/" + openAlias + "/invoke"
	tests := []struct {
		name   string
		method string
		query  string
		header http.Header
		body   string
		status int
		cause  string
	}{
		{"list input", "POST", "", nil, `{"tags":["a","b"]}`, 400, `input "tags" is a list`},
		{"object input", "POST", "", nil, `{"additionalData":{"a":1}}`, 400, `input "additionalData" is an object`},
		{"array body", "POST", "", nil, `["a"]`, 400, "must be a JSON object"},
		{"invalid json", "POST", "", nil, `{"a":`, 400, "not valid JSON"},
		{"trailing data", "POST", "", nil, `{"a":1} {"b":2}`, 400, "data after"},
		{"non-string key", "POST", "", nil, `{"idempotencyKey":5}`, 400, "idempotencyKey must be a string"},
		{"key mismatch", "POST", "", http.Header{"Idempotency-Key": {"a"}}, `{"idempotencyKey":"b"}`, 400, "differ"},
		{"scalars and null", "POST", "", nil, `{"s":"x","n":1.5,"b":false,"z":null}`, 200, ""},
		{"empty body", "POST", "", nil, ``, 200, ""},
		{"GET with query inputs", "GET", "?eventId=evt-1&idempotencyKey=g1", nil, ``, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(tt.method, url+tt.query, strings.NewReader(tt.body))
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status == 400 {
				var e struct {
					ErrorCauses []struct{ ErrorSummary string }
				}
				_ = json.Unmarshal(body, &e)
				if code := oktaErrorCode(t, body); code != "E0000001" || len(e.ErrorCauses) != 1 || !strings.Contains(e.ErrorCauses[0].ErrorSummary, tt.cause) {
					t.Errorf("body %s, want E0000001 with cause %q", body, tt.cause)
				}
			}
		})
	}
	t.Cleanup(func() {
		for _, inv := range sim.Invocations(openAlias) {
			if inv.IdempotencyKey == "g1" && inv.Inputs["eventId"] != "evt-1" {
				t.Errorf("GET inputs = %v, want eventId from the query", inv.Inputs)
			}
		}
	})
}

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	sim, srv := start(t, flowsim.Config{})
	hc := srv.Client()
	do := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if strings.Contains(string(b), token) {
			t.Errorf("%s %s shows the token: %s", method, path, b)
		}
		return resp.StatusCode, b
	}
	c := newClient(t)
	ep := endpointFor(srv, alias)

	// Faults round-trip.
	status, body := do("PUT", "/_sim/flows/"+alias+"/faults", `{"status":503,"latency":"1ms","latencyJitter":"2ms","hang":"5s"}`)
	if status != 200 {
		t.Fatalf("PUT faults = %d %s", status, body)
	}
	want := flowsim.Faults{Status: 503, Latency: time.Millisecond, LatencyJitter: 2 * time.Millisecond, Hang: 5 * time.Second}
	if got := sim.Faults(alias); got != want {
		t.Errorf("Faults = %+v, want %+v", got, want)
	}
	status, body = do("GET", "/_sim/flows/"+alias+"/faults", "")
	var got flowsim.Faults
	if err := json.Unmarshal(body, &got); status != 200 || err != nil || got != want {
		t.Errorf("GET faults = %d %s (%v), want %+v", status, body, err, want)
	}
	if _, err := c.Invoke(context.Background(), ep, flow.Request{}); asFlowError(t, err).StatusCode != 503 {
		t.Errorf("Invoke with status fault = %v, want 503", err)
	}
	for _, bad := range []string{`{"errorRate":2}`, `{"latency":"soon"}`, `{"bogus":1}`, `{"status":200}`, `[`} {
		if status, body := do("PUT", "/_sim/flows/"+alias+"/faults", bad); status != 400 {
			t.Errorf("PUT faults %s = %d %s, want 400", bad, status, body)
		}
	}
	if status, _ := do("PUT", "/_sim/flows/nope/faults", `{}`); status != 404 {
		t.Errorf("PUT faults of an unknown flow = %d, want 404", status)
	}
	if status, _ := do("PUT", "/_sim/flows/"+alias+"/faults", `{}`); status != 200 {
		t.Fatal("clearing faults failed")
	}

	// Invocations.
	for i := range 3 {
		req := flow.Request{IdempotencyKey: "k" + strconv.Itoa(i), Inputs: map[string]any{"n": i}}
		if _, err := c.Invoke(context.Background(), ep, req); err != nil {
			t.Fatal(err)
		}
	}
	status, body = do("GET", "/_sim/flows/"+alias+"/invocations?limit=2", "")
	var invs []flowsim.Invocation
	if err := json.Unmarshal(body, &invs); status != 200 || err != nil {
		t.Fatalf("GET invocations = %d %s (%v)", status, body, err)
	}
	if len(invs) != 2 || invs[0].IdempotencyKey != "k1" || invs[1].IdempotencyKey != "k2" || invs[1].Inputs["n"] != 2.0 {
		t.Errorf("invocations?limit=2 = %+v, want k1, k2 with inputs", invs)
	}
	for _, q := range []string{"0", "-1", "x"} {
		if status, _ := do("GET", "/_sim/flows/"+alias+"/invocations?limit="+q, ""); status != 400 {
			t.Errorf("limit=%s = %d, want 400", q, status)
		}
	}

	// Flow list.
	status, body = do("GET", "/_sim/flows", "")
	var flows []flowsim.FlowInfo
	if err := json.Unmarshal(body, &flows); status != 200 || err != nil || len(flows) != 2 {
		t.Fatalf("GET flows = %d %s (%v)", status, body, err)
	}
	if f := flows[0]; f.Alias != alias || f.Name != "suspend-user" || !f.TokenRequired || *f.RateLimit != 10 ||
		f.Stats.Executed != 3 || f.InvokePath != "/api/flo/"+alias+"/invoke" {
		t.Errorf("flows[0] = %+v", f)
	}
	if flows[1].TokenRequired {
		t.Errorf("flows[1] = %+v, want no token", flows[1])
	}

	// Reset.
	if status, _ := do("DELETE", "/_sim/flows/"+alias+"/invocations", ""); status != 204 {
		t.Errorf("DELETE invocations = %d, want 204", status)
	}
	if status, body := do("GET", "/_sim/flows/"+alias+"/invocations", ""); status != 200 || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("after reset: %d %s, want []", status, body)
	}
	if st := sim.Stats(alias); st != (flowsim.Stats{}) {
		t.Errorf("Stats after reset = %+v", st)
	}
	if status, _ := do("POST", "/_sim/flows/"+alias+"/invocations", ""); status != 405 {
		t.Errorf("POST invocations = %d, want 405", status)
	}
}

func TestSeedIsDeterministic(t *testing.T) {
	t.Parallel()
	run := func(seed int64) []int {
		cfg := flowsim.Config{Seed: seed, Flows: []flowsim.Flow{{Alias: openAlias, RateLimit: 1000, Faults: flowsim.Faults{ErrorRate: 0.5}}}}
		_, srv := start(t, cfg)
		c := newClient(t)
		var out []int
		for range 20 {
			res, _ := c.Invoke(context.Background(), endpointFor(srv, openAlias), flow.Request{})
			out = append(out, res.StatusCode)
		}
		return out
	}
	a, b := run(42), run(42)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different draws:\n%v\n%v", a, b)
	}
	if !slices.Contains(a, 200) || !slices.ContainsFunc(a, func(s int) bool { return s >= 500 }) {
		t.Errorf("draws %v: want a mix of 200 and 5xx at ErrorRate 0.5", a)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  flowsim.Config
	}{
		{"empty alias", flowsim.Config{Flows: []flowsim.Flow{{}}}},
		{"slash in alias", flowsim.Config{Flows: []flowsim.Flow{{Alias: "a/b"}}}},
		{"duplicate alias", flowsim.Config{Flows: []flowsim.Flow{{Alias: "a"}, {Alias: "a"}}}},
		{"negative rate", flowsim.Config{Flows: []flowsim.Flow{{Alias: "a", RateLimit: -1}}}},
		{"bad faults", flowsim.Config{Flows: []flowsim.Flow{{Alias: "a", Faults: flowsim.Faults{TimeoutRate: 1.5}}}}},
		{"negative latency", flowsim.Config{Flows: []flowsim.Flow{{Alias: "a", Faults: flowsim.Faults{Latency: -1}}}}},
		{"negative MaxRecorded", flowsim.Config{MaxRecorded: -1}},
	}
	for _, tt := range tests {
		if _, err := flowsim.New(tt.cfg); err == nil {
			t.Errorf("%s: New() error = nil", tt.name)
		}
	}
	sim, err := flowsim.New(flowsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.SetFaults("nope", flowsim.Faults{}); !errors.Is(err, flowsim.ErrUnknownFlow) {
		t.Errorf("SetFaults(unknown) = %v, want ErrUnknownFlow", err)
	}
	if sim.Invocations("nope") != nil || sim.Stats("nope") != (flowsim.Stats{}) {
		t.Error("unknown alias has invocations or stats")
	}
	sim.Reset("nope")
}

func TestMaxRecordedRing(t *testing.T) {
	t.Parallel()
	sim, srv := start(t, flowsim.Config{MaxRecorded: 3, Flows: []flowsim.Flow{{Alias: openAlias, RateLimit: 1000}}})
	c := newClient(t)
	for i := range 7 {
		if _, err := c.Invoke(context.Background(), endpointFor(srv, openAlias), flow.Request{IdempotencyKey: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	for _, inv := range sim.Invocations(openAlias) {
		keys = append(keys, inv.IdempotencyKey)
	}
	if !slices.Equal(keys, []string{"4", "5", "6"}) {
		t.Errorf("recorded keys = %v, want the last three", keys)
	}
	if st := sim.Stats(openAlias); st.Received != 7 {
		t.Errorf("Received = %d, want 7 (stats are not limited by the ring)", st.Received)
	}
}

func TestLogsNeverShowToken(t *testing.T) {
	t.Parallel()
	var buf lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, srv := start(t, flowsim.Config{Logger: logger})
	c := newClient(t)
	_, _ = c.Invoke(context.Background(), endpointFor(srv, alias), flow.Request{IdempotencyKey: "k"})
	wrong := endpointFor(srv, alias)
	wrong.Auth = nil
	wrong.URL += "?clientToken=" + token + "x"
	_, _ = c.Invoke(context.Background(), wrong, flow.Request{})
	out := buf.String()
	if strings.Count(out, `"msg":"flowsim invocation"`) != 2 || !strings.Contains(out, `"outcome":"unauthorized"`) {
		t.Errorf("log = %s, want two invocation lines", out)
	}
	if strings.Contains(out, token) {
		t.Errorf("log shows the token: %s", out)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestConcurrentUse is for the race detector: calls, fault changes and inspection at once.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	sim, srv := start(t, flowsim.Config{MaxRecorded: 50, Flows: []flowsim.Flow{
		{Alias: openAlias, RateLimit: 200, Faults: flowsim.Faults{ErrorRate: 0.2, RateLimitRate: 0.1, LatencyJitter: time.Millisecond}},
	}})
	c := newClient(t)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 15 {
				key := strconv.Itoa(i % 5) // shared keys across workers
				_, _ = c.Invoke(context.Background(), endpointFor(srv, openAlias), flow.Request{IdempotencyKey: key, Inputs: map[string]any{"w": w}})
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			_ = sim.Invocations(openAlias)
			_ = sim.Stats(openAlias)
			_ = sim.Flows()
			_ = sim.SetFaults(openAlias, flowsim.Faults{ErrorRate: 0.1})
			resp, err := srv.Client().Get(srv.URL + "/_sim/flows/" + openAlias + "/invocations?limit=5")
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	})
	wg.Wait()
	st := sim.Stats(openAlias)
	if st.Received != 120 || st.Succeeded+st.Failed+st.RateLimited != 120 {
		t.Errorf("Stats = %+v, want 120 calls, each answered", st)
	}
}
