package flow_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/remediator/remediator/flow"
)

// newClient returns a client whose idle connections are closed when the test ends.
func newClient(t *testing.T) *flow.Client {
	t.Helper()
	c := flow.NewClient(flow.ClientConfig{})
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// newServer starts a real HTTP server, closed when the test ends.
func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// hangingServer reads each request, calls onRequest, and never answers: it returns when the
// client goes away or the test ends.
func hangingServer(t *testing.T, onRequest func()) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		onRequest()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	return srv
}

func endpoint(srv *httptest.Server) flow.Endpoint {
	return flow.Endpoint{Name: "suspend-user", URL: srv.URL + "/api/flo/0123456789abcdef0123456789abcdef/invoke"}
}

func asFlowError(t *testing.T, err error) *flow.Error {
	t.Helper()
	var fe *flow.Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *flow.Error", err, err)
	}
	return fe
}

func TestInvokeOutcomeTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		want   flow.Class
	}{
		{200, flow.ClassSuccess},
		{201, flow.ClassSuccess},
		{202, flow.ClassSuccess},
		{204, flow.ClassSuccess},
		{400, flow.ClassPermanent},
		{401, flow.ClassPermanent},
		{403, flow.ClassPermanent},
		{404, flow.ClassPermanent},
		{405, flow.ClassPermanent},
		{408, flow.ClassRetryable},
		{409, flow.ClassPermanent},
		{422, flow.ClassPermanent},
		{425, flow.ClassRetryable},
		{429, flow.ClassRetryable},
		{500, flow.ClassRetryable},
		{501, flow.ClassRetryable},
		{502, flow.ClassRetryable},
		{503, flow.ClassRetryable},
		{504, flow.ClassRetryable},
		{599, flow.ClassRetryable},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Execution-Id", "exec-1")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, `{"errorSummary":"boom"}`)
			})
			res, err := newClient(t).Invoke(context.Background(), endpoint(srv), flow.Request{IdempotencyKey: "k1"})
			if res == nil {
				t.Fatalf("no Result for a response; err = %v", err)
			}
			if res.StatusCode != tt.status || res.ExecutionID != "exec-1" {
				t.Errorf("Result = status %d, execution id %q; want %d, exec-1", res.StatusCode, res.ExecutionID, tt.status)
			}
			if tt.want == flow.ClassSuccess {
				if err != nil {
					t.Fatalf("Invoke() error = %v, want nil", err)
				}
				return
			}
			fe := asFlowError(t, err)
			if fe.Class != tt.want || fe.StatusCode != tt.status || fe.OutcomeUnknown {
				t.Errorf("Error = {Class %v, StatusCode %d, OutcomeUnknown %v}; want {%v, %d, false}",
					fe.Class, fe.StatusCode, fe.OutcomeUnknown, tt.want, tt.status)
			}
			wantMsg := "flow suspend-user: HTTP " + strconv.Itoa(tt.status)
			if !strings.HasPrefix(err.Error(), wantMsg) || !strings.Contains(err.Error(), `{"errorSummary":"boom"}`) {
				t.Errorf("Error() = %q, want prefix %q and the body", err.Error(), wantMsg)
			}
			if got := flow.Classify(tt.status); got != tt.want {
				t.Errorf("Classify(%d) = %v, want %v", tt.status, got, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		want   flow.Class
	}{
		{100, flow.ClassPermanent},
		{199, flow.ClassPermanent},
		{200, flow.ClassSuccess},
		{299, flow.ClassSuccess},
		{301, flow.ClassPermanent},
		{307, flow.ClassPermanent},
		{400, flow.ClassPermanent},
		{408, flow.ClassRetryable},
		{410, flow.ClassPermanent},
		{425, flow.ClassRetryable},
		{429, flow.ClassRetryable},
		{499, flow.ClassPermanent},
		{500, flow.ClassRetryable},
		{599, flow.ClassRetryable},
		{600, flow.ClassPermanent},
		{0, flow.ClassPermanent},
	}
	for _, tt := range tests {
		if got := flow.Classify(tt.status); got != tt.want {
			t.Errorf("Classify(%d) = %v, want %v", tt.status, got, tt.want)
		}
	}
	for c, want := range map[flow.Class]string{flow.ClassRetryable: "retryable", flow.ClassPermanent: "permanent", flow.ClassSuccess: "success"} {
		if c.String() != want {
			t.Errorf("Class(%d).String() = %q, want %q", int(c), c.String(), want)
		}
	}
}

