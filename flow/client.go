package flow

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Defaults and limits.
const (
	// DefaultTimeout is the per-call timeout when Endpoint.Timeout is zero.
	DefaultTimeout = 30 * time.Second
	// MaxTimeout is Okta's cut-off: the API Endpoint closes the connection after 60 s.
	// Endpoint.Timeout must be below it.
	MaxTimeout = 60 * time.Second
	// DefaultExecutionIDHeader is the response header read for the execution id when
	// Endpoint.ExecutionIDHeader is empty. Okta does not document the real name.
	DefaultExecutionIDHeader = "X-Execution-Id"
	// DefaultUserAgent is sent when ClientConfig.UserAgent is empty.
	DefaultUserAgent = "remediator"
	// HeaderIdempotencyKey carries Request.IdempotencyKey.
	HeaderIdempotencyKey = "Idempotency-Key"
	// BodyIdempotencyKey is the body field that carries Request.IdempotencyKey. It is
	// reserved: Request.Inputs may not use it.
	BodyIdempotencyKey = "idempotencyKey"
	// MaxResultBody is how much of a response body Result.Body keeps when
	// ClientConfig.MaxResultBody is zero.
	MaxResultBody = 4 << 10
	// errorBodyBytes is how much of a response body an error message quotes.
	errorBodyBytes = 200
)

// Endpoint is one flow's API Endpoint.
type Endpoint struct {
	// Name is the flow's name in configuration; it labels errors.
	Name string
	// URL is https://{org}.workflows.okta.com/api/flo/{alias}/invoke. http is accepted for
	// local simulators. A ?clientToken= query is passed on but never shown in errors.
	URL string
	// Auth adds credentials; nil sends none.
	Auth Authorizer
	// Timeout bounds each call, from sending to reading the response. Default
	// DefaultTimeout (30 s); it must be > 0 and below MaxTimeout (Okta's 60 s cut-off).
	Timeout time.Duration
	// ExecutionIDHeader is the response header carrying the execution id. Default
	// DefaultExecutionIDHeader. When it is absent, any header whose lower-cased name
	// contains "execution-id" is used.
	ExecutionIDHeader string
	// Action names an Okta native action (clearSessions, suspend, expirePassword,
	// removeFromGroup, setUserRisk) instead of a flow: such an endpoint has no URL and no
	// Auth, and is called by an action invoker (package action), not by [Client], which
	// refuses it. Empty for a Workflows flow.
	Action string
	// Params are the action's parameters, such as groupId for removeFromGroup or riskLevel
	// for setUserRisk. Unused for a flow.
	Params map[string]string
}

// Validate reports whether the endpoint can be called. Zero Timeout is valid (the default).
// The error wraps ErrInvalidEndpoint.
func (ep Endpoint) Validate() error {
	if ep.Action != "" {
		return fmt.Errorf("%w: %q is an Okta native action, not a Workflows flow: it needs an action invoker", ErrInvalidEndpoint, ep.Action)
	}
	if ep.Timeout < 0 || ep.Timeout >= MaxTimeout {
		return fmt.Errorf("%w: timeout %v must be > 0 and < %v (Okta closes the connection at 60 s)",
			ErrInvalidEndpoint, ep.Timeout, MaxTimeout)
	}
	if ep.URL == "" {
		return fmt.Errorf("%w: URL is empty", ErrInvalidEndpoint)
	}
	u, err := url.Parse(ep.URL)
	if err != nil {
		// url.Error quotes the URL, query string included.
		return fmt.Errorf("%w: URL does not parse", ErrInvalidEndpoint)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("%w: URL scheme must be https (or http for a local simulator)", ErrInvalidEndpoint)
	}
	if u.Host == "" {
		return fmt.Errorf("%w: URL has no host", ErrInvalidEndpoint)
	}
	if u.User != nil {
		return fmt.Errorf("%w: URL must not carry user credentials", ErrInvalidEndpoint)
	}
	return nil
}

func (ep Endpoint) timeout() time.Duration {
	if ep.Timeout == 0 {
		return DefaultTimeout
	}
	return ep.Timeout
}

func (ep Endpoint) label() string {
	if ep.Name == "" {
		return "(unnamed)"
	}
	return ep.Name
}

// Request is one invocation.
type Request struct {
	// Inputs become the JSON body. Values must be string, bool, any int, uint or float kind
	// (not NaN or ±Inf), json.Number, or time.Time (sent as RFC 3339 in UTC); named types
	// of those kinds are sent as their underlying value. Lists, maps, structs, pointers and
	// nil are refused with ErrInvalidInput before anything is sent.
	Inputs map[string]any
	// IdempotencyKey is sent as the Idempotency-Key header and the "idempotencyKey" body
	// field. Empty sends neither.
	IdempotencyKey string
	// Header holds extra request headers, e.g. W3C traceparent. Content-Type, Accept,
	// User-Agent, Idempotency-Key and the Authorizer's headers override it. Names starting
	// with X-Okta-Workflows are reserved by Okta and refused.
	Header http.Header
}