func TestInvokeRedirectIsPermanentAndNotFollowed(t *testing.T) {
	t.Parallel()
	var followed atomic.Int32
	target := newServer(t, func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/elsewhere?clientToken=leak", http.StatusTemporaryRedirect)
	})
	_, err := newClient(t).Invoke(context.Background(), endpoint(srv), flow.Request{})
	fe := asFlowError(t, err)
	if fe.Class != flow.ClassPermanent || fe.StatusCode != http.StatusTemporaryRedirect {
		t.Errorf("Error = {%v, %d}, want {permanent, 307}", fe.Class, fe.StatusCode)
	}
	if followed.Load() != 0 {
		t.Errorf("redirect was followed")
	}
	if strings.Contains(err.Error(), "leak") {
		t.Errorf("Error() = %q quotes the redirect target", err.Error())
	}
}

func TestInvokeRetryAfter(t *testing.T) {
	t.Parallel()
	date := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name    string
		status  int
		headers map[string]string
		noDate  bool
		want    time.Duration
		slack   time.Duration
	}{
		{"retry-after seconds", 503, map[string]string{"Retry-After": "7"}, false, 7 * time.Second, 0},
		{"retry-after seconds on 429", 429, map[string]string{"Retry-After": "1"}, false, time.Second, 0},
		{"retry-after http-date", 429, map[string]string{"Retry-After": date.Add(2 * time.Minute).Format(http.TimeFormat)}, false, 2 * time.Minute, 0},
		{"retry-after wins over reset", 429, map[string]string{"Retry-After": "3", "X-Rate-Limit-Reset": strconv.FormatInt(date.Unix()+50, 10)}, false, 3 * time.Second, 0},
		{"x-rate-limit-reset relative to Date", 429, map[string]string{"X-Rate-Limit-Reset": strconv.FormatInt(date.Unix()+42, 10)}, false, 42 * time.Second, 0},
		{"x-rate-limit-reset without Date", 429, map[string]string{"X-Rate-Limit-Reset": strconv.FormatInt(time.Now().Unix()+30, 10)}, true, 30 * time.Second, 3 * time.Second},
		{"x-rate-limit-reset ignored on 503", 503, map[string]string{"X-Rate-Limit-Reset": strconv.FormatInt(date.Unix()+42, 10)}, false, 0, 0},
		{"reset in the past", 429, map[string]string{"X-Rate-Limit-Reset": strconv.FormatInt(date.Unix()-10, 10)}, false, 0, 0},
		{"garbage", 429, map[string]string{"Retry-After": "soon"}, false, 0, 0},
		{"capped at one hour", 503, map[string]string{"Retry-After": "999999999999"}, false, time.Hour, 0},
		{"none", 429, nil, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.noDate {
					w.Header()["Date"] = nil // suppress the server's Date
				} else {
					w.Header().Set("Date", date.Format(http.TimeFormat))
				}
				for k, v := range tt.headers {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
			})
			_, err := newClient(t).Invoke(context.Background(), endpoint(srv), flow.Request{})
			fe := asFlowError(t, err)
			if d := fe.RetryAfter - tt.want; d > 0 || d < -tt.slack {
				t.Errorf("RetryAfter = %v, want %v (slack %v)", fe.RetryAfter, tt.want, tt.slack)
			}
			if fe.Class != flow.ClassRetryable {
				t.Errorf("Class = %v, want retryable", fe.Class)
			}
		})
	}
}

func TestInvokeTimeoutAfterSendIsOutcomeUnknown(t *testing.T) {
	t.Parallel()
	received := make(chan struct{}, 1)
	srv := hangingServer(t, func() { received <- struct{}{} })
	ep := endpoint(srv)
	ep.Timeout = 200 * time.Millisecond
	res, err := newClient(t).Invoke(context.Background(), ep, flow.Request{IdempotencyKey: "k"})
	if res != nil {
		t.Errorf("Result = %+v, want nil when no response came", res)
	}
	fe := asFlowError(t, err)
	if fe.Class != flow.ClassRetryable || !fe.OutcomeUnknown || fe.StatusCode != 0 {
		t.Errorf("Error = {%v, unknown %v, status %d}, want {retryable, true, 0}", fe.Class, fe.OutcomeUnknown, fe.StatusCode)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error does not wrap context.DeadlineExceeded: %v", err)
	}
	if want := "flow suspend-user: no response within 200ms (outcome unknown)"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	select {
	case <-received:
	default:
		t.Error("server never received the request")
	}
}

// blockingAuth waits for the call's context to end, so the timeout hits before sending.
type blockingAuth struct{}

func (blockingAuth) Authorize(ctx context.Context, _ *http.Request) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestInvokeTimeoutBeforeSend(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	ep := endpoint(srv)
	ep.Timeout = 50 * time.Millisecond
	ep.Auth = blockingAuth{}
	_, err := newClient(t).Invoke(context.Background(), ep, flow.Request{})
	fe := asFlowError(t, err)
	if fe.Class != flow.ClassRetryable || fe.OutcomeUnknown {
		t.Errorf("Error = {%v, unknown %v}, want {retryable, false}", fe.Class, fe.OutcomeUnknown)
	}
	if want := "flow suspend-user: no response within 50ms (request not sent)"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if hits.Load() != 0 {
		t.Errorf("server got %d requests, want 0", hits.Load())
	}
}

func TestInvokeConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ep := flow.Endpoint{Name: "gone", URL: "http://" + addr + "/api/flo/x/invoke?clientToken=query-secret-123",
		Auth: flow.ClientToken{Source: flow.StaticToken("header-secret-456")}}
	res, err := newClient(t).Invoke(context.Background(), ep, flow.Request{})
	if res != nil {
		t.Errorf("Result = %+v, want nil", res)
	}
	fe := asFlowError(t, err)
	if fe.Class != flow.ClassRetryable || fe.OutcomeUnknown || fe.StatusCode != 0 {
		t.Errorf("Error = {%v, unknown %v, status %d}, want {retryable, false, 0}", fe.Class, fe.OutcomeUnknown, fe.StatusCode)
	}
	if !strings.Contains(err.Error(), "connection refused") || !strings.HasPrefix(err.Error(), "flow gone: request not sent: ") {
		t.Errorf("Error() = %q, want a 'request not sent ... connection refused' message", err.Error())
	}
	assertNoSecrets(t, err, "query-secret-123", "header-secret-456", "clientToken")
}

func TestInvokeDNSFailure(t *testing.T) {
	t.Parallel()
	// .invalid never resolves (RFC 6761). Without a resolver the lookup may instead time out;
	// either way nothing was sent and the call is retryable.
	ep := flow.Endpoint{Name: "nowhere", URL: "https://flows.example.invalid/api/flo/x/invoke", Timeout: 3 * time.Second}
	_, err := newClient(t).Invoke(context.Background(), ep, flow.Request{})
	fe := asFlowError(t, err)
	if fe.Class != flow.ClassRetryable || fe.OutcomeUnknown || fe.StatusCode != 0 {
		t.Errorf("Error = %v {%v, unknown %v}, want retryable, not unknown", err, fe.Class, fe.OutcomeUnknown)
	}
}