// Result is a response from the flow (or from an Okta native action).
type Result struct {
	StatusCode int
	// ExecutionID is the Workflows execution id from the response headers; "" if none.
	ExecutionID string
	// Header is every response header, redacted (see [RedactHeader]): kept so that the
	// execution id can be found whatever its header name.
	Header http.Header
	// Body is the start of the response body (the flow's output), at most
	// ClientConfig.MaxResultBody bytes, with any credential the request carried redacted.
	Body []byte
	// BodyTruncated is true when the body was longer than what Body keeps.
	BodyTruncated bool
	// Duration is the time from starting the call to reading the body.
	Duration time.Duration
	// Note says something the caller should record beside a success, such as "already in
	// effect: the user was already SUSPENDED" from an action invoker. Empty from [Client].
	Note string
	// Hold, when positive, is how long the target's rate-limit window says no further call
	// may be made (an Okta answer with X-Rate-Limit-Remaining: 0, until X-Rate-Limit-Reset).
	// The dispatcher keeps the flow away that long, as it does for a 429's RetryAfter.
	// [Client] leaves it zero: Workflows has no such header on a success.
	Hold time.Duration
}

// ClientConfig configures a Client.
type ClientConfig struct {
	// HTTPClient sends the requests. Default: a dedicated client whose transport keeps up
	// to 32 idle connections per host and bounds TLS handshakes to 10 s, with no overall
	// timeout (each call has its own). A given client is copied, not modified, and the copy
	// never follows redirects.
	HTTPClient *http.Client
	// UserAgent is the User-Agent header. Default DefaultUserAgent.
	UserAgent string
	// TracerProvider makes the HTTP client span of each call (otelhttp, HTTP semantic
	// conventions; the URL is recorded without its query string). Default
	// otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider records the http.client.* metrics. Default otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// MaxResultBody is how much of a response body Result.Body keeps (the flow output kept
	// in status records). Default MaxResultBody (4 KiB).
	MaxResultBody int
}

// Client invokes flows. It is safe for concurrent use.
type Client struct {
	hc        *http.Client
	userAgent string
	now       func() time.Time
	maxBody   int
}

// NewClient returns a Client with cfg's defaults filled in.
func NewClient(cfg ClientConfig) *Client {
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	} else {
		hc.Transport = newTransport()
	}
	hc.Transport = instrument(hc.Transport, cfg.TracerProvider, cfg.MeterProvider)
	// A redirect from the invoke API is a misconfiguration; hand the 3xx back as is.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if cfg.MaxResultBody <= 0 {
		cfg.MaxResultBody = MaxResultBody
	}
	return &Client{hc: &hc, userAgent: cfg.UserAgent, now: time.Now, maxBody: cfg.MaxResultBody}
}

func newTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
}