func TestInvokeConnectionDroppedAfterSend(t *testing.T) {
	t.Parallel()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
	})
	_, err := newClient(t).Invoke(context.Background(), endpoint(srv), flow.Request{IdempotencyKey: "k"})
	fe := asFlowError(t, err)
	if fe.Class != flow.ClassRetryable || !fe.OutcomeUnknown {
		t.Errorf("Error = {%v, unknown %v}, want {retryable, true}", fe.Class, fe.OutcomeUnknown)
	}
	if !strings.Contains(err.Error(), "(outcome unknown)") {
		t.Errorf("Error() = %q, want it to say the outcome is unknown", err.Error())
	}
}

func TestInvokeCallerCancel(t *testing.T) {
	t.Parallel()
	received := make(chan struct{})
	srv := hangingServer(t, func() { close(received) })
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-received
		cancel()
	}()
	_, err := newClient(t).Invoke(ctx, endpoint(srv), flow.Request{})
	fe := asFlowError(t, err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error does not wrap context.Canceled: %v", err)
	}
	if fe.Class != flow.ClassRetryable || !fe.OutcomeUnknown {
		t.Errorf("Error = {%v, unknown %v}, want {retryable, true}", fe.Class, fe.OutcomeUnknown)
	}
	if want := "flow suspend-user: cancelled (outcome unknown)"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestInvokeCallerCancelBeforeCall(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	ctx, cancel := context.WithCancelCause(context.Background())
	shutdown := errors.New("worker shutting down")
	cancel(shutdown)
	_, err := newClient(t).Invoke(ctx, endpoint(srv), flow.Request{})
	fe := asFlowError(t, err)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, shutdown) {
		t.Errorf("error %v does not wrap both context.Canceled and the cause", err)
	}
	if fe.OutcomeUnknown || hits.Load() != 0 {
		t.Errorf("OutcomeUnknown = %v, hits = %d; want false, 0", fe.OutcomeUnknown, hits.Load())
	}
}

func TestInvokeCallerDeadline(t *testing.T) {
	t.Parallel()
	srv := hangingServer(t, func() {})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := newClient(t).Invoke(ctx, endpoint(srv), flow.Request{}) // ep.Timeout is 30 s
	fe := asFlowError(t, err)
	if !errors.Is(err, context.DeadlineExceeded) || fe.Class != flow.ClassRetryable || !fe.OutcomeUnknown {
		t.Errorf("Error = %v {%v, unknown %v}, want deadline exceeded, retryable, unknown", err, fe.Class, fe.OutcomeUnknown)
	}
	if !strings.Contains(err.Error(), "caller's deadline exceeded") {
		t.Errorf("Error() = %q", err.Error())
	}
}

type seen struct {
	header http.Header
	query  string
	body   map[string]any
}

// recordingServer answers with status and body and sends what it saw on the channel.
func recordingServer(t *testing.T, status int, body string) (*httptest.Server, <-chan seen) {
	t.Helper()
	ch := make(chan seen, 1)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		var s seen
		s.header = r.Header.Clone()
		s.query = r.URL.RawQuery
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		if err := dec.Decode(&s.body); err != nil {
			t.Errorf("server: body is not a JSON object: %v", err)
		}
		ch <- s
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
	return srv, ch
}

func TestInvokeSendsTokenIdempotencyKeyAndInputs(t *testing.T) {
	t.Parallel()
	srv, ch := recordingServer(t, 200, `{"ok":true}`)
	ep := endpoint(srv)
	ep.Auth = flow.ClientToken{Source: flow.StaticToken("tok-abcdef")}
	at := time.Date(2024, 6, 9, 14, 56, 58, 0, time.FixedZone("CEST", 2*3600))
	type severity string
	req := flow.Request{
		Inputs: map[string]any{
			"eventId":  "evt-1",
			"severity": severity("High"),
			"count":    3,
			"ratio":    float32(0.1),
			"big":      uint64(1 << 63),
			"exact":    json.Number("12345678901234567890"),
			"flag":     true,
			"at":       at,
			"html":     "<a&b>",
		},
		IdempotencyKey: "evt-1/suspend-user",
		Header:         http.Header{"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
	}
	res, err := newClient(t).Invoke(context.Background(), ep, req)
	if err != nil {
		t.Fatalf("Invoke() error = %v", err)
	}
	if string(res.Body) != `{"ok":true}` || res.Duration <= 0 {
		t.Errorf("Result = body %q, duration %v", res.Body, res.Duration)
	}
	got := <-ch
	for name, want := range map[string]string{
		"X-Api-Client-Token": "tok-abcdef",
		"Idempotency-Key":    "evt-1/suspend-user",
		"Content-Type":       "application/json",
		"Accept":             "application/json",
		"User-Agent":         "remediator",
		"Traceparent":        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	} {
		if v := got.header.Get(name); v != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	want := map[string]any{
		"eventId":        "evt-1",
		"severity":       "High",
		"count":          json.Number("3"),
		"ratio":          json.Number("0.1"),
		"big":            json.Number("9223372036854775808"),
		"exact":          json.Number("12345678901234567890"),
		"flag":           true,
		"at":             "2024-06-09T12:56:58Z",
		"html":           "<a&b>",
		"idempotencyKey": "evt-1/suspend-user",
	}
	if len(got.body) != len(want) {
		t.Errorf("body = %v, want %v", got.body, want)
	}
	for k, v := range want {
		if got.body[k] != v {
			t.Errorf("body[%q] = %#v, want %#v", k, got.body[k], v)
		}
	}
}

func TestInvokeWithoutIdempotencyKey(t *testing.T) {
	t.Parallel()
	srv, ch := recordingServer(t, 200, ``)
	if _, err := newClient(t).Invoke(context.Background(), endpoint(srv), flow.Request{Inputs: map[string]any{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	got := <-ch
	if _, ok := got.body["idempotencyKey"]; ok || got.header.Get("Idempotency-Key") != "" {
		t.Errorf("idempotency key sent although empty: header %q, body %v", got.header.Get("Idempotency-Key"), got.body)
	}
}

func assertNoSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	var texts []string
	for e := err; e != nil; e = errors.Unwrap(e) {
		texts = append(texts, e.Error())
	}
	texts = append(texts, strings.ReplaceAll(err.Error(), "%", ""))
	for _, text := range texts {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("error text %q contains %q", text, s)
			}
		}
	}
}

func TestInvokeNeverLeaksCredentials(t *testing.T) {
	t.Parallel()
	const headerTok, queryTok = "hdr-token-0001", "qry-token-0002"
	// A hostile flow that echoes everything it got.
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "token="+r.Header.Get("X-Api-Client-Token")+" auth="+r.Header.Get("Authorization")+" q="+r.URL.RawQuery)
	})
	tests := []struct {
		name string
		auth flow.Authorizer
		url  string
	}{
		{"client token header", flow.ClientToken{Source: flow.StaticToken(headerTok)}, srv.URL + "/api/flo/a/invoke"},
		{"client token query", nil, srv.URL + "/api/flo/a/invoke?clientToken=" + queryTok},
		{"bearer", bearer(headerTok), srv.URL + "/api/flo/a/invoke"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := newClient(t).Invoke(context.Background(), flow.Endpoint{Name: "echo", URL: tt.url, Auth: tt.auth}, flow.Request{})
			fe := asFlowError(t, err)
			if fe.StatusCode != 500 {
				t.Fatalf("StatusCode = %d, want 500", fe.StatusCode)
			}
			assertNoSecrets(t, err, headerTok, queryTok)
			if !strings.Contains(err.Error(), "[REDACTED]") {
				t.Errorf("Error() = %q, want the echoed secret redacted", err.Error())
			}
		})
	}
}

type bearer string