// CloseIdleConnections closes the idle keep-alive connections of the client's transport.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Invoke POSTs Inputs and the idempotency key as a JSON object to ep.URL. On 2xx it returns
// the Result and nil. Otherwise it returns the Result (when a response came, else nil) and an
// [*Error] classified by the outcome table in the package documentation.
func (c *Client) Invoke(ctx context.Context, ep Endpoint, req Request) (*Result, error) {
	fail := func(class Class, err error, detail string) *Error {
		return &Error{Class: class, Err: err, flow: ep.label(), detail: detail}
	}
	if err := ep.Validate(); err != nil {
		return nil, fail(ClassPermanent, err, err.Error())
	}
	body, err := encodeBody(req)
	if err != nil {
		return nil, fail(ClassPermanent, err, err.Error())
	}
	for name := range req.Header {
		if strings.HasPrefix(strings.ToLower(name), "x-okta-workflows") {
			err := fmt.Errorf("%w: header %s: Okta reserves the x-okta-workflows prefix", ErrInvalidInput, name)
			return nil, fail(ClassPermanent, err, err.Error())
		}
	}

	var secrets []string
	timeout := ep.timeout()
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	}
	start := c.now()
	var resp *http.Response
	// At most two sends: the second only after a 401 that a Refresher renewed credentials
	// for. A 401 means the flow did not run, so sending again cannot run it twice.
	for attempt := 0; ; attempt++ {
		wrote.Store(false)
		hreq, err := http.NewRequestWithContext(httptrace.WithClientTrace(callCtx, trace), http.MethodPost, ep.URL, bytes.NewReader(body))
		if err != nil {
			err = fmt.Errorf("%w: cannot build request", ErrInvalidEndpoint)
			return nil, fail(ClassPermanent, err, err.Error())
		}
		for name, values := range req.Header {
			hreq.Header[http.CanonicalHeaderKey(name)] = slices.Clone(values)
		}
		hreq.Header.Set("Content-Type", "application/json")
		hreq.Header.Set("Accept", "application/json")
		hreq.Header.Set("User-Agent", c.userAgent)
		if req.IdempotencyKey != "" {
			hreq.Header.Set(HeaderIdempotencyKey, req.IdempotencyKey)
		} else {
			hreq.Header.Del(HeaderIdempotencyKey)
		}

		if ep.Auth != nil {
			if err := ep.Auth.Authorize(callCtx, hreq); err != nil {
				if e := c.ctxError(ctx, callCtx, ep, false, start); e != nil {
					return nil, e
				}
				return nil, fail(ClassRetryable, err, redact(err.Error(), secretsOf(hreq)))
			}
		}
		// Keep the first attempt's credentials too: an answer may quote either.
		secrets = append(secrets, secretsOf(hreq)...)
		slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })

		resp, err = c.hc.Do(hreq)
		if err != nil {
			sent := wrote.Load()
			if e := c.ctxError(ctx, callCtx, ep, sent, start); e != nil {
				return nil, e
			}
			// *url.Error quotes the URL, query string included: keep only its cause.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			e := fail(ClassRetryable, err, "")
			e.OutcomeUnknown = sent
			if sent {
				e.detail = "connection lost after the request was sent (outcome unknown): " + redact(err.Error(), secrets)
			} else {
				e.detail = "request not sent: " + redact(err.Error(), secrets)
			}
			return nil, e
		}
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 {
			break
		}
		r, ok := ep.Auth.(Refresher)
		if !ok || !r.Refresh(hreq) {
			break
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}
	defer resp.Body.Close()
	// A read error after the status line arrived does not change the outcome: the flow
	// answered. Keep what was read.
	b, _ := io.ReadAll(io.LimitReader(resp.Body, int64(c.maxBody)+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	truncated := len(b) > c.maxBody
	if truncated {
		b = b[:c.maxBody]
	}

	res := &Result{
		StatusCode:    resp.StatusCode,
		ExecutionID:   executionID(resp.Header, ep.ExecutionIDHeader),
		Header:        RedactHeader(resp.Header, secrets),
		Body:          []byte(redact(string(b), secrets)),
		BodyTruncated: truncated,
		Duration:      c.now().Sub(start),
	}
	class := Classify(resp.StatusCode)
	if class == ClassSuccess {
		return res, nil
	}
	e := fail(class, nil, snippet(b, errorBodyBytes, secrets))
	e.StatusCode = resp.StatusCode
	e.Okta = parseOktaError(b, secrets)
	e.RetryAfter = retryAfter(resp.StatusCode, resp.Header, c.now())
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		e.detail = "redirects are not followed; check the endpoint URL"
	}
	return res, e
}

// ctxError returns the error for a call that ended because a context did, or nil if neither
// context has ended. The caller's cancellation wins, then the caller's deadline, then ours.
func (c *Client) ctxError(ctx, callCtx context.Context, ep Endpoint, sent bool, start time.Time) *Error {
	suffix := " (request not sent)"
	if sent {
		suffix = " (outcome unknown)"
	}
	e := &Error{Class: ClassRetryable, OutcomeUnknown: sent, flow: ep.label()}
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		e.Err = context.Canceled
		if cause := context.Cause(ctx); cause != nil && cause != context.Canceled {
			e.Err = fmt.Errorf("%w: %w", context.Canceled, cause)
		}
		e.detail = "cancelled" + suffix
	case ctx.Err() != nil:
		e.Err = context.DeadlineExceeded
		e.detail = fmt.Sprintf("caller's deadline exceeded after %v%s", c.now().Sub(start).Round(time.Millisecond), suffix)
	case callCtx.Err() != nil:
		e.Err = context.DeadlineExceeded
		e.detail = fmt.Sprintf("no response within %v%s", ep.timeout(), suffix)
	default:
		return nil
	}
	return e
}

// secretsOf lists the credential values on a request, longest first, for redaction.
func secretsOf(req *http.Request) []string {
	var s []string
	add := func(v string) {
		if v = strings.TrimSpace(v); len(v) >= 4 {
			s = append(s, v)
		}
	}
	for _, name := range []string{HeaderClientToken, "Authorization", "Proxy-Authorization"} {
		for _, v := range req.Header.Values(name) {
			add(v)
			if _, cred, ok := strings.Cut(v, " "); ok {
				add(cred)
			}
		}
	}
	for _, vs := range req.URL.Query() {
		for _, v := range vs {
			add(v)
		}
	}
	slices.SortFunc(s, func(a, b string) int { return len(b) - len(a) })
	return s
}

// executionID finds the execution id in the response headers.
func executionID(h http.Header, name string) string {
	if name == "" {
		name = DefaultExecutionIDHeader
	}
	if v := h.Get(name); v != "" {
		return v
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		if strings.Contains(strings.ToLower(k), "execution-id") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if len(h[k]) > 0 && h[k][0] != "" {
			return h[k][0]
		}
	}
	return ""
}