func (b bearer) Authorize(_ context.Context, r *http.Request) error {
	r.Header.Set("Authorization", "Bearer "+string(b))
	return nil
}

func TestInvokeRefusesInvalidInputsWithoutSending(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	s := "x"
	tests := []struct {
		name    string
		req     flow.Request
		wantKey string
	}{
		{"list", flow.Request{Inputs: map[string]any{"tags": []string{"a"}}}, `"tags"`},
		{"array", flow.Request{Inputs: map[string]any{"arr": [2]int{}}}, `"arr"`},
		{"any list", flow.Request{Inputs: map[string]any{"l": []any{"a"}}}, `"l"`},
		{"map", flow.Request{Inputs: map[string]any{"additionalData": map[string]any{"a": 1}}}, `"additionalData"`},
		{"struct", flow.Request{Inputs: map[string]any{"s": struct{ A int }{}}}, `"s"`},
		{"pointer", flow.Request{Inputs: map[string]any{"p": &s}}, `"p"`},
		{"nil", flow.Request{Inputs: map[string]any{"n": nil}}, `"n"`},
		{"NaN", flow.Request{Inputs: map[string]any{"f": nanValue()}}, `"f"`},
		{"bad json.Number", flow.Request{Inputs: map[string]any{"num": json.Number("0x10")}}, `"num"`},
		{"func", flow.Request{Inputs: map[string]any{"fn": func() {}}}, `"fn"`},
		{"reserved key", flow.Request{Inputs: map[string]any{"idempotencyKey": "k"}}, `"idempotencyKey"`},
		{"empty key", flow.Request{Inputs: map[string]any{"": "v"}}, `empty name`},
		{"reserved header", flow.Request{Header: http.Header{"X-Okta-Workflows-Foo": {"1"}}}, `X-Okta-Workflows-Foo`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := newClient(t).Invoke(context.Background(), endpoint(srv), tt.req)
			if res != nil {
				t.Errorf("Result = %+v, want nil", res)
			}
			fe := asFlowError(t, err)
			if fe.Class != flow.ClassPermanent || !errors.Is(err, flow.ErrInvalidInput) {
				t.Errorf("Error = %v (class %v), want permanent ErrInvalidInput", err, fe.Class)
			}
			if !strings.Contains(err.Error(), tt.wantKey) {
				t.Errorf("Error() = %q, want it to name %s", err.Error(), tt.wantKey)
			}
		})
	}
	t.Cleanup(func() {
		if n := hits.Load(); n != 0 {
			t.Errorf("server got %d requests, want 0", n)
		}
	})
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

func TestInvokeInvalidEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ep   flow.Endpoint
	}{
		{"empty URL", flow.Endpoint{Name: "x"}},
		{"bad scheme", flow.Endpoint{Name: "x", URL: "ftp://example.com/api/flo/a/invoke"}},
		{"no host", flow.Endpoint{Name: "x", URL: "https:///api/flo/a/invoke"}},
		{"user info", flow.Endpoint{Name: "x", URL: "https://u:p@example.com/api/flo/a/invoke"}},
		{"negative timeout", flow.Endpoint{Name: "x", URL: "https://example.com/", Timeout: -time.Second}},
		{"timeout at okta cut-off", flow.Endpoint{Name: "x", URL: "https://example.com/", Timeout: 60 * time.Second}},
		{"unparsable", flow.Endpoint{Name: "x", URL: "https://example.com/%zz?clientToken=secret-999"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.ep.Validate(); !errors.Is(err, flow.ErrInvalidEndpoint) {
				t.Errorf("Validate() = %v, want ErrInvalidEndpoint", err)
			}
			_, err := newClient(t).Invoke(context.Background(), tt.ep, flow.Request{})
			fe := asFlowError(t, err)
			if fe.Class != flow.ClassPermanent || !errors.Is(err, flow.ErrInvalidEndpoint) {
				t.Errorf("Invoke() = %v, want permanent ErrInvalidEndpoint", err)
			}
			assertNoSecrets(t, err, "secret-999")
		})
	}
	for _, ok := range []flow.Endpoint{
		{URL: "https://acme.workflows.okta.com/api/flo/abc/invoke"},
		{URL: "http://127.0.0.1:8080/api/flo/abc/invoke?clientToken=t", Timeout: 59 * time.Second},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", ok, err)
		}
	}
}

func TestInvokeExecutionID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers map[string]string
		custom  string
		want    string
	}{
		{"default header", map[string]string{"X-Execution-Id": "e1"}, "", "e1"},
		{"custom header", map[string]string{"X-Flo-Exec": "e2", "X-Execution-Id": "other"}, "X-Flo-Exec", "e2"},
		{"fallback scan", map[string]string{"X-Okta-Execution-Id": "e3"}, "", "e3"},
		{"none", map[string]string{"X-Request-Id": "r"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.headers {
					w.Header().Set(k, v)
				}
			})
			ep := endpoint(srv)
			ep.ExecutionIDHeader = tt.custom
			res, err := newClient(t).Invoke(context.Background(), ep, flow.Request{})
			if err != nil {
				t.Fatal(err)
			}
			if res.ExecutionID != tt.want {
				t.Errorf("ExecutionID = %q, want %q", res.ExecutionID, tt.want)
			}
		})
	}
}

func TestInvokeBodyLimits(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 10000)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "line1\nline2\t"+big)
	})
	res, err := newClient(t).Invoke(context.Background(), endpoint(srv), flow.Request{})
	if len(res.Body) != flow.MaxResultBody {
		t.Errorf("len(Body) = %d, want %d", len(res.Body), flow.MaxResultBody)
	}
	msg := err.Error()
	want := "flow suspend-user: HTTP 502 Bad Gateway: line1 line2 x"
	if !strings.HasPrefix(msg, want) || len(msg) > len(want)+200 || strings.ContainsAny(msg, "\n\t") {
		t.Errorf("Error() = %q (len %d), want prefix %q, one line, body cut at 200 bytes", msg, len(msg), want)
	}
}

func TestInvokeUserAgentAndCustomHTTPClient(t *testing.T) {
	t.Parallel()
	srv, ch := recordingServer(t, 204, "")
	hc := &http.Client{Transport: &http.Transport{}}
	c := flow.NewClient(flow.ClientConfig{HTTPClient: hc, UserAgent: "remediator/1.2"})
	t.Cleanup(c.CloseIdleConnections)
	if _, err := c.Invoke(context.Background(), endpoint(srv), flow.Request{}); err != nil {
		t.Fatal(err)
	}
	if ua := (<-ch).header.Get("User-Agent"); ua != "remediator/1.2" {
		t.Errorf("User-Agent = %q", ua)
	}
	if hc.CheckRedirect != nil {
		t.Error("NewClient modified the caller's http.Client")
	}
}

func TestInvokeCredentialErrorIsRetryable(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	ep := endpoint(srv)
	ep.Auth = flow.ClientToken{Source: flow.TokenFromFile(t.TempDir() + "/missing")}
	_, err := newClient(t).Invoke(context.Background(), ep, flow.Request{})
	fe := asFlowError(t, err)
	if fe.Class != flow.ClassRetryable || fe.OutcomeUnknown || hits.Load() != 0 {
		t.Errorf("Error = %v {%v, unknown %v}, hits %d; want retryable, not unknown, 0 hits", err, fe.Class, fe.OutcomeUnknown, hits.Load())
	}
	if !strings.Contains(err.Error(), "client token: token file ") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestErrorZeroValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *flow.Error
		want string
	}{
		{&flow.Error{StatusCode: 503}, "flow: HTTP 503 Service Unavailable"},
		{&flow.Error{Err: io.ErrUnexpectedEOF}, "flow: unexpected EOF"},
		{&flow.Error{Class: flow.ClassPermanent}, "flow: permanent failure"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
